"""Cleaning: every drop reason is counted, implicit conversion, iterative k-core."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from xcatrec.data import clean, k_core, to_implicit
from xcatrec.errors import ConfigError, DataError


def report_dict(report: pd.DataFrame) -> dict[str, int]:
    return dict(zip(report["reason"], report["rows"]))


def test_each_reason_is_counted_once():
    frame = pd.DataFrame({
        "user": ["u1", None, "", "u\x01", "u2", "u2", "u3", "u4", "u5", "u6"],
        "item": ["i1", "i1", "i2", "i3", "i1", "i1", "i2", "i3", None, "i4"],
        "rating": [5, 4, 3, 2, 1, 4, 9, np.nan, 3, 0.5],
    })
    cleaned, report = clean(frame, rating_range=(1, 5))
    r = report_dict(report)
    assert r["missing id"] == 3  # None user, empty user, None item
    assert r["invalid id"] == 1
    assert r["missing rating"] == 1
    assert r["rating out of range"] == 2  # 9 and 0.5
    assert r["duplicate"] == 1
    assert r["kept"] == len(cleaned) == 2
    assert sum(v for k, v in r.items() if k != "kept") + r["kept"] == len(frame)
    # the last of the duplicate pair is kept
    assert cleaned.loc[cleaned["user"] == "u2", "rating"].tolist() == [4.0]


def test_duplicates_keep_latest_by_timestamp():
    frame = pd.DataFrame({"user": ["a", "a", "a"], "item": ["x", "x", "y"], "rating": [1.0, 5.0, 3.0],
                          "timestamp": [30, 10, 20]})
    cleaned, report = clean(frame)
    assert report_dict(report)["duplicate"] == 1
    assert cleaned.loc[cleaned["item"] == "x", "rating"].tolist() == [1.0]  # timestamp 30 wins
    assert cleaned["timestamp"].dtype == np.int64


def test_integer_ids_become_strings():
    cleaned, _ = clean(pd.DataFrame({"user": [1, 2], "item": [10, 20]}))
    assert cleaned["user"].astype(str).tolist() == ["1", "2"]


def test_implicit_threshold_drops_low_ratings_and_the_rating_column():
    frame = pd.DataFrame({"user": ["a", "a", "b"], "item": ["x", "y", "x"], "rating": [5.0, 2.0, 4.0]})
    cleaned, report = clean(frame, implicit_threshold=4)
    assert "rating" not in cleaned.columns
    assert report_dict(report)["below implicit threshold"] == 1
    assert len(cleaned) == 2
    assert len(to_implicit(frame, 3)) == 2


def test_implicit_threshold_must_be_finite():
    frame = pd.DataFrame({"user": ["u1", "u2"], "item": ["i1", "i2"], "rating": [1.0, 5.0]})
    for bad in (float("nan"), float("inf")):
        with pytest.raises(ConfigError, match="implicit_threshold must be a finite number"):
            clean(frame, implicit_threshold=bad)


def test_implicit_threshold_needs_ratings():
    with pytest.raises(DataError, match="rating column"):
        clean(pd.DataFrame({"user": ["a"], "item": ["x"]}), implicit_threshold=4)


def test_k_core_is_iterative():
    # user c has 2 rows, but its item z has 1 row; removing z leaves c with 1 row -> c goes too,
    # which leaves item y with only a and b.
    frame = pd.DataFrame({"user": ["a", "a", "b", "b", "c", "c"], "item": ["x", "y", "x", "y", "y", "z"]})
    cleaned, report = clean(frame, min_count=2)
    assert set(cleaned["user"].astype(str)) == {"a", "b"}
    assert report_dict(report)["k-core"] == 2
    counts_u = cleaned.groupby("user", observed=True).size()
    counts_i = cleaned.groupby("item", observed=True).size()
    assert (counts_u >= 2).all() and (counts_i >= 2).all()
    assert len(k_core(frame, 2)) == 4


def test_bad_options():
    frame = pd.DataFrame({"user": ["a"], "item": ["x"], "rating": [1.0]})
    with pytest.raises(ConfigError, match="reversed"):
        clean(frame, rating_range=(5, 1))
    with pytest.raises(ConfigError, match="min_count"):
        clean(frame, min_count=-1)
    with pytest.raises(DataError, match="no 'item' column"):
        clean(pd.DataFrame({"user": ["a"]}))
