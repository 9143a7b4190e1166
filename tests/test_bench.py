"""Reading a benchmark's results back: the functions the book uses to print committed results."""

from __future__ import annotations

import contextlib
import json
import signal
import sys

import pytest

import pandas as pd

from xcatrec.bench import load_config, load_results, negative_transfer_flags, run_bench, scenario_table
from xcatrec.bench_config import BenchConfig
from xcatrec.errors import ConfigError
from xcatrec.names import METHOD_NAMES, PEERS
from xcatrec.models import LEARNED_TRANSFER, METHODS, TARGET_ONLY, TRANSFER


@pytest.fixture(scope="module")
def tiny_bench(tmp_path_factory):
    out = tmp_path_factory.mktemp("bench")
    config = {"seeds": [0, 1, 2], "ks": [10], "methods": {"popularity": {}, "itemknn": {}, "cross-itemknn": {}},
              "scenarios": [{"name": "tiny", "dataset": "synthetic", "split": "loo", "target_only": "itemknn",
                             "data": {"rho": 1.0, "n_users": 250, "n_source_items": 50, "n_target_items": 40}}]}
    path = out / "bench.json"
    path.write_text(json.dumps(config))
    run_bench(path, out_dir=out, verbose=False)
    return out


def test_load_results_and_scenario_table(tiny_bench):
    records, summary, provenance = load_results(tiny_bench)
    assert set(records["method"]) == {"popularity", "itemknn", "cross-itemknn"}
    assert any(line.startswith("commit: ") for line in provenance)
    assert any(line.startswith("command: ") for line in provenance)
    table = scenario_table(summary, "tiny")
    assert list(table.index) == list(table.sort_values("mean", ascending=False).index)
    assert set(table.index) == {"popularity", "itemknn", "cross-itemknn"}
    assert (table["n_seeds"] == 3).all() and (table["ci"] >= 0).all()
    assert table.loc["itemknn", "rel_vs_target_only"] == pytest.approx(0.0)
    ndcg = records[(records.kind == "test") & (records.metric == "ndcg") & (records.protocol == "full")
                   & (records.method == "popularity")]
    assert table.loc["popularity", "mean"] == pytest.approx(ndcg["value"].mean())


def test_every_run_is_also_scored_on_validation_and_flagged_against_target_only(tiny_bench):
    records, summary, _ = load_results(tiny_bench)
    valid = records[(records.kind == "valid") & (records.metric == "ndcg") & (records.k == 10)]
    assert len(valid) == 9 and set(valid.protocol) == {"full"}  # 3 methods x 3 seeds, never the test split
    base = valid[valid.method == "itemknn"].set_index("seed")["value"]
    cross = valid[valid.method == "cross-itemknn"].set_index("seed")["value"]
    table = scenario_table(summary, "tiny")
    assert table.loc["cross-itemknn", "valid_seeds"] == 3
    assert table.loc["cross-itemknn", "neg_transfer_valid"] == int((cross < base).sum())
    assert pd.isna(table.loc["popularity", "valid_seeds"])  # only transfer methods are flagged
    assert "neg_valid" in (tiny_bench / "summary.md").read_text()
    assert set(summary["protocol"]) == {"full"}  # the summary holds test results only


def test_records_have_a_kind_and_old_records_get_it_from_their_protocol():
    from xcatrec.experiment import quality_records, with_kind

    old = [{"protocol": p, "metric": "m", "value": 1.0} for p in
           ("full", "sampled-999", "ratings", "disencdr-replica", "valid", "valid-ratings", "cost", "tuning")]
    assert [(r["kind"], r["protocol"]) for r in map(with_kind, old)] == [
        ("test", "full"), ("test", "sampled-999"), ("test", "ratings"), ("test", "disencdr-replica"),
        ("valid", "full"), ("valid", "ratings"), ("cost", None), ("tuning", None)]
    per_user = {"protocol": "full", "kind": "per-user"}
    assert with_kind(per_user) is per_user
    assert [r["protocol"] for r in quality_records(old + [per_user])] == ["full", "sampled-999", "ratings",
                                                                          "disencdr-replica"]


