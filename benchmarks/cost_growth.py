"""How cost grows with data: a synthetic marketplace at growing sizes (1M, 3M, 10M interactions).

For each size the marketplace of :mod:`xcatrec.data.synthetic_large` is generated block by block
(users grow linearly with the rows, items as ``rows ** 0.75``), and each task runs in a fresh process,
so that no task inherits memory or warm caches from another:

* ``generate``: making the data set (and its leave-one-out split);
* ``bpr-mf`` / ``cmf``: seconds per training epoch (BPR loss, batch 4096, dim 32; the median of the
  epochs after the first, which builds the graph), over the target rows (bpr-mf) or both categories'
  rows (cmf);
* ``eval``: full-ranking evaluation of a bpr-mf model (one epoch) on ``--eval-users`` test users,
  reported as seconds per 1,000 users (a full evaluation costs that times the test users / 1,000);
* ``itemknn``: fitting item-kNN on the target rows (the sparse co-occurrence product and top-k);
* ``stream-bpr-mf``: bpr-mf trained from TFRecord shards of the target rows
  (:mod:`xcatrec.data.shards`, :mod:`xcatrec.training.streaming`), written in a random order first.

Each task reports its seconds, the RSS right after the data was made (``data``) and the highest RSS
while the task ran (sampled every 20 ms; for ``generate``, while the data was made), so
``task peak - data`` is what the task itself added. Results go to ``OUT/cost_growth.json`` (``--resume``
skips the tasks done), a Markdown table ``OUT/cost_growth.md`` and a plot ``OUT/cost_growth.png``.
TensorFlow is pinned to ``--threads`` threads. Timings on a shared machine are noisy; what the table
is for is the growth from one size to the next.

Usage::

    python benchmarks/cost_growth.py --out-dir benchmarks/results-cost [--sizes 1e6 3e6 1e7]
        [--tasks generate bpr-mf cmf eval itemknn] [--threads 1] [--resume]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

TASKS = ("generate", "bpr-mf", "cmf", "eval", "itemknn", "stream-bpr-mf")
#: Validation only after the last epoch, on 1,000 users (it is not what is measured).
TRAIN = {"loss": "bpr", "batch_size": 4096, "dim": 32, "epochs": 3, "valid_users": 1000, "eval_every": 100,
         "patience": 0}


def rss_mb() -> float:
    """Resident memory of this process now, in MB (Linux /proc)."""
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def peak_mb() -> float:
    """Peak resident memory of this process so far, in MB."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


class PeakSampler:
    """The highest resident memory of this process while it runs, sampled every ``every`` seconds.

    ``ru_maxrss`` only knows the peak since the process started, which for every task is the data
    generation's; this measures the task alone.
    """

    def __init__(self, every: float = 0.02) -> None:
        import threading

        self.every, self.peak, self._stop = every, rss_mb(), threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(self.every):
            self.peak = max(self.peak, rss_mb())

    def __enter__(self) -> "PeakSampler":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, rss_mb())


def run_task(task: str, rows: int, threads: int, eval_users: int) -> dict:
    """Run one task in this process and return its measurements."""
    sampler = PeakSampler()
    with sampler:
        out = _task(task, rows, threads, eval_users, sampler)
    out["task_peak_mb"] = sampler.peak
    out["peak_mb"] = peak_mb()
    return out


def _task(task: str, rows: int, threads: int, eval_users: int, sampler: PeakSampler) -> dict:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import numpy as np

    from xcatrec.data.synthetic_large import LargeConfig, catalogue_sizes, make_large_synthetic
    from xcatrec.models import make_model  # imports TensorFlow first: "data MB" includes it for every task

    start = time.perf_counter()
    market = make_large_synthetic(LargeConfig(*catalogue_sizes(rows)))
    ds = market.dataset
    out = {"users": ds.n_users, "source_items": ds.sizes.n_source_items, "target_items": ds.sizes.n_target_items,
           "source_rows": len(ds.source.train), "target_rows": len(ds.target.train),
           "generate_seconds": time.perf_counter() - start, "data_mb": rss_mb()}
    if task != "generate":
        sampler.peak = out["data_mb"]  # from here on: the task's own peak
    if task in ("bpr-mf", "cmf", "eval", "stream-bpr-mf"):
        import tensorflow as tf

        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(threads)

        method = "bpr-mf" if task in ("eval", "stream-bpr-mf") else task
        options = dict(TRAIN, epochs=1) if task == "eval" else dict(TRAIN)
        model = make_model(method, ds.sizes, **options)
        if task == "stream-bpr-mf":
            import tempfile

            from xcatrec.data.shards import write_shards

            folder = Path(tempfile.mkdtemp(prefix="xcatrec-shards-")) / "shards"
            start = time.perf_counter()
            write_shards(ds, folder, parts=[("target", "train")], order_seed=0)
            out["write_seconds"] = time.perf_counter() - start
            model.stream_from(folder)
        start = time.perf_counter()
        model.fit(ds)
        out["fit_seconds"] = time.perf_counter() - start
        if task == "stream-bpr-mf":
            shutil.rmtree(folder.parent, ignore_errors=True)
        per_epoch = model.report.history.get("seconds", [])
        if task != "eval":  # one epoch only, which includes building the graph
            out["seconds_per_epoch"] = float(np.median(per_epoch[1:] or per_epoch))
        out["rows_per_epoch"] = len(ds.target.train) + (len(ds.source.train) if method == "cmf" else 0)
        if task == "eval":
            from xcatrec.evaluation import evaluate

            users = np.unique(ds.target.test.users)
            users = np.random.default_rng(0).choice(users, min(eval_users, len(users)), replace=False)
            start = time.perf_counter()
            evaluate(model, ds, users=users)
            out["eval_seconds_per_1000_users"] = (time.perf_counter() - start) / len(users) * 1000
            out["eval_users"] = len(users)
    elif task == "itemknn":
        model = make_model("itemknn", ds.sizes)
        start = time.perf_counter()
        model.fit(ds)
        out["fit_seconds"] = time.perf_counter() - start
    return out


