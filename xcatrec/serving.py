"""Train once, serve many: a self-contained model folder and the recommendations it answers by raw id.

:func:`fit_for_serving` trains a method with the protocol of ``evaluate`` (selection, and with
``tune`` a search, on the target validation split only; see :func:`xcatrec.experiment.run_one`) and
then refits it, with those choices frozen, on every row of the data (train, validation and test:
a served model has nothing left to hold out). :func:`save_folder` writes the folder:

* ``model.json`` and ``weights.npz``: :meth:`~xcatrec.core.base.Recommender.save` (JSON and NumPy
  arrays, no pickle);
* ``serving.npz``: the raw-id vocabularies of the users and of both categories' items, every user's
  items in each category (CSR arrays) and the target items' popularity;
* ``serving.json``, written last: format and package version, method and chosen options, the data
  fingerprint, the command that made the folder and the SHA-256 of every other file.

The folder is built in a temporary sibling folder and renamed into place, so a failed fit leaves no
half-written folder and never damages an existing one. :meth:`ServedModel.load` checks the format,
the version and every checksum before it reads an array, reads arrays with ``allow_pickle=False``
and looks the method up in :data:`xcatrec.models.METHODS`: nothing in the folder is ever executed.
The checksums catch corrupt or edited files; they are not a signature against a deliberate forgery.

How a user is served (the ``served`` column of :meth:`ServedModel.recommend`):

* ``"model"``: the user has target rows; the method scores them.
* ``"source-history"``: the user has source rows only and the method transfers (it scores such a
  user from the source history, see :func:`cold_start_path`).
* ``"popularity"``: an unknown raw id, or a source-only user of a method that reads the target
  category alone (its score for a user without target rows would mean nothing): the target items
  ranked by their number of buyers.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import scipy.sparse as sp

from xcatrec import __version__
from xcatrec.core.base import select_top
from xcatrec.data.download import file_sha256
from xcatrec.data.types import CrossDomainDataset, Vocab
from xcatrec.errors import ConfigError, DataError
from xcatrec.names import TRANSFER

#: What ``serving.json`` says a folder is, and the layout version this code writes and reads.
FORMAT, FORMAT_VERSION = "xcatrec-model", 1
META_FILE, DATA_FILE = "serving.json", "serving.npz"
#: Files every folder must hold (besides :data:`META_FILE`), each with its checksum.
REQUIRED_FILES = ("model.json", "weights.npz", DATA_FILE)
#: The ways a user can be served, in the order the CLI counts them.
SERVED = ("model", "source-history", "popularity")
#: Users scored at once by default: bounds the ``users x target items`` score matrix in memory.
BATCH_USERS = 256


def cold_start_path(method: str, config: Any) -> str:
    """How ``method`` serves a user with source rows and no target rows: ``"source-history"`` or
    ``"popularity"``.

    The transfer methods (:data:`xcatrec.names.TRANSFER`) score such a user from the source history
    (cross-itemknn and source-only through source-item neighbours, CMF, joint-ials and shared-bottom
    through the shared user factor, EMCDR and PTUPCDR through the learned bridge, CoNet and DANN
    through the source representation, finetune through the copied user embedding). Fine-tuning that
    copies no user embedding (``transfer`` without ``"user_embedding"``) ranks them by item bias only,
    and the target-only methods give them an untrained or empty profile: both fall back to popularity.
    """
    if method not in TRANSFER:
        return "popularity"
    if method == "finetune" and "user_embedding" not in tuple(getattr(config, "transfer", ())):
        return "popularity"
    return "source-history"


def content_fingerprint(dataset: CrossDomainDataset) -> str:
    """SHA-256 of a loaded data set: its raw-id vocabularies and every row of every part, in order."""
    digest = hashlib.sha256()
    for vocab in (dataset.users, dataset.source.items, dataset.target.items):
        digest.update("\n".join(vocab.raw.tolist()).encode("utf-8") + b"\0")
    for dom in (dataset.source, dataset.target):
        for part in (dom.train, dom.valid, dom.test):
            for array in (part.users, part.items, part.ratings, part.timestamps):
                digest.update(b"-" if array is None else np.ascontiguousarray(array).tobytes())
    return digest.hexdigest()


def fit_for_serving(dataset: CrossDomainDataset, method: str, options: dict[str, Any], *, seed: int = 0,
                    tune: int | None = None, verbose: bool = False):
    """Select on validation as ``evaluate`` does, then refit on all rows with the choices frozen.

    Args:
        dataset: The data set as ``evaluate`` loads it (with its target validation split).
        method: A registered method name.
        options: Config fields given by the user (``--option``).
        seed: Seed of the models and of the search.
        tune: Trials of the hyper-parameter search (``None``: the options as given).
        verbose: Progress on stderr.

    Returns:
        ``(model, full, training)``: the refit model, the data it was refit on (every row in train)
        and a dict of what was chosen and what it cost, for ``serving.json``.
    """
    from xcatrec.data import unsplit
    from xcatrec.experiment import VALID_USERS, log
    from xcatrec.models import make_model
    from xcatrec.tuning import tune as run_search

    start = time.perf_counter()
    log(f"[{method}] selecting on the validation split of {dataset.name} "
        f"({dataset.source.name} -> {dataset.target.name})", verbose=verbose)
    if tune is not None:
        search, model = run_search(method, dataset, trials=tune, options=options, seed=seed,
                                   valid_users=VALID_USERS, verbose=verbose)
        options = dict(search.options)
    else:
        model = make_model(method, dataset.sizes, seed=seed, **options)
        model.fit(dataset, verbose=verbose)
    selection_seconds = time.perf_counter() - start
    frozen = model.refit_options() if len(dataset.target.valid) else {}
    full = unsplit(dataset)
    tic = time.perf_counter()
    model = make_model(method, dataset.sizes, seed=seed, **{**options, **frozen})
    model.fit(full, verbose=verbose)
    refit_seconds = time.perf_counter() - tic
    log(f"[{method}] refit on all {len(full.target.train)} target and {len(full.source.train)} source rows "
        "with " + (", ".join(f"{k}={v}" for k, v in frozen.items()) or "the same settings")
        + f" ({refit_seconds:.1f} s)", verbose=verbose)
    training = {"seed": seed, "tuned": tune or 0, "options": options, "frozen": frozen,
                "selection_seconds": selection_seconds, "refit_seconds": refit_seconds,
                "refit_on": "all rows (train + validation + test)"}
    return model, full, training


def check_save_path(path: str | os.PathLike, *, overwrite: bool = False) -> Path:
    """``path`` as a :class:`Path` a model folder may be written to, checked before any training.

    Raises:
        ConfigError: The parent folder is missing or not writable, ``path`` is a file, a folder that
            is not a model folder (it is never replaced), or a model folder without ``overwrite``.
    """
    path = Path(path).expanduser()
    parent = Path(os.path.abspath(path)).parent
    if not parent.is_dir():
        raise ConfigError(f"The folder {parent} of --save {str(path)!r} does not exist.", "Create it or pick another path.")
    if not os.access(parent, os.W_OK):
        raise ConfigError(f"--save {str(path)!r}: the folder {parent} is not writable.", "Pick a folder you can write to.")
    if path.exists() or path.is_symlink():
        if not path.is_dir() or path.is_symlink():
            raise ConfigError(f"--save {str(path)!r} exists and is not a folder.", "Give the path of a new folder.")
        if any(path.iterdir()) and not (path / META_FILE).is_file():
            raise ConfigError(f"--save {str(path)!r} is a folder with files that is not an xcatrec model folder; "
                              "it is never replaced.", "Give the path of a new or empty folder.")
        if (path / META_FILE).is_file() and not overwrite:
            raise ConfigError(f"--save {str(path)!r} already holds a model.",
                              "Pass --overwrite to replace it (only once the new one is complete), or pick another folder.")
    return path


def _csr_arrays(matrix: sp.csr_matrix, name: str) -> dict[str, np.ndarray]:
    return {f"{name}_indptr": matrix.indptr.astype(np.int64), f"{name}_indices": matrix.indices.astype(np.int64)}


def save_folder(model, full: CrossDomainDataset, path: str | os.PathLike, *, command: str,
                data: dict[str, Any], training: dict[str, Any], overwrite: bool = False) -> Path:
    """Write the model folder for ``model`` fitted on ``full``, atomically (see the module docstring).

    Args:
        model: The fitted :class:`~xcatrec.core.base.Recommender`.
        full: The data it was fitted on (vocabularies and histories are taken from it).
        path: The folder to create (or, with ``overwrite``, replace).
        command: The command line that made it.
        data: Where the data came from (name, domains, files and their digests, loading options).
        training: What :func:`fit_for_serving` returns as ``training``.
        overwrite: Replace an existing model folder.
    """
    path = check_save_path(path, overwrite=overwrite)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".tmp", dir=Path(os.path.abspath(path)).parent))
    try:
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o777 & ~umask)  # mkdtemp makes it private; the folder is to be shared like any other
        model.save(tmp)
        target = full.matrix("target", "train")
        arrays = {"users": full.users.raw, "source_items": full.source.items.raw,
                  "target_items": full.target.items.raw,
                  **_csr_arrays(target, "target"), **_csr_arrays(full.matrix("source", "train"), "source"),
                  "popularity": np.asarray(target.sum(axis=0), np.float32).ravel()}
        np.savez(tmp / DATA_FILE, **arrays)
        files = {p.name: file_sha256(p) for p in sorted(tmp.iterdir()) if p.is_file()}
        meta = {"format": FORMAT, "format_version": FORMAT_VERSION, "xcatrec_version": __version__,
                "method": model.name, "cold_start": cold_start_path(model.name, model.config),
                "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "command": command,
                "data": {**data, "users": full.n_users, "source_items": full.source.n_items,
                         "target_items": full.target.n_items, "source_rows": len(full.source.train),
                         "target_rows": len(full.target.train), "content_sha256": content_fingerprint(full)},
                "training": training, "files": files}
        (tmp / META_FILE).write_text(json.dumps(meta, indent=1, default=str) + "\n", encoding="utf-8")
        _move_into_place(tmp, path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return path


def _move_into_place(tmp: Path, path: Path) -> None:
    """Rename the finished ``tmp`` to ``path``; an existing ``path`` is moved aside first and deleted
    only after the new folder is in place (restored if the rename fails)."""
    old = None
    if path.exists():
        old = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".old", dir=tmp.parent))
        old.rmdir()
        os.replace(path, old)
    try:
        os.replace(tmp, path)
    except BaseException:
        if old is not None:
            os.replace(old, path)
        raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def _compatible(saved: str, current: str) -> bool:
    """Whether a folder written by xcatrec ``saved`` may be read by ``current``: the same major
    version, and below 1.0 the same minor version too (where any minor release may change a model)."""
    def parts(version: str) -> tuple[int, ...]:
        return tuple(int(p) if p.isdigit() else -1 for p in str(version).split(".")[:2])
    a, b = parts(saved), parts(current)
    return a[:1] == b[:1] and (b[0] != 0 or a[:2] == b[:2])


def top_k(scores: np.ndarray, seen: sp.csr_matrix | None, k: int) -> tuple[np.ndarray, np.ndarray]:
    """The ``k`` best items per row of ``scores`` and their scores, leaving out ``seen`` items.

    The selection of :meth:`~xcatrec.core.base.Recommender.recommend` (both call
    :func:`~xcatrec.core.base.select_top`, so a loaded folder ranks exactly as the fitted model did),
    from one scoring pass; a row with fewer than ``k`` items left ends in ``-1`` (no item) with score
    ``nan``.
    """
    k = min(k, scores.shape[1])
    raw = np.array(scores, dtype=np.float32, copy=True)
    mask = np.zeros(raw.shape, bool)
    if seen is not None:
        mask[np.repeat(np.arange(seen.shape[0]), np.diff(seen.indptr)), seen.indices] = True
    top, taken = select_top(raw.copy(), mask, k)
    values = np.take_along_axis(raw, top, axis=1)
    top[taken], values[taken] = -1, np.nan
    return top, values


@dataclass(frozen=True)
class Served:
    """One user's answer: raw user id, how they were served (:data:`SERVED`), raw item ids, scores."""

    user: str
    served: str
    items: np.ndarray
    scores: np.ndarray


