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


def setup() -> None:
    """Quiet TensorFlow's start-up lines, fix the plot style and pandas display options."""
    import matplotlib.pyplot as plt
    import pandas as pd

    plt.rcParams.update({"figure.figsize": (6.4, 3.6), "figure.dpi": 100, "axes.grid": True,
                         "grid.alpha": 0.3, "axes.spines.top": False, "axes.spines.right": False})
    pd.set_option("display.precision", 4)
    pd.set_option("display.width", 120)


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
