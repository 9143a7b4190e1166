"""Shared bottom: the contract, the losses by hand, the gradient of L = L_s + lambda L_t, and learning."""

from __future__ import annotations

import numpy as np
import pytest

from conftest import RandomScores, make_tiny_dataset
from xcatrec.data import load_dataset
from xcatrec.errors import ConfigError, DataError
from xcatrec.evaluation import evaluate
from xcatrec.models.shared_bottom import DOMAINS, SharedBottom, SharedBottomConfig, mixed_rows
from xcatrec.testing import RecommenderConformance
from xcatrec.training import numpy_weights, row_loss

SMALL = dict(dim=16, shared_units=(16,), batch_size=64, epochs=1)


class TestSharedBottomConformance(RecommenderConformance):
    model_class = SharedBottom

    def make_config(self):
        return SharedBottomConfig(**SMALL)

    def test_one_joint_phase_moves_nothing(self, fitted):
        model, _ = fitted
        assert model.phases == SharedBottom.phases
        assert [(p.name, p.data, p.moves) for p in model.phases] == [("joint", "both", ())]
        assert model.transferred == {}
        assert model.refit_epochs == {"epochs": ("", "patience")} and model.jit_compile is False

    def test_user_representations_per_domain(self, fitted):
        model, dataset = fitted
        for domain in DOMAINS:
            assert model.user_representations(domain).shape == (dataset.n_users, 16)
        np.testing.assert_array_equal(model.user_representations("target"), model.user_factors)
        with pytest.raises(ConfigError, match="domain"):
            model.user_representations("books")

    def test_network_holds_the_fitted_weights(self, fitted):
        model, _ = fitted
        state, held = model.get_state(), numpy_weights(model.network())
        assert sorted(held) == sorted(state)
        for name, value in state.items():
            np.testing.assert_array_equal(held[name], value)


def batch_of(dataset, negatives: int, size: int, seed: int = 0) -> dict[str, np.ndarray]:
    """A random mixed batch with rows of both domains."""
    rng = np.random.default_rng(seed)
    rows = mixed_rows(dataset, negatives).epoch(rng)
    pick = rng.choice(len(rows["user"]), size, replace=False)
    return {k: v[pick] for k, v in rows.items()}


# ---------------------------------------------------------------- configuration and batches
@pytest.mark.parametrize("options, match", [(dict(lam=-0.1), "lam"), (dict(fusion="sum"), "fusion"),
                                            (dict(loss="hinge"), "loss"), (dict(shared_units=(0,)), "shared_units")])
def test_bad_options_raise_config_errors(options, match):
    with pytest.raises(ConfigError, match=match):
        SharedBottomConfig(**options)


def test_mixed_rows_flag_each_domain_and_sample_its_negatives(tiny_dataset):
    ds = tiny_dataset
    rows = mixed_rows(ds, 3).epoch(np.random.default_rng(0))
    ns, nt = len(ds.source.train), len(ds.target.train)
    assert rows["neg"].shape == (ns + nt, 3) and rows["is_target"].sum() == nt
    src, tgt = rows["is_target"] == 0, rows["is_target"] == 1
    np.testing.assert_array_equal(rows["user"], np.concatenate([ds.source.train.users, ds.target.train.users]))
    np.testing.assert_array_equal(rows["pos"][src], ds.source.train.items)
    np.testing.assert_array_equal(rows["pos"][tgt], ds.target.train.items)
    # sampled negatives are items of the row's own domain that the user has not seen there
    for role, mask in (("source", src), ("target", tgt)):
        seen = ds.matrix(role, "train").toarray() > 0
        assert rows["neg"][mask].max() < ds.domain(role).n_items
        assert not seen[np.repeat(rows["user"][mask], 3), rows["neg"][mask].ravel()].any()


def test_a_batch_from_one_domain_only_has_zero_loss_for_the_other(tiny_dataset):
    net = SharedBottom(tiny_dataset.sizes, SharedBottomConfig(**SMALL)).network()
    batch = batch_of(tiny_dataset, 4, 40)
    only_target = {k: v[batch["is_target"] == 1] for k, v in batch.items()}
    l_s, l_t = (float(x) for x in net.domain_losses(only_target))
    assert l_s == 0.0 and l_t > 0


def test_unfitted_model_and_incomplete_state_say_so(tiny_dataset):
    model = SharedBottom(tiny_dataset.sizes, SharedBottomConfig(**SMALL))
    with pytest.raises(ConfigError, match="not been trained"):
        model.score([0])
    with pytest.raises(DataError, match="lack"):
        model.set_state({"user_embedding": np.zeros((tiny_dataset.n_users, 16), np.float32)})


# ---------------------------------------------------------------- losses by hand
def test_row_losses_match_hand_computation():
    sig = lambda x: 1 / (1 + np.exp(-x))  # noqa: E731
    s_pos, s_neg = np.array([2.0, -0.5], np.float32), np.array([[-1.0, 0.5], [0.0, 1.5]], np.float32)
    squared = (0.5 * (1 - sig(s_pos)) ** 2 + (0.5 * sig(s_neg) ** 2).sum(1)) / 3
    bce = (-np.log(sig(s_pos)) - np.log(1 - sig(s_neg)).sum(1)) / 3
    bpr = (-np.log(sig(s_pos[:, None] - s_neg))).mean(1)
    for kind, expected in (("squared", squared), ("bce", bce), ("bpr", bpr)):
        np.testing.assert_allclose(np.asarray(row_loss(s_pos, s_neg, kind)), expected, rtol=1e-5)


