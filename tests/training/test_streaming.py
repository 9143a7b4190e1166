"""Training from shards: the stream covers every row once per epoch, has the in-memory rows' columns,
is reproducible, and a method trained from it learns."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest

from xcatrec.data.shards import write_shards
from xcatrec.errors import ConfigError, DataError
from xcatrec.evaluation.protocols import evaluate
from xcatrec.models import make_model
from xcatrec.testing import make_tiny_dataset
from xcatrec.training.losses import item_log_frequency
from xcatrec.training.rows import first_rows
from xcatrec.models.shared_bottom import mixed_rows
from xcatrec.training.streaming import JointShardRows, MixedShardRows, ShardRows


@pytest.fixture(scope="module")
def tiny():
    return make_tiny_dataset()


@pytest.fixture(scope="module")
def shards(tiny, tmp_path_factory):
    return write_shards(tiny, tmp_path_factory.mktemp("shards") / "tiny", rows_per_shard=50, rows_per_record=8)


def batches(stream) -> list[dict[str, np.ndarray]]:
    return [{k: v.numpy() for k, v in b.items()} for b in stream]


def test_each_epoch_has_every_row_once_in_a_new_order_with_negatives_in_range(tiny, shards):
    rows = ShardRows(shards, "target", negatives=3, shuffle_buffer=64)
    got = batches(rows.stream(batch_size=32, seed=5, epochs=2))
    steps = -(-len(tiny.target.train) // 32)
    assert len(rows) == len(tiny.target.train) and len(got) == 2 * steps
    assert [len(b["user"]) for b in got[:steps]] == [32] * (steps - 1) + [len(rows) - 32 * (steps - 1)]
    want = Counter(zip(tiny.target.train.users.tolist(), tiny.target.train.items.tolist()))
    orders = []
    for epoch in (got[:steps], got[steps:]):
        pairs = [p for b in epoch for p in zip(b["user"].tolist(), b["pos"].tolist())]
        assert Counter(pairs) == want
        orders.append(pairs)
    assert orders[0] != orders[1]  # reshuffled each epoch
    assert orders[0] != list(zip(tiny.target.train.users.tolist(), tiny.target.train.items.tolist()))
    neg = np.concatenate([b["neg"] for b in got])
    assert neg.shape == (2 * len(rows), 3) and neg.min() >= 0 and neg.max() < tiny.target.n_items
    assert len(np.unique(neg)) > tiny.target.n_items // 2  # drawn over the whole catalogue


def test_the_same_seed_gives_the_same_stream_and_another_seed_another(shards):
    rows = ShardRows(shards, "target")
    a, b = batches(rows.stream(16, 1, 1)), batches(rows.stream(16, 1, 1))
    c = batches(rows.stream(16, 2, 1))
    for x, y in zip(a, b):
        for k in x:
            np.testing.assert_array_equal(x[k], y[k])
    assert any(not np.array_equal(x["pos"], z["pos"]) for x, z in zip(a, c))


@pytest.mark.parametrize("loss", ["bpr", "softmax"])
def test_shard_rows_have_the_columns_of_the_rows_in_memory(tiny, shards, loss):
    model = make_model("bpr-mf", tiny.sizes, loss=loss, negatives=2)
    phase = model.phases[0]
    memory = first_rows(model.rows(phase, tiny))
    streamed = model.stream_from(shards).training_rows(phase, tiny).first()
    assert {k: (v.dtype, v.shape) for k, v in streamed.items()} == {k: (v.dtype, v.shape) for k, v in memory.items()}
    if loss == "softmax":  # log-Q from the item counts equals the in-memory column, row for row
        np.testing.assert_allclose(streamed["log_q"], item_log_frequency(tiny.target.train.items)[:4], rtol=1e-6)
        np.testing.assert_allclose(streamed["log_q_neg"], memory["log_q_neg"])


def test_a_method_trained_from_shards_learns(tiny, shards):
    options = dict(epochs=25, batch_size=32, dim=8, learning_rate=0.05, reg=1e-3, valid_users=0, patience=0)
    model = make_model("bpr-mf", tiny.sizes, loss="bpr", **options).stream_from(shards)
    report = model.fit(tiny)
    loss = report.history["loss"]
    assert np.mean(loss[-3:]) < 0.6 * loss[0]
    popularity = make_model("popularity", tiny.sizes)
    popularity.fit(tiny)
    assert evaluate(model, tiny)["ndcg@10"] > evaluate(popularity, tiny)["ndcg@10"] + 0.1


def test_streaming_refuses_other_sizes_unsupported_phases_and_bad_options(tiny, shards):
    with pytest.raises(DataError, match="built for"):
        make_model("bpr-mf", make_tiny_dataset(n_tgt=20).sizes).stream_from(shards)
    conet = make_model("conet", tiny.sizes, epochs=1).stream_from(shards)
    with pytest.raises(ConfigError, match="cannot stream from shards"):
        conet.fit(tiny)
    with pytest.raises(ConfigError, match="ranking losses"):  # CMF streams, but not with its rating loss
        JointShardRows(shards, loss="mse")
    with pytest.raises(ConfigError, match="ranking losses"):
        ShardRows(shards, "target", loss="mse")
    with pytest.raises(ConfigError, match="shuffle_buffer"):
        ShardRows(shards, "target", shuffle_buffer=0)
    with pytest.raises(DataError, match="no source/valid part"):
        ShardRows(shards, "source", "valid")


# ------------------------------------------------------------------ both categories (shared-bottom)
def test_mixed_epochs_hold_every_row_of_both_categories_once_with_negatives_of_their_own(tiny, shards):
    rows = MixedShardRows(shards, negatives=2, shuffle_buffer=64)
    got = batches(rows.stream(batch_size=32, seed=3, epochs=2))
    total = len(tiny.source.train) + len(tiny.target.train)
    steps = -(-total // 32)
    assert len(rows) == total and len(got) == 2 * steps
    want = Counter([(0, u, i) for u, i in zip(tiny.source.train.users.tolist(), tiny.source.train.items.tolist())]
                   + [(1, u, i) for u, i in zip(tiny.target.train.users.tolist(), tiny.target.train.items.tolist())])
    orders = []
    for epoch in (got[:steps], got[steps:]):
        triples = [(int(t), u, i) for b in epoch for t, u, i in zip(b["is_target"], b["user"].tolist(),
                                                                   b["pos"].tolist())]
        assert Counter(triples) == want
        orders.append([t for t, _, _ in triples])
    assert orders[0] != orders[1]
    first = orders[0][:len(orders[0]) // 2]
    assert 0 < sum(first) < len(first)  # the two categories are mixed, not one after the other
    for b in got:
        t = b["is_target"].astype(bool)
        assert b["neg"][~t].max(initial=0) < tiny.source.n_items and b["neg"][t].max(initial=0) < tiny.target.n_items
    neg_src = np.concatenate([b["neg"][b["is_target"] == 0] for b in got]).ravel()
    assert tiny.source.n_items > tiny.target.n_items
    assert neg_src.max() >= tiny.target.n_items  # source negatives range over the (larger) source catalogue


@pytest.mark.parametrize("loss", ["bpr", "softmax"])
def test_mixed_shard_rows_have_the_columns_of_mixed_rows(tiny, shards, loss):
    model = make_model("shared-bottom", tiny.sizes, loss=loss, negatives=2)
    phase = model.phases[0]
    memory = mixed_rows(tiny, 2, loss)
    streamed = model.stream_from(shards).training_rows(phase, tiny)
    assert isinstance(streamed, MixedShardRows)
    head = streamed.first(len(memory))  # every row as written (source rows first, interleaved shard files)
    mem = first_rows(memory, len(memory))
    assert {k: (v.dtype, v.shape[1:]) for k, v in head.items()} == {k: (v.dtype, v.shape[1:]) for k, v in mem.items()}
    np.testing.assert_array_equal(head["is_target"][:len(tiny.source.train)], 0)  # the source part first

    def by_row(columns):  # the rows in one order, to compare them as sets
        order = np.lexsort((columns["pos"], columns["user"], columns["is_target"]))
        return {k: v[order] for k, v in columns.items()}

    head, mem = by_row(head), by_row(mem)
    for column in ("user", "is_target", "pos") + (("log_q", "log_q_neg") if loss == "softmax" else ()):
        np.testing.assert_allclose(head[column], mem[column], rtol=1e-6, err_msg=column)


def test_shared_bottom_trained_from_shards_learns(tiny, shards):
    options = dict(epochs=20, batch_size=32, dim=8, learning_rate=0.02, valid_users=0, patience=0, loss="bpr")
    model = make_model("shared-bottom", tiny.sizes, **options).stream_from(shards)
    loss = model.fit(tiny).history["loss"]
    assert np.mean(loss[-3:]) < 0.8 * loss[0]
    popularity = make_model("popularity", tiny.sizes)
    popularity.fit(tiny)
    assert evaluate(model, tiny)["ndcg@10"] > evaluate(popularity, tiny)["ndcg@10"]


def test_mixed_shard_rows_refuse_one_category(shards):
    with pytest.raises(ConfigError, match="both categories"):
        MixedShardRows(shards, "target")


# ------------------------------------------------------------------ the joint item space (CMF)
@pytest.mark.parametrize("loss", ["bpr", "softmax"])
def test_joint_shard_rows_have_the_columns_of_cmf_rows(tiny, shards, loss):
    model = make_model("cmf", tiny.sizes, loss=loss, negatives=2, source_weight=0.4)
    phase = model.phases[0]
    memory = model.rows(phase, tiny)
    streamed = model.stream_from(shards).training_rows(phase, tiny)
    assert isinstance(streamed, JointShardRows) and len(streamed) == len(memory)
    head = streamed.first(len(memory))
    mem = first_rows(memory, len(memory))
    assert {k: (v.dtype, v.shape[1:]) for k, v in head.items()} == {k: (v.dtype, v.shape[1:]) for k, v in mem.items()}
    np.testing.assert_array_equal(head["pos"][:len(tiny.target.train)] < tiny.target.n_items, True)  # target first

    def by_row(columns):
        order = np.lexsort((columns["pos"], columns["user"]))
        return {k: v[order] for k, v in columns.items()}

    head, mem = by_row(head), by_row(mem)
    for column in ("user", "pos", "weight") + (("log_q", "log_q_neg") if loss == "softmax" else ()):
        np.testing.assert_allclose(head[column], mem[column], rtol=1e-6, err_msg=column)
    source = head["pos"] >= tiny.target.n_items  # each row's negatives lie in its own category's range
    assert (head["neg"][source] >= tiny.target.n_items).all() and (head["neg"][~source] < tiny.target.n_items).all()
    assert head["neg"].max() < tiny.target.n_items + tiny.source.n_items


def test_cmf_trained_from_shards_learns(tiny, shards):
    options = dict(epochs=25, batch_size=32, dim=8, learning_rate=0.05, reg=1e-3, valid_users=0, patience=0,
                   loss="bpr")
    model = make_model("cmf", tiny.sizes, **options).stream_from(shards)
    loss = model.fit(tiny).history["loss"]
    assert np.mean(loss[-3:]) < 0.6 * loss[0]
    popularity = make_model("popularity", tiny.sizes)
    popularity.fit(tiny)
    assert evaluate(model, tiny)["ndcg@10"] > evaluate(popularity, tiny)["ndcg@10"] + 0.1
