"""The benchmark: methods x seeds x scenarios from one JSON config, one command.

``python -m xcatrec bench configs/bench-quick.json`` writes, under ``--out-dir``:

* ``records.json`` / ``records.csv``: every metric of every run (tidy, labelled with its ``kind``, see
  :data:`xcatrec.names.RECORD_KINDS`, the ``run_key`` of its run and the git ``commit``); ``runs.json``:
  the settings behind each ``run_key``;
* ``summary.csv``: mean and 95% interval over seeds, paired t-tests against the scenario's target-only
  baseline and against popularity, seconds per epoch and peak memory;
* ``summary.md``: the same as Markdown tables, one per scenario, with the command, commit and date.

The config is a :class:`~xcatrec.bench_config.BenchConfig` (see :mod:`xcatrec.bench_config` for its
format, defaults and checks). The summary holds test results only, and counts per transfer method the
seeds on which it scored below the target-only run on validation (:func:`negative_transfer_flags`).

Results are never lost:

* **One writer per folder.** A run holds an exclusive lock (``fcntl.flock``) on ``OUT_DIR/.lock``, with
  its pid written inside, from before it reads anything there until it ends. A second ``bench`` on the
  same folder stops at once with an error naming that pid. A lock rather than per-run files merged
  later: two processes would otherwise train the same runs twice, and the kernel drops a ``flock``
  when its process dies in any way (even ``kill -9``), so a crash never leaves a stale lock behind.
* **Every run is keyed.** Each record carries ``run_key``: a hash of everything that determines the
  run (:func:`run_settings`: the method's options with its defaults filled in, the other scenario and
  config fields that are not labels, the seed and ``xcatrec.__version__``), and the git commit as a label.
  ``runs.json`` maps each key to those settings. ``--resume`` reuses only the runs whose key belongs
  to the config at hand; it says how many it reused, and why the others were not (with the settings
  that differ). Those are moved to ``records-set-aside.json`` (appended to, never overwritten), so
  ``records.json`` and the summary only ever hold runs of the current config, and nothing is thrown away.
* **No silent overwrite.** A folder that already holds results is refused unless ``--resume``
  (continue them) or ``--overwrite`` (replace them) is given. ``--overwrite`` leaves the old files in
  place until the first new run is saved, so an early failure costs nothing.
* **Always consistent.** After every finished run, ``records.json``, ``runs.json``, ``records.csv``,
  ``summary.csv`` and ``summary.md`` are all rewritten from the same records in memory (``summary.md``
  says how many runs it covers), each through a uniquely named temporary file in the same folder
  (created with ``O_EXCL``, so a planted link is never followed), flushed and renamed over the old
  one. A kill can at worst leave one file a run behind the others, and ``--resume`` rewrites them all.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import functools
import hashlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import warnings
from collections import Counter
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np
import pandas as pd

import xcatrec
from xcatrec.bench_config import BenchConfig, ScenarioConfig, load_config, resolved_options
from xcatrec.errors import ConfigError, DataError
from xcatrec.experiment import LEGACY_PROTOCOLS, RunSpec, log, run_seeds, with_kind
from xcatrec.names import RATING_PROTOCOL, TRANSFER

try:
    import fcntl
except ImportError:  # Windows: no flock; the folder is then not locked
    fcntl = None

#: The committed results that the book prints and their configs, as paths inside a checkout of the
#: repository (they are not part of the installed package): see :func:`committed`.
RESULTS_DIR, RESULTS_CONFIG = Path("benchmarks/results"), Path("configs/bench-results.json")
#: The committed results of the sound protocol and their config.
RESULTS_SOUND_DIR, RESULTS_SOUND_CONFIG = Path("benchmarks/results-sound"), Path("configs/bench-sound.json")

#: What a benchmark writes in its output folder, all rewritten together after every finished run.
OUTPUTS = ("records.json", "runs.json", "records.csv", "summary.csv", "summary.md")
#: Records that ``--resume`` did not reuse (runs of another config); appended to, never overwritten.
SET_ASIDE = "records-set-aside.json"
#: The lock file of an output folder (see the module docstring).
LOCK = ".lock"
#: Fields of :class:`~xcatrec.bench_config.BenchConfig` left out of ``run_key``: a label, or entered per run.
NOT_RUN_SETTINGS = frozenset({"methods", "scenarios", "seeds", "description"})
#: Fields of :class:`~xcatrec.bench_config.ScenarioConfig` left out of ``run_key``: labels and the choice
#: of runs (a method's ``options`` enter it resolved, and only that method's).
SCENARIO_LABELS = frozenset({"name", "methods", "seeds", "target_only", "options"})


def committed(path: str | Path, root: str | Path | None = None) -> Path:
    """``path`` (e.g. :data:`RESULTS_SOUND_DIR`) inside the checkout of the repository that holds
    ``root`` (default: the current folder): the first of ``root`` and the folders above it where
    ``path`` exists. A :class:`ConfigError` when there is none (an installed package has no
    committed results)."""
    root = Path(root if root is not None else Path.cwd()).resolve()
    for folder in (root, *root.parents):
        if (folder / path).exists():
            return folder / path
    raise ConfigError(f"{path} is not in {root} nor in any folder above it; the committed benchmark results "
                      "belong to a checkout of the xcatrec repository, not to the installed package.",
                      "Run from inside a checkout of the repository, or pass the --out-dir of your own benchmark.")


def run_settings(scenario: ScenarioConfig, config: BenchConfig, method: str, seed: int) -> dict[str, Any]:
    """Everything that determines one run, hashed into its :func:`run_key`: the method's options as it
    runs them (but a field of ``config_class.added_fields`` at its older value, see
    :class:`~xcatrec.core.ModelConfig`), the scenario's fields but :data:`SCENARIO_LABELS`, the config's but :data:`NOT_RUN_SETTINGS`
    (so a field added later is covered without a change here), the seed and the package version."""
    from xcatrec.models import METHODS

    options = resolved_options(method, config.options(scenario, method), f"method {method!r}")
    added = METHODS[method].config_class.added_fields  # at their older value: as the older runs ran
    options = {k: v for k, v in options.items() if not (k in added and v == added[k])}
    settings = {f.name: getattr(scenario, f.name) for f in fields(scenario) if f.name not in SCENARIO_LABELS}
    top = {f.name: getattr(config, f.name) for f in fields(config) if f.name not in NOT_RUN_SETTINGS}
    return {"method": method, "options": options, "scenario": settings, "config": top, "seed": seed,
            "version": xcatrec.__version__}


def run_key(settings: dict[str, Any]) -> str:
    """A short stable hash of :func:`run_settings` (key order and JSON spacing do not matter)."""
    text = json.dumps(settings, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _git_commit() -> str:
    """The commit of the xcatrec code that runs: asked in the package's own folder (not the current
    one), and only when that folder is tracked by git; ``"unknown"`` for an installed package."""
    folder = Path(xcatrec.__file__).resolve().parent
    try:
        # a package installed into a virtual environment inside some checkout is not that checkout's code
        subprocess.run(["git", "ls-files", "--error-unmatch", "__init__.py"], cwd=folder, capture_output=True,
                       check=True)
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=folder, capture_output=True,
                                text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return commit or "unknown"


def run_scenario(scenario: ScenarioConfig, config: BenchConfig, *, verbose: bool,
                 done: set[tuple[str, str]] = frozenset(),
                 on_records: Callable[[list[dict]], None] | None = None, commit: str | None = None,
                 choices: dict[str, dict[str, Any]] | None = None) -> list[dict]:
    """All methods x seeds of one scenario; returns tidy records labelled with the scenario name, the
    ``run_key`` of their run (see :func:`run_settings`) and the git ``commit``.

    Runs whose ``(scenario name, run_key)`` is in ``done`` are skipped (resuming a benchmark);
    ``choices`` are the options earlier searches chose per method (reused with ``tune_scope``
    ``"first-seed"``), see :func:`xcatrec.experiment.run_seeds`. To run part of a scenario, pass a
    part, e.g. ``scenario.part(("itemknn",), seeds=(0,))`` (see :meth:`xcatrec.bench_config.ScenarioConfig.part`).
    """
    from xcatrec.data import load_dataset

    specs = [RunSpec(m, config.options(scenario, m), scenario.protocols, config.ks) for m in scenario.methods]

    def load(seed: int):
        return load_dataset(scenario.dataset, source=scenario.source, target=scenario.target, split=scenario.split,
                            beta=scenario.beta, seed=seed, leaks=scenario.leaks or config.leaks, **scenario.data)

    name = scenario.name
    keys = {(m, seed): run_key(run_settings(scenario, config, m, seed)) for m in scenario.methods
            for seed in scenario.seeds}
    commit = _git_commit() if commit is None else commit

    def keyed(records: list[dict]) -> None:
        for record in records:
            record["run_key"] = keys[(record["method"], record["seed"])]
        if on_records is not None:
            on_records(records)

    skipped = sum((name, key) in done for key in keys.values())
    log(f"== scenario {name}: {len(specs)} methods x {len(scenario.seeds)} seeds"
        + (f" ({skipped} runs already done)" if skipped else ""), verbose=verbose)
    return run_seeds(load, specs, scenario.seeds, verbose=verbose, labels={"scenario": name, "commit": commit},
                     measure_memory=True, skip=lambda spec, seed: (name, keys[(spec.method, seed)]) in done,
                     on_records=keyed, validate_users=config.validate_users, tune=config.tune,
                     tune_scope=config.tune_scope, refit=config.refit, choices=choices)


def negative_transfer_flags(rows: pd.DataFrame, target_only: str, ks: list[int]) -> pd.DataFrame:
    """Per transfer method of one scenario: on how many seeds its validation score (records of kind
    ``"valid"``) was worse than the target-only method's of the same seed (NDCG at the first cut-off;
    RMSE for rating scenarios).

    Returns:
        Columns ``method``, ``neg_transfer_valid`` (seeds worse) and ``valid_seeds`` (seeds compared);
        empty when the scenario has no validation records for ``target_only``.
    """
    valid = rows[rows["kind"] == "valid"]
    ranking = valid[(valid["protocol"] != RATING_PROTOCOL) & (valid["metric"] == "ndcg") & (valid["k"] == ks[0])]
    ratings = valid[(valid["protocol"] == RATING_PROTOCOL) & (valid["metric"] == "rmse")]
    valid, higher_is_better = (ranking, True) if len(ranking) else (ratings, False)
    table = valid.pivot_table(index="seed", columns="method", values="value", aggfunc="first")
    out = []
    for method in [m for m in table.columns if m in TRANSFER and m != target_only and target_only in table.columns]:
        pair = table[[method, target_only]].dropna()
        worse = pair[method] < pair[target_only] if higher_is_better else pair[method] > pair[target_only]
        out.append({"method": method, "neg_transfer_valid": int(worse.sum()), "valid_seeds": len(pair)})
    return pd.DataFrame(out, columns=["method", "neg_transfer_valid", "valid_seeds"])


def summarize_bench(records: list[dict], config: BenchConfig) -> pd.DataFrame:
    """Summary rows per scenario: test results with paired tests, joined with cost columns, the
    negative-transfer flags of the validation records and the bootstrap verdicts of the per-user ones."""
    from xcatrec.evaluation import summarize

    frame = pd.DataFrame([r for r in records if r["kind"] in ("test", "valid", "cost")])
    parts = []
    for scenario in config.scenarios:
        rows = frame[frame["scenario"] == scenario.name] if len(frame) else frame
        if rows.empty or not (rows["kind"] == "test").any():
            continue
        quality = rows[rows["kind"] == "test"]
        cost = rows[rows["kind"] == "cost"].pivot_table(index="method", columns="metric", values="value",
                                                        aggfunc="median")
        methods = set(quality["method"])
        target_only = scenario.target_only
        summary = summarize(quality, baseline=target_only if target_only in methods else None)
        summary = summary.rename(columns={"delta": "delta_vs_target_only", "rel_delta": "rel_vs_target_only",
                                          "p_value": "p_vs_target_only"})
        if "popularity" in methods:
            pop = summarize(quality, baseline="popularity")
            keys = [c for c in summary.columns if c in pop.columns and c not in
                    ("mean", "ci_low", "ci_high", "n_seeds", "delta", "rel_delta", "p_value")]
            summary = summary.merge(pop[keys + ["rel_delta", "p_value"]].rename(
                columns={"rel_delta": "rel_vs_popularity", "p_value": "p_vs_popularity"}), on=keys, how="left")
        summary = summary.merge(cost, left_on="method", right_index=True, how="left")
        summary = summary.merge(negative_transfer_flags(rows, target_only, list(config.ks)), on="method", how="left")
        boot = bootstrap_table([r for r in records if r["kind"] == "per-user" and r.get("scenario") == scenario.name],
                               target_only)
        if len(boot):
            summary = summary.merge(boot, on=["method", "protocol", "metric", "k"], how="left")
        summary.insert(0, "scenario", scenario.name)
        parts.append(summary)
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()


#: Practical threshold of the verdict words in the benchmark summary (relative NDCG@10 difference).
VERDICT_THRESHOLD = 0.02


def bootstrap_table(per_user: list[dict], reference: str, *, n_boot: int = 2000) -> pd.DataFrame:
    """Each method against ``reference`` by the paired bootstrap over test users and seeds.

    Reads the per-user records of one scenario (full-ranking NDCG@10, see
    :func:`xcatrec.experiment.run_one`) and returns per method: ``boot_rel`` (relative difference of
    the means), ``boot_low`` / ``boot_high`` (its 95% interval), ``boot_p`` and ``verdict`` (the words
    of :func:`xcatrec.evaluation.bootstrap.verdict` at :data:`VERDICT_THRESHOLD`). Empty without
    per-user records for ``reference``.
    """
    from xcatrec.evaluation.bootstrap import compare_runs, per_user_frame, verdict

    columns = ["method", "protocol", "metric", "k", "boot_rel", "boot_low", "boot_high", "boot_p", "verdict"]
    if not per_user:
        return pd.DataFrame(columns=columns)
    frame = per_user_frame(per_user)
    out = []
    for (protocol, method), _ in frame.groupby(["protocol", "method"]):
        if method == reference or not ((frame["protocol"] == protocol) & (frame["method"] == reference)).any():
            continue
        with warnings.catch_warnings():  # a benchmark in progress has seeds one method has not run yet
            warnings.simplefilter("ignore", UserWarning)
            result = compare_runs(frame[frame["protocol"] == protocol], method, reference, metric="ndcg@10",
                                  n_boot=n_boot, on_missing="drop")
        out.append({"method": method, "protocol": protocol, "metric": "ndcg", "k": 10, "boot_rel": result.estimate,
                    "boot_low": result.ci_low, "boot_high": result.ci_high, "boot_p": result.p_value,
                    "verdict": verdict(result, threshold=VERDICT_THRESHOLD)})
    table = pd.DataFrame(out, columns=columns)
    table["k"] = table["k"].astype("Int64")
    return table


def render_markdown(summary: pd.DataFrame, *, command: str, runs: str | None = None,
                    commit: str | None = None) -> str:
    """Markdown report: provenance header and one table per scenario and protocol.

    Args:
        runs: what the tables cover, e.g. ``"9 of 12 in this config"`` (a ``- runs:`` line).
        commit: the commit line (default: the commit of the running code).
    """
    lines = ["# xcatrec benchmark", "", f"- command: `{command}`", f"- commit: {commit or _git_commit()}",
             f"- date: {_dt.datetime.now(_dt.timezone.utc):%Y-%m-%d %H:%M UTC}",
             *([f"- runs: {runs}"] if runs else []),
             "- mean and 95% t-interval over seeds; p: paired t-test over seeds",
             "- neg_valid: seeds on which a transfer method scored below the target-only method on the "
             "validation split (of the seeds compared)",
             "- vs target-only (users x seeds): relative NDCG@10 difference with its 95% paired-bootstrap "
             "interval over test users and seeds, and the verdict it supports "
             f"(practical threshold {VERDICT_THRESHOLD:.0%})", ""]
    cols = ["method", "mean", "ci", "rel_vs_target_only", "p_vs_target_only", "rel_vs_popularity",
            "p_vs_popularity", "seconds_per_epoch", "fit_seconds", "peak_mb", "neg_valid"]
    if summary.empty:
        return "\n".join(lines + ["No finished runs yet.", ""])
    for (scenario, protocol, metric, k), rows in summary.groupby(["scenario", "protocol", "metric", "k"],
                                                                 dropna=False, sort=False):
        label = f"{metric}@{int(k)}" if pd.notna(k) else metric
        has_boot = "boot_rel" in rows.columns and rows["boot_rel"].notna().any()
        head = cols + (["vs target-only (users x seeds)", "verdict"] if has_boot else [])
        lines += [f"## {scenario}: {protocol}, {label}", "", "| " + " | ".join(head) + " |",
                  "|" + "---|" * len(head)]
        for _, r in rows.sort_values("mean", ascending=protocol.endswith("ratings")).iterrows():
            half = (r["ci_high"] - r["ci_low"]) / 2 if pd.notna(r.get("ci_high")) else float("nan")
            cells = [r["method"], f"{r['mean']:.4f}", f"±{half:.4f}"]
            for c in cols[3:-1]:
                v = r.get(c, float("nan"))
                cells.append("" if pd.isna(v) else (f"{v:+.1%}" if c.startswith("rel") else
                                                     f"{v:.3g}" if c.startswith("p_") else f"{v:.2f}"))
            seeds = r.get("valid_seeds", float("nan"))
            cells.append(f"{int(r['neg_transfer_valid'])}/{int(seeds)}" if pd.notna(seeds) and seeds else "")
            if has_boot:
                rel = r.get("boot_rel", float("nan"))
                cells += ["" if pd.isna(rel) else f"{rel:+.1%} [{r['boot_low']:+.1%}, {r['boot_high']:+.1%}]",
                          "" if pd.isna(rel) else str(r["verdict"])]
            lines.append("| " + " | ".join(cells) + " |")
        lines.append("")
    return "\n".join(lines)


def run_bench(config_path: str | Path, *, out_dir: str | Path = "results", verbose: bool = True,
              resume: bool = False, overwrite: bool = False, scenarios: list[str] | None = None) -> pd.DataFrame:
    """Run a benchmark config and write its results; returns the summary table.

    Args:
        resume: keep the finished runs of this very config in ``out_dir`` and run only the missing
            ones; runs of another config are set aside (see the module docstring).
        overwrite: replace the results already in ``out_dir``; they stay until the first new run is saved.
        scenarios: run only these scenario names (all by default); with ``resume`` the other
            scenarios' records are kept.

    Raises:
        ConfigError: A bad config; ``out_dir`` holds results and neither ``resume`` nor ``overwrite``
            is set; another benchmark is writing to ``out_dir``.
        DataError: ``resume`` finds a ``records.json`` that is not a list of records.
    """
    config = load_config(config_path)
    for name in scenarios or ():
        config.scenario(name)  # an unknown name is a ConfigError
    if resume and overwrite:
        raise ConfigError("--resume and --overwrite exclude each other.",
                          "Pass --resume to continue the results in --out-dir, or --overwrite to replace them.")
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise ConfigError(f"--out-dir {str(out)!r} is a file, not a folder.",
                          "Pass a folder (it is created if missing).")
    plan = {(s.name, m, seed): run_settings(s, config, m, seed)
            for s in config.scenarios for m in s.methods for seed in s.seeds}  # every run of the config
    keys = {ident: run_key(settings) for ident, settings in plan.items()}
    settings = {keys[ident]: plan[ident] for ident in plan}
    commit = _git_commit()
    command = "python -m xcatrec bench " + " ".join(sys.argv[2:] if sys.argv[1:2] == ["bench"]
                                                    else [str(config_path)])
    out.mkdir(parents=True, exist_ok=True)
    with _exclusive(out), _interrupts() as interrupted:
        for orphan in [tmp for name in (*OUTPUTS, SET_ASIDE) for tmp in out.glob(f".{name}.*.tmp")]:
            with contextlib.suppress(OSError):  # temporary files that a killed benchmark left behind
                orphan.unlink()
        found = [name for name in (*OUTPUTS, SET_ASIDE) if os.path.lexists(out / name)]
        if found and not (resume or overwrite):
            raise ConfigError(f"{out} already holds benchmark results ({', '.join(found)}); nothing was changed.",
                              "Pass --resume to continue them, --overwrite to replace them (they stay until the "
                              "first new run is saved), or another --out-dir.")
        records, changed = _resume(out, plan, keys) if resume else ([], False)
        done = {(r["scenario"], r["run_key"]) for r in records if r["kind"] == "cost"}
        replacing = [overwrite and bool(found)]
        if replacing[0]:
            log(f"--overwrite: the results in {out} are replaced when the first new run is saved")

        def publish() -> pd.DataFrame:
            """Rewrite every output file from ``records``: first the records, then what is derived from them."""
            ran = {r.get("run_key") for r in records}
            write_atomic(out / "records.json", json.dumps(records, indent=1))
            write_atomic(out / "runs.json", json.dumps({k: v for k, v in settings.items() if k in ran}, indent=1,
                                                       sort_keys=True))
            write_atomic(out / "records.csv", pd.DataFrame(records).to_csv(index=False))
            summary = summarize_bench(records, config) if records else pd.DataFrame()
            write_atomic(out / "summary.csv", summary.to_csv(index=False))
            runs = len({(r.get("scenario"), r.get("run_key")) for r in records if r["kind"] == "cost"})
            earlier = sorted({str(r.get("commit")) for r in records} - {commit})
            write_atomic(out / "summary.md", render_markdown(
                summary, command=command, runs=f"{runs} of the {len(plan)} in this config",
                commit=commit + (f" (earlier runs: {', '.join(earlier)})" if earlier else "")))
            return summary

        def save(new: list[dict]) -> None:
            if replacing[0]:
                replacing[0] = False
                if os.path.lexists(out / SET_ASIDE):
                    os.unlink(out / SET_ASIDE)
                    log(f"--overwrite: removed {out / SET_ASIDE}")
            records.extend(new)
            publish()  # every finished run survives a crash, and every file agrees with records.json
            if interrupted():  # a Ctrl-C whose KeyboardInterrupt was swallowed during the run
                raise KeyboardInterrupt

        if changed:
            publish()
        for scenario in config.scenarios:
            if scenarios and scenario.name not in scenarios:
                continue
            run_scenario(scenario, config, verbose=verbose, done=done, on_records=save, commit=commit,
                         choices=searched_choices(records, scenario.name))
        summary = publish()
    log(f"wrote {out / 'summary.md'}", verbose=verbose)
    return summary


def searched_choices(records: list[dict], scenario: str) -> dict[str, dict[str, Any]]:
    """The options each method's search chose in ``scenario`` (from kept records), so a resumed
    benchmark reuses a search instead of running it again (records written before kinds existed too)."""
    return {r["method"]: json.loads(r["options"]) for r in map(with_kind, records)
            if r.get("scenario") == scenario and r["kind"] == "cost" and isinstance(r.get("tuned"), int)
            and not isinstance(r.get("tuned"), bool) and r["tuned"] > 0 and r.get("options")}


def _resume(out: Path, plan: dict[tuple, dict], keys: dict[tuple, str]) -> tuple[list[dict], bool]:
    """The records of ``out/records.json`` that belong to finished runs of this config, and whether
    any others were there: those are appended to ``out/records-set-aside.json``. What was reused and
    what not (and why) is reported even when not ``verbose``: it decides what the results hold."""
    old = _read_records(out / "records.json")
    current = {(ident[0], key) for ident, key in keys.items()}
    finished = {(r.get("scenario"), r.get("run_key")) for r in old if r["kind"] == "cost"}
    reused = current & finished
    kept = [r for r in old if (r.get("scenario"), r.get("run_key")) in reused]
    left = [r for r in old if (r.get("scenario"), r.get("run_key")) not in reused]
    log(f"resume: {len(reused)} runs of this config reused from {out / 'records.json'}, "
        f"{len(current) - len(reused)} still to run")
    if not left:
        return kept, False
    try:  # runs.json (run_key -> settings) only explains why
        recorded = json.loads((out / "runs.json").read_text())
    except (OSError, ValueError):
        recorded = {}
    reasons = _why_not_reused(left, plan, keys, recorded if isinstance(recorded, dict) else {})
    aside = _read_records(out / SET_ASIDE)
    write_atomic(out / SET_ASIDE, json.dumps(aside + left, indent=1))  # first, so no record is ever only in memory
    log(f"resume: {sum(reasons.values())} runs in records.json were not reused: "
        + "; ".join(f"{n} {why}" for why, n in reasons.items())
        + f". They are kept in {out / SET_ASIDE}, not in records.json nor the summary.")
    return kept, True


def _why_not_reused(left: list[dict], plan: dict[tuple, dict], keys: dict[tuple, str],
                    recorded: dict[str, Any]) -> Counter:
    """Runs (``scenario, method, seed, run_key``) of ``left`` counted by why they cannot be reused."""
    reasons: Counter = Counter()
    for scenario, method, seed, key in dict.fromkeys((r.get("scenario"), r.get("method"), r.get("seed"),
                                                      r.get("run_key")) for r in left):
        ident = (scenario, method, seed)
        if key is None:
            reasons["have no run_key (an older xcatrec wrote them), so what they ran cannot be checked"] += 1
        elif ident not in plan:
            reasons["are not part of this config (another scenario, method or seed)"] += 1
        elif key == keys[ident]:
            reasons["never finished (no cost record)"] += 1
        else:
            reasons[f"differ from this config in {_differences(recorded.get(key), plan[ident])}"] += 1
    return reasons


def _differences(old: Any, new: dict[str, Any], limit: int = 4) -> str:
    """``"options.epochs 30 -> 15, version ..."``: the settings that differ, as dotted paths."""
    if not isinstance(old, dict):
        return "settings that runs.json does not record"

    def flat(value: Any, prefix: str = "") -> dict[str, str]:
        if isinstance(value, dict) and value:
            return {k: v for key, item in value.items() for k, v in flat(item, f"{prefix}{key}.").items()}
        return {prefix[:-1]: json.dumps(value, sort_keys=True, default=str)}

    a, b = flat(old), flat(new)
    diffs = [f"{k} {a.get(k, 'unset')} -> {b.get(k, 'unset')}" for k in sorted(set(a) | set(b)) if a.get(k) != b.get(k)]
    if not diffs:
        return "settings recorded under another key"
    return ", ".join(diffs[:limit]) + (f" and {len(diffs) - limit} more" if len(diffs) > limit else "")


def _read_records(path: Path) -> list[dict]:
    """The records in ``path`` (``[]`` when there is no such file), each with its ``kind`` (see
    :func:`~xcatrec.experiment.with_kind`); a :class:`DataError` when it is not a JSON list of
    records, and then nothing has been changed."""
    if not os.path.lexists(path):
        return []
    fix = f"Move {path} away (nothing was changed) and resume again, or pass --overwrite to start over."
    try:
        records = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise DataError(f"{path} is not valid JSON ({err}); cannot resume from it.", fix) from None
    except OSError as err:
        raise DataError(f"Cannot read {path} ({err}); cannot resume from it.", fix) from None
    if not isinstance(records, list) or not all(isinstance(r, dict) for r in records):
        raise DataError(f"{path} is not a list of records (JSON objects); cannot resume from it.", fix)
    for r in records:
        labels = {k: r.get(k) for k in ("scenario", "method", "seed", "run_key", "protocol", "kind")}
        if (not all(v is None or isinstance(v, str) for k, v in labels.items() if k != "seed")
                or not isinstance(r.get("seed", 0), int)):
            raise DataError(f"{path} holds a record with malformed labels {labels}; cannot resume from it.", fix)
    return [with_kind(r) for r in records]


@contextlib.contextmanager
def _interrupts() -> Iterator[Callable[[], bool]]:
    """Remember every Ctrl-C while the benchmark runs; yields "was there one?".

    The handler still raises ``KeyboardInterrupt`` at once, as Python's own does. But an exception
    raised while a finaliser (``__del__``, a weakref callback) runs is printed and dropped by Python,
    so a Ctrl-C that lands there would be lost and the benchmark would run to its end; the benchmark
    asks after each saved run and stops then. A SIGINT that is ignored (a background job) or handled
    by someone else is left alone.
    """
    hit = [False]

    def handler(signum, frame):
        hit[0] = True
        raise KeyboardInterrupt

    ours = (threading.current_thread() is threading.main_thread()
            and signal.getsignal(signal.SIGINT) is signal.default_int_handler)
    previous = signal.signal(signal.SIGINT, handler) if ours else None
    try:
        yield lambda: hit[0]
    finally:
        if ours:
            signal.signal(signal.SIGINT, previous)


@contextlib.contextmanager
def _exclusive(out: Path) -> Iterator[None]:
    """Hold the lock of the output folder ``out`` (see the module docstring), or raise a
    :class:`ConfigError` naming the pid of the benchmark that holds it."""
    if fcntl is None:
        yield
        return
    path = out / LOCK
    while True:
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0), 0o644)
        except OSError as err:
            raise ConfigError(f"Cannot open the lock file {path} ({err}).",
                              f"Remove {path} if it is a link, or pick a writable --out-dir.") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(fd, 64).decode(errors="replace").strip()
            os.close(fd)
            raise ConfigError(f"Another xcatrec bench (pid {holder or 'unknown'}) is writing to {out}.",
                              "Wait for it to finish, or pass another --out-dir.") from None
        except OSError as err:
            os.close(fd)
            raise ConfigError(f"Cannot lock {path} ({err}).", "Use an --out-dir on a local disk.") from None
        # the holder before us may have removed the file after we opened it: lock the one there now
        with contextlib.suppress(FileNotFoundError):
            if os.path.samestat(os.fstat(fd), os.stat(path, follow_symlinks=False)):
                break
        os.close(fd)
    try:
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        yield
    finally:
        with contextlib.suppress(OSError):
            os.unlink(path)  # while still holding it, so no one can lock the old file meanwhile
        os.close(fd)


@functools.cache
def _file_mode() -> int:
    """Permissions of a new file under the current umask (``mkstemp`` would make it private)."""
    umask = os.umask(0o022)
    os.umask(umask)
    return 0o666 & ~umask


def write_atomic(path: Path, text: str) -> None:
    """Replace ``path`` (a link there too, never followed) by a file holding ``text``, atomically, as
    "Always consistent" in the module docstring says; if anything fails, ``path`` is left as it was."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            if hasattr(os, "fchmod"):
                os.fchmod(handle.fileno(), _file_mode())
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def load_results(path: str | Path | None = None) -> tuple[pd.DataFrame, pd.DataFrame, list[str]]:
    """Read a benchmark's output folder: ``(records, summary, provenance lines of summary.md)``.

    ``path`` defaults to the committed results of ``configs/bench-results.json`` (:data:`RESULTS_DIR`,
    found by :func:`committed`). Every record has its ``kind`` (records written before kinds existed
    get it from their ``protocol``, see :func:`~xcatrec.experiment.with_kind`), and the summary holds
    test results only (older summaries also summarised the validation records).
    """
    path = committed(RESULTS_DIR) if path is None else Path(path)
    missing = [name for name in ("records.json", "summary.csv", "summary.md") if not (path / name).is_file()]
    if missing:
        raise ConfigError(f"Benchmark results {missing} are missing in {path}.",
                          "Run `python -m xcatrec bench CONFIG --out-dir DIR` and pass that DIR.")
    records = pd.DataFrame([with_kind(r) for r in json.loads((path / "records.json").read_text())])
    records["k"] = records["k"].astype("Int64")
    summary = pd.read_csv(path / "summary.csv")
    summary = summary[~summary["protocol"].isin(LEGACY_PROTOCOLS)].reset_index(drop=True)
    summary["k"] = summary["k"].astype("Int64")
    provenance = [line[2:] for line in (path / "summary.md").read_text().splitlines()[:8] if line.startswith("- ")]
    return records, summary, provenance


