"""The benchmark: methods x seeds x scenarios from one JSON config, one command.

``python -m xcatrec bench configs/bench-quick.json`` writes, under ``--out-dir``:

* ``records.json`` / ``records.csv``: every metric of every run (tidy, labelled);
* ``summary.csv``: mean and 95% interval over seeds, paired t-tests against the scenario's target-only
  baseline and against popularity, seconds per epoch and peak memory;
* ``summary.md``: the same as Markdown tables, one per scenario, with the command, commit and date.

Config format (JSON)::

    {"seeds": [0, 1, 2], "ks": [10],
     "methods": {"bpr-mf": {"epochs": 30}, "popularity": {}},
     "scenarios": [{"name": "elec-cloth-warm", "dataset": "amazon-elec-cloth", "source": "elec",
                    "target": "cloth", "split": "published", "protocols": ["full", "sampled-999"],
                    "methods": ["popularity", "bpr-mf"], "target_only": "bpr-mf"}]}

A scenario's ``methods`` picks from the top-level ``methods`` (name -> options); ``options`` inside a
scenario override them for that scenario (``{"method": {"field": value}}``); ``data`` passes extra
options to the loader (e.g. ``{"rho": 0.5}`` for the synthetic marketplace). The top-level
``validate_users`` (default 3000; ``null`` turns it off) sets how many target validation users every
run is also scored on (protocol ``valid``, or ``valid-ratings``): each transfer run is compared with
the scenario's target-only run of the same seed there, and the summary counts the seeds on which it
was worse (``neg_transfer_valid`` of ``valid_seeds``), a negative-transfer flag that never reads test.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any, Callable

import pandas as pd

from xcatrec.errors import ConfigError
from xcatrec.experiment import VALID_PROTOCOL, VALID_RATING_PROTOCOL, RunSpec, log, run_seeds
from xcatrec.method_names import TRANSFER

#: Where the committed results of ``configs/bench-results.json`` live (the book prints them).
RESULTS_DIR = Path(__file__).resolve().parents[1] / "benchmarks" / "results"
RESULTS_CONFIG = Path(__file__).resolve().parents[1] / "configs" / "bench-results.json"

#: Validation users every benchmark run is also scored on unless the config sets ``validate_users``.
VALIDATE_USERS = 3000

SCENARIO_KEYS = {"name", "dataset", "source", "target", "split", "beta", "protocols", "methods",
                 "target_only", "options", "data", "seeds"}


def load_config(path: str | Path) -> dict[str, Any]:
    """Read and validate a benchmark config; errors name the key and the fix."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"Benchmark config {str(path)!r} does not exist.",
                          "Pass a JSON file such as configs/bench-quick.json.")
    try:
        config = json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise ConfigError(f"{path} is not valid JSON ({err}).", "Fix the JSON syntax.") from None
    for key in ("methods", "scenarios"):
        if key not in config:
            raise ConfigError(f"{path} has no {key!r}.", "See the format in `python -m xcatrec bench --help`.")
    from xcatrec.models import METHODS

    unknown = sorted(set(config["methods"]) - set(METHODS))
    if unknown:
        raise ConfigError(f"Unknown method(s) {unknown} in {path}.", f"Use names from {sorted(METHODS)}.")
    users = config.get("validate_users", VALIDATE_USERS)
    if users is not None and (isinstance(users, bool) or not isinstance(users, int) or users < 0):
        raise ConfigError(f"validate_users must be a whole number >= 0 or null, got {users!r} in {path}.",
                          "Use 3000 (0 scores every validation user; null skips validation).")
    for scenario in config["scenarios"]:
        extra = sorted(set(scenario) - SCENARIO_KEYS)
        if extra:
            raise ConfigError(f"Unknown key(s) {extra} in scenario {scenario.get('name')!r}.",
                              f"Use keys from {sorted(SCENARIO_KEYS)}.")
        missing = sorted(set(scenario.get("methods", [])) - set(config["methods"]))
        if missing:
            raise ConfigError(f"Scenario {scenario.get('name')!r} uses method(s) {missing} that the config "
                              "does not define.", "Add them under the top-level 'methods'.")
    return config


