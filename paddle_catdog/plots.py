"""Pictures for the evaluation command, the docs and the notebooks (matplotlib; the commands
draw with Agg, set in launch.py, and notebooks keep their inline backend).

Every function returns a matplotlib ``Figure`` (notebooks display it) and, given ``path``, also
writes it as a PNG (the evaluation command and the docs). Nothing here computes results: the
numbers come from evaluate.py, explain.py, basics.py and train/ so the pictures show the tested
code. Titles may hold Chinese: ``use_cjk_font`` finds a font that renders it, and ``zh_en``
falls back to the English alone where there is none (never a row of boxes).
"""
from __future__ import annotations

import io
import math
from pathlib import Path
from typing import Dict, Mapping, Optional, Sequence, Tuple, Union

import matplotlib.pyplot as plt
import numpy as np
from matplotlib import font_manager
from matplotlib.figure import Figure

PathLike = Union[str, Path]

# Fonts that render Simplified Chinese, in order of preference: Debian's fonts-noto-cjk (CI and
# most Linux), the same family under Adobe's name, WenQuanYi (older Linux, AI Studio images),
# then what Windows and macOS ship.
CJK_FONTS = ("Noto Sans CJK SC", "Source Han Sans SC", "WenQuanYi Zen Hei", "WenQuanYi Micro Hei",
             "SimHei", "Microsoft YaHei", "PingFang SC", "Heiti SC", "Arial Unicode MS")
_CJK_FILE_HINTS = ("cjk", "sourcehan", "wqy", "simhei", "msyh", "pingfang", "heiti")


def _installed_cjk_font() -> Optional[str]:
    names = {f.name for f in font_manager.fontManager.ttflist}
    return next((name for name in CJK_FONTS if name in names), None)


def use_cjk_font() -> Optional[str]:
    """Make matplotlib draw Chinese: put the first installed font of ``CJK_FONTS`` first in
    ``font.sans-serif`` and return its name, or None when none is installed (then ``zh_en``
    gives English only). Fonts installed after matplotlib built its font cache are found on disk."""
    name = _installed_cjk_font()
    if name is None:
        for path in font_manager.findSystemFonts():
            if any(hint in Path(path).name.lower() for hint in _CJK_FILE_HINTS):
                try:
                    font_manager.fontManager.addfont(path)
                except (OSError, RuntimeError, ValueError):  # an unreadable font file: skip it
                    continue
        name = _installed_cjk_font()
    if name is not None:
        plt.rcParams["font.family"] = "sans-serif"
        plt.rcParams["font.sans-serif"] = [name] + [f for f in plt.rcParams["font.sans-serif"] if f != name]
        plt.rcParams["axes.unicode_minus"] = False  # CJK fonts often lack the minus sign U+2212
    return name


def cjk_font_in_use() -> bool:
    families = plt.rcParams["font.sans-serif"]
    return bool(families) and families[0] in CJK_FONTS and _installed_cjk_font() is not None


def zh_en(zh: str, en: str) -> str:
    """A figure title in both languages ("训练曲线 · Training curves") where a CJK font is in use
    (``use_cjk_font``), else the English alone: never boxes in place of characters."""
    return f"{zh} · {en}" if cjk_font_in_use() else en


def finish_figure(fig: Figure, path: Optional[PathLike]) -> Figure:
    """Lay the figure out and, given ``path``, also write it as a PNG (110 dpi)."""
    fig.tight_layout()
    if path is not None:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(str(path), dpi=110)
    return fig


def plot_confusion_matrix(cm: np.ndarray, classes: Sequence[str], path: Optional[PathLike] = None,
                          title: str = "Confusion matrix", xlabel: str = "predicted",
                          ylabel: str = "true") -> Figure:
    """Counts in each cell, rows = true class, columns = predicted; colour = row fraction, so a
    small class's errors are as visible as a large one's. The texts may be bilingual (``zh_en``)."""
    cm = np.asarray(cm)
    rows = np.maximum(cm.sum(axis=1, keepdims=True), 1)
    size = 2.2 + 0.9 * len(classes)
    fig, ax = plt.subplots(figsize=(size, size * 0.9))
    ax.imshow(cm / rows, cmap="Blues", vmin=0, vmax=1)
    ticks = np.arange(len(classes))
    ax.set_xticks(ticks, labels=list(classes))
    ax.set_yticks(ticks, labels=list(classes))
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    for i in range(cm.shape[0]):
        for j in range(cm.shape[1]):
            frac = cm[i, j] / rows[i, 0]
            ax.text(j, i, f"{cm[i, j]}\n{frac:.1%}", ha="center", va="center",
                    color="white" if frac > 0.5 else "black")
    ax.set_title(title)
    return finish_figure(fig, path)


