"""Matrix-factorisation training shared by the embedding-and-mapping family (CMF, EMCDR, PTUPCDR).

These methods all start from user and item factors learned by matrix factorisation, with one of two
losses chosen by the config field ``loss``:

* ``"bpr"`` (implicit feedback): the pairwise loss of :class:`xcatrec.models.bpr_mf.BPRNet`, here with
  an optional weight per row (:class:`WeightedBPRNet`), so that CMF can weight its source rows.
* ``"mse"`` (explicit ratings, e.g. Douban): squared error of
  ``r_ui ~ mu_d + b_u + b_i + <p_u, q_i>`` with the domain mean ``mu_d`` fixed (:class:`RatingNet`).

Whatever the loss, training ends with numpy arrays in the shape :class:`FactorModel` scores with
(:class:`Factors`). For ``"mse"`` the user bias rides along as one more factor column
(users ``[p_u, b_u]``, items ``[q_i, 1]``) and the item bias holds ``mu_d + b_i``, so a score *is* the
predicted rating and a mapping of user factors from one domain to another moves the bias too.
:class:`RatingFactorModel` adds :meth:`~RatingFactorModel.predict_ratings` for such models.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, ClassVar

import keras
import numpy as np
from keras import ops

from xcatrec.data.types import CrossDomainDataset, Interactions
from xcatrec.errors import ConfigError, DataError
from xcatrec.models.base import FitReport
from xcatrec.models.bpr_mf import BPRNet
from xcatrec.models.embeddings import FactorModel
from xcatrec.models.train_config import TrainConfig
from xcatrec.training.optimizers import LazyAdam
from xcatrec.training.sampling import NegativeSampler
from xcatrec.training.trainer import build_keras, epoch_dataset, fit_keras, replica_mean, valid_ndcg

LOSSES = ("bpr", "mse")


@dataclass(frozen=True)
class FactorConfig(TrainConfig):
    """Hyper-parameters of the matrix factorisation inside CMF, EMCDR and PTUPCDR.

    ``patience`` defaults to 8: validation NDCG@10 on 3,000 Amazon Clothing users rests on a dozen hits
    and is noisy; with patience 4 the target factorisation stopped at epoch 7 (valid NDCG 0.0037), with
    8 at epoch 25 (best 0.0052).

    Args:
        dim: Latent factors per user and item.
        loss: ``"bpr"`` (implicit feedback) or ``"mse"`` (ratings; needs a data set with ratings).
        reg: L2 penalty per training row on the factors (and biases) the row touches; ``None`` picks
            the method's default for the loss (:attr:`default_reg`: 0.1 for BPR, 0.3 for MSE, chosen
            on the validation splits of Amazon Clothing and Douban Music).
        init_std: Standard deviation of the normal initialisation of the factors.
    """

    epochs: int = 40
    learning_rate: float = 5e-3
    patience: int = 8
    dim: int = 64
    loss: str = "bpr"
    reg: float | None = None
    init_std: float = 0.01
    #: L2 weight per loss when ``reg`` is ``None`` (not a field; a method's config may override it).
    default_reg: ClassVar[dict[str, float]] = {"bpr": 0.1, "mse": 0.3}

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.dim < 1:
            raise ConfigError(f"dim must be at least 1, got {self.dim}.", "Pass dim=64, for example.")
        if self.loss not in LOSSES:
            raise ConfigError(f"Unknown loss {self.loss!r}.", f"Use one of {list(LOSSES)}.")
        if (self.reg is not None and self.reg < 0) or self.init_std <= 0:
            raise ConfigError(f"reg must be >= 0 and init_std > 0, got {self.reg} and {self.init_std}.",
                              "Pass reg=0.1, init_std=0.01, for example.")

    @property
    def l2(self) -> float:
        """The L2 weight in use: ``reg``, or the loss's default when ``reg`` is ``None``."""
        return self.default_reg[self.loss] if self.reg is None else float(self.reg)


@dataclass(frozen=True)
class Factors:
    """Learned factors of one domain, ready for dot-product scoring (see the module docstring)."""

    user_factors: np.ndarray
    item_factors: np.ndarray
    item_bias: np.ndarray


