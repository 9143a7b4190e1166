"""The registry is well formed and data/README.md cannot drift from it."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from xcatrec.data import DATASETS, get_spec
from xcatrec.errors import ConfigError

CARD = Path(__file__).resolve().parents[2] / "data" / "README.md"


def card_hashes() -> set[tuple[str, str]]:
    lines = CARD.read_text(encoding="utf-8").splitlines()
    return {(m.group(1), m.group(2)) for line in lines if (m := re.fullmatch(r"([0-9a-f]{64})\s+(\S+)", line.strip()))}


def test_card_lists_exactly_the_registry_hashes():
    registry = {(f.sha256, f.path) for spec in DATASETS.values() for f in spec.files}
    assert card_hashes() == registry
    # no other 64-hex string hides anywhere in the card
    assert set(re.findall(r"\b[0-9a-f]{64}\b", CARD.read_text())) == {h for h, _ in registry}


def test_card_names_every_data_set_url_and_licence():
    text = CARD.read_text(encoding="utf-8")
    sections = dict(re.findall(r"^## (.*?)\n(.*?)(?=^## |\Z)", text, re.M | re.S))
    for spec in DATASETS.values():
        body = next(b for heading, b in sections.items() if spec.name in heading)
        assert spec.licence.split()[0] in body
        for f in spec.files:
            assert f.url.rsplit("/", 2)[0] in body  # the pinned URL up to the folder


def test_registry_entries():
    assert set(DATASETS) == {"amazon-elec-cloth", "amazon-elec-phone", "douban-book-music", "synthetic"}
    assert get_spec("amazon-elec-cloth").domain_names == ("elec", "cloth")
    assert get_spec("amazon-elec-phone").domain_names == ("elec", "phone")
    assert get_spec("douban-book-music").domain_names == ("book", "music")
    assert get_spec("synthetic").domain_names == ("source", "target")
    assert get_spec("amazon-elec-cloth").domain("cloth").train == "amazon-disencdr/cloth_electronic/train.txt"
    assert get_spec("amazon-elec-cloth").has_published_split
    assert not get_spec("douban-book-music").has_published_split
    for spec in DATASETS.values():
        paths = {f.path for f in spec.files}
        for dom in spec.domains:
            if spec.files:
                assert dom.train in paths and (dom.test is None or dom.test in paths)
        for f in spec.files:
            assert re.fullmatch(r"[0-9a-f]{64}", f.sha256)
            assert f.url.startswith("https://raw.githubusercontent.com/") and f.url.endswith(f.path.split("/", 1)[1])
        assert spec.licence


def test_unknown_names_list_the_valid_ones():
    with pytest.raises(ConfigError, match="douban-book-music"):
        get_spec("douban")
    with pytest.raises(ConfigError, match=r"\['elec', 'cloth'\]"):
        get_spec("amazon-elec-cloth").domain("phone")


def test_importing_the_data_package_reads_nothing_and_skips_tensorflow():
    import subprocess
    import sys

    code = ("import sys, builtins; opened = []; real = builtins.open\n"
            "builtins.open = lambda f, *a, **k: opened.append(str(f)) or real(f, *a, **k)\n"
            "import xcatrec.data\n"
            "assert 'tensorflow' not in sys.modules, 'tensorflow imported'\n"
            "assert not [f for f in opened if 'shared' in f or '.cache' in f], opened\n")
    subprocess.run([sys.executable, "-c", code], check=True)
