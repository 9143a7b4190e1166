"""The softmax losses: values and gradients against NumPy, log-Q correction, accidental hits, learning."""

from __future__ import annotations

import importlib

import numpy as np
import pytest
import tensorflow as tf
from conftest import make_tiny_dataset

from xcatrec.errors import ConfigError
from xcatrec.evaluation import evaluate
from xcatrec.models.bpr_mf import BPRMF, BPRMFConfig
from xcatrec.training.losses import (full_softmax, in_batch_softmax, item_log_frequency, loss_columns,
                                     ranking_loss, row_loss, sampled_softmax, uniform_log_q)
from xcatrec.training.rows import first_rows
from xcatrec.training.selection import ndcg_validation


def np_softmax_loss(z_pos: np.ndarray, z_neg: np.ndarray, keep: np.ndarray | None = None) -> np.ndarray:
    """``-log softmax`` of the positive among the kept candidates, row by row, in plain NumPy."""
    out = []
    for i in range(len(z_pos)):
        cand = z_neg[i] if keep is None else z_neg[i][keep[i]]
        logits = np.concatenate([[z_pos[i]], cand]).astype(np.float64)
        out.append(np.log(np.exp(logits).sum()) - z_pos[i])
    return np.array(out)


S_POS = np.array([1.0, -0.5, 2.0], np.float32)
S_NEG = np.array([[0.5, -1.0], [0.0, 1.5], [2.5, 0.3]], np.float32)


def test_sampled_softmax_matches_numpy_with_log_q_mask_and_temperature():
    lq_pos = np.array([-1.0, -2.0, -0.5], np.float32)
    lq_neg = np.array([[-3.0, -0.2], [-1.0, -1.0], [-0.1, -4.0]], np.float32)
    keep = np.array([[True, True], [False, True], [True, False]])
    got = np.asarray(sampled_softmax(tf.constant(S_POS), tf.constant(S_NEG), tf.constant(lq_pos),
                                     tf.constant(lq_neg), tf.constant(keep), temperature=0.5))
    want = np_softmax_loss((S_POS - lq_pos) / 0.5, (S_NEG - lq_neg) / 0.5, keep)
    np.testing.assert_allclose(got, want, rtol=1e-5)
    # a hand value: row 0 without correction is log(e^1 + e^0.5 + e^-1) - 1
    plain = np.asarray(sampled_softmax(tf.constant(S_POS), tf.constant(S_NEG)))
    assert plain[0] == pytest.approx(np.log(np.e + np.exp(0.5) + np.exp(-1.0)) - 1.0, rel=1e-6)


def test_with_one_negative_sampled_softmax_is_bpr():
    """Softmax over {positive, one negative} is -log sigmoid(s_pos - s_neg): BPR with one negative."""
    one = tf.constant(S_NEG[:, :1])
    np.testing.assert_allclose(np.asarray(row_loss(tf.constant(S_POS), one, "sampled-softmax")),
                               np.asarray(row_loss(tf.constant(S_POS), one, "bpr")), rtol=1e-6)


def test_gradient_is_softmax_minus_one_hot():
    s_pos, s_neg = tf.Variable(S_POS), tf.Variable(S_NEG)
    temperature = 2.0
    with tf.GradientTape() as tape:
        loss = tf.reduce_sum(sampled_softmax(s_pos, s_neg, temperature=temperature))
    g_pos, g_neg = tape.gradient(loss, [s_pos, s_neg])
    logits = np.concatenate([S_POS[:, None], S_NEG], axis=1) / temperature
    p = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    np.testing.assert_allclose(g_pos.numpy(), (p[:, 0] - 1.0) / temperature, rtol=1e-5)
    np.testing.assert_allclose(g_neg.numpy(), p[:, 1:] / temperature, rtol=1e-5)


def test_masked_candidate_gets_no_gradient_and_no_probability():
    s_pos, s_neg = tf.Variable(S_POS), tf.Variable(S_NEG)
    keep = np.array([[True, False]] * 3)
    with tf.GradientTape() as tape:
        loss = tf.reduce_sum(sampled_softmax(s_pos, s_neg, mask=tf.constant(keep)))
    g_neg = tape.gradient(loss, s_neg).numpy()
    assert np.all(g_neg[:, 1] == 0) and np.all(g_neg[:, 0] > 0)
    np.testing.assert_allclose(loss.numpy(), np_softmax_loss(S_POS, S_NEG[:, :1]).sum(), rtol=1e-5)


def batch_case():
    """Four rows; rows 0 and 2 share their positive item 7, so each is an accidental hit of the other."""
    pos = np.array([7, 3, 7, 5], np.int64)
    scores = np.array([[2.0, 0.5, 1.8, -1.0],
                       [0.1, 1.0, 0.3, 0.2],
                       [1.5, -0.3, 1.0, 0.4],
                       [0.0, 0.7, 0.2, 0.9]], np.float32)
    return pos, scores


