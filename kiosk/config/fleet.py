"""Fleet configuration: the office's collector, and the kiosk's list subscription.

``CollectorConfig`` is its own TOML file (``kiosk collect --config FILE``): the kiosks to pull,
where the central database is (its DSN comes from an environment variable, never the file:
it usually carries a password), how often to poll, and the status page's address.

``FleetSection`` is the kiosk-side ``[fleet]`` section of the kiosk's own config: where to
fetch the office's signed list bundle and how often.

Tokens are secrets too: each kiosk entry names an environment variable or a file (e.g. a
systemd credential) that holds its bearer token.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Self
from urllib.parse import urlsplit

from pydantic import Field, ValidationError, field_validator, model_validator

from kiosk.privacy import normalise_fields

from ._base import EnvName, Host, HostNames, LocalPath, Port, Section

__all__ = [
    "CollectorConfig",
    "FleetSection",
    "KioskSource",
    "TokenSource",
    "load_collector_config",
    "token_problem",
]


def refuse_credentials(url: str) -> str:
    """``url`` stripped, unless it carries ``user[:password]@`` before the host: then
    ``ValueError``, whose message does not repeat the URL. Kiosk URLs are shown and stored
    (pull errors, the status page, ``pull_sources``, logs); the kiosks authenticate bearer
    tokens, so a password in a URL would only be a secret on display."""
    url = url.strip()
    if "@" in urlsplit(url).netloc:
        raise ValueError(
            "URL must not carry a user name or password (user:password@host); the kiosks take"
            " a bearer token (token_env/token_file, --token, lists_token_env)"
        )
    return url


_DEFAULT_PORTS = {"http": 80, "https": 443}


def normalise_url(url: str) -> str:
    """``http(s)://host[:port][/prefix]`` without a trailing slash, one spelling per gate: the
    scheme and host lower-case (host names are case-insensitive), the host's trailing dot
    and the scheme's default port dropped, a non-ASCII host name in its IDNA (``xn--``)
    form; the path as typed. Raises ``ValueError``, also for a URL with a user name or
    password (``refuse_credentials``)."""
    parts = urlsplit(refuse_credentials(url))
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https") or not parts.netloc or not parts.hostname:
        raise ValueError(f"not an http(s) URL: {url!r}")
    if parts.query or parts.fragment:
        raise ValueError(f"URL must not have a query or fragment: {url!r}")
    try:
        port = parts.port
    except ValueError:  # "host:1:2": the pull says "not a usable URL" (httpx), as before
        return f"{scheme}://{parts.netloc.lower()}{parts.path.rstrip('/')}"
    host = _host(parts.hostname, url)
    netloc = host if port is None or port == _DEFAULT_PORTS[scheme] else f"{host}:{port}"
    return f"{scheme}://{netloc}{parts.path.rstrip('/')}"


def _host(hostname: str, url: str) -> str:
    """``hostname`` (``urlsplit`` lower-cased it) in the form a gate's URL is kept under."""
    if ":" in hostname:  # an IPv6 address
        return f"[{hostname}]"
    host = hostname.rstrip(".")
    if not host:
        raise ValueError(f"not an http(s) URL: {url!r}")
    if not host.isascii():
        try:
            host.encode("utf-8")
        except UnicodeEncodeError:  # undecodable bytes of argv: the CLI says "not UTF-8"
            return host
        try:
            host = host.encode("idna").decode("ascii")
        except UnicodeError:
            raise ValueError(f"not a host name in {url!r}") from None
    return host


