"""The kiosk's configuration: one TOML file validated into strict pydantic models.

Each section lives in its own module (``site``, ``thermometer``, ``readers``, ``gate``,
``policy``, ``engine``, ``store``, ``web``). Defaults run the demo with no file at all.
Secrets are never read from here: see ``kiosk.secrets``.
"""

from __future__ import annotations

import json
import re
import tomllib
from collections.abc import Callable, Collection
from datetime import date, datetime, time
from pathlib import Path
from typing import Any

from pydantic import Field, ValidationError, model_validator
from pydantic_core import ErrorDetails

from kiosk.files import UnreadableFile, read_bounded

from ._base import Section
from .engine import EngineSection
from .fleet import FleetSection
from .gate import GateSection
from .policy import PolicySection
from .readers import ReadersSection
from .site import SiteConfig
from .store import StoreSection
from .thermometer import ThermometerSection
from .web import WebSection

__all__ = [
    "ConfigError",
    "KioskConfig",
    "check_file",
    "check_paths",
    "load_config",
    "parse_config",
]


class KioskConfig(Section):
    site: SiteConfig = Field(default_factory=SiteConfig)
    """Identity and language."""
    thermometer: ThermometerSection = Field(default_factory=ThermometerSection)
    readers: ReadersSection = Field(default_factory=ReadersSection)
    gate: GateSection = Field(default_factory=GateSection)
    policy: PolicySection = Field(default_factory=PolicySection)
    engine: EngineSection = Field(default_factory=EngineSection)
    store: StoreSection = Field(default_factory=StoreSection)
    web: WebSection = Field(default_factory=WebSection)
    fleet: FleetSection = Field(default_factory=FleetSection)
    """The office's signed list bundle, fetched on a schedule (docs/fleet.md)."""

    @model_validator(mode="after")
    def _passes_need_a_reader(self) -> KioskConfig:
        if self.policy.mode != "temperature_only" and not self.readers.sources:
            raise ValueError(
                f"readers.sources: policy.mode {self.policy.mode!r} checks passes: name at least"
                " one code reader (or mode 'temperature_only')"
            )
        return self

    @model_validator(mode="after")
    def _lanes_named(self) -> KioskConfig:
        if self.site.direction == "both" and self.site.direction_from == "readers":
            missing = [s.name for s in self.readers.sources if s.direction is None]
            if missing:
                raise ValueError(
                    "site.direction_from = 'readers' needs a `direction` on every reader;"
                    f" missing on {missing}"
                )
        return self

    @model_validator(mode="after")
    def _retention_covers_quota(self) -> KioskConfig:
        # The quota's look-back is rebuilt from the log's households at start: a purge that
        # nulls them sooner lets a household out again after a restart.
        quota = self.policy.quota
        if quota.enabled and self.store.retention_days < quota.period_days:
            raise ValueError(
                f"store.retention_days ({self.store.retention_days}) is shorter than"
                f" policy.quota.period_days ({quota.period_days}): after a restart the quota"
                " would not see exits whose household was already purged"
            )
        return self


class ConfigError(Exception):
    """A config that cannot be used. ``problems`` holds one ``field.path: reason`` per issue."""

    def __init__(self, source: str, problems: list[str]) -> None:
        self.source = source
        self.problems = problems
        super().__init__(f"{source}: " + "; ".join(problems))


def _loc(loc: tuple[int | str, ...], tags: Collection[str] = ()) -> tuple[str, bool]:
    """The ``field.path`` of an error, and whether a union member's label was left out of it."""
    parts: list[str] = []
    in_union = False
    for item in loc:
        if isinstance(item, int):
            parts.append(f"[{item}]")
        elif parts and (item in _UNION_TAGS or item in tags):
            # A union adds the member it tried to the path ("mlx90614", "int"): keep it out.
            in_union = True
        else:
            parts.append(("." if parts else "") + item)
    return "".join(parts) or "(root)", in_union


_UNION_TAGS = {
    "mlx90614",
    "fake",
    "camera",
    "picamera",
    "serial",
    "fake_camera",
    "serial_relay",
    "gpio",
    "none",
    # A setting that takes either of two types (readers' `device`): each tried in turn.
    "int",
    "str",
    "constrained-int",
    "constrained-str",
}


def _toml_kind(value: object) -> str:
    """What TOML type a value was written as, for "should be X (got Y)"."""
    kinds: tuple[tuple[type, str], ...] = (
        (bool, "a boolean"),  # before int: a bool is an int to Python
        (int, "an integer"),
        (float, "a decimal number"),
        (str, "a string"),
        (list, "an array"),
        (dict, "a table"),
        (datetime, "a date and time"),  # before date: a datetime is a date to Python
        (date, "a date"),
        (time, "a time of day"),
    )
    return next((name for kind, name in kinds if isinstance(value, kind)), "another kind of value")


