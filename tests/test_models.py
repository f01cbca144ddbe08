"""Every model: shape, finite loss, a gradient on every parameter; ResNets match paddle.vision."""
import numpy as np
import paddle
import paddle.nn.functional as F
import pytest

from paddle_catdog.models import ACTIVATIONS, MODELS, POOLINGS, create_model
from paddle_catdog.models.cnn import L2Pool2D

CASES = [("resnet10", {"width": 16}), ("resnet18", {}), ("resnet34", {"width": 16}), ("resnet50", {"width": 16}),
         ("resnet18", {"width": 16, "dropout": 0.2})]
CASES += [("cnn", {"pooling": p}) for p in POOLINGS]
CASES += [("cnn", {"activation": a, "channels": (8, 16)}) for a in ACTIVATIONS]


@pytest.mark.parametrize("name,options", CASES, ids=[f"{n}-{o}" for n, o in CASES])
def test_forward_backward_every_parameter(name, options):
    paddle.seed(0)
    model = create_model(name, num_classes=3, **options)
    model.train()
    x = paddle.randn([4, 3, 64, 64])
    y = paddle.to_tensor([0, 1, 2, 1])
    logits = model(x)
    assert logits.shape == [4, 3]
    loss = F.cross_entropy(logits, y)
    assert np.isfinite(float(loss))
    loss.backward()
    trainable = [(n, p) for n, p in model.named_parameters() if not p.stop_gradient]
    assert len(trainable) > 0
    for pname, p in trainable:  # batch-norm running statistics are buffers, not trained
        assert p.grad is not None, f"{pname} got no gradient"
        g = p.grad.numpy()
        assert np.isfinite(g).all(), f"{pname} has a non-finite gradient"
        assert np.abs(g).sum() > 0, f"{pname} has an all-zero gradient"


@pytest.mark.parametrize("name", ["resnet18", "resnet34", "resnet50"])
def test_resnet_matches_paddle_vision(name):
    import paddle.vision.models as pvm
    builders = {"resnet18": pvm.resnet18, "resnet34": pvm.resnet34, "resnet50": pvm.resnet50}
    ours = create_model(name, num_classes=2)
    theirs = builders[name](num_classes=2)
    count = lambda m: sum(int(np.prod(p.shape)) for p in m.parameters())
    assert count(ours) == count(theirs)
    ours_sd = {k: tuple(v.shape) for k, v in ours.state_dict().items()}
    theirs_sd = {k: tuple(v.shape) for k, v in theirs.state_dict().items()}
    assert ours_sd == theirs_sd  # same names and shapes: paddle.vision weights load directly


def test_resnet10_is_resnet18_with_one_block_per_stage_and_a_3x3_stem():
    r10, r18 = create_model("resnet10", width=16), create_model("resnet18", width=16)
    for stage in ("layer1", "layer2", "layer3", "layer4"):
        assert len(getattr(r10, stage)) == 1 and len(getattr(r18, stage)) == 2
    shapes10 = {k: tuple(v.shape) for k, v in r10.state_dict().items()}
    shapes18 = {k: tuple(v.shape) for k, v in r18.state_dict().items()}
    assert set(shapes10) < set(shapes18)  # its blocks are ResNet-18's first block of each stage
    assert not any(k.startswith(f"layer{i}.1.") for k in shapes10 for i in range(1, 5))
    assert shapes10["conv1.weight"] == (16, 3, 3, 3) and shapes18["conv1.weight"] == (16, 3, 7, 7)
    assert all(shapes10[k] == shapes18[k] for k in shapes10 if k != "conv1.weight")
    x = paddle.randn([2, 3, 64, 64])
    assert r10.forward_features(x).shape == r18.forward_features(x).shape == [2, 128, 2, 2]


def test_paddle_vision_weights_give_same_outputs():
    import paddle.vision.models as pvm
    paddle.seed(1)
    theirs = pvm.resnet18(num_classes=2)
    ours = create_model("resnet18", num_classes=2)
    ours.set_state_dict(theirs.state_dict())
    ours.eval(), theirs.eval()
    x = paddle.randn([2, 3, 64, 64])
    np.testing.assert_allclose(ours(x).numpy(), theirs(x).numpy(), rtol=1e-5, atol=1e-5)


def test_forward_features_and_head_compose():
    model = create_model("resnet18", width=16)
    model.eval()
    x = paddle.randn([1, 3, 64, 64])
    feats = model.forward_features(x)
    assert feats.shape == [1, 16 * 8, 2, 2]
    np.testing.assert_allclose(model.forward_head(feats).numpy(), model(x).numpy(), rtol=1e-6)


def test_unknown_model_lists_valid_names():
    with pytest.raises(ValueError) as e:
        create_model("vgg16")
    for name in MODELS:
        assert name in str(e.value)


def test_unknown_pooling_and_activation_are_named():
    with pytest.raises(ValueError, match="max, avg, l2"):
        create_model("cnn", pooling="median")
    with pytest.raises(ValueError, match="relu"):
        create_model("cnn", activation="softsign")


def test_l2_pool_is_root_mean_square():
    x = paddle.to_tensor(np.array([[[[1., 2.], [3., 4.]]]], np.float32))
    out = L2Pool2D(2, 2, eps=0.0)(x)
    assert out.shape == [1, 1, 1, 1]
    value = float(out.numpy().reshape(-1)[0])
    assert abs(value - np.sqrt((1 + 4 + 9 + 16) / 4)) < 1e-5
    # between average (2.5) and max (4)
    assert 2.5 < value < 4


def test_probabilities_head_and_flip_tta():
    from paddle_catdog.models import Probabilities
    paddle.seed(3)
    model = create_model("cnn", channels=(4, 8))
    model.eval()
    x = paddle.randn([2, 3, 16, 16])
    plain = Probabilities(model)(x).numpy()
    np.testing.assert_allclose(plain, F.softmax(model(x), axis=1).numpy(), rtol=1e-6)
    mirrored = F.softmax(model(paddle.flip(x, axis=[3])), axis=1).numpy()
    assert not np.allclose(plain, mirrored)  # the mirror image really is another view
    np.testing.assert_allclose(Probabilities(model, flip_tta=True)(x).numpy(), (plain + mirrored) / 2,
                               rtol=1e-6)
