"""Notebook 01's pictures, titled in Chinese and English (``plots.zh_en``): the residual block
drawn as boxes and arrows, receptive fields as squares on a photo, and the curves of its
experiments (pooling against shifts, plain against residual stacks). The numbers come from
``basics`` and ``basics_brief``; nothing here computes a result."""
from __future__ import annotations

from typing import Mapping, Optional, Sequence

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure
from matplotlib.patches import FancyBboxPatch, Rectangle

from .plots import PathLike, finish_figure, zh_en

_BOX = dict(boxstyle="round,pad=0.02,rounding_size=0.04", linewidth=1.2)


def _box(ax, x: float, y: float, text: str, colour: str, w: float = 0.56, h: float = 0.1) -> None:
    ax.add_patch(FancyBboxPatch((x - w / 2, y - h / 2), w, h, facecolor=colour, edgecolor="black", **_BOX))
    ax.text(x, y, text.replace(" · ", "\n"), ha="center", va="center", fontsize=8.5)  # one language a line


def _arrow(ax, start, end, **style) -> None:
    ax.annotate("", xy=end, xytext=start, arrowprops=dict(arrowstyle="-|>", lw=1.3, **style))


def _block(ax, residual: bool) -> None:
    """One block, input at the bottom: conv -> BN -> ReLU -> conv -> BN, then (+ x) and ReLU."""
    ys = {"x": 0.04, "conv1": 0.2, "relu1": 0.36, "conv2": 0.52, "add": 0.68, "relu2": 0.8, "out": 0.95}
    ax.text(0.5, ys["x"], "$x$", ha="center", va="center", fontsize=12)
    _box(ax, 0.5, ys["conv1"], zh_en("3×3 卷积 + 批量归一化", "3×3 conv + BN"), "#cfe2f3")
    _box(ax, 0.5, ys["relu1"], "ReLU", "#d9ead3", w=0.3)
    _box(ax, 0.5, ys["conv2"], zh_en("3×3 卷积 + 批量归一化", "3×3 conv + BN"), "#cfe2f3")
    _box(ax, 0.5, ys["relu2"], "ReLU", "#d9ead3", w=0.3)
    for a, b in (("x", "conv1"), ("conv1", "relu1"), ("relu1", "conv2")):
        _arrow(ax, (0.5, ys[a] + 0.05 if a != "x" else ys[a] + 0.03), (0.5, ys[b] - 0.05))
    if residual:
        ax.add_patch(plt.Circle((0.5, ys["add"]), 0.035, facecolor="white", edgecolor="black", lw=1.2))
        ax.text(0.5, ys["add"], "+", ha="center", va="center", fontsize=13)
        _arrow(ax, (0.5, ys["conv2"] + 0.05), (0.5, ys["add"] - 0.035))
        _arrow(ax, (0.5, ys["add"] + 0.035), (0.5, ys["relu2"] - 0.05))
        # the residual connection: x goes around the two layers and is added to F(x)
        ax.plot([0.5, 0.88, 0.88], [ys["x"] + 0.03, ys["x"] + 0.03, ys["add"]], color="#cc0000", lw=1.6)
        _arrow(ax, (0.88, ys["add"]), (0.535, ys["add"]), color="#cc0000")
        ax.text(0.9, 0.36, zh_en("残差连接 $x$", "residual connection $x$"), rotation=90,
                ha="left", va="center", fontsize=9, color="#cc0000")
        ax.plot([0.2, 0.17, 0.17, 0.2], [ys["conv1"] - 0.05, ys["conv1"] - 0.05, ys["conv2"] + 0.05,
                                         ys["conv2"] + 0.05], color="gray", lw=1)
        ax.text(0.15, ys["relu1"], "$F(x)$", ha="right", va="center", fontsize=11)
        out = "$H(x) = F(x) + x$"
    else:
        _arrow(ax, (0.5, ys["conv2"] + 0.05), (0.5, ys["relu2"] - 0.05))
        out = "$H(x)$"
    _arrow(ax, (0.5, ys["relu2"] + 0.05), (0.5, ys["out"] - 0.03))
    ax.text(0.5, ys["out"], out, ha="center", va="center", fontsize=12)


