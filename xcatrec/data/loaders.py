"""Load a named data set or two interaction files into a split :class:`CrossDomainDataset`.

Both loaders read and clean each domain, give users one index space across the two domains (by raw
id) and items one index space per domain, apply a split, and carve a target validation split:

* ``"published"``: the data set's own train/test files (Amazon DisenCDR: ``train.txt`` / ``test.txt``).
* ``"loo"``, ``"random"``, ``"temporal"``: see :mod:`xcatrec.data.splits` (both domains are split).
* ``"cold-start"``: every row of both domains is pooled into train, then a fraction ``beta`` of the
  overlapping users have their whole target history hidden as the target test set.

Then, by default (``leaks="remove"``), source rows that duplicate a held-out target purchase of the same
user (one product listed in both categories) are dropped: see :mod:`xcatrec.data.leaks`.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd

from xcatrec.data.cleaning import clean
from xcatrec.data.download import fetch
from xcatrec.data.leaks import remove_leaks
from xcatrec.data.readers import read_interactions
from xcatrec.data.registry import DatasetSpec, DomainSource, get_spec
from xcatrec.data.splits import (SPLITS, cold_start, leave_one_out, random_split, rebuild, temporal_split,
                                  unsplit)
from xcatrec.data.types import CrossDomainDataset, Domain, Interactions, Vocab
from xcatrec.data.validation import carve_validation
from xcatrec.errors import ConfigError, DataError

Parts = dict[str, pd.DataFrame]  # "train" (and optionally "test") -> cleaned frame


def _interactions(frame: pd.DataFrame, users: np.ndarray, items: np.ndarray, cols: set[str]) -> Interactions:
    return Interactions(users, items,
                        frame["rating"].to_numpy(np.float32) if "rating" in cols else None,
                        frame["timestamp"].to_numpy(np.int64) if "timestamp" in cols else None)


def factorize_many(columns: list[pd.Series]) -> tuple[np.ndarray, np.ndarray]:
    """Codes (in order of first appearance) and raw ids of several id columns taken together.

    Categorical columns (as the readers return) are combined through their categories, which is much
    faster than hashing every row's string again.
    """
    codes, cats = [], []
    for col in columns:
        if isinstance(col.dtype, pd.CategoricalDtype):
            c, u = col.cat.codes.to_numpy(np.int64), col.cat.categories
        else:
            c, u = pd.factorize(col.astype(str))
        codes.append(c)
        cats.append(np.asarray(u, dtype=object))
    remap, uniques = pd.factorize(np.concatenate(cats))
    offsets = np.cumsum([0] + [len(u) for u in cats])
    merged = np.concatenate([remap[o + c] for o, c in zip(offsets, codes)])
    final, used = pd.factorize(merged)  # integer factorize: order of first appearance
    return final, np.asarray(uniques, dtype=object)[used]


def build_dataset(name: str, source: tuple[str, Parts], target: tuple[str, Parts], *,
                  split: str = "none", info: dict | None = None) -> CrossDomainDataset:
    """Index cleaned frames: users by raw id across both domains, items per domain (vectorised).

    Args:
        name: Data set name.
        source: ``(domain name, {"train": frame[, "test": frame]})``.
        target: The same for the target domain.
        split: Split name to record (``"published"`` when test frames are given, else ``"none"``).
        info: Provenance stored in the data set.
    """
    parts = [(role, part, frame) for role, (_, frames) in zip(("source", "target"), (source, target))
             for part, frame in frames.items()]
    user_codes, user_raw = factorize_many([f["user"] for _, _, f in parts])
    bounds = np.cumsum([0] + [len(f) for _, _, f in parts])
    domains = {}
    for role, (dom_name, _) in zip(("source", "target"), (source, target)):
        mine = [(i, part, f) for i, (r, part, f) in enumerate(parts) if r == role]
        item_codes, item_raw = factorize_many([f["item"] for _, _, f in mine])
        cols = set.intersection(*(set(f.columns) for _, _, f in mine))
        item_bounds = np.cumsum([0] + [len(f) for _, _, f in mine])
        inter = {part: _interactions(f, user_codes[bounds[i]:bounds[i + 1]],
                                     item_codes[item_bounds[j]:item_bounds[j + 1]], cols)
                 for j, (i, part, f) in enumerate(mine)}
        train = inter["train"]
        empty = train.subset(np.zeros(len(train), bool))
        domains[role] = Domain(dom_name, Vocab(item_raw, "item"), train, empty,
                               inter.get("test", empty))
    return CrossDomainDataset(name, Vocab(user_raw, "user"), domains["source"],
                              domains["target"], split, info=dict(info or {}))


def apply_split(ds: CrossDomainDataset, split: str, *, beta: float = 0.2, seed: int = 0,
                valid: bool = True) -> CrossDomainDataset:
    """Split ``ds`` by name (see the module docstring) and optionally carve target validation."""
    if split not in SPLITS:
        raise ConfigError(f"Unknown split {split!r}.", f"Use one of {list(SPLITS)}.")
    if split == "published":
        if ds.split != "published":
            raise ConfigError(f"Data set {ds.name!r} has no published split.",
                              f"Use one of {[s for s in SPLITS if s != 'published']}.")
    elif split == "loo":
        ds = leave_one_out(ds, seed=seed)
    elif split == "random":
        ds = random_split(ds, seed=seed)
    elif split == "temporal":
        ds = temporal_split(ds, seed=seed)
    else:
        ds = cold_start(unsplit(ds), beta=beta, seed=seed)
    ds = carve_validation(ds, seed=seed) if valid else ds
    return CrossDomainDataset(ds.name, ds.users, ds.source, ds.target, ds.split, ds.cold_users,
                              {**ds.info, "seed": seed, "valid": "loo" if valid else "none",
                               **({"beta": beta} if split == "cold-start" else {})})


def _roles(spec: DatasetSpec, source: str | None, target: str | None) -> tuple[DomainSource, DomainSource]:
    first, second = spec.domains
    src = spec.domain(source) if source is not None else None
    tgt = spec.domain(target) if target is not None else None
    src = src or (first if tgt is not first else second)
    tgt = tgt or (second if src is first else first)
    if src is tgt:
        raise ConfigError(f"source and target are both {src.name!r}.",
                          f"Use two different domains of {spec.name!r}: {list(spec.domain_names)}.")
    return src, tgt


def _read_clean(path: Path, spec_like: dict, what: str) -> tuple[pd.DataFrame, dict]:
    frame = read_interactions(path)
    if spec_like.get("implicit") and "rating" in frame.columns:
        frame = frame.drop(columns="rating")
    frame, report = clean(frame, rating_range=spec_like.get("rating_range"),
                          implicit_threshold=spec_like.get("implicit_threshold"),
                          min_count=spec_like.get("min_count"))
    if frame.empty:
        raise DataError(f"The {what} domain ({path}) has no interactions left after cleaning "
                        f"({dict(zip(report.reason, report.rows))}).",
                        "Check the file, or lower implicit_threshold / min_count.")
    return frame, {r: int(n) for r, n in zip(report.reason, report.rows) if n}


LEAKS = ("remove", "keep")


def _check_leaks(leaks: str) -> None:
    if leaks not in LEAKS:
        raise ConfigError(f"Unknown leaks option {leaks!r}.",
                          "Use leaks='remove' (drop source twins of held-out target rows, the default) "
                          "or leaks='keep'.")


def _handle_leaks(ds: CrossDomainDataset, leaks: str) -> CrossDomainDataset:
    """Remove cross-listing leaks (``"remove"``) or record that they were kept (``"keep"``)."""
    if leaks == "remove":
        return remove_leaks(ds)
    return rebuild(ds, leaks="kept")


def load_dataset(name: str, *, source: str | None = None, target: str | None = None, split: str | None = None,
                 beta: float = 0.2, seed: int = 0, data_dir: str | os.PathLike | None = None, valid: bool = True,
                 progress: bool = False, leaks: str = "remove", **synthetic_options) -> CrossDomainDataset:
    """Load a registered data set (see :data:`xcatrec.data.DATASETS`) with a split.

    Args:
        name: ``"amazon-elec-cloth"``, ``"amazon-elec-phone"``, ``"douban-book-music"`` or ``"synthetic"``.
        source: Source domain name (default: the data set's first domain, or the one that is not ``target``).
        target: Target domain name (default: the other domain).
        split: ``None`` (the published split if the data set has one, else ``"loo"``), or one of
            ``"published"``, ``"loo"``, ``"random"``, ``"temporal"``, ``"cold-start"``.
        beta: Fraction of overlapping users made cold (``split="cold-start"`` only).
        seed: Seed of every random choice (split, cold users, validation, synthetic generator).
        data_dir: Folder holding a copy in the standard layout (see :func:`xcatrec.data.fetch`).
        valid: Carve a target validation split (one training row per target user) from train.
        progress: Show download progress bars.
        leaks: ``"remove"``: drop the source rows that duplicate a held-out (test or valid) target row of
            the same user under another id (cross-listed products, see :mod:`xcatrec.data.leaks`);
            ``"keep"``: leave them. ``info["leaks"]`` records which.
        **synthetic_options: Fields of :class:`xcatrec.data.SyntheticConfig` (``rho=0.5`` ...), only
            for ``"synthetic"``.

    Raises:
        ConfigError: Unknown data set, domain, split or option.
        DownloadError: The files cannot be obtained or fail their checksum.
        DataError: A domain is empty.
    """
    spec = get_spec(name)
    _check_leaks(leaks)
    src, tgt = _roles(spec, source, target)
    if split is not None and split not in SPLITS:
        raise ConfigError(f"Unknown split {split!r}.", f"Use one of {list(SPLITS)}.")
    if name == "synthetic":
        from xcatrec.data.synthetic import SyntheticConfig, make_synthetic

        ds = make_synthetic(SyntheticConfig.from_options(seed=seed, **synthetic_options)).dataset
        ds = ds.swapped() if src.name == "target" else ds
        ds = apply_split(unsplit(ds), split or "loo", beta=beta, seed=seed, valid=valid)
        return _handle_leaks(ds, leaks)
    if synthetic_options:
        raise ConfigError(f"Unknown option(s) {sorted(synthetic_options)} for data set {name!r}.",
                          "Options like rho or n_users apply only to load_dataset('synthetic', ...).")
    if split == "published" and not spec.has_published_split:
        raise ConfigError(f"Data set {name!r} has no published split.",
                          f"Use one of {[s for s in SPLITS if s != 'published']}.")
    root = fetch(name, data_dir=data_dir, progress=progress)
    options = {"implicit": spec.implicit, "rating_range": spec.rating_range}
    published = spec.has_published_split
    roles, report = [], {}
    for role, dom in (("source", src), ("target", tgt)):
        parts = {}
        for part, rel in (("train", dom.train), ("test", dom.test if published else None)):
            if rel is not None:
                parts[part], report[f"{dom.name}/{part}"] = _read_clean(root / rel, options, role)
        roles.append((dom.name, parts))
    info = {"dataset": name, "source": src.name, "target": tgt.name, "root": str(root), "cleaning": report}
    ds = build_dataset(name, roles[0], roles[1], split="published" if published else "none", info=info)
    ds = apply_split(ds, split or ("published" if published else "loo"), beta=beta, seed=seed, valid=valid)
    return _handle_leaks(ds, leaks)


def load_files(source_path: str | os.PathLike, target_path: str | os.PathLike, *, split: str = "loo",
               beta: float = 0.2, seed: int = 0, name: str = "files", implicit_threshold: float | None = None,
               min_count: int | None = None, valid: bool = True, leaks: str = "remove") -> CrossDomainDataset:
    """Load two interaction files (source and target category) of the same users.

    Users are aligned across the files by raw id; users present in only one file are kept (they have
    rows in one domain only). Each file is read with :func:`xcatrec.data.readers.read_interactions`
    and cleaned with :func:`xcatrec.data.clean`; the domains are named ``"source"`` and ``"target"``.

    Args:
        source_path: Interaction file of the source category.
        target_path: Interaction file of the target category.
        split: ``"loo"``, ``"random"``, ``"temporal"`` or ``"cold-start"``.
        beta: Fraction of overlapping users made cold (``split="cold-start"`` only).
        seed: Seed of every random choice.
        name: Name of the data set.
        implicit_threshold: Keep rows rated at least this, as implicit feedback.
        min_count: k of an iterative k-core filter applied to each file.
        valid: Carve a target validation split from train.
        leaks: ``"remove"`` (default) or ``"keep"`` the source twins of held-out target rows, as in
            :func:`load_dataset`.

    Raises:
        DataError: A file is missing, empty or malformed, a domain is empty after cleaning, or no user
            id occurs in both files.
        ConfigError: Unknown split.
    """
    if split not in SPLITS or split == "published":
        raise ConfigError(f"Unknown split {split!r} for two files.", f"Use one of {list(SPLITS[1:])}.")
    _check_leaks(leaks)
    options = {"implicit_threshold": implicit_threshold, "min_count": min_count}
    src, src_report = _read_clean(Path(source_path), options, "source")
    tgt, tgt_report = _read_clean(Path(target_path), options, "target")
    if len(np.intersect1d(np.asarray(src["user"].unique(), dtype=str),
                          np.asarray(tgt["user"].unique(), dtype=str))) == 0:
        raise DataError(f"No user id occurs in both {source_path} and {target_path}, so nothing can be "
                        "transferred between them.",
                        "Use the same user ids in both files (the first column), e.g. the same customer "
                        "numbers, or check that the files belong together.")
    info = {"dataset": name, "source": str(source_path), "target": str(target_path),
            "cleaning": {"source": src_report, "target": tgt_report}}
    ds = build_dataset(name, ("source", {"train": src}), ("target", {"train": tgt}), info=info)
    return _handle_leaks(apply_split(ds, split, beta=beta, seed=seed, valid=valid), leaks)
