"""The one owner of training: a Keras recommender base that runs a method's declared phases.

A method lists its :class:`~xcatrec.core.Phase` declarations and supplies only what is its own:

* :meth:`KerasRecommender.build` -- the network of a phase (a ``keras.Model`` whose ``compute_loss``
  is the method's loss; the base creates its variables on a first batch and compiles it);
* :meth:`KerasRecommender.rows` -- the phase's training rows (:class:`~xcatrec.training.rows.Rows`);
* :meth:`KerasRecommender.export` -- copy the network's weights into the numpy arrays the model
  scores with, returning them by name (see :func:`~xcatrec.training.layers.numpy_weights`);
* optionally :meth:`~KerasRecommender.setup` (before the first phase), :meth:`~KerasRecommender.prepare`
  (after the variables exist: copy and freeze transferred weights), :meth:`~KerasRecommender.validation`
  (the early-stopping metric, target validation NDCG@10 by default), :attr:`~KerasRecommender.optimizer`
  and :meth:`~KerasRecommender.callbacks`.

For each phase the base seeds, builds under the active ``tf.distribute`` strategy, makes the network's
embeddings read only the rows they look up (:func:`~xcatrec.training.optimizers.read_rows_sparsely`),
trains with plain ``model.fit`` over the stream of shuffled epochs (a whole epoch per call into
TensorFlow, :attr:`KerasRecommender.steps_per_execution`), and uses Keras's own callbacks: a
:class:`Epochs` puts the validation metric in the epoch logs (exporting the current weights first, so
the model scores what the network holds), :class:`EarlyStopping` stops on it and restores the best
weights, :class:`Checkpoint` (``checkpoint_dir``) writes the best weights as training goes. Then it
exports, and records the phase's declared ``moves`` in :attr:`~xcatrec.core.Recommender.transferred`
(at the end of the phase; for the last phase, which hands nothing on, at its start). The epochs a
validated phase chose are what a refit on train + validation freezes (:attr:`refit_epochs`).

Distribution: ``with strategy.scope(): model.fit(dataset)`` builds the variables under that strategy and
Keras splits each batch over its replicas (losses return :func:`~xcatrec.training.losses.replica_mean`).
When ``TF_CONFIG`` describes a cluster, every fit runs under its ``MultiWorkerMirroredStrategy``
(:mod:`xcatrec.training.distribute`).

Streaming: after :meth:`KerasRecommender.stream_from` (a shard folder of :mod:`xcatrec.data.shards`), each
phase reads its training rows from the shards through ``tf.data`` (:meth:`~KerasRecommender.shard_rows`,
:mod:`xcatrec.training.streaming`) instead of building them in memory, so the memory of an epoch does
not grow with the rows; :meth:`~KerasRecommender.training_stream` is where the two paths part.
"""

from __future__ import annotations

import os
import sys
import time
import warnings
from pathlib import Path
from typing import Any

import keras
import numpy as np

from xcatrec.core.base import FitReport, Phase, Recommender, combine_reports
from xcatrec.data.shards import Shards, open_shards
from xcatrec.data.types import CrossDomainDataset
from xcatrec.errors import ConfigError, DataError
from xcatrec.training.config import TrainConfig
from xcatrec.training.distribute import cluster_strategy
from xcatrec.training.optimizers import LazyAdam, read_rows_sparsely
from xcatrec.training.rows import Rows, epoch_stream, steps_per_epoch
from xcatrec.training.selection import Validation, ndcg_validation
from xcatrec.training.streaming import ShardRows, phase_shard_rows, sample_rows