def draw_residual_block(path: Optional[PathLike] = None) -> Figure:
    """Left a plain block, which must learn the whole mapping H(x); right a residual block,
    whose layers learn only the change F(x) = H(x) - x, the input coming back over the residual
    connection (He et al. 2016, as ResNet-18's ``BasicBlock``)."""
    fig, axes = plt.subplots(1, 2, figsize=(8, 4.6))
    for ax, residual, title in ((axes[0], False, zh_en("普通的两层", "Two plain layers")),
                                (axes[1], True, zh_en("残差块", "Residual block"))):
        ax.set_xlim(0, 1.1)
        ax.set_ylim(0, 1)
        ax.axis("off")
        _block(ax, residual)
        ax.set_title(title)
    return finish_figure(fig, path)


def draw_receptive_fields(photo: np.ndarray, rows: Sequence[Mapping], center: Optional[Sequence[int]] = None,
                          path: Optional[PathLike] = None) -> Figure:
    """The photo with one square per layer: the input pixels that a single output value of that
    layer depends on (``rows`` of ``{"layer", "field"}``), around the pixel ``center`` (row,
    column; default the middle). Squares are clipped where they leave the photo."""
    h, w = photo.shape[:2]
    cy, cx = center if center is not None else (h // 2, w // 2)
    fig, ax = plt.subplots(figsize=(4.6, 4.2))
    ax.imshow(photo, cmap="gray" if photo.ndim == 2 else None)
    colours = plt.get_cmap("autumn")(np.linspace(0, 0.9, len(rows)))
    for row, colour in zip(rows, colours):
        r = row["field"]
        top, left = cy - (r - 1) / 2, cx - (r - 1) / 2
        ax.add_patch(Rectangle((left - 0.5, top - 0.5), r, r, fill=False, edgecolor=colour, lw=1.8,
                               label=f"{row['layer']}: {r}×{r}"))
    ax.plot([cx], [cy], "o", color="cyan", markersize=3)
    ax.set_xlim(-0.5, w - 0.5)
    ax.set_ylim(h - 0.5, -0.5)
    ax.axis("off")
    ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=8)
    ax.set_title(zh_en("每一层的感受野", "Receptive field of each layer"), fontsize=10)
    return finish_figure(fig, path)


def plot_shift_change(changes: Mapping[int, Sequence[float]], shifts: Sequence[int],
                      path: Optional[PathLike] = None) -> Figure:
    """Relative change of the feature maps against the shift, one line per pooling size, from
    ``basics.shift_change``: the lower the line, the less a small move of the photo matters."""
    fig, ax = plt.subplots(figsize=(5.2, 3.4))
    for k, values in changes.items():
        label = zh_en("不池化", "no pooling") if k == 1 else zh_en(f"{k}×{k} 最大池化", f"{k}×{k} max pooling")
        ax.plot(list(shifts), list(values), "-o", label=label)
    ax.set_xticks(list(shifts))
    ax.set_xlabel(zh_en("平移（像素）", "shift (pixels)"))
    ax.set_ylabel(zh_en("相对变化", "relative change"))
    ax.set_ylim(bottom=0)
    ax.set_title(zh_en("池化吸收小的平移", "Pooling absorbs small shifts"))
    ax.grid(alpha=0.3)
    ax.legend()
    return finish_figure(fig, path)


def plot_depth_comparison(grad_norms: Mapping[str, np.ndarray], losses: Mapping[str, Sequence[float]],
                          path: Optional[PathLike] = None, smooth: int = 5) -> Figure:
    """Left: gradient norm per layer (log scale) at initialisation; right: training loss per
    batch (moving average over ``smooth`` batches), for a plain stack and a residual one."""
    names = {"plain": zh_en("普通", "plain"), "residual": zh_en("残差", "residual")}
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 3.5))
    for name, norms in grad_norms.items():
        left.semilogy(np.arange(1, len(norms) + 1), norms, "-o", markersize=3, label=names.get(name, name))
    left.set_xlabel(zh_en("层（1 = 最靠近输入）", "layer (1 = nearest the input)"))
    left.set_ylabel(zh_en("梯度范数", "gradient norm"))
    left.set_title(zh_en("初始化时每一层的梯度", "Gradient per layer at initialisation"))
    for name, values in losses.items():
        v = np.asarray(values, np.float64)
        k = max(1, min(smooth, len(v)))
        right.plot(np.convolve(v, np.ones(k) / k, mode="valid"), label=names.get(name, name))
    right.set_xlabel(zh_en(f"批量（每点是 {smooth} 个批量的平均）", f"batch (each point a mean of {smooth})"))
    right.set_ylabel(zh_en("训练损失", "training loss"))
    right.set_title(zh_en("训练损失（滑动平均）", "Training loss (moving average)"))
    for ax in (left, right):
        ax.grid(alpha=0.3)
        ax.legend()
    return finish_figure(fig, path)
