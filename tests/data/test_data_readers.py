"""Reading interaction files: accepted formats and every bad-input path."""

from __future__ import annotations

import numpy as np
import pytest

from xcatrec.data import read_interactions
from xcatrec.errors import DataError


def write(tmp_path, text: str, name: str = "f.txt"):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_amazon_ratings_only_csv_with_timestamps(tmp_path):
    path = write(tmp_path, "A1B2,0000013714,5.0,1389744000\nA9,B00X,3.0,1391212800\nA1B2,B00X,4.0,1400000000\n")
    df = read_interactions(path)
    assert list(df.columns) == ["user", "item", "rating", "timestamp"]
    assert df["user"].astype(str).tolist() == ["A1B2", "A9", "A1B2"]
    assert df["item"].astype(str).tolist()[0] == "0000013714"  # raw ids stay strings, leading zeros kept
    np.testing.assert_array_equal(df["rating"].to_numpy(), [5.0, 3.0, 4.0])
    assert df["timestamp"].dtype == np.int64
    assert df["timestamp"].tolist() == [1389744000, 1391212800, 1400000000]


@pytest.mark.parametrize("text, columns", [
    ("u1\ti1\t1\nu2\ti2\t1\n", ["user", "item", "rating"]),
    ("u1 i1\nu2   i2\n", ["user", "item"]),
    ("u1;i1;4\nu2;i2;2\n", ["user", "item", "rating"]),
    ("user,item\nu1,i1\nu2,i2\n", ["user", "item"]),
    ("userId,movieId,rating,timestamp\nu1,i1,4.5,10\nu2,i2,2,11\n", ["user", "item", "rating", "timestamp"]),
    ("reviewerID,asin,overall\nu1,i1,4\nu2,i2,2\n", ["user", "item", "rating"]),
])
def test_accepted_formats(tmp_path, text, columns):
    df = read_interactions(write(tmp_path, text))
    assert list(df.columns) == columns
    assert df["user"].astype(str).tolist() == ["u1", "u2"]
    assert df["item"].astype(str).tolist() == ["i1", "i2"]


def test_header_columns_in_any_order_and_extra_columns_dropped(tmp_path):
    df = read_interactions(write(tmp_path, "timestamp,item,extra,user\n5,i1,x,u1\n6,i2,y,u2\n"))
    assert list(df.columns) == ["user", "item", "timestamp"]
    assert df["timestamp"].tolist() == [5, 6]


def test_whitespace_around_ids_is_stripped(tmp_path):
    df = read_interactions(write(tmp_path, "u1, i1\nu2 ,i2\n"))
    assert df["user"].astype(str).tolist() == ["u1", "u2"]
    assert df["item"].astype(str).tolist() == ["i1", "i2"]


@pytest.mark.parametrize("text, needle", [
    ("", "empty"),
    ("\n\n  \n", "empty"),
    ("u1\nu2\n", "only one column"),
    ("1,2,3,4,5\n6,7,8,9,10\n", "5 columns"),
    ("a,b,c,d,e\n1,2,3,4,5\n", "names 0 user columns"),
    ("u1,i1,5\nu2,i2,5,7,8\n", "could not be parsed"),
    ("u1,i1\n,i2\n", "empty or missing user id"),
    ("u1,i1\nu2,\n", "missing item id"),
    ("u1,i1,5\nu2,i2,abc\n", "rating is NaN or not a number"),
    ("u1,i1,5\nu2,i2,nan\n", "rating is NaN or not a number"),
    ("u1,i1,5,10\nu2,i2,4,yesterday\n", "timestamp is NaN or not a number"),
    ("u1,i1,5,10\nu2,i2,4,\n", "missing timestamp"),
    ("user,item\n", "no data"),
    # values that cannot be stored, refused with the row they are on
    ("u1,i1,5\nu2,i2,1e300\n", "data row 2: rating is too large"),  # would be inf as float32
    ("u1,i1,5\nu2,i2,-4e38\n", "data row 2: rating is too large"),
    ("u1,i1,5\nu2,i2,1e400\n", "data row 2: rating is infinite"),
    ("u1,i1,5\nu2,i2,-inf\n", "data row 2: rating is infinite"),
    ("u1,i1,5,10\nu2,i2,4,1e30\n", "data row 2: timestamp is not a whole number that fits a 64-bit integer"),
    ("u1,i1,5,10\nu2,i2,4,99999999999999999999\n", "data row 2: timestamp is not a whole number"),
    ("u1,i1,5,10\nu2,i2,4,10.5\n", "data row 2: timestamp is not a whole number"),
])
def test_bad_files_raise_data_error_naming_the_problem(tmp_path, text, needle):
    path = write(tmp_path, text)
    with pytest.raises(DataError) as info:
        read_interactions(path)
    assert needle in str(info.value)
    assert str(path) in info.value.problem and info.value.fix  # every error names the file and a fix