def scenario_table(summary: pd.DataFrame, scenario: str, *, protocol: str = "full", metric: str = "ndcg",
                   k: int | None = 10) -> pd.DataFrame:
    """One scenario's rows of a benchmark summary, best first, indexed by method."""
    rows = summary[(summary["scenario"] == scenario) & (summary["protocol"] == protocol)
                   & (summary["metric"] == metric)]
    rows = rows[rows["k"] == k] if k is not None else rows[rows["k"].isna()]
    if rows.empty:
        raise ConfigError(f"No {protocol} {metric} results for scenario {scenario!r}.",
                          f"Use a scenario from {sorted(summary['scenario'].unique())}.")
    rows = rows.assign(ci=(rows["ci_high"] - rows["ci_low"]) / 2)
    cols = [c for c in ("mean", "ci", "n_seeds", "rel_vs_target_only", "p_vs_target_only", "rel_vs_popularity",
                        "p_vs_popularity", "boot_rel", "boot_low", "boot_high", "boot_p", "verdict",
                        "seconds_per_epoch", "fit_seconds", "refit_seconds", "tune_seconds", "tune_trials",
                        "peak_mb", "neg_transfer_valid", "valid_seeds") if c in rows.columns]
    return rows.set_index("method")[cols].sort_values("mean", ascending=protocol.endswith("ratings"))