class TokenSource(Section):
    """A kiosk asked over HTTP with a bearer token: its URL, and where its token is kept (never
    the token itself in the config). The office's ``[[kiosks]]`` and a gate's
    ``[[compound.peers]]``."""

    url: str = Field(min_length=8, max_length=500)
    """The kiosk's base URL, e.g. `https://gate-1.lan:8443` (no query; TLS: give the asking
    program the kiosk's certificate with SSL_CERT_FILE)."""
    token_env: EnvName | None = None
    """Environment variable holding a token of that kiosk: scope `logs:read` for the office
    (the pull and the daily report with its ledger counts), `passages:peer` for a peer gate."""
    token_file: LocalPath | None = None
    """File holding that token (e.g. `$CREDENTIALS_DIRECTORY/gate-1`); one line."""

    @field_validator("url")
    @classmethod
    def _url(cls, value: str) -> str:
        return normalise_url(value)

    @model_validator(mode="after")
    def _one_token_source(self) -> Self:
        if (self.token_env is None) == (self.token_file is None):
            raise ValueError(
                "give exactly one of token_env or token_file (where the kiosk's token is kept;"
                " never the token itself in the config)"
            )
        return self

    def token(self) -> str:
        """Read the token now (so a rotated credential is picked up); ``ValueError`` if absent."""
        return read_token(self.token_env, self.token_file)


class KioskSource(TokenSource):
    """One kiosk to pull (a gate that refuses the daily report is reported missing from the
    district's ledger figures)."""

    name: str | None = Field(None, min_length=1, max_length=64)
    """A label for the status page (default: the kiosk id it reports)."""


#: A token file holds one line; anything much larger is not a token (and is not read).
MAX_TOKEN_FILE_BYTES = 4096


def read_token(token_env: str | None, token_file: Path | None) -> str:
    """The bearer token in the environment variable ``token_env`` or the file ``token_file``
    (one of them), read now so a rotated credential is picked up; ``ValueError`` saying what
    is missing, or that it holds no token: one goes into an HTTP header, printable ASCII."""
    if token_env is not None:
        value = os.environ.get(token_env, "").strip()
        if not value:
            raise ValueError(f"environment variable {token_env} is not set")
        return _printable(value, f"environment variable {token_env}")
    assert token_file is not None
    try:
        with token_file.open("rb") as f:
            raw = f.read(MAX_TOKEN_FILE_BYTES + 1)
    except OSError as exc:
        raise ValueError(f"cannot read {token_file}: {exc.strerror or exc}") from None
    if len(raw) > MAX_TOKEN_FILE_BYTES:
        raise ValueError(f"{token_file} is larger than a token ({MAX_TOKEN_FILE_BYTES} bytes)")
    # utf-8-sig: the BOM Notepad writes first is not part of the token (nor CR LF, stripped).
    value = raw.decode("utf-8-sig", "replace").strip()
    if not value:
        raise ValueError(f"{token_file} is empty")
    return _printable(value, str(token_file))


def token_problem(token: str) -> str | None:
    """Why ``token`` cannot be sent as a bearer token (``does not hold a token: ...``), or
    None: a token is printable ASCII without spaces (httpx raises UnicodeEncodeError on any
    other header text)."""
    if all("!" <= c <= "~" for c in token):
        return None
    return (
        "does not hold a token: a token is printable ASCII without spaces"
        " (kt_<id>_<secret>, as `kiosk token new` printed it)"
    )


def _printable(token: str, where: str) -> str:
    """``token`` if it can be sent as a bearer token (``token_problem``), else ValueError."""
    if (why := token_problem(token)) is not None:
        raise ValueError(f"{where} {why}")
    return token


