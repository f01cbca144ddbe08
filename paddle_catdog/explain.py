"""What a trained model looks at (notebook 03): feature maps of chosen layers, Grad-CAM heat maps
over ``forward_features``, and the most confident mistakes. Inputs come from the evaluation
transform (``build_transform(cfg, train=False)``), the same one prediction uses."""
from __future__ import annotations

from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
import paddle
import paddle.nn.functional as F
from paddle import nn

from .transforms import build_transform, image_grid, read_bytes


def load_image(path: str, cfg) -> Tuple[np.ndarray, np.ndarray]:
    """(CHW float32 model input, HWC uint8 picture of exactly that input) for ``path``."""
    x = build_transform(cfg, train=False)(read_bytes(path))
    return x, image_grid(x[None], ncol=1, normalize=cfg.normalize)  # undoes the normalization: what the model sees


def default_layers(model: nn.Layer) -> List[str]:
    """Sublayer names worth showing, shallow to deep, as the model names them (``stage_names``:
    the ResNet stem and stages, EfficientNet's stem and resolution ends, the plain CNN's blocks)."""
    return list(model.stage_names)


@paddle.no_grad()
def feature_maps(model: nn.Layer, x: np.ndarray, layers: Optional[Sequence[str]] = None
                 ) -> Dict[str, np.ndarray]:
    """``{layer name: (C, H, W) output}`` for one CHW input, captured by forward hooks."""
    names = dict(model.named_sublayers())
    layers = list(layers or default_layers(model))
    unknown = [n for n in layers if n not in names]
    if unknown:
        raise ValueError(f"no layer {unknown[0]!r} in {type(model).__name__}; e.g. {default_layers(model)}")
    captured: Dict[str, np.ndarray] = {}
    hooks = [names[n].register_forward_post_hook(
        lambda layer, inputs, output, n=n: captured.__setitem__(n, output.numpy()[0])) for n in layers]
    try:
        model.eval()
        model(paddle.to_tensor(x[None]))
    finally:
        for h in hooks:
            h.remove()
    return {n: captured[n] for n in layers}


def grad_cam(model: nn.Layer, x: np.ndarray, class_index: Optional[int] = None
             ) -> Tuple[np.ndarray, int, np.ndarray]:
    """Grad-CAM (Selvaraju et al. 2017) on the last feature maps: weight each channel of
    ``forward_features`` by the mean gradient of the class score over it, sum, keep the positive
    part. Returns (heat map (h, w) in [0, 1] at the feature resolution, class, probabilities)."""
    model.eval()
    feats = model.forward_features(paddle.to_tensor(x[None]))
    logits = model.forward_head(feats)
    probs = F.softmax(logits, axis=1).numpy()[0]
    k = int(probs.argmax()) if class_index is None else int(class_index)
    (grads,) = paddle.grad(logits[0, k], feats)
    weights = grads.mean(axis=[2, 3], keepdim=True)
    cam = F.relu((weights * feats).sum(axis=1))[0].numpy()
    top = cam.max()
    return (cam / top if top > 0 else cam), k, probs


def most_confident_mistakes(paths: Sequence[str], labels: np.ndarray, probs: np.ndarray,
                            k: int = 8) -> List[Tuple[str, int, int, float]]:
    """The ``k`` wrong predictions with the highest confidence: (path, true, predicted, p)."""
    preds = probs.argmax(axis=1)
    wrong = np.flatnonzero(preds != labels)
    order = wrong[np.argsort(-probs[wrong, preds[wrong]])][:k]
    return [(paths[i], int(labels[i]), int(preds[i]), float(probs[i, preds[i]])) for i in order]
