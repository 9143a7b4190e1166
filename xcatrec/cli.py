"""Command-line interface: a thin argparse layer over the functions the book chapters call.

Examples::

    python -m xcatrec data stats --dataset amazon-elec-cloth
    python -m xcatrec data leaks --dataset amazon-elec-phone --out leaks.json
    python -m xcatrec evaluate --dataset amazon-elec-cloth --source elec --target cloth \\
        --method bpr-mf --protocol full --protocol sampled-999 --seeds 3 --out results.json
    python -m xcatrec recommend --dataset amazon-elec-cloth --method popularity --user 42 --k 10
    python -m xcatrec evaluate --files elec.csv cloth.csv --method bpr-mf
    python -m xcatrec fit --dataset amazon-elec-phone --method itemknn --save models/phone-itemknn
    python -m xcatrec recommend --model models/phone-itemknn --user 0 --k 10
    python -m xcatrec recommend --model models/phone-itemknn --users users.txt --out recs.csv

Results go to stdout (and ``--out``); progress goes to stderr. Bad input ends with one line naming the
problem and the fix, and exit status 2.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shlex
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Sequence

from xcatrec.errors import ConfigError, DataError, XcatrecError
from xcatrec.names import METHOD_NAMES, PROTOCOL_NAMES, SPLITS


#: ``--option seed=...`` is refused: the seed of a run is the command's own (--seeds / --seed).
_SEED_OPTION = ("--option seed is not accepted: the seed of each run comes from --seeds N (evaluate runs "
                "seeds 0..N-1) or --seed S (recommend, fit).", "Drop --option seed=...; pass --seeds or --seed.")


def _add_data_args(p: argparse.ArgumentParser, *, split: bool = True, required: bool = True) -> None:
    """The data arguments; without ``split`` only the input (``data leaks`` uses the default split);
    not ``required`` where a saved model can stand in for the data (``recommend --model``)."""
    src = p.add_mutually_exclusive_group(required=required)
    src.add_argument("--dataset", help="registered data set: amazon-elec-cloth, amazon-elec-phone, "
                                       "douban-book-music, synthetic")
    src.add_argument("--files", nargs=2, metavar=("SOURCE_FILE", "TARGET_FILE"),
                     help="your own two interaction files (CSV/TSV: user, item[, rating[, timestamp]])")
    p.add_argument("--source", help="source domain (--dataset only; default: the data set's first domain)")
    p.add_argument("--target", help="target domain (--dataset only; default: the data set's second domain)")
    p.add_argument("--data-dir", help="folder with a local copy of the data (else $XCATREC_DATA, else download)")
    if not split:
        return
    p.add_argument("--split", choices=SPLITS, help="default: the data set's published split where it has one, "
                                                   "else leave-one-out (loo)")
    p.add_argument("--beta", type=float, help="--split cold-start only: fraction of overlapping users made cold, "
                                              "in (0, 1) (default 0.2)")
    p.add_argument("--rho", type=float, help="synthetic only: relatedness of the two categories in [0, 1]")
    p.add_argument("--threshold", type=float, help="--files only: ratings >= this count as interactions")
    p.add_argument("--keep-leaks", action="store_true",
                   help="keep source rows that duplicate a held-out target purchase (cross-listed products; "
                        "removed by default, see 'data leaks')")


def _add_method_args(p: argparse.ArgumentParser, *, required: bool = True) -> None:
    p.add_argument("--method", required=required, choices=METHOD_NAMES, metavar="METHOD",
                   help="one of: " + ", ".join(METHOD_NAMES))
    p.add_argument("--option", action="append", default=[], metavar="NAME=VALUE",
                   help="a config field of the method other than seed (see --seeds/--seed), e.g. --option "
                        "dim=32 or --option tower_units=[64,32]; checked against the field's type (repeatable)")
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
    what = ("held-out target rows whose purchase also sits in the user's source history under another id "
            "(cross-listed products), on the default split (the one evaluate uses)")
    leaks = dsub.add_parser("leaks", help=what, description=what)
    _add_data_args(leaks, split=False)
    leaks.set_defaults(split=None, beta=None, rho=None, threshold=None, keep_leaks=True)  # for _loader
    leaks.add_argument("--threshold", dest="jaccard", default="0.8", metavar="JACCARD",
                       help="least Jaccard of the two items' buyer sets, in (0, 1] (default 0.8)")
    leaks.add_argument("--out", help="write the report as JSON to this file")

    ev = sub.add_parser("evaluate", help="train a method over seeds and evaluate it on the target domain")
    _add_data_args(ev)
    _add_method_args(ev)
    ev.add_argument("--protocol", action="append", choices=PROTOCOL_NAMES,
                    help="full ranking (default), sampled with 99/999 negatives, ratings (MAE/RMSE), or "
                         "disencdr-replica (the published protocol replicated: selection on test, 999 "
                         "negatives with replacement; optimistic, never a result); repeatable")
    ev.add_argument("--tune", type=int, metavar="N",
                    help="search the method's hyper-parameters with N trials on the validation split (never "
                         "test), on the first seed, and reuse the choice for the other seeds")
    ev.add_argument("--no-refit", action="store_true",
                    help="test the model fitted on train alone (default: refit on train + validation with "
                         "the chosen settings, and rank with each user's full known history)")
    ev.add_argument("--k", type=int, action="append", help="cut-off for top-K metrics (default 10; repeatable)")
    ev.add_argument("--seeds", type=int, default=1, help="number of seeds (0..N-1)")
    ev.add_argument("--out", help="write the result records as JSON to this file")

    fit = sub.add_parser("fit", help="train a method as evaluate does, refit it on all rows and save a model "
                                     "folder that recommend --model serves")
    _add_data_args(fit)
    _add_method_args(fit)
    fit.add_argument("--tune", type=int, metavar="N",
                     help="search the method's hyper-parameters with N trials on the validation split first")
    fit.add_argument("--seed", type=int, default=0, help="seed of the model and of the search (default 0)")
    fit.add_argument("--save", required=True, metavar="DIR",
                     help="the model folder to write (written whole or not at all)")
    fit.add_argument("--overwrite", action="store_true", help="replace the model already in DIR")

    rec = sub.add_parser("recommend", help="top-K target items by raw user id, from a saved model folder "
                                           "(--model) or from a method trained on the spot")
    rec.add_argument("--model", metavar="DIR", help="a folder written by fit --save: answers without training "
                                                    "(then leave out the data and method arguments)")
    _add_data_args(rec, required=False)
    _add_method_args(rec, required=False)
    who = rec.add_mutually_exclusive_group(required=True)
    who.add_argument("--user", help="raw user id as in the data files")
    who.add_argument("--users", metavar="FILE", help="--model only: a text file with one raw user id per line "
                                                     "(blank lines and lines starting with # are skipped)")
    rec.add_argument("--k", type=int, default=10)
    rec.add_argument("--seed", type=int, help="seed of the model trained on the spot (default 0)")
    rec.add_argument("--include-seen", action="store_true", help="do not drop items the user already has")
    rec.add_argument("--out", help="--model only: write CSV (user, rank, item, score, served) to this file")
    rec.add_argument("--batch-size", type=int, default=None, metavar="USERS",
                     help="--model only: users scored at once (default 256; bounds memory)")

    bench = sub.add_parser("bench", help="run a benchmark config (methods x seeds x scenarios)")
    bench.add_argument("config", help="benchmark config file (JSON), e.g. configs/bench-quick.json")
    bench.add_argument("--out-dir", default="results", help="where results CSV/JSON/Markdown go")
    bench.add_argument("--resume", action="store_true",
                       help="keep the runs already in OUT_DIR/records.json and run only the missing ones")
    bench.add_argument("--overwrite", action="store_true",
                       help="replace the results already in OUT_DIR (kept until the first new run is saved)")
    bench.add_argument("--scenario", action="append", metavar="NAME",
                       help="run only this scenario (repeatable; default: all)")
    bench.add_argument("--quiet", action="store_true")
    return parser


def _loader(args: argparse.Namespace):
    """A function seed -> CrossDomainDataset for the data arguments."""
    from xcatrec.data import load_dataset, load_files

    leaks = "keep" if args.keep_leaks else "remove"
    if args.rho is not None and args.dataset != "synthetic":
        raise ConfigError("--rho applies to --dataset synthetic only.", "Drop --rho or use --dataset synthetic.")
    if args.files:
        return lambda seed: load_files(args.files[0], args.files[1], split=args.split or "loo", beta=args.beta,
                                       seed=seed, implicit_threshold=args.threshold, leaks=leaks)
    if args.threshold is not None:
        raise ConfigError("--threshold applies to --files only.", "Drop --threshold.")
    extra = {} if args.rho is None else {"rho": args.rho}
    return lambda seed: load_dataset(args.dataset, source=args.source, target=args.target, split=args.split,
                                     beta=args.beta, seed=seed, data_dir=args.data_dir, leaks=leaks, **extra)


def _cmd_data(args: argparse.Namespace) -> int:
    from xcatrec.data import DATASETS, dataset_stats, fetch

    if args.data_command == "list":
        for name, spec in DATASETS.items():
            print(f"{name}: domains {', '.join(spec.domain_names)}; {spec.description}")
        return 0
    if args.data_command == "fetch":
        print(fetch(args.dataset, data_dir=args.data_dir, progress=True))
        return 0
    if args.data_command == "leaks":
        return _cmd_data_leaks(args)
    print(dataset_stats(_loader(args)(0)).to_string(index=False))
    return 0


def _cmd_data_leaks(args: argparse.Namespace) -> int:
    from xcatrec.data import find_leaks
    from xcatrec.data.leaks import check_threshold

    try:
        threshold = float(args.jaccard)
    except ValueError:
        threshold = args.jaccard
    threshold = check_threshold(threshold)
    if args.files:
        for flag in ("source", "target", "data_dir"):
            if getattr(args, flag) is not None:
                name = "--" + flag.replace("_", "-")
                raise ConfigError(f"{name} applies to --dataset only.", f"Drop {name}.")
    ds = _loader(args)(0)
    report = find_leaks(ds, threshold=threshold)
    print(f"cross-listing leaks in {ds.name} ({report.source} -> {report.target}, {report.split} split, "
          f"Jaccard >= {report.threshold:g})")
    print(f"test users:              {report.test_users}")
    print(f"affected test users:     {report.affected_test_users} ({100 * report.affected_share:.1f}%)")
    print(f"identical buyer sets:    {report.identical}")
    print(f"cross-listed item pairs: {report.item_pairs}")
    if args.out:
        _write_json(args.out, report.to_dict(ds.users, ds.source.items, ds.target.items))
        print(f"wrote the report to {args.out}", file=sys.stderr)
    return 0


def _cmd_evaluate(args: argparse.Namespace) -> int:
    from xcatrec.evaluation import summarize, to_markdown
    from xcatrec.experiment import RunSpec, quality_records, run_seeds
    from xcatrec.tuning import check_trials

    protocols = tuple(dict.fromkeys(args.protocol or ["full"]))
    spec = RunSpec(args.method, args.method_options, protocols, tuple(sorted(set(args.k or [10]))))
    tune = None if args.tune is None else check_trials(args.tune)
    records = run_seeds(_loader(args), [spec], range(args.seeds), verbose=not args.quiet, tune=tune,
                        refit=not args.no_refit)
    print(to_markdown(summarize(quality_records(records))))
    if args.out:
        _write_json(args.out, records)
        print(f"wrote {len(records)} records to {args.out}", file=sys.stderr)
    return 0


def _cmd_recommend(args: argparse.Namespace) -> int:
    if args.model:
        return _recommend_from_folder(args)
    from xcatrec.experiment import log
    from xcatrec.models import make_model

    seed = 0 if args.seed is None else args.seed
    dataset = _loader(args)(seed)
    user = int(dataset.users.index([args.user])[0])
    model = make_model(args.method, dataset.sizes, seed=seed, **args.method_options)
    log(f"[{args.method}] training on {dataset.name} ({dataset.source.name} -> {dataset.target.name})",
        verbose=not args.quiet)
    model.fit(dataset, verbose=not args.quiet)
    top = model.recommend([user], k=args.k, exclude_seen=not args.include_seen)[0]
    top = top[top >= 0]  # recommend pads with -1 when fewer than k items are left
    if len(top) < args.k:
        n_items = dataset.target.n_items
        why = (f"the target domain has only {n_items} items" if args.include_seen else
               f"user {args.user} already has {n_items - len(top)} of the {n_items} target items and those "
               "are left out (--include-seen ranks them too)")
        print(f"note: returned {len(top)} items, fewer than --k {args.k}: {why}.", file=sys.stderr)
    scores = model.score([user], top)[0]
    raw = dataset.target.items.to_raw(top)
    print(f"rank\titem\tscore  (user {args.user}, target {dataset.target.name}, method {args.method})")
    for rank, (item, score) in enumerate(zip(raw, scores), 1):
        print(f"{rank}\t{item}\t{score:.4f}")
    return 0


def _data_provenance(args: argparse.Namespace, dataset) -> dict[str, Any]:
    """Where the data of a ``fit`` came from: name, domains, split, loading options and the SHA-256 of
    each input file (the registry's verified digests for a registered data set)."""
    from xcatrec.data import get_spec, sha256_file

    if args.files:
        files = {str(Path(f).resolve()): sha256_file(f) for f in args.files}
    else:
        files = {f.path: f.sha256 for f in get_spec(args.dataset).files}
    options = {k: getattr(args, k) for k in ("split", "rho", "threshold", "data_dir") if getattr(args, k) is not None}
    options.update(seed=args.seed, **({"beta": args.beta} if args.split == "cold-start" else {}))
    return {"name": dataset.name, "source": dataset.source.name, "target": dataset.target.name,
            "split": dataset.split, "leaks": dataset.info.get("leaks", "kept"), "files": files, "options": options}


def _cmd_fit(args: argparse.Namespace) -> int:
    from xcatrec.serving import fit_for_serving, save_folder
    from xcatrec.tuning import check_trials

    tune = None if args.tune is None else check_trials(args.tune)
    dataset = _loader(args)(args.seed)
    tic = time.perf_counter()
    model, full, training = fit_for_serving(dataset, args.method, args.method_options, seed=args.seed, tune=tune,
                                            verbose=not args.quiet)
    seconds = time.perf_counter() - tic
    command = "python -m xcatrec " + shlex.join(args.argv)
    path = save_folder(model, full, args.save, command=command, data=_data_provenance(args, dataset),
                       training={**training, "fit_seconds": seconds}, overwrite=args.overwrite)
    print(f"saved {args.method} ({full.n_users} users, {full.target.n_items} {full.target.name} items) to {path} "
          f"in {seconds:.1f} s; serve it with: python -m xcatrec recommend --model {shlex.quote(str(path))} --user ID")
    return 0


def _read_user_ids(file: str) -> list[str]:
    """The raw user ids of a ``--users`` file: one per line, blank lines and ``#`` comments skipped."""
    try:
        text = Path(file).read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise DataError(f"--users {file!r} is not UTF-8 text.", "Save it as UTF-8, one raw user id per line.") from None
    except OSError as exc:
        raise DataError(f"--users {file!r} cannot be read: {exc.strerror or exc}.",
                        "Check the path and its permissions.") from None
    ids = []
    for number, line in enumerate(text.splitlines(), 1):
        user = line.strip()
        if not user or user.startswith("#"):
            continue
        if any(sep in user for sep in ",;\t"):
            raise DataError(f"--users {file!r} line {number} holds {user!r}, not one user id.",
                            "Put one raw user id per line, without commas, semicolons or tabs.")
        ids.append(user)
    if not ids:
        raise DataError(f"--users {file!r} holds no user id.", "Put one raw user id per line.")
    return ids


def _served_note(served, model) -> str:
    """Why a user was served by a fallback, in words (for stderr)."""
    data = model.meta.get("data", {})
    if served.served == "source-history":
        return (f"note: user {served.user!r} has no {data.get('target')} history; {model.method} ranked from their "
                f"{data.get('source')} history (served by: source-history).")
    if model.users._lookup.get(served.user) is None:
        why = f"is not among the model's {len(model.users)} users"
    else:
        why = f"has no {data.get('target')} history and {model.method} reads the target category alone"
    return f"note: user {served.user!r} {why}; served the most bought {data.get('target')} items (served by: popularity)."


def _recommend_from_folder(args: argparse.Namespace) -> int:
    """``recommend --model``: load the folder (checked, no training) and answer by raw id."""
    import csv
    import io

    from xcatrec.bench import write_atomic
    from xcatrec.serving import BATCH_USERS, SERVED, ServedModel

    users = _read_user_ids(args.users) if args.users else [args.user]
    tic = time.perf_counter()
    model = ServedModel.load(args.model)
    answers = list(model.recommend(users, args.k, exclude_seen=not args.include_seen,
                                   batch_size=args.batch_size or BATCH_USERS))
    seconds = time.perf_counter() - tic
    if args.user and not args.out:
        [one] = answers
        if one.served != "model":
            print(_served_note(one, model), file=sys.stderr)
        if len(one.items) < args.k:
            print(f"note: returned {len(one.items)} items, fewer than --k {args.k}.", file=sys.stderr)
        print(f"rank\titem\tscore  (user {args.user}, target {model.meta['data']['target']}, method {model.method}, "
              f"served by: {one.served})")
        for rank, (item, score) in enumerate(zip(one.items, one.scores), 1):
            print(f"{rank}\t{item}\t{score:.4f}")
        return 0
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["user", "rank", "item", "score", "served"])
    for one in answers:
        writer.writerows([one.user, rank, item, f"{score:.6g}", one.served]
                         for rank, (item, score) in enumerate(zip(one.items, one.scores), 1))
    counts = {how: sum(a.served == how for a in answers) for how in SERVED}
    if args.out:
        write_atomic(Path(args.out), buffer.getvalue())
    else:
        sys.stdout.write(buffer.getvalue())
    if not args.quiet:
        print(f"served {len(answers)} users in {seconds:.2f} s (load + score): "
              + ", ".join(f"{n} by {how}" for how, n in counts.items())
              + (f"; wrote {args.out}" if args.out else ""), file=sys.stderr)
    return 0


