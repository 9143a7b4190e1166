"""Read one user-item interaction file into a validated :class:`pandas.DataFrame`.

Accepted files: tab-, comma-, semicolon- or whitespace-separated text, with or without a header line,
with columns ``user, item[, rating[, timestamp]]`` in that order (without a header) or named by a
header (``user``/``user_id``/``reviewerID``..., ``item``/``item_id``/``asin``..., ``rating``/``overall``...,
``timestamp``/``unixReviewTime``...). The Amazon "ratings only" files (``user,item,rating,timestamp``,
comma, no header) and the DisenCDR/Douban files (``user<TAB>item<TAB>value``) load as they are.

Raw ids stay strings. In strict mode (the default) any bad value raises :class:`DataError` naming the
file, the row and the value; with ``strict=False`` bad values become missing (NaN) so that
:func:`xcatrec.data.clean` can drop them and report how many.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import numpy as np
import pandas as pd

from xcatrec.errors import DataError

COLUMNS = ("user", "item", "rating", "timestamp")
ALIASES = {
    "user": {"user", "users", "user_id", "userid", "uid", "reviewerid", "customer_id", "customer"},
    "item": {"item", "items", "item_id", "itemid", "iid", "asin", "product_id", "movieid", "movie_id",
             "book_id", "track_id"},
    "rating": {"rating", "ratings", "score", "overall", "stars", "value", "label"},
    "timestamp": {"timestamp", "time", "ts", "unixreviewtime", "unix_time", "datetime"},
}
_FORMAT = "expected columns user,item[,rating[,timestamp]] separated by tabs, commas or whitespace"
_CONTROL_RE = re.compile(r"[\x00-\x1f\x7f]")


def _first_lines(path: Path, n: int = 5) -> list[str]:
    lines: list[str] = []
    try:
        with open(path, encoding="utf-8-sig") as fh:  # -sig: a byte order mark (Excel) is dropped
            for line in fh:
                if line.strip():
                    lines.append(line.rstrip("\r\n"))
                    if len(lines) == n:
                        break
    except UnicodeDecodeError as exc:
        raise DataError(f"File {path} is not UTF-8 text ({exc.reason} at byte {exc.start}).",
                        "Save it as UTF-8 text with one interaction per line.") from None
    except OSError as exc:
        raise DataError(f"Interaction file {path} cannot be read: {exc.strerror or exc}.",
                        "Check its permissions (it must be readable by you).") from None
    return lines


def check_file(path: str | os.PathLike) -> Path:
    """``path`` as a :class:`Path` if it is an existing, non-empty regular file that can be opened.

    Cheap (no parsing), so callers can check every input file before reading any of them.

    Raises:
        DataError: Saying what the path really is: missing, a directory, not a regular file (a device
            such as ``/dev/null``, or a pipe), empty, or unreadable.
    """
    path = Path(path)
    if not path.exists():
        raise DataError(f"Interaction file {path} does not exist.", "Check the path (and the working folder).")
    if path.is_dir():
        raise DataError(f"Interaction file {path} is a directory, not a file.",
                        "Give the path of the interaction file inside it.")
    if not path.is_file():
        raise DataError(f"Interaction file {path} is not a regular file (a device, pipe or socket).",
                        f"Give a text file with one interaction per line; {_FORMAT}.")
    if path.stat().st_size == 0:
        raise DataError(f"Interaction file {path} is empty.", f"Give a file with one interaction per line; {_FORMAT}.")
    try:
        with open(path, "rb"):
            pass
    except OSError as exc:
        raise DataError(f"Interaction file {path} cannot be read: {exc.strerror or exc}.",
                        "Check its permissions (it must be readable by you).") from None
    return path


def sniff_separator(line: str) -> str:
    """Separator of a data line: tab, comma, semicolon, else runs of whitespace."""
    for sep in ("\t", ",", ";"):
        if sep in line:
            return sep
    return r"\s+"


def _split(line: str, sep: str) -> list[str]:
    return [f.strip() for f in (line.split() if sep == r"\s+" else line.split(sep))]


def _is_number(text: str) -> bool:
    try:
        float(text)
        return True
    except ValueError:
        return False


def _looks_like_header(fields: list[str], next_fields: list[str] | None) -> bool:
    names = [f.lower() for f in fields]
    if any(n in ALIASES[c] for n, c in zip(names, COLUMNS)):
        return True
    # a non-numeric rating/timestamp cell followed by a numeric one is a header cell
    return next_fields is not None and any(
        not _is_number(a) and _is_number(b) for a, b in zip(fields[2:], next_fields[2:]))


def _column_names(path: Path, header_fields: list[str] | None, n_cols: int) -> list[str | None]:
    """Standard name (or None to drop) of each file column."""
    if n_cols < 2:
        raise DataError(f"File {path} has only one column; {_FORMAT}.",
                        "Put user and item ids in separate columns (e.g. 'user<TAB>item').")
    if header_fields is None:
        if n_cols > 4:
            raise DataError(f"File {path} has {n_cols} columns; {_FORMAT}.",
                            "Keep only the user, item, rating and timestamp columns, or add a header "
                            "line naming them.")
        return list(COLUMNS[:n_cols])
    lowered = [h.lower() for h in header_fields]
    names: list[str | None] = [next((c for c in COLUMNS if h in ALIASES[c]), None) for h in lowered]
    if "user" not in names and "item" not in names and n_cols <= 4:
        names = list(COLUMNS[:n_cols])  # unknown header names: take the columns by position
    for needed in ("user", "item"):
        if names.count(needed) != 1:
            raise DataError(f"File {path}: the header {header_fields} names {names.count(needed)} "
                            f"{needed} columns; {_FORMAT}.",
                            f"Name exactly one column '{needed}' in the header line.")
    return [n if names.count(n) == 1 else None for n in names]


def validate_ids(ids: pd.Series) -> tuple[pd.Series, np.ndarray, np.ndarray]:
    """Strip surrounding whitespace from raw ids and flag bad ones.

    Works on the unique values only, so it stays fast on large files; a categorical input whose
    categories are already clean strings is returned as it is.

    Returns:
        ``(stripped, missing, invalid)``: the ids without surrounding whitespace as a categorical
        series of strings (same index; later factorizing is then nearly free), a mask of
        missing/empty ids and a mask of ids holding control characters.
    """
    if isinstance(ids.dtype, pd.CategoricalDtype):
        codes, uniques = ids.cat.codes.to_numpy(), ids.cat.categories
    else:
        codes, uniques = pd.factorize(ids, use_na_sentinel=True)
    raw = np.asarray(uniques, dtype=object)
    all_str = pd.api.types.infer_dtype(raw, skipna=False) in ("string", "empty")
    joined = "".join(raw) if all_str else ""
    if all_str and joined.isprintable() and " " not in joined:
        # the common case: no whitespace and no control characters anywhere, nothing to change
        categories, control = raw, np.zeros(len(raw), bool)
    else:
        stripped = np.array([str(u).strip() for u in raw], dtype=object)
        if len(raw) and not (stripped == raw).all():
            remap, uniq = pd.factorize(stripped)
            codes = np.where(codes >= 0, remap[np.maximum(codes, 0)], -1)
            stripped = np.asarray(uniq, dtype=object)
            ids = ids.astype(object)  # rebuilt below
        categories = stripped
        control = np.fromiter((bool(_CONTROL_RE.search(u)) for u in categories), bool, len(categories))
    empty = categories == ""
    known = codes >= 0
    safe = np.maximum(codes, 0)
    missing = ~known | (empty[safe] if len(categories) else True)
    invalid = (control[safe] if len(categories) else False) & ~missing
    if not isinstance(ids.dtype, pd.CategoricalDtype):
        dtype = pd.CategoricalDtype(pd.Index(categories, dtype=object))
        ids = pd.Series(pd.Categorical.from_codes(codes, dtype=dtype), index=ids.index)
    return ids, missing, invalid


def _parse_numbers(raw: pd.Series) -> np.ndarray:
    """float64 values of a string column (NaN where missing or not a number), parsing each unique once."""
    codes, uniques = pd.factorize(raw, use_na_sentinel=True)
    numbers = pd.to_numeric(pd.Series(np.asarray(uniques, dtype=object)).str.strip(), errors="coerce")
    values = np.asarray(numbers, dtype=np.float64)
    return np.where(codes >= 0, values[np.maximum(codes, 0)] if len(values) else np.nan, np.nan)


def _fail_at(path: Path, mask: np.ndarray, values: pd.Series, what: str, offset: int, fix: str) -> None:
    if mask.any():
        i = int(np.flatnonzero(mask)[0])
        raise DataError(f"File {path}, data row {i + 1 + offset}: {what} ({values.iloc[i]!r}); "
                        f"{int(mask.sum())} row(s) have this problem.", fix)


#: Largest magnitude a rating may have: ratings are stored as float32, larger values would become inf.
RATING_MAX = float(np.finfo(np.float32).max)
#: Timestamps are stored as int64; float64 values at or beyond 2**63 do not fit.
_INT64_LIMIT = float(2 ** 63)


def _parse_timestamps(raw: pd.Series) -> tuple[np.ndarray, np.ndarray | None]:
    """float64 timestamps (NaN where missing or not a number) and, when every value is a whole number
    that fits int64, the exact int64 values. Integer literals beyond 2**53, whose digits float64 would
    round (nanosecond timestamps), are read from their text."""
    codes, uniques = pd.factorize(raw, use_na_sentinel=True)
    text = pd.Series(np.asarray(uniques, dtype=object), dtype=object).str.strip()
    values = np.asarray(pd.to_numeric(text, errors="coerce"), dtype=np.float64)
    exact_uniques = np.zeros(len(text), np.int64)
    with np.errstate(invalid="ignore"):
        whole = np.isfinite(values) & (np.abs(values) < _INT64_LIMIT) & (values == np.floor(values))
        big = np.flatnonzero(np.isfinite(values) & (np.abs(values) >= 2.0 ** 53))
    exact_uniques[whole] = values[whole].astype(np.int64)
    if len(big):
        parts = text.iloc[big].str.extract(r"^([+-]?)(\d{1,19})$").fillna("")
        digits = parts[1].to_numpy(object)
        limit = np.where(parts[0].to_numpy(object) == "-", "9223372036854775808", "9223372036854775807")
        lengths = parts[1].str.len().to_numpy()
        literal = (lengths > 0) & ((lengths < 19) | (digits <= limit))  # equal lengths compare as numbers
        exact_uniques[big[literal]] = text.iloc[big[literal]].astype(np.int64).to_numpy()
        whole[big[literal]] = True
    if (codes < 0).any() or not whole.all():
        return np.where(codes >= 0, values[np.maximum(codes, 0)] if len(values) else np.nan, np.nan), None
    exact = exact_uniques[codes]
    return exact.astype(np.float64), exact


def read_interactions(path: str | os.PathLike, *, sep: str | None = None, header: bool | None = None,
                      strict: bool = True) -> pd.DataFrame:
    """Read an interaction file.

    Args:
        path: The file.
        sep: Column separator; ``None`` detects tab, comma, semicolon or whitespace from the first line.
        header: Whether the first line names the columns; ``None`` detects it.
        strict: Raise on the first bad value; otherwise bad values become NaN for :func:`clean`.

    Returns:
        Columns ``user``, ``item`` (strings) and, when present, ``rating`` (float64) and ``timestamp``
        (int64 in strict mode, float64 with NaN otherwise), in file order.

    Raises:
        DataError: Missing, empty, unreadable or not a regular file, wrong number of columns, or
            (strict) an empty, missing or malformed id, a missing, NaN, infinite or non-numeric rating
            or timestamp, a rating beyond the float32 range, or a timestamp that is not a whole number
            fitting int64 (in lenient mode those values become NaN). A UTF-8 byte order mark is skipped.
    """
    path = check_file(path)
    lines = _first_lines(path)
    if not lines:
        raise DataError(f"Interaction file {path} is empty.", f"Give a file with one interaction per line; {_FORMAT}.")
    sep = sep or sniff_separator(lines[0])
    first = _split(lines[0], sep)
    if header is None:
        header = _looks_like_header(first, _split(lines[1], sep) if len(lines) > 1 else None)
    try:
        frame = pd.read_csv(path, sep=sep, header=None, skiprows=1 if header else 0, dtype=object,
                            keep_default_na=False, na_values=[""], skip_blank_lines=True, encoding="utf-8-sig")
    except pd.errors.EmptyDataError:
        raise DataError(f"Interaction file {path} has a header line but no data.",
                        "Add interaction rows below the header.") from None
    except (pd.errors.ParserError, ValueError, UnicodeDecodeError) as exc:
        raise DataError(f"Interaction file {path} could not be parsed: {str(exc).strip()}",
                        f"Make every line have the same number of fields; {_FORMAT}.") from None
    except OSError as exc:
        raise DataError(f"Interaction file {path} cannot be read: {exc.strerror or exc}.",
                        "Check its permissions (it must be readable by you).") from None
    names = _column_names(path, first if header else None, frame.shape[1])
    frame.columns = range(frame.shape[1])
    frame = frame[[i for i, n in enumerate(names) if n is not None]]
    frame.columns = [n for n in names if n is not None]
    frame = frame[[c for c in COLUMNS if c in frame.columns]]
    if frame.empty:
        raise DataError(f"Interaction file {path} has no data rows.", f"Give one interaction per line; {_FORMAT}.")
    offset = 1 if header else 0
    for col in ("user", "item"):
        frame[col], missing, invalid = validate_ids(frame[col])
        if strict:
            _fail_at(path, missing, frame[col], f"empty or missing {col} id", offset,
                     f"Give every row a non-empty {col} id; {_FORMAT}.")
            _fail_at(path, invalid, frame[col], f"malformed {col} id (control characters)", offset,
                     "Remove control characters (e.g. stray tabs or line breaks) from the ids.")
        else:
            frame[col] = frame[col].where(~(missing | invalid))
    for col in ("rating", "timestamp"):
        if col in frame.columns:
            raw = frame[col]
            exact = None
            if col == "timestamp":
                values, exact = _parse_timestamps(raw)
            else:
                values = _parse_numbers(raw)
            bad = ~np.isfinite(values)
            with np.errstate(invalid="ignore"):
                if col == "rating":  # stored as float32: larger magnitudes would turn into inf
                    unfit = ~bad & (np.abs(values) > RATING_MAX)
                    unfit_what = "rating is too large (beyond the float32 range, about 3.4e38)"
                    unfit_fix = "Give ratings on their usual scale (e.g. 1-5)."
                elif exact is not None:
                    unfit = np.zeros(len(values), bool)
                else:
                    unfit = ~bad & ((np.abs(values) >= _INT64_LIMIT) | (values != np.floor(values)))
                    unfit_what = "timestamp is not a whole number that fits a 64-bit integer"
                    unfit_fix = "Give timestamps as whole numbers, e.g. Unix seconds (round fractional seconds)."
            if strict:
                _fail_at(path, bad & raw.isna().to_numpy(), raw, f"missing {col}", offset,
                         f"Give every row a {col}, or drop the {col} column.")
                _fail_at(path, np.isnan(values), raw, f"{col} is NaN or not a number", offset,
                         f"Make every {col} a finite number.")
                _fail_at(path, bad, raw, f"{col} is infinite", offset, f"Make every {col} a finite number.")
                if unfit.any():
                    _fail_at(path, unfit, raw, unfit_what, offset, unfit_fix)
                values = exact if exact is not None else (values.astype(np.int64) if col == "timestamp" else values)
            else:
                values = np.where(unfit, np.nan, values)
            frame[col] = values
    return frame.reset_index(drop=True)