def table(results: dict) -> str:
    """The Markdown table of all finished tasks, one row per (size, task)."""
    lines = ["| rows | task | users | target items | rows/epoch | s/epoch | fit s | eval s/1k users | "
             "data MB | task peak MB | task peak - data MB |", "|" + "---|" * 11]
    for key in sorted(results, key=lambda k: (int(k.split("/")[0]), TASKS.index(k.split("/")[1]))):
        r, (rows, task) = results[key], key.split("/")
        if "error" in r:
            lines.append(f"| {int(rows):,} | {task} | failed: {r['error'][:60]} |" + " |" * 8)
            continue
        cell = lambda name, fmt: format(r[name], fmt) if name in r else ""  # noqa: E731
        lines.append(f"| {int(rows):,} | {task} | {r['users']:,} | {r['target_items']:,} | {cell('rows_per_epoch', ',')} | "
                     f"{cell('seconds_per_epoch', '.2f')} | {cell('fit_seconds', '.1f')} | "
                     f"{cell('eval_seconds_per_1000_users', '.2f')} | {r['data_mb']:.0f} | {r['task_peak_mb']:.0f} | "
                     f"{r['task_peak_mb'] - r['data_mb']:.0f} |")
    return "\n".join(lines) + "\n"


def plot(results: dict, path: Path) -> None:
    """Seconds per epoch and peak memory against rows, one line per task (log-log)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(9, 3.4))
    for color, task in enumerate(TASKS):
        style = {"color": f"C{color}", "label": task}
        done = sorted((int(k.split("/")[0]), v) for k, v in results.items() if k.endswith("/" + task) and "error" not in v)
        if not done:
            continue
        x = [rows for rows, _ in done]
        if all("seconds_per_epoch" in v for _, v in done):
            ax1.plot(x, [v["seconds_per_epoch"] for _, v in done], "o-", **style)
        ax2.plot(x, [v["task_peak_mb"] - (0 if task == "generate" else v["data_mb"]) for _, v in done],
                 "o-", **style)
    for ax, title in ((ax1, "seconds per epoch"), (ax2, "memory a task adds at its peak (MB)")):
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("interactions")
        ax.set_title(title)
        if ax.has_data():
            ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out-dir", type=Path, required=True, help="folder for cost_growth.json/.md/.png")
    parser.add_argument("--sizes", type=float, nargs="+", default=[1e6, 3e6, 1e7],
                        help="approximate interactions per marketplace (default 1e6 3e6 1e7)")
    parser.add_argument("--tasks", nargs="+", default=list(TASKS),
                        choices=TASKS, help="what to measure at each size")
    parser.add_argument("--threads", type=int, default=1, help="TensorFlow threads (default 1)")
    parser.add_argument("--eval-users", type=int, default=5000, help="test users ranked by the eval task")
    parser.add_argument("--resume", action="store_true", help="keep finished tasks of OUT/cost_growth.json")
    parser.add_argument("--task", help=argparse.SUPPRESS)  # internal: run one task, print its JSON
    parser.add_argument("--rows", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.task:
        print(json.dumps(run_task(args.task, args.rows, args.threads, args.eval_users)))
        return 0
    args.out_dir.mkdir(parents=True, exist_ok=True)
    path = args.out_dir / "cost_growth.json"
    results = json.loads(path.read_text()) if args.resume and path.exists() else {}
    for size in args.sizes:
        for task in args.tasks:
            key = f"{int(size)}/{task}"
            if key in results and "error" not in results[key]:
                continue
            print(f"[{time.strftime('%H:%M:%S')}] {key} ...", file=sys.stderr, flush=True)
            done = subprocess.run([sys.executable, __file__, "--out-dir", str(args.out_dir), "--task", task,
                                   "--rows", str(int(size)), "--threads", str(args.threads),
                                   "--eval-users", str(args.eval_users)], capture_output=True, text=True)
            if done.returncode:
                results[key] = {"error": done.stderr.strip().splitlines()[-1] if done.stderr.strip() else "failed"}
            else:
                results[key] = json.loads(done.stdout.strip().splitlines()[-1])
            print(f"    {json.dumps(results[key])[:200]}", file=sys.stderr, flush=True)
            tmp = path.with_suffix(".tmp")
            tmp.write_text(json.dumps(results, indent=1))
            os.replace(tmp, path)
    (args.out_dir / "cost_growth.md").write_text(table(results))
    plot(results, args.out_dir / "cost_growth.png")
    print(table(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
