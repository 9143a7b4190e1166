"""Interactions as sharded TFRecord files with a checksummed manifest, for data larger than memory.

A shard folder holds, per category (``"source"``, ``"target"``) and split (``"train"``, ``"valid"``,
``"test"``), a list of TFRecord shards of at most ``rows_per_shard`` rows each, the number of rows per
item of that part (``<domain>-<split>.counts.npy``, for the log-Q correction of the sampled softmax)
and one ``manifest.json``::

    manifest.json
    target-train-00000.tfrecord
    target-train-00001.tfrecord
    target-train.counts.npy
    ...

Each record of a shard is a ``tf.train.Example`` holding a block of up to ``rows_per_record``
consecutive rows: every column (``user`` and ``item`` as int64, optionally ``rating`` as float32 and
``timestamp`` as int64) is one little-endian byte string. A block per record keeps the cost of writing
and parsing per record, not per row; any TensorFlow reader decodes a column with
``tf.io.decode_raw`` (:func:`parse_block`).

The manifest records the data set's sizes and, for every file, its rows, bytes and SHA-256:
:func:`open_shards` refuses a folder whose manifest or files are missing or changed with one
:class:`~xcatrec.errors.DataError`. A :class:`ShardWriter` writes into a temporary folder next to the
destination and renames it into place only when everything is written, so a failure leaves any earlier
folder as it was. Rows can be added in pieces, so a data set never has to be in memory as a whole.

TensorFlow is imported only inside the functions that write or parse records.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from xcatrec.data.download import file_sha256
from xcatrec.data.types import CrossDomainDataset, DatasetSizes, Interactions
from xcatrec.errors import ConfigError, DataError

FORMAT, VERSION = "xcatrec-shards", 1
MANIFEST = "manifest.json"
DOMAINS, SPLITS = ("source", "target"), ("train", "valid", "test")
#: Column name -> numpy dtype of its little-endian bytes.
COLUMNS = {"user": "<i8", "item": "<i8", "rating": "<f4", "timestamp": "<i8"}


@dataclass(frozen=True)
class ShardFile:
    """One file of a shard folder: its path, rows (0 for a counts file), bytes and SHA-256."""

    path: Path
    rows: int
    bytes: int
    sha256: str


@dataclass(frozen=True)
class ShardPart:
    """The shards of one category and split: their files, total rows, columns and item-counts file."""

    domain: str
    split: str
    rows: int
    columns: tuple[str, ...]
    shards: tuple[ShardFile, ...]
    counts: ShardFile


@dataclass(frozen=True)
class Shards:
    """An opened, verified shard folder (see :func:`open_shards`)."""

    folder: Path
    name: str
    sizes: DatasetSizes
    rows_per_record: int
    parts: dict[tuple[str, str], ShardPart]

    def part(self, domain: str, split: str = "train") -> ShardPart:
        """The shards of ``domain`` and ``split``.

        Raises:
            DataError: The folder has no such part.
        """
        if (domain, split) not in self.parts:
            raise DataError(f"The shard folder {self.folder} has no {domain}/{split} part "
                            f"(it has {sorted('/'.join(k) for k in self.parts)}).",
                            "Write the shards with that part (write_shards(..., parts=...)).")
        return self.parts[(domain, split)]

    def n_items(self, domain: str) -> int:
        """Items of ``domain`` (``"source"`` or ``"target"``)."""
        return self.sizes.n_source_items if domain == "source" else self.sizes.n_target_items

    def item_counts(self, domain: str, split: str = "train") -> np.ndarray:
        """Rows per item of a part (int64, one entry per item of the category)."""
        return np.load(self.part(domain, split).counts.path, allow_pickle=False)


def parse_block(serialized, columns):
    """TensorFlow: the columns of one record (a block of rows), each a 1-D tensor."""
    import tensorflow as tf

    spec = {c: tf.io.FixedLenFeature([], tf.string) for c in columns}
    parsed = tf.io.parse_single_example(serialized, spec)
    return {c: tf.io.decode_raw(parsed[c], tf.as_dtype(np.dtype(COLUMNS[c])), little_endian=True)
            for c in columns}


class ShardWriter:
    """Writes a shard folder from rows added in pieces; use as a context manager or call :meth:`close`.

    Args:
        folder: The destination; written as ``<folder>.tmp-*`` and renamed into place on :meth:`close`.
        sizes: Users and items of the data set (every row's ids must lie inside them).
        name: The data set's name, kept in the manifest.
        rows_per_shard: Rows per shard file (the last shard of a part may have fewer).
        rows_per_record: Rows per record (block) inside a shard.
        overwrite: Replace an existing folder (only once the new one is complete).

    Raises:
        ConfigError: ``folder`` exists and ``overwrite`` is false, or a size is not positive.
    """

    def __init__(self, folder: str | Path, sizes: DatasetSizes, *, name: str = "", rows_per_shard: int = 1_000_000,
                 rows_per_record: int = 4096, overwrite: bool = False) -> None:
        if rows_per_shard < 1 or rows_per_record < 1:
            raise ConfigError(f"rows_per_shard and rows_per_record must be positive, got {rows_per_shard} and "
                              f"{rows_per_record}.", "Pass rows_per_shard=1_000_000, rows_per_record=4096.")
        self.folder = Path(folder)
        if self.folder.exists() and not overwrite:
            raise ConfigError(f"The shard folder {self.folder} exists already.",
                              "Pass overwrite=True or choose another folder.")
        self.folder.parent.mkdir(parents=True, exist_ok=True)
        self.tmp = self.folder.with_name(f"{self.folder.name}.tmp-{np.random.default_rng().integers(1 << 30)}")
        self.tmp.mkdir()
        self.sizes, self.name = sizes, name
        self.rows_per_shard, self.rows_per_record = rows_per_shard, rows_per_record
        self._parts: dict[tuple[str, str], dict] = {}

    def add(self, domain: str, split: str, rows: Interactions) -> None:
        """Append ``rows`` to the part ``domain``/``split``.

        Raises:
            DataError: Unknown category or split, ids outside the sizes, or columns that differ from the
                rows added to the part before.
        """
        if domain not in DOMAINS or split not in SPLITS:
            raise DataError(f"Unknown part {domain}/{split}.", f"Use a category of {DOMAINS} and a split of {SPLITS}.")
        n_items = self.sizes.n_source_items if domain == "source" else self.sizes.n_target_items
        for what, ids, n in (("user", rows.users, self.sizes.n_users), ("item", rows.items, n_items)):
            if len(ids) and (ids.min() < 0 or ids.max() >= n):
                raise DataError(f"{domain}/{split} has {what} indices outside [0, {n}).",
                                "Write rows whose ids index the data set's vocabularies.")
        columns = ("user", "item") + tuple(c for c, v in (("rating", rows.ratings), ("timestamp", rows.timestamps))
                                           if v is not None)
        part = self._parts.setdefault((domain, split), {"columns": columns, "shards": [], "writer": None,
                                                         "in_shard": 0, "counts": np.zeros(n_items, np.int64)})
        if part["columns"] != columns:
            raise DataError(f"{domain}/{split}: rows with columns {columns} added after rows with {part['columns']}.",
                            "Add rows with the same columns (ratings and timestamps) to one part.")
        part["counts"] += np.bincount(rows.items, minlength=n_items)
        arrays = {"user": rows.users, "item": rows.items, "rating": rows.ratings, "timestamp": rows.timestamps}
        start = 0
        while start < len(rows):
            if part["writer"] is None or part["in_shard"] >= self.rows_per_shard:
                self._close_shard(domain, split)
                self._open_shard(domain, split)
            stop = min(len(rows), start + self.rows_per_shard - part["in_shard"])
            for lo in range(start, stop, self.rows_per_record):
                hi = min(stop, lo + self.rows_per_record)
                part["writer"].write(self._record({c: arrays[c][lo:hi] for c in columns}))
            part["in_shard"] += stop - start
            part["shards"][-1]["rows"] += stop - start
            start = stop

    @staticmethod
    def _record(block: dict[str, np.ndarray]) -> bytes:
        import tensorflow as tf

        feature = {c: tf.train.Feature(bytes_list=tf.train.BytesList(
            value=[np.ascontiguousarray(v, dtype=COLUMNS[c]).tobytes()])) for c, v in block.items()}
        return tf.train.Example(features=tf.train.Features(feature=feature)).SerializeToString()

    def _open_shard(self, domain: str, split: str) -> None:
        import tensorflow as tf

        part = self._parts[(domain, split)]
        path = self.tmp / f"{domain}-{split}-{len(part['shards']):05d}.tfrecord"
        part["writer"], part["in_shard"] = tf.io.TFRecordWriter(str(path)), 0
        part["shards"].append({"file": path.name, "rows": 0})

    def _close_shard(self, domain: str, split: str) -> None:
        part = self._parts[(domain, split)]
        if part["writer"] is not None:
            part["writer"].close()
            part["writer"] = None

    def _described(self, name: str, rows: int) -> dict:
        """The manifest entry of a finished file: its name, rows, bytes and SHA-256."""
        path = self.tmp / name
        return {"file": name, "rows": int(rows), "bytes": path.stat().st_size, "sha256": file_sha256(path)}

    def close(self) -> Shards:
        """Finish every shard, write the counts and the manifest, rename the folder into place; returns it opened."""
        manifest = {"format": FORMAT, "version": VERSION, "name": self.name, "rows_per_record": self.rows_per_record,
                    "sizes": {"n_users": self.sizes.n_users, "n_source_items": self.sizes.n_source_items,
                              "n_target_items": self.sizes.n_target_items}, "parts": {}}
        for (domain, split), part in self._parts.items():
            self._close_shard(domain, split)
            counts = self.tmp / f"{domain}-{split}.counts.npy"
            np.save(counts, part["counts"])
            manifest["parts"][f"{domain}/{split}"] = {
                "rows": int(sum(s["rows"] for s in part["shards"])), "columns": list(part["columns"]),
                "shards": [self._described(s["file"], s["rows"]) for s in part["shards"]],
                "counts": self._described(counts.name, 0)}
        (self.tmp / MANIFEST).write_text(json.dumps(manifest, indent=1, sort_keys=True))
        old = self.folder.with_name(self.folder.name + ".old")
        if self.folder.exists():
            self.folder.rename(old)
        try:
            self.tmp.rename(self.folder)
        except OSError:
            if old.exists():  # put the earlier folder back
                old.rename(self.folder)
            raise
        shutil.rmtree(old, ignore_errors=True)
        return open_shards(self.folder)

    def abort(self) -> None:
        """Drop everything written so far (the destination is left as it was)."""
        for (domain, split) in self._parts:
            self._close_shard(domain, split)
        shutil.rmtree(self.tmp, ignore_errors=True)

    def __enter__(self) -> "ShardWriter":
        return self

    def __exit__(self, kind, value, traceback) -> None:
        if kind is not None:
            self.abort()
        elif self.tmp.exists():
            self.close()


def write_shards(dataset: CrossDomainDataset, folder: str | Path, *, parts=None, rows_per_shard: int = 1_000_000,
                 rows_per_record: int = 4096, overwrite: bool = False, order_seed: int | None = None) -> Shards:
    """Write ``dataset``'s interactions as a shard folder (see the module docstring) and open it.

    Args:
        dataset: The data set.
        folder: The destination folder.
        parts: ``(category, split)`` pairs to write; ``None`` writes every non-empty part.
        rows_per_shard: Rows per shard file.
        rows_per_record: Rows per record inside a shard.
        overwrite: Replace an existing folder.
        order_seed: ``None`` writes each part's rows in the data set's order; an integer writes them in
            a random order drawn from it. Training streams shuffle within a bounded buffer, so rows
            sorted by user (as most loaders leave them) should be written in a random order.
    """
    parts = parts if parts is not None else [(d, s) for d in DOMAINS for s in SPLITS
                                              if len(getattr(dataset.domain(d), s))]
    with ShardWriter(folder, dataset.sizes, name=dataset.name, rows_per_shard=rows_per_shard,
                     rows_per_record=rows_per_record, overwrite=overwrite) as writer:
        for domain, split in parts:
            rows = getattr(dataset.domain(domain), split)
            if order_seed is not None:
                rows = rows.subset(np.random.default_rng(order_seed).permutation(len(rows)))
            writer.add(domain, split, rows)
        return writer.close()


def _entry(folder: Path, entry: dict, verify: bool) -> ShardFile:
    path = folder / str(entry["file"])
    if not path.is_file():
        raise DataError(f"The shard file {path} listed in the manifest is missing.",
                        "Write the shard folder again (write_shards).")
    if path.stat().st_size != entry["bytes"] or (verify and file_sha256(path) != entry["sha256"]):
        raise DataError(f"The shard file {path} does not match its manifest (size or SHA-256): it was changed "
                        "or damaged after it was written.", "Write the shard folder again (write_shards).")
    return ShardFile(path, int(entry["rows"]), int(entry["bytes"]), str(entry["sha256"]))


def open_shards(folder: str | Path, *, verify: bool = True) -> Shards:
    """Open a shard folder, checking every file against the manifest.

    Args:
        folder: A folder written by :func:`write_shards` or :class:`ShardWriter`.
        verify: Check each file's SHA-256 (reads every byte once); ``False`` checks sizes only.

    Raises:
        DataError: The manifest is missing, unreadable or of another format, or a file is missing or
            does not match its size or SHA-256.
    """
    folder = Path(folder)
    try:
        manifest = json.loads((folder / MANIFEST).read_text())
    except (OSError, ValueError) as exc:
        raise DataError(f"Cannot read the shard manifest {folder / MANIFEST} ({exc}).",
                        "Pass a folder written by write_shards.") from None
    if manifest.get("format") != FORMAT or manifest.get("version") != VERSION:
        raise DataError(f"{folder / MANIFEST} is not a version-{VERSION} {FORMAT} manifest.",
                        "Write the shard folder again with this version of xcatrec.")
    parts = {}
    for key, p in manifest["parts"].items():
        domain, split = key.split("/")
        shards = tuple(_entry(folder, s, verify) for s in p["shards"])
        if sum(s.rows for s in shards) != p["rows"]:
            raise DataError(f"{folder / MANIFEST}: the shards of {key} do not add up to its {p['rows']} rows.",
                            "Write the shard folder again (write_shards).")
        parts[(domain, split)] = ShardPart(domain, split, int(p["rows"]), tuple(p["columns"]), shards,
                                           _entry(folder, p["counts"], verify))
    return Shards(folder, manifest["name"], DatasetSizes(**manifest["sizes"]), int(manifest["rows_per_record"]),
                  parts)


def read_part(shards: Shards, domain: str, split: str = "train") -> Interactions:
    """All rows of one part, in the order they were written, as :class:`Interactions` (in memory)."""
    import tensorflow as tf

    part = shards.part(domain, split)
    blocks = tf.data.TFRecordDataset([str(s.path) for s in part.shards]).map(
        lambda r: parse_block(r, part.columns))
    columns: dict[str, list[np.ndarray]] = {c: [np.zeros(0, COLUMNS[c])] for c in part.columns}
    for block in blocks.as_numpy_iterator():
        for c in part.columns:
            columns[c].append(block[c])
    out = {c: np.concatenate(v) for c, v in columns.items()}
    return Interactions(out["user"], out["item"], out.get("rating"), out.get("timestamp"))