def verdict_table(summary: pd.DataFrame, scenario: str, *, protocol: str = "full") -> pd.DataFrame:
    """One scenario of a sound-protocol summary as a reader's table, best first, indexed by method.

    Columns: ``NDCG@10`` (mean over seeds), ``± seeds`` (half-width of the 95% t-interval over seeds),
    ``vs reference`` (relative difference against the scenario's target-only reference with its 95%
    paired-bootstrap interval over test users and seeds, as text) and ``verdict`` (the words of
    :func:`xcatrec.evaluation.bootstrap.verdict`; ``"(reference)"`` on the reference's own row).
    """
    rows = scenario_table(summary, scenario, protocol=protocol)
    if "boot_rel" not in rows.columns:
        raise ConfigError(f"The summary of {scenario!r} has no paired-bootstrap columns.",
                          "Use the results of a benchmark run with per-user records (configs/bench-sound.json).")
    boot = [None if pd.isna(r.boot_rel) else r for r in rows.itertuples()]  # None: the reference
    return pd.DataFrame({"NDCG@10": rows["mean"], "± seeds": rows["ci"], "vs reference": [
        "" if r is None else f"{r.boot_rel:+.0%} [{r.boot_low:+.0%}, {r.boot_high:+.0%}]" for r in boot],
        "verdict": ["(reference)" if r is None else r.verdict for r in boot]})