class WeightedBPRNet(BPRNet):
    """:class:`BPRNet` whose per-row loss is multiplied by ``inputs["weight"]`` when that key is given."""

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        per_row = -ops.log_sigmoid(y_pred["diff"]) + self.reg * y_pred["norm"]
        if isinstance(x, dict) and "weight" in x:
            per_row = per_row * ops.cast(x["weight"], per_row.dtype)
        return replica_mean(per_row)


class RatingNet(keras.Model):
    """Biased matrix factorisation for centred ratings: ``r - mu ~ <p_u, q_i> + b_u + b_i``.

    Inputs are dicts ``{"user", "item", "rating"[, "weight"]}`` with ratings already centred; the loss
    per row is ``weight * (prediction - rating)^2 + reg * (|p_u|^2 + |q_i|^2 + b_u^2 + b_i^2)``.
    """

    def __init__(self, n_users: int, n_items: int, dim: int, reg: float, init_std: float, seed: int,
                 **kwargs) -> None:
        super().__init__(**kwargs)
        init = lambda k: keras.initializers.RandomNormal(stddev=init_std, seed=seed + k)  # noqa: E731
        self.user_embedding = keras.layers.Embedding(n_users, dim, embeddings_initializer=init(0),
                                                     name="user_embedding")
        self.item_embedding = keras.layers.Embedding(n_items, dim, embeddings_initializer=init(1),
                                                     name="item_embedding")
        self.user_bias = keras.layers.Embedding(n_users, 1, embeddings_initializer="zeros", name="user_bias")
        self.item_bias = keras.layers.Embedding(n_items, 1, embeddings_initializer="zeros", name="item_bias")
        self.reg = reg

    def call(self, inputs: dict) -> dict:
        p, q = self.user_embedding(inputs["user"]), self.item_embedding(inputs["item"])
        bu, bi = self.user_bias(inputs["user"])[:, 0], self.item_bias(inputs["item"])[:, 0]
        pred = ops.sum(p * q, axis=-1) + bu + bi
        norm = ops.sum(p * p + q * q, axis=-1) + bu * bu + bi * bi
        return {"error": pred - ops.cast(inputs["rating"], pred.dtype), "norm": norm}

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        per_row = ops.square(y_pred["error"])
        if isinstance(x, dict) and "weight" in x:
            per_row = per_row * ops.cast(x["weight"], per_row.dtype)
        return replica_mean(per_row + self.reg * y_pred["norm"])


def build_net(cfg: FactorConfig, n_users: int, n_items: int) -> keras.Model:
    """A compiled :class:`WeightedBPRNet` or :class:`RatingNet` (by ``cfg.loss``) under the strategy."""

    def build() -> keras.Model:
        zero = np.zeros(1, np.int64)
        if cfg.loss == "bpr":
            net = WeightedBPRNet(n_users, n_items, cfg.dim, True, cfg.l2, cfg.init_std, cfg.seed)
            net({"user": zero, "pos": zero, "neg": zero})
        else:
            net = RatingNet(n_users, n_items, cfg.dim, cfg.l2, cfg.init_std, cfg.seed)
            net({"user": zero, "item": zero, "rating": np.zeros(1, np.float32)})
        net.compile(optimizer=LazyAdam(cfg.learning_rate))
        return net

    return build_keras(build)


def export_factors(net: keras.Model, items: slice = slice(None), mean: float = 0.0) -> Factors:
    """Numpy factors of ``net`` for the item rows ``items``; for a :class:`RatingNet` the user bias
    becomes the last factor column and ``mean`` is added to the item bias."""
    users = np.asarray(net.user_embedding.embeddings.numpy(), np.float32)
    item_f = np.asarray(net.item_embedding.embeddings.numpy()[items], np.float32)
    item_b = np.asarray(net.item_bias.embeddings.numpy()[items, 0], np.float32)
    if isinstance(net, RatingNet):
        users = np.hstack([users, net.user_bias.embeddings.numpy()]).astype(np.float32)
        item_f = np.hstack([item_f, np.ones((len(item_f), 1), np.float32)])
        item_b = item_b + np.float32(mean)
    return Factors(np.ascontiguousarray(users), np.ascontiguousarray(item_f), item_b)