def _cmd_bench(args: argparse.Namespace) -> int:
    from xcatrec.bench import run_bench

    run_bench(args.config, out_dir=args.out_dir, verbose=not args.quiet, resume=args.resume,
              overwrite=args.overwrite, scenarios=args.scenario)
    return 0


def _check_out(out: str) -> None:
    """Refuse an ``--out`` that cannot be written, before anything is loaded or trained."""
    path = Path(out)
    if path.is_dir():
        raise ConfigError(f"--out {out!r} is a directory.", "Give a file name, e.g. --out results.json.")
    if path.exists() and not path.is_file():
        raise ConfigError(f"--out {out!r} exists and is not a regular file (a device, pipe or socket).",
                          "Give the path of a new file or of a regular file to replace.")
    folder = Path(os.path.abspath(out)).parent
    if not folder.is_dir():
        raise ConfigError(f"The folder of --out {out!r} does not exist.", "Create it or pick another path.")
    try:  # the very way _write_json writes: a temporary file in the same folder
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=folder)
        os.close(fd)
        os.remove(tmp)
    except OSError as exc:
        raise ConfigError(f"--out {out!r} cannot be written: {exc.strerror or exc} (folder {folder}).",
                          "Pick a folder you can write to.") from None


def _non_finite(records: Any) -> str:
    """Where the first NaN or infinity in ``records`` (a list of result dicts) is, in words."""
    for i, record in enumerate(records if isinstance(records, list) else [records]):
        if not isinstance(record, dict):
            continue
        for key, value in record.items():
            if isinstance(value, float) and not math.isfinite(value):
                labels = ", ".join(f"{k} {record[k]}" for k in ("method", "seed", "protocol", "metric", "k")
                                   if record.get(k) is not None)
                return f"record {i} ({labels}) has {key} {value}"
    return "a value is NaN or infinite"


