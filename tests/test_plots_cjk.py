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
