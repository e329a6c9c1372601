"""Guard accounts for the guard console: scrypt password hashes, two roles.

Accounts come from two places, in this order:

1. the secret ``guard_users`` (``kiosk.secrets``): one ``name:role:hash`` per line, blank lines
   and ``#`` comments ignored. These are managed outside the kiosk (systemd credentials) and
   cannot be changed from the console;
2. the ``guard_accounts`` table in the event log's database, written only through
   ``EventLog.submit`` (one writer), created by this module's ``MIGRATIONS``.

A name defined in the secret wins over the same name in the table. Hashes are
``scrypt$N$r$p$salt$hash`` (base64, no ``:``), so they fit in a ``guard_users`` line. Password
checks take the same time whether or not the name exists, so a login page does not tell which
names are real.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

from sqlite_utils import Database

from kiosk.ports import Store
from kiosk.schema import sql_migrations
from kiosk.typed import typed

Role = Literal["guard", "admin"]
ROLES: tuple[Role, ...] = ("guard", "admin")

#: scrypt cost: 2**14 x 8 is ~16 MiB and ~0.1-0.3 s on a Raspberry Pi 4, once per login.
SCRYPT_N = 2**14
SCRYPT_R = 8
SCRYPT_P = 1
_SALT_BYTES = 16
_KEY_BYTES = 32
_MAX_PASSWORD = 1024
#: The most memory one password check may take (a hash asking for more is refused when read).
_SCRYPT_MAXMEM = 256 * 1024 * 1024

NAME_RE = re.compile(r"^[A-Za-z0-9._-]{1,64}\Z")

#: The name an account's audit row is about (``add``, ``disable``: their ``detail``).
_NAME_OF = "json_extract(detail, '$.name')"

MIGRATIONS = sql_migrations(
    "kiosk.accounts",
    m001_guard_accounts="""
    CREATE TABLE guard_accounts (
        name TEXT PRIMARY KEY, role TEXT NOT NULL, password_hash TEXT NOT NULL,
        created_at TEXT NOT NULL, created_by TEXT, disabled INTEGER DEFAULT 0
    );
    """,
    m002_guard_sessions_revoked="""
    CREATE TABLE guard_sessions_revoked (
        sid TEXT PRIMARY KEY, name TEXT NOT NULL, kept_until TEXT NOT NULL
    );
    CREATE INDEX idx_guard_sessions_revoked_kept_until ON guard_sessions_revoked (kept_until);
    """,
    # Where an account of a name begins (``ACCOUNT_SINCE``): its removals and its adds by the
    # name, each one probe of an index, not a scan of every audit row ever written. Only rows
    # whose detail is JSON are in them (a row edited by hand into anything else is none of a
    # name's, and never fails this migration nor the read).
    m003_account_rows=f"""
    CREATE INDEX audit_account_removals ON audit ({_NAME_OF})
        WHERE action = 'guard_account_disabled' AND json_valid(detail);
    CREATE INDEX audit_account_adds ON audit ({_NAME_OF})
        WHERE action = 'guard_account_set' AND json_valid(detail)
    """,
)

#: Where an account of a name begins (``Account.since``): the audit ``seq`` of the write that
#: created it (``kiosk guard add``: its ``guard_account_set`` row, written in the transaction
#: that adds the account) the first after the name's last removal (``kiosk guard remove``: its
#: ``guard_account_disabled`` row); that removal's ``seq`` while the name is not added again;
#: 0 when the name was never removed. What the audit recorded of that name at a lower ``seq``
#: (a removal of a shift of hers: ``kiosk.roster.Roster.barred``) was another account's, or,
#: between the removal and the new add, nobody's now (an admin tidying the old guard's
#: shifts). A password reset or role change writes another ``guard_account_set`` row: the
#: first one after the removal stays the start, so the guard keeps her bars. An order the
#: log keeps (a backup restored keeps it), not a clock's reading: a clock reading ahead or
#: stepped back when an account was made or reset moves no boundary. A row whose detail is
#: not JSON (edited by hand: the detail is a personal field) is none of any name's
#: (``json_valid``): read, it would fail every sign-in. Its one argument: the name. By the
#: indexes of ``m003_account_rows``.
ACCOUNT_SINCE = (
    "(select case when gone.seq = 0 then 0 else coalesce((select min(added.seq) from audit"  # noqa: S608
    " added where added.action = 'guard_account_set' and json_valid(added.detail)"
    f" and {_NAME_OF.replace('detail', 'added.detail')} = gone.name"
    " and added.seq > gone.seq), gone.seq) end"
    " from (select asked.name, (select coalesce(max(removed.seq), 0) from audit removed"
    " where removed.action = 'guard_account_disabled' and json_valid(removed.detail)"
    f" and {_NAME_OF.replace('detail', 'removed.detail')} = asked.name) as seq"
    " from (select ? as name) asked) gone)"
)

#: Signed-out sessions kept on record at most (the ones nearest their end go first). Each one
#: took a good password to make, so this bounds a slow, noisy attack, not a normal shift.
REVOKED_KEPT = 10_000


class AccountError(ValueError):
    """Unusable account data (bad name, role, hash or credentials line)."""


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii").rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.b64decode(text + "=" * (-len(text) % 4), validate=True)


def hash_password(password: str, *, n: int = SCRYPT_N, r: int = SCRYPT_R, p: int = SCRYPT_P) -> str:
    """A salted scrypt hash ``scrypt$N$r$p$salt$hash`` of ``password``."""
    if not password:
        raise AccountError("password is empty")
    if len(password) > _MAX_PASSWORD:
        raise AccountError(f"password longer than {_MAX_PASSWORD} characters")
    salt = secrets.token_bytes(_SALT_BYTES)
    key = _scrypt(password, salt, n, r, p)
    return f"scrypt${n}${r}${p}${_b64(salt)}${_b64(key)}"


def _scrypt(password: str, salt: bytes, n: int, r: int, p: int) -> bytes:
    return hashlib.scrypt(
        password.encode("utf-8"),
        salt=salt,
        n=n,
        r=r,
        p=p,
        maxmem=_SCRYPT_MAXMEM,
        dklen=_KEY_BYTES,
    )


def _parse_hash(encoded: str) -> tuple[int, int, int, bytes, bytes]:
    parts = encoded.split("$")
    if len(parts) != 6 or parts[0] != "scrypt":
        raise AccountError("not a scrypt$N$r$p$salt$hash string")
    try:
        n, r, p = int(parts[1]), int(parts[2]), int(parts[3])
        salt, key = _unb64(parts[4]), _unb64(parts[5])
    except ValueError:
        raise AccountError("scrypt hash has a malformed field") from None
    if n < 2 or n & (n - 1) or n > 2**20 or not 1 <= r <= 32 or not 1 <= p <= 16:
        raise AccountError("scrypt parameters out of range")
    if len(salt) < 8 or len(key) < 16:
        raise AccountError("scrypt salt or key too short")
    if 128 * r * (n + p + 2) > _SCRYPT_MAXMEM:  # what OpenSSL's scrypt allocates
        raise AccountError("scrypt parameters need more memory than a password check may take")
    return n, r, p, salt, key


def check_hash(encoded: str) -> None:
    """Raise ``AccountError`` unless ``encoded`` is a usable hash from ``hash_password``."""
    _parse_hash(encoded)


def verify_password(password: str, encoded: str) -> bool:
    """True when ``password`` matches ``encoded``; False for a wrong password or a bad hash."""
    if not password or len(password) > _MAX_PASSWORD:
        return False
    try:
        n, r, p, salt, key = _parse_hash(encoded)
    except AccountError:
        return False
    return hmac.compare_digest(_scrypt(password, salt, n, r, p), key)


# A hash nobody's password matches, checked when a name is unknown so timing does not leak it.
_DUMMY_HASH = "scrypt$16384$8$1$" + _b64(b"kiosk-dummy-salt") + "$" + _b64(b"\0" * _KEY_BYTES)


def credential_of(password_hash: str) -> str:
    """A short digest of an account's password hash, carried by its sessions: a new password
    (or the account added again after it was disabled) ends every session made before it."""
    return hashlib.sha256(b"kiosk-credential\0" + password_hash.encode()).hexdigest()[:24]


@dataclass(frozen=True)
class Account:
    name: str
    role: Role
    source: Literal["secret", "table"]
    #: ``credential_of`` its password hash ("" when not read from the store).
    credential: str = field(default="", compare=False)
    #: Where this account begins (``ACCOUNT_SINCE``: the write that added it after its
    #: name's last removal; kept across a new password or role): a shift's removal recorded
    #: before it was another account's of that name (``kiosk.roster.Roster.barred``). 0: the
    #: name never removed (and the secret's, not read from the store).
    since: int = field(default=0, compare=False)

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"


def parse_guard_users(text: str) -> dict[str, tuple[Role, str]]:
    """Parse the ``guard_users`` secret. Raises ``AccountError`` naming the bad line."""
    users: dict[str, tuple[Role, str]] = {}
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        parts = line.split(":")
        if len(parts) != 3:
            raise AccountError(f"guard_users line {number}: expected name:role:hash")
        name, role, hashed = (part.strip() for part in parts)
        if not NAME_RE.match(name):
            raise AccountError(f"guard_users line {number}: bad name")
        checked_role = next((r for r in ROLES if r == role), None)
        if checked_role is None:
            raise AccountError(f"guard_users line {number}: role must be guard or admin")
        try:
            check_hash(hashed)
        except AccountError as exc:
            raise AccountError(f"guard_users line {number}: {exc}") from None
        users[name] = (checked_role, hashed)
    return users


def credentials_line(name: str, role: str, password_hash: str) -> str:
    """One line for the ``guard_users`` credentials file."""
    validate_name(name)
    validate_role(role)
    check_hash(password_hash)
    return f"{name}:{role}:{password_hash}"


def validate_name(name: str) -> None:
    if not NAME_RE.match(name or ""):
        raise AccountError("account name must be 1-64 letters, digits, '.', '_' or '-'")


def _typed_name(name: object) -> str:
    """An account name as typed, in its plain spelling; bounded before it is read."""
    return typed(name[:200]) if isinstance(name, str) else ""


def validate_role(role: str) -> Role:
    """``role`` as a ``Role``; ``AccountError`` unless it is guard or admin."""
    for known in ROLES:
        if role == known:
            return known
    raise AccountError("role must be guard or admin")


class _Unchanged(Exception):
    """Raised inside a write that found nothing to change, so no audit row is written."""


def _utc_text(when: datetime) -> str:
    """``when`` as sortable UTC text (the table compares these as strings)."""
    return when.astimezone(UTC).isoformat(timespec="seconds")


class AccountStore:
    """Looks up and checks guard accounts from the secret and (optionally) the event log."""

    def __init__(
        self,
        store: Store | None = None,
        guard_users: str | None = None,
        now: Callable[[], datetime] | None = None,
    ) -> None:
        self._store = store
        self._secret = parse_guard_users(guard_users) if guard_users else {}
        self._now = now

    @classmethod
    def from_secrets(
        cls, store: Store | None = None, environ: Mapping[str, str] | None = None, **kwargs: Any
    ) -> AccountStore:
        """The accounts of the ``guard_users`` secret (``AccountError`` naming a bad line)
        and of ``store``'s table."""
        from kiosk.secrets import get_secret

        return cls(store, get_secret("guard_users", environ), **kwargs)

    def _row(self, name: str) -> dict[str, Any] | None:
        """The table's account ``name`` with where it begins (``since``: ``ACCOUNT_SINCE``),
        else None."""
        if self._store is None:
            return None
        db = self._store.reader()
        if not db["guard_accounts"].exists():
            return None
        since, args = (ACCOUNT_SINCE, [name, name]) if db["audit"].exists() else ("0", [name])
        sql = f"SELECT *, {since} AS since FROM guard_accounts WHERE name = ? AND disabled = 0"  # noqa: S608 - a constant
        rows = list(db.query(sql, args))
        return rows[0] if rows else None

    def get(self, name: str) -> Account | None:
        name = _typed_name(name)
        if name in self._secret:
            role, hashed = self._secret[name]
            return Account(name, role, "secret", credential_of(hashed))
        row = self._row(name)
        if row is None:
            return None
        credential = credential_of(row["password_hash"])
        return Account(row["name"], row["role"], "table", credential, int(row["since"]))

    def authenticate(self, name: str, password: str) -> Account | None:
        """The account when ``password`` is right, else None (same work either way). The name
        is read as a phone's input method may type it (``ａｌｉｃｅ`` is alice: ``kiosk.typed``)."""
        name = _typed_name(name)
        hashed = None
        role: Role | None = None
        source: Literal["secret", "table"] = "secret"
        since = 0
        if NAME_RE.match(name or ""):
            if name in self._secret:
                role, hashed = self._secret[name]
            else:
                row = self._row(name)
                if row is not None:
                    role, hashed, source = row["role"], row["password_hash"], "table"
                    since = int(row["since"])
        ok = verify_password(password, hashed or _DUMMY_HASH)
        if ok and hashed is not None and role is not None:
            return Account(name, role, source, credential_of(hashed), since)
        return None

    def since(self, name: str) -> int:
        """Where an account of ``name`` begins now (``ACCOUNT_SINCE``; 0 without a store):
        the one a shift's removal made now bars (``ui.auth.GuardAuth.shift_removed``).
        ``StoreFault`` when the store cannot be read."""
        if self._store is None:
            return 0
        db = self._store.reader()
        if not db["audit"].exists():
            return 0
        return int(db.execute(f"SELECT {ACCOUNT_SINCE}", [name]).fetchone()[0])  # noqa: S608

    def names(self) -> list[Account]:
        accounts = {n: Account(n, r, "secret") for n, (r, _h) in self._secret.items()}
        if self._store is not None:
            db = self._store.reader()
            if db["guard_accounts"].exists():
                for row in db["guard_accounts"].rows_where("disabled = 0", order_by="name"):
                    accounts.setdefault(row["name"], Account(row["name"], row["role"], "table"))
        return sorted(accounts.values(), key=lambda a: a.name)

    def add(self, name: str, role: str, password_hash: str, actor: str) -> Account:
        """Create or replace a table account; the change is written and audited."""
        validate_name(name)
        checked_role = validate_role(role)
        check_hash(password_hash)
        if self._store is None:
            raise AccountError("no event log to store accounts in")
        if name in self._secret:
            raise AccountError(f"{name} is defined in the guard_users secret; change it there")
        created_at = self._now().isoformat() if self._now else ""

        def write(db: Database) -> None:
            # An account replaced (a new password, role) is the same guard's: it keeps when
            # it was made (a record: where it begins is ``ACCOUNT_SINCE``, no clock's).
            changed = db.execute(
                "UPDATE guard_accounts SET role = ?, password_hash = ? WHERE name = ?"
                " AND disabled = 0",
                [role, password_hash, name],
            ).rowcount
            if changed:
                return
            db.table("guard_accounts").upsert(
                {
                    "name": name,
                    "role": role,
                    "password_hash": password_hash,
                    "created_at": created_at,
                    "created_by": actor,
                    "disabled": 0,
                },
                pk="name",
            )

        self._store.submit_audited(
            write, actor, "guard_account_set", lambda _none: {"name": name, "role": role}
        )
        return Account(name, checked_role, "table")

    def revoke_session(self, sid: str, name: str, kept_until: datetime, now: datetime) -> None:
        """Keep session ``sid`` (of account ``name``) signed out until ``kept_until``, across
        restarts; revocations past their time at ``now`` are purged here, and at most
        ``REVOKED_KEPT`` are kept. Nothing without an event log (the caller keeps it in
        memory). ``StoreFault`` when the storage fails."""
        if self._store is None:
            return
        if not sid or len(sid) > 64:
            raise AccountError("session id must be 1-64 characters")
        until, purge_to = _utc_text(kept_until), _utc_text(now)

        def write(db: Database) -> None:
            db.execute("DELETE FROM guard_sessions_revoked WHERE kept_until <= ?", [purge_to])
            db.execute(
                "INSERT OR REPLACE INTO guard_sessions_revoked (sid, name, kept_until)"
                " VALUES (?, ?, ?)",
                [sid, name[:64], until],
            )
            db.execute(
                "DELETE FROM guard_sessions_revoked WHERE sid IN (SELECT sid FROM"
                " guard_sessions_revoked ORDER BY kept_until DESC LIMIT -1 OFFSET ?)",
                [REVOKED_KEPT],
            )

        self._store.submit(write)

    def revoked_sessions(self, now: datetime) -> dict[str, datetime]:
        """Sessions signed out and still kept at ``now``: sid -> kept until."""
        if self._store is None:
            return {}
        db = self._store.reader()
        if not db["guard_sessions_revoked"].exists():
            return {}
        rows = db.execute(
            "SELECT sid, kept_until FROM guard_sessions_revoked WHERE kept_until > ?"
            " ORDER BY kept_until DESC LIMIT ?",
            [_utc_text(now), REVOKED_KEPT],
        ).fetchall()
        return {str(sid): datetime.fromisoformat(until) for sid, until in rows}

    def disable(self, name: str, actor: str) -> bool:
        if self._store is None:
            return False

        def write(db: Database) -> int:
            changed = 0
            if db["guard_accounts"].exists():
                changed = db.execute(
                    "UPDATE guard_accounts SET disabled = 1 WHERE name = ? AND disabled = 0",
                    [name],
                ).rowcount
            if not changed:
                raise _Unchanged  # nothing to audit: the transaction ends empty
            return int(changed)

        try:
            self._store.submit_audited(
                write, actor, "guard_account_disabled", lambda _n: {"name": name}
            )
        except _Unchanged:
            return False
        return True