def _write_json(out: str, records: Any) -> None:
    """Write ``records`` as strict JSON (no NaN or infinity) to ``out``, atomically
    (:func:`xcatrec.bench.write_atomic`), so a failure leaves neither a partial nor a stray file."""
    from xcatrec.bench import write_atomic

    try:
        text = json.dumps(records, indent=1, allow_nan=False)
    except ValueError:
        raise ConfigError(f"The results cannot be written as JSON: {_non_finite(records)}, which JSON "
                          f"cannot hold; {out} was not written.",
                          "Check the input data for extreme or missing values (ratings, timestamps); if "
                          "they are fine, please report this.") from None
    try:
        write_atomic(Path(out), text + "\n")
    except OSError as exc:
        raise ConfigError(f"--out {out!r} could not be written: {exc.strerror or exc}.",
                          "Check the free space and permissions of its folder.") from None


def _check_recommend(args: argparse.Namespace) -> None:
    """``recommend`` takes either ``--model`` alone or the data and method to train on the spot."""
    if args.model:
        given = [flag for flag, value in (
            ("--dataset", args.dataset), ("--files", args.files), ("--method", args.method), ("--option", args.option),
            ("--seed", args.seed), ("--source", args.source), ("--target", args.target), ("--data-dir", args.data_dir),
            ("--split", args.split), ("--beta", args.beta), ("--rho", args.rho), ("--threshold", args.threshold),
            ("--keep-leaks", args.keep_leaks)) if value not in (None, False, [])]
        if given:
            raise ConfigError(f"{', '.join(given)} cannot be combined with --model: the model folder fixes the data, "
                              "the method and its options.", "Drop them, or drop --model to train on the spot.")
        if args.users and not Path(args.users).is_file():
            raise DataError(f"--users {args.users!r} is not a file.", "Give a text file with one raw user id per line.")
    else:
        missing = [flag for flag, value in (("--dataset or --files", args.dataset or args.files),
                                            ("--method", args.method)) if not value]
        if missing:
            raise ConfigError(f"recommend needs --model DIR, or {' and '.join(missing)} to train on the spot.",
                              "Pass --model DIR (a folder written by fit --save), or --dataset NAME --method M.")
        only = [flag for flag, value in (("--users", args.users), ("--out", args.out),
                                         ("--batch-size", args.batch_size)) if value is not None]
        if only:
            raise ConfigError(f"{', '.join(only)} work(s) with --model only.",
                              "Save a model with: python -m xcatrec fit ... --save DIR, then pass --model DIR.")
    if args.batch_size is not None and args.batch_size < 1:
        raise ConfigError(f"--batch-size must be at least 1, got {args.batch_size}.", "Pass --batch-size 256, for example.")