@dataclass(frozen=True)
class ServedModel:
    """A model folder loaded for serving by raw id (build it with :meth:`load`).

    Args:
        model: The fitted recommender.
        meta: The folder's ``serving.json``.
        users: Raw user ids.
        source_items: Raw item ids of the source category.
        target_items: Raw item ids of the target category (what is recommended).
        target_seen: Users x target items the user already has (left out of their recommendations).
        source_seen: Users x source items: who has a source history.
        popularity: Buyers per target item (the fallback ranking).
    """

    model: Any
    meta: dict
    users: Vocab
    source_items: Vocab
    target_items: Vocab
    target_seen: sp.csr_matrix
    source_seen: sp.csr_matrix
    popularity: np.ndarray

    @property
    def method(self) -> str:
        return self.model.name

    @property
    def cold_start(self) -> str:
        """How a user with source rows only is served (see :func:`cold_start_path`)."""
        return cold_start_path(self.model.name, self.model.config)

    @classmethod
    def load(cls, path: str | os.PathLike) -> "ServedModel":
        """Check and load a folder written by :func:`save_folder`.

        Raises:
            ConfigError: The folder is missing, or holds a method this xcatrec does not know.
            DataError: It is not a model folder, comes from an incompatible format or package version,
                lacks a file, or a file does not match its checksum.
        """
        path = Path(path).expanduser()
        if not path.is_dir():
            what = "is not a folder" if path.exists() else "does not exist"
            raise ConfigError(f"Model folder {str(path)!r} {what}.",
                              f"Train one with: python -m xcatrec fit --dataset NAME --method M --save {path}")
        meta = _read_meta(path)
        refit = "Refit it with this xcatrec: " + str(meta.get("command") or "python -m xcatrec fit ... --save DIR")
        if meta.get("format_version") != FORMAT_VERSION:
            raise DataError(f"{path} holds model format version {meta.get('format_version')!r}; xcatrec "
                            f"{__version__} reads version {FORMAT_VERSION}.", refit)
        if not _compatible(str(meta.get("xcatrec_version")), __version__):
            raise DataError(f"{path} was written by xcatrec {meta.get('xcatrec_version')!r}, which this xcatrec "
                            f"{__version__} cannot read (folders move between releases of one minor version).", refit)
        from xcatrec.models import METHODS  # imports only this method's module (Keras for the Keras models)

        method = meta.get("method")
        if method not in METHODS:
            raise ConfigError(f"{path} holds a model of the unknown method {method!r}.",
                              f"Refit with one of this xcatrec's methods: {', '.join(sorted(METHODS))}.")
        _verify_files(path, meta.get("files"), refit)
        try:
            model = METHODS[method].load(path)
            with np.load(path / DATA_FILE, allow_pickle=False) as npz:
                arrays = {name: npz[name] for name in npz.files}
            users, src, tgt = (Vocab(arrays[n], kind) for n, kind in
                               (("users", "user"), ("source_items", "item"), ("target_items", "item")))
            n_users = len(users)
            target_seen = _csr(arrays, "target", (n_users, len(tgt)))
            source_seen = _csr(arrays, "source", (n_users, len(src)))
            popularity = np.asarray(arrays["popularity"], np.float32)
        except (KeyError, TypeError, ValueError) as exc:
            raise DataError(f"{path} cannot be read as a {method} model: {exc}.", refit) from None
        if (model.sizes.n_users, model.sizes.n_source_items, model.sizes.n_target_items) != (
                n_users, len(src), len(tgt)) or popularity.shape != (len(tgt),):
            raise DataError(f"{path}: the weights ({model.sizes}) and the vocabularies ({n_users} users, "
                            f"{len(src)} + {len(tgt)} items) do not belong together.", refit)
        return cls(model, meta, users, src, tgt, target_seen, source_seen, popularity)

    def route(self, raw_users: list[str]) -> tuple[np.ndarray, list[str]]:
        """Each raw id's user index (``-1`` when unknown) and how it is served (:data:`SERVED`)."""
        lookup = self.users._lookup
        index = np.array([lookup.get(str(u), -1) for u in raw_users], np.int64)
        has_target = np.diff(self.target_seen.indptr) > 0
        has_source = np.diff(self.source_seen.indptr) > 0
        served = ["popularity" if i < 0 else "model" if has_target[i] else
                  self.cold_start if has_source[i] else "popularity" for i in index]
        return index, served

    def recommend(self, raw_users, k: int = 10, *, exclude_seen: bool = True,
                  batch_size: int = BATCH_USERS) -> Iterator[Served]:
        """Top-``k`` target items of each raw user id, in input order, scored ``batch_size`` users at once.

        Items the user already has are left out unless ``exclude_seen`` is false; a user with fewer
        than ``k`` items left gets fewer.
        """
        if k < 1 or batch_size < 1:
            raise ConfigError(f"k and the batch size must be at least 1, got {k} and {batch_size}.",
                              "Pass --k 10, for example.")
        raw_users = [str(u) for u in raw_users]
        for start in range(0, len(raw_users), batch_size):
            chunk = raw_users[start:start + batch_size]
            index, served = self.route(chunk)
            answers: dict[int, tuple[np.ndarray, np.ndarray]] = {}
            for fallback in (False, True):
                rows = [j for j, how in enumerate(served) if (how == "popularity") == fallback]
                if not rows:
                    continue
                users = index[rows]
                if fallback:
                    scores = np.tile(self.popularity, (len(rows), 1))
                    seen = sp.diags((users >= 0).astype(np.float32)) @ self.target_seen[np.maximum(users, 0)]
                    seen = sp.csr_matrix(seen)
                    seen.eliminate_zeros()  # an unknown user has seen nothing
                else:
                    scores, seen = self.model.score(users), self.target_seen[users]
                top, values = top_k(scores, seen if exclude_seen else None, k)
                answers.update({j: (top[r], values[r]) for r, j in enumerate(rows)})
            for j, user in enumerate(chunk):
                top, values = answers[j]
                keep = top >= 0
                yield Served(user, served[j], self.target_items.to_raw(top[keep]), values[keep])