def build_before_fit(net: keras.Model, batch: dict[str, np.ndarray]) -> None:
    """Finish building a compiled ``net`` on ``batch`` so that ``fit`` need not build it.

    Under ``MultiWorkerMirroredStrategy``, Keras 3's ``fit`` first averages one input batch over the
    workers (``strategy.reduce``) to build the model symbolically, which fails for inputs given as a
    dict; the network is built already (its variables exist), so the build is done here on one batch
    and ``fit``'s own step is skipped. Keras also averages each step's logs over the workers along
    axis 0, which a scalar lacks, so the step's logs become 1-element vectors (their mean is the same).
    """
    import tensorflow as tf

    net._symbolic_build(data_batch=batch)
    net._maybe_symbolic_build = lambda iterator=None, data_batch=None: None
    step = net.train_step
    net.train_step = lambda data: {k: tf.reshape(v, [1]) for k, v in step(data).items()}


class Epochs(keras.callbacks.Callback):
    """At the end of every epoch: records the loss and the wall and CPU seconds of training, computes the
    validation metric into the epoch logs every ``every`` epochs and after the last (calling ``sync``
    first, so the model scores what the network holds), and prints a progress line when ``verbose``.
    Keras's :class:`EarlyStopping` and :class:`Checkpoint` run after it and read the metric."""

    def __init__(self, prefix: str, validation: Validation | None, sync, every: int, epochs: int,
                 verbose: bool) -> None:
        super().__init__()
        self.prefix, self.validation, self.sync, self.verbose = prefix, validation, sync, verbose
        self.every, self.epochs, self.best = every, epochs, -np.inf
        self.history: dict[str, list[float]] = {"loss": [], "seconds": [], "cpu_seconds": [], "valid_epoch": []}
        if validation is not None:
            self.history[validation.metric] = []

    def on_epoch_begin(self, epoch, logs=None):
        self._tic, self._cpu = time.perf_counter(), time.process_time()

    def on_epoch_end(self, epoch, logs=None):
        h = self.history
        h["seconds"].append(time.perf_counter() - self._tic)
        h["cpu_seconds"].append(time.process_time() - self._cpu)
        h["loss"].append(float(logs["loss"]))
        line = f"{self.prefix}epoch {epoch + 1:3d}  loss {h['loss'][-1]:.4f}  {h['seconds'][-1]:6.2f}s"
        if self.validation is not None and ((epoch + 1) % self.every == 0 or epoch + 1 == self.epochs):
            self.sync()
            value = logs[self.validation.metric] = float(self.validation.score())
            h["valid_epoch"].append(float(epoch + 1))
            h[self.validation.metric].append(value)
            line += f"  {self.validation.metric} {value:.4f}" + ("  *" if value > self.best else "")
            self.best = max(self.best, value)
        if self.verbose:
            print(line, file=sys.stderr, flush=True)


class EarlyStopping(keras.callbacks.EarlyStopping):
    """Keras's early stopping on a metric that only some epochs have (``eval_every``); patience 0
    never stops. It restores the best weights when training ends."""

    def __init__(self, metric: str, patience: int, epochs: int) -> None:
        super().__init__(monitor=metric, mode="max", patience=patience if patience > 0 else epochs + 1,
                         restore_best_weights=True)

    def get_monitor_value(self, logs):
        return (logs or {}).get(self.monitor)


class Checkpoint(keras.callbacks.ModelCheckpoint):
    """Keras's ``ModelCheckpoint`` of the weights kept so far (the best validated ones, or every epoch's
    without validation), written atomically: to a temporary file, then renamed over the checkpoint."""

    def __init__(self, path: Path, metric: str | None) -> None:
        self.final = Path(path)
        tmp = self.final.with_name(self.final.name.replace(".weights.h5", ".tmp.weights.h5"))
        super().__init__(str(tmp), monitor=metric or "loss", mode="max" if metric else "min",
                         save_best_only=metric is not None, save_weights_only=True)
        self.validated = metric is not None

    def on_epoch_end(self, epoch, logs=None):
        if self.validated and (logs or {}).get(self.monitor) is None:
            return  # not a validation epoch
        self.final.parent.mkdir(parents=True, exist_ok=True)
        super().on_epoch_end(epoch, logs)
        if os.path.exists(self.filepath):
            os.replace(self.filepath, self.final)


