"""Train once, serve many: the model folder of ``fit --save`` and ``recommend --model``.

Small files written here (two taste groups, users known in one category only) keep every fit to a
fraction of a second; the folders are fitted once per module and copied where a test damages one.
"""

from __future__ import annotations

import csv
import json
import shutil

import numpy as np
import pytest

from xcatrec.cli import main
from xcatrec.data import load_files
from xcatrec.data.download import file_sha256
from xcatrec.serving import FORMAT_VERSION, META_FILE, ServedModel, fit_for_serving, save_folder


def run(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def assert_clear_error(code, err, *needles):
    assert code == 2, err
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    assert lines[-2].startswith("error: ") and lines[-1].startswith("fix: "), err
    for needle in needles:
        assert needle in err, err


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """Two interaction files: 40 users in both, ``solo0..3`` in the source file only, ``tonly0..1`` in
    the target file only; even users buy from the first half of each category, odd from the second."""
    folder = tmp_path_factory.mktemp("data")
    rng = np.random.default_rng(0)
    src, tgt = [], []
    for u in range(40):
        half = u % 2
        src += [f"u{u},s{i}" for i in rng.choice(np.arange(10) + 10 * half, 5, replace=False)]
        tgt += [f"u{u},t{i}" for i in rng.choice(np.arange(8) + 8 * half, 5, replace=False)]
    src += [f"solo{u},s{i}" for u in range(4) for i in rng.choice(np.arange(10) + 10 * (u % 2), 5, replace=False)]
    tgt += [f"tonly{u},t{i}" for u in range(2) for i in (0, 1, 2)]
    paths = folder / "source.csv", folder / "target.csv"
    for path, rows in zip(paths, (src, tgt)):
        path.write_text("\n".join(rows) + "\n")
    return paths


@pytest.fixture(scope="module")
def folders(files, tmp_path_factory):
    """One fitted folder per method: cross-itemknn (a transfer method) and itemknn (target only)."""
    out = {}
    for method in ("cross-itemknn", "itemknn"):
        path = tmp_path_factory.mktemp("models") / method
        assert main(["fit", "--files", *map(str, files), "--method", method, "--save", str(path), "--quiet"]) == 0
        out[method] = path
    return out


@pytest.fixture
def copy(folders, tmp_path):
    """A private copy of the cross-itemknn folder, for tests that damage it."""
    return shutil.copytree(folders["cross-itemknn"], tmp_path / "copy")


def edit_meta(folder, **changes):
    meta = json.loads((folder / META_FILE).read_text())
    (folder / META_FILE).write_text(json.dumps({**meta, **changes}))


def test_fit_writes_a_complete_checked_folder(folders, files):
    folder = folders["cross-itemknn"]
    meta = json.loads((folder / META_FILE).read_text())
    assert meta["format_version"] == FORMAT_VERSION and meta["method"] == "cross-itemknn"
    assert meta["command"].startswith("python -m xcatrec fit --files") and "--save" in meta["command"]
    assert meta["training"]["refit_on"].startswith("all rows")
    assert sorted(meta["data"]["files"].values()) == sorted(file_sha256(f) for f in files)
    assert meta["files"] == {p.name: file_sha256(p) for p in folder.iterdir() if p.name != META_FILE}
    assert not [p for p in folder.parent.iterdir() if p.name.startswith(".")]  # no temporary folder left
    served = ServedModel.load(folder)
    assert {"u0", "solo0", "tonly0"} <= set(served.users.raw.tolist())
    assert {"s0", "s19"} <= set(served.source_items.raw.tolist()) and "t15" in served.target_items.raw.tolist()
    u0 = served.users.index(["u0"])[0]
    assert len(served.target_seen[u0].indices) == 5  # every target row, test included, is known


@pytest.mark.parametrize("method", ["itemknn", "ease", "popularity"])  # popularity: many ties to break alike
def test_loaded_folder_ranks_like_the_fitted_model(files, tmp_path, method):
    dataset = load_files(*files)
    model, full, training = fit_for_serving(dataset, method, {})
    save_folder(model, full, tmp_path / "m", command="test", data={"name": "files"}, training=training)
    served = ServedModel.load(tmp_path / "m")
    users = np.arange(full.n_users)
    np.testing.assert_array_equal(served.model.score(users), model.score(users))
    expected = model.recommend(users, k=4)
    warm = [u for u in users if served.route([full.users.raw[u]])[1] == ["model"]]
    answers = list(served.recommend(full.users.raw[warm], k=4, batch_size=3))
    for user, answer in zip(warm, answers):
        row = expected[user]
        assert answer.items.tolist() == full.target.items.to_raw(row[row >= 0]).tolist()
        np.testing.assert_allclose(answer.scores, model.score([user], row[row >= 0])[0])


def test_recommend_one_user_by_raw_id(capsys, folders):
    code, out, err = run(capsys, "recommend", "--model", folders["cross-itemknn"], "--user", "u0", "--k", "3")
    assert code == 0, err
    header, *rows = out.strip().splitlines()
    assert "served by: model" in header and len(rows) == 3
    items = [r.split("\t")[1] for r in rows]
    assert all(int(i[1:]) < 8 for i in items)  # an even user: the first half of the target items
    served = ServedModel.load(folders["cross-itemknn"])
    seen = served.target_items.to_raw(served.target_seen[served.users.index(["u0"])[0]].indices)
    assert not set(items) & set(seen.tolist())


def test_unknown_user_gets_popularity_and_is_told(capsys, folders):
    code, out, err = run(capsys, "recommend", "--model", folders["itemknn"], "--user", "stranger", "--k", "3")
    assert code == 0, err
    assert "served by: popularity" in out and "'stranger' is not among the model's" in err
    served = ServedModel.load(folders["itemknn"])
    rows = [r.split("\t") for r in out.strip().splitlines()[1:]]
    assert [float(r[2]) for r in rows] == sorted(served.popularity)[::-1][:3]  # the most bought items
    assert [served.popularity[served.target_items.index([r[1]])[0]] for r in rows] == [float(r[2]) for r in rows]


def test_source_only_user_is_served_from_source_history_by_transfer_methods(capsys, folders):
    code, out, err = run(capsys, "recommend", "--model", folders["cross-itemknn"], "--user", "solo1", "--k", "4")
    assert code == 0 and "served by: source-history" in out and "source history" in err
    assert all(int(r.split("\t")[1][1:]) >= 8 for r in out.strip().splitlines()[1:])  # odd: second half
    code, out, err = run(capsys, "recommend", "--model", folders["itemknn"], "--user", "solo1", "--k", "4")
    assert code == 0 and "served by: popularity" in out and "reads the target category alone" in err


def test_users_file_in_batches_to_csv(capsys, folders, tmp_path):
    (tmp_path / "users.txt").write_text("u0\n# a comment\n\nsolo0\nstranger\nu1\ntonly0\n")
    out_file = tmp_path / "recs.csv"
    code, _, err = run(capsys, "recommend", "--model", folders["cross-itemknn"], "--users", tmp_path / "users.txt",
                       "--k", "2", "--batch-size", "2", "--out", out_file)
    assert code == 0, err
    assert "3 by model, 1 by source-history, 1 by popularity" in err
    rows = list(csv.DictReader(out_file.open()))
    assert [r["user"] for r in rows] == ["u0", "u0", "solo0", "solo0", "stranger", "stranger", "u1", "u1",
                                         "tonly0", "tonly0"]
    assert [r["served"] for r in rows[::2]] == ["model", "source-history", "popularity", "model", "model"]
    code, out, _ = run(capsys, "recommend", "--model", folders["cross-itemknn"], "--user", "u1", "--k", "2")
    assert [line.split("\t")[1] for line in out.strip().splitlines()[1:]] == [r["item"] for r in rows[6:8]]


def test_users_file_with_a_bad_line_or_nothing(capsys, folders, tmp_path):
    bad = tmp_path / "bad.txt"
    bad.write_text("u0\nu1,u2\n")
    code, _, err = run(capsys, "recommend", "--model", folders["itemknn"], "--users", bad)
    assert_clear_error(code, err, "line 2", "one raw user id per line")
    bad.write_text("# only a comment\n")
    code, _, err = run(capsys, "recommend", "--model", folders["itemknn"], "--users", bad)
    assert_clear_error(code, err, "holds no user id")
    code, _, err = run(capsys, "recommend", "--model", folders["itemknn"], "--users", tmp_path / "none.txt")
    assert_clear_error(code, err, "none.txt")


def test_missing_or_foreign_folder(capsys, tmp_path):
    code, _, err = run(capsys, "recommend", "--model", tmp_path / "nowhere", "--user", "u0")
    assert_clear_error(code, err, "does not exist", "python -m xcatrec fit")
    (tmp_path / "empty").mkdir()
    code, _, err = run(capsys, "recommend", "--model", tmp_path / "empty", "--user", "u0")
    assert_clear_error(code, err, "not an xcatrec model folder")


@pytest.mark.parametrize("changes, needle", [({"format_version": FORMAT_VERSION + 1}, "format version"),
                                             ({"xcatrec_version": "7.0.0"}, "written by xcatrec '7.0.0'"),
                                             ({"method": "magic"}, "unknown method 'magic'")])
def test_incompatible_folder_is_refused(capsys, copy, changes, needle):
    edit_meta(copy, **changes)
    code, _, err = run(capsys, "recommend", "--model", copy, "--user", "u0")
    assert_clear_error(code, err, needle)


@pytest.mark.parametrize("name", ["weights.npz", "serving.npz", "model.json"])
def test_tampered_file_is_refused(capsys, copy, name):
    data = bytearray((copy / name).read_bytes())
    data[len(data) // 2] ^= 0xFF
    (copy / name).write_bytes(bytes(data))
    code, _, err = run(capsys, "recommend", "--model", copy, "--user", "u0")
    assert_clear_error(code, err, name, "SHA-256")


def test_pickled_arrays_are_never_loaded_even_with_matching_checksums(capsys, copy):
    """An object array is stored as a pickle; loading must refuse it rather than run it."""
    with np.load(copy / "weights.npz") as npz:
        state = {k: npz[k] for k in npz.files}
    state[next(iter(state))] = np.array([{"payload": 1}], dtype=object)
    np.savez(copy / "weights.npz", **state)
    meta = json.loads((copy / META_FILE).read_text())
    edit_meta(copy, files={**meta["files"], "weights.npz": file_sha256(copy / "weights.npz")})
    code, _, err = run(capsys, "recommend", "--model", copy, "--user", "u0")
    assert_clear_error(code, err, "cannot be read")


def test_failed_fit_leaves_no_folder_and_keeps_the_old_one(files, folders, tmp_path, monkeypatch):
    dataset = load_files(*files)
    model, full, training = fit_for_serving(dataset, "popularity", {})
    target = shutil.copytree(folders["itemknn"], tmp_path / "m")
    before = {p.name: p.read_bytes() for p in target.iterdir()}

    def broken(path):
        (path / "model.json").write_text("{}")
        raise OSError("disk full")

    monkeypatch.setattr(model, "save", broken)
    for path in (tmp_path / "new", target):
        with pytest.raises(OSError, match="disk full"):
            save_folder(model, full, path, command="test", data={}, training=training, overwrite=True)
    assert not (tmp_path / "new").exists() and {p.name: p.read_bytes() for p in target.iterdir()} == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m"]  # no temporary folder left behind
    monkeypatch.undo()
    save_folder(model, full, target, command="test", data={}, training=training, overwrite=True)
    assert ServedModel.load(target).method == "popularity"


def test_fit_refuses_to_replace_before_training(capsys, files, folders, tmp_path):
    code, _, err = run(capsys, "fit", "--files", *files, "--method", "itemknn", "--save", folders["itemknn"])
    assert_clear_error(code, err, "already holds a model", "--overwrite")
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "todo.txt").write_text("keep me")
    code, _, err = run(capsys, "fit", "--files", *files, "--method", "itemknn", "--save", tmp_path / "notes",
                       "--overwrite")
    assert_clear_error(code, err, "not an xcatrec model folder")
    assert (tmp_path / "notes" / "todo.txt").read_text() == "keep me"


def test_recommend_arguments_are_checked(capsys, folders, tmp_path):
    code, _, err = run(capsys, "recommend", "--model", folders["itemknn"], "--method", "ease", "--user", "u0")
    assert_clear_error(code, err, "--method cannot be combined with --model")
    code, _, err = run(capsys, "recommend", "--dataset", "synthetic", "--method", "popularity", "--users",
                       tmp_path / "u.txt")
    assert_clear_error(code, err, "--users", "--model only")
    code, _, err = run(capsys, "recommend", "--user", "u0")
    assert_clear_error(code, err, "--model DIR")


def test_help_shows_fit_and_recommend_model():
    from xcatrec.cli import build_parser

    parser = build_parser()
    assert "fit" in parser.format_help() and "recommend --model" in parser.format_help()
    commands = parser._subparsers._group_actions[0].choices
    assert "--save" in commands["fit"].format_help() and "--tune" in commands["fit"].format_help()
    assert all(flag in commands["recommend"].format_help() for flag in ("--model", "--users", "--out"))


def test_serving_a_model_that_needs_no_keras_never_imports_tensorflow(folders):
    """The registry imports only the served method's module: a kNN folder answers without TensorFlow
    (which alone takes about ten seconds to import)."""
    import subprocess
    import sys

    probe = ("import sys\nfrom xcatrec.cli import main\n"
             f"assert main(['recommend', '--model', {str(folders['cross-itemknn'])!r}, '--user', 'u0', "
             "'--quiet']) == 0\n"
             "assert 'tensorflow' not in sys.modules and 'keras' not in sys.modules, 'tensorflow imported'")
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "served by: model" in done.stdout