def _git_commit() -> str:
    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                              check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def run_scenario(scenario: dict[str, Any], config: dict[str, Any], *, verbose: bool,
                 done: set[tuple[str, str, int]] = frozenset(),
                 on_records: Callable[[list[dict]], None] | None = None) -> list[dict]:
    """All methods x seeds of one scenario; returns tidy records labelled with the scenario name.

    Runs whose ``(scenario, method, seed)`` is in ``done`` are skipped (resuming a benchmark).
    """
    from xcatrec.data import load_dataset

    names = scenario.get("methods", list(config["methods"]))
    overrides = scenario.get("options", {})
    specs = [RunSpec(m, {**config["methods"][m], **overrides.get(m, {})},
                     tuple(scenario.get("protocols", ["full"])), tuple(config.get("ks", [10])))
             for m in names]
    data_opts = dict(scenario.get("data", {}))

    def load(seed: int):
        return load_dataset(scenario["dataset"], source=scenario.get("source"), target=scenario.get("target"),
                            split=scenario.get("split"), beta=scenario.get("beta", 0.2), seed=seed, **data_opts)

    seeds = scenario.get("seeds", config.get("seeds", [0, 1, 2]))
    name = scenario["name"]
    skipped = sum((name, spec.method, seed) in done for spec in specs for seed in seeds)
    log(f"== scenario {name}: {len(specs)} methods x {len(seeds)} seeds"
        + (f" ({skipped} runs already done)" if skipped else ""), verbose=verbose)
    return run_seeds(load, specs, seeds, verbose=verbose, labels={"scenario": name}, measure_memory=True,
                     skip=lambda spec, seed: (name, spec.method, seed) in done, on_records=on_records,
                     validate_users=config.get("validate_users", VALIDATE_USERS))


def negative_transfer_flags(rows: pd.DataFrame, target_only: str, ks: list[int]) -> pd.DataFrame:
    """Per transfer method of one scenario: on how many seeds its validation score was worse than the
    target-only method's of the same seed (NDCG at the first cut-off; RMSE for rating scenarios).

    Returns:
        Columns ``method``, ``neg_transfer_valid`` (seeds worse) and ``valid_seeds`` (seeds compared);
        empty when the scenario has no validation records for ``target_only``.
    """
    ranking = rows[(rows["protocol"] == VALID_PROTOCOL) & (rows["metric"] == "ndcg") & (rows["k"] == ks[0])]
    ratings = rows[(rows["protocol"] == VALID_RATING_PROTOCOL) & (rows["metric"] == "rmse")]
    valid, higher_is_better = (ranking, True) if len(ranking) else (ratings, False)
    table = valid.pivot_table(index="seed", columns="method", values="value", aggfunc="first")
    if target_only not in table.columns:
        return pd.DataFrame(columns=["method", "neg_transfer_valid", "valid_seeds"])
    out = []
    for method in [m for m in table.columns if m in TRANSFER]:
        pair = table[[method, target_only]].dropna()
        worse = pair[method] < pair[target_only] if higher_is_better else pair[method] > pair[target_only]
        out.append({"method": method, "neg_transfer_valid": int(worse.sum()), "valid_seeds": len(pair)})
    return pd.DataFrame(out, columns=["method", "neg_transfer_valid", "valid_seeds"])


def summarize_bench(records: list[dict], config: dict[str, Any]) -> pd.DataFrame:
    """Summary rows per scenario: quality with paired tests, joined with cost columns."""
    from xcatrec.evaluation import summarize

    frame = pd.DataFrame(records)
    parts = []
    for scenario in config["scenarios"]:
        rows = frame[frame["scenario"] == scenario["name"]]
        if rows.empty:
            continue
        quality = rows[rows["protocol"] != "cost"]
        cost = rows[rows["protocol"] == "cost"].pivot_table(index="method", columns="metric", values="value",
                                                            aggfunc="median")
        methods = set(quality["method"])
        target_only = scenario.get("target_only", "bpr-mf")
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
        flags = negative_transfer_flags(rows, target_only, list(config.get("ks", [10])))
        summary = summary.merge(flags, on="method", how="left")
        summary.insert(0, "scenario", scenario["name"])
        parts.append(summary)
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()


