"""Registry of the named public cross-domain data sets: where their files live and what they hold.

Each entry lists its files (path in the standard local layout, public URL at a pinned commit, sha256),
its licence and citation, and its domains. The standard layout of a local copy is the layout of the
registry paths, e.g. ``amazon-disencdr/electronic_cloth/train.txt``; :func:`xcatrec.data.fetch`
obtains and verifies the files, :func:`xcatrec.data.load_dataset` reads them. ``data/README.md`` is
the human-readable card of the same facts; a test keeps the two in step.
"""

from __future__ import annotations

from dataclasses import dataclass
from types import MappingProxyType

from xcatrec.errors import ConfigError

DISENCDR_URL = "https://raw.githubusercontent.com/cjx96/DisenCDR/4e6d60bad4d5185c99ab60423b48f87f88aa03a3/dataset"
GADTCDR_URL = "https://raw.githubusercontent.com/fengzhu1/GA-DTCDR/11a1dc6fda5148c8b1ce412ed4e2f0c4f124e2d0/Data"


@dataclass(frozen=True)
class DataFile:
    """One public file.

    Args:
        path: Relative path in the standard local layout (``/``-separated).
        url: Public download URL at a pinned commit.
        sha256: Hex digest the downloaded or local file must have.
    """

    path: str
    url: str
    sha256: str


@dataclass(frozen=True)
class DomainSource:
    """Where one domain's data lives inside a data set.

    Args:
        name: Short domain name used in the API (``"elec"``, ``"cloth"``).
        label: Human-readable name (``"Electronics"``).
        train: Relative path of the training (or only) interaction file.
        test: Relative path of the published test file; ``None`` if the data set has no published split.
    """

    name: str
    label: str
    train: str
    test: str | None = None


@dataclass(frozen=True)
class DatasetSpec:
    """A named data set.

    Args:
        name: Registry key.
        description: One line on what the data are.
        domains: The domains; the first one is the default source, the second the default target.
        files: Every file of the data set (empty for generated data).
        licence: Licence of the public copy.
        citation: Papers to cite when using the data.
        home: Human-readable address of the public copy.
        implicit: Whether feedback is implicit (the rating column, if any, is dropped).
        rating_range: Valid ratings (inclusive) for explicit data; rows outside are dropped by cleaning.
    """

    name: str
    description: str
    domains: tuple[DomainSource, ...]
    files: tuple[DataFile, ...] = ()
    licence: str = ""
    citation: str = ""
    home: str = ""
    implicit: bool = True
    rating_range: tuple[float, float] | None = None

    @property
    def domain_names(self) -> tuple[str, ...]:
        return tuple(d.name for d in self.domains)

    @property
    def has_published_split(self) -> bool:
        return bool(self.domains) and all(d.test is not None for d in self.domains)

    def domain(self, name: str) -> DomainSource:
        """The domain called ``name``; raises :class:`ConfigError` listing the valid names."""
        for dom in self.domains:
            if dom.name == name:
                return dom
        raise ConfigError(f"Unknown domain {name!r} for data set {self.name!r}.",
                          f"Use one of {list(self.domain_names)}.")


def _amazon(name: str, first: tuple[str, str, str], second: tuple[str, str, str],
            digests: dict[str, str]) -> DatasetSpec:
    """An Amazon DisenCDR pair; ``first``/``second`` are (domain, label, folder holding that domain)."""
    files = tuple(DataFile(f"amazon-disencdr/{rel}", f"{DISENCDR_URL}/{rel}", sha) for rel, sha in digests.items())
    domains = tuple(DomainSource(d, label, f"amazon-disencdr/{folder}/train.txt", f"amazon-disencdr/{folder}/test.txt")
                    for d, label, folder in (first, second))
    return DatasetSpec(
        name=name,
        description=f"Amazon {first[1]} x {second[1]} (implicit), DisenCDR preprocessing with its "
                    "published one-item-per-user test split.",
        domains=domains, files=files, licence="MIT (DisenCDR repository)",
        citation="Cao, Lin, Cong, Ya, Liu, Wang. DisenCDR: Learning Disentangled Representations for "
                 "Cross-Domain Recommendation. SIGIR 2022. Data: He & McAuley. Ups and Downs: Modeling the "
                 "Visual Evolution of Fashion Trends with One-Class Collaborative Filtering. WWW 2016; "
                 "McAuley, Targett, Shi, van den Hengel. Image-based Recommendations on Styles and "
                 "Substitutes. SIGIR 2015.",
        home="https://github.com/cjx96/DisenCDR (commit 4e6d60b, folder dataset/)",
        implicit=True)