def checkpoint_path(folder: str | Path, method: str, phase: str, seed: int) -> Path:
    """Where the checkpoint of ``method``'s ``phase`` for the run with ``seed`` is written:
    ``<folder>/<method>-<phase>.seed-<seed>.best.weights.h5``."""
    return Path(folder) / f"{method}-{phase}.seed-{seed}.best.weights.h5"


def load_checkpoint(model: keras.Model, path: str | Path) -> None:
    """Set a built Keras model's weights from a checkpoint written while training.

    Raises:
        ConfigError: The file does not exist, or its arrays do not fit the model.
        DataError: The file is corrupt (e.g. truncated) or not a weights file.
    """
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"Checkpoint {str(path)!r} does not exist.",
                          "Train with a checkpoint folder first (config field checkpoint_dir).")
    try:
        model.load_weights(path)
    except ValueError as exc:
        if "shape" in str(exc).lower() or "expected" in str(exc).lower():
            raise ConfigError(f"Checkpoint {path} does not fit this model ({exc}).",
                              "Build the model with the config it was trained with.") from None
        raise DataError(f"Checkpoint {path} is corrupt or not a weights file ({exc}).",
                        "Delete it and train again with checkpoint_dir set.") from None
    except Exception as exc:  # h5py raises OSError and others for a damaged file
        raise DataError(f"Checkpoint {path} is corrupt or not a weights file ({type(exc).__name__}: {exc}).",
                        "Delete it and train again with checkpoint_dir set.") from None


