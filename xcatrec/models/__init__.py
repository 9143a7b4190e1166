"""All recommendation methods behind one contract (:class:`xcatrec.core.base.Recommender`).

Methods are looked up in the explicit registry :data:`METHODS` (no import by string). Build one with
:func:`make_model`, which turns keyword options into the method's frozen config.
"""

from __future__ import annotations

from dataclasses import fields
from typing import Any

from xcatrec.data.types import DatasetSizes
from xcatrec.errors import ConfigError
from xcatrec.core.base import FitReport, ModelConfig, Phase, Recommender
from xcatrec.models.bpr_mf import BPRMF, BPRMFConfig
from xcatrec.models.cmf import CMF, CMFConfig
from xcatrec.models.conet import CoNet, CoNetConfig
from xcatrec.models.cross_itemknn import CrossItemKNN, CrossItemKNNConfig, SourceOnlyKNN
from xcatrec.models.dann import DANN, DANNConfig
from xcatrec.models.ease import EASE, EASEConfig
from xcatrec.models.implicit_als import ImplicitALS, ImplicitALSConfig
from xcatrec.models.joint_ease import JointEASE, JointEASEConfig
from xcatrec.models.joint_ials import JointALS, JointALSConfig
from xcatrec.models.emcdr import EMCDR, EMCDRConfig
from xcatrec.models.finetune import Finetune, FinetuneConfig
from xcatrec.models.item_mean import ItemMean, ItemMeanConfig
from xcatrec.models.itemknn import ItemKNN, ItemKNNConfig
from xcatrec.models.popularity import Popularity, PopularityConfig
from xcatrec.models.ptupcdr import PTUPCDR, PTUPCDRConfig
from xcatrec.models.seed_cnn import SeedCNN, SeedCNNConfig
from xcatrec.models.shared_bottom import SharedBottom, SharedBottomConfig
from xcatrec.training.config import TrainConfig

METHODS: dict[str, type[Recommender]] = {
    "popularity": Popularity,
    "bpr-mf": BPRMF,
    "itemknn": ItemKNN,
    "ease": EASE,
    "implicit-ials": ImplicitALS,
    "cross-itemknn": CrossItemKNN,
    "joint-ease": JointEASE,
    "joint-ials": JointALS,
    "source-only": SourceOnlyKNN,
    "seed-cnn": SeedCNN,
    "finetune": Finetune,
    "shared-bottom": SharedBottom,
    "cmf": CMF,
    "emcdr": EMCDR,
    "ptupcdr": PTUPCDR,
    "conet": CoNet,
    "dann": DANN,
    "item-mean": ItemMean,
}

from xcatrec.names import LEARNED_TRANSFER, PEERS, TARGET_ONLY, TRANSFER  # noqa: E402  (re-exported)

def make_model(method: str, sizes: DatasetSizes, **options: Any) -> Recommender:
    """Build the method named ``method`` for a data set of ``sizes``, with config fields ``options``.

    Args:
        method: A key of :data:`METHODS`, e.g. ``"bpr-mf"``.
        sizes: ``dataset.sizes`` of the data set the model will be trained on.
        **options: Fields of the method's config (e.g. ``epochs=5, dim=32, seed=1``).

    Raises:
        ConfigError: Unknown method or unknown option, naming the valid ones.
    """
    cls = METHODS.get(method)
    if cls is None:
        raise ConfigError(f"Unknown method {method!r}.", f"Use one of {sorted(METHODS)}.")
    names = sorted(f.name for f in fields(cls.config_class))
    unknown = sorted(set(options) - set(names))
    if unknown:
        raise ConfigError(f"Unknown option(s) {unknown} for method {method!r}.", f"Use one of {names}.")
    return cls(sizes, cls.config_class(**options))


__all__ = ["METHODS", "TARGET_ONLY", "TRANSFER", "LEARNED_TRANSFER", "make_model", "Recommender", "ModelConfig", "TrainConfig", "FitReport", "Phase",
           "Popularity", "PopularityConfig", "BPRMF", "BPRMFConfig", "ItemKNN", "ItemKNNConfig",
           "CrossItemKNN", "CrossItemKNNConfig", "SourceOnlyKNN", "SeedCNN", "SeedCNNConfig",
           "Finetune", "FinetuneConfig", "SharedBottom", "SharedBottomConfig", "CMF", "CMFConfig", "EMCDR",
           "EMCDRConfig", "PTUPCDR", "PTUPCDRConfig", "CoNet", "CoNetConfig", "DANN", "DANNConfig", "ItemMean",
           "ItemMeanConfig", "EASE", "EASEConfig", "ImplicitALS", "ImplicitALSConfig",
           "JointEASE", "JointEASEConfig", "JointALS", "JointALSConfig"]