_ELEC_CLOTH = _amazon("amazon-elec-cloth", ("elec", "Electronics", "electronic_cloth"),
                      ("cloth", "Clothing", "cloth_electronic"), {
    "electronic_cloth/train.txt": "fbccec759f2acfec35927c07a1a4bd911f75106de34d6b21e7d7a8a7ffc68e81",
    "electronic_cloth/test_original.txt": "1db273571bb0e59f7d595c682d4074e9f976bcaf2fe21e15c4623bc16bc14686",
    "electronic_cloth/test.txt": "1a1a5ce75f986052afc05337ea5d1e5ac44c7017f06f1ecc5ccadb523aadf08d",
    "cloth_electronic/train.txt": "678124e0dbf8d162041f8b656bd5e89ee2a678df2c85812f94fd7c0bd2062f6f",
    "cloth_electronic/test_original.txt": "ab4c404114d7d641edfa1f5759ec1aae9b0cc5eb55c4d5ea61437c43c96b1800",
    "cloth_electronic/test.txt": "0b604b69d3eb531bf99a11e2322f247694f7a593905e0c0c04c54e2a58fb0f78",
})

_ELEC_PHONE = _amazon("amazon-elec-phone", ("elec", "Electronics", "electronic_phone"),
                      ("phone", "Cell Phones", "phone_electronic"), {
    "electronic_phone/train.txt": "cb09610ab143478097937c235c4932fe39b5c664d434dd5abba3c5eb5d75f028",
    "electronic_phone/test_original.txt": "b513255035eb30808e9cc396b180f48df7e6bbd6726ed7415c00f0aab78ba565",
    "electronic_phone/test.txt": "322a8e4c7b5d10e2a3d91dbb2d7833eaf2ba684f4c5109dc1ea4e6ee08119c46",
    "phone_electronic/train.txt": "a439eb3fdf4d08e58da1d86e1f711cf0acf59f28944d347ad4b3fb9454df54f9",
    "phone_electronic/test_original.txt": "9e7f12e47f649c721bbe4e45e49d59e3b4cf4aecea0f2f45ac007fa188077b65",
    "phone_electronic/test.txt": "a3d0d2fb03c25994c3509af3acc6eeca5009b00751f9b12e28fdf52843a027c6",
})

_DOUBAN = DatasetSpec(
    name="douban-book-music",
    description="Douban Book x Music, explicit ratings 1-5 (no timestamps, no published split).",
    domains=(DomainSource("book", "Douban Book", "douban/douban_book/ratings.dat"),
             DomainSource("music", "Douban Music", "douban/douban_music/ratings.dat")),
    files=(DataFile("douban/douban_book/ratings.dat", f"{GADTCDR_URL}/douban_book/ratings.dat",
                    "cc1c191fabe2e05e95cd6dbe7be19d13ed3e1b27b80be2050e4f6b4e40945ddd"),
           DataFile("douban/douban_music/ratings.dat", f"{GADTCDR_URL}/douban_music/ratings.dat",
                    "40944be25f79e6cf80ab9acf0dca8f4b9b9fe2724a068702294608883ad46775")),
    licence="GPL-3.0 (GA-DTCDR repository)",
    citation="Zhu, Chen, Wang, Liu, Zheng. DTCDR: A Framework for Dual-Target Cross-Domain Recommendation. "
             "CIKM 2019; Zhu, Wang, Chen, Liu, Zheng. A Graphical and Attentional Framework for Dual-Target "
             "Cross-Domain Recommendation. IJCAI 2020.",
    home="https://github.com/fengzhu1/GA-DTCDR (commit 11a1dc6, folder Data/)",
    implicit=False, rating_range=(1.0, 5.0))

_SYNTHETIC = DatasetSpec(
    name="synthetic",
    description="Generated marketplace with known ground-truth preferences and a relatedness knob rho "
                "(see xcatrec.data.synthetic); no files.",
    domains=(DomainSource("source", "Synthetic source", ""), DomainSource("target", "Synthetic target", "")),
    licence="MIT (generated by xcatrec)", citation="", home="generated locally", implicit=True)

DATASETS: MappingProxyType[str, DatasetSpec] = MappingProxyType(
    {s.name: s for s in (_ELEC_CLOTH, _ELEC_PHONE, _DOUBAN, _SYNTHETIC)})
"""Every named data set, by name (read-only)."""


def get_spec(name: str) -> DatasetSpec:
    """The registry entry of ``name``; raises :class:`ConfigError` listing the known names."""
    try:
        return DATASETS[name]
    except (KeyError, TypeError):
        raise ConfigError(f"Unknown data set {name!r}.", f"Use one of {sorted(DATASETS)}.") from None