class CollectorConfig(Section):
    """``kiosk collect --config FILE``."""

    kiosks: Annotated[list[KioskSource], Field(min_length=1, max_length=500)]
    """The kiosks to pull (`[[kiosks]]` tables)."""
    database_dsn_env: EnvName = "KIOSK_FLEET_DSN"
    """Environment variable with the PostgreSQL DSN (`postgresql://...`)."""
    poll_interval_s: float = Field(10.0, ge=0.2, le=3600)
    """Pause between two pulls of the same kiosk."""
    error_backoff_max_s: float = Field(300.0, ge=1, le=3600)
    """Longest pause after repeated failures (doubles from poll_interval_s)."""
    max_concurrent: int = Field(8, ge=1, le=64)
    """Kiosks pulled at the same time (database connections)."""
    page_size: int = Field(5000, ge=1, le=10000)
    """Events per request."""
    retries: int = Field(3, ge=1, le=100)
    """Tries per request within one pull before it fails."""
    timeout_s: float = Field(30.0, ge=1, le=600)
    """HTTP timeout per request."""
    status_host: Host = "127.0.0.1"
    """Address of the status page and /metrics."""
    status_port: Port = 9110
    """Port of the status page (0: any free port)."""
    allowed_hosts: HostNames = ()
    """Host names, besides its IP addresses, `localhost` and this machine's own name (and
    `NAME.local`), under which the status page is reached (the gates' `lists_url`, e.g.
    `office.lan`); any other gets 421, so a page on another domain cannot read it by DNS
    rebinding (docs/network.md)."""
    lists_bundle_file: LocalPath | None = None
    """Signed list bundle (`kiosk fleet publish --out`) served to the kiosks at `/lists/bundle`;
    none: not served."""
    lists_token_env: EnvName | None = None
    """Environment variable with the bearer token the kiosks must send for `/lists/bundle` (their
    `[fleet] lists_token_env`). The bundle names quarantined households and people. None: the
    bundle is served on a loopback `status_host` only, and refused (403) on any other."""
    status_token_env: EnvName | None = None
    """Environment variable with the bearer token that reads the whole status (`/`,
    `/status.json`, `/metrics`) from another host: the gates' URLs and last errors and the
    database. Without it (or without the token) a caller on the LAN gets the public part; this
    host (loopback) always gets the whole (docs/fleet.md, *Who sees what on the status port*)."""
    retention_days: int = Field(30, ge=1, le=3650)
    """Personal fields of the events held centrally (names, households, pass ids, plates) older
    than this are nulled, hourly, as the gates purge theirs (the gates' `store.retention_days`;
    docs/privacy.md)."""

    personal_fields: tuple[str, ...] = Field((), max_length=16, strict=False)
    """Personal fields the collector asks the gates for unmasked (`?fields=`, e.g.
    `["household"]`: the district report tells households apart, for its outings per household
    and the quota, only with them); each gate's token then needs the `logs:personal` scope
    (else every pull is refused, 403). None: every personal field comes masked."""

    @field_validator("personal_fields")
    @classmethod
    def _known_fields(cls, values: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(sorted(normalise_fields(values)))

    @model_validator(mode="after")
    def _unique_urls(self) -> CollectorConfig:
        seen: set[str] = set()
        for i, kiosk in enumerate(self.kiosks):
            if kiosk.url in seen:
                raise ValueError(f"kiosks[{i}].url: {kiosk.url} is listed twice")
            seen.add(kiosk.url)
        return self

    def dsn(self) -> str:
        value = os.environ.get(self.database_dsn_env, "").strip()
        if not value:
            raise ValueError(f"set {self.database_dsn_env} to the PostgreSQL DSN")
        if not value.startswith(("postgresql://", "postgres://")):
            raise ValueError(f"{self.database_dsn_env} must be a postgresql:// DSN")
        return value


class FleetSection(Section):
    """Kiosk side: ``[fleet]`` — the office's list bundle, fetched on a schedule."""

    lists_url: str | None = Field(None, max_length=500)
    """URL of the office's signed list bundle (the collector serves `/lists/bundle`); none: lists
    are kept by hand and CSV only."""
    lists_poll_s: float = Field(300.0, ge=5, le=86400)
    """How often to ask for a newer bundle."""
    lists_timeout_s: float = Field(20.0, ge=1, le=300)
    """HTTP timeout per fetch."""
    lists_token_env: EnvName | None = None
    """Environment variable with the bearer token for `lists_url` (the collector's
    `lists_token_env`; it refuses the bundle on the LAN without one)."""

    @field_validator("lists_url")
    @classmethod
    def _url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        parts = urlsplit(refuse_credentials(value))
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError("must be an http(s) URL")
        return value.strip()


def load_collector_config(path: str | Path) -> CollectorConfig:
    """Load and validate a collector TOML file; raises ``kiosk.config.ConfigError``."""
    from kiosk.config import _TOO_DEEP, ConfigError, read_toml, validation_problems

    path = Path(path)
    data = read_toml(path)
    try:
        return CollectorConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(str(path), validation_problems(exc)) from None
    except RecursionError:
        raise ConfigError(str(path), [_TOO_DEEP]) from None
