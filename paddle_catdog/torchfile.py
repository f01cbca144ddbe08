"""Read a PyTorch state-dict file (``.pth``/``.pt``) into numpy arrays, without PyTorch and safely.

A ``.pth`` file is a pickle, and unpickling runs whatever the file names: ``torch.load`` of a
stranger's file can run code. This reader unpickles with a restricted ``find_class`` that knows
only what a plain tensor state dict needs:

- ``collections.OrderedDict`` (the dict itself, and its ``_metadata``),
- ``torch._utils._rebuild_tensor_v2`` / ``_rebuild_parameter`` (a tensor: storage, offset, shape,
  strides),
- the typed storages ``torch.FloatStorage``, ``torch.LongStorage``, ... (dtype markers only).

Each is answered by a stand-in written here; any other global (``os.system``, ``builtins.eval``,
``subprocess.Popen``, a torch class...) raises ``TorchFileError`` before anything is called.

Both of PyTorch's formats are read:

- **zip** (PyTorch >= 1.6): ``<archive>/data.pkl`` plus one raw little-endian file per storage,
  ``<archive>/data/<key>``;
- **legacy** (before 1.6, and still written with ``_use_new_zipfile_serialization=False``): four
  pickles in a row (magic number, protocol version, system info, the state dict), a pickle of
  storage keys, then each storage as an int64 element count and its raw bytes.
"""
from __future__ import annotations

import collections
import io
import pickle
import struct
import zipfile
from pathlib import Path
from typing import Any, BinaryIO, Callable, Dict, Tuple

import numpy as np

LEGACY_MAGIC = 0x1950A86A20F9469CFC6C  # torch.serialization.MAGIC_NUMBER

# torch's typed storages -> numpy dtypes (little-endian, as torch writes them)
STORAGE_DTYPES: Dict[str, np.dtype] = {
    "FloatStorage": np.dtype("<f4"), "DoubleStorage": np.dtype("<f8"),
    "HalfStorage": np.dtype("<f2"), "BFloat16Storage": np.dtype("<u2"),  # widened to float32 below
    "LongStorage": np.dtype("<i8"), "IntStorage": np.dtype("<i4"), "ShortStorage": np.dtype("<i2"),
    "CharStorage": np.dtype("i1"), "ByteStorage": np.dtype("u1"), "BoolStorage": np.dtype("?"),
}


class TorchFileError(ValueError):
    """A file that is not a plain PyTorch tensor state dict, or asks for more; for the user."""


class _StorageType:
    """Stand-in for ``torch.FloatStorage`` and kin: only its name (the dtype) is ever used."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.dtype = STORAGE_DTYPES[name]


class _Storage:
    """A storage named in the pickle; its bytes are filled in after unpickling (legacy) or read
    from the archive when first used (zip)."""

    def __init__(self, kind: _StorageType, key: str, numel: int) -> None:
        self.kind, self.key, self.numel = kind, key, int(numel)
        self.data: np.ndarray | None = None


class _Tensor:
    """What ``_rebuild_tensor_v2`` returns here: the storage and the view on it, made an array
    once every storage has been read."""

    def __init__(self, storage: _Storage, offset: int, shape: Tuple[int, ...], strides: Tuple[int, ...]) -> None:
        if not isinstance(storage, _Storage):
            raise TorchFileError("a tensor that is not backed by a storage")
        self.storage, self.offset = storage, int(offset)
        self.shape, self.strides = tuple(int(s) for s in shape), tuple(int(s) for s in strides)

    def to_numpy(self) -> np.ndarray:
        data = self.storage.data
        if data is None:
            raise TorchFileError(f"storage {self.storage.key} has no data in the file")
        itemsize = data.dtype.itemsize
        last = self.offset + sum((n - 1) * s for n, s in zip(self.shape, self.strides) if n > 0)
        if self.offset < 0 or any(s < 0 for s in self.strides) or (0 not in self.shape and last >= data.size):
            raise TorchFileError(f"a tensor of shape {self.shape} reaches outside its storage "
                                 f"({data.size} elements)")
        view = np.lib.stride_tricks.as_strided(data[self.offset:], self.shape,
                                               [s * itemsize for s in self.strides], writeable=False)
        array = np.array(view)  # an owned, contiguous copy
        if self.storage.kind.name == "BFloat16Storage":
            array = (array.astype(np.uint32) << 16).view(np.float32)
        return array


def _rebuild_tensor_v2(storage, storage_offset, size, stride, requires_grad=False,
                       backward_hooks=None, metadata=None) -> _Tensor:
    return _Tensor(storage, storage_offset, size, stride)


def _rebuild_parameter(data, requires_grad=False, backward_hooks=None) -> Any:
    return data  # an nn.Parameter is its tensor here


# The complete list of globals a state-dict pickle may name.
ALLOWED: Dict[Tuple[str, str], Callable[..., Any]] = {
    ("collections", "OrderedDict"): collections.OrderedDict,
    ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor_v2,
    ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
    **{("torch", name): _StorageType(name) for name in STORAGE_DTYPES},  # type: ignore[misc]
}


class _SafeUnpickler(pickle.Unpickler):
    """Unpickles only ``ALLOWED`` globals and torch's ``('storage', ...)`` persistent ids."""

    def __init__(self, file: BinaryIO, source: str) -> None:
        super().__init__(file)
        self.source = source
        self.storages: Dict[str, _Storage] = {}

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) not in ALLOWED:
            raise TorchFileError(f"{self.source}: refused: the file asks to load {module}.{name}, "
                                 "which a plain tensor state dict never needs (it may run code)")
        return ALLOWED[(module, name)]

    def persistent_load(self, pid: Any) -> _Storage:
        # zip: ('storage', type, key, location, numel); legacy adds view_metadata (None)
        if not (isinstance(pid, tuple) and len(pid) in (5, 6) and pid[0] == "storage"
                and isinstance(pid[1], _StorageType) and isinstance(pid[4], int)):
            raise TorchFileError(f"{self.source}: refused: unknown persistent object {str(pid)[:80]}")
        if len(pid) == 6 and pid[5] is not None:
            raise TorchFileError(f"{self.source}: storage views are not supported")
        key = str(pid[2])
        if key not in self.storages:
            self.storages[key] = _Storage(pid[1], key, pid[4])
        return self.storages[key]


