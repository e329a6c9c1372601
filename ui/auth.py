"""Guard sign-in: signed session cookies, CSRF tokens, same-origin checks, login rate limits.

* The session cookie (``kiosk_session``) is ``payload.mac``: base64 JSON ``{sid, u, r, exp,
  c, iat}`` signed with HMAC-SHA256 under the session key; ``c`` is a digest of the account's
  password hash (``kiosk.accounts.credential_of``), so a new password ends older sessions.
  It is ``HttpOnly``, ``SameSite=Strict``, ``Path=/guard`` and ``Secure`` over HTTPS.
* The session key is the secret ``session_key`` (``kiosk.secrets``). Without it the daemon
  keeps a key of its own in its data dir (``session_key``, 0600, made once:
  ``kiosk.secrets.kept_key``), so sessions outlive a restart; only where that file can be
  neither read nor written is a random key made per process (every guard signs in again after
  a restart, said in the journal). An empty one is not taken (the kept key signs, said at
  start); a short one is refused.
* Every state change needs (a) an ``Origin`` (or, without one, ``Referer``) naming this host,
  and (b) the CSRF token of the session, as the form field ``csrf`` or the ``X-CSRF-Token``
  header. The token is an HMAC of the session id, so it dies with the session.
* A cookie issued on a clock not synchronised yet (a Pi booted without network: its ``exp``
  in 1970) also carries the boot and the monotonic time it was issued at (``b``, ``m``): in
  the same boot, after a restart too, its age is read on the monotonic clock; in any other
  boot it is refused.
* A guard's session is held to the roster as it stands (an admin's is not): each request
  reads the guard's removed shifts and the shifts on the roster (``GuardAuth.current``, one
  read a request: ``ui.guard.deps.roster_bars``, ``kiosk.roster.Roster.barred``); a removed
  shift bars the session from its span and the handover's hour after it wherever the
  guard's shifts now on the roster do not hold it: under way, the session is over, as if it
  had ended; the login page says whose removal ended it (``GuardAuth.ended_by_roster``) and a
  cut-off action is carried through it as at any end. A session with shifts at this gate
  within its lifetime (``ui.guard.deps.session_ends``) carries them (``s``: id, start, end):
  one changed in place on the roster (no removal on record) is taken off as one removed.
  While the roster cannot be read (a ``StoreFault``, a ``ReadFailure``) the roster's last
  answer for the session in this process stands, else its guard's (by name, from any of the
  guard's sessions and sign-ins): barred stays barred until the bar's own end, signing in
  again too; anyone else goes on.
  The roster lengthens a guard's session too (``SessionManager.lengthened``): a shift added
  back to back with one it was signed in on (or one of them made longer) carries it to the new
  stretch's end (asked within ``LENGTHEN_ASKED_WITHIN`` of its end, sooner once after each
  change of the roster), its cookie signed again on the next response (the first after its old end
  too: the browser keeps a guard's cookie to ``SESSION_CAP`` after sign-in, so a tablet asleep
  through the old end wakes on the shift; a roster read that failed is asked again at the next
  request; never a sign-out's); a live stream at the old end closes
  to be opened again. Never past ``SESSION_CAP`` after the guard signed in (the cookie's
  ``iat``; a cookie without it is never lengthened).
* Logout revokes the session id until its expiry (a guard's on the roster: until the latest
  end a lengthened copy could have, ``SESSION_CAP`` after sign-in), so a copied cookie stops
  working: in memory
  and on record in the event log (``AccountStore.revoke_session``), so it stays revoked after
  a restart. While the record cannot be read, only sessions this process issued are let in.
* An action posted just after the session ended is kept in memory for ``RESUME_TTL_S`` and
  named in the login page's URL by a random signed token (never its fields: they may be a
  person's phone and ID numbers), only when it came from that session's page (its cookie and
  CSRF token); it completes only when the same guard signs in again. The token also signs
  which action it was (its route's name), when it was cut off (the boot's monotonic clock,
  and the wall time if synchronised), a keyed digest of the boot and one of the guard's name,
  so that an action no longer kept (too late, a restart, a reboot) is said to that guard as
  not completed (``Lapsed``), never dropped without a word.
* Failed logins are counted per client address (per /64 for IPv6) in a sliding minute on
  the injected clock; over ``web.login_attempts_per_min`` the address waits (HTTP 429).
* The audit rows of refused sign-ins are bounded across the LAN (``RefusedRows``): past
  ``REFUSED_ROWS_PER_MIN`` in a minute they are counted, and one row says how many, from how
  many senders (a scan from many addresses cannot fill the card or the guard's audit view),
  written once its minute is over (the daemon's check every few seconds, or the console's
  next action) and at the daemon's clean stop (the minute in progress, its count so far).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import quote, urlsplit

from fastapi import HTTPException, Request
from fastapi.responses import Response

from kiosk import accounts
from kiosk.accounts import Account, AccountStore
from kiosk.auditing import Change
from kiosk.clock import Clock, earliest, known_passed
from kiosk.ratelimit import client_key
from kiosk.roster import HANDOVER_GRACE, SESSION_CAP, SIGN_IN_LEAD, Shift, ShiftGone, ShiftMark
from kiosk.store import ReadFailure, StoreFault, format_ts, is_storage_error

COOKIE = "kiosk_session"
CSRF_HEADER = "X-CSRF-Token"
CSRF_FIELD = "csrf"
LOGIN_FORM_TTL_S = 3600
#: An action cut off by an expired session can be completed this long after (after signing in).
RESUME_TTL_S = 600
RESUME_MAX_CHARS = 4096
#: Cut-off actions kept at most (the oldest go first).
RESUME_KEPT = 200
#: How long after it was cut off an action no longer kept is still said as not completed (a
#: sign-in page older than this has expired itself, ``LOGIN_FORM_TTL_S``).
RESUME_TOLD_S = LOGIN_FORM_TTL_S
#: The "kept until" of a signed-out session whose end the wall clock cannot tell.
KEPT_UNTIL_COUNTED = datetime(2999, 12, 31, tzinfo=UTC)
#: Actions that cannot be resumed: signing in and out.
_NOT_RESUMABLE = ("/guard/login", "/guard/logout")


def is_resumable(path: str) -> bool:
    """A guard action path (never a redirect elsewhere, never sign-in or sign-out)."""
    return (
        path.startswith("/guard/")
        and path not in _NOT_RESUMABLE
        and all(ch.isalnum() or ch in "/_-" for ch in path)
    )


_MINUTE_NS = 60 * 1_000_000_000


def session_key(environ: dict[str, str] | None = None, kept_in: Path | None = None) -> bytes:
    """The cookie-signing key: the ``session_key`` secret, else the key the daemon keeps in
    ``kept_in`` (its data dir: ``kiosk.secrets.kept_key``), else a fresh random key.
    ``SecretError`` for a secret too short to be a key (``kiosk.secrets.MIN_KEY_CHARS``); an
    empty one is not taken (the kept key signs)."""
    from kiosk.secrets import get_key, kept_key

    secret = get_key("session_key", environ)
    if not secret and kept_in is not None:
        secret = kept_key(kept_in, "session_key")
    if secret:
        return hashlib.sha256(b"kiosk-session\0" + secret.encode("utf-8")).digest()
    return secrets.token_bytes(32)


def same_secret(presented: str, expected: str) -> bool:
    """``presented == expected`` in constant time, whatever ``presented`` holds: compared as
    UTF-8 bytes (``hmac.compare_digest`` refuses a ``str`` with a letter outside ASCII, and a
    cookie, a header or a form field from anyone may hold one)."""
    return hmac.compare_digest(
        presented.encode("utf-8", "surrogatepass"), expected.encode("utf-8", "surrogatepass")
    )


def _b64e(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode("ascii").rstrip("=")


def _b64d(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def roster_unreadable(exc: StoreFault | ReadFailure) -> bool:
    """Whether ``exc``, raised reading the roster, is the card's or the log's fault (a
    ``StoreFault``: no reader, the log closing; a storage ``ReadFailure``: a damaged page, an
    I/O error, a lock), which the console rides through, and not a bug's (wrong bindings)."""
    return isinstance(exc, StoreFault) or is_storage_error(exc)


