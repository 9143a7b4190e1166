"""Seconds per training epoch of the peer library RecBole-CDR, the in-run reference of ``epoch_speed.py``.

Runs with the Python of a *separate* environment that has RecBole-CDR (Zhu et al., "RecBole-CDR",
2022, built on RecBole: Zhao et al., CIKM 2021) and CPU PyTorch installed; it does not import xcatrec.
``benchmarks/epoch_speed.py --recbole-python PATH`` writes the rows it trains on as RecBole atomic
files (:func:`write_atomic`, also usable from here) and calls this script once per model:

* ``BPR``: RecBole's BPR (the matrix factorisation RecBole-CDR builds on) on the Clothing training rows
  (one uniformly drawn negative per row, Adam);
* ``CMF``: RecBole-CDR's CMF (Singh & Gordon, KDD 2008; pointwise BCE, one negative per row) on the
  training rows of both categories, one ``BOTH`` phase.

Only the training epochs are timed (``trainer._train_epoch``: batching, negative sampling, the step),
without validation. The first epoch is dropped. PyTorch is pinned to ``--threads`` threads.
The result is one JSON line on stdout: ``{"model": ..., "rows": ..., "seconds": [...], "cpu_seconds": [...]}``
(wall-clock and process CPU seconds of the timed epochs).

The PyPI release of RecBole-CDR 0.1.0 ships without its ``cross_domain_recommender`` model package;
``--models-from`` names a folder holding the upstream ``cmf.py`` to install into it (see the
benchmark notes in ``epoch_speed.py``).

Usage::

    /tmp/recbole-venv/bin/python benchmarks/recbole_reference.py --folder DIR --model BPR [--epochs 4]
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import sys
import time
from pathlib import Path

#: Atomic-file names: the source (Electronics) and target (Clothing) data sets.
SOURCE, TARGET = "electronics", "clothing"


def write_atomic(folder: Path, name: str, splits: dict) -> None:
    """Write RecBole atomic files ``<folder>/<name>/<name>.<split>.inter`` (``<name>.inter`` for the
    split ``""``), one per entry of ``splits`` (split -> (users, items) integer arrays), with tokens
    ``u<index>`` and ``i<index>``."""
    out = Path(folder) / name
    out.mkdir(parents=True, exist_ok=True)
    for split, (users, items) in splits.items():
        with open(out / (f"{name}.{split}.inter" if split else f"{name}.inter"), "w") as f:
            f.write("user_id:token\titem_id:token\n")
            f.write("".join(f"u{u}\ti{i}\n" for u, i in zip(users.tolist(), items.tolist())))


def _common(folder: Path, batch_size: int, epochs: int) -> dict:
    return {"data_path": str(folder), "use_gpu": False, "gpu_id": "", "seed": 0, "reproducibility": True,
            "show_progress": False, "state": "WARNING", "train_batch_size": batch_size,
            "learning_rate": 1e-3, "neg_sampling": {"uniform": 1}, "eval_step": epochs + 1,
            "checkpoint_dir": str(folder / "saved"), "log_wandb": False, "save_dataset": False,
            "save_dataloaders": False, "user_inter_num_interval": "[0,inf)",
            "item_inter_num_interval": "[0,inf)", "benchmark_filename": ["train", "valid", "test"],
            "load_col": {"inter": ["user_id", "item_id"]}, "embedding_size": 64}


def _bpr(folder: Path, batch_size: int, epochs: int):
    from recbole.config import Config
    from recbole.data import create_dataset, data_preparation
    from recbole.utils import get_model, get_trainer, init_seed

    config = Config(model="BPR", dataset=TARGET, config_dict={**_common(folder, batch_size, epochs),
                                                               "epochs": epochs})
    init_seed(config["seed"], config["reproducibility"])
    dataset = create_dataset(config)
    train, _, _ = data_preparation(config, dataset)
    model = get_model("BPR")(config, train.dataset).to(config["device"])
    return get_trainer(config["MODEL_TYPE"], "BPR")(config, model), train


def _cmf(folder: Path, batch_size: int, epochs: int):
    from recbole.utils import init_seed
    from recbole_cdr.config import CDRConfig
    from recbole_cdr.data import create_dataset, data_preparation
    from recbole_cdr.utils import get_model, get_trainer, train_mode2state

    domain = {"dataset": None, "data_path": str(folder), "USER_ID_FIELD": "user_id",
              "ITEM_ID_FIELD": "item_id", "NEG_PREFIX": "neg_", "LABEL_FIELD": "label",
              "load_col": {"inter": ["user_id", "item_id"]}, "user_inter_num_interval": "[0,inf)",
              "item_inter_num_interval": "[0,inf)", "val_interval": {}}
    options = {**_common(folder, batch_size, epochs), "train_epochs": [f"BOTH:{epochs}"],
               "source_domain": {**domain, "dataset": SOURCE, "benchmark_filename": None},
               "target_domain": {**domain, "dataset": TARGET, "benchmark_filename": ["train", "valid", "test"]}}
    options.pop("benchmark_filename")
    config = CDRConfig(model="CMF", config_dict=options)
    init_seed(config["seed"], config["reproducibility"])
    dataset = create_dataset(config)
    train, _, _ = data_preparation(config, dataset)
    model = get_model("CMF")(config, train.dataset).to(config["device"])
    trainer = get_trainer(config["MODEL_TYPE"], "CMF")(config, model)
    train.set_mode(train_mode2state["BOTH"])
    return trainer, train


def install_models(models_from: Path) -> None:
    """Copy the upstream model files (``cmf.py``) into the installed ``recbole_cdr`` package."""
    import recbole_cdr

    target = Path(recbole_cdr.__file__).parent / "model" / "cross_domain_recommender"
    target.mkdir(exist_ok=True)
    (target / "__init__.py").touch()
    for path in Path(models_from).glob("*.py"):
        shutil.copy(path, target / path.name)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--folder", type=Path, required=True, help="folder of the atomic files")
    parser.add_argument("--model", choices=["BPR", "CMF"], required=True)
    parser.add_argument("--epochs", type=int, default=4, help="epochs timed (one more is run first)")
    parser.add_argument("--batch-size", type=int, default=4096)
    parser.add_argument("--threads", type=int, default=1, help="PyTorch intra-op threads")
    parser.add_argument("--models-from", type=Path, default=None,
                        help="folder of upstream RecBole-CDR model files to install first")
    args = parser.parse_args()
    import torch

    torch.set_num_threads(args.threads)
    logging.disable(logging.WARNING)
    if args.models_from is not None:
        install_models(args.models_from)
    build = _bpr if args.model == "BPR" else _cmf
    trainer, train = build(args.folder, args.batch_size, args.epochs + 1)
    seconds, cpu = [], []
    for epoch in range(args.epochs + 1):
        tic, cpu_tic = time.perf_counter(), time.process_time()
        loss = trainer._train_epoch(train, epoch, show_progress=False)
        seconds.append(time.perf_counter() - tic)
        cpu.append(time.process_time() - cpu_tic)
        print(f"{args.model} epoch {epoch} loss {loss:.2f} {seconds[-1]:.2f}s", file=sys.stderr, flush=True)
    rows = len(train.dataset) if args.model == "BPR" else (
        len(train.dataset.source_domain_dataset) + len(train.dataset.target_domain_dataset))
    print(json.dumps({"model": args.model, "rows": rows, "batch_size": args.batch_size,
                      "threads": args.threads, "seconds": seconds[1:], "cpu_seconds": cpu[1:], "first": seconds[0],
                      "pid": os.getpid()}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
