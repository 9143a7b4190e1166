"""The command line: shapes the scripts and the book rely on, and clear errors for bad input."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from xcatrec.cli import main

SYNTH = ["--dataset", "synthetic", "--option", "seed=0"]


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def assert_clear_error(code, err, *needles):
    assert code == 2
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    assert lines[-2].startswith("error: ") and lines[-1].startswith("fix: "), err
    for needle in needles:
        assert needle in err, err


def test_help_lists_commands():
    proc = subprocess.run([sys.executable, "-m", "xcatrec", "--help"], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0
    for word in ("data", "evaluate", "recommend", "bench"):
        assert word in proc.stdout


def test_data_list_and_stats(capsys):
    code, out, _ = run(capsys, "data", "list")
    assert code == 0 and "amazon-elec-cloth" in out and "douban-book-music" in out
    code, out, _ = run(capsys, "data", "stats", "--dataset", "synthetic", "--rho", "0.5")
    assert code == 0 and "source" in out and "target" in out and "density" in out


def test_evaluate_synthetic_writes_labelled_records(capsys, tmp_path):
    out_file = tmp_path / "results.json"
    code, out, err = run(capsys, "evaluate", "--dataset", "synthetic", "--method", "popularity",
                         "--protocol", "full", "--protocol", "sampled-99", "--seeds", "2", "--out", str(out_file))
    assert code == 0, err
    assert "ndcg" in out and "sampled-99" in out
    assert "[popularity seed=1]" in err  # progress goes to stderr
    records = json.loads(out_file.read_text())
    keys = {"dataset", "source", "target", "split", "protocol", "method", "seed", "metric", "k", "value"}
    assert all(keys <= set(r) for r in records)
    quality = [r for r in records if r["kind"] == "test"]
    per_user = [r for r in records if r.get("kind") == "per-user"]
    assert sorted(r["seed"] for r in per_user) == [0, 1]  # one per seed, for the paired bootstrap
    assert {r["refit"] for r in quality} == {True} and {r["leaks"] for r in quality} == {"removed"}
    assert {r["seed"] for r in quality} == {0, 1}
    assert {r["protocol"] for r in quality} == {"full", "sampled-99"}
    assert {(r["source"], r["target"]) for r in quality} == {("source", "target")}
    ndcg = [r for r in quality if r["metric"] == "ndcg" and r["k"] == 10 and r["protocol"] == "full"]
    assert len(ndcg) == 2 and all(0 < r["value"] < 1 for r in ndcg)


def test_recommend_prints_raw_item_ids(capsys):
    code, out, err = run(capsys, "recommend", "--dataset", "synthetic", "--method", "popularity",
                         "--user", "7", "--k", "5", "--quiet")
    assert code == 0, err
    lines = out.strip().splitlines()
    assert len(lines) == 6 and lines[1].startswith("1\t")


def test_recommend_unknown_user(capsys):
    code, _, err = run(capsys, "recommend", "--dataset", "synthetic", "--method", "popularity",
                       "--user", "no-such-user", "--quiet")
    assert_clear_error(code, err, "no-such-user")


def test_unknown_dataset_and_domain(capsys):
    code, _, err = run(capsys, "evaluate", "--dataset", "nope", "--method", "popularity")
    assert_clear_error(code, err, "nope", "amazon-elec-cloth")
    code, _, err = run(capsys, "data", "stats", "--dataset", "synthetic", "--target", "shoes")
    assert_clear_error(code, err, "shoes")


def test_unknown_method_and_option(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["evaluate", "--dataset", "synthetic", "--method", "magic"])
    assert exc.value.code == 2
    assert "magic" in capsys.readouterr().err
    code, _, err = run(capsys, "evaluate", "--dataset", "synthetic", "--method", "bpr-mf", "--option", "colour=3")
    assert_clear_error(code, err, "colour", "dim")
    with pytest.raises(SystemExit) as exc:
        main(["evaluate", "--dataset", "synthetic", "--method", "popularity", "--frobnicate"])
    assert exc.value.code == 2


def test_rho_only_for_synthetic(capsys):
    code, _, err = run(capsys, "data", "stats", "--dataset", "douban-book-music", "--rho", "0.3")
    assert_clear_error(code, err, "--rho")


def test_files_bad_input(capsys, tmp_path):
    good = tmp_path / "src.csv"
    good.write_text("u1,i1\nu2,i2\nu3,i1\n")
    code, _, err = run(capsys, "evaluate", "--files", str(good), str(tmp_path / "missing.csv"),
                       "--method", "popularity")
    assert_clear_error(code, err, "missing.csv")
    one_col = tmp_path / "onecol.csv"
    one_col.write_text("u1\nu2\n")
    code, _, err = run(capsys, "evaluate", "--files", str(good), str(one_col), "--method", "popularity")
    assert_clear_error(code, err, "onecol.csv")
    strangers = tmp_path / "strangers.csv"
    strangers.write_text("x1,j1\nx2,j2\nx3,j1\n")
    code, _, err = run(capsys, "evaluate", "--files", str(good), str(strangers), "--method", "popularity")
    assert_clear_error(code, err, "No user id occurs in both")
    bad_rating = tmp_path / "bad_rating.csv"
    bad_rating.write_text("u1,j1,4\nu2,j2,five\nu3,j1,5\n")
    code, _, err = run(capsys, "evaluate", "--files", str(good), str(bad_rating), "--method", "popularity")
    assert_clear_error(code, err, "bad_rating.csv")


def test_files_end_to_end(capsys, tmp_path):
    import numpy as np

    rng = np.random.default_rng(0)
    for name, n_items in (("a.tsv", 30), ("b.tsv", 20)):
        rows = {(u, int(i)) for u in range(40) for i in rng.choice(n_items, 5, replace=False)}
        (tmp_path / name).write_text("user\titem\n" + "".join(f"user{u}\titem{i}\n" for u, i in sorted(rows)))
    code, out, err = run(capsys, "evaluate", "--files", str(tmp_path / "a.tsv"), str(tmp_path / "b.tsv"),
                         "--method", "itemknn", "--quiet")
    assert code == 0, err
    assert "itemknn" in out


def test_out_folder_must_exist(capsys, tmp_path):
    code, _, err = run(capsys, "evaluate", *SYNTH[:2], "--method", "popularity", "--out",
                       str(tmp_path / "nope" / "r.json"))
    assert_clear_error(code, err, "--out")


def test_bench_quick_config(capsys, tmp_path):
    config = {"seeds": [0, 1], "ks": [10],
              "methods": {"popularity": {}, "itemknn": {}, "cross-itemknn": {}},
              "scenarios": [{"name": "synthetic-rho1", "dataset": "synthetic", "split": "loo",
                             "data": {"rho": 1.0, "n_users": 300, "n_source_items": 60, "n_target_items": 50},
                             "protocols": ["full"], "target_only": "itemknn"}]}
    path = tmp_path / "bench.json"
    path.write_text(json.dumps(config))
    code, _, err = run(capsys, "bench", str(path), "--out-dir", str(tmp_path / "out"), "--quiet")
    assert code == 0, err
    md = (tmp_path / "out" / "summary.md").read_text()
    assert "synthetic-rho1" in md and "cross-itemknn" in md and "p_vs_target_only" in md
    assert (tmp_path / "out" / "records.csv").is_file()


def test_bench_resume_runs_only_the_missing_runs(capsys, tmp_path):
    config = {"seeds": [0, 1], "ks": [10], "methods": {"popularity": {}, "itemknn": {}},
              "scenarios": [{"name": "tiny", "dataset": "synthetic", "split": "loo",
                             "data": {"n_users": 200, "n_source_items": 40, "n_target_items": 30}},
                            {"name": "other", "dataset": "synthetic", "split": "loo",
                             "data": {"n_users": 200, "n_source_items": 40, "n_target_items": 30, "rho": 0.0}}]}
    path, out = tmp_path / "bench.json", tmp_path / "out"
    path.write_text(json.dumps(config))
    code, _, err = run(capsys, "bench", str(path), "--out-dir", str(out), "--scenario", "tiny", "--quiet")
    assert code == 0, err
    first = json.loads((out / "records.json").read_text())
    assert {r["scenario"] for r in first} == {"tiny"}
    kept = [r for r in first if not (r["method"] == "itemknn" and r["seed"] == 1)]
    (out / "records.json").write_text(json.dumps(kept))
    code, _, err = run(capsys, "bench", str(path), "--out-dir", str(out), "--resume")
    assert code == 0, err
    assert "1 runs already done" not in err and "3 runs already done" in err
    again = json.loads((out / "records.json").read_text())
    assert again[:len(kept)] == kept  # the kept runs were not redone (their timings are unchanged)
    redone = [r for r in again[len(kept):] if r["scenario"] == "tiny"]
    assert {(r["method"], r["seed"]) for r in redone} == {("itemknn", 1)}
    assert {r["scenario"] for r in again} == {"tiny", "other"}
    assert "## other" in (out / "summary.md").read_text()


def test_bench_unknown_scenario_and_broken_resume_file(capsys, tmp_path):
    path = tmp_path / "bench.json"
    path.write_text(json.dumps({"methods": {"popularity": {}},
                                "scenarios": [{"name": "tiny", "dataset": "synthetic"}]}))
    code, _, err = run(capsys, "bench", str(path), "--scenario", "nope", "--out-dir", str(tmp_path / "o"))
    assert_clear_error(code, err, "nope")
    (tmp_path / "o").mkdir()
    (tmp_path / "o" / "records.json").write_text("{broken")
    code, _, err = run(capsys, "bench", str(path), "--resume", "--out-dir", str(tmp_path / "o"))
    assert_clear_error(code, err, "records.json")
    assert (tmp_path / "o" / "records.json").read_text() == "{broken"  # nothing overwritten


def test_bench_bad_config(capsys, tmp_path):
    code, _, err = run(capsys, "bench", str(tmp_path / "none.json"))
    assert_clear_error(code, err, "none.json")
    path = tmp_path / "bad.json"
    path.write_text(json.dumps({"methods": {"wizard": {}}, "scenarios": []}))
    code, _, err = run(capsys, "bench", str(path))
    assert_clear_error(code, err, "wizard")


@pytest.mark.slow
def test_evaluate_douban_and_amazon(capsys, shared_data_dir, monkeypatch):
    monkeypatch.setenv("XCATREC_DATA", str(shared_data_dir))
    code, out, err = run(capsys, "evaluate", "--dataset", "douban-book-music", "--method", "popularity", "--quiet")
    assert code == 0, err
    assert "music" in out
    code, out, err = run(capsys, "evaluate", "--dataset", "amazon-elec-cloth", "--source", "elec",
                         "--target", "cloth", "--method", "popularity", "--protocol", "sampled-999", "--quiet")
    assert code == 0, err
    assert "sampled-999" in out


# ---------------------------------------------------------------- checked before anything is loaded
@pytest.fixture
def no_loading(monkeypatch):
    """Make loading any data an error, to show that a check ran before the data were loaded."""
    import xcatrec.data

    def refuse(*args, **kwargs):
        raise AssertionError("data were loaded before the arguments were checked")

    monkeypatch.setattr(xcatrec.data, "load_dataset", refuse)
    monkeypatch.setattr(xcatrec.data, "load_files", refuse)


@pytest.mark.parametrize("option, needles", [
    ("epochs=abc", ("epochs", "whole number")),
    ("dim=2.5", ("dim", "whole number")),
    ("epochs=1.5", ("epochs", "whole number")),
    ("epochs=null", ("epochs", "not null")),
    ("learning_rate=fast", ("learning_rate", "a number")),
    ("learning_rate=NaN", ("learning_rate", "finite")),
    ("item_bias=maybe", ("item_bias", "true or false")),
    ("epochs=0", ("epochs must be at least 1",)),
])
def test_option_values_are_checked_against_the_config_field_types(capsys, no_loading, option, needles):
    code, _, err = run(capsys, "evaluate", "--dataset", "synthetic", "--method", "bpr-mf", "--option", option)
    assert_clear_error(code, err, *needles)


def test_list_options_are_checked_too(capsys, no_loading):
    code, _, err = run(capsys, "recommend", "--dataset", "synthetic", "--method", "finetune", "--user", "7",
                       "--option", "tower_units=32")
    assert_clear_error(code, err, "tower_units", "JSON list")
    code, _, err = run(capsys, "recommend", "--dataset", "synthetic", "--method", "conet", "--user", "7",
                       "--option", 'hidden=[32, "wide"]')
    assert_clear_error(code, err, "hidden", "whole number")


def test_option_seed_is_refused_and_not_listed_as_valid(capsys, no_loading):
    code, _, err = run(capsys, "evaluate", "--dataset", "synthetic", "--method", "bpr-mf", "--option", "seed=3")
    assert_clear_error(code, err, "--seeds", "--seed")
    code, _, err = run(capsys, "evaluate", "--dataset", "synthetic", "--method", "bpr-mf", "--option", "colour=3")
    assert_clear_error(code, err, "colour", "dim")
    assert "'seed'" not in err


@pytest.mark.parametrize("argv, needle", [
    (["recommend", "--dataset", "synthetic", "--method", "popularity", "--user", "7", "--seed", "-1"], "--seed"),
    (["recommend", "--dataset", "synthetic", "--method", "popularity", "--user", "7", "--k", "0"], "--k"),
    (["recommend", "--dataset", "synthetic", "--method", "popularity", "--user", "7", "--k", "-3"], "--k"),
    (["evaluate", "--dataset", "synthetic", "--method", "popularity", "--k", "10", "--k", "0"], "--k"),
    (["evaluate", "--dataset", "synthetic", "--method", "popularity", "--seeds", "0"], "--seeds"),
    (["evaluate", "--dataset", "synthetic", "--method", "popularity", "--seeds", "-2"], "--seeds"),
    (["evaluate", "--dataset", "synthetic", "--method", "popularity", "--split", "cold-start", "--beta", "1.5"],
     "--beta"),
    (["evaluate", "--dataset", "synthetic", "--method", "popularity", "--split", "cold-start", "--beta", "0"],
     "--beta"),
    (["evaluate", "--dataset", "synthetic", "--method", "popularity", "--beta", "0.5"], "cold-start only"),
    (["data", "stats", "--dataset", "synthetic", "--split", "loo", "--beta", "0.5"], "cold-start only"),
    (["data", "stats", "--dataset", "synthetic", "--rho", "nan"], "--rho"),
    (["evaluate", "--files", "a.csv", "b.csv", "--method", "popularity", "--threshold", "nan"], "--threshold"),
])
def test_bad_numbers_are_refused_before_any_data_is_loaded(capsys, no_loading, argv, needle):
    code, _, err = run(capsys, *argv)
    assert_clear_error(code, err, needle)


def test_cold_start_uses_beta_0_2_unless_given(capsys, monkeypatch):
    import xcatrec.data
    from xcatrec.errors import DataError

    seen = []

    def fake_load(name, **kwargs):
        seen.append(kwargs["beta"])
        raise DataError("stop here", "nothing to fix")

    monkeypatch.setattr(xcatrec.data, "load_dataset", fake_load)
    run(capsys, "data", "stats", "--dataset", "synthetic", "--split", "cold-start")
    run(capsys, "data", "stats", "--dataset", "synthetic", "--split", "cold-start", "--beta", "0.5")
    assert seen == [0.2, 0.5]


def test_files_that_are_not_regular_files_are_named_for_what_they_are(capsys, tmp_path, no_loading):
    good = tmp_path / "good.csv"
    good.write_text("u1,i1\nu2,i2\n")
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    for path, needle in ((tmp_path, "is a directory"), ("/dev/null", "not a regular file"), (empty, "is empty")):
        code, _, err = run(capsys, "evaluate", "--files", str(good), str(path), "--method", "popularity")
        assert_clear_error(code, err, str(path), needle)
        assert "does not exist" not in err


def test_out_that_is_a_directory_or_unwritable_is_refused_before_training(capsys, tmp_path, no_loading,
                                                                            monkeypatch):
    code, _, err = run(capsys, "evaluate", "--dataset", "synthetic", "--method", "popularity", "--out",
                       str(tmp_path))
    assert_clear_error(code, err, "--out", "is a directory")
    code, _, err = run(capsys, "evaluate", "--dataset", "synthetic", "--method", "popularity", "--out", "/dev/null")
    assert_clear_error(code, err, "--out", "not a regular file")

    def refuse(*args, **kwargs):  # tests run as root, where a chmod 555 folder stays writable
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr("tempfile.mkstemp", refuse)
    code, _, err = run(capsys, "evaluate", "--dataset", "synthetic", "--method", "popularity", "--out",
                       str(tmp_path / "r.json"))
    assert_clear_error(code, err, "--out", "Permission denied")
    assert list(tmp_path.iterdir()) == []


def test_out_is_written_atomically_with_the_usual_permissions(capsys, tmp_path):
    import os
    import stat

    out = tmp_path / "r.json"
    old = os.umask(0o022)
    try:
        code, _, err = run(capsys, "evaluate", "--dataset", "synthetic", "--method", "popularity", "--quiet",
                           "--out", str(out))
    finally:
        os.umask(old)
    assert code == 0, err
    assert [p.name for p in tmp_path.iterdir()] == ["r.json"]  # no <out>.tmp or other leftovers
    assert stat.S_IMODE(out.stat().st_mode) == 0o644
    assert json.loads(out.read_text())


def test_results_with_nan_are_not_written_as_invalid_json(tmp_path):
    from xcatrec.cli import _write_json
    from xcatrec.errors import ConfigError

    out = tmp_path / "r.json"
    records = [{"method": "item-mean", "seed": 0, "protocol": "ratings", "metric": "rmse", "k": None,
                "value": float("nan")}]
    with pytest.raises(ConfigError) as info:
        _write_json(str(out), records)
    assert "rmse" in info.value.problem and "nan" in info.value.problem
    assert list(tmp_path.iterdir()) == []


def test_overflowing_ratings_are_refused_with_the_row(capsys, tmp_path):
    src = tmp_path / "src.csv"
    src.write_text("u1,i1,4\nu2,i2,5\nu3,i1,3\n")
    tgt = tmp_path / "tgt.csv"
    tgt.write_text("u1,j1,4\nu2,j2,1e300\nu3,j1,5\n")
    code, _, err = run(capsys, "evaluate", "--files", str(src), str(tgt), "--method", "item-mean",
                       "--protocol", "ratings", "--quiet")
    assert_clear_error(code, err, "tgt.csv", "data row 2", "too large")


def test_recommend_returns_fewer_items_rather_than_ones_the_user_has(capsys):
    from xcatrec.data import load_dataset

    code, out, err = run(capsys, "recommend", "--dataset", "synthetic", "--method", "popularity",
                         "--user", "7", "--k", "500", "--quiet")
    assert code == 0, err
    items = [line.split("\t")[1] for line in out.strip().splitlines()[1:]]
    dataset = load_dataset("synthetic", seed=0)
    user = int(dataset.users.index(["7"])[0])
    known = set(dataset.target.items.to_raw(dataset.matrix("target", "known")[user].indices))
    assert known and not known & set(items)
    assert len(items) == dataset.target.n_items - len(known) < 500
    assert f"returned {len(items)} items, fewer than --k 500" in err and "--include-seen" in err


def test_a_cache_that_is_a_file_is_one_clear_line(capsys, tmp_path, monkeypatch):
    blocker = tmp_path / "cache-file"
    blocker.write_text("")
    monkeypatch.delenv("XCATREC_DATA", raising=False)
    monkeypatch.setenv("XCATREC_CACHE", str(blocker))
    code, _, err = run(capsys, "data", "fetch", "--dataset", "amazon-elec-cloth")
    assert_clear_error(code, err, str(blocker), "not a folder", "XCATREC_CACHE")


def test_split_and_protocol_choices_are_the_ones_the_library_accepts():
    from xcatrec.cli import build_parser
    from xcatrec.data import SPLITS
    from xcatrec.evaluation import PROTOCOLS

    commands = next(a for a in build_parser()._actions if a.dest == "command").choices
    choices = {a.dest: a.choices for a in commands["evaluate"]._actions}
    assert tuple(choices["split"]) == SPLITS
    assert set(choices["protocol"]) == set(PROTOCOLS) | {"ratings"}