# The texts of ``plot_curves``; notebooks replace them with bilingual ones (``zh_en``).
CURVE_LABELS = {"loss": "cross-entropy of the true class", "acc": "accuracy",
                "lr": "learning rate (end of epoch)", "epoch": "epoch", "train": "train", "val": "val"}


def plot_curves(history: Sequence[Mapping[str, float]], path: Optional[PathLike] = None,
                labels: Optional[Mapping[str, str]] = None) -> Figure:
    """Loss, accuracy and learning rate per epoch from ``history.jsonl`` rows. Both losses are the
    cross-entropy of the true class without label smoothing (training's smoothed objective is
    ``train_objective``); train is over augmented photos in train mode, val flip-averaged.
    ``labels`` replaces any of the texts of ``CURVE_LABELS`` (an unknown key raises ValueError)."""
    unknown = sorted(set(labels or {}) - set(CURVE_LABELS))
    if unknown:
        raise ValueError(f"unknown curve labels {unknown}; known: {sorted(CURVE_LABELS)}")
    text = {**CURVE_LABELS, **(labels or {})}
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.6))
    epochs = [r["epoch"] for r in history]
    for ax, key in zip(axes[:2], ("loss", "acc")):
        for split, style in (("train", "-o"), ("val", "-s")):
            values = [r.get(f"{split}_{key}", np.nan) for r in history]
            ax.plot(epochs, values, style, label=text[split], markersize=4)
        ax.set_title(text[key])
        ax.set_xlabel(text["epoch"])
        ax.grid(alpha=0.3)
        ax.legend()
    axes[2].plot(epochs, [r.get("lr", np.nan) for r in history], "-o", markersize=4)
    axes[2].set_title(text["lr"])
    axes[2].set_xlabel(text["epoch"])
    axes[2].grid(alpha=0.3)
    if not history:
        for ax in axes:
            ax.text(0.5, 0.5, "no history.jsonl rows", ha="center", transform=ax.transAxes)
    return finish_figure(fig, path)


def show_images(images: Sequence[np.ndarray], titles: Optional[Sequence[str]] = None,
                ncol: int = 4, path: Optional[PathLike] = None, cmap: Optional[str] = None,
                size: float = 2.6, suptitle: Optional[str] = None,
                value_range: Optional[Tuple[float, float]] = None) -> Figure:
    """A grid of HWC RGB (or HW single-channel, drawn with ``cmap``) arrays with titles.
    Single-channel maps are each scaled to their own range unless ``value_range`` gives one
    range for all, so that their brightness can be compared."""
    n = max(len(images), 1)
    ncol = min(ncol, n)
    nrow = math.ceil(n / ncol)
    fig, axes = plt.subplots(nrow, ncol, figsize=(size * ncol, size * nrow + 0.3), squeeze=False)
    for i, ax in enumerate(axes.flat):
        ax.axis("off")
        if i < len(images):
            img = images[i]
            vmin, vmax = value_range if value_range is not None and img.ndim == 2 else (None, None)
            ax.imshow(img, cmap=cmap if img.ndim == 2 else None, vmin=vmin, vmax=vmax)
            if titles is not None:
                ax.set_title(titles[i], fontsize=9)
    if suptitle:
        fig.suptitle(suptitle)
    return finish_figure(fig, path)


def _grouped_bars(ax, table: Mapping[str, Mapping[str, float]], fmt: str) -> None:
    """One group of labelled bars per row of ``table`` (``{group: {series: value}}``), one
    colour per series, with the legend's labels."""
    groups = list(table)
    series = list(next(iter(table.values()))) if table else []
    width = 0.8 / max(len(series), 1)
    x = np.arange(len(groups))
    for k, name in enumerate(series):
        bars = ax.bar(x + k * width, [table[g][name] for g in groups], width, label=name)
        ax.bar_label(bars, fmt=fmt, fontsize=8)
    ax.set_xticks(x + width * (len(series) - 1) / 2, labels=groups)


def plot_class_balance(counts: Mapping[str, Mapping[str, int]], path: Optional[PathLike] = None,
                       title: str = "class balance", ylabel: str = "images") -> Figure:
    """Bars of images per class for each split, e.g. ``{"train": {"cat": 4000, ...}, "val": ...}``
    (the split names label the bars)."""
    classes = list(next(iter(counts.values()))) if counts else []
    fig, ax = plt.subplots(figsize=(1.6 + 1.4 * len(classes), 3.2))
    _grouped_bars(ax, {c: {split: counts[split].get(c, 0) for split in counts} for c in classes}, "%g")
    ax.set_ylabel(ylabel)
    ax.legend()
    ax.set_title(title)
    return finish_figure(fig, path)


