"""Multi-worker training for real: worker processes on localhost ports, under TF_CONFIG.

Select these with ``pytest -k multi_worker``. Each test starts TensorFlow in two processes (about a
minute on two busy cores).
"""

from __future__ import annotations

import json
import time

import numpy as np
import pytest

from xcatrec.cluster import LocalCluster, WorkerFailed, tf_config
from xcatrec.errors import ConfigError
from xcatrec.models import BPRMF, BPRMFConfig
from xcatrec.testing import make_tiny_dataset
from xcatrec.training.distribute import cluster_from_env

# BPR: its loss is a mean over rows, the same however a batch is split over the workers.
OPTIONS = {"epochs": 3, "batch_size": 64, "dim": 8, "learning_rate": 0.05, "reg": 1e-3, "patience": 0,
           "loss": "bpr"}
ARGS = ["--dataset", "tiny", "--method", "bpr-mf"] + [a for k, v in OPTIONS.items() for a in ("--option", f"{k}={v}")]


def test_multi_worker_training_matches_one_worker(tmp_path):
    """Two workers, each training on half of every batch and adding up the gradients, end with the
    weights one process reaches alone: equal to 1e-4 (float sums in another order), so the same
    validation NDCG@10 to 1e-3 and the same losses to 1e-4 relative."""
    alone = BPRMF(make_tiny_dataset().sizes, BPRMFConfig(**OPTIONS))
    alone.fit(make_tiny_dataset())
    cluster = LocalCluster(2, [*ARGS, "--out", str(tmp_path / "model")], log_dir=tmp_path / "logs").start()
    report = json.loads(cluster.wait(timeout=400).strip().splitlines()[-1])
    assert report["workers"] == 2
    both = BPRMF.load(tmp_path / "model")
    for name, weights in alone.get_state().items():
        np.testing.assert_allclose(both.get_state()[name], weights, atol=1e-4, err_msg=name)
    np.testing.assert_allclose(report["loss"], alone.report.history["loss"], rtol=1e-4)
    from xcatrec.training.selection import ndcg_validation

    assert abs(report["valid_ndcg@10"] - ndcg_validation(alone, make_tiny_dataset()).score()) < 1e-3
    assert report["loss"][-1] < report["loss"][0] - 0.02  # it trained, not just sat at initialisation


def test_multi_worker_cluster_stops_with_a_clear_error_when_a_worker_dies(tmp_path):
    long_run = [a if a != "epochs=3" else "epochs=100000" for a in ARGS]
    cluster = LocalCluster(2, [*long_run, "--out", str(tmp_path / "model")], log_dir=tmp_path / "logs").start()
    try:
        deadline = time.monotonic() + 300
        while "epoch   2" not in cluster.log_path(1).read_text(errors="replace"):
            assert time.monotonic() < deadline, "worker 1 never started training"
            assert all(p.poll() is None for p in cluster.processes), cluster.log_path(0).read_text()[-2000:]
            time.sleep(0.2)
        cluster.kill(1)
        start = time.monotonic()
        with pytest.raises(WorkerFailed, match=r"Worker 1 of 2 exited with status -9; the other workers were stopped"):
            cluster.wait(timeout=120)
        assert time.monotonic() - start < 30  # noticed at once, not after a collective timeout
    finally:
        cluster.stop()
    assert all(p.poll() is not None for p in cluster.processes)  # nobody left waiting in an all-reduce
    assert not (tmp_path / "model").exists()


def test_multi_worker_tf_config_is_checked():
    workers = ["localhost:1", "localhost:2"]
    assert cluster_from_env({}) is None
    cluster = cluster_from_env({"TF_CONFIG": tf_config(workers, 1)})
    assert cluster.workers == tuple(workers) and cluster.index == 1 and not cluster.chief
    bad = {"not json": "{cluster", "no workers": '{"cluster": {}, "task": {"type": "worker", "index": 0}}',
           "index out of range": tf_config(workers, 2),
           "parameter servers": json.dumps({"cluster": {"worker": workers, "ps": ["localhost:3"]},
                                            "task": {"type": "worker", "index": 0}})}
    for why, text in bad.items():
        with pytest.raises(ConfigError, match="TF_CONFIG"):
            cluster_from_env({"TF_CONFIG": text})
