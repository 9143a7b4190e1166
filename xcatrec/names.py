"""The names the layers share, in one place and importable without NumPy or TensorFlow.

Splits, protocols, record kinds and methods are spelled here once: the data loaders, the evaluation,
the benchmark config and the command line all read them from this module (the command line lists
them in its help, which must stay fast). :data:`xcatrec.models.METHODS` maps the method names to
classes; a test keeps the two in step.
"""

from __future__ import annotations

#: How a data set's rows are split (see :mod:`xcatrec.data.splits`).
SPLITS: tuple[str, ...] = ("published", "loo", "random", "temporal", "cold-start")

#: The replica of the published protocol on the DisenCDR splits (see :func:`xcatrec.experiment.run_one`).
REPLICA_PROTOCOL = "disencdr-replica"
#: Ranking protocol -> number of sampled negatives (``None``: rank against all candidate items); see
#: :mod:`xcatrec.evaluation.protocols`. The replica samples its 999 negatives *with* replacement.
RANKING_PROTOCOLS: dict[str, int | None] = {"full": None, "sampled-99": 99, "sampled-999": 999,
                                            REPLICA_PROTOCOL: 999}
#: The rating-prediction protocol (MAE and RMSE, :func:`xcatrec.evaluation.evaluate_ratings`).
RATING_PROTOCOL = "ratings"
#: Every protocol a model can be tested under.
PROTOCOL_NAMES: tuple[str, ...] = (*RANKING_PROTOCOLS, RATING_PROTOCOL)

#: What a result record holds (its ``kind``): test metrics, one run's per-user test values (see
#: :func:`xcatrec.evaluation.bootstrap.per_user_records`), validation metrics, costs (seconds, memory, epochs)
#: and the trace of a hyper-parameter search. Only ``"test"`` and ``"valid"`` records have a protocol.
RECORD_KINDS: tuple[str, ...] = ("test", "per-user", "valid", "cost", "tuning")

#: Methods that learn from the target category alone (the references a transfer method must beat).
TARGET_ONLY: tuple[str, ...] = ("popularity", "item-mean", "bpr-mf", "itemknn", "ease")
#: Reference methods from other libraries, run as they are (labelled external peers in every table).
PEERS: tuple[str, ...] = ("implicit-ials",)
#: Methods that use the source category.
TRANSFER: tuple[str, ...] = ("source-only", "cross-itemknn", "joint-ease", "joint-ials", "finetune", "shared-bottom",
                             "cmf", "emcdr", "ptupcdr", "conet", "dann")
#: Transfer methods with trained parameters.
LEARNED_TRANSFER: tuple[str, ...] = ("joint-ease", "joint-ials", "finetune", "shared-bottom", "cmf", "emcdr", "ptupcdr",
                                     "conet", "dann")
#: Every method name: the groups above and the original article's item classifier.
METHOD_NAMES: tuple[str, ...] = tuple(sorted(TARGET_ONLY + PEERS + TRANSFER + ("seed-cnn",)))
