"""Seconds per training epoch of the embedding models on Amazon Electronics x Clothing.

Each method trains for a few epochs with validation switched off; the first epoch (which builds the
TensorFlow graph) is dropped and the median of the others is reported, as wall-clock seconds and as
process CPU seconds (the steadier number on a shared machine), next to the number of training rows
one epoch passes over (Clothing only for target-only models, both categories for joint ones).

Usage::

    XCATREC_DATA=/path/to/data python benchmarks/epoch_speed.py [--epochs 5] [--methods bpr-mf cmf ...]
"""

from __future__ import annotations

import argparse
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")

import numpy as np  # noqa: E402

from xcatrec.data import load_dataset  # noqa: E402
from xcatrec.models import make_model  # noqa: E402

JOINT = {"cmf", "shared-bottom", "dann", "conet"}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--epochs", type=int, default=5, help="epochs per method (the first is dropped)")
    parser.add_argument("--methods", nargs="+", default=["bpr-mf", "cmf", "shared-bottom"])
    args = parser.parse_args()
    if args.epochs < 2:
        parser.error("--epochs must be at least 2 (the first epoch is dropped)")
    ds = load_dataset("amazon-elec-cloth", valid=False)
    print("| method | rows per epoch | median s/epoch | median CPU s/epoch | epochs timed |")
    print("|---|---|---|---|---|")
    for method in args.methods:
        model = make_model(method, ds.sizes, epochs=args.epochs, patience=0, seed=0)
        report = model.fit(ds)
        seconds = report.history["seconds"][1:]
        cpu = report.history["cpu_seconds"][1:]
        rows = len(ds.target.train) + (len(ds.source.train) if method in JOINT else 0)
        print(f"| {method} | {rows:,} | {np.median(seconds):.2f} | {np.median(cpu):.2f} | {len(seconds)} |",
              flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