def render_markdown(summary: pd.DataFrame, *, command: str) -> str:
    """Markdown report: provenance header and one table per scenario and protocol."""
    lines = [f"# xcatrec benchmark", "", f"- command: `{command}`", f"- commit: {_git_commit()}",
             f"- date: {_dt.datetime.now(_dt.timezone.utc):%Y-%m-%d %H:%M UTC}",
             "- mean and 95% t-interval over seeds; p: paired t-test over seeds",
             "- neg_valid: seeds on which a transfer method scored below the target-only method on the "
             "validation split (of the seeds compared)", ""]
    cols = ["method", "mean", "ci", "rel_vs_target_only", "p_vs_target_only", "rel_vs_popularity",
            "p_vs_popularity", "seconds_per_epoch", "fit_seconds", "peak_mb", "neg_valid"]
    for (scenario, protocol, metric, k), rows in summary.groupby(["scenario", "protocol", "metric", "k"],
                                                                 dropna=False, sort=False):
        label = f"{metric}@{int(k)}" if pd.notna(k) else metric
        lines += [f"## {scenario}: {protocol}, {label}", "", "| " + " | ".join(cols) + " |",
                  "|" + "---|" * len(cols)]
        for _, r in rows.sort_values("mean", ascending=protocol.endswith("ratings")).iterrows():
            half = (r["ci_high"] - r["ci_low"]) / 2 if pd.notna(r.get("ci_high")) else float("nan")
            cells = [r["method"], f"{r['mean']:.4f}", f"±{half:.4f}"]
            for c in cols[3:-1]:
                v = r.get(c, float("nan"))
                cells.append("" if pd.isna(v) else (f"{v:+.1%}" if c.startswith("rel") else
                                                     f"{v:.3g}" if c.startswith("p_") else f"{v:.2f}"))
            seeds = r.get("valid_seeds", float("nan"))
            cells.append(f"{int(r['neg_transfer_valid'])}/{int(seeds)}" if pd.notna(seeds) and seeds else "")
            lines.append("| " + " | ".join(cells) + " |")
        lines.append("")
    return "\n".join(lines)


def run_bench(config_path: str | Path, *, out_dir: str | Path = "results", verbose: bool = True,
              resume: bool = False, scenarios: list[str] | None = None) -> pd.DataFrame:
    """Run a benchmark config and write its results; returns the summary table.

    Args:
        resume: keep the runs already in ``out_dir/records.json`` and run only the missing ones
            (a crashed or interrupted benchmark continues where it stopped).
        scenarios: run only these scenario names (all by default); with ``resume`` the other
            scenarios' records are kept.
    """
    config = load_config(config_path)
    names = [s["name"] for s in config["scenarios"]]
    unknown = sorted(set(scenarios or []) - set(names))
    if unknown:
        raise ConfigError(f"Unknown scenario(s) {unknown} in {config_path}.", f"Use names from {names}.")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    records: list[dict] = []
    if resume and (out / "records.json").is_file():
        try:
            records = json.loads((out / "records.json").read_text())
        except json.JSONDecodeError as err:
            raise ConfigError(f"{out / 'records.json'} is not valid JSON ({err}); cannot resume from it.",
                              "Move it away and run without --resume.") from None
    elif (out / "records.json").is_file() and not resume:
        log(f"overwriting {out / 'records.json'} (pass --resume to continue it instead)", verbose=verbose)
    done = {(r.get("scenario"), r.get("method"), r.get("seed")) for r in records if r.get("protocol") == "cost"}

    def save(new: list[dict]) -> None:
        records.extend(new)
        _write(out / "records.json", json.dumps(records, indent=1))  # every finished run survives a crash

    for scenario in config["scenarios"]:
        if scenarios and scenario["name"] not in scenarios:
            continue
        run_scenario(scenario, config, verbose=verbose, done=done, on_records=save)
    pd.DataFrame(records).to_csv(out / "records.csv", index=False)
    summary = summarize_bench(records, config)
    summary.to_csv(out / "summary.csv", index=False)
    command = "python -m xcatrec bench " + " ".join(sys.argv[2:] if sys.argv[1:2] == ["bench"] else [str(config_path)])
    _write(out / "summary.md", render_markdown(summary, command=command))
    log(f"wrote {out / 'summary.md'}", verbose=verbose)
    return summary


def _write(path: Path, text: str) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def load_results(path: str | Path = RESULTS_DIR) -> tuple[pd.DataFrame, pd.DataFrame, list[str]]:
    """Read a benchmark's output folder: ``(records, summary, provenance lines of summary.md)``."""
    path = Path(path)
    missing = [name for name in ("records.json", "summary.csv", "summary.md") if not (path / name).is_file()]
    if missing:
        raise ConfigError(f"Benchmark results {missing} are missing in {path}.",
                          "Run `python -m xcatrec bench CONFIG --out-dir DIR` and pass that DIR.")
    records = pd.DataFrame(json.loads((path / "records.json").read_text()))
    records["k"] = records["k"].astype("Int64")
    summary = pd.read_csv(path / "summary.csv")
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
                        "p_vs_popularity", "seconds_per_epoch", "fit_seconds", "peak_mb", "neg_transfer_valid",
                        "valid_seeds") if c in rows.columns]
    return rows.set_index("method")[cols].sort_values("mean", ascending=protocol.endswith("ratings"))
