"""Obtain the files of a registered data set: a local copy, or a verified download into a cache.

Where the files come from, in order:

1. ``data_dir`` passed to :func:`fetch`: a folder in the standard layout. Files present there are
   verified; missing ones are downloaded into it.
2. The environment variable ``XCATREC_DATA``: an existing local copy (CI points it at
   ``../shared/data``). Every file must be there and match its sha256; nothing is downloaded.
3. The cache folder ``XCATREC_CACHE`` (default ``~/.cache/xcatrec``): missing or corrupt files are
   downloaded from their public URL with a progress bar on stderr.

A download is written to a temporary file in the destination folder, hashed while it streams, and
moved into place with :func:`os.replace` only if the sha256 matches, so a failed or corrupt download
never leaves a partial file behind.
"""

from __future__ import annotations

import hashlib
import http.client
import os
import sys
import tempfile
import urllib.error
import urllib.request
from pathlib import Path

from xcatrec.data.registry import DataFile, get_spec
from xcatrec.errors import ConfigError, DownloadError

ENV_DATA = "XCATREC_DATA"
ENV_CACHE = "XCATREC_CACHE"
_CHUNK = 1 << 20
_HASHES: dict[tuple[str, int, int], str] = {}

# The opener used for downloads; tests replace it to simulate the network.
_urlopen = urllib.request.urlopen


class ChecksumError(DownloadError):
    """A downloaded file did not have the expected sha256 (it was discarded)."""


class CacheError(DownloadError):
    """The folder a download goes to cannot be created or written (read-only, or a file)."""


def cache_dir() -> Path:
    """The download cache: ``$XCATREC_CACHE`` or ``~/.cache/xcatrec``."""
    env = os.environ.get(ENV_CACHE)
    return Path(env).expanduser() if env else Path.home() / ".cache" / "xcatrec"


def file_sha256(path: str | os.PathLike) -> str:
    """Hex SHA-256 of a file's bytes, read in 1 MiB blocks; never cached, so a changed file is seen
    (model folders and shard manifests check their files with it)."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(_CHUNK):
            digest.update(block)
    return digest.hexdigest()


def sha256_file(path: str | os.PathLike) -> str:
    """Hex sha256 of a data file, memoised in-process by (path, size, mtime)."""
    path = Path(path).resolve()
    st = path.stat()
    key = (str(path), st.st_size, st.st_mtime_ns)
    if key not in _HASHES:
        try:
            _HASHES[key] = file_sha256(path)
        except OSError as exc:
            raise DownloadError(f"Cannot read the data file {path}: {exc.strerror or exc}.",
                                "Check its permissions (it must be readable by you), or delete it so that "
                                "it is downloaded again.") from None
    return _HASHES[key]


def verify_file(path: Path, file: DataFile, fix: str) -> None:
    """Raise :class:`DownloadError` if ``path`` does not have ``file``'s sha256."""
    actual = sha256_file(path)
    if actual != file.sha256:
        raise DownloadError(f"File {path} has sha256 {actual}, expected {file.sha256} ({file.path}).", fix)


def _file_mode() -> int:
    """Permissions of a new file under the current umask (0644 under the usual umask 022)."""
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask


def _writable_folder(folder: Path) -> None:
    """Create ``folder`` if needed; raise :class:`CacheError` if it is not a folder one can write in."""
    fix = (f"Point {ENV_CACHE} (or --data-dir) at a folder you can write to, or set {ENV_DATA} to a "
           "folder holding a local copy.")
    blocker = next((p for p in (folder, *folder.parents) if p.exists() and not p.is_dir()), None)
    if blocker is not None:
        raise CacheError(f"Cannot store downloads in {folder}: {blocker} is a file, not a folder.", fix)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise CacheError(f"Cannot create the download folder {folder}: {exc.strerror or exc}.", fix) from None


def _stream(url: str, out, dest: Path, progress: bool) -> tuple[str, int, int | None]:
    """Copy ``url`` into the open file ``out``: its sha256, the bytes received and the announced
    Content-Length (``None`` when the server gave none)."""
    from tqdm import tqdm

    digest, received = hashlib.sha256(), 0
    with _urlopen(url, timeout=60) as response:
        total = response.headers.get("Content-Length") if getattr(response, "headers", None) else None
        expected = int(total) if total and str(total).isdigit() else None
        with tqdm(total=expected, unit="B", unit_scale=True, file=sys.stderr,
                  desc=dest.name, disable=not progress, leave=False) as bar:
            try:
                while block := response.read(_CHUNK):
                    out.write(block)
                    digest.update(block)
                    received += len(block)
                    bar.update(len(block))
            except http.client.IncompleteRead as exc:  # the server closed the connection early
                received += len(exc.partial)
                return digest.hexdigest(), received, max(expected or 0, received + (exc.expected or 1))
    return digest.hexdigest(), received, expected