def _tensors(obj: Any, source: str) -> Dict[str, np.ndarray]:
    """The state dict as {name: array}; anything but names mapping to tensors is refused."""
    if not isinstance(obj, dict):
        raise TorchFileError(f"{source}: not a state dict (a {type(obj).__name__})")
    if "state_dict" in obj and isinstance(obj["state_dict"], dict):  # a training checkpoint
        obj = obj["state_dict"]
    out = {}
    for name, value in obj.items():
        if not (isinstance(name, str) and isinstance(value, _Tensor)):
            raise TorchFileError(f"{source}: not a plain tensor state dict ({name!r} holds "
                                 f"{type(value).__name__})")
        out[name] = value.to_numpy()
    return out


def _read_legacy(f: BinaryIO, source: str) -> Dict[str, np.ndarray]:
    header = [_SafeUnpickler(f, source).load() for _ in range(3)]
    if header[0] != LEGACY_MAGIC:
        raise TorchFileError(f"{source}: not a PyTorch file (wrong magic number)")
    if not (isinstance(header[2], dict) and header[2].get("little_endian", True)):
        raise TorchFileError(f"{source}: big-endian files are not supported")
    unpickler = _SafeUnpickler(f, source)
    result = unpickler.load()
    keys = _SafeUnpickler(f, source).load()
    for key in keys:
        storage = unpickler.storages.get(str(key))
        if storage is None:
            raise TorchFileError(f"{source}: storage {key} is not used by any tensor")
        count = f.read(8)
        numel = struct.unpack("<q", count)[0] if len(count) == 8 else -1
        dtype = storage.kind.dtype
        raw = f.read(max(numel, 0) * dtype.itemsize)
        if numel != storage.numel or len(raw) != numel * dtype.itemsize:
            raise TorchFileError(f"{source}: truncated (storage {key})")
        storage.data = np.frombuffer(raw, dtype)
    return _tensors(result, source)


def _read_zip(path: Path, source: str) -> Dict[str, np.ndarray]:
    with zipfile.ZipFile(path) as archive:
        pickles = [n for n in archive.namelist() if n.endswith("/data.pkl") or n == "data.pkl"]
        if len(pickles) != 1:
            raise TorchFileError(f"{source}: a zip file without one data.pkl (not a PyTorch file)")
        prefix = pickles[0][: -len("data.pkl")]
        unpickler = _SafeUnpickler(io.BytesIO(archive.read(pickles[0])), source)
        result = unpickler.load()
        for storage in unpickler.storages.values():
            try:
                raw = archive.read(f"{prefix}data/{storage.key}")
            except KeyError as e:
                raise TorchFileError(f"{source}: storage {storage.key} is missing") from e
            if len(raw) < storage.numel * storage.kind.dtype.itemsize:
                raise TorchFileError(f"{source}: storage {storage.key} is truncated")
            storage.data = np.frombuffer(raw, storage.kind.dtype, count=storage.numel)
    return _tensors(result, source)


def read_torch_state_dict(path: Path) -> Dict[str, np.ndarray]:
    """{name: array} of a PyTorch state-dict file (zip or legacy format). Raises TorchFileError
    for anything else: a pickle that names other globals (it may run code), a damaged file."""
    path, source = Path(path), str(path)
    try:
        if zipfile.is_zipfile(path):
            return _read_zip(path, source)
        with open(path, "rb") as f:
            return _read_legacy(f, source)
    except TorchFileError:
        raise
    except OSError:
        raise
    except (pickle.UnpicklingError, EOFError, struct.error, ValueError, TypeError, KeyError,
            AttributeError, IndexError, zipfile.BadZipFile) as e:
        raise TorchFileError(f"{source}: not a readable PyTorch state dict ({type(e).__name__}: {e})") from e