class WrongToken(HTTPException):
    """A state change whose CSRF token is not its session's (403): a script's, or a form on a
    page of an earlier sign-in (a tab left open while the device was signed out and in)."""

    def __init__(self) -> None:
        super().__init__(403, "missing or wrong CSRF token")


@dataclass(frozen=True)
class Resume:
    """An action cut off by the end of ``name``'s session: to complete once ``name`` (and
    nobody else) has signed in again."""

    path: str
    fields: list[tuple[str, str]]
    name: str
    #: Its route's name (``ui.guard.deps`` ``route_action``): which action it is, in words.
    action: str = ""


@dataclass(frozen=True)
class _CutOff:
    """What a genuine resume token signs (``SessionManager.resume_token``)."""

    nonce: str
    action: str
    #: When it was cut off on its boot's monotonic clock, in seconds.
    at: float
    #: The wall time then, if the clock was synchronised; else None.
    wall: datetime | None
    #: Whether it was cut off in this boot (``at`` is of this monotonic clock).
    this_boot: bool
    #: The keyed digest of its guard's name (``SessionManager._who``).
    who: str


@dataclass(frozen=True)
class Lapsed:
    """A cut-off action no longer kept (``SessionManager.lapsed_resume``): the guard who made
    it is told it was not completed. ``action``: its route's name; ``expired``: more than
    ``RESUME_TTL_S`` went by (else it was lost sooner, or how long ago is not known: the
    checkpoint restarted)."""

    action: str
    expired: bool


@dataclass(frozen=True)
class SessionEnd:
    """When a session ends (``SessionEnds``), and the roster's shifts it ends with (none: the
    staffed hours'): one of them removed or changed ends the session then
    (``GuardAuth.current``)."""

    at: datetime
    shifts: tuple[ShiftMark, ...] = ()


class SessionEnds(Protocol):
    """When the session of guard ``name`` signing in at ``now`` ends (``kiosk.roster``
    ``session_end``: the end of the guard's shift, and the handover's grace), or None."""

    def __call__(self, name: str, now: datetime) -> SessionEnd | None: ...


class RosterBars(Protocol):
    """The shift taken off the roster that bars the session of guard ``name`` (signed in on
    ``marks``) from now to ``until`` (``kiosk.roster.Roster.barred``), or None (blocking: a
    database read)."""

    def __call__(
        self, name: str, marks: tuple[ShiftMark, ...], until: datetime
    ) -> ShiftGone | None: ...


#: What the roster must add to a session's end for its cookie to be signed again
#: (``SessionManager.lengthened``): not the clocks' microseconds at every request.
LENGTHENED_BY_AT_LEAST = timedelta(minutes=1)
#: How near its end a guard's session is asked at each request whether the roster lengthens
#: it (``GuardAuth.current``); sooner, only once after each change of the roster.
LENGTHEN_ASKED_WITHIN = timedelta(minutes=10)
#: The most shifts a session's cookie names (one guard's back-to-back shifts of a day).
SHIFTS_KEPT = 8
#: The sessions whose last roster answer is kept (``GuardAuth.shift_gone``): a gate's guards
#: and their phones, many times over; as many guards' last bars (``GuardAuth.sign_in_bar``).
ROSTER_ANSWERS_KEPT = 512


class Revocations(Protocol):
    """Where signed-out sessions are kept across restarts (``kiosk.accounts.AccountStore``)."""

    def revoke_session(self, sid: str, name: str, kept_until: datetime, now: datetime) -> None:
        """Keep ``sid`` signed out until ``kept_until``; ``StoreFault`` if it cannot."""
        ...

    def revoked_sessions(self, now: datetime) -> dict[str, datetime]:
        """The sessions still kept signed out at ``now``: sid -> until when."""
        ...


@dataclass(frozen=True)
class Session:
    sid: str
    name: str
    role: str
    expires: datetime
    #: The account's ``credential`` when it signed in: a changed password ends the session.
    credential: str = ""
    #: Issued on a clock not synchronised yet, in this boot: the monotonic time it was
    #: issued at (its ``exp``, a wall time of "1970", says nothing); else None.
    issued_mono: int | None = None
    #: The roster's shifts it was signed in on (``SessionEnd.shifts``).
    shifts: tuple[ShiftMark, ...] = ()
    #: When its guard signed in (the wall clock; the cookie's ``iat``): the roster lengthens
    #: it to ``SESSION_CAP`` after that at most. None in a cookie from before it was carried:
    #: such a session is never lengthened.
    signed_in: datetime | None = None

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"


def _shift_marks(value: Any) -> tuple[ShiftMark, ...]:
    """A cookie's ``s`` (signed: written by ``SessionManager.issue``); ``ValueError`` for
    anything else."""
    if not isinstance(value, list) or len(value) > SHIFTS_KEPT:
        raise ValueError("shifts")
    marks = []
    for mark in value:
        if not (isinstance(mark, list) and len(mark) == 3):
            raise ValueError("shift")
        if not all(isinstance(n, int) and not isinstance(n, bool) for n in mark):
            raise ValueError("shift")
        marks.append((mark[0], mark[1], mark[2]))
    return tuple(marks)


def _signed_in(value: Any, expires: datetime) -> datetime | None:
    """A cookie's ``iat`` (signed: written by ``SessionManager._cookie``); None when it has
    none (a cookie from before it was carried); ``ValueError`` for anything else."""
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool):
        raise ValueError("iat")
    return datetime.fromtimestamp(value, tz=expires.tzinfo)


def _longest_end(session: Session) -> datetime:
    """The latest end any copy of ``session``'s cookie can have: the roster lengthens a
    guard's to ``SESSION_CAP`` after its sign-in (``SessionManager.lengthened``)."""
    if session.signed_in is None or session.is_admin or not session.shifts:
        return session.expires
    return max(session.expires, session.signed_in + SESSION_CAP)


