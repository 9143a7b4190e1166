"""Time full-ranking (and sampled) evaluation on the Amazon Clothing test split with a random model.

A 64-dimensional embedding dot-product model with random weights is enough to measure the evaluation
code itself: scoring all ~51.9k Clothing items for the ~12.5k test users, excluding training items,
and computing tie-aware ranks and metrics. Run it as a script:

    XCATREC_DATA=/path/to/data .venv/bin/python benchmarks/eval_speed.py [--repeats 3] [--batch-size 1024]

It reads the published DisenCDR files directly (``cloth_electronic`` = Clothing as the target) and
prints the median wall-clock time of ``evaluate(..., protocol="full")`` over the repeats, next to the
time the model alone needs to score the same users (the part evaluation cannot avoid), the CPU time,
and the load average (other processes on the machine slow every number down).
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import numpy as np

from xcatrec.data.types import CrossDomainDataset, Domain, Interactions, Vocab
from xcatrec.evaluation import evaluate
from xcatrec.core.base import FitReport, Recommender


class RandomDot(Recommender):
    """Dot product of random 64-dim user and item embeddings (float32)."""

    name = "random-dot"

    def __init__(self, sizes, config=None, dim: int = 64) -> None:
        super().__init__(sizes, config)
        rng = np.random.default_rng(self.config.seed)
        self.user_emb = rng.standard_normal((sizes.n_users, dim), dtype=np.float32)
        self.item_emb = rng.standard_normal((sizes.n_target_items, dim), dtype=np.float32)

    def _fit(self, dataset, *, verbose):
        return FitReport()

    def _score_users(self, users):
        return self.user_emb[users] @ self.item_emb.T

    def get_state(self):
        return {"user_emb": self.user_emb, "item_emb": self.item_emb}

    def set_state(self, state):
        self.user_emb, self.item_emb = state["user_emb"], state["item_emb"]


def _read(path: Path) -> tuple[np.ndarray, np.ndarray]:
    rows = np.loadtxt(path, dtype=np.int64, delimiter="\t", usecols=(0, 1), ndmin=2)
    return rows[:, 0], rows[:, 1]


def load_clothing(data_dir: Path) -> CrossDomainDataset:
    """Clothing (target) and Electronics (source) of the published DisenCDR split, ids as in the files."""
    root = data_dir / "amazon-disencdr"
    tu, ti = _read(root / "cloth_electronic" / "train.txt")
    eu, ei = _read(root / "cloth_electronic" / "test.txt")
    su, si = _read(root / "electronic_cloth" / "train.txt")
    n_users = int(max(tu.max(), eu.max(), su.max())) + 1
    n_tgt, n_src = int(max(ti.max(), ei.max())) + 1, int(si.max()) + 1
    empty = Interactions.empty()
    target = Domain("clothing", Vocab.range(n_tgt, "item"), Interactions(tu, ti), empty, Interactions(eu, ei))
    source = Domain("electronics", Vocab.range(n_src, "item"), Interactions(su, si), empty, empty)
    return CrossDomainDataset("amazon-elec-cloth", Vocab.range(n_users, "user"), source, target, "published")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=1024)
    parser.add_argument("--sampled", action="store_true", help="also time sampled-999")
    args = parser.parse_args()
    data_dir = Path(os.environ.get("XCATREC_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))
    dataset = load_clothing(data_dir)
    model = RandomDot(dataset.sizes)
    n_eval = len(np.unique(dataset.target.test.users))
    print(f"users {dataset.n_users}, target items {dataset.target.n_items}, test users {n_eval}, "
          f"train rows {len(dataset.target.train)}")
    users = np.unique(dataset.target.test.users)
    start, cpu = time.perf_counter(), time.process_time()
    for i in range(0, len(users), args.batch_size):  # the model's own cost, for reference
        model.score(users[i:i + args.batch_size])
    print(f"scoring alone (model.score over all test users): {time.perf_counter() - start:.2f} s wall, "
          f"{time.process_time() - cpu:.2f} s CPU")
    protocols = ["full"] + (["sampled-999"] if args.sampled else [])
    for protocol in protocols:
        times, cpus = [], []
        for _ in range(args.repeats):
            start, cpu = time.perf_counter(), time.process_time()
            metrics = evaluate(model, dataset, protocol=protocol, ks=(10, 20), batch_size=args.batch_size)
            times.append(time.perf_counter() - start)
            cpus.append(time.process_time() - cpu)
        print(f"{protocol}: median {np.median(times):.2f} s over {args.repeats} runs "
              f"({', '.join(f'{t:.2f}' for t in times)}; median CPU {np.median(cpus):.2f} s); "
              f"hr@10={metrics['hr@10']:.4f} auc={metrics['auc']:.4f}")
    print(f"load average: {', '.join(f'{x:.1f}' for x in os.getloadavg())} on {os.cpu_count()} CPUs")


if __name__ == "__main__":
    main()
