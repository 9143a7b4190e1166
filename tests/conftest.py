"""Shared fixtures: small hand-made cross-domain data sets that need no files."""

from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")

import numpy as np
import pytest

from xcatrec.data.types import CrossDomainDataset
from xcatrec.testing import make_tiny_dataset, with_ratings  # noqa: F401  (re-exported to the tests)


def record_exports(request, cls) -> dict:
    """Patch ``cls.export`` for the requesting fixture's scope so that the last array dict each phase
    exported (after its training) is kept; returns that dict, phase name -> arrays."""
    snapshots = {}
    original = cls.export

    def recording(self, phase, net):
        state = original(self, phase, net)
        snapshots[phase.name] = {k: v.copy() for k, v in state.items()}
        return state

    patch = pytest.MonkeyPatch()
    patch.setattr(cls, "export", recording)
    request.addfinalizer(patch.undo)
    return snapshots


class RandomScores:
    """Uniform random scores: the floor a learning model must clear."""

    def __init__(self, n_items: int, seed: int | None = None) -> None:
        self.n_items, self.seed = n_items, seed

    def score(self, users, items=None):
        seed = len(users) if self.seed is None else self.seed
        return np.random.default_rng(seed).random((len(users), self.n_items)).astype(np.float32)


@pytest.fixture
def tiny_dataset() -> CrossDomainDataset:
    return make_tiny_dataset()


@pytest.fixture(scope="session")
def shared_data_dir():
    """The real public data sets (``XCATREC_DATA`` or ``../shared/data``); skips the test when absent."""
    from pathlib import Path

    env = os.environ.get("XCATREC_DATA")
    path = Path(env) if env else Path(__file__).resolve().parents[1].parent / "shared" / "data"
    if not (path / "amazon-disencdr").is_dir():
        pytest.skip("real data not available: set XCATREC_DATA to a folder with the public data sets")
    return path