def _read_meta(path: Path) -> dict:
    """The folder's ``serving.json`` as a dict; :class:`DataError` when it is missing or not ours."""
    file = path / META_FILE
    if not file.is_file():
        raise DataError(f"{path} is not an xcatrec model folder: it has no {META_FILE}.",
                        "Point --model at a folder written by: python -m xcatrec fit ... --save DIR")
    try:
        meta = json.loads(file.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as exc:
        raise DataError(f"{file} is not valid JSON ({exc}).", "Copy the folder again, or refit it.") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise DataError(f"{file} does not describe an xcatrec model (format {FORMAT!r} expected).",
                        "Point --model at a folder written by: python -m xcatrec fit ... --save DIR")
    return meta


def _verify_files(path: Path, files: Any, refit: str) -> None:
    """Check that every file listed in ``serving.json`` is a plain file of the folder with its SHA-256."""
    if not isinstance(files, dict) or any(name not in files for name in REQUIRED_FILES):
        raise DataError(f"{path}/{META_FILE} lists no checksum for some of {list(REQUIRED_FILES)}.", refit)
    for name, digest in files.items():
        file = path / str(name)
        if Path(str(name)).name != name or name == META_FILE or not file.is_file() or file.is_symlink():
            raise DataError(f"{path} lacks the plain file {name!r} that {META_FILE} lists.",
                            "Copy the whole folder again, or " + refit[0].lower() + refit[1:])
        if file_sha256(file) != digest:
            raise DataError(f"{file} does not match its SHA-256 in {META_FILE}: it was changed or damaged after "
                            "fit wrote it, so it is not loaded.",
                            "Copy the folder again from where fit wrote it, or " + refit[0].lower() + refit[1:])


def _csr(arrays: dict[str, np.ndarray], name: str, shape: tuple[int, int]) -> sp.csr_matrix:
    indptr, indices = arrays[f"{name}_indptr"], arrays[f"{name}_indices"]
    return sp.csr_matrix((np.ones(len(indices), np.float32), indices, indptr), shape=shape)