def compare_best(records: pd.DataFrame | list[dict], scenario: str, challengers, references, *,
                 metric_name: str = "NDCG@10", select: str = "valid",
                 select_reference: str = "test", selection_share: float = 0.5,
                 selection_seed: int = 0) -> dict[str, Any]:
    """The best of ``challengers`` against the best of ``references`` in one scenario, over users and seeds.

    "Best" is the highest full-ranking NDCG@10 averaged over seeds, read on the rows ``select``
    names for the challenger and ``select_reference`` for the reference (``"valid"`` or ``"test"``).
    The defaults make a "beats" hard to earn from both ends:

    - the challenger is picked on validation, before its test rows are read, so its test score
      carries no winner's curse (picking it on test, ``select="test"``, flatters it);
    - the reference is the strongest on test, so the challenger must beat the best reference in
      hindsight, not one that merely looked best on validation.

    ``select="held-out-users"`` picks the challenger on a random ``selection_share`` of the test users
    (drawn once per user id with ``selection_seed``) and reports everything, the reference included, on
    the other users only. In a cold-start scenario the validation users are warm, so this is the one
    selection *on cold users* that the records allow: post hoc, with no refit, and on fewer users.

    Only methods with per-user test records can be picked. The comparison is the paired bootstrap of
    :func:`xcatrec.evaluation.bootstrap.compare_runs` on the per-user test records, and the words
    come from :func:`~xcatrec.evaluation.bootstrap.verdict` at :data:`VERDICT_THRESHOLD`.

    Returns:
        ``challenger``, ``reference`` (the methods picked), ``selected_by`` (the rows each side was
        picked on, by side: ``{"challenger": ..., "reference": ...}``), ``result`` (the bootstrap
        result), ``verdict`` (the words) and ``sentence``
        (:func:`~xcatrec.evaluation.bootstrap.describe`).

    Raises:
        ConfigError: ``select`` is not ``"valid"``, ``"test"`` or ``"held-out-users"``, or
            ``select_reference`` not ``"valid"`` or ``"test"``; ``selection_share`` is not in (0, 1); no
            method of a side ran in ``scenario`` (with ``"valid"``: has validation records there).
    """
    from xcatrec.evaluation.bootstrap import compare_runs, describe, per_user_frame, verdict
    from xcatrec.evaluation.stats import pick_best

    for name, value, allowed in (("select", select, ("valid", "test", "held-out-users")),
                                 ("select_reference", select_reference, ("valid", "test"))):
        if value not in allowed:
            raise ConfigError(f"Unknown {name}={value!r}.", f"Pass {name}= one of {list(allowed)}.")
    if not 0 < selection_share < 1:
        raise ConfigError(f"selection_share must be in (0, 1), got {selection_share}.", "Pass 0.5, for example.")
    rows = records.to_dict("records") if isinstance(records, pd.DataFrame) else list(records)
    frame = per_user_frame([r for r in rows if r.get("kind") == "per-user" and r.get("scenario") == scenario
                            and r.get("protocol") == "full"])
    means = {}
    if select == "held-out-users":
        drawn = np.random.default_rng(selection_seed).random(int(frame["user"].max()) + 1) < selection_share
        chosen = drawn[frame["user"].to_numpy()]
        means[select] = frame[chosen].groupby(["method", "seed"])["ndcg@10"].mean().groupby("method").mean()
        frame = frame[~chosen]  # the rest of the comparison sees only the users nobody was picked on
    means["test"] = frame.groupby(["method", "seed"])["ndcg@10"].mean().groupby("method").mean()
    valid = pd.DataFrame([r for r in rows if r.get("kind") == "valid" and r.get("scenario") == scenario
                          and r.get("protocol") == "full" and r.get("metric") == "ndcg" and r.get("k") == 10],
                         columns=["method", "seed", "value"])
    means["valid"] = valid.groupby(["method", "seed"])["value"].mean().groupby("method").mean()
    means["valid"] = means["valid"][means["valid"].index.isin(means["test"].index)]
    missing = {"test": f"ran in scenario {scenario!r}", "held-out-users": f"ran in scenario {scenario!r}",
               "valid": f"ran in scenario {scenario!r} with validation records"}
    pick = {"challenger": pick_best(means[select], challengers, challengers, missing=missing[select])["challenger"],
            "reference": pick_best(means[select_reference], references, references,
                                   missing=missing[select_reference])["reference"]}
    with warnings.catch_warnings():  # only the seeds both ran are compared (describe() says how many)
        warnings.simplefilter("ignore", UserWarning)
        result = compare_runs(frame, pick["challenger"], pick["reference"], metric="ndcg@10", on_missing="drop")
    return {**pick, "selected_by": {"challenger": select, "reference": select_reference}, "result": result,
            "verdict": verdict(result, threshold=VERDICT_THRESHOLD),
            "sentence": describe(result, pick["challenger"], pick["reference"], threshold=VERDICT_THRESHOLD,
                                 metric_name=metric_name)}


