"""Matrix factorisation shared by the embedding-and-mapping family (CMF, EMCDR, PTUPCDR).

These methods all start from user and item factors learned by matrix factorisation on the package's
one network, :class:`~xcatrec.training.layers.FactorNet`, with the loss chosen by the config field
``loss``:

* a ranking loss for implicit feedback (:data:`~xcatrec.training.losses.RANKING_LOSSES`): ``"bpr"``,
  the pairwise BPR loss against ``negatives`` sampled negatives per row, ``"softmax"`` (in-batch and
  uniform negatives, log-Q corrected), ..., with an optional weight per row (CMF weights its source
  rows);
* ``"mse"`` (explicit ratings, e.g. Douban): squared error of
  ``r_ui ~ mu_d + b_u + b_i + <p_u, q_i>`` with the domain mean ``mu_d`` fixed (the rows hold
  ratings centred on it, :func:`domain_rows`).

Whatever the loss, a phase ends with numpy arrays in the shape :class:`~xcatrec.core.FactorModel`
scores with (:func:`domain_factors`). For ``"mse"`` the user bias rides along as one more factor column
(users ``[p_u, b_u]``, items ``[q_i, 1]``) and the item bias holds ``mu_d + b_i``, so a score *is* the
predicted rating and a mapping of user factors from one domain to another moves the bias too.

:class:`RatingFactorModel` is the family's base: the one-domain factorisation phases (a phase whose
``data`` is ``"source"`` or ``"target"``), validation by loss (NDCG@10, or minus the RMSE of
ratings) and :meth:`~RatingFactorModel.predict_ratings`. :class:`BridgeModel` adds what the two
methods that carry users from the source to the target domain share (EMCDR, PTUPCDR).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import keras
import numpy as np

from xcatrec.core.base import Phase, saved_arrays
from xcatrec.core.factors import FactorModel, Factors
from xcatrec.data.types import CrossDomainDataset, Interactions
from xcatrec.errors import ConfigError, DataError
from xcatrec.training import (FactorNet, KerasRecommender, NegativeSampler, Negatives, Rows, Validation,
                              numpy_weights, rating_validation)
from xcatrec.training.config import TrainConfig
from xcatrec.training.losses import RANKING_LOSSES, check_loss, loss_columns

#: The ranking losses (implicit feedback) and ``"mse"`` (ratings).
LOSSES = (*RANKING_LOSSES, "mse")


@dataclass(frozen=True)
class FactorConfig(TrainConfig):
    """Hyper-parameters of the matrix factorisation inside CMF, EMCDR and PTUPCDR.

    ``patience`` defaults to 8: validation NDCG@10 on 3,000 Amazon Clothing users rests on a dozen hits
    and is noisy; with patience 4 the target factorisation stopped at epoch 7 (valid NDCG 0.0037), with
    8 at epoch 25 (best 0.0052).

    Args:
        dim: Latent factors per user and item.
        loss: A ranking loss for implicit feedback (``"bpr"``, ``"softmax"``, ...; see
            :data:`~xcatrec.training.losses.RANKING_LOSSES`) or ``"mse"`` (ratings; needs a data set
            with ratings).
        reg: L2 penalty per training row on the factors (and biases) the row touches; ``None`` picks
            the method's default for the loss (:attr:`default_reg`: 0.1 for BPR, 0.3 for MSE, chosen
            on the validation splits of Amazon Clothing and Douban Music; a ranking loss without an
            entry uses BPR's).
        init_std: Standard deviation of the normal initialisation of the factors.
        negatives: Uniform negatives drawn per row for a ranking loss.
    """

    epochs: int = 40
    learning_rate: float = 5e-3
    patience: int = 8
    dim: int = 64
    loss: str = "bpr"
    reg: float | None = None
    init_std: float = 0.01
    negatives: int = 1
    #: L2 weight per loss when ``reg`` is ``None`` (not a field; a method's config may override it).
    default_reg: ClassVar[dict[str, float]] = {"bpr": 0.1, "mse": 0.3}
    #: ``negatives`` came with the softmax losses; one negative per row is how every earlier run trained.
    added_fields: ClassVar[dict[str, Any]] = {"negatives": 1}

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.dim < 1:
            raise ConfigError(f"dim must be at least 1, got {self.dim}.", "Pass dim=64, for example.")
        check_loss(self.loss, LOSSES)
        if self.negatives < 1:
            raise ConfigError(f"negatives must be at least 1, got {self.negatives}.", "Pass negatives=1, for example.")
        if (self.reg is not None and self.reg < 0) or self.init_std <= 0:
            raise ConfigError(f"reg must be >= 0 and init_std > 0, got {self.reg} and {self.init_std}.",
                              "Pass reg=0.1, init_std=0.01, for example.")

    @property
    def l2(self) -> float:
        """The L2 weight in use: ``reg``, or the loss's default when ``reg`` is ``None``."""
        if self.reg is not None:
            return float(self.reg)
        return self.default_reg.get(self.loss, self.default_reg["bpr"])