def _check_args(args: argparse.Namespace) -> None:
    """Check every argument before any data is loaded or any model is built.

    Numbers (seeds, k, beta, threshold, rho), the input files and folders, ``--out``, and each
    ``--option`` against the type of the method's config field (the typed options are stored as
    ``args.method_options``). Raises :class:`ConfigError` or :class:`DataError` naming the argument.
    """
    from xcatrec.data.readers import check_file

    if args.command == "recommend":
        _check_recommend(args)
    if args.command == "fit":
        from xcatrec.serving import check_save_path
        from xcatrec.tuning import check_trials

        check_save_path(args.save, overwrite=args.overwrite)
        if args.tune is not None:
            check_trials(args.tune)
    ks = getattr(args, "k", None)  # a list for evaluate, a number for recommend
    for flag, value, least, example in [("--seeds", getattr(args, "seeds", None), 1, 3),
                                        ("--seed", getattr(args, "seed", None), 0, 0),
                                        *(("--k", k, 1, 10) for k in (ks if isinstance(ks, list) else [ks]))]:
        if value is not None and value < least:
            raise ConfigError(f"{flag} must be at least {least}, got {value}.", f"Pass {flag} {example}, for example.")
    if hasattr(args, "beta"):
        if args.beta is not None and args.split != "cold-start":
            raise ConfigError("--beta applies to --split cold-start only (the fraction of overlapping users "
                              "made cold); other splits would ignore it.", "Drop --beta, or add --split cold-start.")
        if args.beta is not None and not 0 < args.beta < 1:
            raise ConfigError(f"--beta must be strictly between 0 and 1, got {args.beta}.",
                              "Pass --beta 0.2, for example.")
        args.beta = 0.2 if args.beta is None else args.beta
    threshold = getattr(args, "threshold", None)
    if isinstance(threshold, float) and not math.isfinite(threshold):
        raise ConfigError(f"--threshold must be a finite number, got {threshold}.", "Pass --threshold 4, for example.")
    if getattr(args, "rho", None) is not None and not 0 <= args.rho <= 1:
        raise ConfigError(f"--rho must be between 0 and 1, got {args.rho}.", "Pass --rho 0.5, for example.")
    for file in getattr(args, "files", None) or ():
        check_file(file)
    data_dir = getattr(args, "data_dir", None)
    if data_dir and Path(data_dir).expanduser().exists() and not Path(data_dir).expanduser().is_dir():
        raise ConfigError(f"--data-dir {data_dir!r} is not a folder.", "Give the folder holding the data files.")
    if getattr(args, "out", None):
        _check_out(args.out)
    if getattr(args, "method", None) is not None:
        from xcatrec.method_options import parse_options

        args.method_options = parse_options(args.method, args.option, reserved={"seed": _SEED_OPTION})


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the exit status."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")
    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser().parse_args(argv)
    args.argv = argv  # fit records the command that made a model folder
    handlers = {"data": _cmd_data, "evaluate": _cmd_evaluate, "fit": _cmd_fit, "recommend": _cmd_recommend,
                "bench": _cmd_bench}
    try:
        _check_args(args)
        return handlers[args.command](args)
    except XcatrecError as err:
        print(f"error: {err.problem}", file=sys.stderr)
        if err.fix:
            print(f"fix: {err.fix}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
