"""A large synthetic two-category marketplace, generated user block by user block.

:func:`~xcatrec.data.synthetic.make_synthetic` holds dense ``users x items`` preference matrices
(100,000 users x 10,000 items is already 4 GB), so it cannot make the millions of rows a cost-growth
benchmark needs. This generator keeps the same kind of ground truth (a user's taste in each category
mixes a shared and a category-specific vector by ``rho``; an item has latent attributes; preference
is their scaled dot product; popularity follows a power law) but never forms a dense matrix:

* Users are generated in blocks. Each user considers ``candidates`` items drawn by popularity (with
  replacement) and picks the ``1 + Poisson(per_user - 1)`` best of them by
  ``preference / temperature + Gumbel noise`` (a consideration set, then a choice by taste), so the
  work per user is ``candidates x dim`` whatever the catalogue's size. Repeated picks of one item are
  dropped.
* Taste vectors and item attributes are kept (``users x dim`` and ``items x dim``), so the true
  preference of any user for any items is computed on demand (:meth:`LargeMarketplace.preference`).
* :func:`catalogue_sizes` grows users linearly with the rows and items sub-linearly (Heaps' law,
  ``items ~ rows ** 0.75``), as real catalogues do: more users mostly buy the same items more often.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from xcatrec.data.splits import leave_one_out
from xcatrec.data.types import CrossDomainDataset, Domain, Interactions, Vocab
from xcatrec.data.validation import carve_validation
from xcatrec.errors import ConfigError


@dataclass(frozen=True)
class LargeConfig:
    """Settings of :func:`make_large_synthetic` (see the module docstring for the model).

    Args:
        n_users: Users (all active in both categories).
        n_source_items: Items of the source category.
        n_target_items: Items of the target category.
        source_per_user: Mean rows of a user in the source category (>= 1).
        target_per_user: Mean rows of a user in the target category (>= 1).
        dim: Latent dimensions.
        rho: Relatedness of the categories, in [0, 1].
        popularity: Power-law exponent of item popularity.
        temperature: Softmax temperature of the choice among the considered items.
        candidates: Items a user considers per category (>= the most rows a user can have).
        block: Users generated at once (memory grows with ``block x candidates``).
        seed: Seed of every draw.
    """

    n_users: int
    n_source_items: int
    n_target_items: int
    source_per_user: float = 12.0
    target_per_user: float = 4.0
    dim: int = 16
    rho: float = 0.5
    popularity: float = 0.8
    temperature: float = 0.5
    candidates: int = 64
    block: int = 50_000
    seed: int = 0

    def __post_init__(self) -> None:
        ok = (self.n_users >= 2 and min(self.n_source_items, self.n_target_items) >= 2 and self.dim >= 1
              and 0 <= self.rho <= 1 and min(self.source_per_user, self.target_per_user) >= 1
              and self.temperature > 0 and self.block >= 1
              and self.candidates >= 4 * max(self.source_per_user, self.target_per_user))
        if not ok:
            raise ConfigError(f"Invalid LargeConfig {self!r}.",
                              "Sizes >= 2, dim >= 1, rho in [0, 1], per_user >= 1, temperature > 0, "
                              "block >= 1, candidates >= 4 x the larger per_user.")


def catalogue_sizes(rows: int, *, per_user: float = 16.0, items_per_rows: float = 2.0,
                    exponent: float = 0.75) -> tuple[int, int, int]:
    """Users, source items and target items of a marketplace of about ``rows`` interactions.

    Users grow linearly (``rows / per_user``); items as ``items_per_rows * rows ** exponent`` (Heaps'
    law), three fifths in the source category.
    """
    if rows < 1000:
        raise ConfigError(f"rows = {rows} is too small for a catalogue.", "Use at least 1000 rows.")
    items = items_per_rows * rows ** exponent
    return int(rows / per_user), int(0.6 * items), int(0.4 * items)


@dataclass(frozen=True, eq=False)
class LargeMarketplace:
    """What :func:`make_large_synthetic` returns: the data set and the ground truth behind it."""

    config: LargeConfig
    dataset: CrossDomainDataset
    tastes: dict[str, np.ndarray]
    attributes: dict[str, np.ndarray]

    def preference(self, role: str, users: np.ndarray, items: np.ndarray | None = None) -> np.ndarray:
        """True preference ``(len(users), items)`` of ``users`` in category ``role`` (all items if ``None``)."""
        v = self.attributes[role] if items is None else self.attributes[role][items]
        return self.tastes[role][users] @ v.T / np.sqrt(self.config.dim)


def _choose(taste: np.ndarray, attrs: np.ndarray, cum_pop: np.ndarray, counts: np.ndarray, cfg: LargeConfig,
            rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Each user's picks (user offsets within the block, items) from a popularity-drawn consideration set."""
    n = len(taste)
    cand = np.searchsorted(cum_pop, rng.random((n, cfg.candidates)) * cum_pop[-1])
    cand = np.minimum(cand, len(cum_pop) - 1)
    pref = np.einsum("ud,ucd->uc", taste, attrs[cand]) / np.sqrt(cfg.dim)
    keys = pref / cfg.temperature + rng.gumbel(size=pref.shape)
    order = np.argsort(-keys, axis=1)
    take = np.arange(cfg.candidates)[None, :] < counts[:, None]
    u, pos = np.nonzero(take)
    items = cand[u, order[u, pos]]
    keep = np.unique(u * len(cum_pop) + items, return_index=True)[1]  # drop repeated picks
    keep.sort()
    return u[keep], items[keep]


