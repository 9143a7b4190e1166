"""Shard folders: exact round trips, a checksummed manifest, refusal of changed files, atomic writes."""

from __future__ import annotations

import json

import numpy as np
import pytest

from xcatrec.data.shards import MANIFEST, ShardWriter, open_shards, read_part, write_shards
from xcatrec.data.types import Interactions
from xcatrec.errors import ConfigError, DataError
from xcatrec.testing import make_tiny_dataset
from xcatrec.testing.datasets import with_ratings


def same_rows(a: Interactions, b: Interactions) -> None:
    np.testing.assert_array_equal(a.users, b.users)
    np.testing.assert_array_equal(a.items, b.items)
    for name in ("ratings", "timestamps"):
        x, y = getattr(a, name), getattr(b, name)
        assert (x is None) == (y is None), name
        if x is not None:
            np.testing.assert_array_equal(x, y)
            assert x.dtype == y.dtype


def test_every_part_round_trips_exactly_across_shards_and_records(tmp_path):
    ds = with_ratings(make_tiny_dataset())
    shards = write_shards(ds, tmp_path / "s", rows_per_shard=50, rows_per_record=16)
    assert set(shards.parts) == {("source", "train"), ("target", "train"), ("target", "valid"), ("target", "test")}
    assert shards.sizes == ds.sizes and shards.name == ds.name
    for (domain, split), part in shards.parts.items():
        rows = getattr(ds.domain(domain), split)
        same_rows(read_part(shards, domain, split), rows)
        assert part.rows == len(rows) == sum(s.rows for s in part.shards)
        assert len(part.shards) == -(-len(rows) // 50) and max(s.rows for s in part.shards) <= 50
        np.testing.assert_array_equal(shards.item_counts(domain, split),
                                      np.bincount(rows.items, minlength=ds.domain(domain).n_items))


def test_rows_added_in_pieces_equal_rows_added_at_once_and_keep_timestamps(tmp_path):
    ds = make_tiny_dataset()
    train = ds.target.train
    rows = Interactions(train.users, train.items, timestamps=np.arange(len(train)) * 1000)
    with ShardWriter(tmp_path / "pieces", ds.sizes, rows_per_shard=70, rows_per_record=8) as writer:
        for lo in range(0, len(rows), 33):
            writer.add("target", "train", rows.subset(np.arange(lo, min(len(rows), lo + 33))))
    shards = open_shards(tmp_path / "pieces")
    same_rows(read_part(shards, "target", "train"), rows)
    assert [s.rows for s in shards.part("target").shards] == [70, 70, 70, len(rows) - 210]


def test_a_changed_or_missing_shard_is_refused_with_a_data_error(tmp_path):
    shards = write_shards(make_tiny_dataset(), tmp_path / "s", rows_per_shard=100)
    victim = shards.part("target", "train").shards[0].path
    data = bytearray(victim.read_bytes())
    data[len(data) // 2] ^= 0xFF  # same size, one byte flipped
    victim.write_bytes(bytes(data))
    with pytest.raises(DataError, match="does not match its manifest"):
        open_shards(tmp_path / "s")
    open_shards(tmp_path / "s", verify=False)  # sizes only: the flip goes unseen
    victim.write_bytes(bytes(data[:-1]))
    with pytest.raises(DataError, match="does not match its manifest"):
        open_shards(tmp_path / "s", verify=False)
    victim.unlink()
    with pytest.raises(DataError, match="missing"):
        open_shards(tmp_path / "s")
    (tmp_path / "s" / MANIFEST).unlink()
    with pytest.raises(DataError, match="manifest"):
        open_shards(tmp_path / "s")


def test_a_manifest_of_another_format_or_a_missing_part_is_refused(tmp_path):
    shards = write_shards(make_tiny_dataset(), tmp_path / "s", parts=[("target", "train")])
    with pytest.raises(DataError, match="no source/train part"):
        shards.part("source", "train")
    manifest = json.loads((tmp_path / "s" / MANIFEST).read_text())
    (tmp_path / "s" / MANIFEST).write_text(json.dumps({**manifest, "version": 99}))
    with pytest.raises(DataError, match="version"):
        open_shards(tmp_path / "s")


def test_a_failed_write_leaves_the_earlier_folder_and_no_temporary_files(tmp_path):
    ds = make_tiny_dataset()
    first = write_shards(ds, tmp_path / "s")
    listing = sorted(p.name for p in (tmp_path / "s").iterdir())
    with pytest.raises(ConfigError, match="exists already"):
        write_shards(ds, tmp_path / "s")
    with pytest.raises(DataError, match="outside"):
        with ShardWriter(tmp_path / "s", ds.sizes, overwrite=True) as writer:
            writer.add("target", "train", ds.target.train)
            writer.add("target", "test", Interactions([0], [ds.target.n_items]))  # an item that does not exist
    assert sorted(p.name for p in (tmp_path / "s").iterdir()) == listing
    assert [p.name for p in tmp_path.iterdir()] == ["s"]
    assert open_shards(tmp_path / "s").parts == first.parts
    again = write_shards(ds, tmp_path / "s", parts=[("target", "train")], overwrite=True)
    assert set(again.parts) == {("target", "train")} and [p.name for p in tmp_path.iterdir()] == ["s"]


def test_bad_writer_options_and_parts_are_refused(tmp_path):
    ds = make_tiny_dataset()
    with pytest.raises(ConfigError, match="rows_per_shard"):
        ShardWriter(tmp_path / "a", ds.sizes, rows_per_shard=0)
    with pytest.raises(DataError, match="Unknown part"):
        with ShardWriter(tmp_path / "b", ds.sizes) as writer:
            writer.add("target", "holdout", ds.target.test)
    with pytest.raises(DataError, match="columns"):
        with ShardWriter(tmp_path / "c", ds.sizes) as writer:
            writer.add("target", "train", ds.target.train)
            writer.add("target", "train", with_ratings(ds).target.train)
    assert not any(tmp_path.iterdir())


def test_order_seed_writes_the_same_rows_in_a_random_order(tmp_path):
    ds = make_tiny_dataset()
    train = read_part(write_shards(ds, tmp_path / "s", order_seed=3), "target", "train")
    pairs = lambda rows: list(zip(rows.users.tolist(), rows.items.tolist()))  # noqa: E731
    assert sorted(pairs(train)) == sorted(pairs(ds.target.train)) and pairs(train) != pairs(ds.target.train)
