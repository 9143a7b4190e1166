"""Multi-worker training: the ``tf.distribute`` strategy a ``TF_CONFIG`` cluster calls for.

When the environment variable ``TF_CONFIG`` describes a cluster (the JSON format of TensorFlow:
``{"cluster": {"worker": ["host:port", ...]}, "task": {"type": "worker", "index": i}}``), every
:class:`~xcatrec.training.recommender.KerasRecommender` fit runs under one
``tf.distribute.MultiWorkerMirroredStrategy``: each worker holds a full copy of the weights, computes
the gradients of its slice of every global batch, and the workers add them up (all-reduce) before each
step, so all copies stay identical. Every worker runs the same program on the same data; the input
pipeline is sharded by data, so worker ``i`` trains on slice ``i`` of each batch.

When it is the right engine: the model fits in one worker's memory and the time goes into the
gradient computation (more rows, bigger towers). When the embedding tables themselves outgrow one
machine, ``tf.distribute.experimental.ParameterServerStrategy`` with a variable partitioner shards the
tables over parameter servers instead; xcatrec does not implement that (it cannot be tested on one
machine in a meaningful way), see the "full code" chapter.

Without ``TF_CONFIG`` nothing changes: :func:`cluster_strategy` returns ``None``.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from typing import Any

from xcatrec.errors import ConfigError

_HOW = ('Set TF_CONFIG to JSON like {"cluster": {"worker": ["localhost:12345", "localhost:12346"]}, '
        '"task": {"type": "worker", "index": 0}}, or unset it to train on one machine.')


@dataclass(frozen=True)
class Cluster:
    """The cluster of a ``TF_CONFIG``: the workers' addresses and this process's place among them."""

    workers: tuple[str, ...]
    index: int

    @property
    def chief(self) -> bool:
        """Worker 0 writes results; the others only train."""
        return self.index == 0


def cluster_from_env(environ: dict[str, str] | None = None) -> Cluster | None:
    """The cluster ``TF_CONFIG`` describes, or ``None`` when it is unset or empty.

    Raises:
        ConfigError: ``TF_CONFIG`` is not JSON, has no worker list, or its task is not one of them.
    """
    raw = (os.environ if environ is None else environ).get("TF_CONFIG", "").strip()
    if not raw:
        return None
    try:
        spec = json.loads(raw)
    except json.JSONDecodeError as err:
        raise ConfigError(f"TF_CONFIG is not valid JSON ({err.msg} at character {err.pos}).", _HOW) from None
    workers = spec.get("cluster", {}).get("worker") if isinstance(spec, dict) else None
    if not isinstance(workers, list) or not workers or not all(isinstance(w, str) for w in workers):
        raise ConfigError("TF_CONFIG has no cluster.worker list of 'host:port' addresses.", _HOW)
    others = sorted(set(spec["cluster"]) - {"worker"})
    if others:
        raise ConfigError(f"TF_CONFIG names job(s) {others}; xcatrec trains with workers only "
                          "(MultiWorkerMirroredStrategy).", _HOW)
    task = spec.get("task", {})
    index = task.get("index") if isinstance(task, dict) else None
    if task.get("type") != "worker" or not isinstance(index, int) or not 0 <= index < len(workers):
        raise ConfigError(f"TF_CONFIG's task {task!r} is not one of its {len(workers)} worker(s).", _HOW)
    return Cluster(tuple(workers), index)


_STRATEGY: Any = None


def cluster_strategy() -> Any:
    """The process's ``MultiWorkerMirroredStrategy`` when ``TF_CONFIG`` describes a cluster, else ``None``.

    Made once per process (TensorFlow allows one); call it before other TensorFlow work, as the
    training base does at the start of every fit. Blocks until every worker has started.
    """
    global _STRATEGY
    if cluster_from_env() is None:
        return None
    if _STRATEGY is None:
        import tensorflow as tf

        _STRATEGY = tf.distribute.MultiWorkerMirroredStrategy()
    return _STRATEGY
