"""Lists out to every gate: the office signs one bundle, each kiosk fetches it on a schedule.

Office side: ``publish_bundle(key, lists, out)`` validates the lists (revocations, quarantine,
households), gives them the next version — a published version never goes down, the file that
is already there says which one was last — signs them with the office key
(``kiosk.lists.sign_bundle``) and replaces ``out`` atomically. The collector serves that file
at ``/lists/bundle`` (``BundleFile``: an ``ETag`` from the content, ``304`` on a match).
Beside it, the same version naming each quarantine and household entry's compound
(``compounds_path``), served to a gate that names its own (``?compound=ID``): a household code
is its compound's own, and such a gate applies its compound's entries and those naming none.

Kiosk side: ``ListSync`` asks the configured URL every ``lists_poll_s`` with
``If-None-Match``. A new body goes to ``ListStore.import_bundle``, which verifies the signature
against the kiosk's trust list, refuses a version older than the one applied (a replayed or
rolled-back bundle) and applies the rest in one transaction through the event log's writer —
the engine never decides on half a bundle. Every failure (network, HTTP, signature, version)
leaves the last good lists in force. ``status()`` says how old they are: the age counts from
the last time the office *confirmed* them (a new bundle applied, the same version again, or a
``304``), so a gate that has been offline for a day says so, and keeps deciding.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import logging
import os
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from pydantic import ValidationError

from kiosk.clock import Clock
from kiosk.core import Core
from kiosk.deadline import LogUses, Stopped
from kiosk.files import write_atomic
from kiosk.lists import (
    BUNDLE_FORMAT,
    BUNDLE_FORMAT_COMPOUNDS,
    BundleError,
    BundlePayload,
    ListStore,
    QuarantineIn,
    age_since,
    same_text,
    sign_bundle,
    stamp_ahead,
)
from kiosk.logs import FlapLimit, RepeatedFailure
from kiosk.passes import TrustList
from kiosk.typed import visible, whole_number
from office.deadline import Deadline, DeadlineExceeded
from office.pull import (
    PLAIN_JSON,
    REQUEST_DEADLINE_S,
    PullError,
    TrustedClient,
    read_capped,
    status_words,
    untrusted_certificate,
)

log = logging.getLogger(__name__)

#: How a gate comes to trust the office's certificate (its list sync refused it).
TRUST_THE_OFFICE = "give kiosk.service its certificate: SSL_CERT_FILE=/path/to/office-cert.pem"

__all__ = [
    "BundleFile",
    "ListSync",
    "PublishBusy",
    "PublishResult",
    "SyncResult",
    "compounds_path",
    "declared_compounds",
    "high_water_path",
    "publish_bundle",
    "unreadable_bundle",
]

#: Largest bundle a kiosk accepts (the payload schema allows 200,000 rows per list).
MAX_BUNDLE_BYTES = 64 * 2**20
#: What to do about a redirect the office answered (``office.pull.status_words``).
OFFICE_MOVED = "if the office's bundle is there now, set [fleet] lists_url to that URL"
#: After a failed check, try again sooner than the normal interval, but not hammering.
RETRY_S = 60.0
#: The most ``ListSync.stop`` waits for an apply under way (the bundle's audited write) to end.
APPLY_WAIT_S = 5.0
#: The mode of the bundle's files (``bundle.json``, ``bundle.compounds.json``,
#: ``bundle.json.version``, and their temporaries): they name quarantined households and
#: people (health data). Their owner (who publishes) reads and writes them, their group (the
#: collector's user, who serves them) reads them, nobody else (``bundle_group``).
BUNDLE_MODE = 0o640


class PublishBusy(BundleError):
    """Another publish holds the bundle's folder (``publish_bundle``): try again, nothing
    was written."""


#: What may come before a bundle's ``{``: white space and a byte order mark.
_LEADING = b" \t\r\n\xef\xbb\xbf"


class _BundleTooLarge(Exception):
    """The office's answer is over ``MAX_BUNDLE_BYTES`` (``read_capped``'s ``too_large``)."""


# --------------------------------------------------------------------------- office side


@dataclass(frozen=True)
class PublishResult:
    path: Path
    version: int
    etag: str
    counts: dict[str, int]
    #: The compounds the entries name (``compound``); none: every entry is every gate's.
    compounds: list[str] = field(default_factory=list)
    #: What publish found and did about it: the bundle file held a version below one this
    #: office published before (restored from a backup), so it went on above that one.
    notice: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {"path": str(self.path), "version": self.version, "etag": self.etag} | {
            "counts": self.counts,
            "compounds": self.compounds,
            "notice": self.notice,
        }


def bundle_version(text: str | bytes) -> int:
    """The version inside a signed bundle, read without verifying it (office tooling only:
    the kiosk always verifies). ``0`` if it cannot be read."""
    try:
        payload = json.loads(json.loads(text)["payload"])
        version = payload["version"]
    except (ValueError, KeyError, TypeError):
        return 0
    return version if isinstance(version, int) and not isinstance(version, bool) else 0


#: What ``publish_bundle`` takes: the three lists, and payload keys it replaces anyway.
_PUBLISHABLE = frozenset(
    {"revocations", "quarantine", "households", "compounds", "format", "version", "issued_at"}
)


def etag_of(body: bytes) -> str:
    return '"' + hashlib.sha256(body).hexdigest()[:32] + '"'


def publish_bundle(
    key: Ed25519PrivateKey,
    lists: Mapping[str, Any],
    out: str | Path,
    *,
    now: datetime,
    version: int | None = None,
    confirm_drop: bool = False,
    served: int = 0,
    claim: Callable[[int], int] | None = None,
    group: int | None = None,
) -> PublishResult:
    """Sign ``lists`` as the next bundle version and replace ``out`` atomically.

    ``lists`` holds ``revocations``, ``quarantine`` and ``households`` (the bundle payload's
    lists; any ``format``/``version``/``issued_at`` in it are replaced). ``version``: default
    one more than the bundle already at ``out``; a version not above it is refused
    (``BundleError``), so kiosks are never offered a rollback. Lists that drop most of the
    published entries in force of a list (``mass_drops``) are refused unless
    ``confirm_drop``: a list cleared by mistake would let every gate's quarantined out.
    ``served``: the highest version the collector served to the gates (``office.pg.
    served_version``); the version goes above it too, whatever the files say. ``claim``:
    claims a version in the office's database (``office.pg.claim_version``) just before the
    files are written: 0 when it is this publish's, else the version another publish (on
    another machine) took, and this one goes above it, never signing one version twice.
    ``group``: the group id the files are given (mode ``BUNDLE_MODE``); None: the folder's
    (``bundle_group``)."""
    out = Path(out)
    unknown = set(lists) - _PUBLISHABLE
    if unknown:
        raise BundleError(f"unknown lists: {', '.join(sorted(unknown))}")
    out.parent.mkdir(parents=True, exist_ok=True)
    with _publishing(out.parent):
        floor = _Floor(served, claim, version is not None)
        gid = bundle_group(out.parent) if group is None else group
        return _publish_locked(key, lists, out, now, version, confirm_drop, floor, gid)


def may_give_group(gid: int) -> bool:
    """Whether this process may give its files group ``gid``: root, or a member of it."""
    return os.geteuid() == 0 or gid == os.getegid() or gid in os.getgroups()


def bundle_group(folder: Path) -> int | None:
    """The group the bundle's files are given by default: the folder's, the group of those
    who may write it (the clerks who publish, the collector's user) when this process may
    give it; else None (the system's choice: the publisher's own group, or the folder's when
    the folder is set-group-ID)."""
    gid = folder.stat().st_gid
    return gid if may_give_group(gid) else None


def unreadable_bundle(path: str | Path, exc: OSError) -> str:
    """Why the collector cannot serve the bundle file at ``path`` (``exc``), and what mends it:
    its files are ``BUNDLE_MODE``, its user not in their group."""
    return (
        f"the list bundle {path} cannot be read ({exc.strerror or exc}): the gates get none"
        " and keep the lists they hold; put the collector's user in the bundle's group (kiosk"
        " fleet publish --group)"
    )


def _write(path: Path, data: bytes, gid: int | None) -> None:
    """One of the bundle's files, whole, mode ``BUNDLE_MODE`` (also over an older file's
    0644), group ``gid``."""
    write_atomic(path, data, BUNDLE_MODE, keep_mode=False, group=gid)


@contextlib.contextmanager
def _publishing(folder: Path) -> Iterator[None]:
    """The bundle's folder held for one publish, from reading the version to the last write:
    two at once (a nightly job and a clerk) would each sign their own lists as the same
    version, and a gate holding one takes the other for "already applied"."""
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise PublishBusy(
                f"another publish is writing the bundle in {folder} now; publish again when"
                " it is done (its version comes first)"
            ) from None
        yield  # the lock goes with the descriptor
    finally:
        os.close(fd)


def _publish_locked(
    key: Ed25519PrivateKey,
    lists: Mapping[str, Any],
    out: Path,
    now: datetime,
    version: int | None,
    confirm_drop: bool,
    floor: _Floor,
    gid: int | None,
) -> PublishResult:
    tagged = compounds_path(out)
    held = max(_published_version(out), _published_version(tagged))
    high = _high_water(out)
    previous = max(held, high, floor.served)
    notice = _restored(out, held, high, floor.served)
    if version is None:
        version = previous + 1
    if version <= previous:
        raise BundleError(
            f"version {version} is not above the published version {previous}; kiosks never"
            " go back to an older bundle"
        )
    checked = _checked(
        {
            "format": BUNDLE_FORMAT_COMPOUNDS,
            "version": version,
            "issued_at": now.isoformat(),
            "revocations": list(lists.get("revocations", [])),
            "quarantine": list(lists.get("quarantine", [])),
            "households": list(lists.get("households", [])),
            "compounds": lists.get("compounds"),
        }
    )
    twice = _household_twice(checked)
    if twice is not None:
        raise BundleError(twice)
    named = checked.named_compounds()
    if named and checked.compounds is None:
        where, i, compound = named[0]
        raise BundleError(
            f"{where}[{i}].compound: {compound}: declare the office's compounds first"
            f' ("compounds": ["{compound}", ...] beside the lists), so that a mistyped one is'
            " refused rather than applied by no gate"
        )
    before = None if confirm_drop else _published_payload(out, tagged)
    dropped = mass_drops(before, checked, now.date()) if before is not None else []
    if dropped:
        raise BundleError(
            f"this bundle drops {', '.join(dropped)} ({_compared(held, previous)}): every"
            " gate would let them go at once. If that is meant (not a list cleared by"
            " mistake), publish again with --confirm-drop"
        )
    claimed = floor.claimed(checked.version)
    if claimed != checked.version:
        taken = f"version {checked.version} was taken by another publish at this moment"
        notice = f"{notice}; {taken}" if notice else taken
        checked = checked.model_copy(update={"version": claimed})
    # The checked rows are what is signed: dates as YYYY-MM-DD, however they were typed.
    both = checked.model_dump(mode="json", by_alias=True)
    plain = {k: v for k, v in both.items() if k != "compounds"} | {"format": BUNDLE_FORMAT}
    if both["compounds"] is None:
        del both["compounds"]
    for name in ("quarantine", "households"):
        both[name] = [_without_compound(row, row["compound"] is None) for row in both[name]]
        plain[name] = [_without_compound(row, True) for row in plain[name]]
    # The form naming compounds first: a gate that knows its compound never sees the plain
    # form of a version its own form does not have yet.
    _write(tagged, sign_bundle(key, both).encode("utf-8"), gid)
    body = sign_bundle(key, plain).encode("utf-8")
    _write(out, body, gid)
    version = checked.version
    highest = max(version, _high_water(out))  # another machine's publish may have gone above
    _write(high_water_path(out), f"{highest}\n".encode(), gid)
    counts = {name: len(both[name]) for name in ("revocations", "quarantine", "households")}
    if notice is not None:
        notice += f": published as version {version}, above it, so every gate takes it"
    named_compounds = sorted({c for _list, _i, c in named})
    return PublishResult(out, version, etag_of(body), counts, named_compounds, notice)


def compounds_path(out: str | Path) -> Path:
    """The bundle naming each entry's compound, beside the plain one ``out`` (``bundle.json``:
    ``bundle.compounds.json``); the collector serves it to a gate that names its compound."""
    out = Path(out)
    return out.with_name(f"{out.stem}.compounds{out.suffix}")


def _household_twice(checked: BundlePayload) -> str | None:
    """The first household entry that another one already gives for a gate: the same code
    (as ``same_text`` compares) for the same compound, or one for every compound and one
    for a compound. A gate keeps one record a household and would keep whichever came last;
    which is meant is the office's to say. None when every household has one entry."""
    seen: dict[tuple[str, str], int] = {}
    common: dict[str, int] = {}
    named: dict[str, int] = {}
    for i, h in enumerate(checked.households):
        code, scope = same_text(h.household), same_text(h.compound or "")
        clash = seen.get((scope, code))
        if clash is None:
            clash = named.get(code) if not scope else common.get(code)
        if clash is not None:
            return (
                f"households[{i}]: {h.household} is also households[{clash}] (a gate keeps one"
                " record a household, whichever came last); give it one entry"
            )
        seen[(scope, code)] = i
        (named if scope else common).setdefault(code, i)
    return None


