"""Signed passes: Ed25519 over a compact binary record, carried as Base45 text in a QR code.

Why this shape:

* **Offline and unforgeable.** The kiosk holds only public keys (the trust list, one ``*.pub``
  per issuer key, several at once so keys can be rotated). A pass verifies only with a key on
  that list; the private key stays with the office or the guard console.
* **Fits QR version 8 at error correction Q.** Q survives a scuffed printed card; version 8
  (49x49 modules) still decodes from a cheap camera at arm's length. That symbol holds 157
  alphanumeric characters, so the record is packed tightly: ``KP1:`` then Base45 of at most
  102 bytes, 64 of which are the signature (see ``MAX_TEXT_BYTES`` and docs/passes.md).
* **Any change is rejected.** Base45 decoding is canonical (``kiosk.base45``), the binary
  layout has exactly one encoding per pass (reserved bits must be zero, lengths are exact),
  and the signature covers the prefix and every byte before it. So a payload text that
  differs from an issued one in any character either fails to parse or fails the signature.
* **Never crashes on input.** ``TrustList.verify`` turns every malformed input (random bytes,
  a URL, a truncated scan) into ``PassError("pass_malformed")``.

The validity window is *not* checked here: it depends on ``now``, which belongs to
``kiosk.policy.decide`` (reasons ``pass_expired`` / ``pass_not_yet_valid``).
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import secrets
import stat
import struct
import threading
import unicodedata
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, tzinfo
from pathlib import Path
from typing import Literal

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from . import base45
from .clock import AGREE_SLACK, Clock, known_passed
from .days import NoSuchTime, local_instant, shown_local
from .files import UnreadableFile, read_bounded, write_atomic
from .pass_format import (  # the format's figures, kept where the CLI's parser reads them
    FLAGS,
    KEY_ID_BYTES,
    MAX_RECORD_BYTES,
    MAX_VALID_HOURS,
    PASS_ID_BYTES,
    PREFIX,
    QR_CAPACITY_CHARS,
    ROLES,
    SIGNATURE_BYTES,
    VERSION,
    Role,
)
from .typed import typed

log = logging.getLogger(__name__)

__all__ = [
    "MAX_TEXT_BYTES",
    "TRUST_SETTLE_S",
    "KeyFileError",
    "Pass",
    "PassError",
    "PassStartError",
    "TrustList",
    "TrustListError",
    "check_fields",
    "encode_pass",
    "issue_pass",
    "key_id_of",
    "load_private_key",
    "load_public_key",
    "new_key_pair",
    "pass_start",
    "public_key_pem",
]

#: How long a start gives a trust folder whose read failed before reading it again
#: (``TrustList.settled``): a key being copied in is written within it.
TRUST_SETTLE_S = 2.0

PassReason = Literal["pass_malformed", "pass_bad_signature", "pass_unknown_key"]

# key_id(2) pass_id(6) valid_from(u32 s) valid_hours(u16) role|flags(1) household_len(1)
_HEADER = struct.Struct(">2s6sIHBB")
#: Room left for household and holder together, in UTF-8 bytes.
MAX_TEXT_BYTES = MAX_RECORD_BYTES - SIGNATURE_BYTES - _HEADER.size


class PassError(Exception):
    """A payload that is not a pass from a trusted key. ``reason`` is a reason code."""

    def __init__(self, reason: PassReason, detail: str = "") -> None:
        super().__init__(detail or reason)
        self.reason: PassReason = reason
        self.detail = detail


class TrustListError(Exception):
    """A trust directory or key file that cannot be used (unreadable, not an Ed25519 key)."""


class KeyFileError(Exception):
    """A key file that cannot be read or written."""


@dataclass(frozen=True, slots=True)
class Pass:
    """A verified (or freshly issued) pass. Times are aware UTC; ``pass_id`` and ``key_id`` hex."""

    version: int
    key_id: str
    pass_id: str
    household: str
    holder: str
    role: Role
    valid_from: datetime
    valid_until: datetime
    flags: tuple[str, ...] = ()

    def fields(self) -> dict[str, object]:
        """JSON-ready fields (for ``kiosk pass verify`` and the guard screen)."""
        return {
            "version": self.version,
            "key_id": self.key_id,
            "pass_id": self.pass_id,
            "household": self.household,
            "holder": self.holder,
            "role": self.role,
            "valid_from": self.valid_from.isoformat(),
            "valid_until": self.valid_until.isoformat(),
            "flags": list(self.flags),
        }


# --------------------------------------------------------------------------- keys


def key_id_of(public_key: Ed25519PublicKey) -> str:
    """Short id of a public key: the first bytes of SHA-256 of its raw form, in hex.

    Two bytes keep the QR small; the trust list tolerates an id shared by two keys by trying
    both, so a collision costs one extra verification, never a wrong answer.
    """
    return hashlib.sha256(_raw(public_key)).digest()[:KEY_ID_BYTES].hex()


def _raw(public_key: Ed25519PublicKey) -> bytes:
    return public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def public_key_pem(public_key: Ed25519PublicKey) -> bytes:
    return public_key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def new_key_pair(directory: str | Path, name: str = "issuer") -> tuple[Path, Path]:
    """Write ``DIR/NAME.key`` (PKCS#8 PEM, mode 0600) and ``DIR/NAME.pub``; never overwrite.

    The private file is created with ``O_EXCL`` and mode 0600 in one call, so there is no
    moment at which it exists with wider permissions.
    """
    if not name or "/" in name or name.startswith(".") or len(name) > 64:
        raise KeyFileError(f"key name {name!r} must be a plain file name (1-64 chars, no '/')")
    directory = Path(directory)
    key_path, pub_path = directory / f"{name}.key", directory / f"{name}.pub"
    if empty_key_left_by_a_cut(key_path, pub_path):
        try:
            key_path.unlink()
        except OSError as exc:
            raise KeyFileError(f"cannot remove the empty {key_path}: {exc.strerror}") from None
    for path in (key_path, pub_path):
        if path.exists():
            raise KeyFileError(_refusal(key_path, pub_path, path))
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise KeyFileError(f"cannot create {directory}: {exc.strerror or exc}") from None
    private = Ed25519PrivateKey.generate()
    pem = private.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    made = False
    try:
        fd = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        made = True
        with os.fdopen(fd, "wb") as fh:
            fh.write(pem)
            fh.flush()
            os.fsync(fh.fileno())  # a power cut must not leave an empty key behind
        os.chmod(key_path, 0o600)  # an odd umask cannot widen it, but be explicit
        # Synced with the folder (both names): the install mends a missing half, not a lost key.
        write_atomic(pub_path, public_key_pem(private.public_key()), 0o644)
    except OSError as exc:
        if made:  # a key without its public half (a full card) was never used: not kept
            with contextlib.suppress(OSError):
                key_path.unlink()
        raise KeyFileError(
            f"cannot write key files in {directory}: {exc.strerror or exc}"
        ) from None
    return key_path, pub_path


def empty_key_left_by_a_cut(key_path: Path, pub_path: Path) -> bool:
    """``NAME.key`` empty with no ``NAME.pub``: a power cut before the key's sync while
    ``new_key_pair`` made it (the public half is written only after that sync). It never
    signed a pass, so a new pair may take its place."""
    try:
        return key_path.is_file() and key_path.stat().st_size == 0 and not pub_path.exists()
    except OSError:
        return False


def _refusal(key_path: Path, pub_path: Path, path: Path) -> str:
    """Why ``new_key_pair`` will not write over ``path``: a key in use, or one that is empty or
    damaged beside a public half trust folders may hold (passes it signed still verify there)."""
    try:
        load_private_key(key_path)
    except KeyFileError:
        if key_path.is_file():
            empty = key_path.stat().st_size == 0
            beside = (
                f" and {pub_path.name} beside it may be in the kiosks' trust folders (passes it"
                " signed verify there)"
                if pub_path.exists()
                else ""
            )
            return (
                f"{key_path} is {'empty' if empty else 'damaged (not a PEM private key)'}"
                f"{beside}: it is not replaced. Restore the key from your backup; or, to issue"
                f" from a new key, move both aside (mv {key_path.name} {pub_path.name}"
                " somewhere else) and run again"
            )
    return f"{path} already exists; refusing to overwrite a key"


def load_private_key(path: str | Path) -> Ed25519PrivateKey:
    data = _read_key(path, KeyFileError, "cannot read key")
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError, UnsupportedAlgorithm) as exc:  # e.g. an SM2 key
        raise KeyFileError(f"{path} is not an unencrypted PEM private key ({exc})") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise KeyFileError(f"{path} is not an Ed25519 private key")
    return key


def load_public_key(path: str | Path) -> Ed25519PublicKey:
    data = _read_key(path, TrustListError, "cannot read")
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise TrustListError(
            f"{path} is saved as UTF-16 (Notepad's 'Unicode', PowerShell's '>'): copy the .pub"
            " file itself, or save it again as UTF-8"
        )
    try:
        key = serialization.load_pem_public_key(data)
    except (ValueError, TypeError):
        raise TrustListError(f"{path} is not a PEM public key") from None
    except UnsupportedAlgorithm as exc:  # an SM2 key, an unusual curve: no ValueError
        raise TrustListError(f"{path} is not an Ed25519 public key ({exc})") from None
    if not isinstance(key, Ed25519PublicKey):
        raise TrustListError(f"{path} is not an Ed25519 public key")
    return key


#: The ends of a key file's name in a trust folder, in any case: ``.pub``, and ``.pub.txt`` as
#: Notepad saves it on Windows (whose Explorer hides the ``.txt``).
KEY_FILE_SUFFIXES = (".pub.txt", ".pub")


def key_files(directory: Path) -> list[tuple[str, Path]]:
    """(issuer name, path) of each key file in a trust folder, by name: ``NAME.pub``, and as
    a Windows PC may have saved it, ``NAME.PUB`` or ``NAME.pub.txt``. Skipping those would
    deny every pass of their issuer as ``pass_unknown_key`` with nothing said about the file."""
    try:
        paths = sorted(directory.iterdir())
    except OSError as exc:
        raise TrustListError(f"trust directory {directory}: {exc.strerror or exc}") from None
    found = []
    for path in paths:
        lower = path.name.lower()
        suffix = next((s for s in KEY_FILE_SUFFIXES if lower.endswith(s)), None)
        if suffix is not None and len(lower) > len(suffix):
            found.append((path.name[: -len(suffix)], path))
    return found


#: A PEM Ed25519 key is about 120 bytes; a key file is read no further than this.
MAX_KEY_FILE_BYTES = 16 * 1024


def _read_key(path: str | Path, error: type[Exception], what: str) -> bytes:
    try:
        return read_bounded(path, MAX_KEY_FILE_BYTES)
    except UnreadableFile as exc:
        raise error(f"{what} {path}: {exc}") from None


# --------------------------------------------------------------------------- fields


def _check_text(name: str, value: str) -> bytes:
    if not isinstance(value, str) or not value:
        raise ValueError(f"{name} must not be empty")
    if value != value.strip():
        raise ValueError(f"{name} must not start or end with spaces")
    for at, ch in enumerate(value, 1):  # named where it is: it looks like nothing, or a box
        if unicodedata.category(ch)[0] in "CZ" and ch != " ":
            raise ValueError(
                f"{name} must be printable text on one line"
                f" (its character {at} is U+{ord(ch):04X}, which no card can show)"
            )
    return value.encode("utf-8")


def check_fields(household: str, holder: str) -> None:
    """Raise ``ValueError`` (one clear sentence) if the texts cannot go on a pass."""
    total = len(_check_text("household", household)) + len(_check_text("holder", holder))
    if total > MAX_TEXT_BYTES:
        raise ValueError(
            f"household and holder take {total} bytes together; a pass has room for"
            f" {MAX_TEXT_BYTES} (UTF-8: a Chinese character takes 3) - use an initial"
            " or a shorter household code"
        )


def _role_flags_byte(role: str, flags: Iterable[str]) -> int:
    if role not in ROLES:
        raise ValueError(f"role must be one of {', '.join(ROLES)}")
    value = ROLES.index(role)
    for flag in flags:
        if flag not in FLAGS:
            raise ValueError(f"unknown flag {flag!r}; known: {', '.join(FLAGS)}")
        value |= 1 << (2 + FLAGS.index(flag))
    return value


def _signed_message(record_without_sig: bytes) -> bytes:
    return PREFIX.encode("ascii") + record_without_sig


def encode_pass(private_key: Ed25519PrivateKey, pass_: Pass) -> str:
    """Sign and encode a pass; its ``key_id`` must be the signing key's."""
    key_id = key_id_of(private_key.public_key())
    if pass_.key_id != key_id:
        raise ValueError("pass key_id does not match the signing key")
    check_fields(pass_.household, pass_.holder)
    start = int(pass_.valid_from.timestamp())
    if pass_.valid_from != datetime.fromtimestamp(start, UTC):
        raise ValueError("valid_from must be a whole second")
    hours, rest = divmod(int((pass_.valid_until - pass_.valid_from).total_seconds()), 3600)
    if rest or pass_.valid_until - pass_.valid_from != timedelta(hours=hours):
        raise ValueError("validity must be a whole number of hours")
    if not 1 <= hours <= MAX_VALID_HOURS:
        raise ValueError(f"validity must be 1 to {MAX_VALID_HOURS} hours")
    if not 0 <= start <= 0xFFFFFFFF:
        raise ValueError("valid_from out of range")
    household = pass_.household.encode("utf-8")
    header = _HEADER.pack(
        bytes.fromhex(key_id),
        bytes.fromhex(pass_.pass_id),
        start,
        hours,
        _role_flags_byte(pass_.role, pass_.flags),
        len(household),
    )
    body = header + household + pass_.holder.encode("utf-8")
    signature = private_key.sign(_signed_message(body))
    return PREFIX + base45.encode(body + signature)


def valid_hours(start: datetime, days: float, tz: tzinfo) -> int:
    """The hours a pass issued at ``start`` for ``days`` runs, whole days counted on the
    calendar of ``tz``: to the same local clock time ``days`` days on (721 hours for 30 days
    across the autumn change, 239 for 10 across the spring one), a part of a day then as
    hours (``round(part * 24)``). A clock time the spring change skips that day is the
    summer time an hour later; one the autumn change repeats, its first occurrence (as the
    roster reads a shift's times). The signed record holds whole hours: a zone whose change
    is half an hour (Lord Howe) ends half an hour later, never earlier."""
    whole = int(days)
    local = start.astimezone(tz)
    try:
        same_time = (local.replace(tzinfo=None) + timedelta(days=whole)).replace(tzinfo=tz)
    except OverflowError:
        return MAX_VALID_HOURS + 1  # past the calendar: refused as too long
    end = same_time.astimezone(UTC) + timedelta(hours=round((days - whole) * 24))
    return -(-int((end - start).total_seconds()) // 3600)


def issue_pass(
    private_key: Ed25519PrivateKey,
    household: str,
    holder: str,
    role: str = "resident",
    days: float = 30,
    now: datetime | None = None,
    flags: Iterable[str] = (),
    tz: tzinfo | None = None,
) -> tuple[str, Pass]:
    """Issue a new pass valid from ``now`` (to the second) for ``days`` (rounded to hours).

    With ``tz`` (the site's zone) the whole days are days of its calendar: the pass ends at
    the clock time it was issued at, ``days`` days on, as a person reading the card expects
    (``valid_hours``), also across a change to or from summer time; a part of a day is hours
    on from there. Without it, ``days`` x 24 real hours.

    ``now`` is required in practice (the guard console passes its clock's time); it is a
    keyword with a default only so callers cannot confuse its position with ``days``.
    ``household`` and ``holder`` go on the pass in their plain spelling (``kiosk.typed``:
    full-width ``１-１０１`` is ``1-101``, as the lists and the ledgers keep it).
    Raises ``ValueError`` with one clear sentence for anything that cannot go on a pass.
    """
    if now is None:
        raise ValueError("issue_pass needs now (from the injected clock)")
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    start = datetime.fromtimestamp(int(now.timestamp()), UTC)
    hours = round(days * 24) if tz is None else valid_hours(start, days, tz)
    if not 1 <= hours <= MAX_VALID_HOURS:
        raise ValueError(f"days must give 1 to {MAX_VALID_HOURS} hours of validity")
    pass_ = Pass(
        version=VERSION,
        key_id=key_id_of(private_key.public_key()),
        pass_id=secrets.token_hex(PASS_ID_BYTES),
        household=typed(household) if isinstance(household, str) else household,
        holder=typed(holder) if isinstance(holder, str) else holder,
        role=role,  # type: ignore[arg-type]  # checked by encode_pass
        valid_from=start,
        valid_until=start + timedelta(hours=hours),
        flags=tuple(f for f in FLAGS if f in set(flags)),
    )
    unknown = set(flags) - set(FLAGS)
    if unknown:
        raise ValueError(f"unknown flag {sorted(unknown)[0]!r}; known: {', '.join(FLAGS)}")
    return encode_pass(private_key, pass_), pass_


#: How far a start typed by the issuer (to the minute, read off a phone or a watch) may lie
#: from the clock: before the earliest time it knows has passed, or, on a synchronised clock,
#: either side of its time.
START_SLACK = AGREE_SLACK
#: How far a start typed on a clock not synchronised may lie from its reading, unless the
#: issuer says it is the clock that is wrong (``anyway``): a mistyped month, a year.
START_FAR = timedelta(days=1)


class PassStartError(ValueError):
    """The start of a pass to issue cannot be told (``pass_start``). ``code``: ``unsynced``
    (no start given on a clock not synchronised), ``before_floor`` (a start before a time
    known to have passed, less ``START_SLACK``: ``earliest``), ``not_now`` (a start far from a
    synchronised clock's time), ``far`` (a start more than ``START_FAR`` from a clock not
    synchronised), ``expired`` (a pass that start gives ended before the clock's reading);
    ``reading``: the clock's time, to show the issuer; ``start``: the start given."""

    def __init__(
        self,
        code: str,
        message: str,
        reading: datetime,
        earliest: datetime,
        start: datetime | None = None,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.reading = reading
        self.earliest = earliest
        self.start = start


def pass_start(
    clock: Clock,
    start: datetime | None = None,
    tz: tzinfo = UTC,
    *,
    days: float | None = None,
    anyway: bool = False,
) -> datetime:
    """When a pass issued now starts (the ``now`` of ``issue_pass``): the one rule of the
    guard console and ``kiosk pass issue|batch``.

    A synchronised clock's time (a ``start`` given must be within ``START_SLACK`` of it: the
    clock's time is used). On a clock *not* synchronised its reading is not signed silently:
    after an overnight power cut a floored clock reads the last shutdown's time (a six-hour
    pass printed at 09:10 would be valid 22:10-04:10, expired when handed over), and one that
    is fast would start the pass days late. The issuer gives the time now (``start``), no
    earlier than the newest time the clock knows has passed (``kiosk.clock.known_passed``)
    less ``START_SLACK``, and it is the pass's start; nor more than ``START_FAR`` from the
    clock's reading, nor so early that a pass of ``days`` has ended by it (a mistyped month
    printed a month's passes expired), unless ``anyway`` (the issuer says the clock is what
    is wrong). A ``start`` without an offset is the time typed off the site's clock, in
    ``tz`` (``kiosk.days.local_instant``): one the spring change skips is refused
    (``skipped``), one the autumn change repeats is the occurrence the clock allows, nearest
    its reading. Raises ``PassStartError`` saying the times in ``tz`` (with their UTC offsets
    in the hour the autumn change repeats: ``kiosk.days.shown_local``)."""
    now = clock.now()
    floor = known_passed(clock)
    low = (now if floor is None else floor) - START_SLACK

    def refused(code: str, why: str, start: datetime | None = None) -> PassStartError:
        return PassStartError(code, f"{why} (it reads {shown_local(now, tz)})", now, low, start)

    if start is not None and start.tzinfo is None:
        # Only a time known to have passed rules an occurrence out: an unsynchronised clock
        # without a floor (the CLI's) may be fast, its reading no such time.
        known = low if floor is not None or clock.synced() else None
        try:
            start = local_instant(start, tz, near=now, not_before=known)
        except NoSuchTime as exc:
            raise refused("skipped", f"the start {exc}") from None
    if clock.synced():
        if start is not None and abs(start - now) > START_SLACK:
            shown = shown_local(start, tz)
            raise refused("not_now", f"the start {shown} is not the time now by the clock", start)
        return now
    if start is None:
        raise refused(
            "unsynced",
            "this machine's clock is not synchronised: give the pass's start, the time now"
            " read off a phone or a watch",
        )
    shown = shown_local(start, tz)
    if floor is not None and start < low:
        why = f"the start {shown} is before {shown_local(floor, tz)}, a time known to have passed"
        raise refused("before_floor", why, start)
    if not anyway and abs(start - now) > START_FAR:
        raise refused("far", f"the start {shown} is more than a day from this clock's time", start)
    if not anyway and days is not None and start + timedelta(days=days) <= now:
        why = f"a pass from {shown} for {days:g} days has expired by the clock"
        raise refused("expired", why, start)
    return start


# --------------------------------------------------------------------------- trust


class TrustList:
    """The issuer public keys this kiosk accepts; several at once so keys can rotate.

    Built ``from_dir``, it follows its folder: adding or removing a ``*.pub`` takes effect at
    the next check (the folder's modification time is looked at, about a microsecond), so the
    rotation in docs/passes.md needs no restart. A folder that cannot be read again, or a new
    bad file, leaves the keys in force as they were and says why (``problem``)."""

    def __init__(
        self, keys: Iterable[tuple[str, Ed25519PublicKey]] = (), *, source: Path | None = None
    ) -> None:
        self._keys = self._index(keys)
        self._source = source
        self._stamp: int | None = None
        self._lock = threading.Lock()
        self.problem: str | None = None

    @staticmethod
    def _index(
        keys: Iterable[tuple[str, Ed25519PublicKey]],
    ) -> tuple[dict[str, list[tuple[str, Ed25519PublicKey]]], tuple[str, ...]]:
        by_id: dict[str, list[tuple[str, Ed25519PublicKey]]] = {}
        names: list[str] = []
        for name, key in keys:
            by_id.setdefault(key_id_of(key), []).append((name, key))
            names.append(name)
        return by_id, tuple(names)

    @classmethod
    def from_dir(cls, path: str | Path) -> TrustList:
        """Trust every ``*.pub`` in ``path`` (file stem = issuer name). A bad file is an error:
        silently skipping it would turn every pass of that issuer into ``pass_unknown_key``."""
        directory = Path(path)
        stamp = cls._folder_stamp(directory)
        trust = cls(cls._read_dir(directory), source=directory)
        trust._stamp = stamp
        return trust

    @classmethod
    def settled(cls, path: str | Path, wait: Callable[[float], None]) -> TrustList:
        """``from_dir`` at a start, read once more after ``wait(TRUST_SETTLE_S)`` when it
        fails: a key caught half-copied (``cp`` creates the file, then writes it: an empty
        ``office.pub``) is whole a moment later, and the start goes on. Still failing, the
        second read's error (``kiosk run``: exit 2, no restart mends it)."""
        try:
            return cls.from_dir(path)
        except TrustListError as exc:
            log.warning("trust folder: %s; read again in %.0f s", exc, TRUST_SETTLE_S)
        wait(TRUST_SETTLE_S)
        return cls.from_dir(path)

    @staticmethod
    def _folder_stamp(directory: Path) -> int:
        try:
            st = directory.stat()
        except FileNotFoundError:
            raise TrustListError(f"trust directory {directory} does not exist") from None
        except OSError as exc:
            raise TrustListError(f"trust directory {directory}: {exc.strerror}") from None
        if not stat.S_ISDIR(st.st_mode):
            raise TrustListError(
                f"trust directory {directory} is a file, not a folder: name the folder that"
                " holds the *.pub keys"
            )
        return st.st_mtime_ns

    @staticmethod
    def _read_dir(directory: Path) -> list[tuple[str, Ed25519PublicKey]]:
        return [(name, load_public_key(f)) for name, f in key_files(directory)]

    def _current(self) -> tuple[dict[str, list[tuple[str, Ed25519PublicKey]]], tuple[str, ...]]:
        """The keys in force, re-read first if the folder changed since they were read."""
        if self._source is not None:
            with self._lock:
                try:
                    stamp = self._folder_stamp(self._source)
                    if stamp != self._stamp:
                        # Stamped only once read well: a file caught half-copied (``cp``
                        # creates it, then writes) is read again at the next check.
                        self._keys = self._index(self._read_dir(self._source))
                        self._stamp, self.problem = stamp, None
                except TrustListError as exc:
                    if self.problem != str(exc):
                        log.error("trust list not re-read, the keys in force stay: %s", exc)
                    self.problem = str(exc)
        return self._keys

    @property
    def names(self) -> tuple[str, ...]:
        return self._current()[1]

    def __len__(self) -> int:
        return len(self._current()[1])

    def keys_for(self, key_id: str) -> list[tuple[str, Ed25519PublicKey]]:
        """Issuer (name, key) pairs with this id; usually one."""
        return list(self._current()[0].get(key_id, ()))

    def named(self, name: str) -> Ed25519PublicKey | None:
        """The key of ``NAME.pub`` in the folder (a compound peer's pinned key), if trusted."""
        return next(
            (key for keys in self._current()[0].values() for n, key in keys if n == name), None
        )

    def trusts(self, public_key: Ed25519PublicKey) -> bool:
        """Whether ``public_key`` is in force here: a pass it signs is not refused as
        ``pass_unknown_key`` (the guard console's own key, after a rotation removed it)."""
        raw = _raw(public_key)
        return any(_raw(key) == raw for _name, key in self.keys_for(key_id_of(public_key)))

    def issuer_of(self, key_id: str) -> str | None:
        keys = self._current()[0].get(key_id)
        return keys[0][0] if keys else None

    def verify_detached(self, key_id: str, message: bytes, signature: bytes) -> str:
        """Verify a signature by a trusted key (signed list bundles); returns the issuer name."""
        keys = self._current()[0].get(key_id)
        if not keys:
            raise PassError("pass_unknown_key", f"no trusted key with id {key_id}")
        for name, key in keys:
            try:
                key.verify(signature, message)
            except InvalidSignature:
                continue
            return name
        raise PassError("pass_bad_signature", "signature does not verify")

    def verify(self, text: object) -> Pass:
        """Decode and verify a payload. Never raises anything but ``PassError``."""
        try:
            return self._verify(text)
        except PassError:
            raise
        except Exception as exc:  # belt and braces: any surprise is a malformed payload
            raise PassError(
                "pass_malformed", f"unreadable payload ({type(exc).__name__})"
            ) from None

    def _verify(self, text: object) -> Pass:
        if isinstance(text, bytes | bytearray):
            try:
                text = bytes(text).decode("ascii")
            except UnicodeDecodeError:
                raise PassError("pass_malformed", "not ASCII text") from None
        if not isinstance(text, str):
            raise PassError("pass_malformed", "not text")
        if not text.startswith(PREFIX):
            raise PassError("pass_malformed", f"does not start with {PREFIX}")
        if len(text) > QR_CAPACITY_CHARS:
            raise PassError("pass_malformed", "too long")
        try:
            record = base45.decode(text[len(PREFIX) :])
        except base45.Base45Error as exc:
            raise PassError("pass_malformed", f"not Base45: {exc}") from None
        if len(record) < _HEADER.size + 2 + SIGNATURE_BYTES:
            raise PassError("pass_malformed", "too short")
        body, signature = record[:-SIGNATURE_BYTES], record[-SIGNATURE_BYTES:]
        key_raw, pass_raw, start, hours, role_flags, household_len = _HEADER.unpack_from(body)
        if not 1 <= household_len <= len(body) - _HEADER.size - 1:
            raise PassError("pass_malformed", "household length out of range")
        key_id = key_raw.hex()
        keys = self._current()[0].get(key_id)
        if not keys:
            raise PassError("pass_unknown_key", f"no trusted key with id {key_id}")
        message = _signed_message(body)
        for _name, key in keys:
            try:
                key.verify(signature, message)
                break
            except InvalidSignature:
                continue
        else:
            raise PassError("pass_bad_signature", "signature does not verify")
        # Signed by a trusted key: the rest must still be well formed (an issuer bug or a
        # key used for something else must not turn into a pass).
        text_raw = body[_HEADER.size :]
        try:
            household = text_raw[:household_len].decode("utf-8")
            holder = text_raw[household_len:].decode("utf-8")
            check_fields(household, holder)
        except (UnicodeDecodeError, ValueError) as exc:
            raise PassError("pass_malformed", f"bad text field: {exc}") from None
        if role_flags >> (2 + len(FLAGS)):
            raise PassError("pass_malformed", "reserved flag bits set")
        if hours == 0:
            raise PassError("pass_malformed", "empty validity window")
        valid_from = datetime.fromtimestamp(start, UTC)
        return Pass(
            version=VERSION,
            key_id=key_id,
            pass_id=pass_raw.hex(),
            household=household,
            holder=holder,
            role=ROLES[role_flags & 0b11],
            valid_from=valid_from,
            valid_until=valid_from + timedelta(hours=hours),
            flags=tuple(f for i, f in enumerate(FLAGS) if role_flags & (1 << (2 + i))),
        )