#: What a value of the wrong type should have been, in TOML's words, by pydantic error type.
_EXPECTED = {
    "bool_type": "true or false",
    "int_type": "an integer",
    "float_type": "a decimal number",
    "string_type": "a string",
    "time_type": 'a time of day (08:30:00 or "08:30")',
    "date_type": "a date (2026-03-02)",
    "datetime_type": "a date and time with its offset (2026-03-02T09:00:00+08:00)",
    "path_type": "a path (a string)",
    **dict.fromkeys(("list_type", "tuple_type", "set_type", "frozen_set_type"), "an array"),
    **dict.fromkeys(
        ("dict_type", "model_type", "model_attributes_type", "dataclass_type"), "a table"
    ),
}
#: A quoted value that is what TOML writes without quotes: its own type, by error type.
_UNQUOTED: dict[str, tuple[type, ...]] = {
    "bool_type": (bool,),
    "int_type": (int,),
    "float_type": (int, float),
}


def _shown(value: object) -> str:
    """A value as TOML writes it, cut short (it is repeated in a message)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e15:
        return str(int(value))  # a bound of 40.0 reads "at most 40"
    if isinstance(value, str):
        text = json.dumps(value, ensure_ascii=False)
        return text if len(text) <= 42 else text[:40] + '…"'
    return str(value)


def _got(kind: str, value: object) -> str:
    """``(got a string: write 3000 without the quotes)``: what was written, and how to write
    it where the mistake is a common one (quotes around a number, ``3000.0`` for ``3000``)."""
    got = _toml_kind(value)
    text = value.strip() if isinstance(value, str) else ""
    if text and len(text) <= 32 and "\n" not in text and kind in _UNQUOTED:
        try:
            unquoted = tomllib.loads(f"v = {text}")["v"]
        except tomllib.TOMLDecodeError:
            unquoted = None
        if type(unquoted) in _UNQUOTED[kind]:
            return f"(got a string: write {text} without the quotes)"
    if kind == "int_type" and isinstance(value, float) and value.is_integer():
        return f"(got a decimal number: write {int(value)})"
    return f"(got {got})"


def _choices(expected: object) -> str:
    """pydantic's ``'a', 'b' or 'c'`` as TOML strings: ``one of "a", "b", "c"``."""
    names = re.findall(r"'([^']*)'", str(expected))
    if not names:
        return str(expected)
    quoted = ", ".join(json.dumps(name) for name in names)
    return quoted if len(names) == 1 else f"one of {quoted}"


def _entries(count: object) -> str:
    return f"{count} entry" if count == 1 else f"{count} entries"


#: A bound a number broke: pydantic's error type -> (its context key, the words).
_BOUNDS = {
    "greater_than": ("gt", "more than"),
    "greater_than_equal": ("ge", "at least"),
    "less_than": ("lt", "less than"),
    "less_than_equal": ("le", "at most"),
}


def _reason(err: ErrorDetails) -> str:
    """One error in TOML's words: what to write, with the bound or the choices."""
    kind, ctx, value = err["type"], err.get("ctx", {}), err.get("input")
    if kind in _EXPECTED:
        return f"should be {_EXPECTED[kind]} {_got(kind, value)}"
    if kind in _BOUNDS:
        key, words = _BOUNDS[kind]
        return f"should be {words} {_shown(ctx.get(key))} (got {_shown(value)})"
    if kind in ("literal_error", "enum"):
        got = _shown(value) if isinstance(value, str) else _toml_kind(value)
        return f"should be {_choices(ctx.get('expected'))} (got {got})"
    worded: dict[str, Callable[[], str]] = {
        "missing": lambda: "missing (this key is required)",
        "extra_forbidden": lambda: "unknown key (check its spelling and the table it is in)",
        "string_too_short": lambda: (
            "should not be empty"
            if ctx.get("min_length") == 1
            else f"should be at least {ctx.get('min_length')} characters long"
        ),
        "string_too_long": lambda: (
            f"should be at most {ctx.get('max_length')} characters long"
            f" (got {len(value) if isinstance(value, str) else '?'})"
        ),
        "too_short": lambda: f"should have at least {_entries(ctx.get('min_length'))}",
        "too_long": lambda: (
            f"should have at most {_entries(ctx.get('max_length'))}"
            f" (got {ctx.get('actual_length')})"
        ),
        "string_pattern_mismatch": lambda: (
            f"should match the pattern {ctx.get('pattern')} (got {_shown(value)})"
        ),
        "union_tag_invalid": lambda: (
            f"should be {_choices(ctx.get('expected_tags'))} (got {_shown(ctx.get('tag'))})"
        ),
        "union_tag_not_found": lambda: "missing (it names the kind of this table: see the docs)",
        "value_error": lambda: str(ctx.get("error", err["msg"])),
        "assertion_error": lambda: str(ctx.get("error", err["msg"])),
    }
    return worded[kind]() if kind in worded else err["msg"].removeprefix("Input ")


def _where(err: ErrorDetails, tags: Collection[str]) -> tuple[str, bool]:
    where, in_union = _loc(err["loc"], tags)
    if err["type"] in ("union_tag_invalid", "union_tag_not_found"):
        # The mistake is in the key that picks the kind (`type`), not the whole table.
        key = str(err.get("ctx", {}).get("discriminator", "type")).strip("'")
        where = f"{where}.{key}" if where != "(root)" else key
    return where, in_union