def test_error_names_the_row_and_value(tmp_path):
    path = write(tmp_path, "u1,i1,5\nu2,i2,5\nu3,i3,oops\n")
    with pytest.raises(DataError, match=r"data row 3.*'oops'"):
        read_interactions(path)


def test_malformed_id_with_control_character(tmp_path):
    path = write(tmp_path, "u1,i1\nu\x072,i2\n")
    with pytest.raises(DataError, match="malformed user id"):
        read_interactions(path)


def test_missing_file(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        read_interactions(tmp_path / "nope.csv")


def test_lenient_mode_turns_bad_values_into_nan(tmp_path):
    df = read_interactions(write(tmp_path, "u1,i1,5\n,i2,4\nu3,i3,x\n"), strict=False)
    assert df["user"].isna().tolist() == [False, True, False]
    assert np.isnan(df["rating"].to_numpy()).tolist() == [False, False, True]


def test_not_utf8(tmp_path):
    path = tmp_path / "latin.txt"
    path.write_bytes("u1,caf\xe9\n".encode("latin-1"))
    with pytest.raises(DataError, match="UTF-8"):
        read_interactions(path)


def test_utf8_byte_order_mark_before_the_header_is_skipped(tmp_path):
    path = tmp_path / "excel.csv"
    path.write_bytes("\ufeffuser,item,rating\nu1,i1,4\nu2,i2,5\n".encode("utf-8"))
    df = read_interactions(path)
    assert list(df.columns) == ["user", "item", "rating"]
    assert df["user"].astype(str).tolist() == ["u1", "u2"]




def test_large_integer_timestamps_are_read_exactly(tmp_path):
    df = read_interactions(write(tmp_path, "u1,i1,5,1700000000123456789\nu2,i2,4,1.5e9\n"))
    assert df["timestamp"].tolist() == [1700000000123456789, 1500000000]
    df = read_interactions(write(tmp_path, "u1,i1,5,1700000000123456789\nu2,i2,4,17\n"))
    assert df["timestamp"].tolist() == [1700000000123456789, 17]


def test_lenient_mode_turns_unstorable_values_into_nan(tmp_path):
    df = read_interactions(write(tmp_path, "u1,i1,1e300,10\nu2,i2,4,1e30\nu3,i3,4,11\n"), strict=False)
    assert np.isnan(df["rating"].to_numpy()).tolist() == [True, False, False]
    assert np.isnan(df["timestamp"].to_numpy()).tolist() == [False, True, False]


def test_a_path_that_is_not_a_regular_file_is_named_for_what_it_is(tmp_path):
    with pytest.raises(DataError, match="is a directory"):
        read_interactions(tmp_path)
    with pytest.raises(DataError, match="not a regular file"):
        read_interactions("/dev/null")
    empty = write(tmp_path, "", "empty.csv")
    with pytest.raises(DataError, match="is empty"):
        read_interactions(empty)


def test_an_unreadable_file_is_a_data_error(tmp_path, monkeypatch):
    from xcatrec.data import readers

    path = write(tmp_path, "u1,i1\nu2,i2\n")

    def refuse(*args, **kwargs):  # tests run as root, where chmod 000 does not stop reading
        raise PermissionError(13, "Permission denied", str(path))

    monkeypatch.setattr(readers, "open", refuse, raising=False)
    with pytest.raises(DataError, match="cannot be read: Permission denied") as info:
        read_interactions(path)
    assert str(path) in info.value.problem and "permissions" in info.value.fix