def rating_mean(rows: Interactions, loss: str, what: str) -> float:
    """Mean training rating of one domain's rows for ``loss="mse"`` (0 for a ranking loss).

    Raises:
        DataError: ``loss="mse"`` and the rows have no ratings.
    """
    if loss != "mse":
        return 0.0
    if rows.ratings is None:
        raise DataError(f"loss='mse' needs ratings, but the {what} rows have none (implicit feedback).",
                        "Use a ranking loss (e.g. loss='bpr') for implicit data, or a data set with ratings "
                        "(e.g. Douban).")
    return float(rows.ratings.mean())


def domain_rows(dataset: CrossDomainDataset, domain: str, loss: str, *, users: np.ndarray | None = None,
                offset: int = 0, start: int = 0, centre: bool = True, negatives: int = 1) -> Rows:
    """One domain's training rows for ``loss``.

    Ranking losses: columns ``user``, ``pos``, the loss's own columns
    (:func:`~xcatrec.training.losses.loss_columns`) and ``negatives`` negatives per row drawn each
    epoch from the items the user has no training row with. MSE: columns ``user``, ``item``,
    ``rating`` (centred on the domain's mean training rating unless ``centre`` is false).

    Args:
        users: Only the rows of these users.
        offset: Added to every item index (a joint item space: source items after target items).
        start: Index of the first of these rows in the phase's rows (where the negatives go).
    """
    train = dataset.domain(domain).train
    mean = rating_mean(train, loss, domain)
    rows = train if users is None else train.subset(np.isin(train.users, users))
    if loss != "mse":
        sampler = NegativeSampler(dataset.matrix(domain, "train"))
        extra = loss_columns(loss, rows.items, dataset.domain(domain).n_items, negatives)
        return Rows({"user": rows.users, "pos": rows.items + offset, **extra},
                    (Negatives(sampler, rows.users, start=start, per_row=negatives, offset=offset),))
    ratings = rows.ratings - np.float32(mean) if centre else rows.ratings
    return Rows({"user": rows.users, "item": rows.items + offset, "rating": ratings})


def domain_factors(state: dict[str, np.ndarray], mean: float = 0.0, items: slice = slice(None)) -> Factors:
    """Factors of the item rows ``items`` from the exported weights of a
    :class:`~xcatrec.training.layers.FactorNet` (:func:`~xcatrec.training.layers.numpy_weights`).

    With ``loss="mse"`` (the weights have a ``user_bias``), the user bias becomes the last user factor
    column, items get a column of ones and ``mean`` is added to the item bias (see the module docstring).
    """
    users, item_f, item_b = state["user_embedding"], state["item_embedding"][items], state["item_bias"][items]
    if "user_bias" in state:
        users = np.hstack([users, state["user_bias"][:, None]])
        item_f = np.hstack([item_f, np.ones((len(item_f), 1), np.float32)])
        item_b = item_b + np.float32(mean)
    return Factors(np.ascontiguousarray(users, np.float32), np.ascontiguousarray(item_f, np.float32),
                   np.ascontiguousarray(item_b, np.float32))


