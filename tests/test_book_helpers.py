"""The book's formatting helpers (:mod:`xcatrec.book`): numbers a reader can read, tables without
scientific notation, and figures that can carry Chinese labels.

The figure checks draw with every warning turned into an error, so a label whose glyphs are missing
from the configured fonts (matplotlib then draws empty boxes and warns "Glyph ... missing from
font(s)") fails the test.
"""

from __future__ import annotations

import math
import re
import warnings

import numpy as np
import pandas as pd
import pytest

from xcatrec.book import CJK_FONT, cjk_font_path, readable, setup, table

#: A float written in scientific notation, as pandas and Python print small or large values.
SCIENTIFIC = re.compile(r"\d(?:\.\d+)?e[-+]?\d+", re.IGNORECASE)

CHINESE_LABEL = "中文摘要：交叉品类推荐"


@pytest.mark.parametrize("value, shown", [
    (0.5, "0.5000"),
    (0.12345, "0.1235"),
    (-0.25, "-0.2500"),
    (0.0, "0.0000"),
    (0.001, "0.0010"),
    (5.1738e-04, "0.00052"),    # two significant digits, not 5.1738e-04
    (-1.234e-05, "-0.000012"),
    (3.0, "3"),                 # whole floats read as counts
    (-7.0, "-7"),
    (12, "12"),
    (12_345, "12,345"),         # thousands separators from five digits on
    (12_345.0, "12,345"),
    (np.int64(42), "42"),
    (np.float64(0.75), "0.7500"),
    (1234.5678, "1234.5678"),
])
def test_readable_values(value, shown):
    assert readable(value) == shown


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf])
def test_readable_non_finite_values_are_named(value):
    assert readable(value) == str(value)


@pytest.mark.parametrize("exponent", range(-12, 21))
@pytest.mark.parametrize("sign", [1, -1])
def test_readable_never_uses_scientific_notation(exponent, sign):
    value = sign * 1.2345 * 10.0 ** exponent
    shown = readable(value)
    assert not SCIENTIFIC.search(shown), shown
    # ...and the value is still there: parsing the text back gives it to two significant digits.
    assert float(shown.replace(",", "")) == pytest.approx(value, rel=0.05)


@pytest.fixture
def frame() -> pd.DataFrame:
    return pd.DataFrame({"method": ["bpr-mf", "cmf"], "users": [15_761, 3_325],
                         "ndcg@10": [5.1738e-04, 0.0321], "hit share": [0.4412, 0.05],
                         "p": [2.5e-07, np.nan]})


def test_table_writes_floats_in_fixed_point(frame):
    html = table(frame).to_html()
    cells = re.findall(r"<td[^>]*>(.*?)</td>", html)
    assert cells, "no table cells rendered"
    assert not [c for c in cells if SCIENTIFIC.search(c)], cells
    assert {"0.00052", "0.0321", "0.00000025", "15761"} <= set(cells)
    # The unstyled frame shows the notation the helper exists to avoid, so the check above can fail.
    with pd.option_context("display.float_format", None):
        assert SCIENTIFIC.search(frame.to_html())


def test_table_percent_digits_and_missing_values(frame):
    cells = re.findall(r"<td[^>]*>(.*?)</td>", table(frame, percent=["hit share"]).to_html())
    assert "44.1%" in cells and "5.0%" in cells
    assert "nan" not in cells and "" in cells  # a missing p-value is an empty cell
    fixed = re.findall(r"<td[^>]*>(.*?)</td>", table(frame, digits=2).to_html())
    assert "0.03" in fixed and "0.44" in fixed and "0.00" in fixed
    assert table(frame).data is frame  # the helper styles; it never changes the numbers


@pytest.fixture
def book_setup():
    """Run :func:`setup` and afterwards restore the global matplotlib and pandas options it changes."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    options = ("display.precision", "display.float_format", "display.width")
    saved = {name: pd.get_option(name) for name in options}
    with plt.rc_context():
        setup()
        yield plt
        plt.close("all")
    for name, value in saved.items():
        pd.set_option(name, value)


def test_setup_prints_frames_in_fixed_point(book_setup):
    text = repr(pd.DataFrame({"ndcg@10": [5.1738e-04, 0.25]}))
    assert "0.00052" in text and not SCIENTIFIC.search(text)


def test_the_cjk_font_is_installed():
    path = cjk_font_path()
    assert path, f"{CJK_FONT!r} is missing: install the Debian package fonts-wqy-microhei (.ci/run does)"
    from matplotlib import font_manager

    assert font_manager.FontProperties(fname=path).get_name() == CJK_FONT


def draw_label(plt, label: str) -> None:
    """Draw a figure whose title, axis label and legend hold ``label``, with warnings as errors."""
    fig, ax = plt.subplots()
    ax.plot([0, 1], [0, 1], label=label)
    ax.set(title=label, xlabel=label)
    ax.legend()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        fig.canvas.draw()


def test_chinese_labels_draw_without_missing_glyphs_after_setup(book_setup):
    if cjk_font_path() is None:
        pytest.fail(f"{CJK_FONT!r} is missing: install the Debian package fonts-wqy-microhei")
    draw_label(book_setup, CHINESE_LABEL)


def test_without_the_fallback_chinese_glyphs_are_reported_missing(book_setup):
    # The control for the test above: with Latin fonts only, the same drawing raises the warning
    # that test turns into an error, so it cannot pass whatever the fonts are.
    book_setup.rcParams["font.family"] = ["DejaVu Sans"]
    with pytest.raises(UserWarning, match="missing from font"):
        draw_label(book_setup, CHINESE_LABEL)
