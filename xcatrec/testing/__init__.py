"""Tools to check a recommender against the model contract: the conformance suite (pytest) and the
small hand-made data sets it trains on. Not imported by the rest of the package."""

from xcatrec.testing.datasets import make_tiny_dataset, with_cold_users, with_ratings
from xcatrec.testing.conformance import RecommenderConformance

__all__ = ["RecommenderConformance", "make_tiny_dataset", "with_cold_users", "with_ratings"]