class KerasRecommender(Recommender):
    """Base of every method trained by gradient descent (see the module docstring).

    Subclasses set :attr:`phases` and implement :meth:`build`, :meth:`rows` and :meth:`export` (and the
    numpy scoring and state round trip of :class:`~xcatrec.core.Recommender`, usually by also
    subclassing :class:`~xcatrec.core.FactorModel`). Their config subclasses
    :class:`~xcatrec.training.config.TrainConfig`.
    """

    config_class = TrainConfig
    #: Compile the networks with XLA when Keras decides to (``False`` for shapes that vary per batch).
    jit_compile: Any = "auto"
    #: The optimizer (called with the phase's learning rate): Adam updating only the embedding rows a
    #: batch touched; ``keras.optimizers.Adam`` updates every row.
    optimizer: Any = LazyAdam
    #: Training steps per call into TensorFlow: ``"epoch"`` runs a whole epoch in one call (a
    #: ``tf.while_loop`` over its batches, no Python between steps); an integer must divide the epoch.
    #: Under a ``tf.distribute`` strategy every step is its own call (Keras's multi-step loop fails
    #: to run a ``MirroredStrategy`` step on CPU devices).
    steps_per_execution: Any = "epoch"
    #: The opened shard folder the training rows stream from (:meth:`stream_from`); ``None`` (the
    #: default) builds them in memory with :meth:`rows`.
    shards: Any = None

    # ---------------------------------------------------------------- what a method supplies
    def build(self, phase: Phase, dataset: CrossDomainDataset) -> keras.Model:
        """The (uncompiled) network of ``phase``."""
        raise NotImplementedError

    def rows(self, phase: Phase, dataset: CrossDomainDataset) -> Rows:
        """The training rows of ``phase``."""
        raise NotImplementedError

    def export(self, phase: Phase, net: keras.Model) -> dict[str, np.ndarray]:
        """Copy ``net``'s weights into the scoring arrays; return the phase's arrays by name."""
        raise NotImplementedError

    def setup(self, dataset: CrossDomainDataset) -> None:
        """Called once before the first phase."""

    def prepare(self, phase: Phase, net: keras.Model, dataset: CrossDomainDataset) -> None:
        """Called when ``net``'s variables exist, before compiling (copy / freeze transferred weights)."""

    def validation(self, phase: Phase, dataset: CrossDomainDataset) -> Validation | None:
        """The early-stopping metric of a validated phase: full-ranking NDCG@10 on the target valid split.

        Phases declared ``validate="held-out"`` must override this."""
        cfg = self.config
        return ndcg_validation(self, dataset, max_users=cfg.valid_users, seed=cfg.seed)

    def callbacks(self, phase: Phase, net: keras.Model) -> list[keras.callbacks.Callback]:
        """Extra Keras callbacks of ``phase`` (run before the base's own each epoch)."""
        return []

    # ---------------------------------------------------------------- where the rows come from
    def stream_from(self, shards: Shards | str | Path | None) -> "KerasRecommender":
        """Train from a shard folder (:mod:`xcatrec.data.shards`) instead of rows in memory; ``None`` undoes it.

        :meth:`fit` still takes the data set (validation, the items to exclude when scoring); each
        phase's training rows stream from the shards (:mod:`xcatrec.training.streaming`). Returns ``self``.

        Raises:
            DataError: The folder fails its manifest, or was written for other sizes than the model's.
        """
        if shards is not None and not isinstance(shards, Shards):
            shards = open_shards(shards)
        if shards is not None and shards.sizes != self.sizes:
            raise DataError(f"The shards in {shards.folder} hold a data set of {shards.sizes}, the model was "
                            f"built for {self.sizes}.", "Write the shards of the data set the model is built for.")
        self.shards = shards
        return self

    def shard_rows(self, phase: Phase, shards: Shards) -> ShardRows:
        """The rows of ``phase`` read from ``shards``: by default those of a one-category ranking phase
        (:func:`~xcatrec.training.streaming.phase_shard_rows`); a method with other rows overrides it."""
        return phase_shard_rows(self, phase, shards)

    def training_rows(self, phase: Phase, dataset: CrossDomainDataset) -> Rows | ShardRows:
        """The rows ``phase`` trains on: :meth:`rows` in memory, or :meth:`shard_rows` after :meth:`stream_from`."""
        return self.rows(phase, dataset) if self.shards is None else self.shard_rows(phase, self.shards)

    def training_stream(self, phase: Phase, dataset: CrossDomainDataset, rows: Rows | ShardRows, batch_size: int,
                        seed: int, epochs: int):
        """The ``tf.data`` stream of ``epochs`` epochs of batches that ``model.fit`` reads:
        :func:`~xcatrec.training.rows.epoch_stream` of rows in memory, :meth:`ShardRows.stream
        <xcatrec.training.streaming.ShardRows.stream>` of rows in shards."""
        if isinstance(rows, ShardRows):
            return rows.stream(batch_size, seed, epochs)
        return epoch_stream(rows, batch_size, seed, epochs)

    # ---------------------------------------------------------------- the loop
    @property
    def refit_epochs(self) -> dict[str, tuple[str, str]]:  # type: ignore[override]
        """Epoch fields a refit freezes: each validated phase's epochs field -> (phase, patience field)."""
        multi = len(self.phases) > 1
        return {p.field(self.config, "epochs"): (p.name if multi else "", p.field(self.config, "patience"))
                for p in self.phases if p.validate == "valid"}

    def _fit(self, dataset: CrossDomainDataset, *, verbose: bool) -> FitReport:
        import tensorflow as tf

        strategy = None if tf.distribute.has_strategy() else cluster_strategy()
        if strategy is not None:  # TF_CONFIG describes a cluster: train with the other workers
            with strategy.scope():
                return self._fit(dataset, verbose=verbose)
        keras.utils.set_random_seed(self.config.seed)
        self.transferred = {}
        self.setup(dataset)
        reports = {}
        for k, phase in enumerate(self.phases):
            reports[phase.name] = self._run(phase, dataset, last=k == len(self.phases) - 1, verbose=verbose)
        return combine_reports(reports)

    def _record_moves(self, phase: Phase, state: dict[str, np.ndarray]) -> None:
        under = lambda name, move: name == move or name.startswith(move + "/")  # noqa: E731
        picked = {n: v for n, v in state.items() if any(under(n, m) for m in phase.moves)}
        missing = [m for m in phase.moves if not any(under(n, m) for n in picked)]
        if missing:
            raise ConfigError(f"{self.name}: phase {phase.name!r} declares moves {missing} that its export "
                              f"does not return (it returns {sorted(state)}).",
                              "Name the exported arrays as the phase's moves do.")
        self.transferred.update({n: np.array(v, copy=True) for n, v in picked.items()})

    def _execution_steps(self, steps: int) -> int:
        """Steps per execution for an epoch of ``steps`` batches (see :attr:`steps_per_execution`)."""
        import tensorflow as tf

        spe = self.steps_per_execution
        if tf.distribute.has_strategy():
            return 1
        if spe == "epoch":
            return steps
        if not isinstance(spe, int) or spe < 1 or steps % spe:
            raise ConfigError(f"{self.name}: steps_per_execution={spe!r} does not divide an epoch of "
                              f"{steps} steps.", "Use 'epoch' or a divisor of the steps per epoch.")
        return spe

    def _run(self, phase: Phase, dataset: CrossDomainDataset, *, last: bool, verbose: bool) -> FitReport:
        import tensorflow as tf

        cfg = self.config
        epochs, batch_size = phase.setting(cfg, "epochs"), phase.setting(cfg, "batch_size")
        patience = phase.setting(cfg, "patience") or 0
        seed = cfg.seed + 1000 * self.phases.index(phase)
        rows = self.training_rows(phase, dataset)
        if len(rows) == 0:
            raise DataError(f"{self.name}: phase {phase.name!r} has no training rows.",
                            "Use a data set with rows in the domain(s) the phase trains on.")
        steps = steps_per_epoch(len(rows), batch_size)
        with tf.distribute.get_strategy().scope():
            net = self.build(phase, dataset)
            read_rows_sparsely(net)
            net(sample_rows(rows))  # create the variables
            self.prepare(phase, net, dataset)
            net.compile(optimizer=self.optimizer(phase.setting(cfg, "learning_rate")),
                        jit_compile=self.jit_compile, steps_per_execution=self._execution_steps(steps))
            if isinstance(tf.distribute.get_strategy(), tf.distribute.MultiWorkerMirroredStrategy):
                build_before_fit(net, sample_rows(rows))
        if last and phase.moves:  # the last phase hands nothing on: record its channel before training
            self._record_moves(phase, self.export(phase, net))
        validation = self.validation(phase, dataset) if phase.validate else None
        metric = validation.metric if validation else None
        log = Epochs(f"{self.name}/{phase.name} ", validation, lambda: self.export(phase, net), cfg.eval_every,
                     epochs, verbose)
        early = EarlyStopping(metric, patience, epochs) if metric else None
        callbacks = [*self.callbacks(phase, net), log, *([early] if early else [])]
        if cfg.checkpoint_dir:
            callbacks.append(Checkpoint(checkpoint_path(cfg.checkpoint_dir, self.name, phase.name, cfg.seed),
                                        metric))
        start = time.perf_counter()
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*Your input ran out of data.*")
            net.fit(self.training_stream(phase, dataset, rows, batch_size, seed, epochs), epochs=epochs,
                    steps_per_epoch=steps, verbose=0, shuffle=False,
                    callbacks=callbacks)
        state = self.export(phase, net)
        if not last:
            self._record_moves(phase, state)
        run = len(log.history["loss"])
        best = early.best_epoch + 1 if early is not None and early.best_weights is not None else run
        return FitReport(epochs=run, seconds=time.perf_counter() - start,
                         seconds_per_epoch=float(np.mean(log.history["seconds"])) if run else 0.0,
                         best_epoch=best, history=log.history)