def declared_compounds(out: str | Path) -> list[str] | None:
    """The compounds the published lists declare (the bundle naming compounds beside ``out``,
    read without verifying it: the office's own file), casefolded; None when none is
    published, it declares none or it cannot be read."""
    try:
        payload = json.loads(json.loads(compounds_path(out).read_bytes())["payload"])
        named = payload["compounds"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if not isinstance(named, list) or not all(isinstance(c, str) for c in named):
        return None
    return sorted({same_text(c) for c in named})


@dataclass(frozen=True)
class _Floor:
    """What the publish's version must be above besides the files: the highest version the
    collector served (``served``), and the claim of the office's database (``claim``)."""

    served: int = 0
    claim: Callable[[int], int] | None = None
    explicit: bool = False

    def claimed(self, version: int) -> int:
        """The version this publish signs: ``version``, or above the one another publish took
        meanwhile (``BundleError`` for an explicit ``--version``)."""
        for _ in range(16):
            taken = self.claim(version) if self.claim is not None else 0
            if taken < version:
                return version
            if self.explicit:
                raise BundleError(
                    f"version {version} is not above version {taken}, which another publish"
                    " gave the gates; kiosks never go back to an older bundle"
                )
            version = taken + 1
        raise BundleError("other publishes keep taking the next version; publish again")


def _compared(held: int, previous: int) -> str:
    """Which lists a drop was counted against: the published ones, or the older ones a
    restored bundle file holds (the gates hold newer ones, not here to compare with)."""
    if held >= previous:
        return f"published version {held}"
    return (
        f"version {held}, restored here; the gates hold version {previous}'s lists, which"
        " cannot be compared here"
    )


def _restored(out: Path, held: int, high: int, served: int) -> str | None:
    """What publish found when the bundle file holds a version below one published before
    (kept beside it, ``high_water_path``) or served to the gates (``served``): the file was
    restored from a backup, and the gates refuse what is not above what they hold."""
    if max(high, served) <= held:
        return None
    told = []
    if high > held:
        told.append(f"version {high} published before (kept in {high_water_path(out).name})")
    if served > held:
        told.append(f"version {served} served to the gates (the collector's database)")
    return f"{out.name} held version {held}, below {' and '.join(told)}; restored from a backup?"


def high_water_path(out: str | Path) -> Path:
    """Where the highest version published to ``out`` is kept (``bundle.json``:
    ``bundle.json.version``; never ``out`` itself, whatever its name), outside the bundle: a
    ``bundle.json`` restored from an older backup must not make the next versions ones the
    gates already hold (they refuse them)."""
    out = Path(out)
    return out.with_name(f"{out.name}.version")


def _high_water(out: Path) -> int:
    """The highest version published to ``out`` (0: none kept, or not a number)."""
    try:
        text = high_water_path(out).read_text(encoding="ascii").strip()
    except (OSError, UnicodeDecodeError):
        return 0
    return whole_number(text) or 0


def _published_version(path: Path) -> int:
    return bundle_version(path.read_bytes()) if path.exists() else 0


#: A publish dropping at least this many entries in force of a list, and more than half of
#: them, needs ``confirm_drop`` (lifting a few is the office's daily work).
MASS_DROP_MIN = 3


def mass_drops(before: BundlePayload, after: BundlePayload, today: date) -> list[str]:
    """What ``after`` drops of ``before`` where that is most of a list: ``"12 of the 12
    quarantine entries in force"``. In force: every revocation and household, a quarantine
    until ``today`` or later (a day early: the office's date may be behind the site's). An
    entry is kept when one of ``after`` is the same household (and holder), of any compound
    or dates: an entry given a compound, or new dates, is not dropped."""
    since = today - timedelta(days=1)

    def person(q: QuarantineIn) -> tuple[str, str]:
        return same_text(q.household), same_text(q.holder or "")

    lists: dict[str, tuple[set[Any], set[Any]]] = {
        "revocations": (
            {r.pass_id for r in before.revocations},
            {r.pass_id for r in after.revocations},
        ),
        "quarantine entries": (
            {person(q) for q in before.quarantine if q.until >= since},
            {person(q) for q in after.quarantine},
        ),
        "households": (
            {same_text(h.household) for h in before.households},
            {same_text(h.household) for h in after.households},
        ),
    }
    told = []
    for name, (was, now) in lists.items():
        gone = len(was - now)
        if gone >= MASS_DROP_MIN and gone * 2 > len(was):
            told.append(f"{gone} of the {len(was)} {name} in force")
    return told


def _published_payload(out: Path, tagged: Path) -> BundlePayload | None:
    """The published lists (the office's own file, the newer of the two forms), or None
    when there are none or they cannot be read (then there is nothing to compare)."""
    newer = max((p for p in (tagged, out) if p.exists()), key=_published_version, default=None)
    if newer is None:
        return None
    try:
        text = json.loads(newer.read_bytes())["payload"]
        return BundlePayload.model_validate_json(text)
    except (ValueError, KeyError, TypeError):
        return None


def _checked(payload: dict[str, Any]) -> BundlePayload:
    """The payload validated: the office hears of a bad row first, not the gates."""
    try:
        return BundlePayload.model_validate(payload)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        said = first["msg"].removeprefix("Value error, ")
        where = f"{where}: " if where else ""
        raise BundleError(f"{where}{said} ({exc.error_count()} problems)") from None


def _without_compound(row: dict[str, Any], drop: bool) -> dict[str, Any]:
    """A gate of an older release refuses a key it does not know: the plain form has none."""
    return {k: v for k, v in row.items() if k != "compound"} if drop else row


class BundleFile:
    """The published bundle file, re-read when it changes; thread-safe."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        self._stamp: tuple[int, int, int, int] | None = None
        self._cached: tuple[bytes, str, int] | None = None

    def get(self) -> tuple[bytes, str, int] | None:
        """``(body, etag, version)``, or ``None`` when nothing is published yet."""
        try:
            st = self.path.stat()
        except FileNotFoundError:
            return None
        # The inode too: a publish replaces the file (a new one renamed over it), and on a
        # share whose times tick by the second two publishes of one size share a time.
        stamp = (st.st_ino, st.st_dev, st.st_mtime_ns, st.st_size)
        with self._lock:
            if stamp != self._stamp or self._cached is None:
                body = self.path.read_bytes()
                self._cached = (body, etag_of(body), bundle_version(body))
                self._stamp = stamp
            return self._cached


# --------------------------------------------------------------------------- kiosk side


@dataclass(frozen=True)
class SyncResult:
    """One check. ``outcome``: ``applied``, ``current`` (same version again), ``not_modified``
    (304), ``rejected`` (signature, format or an older version), ``error`` (network, HTTP)."""

    outcome: str
    version: int
    message: str


class ListSync:
    """Fetches the office's bundle from ``url`` and applies it through ``lists``.

    ``check()`` is one attempt (what tests and ``kiosk fleet sync-lists`` call); ``start()``
    runs it every ``interval_s`` on a daemon thread until ``stop()``."""

    def __init__(
        self,
        lists: ListStore,
        trust: TrustList,
        url: str,
        clock: Clock,
        *,
        client: httpx.Client | None = None,
        interval_s: float = 300.0,
        timeout_s: float = 20.0,
        token: str | None = None,
        stale_after_h: float = 24.0,
        actor: str = "fleet",
        deadline_s: float = REQUEST_DEADLINE_S,
        monotonic: Callable[[], float] = time.monotonic,
        compound: str | None = None,
    ) -> None:
        self.lists = lists
        #: This gate's compound (``[compound] id``): it asks for the bundle naming compounds
        #: (``?compound=ID``) and applies its own compound's entries and everyone's. An office
        #: or web server that ignores the question answers the plain bundle: every entry
        #: applies, as before.
        self.compound = compound
        #: The whole of one fetch (``office.deadline``): an office trickling its answer is an
        #: error after this, not a sync thread held for ever.
        self.deadline_s = deadline_s
        self._monotonic = monotonic
        self.trust = trust
        self.url = url
        self.clock = clock
        #: Its client, made again when the certificates trusted change (``TrustedClient``).
        self._http = TrustedClient(timeout_s, client)
        self.interval_s = interval_s
        self.token = token
        self.stale_after_h = stale_after_h
        self.actor = actor
        self.etag: str | None = None
        self.last_check_at: datetime | None = None
        self.confirmed_at: datetime | None = None
        self.last_outcome: str | None = None
        self.last_error: str | None = None
        self.failures = 0
        self.checks = 0
        #: The failure last logged (outcome, message), while checks keep failing so.
        self._told_failure: tuple[str, str] | None = None
        self._raised = RepeatedFailure(log, "lists check failed", "lists check runs again")
        #: Its failures and returns, logged as a flapping device's are: an office on a flaky
        #: link (lost and back at every other check) is a few lines an hour and their count.
        self._flaps = FlapLimit(clock.monotonic_ns)
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        #: The apply, the sync's one use of the event log (the bundle's audited write):
        #: ``stop`` waits for one under way (``APPLY_WAIT_S`` at most), and none starts after
        #: (an answer still on its way then is dropped). ``log_released``: set once the sync
        #: no longer uses the log and will not; the daemon closes the log only then
        #: (``Daemon._close_log``).
        self._uses = LogUses()
        self.log_released = self._uses.released

    # -- one check ----------------------------------------------------------------------------

    def check(self) -> SyncResult:
        with self._lock:
            try:
                result = self._check()
            except Stopped:  # the answer came after the stop: dropped, nothing said
                applied = self.lists.current.freshness.bundle_version
                return SyncResult("error", applied, "the gate is stopping: not applied")
            self.checks += 1
            self.last_check_at = self.clock.now()
            self.last_outcome = result.outcome
            failed_before = self.failures
            if result.outcome in ("applied", "current", "not_modified"):
                self.confirmed_at = self.last_check_at
                self.last_error = None
                self.failures = 0
            else:
                self.last_error = result.message
                self.failures += 1
            self._log_result(result, failed_before)
        return result

    def _log_result(self, result: SyncResult, failed_before: int) -> None:
        """A failure once per outcome and message (the office down for a week is retried
        every minute), the first success after failures once, any other success as it is;
        those changes at most ``FLAP_LINES`` an hour (``FlapLimit``), then counted."""
        if result.outcome in ("rejected", "error"):
            told = (result.outcome, result.message)
            if told == self._told_failure:
                log.debug("lists %s again", result.outcome, extra={"detail": result.message})
                self._settle("lists check fails", logging.WARNING, result.message)
                return
            self._told_failure = told
            self._say(logging.WARNING, f"lists {result.outcome}", result.message)
            return
        if self._told_failure is not None:
            self._told_failure = None
            self._say(logging.INFO, f"lists check works again after {failed_before} failed checks")
        else:
            self._settle("lists check works", logging.INFO)
        if result.outcome != "not_modified":
            log.info("lists %s", result.outcome, extra={"detail": result.message})

    def _say(self, level: int, text: str, detail: str | None = None) -> None:
        """A change of the check's state, in the journal unless it changes too often."""
        line = self._flaps.change(text)
        extra = {} if detail is None else {"detail": detail}
        log.log(logging.DEBUG if line is None else level, "%s", line or text, extra=extra)

    def _settle(self, state: str, level: int, detail: str | None = None) -> None:
        """After an hour whose changes went partly unlogged: the state now, and their count."""
        line = self._flaps.settled(state)
        if line is not None:
            log.log(level, "%s", line, extra={} if detail is None else {"detail": detail})

    def _check(self) -> SyncResult:
        applied = self.lists.current.freshness.bundle_version
        headers = dict(PLAIN_JSON)
        if self.etag:
            headers["If-None-Match"] = self.etag
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        deadline = Deadline(self.deadline_s, self._monotonic)
        try:
            with (
                self._http.use() as client,
                deadline,
                client.stream("GET", self._asked(), **deadline.httpx_args(headers)) as response,
            ):
                got = self._read(response, applied, deadline)
                if isinstance(got, SyncResult):
                    return got
                body, etag = got
        except (httpx.HTTPError, DeadlineExceeded) as exc:
            return SyncResult("error", applied, self._unreachable(exc, deadline))
        try:
            with self._uses.using():
                imported = self.lists.import_bundle(body, self.trust, self.actor, self.compound)
        except BundleError as exc:
            # Not remembering the ETag: a fixed bundle under the same URL is fetched next time.
            return SyncResult("rejected", applied, str(exc))
        self.etag = etag
        if imported.warning is not None:
            log.warning("lists: %s", imported.warning)
        if not imported.applied:
            self.lists.confirm(self.clock.now())
        version = self.lists.current.freshness.bundle_version
        return SyncResult("applied" if imported.applied else "current", version, imported.message)

    def _asked(self) -> httpx.URL:
        url = httpx.URL(self.url)
        return url if self.compound is None else url.copy_merge_params({"compound": self.compound})

    def _read(
        self, response: httpx.Response, applied: int, deadline: Deadline
    ) -> SyncResult | tuple[bytes, str | None]:
        """The bundle and its ETag, or the result that ends the check. Read as the office's
        pull reads a gate (``read_capped``): the answer is from a host on the LAN."""
        try:
            status, headers, body = read_capped(
                self.url, response, deadline, MAX_BUNDLE_BYTES, _BundleTooLarge
            )
        except _BundleTooLarge:
            return SyncResult("rejected", applied, "bundle larger than the limit")
        except PullError as exc:  # an encoded answer, refused unread
            return SyncResult("error", applied, str(exc))
        if status == 304:
            self.lists.confirm(self.clock.now())
            return SyncResult("not_modified", applied, "no newer bundle")
        if status in (401, 403):
            return SyncResult("error", applied, self._refused(status))
        if status != 200:
            return SyncResult("error", applied, status_words(status, headers, body, OFFICE_MOVED))
        if not bytes(body[:4096]).lstrip(_LEADING).startswith(b"{"):
            return SyncResult("error", applied, self._not_a_bundle(headers, len(body)))
        return bytes(body), headers.get("etag")

    def _not_a_bundle(self, headers: httpx.Headers, size: int) -> str:
        """An answer that is no JSON object at all: someone else's page (a proxy's error, a
        captive portal's sign-in) between the gate and the office, not a bundle the office
        got wrong: the office was not reached."""
        kind = visible(headers.get("content-type", "no type")[:60])
        return (
            f"{self.url} answered a page ({kind}, {size:,} bytes) that is not a lists bundle:"
            " a proxy or a captive portal between this gate and the office? (or [fleet]"
            " lists_url is not the collector's /lists/bundle)"
        )

    def _unreachable(self, exc: Exception, deadline: Deadline) -> str:
        if deadline.expired:
            return f"the office sent no complete answer within {self.deadline_s:g} s"
        untrusted = untrusted_certificate(exc, "the office's", TRUST_THE_OFFICE)
        return untrusted or f"cannot reach the office ({type(exc).__name__})"

    def _refused(self, status: int) -> str:
        """What a gate refused the bundle should change: the token it sends, or has not."""
        if self.token:
            return f"HTTP {status}: the office refuses this gate's token ([fleet] lists_token_env)"
        return (
            f"HTTP {status}: the office wants a bearer token; set [fleet] lists_token_env to the"
            " variable holding the collector's lists token"
        )

    # -- freshness ----------------------------------------------------------------------------

    def age(self, now: datetime | None = None) -> timedelta | None:
        """How old the lists in force are: since the office last confirmed them, else since
        the gate's last confirmed sync the lists know (``Freshness.synced_at``: after a
        restart, before the first contact, the last bundle applied). None when neither,
        or when that stamp is after ``now`` (the clock stepped back): not a negative age."""
        return age_since(self._since(), now or self.clock.now())

    def _since(self) -> datetime | None:
        return self.confirmed_at or self.lists.current.freshness.synced_at()

    def status(self) -> dict[str, Any]:
        now = self.clock.now()
        fresh = self.lists.current.freshness
        age = self.age(now)
        stale = age is None or age > timedelta(hours=self.stale_after_h)
        if self.last_check_at is None:
            state = "never_checked"
        elif self.last_outcome == "rejected":
            state = "rejected"
        elif self.last_outcome == "error":
            state = "offline"
        else:
            state = "ok"
        return {
            "url": self.url,
            "state": state,
            "bundle_version": fresh.bundle_version,
            "bundle_issued_at": fresh.bundle_issued_at.isoformat()
            if fresh.bundle_issued_at
            else None,
            "lists_updated_at": fresh.updated_at.isoformat() if fresh.updated_at else None,
            "confirmed_at": self.confirmed_at.isoformat() if self.confirmed_at else None,
            "age_s": None if age is None else round(age.total_seconds()),
            "stale": stale,
            "stamp_ahead": stamp_ahead(self._since(), now),
            "last_check_at": self.last_check_at.isoformat() if self.last_check_at else None,
            "last_error": self.last_error,
            "consecutive_failures": self.failures,
            # This gate's compound, and the one whose entries are in force (None: all).
            "compound": {"id": self.compound, "lists_for": fresh.bundle_compound},
        }

    # -- schedule -----------------------------------------------------------------------------

    def start(self) -> None:
        if self._thread is not None:
            return
        self._stop.clear()
        self._uses.open()
        self._thread = threading.Thread(target=self._loop, name="kiosk-listsync", daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        while not self._stop.is_set():
            ok = self.run_once()
            self._stop.wait(self.interval_s if ok else min(self.interval_s, RETRY_S))

    def run_once(self) -> bool:
        """One check of the loop; whether it went well. A check that raised (a store fault
        while applying: the old lists stay) is logged once per kind of error."""
        try:
            result = self.check()
        except Exception as exc:
            self._raised.failed(exc)
            return False
        self._raised.worked()
        return result.outcome not in ("error", "rejected")

    def stop(self, timeout_s: float = 5.0) -> bool:
        """Ask the thread to end and wait for it ``timeout_s`` at most (a fetch under way ends
        at its deadline; the thread is a daemon's), then for an apply under way
        (``APPLY_WAIT_S`` at most); an answer arriving later is dropped (``LogUses``).
        Whether no apply is under way any more: False, one (a slow card) outlasted the wait
        and still uses the event log; ``log_released`` is set when it ends, and the caller
        closes the log only then, never on this return alone."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout_s)
            self._thread = None
        idle = self._uses.close(APPLY_WAIT_S)
        self._http.close()
        return idle

    @classmethod
    def from_config(cls, core: Core, *, client: httpx.Client | None = None) -> ListSync | None:
        """For the daemon: ``None`` when ``[fleet] lists_url`` is not set."""
        fleet = core.config.fleet
        if not fleet.lists_url:
            return None
        token = os.environ.get(fleet.lists_token_env) if fleet.lists_token_env else None
        return cls(
            core.lists,
            core.trust,
            fleet.lists_url,
            core.clock,
            client=client,
            interval_s=fleet.lists_poll_s,
            timeout_s=fleet.lists_timeout_s,
            token=token,
            stale_after_h=core.config.policy.lists_stale_after_h,
            compound=core.config.compound.id,
        )
