"""API bearer tokens for the office: scoped, shown once, stored hashed, revocable.

A token looks like ``kt_<id>_<secret>``: ``id`` is 8 hex characters (public, it names the
token in ``kiosk token list``, in audit rows and in rate limiting), ``secret`` is 32 random
bytes in URL-safe base64. Only ``HMAC-SHA256(pepper, secret)`` is stored, so a copy of the
database does not hold a usable token; the comparison is constant-time
(``hmac.compare_digest``) and an unknown id costs the same work as a known one.

The pepper: the ``token_pepper`` secret (``kiosk.secrets``: a systemd credential or
``KIOSK_TOKEN_PEPPER``) when it is set, so a stolen database file alone does not even allow
an offline guess; otherwise a random 32-byte pepper created once per database and kept in
its ``token_pepper`` table. Tokens carry 256 bits of entropy, so either way guessing is out of
reach; the secret pepper is defence in depth (one shorter than a key is taken, warned of:
``short_pepper``). Changing the pepper invalidates every token (issue new ones): it is the way
to revoke all at once.

Scopes: ``logs:read`` (events, masked, and the daily report), ``logs:personal`` (may ask
``?fields=`` to see personal fields unmasked), ``stats:read`` (the daily report alone and, when
not public, ``/metrics``), ``passages:peer`` (another gate of the compound: its passages, its
pokes and its closing notice).

A ``passages:peer`` token is issued for one gate (``peer``: its ``site.kiosk_id``, ``kiosk token
new --scope passages:peer --for north``): it pokes and says closing as that gate alone, so a
token made for (or leaked from) one gate cannot silence another's outage alarm. One made before
that (``peer`` null, "unbound") still works for any peer; the health report and ``kiosk token
list`` say so.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import secrets
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlite_utils import Database

from kiosk.clock import Clock
from kiosk.config.compound import KIOSK_ID_PATTERN
from kiosk.ports import Store
from kiosk.schema import sql_migrations
from kiosk.secrets import MAKE_A_KEY, MIN_KEY_CHARS, SecretError, get_secret

SCOPES: dict[str, str] = {
    "logs:read": "read events with personal fields masked (pull, CSV export), the daily report",
    "logs:personal": "may request personal fields unmasked with ?fields=",
    "stats:read": "read the daily report alone (and /metrics when it is not public)",
    "passages:peer": "another gate of the compound: this gate's recent passing passages"
    " (pass id, household, direction, time), for the shared quota and anti-passback",
}

TOKEN_RE = re.compile(r"^kt_([0-9a-f]{8})_([A-Za-z0-9_-]{43})$")
ID_RE = re.compile(r"^[0-9a-f]{8}\Z")
NAME_RE = re.compile(r"^[\w .:@-]{1,64}\Z")
PEER_RE = re.compile(KIOSK_ID_PATTERN.rstrip("$") + r"\Z")
PEER_SCOPE = "passages:peer"
#: What a ``passages:peer`` token issued for no gate allows (health, ``kiosk token list``).
UNBOUND_PEER = (
    "unbound: may poke and say closing as any gate of compound.peers (silencing that gate's"
    " outage alarm); replace it with kiosk token new --scope passages:peer --for KIOSK_ID"
)
_PEPPER_BYTES = 32

MIGRATIONS = sql_migrations(
    "kiosk.tokens",
    m001_api_tokens="""
    CREATE TABLE api_tokens (
        id TEXT PRIMARY KEY, name TEXT, scopes TEXT NOT NULL, secret_hash TEXT NOT NULL,
        created_at TEXT NOT NULL, revoked_at TEXT
    );
    CREATE TABLE token_pepper (id INTEGER PRIMARY KEY, pepper TEXT);
    """,
    # The gate a passages:peer token speaks for (null: issued before, unbound).
    m002_token_peer="ALTER TABLE api_tokens ADD COLUMN peer TEXT",
)


class TokenError(ValueError):
    """A token request that cannot be honoured (unknown scope, bad name, unknown id)."""


@dataclass(frozen=True)
class TokenInfo:
    id: str
    name: str
    scopes: frozenset[str]
    created_at: str
    revoked_at: str | None = None
    #: The gate (``site.kiosk_id``) a ``passages:peer`` token speaks for; None: any (unbound).
    peer: str | None = None

    @property
    def unbound_peer(self) -> bool:
        """A ``passages:peer`` token issued for no gate: it speaks for any."""
        return PEER_SCOPE in self.scopes and self.peer is None

    def speaks_for(self, kiosk_id: str) -> bool:
        """Whether this token may poke or say closing as gate ``kiosk_id``."""
        return self.peer is None or self.peer == kiosk_id

    @property
    def active(self) -> bool:
        return self.revoked_at is None

    def allows(self, scope: str) -> bool:
        return scope in self.scopes

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "scopes": sorted(self.scopes),
            "created_at": self.created_at,
            "revoked_at": self.revoked_at,
            "for": self.peer,
        }


def validate_scopes(scopes: Iterable[str]) -> frozenset[str]:
    out = frozenset(s.strip() for s in scopes if s.strip())
    if not out:
        raise TokenError(f"at least one scope is needed: {', '.join(SCOPES)}")
    unknown = sorted(out - SCOPES.keys())
    if unknown:
        raise TokenError(f"unknown scope {unknown[0]!r}; known: {', '.join(SCOPES)}")
    return out


def check_peer(scopes: frozenset[str], peer: str | None) -> None:
    """``TokenError`` unless ``peer`` (the gate a token is for) is None, or a kiosk id on a
    ``passages:peer`` token."""
    if peer is None:
        return
    if PEER_SCOPE not in scopes:
        raise TokenError(f"--for names the gate a {PEER_SCOPE} token is for: add that scope")
    if len(peer) > 64 or not PEER_RE.match(peer):
        raise TokenError("--for: a kiosk id (1-64 letters, digits, . _ -)")


def _db_pepper(store: Store) -> bytes:
    """The per-database pepper, created on first use (through the single writer)."""

    def get_or_create(db: Database) -> str:
        # Plain statements: sqlite-utils' insert reads the table's schema first (~0.2 ms of
        # every start, and of every core the tests build).
        row = db.execute("select pepper from token_pepper where id = 1").fetchone()
        if row is not None:
            return str(row[0])
        value = base64.b64encode(secrets.token_bytes(_PEPPER_BYTES)).decode("ascii")
        db.execute("insert into token_pepper (id, pepper) values (1, ?)", [value])
        return value

    return base64.b64decode(store.submit(get_or_create))


def secret_pepper(environ: Mapping[str, str] | None = None) -> str | None:
    """The ``token_pepper`` secret, None when unset: what the daemon (``build_core``), the
    ``kiosk token`` verbs and the credentials' check (``kiosk.credentials``) all take.
    ``SecretError`` for one set and empty (a credential file cut short: the daemon refused
    it, the verbs took the database's pepper instead, and made tokens the daemon would not
    take). One shorter than a key (``kiosk.secrets.MIN_KEY_CHARS``) is taken: ``short_pepper``
    says so."""
    secret = get_secret("token_pepper", environ)
    if secret == "":
        raise SecretError(f"credential token_pepper is empty (cut short?): {MAKE_A_KEY}")
    return secret


def short_pepper(environ: Mapping[str, str] | None = None) -> str | None:
    """The warning for a ``token_pepper`` shorter than a key, else None. It is taken, not
    refused: every token carries 256 random bits, so its hash is out of an offline guess's
    reach whatever the pepper (the pepper is defence in depth), while a new pepper voids every
    token issued, the office's pull and the peers' with it (the daemon took any pepper until
    2026-12-07: a gate may run on one)."""
    secret = secret_pepper(environ)
    if not secret or len(secret) >= MIN_KEY_CHARS:
        return None
    return (
        f"credential token_pepper is short ({len(secret)} characters; the installer writes 44):"
        " taken, as every API token's own 256 random bits keep its hash out of reach. A new one"
        f" ({MAKE_A_KEY.removeprefix('make one with: ')}) voids every API token issued: issue"
        " each again (sudo kiosk-admin token new: the office's pull token, each peer gate's"
        " passages:peer token, any other; kiosk token list names them) and hand it over"
    )


def resolve_pepper(store: Store, environ: Mapping[str, str] | None = None) -> bytes:
    """The ``token_pepper`` secret if set (``secret_pepper``), else this database's own
    random pepper."""
    secret = secret_pepper(environ)
    if secret:
        return secret.encode("utf-8")
    return _db_pepper(store)


class TokenStore:
    """Creates, lists, revokes and checks API tokens. Writes go through ``store.submit``."""

    def __init__(
        self,
        store: Store,
        pepper: bytes | str | None = None,
        clock: Clock | None = None,
    ) -> None:
        self._store = store
        if pepper is None:
            pepper = resolve_pepper(store)
        self._pepper = pepper.encode("utf-8") if isinstance(pepper, str) else bytes(pepper)
        if not self._pepper:
            raise TokenError("token pepper must not be empty")
        self._clock = clock

    def _now(self) -> str:
        now = self._clock.now() if self._clock is not None else datetime.now(UTC)
        return now.isoformat()

    def _digest(self, secret: str) -> str:
        return hmac.new(self._pepper, secret.encode("ascii"), hashlib.sha256).hexdigest()

    def create(
        self,
        scopes: Iterable[str],
        name: str | None = None,
        actor: str = "cli",
        peer: str | None = None,
    ) -> tuple[TokenInfo, str]:
        """A new token (``peer``: the gate a ``passages:peer`` token speaks for). Returns its
        info and the plaintext, which is never stored or shown again."""
        scope_set = validate_scopes(scopes)
        if name is not None and not NAME_RE.match(name):
            raise TokenError("name: 1-64 letters, digits, spaces or . : @ _ -")
        check_peer(scope_set, peer)
        secret = base64.urlsafe_b64encode(secrets.token_bytes(32)).decode("ascii").rstrip("=")
        created_at = self._now()

        def write(db: Database) -> str:
            for _ in range(16):
                token_id = secrets.token_hex(4)
                if not list(db.query("select 1 from api_tokens where id = ?", [token_id])):
                    break
            else:  # pragma: no cover - 16 collisions in 2**32 ids
                raise TokenError("could not allocate a token id")
            db.table("api_tokens").insert(
                {
                    "id": token_id,
                    "name": name or f"token-{token_id}",
                    "scopes": json.dumps(sorted(scope_set)),
                    "secret_hash": self._digest(secret),
                    "created_at": created_at,
                    "revoked_at": None,
                    "peer": peer,
                }
            )
            return token_id

        # The token and its audit row commit together: never a token the audit does not name.
        token_id = self._store.submit_audited(
            write,
            actor,
            "token_created",
            lambda made: (
                {"token": made, "scopes": sorted(scope_set)} | ({"for": peer} if peer else {})
            ),
        )
        info = TokenInfo(token_id, name or f"token-{token_id}", scope_set, created_at, None, peer)
        return info, f"kt_{token_id}_{secret}"

    @staticmethod
    def _info(row: dict[str, Any]) -> TokenInfo:
        return TokenInfo(
            id=row["id"],
            name=row["name"],
            scopes=frozenset(json.loads(row["scopes"])),
            created_at=row["created_at"],
            revoked_at=row["revoked_at"],
            peer=row.get("peer"),
        )

    def list(self) -> list[TokenInfo]:
        db = self._store.reader()
        rows = db.query("select * from api_tokens order by created_at, id")
        return [self._info(r) for r in rows]

    def get(self, token_id: str) -> TokenInfo | None:
        rows = list(self._store.reader().query("select * from api_tokens where id = ?", [token_id]))
        return self._info(rows[0]) if rows else None

    def revoke(self, token_id: str, actor: str = "cli") -> TokenInfo:
        """Revoke a token for good, by its id or by the whole token (what an operator told
        of a leak has at hand; only its id is kept or said). Raises ``TokenError`` for an
        unknown id; revoking twice keeps the first revocation time."""
        whole = TOKEN_RE.match(token_id)
        if whole:
            token_id = whole.group(1)
        elif not ID_RE.match(token_id):
            raise TokenError("not a token id (the 8 characters `kiosk token list` shows)")
        now = self._now()

        def write(db: Database) -> int:
            changed = db.execute(
                "update api_tokens set revoked_at = coalesce(revoked_at, ?) where id = ?",
                [now, token_id],
            ).rowcount
            if not changed:
                raise TokenError(f"no token with id {token_id!r}")
            return int(changed)

        self._store.submit_audited(write, actor, "token_revoked", lambda _n: {"token": token_id})
        info = self.get(token_id)
        assert info is not None
        return info

    def authenticate(self, presented: str) -> TokenInfo | None:
        """The active token ``presented`` names, or None. Constant-time in the secret."""
        match = TOKEN_RE.match(presented or "")
        token_id, secret = (match.group(1), match.group(2)) if match else ("", "x" * 43)
        rows = (
            list(self._store.reader().query("select * from api_tokens where id = ?", [token_id]))
            if match
            else []
        )
        stored = rows[0]["secret_hash"] if rows else "0" * 64
        # Always one HMAC and one comparison, whether or not the id exists.
        equal = hmac.compare_digest(self._digest(secret), stored)
        if not (match and rows and equal):
            return None
        info = self._info(rows[0])
        return info if info.active else None