def split_users(users: np.ndarray, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Sorted ``(train, held_out)`` users: a random ``fraction`` held out (none when fewer than 10 users)."""
    n_held = int(round(fraction * len(users))) if len(users) >= 10 else 0
    order = np.random.default_rng([seed, 31]).permutation(users)
    return np.sort(order[n_held:]), np.sort(order[:n_held])


class RatingFactorModel(KerasRecommender, FactorModel):
    """Base of the family (see the module docstring); :attr:`rating_range` holds the lowest and highest
    target training rating (``None`` after training with a ranking loss), to which predicted ratings are clipped."""

    rating_range: np.ndarray | None = None
    means: dict[str, float]  # mean training rating per domain (0 for BPR), set in setup

    def setup(self, dataset: CrossDomainDataset) -> None:
        loss, ratings = self.config.loss, dataset.target.train.ratings
        self.means = {d: rating_mean(dataset.domain(d).train, loss, d) for d in ("target", "source")}
        self.rating_range = None if loss != "mse" else np.array([ratings.min(), ratings.max()], np.float32)

    def build(self, phase: Phase, dataset: CrossDomainDataset) -> keras.Model:
        """A :class:`~xcatrec.training.layers.FactorNet` over the items of ``phase.data`` (a domain)."""
        return self.factor_net(dataset.domain(phase.data).n_items)

    def rows(self, phase: Phase, dataset: CrossDomainDataset) -> Rows:
        """The training rows of the domain ``phase.data`` (:func:`domain_rows`)."""
        return domain_rows(dataset, phase.data, self.config.loss, negatives=self.config.negatives)

    def factor_net(self, n_items: int) -> FactorNet:
        """The family's factorisation network over ``n_items`` items, with this config's settings."""
        cfg = self.config
        return FactorNet(self.sizes.n_users, n_items, dim=cfg.dim, loss=cfg.loss, reg=cfg.l2,
                         init_std=cfg.init_std, seed=cfg.seed)

    def validation(self, phase: Phase, dataset: CrossDomainDataset) -> Validation | None:
        """NDCG@10 (ranking losses) or minus the RMSE of predicted ratings (MSE) on the target valid split."""
        if self.config.loss == "mse":
            return rating_validation(self, dataset)
        return super().validation(phase, dataset)

    def predict_ratings(self, users, items) -> np.ndarray:
        """Predicted rating of each ``(users[k], items[k])`` pair, clipped to the training range.

        Raises:
            ConfigError: The model was trained with a ranking loss (its scores are not ratings).
            UnknownIdError: An index is out of range.
        """
        users = self._check_ids(users, self.sizes.n_users, "user")
        items = self._check_ids(items, self.sizes.n_target_items, "item")
        if users.shape != items.shape:
            raise ConfigError(f"predict_ratings needs one item per user, got {len(users)} users and "
                              f"{len(items)} items.", "Pass two arrays of the same length (pairs).")
        user_f, item_f = self._factors()
        if self.rating_range is None:
            raise ConfigError(f"This {self.name} model was trained with loss={self.config.loss!r}, so its "
                              "scores are not ratings.", "Train it with loss='mse' on a data set with ratings.")
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


@dataclass(frozen=True)
class BridgeConfig(FactorConfig):
    """Hyper-parameters shared by EMCDR and PTUPCDR (plus those of :class:`FactorConfig`).

    Args:
        source_epochs: Epochs of the source factorisation (no validation split there: all run).
        valid_fraction: Fraction of the overlapping users held out of the bridge phase to early-stop
            it. Their target train rows still trained the target factors, so this is a stopping rule,
            not a cold-start estimate: choose ``reg`` on the target-mf validation.
        warm_blend: Warm users score with ``(1 - warm_blend) * target factor + warm_blend * bridged
            factor``; 0 keeps the target factor, as in the papers.
    """

    source_epochs: int = 20
    valid_fraction: float = 0.1
    warm_blend: float = 0.0

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.source_epochs < 1:
            raise ConfigError(f"source_epochs must be at least 1, got {self.source_epochs}.",
                              "Pass source_epochs=1 or more.")
        if not 0 <= self.valid_fraction < 1 or not 0 <= self.warm_blend <= 1:
            raise ConfigError(f"valid_fraction must be in [0, 1) and warm_blend in [0, 1], got "
                              f"{self.valid_fraction} and {self.warm_blend}.", "Pass 0.1 and 0.0, for example.")


class BridgeModel(RatingFactorModel):
    """Base of the methods that carry users from the source to the target domain (EMCDR, PTUPCDR).

    Phases ``source-mf`` and ``target-mf`` factorise each domain and keep :attr:`source_user_factors`
    and :attr:`target_user_factors` (this class's :meth:`export`); the last phase, the subclass's own,
    learns a bridge from the first to the second on the overlapping users (training rows in both
    domains), ``valid_fraction`` of them held out to early-stop it, and ends with :meth:`serve`.
    """

    source_user_factors: np.ndarray | None = None
    source_item_factors: np.ndarray | None = None  # read by PTUPCDR's bridge, not by EMCDR's
    target_user_factors: np.ndarray | None = None

    def setup(self, dataset: CrossDomainDataset) -> None:
        super().setup(dataset)
        has_src = np.bincount(dataset.source.train.users, minlength=dataset.n_users) > 0
        self._has_tgt = np.bincount(dataset.target.train.users, minlength=dataset.n_users) > 0
        self._sourced = np.flatnonzero(has_src)  # the users the bridge serves
        overlap = np.flatnonzero(has_src & self._has_tgt)
        if len(overlap) == 0:
            raise DataError(f"{self.name} needs users with source and target training rows to learn its "
                            f"{self.phases[-1].name!r} phase, but there are none.",
                            "Use a data set whose domains share users.")
        self._bridge_train, self._bridge_held = split_users(overlap, self.config.valid_fraction, self.config.seed)

    def export(self, phase: Phase, net: keras.Model) -> dict[str, np.ndarray]:
        """The factorisation phases: keep the source factors, or score with the target ones."""
        factors = domain_factors(numpy_weights(net), self.means[phase.data])
        if phase.data == "source":
            self.source_user_factors, self.source_item_factors = factors.user_factors, factors.item_factors
            return {"source_user_factors": factors.user_factors, "source_item_factors": factors.item_factors}
        self.set_factors(factors)
        self.target_user_factors = factors.user_factors
        return {"target_user_factors": factors.user_factors, "item_factors": factors.item_factors,
                "item_bias": factors.item_bias}

    def serve(self, bridged: np.ndarray) -> None:
        """Score with the target user factors, except for the users with a source history (``bridged``
        holds their bridged factors, in user order): cold users get the bridged factor, warm users
        ``(1 - warm_blend) * target + warm_blend * bridged``."""
        users, warm, blend = self._sourced, self._has_tgt[self._sourced], np.float32(self.config.warm_blend)
        out = self.target_user_factors.copy()
        out[users[~warm]] = bridged[~warm]
        out[users[warm]] = (1 - blend) * out[users[warm]] + blend * bridged[warm]
        self.user_factors = out

    def get_state(self) -> dict[str, np.ndarray]:
        return {**super().get_state(), "source_user_factors": self.source_user_factors,
                "target_user_factors": self.target_user_factors}

    def set_state(self, state: dict[str, np.ndarray]) -> None:
        names = ["source_user_factors", "target_user_factors"]
        arrays = saved_arrays(self.name, state, names, dict.fromkeys(names, self.sizes.n_users))
        super().set_state(state)
        self.source_user_factors, self.target_user_factors = arrays[names[0]], arrays[names[1]]