def test_negative_transfer_flags_count_worse_seeds_in_the_metric_direction():
    def rec(kind, protocol, method, seed, metric, value, k=None):
        return {"kind": kind, "protocol": protocol, "method": method, "seed": seed, "metric": metric, "k": k,
                "value": value}

    ranking = pd.DataFrame([rec("valid", "full", "itemknn", s, "ndcg", v, 10) for s, v in enumerate([0.2, 0.2, 0.2])]
                           + [rec("valid", "full", "cmf", s, "ndcg", v, 10) for s, v in enumerate([0.1, 0.3, 0.19])]
                           + [rec("test", "full", "cmf", s, "ndcg", 0.0, 10) for s in range(3)])
    flags = negative_transfer_flags(ranking, "itemknn", [10]).set_index("method")
    assert flags.loc["cmf"].to_dict() == {"neg_transfer_valid": 2, "valid_seeds": 3}
    ratings = pd.DataFrame([rec("valid", "ratings", "item-mean", s, "rmse", 1.0) for s in range(2)]
                           + [rec("valid", "ratings", "emcdr", s, "rmse", v) for s, v in enumerate([0.9, 1.1])])
    flags = negative_transfer_flags(ratings, "item-mean", [10]).set_index("method")
    assert flags.loc["emcdr"].to_dict() == {"neg_transfer_valid": 1, "valid_seeds": 2}  # lower RMSE is better
    assert negative_transfer_flags(ranking, "bpr-mf", [10]).empty  # no target-only runs: nothing to flag
    # a transfer method as the scenario's reference is not compared with itself
    assert negative_transfer_flags(ranking, "cmf", [10]).empty


@pytest.mark.parametrize("bad", [-1, 2.5, "all", True])
def test_bad_validate_users_is_a_clear_error(tmp_path, bad):
    path = tmp_path / "bench.json"
    path.write_text(json.dumps({**TINY, "validate_users": bad}))
    with pytest.raises(ConfigError, match="validate_users"):
        load_config(path)


def test_missing_results_and_unknown_scenario_are_clear_errors(tiny_bench, tmp_path):
    with pytest.raises(ConfigError, match="records.json"):
        load_results(tmp_path)
    _, summary, _ = load_results(tiny_bench)
    with pytest.raises(ConfigError, match="nope"):
        scenario_table(summary, "nope")


def test_method_groups_cover_the_registry():
    assert set(LEARNED_TRANSFER) <= set(TRANSFER)
    assert not set(TARGET_ONLY) & set(TRANSFER) and not set(PEERS) & (set(TARGET_ONLY) | set(TRANSFER))
    # seed-cnn: an item classifier; PEERS: other libraries' methods run as they are
    assert set(METHODS) == set(TARGET_ONLY) | set(TRANSFER) | set(PEERS) | {"seed-cnn"}
    assert set(METHOD_NAMES) == set(METHODS)


def test_the_parser_does_not_import_tensorflow():
    """``--help`` must answer at once: building the parser must not import TensorFlow."""
    import subprocess
    import sys

    probe = subprocess.run([sys.executable, "-c", "import sys\nfrom xcatrec.cli import build_parser\n"
                            "build_parser()\nassert 'tensorflow' not in sys.modules, 'tensorflow imported'"],
                           capture_output=True, text=True)
    assert probe.returncode == 0, probe.stderr


# --------------------------------------------------------------------------- results are never lost
TINY = {"seeds": [0, 1], "methods": {"popularity": {}, "itemknn": {}},
        "scenarios": [{"name": "s", "dataset": "synthetic", "split": "loo", "target_only": "itemknn",
                       "methods": ["popularity", "itemknn"],
                       "data": {"n_users": 200, "n_source_items": 40, "n_target_items": 30, "images": False}}]}


def _config(tmp_path, config=TINY, name="bench.json"):
    path = tmp_path / name
    path.write_text(json.dumps(config))
    return str(path)


def _bench(capsys, *args) -> tuple[int, str]:
    from xcatrec.cli import main

    code = main(["bench", *map(str, args), "--quiet"])
    return code, capsys.readouterr().err


def _runs(out) -> list[tuple]:
    """(scenario, method, seed) of every finished run in ``out/records.json``, one entry per run."""
    records = json.loads((out / "records.json").read_text())
    return sorted({(r["scenario"], r["method"], r["seed"], r["run_key"]) for r in records
                   if r["kind"] == "cost"})