class SessionManager:
    def __init__(
        self,
        key: bytes,
        clock: Clock,
        lifetime_s: float,
        revocations: Revocations | None = None,
        boot_id: str = "",
        ends: SessionEnds | None = None,
    ) -> None:
        if len(key) < 16:
            raise ValueError("session key too short")
        self._key = key
        self._clock = clock
        #: The boot this process runs in (the event log's): a cookie issued in it on a clock
        #: not synchronised is judged by the monotonic clock after a restart too.
        self._boot_id = boot_id
        #: The boot in a resume token: a keyed digest (``_resume_parts``).
        self._boot_tag = self._mac("resume-boot", boot_id)[:10]
        self._lifetime = timedelta(seconds=lifetime_s)
        self._lifetime_ns = int(lifetime_s * 1e9)
        #: When a session signed in now ends (the guard's shift), else ``lifetime_s`` applies.
        self._ends = ends
        #: Signed-out sessions: sid -> kept until. Those of earlier processes are read from
        #: ``revocations`` at the first cookie (``_revoked_loaded``).
        self._revoked: dict[str, datetime] = {}
        self._revocations = revocations
        self._revoked_loaded = revocations is None
        #: Sessions this process issued, by sid: when (monotonic), and for how long (ns). Their
        #: age is real elapsed time, so a step of the wall clock (NTP on a Pi without an RTC,
        #: the demo's scenario days) neither ends a shift early nor stretches it. Cookies from
        #: before a restart are judged by the expiry they carry.
        self._issued: dict[str, tuple[int, int]] = {}
        #: Actions cut off by an ended session (``resume_token``): nonce -> (action, when, on
        #: the monotonic clock in seconds).
        self._resumes: dict[str, tuple[Resume, float]] = {}
        #: Those offered already (``take_resume``): nonce -> when cut off; never said lapsed.
        self._taken: dict[str, float] = {}

    def _mac(self, purpose: str, data: str) -> str:
        msg = f"{purpose}\0{data}".encode()
        return _b64e(hmac.new(self._key, msg, hashlib.sha256).digest())

    def issue(self, account: Account) -> tuple[str, Session]:
        """A new session for ``account`` and its signed cookie value."""
        mono, now = self._clock.monotonic_ns(), self._clock.now()
        self._issued = {  # a copy first: ``lengthened`` writes from other request threads
            sid: held for sid, held in list(self._issued.items()) if mono - held[0] < held[1]
        }
        lifetime, shifts = self._lifetime_of(account.name, now)
        session = Session(
            sid=secrets.token_urlsafe(18),
            name=account.name,
            role=account.role,
            expires=now + lifetime,
            credential=account.credential,
            issued_mono=None if self._clock.synced() else mono,
            shifts=shifts[:SHIFTS_KEPT],
            signed_in=now,
        )
        self._issued[session.sid] = (mono, lifetime // timedelta(microseconds=1) * 1000)
        return self._cookie(session), session

    def _cookie(self, session: Session) -> str:
        """The signed cookie value of ``session``."""
        fields: dict[str, Any] = {
            "sid": session.sid,
            "u": session.name,
            "r": session.role,
            "exp": int(session.expires.timestamp()),
            "c": session.credential,
        }
        if session.issued_mono is not None:  # its ``exp`` is of a clock not set
            fields |= {"b": self._boot_id, "m": session.issued_mono}
        if session.shifts:
            fields["s"] = [list(mark) for mark in session.shifts]
        if session.signed_in is not None:
            fields["iat"] = int(session.signed_in.timestamp())
        payload = _b64e(json.dumps(fields, separators=(",", ":")).encode())
        return f"{payload}.{self._mac('session', payload)}"

    def lengthened(
        self, session: Session, signed_end: datetime, *, tell_faults: bool = False
    ) -> tuple[str, Session] | None:
        """``session`` (a guard's, signed in on the roster's shifts, its cookie ending at
        ``signed_end``) to the later end the roster gives its stretch now (a back-to-back shift
        added after sign-in), with its cookie signed again (the same sid: its CSRF token and
        sign-out stay); None when the roster gives it no later end, or that stretch does not
        go on from a shift it was signed in on (its handover hour, a later shift of the day
        not back to back: signed in for anew). Never past ``SESSION_CAP`` after its sign-in
        (the cookie's ``iat``): a copied cookie replayed day after day is not carried on. A
        cookie over by its end is lengthened until then (the browser keeps it so long:
        ``GuardAuth.set_cookie``; a tablet asleep past the old end wakes on the shift). Never
        an admin's, nor one issued on a clock not set, nor one without its sign-in time.
        The roster unreadable: None, or (``tell_faults``) its fault raised, for the caller to
        ask again at the next request. Blocking: the roster's reads."""
        if not self.may_lengthen(session) or session.signed_in is None:
            return None
        if self._ends is None or not self._clock.synced():
            return None
        mono, now = self._clock.monotonic_ns(), self._clock.now()
        if now >= max(signed_end, session.signed_in + SESSION_CAP):
            return None
        try:
            end = self._ends(session.name, now)
        except (StoreFault, ReadFailure) as exc:  # the roster unreadable: as it was
            if tell_faults or not roster_unreadable(exc):
                raise
            return None
        if end is None:
            return None
        end = replace(end, at=min(end.at, session.signed_in + SESSION_CAP))
        if end.at <= now or end.at - signed_end < LENGTHENED_BY_AT_LEAST:
            return None
        # The stretch from now goes on from a shift it was signed in on (back to back).
        if not end.shifts or min(m[1] for m in end.shifts) > max(m[2] for m in session.shifts):
            return None
        longer = replace(session, expires=end.at, shifts=end.shifts[:SHIFTS_KEPT])
        self._issued[session.sid] = (mono, (end.at - now) // timedelta(microseconds=1) * 1000)
        return self._cookie(longer), longer

    def may_lengthen(self, session: Session) -> bool:
        """Whether the roster may lengthen ``session`` (``lengthened``): a guard's, signed in
        on the roster's shifts on a synchronised clock, its cookie carrying its sign-in
        time."""
        return not (
            session.is_admin
            or not session.shifts
            or session.issued_mono is not None
            or session.signed_in is None
            or self._ends is None
        )

    def _lifetime_of(self, name: str, now: datetime) -> tuple[timedelta, tuple[ShiftMark, ...]]:
        """How long a session ``name`` signs in for at ``now`` lasts: to the end of its shift
        (``ends``) when the clock can tell it, else the configured lifetime; and the shifts it
        is signed in on."""
        if self._ends is None or not self._clock.synced():
            return self._lifetime, ()
        try:
            end = self._ends(name, now)
        except (StoreFault, ReadFailure) as exc:  # the roster unreadable: the configured lifetime
            if not roster_unreadable(exc):
                raise
            end = None
        if end is None or end.at <= now:
            return self._lifetime, ()
        return end.at - now, end.shifts

    def lifetime(self, session: Session) -> timedelta:
        """How long ``session`` lasts from its sign-in (its cookie's life in the browser)."""
        held = self._issued.get(session.sid)
        return self._lifetime if held is None else timedelta(microseconds=held[1] // 1000)

    def signed(self, cookie: str | None) -> Session | None:
        """The session a cookie value names, signed with this key and not signed out, whether
        or not it has ended (``read`` is the one a request may act under)."""
        data = self._unsigned("session", cookie, 1024)
        try:
            expires = datetime.fromtimestamp(int(data["exp"]), tz=self._clock.now().tzinfo)
            fields = (str(data["sid"]), str(data["u"]), str(data["r"]))
            if "b" in data and data["b"] != self._boot_id:
                # Issued on a clock not set, in another boot: its ``exp`` (a 1970 time) and
                # its monotonic issue time mean nothing here, and a clock not set again
                # would take that expiry for hours ahead.
                return None
            mono = data.get("m")
            mono = mono if isinstance(mono, int) and not isinstance(mono, bool) else None
            shifts = _shift_marks(data.get("s", []))
            signed_in = _signed_in(data.get("iat"), expires)
            session = Session(*fields, expires, str(data.get("c", "")), mono, shifts, signed_in)
        except (ValueError, KeyError, TypeError, AttributeError):
            return None
        if not self._load_revoked() and session.sid not in self._issued:
            return None  # signed out before a restart? Unknown while the record is unreadable
        return None if session.sid in self._revoked else session

    def _load_revoked(self) -> bool:
        """Whether the sessions signed out before this process started are known (read once;
        blocking: a database read)."""
        if not self._revoked_loaded and self._revocations is not None:
            try:
                earlier = self._revocations.revoked_sessions(self._clock.now())
            except StoreFault:
                return False
            self._revoked = {**earlier, **self._revoked}
            self._trim_revoked()
            self._revoked_loaded = True
        return self._revoked_loaded

    def read(self, cookie: str | None) -> Session | None:
        """The session in a cookie value, or None if missing, forged, expired or revoked."""
        session = self.signed(cookie)
        if session is None:
            return None
        now, expires = self._clock.now(), session.expires
        held = self._issued.get(session.sid)
        if held is None and session.issued_mono is not None:
            held = (session.issued_mono, self._lifetime_ns)
        if held is None:
            return session if expires > now else None
        left_ns = held[1] - (self._clock.monotonic_ns() - held[0])
        if left_ns <= 0:
            return None
        # Shown as "time left" on the console: rebased on today's wall clock.
        return replace(session, expires=now + timedelta(microseconds=left_ns // 1000))

    def _unsigned(self, kind: str, token: str | None, max_len: int) -> Any:
        """The JSON in ``payload.mac`` signed for ``kind``, or None if missing, longer than
        ``max_len``, forged or not JSON (the caller checks its fields)."""
        if not token or token.count(".") != 1 or len(token) > max_len:
            return None
        payload, mac = token.split(".")
        if not same_secret(mac, self._mac(kind, payload)):
            return None
        try:
            return json.loads(_b64d(payload))
        except ValueError:
            return None

    def revoke(self, session: Session) -> None:
        """Sign ``session`` out: at once here, and on record for after a restart (blocking: a
        database write; ``StoreFault`` when the record cannot be written, the session being
        signed out in this process all the same)."""
        now = self._clock.now()
        # Kept until the cookie is gone from the browser too (``GuardAuth.set_cookie``), and
        # any copy of it the roster lengthened (``lengthened``: ``SESSION_CAP`` after its
        # sign-in at most). One issued or signed out on a clock not set is kept until the
        # count drops it: its end by the wall clock is a guess a step of the clock can put in
        # the past.
        until = _longest_end(session) + timedelta(seconds=RESUME_TTL_S)
        if session.issued_mono is not None or not self._clock.synced():
            until = KEPT_UNTIL_COUNTED
        self._revoked = {sid: kept for sid, kept in self._revoked.items() if kept > now}
        self._revoked[session.sid] = until
        self._trim_revoked()
        self._issued.pop(session.sid, None)
        if self._revocations is not None:
            self._revocations.revoke_session(session.sid, session.name, until, now)

    def _trim_revoked(self) -> None:
        """At most ``kiosk.accounts.REVOKED_KEPT`` signed-out sessions, as the record keeps:
        those kept the shortest go first, the oldest signed out of them first. One kept
        ``KEPT_UNTIL_COUNTED`` (signed out on a clock not set) is never past its time, and
        each sign-out on a clock never synchronised added one for good."""
        excess = len(self._revoked) - accounts.REVOKED_KEPT
        if excess > 0:
            gone = sorted(self._revoked, key=self._revoked.__getitem__)[:excess]
            for sid in gone:
                del self._revoked[sid]

    def revoked(self, session: Session) -> bool:
        """Whether ``session`` was signed out."""
        return session.sid in self._revoked

    def csrf_token(self, session: Session) -> str:
        return self._mac("csrf", session.sid)

    def check_csrf(self, session: Session, token: str | None) -> bool:
        return bool(token) and same_secret(str(token), self.csrf_token(session))

    def resume_token(
        self, path: str, fields: list[tuple[str, str]], name: str, action: str = ""
    ) -> str | None:
        """A note of an action whose session had expired (its path and form fields, and the
        guard ``name`` who made it), carried through the login page so the action can
        complete after that guard signs in again; None when it is too large to carry.

        The action stays here, in memory, for ``RESUME_TTL_S``: the token is a random,
        signed name for it. The form may hold a person's phone and ID numbers, and the token
        travels in the login page's URL (browser history, a proxy's log): it carries only
        the route's name (``action``, a word of ``[a-z_]``), when it was cut off (this boot's
        monotonic clock, and the wall time if it is synchronised), a keyed digest of the boot
        and one of ``name``, signed, to say it lapsed (after a reboot too)."""
        size = len(json.dumps([path, fields, name], ensure_ascii=False))
        if size > RESUME_MAX_CHARS:
            return None
        now = self._seconds()
        self._resumes = {k: v for k, v in self._resumes.items() if now - v[1] <= RESUME_TTL_S}
        while len(self._resumes) >= RESUME_KEPT:
            del self._resumes[next(iter(self._resumes))]
        nonce = secrets.token_urlsafe(18)
        action = action if action.replace("_", "").isalpha() and action.isascii() else ""
        self._resumes[nonce] = (Resume(path, list(fields), name, action), now)
        wall = str(int(self._clock.now().timestamp())) if self._clock.synced() else ""
        signed = f"{nonce}.{action}.{int(now)}.{wall}.{self._boot_tag}.{self._who(name)}"
        return f"{signed}.{self._mac('resume', signed)}"

    def _who(self, name: str) -> str:
        """A keyed digest of a guard's name: the token says whose it is without naming them."""
        return self._mac("resume-who", name)[:10]

    def _resume_parts(self, token: str | None) -> _CutOff | None:
        """What a resume token signed with this key says (of this boot or an earlier one: the
        key is the ``session_key`` secret, which a reboot keeps); None if forged."""
        if not token or token.count(".") != 6 or len(token) > 160:
            return None
        signed, mac = token.rsplit(".", 1)
        if not same_secret(mac, self._mac("resume", signed)):
            return None
        nonce, action, at, wall, boot, who = signed.split(".")
        if not (
            at.isascii() and at.isdigit() and (wall == "" or wall.isascii() and wall.isdigit())
        ):
            return None
        when = datetime.fromtimestamp(int(wall), UTC) if wall else None
        return _CutOff(nonce, action, float(at), when, boot == self._boot_tag, who)

    def _seconds(self) -> float:
        """Now on the monotonic clock, in seconds: what is kept in memory is timed by it (a
        step of the wall clock, NTP on a Pi booted without network, neither ages nor keeps
        it)."""
        return self._clock.monotonic_ns() / 1e9

    def read_resume(self, token: str | None) -> Resume | None:
        """The action a resume token names, or None if missing, forged, too old or gone."""
        parts = self._resume_parts(token)
        found = None if parts is None else self._resumes.get(parts.nonce)
        if found is None:
            return None
        resume, at = found
        age = self._seconds() - at
        if not -60 <= age <= RESUME_TTL_S or not is_resumable(resume.path):
            return None
        return resume

    def resume_left_s(self, token: str | None) -> int:
        """How long the action ``token`` names is still kept (0: not kept)."""
        parts = self._resume_parts(token)
        found = None if parts is None else self._resumes.get(parts.nonce)
        if found is None or self.read_resume(token) is None:
            return 0
        return max(0, int(RESUME_TTL_S - (self._seconds() - found[1])))

    def take_resume(self, token: str | None) -> Resume | None:
        """``read_resume``, and the action is forgotten: it is offered once (the login link
        that names it stays in the browser's history, and is not said lapsed after)."""
        resume = self.read_resume(token)
        if resume is not None:
            nonce = str(token).split(".")[0]
            now = self._seconds()
            self._taken = {k: at for k, at in self._taken.items() if now - at <= RESUME_TOLD_S}
            while len(self._taken) >= RESUME_KEPT:
                del self._taken[next(iter(self._taken))]
            self._taken[nonce] = self._resumes.pop(nonce)[1]
        return resume

    def lapsed_resume(self, token: str | None, name: str | None = None) -> Lapsed | None:
        """The action a genuine resume token names that is no longer kept (more than
        ``RESUME_TTL_S`` went by, or a restart or a reboot forgot it) and was not offered
        already, within ``RESUME_TOLD_S`` of when it was cut off: to say it was not completed.
        ``name``: only if that guard made it (the sign-in; the sign-in page, before anyone
        signed in, says it to whoever holds the page). None for a token still kept, forged,
        or known to be older (``_cut_age``)."""
        cut = self._resume_parts(token)
        if cut is None or self.read_resume(token) is not None or cut.nonce in self._taken:
            return None
        if name is not None and not same_secret(cut.who, self._who(name)):
            return None
        age, known = self._cut_age(cut)
        if not -60 <= age <= RESUME_TOLD_S:
            return None
        return Lapsed(cut.action, expired=known and age > RESUME_TTL_S)

    def _cut_age(self, cut: _CutOff) -> tuple[float, bool]:
        """How long ago (s) ``cut`` was cut off, and whether that is known (else the least it
        can be). In this boot its monotonic clock tells; in an earlier one the wall clock, when
        it was synchronised then and is now. Otherwise (a Pi without RTC booted again without
        network reads its last shutdown's time, or 1970) no more than a lower bound: this
        boot's age (the monotonic clock counts from the boot), or the time known to have
        passed (``kiosk.clock.known_passed``) since its wall time."""
        if cut.this_boot:
            return self._seconds() - cut.at, True
        if cut.wall is not None and self._clock.synced():
            return (self._clock.now() - cut.wall).total_seconds(), True
        passed = known_passed(self._clock)
        since = 0.0 if passed is None or cut.wall is None else (passed - cut.wall).total_seconds()
        return max(self._seconds(), since), False

    def login_form_token(self) -> str:
        """A token for the login form (there is no session yet): time-stamped and signed.
        Its time is this boot's monotonic clock (signed with the boot): a sign-in page
        opened before NTP stepped the clock of a Pi booted without network (1970) is minutes
        old after the step, not 56 years; one of another boot is refused, as an old one."""
        stamp = str(self._clock.monotonic_ns() // 1_000_000_000)
        nonce = secrets.token_urlsafe(9)
        return f"{stamp}.{nonce}.{self._mac('login', self._login_signed(stamp, nonce))}"

    def _login_signed(self, stamp: str, nonce: str) -> str:
        return f"{self._boot_id}\0{stamp}.{nonce}"

    def check_login_form_token(self, token: str | None) -> bool:
        if not token or token.count(".") != 2:
            return False
        stamp, nonce, mac = token.split(".")
        if not same_secret(mac, self._mac("login", self._login_signed(stamp, nonce))):
            return False
        try:
            age = self._clock.monotonic_ns() // 1_000_000_000 - int(stamp)
        except ValueError:
            return False
        return -60 <= age <= LOGIN_FORM_TTL_S


#: Whom a login failure from an address counts against (an IPv6 address's /64).
limit_key = client_key


class LoginLimiter:
    """Failed sign-ins per address (an IPv6 address's /64: ``limit_key``) in a sliding
    minute, on the injected monotonic clock. An address is kept while a failure of it is in
    the minute (the addresses are in the order of their latest failure, the stalest first,
    dropped as their minute ends), and at most ``max_addresses`` at once: past that, the
    stalest address still under the limit makes room, one over it only when every address
    is (a scan of one wrong password per address never lets a locked-out guesser try
    again early; only 10,000 addresses all over the limit within one minute could).

    A good sign-in forgets only the failures at that account name: a guard's own sign-in
    must not wipe the guesses the same address made at another account (else anyone with
    an account could guess the admin's password four tries per sign-in, without end)."""

    def __init__(self, clock: Clock, per_minute: int, max_addresses: int = 10_000) -> None:
        self._clock = clock
        self._limit = per_minute
        self._max = max_addresses
        self._fails: dict[str, deque[tuple[int, str]]] = {}

    def _window(self, addr: str) -> deque[tuple[int, str]]:
        now = self._clock.monotonic_ns()
        q = self._fails.setdefault(addr, deque())
        while q and now - q[0][0] >= _MINUTE_NS:
            q.popleft()
        if not q:
            self._fails.pop(addr, None)
        return q

    def retry_after_s(self, addr: str) -> int:
        """0 when ``addr`` may try; else seconds until its oldest failure leaves the window."""
        q = self._window(limit_key(addr))
        if len(q) < self._limit:
            return 0
        wait_ns = _MINUTE_NS - (self._clock.monotonic_ns() - q[0][0])
        return max(1, -(-wait_ns // 1_000_000_000))

    def failed(self, addr: str, name: str = "") -> tuple[int, str]:
        """A wrong password (or key) from ``addr``, at account ``name``; its entry."""
        addr = limit_key(addr)
        self._window(addr)
        now = self._clock.monotonic_ns()
        self._forget_stale(now)
        q = self._fails.pop(addr, None)  # back in at the end: its latest failure is now
        if q is None and len(self._fails) >= self._max:
            self._make_room()
        entry = (now, name)
        q = q if q is not None else deque()
        q.append(entry)
        self._fails[addr] = q
        return entry

    def _forget_stale(self, now: int) -> None:
        """Drop the addresses whose latest failure left the minute (the stalest first)."""
        while self._fails:
            addr, q = next(iter(self._fails.items()))
            if q and now - q[-1][0] < _MINUTE_NS:
                return
            del self._fails[addr]

    def _make_room(self) -> None:
        """Forget one address (``max_addresses`` are kept): the stalest still under the
        limit, else the stalest."""
        under = next((a for a, q in self._fails.items() if len(q) < self._limit), None)
        del self._fails[under if under is not None else next(iter(self._fails))]

    def begin(self, addr: str, name: str = "") -> tuple[int, str] | None:
        """A sign-in from ``addr`` at ``name`` about to have its password checked: counted
        now as a failure (``succeeded`` takes it back), so guesses sent at once cannot all be
        checked before the first one is counted; None when ``addr`` is over the limit.
        Call it with no await between it and the check that follows."""
        return None if self.retry_after_s(addr) else self.failed(addr, name)

    def succeeded(self, addr: str, name: str = "", attempt: tuple[int, str] | None = None) -> None:
        """``name`` signed in from ``addr``: its own mistyped passwords (and the ``attempt``
        that ``begin`` counted) are forgotten."""
        addr = limit_key(addr)
        q = self._window(addr)
        kept = deque(entry for entry in q if entry[1] != name and entry is not attempt)
        if kept:
            self._fails[addr] = kept
        else:
            self._fails.pop(addr, None)


#: Refused sign-ins written each as its own audit row in one minute, whatever address they
#: come from (a guard's own mistyped passwords are a few a minute): past it, a scan from many
#: addresses is counted, and one row says how many (``RefusedRows``).
REFUSED_ROWS_PER_MIN = 20
#: Senders told apart in one minute's count; past it the row says ``senders_at_least``.
REFUSED_SENDERS_KEPT = 4096
#: Minutes' counts waiting to be written at most (the oldest go first).
REFUSED_MINUTES_KEPT = 60
#: The action of the row that counts a minute's refused sign-ins not written each.
REFUSED_COUNTED = "guard_login_failed_counted"


class RefusedRows:
    """The audit rows of refused sign-ins, bounded across the LAN: in each minute (on the
    injected monotonic clock, from the first refusal) the first ``per_minute`` refusals are
    written each as their own row (``refused`` answers True); the rest are only counted, with
    their senders (an IPv6 /64 as one, as ``LoginLimiter`` counts them), and once that minute
    is over ``due`` hands one row for it: actor ``-``, ``refused`` (how many were not written
    each), ``senders``, and the wall times of the first and last (``from``, ``to``). No names,
    no passwords. The refusals themselves are left to ``LoginLimiter``. Memory is bounded: at
    most ``max_senders`` senders a minute, ``REFUSED_MINUTES_KEPT`` minutes waiting."""

    def __init__(
        self,
        clock: Clock,
        per_minute: int = REFUSED_ROWS_PER_MIN,
        max_senders: int = REFUSED_SENDERS_KEPT,
    ) -> None:
        self._clock = clock
        self._limit = per_minute
        self._max = max_senders
        self._lock = threading.Lock()
        self._start: int | None = None  # the minute's first refusal, monotonic ns
        self._written = 0
        self._senders: set[str] = set()
        self._counted = 0
        self._capped = False
        self._span: tuple[datetime, datetime] | None = None
        self._due: deque[Change] = deque(maxlen=REFUSED_MINUTES_KEPT)

    def refused(self, addr: str) -> bool:
        """A sign-in from ``addr`` refused: True when its own row is to be written, False
        when it is counted in its minute's row instead."""
        now = self._clock.monotonic_ns()
        with self._lock:
            self._roll(now)
            if self._start is None:
                self._start = now
            if self._written < self._limit:
                self._written += 1
                return True
            wall = self._clock.now()
            self._counted += 1
            self._span = (self._span[0] if self._span else wall, wall)
            if len(self._senders) < self._max:
                self._senders.add(limit_key(addr))
            elif limit_key(addr) not in self._senders:
                self._capped = True
            return False

    def due(self, *, stopping: bool = False) -> list[Change]:
        """The rows of the minutes that are over whose refusals were counted (taken: the
        caller writes them, or holds them when the storage fails); ``stopping`` (the
        daemon's clean stop): the minute in progress ends now too, with its count so far."""
        with self._lock:
            self._roll(self._clock.monotonic_ns(), ending=stopping)
            rows, self._due = list(self._due), deque(maxlen=REFUSED_MINUTES_KEPT)
        return rows

    def _roll(self, now: int, *, ending: bool = False) -> None:
        """End the minute if it is over (or ``ending``): its count (if any) waits in ``_due``."""
        if self._start is None or (now - self._start < _MINUTE_NS and not ending):
            return
        if self._counted and self._span is not None:
            detail: dict[str, Any] = {
                "refused": self._counted,
                "senders": len(self._senders),
                "from": format_ts(self._span[0]),
                "to": format_ts(self._span[1]),
                "outcome": "refused",
            }
            if self._capped:
                detail["senders_at_least"] = True
            self._due.append(("-", REFUSED_COUNTED, detail))
        self._start, self._written, self._counted = None, 0, 0
        self._senders, self._capped, self._span = set(), False, None


def _origin_of(url: str) -> tuple[str, str] | None:
    try:
        parts = urlsplit(url)
    except ValueError:
        return None
    if not parts.scheme or not parts.netloc:
        return None
    return parts.scheme.lower(), parts.netloc.lower()


def set_private_cookie(
    response: Response, request: Request, name: str, value: str, *, path: str, max_age: int
) -> None:
    """A cookie only this site's pages under ``path`` send back: HttpOnly, SameSite=Strict,
    Secure over HTTPS."""
    response.set_cookie(
        name,
        value,
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
        path=path,
        max_age=max_age,
    )


def same_origin(request: Request) -> bool:
    """True when the request's ``Origin`` (or ``Referer``) names the host it was sent to.

    A browser always sends ``Origin`` on a cross-site POST, so a missing ``Origin`` and
    ``Referer`` is accepted (curl, old clients) and left to the CSRF token."""
    host = (request.headers.get("host") or "").lower()
    origin = request.headers.get("origin")
    if origin is not None:
        if origin == "null":
            return False
        parsed = _origin_of(origin)
        return parsed is not None and parsed[1] == host
    referer = request.headers.get("referer")
    if referer is not None:
        parsed = _origin_of(referer)
        return parsed is not None and parsed[1] == host
    return True


def client_addr(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def _same_credential(account: Account, session: Session) -> bool:
    """Whether ``session`` was made with ``account``'s current password."""
    return bool(session.credential) and same_secret(account.credential, session.credential)


def _others(bar: ShiftGone, since: int | None) -> bool:
    """Whether ``bar`` is an older account's of its guard's name than the one that began at
    ``since`` (``Account.since``; None: not known), a removed guard's whose name a new
    account took: it is not this one's (as ``kiosk.roster.Roster.barred`` reads them)."""
    return bar.account is not None and since is not None and bar.account < since


def _in_role(session: Session, account: Account | None) -> Session:
    """``session`` in its ``account``'s role now: one demoted loses what it no longer has."""
    if account is None or account.role == session.role:
        return session
    return replace(session, role=account.role)


class GuardAuth:
    """What the guard routes need to know who is asking and whether they may."""

    def __init__(
        self,
        accounts: AccountStore,
        clock: Clock,
        *,
        key: bytes | None = None,
        session_hours: float = 12,
        login_attempts_per_min: int = 5,
        boot_id: str = "",
        ends: SessionEnds | None = None,
        roster_bars: RosterBars | None = None,
        roster_changes: Callable[[], int] | None = None,
    ) -> None:
        self.accounts = accounts
        self._clock = clock
        #: Whether the roster as it stands bars a guard's session.
        self._roster_bars = roster_bars
        #: The roster's last answer for each session (by sid), with the session's end: what
        #: a read that fails falls back to (``shift_gone``); at most ``ROSTER_ANSWERS_KEPT``.
        self._roster_answers: dict[str, tuple[datetime, ShiftGone | None]] = {}
        #: The roster's last bar for each guard (by name), from any of the guard's sessions
        #: or sign-ins: what a sign-in or a session with no bar of its own falls back to
        #: while the roster cannot be read (``_guard_bar``); at most ``ROSTER_ANSWERS_KEPT``.
        self._guard_bars: dict[str, ShiftGone] = {}
        #: How many times the roster has changed (``kiosk.roster.Roster.changes``), and at
        #: which count each session (by sid) last asked it to lengthen it (``_lengthened``).
        self._roster_changes = roster_changes
        self._asked: dict[str, int] = {}
        self._answers_lock = threading.Lock()
        self.sessions = SessionManager(
            key or session_key(),
            clock,
            session_hours * 3600,
            revocations=accounts,
            boot_id=boot_id,
            ends=ends,
        )
        self.limiter = LoginLimiter(clock, login_attempts_per_min)
        #: The audit rows of refused sign-ins, bounded LAN-wide (``ui.guard.session``).
        self.refused_rows = RefusedRows(clock)

    def current(self, request: Request) -> Session | None:
        """The session ``request`` acts under, or None; its ``sid`` is kept on the request
        (``request.state.session_sid``: a console banner is shown only to it,
        ``ui.guard.deps.signed_flash``)."""
        session = self._current(request)
        request.state.session_sid = None if session is None else session.sid
        return session

    def _current(self, request: Request) -> Session | None:
        cookie = request.cookies.get(COOKIE)
        signed = self.sessions.signed(cookie)
        if signed is None:
            return None
        # Over by its cookie: lengthened since by the roster? (``lengthened``)
        session = self.sessions.read(cookie) or signed
        ended = session is signed
        if ended and not session.shifts:
            return None
        account = self.accounts.get(session.name)
        # An account removed, disabled or given a new password after sign-in is out; one
        # demoted loses what it no longer has.
        if account is None or not _same_credential(account, session):
            return None
        # None: a removed shift bars it now.
        held = self.on_roster(_in_role(session, account), request)
        if held is None:
            return None
        # Asked once a request; its cookie set on the response (``renew_cookie``).
        if not hasattr(request.state, "lengthened"):
            request.state.lengthened = self._lengthened(held, signed.expires, ended)
        longer: tuple[str, Session] | None = request.state.lengthened
        if longer is None or longer[1].sid != held.sid:
            return None if ended else held
        return longer[1]

    def _lengthened(
        self, session: Session, signed_end: datetime, ended: bool
    ) -> tuple[str, Session] | None:
        """``SessionManager.lengthened`` for a request of ``session`` (its cookie ending at
        ``signed_end``), asked (the roster's reads) only within ``LENGTHEN_ASKED_WITHIN`` of
        that end or past it, or when the roster has changed since it was last asked for this
        session: far from its end, a roster as it was lengthens nothing new. A read that
        failed (the roster locked, busy) is no answer: the next request asks again."""
        changes = None if self._roster_changes is None else self._roster_changes()
        near = ended or signed_end - self._clock.now() <= LENGTHEN_ASKED_WITHIN
        with self._answers_lock:
            asked = self._asked.get(session.sid)
        if not near and changes is not None and asked == changes:
            return None
        try:
            longer = self.sessions.lengthened(session, signed_end, tell_faults=True)
        except (StoreFault, ReadFailure) as exc:  # not asked: the next request asks again
            if not roster_unreadable(exc):
                raise
            return None
        if changes is not None:
            with self._answers_lock:
                self._asked.pop(session.sid, None)
                self._asked[session.sid] = changes
                while len(self._asked) > ROSTER_ANSWERS_KEPT:
                    del self._asked[next(iter(self._asked))]
        return longer

    def lengthens(self, session: Session) -> Session | None:
        """``session`` (signed in, its account unchanged) as the roster lengthens it now
        (``SessionManager.lengthened``), else None: a live stream at its end tells its page
        the time left and closes, and the page's next request (the stream opened again)
        carries the longer cookie. Blocking: the roster's reads."""
        account = self.accounts.get(session.name)
        if self.sessions.revoked(session) or account is None or account.role != session.role:
            return None
        if not _same_credential(account, session):
            return None
        longer = self.sessions.lengthened(session, session.expires)
        return None if longer is None else longer[1]

    def renew_cookie(self, request: Request, response: Response) -> None:
        """The cookie of a session the roster lengthened during ``request`` (``current``),
        set on its ``response``; nothing when the session was signed out meanwhile or the
        response deletes the cookie (a sign-out: the tablet keeps no cookie of it)."""
        longer = getattr(request.state, "lengthened", None)
        if longer is None or self.sessions.revoked(longer[1]):
            return
        mine = f"{COOKIE}=".encode("latin-1")
        if any(v.startswith(mine) for k, v in response.raw_headers if k == b"set-cookie"):
            return
        self.set_cookie(response, request, longer[0], longer[1])

    def on_roster(self, session: Session, request: Request | None = None) -> Session | None:
        """``session`` as the roster holds it now: itself while nothing bars it; ending
        sooner when a shift of its guard removed bars it later in its lifetime (at that
        shift's start, or the end of the one under way's handover hour: ``ShiftGone.ends``);
        None when one bars it now (over). Blocking: a database read (once a ``request``)."""
        gone = self.shift_gone(session, request)
        if gone is None:
            return session
        if gone.ends <= earliest(self._clock):
            return None
        return replace(session, expires=min(session.expires, gone.ends))

    def shift_gone(self, session: Session, request: Request | None = None) -> ShiftGone | None:
        """The shift taken off the roster that bars ``session`` from now to its end
        (``RosterBars``): at its ``ends`` the session is over. None while none does, and for
        an admin's session (never held to the roster). While the roster cannot be read (a
        ``StoreFault``: no reader, the log closing; a ``ReadFailure``: a damaged page, an I/O
        error, a lock) the roster's last answer for the session in this process stands, else
        the last bar of its guard (``_answered``), until the bar's ``until``: a guard barred
        stays barred, any other keeps the gate through the fault (the manual pass is the
        gate's fallback). Read once a ``request`` (its pages and its actions ask more than
        once)."""
        if session.is_admin or self._roster_bars is None:
            return None
        asked: dict[tuple[str, datetime], ShiftGone | None] | None = None
        if request is not None:
            asked = getattr(request.state, "roster_bars", None)
            if asked is None:
                asked = request.state.roster_bars = {}
        key = (session.sid, session.expires)
        if asked is not None and key in asked:
            return asked[key]
        try:
            found = self._roster_bars(session.name, session.shifts, session.expires)
        except (StoreFault, ReadFailure) as exc:
            if not roster_unreadable(exc):
                raise
            found = self._answered(session)
        else:
            self._answer(session, found)
        if asked is not None:
            asked[key] = found
        return found

    def _answer(self, session: Session, found: ShiftGone | None) -> None:
        """Keep the roster's answer for ``session`` (``_answered``), dropping those of
        sessions over, then the oldest past ``ROSTER_ANSWERS_KEPT``; and for its guard
        (``_keep_bar``)."""
        with self._answers_lock:
            answers = self._roster_answers
            answers.pop(session.sid, None)
            answers[session.sid] = (session.expires, found)
            if len(answers) > ROSTER_ANSWERS_KEPT:
                now = self._clock.now()
                kept = [(sid, held) for sid, held in answers.items() if held[0] > now]
                self._roster_answers = dict(kept[-ROSTER_ANSWERS_KEPT:])
        self._keep_bar(session.name, found, session.expires)

    def _answered(self, session: Session) -> ShiftGone | None:
        """The roster's last answer for ``session`` read in this process, else its guard's
        last bar (``_guard_bar``: a session of the guard signed in elsewhere was barred;
        not an older account's of that name, ``_others``), as long as the bar lasts (its
        ``until``); None when neither bars it (a sign-in made during the fault, the guard
        never barred, keeps the gate)."""
        with self._answers_lock:
            held = self._roster_answers.get(session.sid)
        own = None if held is None else held[1]
        if own is not None and own.until > earliest(self._clock):
            return own
        bar = self._guard_bar(session.name)
        return None if bar is None or _others(bar, self._account_of(session.name)) else bar

    def _keep_bar(self, name: str, found: ShiftGone | None, until: datetime) -> None:
        """Keep the roster's answer for guard ``name`` read for a sign-in acting to ``until``
        (``_guard_bar``): a bar a removal makes (not a session's shift changed in place: a
        new sign-in is made on the shift as it is now), or, none found, no bar any longer
        where the read looked (one kept that begins before ``until``: undone, or over; none
        looked at once ``until`` is past: ``ui.guard.deps.roster_bars``)."""
        now = self._clock.now()
        with self._answers_lock:
            bars = self._guard_bars
            if found is None:
                held = bars.get(name)
                if held is not None and now < until and held.ends < until:
                    del bars[name]
                return
            if found.by is None:
                return
            bars.pop(name, None)
            bars[name] = found
            if len(bars) > ROSTER_ANSWERS_KEPT:
                kept = [(who, bar) for who, bar in bars.items() if bar.until > now]
                self._guard_bars = dict(kept[-ROSTER_ANSWERS_KEPT:])

    def _guard_bar(self, name: str, now: datetime | None = None) -> ShiftGone | None:
        """The last bar the roster gave guard ``name`` in this process, while it lasts (its
        ``until`` not past at ``now``, the earliest time the clock can be: ``earliest``, a
        clock not synchronised reading ahead lifts no bar); None otherwise."""
        now = earliest(self._clock) if now is None else now
        with self._answers_lock:
            bar = self._guard_bars.get(name)
        return bar if bar is not None and bar.until > now else None

    def shift_added(self, shift: Shift) -> None:
        """An admin rostered ``shift`` in this process: its guard's kept bar (``_guard_bar``)
        goes when the shift holds any of it (its lead, itself, its handover hour:
        ``kiosk.roster.barred_from``), the roster read next saying what bars now: a guard an
        admin let in is not refused because the roster cannot be read just after."""
        with self._answers_lock:
            bar = self._guard_bars.get(shift.guard)
            if bar is None or shift.starts_at - SIGN_IN_LEAD >= bar.until:
                return
            if shift.ends_at + HANDOVER_GRACE > bar.ends:
                del self._guard_bars[shift.guard]

    def shift_removed(self, shift: Shift, by: str) -> None:
        """Admin ``by`` removed ``shift`` in this process: kept as its guard's last bar
        (``_guard_bar``), its whole span and handover hour (as though no other shift of hers
        held any of it), unless one kept bars her sooner, till the roster read next says what
        bars: a guard taken off a shift does not act during it because the roster cannot be
        read just after."""
        now = self._clock.now()
        span = (shift.starts_at, shift.ends_at + HANDOVER_GRACE)
        bar = ShiftGone(shift.mark, by, now, *span, account=self._account_of(shift.guard))
        held = self._guard_bar(shift.guard)
        if held is None or held.ends > bar.ends:
            self._keep_bar(shift.guard, bar, bar.until)

    def _account_of(self, name: str) -> int | None:
        """Where the account of ``name`` begins now (``AccountStore.since``: the one there, or
        one to come without the name removed first): the one a shift's removal made now bars,
        the one a session of ``name`` is of. None: the store cannot be read (a guard's kept
        bar holds)."""
        try:
            return self.accounts.since(name)
        except (StoreFault, ReadFailure) as exc:
            if not roster_unreadable(exc):
                raise
            return None

    def sign_in_bar(
        self, account: Account, read: Callable[[], ShiftGone | None]
    ) -> ShiftGone | None:
        """The shift taken off the roster that refuses ``account``'s sign-in now (``read``:
        the roster as it stands, ``ui.guard.deps.barred``; blocking), kept as its guard's last
        answer. While the roster cannot be read (``roster_unreadable``) the guard's last bar
        (``_guard_bar``) when it bars now (its ``ends`` come): a guard barred does not sign in
        again during the fault, anyone else does. None for an admin (never held to the
        roster)."""
        if account.role == "admin":
            return None
        try:
            found = read()
        except (StoreFault, ReadFailure) as exc:
            if not roster_unreadable(exc):
                raise
            now = earliest(self._clock)
            bar = self._guard_bar(account.name, now)
            if bar is not None and _others(bar, account.since):
                return None  # another account's of that name (``Roster.barred``)
            return bar if bar is not None and bar.ends <= now else None
        self._keep_bar(account.name, found, self._clock.now() + timedelta(microseconds=1))
        return found

    def as_signed(self, request: Request, session: Session) -> Session:
        """``session`` (``current``'s for ``request``) with the end its sign-in gave it, before
        a removal on the roster shortened it (``on_roster``): what a live stream reads again
        at the shortened end (``ui.guard.live.FeedStream.expired``)."""
        signed = self.sessions.read(request.cookies.get(COOKIE))
        if signed is None or signed.sid != session.sid or signed.expires < session.expires:
            return session
        return replace(session, expires=signed.expires)

    def ended_by_roster(self, request: Request) -> ShiftGone | None:
        """The shift whose removal ended the request's sign-in (its cookie, not signed out):
        what the login page tells its guard. Held to the roster as its account's role is now
        (``current``): an admin demoted to guard is told the removal that ended it. Asked to
        the session's real end (``SessionManager.read``): a sign-in made on a clock not set
        yet carries an expiry of that clock, past once NTP set it."""
        session = self.sessions.read(request.cookies.get(COOKIE))
        if session is None:
            return None
        return self.shift_gone(_in_role(session, self.accounts.get(session.name)), request)

    def still_holds(self, session: Session) -> Session | None:
        """``session``, read earlier, as it still stands (``on_roster``: ending sooner when
        a later shift of it was removed); None once signed out, its account gone or changed
        in role or password, or its shift under way removed (blocking: a database read)."""
        if self.sessions.revoked(session):
            return None
        account = self.accounts.get(session.name)
        if account is None or account.role != session.role:
            return None
        return self.on_roster(session) if _same_credential(account, session) else None

    # --- FastAPI dependencies -------------------------------------------------------------

    def page(self, request: Request) -> Session:
        """For guard HTML pages: the session, or a redirect to the login page."""
        session = self.current(request)
        if session is None:
            target = request.url.path
            if request.url.query:
                target += "?" + request.url.query
            raise HTTPException(
                303, "sign-in required", headers={"Location": "/guard/login?next=" + quote(target)}
            )
        return session

    def api(self, request: Request) -> Session:
        """For guard JSON/stream endpoints: the session, or 401."""
        session = self.current(request)
        if session is None:
            raise HTTPException(401, "sign-in required", headers={"WWW-Authenticate": "Cookie"})
        return session

    async def action(self, request: Request) -> Session:
        """For every state change: same origin and CSRF token (403), a session (401; a
        browser's form post whose session has expired is sent to the login page instead,
        nothing done)."""
        if not same_origin(request):
            raise HTTPException(403, "cross-site request refused")
        session = self.current(request)
        if session is None:
            if request.headers.get("accept", "").startswith("text/html"):
                location = await self._login_then_resume(request)
                raise HTTPException(303, "sign-in required", headers={"Location": location})
            raise HTTPException(401, "sign-in required", headers={"WWW-Authenticate": "Cookie"})
        token = request.headers.get(CSRF_HEADER)
        if token is None and request.headers.get("content-type", "").startswith(
            ("application/x-www-form-urlencoded", "multipart/form-data")
        ):
            form = await request.form()
            value = form.get(CSRF_FIELD)
            token = value if isinstance(value, str) else None
        if not self.sessions.check_csrf(session, token):
            raise WrongToken()
        return session

    async def _login_then_resume(self, request: Request) -> str:
        """The login page, carrying the cut-off action (a browser's form post) so it can
        complete once the guard has signed in again. Only an action posted from a page of a
        session that has ended (its cookie, signed here and not signed out, and that
        session's CSRF token) is carried, and only for that guard: a request from someone
        who never signed in cannot plant an action for the next guard to make."""
        location = "/guard/login?next=/guard"
        path = request.url.path
        ended = self.sessions.signed(request.cookies.get(COOKIE))
        if (
            ended is None
            or not is_resumable(path)
            or not request.headers.get("content-type", "").startswith(
                "application/x-www-form-urlencoded"
            )
        ):
            return location
        form = await request.form()
        csrf = form.get(CSRF_FIELD)
        if not self.sessions.check_csrf(ended, csrf if isinstance(csrf, str) else None):
            return location
        fields = [(k, v) for k, v in form.multi_items() if k != CSRF_FIELD and isinstance(v, str)]
        action = str(getattr(request.state, "route_action", ""))
        token = self.sessions.resume_token(path, fields, ended.name, action)
        return f"{location}&resume={quote(token)}" if token else location

    def admin_action(self, session: Session) -> Session:
        if not session.is_admin:
            raise HTTPException(403, "admin role required")
        return session

    def set_cookie(
        self, response: Response, request: Request, cookie: str, session: Session
    ) -> None:
        # The browser keeps the cookie a little past the session's end: an action posted
        # then is refused, but is carried through the login page as that guard's own.
        lifetime = self.sessions.lifetime(session)
        if self.sessions.may_lengthen(session):  # kept till the roster can carry it no more
            lifetime = max(lifetime, _longest_end(session) - self._clock.now())
        lifetime_s = int(lifetime.total_seconds()) + RESUME_TTL_S
        set_private_cookie(response, request, COOKIE, cookie, path="/guard", max_age=lifetime_s)

    def clear_cookie(self, response: Response) -> None:
        response.delete_cookie(COOKIE, path="/guard", httponly=True, samesite="strict")
