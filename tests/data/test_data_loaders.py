"""Loaders: two user files, named data sets (real data in the slow tests), statistics."""

from __future__ import annotations

import time

import numpy as np
import pytest

from xcatrec.data import dataset_stats, load_dataset, load_files
from xcatrec.errors import ConfigError, DataError

SOURCE = """A1,E1,5.0,100
A1,E2,4.0,200
A1,E3,3.0,300
A2,E1,2.0,150
A2,E3,5.0,250
A3,E2,4.0,120
"""
TARGET = """A1,C1,5.0,110
A1,C2,1.0,210
A2,C1,4.0,160
A2,C3,5.0,260
A2,C2,5.0,270
A4,C3,3.0,130
"""


@pytest.fixture
def files(tmp_path):
    src, tgt = tmp_path / "electronics.csv", tmp_path / "clothing.csv"
    src.write_text(SOURCE)
    tgt.write_text(TARGET)
    return src, tgt


def test_load_files_aligns_users_by_raw_id(files):
    ds = load_files(*files, split="loo", seed=0)
    assert set(ds.users.raw) == {"A1", "A2", "A3", "A4"}  # users in one file only are kept
    assert (ds.source.name, ds.target.name) == ("source", "target")
    overlap = set(ds.users.to_raw(np.flatnonzero(ds.overlap)))
    assert overlap == {"A1", "A2"}
    a1 = ds.users.index(["A1"])[0]
    target_all = ds.target.known.concat(ds.target.test)
    assert set(ds.target.items.to_raw(target_all.items[target_all.users == a1])) == {"C1", "C2"}
    # leave-one-out by timestamp: A2's latest target row (C2 at 270) is test
    a2 = ds.users.index(["A2"])[0]
    assert ds.target.items.to_raw(ds.target.test.items[ds.target.test.users == a2]).tolist() == ["C2"]
    assert ds.target.test.ratings is not None and ds.target.train.timestamps is not None
    assert ds.info["seed"] == 0 and ds.info["valid"] == "loo"


def test_load_files_options(files):
    ds = load_files(*files, implicit_threshold=4, split="random", valid=False)
    assert ds.target.train.ratings is None and len(ds.target.valid) == 0
    assert ds.info["cleaning"]["target"]["below implicit threshold"] == 2
    cold = load_files(*files, split="cold-start", beta=0.5, seed=1)
    assert len(cold.cold_users) == 1 and cold.info["beta"] == 0.5
    assert set(np.unique(cold.target.test.users)) == set(cold.cold_users)


def test_no_overlapping_users_names_both_files(tmp_path, files):
    other = tmp_path / "other.csv"
    other.write_text("Z1,C1,5.0,1\nZ2,C2,4.0,2\n")
    with pytest.raises(DataError) as info:
        load_files(files[0], other)
    message = str(info.value)
    assert str(files[0]) in message and str(other) in message and "same user ids" in message


def test_bad_files_and_options(tmp_path, files):
    with pytest.raises(DataError, match="does not exist"):
        load_files(tmp_path / "missing.csv", files[1])
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    with pytest.raises(DataError, match="empty"):
        load_files(files[0], empty)
    one = tmp_path / "one.csv"
    one.write_text("A1\nA2\n")
    with pytest.raises(DataError, match="only one column"):
        load_files(files[0], one)
    with pytest.raises(DataError, match="no interactions left after cleaning"):
        load_files(*files, implicit_threshold=99)
    with pytest.raises(ConfigError, match="'loo'"):
        load_files(*files, split="published")
    with pytest.raises(ConfigError, match="'temporal'"):
        load_files(*files, split="by-magic")


def test_load_dataset_bad_names_list_valid_values():
    with pytest.raises(ConfigError, match="amazon-elec-phone"):
        load_dataset("amazon")
    with pytest.raises(ConfigError, match=r"\['book', 'music'\]"):
        load_dataset("douban-book-music", target="movie")
    with pytest.raises(ConfigError, match="'cold-start'"):
        load_dataset("douban-book-music", split="kfold")
    with pytest.raises(ConfigError, match="both 'elec'"):
        load_dataset("amazon-elec-cloth", source="elec", target="elec")
    with pytest.raises(ConfigError, match="only to load_dataset\\('synthetic'"):
        load_dataset("amazon-elec-cloth", rho=0.5)
    with pytest.raises(ConfigError, match="no published split"):
        load_dataset("douban-book-music", split="published")