def _snapshot(folder) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


def test_a_folder_with_results_is_refused_without_resume_or_overwrite(tmp_path, capsys):
    config, out = _config(tmp_path), tmp_path / "out"
    assert _bench(capsys, config, "--out-dir", out)[0] == 0
    before = _snapshot(out)
    code, err = _bench(capsys, config, "--out-dir", out)
    assert code == 2 and "error:" in err and "--resume" in err and "--overwrite" in err
    assert _snapshot(out) == before  # nothing touched, not even a lock file left behind
    code, err = _bench(capsys, config, "--out-dir", out, "--resume", "--overwrite")
    assert code == 2 and "error:" in err and _snapshot(out) == before


def _interrupt_after_first_run(monkeypatch):
    """Make the next benchmark stop (as on Ctrl-C) right after its first run is saved."""
    import xcatrec.bench as bench
    from xcatrec.experiment import run_seeds as real

    def run_seeds(*args, on_records, **kwargs):
        def once(records):
            on_records(records)
            raise KeyboardInterrupt

        return real(*args, on_records=once, **kwargs)

    monkeypatch.setattr(bench, "run_seeds", run_seeds)


def test_overwrite_keeps_old_results_until_the_first_new_run_and_all_files_agree(tmp_path, capsys, monkeypatch):
    config, out = _config(tmp_path), tmp_path / "out"
    assert _bench(capsys, config, "--out-dir", out)[0] == 0
    assert len(_runs(out)) == 4
    before = _snapshot(out)
    import xcatrec.bench as bench

    def fail(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(bench, "run_seeds", fail)  # stopped before any new run finished
    with pytest.raises(KeyboardInterrupt):
        run_bench(config, out_dir=out, verbose=False, overwrite=True)
    assert _snapshot(out) == before
    _interrupt_after_first_run(monkeypatch)
    with pytest.raises(KeyboardInterrupt):
        run_bench(config, out_dir=out, verbose=False, overwrite=True)
    # one run saved: every output file describes that one run, none the four old ones
    assert len(_runs(out)) == 1
    records = json.loads((out / "records.json").read_text())
    assert len(pd.read_csv(out / "records.csv")) == len(records)
    summary = pd.read_csv(out / "summary.csv")
    assert set(summary["method"]) == {"popularity"} and (summary["n_seeds"] == 1).all()
    assert "- runs: 1 of the 4 in this config" in (out / "summary.md").read_text()
    assert set(json.loads((out / "runs.json").read_text())) == {records[0]["run_key"]}
    assert not list(out.glob(".*.tmp")) and not (out / ".lock").exists()
    monkeypatch.undo()
    code, err = _bench(capsys, config, "--out-dir", out, "--resume")
    assert code == 0 and len(_runs(out)) == 4


class _SwallowsCtrlC:
    """An object whose finaliser receives a Ctrl-C: Python prints the KeyboardInterrupt and drops it."""

    def __del__(self):
        signal.raise_signal(signal.SIGINT)
        sum(range(10))  # bytecode after the signal: the handler runs (and raises) here


@pytest.fixture
def sigint(request):
    """SIGINT set to ``request.param`` (Python's own handler by default, as in a terminal; a test run
    started in the background inherits it ignored) for one test, then put back."""
    previous = signal.signal(signal.SIGINT, getattr(request, "param", signal.default_int_handler))
    yield
    signal.signal(signal.SIGINT, previous)


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
def test_a_ctrl_c_lost_in_a_finaliser_still_stops_the_benchmark_after_the_run(tmp_path, capsys, monkeypatch,
                                                                              sigint):
    config, out = _config(tmp_path), tmp_path / "out"
    import xcatrec.bench as bench
    from xcatrec.experiment import run_seeds as real

    def run_seeds(*args, **kwargs):
        _SwallowsCtrlC()  # dropped at once: its finaliser gets the Ctrl-C
        return real(*args, **kwargs)

    monkeypatch.setattr(bench, "run_seeds", run_seeds)
    with monkeypatch.context() as without:  # Python's handler alone: each Ctrl-C is lost, all 4 runs go on
        without.setattr(bench, "_interrupts", lambda: contextlib.nullcontext(lambda: False))
        code, err = _bench(capsys, config, "--out-dir", tmp_path / "lost")
        assert code == 0 and len(_runs(tmp_path / "lost")) == 4
    code, err = _bench(capsys, config, "--out-dir", out)
    assert code == 130 and "interrupted" in err
    assert len(_runs(out)) == 1  # the run that was under way is saved, then the benchmark stops
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # Python's handler is back
    monkeypatch.undo()
    code, err = _bench(capsys, config, "--out-dir", out, "--resume")
    assert code == 0 and len(_runs(out)) == 4


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
@pytest.mark.parametrize("sigint", [signal.SIG_IGN], indirect=True)
def test_an_ignored_sigint_stays_ignored(sigint):
    from xcatrec.bench import _interrupts

    with _interrupts() as interrupted:
        assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN  # a background job keeps running
        assert not interrupted()
    assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN


def test_resume_reuses_only_runs_of_the_same_settings(tmp_path, capsys):
    out = tmp_path / "out"
    assert _bench(capsys, _config(tmp_path), "--out-dir", out)[0] == 0
    first = _runs(out)
    changed = json.loads(json.dumps(TINY))
    changed["methods"]["itemknn"] = {"k": 20}
    from xcatrec.cli import main

    code = main(["bench", _config(tmp_path, changed, "changed.json"), "--out-dir", str(out), "--resume"])
    err = capsys.readouterr().err
    assert code == 0
    assert "2 runs of this config reused" in err
    assert "2 differ from this config in options.k 100 -> 20" in err and "records-set-aside.json" in err
    now = _runs(out)
    assert len(now) == 4  # each run once, popularity's reused, itemknn's rerun with the new options
    assert [r for r in now if r[1] == "popularity"] == [r for r in first if r[1] == "popularity"]
    assert not {r[3] for r in now if r[1] == "itemknn"} & {r[3] for r in first if r[1] == "itemknn"}
    aside = json.loads((out / "records-set-aside.json").read_text())
    assert {(r["method"], r["run_key"]) for r in aside} == {("itemknn", r[3]) for r in first if r[1] == "itemknn"}
    summary = pd.read_csv(out / "summary.csv")
    assert (summary["n_seeds"] == 2).all()  # the old itemknn runs are not summarised
    # another cut-off changes every run: nothing is credited to the new config
    changed["ks"] = [5]
    code, err = _bench(capsys, _config(tmp_path, changed, "ks.json"), "--out-dir", out, "--resume")
    assert code == 0 and "0 runs of this config reused" in err and "config.ks [10] -> [5]" in err
    records = json.loads((out / "records.json").read_text())
    assert {r["k"] for r in records if r["kind"] == "test" and r["metric"] == "ndcg"} == {5}
    aside = json.loads((out / "records-set-aside.json").read_text())
    assert len(_runs(out)) == 4 and len({r["run_key"] for r in aside}) == 6  # 2 + 4 runs set aside, none lost


def test_resume_does_not_reuse_records_without_a_run_key(tmp_path, capsys):
    config, out = _config(tmp_path), tmp_path / "out"
    assert _bench(capsys, config, "--out-dir", out)[0] == 0
    old = json.loads((out / "records.json").read_text())
    for r in old:
        del r["run_key"]
    (out / "records.json").write_text(json.dumps(old))
    code, err = _bench(capsys, config, "--out-dir", out, "--resume")
    assert code == 0 and "0 runs of this config reused" in err and "4 have no run_key" in err
    assert len(_runs(out)) == 4 and all(r[3] for r in _runs(out))
    assert json.loads((out / "records-set-aside.json").read_text()) == old


def test_run_key_covers_every_setting_that_changes_a_run(monkeypatch):
    import xcatrec
    from xcatrec.bench import run_key, run_settings

    scenario = TINY["scenarios"][0]

    def key(config=TINY, scenario=scenario, method="itemknn", seed=0):
        typed = BenchConfig.from_dict({**config, "scenarios": [scenario]})
        return run_key(run_settings(typed.scenarios[0], typed, method, seed))

    base = key()
    same = [key(scenario={**scenario, "name": "renamed", "target_only": "popularity"}),
            key(config={**TINY, "description": "notes", "seeds": [0, 5]}),
            key(config={**TINY, "ks": [10], "validate_users": 3000}),  # the defaults spelled out
            key(config={**TINY, "methods": {"popularity": {}, "itemknn": {"k": 100}}}),
            key(scenario={**scenario, "options": {"popularity": {}}, "protocols": ["full"], "beta": 0.2})]
    assert same == [base] * len(same)
    other = [key(seed=1), key(method="popularity"),
             key(config={**TINY, "methods": {"popularity": {}, "itemknn": {"k": 20}}}),
             key(scenario={**scenario, "options": {"itemknn": {"shrink": 1.0}}}),
             key(scenario={**scenario, "data": {**scenario["data"], "rho": 0.9}}),
             key(scenario={**scenario, "split": "random"}),
             key(scenario={**scenario, "protocols": ["full", "sampled-99"]}),
             key(config={**TINY, "ks": [5]}), key(config={**TINY, "validate_users": None}),
             key(config={**TINY, "refit": False}), key(config={**TINY, "leaks": "keep"}),
             key(scenario={**scenario, "leaks": "keep"})]
    assert len({base, *other}) == len(other) + 1
    monkeypatch.setattr(xcatrec, "__version__", "9.9.9")
    assert key() != base


def test_a_field_added_later_at_its_older_value_leaves_the_run_key_unchanged(monkeypatch):
    from xcatrec.bench import run_settings
    from xcatrec.models.itemknn import ItemKNNConfig

    def options(**itemknn):
        typed = BenchConfig.from_dict({**TINY, "methods": {"popularity": {}, "itemknn": itemknn},
                                       "scenarios": [TINY["scenarios"][0]]})
        return run_settings(typed.scenarios[0], typed, "itemknn", 0)["options"]

    assert "shrink" in options(shrink=10.0)
    # pretend "shrink" was added later, and 10.0 reproduces the runs recorded before it existed
    monkeypatch.setattr(ItemKNNConfig, "added_fields", {"shrink": 10.0})
    assert "shrink" not in options(shrink=10.0) and "shrink" not in options(shrink=10)
    assert options(shrink=11.0)["shrink"] == 11.0


def test_a_planted_link_at_the_old_temporary_name_is_not_followed(tmp_path, capsys):
    out, victim = tmp_path / "out", tmp_path / "victim.txt"
    out.mkdir()
    victim.write_text("precious")
    for name in ("records.json", "summary.md", "records.csv", "summary.csv"):
        (out / f"{name}.tmp").symlink_to(victim)
    assert _bench(capsys, _config(tmp_path), "--out-dir", out)[0] == 0
    assert victim.read_text() == "precious"
    assert not (out / "records.json").is_symlink() and len(_runs(out)) == 4
    assert all((out / f"{name}.tmp").is_symlink() for name in ("records.json", "summary.md"))


def test_a_planted_link_at_the_lock_file_is_refused(tmp_path, capsys):
    out, victim = tmp_path / "out", tmp_path / "victim.txt"
    out.mkdir()
    victim.write_text("precious")
    (out / ".lock").symlink_to(victim)
    code, err = _bench(capsys, _config(tmp_path), "--out-dir", out)
    assert code == 2 and "error:" in err and ".lock" in err
    assert victim.read_text() == "precious" and [p.name for p in out.iterdir()] == [".lock"]


def test_a_failed_write_leaves_the_old_file_and_no_temporary_file(tmp_path, monkeypatch):
    from xcatrec import bench

    target = tmp_path / "records.json"
    target.write_text("old")

    def broken(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(bench.os, "replace", broken)
    with pytest.raises(OSError, match="disk full"):
        bench.write_atomic(target, "new")
    monkeypatch.undo()
    assert target.read_text() == "old" and [p.name for p in tmp_path.iterdir()] == ["records.json"]
    bench.write_atomic(target, "new")
    assert target.read_text() == "new" and [p.name for p in tmp_path.iterdir()] == ["records.json"]


def _scenario(**changes):
    return {**TINY["scenarios"][0], **changes}


def _without(mapping, key):
    return {k: v for k, v in mapping.items() if k != key}


BAD_CONFIGS = {
    "negative seed": ({**TINY, "seeds": [-1]}, "'seeds' must be a non-empty list of whole numbers >= 0"),
    "seeds not a list": ({**TINY, "seeds": 3}, "'seeds' must be"),
    "boolean seed": ({**TINY, "seeds": [True]}, "'seeds' must be"),
    "seed twice": ({**TINY, "seeds": [0, 0]}, "'seeds' lists [0] more than once"),
    "scenario seed": ({**TINY, "scenarios": [_scenario(seeds=[-2])]}, "'seeds' must be"),
    "zero cut-off": ({**TINY, "ks": [0]}, "'ks' must be a non-empty list of whole numbers >= 1"),
    "fractional cut-off": ({**TINY, "ks": [2.5]}, "'ks' must be"),
    "unknown protocol": ({**TINY, "scenarios": [_scenario(protocols=["sampled-5"])]},
                         "Unknown protocol(s) ['sampled-5']"),
    "no name": ({**TINY, "scenarios": [_without(_scenario(), "name")]}, "Scenario 1 has no name"),
    "unknown top-level key": ({**TINY, "seed": [0]}, "Unknown key(s) ['seed'] in the config"),
    "unknown scenario key": ({**TINY, "scenarios": [_scenario(protocol="full")]},
                             "Unknown key(s) ['protocol'] in scenario 's'"),
    "no dataset": ({**TINY, "scenarios": [_without(_scenario(), "dataset")]}, "names no 'dataset'"),
    "unknown dataset": ({**TINY, "scenarios": [_scenario(dataset="nope")]}, "nope"),
    "duplicate names": ({**TINY, "scenarios": [_scenario(), _scenario()]}, "Two scenarios are named 's'"),
    "unknown split": ({**TINY, "scenarios": [_scenario(split="weird")]}, "Unknown split 'weird'"),
    "beta out of range": ({**TINY, "scenarios": [_scenario(beta=1.5)]}, "beta must be a number strictly between"),
    "unknown data option": ({**TINY, "scenarios": [_scenario(data={"nope": 1})]}, "nope"),
    "bad data value": ({**TINY, "scenarios": [_scenario(data={"rho": 2.0})]}, "rho"),
    "unknown method option": ({**TINY, "methods": {"popularity": {}, "itemknn": {"nope": 1}}},
                              "Unknown option 'nope'"),
    "seed as an option": ({**TINY, "methods": {"popularity": {"seed": 3}, "itemknn": {}}}, "sets it from 'seeds'"),
    "target_only not run": ({**TINY, "scenarios": [_scenario(target_only="bpr-mf")]}, "target_only 'bpr-mf'"),
    "override of another method": ({**TINY, "scenarios": [_scenario(options={"bpr-mf": {"epochs": 1}})]},
                                   "does not run"),
    "scenarios not a list": ({**TINY, "scenarios": {"name": "s"}}, "'scenarios' must be a non-empty list"),
    "methods not options": ({**TINY, "methods": ["popularity"]}, "'methods' must map method names"),
    "not an object": ([TINY], "not an object"),
}


@pytest.mark.parametrize("case", sorted(BAD_CONFIGS))
def test_a_malformed_config_is_refused_before_any_data_is_loaded(tmp_path, capsys, monkeypatch, case):
    import xcatrec.data

    def load_dataset(*args, **kwargs):
        raise AssertionError("data was loaded before the config was checked")

    monkeypatch.setattr(xcatrec.data, "load_dataset", load_dataset)
    config, expected = BAD_CONFIGS[case]
    code, err = _bench(capsys, _config(tmp_path, config), "--out-dir", tmp_path / "out")
    assert code == 2 and err.startswith("error:") and "fix:" in err
    assert expected in err
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("content", ['{"records": []}', "[1, 2]", '[{"scenario": ["s"]}]', "not json"])
def test_resume_from_a_malformed_records_file_is_refused_and_leaves_it_alone(tmp_path, capsys, content):
    out = tmp_path / "out"
    out.mkdir()
    (out / "records.json").write_text(content)
    code, err = _bench(capsys, _config(tmp_path), "--out-dir", out, "--resume")
    assert code == 2 and err.startswith("error:") and "records.json" in err and "fix:" in err
    assert _snapshot(out) == {"records.json": content.encode()}


def test_the_commit_is_the_packages_not_the_current_folders(tmp_path, monkeypatch):
    import subprocess
    from pathlib import Path

    import xcatrec
    from xcatrec.bench import _git_commit

    git = ["git", "-c", "user.name=t", "-c", "user.email=t@example.org", "-c", "commit.gpgsign=false"]
    subprocess.run([*git, "init", "-q"], cwd=tmp_path, check=True)
    subprocess.run([*git, "commit", "-q", "--allow-empty", "-m", "other"], cwd=tmp_path, check=True)
    other = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=tmp_path, capture_output=True,
                           text=True, check=True).stdout.strip()
    package = Path(xcatrec.__file__).parent
    tracked = subprocess.run(["git", "ls-files", "--error-unmatch", "__init__.py"], cwd=package,
                             capture_output=True).returncode == 0
    expected = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=package, capture_output=True,
                              text=True).stdout.strip() if tracked else "unknown"
    monkeypatch.chdir(tmp_path)
    assert _git_commit() == expected != other
    installed = tmp_path.parent / f"{tmp_path.name}-site" / "xcatrec"  # a copy that is no git checkout
    installed.mkdir(parents=True)
    (installed / "__init__.py").write_text("")
    monkeypatch.setattr(xcatrec, "__file__", str(installed / "__init__.py"))
    assert _git_commit() == "unknown"


