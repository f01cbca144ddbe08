"""train_one_epoch: the figures it reports compare with validation's, and it reads them from the
device only every sync_every steps (a GPU would stall on a read per step)."""
import numpy as np
import paddle
import paddle.nn.functional as F
import pytest

from paddle_catdog.models import create_model
from paddle_catdog.train import loop
from paddle_catdog.train.optim import WarmupCosine


def _batches(n: int = 6, size: int = 16):
    rng = np.random.default_rng(0)
    return [(paddle.to_tensor(rng.standard_normal((4, 3, size, size)).astype("float32")),
             paddle.to_tensor(rng.integers(0, 2, 4).astype("int64"))) for _ in range(n)]


class _Loader(list):
    """A list of batches that DataLoader's callers can iterate and take len() of."""


def _setup(lr: float = 1e-12):
    paddle.seed(0)
    model = create_model("cnn", channels=(8,), dropout=0.0)
    scheduler = WarmupCosine(lr, 0, 100)
    optimizer = paddle.optimizer.SGD(learning_rate=scheduler, parameters=model.parameters())
    return model, optimizer, scheduler


def test_loss_is_plain_cross_entropy_and_objective_has_the_smoothing():
    batches = _Loader(_batches())
    model, optimizer, scheduler = _setup()
    got = loop.train_one_epoch(model, batches, optimizer, scheduler, label_smoothing=0.3)
    model.train()  # lr ~0: the model is the one the epoch saw; batch norm uses batch statistics
    with paddle.no_grad():
        plain = np.mean([float(F.cross_entropy(model(x), y)) for x, y in batches])
        smoothed = np.mean([float(F.cross_entropy(model(x), y, label_smoothing=0.3)) for x, y in batches])
    assert got["loss"] == pytest.approx(plain, rel=1e-4)
    assert got["objective"] == pytest.approx(smoothed, rel=1e-4)
    assert abs(got["objective"] - got["loss"]) > 1e-3  # they differ: one plot must not mix them


def test_figures_are_read_every_sync_every_steps_and_a_nan_is_caught_at_the_next_read(monkeypatch):
    reads = []
    real = loop._read
    monkeypatch.setattr(loop, "_read", lambda sums, seen, step: reads.append(step) or real(sums, seen, step))
    model, optimizer, scheduler = _setup()
    loop.train_one_epoch(model, _Loader(_batches(10)), optimizer, scheduler, sync_every=4)
    assert reads == [4, 8, 10]  # steps 4 and 8, and the last
    assert loop.sync_interval("cpu") == 1 and loop.sync_interval("gpu") > 1

    calls = []
    real_ce = loop.F.cross_entropy

    def nan_at_step_3(*a, **k):
        calls.append(1)
        out = real_ce(*a, **k)
        return out * float("nan") if len(calls) == 2 * 3 - 1 else out  # 2 calls a step: objective, loss
    monkeypatch.setattr(loop.F, "cross_entropy", nan_at_step_3)
    reads.clear()
    model, optimizer, scheduler = _setup()
    with pytest.raises(loop.TrainingError, match="nan by step 4"):
        loop.train_one_epoch(model, _Loader(_batches(10)), optimizer, scheduler, sync_every=4)
    assert reads == [4]


class _Scaler:
    """Stands in for a GPU GradScaler (disabled on CPU, where its state is empty)."""

    def __init__(self, scale: float) -> None:
        self.state = {"scale": scale, "incr_count": 7, "decr_count": 1}

    def state_dict(self):
        return dict(self.state)

    def load_state_dict(self, state):
        self.state = dict(state)


def test_the_loss_scale_is_saved_and_resumed(tmp_path):
    from paddle_catdog import checkpoint as ckpt
    from paddle_catdog.config import TrainConfig
    model, optimizer, scheduler = _setup()
    ckpt.save_checkpoint(tmp_path / "last", model, TrainConfig(model="cnn"), ["a", "b"], 1, 0.5,
                         optimizer=optimizer, scheduler=scheduler, scaler=_Scaler(512.0))
    fresh = _Scaler(2.0 ** 15)
    ckpt.load_train_state(tmp_path / "last", model, optimizer, scheduler, fresh)
    assert fresh.state == {"scale": 512.0, "incr_count": 7, "decr_count": 1}