@dataclass(frozen=True)
class Goal:
    """A goal a benchmark is read against: the best of ``challengers`` must beat the best of
    ``references`` in ``scenario`` by at least ``bar`` (relative NDCG@10; 0 = "beats" in the words of
    :func:`~xcatrec.evaluation.bootstrap.verdict`, whose practical threshold applies)."""

    label: str
    scenario: str
    challengers: tuple[str, ...]
    references: tuple[str, ...]
    bar: float = 0.0


def goal_table(records: pd.DataFrame | list[dict], goals: list[Goal]) -> pd.DataFrame:
    """One row per goal: the methods compared (the challenger picked on validation, the reference the
    strongest on test, see :func:`compare_best`),
    the relative difference with its 95% paired-bootstrap
    interval over users and seeds, the verdict, and ``met``: the interval's lower end clears ``bar``
    (or, with ``bar == 0``, the verdict is "beats"). A goal whose methods did not run is ``met = None``."""
    rows = []
    for goal in goals:
        try:
            best = compare_best(records, goal.scenario, goal.challengers, goal.references)
        except ConfigError as err:
            rows.append({"goal": goal.label, "challenger": None, "reference": None, "relative": float("nan"),
                         "low": float("nan"), "high": float("nan"), "verdict": f"not run ({err.problem})", "met": None})
            continue
        result = best["result"]
        met = best["verdict"] == "beats" if goal.bar == 0 else bool(result.ci_low >= goal.bar)
        rows.append({"goal": goal.label, "challenger": best["challenger"], "reference": best["reference"],
                     "relative": result.estimate, "low": result.ci_low, "high": result.ci_high,
                     "verdict": best["verdict"], "met": met})
    return pd.DataFrame(rows).set_index("goal")
