"""The kiosk's configuration: one TOML file validated into strict pydantic models.

Each section lives in its own module (``site``, ``thermometer``, ``readers``, ``gate``,
``policy``, ``engine``, ``store``, ``web``); a mistake is reported in TOML's words
(``problems``). Defaults run the demo with no file at all.
Secrets are never read from here: see ``kiosk.secrets``.
"""

from __future__ import annotations

import tomllib
from collections.abc import Collection, Mapping
from pathlib import Path
from typing import Any

from pydantic import Field, ValidationError, model_validator

from kiosk.files import UnreadableFile, read_bounded

from ._base import Section
from .compound import CompoundSection
from .engine import EngineSection
from .fleet import FleetSection, token_problem
from .gate import GateSection, SerialRelayConfig
from .pihealth import PiHealthSection
from .policy import PolicySection
from .problems import validation_problems
from .readers import HidReaderConfig, ReadersSection, SerialReaderConfig
from .site import SiteConfig
from .store import StoreSection
from .thermometer import ThermometerSection
from .web import WebSection

__all__ = [
    "ConfigError",
    "KioskConfig",
    "check_file",
    "check_environment",
    "check_paths",
    "store_folder_missing",
    "store_folder_problem",
    "trust_dir",
    "load_config",
    "parse_config",
    "validation_problems",
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
    compound: CompoundSection = Field(default_factory=CompoundSection)
    """The compound's other gates, whose passages the quota and anti-passback count too
    (docs/operations.md, "Several gates")."""
    pi_health: PiHealthSection = Field(default_factory=PiHealthSection)
    """The Pi's own power and heat, read from the kernel (docs/operations.md, "Power and
    heat")."""

    @model_validator(mode="after")
    def _passes_need_a_reader(self) -> KioskConfig:
        if self.policy.mode != "temperature_only" and not self.readers.sources:
            raise ValueError(
                f"readers.sources: policy.mode {self.policy.mode!r} checks passes: name at least"
                " one code reader (or mode 'temperature_only')"
            )
        return self

    @model_validator(mode="after")
    def _peers_are_others(self) -> KioskConfig:
        for i, peer in enumerate(self.compound.peers):
            if peer.kiosk_id == self.site.kiosk_id:
                raise ValueError(
                    f"compound.peers[{i}].kiosk_id: {peer.kiosk_id} is this kiosk's own"
                    " site.kiosk_id; list the compound's other gates only"
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
    def _one_device_per_serial_port(self) -> KioskConfig:
        # Two devices on one port: the relay's frames would go into the scanner module (and
        # each takes its port exclusively: the second is a fault blaming another program).
        ports = [
            (f"readers.sources[{i}].port", source.port)
            for i, source in enumerate(self.readers.sources)
            if isinstance(source, SerialReaderConfig)
        ]
        if isinstance(self.gate.driver, SerialRelayConfig):
            ports.append(("gate.driver.port", self.gate.driver.port))
        first: dict[str, str] = {}
        for where, port in ports:
            if port in first:
                raise ValueError(
                    f"{where}: {port} is {first[port]} too; each serial device (a scanner,"
                    " the relay) needs its own port (ls -l /dev/serial/by-id/, docs/wiring.md)"
                )
            first[port] = where
        return self

    @model_validator(mode="after")
    def _one_reader_per_input_node(self) -> KioskConfig:
        # Each keyboard-mode scanner takes its node for itself: a second source on the same
        # node could never open it (a fault blaming "another program").
        first: dict[str, int] = {}
        for i, source in enumerate(self.readers.sources):
            if not isinstance(source, HidReaderConfig):
                continue
            if source.device in first:
                raise ValueError(
                    f"readers.sources[{i}].device: {source.device} is"
                    f" readers.sources[{first[source.device]}].device too; a scanner is read"
                    " by one source (ls -l /dev/input/by-id/, docs/readers.md)"
                )
            first[source.device] = i
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
    config: KioskConfig,
    root: Path | None = None,
    made: Collection[str] = (),
    data: Path | None = None,
) -> list[str]:
    """Problems with the paths a config names that exist outside it (``check-config`` and
    ``kiosk run``): one ``field.path: reason`` each. The folder of an absolute ``store.path``
    must exist (a relative one is made with the data dir). A relative ``policy.trust_dir`` is under
    the data dir: checked there when ``data`` is given (``kiosk run``), else left alone (a
    fake device's files are the emulator's, read from the current folder).
    ``root``: look for absolute paths under this directory (an install into ``--root``).
    ``made``: folders the caller makes before the daemon runs (the installer's own, checked
    before it made them), taken as existing."""

    def where(path: str) -> Path:
        return root / path.lstrip("/") if root is not None else Path(path)

    problems: list[str] = []
    trust = config.policy.trust_dir
    if trust is not None and trust.rstrip("/") not in made:
        if Path(trust).is_absolute():
            if not where(trust).is_dir():
                problems.append(f"policy.trust_dir: {trust} is not an existing directory")
        elif data is not None and not (data / trust).is_dir():
            problems.append(trust_dir_missing(trust, data / trust))
    if store_folder_missing(config, root, made, data):
        problems.append(store_folder_problem(config))
    trace = getattr(config.thermometer.driver, "trace", None)
    if isinstance(trace, str) and not where(trace).is_file():
        problems.append(f"thermometer.driver.trace: {trace} is not a file")
    for i, source in enumerate(config.readers.sources):
        images = getattr(source, "images", None)
        if isinstance(images, str) and not where(images).exists():
            problems.append(f"readers.sources[{i}].images: {images} does not exist")
    return problems


def check_environment(config: KioskConfig, environ: Mapping[str, str]) -> list[str]:
    """Problems with what a config names in the daemon's environment (``kiosk run``): one
    ``field.path: reason`` each, never the value. A ``[fleet] lists_token_env`` variable that
    is set must hold a token (printable ASCII): one pasted with an accent or a full-width
    character failed inside every list sync, in a log line, instead of stopping the start.
    Unset, the bundle is asked for without a token (the office says if it wants one)."""
    name = config.fleet.lists_token_env
    if name is None or not config.fleet.lists_url:
        return []
    value = environ.get(name, "").strip()
    why = token_problem(value) if value else None
    return [] if why is None else [f"fleet.lists_token_env: environment variable {name} {why}"]


def store_folder_missing(
    config: KioskConfig,
    root: Path | None = None,
    made: Collection[str] = (),
    data: Path | None = None,
) -> bool:
    """Whether the folder of an absolute ``store.path`` does not exist. The daemon never makes
    it (a USB disk that did not mount would get a new, empty event log on the card), unless it
    is inside the data dir or a folder in ``made``, made with them."""
    store = Path(config.store.path)
    folder = store.parent
    makers = [Path(m) for m in made] + ([data] if data is not None else [])
    if not store.is_absolute() or any(folder.is_relative_to(m) for m in makers):
        return False
    return not (root / str(folder).lstrip("/") if root is not None else folder).is_dir()


def trust_dir_missing(trust: str, folder: Path) -> str:
    """Why ``kiosk run`` refuses a relative ``policy.trust_dir`` (``trust``) that is not a
    folder under its data dir (``folder``): it makes only the default one, ``trust``."""
    return f"policy.trust_dir: {trust} (under the data dir: {folder}) is not an existing directory"


def trust_dir(config: KioskConfig, data_dir: Path) -> Path:
    """The trust folder: ``policy.trust_dir``, a relative one under the data dir (as
    ``store.path``), never the shell's current folder; without one ``DATA/trust``. (Here, not
    in ``kiosk.core``: check-config reads it without loading the store.)"""
    return data_dir / (config.policy.trust_dir or "trust")


def store_folder_problem(config: KioskConfig) -> str:
    folder = Path(config.store.path).parent
    return f"store.path: {folder} is not an existing directory (a disk not mounted?)"


def read_toml(path: Path) -> dict[str, Any]:
    """The TOML of a config file, read no further than ``MAX_CONFIG_BYTES``; every problem a
    ``ConfigError`` (the kiosk's config and the collector's)."""
    try:
        raw = read_bounded(path, MAX_CONFIG_BYTES)
    except UnreadableFile as exc:
        raise ConfigError(str(path), [f"(file): {exc}"]) from None
    try:
        # utf-8-sig: a byte order mark (Windows editors' "UTF-8 with BOM") is not text
        return tomllib.loads(raw.decode("utf-8-sig"))
    except UnicodeDecodeError as exc:
        raise ConfigError(str(path), [f"(file): {_not_utf8(raw, exc.start)}"]) from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(str(path), [f"(toml): {exc}"]) from None
    except RecursionError:
        raise ConfigError(str(path), [_TOO_DEEP]) from None


def _not_utf8(raw: bytes, start: int) -> str:
    """Where a config stops being UTF-8 and what to do: a Windows editor saved it in its own
    encoding (Notepad's "Unicode", UTF-16; its "ANSI", a comment in Chinese as GBK)."""
    if raw.startswith((b"\xff\xfe", b"\xfe\xff")):
        return "saved as UTF-16 (Notepad's 'Unicode'), not UTF-8 text: save it as UTF-8"
    line = raw.count(b"\n", 0, start) + 1
    begun = raw.rfind(b"\n", 0, start) + 1
    column = len(raw[begun:start].decode("utf-8-sig", "replace")) + 1
    return (
        f"not UTF-8 text at line {line}, column {column} (byte 0x{raw[start]:02x}): saved in"
        " another encoding (a Windows editor's 'ANSI')? save it as UTF-8"
    )


def check_file(
    path: str, root: Path | None = None, made: Collection[str] = (), data: Path | None = None
) -> tuple[KioskConfig | None, list[str]]:
    """A config file judged as the daemon loads it (``kiosk check-config``; scripts/install
    before it installs anything): the config, or None and one ``source: field.path: reason``
    line per problem. ``root``, ``made`` and ``data`` as for ``check_paths``."""
    try:
        config = load_config(path)
    except ConfigError as exc:
        return None, [f"{exc.source}: {problem}" for problem in exc.problems]
    problems = [f"{path}: {problem}" for problem in check_paths(config, root, made, data)]
    return (None if problems else config), problems


#: Why a config file that sets nothing is refused (empty, or comments only).
SETS_NOTHING = (
    "(file): sets nothing (empty, or comments only): cut short while it was saved (a power"
    " cut)? Restore it from the backup or systemd/kiosk.toml.example; the kiosk never runs on"
    " the built-in defaults (every device emulated)"
)


def load_config(path: str | Path | None) -> KioskConfig:
    """Load and validate a TOML config; ``None`` gives the defaults (the demo's config). A
    file that sets nothing is a ``ConfigError``: such a file is one a power cut emptied while
    it was saved in place, never a gate's config (its defaults are the demo's emulators)."""
    if path is None:
        return KioskConfig()
    data = read_toml(Path(path))
    if not data:
        raise ConfigError(str(path), [SETS_NOTHING])
    return parse_config(data, str(path))
