"""The one contract every recommender in xcatrec follows.

A model is built from the data set's sizes and a frozen config dataclass, trained with :meth:`fit`,
and then answers :meth:`score` and :meth:`recommend` for the *target* domain. Evaluation code talks to
nothing else, so every method is measured by the same code.

Transfer is declared, not hidden: :attr:`Recommender.phases` lists the training phases of a method and
which weights move from one phase to the next; transfer diagnostics read that declaration.
"""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import scipy.sparse as sp

from xcatrec.data.types import CrossDomainDataset, DatasetSizes
from xcatrec.errors import ConfigError, DataError, UnknownIdError


@dataclass(frozen=True)
class Phase:
    """One training phase of a method.

    Args:
        name: Short name, e.g. ``"source-pretrain"``, ``"map"``, ``"target-finetune"``.
        data: Which data the phase trains on: ``"source"``, ``"target"``, ``"both"`` or ``"overlap"``.
        moves: Names (or name prefixes, ``"cross"`` for ``"cross/layer_1"``) of the weights handed from
            this phase to the next. A trained method records them in :attr:`Recommender.transferred`
            at the end of the phase; the last phase hands nothing on, so its moves name the
            cross-domain channel of a joint model and are recorded when the phase starts (the transfer
            amount then measures how far that channel moved in training).
        validate: What the phase early-stops on: ``"valid"``, the target validation split (the
            epochs it chose are frozen when the model is refit on train + validation); ``"held-out"``,
            rows the method holds out of its own training data (kept in a refit); ``""``, nothing (a
            phase on source rows only has no validation split: all its epochs run).
        prefix: The phase's loop settings are the config fields ``prefix + "epochs"``,
            ``"patience"``, ``"batch_size"`` and ``"learning_rate"`` where the config has them, else
            the plain ones (EMCDR's ``map`` phase reads ``map_epochs``, ``map_batch_size`` ...).
    """

    name: str
    data: str
    moves: tuple[str, ...] = ()
    validate: str = "valid"
    prefix: str = ""

    def field(self, config: Any, name: str) -> str:
        """The config field that holds the phase's loop setting ``name``: ``<prefix><name>`` if the
        config has it, else ``name``."""
        return self.prefix + name if hasattr(config, self.prefix + name) else name

    def setting(self, config: Any, name: str) -> Any:
        """The phase's value of a loop setting (see :meth:`field`); ``None`` when the config has neither."""
        return getattr(config, self.field(config, name), None)


@dataclass(frozen=True)
class FitReport:
    """What :meth:`Recommender.fit` measured: epochs run, seconds per epoch, validation history."""

    epochs: int = 0
    seconds: float = 0.0
    seconds_per_epoch: float = 0.0
    best_epoch: int = 0
    history: dict[str, list[float]] = field(default_factory=dict)


@dataclass(frozen=True)
class ModelConfig:
    """Base of every model config; subclasses add their hyper-parameters as frozen fields.

    ``added_fields`` names the fields a config gained after benchmark runs of the method were
    recorded, each with the value that reproduces those older runs (e.g. ``{"loss": "bpr"}`` when a
    choice of loss was added to a method that trained with BPR only). A benchmark run with that value
    leaves the field out of its run key (:func:`xcatrec.bench.run_settings`), so the older runs stay
    reusable and comparable: they ran exactly that setting.
    """

    added_fields: ClassVar[dict[str, Any]] = {}

    seed: int = 0

    def replace(self, **changes: Any) -> "ModelConfig":
        """A copy with some fields changed; unknown field names raise :class:`ConfigError`."""
        names = {f.name for f in fields(self)}
        unknown = sorted(set(changes) - names)
        if unknown:
            raise ConfigError(f"Unknown option(s) {unknown} for {type(self).__name__}.",
                              f"Use one of {sorted(names)}.")
        return type(self)(**{**asdict(self), **changes})


