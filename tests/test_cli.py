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
    quality = [r for r in records if r["protocol"] != "cost"]
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
