"""Peak memory of one training epoch: rows streamed from TFRecord shards vs rows in memory.

For each row count, synthetic target rows (``--users`` users drawn uniformly, ``--items`` items drawn
with a popularity skew, fixed across sizes so that the embedding tables do not grow) are written as
shards (:mod:`xcatrec.data.shards`) block by block. Then, each in a fresh process so that its peak
resident memory (``ru_maxrss``) is its own, one epoch of BPR-MF's network (:class:`FactorNet`, BPR
loss, LazyAdam) is trained:

* ``memory``: the rows as numpy arrays, a :class:`NegativeSampler` and
  :func:`~xcatrec.training.rows.epoch_stream` (what ``KerasRecommender.fit`` does by default);
* ``stream``: :class:`~xcatrec.training.streaming.ShardRows` over the shards (what it does after
  ``stream_from``).

Each process reports its RSS once the network is built (``base``: TensorFlow and the tables) and its
peak over the epoch; ``peak - base`` is what the data path added. TensorFlow runs on ``--threads``
threads. Prints a Markdown table.

Usage::

    python benchmarks/stream_memory.py [--rows 5e5 1e6 2e6] [--users 100000] [--items 50000]
        [--batch-size 1024] [--threads 2] [--folder /tmp/xcatrec-stream-memory]
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from xcatrec.data.types import DatasetSizes, Interactions

BLOCK = 250_000  # rows generated (and written) at once


def synthetic_rows(n_rows: int, n_users: int, n_items: int, seed: int = 0):
    """The rows in blocks of :data:`BLOCK`, the same for the same arguments (items: popularity-skewed)."""
    for k, lo in enumerate(range(0, n_rows, BLOCK)):
        rng = np.random.default_rng([seed, k])
        size = min(BLOCK, n_rows - lo)
        users = rng.integers(0, n_users, size)
        items = np.minimum((rng.random(size) ** 2 * n_items).astype(np.int64), n_items - 1)
        yield Interactions(users, items)


def rss_mib() -> float:
    """Peak resident memory of this process so far, MiB (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def write(args, n_rows: int, folder: Path) -> None:
    from xcatrec.data.shards import ShardWriter

    with ShardWriter(folder, DatasetSizes(args.users, 0, args.items), name="synthetic", overwrite=True) as writer:
        for block in synthetic_rows(n_rows, args.users, args.items):
            writer.add("target", "train", block)


def measure(args, path: str, n_rows: int, folder: Path) -> dict:
    """One epoch in this process; returns the base and peak RSS and the seconds."""
    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(args.threads)
    tf.config.threading.set_inter_op_parallelism_threads(args.threads)
    from xcatrec.data.shards import open_shards
    from xcatrec.training import FactorNet, NegativeSampler, Negatives, Rows
    from xcatrec.training.optimizers import LazyAdam, read_rows_sparsely
    from xcatrec.training.rows import epoch_stream, steps_per_epoch
    from xcatrec.training.streaming import ShardRows, sample_rows

    if path == "memory":
        parts = list(synthetic_rows(n_rows, args.users, args.items))
        rows = Interactions(np.concatenate([p.users for p in parts]), np.concatenate([p.items for p in parts]))
        del parts
        sampler = NegativeSampler(rows.matrix(args.users, args.items))
        source = Rows({"user": rows.users, "pos": rows.items}, (Negatives(sampler, rows.users),))
    else:
        source = ShardRows(open_shards(folder, verify=False), "target")
    net = FactorNet(args.users, args.items, dim=32, loss="bpr", reg=0.1, init_std=0.01, seed=0)
    read_rows_sparsely(net)
    net(sample_rows(source))
    steps = steps_per_epoch(len(source), args.batch_size)
    net.compile(optimizer=LazyAdam(5e-3), steps_per_execution=steps)
    base = rss_mib()
    stream = (epoch_stream(source, args.batch_size, 0, 1) if path == "memory"
              else source.stream(args.batch_size, 0, 1))
    tic = time.perf_counter()
    history = net.fit(stream, epochs=1, steps_per_epoch=steps, verbose=0)
    return {"base_mib": base, "peak_mib": rss_mib(), "seconds": time.perf_counter() - tic,
            "loss": float(history.history["loss"][-1])}


def child(args, *extra: str) -> str:
    cmd = [sys.executable, __file__, "--users", str(args.users), "--items", str(args.items),
           "--batch-size", str(args.batch_size), "--threads", str(args.threads), *extra]
    return subprocess.run(cmd, check=True, capture_output=True, text=True).stdout.strip().splitlines()[-1]


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=float, nargs="+", default=[5e5, 1e6, 2e6])
    parser.add_argument("--users", type=int, default=100_000)
    parser.add_argument("--items", type=int, default=50_000)
    parser.add_argument("--batch-size", type=int, default=1024)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--folder", type=Path, default=Path("/tmp/xcatrec-stream-memory"))
    parser.add_argument("--child", nargs=3, metavar=("TASK", "ROWS", "FOLDER"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        task, n_rows, folder = args.child[0], int(args.child[1]), Path(args.child[2])
        if task == "write":
            tic = time.perf_counter()
            write(args, n_rows, folder)
            print(json.dumps({"peak_mib": rss_mib(), "seconds": time.perf_counter() - tic}))
        else:
            print(json.dumps(measure(args, task, n_rows, folder)))
        return
    print("| rows | write peak MiB | in-memory base / peak MiB (+epoch) | streaming base / peak MiB (+epoch) "
          "| in-memory s | streaming s |")
    print("|---:|---:|---:|---:|---:|---:|")
    for n_rows in (int(r) for r in args.rows):
        folder = args.folder / f"rows-{n_rows}"
        wrote = json.loads(child(args, "--child", "write", str(n_rows), str(folder)))
        mem = json.loads(child(args, "--child", "memory", str(n_rows), str(folder)))
        stream = json.loads(child(args, "--child", "stream", str(n_rows), str(folder)))
        cell = lambda r: (f"{r['base_mib']:.0f} / {r['peak_mib']:.0f} "  # noqa: E731
                          f"(+{r['peak_mib'] - r['base_mib']:.0f})")
        print(f"| {n_rows:,} | {wrote['peak_mib']:.0f} | {cell(mem)} | {cell(stream)} | {mem['seconds']:.1f} "
              f"| {stream['seconds']:.1f} |", flush=True)
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