def check_source_weight(value: Any, example: float) -> None:
    """Raise :class:`ConfigError` unless ``value`` is a finite number >= 0 (a config's ``source_weight``)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value < float("inf"):
        raise ConfigError(f"source_weight must be a finite number >= 0, got {value!r}.",
                          f"Use source_weight={example} (0 ignores the source category).")


def validated_best_epoch(history: dict[str, list[float]], phase: str = "") -> int:
    """The epoch with the best validation value of ``phase`` in a fit report's history (first on ties).

    Reads the ``valid_epoch`` list and the one metric list beside it (keys prefixed ``"phase/"`` in
    a multi-phase report, see :func:`combine_reports`); 0 when the phase
    was not validated.
    """
    prefix = f"{phase}/" if phase else ""
    epochs = history.get(f"{prefix}valid_epoch") or []
    plain = {"loss", "seconds", "cpu_seconds", "valid_epoch"}
    metrics = [k for k in history if k.startswith(prefix) and "/" not in k[len(prefix):]
               and k[len(prefix):] not in plain]
    if not epochs or len(metrics) != 1 or len(history[metrics[0]]) != len(epochs):
        return 0
    return int(epochs[int(np.argmax(history[metrics[0]]))])


def combine_reports(reports: dict[str, FitReport]) -> FitReport:
    """One report for a multi-phase method: sums epochs and seconds, prefixes history keys by phase.

    ``best_epoch`` is that of the last phase (the one whose weights answer ``score``); a single
    phase's report is returned as it is.
    """
    if len(reports) == 1:
        return next(iter(reports.values()))
    if not reports:
        return FitReport()
    epochs = sum(r.epochs for r in reports.values())
    train_seconds = sum(r.seconds_per_epoch * r.epochs for r in reports.values())
    history = {f"{phase}/{key}": list(values) for phase, r in reports.items()
               for key, values in r.history.items()}
    return FitReport(epochs=epochs, seconds=sum(r.seconds for r in reports.values()),
                     seconds_per_epoch=train_seconds / epochs if epochs else 0.0,
                     best_epoch=list(reports.values())[-1].best_epoch, history=history)


def saved_arrays(model: str, state: dict[str, np.ndarray], names: list[str],
                 rows: dict[str, int]) -> dict[str, np.ndarray]:
    """The arrays ``names`` of a saved state as float32, for a ``set_state``.

    Args:
        model: The method's name, for the message.
        state: What was loaded.
        names: The arrays that must be there.
        rows: Expected number of rows of some arrays (checked when present).

    Raises:
        DataError: A name is missing, or an array named in ``rows`` has another number of rows.
    """
    missing = [n for n in names if n not in state]
    if missing:
        raise DataError(f"The saved {model} weights lack {missing}.",
                        "Load a folder written by the same method's save() with the same config.")
    for name, n in rows.items():
        if name in state and len(state[name]) != n:
            raise DataError(f"The saved {name!r} has {len(state[name])} rows but the model needs {n}.",
                            "Load weights saved from a model of the same data set.")
    return {n: np.asarray(state[n], np.float32) for n in names}


def select_top(scores: np.ndarray, excluded: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """The ``k`` best columns per row of ``scores``, best first, leaving ``excluded`` ones to the end.

    The one selection behind :meth:`Recommender.recommend` and the serving of saved models, so both
    rank alike: ties keep the order of ``np.argsort(kind="stable")`` over the partitioned columns.

    Args:
        scores: ``(users, items)`` float scores; excluded entries are set to ``-inf`` in place.
        excluded: Boolean mask of the same shape (e.g. the items each user has seen).
        k: Columns to select (at most ``scores.shape[1]``).

    Returns:
        ``(top, taken)``: the selected column indices per row, and a mask of those that are excluded
        (only when a row has fewer than ``k`` other columns; they are moved to the row's end).
    """
    scores[excluded] = -np.inf
    top = np.argpartition(-scores, k - 1, axis=1)[:, :k]
    order = np.argsort(-np.take_along_axis(scores, top, axis=1), axis=1, kind="stable")
    top = np.take_along_axis(top, order, axis=1)
    taken = np.take_along_axis(excluded, top, axis=1)
    if taken.any():  # fewer than k other columns for some rows: excluded ones to the end
        last = np.argsort(taken, axis=1, kind="stable")
        top, taken = np.take_along_axis(top, last, axis=1), np.take_along_axis(taken, last, axis=1)
    return top, taken


class Recommender(ABC):
    """Base class of all methods.

    Subclasses set :attr:`name`, :attr:`config_class` and :attr:`phases`, implement :meth:`_fit`,
    :meth:`_score_users` and the weight round trip :meth:`get_state` / :meth:`set_state`. A method that
    moves weights between phases stores a copy of each moved array in :attr:`transferred` under the
    same name that :meth:`get_state` uses, so the transfer amount can be measured.

    Args:
        sizes: Users and items per domain of the data set the model will be trained on.
        config: The model's frozen config; ``None`` uses the defaults.
    """

    name: ClassVar[str] = "base"
    config_class: ClassVar[type[ModelConfig]] = ModelConfig
    phases: ClassVar[tuple[Phase, ...]] = (Phase("target", "target"),)
    #: Hyper-parameters model selection may tune: config field -> :mod:`xcatrec.core.search` kind.
    search_space: ClassVar[dict[str, Any]] = {}
    #: Epoch counts a refit freezes: config field -> (training phase whose validated best epoch it
    #: takes, ``""`` for a single-phase fit; the patience field set to 0 so the refit runs them all).
    refit_epochs: ClassVar[dict[str, tuple[str, str]]] = {}

    def __init__(self, sizes: DatasetSizes, config: ModelConfig | None = None) -> None:
        config = config if config is not None else self.config_class()
        if not isinstance(config, self.config_class):
            raise ConfigError(f"{type(self).__name__} needs a {self.config_class.__name__}, "
                              f"got {type(config).__name__}.", f"Pass {self.config_class.__name__}(...).")
        self.sizes = sizes
        self.config = config
        self.report: FitReport | None = None
        self._seen: sp.csr_matrix | None = None
        #: Weights as they were handed from one phase to the next (name -> copy of the array at the
        #: moment of transfer). Transfer methods fill it; diagnostics compare it with get_state().
        self.transferred: dict[str, np.ndarray] = {}

    # ---------------------------------------------------------------- training
    def fit(self, dataset: CrossDomainDataset, *, verbose: bool = False) -> FitReport:
        """Train on ``dataset`` (its train parts; valid only for model selection). Returns a report."""
        if dataset.sizes != self.sizes:
            raise DataError(f"The model was built for {self.sizes} but the data set has {dataset.sizes}.",
                            "Build the model from dataset.sizes.")
        self._seen = dataset.matrix("target", "known")
        self.report = self._fit(dataset, verbose=verbose) or FitReport()
        return self.report

    @abstractmethod
    def _fit(self, dataset: CrossDomainDataset, *, verbose: bool) -> FitReport | None:
        """Method-specific training."""

    def refit_options(self) -> dict[str, Any]:
        """Config changes that freeze what :meth:`fit` chose on the validation split.

        The sound protocol selects on validation, then refits on train + validation with the choices
        fixed (there is no validation left to choose on): the epochs of each validated phase
        (:attr:`refit_epochs`) and whatever else a method picks itself (e.g. cross-itemknn's source
        weight). Methods that choose nothing return ``{}``.

        Raises:
            ConfigError: The model has not been trained.
        """
        if self.report is None:
            raise ConfigError(f"{type(self).__name__} has not been trained, so nothing was chosen yet.",
                              "Call fit(dataset) first.")
        out: dict[str, Any] = {}
        for field_name, (phase, patience) in self.refit_epochs.items():
            best = validated_best_epoch(self.report.history, phase)
            if best:
                out[field_name], out[patience] = best, 0
        return out

    # ---------------------------------------------------------------- scoring
    def score(self, users, items=None) -> np.ndarray:
        """Scores of target items for ``users`` (higher = more relevant).

        Args:
            users: 1-D array of user indices.
            items: ``None`` for all target items (returns ``(n_users, n_target_items)``); a 1-D array
                for the same items for every user (``(n_users, len(items))``); or a 2-D array with one row
                of candidate items per user (``(n_users, n_candidates)``).
        """
        users = self._check_ids(users, self.sizes.n_users, "user")
        if items is None:
            return self._score_users(users)
        items = np.asarray(items, dtype=np.int64)
        self._check_ids(items.ravel(), self.sizes.n_target_items, "item")
        if items.ndim == 2:
            if items.shape[0] != len(users):
                raise ValueError("a 2-D items array needs one row per user")
            return self._score_candidates(users, items)
        return self._score_users(users)[:, items]

    @abstractmethod
    def _score_users(self, users: np.ndarray) -> np.ndarray:
        """Scores of all target items, shape ``(len(users), n_target_items)``, float32."""

    def _score_candidates(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        """Scores of one candidate row per user; override when a cheaper path exists."""
        return np.take_along_axis(self._score_users(users), items, axis=1)

    def recommend(self, users, k: int = 10, exclude_seen: bool = True) -> np.ndarray:
        """Top-``k`` target item indices per user, best first.

        Returns:
            An int64 array of shape ``(len(users), k)`` in the common case. When fewer than ``k``
            items are left to recommend (the target has fewer items, or ``exclude_seen`` removes so
            many that fewer than ``k`` remain), there are fewer columns: as many as the user with the
            most items left has, and the rows of users with fewer end in ``-1`` (no item). Drop the
            padding with ``row[row >= 0]``; never index scores with it (``-1`` would pick the last item).
        """
        users = self._check_ids(users, self.sizes.n_users, "user")
        if k < 1:
            raise ConfigError(f"k must be at least 1, got {k}.", "Pass --k 10, for example.")
        k = min(k, self.sizes.n_target_items)
        scores = self._score_users(users).astype(np.float32, copy=True)
        seen = np.zeros(scores.shape, bool)
        if exclude_seen and self._seen is not None:
            sub = self._seen[users]
            rows = np.repeat(np.arange(len(users)), np.diff(sub.indptr))
            seen[rows, sub.indices] = True
        top, taken = select_top(scores, seen, k)
        if not taken.any():
            return top
        top[taken] = -1
        return top[:, :int((~taken).sum(axis=1).max(initial=0))]

    @staticmethod
    def _check_ids(ids, n: int, kind: str) -> np.ndarray:
        arr = np.atleast_1d(np.asarray(ids))
        if arr.dtype.kind not in "iu":
            raise UnknownIdError(f"{kind} ids must be integer indices, got dtype {arr.dtype}.",
                                 "Translate raw ids with dataset.users.index(...) first.")
        if arr.size and (arr.min() < 0 or arr.max() >= n):
            bad = arr[(arr < 0) | (arr >= n)][0]
            raise UnknownIdError(f"Unknown {kind} index {int(bad)}: the model knows {n} {kind}s.",
                                 f"Pass {kind} indices in [0, {n}).")
        return arr.astype(np.int64)

    # ---------------------------------------------------------------- persistence
    @abstractmethod
    def get_state(self) -> dict[str, np.ndarray]:
        """All learned arrays by name (what :meth:`save` writes)."""

    @abstractmethod
    def set_state(self, state: dict[str, np.ndarray]) -> None:
        """Restore arrays produced by :meth:`get_state`."""

    def save(self, path: str | Path) -> None:
        """Write config, sizes, seen items and weights to ``path`` (a folder)."""
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        meta = {"method": self.name, "config": asdict(self.config), "sizes": asdict(self.sizes)}
        (path / "model.json").write_text(json.dumps(meta, indent=2))
        state = dict(self.get_state())
        if self._seen is not None:
            state["__seen_indptr"], state["__seen_indices"] = self._seen.indptr, self._seen.indices
        np.savez(path / "weights.npz", **state)

    @classmethod
    def load(cls, path: str | Path) -> "Recommender":
        """Rebuild a model written by :meth:`save`."""
        path = Path(path)
        meta = json.loads((path / "model.json").read_text())
        if meta["method"] != cls.name:
            raise ConfigError(f"{path} holds a {meta['method']!r} model, not {cls.name!r}.",
                              f"Load it with the {meta['method']!r} class.")
        model = cls(DatasetSizes(**meta["sizes"]), cls.config_class(**meta["config"]))
        with np.load(path / "weights.npz", allow_pickle=False) as npz:
            state = {k: npz[k] for k in npz.files}
        if "__seen_indptr" in state:
            indptr, indices = state.pop("__seen_indptr"), state.pop("__seen_indices")
            model._seen = sp.csr_matrix((np.ones(len(indices), np.float32), indices, indptr),
                                        shape=(model.sizes.n_users, model.sizes.n_target_items))
        model.set_state(state)
        return model
