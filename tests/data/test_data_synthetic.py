"""The synthetic marketplace: shapes, speed, and that its knobs do what they say."""

from __future__ import annotations

import time

import numpy as np
import pytest

from xcatrec.data import SyntheticConfig, load_dataset, make_synthetic
from xcatrec.errors import ConfigError

SMALL = dict(n_users=400, n_source_items=120, n_target_items=100)


def user_similarity_agreement(m) -> float:
    """Correlation between the user-user similarity structures of the two domains' true scores."""
    def sims(scores):
        z = scores - scores.mean(axis=1, keepdims=True)
        z /= np.linalg.norm(z, axis=1, keepdims=True)
        s = z[:200] @ z[:200].T
        return s[np.triu_indices(200, 1)]
    return float(np.corrcoef(sims(m.true_scores_source), sims(m.true_scores_target))[0, 1])


def test_default_size_is_fast_and_well_formed():
    start = time.process_time()
    m = make_synthetic()
    assert time.process_time() - start < 5.0
    ds = m.dataset
    assert (ds.n_users, ds.source.n_items, ds.target.n_items) == (2000, 500, 500)
    assert ds.split == "loo" and len(ds.target.valid) > 0 and len(ds.source.valid) == 0
    assert m.true_scores_source.shape == (2000, 500) and m.true_scores_target.shape == (2000, 500)
    assert m.images_source.shape == (500, 28, 28, 1) and m.images_source.dtype == np.float32
    assert 0.0 <= m.images_target.min() and m.images_target.max() <= 1.0
    assert m.item_attributes["target"].shape == (500, m.config.dim)
    assert ds.info["seed"] == 0 and ds.info["synthetic"]["rho"] == m.config.rho


def test_rho_controls_relatedness():
    related = make_synthetic(SyntheticConfig(rho=1.0, images=False, **SMALL))
    unrelated = make_synthetic(SyntheticConfig(rho=0.0, images=False, **SMALL))
    np.testing.assert_allclose(related.user_taste_source, related.user_taste_target)
    assert user_similarity_agreement(related) > 0.8
    assert abs(user_similarity_agreement(unrelated)) < 0.15


def test_seeded_and_without_images():
    a = make_synthetic(SyntheticConfig(seed=3, images=False, **SMALL))
    b = make_synthetic(SyntheticConfig(seed=3, images=False, **SMALL))
    c = make_synthetic(SyntheticConfig(seed=4, images=False, **SMALL))
    assert a.images_source is None and a.images_target is None
    np.testing.assert_array_equal(a.dataset.target.train.items, b.dataset.target.train.items)
    assert not np.array_equal(a.true_scores_target, c.true_scores_target)


def test_sparsity_overlap_and_choices_follow_taste():
    m = make_synthetic(SyntheticConfig(overlap=0.5, source_per_user=10, target_per_user=4, images=False, **SMALL))
    ds = m.dataset
    assert ds.overlap.sum() == 200
    src = ds.source.train.concat(ds.source.test)
    tgt = ds.target.known.concat(ds.target.test)
    assert len(np.unique(src.users)) == 300 and len(np.unique(tgt.users)) == 300
    assert abs(len(src) / 300 - 10) < 1.0 and abs(len(tgt) / 300 - 4) < 0.5
    chosen = m.true_scores_target[tgt.users, tgt.items].mean()
    assert chosen > m.true_scores_target.mean() + 0.3


def test_popularity_exponent_concentrates_interactions():
    def top_share(popularity):
        m = make_synthetic(SyntheticConfig(popularity=popularity, images=False, **SMALL))
        counts = np.bincount(m.dataset.source.train.items, minlength=120)
        return np.sort(counts)[::-1][:12].sum() / counts.sum()
    assert top_share(2.0) > top_share(0.0) + 0.2


def test_images_encode_attributes():
    m = make_synthetic(SyntheticConfig(n_users=50, n_source_items=300, n_target_items=10, image_noise=0.0))
    brightness = m.images_source.reshape(300, -1).max(axis=1)
    assert np.corrcoef(brightness, m.item_attributes_source[:, 2])[0, 1] > 0.8


def test_load_dataset_passes_options_and_direction():
    ds = load_dataset("synthetic", rho=0.9, images=False, seed=2, **SMALL)
    assert ds.n_users == 400 and ds.info["synthetic"]["rho"] == 0.9 and ds.info["seed"] == 2
    rev = load_dataset("synthetic", source="target", images=False, **SMALL)
    assert (rev.source.name, rev.target.name) == ("target", "source") and rev.source.n_items == 100
    assert len(rev.target.valid) > 0
    cold = load_dataset("synthetic", split="cold-start", beta=0.5, images=False, **SMALL)
    assert len(cold.cold_users) == 200


@pytest.mark.parametrize("options, needle", [({"rho": 1.5}, "rho"), ({"overlap": -0.1}, "overlap"),
                                             ({"n_users": 1}, "n_users"), ({"colour": "red"}, "colour")])
def test_bad_options(options, needle):
    with pytest.raises(ConfigError, match=needle):
        load_dataset("synthetic", **options)


def test_item_images_survive_every_split():
    from xcatrec.data import load_dataset

    for split in ("loo", "random", "cold-start"):
        ds = load_dataset("synthetic", split=split, n_users=200, n_source_items=40, n_target_items=30)
        assert ds.source.images.shape == (40, 28, 28, 1), split
        assert ds.target.images.shape == (30, 28, 28, 1), split
