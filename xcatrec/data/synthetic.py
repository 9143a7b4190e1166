"""A synthetic two-category marketplace with known ground truth and a relatedness knob ``rho``.

Generative story (all draws from one seeded generator):

* Each user has a shared taste vector ``z`` and one category-specific vector per domain (``c_s``,
  ``c_t``), all standard normal in ``dim`` dimensions. The taste in a domain mixes them by the
  relatedness ``rho``: ``u_s = sqrt(rho) z + sqrt(1 - rho) c_s`` and ``u_t = sqrt(rho) z + sqrt(1 - rho) c_t``,
  so the correlation of a user's two tastes is ``rho``: ``rho = 1`` is identical taste, ``rho = 0``
  makes target preferences independent of source ones.
* Each item has latent attributes ``v`` (standard normal); the true preference of user ``u`` for an
  item is ``u . v / sqrt(dim)``.
* Item popularity follows a power law: the item of popularity rank ``r`` has weight ``r ** -popularity``.
* A user active in a domain draws ``1 + Poisson(per_user - 1)`` distinct items without replacement
  from ``softmax(true / temperature + log popularity weight)`` (Gumbel top-k).
* A fraction ``overlap`` of users is active in both domains; the rest are split evenly between
  source-only and target-only users. Rows get random timestamps within one year.
* Optional 28x28 grey images render each item's attributes: stripe orientation, stripe frequency,
  brightness, the blob's x and y position and its width encode ``sigmoid(v)`` of the first six
  dimensions, so a CNN can recover item attributes from pixels.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields

import numpy as np

from xcatrec.data.splits import leave_one_out
from xcatrec.data.types import CrossDomainDataset, Domain, Interactions, Vocab
from xcatrec.data.validation import carve_validation
from xcatrec.errors import ConfigError

IMAGE_SIZE = 28


@dataclass(frozen=True)
class SyntheticConfig:
    """Settings of :func:`make_synthetic` (see the module docstring for the model).

    Args:
        n_users: Users.
        n_source_items: Items in the source domain.
        n_target_items: Items in the target domain.
        dim: Latent dimensions of tastes and item attributes (images encode the first six).
        rho: Relatedness of the two categories, in [0, 1].
        overlap: Fraction of users active in both domains, in [0, 1].
        source_per_user: Mean interactions of an active user in the source domain (>= 1).
        target_per_user: Mean interactions of an active user in the target domain (>= 1).
        popularity: Power-law exponent of item popularity (0 = no popularity bias).
        temperature: Softmax temperature of choices (lower follows taste more closely).
        images: Render item images.
        image_noise: Standard deviation of pixel noise.
        seed: Seed of every draw.
    """

    n_users: int = 2000
    n_source_items: int = 500
    n_target_items: int = 500
    dim: int = 6
    rho: float = 0.5
    overlap: float = 1.0
    source_per_user: float = 20.0
    target_per_user: float = 6.0
    popularity: float = 0.8
    temperature: float = 0.5
    images: bool = True
    image_noise: float = 0.05
    seed: int = 0

    def __post_init__(self) -> None:
        checks = [("n_users", self.n_users >= 2), ("n_source_items", self.n_source_items >= 2),
                  ("n_target_items", self.n_target_items >= 2), ("dim", self.dim >= 1),
                  ("rho", 0.0 <= self.rho <= 1.0), ("overlap", 0.0 <= self.overlap <= 1.0),
                  ("source_per_user", self.source_per_user >= 1), ("target_per_user", self.target_per_user >= 1),
                  ("popularity", self.popularity >= 0), ("temperature", self.temperature > 0),
                  ("image_noise", self.image_noise >= 0)]
        for name, ok in checks:
            if not ok:
                raise ConfigError(f"Invalid SyntheticConfig.{name} = {getattr(self, name)!r}.",
                                  "Sizes >= 2, dim >= 1, rho and overlap in [0, 1], per_user >= 1, "
                                  "popularity >= 0, temperature > 0.")

    @classmethod
    def from_options(cls, **options) -> "SyntheticConfig":
        """Build from keyword options; unknown names raise :class:`ConfigError` listing the valid ones."""
        names = {f.name for f in fields(cls)}
        unknown = sorted(set(options) - names)
        if unknown:
            raise ConfigError(f"Unknown synthetic option(s) {unknown}.", f"Use any of {sorted(names)}.")
        return cls(**options)

    def replace(self, **changes) -> "SyntheticConfig":
        """A copy with some fields changed."""
        return self.from_options(**{**asdict(self), **changes})


@dataclass(frozen=True, eq=False)
class SyntheticMarketplace:
    """What :func:`make_synthetic` returns: the data set and the ground truth behind it.

    Attributes:
        config: The settings used.
        dataset: Split ``"loo"`` with a target validation split (seed ``config.seed``).
        true_scores_source: ``(n_users, n_source_items)`` float32 true preference.
        true_scores_target: ``(n_users, n_target_items)`` float32 true preference.
        user_taste_source: ``(n_users, dim)`` taste vectors in the source domain.
        user_taste_target: ``(n_users, dim)`` taste vectors in the target domain.
        item_attributes_source: ``(n_source_items, dim)`` latent attributes ``v``.
        item_attributes_target: ``(n_target_items, dim)`` latent attributes ``v``.
        popularity_source: ``(n_source_items,)`` popularity weights (max 1).
        popularity_target: ``(n_target_items,)`` popularity weights (max 1).
        images_source: ``(n_source_items, 28, 28, 1)`` float32 in [0, 1], or ``None``.
        images_target: ``(n_target_items, 28, 28, 1)`` float32 in [0, 1], or ``None``.
    """

    config: SyntheticConfig
    dataset: CrossDomainDataset
    true_scores_source: np.ndarray
    true_scores_target: np.ndarray
    user_taste_source: np.ndarray
    user_taste_target: np.ndarray
    item_attributes_source: np.ndarray
    item_attributes_target: np.ndarray
    popularity_source: np.ndarray
    popularity_target: np.ndarray
    images_source: np.ndarray | None = None
    images_target: np.ndarray | None = None

    @property
    def item_attributes(self) -> dict[str, np.ndarray]:
        """Item attributes by role: ``{"source": ..., "target": ...}``."""
        return {"source": self.item_attributes_source, "target": self.item_attributes_target}


def render_items(attributes: np.ndarray, rng: np.random.Generator, noise: float = 0.05) -> np.ndarray:
    """Render ``(n, 28, 28, 1)`` float32 images in [0, 1] from latent attributes (first six used)."""
    a = np.full((len(attributes), 6), 0.5)
    k = min(6, attributes.shape[1])
    a[:, :k] = 1.0 / (1.0 + np.exp(-attributes[:, :k]))
    theta, freq = 0.9 * np.pi * a[:, 0], 2.0 + 6.0 * a[:, 1]
    bright, cx, cy, width = 0.35 + 0.65 * a[:, 2], 0.3 + 0.4 * a[:, 3], 0.3 + 0.4 * a[:, 4], 0.15 + 0.25 * a[:, 5]
    grid = (np.arange(IMAGE_SIZE) + 0.5) / IMAGE_SIZE
    col = lambda v: v[:, None, None]  # noqa: E731
    dx, dy = grid[None, None, :] - col(cx), grid[None, :, None] - col(cy)
    stripes = 0.5 + 0.5 * np.cos(2 * np.pi * col(freq) * (dx * col(np.cos(theta)) + dy * col(np.sin(theta))))
    envelope = np.exp(-(dx ** 2 + dy ** 2) / (2 * col(width) ** 2))
    img = col(bright) * envelope * stripes + noise * rng.standard_normal(envelope.shape)
    return np.clip(img, 0.0, 1.0).astype(np.float32)[..., None]


def _sample(true: np.ndarray, log_pop: np.ndarray, counts: np.ndarray, temperature: float,
            rng: np.random.Generator, chunk: int = 4096) -> tuple[np.ndarray, np.ndarray]:
    """Draw ``counts[u]`` distinct items per user by Gumbel top-k over the choice logits (chunked)."""
    users, items = [], []
    for lo in range(0, len(true), chunk):
        keys = true[lo:lo + chunk] / temperature + log_pop + rng.gumbel(size=true[lo:lo + chunk].shape)
        order = np.argsort(-keys, axis=1)
        take = np.arange(true.shape[1])[None, :] < counts[lo:lo + chunk, None]
        u, pos = np.nonzero(take)
        users.append(u + lo)
        items.append(order[u, pos])
    return np.concatenate(users), np.concatenate(items)


def make_synthetic(config: SyntheticConfig | None = None) -> SyntheticMarketplace:
    """Generate a marketplace (fast: the default size takes well under a second)."""
    cfg = config or SyntheticConfig()
    rng = np.random.default_rng(cfg.seed)
    n, d = cfg.n_users, cfg.dim
    shared = rng.standard_normal((n, d))
    tastes = [np.sqrt(cfg.rho) * shared + np.sqrt(1 - cfg.rho) * rng.standard_normal((n, d)) for _ in range(2)]
    n_items = (cfg.n_source_items, cfg.n_target_items)
    attrs = [rng.standard_normal((m, d)) for m in n_items]
    true = [(u @ v.T / np.sqrt(d)).astype(np.float32) for u, v in zip(tastes, attrs)]
    pops = [(1.0 + rng.permutation(m)) ** -cfg.popularity for m in n_items]
    # who is active where: the first n_both users of a random order in both, the rest alternate
    order = rng.permutation(n)
    n_both = int(round(cfg.overlap * n))
    rest = np.arange(n - n_both)
    active_src, active_tgt = np.zeros(n, bool), np.zeros(n, bool)
    active_src[order[:n_both]] = active_tgt[order[:n_both]] = True
    active_src[order[n_both:][rest % 2 == 0]] = True
    active_tgt[order[n_both:][rest % 2 == 1]] = True
    domains = []
    images = [render_items(v, rng, cfg.image_noise) if cfg.images else None for v in attrs]
    for role, m, mean, active, t, p, pictures in zip(("source", "target"), n_items,
                                                     (cfg.source_per_user, cfg.target_per_user),
                                                     (active_src, active_tgt), true, pops, images):
        counts = np.where(active, np.minimum(1 + rng.poisson(mean - 1, n), m), 0)
        users, items = _sample(t, np.log(p), counts, cfg.temperature, rng)
        times = 1_400_000_000 + rng.integers(0, 365 * 86_400, len(users))
        rows = Interactions(users, items, timestamps=times)
        empty = rows.subset(np.zeros(len(rows), bool))
        domains.append(Domain(role, Vocab.range(m, "item"), rows, empty, empty, images=pictures))
    ds = CrossDomainDataset("synthetic", Vocab.range(n, "user"), domains[0], domains[1], "none",
                            info={"dataset": "synthetic", "seed": cfg.seed, "synthetic": asdict(cfg)})
    ds = carve_validation(leave_one_out(ds, seed=cfg.seed), seed=cfg.seed)
    return SyntheticMarketplace(cfg, ds, true[0], true[1], tastes[0], tastes[1], attrs[0], attrs[1],
                                pops[0], pops[1], images[0], images[1])
