"""Cross-listed products: leaked held-out rows, their removal, the loaders' default and the CLI."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest

from conftest import make_tiny_dataset
from xcatrec.cli import main
from xcatrec.data import (apply_split, cross_listed_pairs, dataset_stats, find_leaks, load_dataset, load_files,
                          remove_leaks)
from xcatrec.data.splits import rebuild, unsplit
from xcatrec.data.types import CrossDomainDataset, Domain, Interactions, Vocab
from xcatrec.errors import ConfigError


def _rows(pairs):
    users, items = zip(*pairs) if pairs else ((), ())
    return Interactions(np.array(users, dtype=np.int64), np.array(items, dtype=np.int64))


def hand_dataset(test=((0, 0), (4, 1), (5, 2)), cold_users=(), split="loo") -> CrossDomainDataset:
    """Six users, target items t0..t3, source items s0..s4 (see the expected Jaccards in the tests).

    Known target buyers: t0 {1,2,3}, t1 {1,2,3,5}, t3 {3} (user 3's valid row); t2 has none.
    Known source buyers: s0 {0,1,2,3}, s1 {1,2,4}, s2 {5}, s3 {0,4}, s4 {3}.
    """
    target_train = [(1, 0), (2, 0), (3, 0), (1, 1), (2, 1), (3, 1), (5, 1)]
    source_train = [(0, 0), (1, 0), (2, 0), (3, 0), (0, 3), (4, 3), (4, 1), (1, 1), (2, 1), (5, 2), (3, 4)]
    source = Domain("elec", Vocab.range(5, "item"), _rows(source_train), _rows([]), _rows([]))
    target = Domain("cloth", Vocab.range(4, "item"), _rows(target_train), _rows([(3, 3)]), _rows(list(test)))
    return CrossDomainDataset("hand", Vocab.range(6, "user"), source, target, split,
                              cold_users=np.array(cold_users, dtype=np.int64))


def leaked(report) -> set[tuple[int, int, int, float]]:
    return {(int(r.user), int(r.item), int(r.twin), float(r.jaccard)) for r in report.rows.itertuples()}


def test_exact_jaccard_adds_the_held_out_user_to_the_target_buyers():
    # (0, t0): B_t(t0) | {0} = {0,1,2,3} = B_s(s0) -> 1.0; without adding user 0 it would be 3/4
    # (5, t2): t2 has no known buyer, s2 is bought by user 5 alone -> Jaccard({5}, {5}) = 1
    # (4, t1): {1,2,3,4,5} vs B_s(s1) = {1,2,4}: 3/5 = 0.6, a near twin below 0.8
    report = find_leaks(hand_dataset())
    assert leaked(report) == {(0, 0, 0, 1.0), (5, 2, 2, 1.0)}
    assert (report.test_users, report.affected_test_users, report.identical) == (3, 2, 2)
    assert report.twin_rows == 2 and report.part == "test" and report.threshold == 0.8
    low = find_leaks(hand_dataset(), threshold=0.6)
    assert leaked(low) == {(0, 0, 0, 1.0), (5, 2, 2, 1.0), (4, 1, 1, 0.6)}
    assert low.identical == 2 and low.affected_test_users == 3
    assert find_leaks(hand_dataset(), threshold=0.61).affected_test_users == 2


def test_validation_part_and_report_dict():
    # the valid row (3, t3) is known itself, so u is in B_t(t3) already: {3} vs B_s(s4) = {3}
    valid = find_leaks(hand_dataset(), part="valid")
    assert leaked(valid) == {(3, 3, 4, 1.0)} and valid.test_users == 1
    ds = hand_dataset()
    out = find_leaks(ds).to_dict(ds.users, ds.source.items, ds.target.items)
    json.dumps(out)
    assert {k: out[k] for k in ("dataset", "source", "target", "threshold", "test_users",
                                "affected_test_users", "item_pairs")} == {
        "dataset": "hand", "source": "elec", "target": "cloth", "threshold": 0.8, "test_users": 3,
        "affected_test_users": 2, "item_pairs": 0}  # (t3, s4), bought by user 3 alone, is not counted
    assert len(cross_listed_pairs(ds, min_support=1)) == 1 and len(cross_listed_pairs(ds, min_support=2)) == 0
    assert {(r["user"], r["item"], r["twin"]) for r in out["leaked_rows"]} == {("0", "0", "0"), ("5", "2", "2")}
    with pytest.raises(ConfigError, match="held-out part"):
        find_leaks(ds, part="train")


def test_cross_listed_pairs_uses_known_rows_only():
    # known buyer sets: J(s0, t0) = 3/4, J(s4, t3) = 1; held-out rows do not count
    pairs = cross_listed_pairs(hand_dataset())
    assert pairs[["source_item", "target_item"]].values.tolist() == [[4, 3]]
    assert pairs.loc[0, "jaccard"] == 1.0 and pairs.loc[0, "shared"] == 1
    wide = cross_listed_pairs(hand_dataset(), threshold=0.75)
    assert wide[["source_item", "target_item"]].values.tolist() == [[0, 0], [4, 3]]
    assert wide[["source_support", "target_support"]].values.tolist() == [[4, 3], [1, 1]]
    supported = cross_listed_pairs(hand_dataset(), threshold=0.75, min_support=2)
    assert supported[["source_item", "target_item"]].values.tolist() == [[0, 0]]
    with pytest.raises(ConfigError, match="min_support"):
        cross_listed_pairs(hand_dataset(), min_support=0)


@pytest.mark.parametrize("bad", [0, 0.0, -0.5, 1.01, float("nan"), float("inf"), "0.8", None, True])
def test_threshold_must_be_a_finite_number_in_0_1(bad):
    for call in (find_leaks, remove_leaks, cross_listed_pairs):
        with pytest.raises(ConfigError, match="threshold") as err:
            call(hand_dataset(), threshold=bad)
        assert repr(bad) in err.value.problem and err.value.fix


def test_remove_leaks_drops_exactly_the_twins_of_held_out_rows():
    ds = hand_dataset()
    clean = remove_leaks(ds, min_other_buyers=0)  # every twin the definition finds
    before = set(zip(ds.source.train.users.tolist(), ds.source.train.items.tolist()))
    after = set(zip(clean.source.train.users.tolist(), clean.source.train.items.tolist()))
    assert before - after == {(0, 0), (5, 2), (3, 4)}  # test twins of users 0 and 5, valid twin of user 3
    assert len(clean.source.train) == len(ds.source.train) - 3
    for part in ("train", "valid", "test"):  # the target and every held-out row stay as they are
        assert np.array_equal(getattr(clean.target, part).users, getattr(ds.target, part).users)
        assert np.array_equal(getattr(clean.target, part).items, getattr(ds.target, part).items)
    assert clean.info == {"leaks": "removed", "leak_threshold": 0.8, "leak_rows_dropped": 3,
                          "leak_twins": {"test": 2, "valid": 1}, "leak_min_other_buyers": 0}
    assert find_leaks(clean).affected_test_users == 0
    again = remove_leaks(clean, min_other_buyers=0)  # nothing left to drop is still recorded
    assert again.info["leaks"] == "removed" and again.info["leak_rows_dropped"] == 0
    assert len(again.source.train) == len(clean.source.train)
    strict = remove_leaks(ds, threshold=1.0, min_other_buyers=0)
    assert strict.info["leak_rows_dropped"] == 3 and strict.info["leak_threshold"] == 1.0
    # the default keeps the coincidences: t2 has no known buyer (test row of user 5) and t3's only known
    # buyer is user 3 itself (its valid row); t0 has the other buyers 1, 2, 3, so user 0's s0 goes
    default = remove_leaks(ds)
    after = set(zip(default.source.train.users.tolist(), default.source.train.items.tolist()))
    assert before - after == {(0, 0)}
    assert default.info == {"leaks": "removed", "leak_threshold": 0.8, "leak_rows_dropped": 1,
                            "leak_twins": {"test": 1, "valid": 0}, "leak_min_other_buyers": 1}
    assert leaked(find_leaks(default)) == {(5, 2, 2, 1.0)}  # detection still reports the coincidence


def coincidence_dataset() -> CrossDomainDataset:
    """Four users; every twin below has Jaccard 1, only the number of other target buyers differs.

    Test (0, t0): nobody else bought t0 and user 0 alone bought s0 (a single-buyer coincidence).
    Test (1, t1): user 2 bought t1 too (known) and s1 is bought by users 1 and 2 (a real leak).
    Valid (3, t2): user 3's own valid row is t2's only known purchase and user 3 alone bought s2, so
    t2 has no known buyer besides user 3 (another coincidence, though ``|B_t(t2)| = 1``).
    """
    source = Domain("elec", Vocab.range(3, "item"), _rows([(0, 0), (1, 1), (2, 1), (3, 2)]), _rows([]), _rows([]))
    target = Domain("cloth", Vocab.range(3, "item"), _rows([(2, 1)]), _rows([(3, 2)]), _rows([(0, 0), (1, 1)]))
    return CrossDomainDataset("coincidence", Vocab.range(4, "user"), source, target, "loo")


def test_min_other_buyers_keeps_single_buyer_coincidences():
    ds = coincidence_dataset()
    key = lambda d: set(zip(d.source.known.users.tolist(), d.source.known.items.tolist()))  # noqa: E731
    report = find_leaks(ds)  # detection is the definition: both test rows leak
    assert leaked(report) == {(0, 0, 0, 1.0), (1, 1, 1, 1.0)} and report.identical == 2
    assert leaked(find_leaks(ds, part="valid")) == {(3, 2, 2, 1.0)}
    default = remove_leaks(ds)  # the coincidence twins stay, the real one goes
    assert key(ds) - key(default) == {(1, 1)}
    assert default.info["leak_rows_dropped"] == 1 and default.info["leak_twins"] == {"test": 1, "valid": 0}
    assert default.info["leak_min_other_buyers"] == 1
    assert leaked(find_leaks(default)) == {(0, 0, 0, 1.0)}
    every = remove_leaks(ds, min_other_buyers=0)  # the definition's twins all go
    assert key(ds) - key(every) == {(0, 0), (1, 1), (3, 2)}
    assert every.info["leak_rows_dropped"] == 3 and every.info["leak_twins"] == {"test": 2, "valid": 1}
    assert every.info["leak_min_other_buyers"] == 0 and find_leaks(every).affected_test_users == 0
    two = remove_leaks(ds, min_other_buyers=np.int64(2))  # t1 has one other buyer: nothing goes
    assert key(two) == key(ds) and two.info["leak_rows_dropped"] == 0
    assert two.info["leak_min_other_buyers"] == 2 and type(two.info["leak_min_other_buyers"]) is int
    for part in ("train", "valid", "test"):  # the target side never changes
        for clean in (default, every, two):
            assert np.array_equal(getattr(clean.target, part).items, getattr(ds.target, part).items)


@pytest.mark.parametrize("bad", [-1, 1.5, True, "1", None])
def test_min_other_buyers_must_be_a_non_negative_integer(bad):
    with pytest.raises(ConfigError, match="min_other_buyers") as err:
        remove_leaks(coincidence_dataset(), min_other_buyers=bad)
    assert repr(bad) in err.value.problem and err.value.fix


def test_cold_start_split_uses_the_same_definition():
    # user 0 is cold: its target rows t0 and t1 are test; {0,1,2,3} vs s0 -> 1, {0,1,2,3,5} vs s0 -> 4/5
    ds = hand_dataset(test=((0, 0), (0, 1)), cold_users=(0,), split="cold-start")
    report = find_leaks(ds)
    assert leaked(report) == {(0, 0, 0, 1.0), (0, 1, 0, 0.8)}
    assert report.test_users == 1 and report.affected_test_users == 1 and report.twin_rows == 1
    clean = remove_leaks(ds, min_other_buyers=0)
    assert clean.info["leak_rows_dropped"] == 2  # s0 of user 0 (test) and s4 of user 3 (valid)
    assert np.array_equal(clean.cold_users, [0]) and len(clean.target.test) == 2
    # t0 and t1 have other known buyers; t3's only known buyer is user 3 itself, so by default s4 stays
    default = remove_leaks(ds)
    assert default.info["leak_rows_dropped"] == 1 and default.info["leak_twins"] == {"test": 1, "valid": 0}
    assert 0 not in default.source.known.items[default.source.known.users == 0]
    assert 4 in default.source.known.items[default.source.known.users == 3]
    assert np.array_equal(default.cold_users, [0]) and len(default.target.test) == 2


def _brute_force(ds, part, threshold, min_other_buyers=0):
    """Leaked rows, identical rows, twin (user, source item) pairs and the twins removal drops.

    Straight from the definition; a twin ``(u, e)`` of the held-out row ``(u, i)`` is dropped when
    ``|B_t(i) - {u}| >= min_other_buyers``.
    """
    def buyers(inter):
        out = {}
        for u, i in zip(inter.users.tolist(), inter.items.tolist()):
            out.setdefault(i, set()).add(u)
        return out
    b_t, b_s = buyers(ds.target.known), buyers(ds.source.known)
    history = {}
    for u, e in zip(ds.source.known.users.tolist(), ds.source.known.items.tolist()):
        history.setdefault(u, set()).add(e)
    held = getattr(ds.target, part)
    rows, identical, twins, dropped = {}, 0, set(), set()
    for u, i in set(zip(held.users.tolist(), held.items.tolist())):
        a = b_t.get(i, set()) | {u}
        scores = {e: len(a & b_s[e]) / len(a | b_s[e]) for e in history.get(u, ())}
        hits = {e for e, j in scores.items() if j >= threshold}
        if hits:
            rows[(u, i)] = max(scores.values())
            identical += any(a == b_s[e] for e in hits if scores[e] == max(scores.values()))
            twins |= {(u, e) for e in hits}
            if len(b_t.get(i, set()) - {u}) >= min_other_buyers:
                dropped |= {(u, e) for e in hits}
    return rows, identical, twins, dropped


def _cross_listed(base, n_pairs=8):
    """``base`` unsplit, with ``n_pairs`` target items (two buyers or more) also listed as new source
    items bought by the same users: real twins with other buyers, next to the sparse data's coincidences."""
    ds = unsplit(base)
    tgt, src = ds.target.train, ds.source.train
    listed = np.flatnonzero(np.bincount(tgt.items, minlength=ds.target.n_items) >= 2)[:n_pairs]
    assert len(listed) == n_pairs
    twin = np.isin(tgt.items, listed)
    items = np.r_[src.items, ds.source.n_items + np.searchsorted(listed, tgt.items[twin])]
    source = replace(ds.source, items=Vocab.range(ds.source.n_items + n_pairs, "item"),
                     train=Interactions(np.r_[src.users, tgt.users[twin]], items))
    return rebuild(ds, source=source)


@pytest.mark.parametrize("min_other_buyers", [0, 1])
@pytest.mark.parametrize("split", ["loo", "random", "cold-start"])
@pytest.mark.parametrize("threshold", [0.4, 0.5, 0.8, 1.0])
def test_matches_a_brute_force_reference(split, threshold, min_other_buyers):
    base = make_tiny_dataset(n_users=40, n_src=120, n_tgt=100, per_user=4, seed=3)  # sparse: twins occur
    ds = apply_split(_cross_listed(base), split, beta=0.3, seed=1)
    clean = remove_leaks(ds, threshold=threshold, min_other_buyers=min_other_buyers)
    everything, drop = set(), set()
    for part in ("test", "valid"):
        rows, identical, twins, dropped = _brute_force(ds, part, threshold, min_other_buyers)
        report = find_leaks(ds, threshold=threshold, part=part)  # detection ignores min_other_buyers
        got = dict(zip(zip(report.rows.user.tolist(), report.rows.item.tolist()), report.rows.jaccard))
        assert got.keys() == rows.keys() and all(got[k] == pytest.approx(rows[k]) for k in rows)
        assert report.identical == identical and report.twin_rows == len(twins)
        assert clean.info["leak_twins"][part] == len(dropped)
        everything |= twins
        drop |= dropped
    # not vacuous: the cross-listed items give twins with other buyers at every threshold, and the
    # sparse data single-buyer coincidences, which only min_other_buyers=0 drops
    assert drop and (drop == everything if min_other_buyers == 0 else drop < everything)
    key = lambda inter: set(zip(inter.users.tolist(), inter.items.tolist()))  # noqa: E731
    assert key(ds.source.known) - key(clean.source.known) == drop
    assert key(clean.source.known) == key(ds.source.known) - drop
    assert clean.info["leak_min_other_buyers"] == min_other_buyers
    assert len(clean.target.test) == len(ds.target.test)


SOURCE = """A1,E1,5,100
A1,E9,5,200
A1,E5,5,900
A2,E1,5,150
A2,E2,5,250
A2,E5,5,900
A3,E2,5,120
A3,E1,5,130
A3,E5,5,900
"""
TARGET = """A1,C1,5,110
A1,C2,5,120
A1,C9,5,300
A2,C1,5,160
A2,C2,5,170
A2,C3,5,400
A3,C1,5,100
A3,C3,5,130
"""


@pytest.fixture
def files(tmp_path):
    """Leave-one-out by time: A1's test row C9 has no other buyer and A1 alone bought E9 (a twin)."""
    src, tgt = tmp_path / "electronics.csv", tmp_path / "clothing.csv"
    src.write_text(SOURCE)
    tgt.write_text(TARGET)
    return src, tgt


@pytest.fixture
def leaky_files(tmp_path):
    """The same, plus A4, who bought C9 and E9 before A1 (known rows): A1's twin E9 is now a real leak.

    A4's own held-out rows (C7 valid, C8 test) have no twin: A4's E7 is its source test row.
    """
    (tmp_path / "leaky").mkdir()
    src, tgt = tmp_path / "leaky" / "electronics.csv", tmp_path / "leaky" / "clothing.csv"
    src.write_text(SOURCE + "A4,E9,5,50\nA4,E7,5,60\n")
    tgt.write_text(TARGET + "A4,C9,5,50\nA4,C7,5,60\nA4,C8,5,70\n")
    return src, tgt


def _history(ds, user):
    """Raw ids of ``user``'s known source items."""
    known = ds.source.known
    return set(ds.source.items.to_raw(known.items[known.users == ds.users.index([user])[0]]).tolist())


def test_loaders_remove_by_default_and_keep_on_request(files, leaky_files):
    kept = load_files(*files, leaks="keep")
    assert kept.info["leaks"] == "kept" and "leak_rows_dropped" not in kept.info
    report = find_leaks(kept)
    a1 = kept.users.index(["A1"])[0]
    assert report.test_users == 3 and report.affected_test_users == 1
    assert report.rows.user.tolist() == [a1] and kept.source.items.to_raw(report.rows.twin).tolist() == ["E9"]
    # A1 alone bought C9 and E9: a coincidence, so the default (min_other_buyers=1) drops nothing
    removed = load_files(*files)
    assert removed.info["leaks"] == "removed" and removed.info["leak_rows_dropped"] == 0
    assert removed.info["leak_twins"] == {"test": 0, "valid": 0} and removed.info["leak_min_other_buyers"] == 1
    assert len(removed.source.train) == len(kept.source.train) and len(removed.target.test) == 3
    assert _history(removed, "A1") == {"E1", "E9"}
    every = remove_leaks(kept, min_other_buyers=0)  # the definition-level removal drops it
    assert every.info["leak_rows_dropped"] == 1 and _history(every, "A1") == {"E1"}
    # with A4 as a second known buyer of C9 and E9 the loaders drop A1's E9, and only that row
    kept = load_files(*leaky_files, leaks="keep")
    assert leaked(find_leaks(kept)) == {(kept.users.index(["A1"])[0], kept.target.items.index(["C9"])[0],
                                         kept.source.items.index(["E9"])[0], 1.0)}
    removed = load_files(*leaky_files)
    assert removed.info["leak_rows_dropped"] == 1 and removed.info["leak_twins"] == {"test": 1, "valid": 0}
    assert len(removed.source.train) == len(kept.source.train) - 1 and len(removed.target.test) == 4
    assert _history(removed, "A1") == {"E1"} and _history(removed, "A4") == {"E9"}
    with pytest.raises(ConfigError, match="leaks"):
        load_files(*files, leaks="drop")
    with pytest.raises(ConfigError, match="leaks"):
        load_dataset("synthetic", leaks="maybe")


def test_synthetic_records_the_leak_handling():
    options = dict(n_users=120, n_source_items=30, n_target_items=25, images=False)
    ds = load_dataset("synthetic", **options)
    assert ds.info["leaks"] == "removed" and ds.info["leak_rows_dropped"] >= 0
    assert load_dataset("synthetic", leaks="keep", **options).info["leaks"] == "kept"


def test_dataset_stats_counts_cross_listed_pairs(files):
    ds = load_files(*files, leaks="keep")
    stats = dataset_stats(ds)
    assert stats["cross_listed"].tolist() == [len(cross_listed_pairs(ds))] * 2


def test_cli_data_leaks_writes_json(files, tmp_path, capsys):
    out = tmp_path / "leaks.json"
    code = main(["data", "leaks", "--files", str(files[0]), str(files[1]), "--out", str(out)])
    printed, err = capsys.readouterr()
    assert code == 0, err
    assert "affected test users:     1 (33.3%)" in printed and "cross-listed item pairs" in printed
    report = json.loads(out.read_text())
    for field in ("dataset", "source", "target", "threshold", "test_users", "affected_test_users", "item_pairs"):
        assert field in report
    assert report["test_users"] == 3 and report["affected_test_users"] == 1 and report["threshold"] == 0.8
    assert [r["twin"] for r in report["leaked_rows"]] == ["E9"]
    assert [p.name for p in tmp_path.iterdir() if p.suffix == ".tmp"] == []
    code = main(["data", "leaks", "--files", str(files[0]), str(files[1]), "--threshold", "1"])
    assert code == 0 and "Jaccard >= 1" in capsys.readouterr().out


@pytest.mark.parametrize("bad", ["0", "1.5", "nan", "abc"])
def test_cli_data_leaks_bad_threshold(files, capsys, bad):
    code = main(["data", "leaks", "--files", str(files[0]), str(files[1]), "--threshold", bad])
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err
    assert err.strip().splitlines()[-2].startswith("error: ") and bad in err


def _source_train(printed: str) -> int:
    """The source row's train count in the printed ``data stats`` table."""
    header, *lines = printed.strip().splitlines()
    row = next(line.split() for line in lines if line.split()[0] == "source")
    return int(row[header.split().index("train")])


@pytest.mark.parametrize("fixture, dropped", [("files", 0), ("leaky_files", 1)])
def test_cli_keep_leaks_flag(request, capsys, fixture, dropped):
    # files: A1's only twin is a single-buyer coincidence, which the default keeps; leaky_files: a real leak
    src, tgt = request.getfixturevalue(fixture)
    assert main(["data", "stats", "--files", str(src), str(tgt)]) == 0
    removed = capsys.readouterr().out
    assert main(["data", "stats", "--files", str(src), str(tgt), "--keep-leaks"]) == 0
    kept = capsys.readouterr().out
    assert "cross_listed" in kept and _source_train(kept) - _source_train(removed) == dropped
    assert (removed != kept) == bool(dropped)


@pytest.mark.slow
@pytest.mark.parametrize("name, test_users, affected", [("amazon-elec-phone", 2_559, 283),
                                                        ("amazon-elec-cloth", 12_526, 24)])
def test_published_amazon_splits_leak(shared_data_dir, name, test_users, affected):
    ds = load_dataset(name, data_dir=shared_data_dir, leaks="keep")
    report = find_leaks(ds)
    assert report.test_users == test_users
    assert abs(report.affected_test_users - affected) <= 3, report.affected_test_users
    clean = remove_leaks(ds)
    assert find_leaks(clean).affected_test_users == 0 and len(clean.target.test) == len(ds.target.test)
    # no leaked test row is a single-buyer coincidence, so the default drops every test twin
    every = remove_leaks(ds, min_other_buyers=0)
    assert clean.info["leak_twins"]["test"] == every.info["leak_twins"]["test"] == report.twin_rows
    assert clean.info["leak_twins"]["valid"] <= every.info["leak_twins"]["valid"]