def row_batches(arrays: dict[str, np.ndarray], batch_size: int, seed: int,
                negatives: Callable[[np.random.Generator], np.ndarray] | None = None
                ) -> Callable[[int], object]:
    """``batches(epoch)`` for :func:`fit_keras`: a fresh numpy permutation (and negatives) per epoch.

    Args:
        arrays: Equal-length columns (``user``, ``pos`` or ``item``, ``rating``, ``weight``, ...).
        batch_size: Rows per batch.
        seed: Seed; epoch ``e`` uses the generator ``default_rng([seed, e])``.
        negatives: Draws one negative item per row (in the rows' original order) for BPR, stored as
            ``"neg"``.
    """
    n = len(next(iter(arrays.values())))

    def batches(epoch: int):
        rng = np.random.default_rng([seed, epoch])
        columns = dict(arrays)
        if negatives is not None:
            columns["neg"] = negatives(rng)
        return epoch_dataset(columns, batch_size, order=rng.permutation(n))

    return batches


def domain_arrays(rows: Interactions, loss: str, what: str) -> tuple[dict[str, np.ndarray], float]:
    """Training columns of one domain's rows for ``loss``, and the mean rating (0 for BPR)."""
    if loss == "bpr":
        return {"user": rows.users, "pos": rows.items}, 0.0
    if rows.ratings is None:
        raise DataError(f"loss='mse' needs ratings, but the {what} rows have none (implicit feedback).",
                        "Use loss='bpr' for implicit data, or a data set with ratings (e.g. Douban).")
    mean = float(rows.ratings.mean())
    return {"user": rows.users, "item": rows.items, "rating": rows.ratings - np.float32(mean)}, mean


def metric_name(loss: str) -> str:
    """Name of the validation metric in the fit report's history for ``loss``."""
    return "valid_ndcg@10" if loss == "bpr" else "valid_neg_rmse"


def fit_domain_mf(owner: "RatingFactorModel", dataset: CrossDomainDataset, domain: str, cfg: FactorConfig,
                  *, epochs: int, validate: bool, verbose: bool = False,
                  prefix: str = "") -> tuple[Factors, FitReport]:
    """Matrix factorisation of one domain's training rows (one phase of EMCDR or PTUPCDR).

    Args:
        owner: The model being trained; with ``validate`` its factor arrays are overwritten before each
            validation so that it scores with the current weights.
        dataset: The data set.
        domain: ``"source"`` or ``"target"``.
        cfg: The factorisation settings.
        epochs: Maximum number of epochs.
        validate: Early-stop on the target validation split (NDCG@10 for BPR, RMSE for MSE); only
            meaningful for ``domain="target"``. Otherwise all epochs run and the last weights are kept.
        verbose: Print one line per epoch.
        prefix: Log prefix.
    """
    n_items = dataset.domain(domain).n_items
    rows = dataset.domain(domain).train
    arrays, mean = domain_arrays(rows, cfg.loss, domain)
    negatives = None
    if cfg.loss == "bpr":
        sampler = NegativeSampler(dataset.matrix(domain, "train"))
        negatives = lambda rng: sampler.sample(rows.users, rng)  # noqa: E731
    net = build_net(cfg, dataset.n_users, n_items)
    check = None
    if validate:
        check = valid_metric(owner, dataset, cfg, lambda: owner.set_factors(export_factors(net, mean=mean)))
    report = fit_keras(net, batches=row_batches(arrays, cfg.batch_size, cfg.seed, negatives),
                       validate=check, verbose=verbose, log_prefix=prefix, epochs=epochs,
                       patience=cfg.patience, eval_every=cfg.eval_every, metric=metric_name(cfg.loss),
                       checkpoint=cfg.checkpoint_dir or None, checkpoint_seed=cfg.seed)
    return export_factors(net, mean=mean), report


