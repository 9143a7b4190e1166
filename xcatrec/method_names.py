"""The names of the methods and their groups, importable without TensorFlow.

The command line lists these names in its help and its argument checks; importing
:mod:`xcatrec.models` (which builds the classes) would import TensorFlow and make ``--help`` slow.
:data:`xcatrec.models.METHODS` maps the same names to classes; a test keeps the two in step.
"""

from __future__ import annotations

#: Methods that learn from the target category alone (the references a transfer method must beat).
TARGET_ONLY: tuple[str, ...] = ("popularity", "item-mean", "bpr-mf", "itemknn", "ease")
#: Reference methods from other libraries, run as they are (labelled external peers in every table).
PEERS: tuple[str, ...] = ("implicit-ials",)
#: Methods that use the source category.
TRANSFER: tuple[str, ...] = ("source-only", "cross-itemknn", "finetune", "shared-bottom", "cmf", "emcdr",
                             "ptupcdr", "conet", "dann")
#: Transfer methods with trained parameters.
LEARNED_TRANSFER: tuple[str, ...] = ("finetune", "shared-bottom", "cmf", "emcdr", "ptupcdr", "conet", "dann")
#: Every method name: the groups above and the original article's item classifier.
METHOD_NAMES: tuple[str, ...] = tuple(sorted(TARGET_ONLY + PEERS + TRANSFER + ("seed-cnn",)))