def _refused(err: ErrorDetails, in_union: bool) -> bool:
    """A union member's "not my type" (one of several tried)."""
    return in_union and err["type"] in _EXPECTED


def validation_problems(exc: ValidationError, union_tags: Collection[str] = ()) -> list[str]:
    """One ``field.path: reason`` per mistake, in TOML's words: what to write (a table, an
    array, a string, an integer, a decimal number, true or false, a time of day, one of the
    choices) with the bound or the choices, and what was written (``pulse_ms = "3000"``:
    ``gate.pulse_ms: should be an integer (got a string: write 3000 without the quotes)``).
    A setting that takes either of two types is one line (``should be an integer or a
    string``); ``union_tags``: more labels a union adds to the path, left out of it."""
    errors = [(err, *_where(err, union_tags)) for err in exc.errors(include_url=False)]
    # A union member refusing the type where another member took it: the other's mistake
    # (a bound, a key of its table) is the one to show.
    taken = [where for err, where, in_union in errors if not _refused(err, in_union)]
    expected: dict[str, list[str]] = {}
    got: dict[str, str] = {}
    problems: dict[str, None] = {}  # in order, once each
    for err, where, in_union in errors:
        kind = err["type"]
        if not _refused(err, in_union):
            problems[f"{where}: {_reason(err)}"] = None
        elif not any(w == where or w.startswith((f"{where}.", f"{where}[")) for w in taken):
            # Every member refused the type: one line ("an integer or a string").
            expected.setdefault(where, []).append(_EXPECTED[kind])
            got.setdefault(where, _got(kind, err.get("input")))
            problems[where] = None
    return [
        f"{p}: should be {' or '.join(dict.fromkeys(expected[p]))} {got[p]}" if p in expected else p
        for p in problems
    ]


#: Config files are small; anything bigger is not a config (and is refused before parsing).
MAX_CONFIG_BYTES = 1_048_576
_TOO_DEEP = "(toml): nested too deeply (a config needs only a few levels)"


def parse_config(data: dict[str, Any], source: str = "<config>") -> KioskConfig:
    try:
        return KioskConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(source, validation_problems(exc)) from None
    except RecursionError:
        raise ConfigError(source, [_TOO_DEEP]) from None


def check_paths(
    config: KioskConfig, root: Path | None = None, made: Collection[str] = ()
) -> list[str]:
    """Problems with the paths a config names that exist outside it (``check-config`` and
    ``kiosk run``): one ``field.path: reason`` each. Relative paths are left to the data dir.
    ``root``: look for absolute paths under this directory (an install into ``--root``).
    ``made``: folders the caller makes before the daemon runs (the installer's own, checked
    before it made them), taken as existing."""

    def where(path: str) -> Path:
        return root / path.lstrip("/") if root is not None else Path(path)

    problems: list[str] = []
    trust = config.policy.trust_dir
    if trust is not None and trust.rstrip("/") not in made and not where(trust).is_dir():
        problems.append(f"policy.trust_dir: {trust} is not an existing directory")
    trace = getattr(config.thermometer.driver, "trace", None)
    if isinstance(trace, str) and not where(trace).is_file():
        problems.append(f"thermometer.driver.trace: {trace} is not a file")
    for i, source in enumerate(config.readers.sources):
        images = getattr(source, "images", None)
        if isinstance(images, str) and not where(images).exists():
            problems.append(f"readers.sources[{i}].images: {images} does not exist")
    return problems


def read_toml(path: Path) -> dict[str, Any]:
    """The TOML of a config file, read no further than ``MAX_CONFIG_BYTES``; every problem a
    ``ConfigError`` (the kiosk's config and the collector's)."""
    try:
        raw = read_bounded(path, MAX_CONFIG_BYTES)
    except UnreadableFile as exc:
        raise ConfigError(str(path), [f"(file): {exc}"]) from None
    try:
        return tomllib.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise ConfigError(str(path), ["(file): not UTF-8 text"]) from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(str(path), [f"(toml): {exc}"]) from None
    except RecursionError:
        raise ConfigError(str(path), [_TOO_DEEP]) from None


def check_file(
    path: str, root: Path | None = None, made: Collection[str] = ()
) -> tuple[KioskConfig | None, list[str]]:
    """A config file judged as the daemon loads it (``kiosk check-config``; scripts/install
    before it installs anything): the config, or None and one ``source: field.path: reason``
    line per problem. ``root`` and ``made`` as for ``check_paths``."""
    try:
        config = load_config(path)
    except ConfigError as exc:
        return None, [f"{exc.source}: {problem}" for problem in exc.problems]
    problems = [f"{path}: {problem}" for problem in check_paths(config, root, made)]
    return (None if problems else config), problems


def load_config(path: str | Path | None) -> KioskConfig:
    """Load and validate a TOML config; ``None`` gives the defaults (the demo's config)."""
    if path is None:
        return KioskConfig()
    return parse_config(read_toml(Path(path)), str(path))