def test_in_batch_softmax_masks_accidental_hits():
    pos, scores = batch_case()
    got = np.asarray(in_batch_softmax(tf.constant(scores), tf.constant(pos)))
    keep = (pos[:, None] != pos[None, :])  # drops the diagonal and the other row with the same item
    want = np_softmax_loss(np.diag(scores), scores, keep)
    np.testing.assert_allclose(got, want, rtol=1e-5)
    # it matters: counting row 2's positive (the same item) as a negative of row 0 gives another loss
    naive = np_softmax_loss(np.diag(scores), scores, ~np.eye(4, dtype=bool))
    assert abs(naive[0] - want[0]) > 0.1 and abs(naive[2] - want[2]) > 0.1
    np.testing.assert_allclose(got[[1, 3]], naive[[1, 3]], rtol=1e-5)


def test_in_batch_log_q_correction_and_mixed_negatives():
    pos, scores = batch_case()
    log_f = item_log_frequency(np.array([7, 7, 7, 3, 5, 5, 1, 1]))[[0, 3, 0, 4]]  # f(7)=3/8, f(3)=1/8, f(5)=2/8
    np.testing.assert_allclose(np.exp(log_f), [3 / 8, 1 / 8, 3 / 8, 2 / 8], rtol=1e-6)
    extra = np.array([[0.3], [1.2], [-0.4], [0.8]], np.float32)
    lq_extra = uniform_log_q(1, 100)
    got = np.asarray(in_batch_softmax(tf.constant(scores), tf.constant(pos), tf.constant(log_f),
                                      tf.constant(extra), lq_extra))
    lq = log_f + np.log(4.0)  # expected count of each item in a batch of 4 rows
    keep = np.concatenate([pos[:, None] != pos[None, :], np.ones((4, 1), bool)], axis=1)
    want = np_softmax_loss(np.diag(scores) - lq, np.concatenate([scores - lq[None, :], extra - lq_extra], 1), keep)
    np.testing.assert_allclose(got, want, rtol=1e-5)
    # the correction matters: a popular positive (item 7) is penalised less without it
    uncorrected = np.asarray(in_batch_softmax(tf.constant(scores), tf.constant(pos), None, tf.constant(extra)))
    assert np.abs(uncorrected - got).max() > 0.1


def test_full_softmax_and_dispatch():
    s_all = np.array([[0.2, 1.0, -0.3, 0.5], [1.1, 0.0, 0.4, -2.0]], np.float32)
    pos = np.array([1, 2])
    s_pos = s_all[np.arange(2), pos]
    want = np.log(np.exp(s_all.astype(np.float64)).sum(1)) - s_pos
    got = full_softmax(tf.constant(s_pos), tf.constant(s_all))
    np.testing.assert_allclose(np.asarray(got), want, rtol=1e-5)
    scores = {"pos": tf.constant(s_pos), "neg": tf.zeros((2, 1)), "all": tf.constant(s_all)}
    np.testing.assert_allclose(np.asarray(ranking_loss("full-softmax", scores, {}, 4)), want, rtol=1e-5)
    with pytest.raises(ConfigError, match="Unknown loss"):
        ranking_loss("hinge", scores, {}, 4)


def test_loss_columns():
    cols = loss_columns("softmax", np.array([0, 0, 1, 2]), n_items=10, negatives=2)
    np.testing.assert_allclose(np.exp(cols["log_q"]), [0.5, 0.5, 0.25, 0.25], rtol=1e-6)
    np.testing.assert_allclose(np.exp(cols["log_q_neg"]), 0.2, rtol=1e-6)
    assert loss_columns("bpr", np.array([0, 1]), 10, 1) == {}


@pytest.mark.parametrize("loss", ["softmax", "full-softmax"])
def test_softmax_training_improves_validation_over_untrained(loss):
    ds = make_tiny_dataset()
    cfg = BPRMFConfig(epochs=10, batch_size=64, dim=8, learning_rate=0.05, loss=loss, negatives=2, patience=0)
    model = BPRMF(ds.sizes, cfg)
    phase = model.phases[0]
    net = model.build(phase, ds)
    net(first_rows(model.rows(phase, ds)))
    model.export(phase, net)  # the untrained (initial) factors
    untrained = ndcg_validation(model, ds).score()
    report = model.fit(ds)
    trained = ndcg_validation(model, ds).score()
    # measured with seed 0: untrained 0.28, trained 0.43 (softmax) / 0.38 (full-softmax)
    assert trained > untrained + 0.08
    assert report.history["loss"][-1] < report.history["loss"][0]


def test_bad_loss_and_negatives_are_config_errors():
    with pytest.raises(ConfigError, match="Unknown loss"):
        BPRMFConfig(loss="softmaxx")
    with pytest.raises(ConfigError, match="negatives"):
        BPRMFConfig(negatives=0)


@pytest.mark.parametrize("module, name", [("cmf", "CMF"), ("shared_bottom", "SharedBottom"),
                                          ("finetune", "Finetune"), ("emcdr", "EMCDR"), ("ptupcdr", "PTUPCDR")])
def test_factor_methods_train_with_the_in_batch_softmax(module, name):
    """Every method wired to the loss option learns with it (tiny data, 3 epochs; chance is about 0.16)."""
    cls = getattr(importlib.import_module(f"xcatrec.models.{module}"), name)
    ds = make_tiny_dataset()
    model = cls(ds.sizes, cls.config_class(epochs=3, batch_size=64, loss="softmax", negatives=2, valid_users=0))
    model.fit(ds)
    # measured with seed 0: 0.35 (EMCDR, PTUPCDR) to 0.49 (CMF, shared bottom)
    assert evaluate(model, ds)["ndcg@10"] > 0.25
