"""fetch(): local copy, cache and atomic verified downloads, tested with file:// URLs (no network)."""

from __future__ import annotations

import hashlib
import io
import urllib.error

import pytest

from xcatrec.data import download
from xcatrec.data.download import download_file, fetch, sha256_file
from xcatrec.data.registry import DataFile, DatasetSpec, DomainSource
from xcatrec.errors import ConfigError, DownloadError

CONTENT = b"u1\ti1\t1\nu2\ti2\t1\n"
GOOD = hashlib.sha256(CONTENT).hexdigest()


@pytest.fixture
def remote(tmp_path):
    """A fake public source folder holding one file, served through file:// URLs."""
    src = tmp_path / "remote"
    src.mkdir()
    (src / "train.txt").write_bytes(CONTENT)
    return src


@pytest.fixture
def fake_registry(monkeypatch, remote):
    """Register a data set "fake" whose one file lives in ``remote``."""
    spec = DatasetSpec("fake", "test", (DomainSource("a", "A", "fake/train.txt"),),
                       (DataFile("fake/train.txt", (remote / "train.txt").as_uri(), GOOD),))
    monkeypatch.setattr(download, "get_spec", lambda name: spec)
    return spec


@pytest.fixture
def clean_env(monkeypatch, tmp_path):
    monkeypatch.delenv("XCATREC_DATA", raising=False)
    monkeypatch.setenv("XCATREC_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


def leftovers(folder):
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


def test_download_file_verifies_and_moves_into_place(tmp_path, remote):
    dest = tmp_path / "out" / "train.txt"
    download_file((remote / "train.txt").as_uri(), dest, GOOD, progress=False)
    assert dest.read_bytes() == CONTENT
    assert leftovers(dest.parent) == ["train.txt"]


def test_hash_mismatch_leaves_no_partial_file(tmp_path, remote):
    dest = tmp_path / "out" / "train.txt"
    with pytest.raises(DownloadError) as info:
        download_file((remote / "train.txt").as_uri(), dest, "0" * 64, progress=False)
    assert "0" * 64 in str(info.value) and GOOD in str(info.value)
    assert leftovers(dest.parent) == []


def test_failure_midway_leaves_no_partial_file(tmp_path, monkeypatch):
    class Broken(io.BytesIO):
        headers = {"Content-Length": "100"}

        def read(self, n=-1):
            if self.tell() > 0:
                raise urllib.error.URLError("connection reset")
            return super().read(4)

    monkeypatch.setattr(download, "_urlopen", lambda url, timeout: Broken(CONTENT))
    dest = tmp_path / "out" / "train.txt"
    with pytest.raises(DownloadError, match="connection reset"):
        download_file("https://example.invalid/train.txt", dest, GOOD, progress=False)
    assert leftovers(dest.parent) == []


def test_fetch_downloads_into_cache_then_reuses_it(fake_registry, clean_env, remote):
    root = fetch("fake", progress=False)
    assert root == clean_env
    assert (root / "fake" / "train.txt").read_bytes() == CONTENT
    (remote / "train.txt").unlink()  # offline from now on: the cached copy is enough
    assert fetch("fake", progress=False) == clean_env


def test_corrupt_cached_file_is_downloaded_again(fake_registry, clean_env):
    (clean_env / "fake").mkdir(parents=True)
    (clean_env / "fake" / "train.txt").write_bytes(b"garbage")
    fetch("fake", progress=False)
    assert (clean_env / "fake" / "train.txt").read_bytes() == CONTENT


def test_offline_without_copy_names_url_env_var_and_cache(fake_registry, clean_env, remote):
    (remote / "train.txt").unlink()
    with pytest.raises(DownloadError) as info:
        fetch("fake", progress=False)
    message = str(info.value)
    assert fake_registry.files[0].url in message
    assert "XCATREC_DATA" in message
    assert str(clean_env) in message
    assert leftovers(clean_env / "fake") == []


def test_local_copy_is_verified(fake_registry, clean_env, monkeypatch, tmp_path):
    copy = tmp_path / "copy"
    (copy / "fake").mkdir(parents=True)
    (copy / "fake" / "train.txt").write_bytes(CONTENT)
    monkeypatch.setenv("XCATREC_DATA", str(copy))
    assert fetch("fake", progress=False) == copy
    (copy / "fake" / "train.txt").write_bytes(b"tampered!")
    with pytest.raises(DownloadError) as info:
        fetch("fake", progress=False)
    message = str(info.value)
    assert "train.txt" in message and GOOD in message
    assert hashlib.sha256(b"tampered!").hexdigest() in message
    assert "XCATREC_DATA" in message and "Fix:" in message


def test_local_copy_missing_file(fake_registry, clean_env, monkeypatch, tmp_path):
    monkeypatch.setenv("XCATREC_DATA", str(tmp_path / "empty"))
    with pytest.raises(DownloadError, match="has no file fake/train.txt"):
        fetch("fake", progress=False)


def test_explicit_data_dir_wins_and_is_filled(fake_registry, clean_env, monkeypatch, tmp_path):
    monkeypatch.setenv("XCATREC_DATA", str(tmp_path / "elsewhere"))
    mine = tmp_path / "mine"
    assert fetch("fake", data_dir=mine, progress=False) == mine
    assert (mine / "fake" / "train.txt").read_bytes() == CONTENT
    (mine / "fake" / "train.txt").write_bytes(b"edited by the user")
    with pytest.raises(DownloadError, match="expected"):
        fetch("fake", data_dir=mine, progress=False)  # a user's folder is never overwritten


def test_hash_is_memoised_by_size_and_mtime(tmp_path, monkeypatch):
    path = tmp_path / "f"
    path.write_bytes(CONTENT)
    assert sha256_file(path) == GOOD
    calls = []
    real = hashlib.sha256
    monkeypatch.setattr(download.hashlib, "sha256", lambda *a, **k: calls.append(1) or real(*a, **k))
    assert sha256_file(path) == GOOD
    assert calls == []
    path.write_bytes(b"changed and longer")
    assert sha256_file(path) == hashlib.sha256(b"changed and longer").hexdigest()
    assert calls  # rehashed after the change


def test_fetch_unknown_and_generated():
    with pytest.raises(ConfigError, match="amazon-elec-cloth"):
        fetch("no-such-data")
    with pytest.raises(ConfigError, match="generated"):
        fetch("synthetic")


def test_fetch_reports_a_changed_public_file_as_a_checksum_error(fake_registry, clean_env, remote):
    (remote / "train.txt").write_bytes(b"the public copy changed")
    with pytest.raises(download.ChecksumError, match="expected " + GOOD):
        fetch("fake", progress=False)
    assert leftovers(clean_env / "fake") == []


class _Response(io.BytesIO):
    """A fake HTTP response that announces ``length`` bytes in Content-Length."""

    def __init__(self, content: bytes, length: int) -> None:
        super().__init__(content)
        self.headers = {"Content-Length": str(length)}


def test_a_truncated_download_is_retried_once(tmp_path, monkeypatch, capsys):
    answers = [_Response(CONTENT[:5], len(CONTENT)), _Response(CONTENT, len(CONTENT))]
    monkeypatch.setattr(download, "_urlopen", lambda url, timeout: answers.pop(0))
    dest = tmp_path / "out" / "train.txt"
    download_file("https://example.invalid/train.txt", dest, GOOD, progress=False)
    assert dest.read_bytes() == CONTENT and not answers
    assert "truncated" in capsys.readouterr().err
    assert leftovers(dest.parent) == ["train.txt"]


def test_a_download_truncated_twice_is_reported_as_truncated_not_as_changed(fake_registry, clean_env, monkeypatch):
    monkeypatch.setattr(download, "_urlopen", lambda url, timeout: _Response(CONTENT[:5], len(CONTENT)))
    with pytest.raises(DownloadError) as info:
        fetch("fake", progress=False)
    assert not isinstance(info.value, download.ChecksumError)
    assert "truncated" in info.value.problem and f"5 of {len(CONTENT)} bytes" in info.value.problem
    assert "changed" not in str(info.value)
    assert leftovers(clean_env / "fake") == []


def test_a_download_cut_off_by_the_server_is_truncated(tmp_path, monkeypatch):
    import http.client

    class Cut(_Response):
        def read(self, n=-1):
            raise http.client.IncompleteRead(b"u1", len(CONTENT) - 2)

    monkeypatch.setattr(download, "_urlopen", lambda url, timeout: Cut(b"", len(CONTENT)))
    with pytest.raises(DownloadError, match="truncated twice"):
        download_file("https://example.invalid/train.txt", tmp_path / "train.txt", GOOD, progress=False)
    assert leftovers(tmp_path) == []


def test_downloaded_files_get_the_usual_permissions(tmp_path, remote):
    import os
    import stat

    dest = tmp_path / "out" / "train.txt"
    old = os.umask(0o022)
    try:
        download_file((remote / "train.txt").as_uri(), dest, GOOD, progress=False)
    finally:
        os.umask(old)
    assert stat.S_IMODE(dest.stat().st_mode) == 0o644


def test_a_cache_that_is_a_file_is_a_clear_error(fake_registry, clean_env, monkeypatch, tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    monkeypatch.setenv("XCATREC_CACHE", str(blocker))
    with pytest.raises(download.CacheError) as info:
        fetch("fake", progress=False)
    assert f"{blocker} is a file, not a folder" in info.value.problem
    assert "XCATREC_CACHE" in info.value.fix and "network" not in info.value.fix


def test_a_read_only_cache_is_a_clear_error(fake_registry, clean_env, monkeypatch):
    def refuse(*args, **kwargs):  # tests run as root, where a chmod 555 folder stays writable
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(download.tempfile, "mkstemp", refuse)
    with pytest.raises(download.CacheError) as info:
        fetch("fake", progress=False)
    assert "Permission denied" in info.value.problem and str(clean_env) in info.value.problem
    assert "XCATREC_CACHE" in info.value.fix
