"""Seconds per epoch of BPR-MF on the Amazon Clothing target training rows, and whether it learns.

Reads the public DisenCDR files directly (ids there are already contiguous indices), holds out one
random training row per user (with at least two) as validation, trains BPR-MF with the default config
(or options given as ``key=value``), and prints seconds per epoch and full-ranking / sampled-999
NDCG@10 on the published test rows, next to popularity.

Usage::

    XCATREC_DATA=/path/to/data python benchmarks/bpr_epoch.py [--timing] [epochs=5] [dim=64] ...

``--timing`` trains on all training rows without validation and reports only seconds per epoch.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import numpy as np

from xcatrec.data.types import CrossDomainDataset, Domain, Interactions, Vocab


def _read(path: Path) -> tuple[np.ndarray, np.ndarray]:
    rows = np.loadtxt(path, dtype=np.int64, usecols=(0, 1), ndmin=2)
    return rows[:, 0], rows[:, 1]


def clothing_dataset(root: Path, seed: int = 0, valid: bool = True) -> CrossDomainDataset:
    """Electronics (source) x Clothing (target) with a random one-row-per-user validation split.

    With ``valid=False`` the validation split is empty (all training rows train; no early stopping).
    """
    tu, ti = _read(root / "cloth_electronic" / "train.txt")
    xu, xi = _read(root / "cloth_electronic" / "test.txt")
    su, si = _read(root / "electronic_cloth" / "train.txt")
    n_users = int(max(tu.max(), su.max(), xu.max())) + 1
    n_tgt, n_src = int(max(ti.max(), xi.max())) + 1, int(si.max()) + 1
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(tu))
    first = np.zeros(len(tu), bool)
    _, idx, counts = np.unique(tu[order], return_index=True, return_counts=True)
    first[order[idx[counts >= 2]]] = valid  # one random row of each user with >= 2 rows
    train = Interactions(tu, ti)
    target = Domain("clothing", Vocab.range(n_tgt, "item"), train.subset(~first), train.subset(first),
                    Interactions(xu, xi))
    source = Domain("electronics", Vocab.range(n_src, "item"), Interactions(su, si), Interactions.empty(),
                    Interactions.empty())
    return CrossDomainDataset("amazon-elec-cloth", Vocab.range(n_users, "user"), source, target, "bench")


def timing(root: Path, options: dict) -> None:
    """Training only (no validation split): wall and process CPU seconds per epoch after the first."""
    from xcatrec.models import make_model

    ds = clothing_dataset(root, valid=False)
    options = {"epochs": 6, **options}
    model = make_model("bpr-mf", ds.sizes, **options)
    tic, cpu = time.perf_counter(), time.process_time()
    report = model.fit(ds, verbose=True)
    wall, cpu = time.perf_counter() - tic, time.process_time() - cpu
    secs, cpus = report.history["seconds"], report.history["cpu_seconds"]
    print(f"bpr-mf training only on {len(ds.target.train)} rows, batch {model.config.batch_size}: "
          f"first epoch {secs[0]:.2f}s wall; later epochs median {np.median(secs[1:]):.2f}s wall "
          f"(min {min(secs[1:]):.2f}s), median {np.median(cpus[1:]):.2f}s process CPU; "
          f"whole fit {wall:.1f}s wall, {cpu:.1f}s CPU; load average {os.getloadavg()[0]:.1f} "
          f"on {os.cpu_count()} cores")


def main(argv: list[str]) -> None:
    from xcatrec.evaluation import evaluate
    from xcatrec.models import make_model

    root = Path(os.environ.get("XCATREC_DATA", "../shared/data")) / "amazon-disencdr"
    only_timing = "--timing" in argv
    argv = [a for a in argv if a != "--timing"]
    options = {}
    for arg in argv:
        key, value = arg.split("=", 1)
        options[key] = eval(value)  # noqa: S307 - a local benchmark script
    if only_timing:
        return timing(root, options)
    ds = clothing_dataset(root)
    print(f"users {ds.n_users}  items {ds.target.n_items}  train rows {len(ds.target.train)}  "
          f"valid {len(ds.target.valid)}  test {len(ds.target.test)}", file=sys.stderr)
    for method, opts in (("popularity", {}), ("bpr-mf", options)):
        model = make_model(method, ds.sizes, **opts)
        tic = time.perf_counter()
        report = model.fit(ds, verbose=True)
        wall = time.perf_counter() - tic
        full = evaluate(model, ds, protocol="full", ks=(10,))
        sampled = evaluate(model, ds, protocol="sampled-999", ks=(10,))
        secs = report.history.get("seconds", [report.seconds_per_epoch])
        later = np.mean(secs[1:]) if len(secs) > 1 else secs[0]
        print(f"{method:10s} epochs {report.epochs:3d} best {report.best_epoch:3d}  "
              f"s/epoch {report.seconds_per_epoch:.3f} (after the first: {later:.3f})  fit {wall:.1f}s  "
              f"full ndcg@10 {full['ndcg@10']:.4f}  hr@10 {full['hr@10']:.4f}  "
              f"sampled-999 ndcg@10 {sampled['ndcg@10']:.4f}")


if __name__ == "__main__":
    main(sys.argv[1:])
