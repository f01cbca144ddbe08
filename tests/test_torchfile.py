"""The PyTorch state-dict reader (torchfile.py): both formats, without torch, and refusing pickles
that would run code."""
import collections
import os
import pickle
import sys
import types
import zipfile

import numpy as np
import pytest

from paddle_catdog.torchfile import LEGACY_MAGIC, TorchFileError, read_torch_state_dict


class _Storage:
    """A storage to pickle as torch does: by persistent id, its bytes stored beside the pickle."""

    def __init__(self, kind, key: str, data: np.ndarray) -> None:
        self.kind, self.key, self.data = kind, key, data


class _Tensor:
    def __init__(self, rebuild, storage: _Storage, offset: int, shape, strides) -> None:
        self.args = (rebuild, (storage, offset, tuple(shape), tuple(strides), False, collections.OrderedDict()))

    def __reduce__(self):
        return self.args


class _TorchPickler(pickle.Pickler):
    def __init__(self, file, legacy: bool) -> None:
        super().__init__(file, protocol=2)
        self.legacy = legacy

    def persistent_id(self, obj):
        if isinstance(obj, _Storage):
            pid = ("storage", obj.kind, obj.key, "cpu", int(obj.data.size))
            return pid + (None,) if self.legacy else pid
        return None


@pytest.fixture
def fake_torch(monkeypatch):
    """Modules named ``torch`` and ``torch._utils`` holding only the names a state-dict pickle
    refers to, so the test can write files as torch would without having torch."""
    torch, utils = types.ModuleType("torch"), types.ModuleType("torch._utils")
    for name in ("FloatStorage", "LongStorage", "HalfStorage"):
        setattr(torch, name, type(name, (), {"__module__": "torch"}))

    def _rebuild_tensor_v2(*args):  # never called: the reader has its own
        raise AssertionError

    _rebuild_tensor_v2.__module__, _rebuild_tensor_v2.__qualname__ = "torch._utils", "_rebuild_tensor_v2"
    utils._rebuild_tensor_v2 = _rebuild_tensor_v2
    torch._utils = utils
    monkeypatch.setitem(sys.modules, "torch", torch)
    monkeypatch.setitem(sys.modules, "torch._utils", utils)
    return torch


def _state(torch):
    """A state dict with a strided view, an offset into a shared storage, int64 and float16."""
    rebuild = sys.modules["torch._utils"]._rebuild_tensor_v2
    base = np.arange(24, dtype=np.float32)
    shared = _Storage(torch.FloatStorage, "0", base)
    counts = _Storage(torch.LongStorage, "1", np.array([7], np.int64))
    half = _Storage(torch.HalfStorage, "2", np.array([0.5, -2.0], np.float16))
    state = collections.OrderedDict([
        ("conv.weight", _Tensor(rebuild, shared, 0, (2, 3, 4), (12, 4, 1))),
        ("transposed", _Tensor(rebuild, shared, 0, (4, 3), (1, 4))),  # a non-contiguous view
        ("tail", _Tensor(rebuild, shared, 20, (4,), (1,))),
        ("bn.num_batches_tracked", _Tensor(rebuild, counts, 0, (), ())),
        ("half", _Tensor(rebuild, half, 0, (2,), (1,))),
    ])
    expected = {"conv.weight": base.reshape(2, 3, 4), "transposed": base[:12].reshape(3, 4).T,
                "tail": base[20:24], "bn.num_batches_tracked": np.array(7, np.int64),
                "half": np.array([0.5, -2.0], np.float16)}
    return state, [shared, counts, half], expected


def _write_zip(path, state, storages) -> None:
    with zipfile.ZipFile(path, "w") as z, z.open("archive/data.pkl", "w") as f:
        _TorchPickler(f, legacy=False).dump(state)
    with zipfile.ZipFile(path, "a") as z:
        for s in storages:
            z.writestr(f"archive/data/{s.key}", s.data.tobytes())
        z.writestr("archive/version", "3\n")


def _write_legacy(path, state, storages) -> None:
    with open(path, "wb") as f:
        for header in (LEGACY_MAGIC, 1001, {"protocol_version": 1001, "little_endian": True}):
            pickle.dump(header, f, protocol=2)
        _TorchPickler(f, legacy=True).dump(state)
        pickle.dump([s.key for s in storages], f, protocol=2)
        for s in storages:
            f.write(np.int64(s.data.size).tobytes() + s.data.tobytes())


@pytest.mark.parametrize("fmt", ["zip", "legacy"])
def test_both_formats_read_every_tensor(tmp_path, fake_torch, fmt):
    state, storages, expected = _state(fake_torch)
    path = tmp_path / f"w.{fmt}.pth"
    (_write_zip if fmt == "zip" else _write_legacy)(path, state, storages)
    got = read_torch_state_dict(path)
    assert sorted(got) == sorted(expected)
    for k, v in expected.items():
        assert got[k].dtype == v.dtype and got[k].shape == v.shape, k
        np.testing.assert_array_equal(got[k], v)


class _RunsCode:
    """What a malicious .pth holds: unpickling it calls ``os.system`` (or ``exec``)."""

    def __init__(self, call, arg) -> None:
        self.call, self.arg = call, arg

    def __reduce__(self):
        return self.call, (self.arg,)


@pytest.mark.parametrize("fmt", ["zip", "legacy"])
@pytest.mark.parametrize("how", ["system", "exec"])
def test_a_pickle_that_would_run_code_is_refused(tmp_path, fmt, how):
    marker = tmp_path / "pwned"
    payload = (_RunsCode(os.system, f"touch {marker}") if how == "system"
               else _RunsCode(exec, f"open({str(marker)!r}, 'w').close()"))
    evil = {"weight": payload}
    path = tmp_path / "evil.pth"
    if fmt == "zip":
        with zipfile.ZipFile(path, "w") as z:
            z.writestr("archive/data.pkl", pickle.dumps(evil, protocol=2))
    else:
        with open(path, "wb") as f:
            for part in (LEGACY_MAGIC, 1001, {"little_endian": True}, evil):
                pickle.dump(part, f, protocol=2)
    with pytest.raises(TorchFileError, match=r"refused.*(system|exec)"):
        read_torch_state_dict(path)
    assert not marker.exists()  # nothing ran
    pickle.loads(pickle.dumps(_RunsCode(len, "x")))  # (the payload mechanism itself works)


def test_damaged_and_foreign_files_are_one_clear_error(tmp_path, fake_torch):
    state, storages, _ = _state(fake_torch)
    good = tmp_path / "good.pth"
    _write_legacy(good, state, storages)
    cut = tmp_path / "cut.pth"
    cut.write_bytes(good.read_bytes()[:-10])
    not_dict = tmp_path / "list.pth"
    with zipfile.ZipFile(not_dict, "w") as z:
        z.writestr("archive/data.pkl", pickle.dumps([1, 2], protocol=2))
    text = tmp_path / "notes.pth"
    text.write_text("hello")
    for path, message in [(cut, "truncated"), (not_dict, "not a state dict"), (text, "not a readable")]:
        with pytest.raises(TorchFileError, match=message):
            read_torch_state_dict(path)
