"""xcatrec: cross-category recommendation by transfer learning.

Nothing here downloads, trains or reads files at import time. Start with
:func:`xcatrec.data.load_dataset` and :mod:`xcatrec.models`.
"""

__version__ = "0.1.0"