def make_large_synthetic(config: LargeConfig, *, progress=None) -> LargeMarketplace:
    """Generate the marketplace block by block, then split it as :func:`make_synthetic` does.

    Args:
        config: The settings.
        progress: Optional callable receiving ``(users done, users)`` after each block.
    """
    cfg = config
    rng = np.random.default_rng(cfg.seed)
    sizes = {"source": cfg.n_source_items, "target": cfg.n_target_items}
    means = {"source": cfg.source_per_user, "target": cfg.target_per_user}
    attributes = {r: rng.standard_normal((m, cfg.dim)).astype(np.float32) for r, m in sizes.items()}
    cum_pop = {r: np.cumsum((1.0 + rng.permutation(m)) ** -cfg.popularity) for r, m in sizes.items()}
    tastes = {r: np.empty((cfg.n_users, cfg.dim), np.float32) for r in sizes}
    parts: dict[str, list[tuple[np.ndarray, np.ndarray]]] = {r: [] for r in sizes}
    for lo in range(0, cfg.n_users, cfg.block):
        n = min(cfg.block, cfg.n_users - lo)
        shared = rng.standard_normal((n, cfg.dim))
        for role in sizes:
            taste = np.sqrt(cfg.rho) * shared + np.sqrt(1 - cfg.rho) * rng.standard_normal((n, cfg.dim))
            tastes[role][lo:lo + n] = taste
            counts = np.minimum(1 + rng.poisson(means[role] - 1, n), cfg.candidates)
            u, items = _choose(taste.astype(np.float32), attributes[role], cum_pop[role], counts, cfg, rng)
            parts[role].append((u + lo, items))
        if progress is not None:
            progress(lo + n, cfg.n_users)
    domains = []
    for role, m in sizes.items():
        users = np.concatenate([p[0] for p in parts[role]])
        items = np.concatenate([p[1] for p in parts[role]])
        parts[role].clear()
        times = 1_400_000_000 + rng.integers(0, 365 * 86_400, len(users))
        rows = Interactions(users, items, timestamps=times)
        empty = rows.subset(np.zeros(len(rows), bool))
        domains.append(Domain(role, Vocab.range(m, "item"), rows, empty, empty))
    ds = CrossDomainDataset("synthetic-large", Vocab.range(cfg.n_users, "user"), domains[0], domains[1], "none",
                            info={"dataset": "synthetic-large", "seed": cfg.seed})
    ds = carve_validation(leave_one_out(ds, seed=cfg.seed), seed=cfg.seed)
    return LargeMarketplace(cfg, ds, tastes, attributes)
