"""Data: the registry of public data sets, download and verification, readers, cleaning, splits,
loaders into :class:`CrossDomainDataset`, statistics and a synthetic marketplace.

Nothing here reads files or downloads at import time.

Typical use::

    from xcatrec.data import load_dataset, dataset_stats
    ds = load_dataset("amazon-elec-cloth")            # Electronics -> Clothing, published split + valid
    ds = load_dataset("douban-book-music", split="cold-start", beta=0.5, seed=1)
    dataset_stats(ds)
"""

from xcatrec.data.cleaning import clean, k_core, to_implicit
from xcatrec.data.download import cache_dir, fetch, sha256_file
from xcatrec.data.loaders import apply_split, build_dataset, load_dataset, load_files
from xcatrec.data.leaks import LeakReport, cross_listed_pairs, find_leaks, remove_leaks
from xcatrec.data.readers import read_interactions
from xcatrec.data.registry import DATASETS, DataFile, DatasetSpec, DomainSource, get_spec
from xcatrec.data.splits import SPLITS, cold_start, leave_one_out, random_split, temporal_split, unsplit
from xcatrec.data.summary import dataset_stats, gini
from xcatrec.data.synthetic import SyntheticConfig, SyntheticMarketplace, make_synthetic, render_items
from xcatrec.data.types import CrossDomainDataset, DatasetSizes, Domain, Interactions, Vocab
from xcatrec.data.validation import carve_validation, merge_valid, user_kfold

__all__ = [
    "DATASETS", "SPLITS", "CrossDomainDataset", "DataFile", "DatasetSizes", "DatasetSpec", "Domain",
    "DomainSource", "Interactions", "SyntheticConfig", "SyntheticMarketplace", "Vocab", "apply_split",
    "build_dataset", "cache_dir", "carve_validation", "merge_valid", "clean", "cold_start", "dataset_stats", "gini", "fetch",
    "get_spec", "k_core", "leave_one_out", "load_dataset", "load_files", "make_synthetic", "random_split",
    "read_interactions", "render_items", "sha256_file", "temporal_split", "to_implicit", "unsplit",
    "user_kfold", "LeakReport", "cross_listed_pairs", "find_leaks", "remove_leaks",
]