def valid_metric(owner: "RatingFactorModel", dataset: CrossDomainDataset, cfg: FactorConfig,
                 before: Callable[[], None], users: np.ndarray | None = None) -> Callable[[], float] | None:
    """Validation callable on the target valid split: NDCG@10 for BPR, minus RMSE for MSE.

    Args:
        owner: The model scored.
        dataset: The data set.
        cfg: Its config (``loss``, ``valid_users``, ``seed``).
        before: Called first (copies the current weights into ``owner``).
        users: Only these users (default: a random subset of ``cfg.valid_users`` validation users).

    Returns:
        The callable, or ``None`` when there is nothing to validate on.
    """
    from xcatrec.evaluation import evaluate, evaluate_ratings

    valid = dataset.target.valid
    pool = np.unique(valid.users) if users is None else np.intersect1d(users, valid.users)
    if len(pool) == 0:
        return None
    if cfg.loss == "bpr":
        if users is None:
            return valid_ndcg(owner, dataset, max_users=cfg.valid_users, seed=cfg.seed, before=before)

        def ndcg() -> float:
            before()
            return float(evaluate(owner, dataset, part="valid", ks=(10,), users=pool)["ndcg@10"])

        return ndcg
    if valid.ratings is None:
        raise DataError("loss='mse' needs target validation ratings, but the valid split has none.",
                        "Use loss='bpr' for implicit data.")

    def neg_rmse() -> float:
        before()
        return -float(evaluate_ratings(owner, dataset, part="valid", users=pool)["rmse"])

    return neg_rmse


class RatingFactorModel(FactorModel):
    """A :class:`FactorModel` that also predicts ratings when it was trained with ``loss="mse"``.

    :attr:`rating_range` holds the lowest and highest training rating (``None`` after BPR training);
    predictions are clipped to it.
    """

    def __init__(self, sizes, config=None) -> None:
        super().__init__(sizes, config)
        self.rating_range: np.ndarray | None = None

    def set_factors(self, factors: Factors) -> None:
        """Score with ``factors`` (target domain) from now on."""
        self.user_factors, self.item_factors, self.item_bias = (factors.user_factors, factors.item_factors,
                                                                factors.item_bias)

    def fit_rating_range(self, dataset: CrossDomainDataset) -> None:
        """Record the target training rating range when the config's loss is ``"mse"``."""
        self.rating_range = None
        if getattr(self.config, "loss", "bpr") == "mse":
            ratings = dataset.target.train.ratings
            if ratings is None:
                raise DataError("loss='mse' needs ratings, but the target rows have none (implicit "
                                "feedback).", "Use loss='bpr' for implicit data, or a data set with ratings "
                                "(e.g. Douban).")
            self.rating_range = np.array([ratings.min(), ratings.max()], np.float32)

    def predict_ratings(self, users, items) -> np.ndarray:
        """Predicted rating of each ``(users[k], items[k])`` pair, clipped to the training range.

        Raises:
            ConfigError: The model was trained with ``loss="bpr"`` (its scores are not ratings).
            UnknownIdError: An index is out of range.
        """
        users = self._check_ids(users, self.sizes.n_users, "user")
        items = self._check_ids(items, self.sizes.n_target_items, "item")
        if users.shape != items.shape:
            raise ConfigError(f"predict_ratings needs one item per user, got {len(users)} users and "
                              f"{len(items)} items.", "Pass two arrays of the same length (pairs).")
        user_f, item_f = self._factors()
        if self.rating_range is None:
            raise ConfigError(f"This {self.name} model was trained with loss='bpr', so its scores are not "
                              "ratings.", "Train it with loss='mse' on a data set with ratings.")
        pred = np.einsum("nd,nd->n", user_f[users], item_f[items]) + self.item_bias[items]
        return np.clip(pred, *self.rating_range).astype(np.float32)

    def get_state(self) -> dict[str, np.ndarray]:
        state = super().get_state()
        if self.rating_range is not None:
            state["rating_range"] = self.rating_range
        return state

    def set_state(self, state: dict[str, np.ndarray]) -> None:
        super().set_state(state)
        rating_range = state.get("rating_range")
        self.rating_range = None if rating_range is None else np.asarray(rating_range, np.float32)