def download_file(url: str, dest: str | os.PathLike, sha256: str, progress: bool = True) -> Path:
    """Download ``url`` to ``dest`` atomically, verifying its sha256.

    A download that ends before the announced Content-Length is truncated (a dropped connection, not
    a changed file); it is retried once. The file gets the usual permissions of a new file (0644
    under umask 022), not the owner-only ones of a temporary file.

    Args:
        url: Source URL (``https://`` or ``file://``).
        dest: Final path; its folder is created if needed.
        sha256: Expected hex digest.
        progress: Show a tqdm progress bar on stderr.

    Returns:
        ``dest`` as a :class:`Path`.

    Raises:
        CacheError: The folder of ``dest`` cannot be created or written.
        DownloadError: The URL could not be read, the download was truncated twice, or the content
            has the wrong hash (:class:`ChecksumError`). No partial file is left at ``dest`` or beside it.
    """
    dest = Path(dest)
    _writable_folder(dest.parent)
    attempt = 0
    while True:
        attempt += 1
        try:
            fd, tmp_name = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".part", dir=dest.parent)
        except OSError as exc:
            raise CacheError(f"Cannot write in the download folder {dest.parent}: {exc.strerror or exc}.",
                             f"Point {ENV_CACHE} (or --data-dir) at a folder you can write to, or set "
                             f"{ENV_DATA} to a folder holding a local copy.") from None
        try:
            with os.fdopen(fd, "wb") as out:
                actual, received, expected = _stream(url, out, dest, progress)
            if expected is not None and received < expected:
                if attempt == 1:
                    print(f"{dest.name}: download truncated ({received} of {expected} bytes); retrying once",
                          file=sys.stderr, flush=True)
                    continue
                raise DownloadError(f"The download of {url} was truncated twice (got {received} of "
                                    f"{expected} bytes); it was discarded.",
                                    "The connection dropped; retry later or on a steadier network.")
            if actual != sha256:
                raise ChecksumError(f"Downloaded {url} has sha256 {actual}, expected {sha256}; it was discarded.",
                                    "Retry later; if it persists the public copy changed, please report it.")
            os.chmod(tmp_name, _file_mode())
            os.replace(tmp_name, dest)
            return dest
        except DownloadError:
            raise
        except (urllib.error.URLError, http.client.HTTPException, OSError, ValueError) as exc:
            raise DownloadError(f"Could not download {url}: {exc}.",
                                "Check the network connection and retry.") from exc
        finally:
            if os.path.exists(tmp_name):
                os.remove(tmp_name)


def _from_local_copy(name: str, root: Path) -> Path:
    for file in get_spec(name).files:
        path = root / file.path
        if not path.is_file():
            raise DownloadError(f"The local copy {ENV_DATA}={root} has no file {file.path} (data set {name!r}).",
                                f"Copy it there from {file.url}, or unset {ENV_DATA} to download into the "
                                f"cache {cache_dir()}.")
        verify_file(path, file, f"Replace {path} with a fresh copy of {file.url}, or unset {ENV_DATA} to "
                                f"download a verified copy into the cache {cache_dir()}.")
    return root


def _into_folder(name: str, root: Path, progress: bool, repair: bool) -> Path:
    for file in get_spec(name).files:
        path = root / file.path
        if path.is_file():
            if sha256_file(path) == file.sha256:
                continue
            if not repair:
                verify_file(path, file, f"Delete {path} so that it is downloaded again, or replace it with "
                                        f"a fresh copy of {file.url}.")
        try:
            download_file(file.url, path, file.sha256, progress=progress)
        except (ChecksumError, CacheError):
            raise
        except DownloadError as exc:
            raise DownloadError(
                f"Could not obtain {file.path} from {file.url}: {exc.problem}",
                f"Connect to the network and retry, or set the environment variable {ENV_DATA} to a folder "
                f"holding a local copy in the standard layout; files are cached in {root} "
                f"({ENV_CACHE} changes the cache).") from exc
    return root


def fetch(name: str, data_dir: str | os.PathLike | None = None, progress: bool = True) -> Path:
    """Make the files of data set ``name`` available locally and return the folder root holding them.

    Args:
        name: Registry name, e.g. ``"amazon-elec-cloth"``.
        data_dir: Folder in the standard layout to use (missing files are downloaded into it).
        progress: Show download progress bars on stderr.

    Returns:
        Root folder; file ``f`` of the data set is at ``root / f.path``.

    Raises:
        ConfigError: Unknown data set, or one without files (``"synthetic"``).
        DownloadError: A file is missing offline, or a local file has the wrong sha256.
    """
    spec = get_spec(name)
    if not spec.files:
        raise ConfigError(f"Data set {name!r} is generated and has no files to fetch.",
                          f"Call load_dataset({name!r}) instead.")
    if data_dir is not None:
        return _into_folder(name, Path(data_dir).expanduser(), progress, repair=False)
    env = os.environ.get(ENV_DATA)
    if env:
        return _from_local_copy(name, Path(env).expanduser())
    return _into_folder(name, cache_dir(), progress, repair=True)
