"""Seconds per training epoch of the embedding models on Amazon Electronics x Clothing, next to RecBole-CDR.

Each method trains for a few epochs with validation switched off; the first epoch (which builds the
TensorFlow graph) is dropped and the median of the others is reported, as wall-clock seconds and as
process CPU seconds, next to the number of training rows one epoch passes over (Clothing only for
target-only models, both categories for joint ones).

Timings on a shared machine are not comparable between runs, so with ``--recbole-python`` the peer
library RecBole-CDR is timed in the same run on the same rows as the reference
(``benchmarks/recbole_reference.py``, run with the Python of a separate environment): its BPR next to
``bpr-mf``, its CMF next to ``cmf``, at the same batch size, both pinned to ``--threads`` threads. The
two alternate (xcatrec, then the reference, per method and per round), and the table gives the ratio
of the medians, of wall-clock and of process CPU seconds: how many times faster than the reference an
xcatrec epoch is. The compared methods train with the settings in :data:`COMPARED` (the BPR loss, one
negative per row, batch 4096) unless ``--defaults`` is given.

The PyPI release of RecBole-CDR (0.1.0) lacks its model package; ``--recbole-models`` names a folder
with the upstream ``recbole_cdr/model/cross_domain_recommender/cmf.py`` (github.com/RUCAIBox/RecBole-CDR),
which the reference script copies into that environment. Setting up the environment::

    python -m venv /tmp/recbole-venv
    /tmp/recbole-venv/bin/pip install torch --index-url https://download.pytorch.org/whl/cpu
    /tmp/recbole-venv/bin/pip install "numpy<2" scipy pandas tqdm colorlog colorama scikit-learn pyyaml tensorboard
    # --no-deps: recbole-cdr pins scipy==1.6.0, which has no wheel for Python 3.11
    /tmp/recbole-venv/bin/pip install --no-deps recbole==1.0.1 recbole-cdr==0.1.0

Usage::

    XCATREC_DATA=/path/to/data python benchmarks/epoch_speed.py [--epochs 5] [--methods bpr-mf cmf ...]
        [--threads 1] [--rounds 1] [--recbole-python /tmp/recbole-venv/bin/python --recbole-models DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")

import numpy as np  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from recbole_reference import SOURCE, TARGET, write_atomic  # noqa: E402

JOINT = {"cmf", "shared-bottom", "dann", "conet"}
#: The RecBole(-CDR) model timed next to each xcatrec method.
REFERENCE = {"bpr-mf": "BPR", "cmf": "CMF"}
#: Settings of the methods timed against the reference: the pairwise BPR loss with one negative per row
#: (bpr-mf's default became the in-batch softmax) at RecBole-CDR's batch scale.
COMPARED = {"bpr-mf": {"loss": "bpr", "batch_size": 4096}, "cmf": {"loss": "bpr", "batch_size": 4096}}


def pin_threads(n: int) -> None:
    """Pin TensorFlow's op thread pools to ``n`` threads (before TensorFlow runs anything)."""
    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(n)
    tf.config.threading.set_inter_op_parallelism_threads(n)


def time_xcatrec(method: str, ds, epochs: int, options: dict) -> tuple[list[float], list[float], int]:
    """Wall and CPU seconds of epochs 2.. of ``method`` trained without validation, and its batch size."""
    from xcatrec.models import make_model

    model = make_model(method, ds.sizes, epochs=epochs, patience=0, seed=0, **options)
    report = model.fit(ds)
    return report.history["seconds"][1:], report.history["cpu_seconds"][1:], model.config.batch_size


def export(ds, folder: Path) -> None:
    """The training rows as RecBole atomic files (the target's test rows stand in as its valid/test)."""
    t, s = ds.target, ds.source
    write_atomic(folder, TARGET, {"train": (t.train.users, t.train.items), "valid": (t.test.users, t.test.items),
                                  "test": (t.test.users, t.test.items)})
    write_atomic(folder, SOURCE, {"": (s.train.users, s.train.items)})


def time_reference(python: str, folder: Path, model: str, epochs: int, batch_size: int, threads: int,
                   models_from: str | None) -> dict:
    """Run ``recbole_reference.py`` with ``python``; its JSON result."""
    script = Path(__file__).resolve().parent / "recbole_reference.py"
    cmd = [python, str(script), "--folder", str(folder), "--model", model, "--epochs", str(epochs - 1),
           "--batch-size", str(batch_size), "--threads", str(threads)]
    if models_from:
        cmd += ["--models-from", models_from]
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads),
           "PYTHONWARNINGS": "ignore"}
    out = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=folder)
    if out.returncode != 0:
        raise RuntimeError(f"RecBole reference {model} failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--epochs", type=int, default=5, help="epochs per run (the first is dropped)")
    parser.add_argument("--methods", nargs="+", default=["bpr-mf", "cmf"])
    parser.add_argument("--threads", type=int, default=1, help="op threads of TensorFlow and PyTorch")
    parser.add_argument("--rounds", type=int, default=1, help="alternating rounds of xcatrec and reference")
    parser.add_argument("--recbole-python", default=None, help="Python of an environment with RecBole-CDR")
    parser.add_argument("--recbole-models", default=None, help="folder of upstream RecBole-CDR model files")
    parser.add_argument("--defaults", action="store_true",
                        help="time the methods' default settings instead of the compared ones (COMPARED)")
    args = parser.parse_args()
    if args.epochs < 2:
        parser.error("--epochs must be at least 2 (the first epoch is dropped)")
    pin_threads(args.threads)
    from xcatrec.data import load_dataset

    ds = load_dataset("amazon-elec-cloth", valid=False)
    folder = Path(tempfile.mkdtemp(prefix="recbole-ref-"))
    if args.recbole_python:
        export(ds, folder)
    print(f"threads {args.threads}, {args.epochs} epochs per run (first dropped), {args.rounds} round(s), "
          f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    print("| method | settings | rows per epoch | s/epoch | CPU s/epoch | reference | reference s/epoch | "
          "reference CPU s/epoch | speed-up (wall) | speed-up (CPU) |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for method in args.methods:
        options = {} if args.defaults else COMPARED.get(method, {})
        ours, cpu, ref, ref_cpu = [], [], [], []
        ref_model = REFERENCE.get(method) if args.recbole_python else None
        for _ in range(args.rounds):
            wall, cpus, batch = time_xcatrec(method, ds, args.epochs, options)
            ours, cpu = ours + wall, cpu + cpus
            if ref_model:
                result = time_reference(args.recbole_python, folder, ref_model, args.epochs, batch, args.threads,
                                        args.recbole_models)
                ref, ref_cpu = ref + result["seconds"], ref_cpu + result["cpu_seconds"]
        rows = len(ds.target.train) + (len(ds.source.train) if method in JOINT else 0)
        mine, mine_cpu = float(np.median(ours)), float(np.median(cpu))
        settings = ", ".join(f"{k}={v}" for k, v in {**options, "batch_size": batch}.items())
        if ref:
            theirs, theirs_cpu = float(np.median(ref)), float(np.median(ref_cpu))
            reference = (f"RecBole-CDR {ref_model} | {theirs:.2f} | {theirs_cpu:.2f} | {theirs / mine:.1f}x | "
                         f"{theirs_cpu / mine_cpu:.1f}x")
        else:
            reference = "- | - | - | - | -"
        print(f"| {method} | {settings} | {rows:,} | {mine:.2f} | {mine_cpu:.2f} | {reference} |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
