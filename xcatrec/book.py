"""Small conveniences for the book's chapters (quiet TensorFlow, plot style, glued numbers), and the
tool that stores the outputs nbval checks.

Chapters import this instead of repeating set-up code; it holds no recommendation logic.

nbval compares a cell marked ``# NBVAL_CHECK_OUTPUT`` with the output stored in the notebook, so those
cells (and only those) keep their outputs in git. After changing such a cell, refresh them with
``make outputs`` (``python -m xcatrec.book chapters/*.ipynb``).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any, Mapping, Sequence

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")

CHECK_MARK = "# NBVAL_CHECK_OUTPUT"

#: The CJK font the figures fall back to for Chinese labels (Debian package ``fonts-wqy-microhei``,
#: which ``.ci/run`` installs; ``make book`` says how when it is missing).
CJK_FONT = "WenQuanYi Micro Hei"


def cjk_font_path() -> str | None:
    """The file of :data:`CJK_FONT` as matplotlib finds it, or ``None`` when it is not installed."""
    from matplotlib import font_manager

    try:
        path = font_manager.findfont(font_manager.FontProperties(family=CJK_FONT), fallback_to_default=False)
    except ValueError:
        return None
    return path


def setup() -> None:
    """Quiet TensorFlow's start-up lines, fix the plot style and pandas display options."""
    import matplotlib.pyplot as plt
    import pandas as pd

    plt.rcParams.update({"figure.figsize": (6.4, 3.6), "figure.dpi": 100, "axes.grid": True,
                         "grid.alpha": 0.3, "axes.spines.top": False, "axes.spines.right": False,
                         # Latin glyphs from DejaVu, Chinese ones from the CJK font (per-glyph fallback).
                         "font.family": ["DejaVu Sans", CJK_FONT]})
    pd.set_option("display.precision", 4)
    pd.set_option("display.float_format", readable)
    pd.set_option("display.width", 120)


def readable(x: float) -> str:
    """A float as a reader wants it in a table: fixed point, never scientific notation.

    Four decimals, or as many as the first two significant digits need for small values
    (``0.00052`` rather than ``5.1738e-04``); integers stay integers.
    """
    import math

    if isinstance(x, int) or (math.isfinite(x) and float(x).is_integer() and abs(x) >= 1):
        return f"{int(x):,}" if abs(x) >= 10_000 else f"{int(x)}"
    if not math.isfinite(x):
        return str(x)
    if x == 0 or abs(x) >= 1e-3:
        return f"{x:.4f}"
    decimals = min(12, 1 - math.floor(math.log10(abs(x))))
    return f"{x:.{decimals}f}"


def table(frame: Any, *, digits: int | None = None, percent: Sequence[str] = ()) -> Any:
    """A DataFrame styled for reading: floats in fixed point (see :func:`readable`), chosen columns as %.

    Args:
        frame: The table.
        digits: Fixed decimals for every float column instead of :func:`readable`'s choice.
        percent: Columns holding fractions, shown as percentages with one decimal.

    Returns:
        A pandas ``Styler``; the last expression of a cell renders it as an HTML table.
    """
    fmt = readable if digits is None else (lambda x: f"{x:.{digits}f}")
    formats = {c: fmt for c in frame.columns if frame[c].dtype.kind == "f"}
    formats.update({c: (lambda x: f"{100 * x:.1f}%") for c in percent})
    return frame.style.format(formats, na_rep="")


def glue_all(values: Mapping[str, Any], *, prefix: str = "", display: bool = False) -> None:
    """Glue every value under ``prefix + key`` so the chapter's prose can cite it with ``{glue:text}``."""
    from myst_nb import glue

    for key, value in values.items():
        glue(f"{prefix}{key}", value, display=display)


def store_checked_outputs(path: str | Path, *, timeout: int = 900) -> int:
    """Execute a chapter and store the outputs of its ``# NBVAL_CHECK_OUTPUT`` cells, no others.

    The notebook runs in its own folder, as nbval and the book build run it. Every other cell is
    saved without outputs, so the notebook in git holds exactly what nbval compares.

    Returns:
        The number of checked cells whose outputs were stored.

    Raises:
        nbclient.exceptions.CellExecutionError: A cell failed; the file is left unchanged.
    """
    import nbformat
    from nbclient import NotebookClient

    path = Path(path)
    nb = nbformat.read(path, as_version=4)
    NotebookClient(nb, timeout=timeout, kernel_name="python3",
                   resources={"metadata": {"path": str(path.parent.resolve())}}).execute()
    stored = 0
    for cell in nb.cells:
        cell.metadata.pop("execution", None)
        if cell.cell_type != "code":
            continue
        if cell.source.lstrip().startswith(CHECK_MARK):
            stored += 1
        else:
            cell.outputs, cell.execution_count = [], None
    tmp = path.with_suffix(".ipynb.tmp")
    nbformat.write(nb, tmp)
    os.replace(tmp, path)
    return stored


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m xcatrec.book CHAPTER.ipynb ...``: store the checked outputs of each chapter."""
    paths = list(sys.argv[1:] if argv is None else argv)
    if not paths or any(p in ("-h", "--help") for p in paths):
        print("usage: python -m xcatrec.book CHAPTER.ipynb [...]\n"
              "Execute each chapter and store the outputs of its '# NBVAL_CHECK_OUTPUT' cells (only those).")
        return 0 if paths else 2
    for p in paths:
        print(f"{p}: {store_checked_outputs(p)} checked cell(s) stored", file=sys.stderr, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
