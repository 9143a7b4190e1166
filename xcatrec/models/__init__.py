"""All recommendation methods behind one contract (:class:`xcatrec.core.base.Recommender`).

Methods are looked up in the explicit registry :data:`METHODS` (no import by string). Build one with
:func:`make_model`, which turns keyword options into the method's frozen config.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator, Mapping
from dataclasses import fields
from typing import Any

from xcatrec.core.base import FitReport, ModelConfig, Phase, Recommender
from xcatrec.data.types import DatasetSizes
from xcatrec.errors import ConfigError
from xcatrec.names import LEARNED_TRANSFER, PEERS, TARGET_ONLY, TRANSFER  # re-exported

#: Each method's module and class; a module is imported the first time its method is looked up, so
#: serving an EASE model never loads TensorFlow.
_REGISTRY: dict[str, tuple[str, str]] = {
    "popularity": ("popularity", "Popularity"),
    "bpr-mf": ("bpr_mf", "BPRMF"),
    "itemknn": ("itemknn", "ItemKNN"),
    "ease": ("ease", "EASE"),
    "implicit-ials": ("implicit_als", "ImplicitALS"),
    "cross-itemknn": ("cross_itemknn", "CrossItemKNN"),
    "joint-ease": ("joint_ease", "JointEASE"),
    "joint-ials": ("joint_ials", "JointALS"),
    "source-only": ("cross_itemknn", "SourceOnlyKNN"),
    "seed-cnn": ("seed_cnn", "SeedCNN"),
    "finetune": ("finetune", "Finetune"),
    "shared-bottom": ("shared_bottom", "SharedBottom"),
    "cmf": ("cmf", "CMF"),
    "emcdr": ("emcdr", "EMCDR"),
    "ptupcdr": ("ptupcdr", "PTUPCDR"),
    "conet": ("conet", "CoNet"),
    "dann": ("dann", "DANN"),
    "item-mean": ("item_mean", "ItemMean"),
}

#: The classes (and their configs) this package exports, by the module that defines them.
_CLASSES: dict[str, str] = {
    **{cls: module for module, cls in _REGISTRY.values()},
    **{cls + "Config": module for module, cls in _REGISTRY.values() if cls != "SourceOnlyKNN"},
    "TrainConfig": "xcatrec.training.config",
}


def _load(module: str, name: str) -> Any:
    return getattr(importlib.import_module(module if "." in module else f"xcatrec.models.{module}"), name)


class _Methods(Mapping):
    """Method name -> Recommender class, a read-only mapping that imports a method's module on lookup.

    Names, ``in`` and ``len`` cost nothing; ``METHODS["ease"]`` imports only :mod:`xcatrec.models.ease`,
    while ``values()`` and ``items()`` import every method (TensorFlow with them).
    """

    def __getitem__(self, name: str) -> type[Recommender]:
        return _load(*_REGISTRY[name])

    def __iter__(self) -> Iterator[str]:
        return iter(_REGISTRY)

    def __len__(self) -> int:
        return len(_REGISTRY)

    def __repr__(self) -> str:
        return "{" + ", ".join(f"{name!r}: {cls}" for name, (_, cls) in _REGISTRY.items()) + "}"


#: Every method, by name: ``METHODS["ease"]`` is :class:`~xcatrec.models.ease.EASE`.
METHODS: Mapping[str, type[Recommender]] = _Methods()


def __getattr__(name: str) -> Any:
    """``from xcatrec.models import BPRMF`` imports :mod:`xcatrec.models.bpr_mf` then (PEP 562)."""
    if name in _CLASSES:
        return _load(_CLASSES[name], name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_CLASSES))


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


__all__ = ["METHODS", "TARGET_ONLY", "TRANSFER", "LEARNED_TRANSFER", "PEERS", "make_model", "Recommender", "ModelConfig", "TrainConfig", "FitReport", "Phase",
           "Popularity", "PopularityConfig", "BPRMF", "BPRMFConfig", "ItemKNN", "ItemKNNConfig",
           "CrossItemKNN", "CrossItemKNNConfig", "SourceOnlyKNN", "SeedCNN", "SeedCNNConfig",
           "Finetune", "FinetuneConfig", "SharedBottom", "SharedBottomConfig", "CMF", "CMFConfig", "EMCDR",
           "EMCDRConfig", "PTUPCDR", "PTUPCDRConfig", "CoNet", "CoNetConfig", "DANN", "DANNConfig", "ItemMean",
           "ItemMeanConfig", "EASE", "EASEConfig", "ImplicitALS", "ImplicitALSConfig",
           "JointEASE", "JointEASEConfig", "JointALS", "JointALSConfig"]