def test_squared_loss_gradient_is_the_designs_derivation():
    """d/ds 1/2 (y - sigmoid(s))^2 = -(y - sigmoid(s)) sigmoid(s) (1 - sigmoid(s)), for y = 1 and y = 0."""
    import tensorflow as tf

    s_pos, s_neg = tf.Variable([0.3, -1.2]), tf.Variable([[0.8], [-0.4]])
    with tf.GradientTape() as tape:
        total = tf.reduce_sum(row_loss(s_pos, s_neg, "squared")) * 2  # undo the mean over 1 + 1 examples
    g_pos, g_neg = tape.gradient(total, [s_pos, s_neg])
    sig = lambda x: 1 / (1 + np.exp(-x.numpy()))  # noqa: E731
    p, n = sig(s_pos), sig(s_neg)
    np.testing.assert_allclose(g_pos.numpy(), -(1 - p) * p * (1 - p), rtol=1e-5)
    np.testing.assert_allclose(g_neg.numpy(), n * n * (1 - n), rtol=1e-5)


# ---------------------------------------------------------------- gradient of the joint loss
@pytest.mark.parametrize("loss, fusion", [("squared", "concat"), ("bce", "gate"), ("bpr", "add")])
def test_joint_gradient_is_source_gradient_plus_lambda_target_gradient(loss, fusion):
    import tensorflow as tf

    ds = make_tiny_dataset()
    lam = 0.7
    cfg = SharedBottomConfig(dim=8, shared_units=(8,), loss=loss, fusion=fusion, lam=lam, negatives=2, init_std=0.3)
    net = SharedBottom(ds.sizes, cfg).network()
    rng = np.random.default_rng(1)
    for head in (net.source_head, net.target_head):  # leave the zero initialisation of p_u
        head.private_embedding.embeddings.assign(rng.normal(0, 0.3, head.private_embedding.embeddings.shape))
    batch = batch_of(ds, cfg.negatives, 48)
    assert 0 < batch["is_target"].sum() < 48
    groups = net.variable_groups()
    variables = [v for g in groups.values() for v in g]
    with tf.GradientTape(persistent=True) as tape:
        l_s, l_t = net.domain_losses(batch)
        total = l_s + lam * l_t
    dense = lambda grads: [np.zeros(v.shape, np.float32) if g is None else tf.convert_to_tensor(g).numpy()  # noqa: E731
                           for g, v in zip(grads, variables)]
    g_all, g_s, g_t = (dict(zip(map(id, variables), dense(tape.gradient(x, variables)))) for x in (total, l_s, l_t))
    # the Keras training loss is the same number
    np.testing.assert_allclose(float(net.compute_loss(y_pred=net(batch))), float(total), rtol=1e-6)
    for v in groups["shared"]:
        k = id(v)
        np.testing.assert_allclose(g_all[k], g_s[k] + lam * g_t[k], rtol=1e-4, atol=1e-7)
    assert np.abs(g_s[id(groups["shared"][0])]).sum() > 0 and np.abs(g_t[id(groups["shared"][0])]).sum() > 0
    for v in groups["target"]:
        k = id(v)
        assert not g_s[k].any()  # the source loss does not reach the target head
        np.testing.assert_allclose(g_all[k], lam * g_t[k], rtol=1e-5, atol=1e-8)
    for v in groups["source"]:
        k = id(v)
        assert not g_t[k].any()
        np.testing.assert_allclose(g_all[k], g_s[k], rtol=1e-5, atol=1e-8)
    assert all(np.abs(g_t[id(v)]).sum() > 0 for v in groups["target"])


# ---------------------------------------------------------------- learning and cold users
@pytest.fixture(scope="module")
def cold_run():
    ds = load_dataset("synthetic", rho=1.0, n_users=500, n_source_items=150, n_target_items=150, images=False,
                      split="cold-start", beta=0.5, seed=0)
    model = SharedBottom(ds.sizes, SharedBottomConfig(dim=32, shared_units=(32,), batch_size=256, epochs=10,
                                                      patience=0))
    model.fit(ds)
    return model, ds


def test_learns_and_serves_cold_users_from_their_source_history(cold_run):
    model, ds = cold_run
    ours = evaluate(model, ds)["ndcg@10"]  # the cold-start test set holds only cold users
    chance = evaluate(RandomScores(ds.target.n_items), ds)["ndcg@10"]
    assert ours > 3 * chance and ours > chance + 0.05, (ours, chance)


def test_cold_users_target_private_embedding_stays_zero(cold_run):
    model, ds = cold_run
    state = model.get_state()
    assert not state["target/private_embedding"][ds.cold_users].any()
    assert state["source/private_embedding"][ds.cold_users].any()
    warm = np.unique(ds.target.train.users)
    assert (np.abs(state["target/private_embedding"][warm]).max(axis=1) > 0).mean() > 0.99
