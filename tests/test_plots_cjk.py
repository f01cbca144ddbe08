"""Figure titles in Chinese: drawn with a CJK font where one is installed (.ci/run installs
Debian's fonts-noto-cjk), English alone where none is, never boxes."""
import warnings

import matplotlib
import pytest

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from paddle_catdog import plots  # noqa: E402


@pytest.fixture
def fresh_rc():
    with matplotlib.rc_context():
        yield


def test_without_a_cjk_font_titles_are_english_only(fresh_rc):
    plt.rcParams["font.sans-serif"] = ["DejaVu Sans"]
    assert not plots.cjk_font_in_use()
    assert plots.zh_en("训练曲线", "Training curves") == "Training curves"


def test_a_cjk_font_draws_chinese_without_missing_glyphs(fresh_rc):
    name = plots.use_cjk_font()
    if name is None:
        pytest.skip("no CJK font installed (apt-get install fonts-noto-cjk)")
    title = plots.zh_en("训练曲线", "Training curves")
    assert title == "训练曲线 · Training curves"
    fig, ax = plt.subplots()
    ax.set_title(title)
    ax.plot([-1, 1])
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # matplotlib warns "Glyph ... missing from font(s)"
        fig.canvas.draw()
    plt.close(fig)


def test_figure_texts_can_be_replaced_by_bilingual_ones(fresh_rc):
    plots.use_cjk_font()  # where none is installed, matplotlib only warns about the glyphs
    history = [{"epoch": 1, "train_loss": 0.7, "val_loss": 0.6, "train_acc": 0.5, "val_acc": 0.6, "lr": 1e-3},
               {"epoch": 2, "train_loss": 0.5, "val_loss": 0.5, "train_acc": 0.7, "val_acc": 0.7, "lr": 5e-4}]
    fig = plots.plot_curves(history, labels={"acc": "准确率 · accuracy", "epoch": "轮 · epoch"})
    assert [ax.get_title() for ax in fig.axes][:2] == ["cross-entropy of the true class", "准确率 · accuracy"]
    assert fig.axes[0].get_xlabel() == "轮 · epoch"
    with pytest.raises(ValueError, match="unknown curve labels"):
        plots.plot_curves(history, labels={"accuracy": "x"})
    fig = plots.plot_confusion_matrix([[3, 1], [0, 4]], ["cat", "dog"], xlabel="预测类别 · predicted")
    assert fig.axes[0].get_xlabel() == "预测类别 · predicted" and fig.axes[0].get_ylabel() == "true"
    plt.close("all")


def test_a_figure_of_photos_is_shown_as_a_smaller_jpeg(fresh_rc):
    import io

    import numpy as np
    rng = np.random.default_rng(0)
    photos = [rng.integers(0, 256, (96, 96, 3), dtype=np.uint8) for _ in range(3)]
    png = io.BytesIO()
    plots.show_images(photos, ncol=3).savefig(png, format="png", bbox_inches="tight")
    fig = plots.show_images(photos, ncol=3)
    jpeg = plots.JpegFigure(fig)
    assert jpeg._repr_jpeg_()[:3] == b"\xff\xd8\xff"  # a JPEG
    assert len(jpeg.data) < len(png.getvalue()) / 2
    assert not plt.fignum_exists(fig.number), "closed: the inline backend must not show it again"
    plt.close("all")
