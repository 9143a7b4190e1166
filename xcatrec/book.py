"""Small conveniences for the book's chapters (quiet TensorFlow, plot style, glued numbers).

Chapters import this instead of repeating set-up code; it holds no recommendation logic.
"""

from __future__ import annotations

import os
from typing import Any, Mapping

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")


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
