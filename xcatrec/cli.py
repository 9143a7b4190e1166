"""Command-line interface: a thin argparse layer over the functions the book chapters call.

Examples::

    python -m xcatrec data stats --dataset amazon-elec-cloth
    python -m xcatrec data leaks --dataset amazon-elec-phone --out leaks.json
    python -m xcatrec evaluate --dataset amazon-elec-cloth --source elec --target cloth \\
        --method bpr-mf --protocol full --protocol sampled-999 --seeds 3 --out results.json
    python -m xcatrec recommend --dataset amazon-elec-cloth --method popularity --user 42 --k 10
    python -m xcatrec evaluate --files elec.csv cloth.csv --method bpr-mf

Results go to stdout (and ``--out``); progress goes to stderr. Bad input ends with one line naming the
problem and the fix, and exit status 2.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path
from typing import Any, Sequence

from xcatrec.errors import ConfigError, XcatrecError

SPLITS = ("published", "loo", "random", "temporal", "cold-start")
PROTOCOLS = ("full", "sampled-99", "sampled-999", "ratings")


def _parse_option(text: str) -> tuple[str, Any]:
    if "=" not in text:
        raise ConfigError(f"--option {text!r} is not of the form NAME=VALUE.", "Write e.g. --option dim=32.")
    key, value = text.split("=", 1)
    try:
        return key.strip(), json.loads(value)
    except json.JSONDecodeError:
        return key.strip(), value


def _add_data_args(p: argparse.ArgumentParser) -> None:
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--dataset", help="registered data set: amazon-elec-cloth, amazon-elec-phone, "
                                       "douban-book-music, synthetic")
    src.add_argument("--files", nargs=2, metavar=("SOURCE_FILE", "TARGET_FILE"),
                     help="your own two interaction files (CSV/TSV: user, item[, rating[, timestamp]])")
    p.add_argument("--source", help="source domain (default: the data set's first domain)")
    p.add_argument("--target", help="target domain (default: the data set's second domain)")
    p.add_argument("--split", choices=SPLITS, help="default: the data set's published split where it has one, "
                                                   "else leave-one-out (loo)")
    p.add_argument("--beta", type=float, default=0.2, help="fraction of overlapping users made cold (cold-start split)")
    p.add_argument("--data-dir", help="folder with a local copy of the data (else $XCATREC_DATA, else download)")
    p.add_argument("--rho", type=float, help="synthetic only: relatedness of the two categories in [0, 1]")
    p.add_argument("--threshold", type=float, help="--files only: ratings >= this count as interactions")
    p.add_argument("--keep-leaks", action="store_true",
                   help="keep source rows that duplicate a held-out target purchase (cross-listed products; "
                        "removed by default, see 'data leaks')")


def _add_method_args(p: argparse.ArgumentParser) -> None:
    from xcatrec.method_names import METHOD_NAMES

    p.add_argument("--method", required=True, choices=METHOD_NAMES, metavar="METHOD",
                   help="one of: " + ", ".join(METHOD_NAMES))
    p.add_argument("--option", action="append", default=[], metavar="NAME=VALUE",
                   help="a config field of the method, e.g. --option dim=32 (repeatable)")
    p.add_argument("--quiet", action="store_true", help="no progress output")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m xcatrec", description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog=__doc__.split("\n\n", 1)[1])
    sub = parser.add_subparsers(dest="command", required=True)

    data = sub.add_parser("data", help="list, fetch and describe data sets")
    dsub = data.add_subparsers(dest="data_command", required=True)
    dsub.add_parser("list", help="registered data sets, their domains and sources")
    fetch = dsub.add_parser("fetch", help="download (or find the local copy of) a data set and verify it")
    fetch.add_argument("--dataset", required=True)
    fetch.add_argument("--data-dir")
    stats = dsub.add_parser("stats", help="users, items, rows, density and overlap per domain")
    _add_data_args(stats)
    leaks = dsub.add_parser("leaks", help="held-out target rows whose purchase also sits in the user's source "
                                          "history under another id (cross-listed products)")
    lsrc = leaks.add_mutually_exclusive_group(required=True)
    lsrc.add_argument("--dataset", help="registered data set (its default split)")
    lsrc.add_argument("--files", nargs=2, metavar=("SOURCE_FILE", "TARGET_FILE"),
                      help="two interaction files (on the split evaluate would use)")
    leaks.add_argument("--source", help="source domain (--dataset only)")
    leaks.add_argument("--target", help="target domain (--dataset only)")
    leaks.add_argument("--data-dir", help="folder with a local copy of the data")
    leaks.add_argument("--threshold", dest="jaccard", default="0.8", metavar="JACCARD",
                       help="least Jaccard of the two items' buyer sets, in (0, 1] (default 0.8)")
    leaks.add_argument("--out", help="write the report as JSON to this file")

    ev = sub.add_parser("evaluate", help="train a method over seeds and evaluate it on the target domain")
    _add_data_args(ev)
    _add_method_args(ev)
    ev.add_argument("--protocol", action="append", choices=PROTOCOLS,
                    help="full ranking (default), sampled with 99/999 negatives, or ratings (MAE/RMSE); repeatable")
    ev.add_argument("--k", type=int, action="append", help="cut-off for top-K metrics (default 10; repeatable)")
    ev.add_argument("--seeds", type=int, default=1, help="number of seeds (0..N-1)")
    ev.add_argument("--out", help="write the result records as JSON to this file")

    rec = sub.add_parser("recommend", help="train a method and print the top-K target items of one user")
    _add_data_args(rec)
    _add_method_args(rec)
    rec.add_argument("--user", required=True, help="raw user id as in the data files")
    rec.add_argument("--k", type=int, default=10)
    rec.add_argument("--seed", type=int, default=0)
    rec.add_argument("--include-seen", action="store_true", help="do not drop items the user already has")

    bench = sub.add_parser("bench", help="run a benchmark config (methods x seeds x scenarios)")
    bench.add_argument("config", help="benchmark config file (JSON), e.g. configs/bench-quick.json")
    bench.add_argument("--out-dir", default="results", help="where results CSV/JSON/Markdown go")
    bench.add_argument("--resume", action="store_true",
                       help="keep the runs already in OUT_DIR/records.json and run only the missing ones")
    bench.add_argument("--scenario", action="append", metavar="NAME",
                       help="run only this scenario (repeatable; default: all)")
    bench.add_argument("--quiet", action="store_true")
    return parser


def _loader(args: argparse.Namespace):
    """A function seed -> CrossDomainDataset for the data arguments."""
    from xcatrec.data import load_dataset, load_files

    leaks = "keep" if getattr(args, "keep_leaks", False) else "remove"
    if args.files:
        for flag in ("rho",):
            if getattr(args, flag) is not None:
                raise ConfigError(f"--{flag} applies to --dataset synthetic only.", f"Drop --{flag}.")
        split = args.split or "loo"
        return lambda seed: load_files(args.files[0], args.files[1], split=split, beta=args.beta, seed=seed,
                                       implicit_threshold=args.threshold, leaks=leaks)
    extra: dict[str, Any] = {}
    if args.rho is not None:
        if args.dataset != "synthetic":
            raise ConfigError("--rho applies to --dataset synthetic only.", "Drop --rho or use --dataset synthetic.")
        extra["rho"] = args.rho
    if args.threshold is not None:
        raise ConfigError("--threshold applies to --files only.", "Drop --threshold.")
    return lambda seed: load_dataset(args.dataset, source=args.source, target=args.target, split=args.split,
                                     beta=args.beta, seed=seed, data_dir=args.data_dir, leaks=leaks, **extra)


def _cmd_data(args: argparse.Namespace) -> int:
    from xcatrec.data import DATASETS, dataset_stats, fetch

    if args.data_command == "list":
        for name, spec in DATASETS.items():
            print(f"{name}: domains {', '.join(spec.domain_names)}; {spec.description}")
        return 0
    if args.data_command == "fetch":
        root = fetch(args.dataset, data_dir=args.data_dir, progress=True)
        print(root)
        return 0
    if args.data_command == "leaks":
        return _cmd_data_leaks(args)
    ds = _loader(args)(0)
    print(dataset_stats(ds).to_string(index=False))
    return 0


def _cmd_data_leaks(args: argparse.Namespace) -> int:
    from xcatrec.data import find_leaks, load_dataset, load_files
    from xcatrec.data.leaks import check_threshold

    try:
        threshold = float(args.jaccard)
    except ValueError:
        threshold = args.jaccard
    threshold = check_threshold(threshold)
    if args.out and not Path(args.out).resolve().parent.is_dir():
        raise ConfigError(f"The folder of --out {args.out!r} does not exist.", "Create it or pick another path.")
    if args.files:
        for flag in ("source", "target", "data_dir"):
            if getattr(args, flag) is not None:
                name = "--" + flag.replace("_", "-")
                raise ConfigError(f"{name} applies to --dataset only.", f"Drop {name}.")
        ds = load_files(args.files[0], args.files[1], leaks="keep")
    else:
        ds = load_dataset(args.dataset, source=args.source, target=args.target, data_dir=args.data_dir,
                          leaks="keep")
    report = find_leaks(ds, threshold=threshold)
    print(f"cross-listing leaks in {ds.name} ({report.source} -> {report.target}, {report.split} split, "
          f"Jaccard >= {report.threshold:g})")
    print(f"test users:              {report.test_users}")
    print(f"affected test users:     {report.affected_test_users} ({100 * report.affected_share:.1f}%)")
    print(f"identical buyer sets:    {report.identical}")
    print(f"cross-listed item pairs: {report.item_pairs}")
    if args.out:
        out = Path(args.out)
        fd, tmp = tempfile.mkstemp(prefix=out.name + ".", suffix=".tmp", dir=out.resolve().parent)
        try:
            with os.fdopen(fd, "w") as fh:
                json.dump(report.to_dict(ds.users, ds.source.items, ds.target.items), fh, indent=1)
            os.replace(tmp, out)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        print(f"wrote the report to {args.out}", file=sys.stderr)
    return 0


def _cmd_evaluate(args: argparse.Namespace) -> int:
    from xcatrec.evaluation import summarize, to_markdown
    from xcatrec.experiment import RunSpec, run_seeds

    if args.seeds < 1:
        raise ConfigError(f"--seeds must be at least 1, got {args.seeds}.", "Pass --seeds 3.")
    protocols = tuple(dict.fromkeys(args.protocol or ["full"]))
    spec = RunSpec(args.method, dict(_parse_option(o) for o in args.option), protocols,
                   tuple(sorted(set(args.k or [10]))))
    if args.out:  # fail early on an unwritable path, before minutes of training
        out = Path(args.out)
        if not out.parent.exists():
            raise ConfigError(f"The folder of --out {args.out!r} does not exist.", "Create it or pick another path.")
    records = run_seeds(_loader(args), [spec], range(args.seeds), verbose=not args.quiet)
    quality = [r for r in records if r["protocol"] != "cost"]
    print(to_markdown(summarize(quality)))
    if args.out:
        tmp = Path(args.out + ".tmp")
        tmp.write_text(json.dumps(records, indent=1))
        os.replace(tmp, args.out)
        print(f"wrote {len(records)} records to {args.out}", file=sys.stderr)
    return 0


def _cmd_recommend(args: argparse.Namespace) -> int:
    from xcatrec.experiment import log
    from xcatrec.models import make_model

    dataset = _loader(args)(args.seed)
    user = int(dataset.users.index([args.user])[0])
    model = make_model(args.method, dataset.sizes, seed=args.seed,
                       **dict(_parse_option(o) for o in args.option))
    log(f"[{args.method}] training on {dataset.name} ({dataset.source.name} -> {dataset.target.name})",
        verbose=not args.quiet)
    model.fit(dataset, verbose=not args.quiet)
    top = model.recommend([user], k=args.k, exclude_seen=not args.include_seen)[0]
    scores = model.score([user], top)[0]
    raw = dataset.target.items.to_raw(top)
    print(f"rank\titem\tscore  (user {args.user}, target {dataset.target.name}, method {args.method})")
    for rank, (item, score) in enumerate(zip(raw, scores), 1):
        print(f"{rank}\t{item}\t{score:.4f}")
    return 0


def _cmd_bench(args: argparse.Namespace) -> int:
    from xcatrec.bench import run_bench

    run_bench(args.config, out_dir=args.out_dir, verbose=not args.quiet, resume=args.resume,
              scenarios=args.scenario)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the exit status."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")
    args = build_parser().parse_args(argv)
    handlers = {"data": _cmd_data, "evaluate": _cmd_evaluate, "recommend": _cmd_recommend, "bench": _cmd_bench}
    try:
        return handlers[args.command](args)
    except XcatrecError as err:
        print(f"error: {err.problem}", file=sys.stderr)
        if err.fix:
            print(f"fix: {err.fix}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
