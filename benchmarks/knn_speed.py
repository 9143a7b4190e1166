"""Fit and scoring time of the neighbourhood baselines on Amazon Electronics -> Clothing.

Reads the public DisenCDR training files directly with numpy (ids there are already contiguous
indices; ``electronic_cloth`` = Electronics, ``cloth_electronic`` = Clothing), holds out one random
Clothing training row per user (with at least two) as validation, and for ``itemknn``,
``cross-itemknn`` and ``source-only`` prints the median fit time over the repeats, the similarity
size, the time to score every user against all Clothing items (batches of 1024) and, with
``--quality``, full-ranking NDCG@10 / HR@10 on that validation split next to popularity (the test
rows are never read).

Usage::

    XCATREC_DATA=/path/to/data .venv/bin/python benchmarks/knn_speed.py [--repeats 3] [--quality]
        [--set shrink=10 --set normalize=false ...]
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import numpy as np

from xcatrec.data.types import CrossDomainDataset, Domain, Interactions, Vocab
from xcatrec.models.cross_itemknn import CrossItemKNN, CrossItemKNNConfig, SourceOnlyKNN
from xcatrec.models.itemknn import ItemKNN, ItemKNNConfig


def _read(path: Path) -> tuple[np.ndarray, np.ndarray]:
    rows = np.loadtxt(path, dtype=np.int64, usecols=(0, 1), ndmin=2)
    return rows[:, 0], rows[:, 1]


def electronics_to_clothing(root: Path, seed: int = 0) -> CrossDomainDataset:
    """Electronics (source) and Clothing (target) training rows; one Clothing row per user -> valid."""
    su, si = _read(root / "amazon-disencdr" / "electronic_cloth" / "train.txt")
    tu, ti = _read(root / "amazon-disencdr" / "cloth_electronic" / "train.txt")
    n_users = int(max(su.max(), tu.max())) + 1
    order = np.random.default_rng(seed).permutation(len(tu))
    order = order[np.argsort(tu[order], kind="stable")]  # grouped by user, random within a user
    first = np.r_[True, tu[order][1:] != tu[order][:-1]]
    valid = np.zeros(len(tu), bool)
    valid[order[first & (np.bincount(tu)[tu[order]] >= 2)]] = True
    target_rows = Interactions(tu, ti)
    source = Domain("source", Vocab.range(int(si.max()) + 1, "item"), Interactions(su, si),
                    Interactions.empty(), Interactions.empty())
    target = Domain("target", Vocab.range(int(ti.max()) + 1, "item"), target_rows.subset(~valid),
                    target_rows.subset(valid), Interactions.empty())
    return CrossDomainDataset("amazon-elec-cloth", Vocab.range(n_users, "user"), source, target, "bench")


def _parse(options: list[str]) -> dict:
    out = {}
    for opt in options:
        key, value = opt.split("=", 1)
        low = value.lower()
        if low in ("true", "false"):
            out[key] = low == "true"
        else:
            out[key] = value if key == "weighting" else int(value) if key == "k" else float(value)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--quality", action="store_true", help="also NDCG@10 on the carved validation rows")
    parser.add_argument("--set", action="append", default=[], help="config field=value, e.g. shrink=10")
    args = parser.parse_args()
    root = Path(os.environ.get("XCATREC_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))
    start = time.perf_counter()
    ds = electronics_to_clothing(root)
    print(f"read {len(ds.source.train)} Electronics + {len(ds.target.train)} Clothing train rows "
          f"({ds.sizes}) in {time.perf_counter() - start:.2f} s; {len(ds.target.valid)} valid rows")
    options = _parse(args.set)
    models = [(ItemKNN, ItemKNNConfig(**{k: v for k, v in options.items() if k != "source_weight"})),
              (CrossItemKNN, CrossItemKNNConfig(**options)), (SourceOnlyKNN, CrossItemKNNConfig(**options))]
    if args.quality:
        from xcatrec.evaluation import evaluate
        from xcatrec.models.popularity import Popularity

        pop = Popularity(ds.sizes)
        pop.fit(ds)
        res = evaluate(pop, ds, ks=(10,), part="valid")
        print(f"{'popularity':14s} valid ndcg@10 {res['ndcg@10']:.4f} hr@10 {res['hr@10']:.4f}")
    users = np.arange(ds.n_users)
    for cls, config in models:
        times = []
        for _ in range(args.repeats):
            model = cls(ds.sizes, config)
            tic = time.perf_counter()
            model.fit(ds)
            times.append(time.perf_counter() - tic)
        tic = time.perf_counter()
        for lo in range(0, len(users), 1024):
            model.score(users[lo:lo + 1024])
        score_s = time.perf_counter() - tic
        line = (f"{cls.name:14s} fit median {np.median(times):.2f} s "
                f"(min {min(times):.2f}, max {max(times):.2f}), "
                f"{model._sim.nnz:,} similarities, scoring all {len(users)} users {score_s:.1f} s")
        if args.quality:
            res = evaluate(model, ds, ks=(10,), part="valid")
            line += f", valid ndcg@10 {res['ndcg@10']:.4f} hr@10 {res['hr@10']:.4f}"
        print(line, flush=True)
    print(f"configs: {models[0][1]} / {models[1][1]}")


if __name__ == "__main__":
    main()
