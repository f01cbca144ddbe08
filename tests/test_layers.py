"""The CPU-shaped layers compute what Paddle's own do: forward and gradients, on the map sizes
where they take their own path and where they hand over."""
import numpy as np
import paddle
import paddle.nn.functional as F
import pytest

from paddle_catdog.models import create_model, layers
from paddle_catdog.models.layers import Conv2D, gemm_conv2d


def _grads(fn, x, weight, bias):
    x, weight = x.detach(), weight.detach()
    x.stop_gradient = weight.stop_gradient = False
    if bias is not None:
        bias = bias.detach()
        bias.stop_gradient = False
    y = fn(x, weight, bias)
    (y * paddle.arange(y.size, dtype="float32").reshape(y.shape) / y.size).sum().backward()
    return [y.numpy(), x.grad.numpy(), weight.grad.numpy()] + ([bias.grad.numpy()] if bias is not None else [])


@pytest.mark.parametrize("size,cin,cout,k,stride,pad,bias", [
    (2, 16, 24, 3, 1, 1, False),   # the last ResNet stage at 64 px
    (4, 8, 16, 3, 2, 1, False),    # its stride-2 entry
    (4, 8, 16, 1, 2, 0, False),    # the projection shortcut
    (4, 8, 8, 3, 1, 1, True),
    (5, 4, 6, 3, 2, 1, True),      # odd size
    (9, 3, 5, 4, 4, 0, False),     # a patchify stem, size not a multiple of the stride
])
def test_gemm_conv_matches_conv2d_forward_and_gradients(size, cin, cout, k, stride, pad, bias):
    rng = np.random.default_rng(size * 100 + cin)
    x = paddle.to_tensor(rng.normal(size=(3, cin, size, size)).astype("float32"))
    w = paddle.to_tensor(rng.normal(size=(cout, cin, k, k)).astype("float32"))
    b = paddle.to_tensor(rng.normal(size=(cout,)).astype("float32")) if bias else None
    ours = _grads(lambda x, w, b: gemm_conv2d(x, w, b, stride, pad), x, w, b)
    native = _grads(lambda x, w, b: F.conv2d(x, w, b, stride=stride, padding=pad), x, w, b)
    for a, e in zip(ours, native):
        np.testing.assert_allclose(a, e, rtol=1e-4, atol=1e-4)


def test_the_layer_takes_the_gemm_path_on_tiny_maps_only(monkeypatch):
    calls = []
    monkeypatch.setattr(layers, "gemm_conv2d", lambda *a: calls.append(a) or F.conv2d(a[0], a[1], a[2], a[3], a[4]))
    conv = Conv2D(4, 4, 3, stride=1, padding=1, bias_attr=False)
    conv(paddle.randn([2, 4, 4, 4]))   # 16 positions, stride 1: GEMM
    conv(paddle.randn([2, 4, 8, 8]))   # 64: native
    strided = Conv2D(4, 4, 3, stride=2, padding=1, bias_attr=False)
    strided(paddle.randn([2, 4, 8, 8]))  # 16 positions, stride 2: native
    strided(paddle.randn([2, 4, 4, 4]))  # 4: GEMM
    assert [tuple(c[0].shape[2:]) for c in calls] == [(4, 4), (4, 4)]


def test_the_layer_keeps_conv2d_parameters():
    ours, theirs = Conv2D(4, 8, 3, padding=1), paddle.nn.Conv2D(4, 8, 3, padding=1)
    assert {k: v.shape for k, v in ours.state_dict().items()} == {k: v.shape for k, v in theirs.state_dict().items()}


def test_resnet_training_step_matches_the_native_convolutions(monkeypatch):
    """A whole ResNet-18 at 32 px (its last stage on 1x1 maps): the same loss and gradients with
    the GEMM path as with Paddle's convolution everywhere."""
    def step(limits):
        monkeypatch.setattr(layers, "GEMM_MAX_POSITIONS", limits[0])
        monkeypatch.setattr(layers, "GEMM_MAX_POSITIONS_STRIDE1", limits[1])
        paddle.seed(0)
        model = create_model("resnet18", 2, width=8)
        x = paddle.to_tensor(np.random.default_rng(1).normal(size=(4, 3, 32, 32)).astype("float32"))
        loss = F.cross_entropy(model(x), paddle.to_tensor([0, 1, 1, 0]))
        loss.backward()
        return float(loss), {n: p.grad.numpy() for n, p in model.named_parameters() if p.grad is not None}
    (loss_gemm, g_gemm), (loss_native, g_native) = step((4, 16)), step((0, 0))
    assert abs(loss_gemm - loss_native) < 1e-5
    assert g_gemm.keys() == g_native.keys() and len(g_gemm) > 40
    for name in g_native:
        np.testing.assert_allclose(g_gemm[name], g_native[name], rtol=1e-3, atol=1e-4, err_msg=name)

