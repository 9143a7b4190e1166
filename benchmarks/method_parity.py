"""Every method's test NDCG@10 / HR@10 on fixed small settings, to compare two versions of the code.

A refactor of the training code must leave every method's quality where it was, within seed noise.
This script trains every method with fixed seeds on the synthetic marketplace (cold-start split, so
the transfer paths for cold users are exercised too) and on Douban Book -> Music (leave-one-out split,
warm users), with epoch counts cut down so that the whole run takes minutes, and writes one JSON
record per (scenario, method, seed). Run it on both versions and compare with ``--compare``:

    XCATREC_DATA=/path/to/data python benchmarks/method_parity.py --out before.json   # old commit
    XCATREC_DATA=/path/to/data python benchmarks/method_parity.py --out after.json    # new commit
    python benchmarks/method_parity.py --compare before.json after.json

The comparison prints, per scenario and method, the mean over seeds before and after, the difference,
and the spread over seeds (max - min of the "before" runs) as the yardstick of seed noise. It uses
only the package's public API (``load_dataset``, ``make_model``, ``fit``, ``evaluate``), so the same
file runs against any version that has them.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")

#: Short training for every learned method (fields a method does not have are dropped).
SHORT = {"epochs": 8, "source_epochs": 4, "meta_epochs": 4, "map_epochs": 40, "patience": 0}
SCENARIOS = {
    "synthetic-cold": {"name": "synthetic", "split": "cold-start", "beta": 0.3},
    "douban-book-music": {"name": "douban-book-music", "split": "loo"},
}
METHODS = ["popularity", "itemknn", "cross-itemknn", "source-only", "ease", "bpr-mf", "finetune",
           "shared-bottom", "cmf", "emcdr", "ptupcdr", "conet", "dann", "seed-cnn"]


def run(scenarios: list[str], methods: list[str], seeds: list[int], out: Path) -> None:
    from dataclasses import fields

    from xcatrec.data import load_dataset
    from xcatrec.evaluation import evaluate
    from xcatrec.models import METHODS as REGISTRY
    from xcatrec.models import make_model

    records = json.loads(out.read_text()) if out.exists() else []
    done = {(r["scenario"], r["method"], r["seed"]) for r in records}
    for scenario in scenarios:
        for seed in seeds:
            ds = load_dataset(**SCENARIOS[scenario], seed=seed)
            for method in methods:
                if (scenario, method, seed) in done:
                    continue
                if method == "seed-cnn" and scenario != "synthetic-cold":
                    continue  # needs item pictures, which only the synthetic data has
                names = {f.name for f in fields(REGISTRY[method].config_class)}
                options = {k: v for k, v in SHORT.items() if k in names}
                if "valid_users" in names:
                    options["valid_users"] = 0
                tic = time.perf_counter()
                model = make_model(method, ds.sizes, seed=seed, **options)
                model.fit(ds)
                seconds = time.perf_counter() - tic
                scores = evaluate(model, ds, protocol="full", ks=(10,))
                record = {"scenario": scenario, "method": method, "seed": seed,
                          "ndcg@10": float(scores["ndcg@10"]), "hr@10": float(scores["hr@10"]),
                          "seconds": seconds}
                records.append(record)
                print(json.dumps(record), flush=True)
                tmp = out.with_name(out.name + ".tmp")
                tmp.write_text(json.dumps(records, indent=1))
                os.replace(tmp, out)


def compare(before: Path, after: Path) -> None:
    import numpy as np

    old, new = json.loads(before.read_text()), json.loads(after.read_text())
    key = lambda r: (r["scenario"], r["method"])  # noqa: E731
    groups: dict = {}
    for tag, rows in (("before", old), ("after", new)):
        for r in rows:
            groups.setdefault(key(r), {}).setdefault(tag, []).append(r)
    print("| scenario | method | NDCG@10 before | NDCG@10 after | difference | seed spread before |"
          " s before | s after |")
    print("|---|---|---|---|---|---|---|---|")
    for (scenario, method), runs in sorted(groups.items()):
        b, a = runs.get("before", []), runs.get("after", [])
        if not b or not a:
            print(f"| {scenario} | {method} | {'-' if not b else len(b)} runs | {'-' if not a else len(a)} runs"
                  " | missing | | | |")
            continue
        nb, na = [r["ndcg@10"] for r in b], [r["ndcg@10"] for r in a]
        sb, sa = np.median([r["seconds"] for r in b]), np.median([r["seconds"] for r in a])
        print(f"| {scenario} | {method} | {np.mean(nb):.4f} | {np.mean(na):.4f} | {np.mean(na) - np.mean(nb):+.4f}"
              f" | {max(nb) - min(nb):.4f} | {sb:.1f} | {sa:.1f} |")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, help="JSON file of records (resumed when it exists)")
    parser.add_argument("--scenarios", nargs="+", default=list(SCENARIOS), choices=list(SCENARIOS))
    parser.add_argument("--methods", nargs="+", default=METHODS)
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--compare", nargs=2, type=Path, metavar=("BEFORE", "AFTER"),
                        help="compare two record files instead of running")
    args = parser.parse_args()
    if args.compare:
        compare(*args.compare)
        return 0
    if args.out is None:
        parser.error("give --out FILE to run, or --compare BEFORE AFTER")
    run(args.scenarios, args.methods, args.seeds, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