def plot_activations(curves: Mapping[str, Tuple[np.ndarray, np.ndarray, np.ndarray]],
                     path: Optional[PathLike] = None) -> Figure:
    """One panel per activation: f(x) and f'(x), from ``basics.activation_curves``."""
    n = len(curves)
    ncol = min(4, n)
    nrow = math.ceil(n / ncol)
    fig, axes = plt.subplots(nrow, ncol, figsize=(3.2 * ncol, 2.6 * nrow), squeeze=False)
    for ax, (name, (x, y, dy)) in zip(axes.flat, curves.items()):
        ax.plot(x, y, label="f(x)")
        ax.plot(x, dy, "--", label="f'(x)")
        ax.axhline(0, color="gray", lw=0.5)
        ax.axvline(0, color="gray", lw=0.5)
        ax.set_title(name)
        ax.grid(alpha=0.3)
    for ax in list(axes.flat)[n:]:
        ax.axis("off")
    axes.flat[0].legend(fontsize=8)
    return finish_figure(fig, path)


def feature_map_grid(maps: Dict[str, np.ndarray], n_channels: int = 8,
                     path: Optional[PathLike] = None) -> Figure:
    """One row per layer: the first ``n_channels`` channels of its (C, H, W) output."""
    fig, axes = plt.subplots(len(maps), n_channels, figsize=(1.5 * n_channels, 1.7 * len(maps)),
                             squeeze=False)
    for row, (name, fmap) in zip(axes, maps.items()):
        for c, ax in enumerate(row):
            ax.axis("off")
            if c < fmap.shape[0]:
                ax.imshow(fmap[c], cmap="viridis")
        row[0].set_title(f"{name} {tuple(fmap.shape)}", fontsize=8, loc="left")
    return finish_figure(fig, path)


def plot_accuracy_bars(results: Mapping[str, Mapping[str, float]], path: Optional[PathLike] = None,
                       title: str = "Train vs validation accuracy", ylabel: str = "accuracy") -> Figure:
    """Grouped bars, e.g. ``{"MLP": {"train": 0.98, "val": 0.57}, "CNN": {...}}``: the gap
    between a model's two bars is how much it overfits."""
    fig, ax = plt.subplots(figsize=(1.8 + 1.6 * len(results), 3.4))
    _grouped_bars(ax, results, "%.2f")
    ax.axhline(0.5, color="gray", lw=0.8, ls=":")  # chance for two balanced classes
    ax.set_ylim(0, 1.08)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.legend(loc="lower right")
    return finish_figure(fig, path)


def overlay_heatmap(image: np.ndarray, heatmap: np.ndarray, alpha: float = 0.45) -> np.ndarray:
    """Blend a [0, 1] heat map (any size; resized) over an HWC uint8 RGB image."""
    import cv2
    h, w = image.shape[:2]
    heat = cv2.resize(heatmap.astype(np.float32), (w, h), interpolation=cv2.INTER_LINEAR)
    colored = (plt.get_cmap("jet")(np.clip(heat, 0, 1))[:, :, :3] * 255).astype(np.float32)
    return np.clip(image.astype(np.float32) * (1 - alpha) + colored * alpha, 0, 255).astype(np.uint8)


class JpegFigure:
    """A finished figure as JPEG bytes, shown by Jupyter through ``_repr_jpeg_`` (no IPython
    import needed): a figure of photos takes 5-10x less room in an executed notebook than as PNG.
    The figure is closed, so the inline backend does not show it a second time as PNG."""

    def __init__(self, fig: Figure, quality: int = 85) -> None:
        buffer = io.BytesIO()
        fig.savefig(buffer, format="jpeg", pil_kwargs={"quality": quality}, bbox_inches="tight")
        plt.close(fig)
        self.data = buffer.getvalue()

    def _repr_jpeg_(self) -> bytes:
        return self.data

    def __repr__(self) -> str:  # the text/plain stand-in a notebook stores beside the picture
        return f"<JPEG figure, {len(self.data) // 1024} KB>"


def close_all() -> None:
    """Free figures (the evaluation command and long notebooks make many)."""
    plt.close("all")


__all__ = ["plot_confusion_matrix", "plot_curves", "show_images", "plot_class_balance",
           "plot_activations", "feature_map_grid", "plot_accuracy_bars",
           "overlay_heatmap", "close_all", "finish_figure", "JpegFigure", "use_cjk_font", "cjk_font_in_use", "zh_en", "CJK_FONTS", "CURVE_LABELS"]
