"""The benchmark config: a JSON file read into frozen, checked dataclasses.

Format (JSON)::

    {"seeds": [0, 1, 2], "ks": [10],
     "methods": {"bpr-mf": {"epochs": 30}, "popularity": {}},
     "scenarios": [{"name": "elec-cloth-warm", "dataset": "amazon-elec-cloth", "source": "elec",
                    "target": "cloth", "split": "published", "protocols": ["full", "sampled-999"],
                    "methods": ["popularity", "bpr-mf"], "target_only": "bpr-mf"}]}

The top-level keys are the fields of :class:`BenchConfig`, a scenario's those of
:class:`ScenarioConfig`; a key left out takes the field's default (the one place defaults are
written), and an unknown key is refused.

The whole config is checked when it is built, before any data is loaded (types, seeds, cut-offs,
protocols, data sets, splits, scenario names, every method's options as each scenario resolves them),
so a typo fails in a second, not after hours.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from xcatrec.errors import ConfigError
from xcatrec.experiment import TUNE_SCOPES, VALID_USERS
from xcatrec.names import PROTOCOL_NAMES, SPLITS

#: How cross-listed twins of held-out target items are handled (see :func:`xcatrec.data.load_dataset`).
LEAKS = ("remove", "keep")
#: The seeds of a config that lists none.
SEEDS = (0, 1, 2)
_set = object.__setattr__  # fields of the frozen dataclasses, normalised once checked


def _numbers(values: Any, key: str, *, minimum: int, fix: str) -> tuple[int, ...]:
    """``values`` as a tuple; it must be a non-empty list of distinct whole numbers ``>= minimum``."""
    whole = lambda v: isinstance(v, int) and not isinstance(v, bool) and v >= minimum  # noqa: E731
    if not isinstance(values, (list, tuple)) or not values or not all(whole(v) for v in values):
        raise ConfigError(f"{key!r} must be a non-empty list of whole numbers >= {minimum}, got {values!r}.", fix)
    twice = sorted({v for v in values if values.count(v) > 1})
    if twice:
        raise ConfigError(f"{key!r} lists {twice} more than once.", "List each value once.")
    return tuple(values)


def _names(values: Any, key: str, where: str, fix: str) -> tuple[str, ...]:
    """``values`` as a tuple; it must be a non-empty list of distinct names."""
    if (not isinstance(values, (list, tuple)) or not values or not all(isinstance(v, str) for v in values)
            or len(set(values)) < len(values)):
        raise ConfigError(f"{key!r} must be a non-empty list of distinct names, got {values!r} in {where}.", fix)
    return tuple(values)


def _options_map(value: Any, key: str, where: str, fix: str) -> dict[str, dict[str, Any]]:
    """``value`` (method name -> option object) as a copy, or a :class:`ConfigError`."""
    if not isinstance(value, dict) or not all(isinstance(o, dict) for o in value.values()):
        raise ConfigError(f"{key!r} must map method names to option objects in {where}, got {value!r}.", fix)
    return {name: dict(options) for name, options in value.items()}


def _unknown_keys(raw: dict[str, Any], cls: type, where: str) -> None:
    valid = sorted(f.name for f in fields(cls))
    extra = sorted(set(raw) - set(valid))
    if extra:
        raise ConfigError(f"Unknown key(s) {extra} in {where}.", f"Use keys from {valid}.")


def resolved_options(method: str, options: dict[str, Any], where: str) -> dict[str, Any]:
    """The config fields ``method`` runs with (its defaults filled in, ``seed`` left out): each value
    checked against its field's type as the command line checks ``--option``
    (:func:`xcatrec.method_options.parse_options`), then the config built, so a bad name or value
    is a :class:`ConfigError` now."""
    from xcatrec.method_options import parse_options
    from xcatrec.models import METHODS

    seed = ("'seed' is not an option here: the benchmark sets it from 'seeds'.",
            "Drop it and list the seeds under 'seeds'.")
    try:
        options = parse_options(method, [f"{k}={json.dumps(v)}" for k, v in options.items()], reserved={"seed": seed})
        resolved = asdict(METHODS[method].config_class(**options))
    except ConfigError as err:
        raise ConfigError(f"{where}: {err.problem}", err.fix) from None
    resolved.pop("seed")
    return resolved


@dataclass(frozen=True)
class ScenarioConfig:
    """One scenario of a benchmark: a data set setting and the methods run on it.

    Args:
        name: Label of the scenario's records (unique in a config).
        dataset: Registered data set (see :data:`xcatrec.data.DATASETS`).
        methods: Methods run here, from the config's ``methods`` (default: all of them, in order).
        source: Source domain (``None``: the data set's default).
        target: Target domain (``None``: the data set's default).
        split: One of :data:`xcatrec.names.SPLITS` (``None``: the data set's default).
        beta: Fraction of overlapping users made cold (``split`` ``"cold-start"``), in (0, 1).
        protocols: Test protocols, from :data:`xcatrec.names.PROTOCOL_NAMES`.
        target_only: The scenario's target-only reference, one of ``methods`` (``None``: no
            comparison columns in the summary).
        options: Method name -> option overrides for this scenario.
        data: Extra loader options (synthetic data only), e.g. ``{"rho": 0.5}``.
        seeds: Seeds run here (default: the config's ``seeds``).
        leaks: ``"remove"`` or ``"keep"`` to override the config's ``leaks`` (``None``: the config's).
    """

    name: str
    dataset: str
    methods: tuple[str, ...]
    source: str | None = None
    target: str | None = None
    split: str | None = None
    beta: float = 0.2
    protocols: tuple[str, ...] = ("full",)
    target_only: str | None = None
    options: dict[str, dict[str, Any]] = field(default_factory=dict)
    data: dict[str, Any] = field(default_factory=dict)
    seeds: tuple[int, ...] = SEEDS
    leaks: str | None = None

    def __post_init__(self) -> None:
        from xcatrec.data.registry import get_spec
        from xcatrec.data.synthetic import SyntheticConfig

        if not isinstance(self.name, str) or not self.name.strip():
            raise ConfigError(f"A scenario has no name (got {self.name!r}).", 'Add "name": "some-label" to it.')
        where = f"scenario {self.name!r}"
        if not isinstance(self.dataset, str):
            raise ConfigError(f"{where} names no 'dataset'.", 'Add e.g. "dataset": "synthetic".')
        try:
            spec = get_spec(self.dataset)
        except ConfigError as err:
            raise ConfigError(f"{where}: {err.problem}", err.fix) from None
        for role in ("source", "target"):
            domain = getattr(self, role)
            if domain is not None and domain not in spec.domain_names:
                raise ConfigError(f"Unknown {role} domain {domain!r} in {where}.",
                                  f"Use one of {list(spec.domain_names)} (or leave {role!r} out).")
        if self.source is not None and self.source == self.target:
            raise ConfigError(f"Source and target are both {self.source!r} in {where}.",
                              f"Use two different domains of {list(spec.domain_names)}.")
        if self.split is not None and self.split not in SPLITS:
            raise ConfigError(f"Unknown split {self.split!r} in {where}.", f"Use one of {list(SPLITS)}.")
        if self.split == "published" and not spec.has_published_split:
            raise ConfigError(f"Data set {spec.name!r} has no published split ({where}).",
                              f"Use one of {[s for s in SPLITS if s != 'published']}.")
        if isinstance(self.beta, bool) or not isinstance(self.beta, (int, float)) or not 0 < self.beta < 1:
            raise ConfigError(f"beta must be a number strictly between 0 and 1, got {self.beta!r} in {where}.",
                              "Use e.g. 0.2, 0.5 or 0.8.")
        _set(self, "protocols", _names(self.protocols, "protocols", where,
                                       f"Use names from {list(PROTOCOL_NAMES)}."))
        unknown = [p for p in self.protocols if p not in PROTOCOL_NAMES]
        if unknown:
            raise ConfigError(f"Unknown protocol(s) {unknown} in {where}.", f"Use names from {list(PROTOCOL_NAMES)}.")
        if not isinstance(self.data, dict):
            raise ConfigError(f"'data' must be an object of loader options in {where}, got {self.data!r}.",
                              'Write e.g. "data": {"rho": 0.5}.')
        _set(self, "data", dict(self.data))
        if self.data and spec.name != "synthetic":
            raise ConfigError(f"'data' options {sorted(self.data)} in {where} apply only to the synthetic data set.",
                              "Drop 'data' from this scenario.")
        if "seed" in self.data:
            raise ConfigError(f"'data' sets 'seed' in {where}; the benchmark seeds the data with each run's seed.",
                              "Drop it and list the seeds under 'seeds'.")
        if self.data:
            try:
                SyntheticConfig.from_options(**self.data)
            except ConfigError as err:
                raise ConfigError(f"{where}: {err.problem}", err.fix) from None
            except (TypeError, ValueError) as err:
                raise ConfigError(f"Invalid 'data' options {self.data} in {where} ({err}).",
                                  "Give numbers where SyntheticConfig expects numbers.") from None
        _set(self, "methods", _names(self.methods, "methods", where, "Pick from the config's top-level methods."))
        if self.target_only is not None and self.target_only not in self.methods:
            raise ConfigError(f"target_only {self.target_only!r} of {where} is not one of its methods "
                              f"{list(self.methods)}.", "Name the scenario's target-only baseline among its methods.")
        _set(self, "options", _options_map(self.options, "options", where,
                                           'Write e.g. "options": {"cmf": {"loss": "mse"}}.'))
        stray = sorted(set(self.options) - set(self.methods))
        if stray:
            raise ConfigError(f"'options' of {where} set method(s) {stray} that the scenario does not run.",
                              f"Override only its methods {list(self.methods)}.")
        _set(self, "seeds", _numbers(self.seeds, "seeds", minimum=0, fix='Write e.g. "seeds": [0, 1, 2].'))
        if self.leaks is not None and self.leaks not in LEAKS:
            raise ConfigError(f"leaks must be 'remove' or 'keep', got {self.leaks!r} in {where}.",
                              'Leave "leaks" out (the config\'s) or write "keep" to measure the leak.')

    def part(self, methods: tuple[str, ...], **changes: Any) -> "ScenarioConfig":
        """The same scenario running only ``methods`` (their options kept, the others' dropped), with
        other fields changed as in :func:`dataclasses.replace` (e.g. ``seeds=(0,)``); run keys of the
        runs it keeps are unchanged (see :func:`xcatrec.bench.run_settings`)."""
        target_only = self.target_only if self.target_only in methods else None
        return replace(self, methods=tuple(methods), target_only=target_only,
                       options={m: o for m, o in self.options.items() if m in methods}, **changes)


@dataclass(frozen=True)
class BenchConfig:
    """A whole benchmark: methods x seeds x scenarios, and the protocol they run under.

    Args:
        methods: Method name -> options (config fields of the method; ``seed`` comes from ``seeds``).
        scenarios: The scenarios, in the order they run (names unique; JSON objects are read as such).
        seeds: Seeds of every scenario that lists none.
        ks: Cut-offs of the top-K metrics.
        validate_users: How many target validation users every run is also scored on (records of kind
            ``"valid"``, for :func:`xcatrec.bench.negative_transfer_flags`; 0 = all, ``None`` = none).
        tune: Trials of each method's hyper-parameter search (``None``: the options as given).
        tune_scope: ``"first-seed"`` (search once, reuse the choice) or ``"per-seed"``.
        refit: Refit on train + validation before testing.
        leaks: ``"remove"`` or ``"keep"`` the cross-listed twins of held-out target items.
        description: Free text, left out of every run's key.
    """

    methods: dict[str, dict[str, Any]]
    scenarios: tuple[ScenarioConfig, ...]
    seeds: tuple[int, ...] = SEEDS
    ks: tuple[int, ...] = (10,)
    validate_users: int | None = VALID_USERS
    tune: int | None = None
    tune_scope: str = "first-seed"
    refit: bool = True
    leaks: str = "remove"
    description: str = ""

    def __post_init__(self) -> None:
        from xcatrec.tuning import check_trials

        _set(self, "methods", _options_map(self.methods, "methods", "the config",
                                           'Write e.g. "methods": {"popularity": {}, "bpr-mf": {"epochs": 30}}.'))
        users = self.validate_users
        if users is not None and (isinstance(users, bool) or not isinstance(users, int) or users < 0):
            raise ConfigError(f"validate_users must be a whole number >= 0 or null, got {users!r}.",
                              f"Use {VALID_USERS} (0 scores every validation user; null skips validation).")
        _set(self, "seeds", _numbers(self.seeds, "seeds", minimum=0, fix='Write e.g. "seeds": [0, 1, 2].'))
        _set(self, "ks", _numbers(self.ks, "ks", minimum=1, fix='Write e.g. "ks": [10] or [5, 10, 20].'))
        if self.tune is not None:
            try:
                check_trials(self.tune)
            except ConfigError as err:
                raise ConfigError(f"{err.problem} (key 'tune')", 'Write e.g. "tune": 8, or null.') from None
        if self.tune_scope not in TUNE_SCOPES:
            raise ConfigError(f"tune_scope must be one of {list(TUNE_SCOPES)}, got {self.tune_scope!r}.",
                              'Write "tune_scope": "first-seed".')
        if not isinstance(self.refit, bool):
            raise ConfigError(f"refit must be true or false, got {self.refit!r}.", 'Write "refit": true.')
        if self.leaks not in LEAKS:
            raise ConfigError(f"leaks must be 'remove' or 'keep', got {self.leaks!r}.",
                              'Write "leaks": "remove" (the default) or "keep" to measure the leak.')
        if not isinstance(self.description, str):
            raise ConfigError("'description' must be text.", "Write it as one JSON string.")
        for method, options in self.methods.items():  # an unknown method too
            resolved_options(method, options, f"method {method!r}")
        if not isinstance(self.scenarios, (list, tuple)) or not self.scenarios:
            raise ConfigError(f"'scenarios' must be a non-empty list, got {self.scenarios!r}.",
                              'Write e.g. "scenarios": [{"name": "warm", "dataset": "synthetic"}].')
        _set(self, "scenarios", tuple(s if isinstance(s, ScenarioConfig) else _scenario(s, n, self)
                                      for n, s in enumerate(self.scenarios, 1)))
        names = [s.name for s in self.scenarios]
        twice = sorted({n for n in names if names.count(n) > 1})
        if twice:
            raise ConfigError(f"Two scenarios are named {twice[0]!r}.",
                              "Give every scenario its own name (records are labelled with it).")
        for scenario in self.scenarios:
            missing = sorted(set(scenario.methods) - set(self.methods))
            if missing:
                raise ConfigError(f"Scenario {scenario.name!r} uses method(s) {missing} that the config does "
                                  "not define.", "Add them under the top-level 'methods'.")
            for method in scenario.methods:
                resolved_options(method, self.options(scenario, method),
                                 f"scenario {scenario.name!r}, method {method!r}")

    def options(self, scenario: ScenarioConfig, method: str) -> dict[str, Any]:
        """The options ``method`` runs with in ``scenario``: the config's, with the scenario's overrides."""
        return {**self.methods[method], **scenario.options.get(method, {})}

    def scenario(self, name: str) -> ScenarioConfig:
        """The scenario called ``name``."""
        for scenario in self.scenarios:
            if scenario.name == name:
                return scenario
        raise ConfigError(f"No scenario is named {name!r}.", f"Use one of {[s.name for s in self.scenarios]}.")

    @classmethod
    def from_dict(cls, raw: Any) -> "BenchConfig":
        """Build from a parsed JSON object."""
        if not isinstance(raw, dict):
            raise ConfigError(f"The config is a JSON {type(raw).__name__}, not an object.",
                              'Write {"methods": {...}, "scenarios": [...]} (see `python -m xcatrec bench --help`).')
        for key in ("methods", "scenarios"):
            if key not in raw:
                raise ConfigError(f"The config has no {key!r}.", "See the format in `python -m xcatrec bench --help`.")
        _unknown_keys(raw, cls, "the config")
        return cls(**raw)


def _scenario(raw: Any, number: int, config: BenchConfig) -> ScenarioConfig:
    """Scenario ``number`` (from 1) of ``config``, with its ``methods`` and ``seeds`` as defaults."""
    if not isinstance(raw, dict):
        raise ConfigError(f"Scenario {number} is a {type(raw).__name__}, not an object.",
                          'Write each scenario as {"name": ..., "dataset": ..., ...}.')
    name = raw.get("name")
    if not isinstance(name, str) or not name.strip():
        raise ConfigError(f"Scenario {number} has no name.", 'Add "name": "some-label" to it.')
    _unknown_keys(raw, ScenarioConfig, f"scenario {name!r}")
    return ScenarioConfig(**{"dataset": None, "methods": tuple(config.methods), "seeds": config.seeds, **raw})


def load_config(path: str | Path) -> BenchConfig:
    """Read and check a whole benchmark config (see :class:`BenchConfig`); errors name the file, the
    key and the fix."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"Benchmark config {str(path)!r} does not exist.",
                          "Pass a JSON file such as configs/bench-quick.json.")
    try:
        raw = json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise ConfigError(f"{path} is not valid JSON ({err}).", "Fix the JSON syntax.") from None
    except (OSError, UnicodeDecodeError) as err:
        raise ConfigError(f"Cannot read benchmark config {path} ({err}).", "Pass a readable UTF-8 JSON file.") from None
    try:
        return BenchConfig.from_dict(raw)
    except ConfigError as err:
        raise ConfigError(f"{path}: {err.problem}", err.fix) from None
