"""Joint iALS: collective matrix factorisation of both categories, trained by alternating least squares.

Papers: Singh and Gordon, "Relational Learning via Collective Matrix Factorization", KDD 2008 (one user
factor shared by the two categories' matrices), with the implicit-feedback weighting of Hu, Koren and
Volinsky, ICDM 2008, solved by the ``implicit`` library's conjugate-gradient ALS (the solver the
external peer ``implicit-ials`` uses, see :mod:`xcatrec.models.implicit_als`). Taught in the chapter
"Strong simple baselines".

Each user is one row ``z_u = [x_u^target | w * x_u^source]`` of a users x (target + source items)
matrix. iALS minimises, over user factors ``p_u`` and item factors ``q_i`` of both categories (the
objective the library's solver takes its steps on),

    sum_{u,i} c_ui (1[z_ui > 0] - <p_u, q_i>)^2 + reg (sum_u ||p_u||^2 + sum_i ||q_i||^2),
    c_ui = alpha * z_ui where z_ui > 0, else 1,

so a target purchase counts with confidence ``alpha`` and a source purchase with ``alpha * w``:
``w`` (``source_weight``) is the weight of the source block, tuned on validation like CMF's. The
shared ``p_u`` carries what the user's Electronics purchases say into the Clothing scores
``<p_u, q_j>``; a cold-start user's ``p_u`` is fitted from the source row alone. ``w = 0`` drops the
source block: the model is then the target-only iALS.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import scipy.sparse as sp

from xcatrec.core.base import ModelConfig, Phase, check_source_weight
from xcatrec.core.search import Float
from xcatrec.data.types import CrossDomainDataset
from xcatrec.models.implicit_als import ImplicitALS, ImplicitALSConfig


@dataclass(frozen=True)
class JointALSConfig(ImplicitALSConfig):
    """Hyper-parameters of joint iALS: those of :class:`ImplicitALSConfig` plus the source weight.

    Args:
        source_weight: Weight ``w`` of a source purchase relative to a target one (0 = target only).
    """

    source_weight: float = 0.1

    def __post_init__(self) -> None:
        super().__post_init__()
        check_source_weight(self.source_weight, 0.1)


def ials_loss(z: sp.spmatrix, user_factors: np.ndarray, item_factors: np.ndarray, *, alpha: float,
              regularization: float) -> float:
    """The iALS objective above for a weighted users x items matrix ``z`` (dense work: small inputs only)."""
    z = np.asarray(sp.csr_matrix(z).todense(), np.float64)
    user_factors, item_factors = np.asarray(user_factors, np.float64), np.asarray(item_factors, np.float64)
    confidence = np.where(z > 0, alpha * z, 1.0)
    fit = float(np.sum(confidence * ((z > 0) - user_factors @ item_factors.T) ** 2))
    return fit + regularization * float(np.sum(user_factors ** 2) + np.sum(item_factors ** 2))


class JointALS(ImplicitALS):
    """iALS over both categories' items with shared user factors, scoring the target items."""

    name: ClassVar[str] = "joint-ials"
    config_class: ClassVar[type[ModelConfig]] = JointALSConfig
    phases: ClassVar[tuple[Phase, ...]] = (Phase("joint-als", "both"),)
    search_space = {**ImplicitALS.search_space, "source_weight": Float(0.01, 1.0, log=True)}

    def training_matrix(self, dataset: CrossDomainDataset) -> sp.csr_matrix:
        """``[target train | source_weight * source train]`` (just the target matrix when the weight is 0)."""
        target = super().training_matrix(dataset)
        w = float(self.config.source_weight)
        if w == 0:
            return target
        source = dataset.matrix("source", "train").astype(np.float32) * np.float32(w)
        return sp.hstack([target, source], format="csr", dtype=np.float32)
