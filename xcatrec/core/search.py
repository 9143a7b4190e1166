"""Search spaces: the hyper-parameters a method lets model selection tune, declared next to its config.

Each method class sets ``search_space`` to a dict from config field name to one of the three
parameter kinds below. :mod:`xcatrec.tuning` turns them into an Optuna search; nothing here imports
Optuna, so declaring a space costs nothing. Every method gets the same number of trials on the
validation split (never test), the target-only references included.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any, Union

from xcatrec.errors import ConfigError


@dataclass(frozen=True)
class Int:
    """A whole number in ``[low, high]``; ``log`` samples on a log scale."""

    low: int
    high: int
    log: bool = False


@dataclass(frozen=True)
class Float:
    """A real number in ``[low, high]``; ``log`` samples on a log scale."""

    low: float
    high: float
    log: bool = False


@dataclass(frozen=True)
class Choice:
    """One of a few values (numbers, strings, booleans)."""

    values: tuple[Any, ...]


Param = Union[Int, Float, Choice]


def check_space(space: dict[str, Param], config_class: type) -> None:
    """Raise :class:`ConfigError` when a searched name is not a field of ``config_class`` or a range is empty."""
    names = {f.name for f in fields(config_class)}
    for name, param in space.items():
        if name not in names:
            raise ConfigError(f"Search space names {name!r}, which is not a field of {config_class.__name__}.",
                              f"Use fields from {sorted(names)}.")
        if isinstance(param, (Int, Float)) and not param.low <= param.high:
            raise ConfigError(f"Search range of {name!r} is empty ({param.low} > {param.high}).",
                              "Give low <= high.")
        if isinstance(param, Choice) and not param.values:
            raise ConfigError(f"Search choice of {name!r} has no values.", "Give at least one value.")


#: The neighbourhood space shared by item kNN and its cross-domain variants (Dacrema et al. 2019 tune
#: the same four: neighbours, shrinkage, cosine asymmetry and feature weighting).
KNN_SPACE: dict[str, Param] = {"k": Int(10, 1000, log=True), "shrink": Float(0.0, 500.0),
                               "alpha": Float(0.0, 1.0), "weighting": Choice(("none", "tfidf", "bm25"))}
#: Learning rate and regularisation of the factor models.
FACTOR_SPACE: dict[str, Param] = {"dim": Choice((32, 64, 128)), "reg": Float(1e-4, 1.0, log=True),
                                  "learning_rate": Float(1e-3, 2e-2, log=True)}