def test_dataset_stats(files):
    ds = load_files(*files, split="loo", seed=0)
    stats = dataset_stats(ds).set_index("role")
    assert stats.loc["source", "users"] == 3 and stats.loc["target", "users"] == 3
    assert stats.loc["source", "items"] == 3 and stats.loc["target", "items"] == 3
    assert stats.loc["target", "train"] + stats.loc["target", "valid"] + stats.loc["target", "test"] == 6
    assert stats.loc["target", "overlap_users"] == 2
    assert stats.loc["source", "density"] == pytest.approx(6 / 9)


# ---------------------------------------------------------------- real data (slow)

@pytest.fixture
def real(monkeypatch, shared_data_dir):
    monkeypatch.setenv("XCATREC_DATA", str(shared_data_dir))
    return shared_data_dir


@pytest.mark.slow
def test_amazon_elec_cloth_published_split_matches_the_card(real):
    load_dataset("amazon-elec-cloth")  # warm the file cache and the hash memo
    start = time.process_time()
    ds = load_dataset("amazon-elec-cloth")
    cpu = time.process_time() - start
    assert cpu < 3.0, f"loading took {cpu:.2f} s of CPU"
    assert ds.split == "published" and ds.n_users == 15_761 and ds.overlap.sum() == 15_761
    assert (ds.source.name, ds.target.name) == ("elec", "cloth")
    # source twins of held-out target rows are dropped by default (xcatrec.data.leaks)
    assert ds.info["leaks"] == "removed" and ds.info["leak_rows_dropped"] > 0
    assert len(ds.source.train) + ds.info["leak_rows_dropped"] == 210_865 and len(ds.source.test) == 13_824
    assert len(ds.target.train) + len(ds.target.valid) == 121_083 and len(ds.target.test) == 12_526
    assert (ds.source.n_items, ds.target.n_items) == (51_447, 48_781)
    assert ds.source.train.ratings is None  # implicit
    counts = np.bincount(ds.target.known.users, minlength=ds.n_users)
    assert len(ds.target.valid) == (counts >= 2).sum()
    # one held-out item per test user, and it was seen in training
    assert len(np.unique(ds.target.test.users)) == len(ds.target.test)
    assert np.isin(ds.target.test.items, ds.target.known.items).all()
    # raw ids are those of the files: user "0" is row 0 of both folders
    assert ds.users.raw[0] == "0"
    rev = load_dataset("amazon-elec-cloth", source="cloth", valid=False)
    assert (rev.source.name, rev.target.name) == ("cloth", "elec")
    assert len(rev.target.train) == 210_865 and len(rev.target.test) == 13_824


@pytest.mark.slow
def test_amazon_elec_phone_published_split(real):
    ds = load_dataset("amazon-elec-phone", valid=False, leaks="keep")
    assert ds.n_users == 3_325
    assert (len(ds.source.train), len(ds.source.test)) == (115_554, 2_560)
    assert (len(ds.target.train), len(ds.target.test)) == (50_407, 2_559)


@pytest.mark.slow
def test_douban_ratings_and_overlap(real):
    ds = load_dataset("douban-book-music", seed=0)
    assert ds.overlap.sum() == 1_566 and ds.n_users == 2_110 + 1_672 - 1_566
    assert ds.split == "loo"
    assert len(ds.source.train) + len(ds.source.test) == 96_041
    assert len(ds.target.known) + len(ds.target.test) == 69_709
    ratings = ds.target.known.ratings
    assert ratings is not None and set(np.unique(ratings)) == {1, 2, 3, 4, 5}
    stats = dataset_stats(ds).set_index("domain")
    assert stats.loc["book", "users"] == 2_110 and stats.loc["music", "items"] == 5_567
    cold = load_dataset("douban-book-music", split="cold-start", beta=0.2)
    assert len(cold.cold_users) == round(0.2 * 1_566)


def test_gini_against_the_mean_absolute_difference_and_its_limits():
    from xcatrec.data import gini
    from xcatrec.errors import DataError

    counts = np.array([5, 0, 3, 12, 1, 1, 40])
    pairs = np.abs(counts[:, None] - counts[None, :]).mean()  # over all n^2 ordered pairs
    assert gini(counts) == pytest.approx(pairs / (2 * counts.mean()))
    assert gini([7, 7, 7]) == pytest.approx(0.0)
    assert gini([0, 0, 0, 9]) == pytest.approx(1 - 1 / 4)
    assert gini(counts[::-1]) == pytest.approx(gini(counts))  # the order does not matter
    for bad in ([], [0, 0], [3, -1], [1.0, np.nan]):
        with pytest.raises(DataError, match="gini"):
            gini(bad)
