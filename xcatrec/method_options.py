"""Method options written as ``NAME=VALUE`` text (the command line's ``--option``), checked by type.

Each value is read as JSON where it parses (``32``, ``0.5``, ``true``, ``[32, 16]``), else as plain
text, and must then fit the type of the config field of that name: a whole number for ``int`` fields
(``2.0`` is taken as 2, ``2.5`` is refused), a finite number for ``float`` fields, ``true``/``false``
for ``bool`` fields, text for ``str`` fields, a JSON list for ``tuple`` fields and ``null`` only where
the field allows ``None``. The config is then built once, so its own range checks (``epochs`` at
least 1, ...) also run before any data is loaded.

Importing this module is cheap; :func:`parse_options` imports :mod:`xcatrec.models` (and with it
TensorFlow) only when it runs, so that ``--help`` stays fast.
"""

from __future__ import annotations

import json
import math
import types
import typing
from dataclasses import MISSING, fields
from typing import Any, Mapping, Sequence

from xcatrec.errors import ConfigError


class _Unfit(Exception):
    """A value does not fit a field's type; the message says what the field takes."""


def _convert(value: Any, hint: Any, text: str | None) -> Any:
    """``value`` as the type ``hint`` describes; ``text`` is the raw text (for ``str`` fields)."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        rest = [a for a in args if a is not type(None)]
        if len(rest) == 1:
            return _convert(value, rest[0], text)
        raise _Unfit(f"one of {rest}")
    if value is None:
        raise _Unfit("a value, not null")
    if origin is tuple:
        if not isinstance(value, list):
            raise _Unfit("a JSON list, e.g. [32, 16] (or [] for none)")
        item = args[0] if args else Any
        try:
            return tuple(_convert(v, item, None) for v in value)
        except _Unfit as exc:
            raise _Unfit(f"a JSON list whose every item is {exc}") from None
    if hint is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "false"):
            return value.lower() == "true"
        raise _Unfit("true or false")
    if hint is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, float) and math.isfinite(value) and value.is_integer():
            return int(value)
        raise _Unfit("a whole number")
    if hint is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            if math.isfinite(value):
                return float(value)
            raise _Unfit("a finite number")
        raise _Unfit("a number")
    if hint is str:
        if isinstance(value, str):
            return value
        if text is not None and isinstance(value, (int, float)) and not isinstance(value, bool):
            return text  # e.g. checkpoint_dir=2024: the text as written
        raise _Unfit("text")
    return value  # a type this module does not know: the config checks it


def _example(field: Any) -> str:
    default = field.default if field.default is not MISSING else None
    if isinstance(default, tuple):
        default = list(default)
    if isinstance(default, str):
        return default or "..."
    return json.dumps(default)


def parse_options(method: str, texts: Sequence[str], *,
                  reserved: Mapping[str, tuple[str, str]] | None = None) -> dict[str, Any]:
    """Config fields of ``method`` from ``NAME=VALUE`` texts, each checked against its field's type.

    Args:
        method: A key of :data:`xcatrec.models.METHODS`.
        texts: The ``NAME=VALUE`` texts, e.g. ``["dim=32", "tower_units=[64, 32]"]``.
        reserved: Field names the caller sets itself, each with the (problem, fix) to report when
            given anyway (the command line reserves ``seed``); they are left out of the listing of
            valid names.

    Returns:
        Field name -> typed value, ready for :func:`xcatrec.models.make_model`.

    Raises:
        ConfigError: Unknown method; a text without ``=``; a name given twice, unknown or reserved;
            a value that does not fit its field's type; or a value the config itself refuses.
    """
    from xcatrec.models import METHODS

    reserved = dict(reserved or {})
    cls = METHODS.get(method)
    if cls is None:
        raise ConfigError(f"Unknown method {method!r}.", f"Use one of {sorted(METHODS)}.")
    config_class = cls.config_class
    by_name = {f.name: f for f in fields(config_class)}
    hints = typing.get_type_hints(config_class)
    valid = sorted(n for n in by_name if n not in reserved)
    out: dict[str, Any] = {}
    for text in texts:
        if "=" not in text:
            raise ConfigError(f"--option {text!r} is not of the form NAME=VALUE.", "Write e.g. --option dim=32.")
        name, raw = (part.strip() for part in text.split("=", 1))
        if name in reserved:
            raise ConfigError(*reserved[name])
        if name not in by_name:
            raise ConfigError(f"Unknown option {name!r} for method {method!r}.", f"Use one of {valid}.")
        if name in out:
            raise ConfigError(f"--option {name} is given twice.", f"Give --option {name}=... once.")
        try:
            value = json.loads(raw)
        except ValueError:
            value = raw  # not JSON: the text as written
        try:
            out[name] = _convert(value, hints[name], raw)
        except _Unfit as exc:
            raise ConfigError(f"--option {name}={raw}: {name} of method {method!r} must be {exc}.",
                              f"Write e.g. --option {name}={_example(by_name[name])}.") from None
    config_class(**out)  # the config's own checks (ranges, choices) run now, before any data is loaded
    return out