def test_an_unknown_key_is_refused_with_the_valid_ones(tmp_path):
    with pytest.raises(ConfigError) as err:
        load_config(_config(tmp_path, {**TINY, "validate_user": 10}))
    assert "validate_user" in err.value.problem and "bench.json" in err.value.problem
    assert "'validate_users'" in err.value.fix and "'scenarios'" in err.value.fix


def test_defaults_are_the_dataclass_fields_and_scenarios_inherit_methods_and_seeds(tmp_path):
    config = load_config(_config(tmp_path, {"methods": {"popularity": {}, "itemknn": {}},
                                            "scenarios": [{"name": "s", "dataset": "synthetic", "leaks": "keep"}]}))
    assert (config.seeds, config.ks, config.validate_users, config.tune, config.tune_scope, config.refit,
            config.leaks) == ((0, 1, 2), (10,), 3000, None, "first-seed", True, "remove")
    scenario = config.scenario("s")
    assert scenario.methods == ("popularity", "itemknn") and scenario.seeds == (0, 1, 2)
    assert (scenario.beta, scenario.protocols, scenario.leaks, scenario.target_only) == (0.2, ("full",), "keep", None)
    with pytest.raises(ConfigError, match="No scenario is named 'nope'"):
        config.scenario("nope")


def test_part_of_a_scenario_keeps_the_options_of_the_methods_it_keeps():
    from xcatrec.bench import run_key, run_settings

    scenario = {**TINY["scenarios"][0], "options": {"itemknn": {"k": 20}, "popularity": {}}}
    config = BenchConfig.from_dict({**TINY, "scenarios": [scenario]})
    whole = config.scenarios[0]
    part = whole.part(("itemknn",), seeds=(0,))
    assert part.methods == ("itemknn",) and part.seeds == (0,) and set(part.options) == {"itemknn"}
    assert run_key(run_settings(part, config, "itemknn", 0)) == run_key(run_settings(whole, config, "itemknn", 0))


def test_record_value_reads_one_test_metric_and_names_a_missing_one():
    from xcatrec.errors import DataError
    from xcatrec.experiment import record_value

    records = [{"kind": "test", "protocol": "full", "metric": "ndcg", "k": 10, "value": 0.25},
               {"kind": "test", "protocol": "sampled-99", "metric": "ndcg", "k": 10, "value": 0.5},
               {"kind": "valid", "protocol": "full", "metric": "ndcg", "k": 10, "value": 0.75},
               {"kind": "test", "protocol": "full", "metric": "mrr", "k": None, "value": 0.125}]
    assert record_value(records) == 0.25
    assert record_value(records, protocol="sampled-99") == 0.5
    assert record_value(records, "mrr", k=None) == 0.125
    with pytest.raises(DataError, match="No hr@10 record"):
        record_value(records, "hr")
