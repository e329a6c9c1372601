"""The pull client: copies a kiosk's events into a local SQLite file over the HTTP API.

``pull(url, token, target)`` is

* **resumable**: it asks for ``after=`` the highest ``seq`` the target already holds for that
  kiosk, less one, and the kiosk's row at that seq must be the one held (``past_held``: a
  second log as long as the copy is not "up to date"); each page is written in one
  transaction, so an interruption at any point (network, ^C, power) loses at most the page
  in flight and the next run carries on exactly;
* **idempotent**: rows are keyed ``(kiosk_id, seq)``; pulling twice never duplicates;
* **verified**: every row's hash is recomputed (``kiosk.hashchain.event_hash``: it covers the
  non-personal fields and ``personal_digest``, so masked rows verify too), every row's
  ``prev_hash`` must be the hash of the row before it, and the first row of a pull must link
  to the last row the target already holds. A broken link stops the pull before anything of
  that page is written (``ChainError``);
* **patient**: network errors, 5xx and 429 are retried with capped exponential backoff
  (``Retry-After`` honoured); 401/403 are not.

The target is a ``PullTarget``: ``SqliteTarget`` (a file with ``pulled_events``, the event
columns plus ``pulled_at``, and ``pull_sources``, which URL served which kiosk) or the office's
PostgreSQL (``office.pg.PgTarget``). One target can hold many kiosks.
"""

from __future__ import annotations

import contextlib
import hashlib
import itertools
import json
import logging
import operator
import os
import queue
import re
import socket
import sqlite3
import ssl
import stat
import sys
import threading
import time
import weakref
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol, TextIO

import httpx

try:  # 5-10x faster JSON on the pull's hot path; the standard library otherwise
    import orjson
except ImportError:  # pragma: no cover - orjson is a dependency, kept optional for safety
    orjson = None  # type: ignore[assignment]

from kiosk import hashchain, record
from kiosk.backoff import Backoff
from kiosk.config.fleet import normalise_url
from kiosk.export import COLUMNS
from kiosk.hashchain import GENESIS, CanonicalError, event_hash
from kiosk.store import MAX_JSON_BYTES
from kiosk.typed import visible, whole_number
from office.deadline import Deadline, DeadlineExceeded

log = logging.getLogger(__name__)

# --- the client side: the target ------------------------------------------------------------

SCHEMA = f"""
CREATE TABLE IF NOT EXISTS pulled_events (
    {", ".join(c + (" INTEGER NOT NULL" if c == "seq" else "") for c in COLUMNS)},
    pulled_at TEXT NOT NULL,
    PRIMARY KEY (kiosk_id, seq)
);
CREATE TABLE IF NOT EXISTS pull_sources (
    url TEXT PRIMARY KEY,
    kiosk_id TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS pull_pin_changes (
    at TEXT NOT NULL,
    url TEXT NOT NULL,
    kiosk_id TEXT NOT NULL,
    previous TEXT NOT NULL
);
"""


class PullError(Exception):
    """The pull could not complete; what is already written stays (resume later)."""


class PageTooLarge(PullError):
    """The kiosk refuses the page size: its ``web.max_page`` is ``max_limit``."""

    def __init__(self, message: str, max_limit: int) -> None:
        super().__init__(message)
        self.max_limit = max_limit


class ChainError(PullError):
    """The pulled rows do not continue the chain the target holds (or a hash is wrong)."""


class PinError(PullError):
    """A source answered as a kiosk id pinned to another source, or as another kiosk id than
    the one pinned to it: nothing of it is written until the operator re-pins (``repin``).
    ``kiosk_id``: the id it answered as; ``why``: the refusal in a few words (the district
    report's ``gates_without_figures``)."""

    def __init__(self, message: str, kiosk_id: str | None = None, why: str = "refused") -> None:
        super().__init__(message)
        self.kiosk_id = kiosk_id
        self.why = why


def pin_refusal(url: str, kiosk_id: str, own: str | None, holder: str | None) -> PinError | None:
    """The ``PinError`` for ``url`` answering as ``kiosk_id`` when ``url`` is pinned to
    ``own`` and ``kiosk_id`` to the source ``holder`` (None: not pinned); None when it may
    be pulled. The hash chain is no signature: which gate a URL is, is the office's to say."""
    fix = f"if it really is, re-pin it: kiosk pull {url} --into TARGET --repin {kiosk_id}"
    if own is not None and own != kiosk_id:
        return PinError(
            f"{url} answers as kiosk {kiosk_id}, but it is pinned to kiosk {own} (the gate"
            f" given a new site.kiosk_id, or another host at its address?); nothing pulled;"
            f" {fix}",
            kiosk_id,
            "refused: not its pinned id",
        )
    if holder is not None and holder != url:
        return PinError(
            f"{url} answers as kiosk {kiosk_id}, which is pinned to {holder} (a gate set up"
            f" from a copy of that gate's config, or another host answering as it?); nothing"
            f" pulled; if the gate moved to {url}, re-pin it: kiosk pull {url} --into TARGET"
            f" --repin {kiosk_id}",
            kiosk_id,
            "refused: duplicate id",
        )
    return None


def describe_pins(url: str, own: str | None, holders: list[str]) -> str:
    """What a re-pin of ``url`` releases, in words (for the audit row and the log)."""
    parts = [f"{url} was kiosk {own}" if own is not None else f"{url} was not pinned"]
    parts += [f"{other} released" for other in holders]
    return "; ".join(parts)


def source_renames(
    sources: list[tuple[str, str]],
) -> tuple[list[tuple[str, str]], list[str]]:
    """For the pins an older version stored under the URL as typed (``http://Gate-1:8443``,
    before ``normalise_url`` lower-cased the host): ``(renames, drops)``, the rows of
    ``sources`` (url, kiosk id) to move to the normal form, and the ones to drop because the
    normal form already holds the same kiosk id. A typed form whose normal form is pinned to
    another kiosk id is left as it is (the pull of that URL is refused, naming both, until
    the operator re-pins); an unparsable one too."""
    held = dict(sources)
    renames: list[tuple[str, str]] = []
    drops: list[str] = []
    for url, kiosk_id in sorted(sources):
        try:
            normal = normalise_url(url)
        except ValueError:
            continue
        if normal == url:
            continue
        if normal not in held:
            renames.append((url, normal))
            held[normal] = kiosk_id
        elif held[normal] == kiosk_id:
            drops.append(url)
    return renames, drops


def _renormalise_sources(conn: sqlite3.Connection) -> None:
    """``source_renames`` applied to ``pull_sources``, in one transaction."""
    rows = conn.execute("SELECT url, kiosk_id FROM pull_sources").fetchall()
    renames, drops = source_renames([(r[0], r[1]) for r in rows])
    if not renames and not drops:
        return
    conn.execute("BEGIN IMMEDIATE")
    try:
        conn.executemany("DELETE FROM pull_sources WHERE url = ?", [[u] for u in drops])
        conn.executemany(
            "UPDATE pull_sources SET url = ? WHERE url = ?", [[new, old] for old, new in renames]
        )
        conn.execute("COMMIT")
    except BaseException:
        _rollback(conn)
        raise


@dataclass
class PullResult:
    url: str
    kiosk_id: str | None
    fetched: int = 0
    inserted: int = 0
    last_seq: int = 0
    #: The kiosk's highest seq as it reported it (``last`` of the pages).
    head_seq: int = 0
    pages: int = 0
    retries: int = 0

    def as_dict(self) -> dict[str, Any]:
        return dict(vars(self))


#: The largest answer a pull reads, whatever the page size (``page_cap`` is lower for pages
#: of fewer events): parsing a page holds ~5x its size. A page of 5,000 usual events is a few
#: MB; one that may hold more (``limit`` rows with 64 KiB ``person`` fields) and does is asked
#: again with as many events as surely fit (``safe_limit``), not refused.
MAX_PAGE_BYTES = 64 << 20
#: The largest event row a kiosk sends, as JSON: ``person`` at its cap (``MAX_JSON_BYTES`` of
#: canonical JSON), the texts at theirs (256 characters; 6 bytes each when JSON escapes them),
#: the codes, hashes, numbers and field names (``tests/test_pull_regressions.py`` builds it).
MAX_EVENT_BYTES = MAX_JSON_BYTES + (16 << 10)
#: A page's envelope (``{"events":[...],"next":N,"last":N}``) and room for what a newer kiosk
#: may add to it.
PAGE_SLACK_BYTES = 64 << 10
#: Of an error answer only this much is read (its message).
ERROR_BODY_BYTES = 65536

#: The longest one request may take, headers to the last byte of a page (a 5,000-event page
#: is a few MB: seconds on a LAN). A kiosk slower than this (one dribbling a byte every few
#: seconds, which no per-read timeout catches) fails the pull; it is not tried again.
REQUEST_DEADLINE_S = 120.0

#: The wait between two tries of one request: 0.5 s doubling to 30 s.
PULL_BACKOFF = Backoff(base_s=0.5, cap_s=30.0)

#: The longest wait for a kiosk to accept a connection (the kernel resends an unanswered SYN
#: after 1, 3 and 7 s): a kiosk on the LAN answers in milliseconds.
CONNECT_TIMEOUT_S = 10.0
#: Tries of one request at a kiosk that does not answer at all (its connection not accepted
#: within ``CONNECT_TIMEOUT_S``, or silent for a whole read timeout): switched off, off the
#: network, or a firewall dropping the packets. The second try covers a lost packet; more
#: would keep an office clerk waiting minutes for a kiosk that is not there (8 tries of 30 s
#: and their backoff were 5 minutes). Errors that do get an answer (refused, reset, 5xx, 429)
#: keep the full ``attempts``.
SILENT_TRIES = 2


def page_cap(limit: int, ceiling: int = MAX_PAGE_BYTES) -> int:
    """The most of a page of at most ``limit`` events that is read: ``limit`` of the largest
    legal rows and the envelope, never above ``ceiling``."""
    return min(ceiling, max(limit, 1) * MAX_EVENT_BYTES + PAGE_SLACK_BYTES)


def safe_limit(ceiling: int) -> int:
    """The most events a page can have with all of them the largest legal rows and still
    fit in ``ceiling`` bytes (at least 1: ``page_cap(1)`` is never refused a row)."""
    return max(1, (ceiling - PAGE_SLACK_BYTES) // MAX_EVENT_BYTES)


#: Bytes of ``max_page_bytes`` per JSON value a page may hold when it is parsed. A value
#: costs up to ~60 bytes of Python objects (an empty list or object, a short string: see
#: ``json_values``), so a page is parsed into at most ~4x ``max_page_bytes`` and its strings'
#: text, whatever it holds (bytes alone allowed 32x: a page of empty lists); a usual page has
#: one value per ~12 bytes and is far below its budget.
VALUE_BYTES = 16


def json_values(body: bytes | bytearray) -> int:
    """At least as many as the values and keys of the JSON text ``body``: each one but the
    first follows a ``[``, ``{``, ``,`` or ``:``. Those inside strings count too (an upper
    bound, never above ``len(body) + 1``); four C-speed counts, no parse."""
    return 1 + sum(body.count(c) for c in (b"[", b"{", b",", b":"))


def value_budget(max_page_bytes: int) -> int:
    """The most ``json_values`` a page is parsed with: ``max_page_bytes // VALUE_BYTES``,
    never below the bytes of a page of one event of the largest kind (``page_cap(1)``), so
    any one legal event is always parsed."""
    return max(page_cap(1), max_page_bytes // VALUE_BYTES)


#: What the office asks a gate for, and a gate the office: JSON as it is, never compressed
#: (``refuse_encoded``).
PLAIN_JSON = {"Accept": "application/json", "Accept-Encoding": "identity"}


def refuse_encoded(url: str, response: httpx.Response) -> None:
    """``PullError`` for an answer with a ``Content-Encoding``: httpx would inflate it chunk
    by chunk (~1,000:1 for gzip and deflate) before any cap on the body sees it. A kiosk
    and the office send plain JSON and are asked for it (``PLAIN_JSON``)."""
    encoding = response.headers.get("content-encoding", "").strip().lower()
    if encoding not in ("", "identity"):
        raise PullError(
            f"{url}: HTTP {response.status_code} encoded as {encoding[:40]!r}, where plain"
            " JSON was asked for (a proxy compressing the answers? not the host meant?)"
        )


#: The most of a redirect's ``Location`` repeated in an error (a hostile host chooses it).
MAX_LOCATION_CHARS = 200


#: What to do about a redirect a kiosk answered (``status_words``).
KIOSK_MOVED = "a gate moved to https, or a proxy: if the kiosk answers there, give its base URL"


def status_words(
    status: int, headers: httpx.Headers, body: bytes | bytearray, moved: str = KIOSK_MOVED
) -> str:
    """An error answer in words: ``HTTP 302 redirects to '...'`` for a redirect (where it
    points, at most ``MAX_LOCATION_CHARS`` of it, escaped, and ``moved``: what to do; none
    is followed, a bearer token goes to the host it is for only), else ``HTTP 404
    <detail>``."""
    if 300 <= status < 400:
        location = headers.get("location", "").strip()
        if not location:
            return f"HTTP {status} redirects, with no Location (not a kiosk?)"
        shown = repr(location[:MAX_LOCATION_CHARS])
        more = "..." if len(location) > MAX_LOCATION_CHARS else ""
        return f"HTTP {status} redirects to {shown}{more}, not followed ({moved})"
    return f"HTTP {status} {_detail(body)}".rstrip()


def client_timeout(timeout_s: float) -> httpx.Timeout:
    """The office's HTTP timeouts: ``timeout_s`` per read, write and pool wait, the connect
    at most ``CONNECT_TIMEOUT_S``."""
    return httpx.Timeout(timeout_s, connect=min(timeout_s, CONNECT_TIMEOUT_S))


_TRUSTED: dict[tuple[object, ...], ssl.SSLContext] = {}
_TRUSTING = threading.Lock()
#: Each trust ``tls_trust`` made, numbered as made: a client never goes back to an older one.
_BORN: weakref.WeakKeyDictionary[ssl.SSLContext, int] = weakref.WeakKeyDictionary()
_MADE = itertools.count(1)


def tls_trust() -> ssl.SSLContext:
    """The certificates an HTTP client of the office or of a gate trusts (the pull, the
    collector, the list sync, the peers): httpx's own choice, ``SSL_CERT_FILE``, else
    ``SSL_CERT_DIR``, else certifi's bundle, loaded once per process while the variables
    name the same file, unchanged (``_trust_seen``): each client made loaded the whole
    bundle again, ~20 ms of CPU on a PC (a daemon with its list sync and its peers made two
    at each start). A client holds the trust it was made with: the daemons' long-lived
    clients follow it through ``TrustedClient``, which makes a new one when this returns a
    newer trust (docs/operations.md)."""
    import certifi

    cafile, capath = os.environ.get("SSL_CERT_FILE"), os.environ.get("SSL_CERT_DIR")
    source = cafile or capath or certifi.where()
    key = (cafile, capath, source, *_trust_seen(source))
    with _TRUSTING:  # asked by many threads at once (the peers', the collector's pulls)
        context = _TRUSTED.get(key)
        if context is None:  # a file missing is refused here (httpx raises), never kept
            context = httpx.create_ssl_context()
            _BORN[context] = next(_MADE)
            for stale in [k for k in _TRUSTED if k[:3] == key[:3]]:  # the file's old trust
                del _TRUSTED[stale]
            _TRUSTED[key] = context
    return context


def _trust_seen(source: str) -> tuple[object, ...]:
    """What tells that the trust file ``source`` changed: its inode, size, modification time
    and change time (a renewed certificate of the same size copied over it keeping its time,
    ``cp -p``, ``rsync -t``, ``install -p``, still changes the last, which no user can set);
    for a folder (``SSL_CERT_DIR``) the same of each file in it, by name, so a file still
    being copied in, or rewritten in place, is read again once it changed; ``("missing",)``
    for none there (a folder named before it is made: one trust while it is missing)."""
    try:
        st = os.stat(source)
        seen = (st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)
        if not stat.S_ISDIR(st.st_mode):
            return seen
        with os.scandir(source) as entries:
            return (*seen, *sorted(_entry_seen(entry) for entry in entries))
    except OSError:
        return ("missing",)


def _entry_seen(entry: os.DirEntry[str]) -> tuple[object, ...]:
    """A file of a trust folder as ``_trust_seen`` compares it (a link followed; one broken,
    or a file removed meanwhile, by its name alone)."""
    try:
        st = entry.stat()
    except OSError:
        return (entry.name,)
    return (entry.name, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)


def http_client(
    timeout: httpx.Timeout | float, trust: ssl.SSLContext | None = None
) -> httpx.Client:
    """An HTTP client of the office or of a gate (the pull, the collector, the list sync, the
    peers): ``timeout``, no redirect followed, the certificates of ``trust`` (by default
    ``tls_trust``'s)."""
    verify = trust if trust is not None else tls_trust()
    return httpx.Client(timeout=timeout, follow_redirects=False, verify=verify)


class TrustedClient:
    """The HTTP client of a long-running user (the list sync, the peers, the collector) that
    follows the certificates trusted: each ``use()`` asks ``tls_trust`` first (a ``stat`` of
    the file while it is unchanged), and when the trust is another one (the office's or a
    gate's certificate renewed, ``SSL_CERT_FILE``'s file or the CA bundle replaced) hands out
    a new client made with it; the old one is closed once the uses of it under way (other
    threads' requests) have ended. Before, such a client kept the trust it was made with
    until the daemon was restarted, its requests refused meanwhile. A client handed in
    (tests) is used as it is, never replaced nor closed here. A trust that cannot be read
    again (the file removed, or being written) keeps the client in use, said once. A trust
    older than the client's (read by a thread just before another read the renewed one) never
    brings the old certificates back: the client in use is handed out."""

    def __init__(self, timeout: httpx.Timeout | float, client: httpx.Client | None = None) -> None:
        self._timeout = timeout
        self._own = client is None
        self._trust = tls_trust() if client is None else None
        self._born = _BORN.get(self._trust, 0) if self._trust is not None else 0
        self._client = client or http_client(timeout, self._trust)
        self._lock = threading.Lock()
        #: Uses under way per client; a client replaced while used is closed by its last one.
        self._uses: dict[httpx.Client, int] = {}
        self._retired: set[httpx.Client] = set()
        self._closed = False
        self._unread = False  # the trust could not be read again: said once until it can

    @property
    def current(self) -> httpx.Client:
        """The client the next ``use()`` hands out while the trust stays the same."""
        return self._client

    @contextlib.contextmanager
    def use(self) -> Iterator[httpx.Client]:
        """The client to make requests with, the latest trust's; kept open until the end."""
        client = self._take(self._trust_now())
        try:
            yield client
        finally:
            self._give_back(client)

    def _trust_now(self) -> ssl.SSLContext | None:
        """``tls_trust()``, or None: a client handed in, or a trust that cannot be read."""
        if not self._own:
            return None
        try:
            trust = tls_trust()
        except OSError as exc:  # ssl.SSLError too: a file half written, or none
            if not self._unread:
                log.warning(
                    "the certificates to trust could not be read again (%s): the client"
                    " keeps the ones it has",
                    f"{type(exc).__name__}: {exc}",
                )
            self._unread = True
            return None
        if self._unread:
            log.info("the certificates to trust are read again")
        self._unread = False
        return trust

    def _take(self, trust: ssl.SSLContext | None) -> httpx.Client:
        stale: httpx.Client | None = None
        with self._lock:
            born = _BORN.get(trust, 0) if trust is not None else 0
            if trust is not None and born > self._born and not self._closed:
                stale, self._client = self._client, http_client(self._timeout, trust)
                self._trust, self._born = trust, born
                if self._uses.get(stale):
                    self._retired.add(stale)
                    stale = None
            client = self._client
            self._uses[client] = self._uses.get(client, 0) + 1
        if stale is not None:
            stale.close()
        return client

    def _give_back(self, client: httpx.Client) -> None:
        with self._lock:
            left = self._uses[client] - 1
            if left:
                self._uses[client] = left
                return
            del self._uses[client]
            if client not in self._retired:
                return
            self._retired.discard(client)
        client.close()

    def close(self) -> None:
        """Close the clients made here (a request still under way fails); none is made
        after. A client handed in stays open."""
        with self._lock:
            self._closed = True
            made = [self._client, *self._retired] if self._own else []
            self._retired.clear()
        for client in made:
            client.close()


class Progress:
    """A hand-written progress bar on a terminal (nothing when the stream is not a TTY)."""

    def __init__(
        self,
        stream: TextIO | None = None,
        enabled: bool | None = None,
        monotonic: Callable[[], float] = time.monotonic,
        width: int = 30,
        min_interval_s: float = 0.1,
    ) -> None:
        self.stream = stream if stream is not None else sys.stderr
        self.enabled = self.stream.isatty() if enabled is None else enabled
        self._monotonic = monotonic
        self.width = width
        self.min_interval_s = min_interval_s
        self._started = monotonic()
        self._last_draw = float("-inf")
        self._drawn = False

    def update(self, label: str, done: int, total: int, final: bool = False) -> None:
        if not self.enabled:
            return
        now = self._monotonic()
        if not final and now - self._last_draw < self.min_interval_s:
            return
        self._last_draw = now
        total = max(total, done, 1)
        filled = int(self.width * done / total)
        rate = done / max(now - self._started, 1e-9)
        bar = "#" * filled + "." * (self.width - filled)
        self.stream.write(
            f"\r{label} [{bar}] {done:,}/{total:,} events {100 * done / total:5.1f}% {rate:,.0f}/s"
        )
        self._drawn = True
        if final:
            self.stream.write("\n")
            self._drawn = False
        self.stream.flush()


def _create(path: str | Path) -> bool:
    """Create ``path`` 0600 unless it exists; whether this call made it. 0600: the file holds
    the personal fields a logs:personal token reads, and SQLite gives its -wal and -shm the
    file's mode. The process umask is left alone: it is shared by every thread. Any other
    problem with the path (a folder, no permission) is SQLite's to report."""
    try:
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    except OSError:  # FileExistsError: an earlier pull's file, kept as is
        return False
    return True


#: How long a write waits for a target another program holds (a viewer with the file open).
BUSY_TIMEOUT_MS = 5000


def _connect(path: str | Path) -> sqlite3.Connection:
    conn = sqlite3.connect(str(path), isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute(f"PRAGMA busy_timeout={int(BUSY_TIMEOUT_MS)}")
    conn.executescript(SCHEMA)
    _renormalise_sources(conn)
    return conn


def target_tail(conn: sqlite3.Connection, kiosk_id: str) -> tuple[int, str]:
    """``(last seq, its hash)`` the target holds for ``kiosk_id``; ``(0, GENESIS)`` if none."""
    row = conn.execute(
        "SELECT seq, hash FROM pulled_events WHERE kiosk_id = ? ORDER BY seq DESC LIMIT 1",
        [kiosk_id],
    ).fetchone()
    return (row[0], row[1]) if row else (0, GENESIS)


_FLOAT_FIELDS = ("temp_c", "temp_object_c", "temp_ambient_c", "latency_ms")
# The chain's version tag (kiosk.hashchain); if it ever changes, the fast path below simply
# stops matching and every row goes through ``event_hash`` itself.
_EVENTS_TAG = hashchain._EVENTS_TAG
_HASHED = hashchain.EVENT_HASHED_FIELDS
# One C call per row instead of one ``dict.get`` per field (the pull's hot path).
_get_hashed = operator.itemgetter(*_HASHED)
_get_columns = operator.itemgetter(*COLUMNS)


def fast_event_hash(row: dict[str, Any]) -> str | None:
    """``event_hash(row)`` computed with orjson for rows of the usual shape, else None.

    An optimisation only: a result that differs from the row's ``hash`` is re-checked with
    ``kiosk.hashchain.event_hash``, the reference, so an encoding difference can cost time
    but can never accept a row the reference would refuse."""
    if orjson is None:
        return None
    try:
        body = dict(zip(_HASHED, _get_hashed(row), strict=True))
    except KeyError:  # a row without some field: hashed as null, as event_hash does
        body = {name: row.get(name) for name in _HASHED}
    for name in _FLOAT_FIELDS:
        value = body[name]
        if value is not None:
            if type(value) is int:
                body[name] = float(value)
            elif type(value) is not float:
                return None
    for name in ("seq", "mono_ns"):
        if type(body[name]) is not int:
            return None
    if body["clock_synced"] is not None:
        body["clock_synced"] = bool(body["clock_synced"])
    if type(body["reasons"]) is not list or type(body["flags"]) is not list:
        return None
    body["personal_digest"] = row.get("personal_digest")
    body["prev_hash"] = row.get("prev_hash")
    try:
        encoded = orjson.dumps(body, option=orjson.OPT_SORT_KEYS)
    except TypeError:  # orjson.JSONEncodeError: lone surrogates, odd types
        return None
    return hashlib.sha256(_EVENTS_TAG + encoded).hexdigest()


#: The highest seq a kiosk's log can hold (a SQLite INTEGER, a PostgreSQL bigint).
MAX_SEQ = 2**63 - 1


#: A kiosk's ``site.kiosk_id`` (``kiosk.config.site``): what a gate may call itself.
_KIOSK_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")


def is_kiosk_id(value: str) -> bool:
    """Whether ``value`` can be a kiosk's id (a gate's answer is not taken on trust: it
    names every central row, the status page, /metrics and the district report)."""
    return _KIOSK_ID.fullmatch(value) is not None


#: The most of a value a gate sent that an error repeats.
SHOWN_CHARS = 40


def shown(value: object) -> str:
    """A value of a gate's answer for an error message: a text's first ``SHOWN_CHARS``
    characters (escaped, ``...`` after), a number or null as it is, anything else by its
    JSON kind only (a list of a million items is never turned into text)."""
    if isinstance(value, str):
        return repr(value[:SHOWN_CHARS]) + ("..." if len(value) > SHOWN_CHARS else "")
    if value is None or isinstance(value, bool | float) or type(value) is int:
        text = repr(value)  # an int of a JSON page: at most 20 digits (orjson's range)
        return text if len(text) <= SHOWN_CHARS else text[:SHOWN_CHARS] + "..."
    return f"a JSON {'list' if isinstance(value, list) else type(value).__name__}"


def check_page(rows: list[dict[str, Any]], kiosk_id: str, after: int, prev_hash: str) -> None:
    """Raise ``ChainError`` unless ``rows`` continue the chain from ``(after, prev_hash)``."""
    last_seq, last_hash = after, prev_hash
    for row in rows:
        seq = row.get("seq")
        if row.get("kiosk_id") != kiosk_id:
            raise ChainError(
                f"seq {shown(seq)}: kiosk_id {shown(row.get('kiosk_id'))}, expected {kiosk_id!r}"
            )
        if type(seq) is int and not 0 < seq <= MAX_SEQ:
            raise ChainError(f"seq {seq}: not a seq (1 to {MAX_SEQ}, as the kiosk's log numbers)")
        if type(seq) is not int or seq <= last_seq:
            raise ChainError(f"seq {shown(seq)}: not after {last_seq}")
        if row.get("prev_hash") != last_hash:
            raise ChainError(
                f"seq {seq}: prev_hash does not match the hash of seq {last_seq}"
                " (the kiosk's log differs from the copy already pulled)"
            )
        claimed = row.get("hash")
        if not isinstance(claimed, str):
            # Checked first: a row the fast path steps aside for (None) must not pass by
            # having no hash either.
            raise ChainError(f"seq {seq}: the row carries no hash")
        if fast_event_hash(row) != claimed:
            try:
                computed = event_hash(row)
            except CanonicalError as exc:
                raise ChainError(f"seq {seq}: {exc}") from None
            if computed != claimed:
                raise ChainError(f"seq {seq}: hash does not match the row's content")
        last_seq, last_hash = seq, claimed


def past_held(rows: list[dict[str, Any]], held_seq: int, held_hash: str) -> list[dict[str, Any]]:
    """``rows``, asked from the seq before the last one the target holds, less that row once
    it is checked to be the one held: the same seq with the same hash. ``ChainError`` when the
    kiosk's row differs (or it has none: its log skips it); no rows at all are left to the
    caller (a log that ends before it)."""
    if not rows:
        return rows
    first = rows[0]
    if first.get("seq") != held_seq or first.get("hash") != held_hash:
        raise ChainError(
            f"seq {held_seq}: the kiosk's row differs from the copy already pulled (another"
            " kiosk with the same site.kiosk_id, or its log was replaced or restored from a"
            " backup)"
        )
    return rows[1:]


def log_shorter_than_copy(held_seq: int, head_seq: int) -> ChainError:
    """The kiosk's log ends before the row the target holds: it is not the log pulled before
    (a second kiosk set up with the same id, a new SD card, a restored backup). Not "up to
    date": its new rows would never come."""
    return ChainError(
        f"seq {held_seq}: the kiosk's log ends at seq {head_seq}, before the rows already"
        " pulled (another kiosk with the same site.kiosk_id, or its log was replaced or"
        " restored from a backup)"
    )


def _loads(body: bytes | bytearray) -> Any:
    if orjson is not None:
        return orjson.loads(body)  # nested deeper than 1024: a JSONDecodeError (ValueError)
    try:
        return json.loads(body)
    except RecursionError:  # pragma: no cover - orjson is a dependency
        raise ValueError("JSON nested too deep") from None


def unparsable(
    url: str, params: dict[str, Any], body: bytes | bytearray, exc: ValueError, cut_before: bool
) -> bool:
    """A whole answer (by its HTTP framing) that is no JSON. Cut short (the JSON ends where
    the body does: a connection closed early with no length said) it is asked once more:
    ``True``. Anything else (a lone surrogate, a trailing comma, a second cut) is no network
    problem and no later try mends it: ``PullError`` naming the gate, the page and the fault."""
    where = getattr(exc, "pos", None)
    short = where is not None and where >= len(bytes(body).rstrip())
    page = f"the page after seq {params.get('after', 0)} ({len(body):,} bytes)"
    if short and not cut_before:
        return True
    fault = visible(str(exc)[:200])
    if short:
        fault = f"cut short twice ({fault})"
    raise PullError(
        f"{url}: {page} is not JSON: {fault}; not tried again (what was pulled before it is kept)"
    )


def _canonical(value: object) -> str:
    if orjson is not None:
        return orjson.dumps(value, option=orjson.OPT_SORT_KEYS).decode("utf-8")
    return json.dumps(value, ensure_ascii=False, sort_keys=True, separators=(",", ":"))


_JSON_INDEXES = tuple(i for i, c in enumerate(COLUMNS) if c in record.JSON_FIELDS)
_SYNCED_INDEX = COLUMNS.index("clock_synced")


def _db_row(row: dict[str, Any], pulled_at: str) -> list[Any]:
    try:
        values = list(_get_columns(row))
    except KeyError:
        values = [row.get(c) for c in COLUMNS]
    for i in _JSON_INDEXES:
        if values[i] is not None:
            values[i] = _canonical(values[i])
    if values[_SYNCED_INDEX] is not None:
        values[_SYNCED_INDEX] = int(bool(values[_SYNCED_INDEX]))
    values.append(pulled_at)
    return values


def write_page(
    conn: sqlite3.Connection, url: str, kiosk_id: str, rows: list[dict[str, Any]]
) -> int:
    """Insert one verified page and remember the source, in one transaction."""
    now = datetime.now(UTC).isoformat()
    placeholders = ", ".join("?" for _ in range(len(COLUMNS) + 1))
    sql = (
        f"INSERT OR IGNORE INTO pulled_events ({', '.join(COLUMNS)}, pulled_at)"  # noqa: S608
        f" VALUES ({placeholders})"
    )
    conn.execute("BEGIN IMMEDIATE")
    try:
        refusal = sqlite_pin_conflict(conn, url, kiosk_id)  # again, under the write lock
        if refusal is not None:
            raise refusal
        before = conn.total_changes
        conn.executemany(sql, (_db_row(r, now) for r in rows))
        inserted = conn.total_changes - before
        conn.execute(
            "INSERT INTO pull_sources (url, kiosk_id, updated_at) VALUES (?, ?, ?)"
            " ON CONFLICT(url) DO UPDATE SET kiosk_id = excluded.kiosk_id,"
            " updated_at = excluded.updated_at",
            [url, kiosk_id, now],
        )
        conn.execute("COMMIT")
    except BaseException as exc:
        _rollback(conn)
        # A value SQLite cannot bind (the hash agrees with it: a forged or broken row) is
        # the kiosk's error, not a traceback.
        problem = _unbindable(rows) if isinstance(exc, _BIND_ERRORS) else None
        if problem is not None:
            raise PullError(f"{url}: {problem}") from None
        raise
    return inserted


def sqlite_pin_conflict(conn: sqlite3.Connection, url: str, kiosk_id: str) -> PinError | None:
    """``pin_refusal`` for ``url`` answering as ``kiosk_id``, from ``pull_sources``."""
    own = conn.execute("SELECT kiosk_id FROM pull_sources WHERE url = ?", [url]).fetchone()
    holder = conn.execute(
        "SELECT url FROM pull_sources WHERE kiosk_id = ? AND url <> ? ORDER BY url LIMIT 1",
        [kiosk_id, url],
    ).fetchone()
    return pin_refusal(url, kiosk_id, own and own[0], holder and holder[0])


def sqlite_repin(conn: sqlite3.Connection, url: str, kiosk_id: str) -> str:
    """Pin ``kiosk_id`` to ``url`` (releasing the id's other source and the URL's old id),
    recorded in ``pull_pin_changes``, in one transaction; what was released, in words."""
    now = datetime.now(UTC).isoformat()
    conn.execute("BEGIN IMMEDIATE")
    try:
        own = conn.execute("SELECT kiosk_id FROM pull_sources WHERE url = ?", [url]).fetchone()
        holders = [
            r[0]
            for r in conn.execute(
                "SELECT url FROM pull_sources WHERE kiosk_id = ? AND url <> ? ORDER BY url",
                [kiosk_id, url],
            )
        ]
        what = describe_pins(url, own and own[0], holders)
        conn.execute("DELETE FROM pull_sources WHERE kiosk_id = ? AND url <> ?", [kiosk_id, url])
        conn.execute(
            "INSERT INTO pull_sources (url, kiosk_id, updated_at) VALUES (?, ?, ?)"
            " ON CONFLICT(url) DO UPDATE SET kiosk_id = excluded.kiosk_id,"
            " updated_at = excluded.updated_at",
            [url, kiosk_id, now],
        )
        conn.execute(
            "INSERT INTO pull_pin_changes (at, url, kiosk_id, previous) VALUES (?, ?, ?, ?)",
            [now, url, kiosk_id, what],
        )
        conn.execute("COMMIT")
    except BaseException:
        _rollback(conn)
        raise
    return what


def _rollback(conn: sqlite3.Connection) -> None:
    """Roll back the transaction, if SQLite has not already: on a full disk (``SQLITE_FULL``)
    it rolled it back itself, and a second ROLLBACK ("no transaction is active") would be
    the error the clerk sees instead of the full disk."""
    if conn.in_transaction:
        conn.execute("ROLLBACK")


_BIND_ERRORS = (OverflowError, sqlite3.ProgrammingError, sqlite3.InterfaceError)
_INT64 = (-(2**63), 2**63 - 1)


def _unbindable(rows: list[dict[str, Any]]) -> str | None:
    """The first value of ``rows`` that SQLite cannot bind, in words (None when none is):
    an integer past 64 bits, an object or list outside the JSON columns."""
    for row in rows:
        for name in COLUMNS:
            value = row.get(name)
            if value is None or name in record.JSON_FIELDS:
                continue
            if type(value) is int and not _INT64[0] <= value <= _INT64[1]:
                return f"seq {row.get('seq')}: {name} {value} is past a 64-bit integer"
            if not isinstance(value, str | int | float):
                return f"seq {row.get('seq')}: {name} is a JSON {type(value).__name__}"
    return None


class PullTarget(Protocol):
    """Where pulled events go. ``SqliteTarget`` here; ``office.pg.PgTarget`` for
    PostgreSQL. ``write_page`` gets pages already checked by ``check_page`` and must write each
    one atomically (all rows and the source, or nothing)."""

    def source_kiosk(self, url: str) -> str | None:
        """The kiosk id this URL served before, if any."""
        ...

    def tail(self, kiosk_id: str) -> tuple[int, str]:
        """``(highest seq held, its hash)``; ``(0, GENESIS)`` when none."""
        ...

    def write_page(self, url: str, kiosk_id: str, rows: list[dict[str, Any]]) -> int:
        """Insert one page and remember the source; returns rows newly inserted. Checks
        ``pin_conflict`` again in its transaction (``PinError``, nothing written)."""
        ...

    def pin_conflict(self, url: str, kiosk_id: str) -> PinError | None:
        """Why ``url`` may not be pulled as ``kiosk_id`` (``pin_refusal``); None if it may."""
        ...

    def repin(self, url: str, kiosk_id: str) -> str:
        """The operator's explicit word: ``url`` is ``kiosk_id`` now (audited)."""
        ...

    def pin_changes(self) -> list[tuple[Any, ...]]:
        """The re-pins made, oldest first: ``(at, url, kiosk_id, previous)``."""
        ...

    def close(self) -> None: ...


class SqliteTarget:
    """A ``PullTarget`` in a SQLite file (``pulled_events``, ``pull_sources``)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        #: This target made the file (``_create``'s rules): only such a file is ever removed.
        self.created = _create(self.path)
        try:
            self.conn = _connect(self.path)
        except BaseException:
            if self.created:
                self._remove()
            raise

    def source_kiosk(self, url: str) -> str | None:
        row = self.conn.execute("SELECT kiosk_id FROM pull_sources WHERE url = ?", [url]).fetchone()
        return row[0] if row else None

    def tail(self, kiosk_id: str) -> tuple[int, str]:
        return target_tail(self.conn, kiosk_id)

    def write_page(self, url: str, kiosk_id: str, rows: list[dict[str, Any]]) -> int:
        return write_page(self.conn, url, kiosk_id, rows)

    def pin_conflict(self, url: str, kiosk_id: str) -> PinError | None:
        return sqlite_pin_conflict(self.conn, url, kiosk_id)

    def repin(self, url: str, kiosk_id: str) -> str:
        return sqlite_repin(self.conn, url, kiosk_id)

    def pin_changes(self) -> list[tuple[Any, ...]]:
        return self.conn.execute(
            "SELECT at, url, kiosk_id, previous FROM pull_pin_changes ORDER BY rowid"
        ).fetchall()

    def close(self) -> None:
        self.conn.close()

    def discard_if_unused(self) -> None:
        """Close; and when this target made the file and nothing was ever committed into it
        (a first pull that failed: unreachable, refused, interrupted), remove it with its -wal
        and -shm, so the run leaves things as they were. A file it did not make, or one that
        holds pulled rows (a later run resumes from them), is kept as it is."""
        try:
            used = (
                not self.created
                or self.conn.execute(
                    "SELECT EXISTS (SELECT 1 FROM pulled_events)"
                    " OR EXISTS (SELECT 1 FROM pull_sources)"
                ).fetchone()[0]
            )
        except sqlite3.Error:
            used = True  # cannot tell: keep it
        self.conn.close()
        if not used:
            self._remove()

    def _remove(self) -> None:
        for suffix in ("", "-wal", "-shm", "-journal"):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(f"{self.path}{suffix}")


def fetch_bounded(
    client: httpx.Client,
    url: str,
    params: dict[str, Any],
    headers: dict[str, str],
    *,
    cap: int,
    deadline_s: float,
    monotonic: Callable[[], float] = time.monotonic,
    too_large: Callable[[str], Exception] | None = None,
) -> tuple[int, httpx.Headers, bytearray]:
    """``(status, headers, body)`` of one GET to a host on the LAN (hostile until shown
    otherwise): a compressed answer refused (``refuse_encoded``), a 200's body read no
    further than ``cap`` bytes (``too_large(what)`` raised past it, a ``PullError`` without
    one), an error's no further than its message (``ERROR_BODY_BYTES``), and all of it
    within ``deadline_s`` however the answer trickles in (``PullError`` past it). Transport
    errors propagate (the caller's retry policy). The office's pull, its ask for a gate's
    report (``office.gatereports``) and the compound's gates fetching each other's passages
    (``checkpoint.peers``) all ask through it."""
    deadline = Deadline(deadline_s, monotonic)
    try:
        with (
            deadline,
            client.stream("GET", url, params=params, **deadline.httpx_args(headers)) as response,
        ):
            return read_capped(url, response, deadline, cap, too_large)
    except (httpx.TransportError, DeadlineExceeded):
        if deadline.expired:
            raise PullError(
                f"{url}: no complete answer within {deadline_s:g} s (a kiosk sending too"
                " slowly; not tried again)"
            ) from None
        raise


def read_capped(
    url: str,
    response: httpx.Response,
    deadline: Deadline,
    cap: int,
    too_large: Callable[[str], Exception] | None = None,
) -> tuple[int, httpx.Headers, bytearray]:
    """``(status, headers, body)`` of an answer streamed from a host on the LAN, inside
    ``deadline``: the one bounded read of ``fetch_bounded``, the collector's gate reports and
    a gate's list sync. An encoded answer refused unread (``refuse_encoded``), a 200's body
    no further than ``cap`` (``too_large(what)`` raised past it, a ``PullError`` without one),
    an error's no further than its message (``ERROR_BODY_BYTES``). The body is held once (the
    parsers read a bytearray as it is)."""

    def refused(what: str) -> Exception:
        if too_large is not None:
            return too_large(what)
        return PullError(f"{url}: {what}, larger than {cap} bytes (not a kiosk's answer?)")

    refuse_encoded(url, response)
    status = response.status_code
    cap = cap if status == 200 else ERROR_BODY_BYTES
    declared = response.headers.get("content-length", "")
    if status == 200 and (length := whole_number(declared)) is not None and length > cap:
        raise refused(f"an answer of {length:,} bytes")
    body = bytearray()
    for chunk in response.iter_bytes():  # as sent: nothing to inflate (refuse_encoded)
        deadline.check()
        body += chunk
        if len(body) > cap:
            if status != 200:
                del body[cap:]
                break  # only the message is wanted
            raise refused(f"an answer of more than {len(body):,} bytes")
    deadline.check()
    return status, response.headers, body


_Pages = queue.Queue[tuple[list[dict[str, Any]], int] | BaseException | None]


@dataclass
class _Fetch:
    """What the fetching thread of one pull needs: where, how, and from which row held."""

    endpoint: str
    token: str
    after: int
    held_hash: str
    result: PullResult
    lead: _Lead


class _Lead:
    """How far the fetching thread of one pull may read ahead: one page beyond the one being
    written, and only while the writing thread goes on after each page it wrote (``went_on``:
    a turn over, ``Puller.turn_over``, says no). A page is asked for only when the pull will
    write it: none is fetched twice, by this turn and the next, nor left in flight."""

    def __init__(self) -> None:
        self._changed = threading.Condition()
        self._handed = self._approved = 0
        self._ended = False

    def may_fetch(self) -> bool:
        """Wait until the next page may be asked for; False: the pull ends (ask for none)."""
        with self._changed:
            self._changed.wait_for(lambda: self._ended or self._handed <= self._approved + 1)
            return not self._ended

    def handed(self) -> None:
        """A page was handed to the writing thread."""
        with self._changed:
            self._handed += 1

    def went_on(self, more: bool) -> None:
        """The writing thread wrote a page; ``more``: it wants the next (False: no more)."""
        with self._changed:
            self._approved += more
            self._ended = self._ended or not more
            self._changed.notify_all()


class Puller:
    """Pulls one or more kiosks into one target. ``client`` and ``sleep`` are injectable
    (tests use an ASGI transport and a sleep that only records)."""

    def __init__(
        self,
        target: str | Path | PullTarget,
        *,
        client: httpx.Client | None = None,
        page_size: int = 5000,
        backoff: Backoff = PULL_BACKOFF,
        attempts: int = 8,
        sleep: Callable[[float], object] = time.sleep,
        progress: Progress | None = None,
        timeout_s: float = 30.0,
        max_page_bytes: int = MAX_PAGE_BYTES,
        request_deadline_s: float = REQUEST_DEADLINE_S,
        monotonic: Callable[[], float] = time.monotonic,
        stop: threading.Event | None = None,
        fields: Iterable[str] = (),
        on_page: Callable[[], object] | None = None,
        turn_over: Callable[[], bool] | None = None,
        tell: Callable[[str], object] = lambda _said: None,
    ) -> None:
        if not 1 <= page_size <= 10000:
            raise ValueError("page_size must be between 1 and 10000")
        if attempts < 1:
            raise ValueError("attempts must be at least 1 (the first try counts)")
        # A path is opened (and closed) here; a target object stays the caller's to close.
        self._own_target = isinstance(target, str | Path)
        self.target: PullTarget = SqliteTarget(target) if isinstance(target, str | Path) else target
        self._own_client = client is None
        self.client = client or http_client(client_timeout(timeout_s))
        self.page_size = page_size
        #: Personal fields asked for unmasked (``?fields=``; the token needs logs:personal).
        self.fields = ",".join(sorted(set(fields)))
        #: The most of one answer read: a page is a few MB; something far larger at the URL
        #: (a mirror, a video, a hostile host) is refused, not held in memory.
        self.max_page_bytes = max_page_bytes
        #: The whole of one request, however the answer trickles in (``office.deadline``).
        self.request_deadline_s = request_deadline_s
        self._monotonic = monotonic
        self.backoff = backoff
        #: Tries per request, the first one included; between two, ``backoff``'s wait.
        self.attempts = attempts
        self.sleep = sleep
        self.progress = progress or Progress(enabled=False)
        #: Set (the collector stopping): a pull ends after the page it is writing, what it
        #: wrote kept, and the next one resumes from there.
        self.stopping = stop
        #: Called after each page is committed, in the writing thread (the collector's beat
        #: while a long pull is under way: ``office.collector``); it must not raise: what it
        #: raises ends the pull as failed.
        self.on_page = on_page
        #: Asked after each page is committed (after ``on_page``): True ends the pull after
        #: the page read ahead, asked for already (``_Lead``: none is fetched twice), its result
        #: what it wrote (``last_seq``); the next pull resumes after the last seq held (the
        #: collector's fair turns: ``office.collector.TURN_S``).
        self.turn_over = turn_over
        #: What this Puller did that the operator is told of (a re-pin), oldest first.
        self.notices: list[str] = []
        #: Told at once what the operator should hear while the tries go on (a refused
        #: connection's cause: ``kiosk pull`` prints it on stderr).
        self.tell = tell
        self._failed = False

    def close(self) -> None:
        """Close what this Puller opened. After a failed ``pull`` a target file it created and
        never wrote into is removed (``SqliteTarget.discard_if_unused``)."""
        if self._own_client:
            self.client.close()
        if not self._own_target:
            return
        if self._failed and isinstance(self.target, SqliteTarget):
            self.target.discard_if_unused()
        else:
            self.target.close()

    def __enter__(self) -> Puller:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, *exc: object) -> None:
        self._failed = self._failed or exc_type is not None
        self.close()

    def _fetch(
        self, url: str, params: dict[str, Any], headers: dict[str, str]
    ) -> tuple[int, httpx.Headers, bytearray]:
        """``(status, headers, body)`` of one GET, the body read no further than a page of
        ``params["limit"]`` events may be (``page_cap``, at most ``max_page_bytes``;
        ``PullError`` past it) or, for an error, than its message, and all of it within
        ``request_deadline_s`` (``PullError`` past it): ``fetch_bounded``."""
        limit = int(params.get("limit", 0))
        cap = page_cap(limit, self.max_page_bytes)
        return fetch_bounded(
            self.client,
            url,
            params,
            headers,
            cap=cap,
            deadline_s=self.request_deadline_s,
            monotonic=self._monotonic,
            too_large=lambda what: self._too_large(url, what, cap, limit),
        )

    def _too_large(self, url: str, what: str, cap: int, limit: int) -> PullError:
        """A page over its cap: ``PageTooLarge`` (asked again with ``safe_limit`` events)
        while legal rows could make a page of ``limit`` that large; else refused."""
        events = f"{limit:,} event" + ("" if limit == 1 else "s")
        message = (
            f"{url}: {what}, larger than {cap} bytes, the most a page of at most {events}"
            " can be (not this kiosk's page? a smaller page size?)"
        )
        fits = safe_limit(self.max_page_bytes)
        return PageTooLarge(message, fits) if fits < limit else PullError(message)

    def _check_values(self, url: str, body: bytes | bytearray, limit: int) -> None:
        """Refuse to parse a page with more values than ``value_budget``: ``PageTooLarge``
        with fewer events (at most half), as a page of legal events can be that dense (a
        ``person`` of 64 KiB of small values); ``PullError`` at one event."""
        budget = value_budget(self.max_page_bytes)
        values = json_values(body)
        if values <= budget:
            return
        message = (
            f"{url}: an answer of {len(body):,} bytes with up to {values:,} JSON values, more"
            f" than the {budget:,} a page is parsed with (not this kiosk's page?)"
        )
        fewer = min(limit // 2, limit * budget // values)
        if fewer >= 1:
            raise PageTooLarge(message, fewer)
        raise PullError(message)

    def _get(
        self, url: str, token: str, params: dict[str, Any], result: PullResult
    ) -> dict[str, Any]:
        headers = {"Authorization": f"Bearer {token}", **PLAIN_JSON}
        problem, cut, told = "", False, False
        silent = _Silence(url, self._monotonic)
        for attempt in range(self.attempts):
            if attempt:
                result.retries += 1
            delay = self.backoff.delay(attempt)
            try:
                status, response_headers, body = self._fetch(url, params, headers)
                if status == 200:
                    self._check_values(url, body, int(params.get("limit", 0)))
                    try:
                        page = _loads(body)
                    except ValueError as exc:
                        cut = unparsable(url, params, body, exc, cut)
                        problem = "a body cut short"
                        if attempt + 1 < self.attempts:
                            self.sleep(delay)
                        continue
                    if not isinstance(page, dict):
                        raise PullError(f"{url}: the answer is not a JSON object (not a kiosk?)")
                    return page  # its fields are checked by the caller
                if status in (401, 403):
                    raise PullError(f"{url}: {status} {_detail(body)}")
                if status == 422:
                    raise _refused(url, body)
                if status == 421:  # the gate's guard against DNS rebinding (docs/network.md)
                    raise PullError(
                        f"{url}: 421: the gate does not answer to {httpx.URL(url).host}; if"
                        " that name is the gate's, add it to the gate's [web] allowed_hosts"
                    )
                if status == 429 or status >= 500:
                    # A gate that says why (a damaged database: SQLITE_CORRUPT) is quoted.
                    said = _detail(body) if status >= 500 else ""
                    problem = f"HTTP {status}: {said}" if said else f"HTTP {status}"
                    retry_after = response_headers.get("retry-after", "")
                    if status == 429 and (wait_s := whole_number(retry_after)) is not None:
                        delay = min(self.backoff.cap_s, max(delay, float(wait_s)))
                else:
                    raise PullError(f"{url}: {status_words(status, response_headers, body)}")
            except httpx.InvalidURL as exc:  # e.g. "host:1:2": no try will ever reach it
                raise PullError(f"{url}: not a usable URL ({exc})") from None
            except httpx.ConnectError as exc:
                refused = untrusted_certificate(exc) or unknown_host(exc, url)
                if refused is not None:  # no later try will trust it (or find it) either
                    raise PullError(f"{url}: {refused}") from None
                problem = REFUSED if connection_refused(exc) else type(exc).__name__
                if problem == REFUSED and not told and attempt + 1 < self.attempts:
                    self.tell(f"{url}: {REFUSED} (trying again, {self.attempts} tries in all)")
                    told = True
            except (httpx.ConnectTimeout, httpx.ReadTimeout, httpx.WriteTimeout) as exc:
                problem = type(exc).__name__
                if silent.failed(exc, self.client.timeout) >= SILENT_TRIES:
                    raise silent.error() from None
            except (httpx.TransportError, ValueError) as exc:
                problem = type(exc).__name__
            if attempt + 1 < self.attempts:
                self.sleep(delay)
        raise PullError(f"{url}: giving up after {self.attempts} tries ({problem})")

    def _page(
        self, url: str, token: str, params: dict[str, Any], result: PullResult
    ) -> tuple[list[dict[str, Any]], int | None]:
        """One page's ``(events, last)``: a list of objects and the head seq (None when the
        kiosk does not say); ``PullError`` for an answer of another shape."""
        page = self._get(url, token, params, result)
        rows, head = page.get("events"), page.get("last")
        if not isinstance(rows, list):
            raise PullError(f"{url}: response has no events list")
        if not all(isinstance(row, dict) for row in rows):
            raise PullError(f"{url}: an event that is not a JSON object (not a kiosk?)")
        if head is not None and (type(head) is not int or head < 0):
            raise PullError(f"{url}: 'last' is {str(head)[:40]!r}, not a seq (not a kiosk?)")
        return rows, head

    def _probe(self, endpoint: str, token: str, result: PullResult) -> str | None:
        """A kiosk pulled for the first time: its id, from its first event (None when it has
        none yet)."""
        first, head = self._page(endpoint, token, {"after": 0, "limit": 1}, result)
        result.head_seq = head or 0
        if not first:
            return None
        kiosk_id = first[0].get("kiosk_id")
        if not isinstance(kiosk_id, str):
            raise PullError(f"{endpoint}: an event without a kiosk_id (not a kiosk?)")
        if not is_kiosk_id(kiosk_id):
            raise PullError(
                f"{endpoint}: {kiosk_id[:80]!r} is not a kiosk id (1 to 64 of A-Z a-z 0-9 . _"
                " -, as a kiosk's site.kiosk_id; not a kiosk?)"
            )
        result.kiosk_id = kiosk_id
        return result.kiosk_id

    def pull(self, url: str, token: str, *, repin: str | None = None) -> PullResult:
        """Pull ``url`` into the target. ``repin``: the operator's word that ``url`` is the
        gate ``repin`` now (a gate moved to a new address, or given a new site.kiosk_id):
        checked against the id the gate answers as, then pinned, audited and logged."""
        try:
            problem = token_problem(token)
            if problem is not None:  # no try would ever send it: not a network problem
                raise PullError(f"{url}: {problem}")
            return self._pull(url, token, repin)
        except BaseException:
            self._failed = True
            raise

    def _pull(self, url: str, token: str, repin: str | None = None) -> PullResult:
        try:
            base = normalise_url(url)
        except ValueError as exc:  # its message does not repeat a password in the URL
            raise PullError(str(exc)) from None
        endpoint = base + "/api/v1/events"
        remembered = self.target.source_kiosk(base)
        if repin is not None:
            return self._repin(endpoint, token, repin, PullResult(base, None))
        result = PullResult(base, remembered)
        kiosk_id = remembered or self._probe(endpoint, token, result)
        if kiosk_id is None:
            return result  # an empty kiosk: nothing to pull yet
        refusal = self.target.pin_conflict(base, kiosk_id)
        if refusal is not None:
            raise refusal
        try:
            return self._pull_kiosk(endpoint, token, kiosk_id, result)
        except ChainError:
            if remembered is None:
                raise
            # The URL may answer as another kiosk id now (a log moved aside and a new one
            # begun under a new site.kiosk_id, or another host at its address): refused,
            # naming both, until the operator re-pins it. The same id with another log stays
            # the ChainError it is.
            found = self._probe(endpoint, token, PullResult(base, None))
            refusal = None if found is None else pin_refusal(base, found, remembered, None)
            if refusal is None:
                raise
            raise refusal from None

    def _repin(self, endpoint: str, token: str, kiosk_id: str, result: PullResult) -> PullResult:
        """Pin ``kiosk_id`` to the source once it answers as that id, then pull it."""
        base = result.url
        if not is_kiosk_id(kiosk_id):
            raise PullError(
                f"--repin {kiosk_id[:80]!r}: not a kiosk id (1 to 64 of A-Z a-z 0-9 . _ -)"
            )
        found = self._probe(endpoint, token, result)
        if found != kiosk_id:
            raise PinError(
                f"{base} answers as kiosk {found or '(none: no events yet)'}, not {kiosk_id}:"
                " not re-pinned (pins unchanged)"
            )
        released = self.target.repin(base, kiosk_id)
        log.warning("pull source re-pinned: %s is kiosk %s (%s)", base, kiosk_id, released)
        self.notices.append(f"{base} re-pinned to kiosk {kiosk_id} ({released})")
        return self._pull_kiosk(endpoint, token, kiosk_id, result)

    def _pull_kiosk(
        self, endpoint: str, token: str, kiosk_id: str, result: PullResult
    ) -> PullResult:
        """Pull ``kiosk_id``'s events from the last one the target holds."""
        base = result.url
        after, last_hash = self.target.tail(kiosk_id)
        start = after
        # Pages are fetched (and parsed) one ahead on a helper thread while this thread checks
        # and writes the previous one: the server's work and ours overlap.
        pages: _Pages = queue.Queue(2)
        stop, lead = threading.Event(), _Lead()
        fetcher = threading.Thread(
            target=self._fetch_pages,
            args=(_Fetch(endpoint, token, after, last_hash, result, lead), pages, stop),
            name="kiosk-pull-fetch",
            daemon=True,
        )
        fetcher.start()
        total = after
        try:
            while True:
                item = pages.get()
                if item is None:
                    break
                if isinstance(item, BaseException):
                    raise item
                rows, page_total = item
                total = max(total, page_total)
                check_page(rows, kiosk_id, after, last_hash)
                result.inserted += self.target.write_page(base, kiosk_id, rows)
                result.fetched += len(rows)
                result.pages += 1
                after, last_hash = rows[-1]["seq"], rows[-1]["hash"]
                self.progress.update(kiosk_id, after - start, total - start)
                if self.on_page is not None:
                    self.on_page()
                if self.stopping is not None and self.stopping.is_set():
                    break
                # A turn over: no page is asked for after the one read ahead, which is written
                # (its request neither sent again by the next turn nor left running on).
                lead.went_on(self.turn_over is None or not self.turn_over())
        finally:
            stop.set()
            lead.went_on(False)
            # Unblock a fetcher waiting to put; one stuck in a backoff sleep is a daemon and is
            # left to finish on its own rather than holding up ^C.
            deadline = time.monotonic() + 2.0
            while fetcher.is_alive() and time.monotonic() < deadline:
                try:
                    pages.get(timeout=0.05)
                except queue.Empty:
                    pass
        result.last_seq = after
        if result.fetched:
            self.progress.update(kiosk_id, after - start, total - start, final=True)
        return result

    def _fetch_pages(self, job: _Fetch, pages: _Pages, stop: threading.Event) -> None:
        """Fetch the pages after ``job.after`` into ``pages`` one ahead of the writing thread
        (None at the end; an exception is handed over and raised there). A pull that resumes
        asks from the seq before the last one held, so that the kiosk's own row at
        ``job.after`` is compared with the copy's (``past_held``): another log as long as the
        copy (a second kiosk with the same id, a replaced log) would look up to date."""
        limit, after = self.page_size, job.after
        overlap = after > 0
        stopping = self.stopping or stop  # the collector stopping asks the gate for no more
        try:
            while not stop.is_set() and not stopping.is_set() and job.lead.may_fetch():
                params: dict[str, Any] = {"after": after - 1 if overlap else after}
                params |= {"limit": limit, **({"fields": self.fields} if self.fields else {})}
                try:
                    rows, head = self._page(job.endpoint, job.token, params, job.result)
                except PageTooLarge as exc:
                    if not 1 <= exc.max_limit < limit:
                        raise
                    # The kiosk's web.max_page, or as many events as surely fit in
                    # max_page_bytes (a page of 64 KiB persons over it: ``_too_large``).
                    limit = exc.max_limit
                    continue
                total = head or 0
                job.result.head_seq = max(job.result.head_seq, total)
                if overlap:
                    overlap, rows = False, past_held(rows, after, job.held_hash)
                    if not rows and total > after:
                        continue  # a page of one row, the one held: the rest follows
                if not rows:
                    if head is not None and head < after:
                        raise log_shorter_than_copy(after, head)
                    break
                pages.put((rows, total))
                job.lead.handed()
                seq = rows[-1].get("seq")
                if type(seq) is not int or seq >= total:
                    break  # the end, or a page the writing thread refuses
                after = seq
            pages.put(None)
        except BaseException as exc:  # handed to the writing thread, raised there
            pages.put(exc)


class _Silence:
    """The tries of one request that got no answer at all, and what to say after them."""

    def __init__(self, url: str, monotonic: Callable[[], float]) -> None:
        self.url = url
        self._monotonic = monotonic
        self._started = monotonic()
        self.tries = 0
        self.what = ""

    def failed(self, exc: httpx.TimeoutException, timeout: httpx.Timeout) -> int:
        """Count a try that timed out; the count so far."""
        self.tries += 1
        if isinstance(exc, httpx.ConnectTimeout):
            self.what = f"its connection was not accepted within {timeout.connect or 0:g} s"
        else:
            self.what = f"the connection went silent (nothing for {timeout.read or 0:g} s)"
        return self.tries

    def error(self) -> PullError:
        elapsed = self._monotonic() - self._started
        return PullError(
            f"{self.url}: the kiosk did not answer: {self.what}; {self.tries} tries over"
            f" {elapsed:.0f} s (switched off, off the network, or a firewall drops the"
            " connection)"
        )


#: The most of a bearer token sent (a kiosk's is 55 characters).
MAX_TOKEN_CHARS = 4096


def token_problem(token: str) -> str | None:
    """Why ``token`` cannot be a bearer token (None when it can): it must be 1 to
    ``MAX_TOKEN_CHARS`` visible ASCII characters. Never repeats the token."""
    if not 1 <= len(token) <= MAX_TOKEN_CHARS:
        return f"the token is not 1 to {MAX_TOKEN_CHARS} characters long"
    if not all("!" <= c <= "~" for c in token):
        return (
            "the token is not printable ASCII without spaces (a kiosk's token is"
            " kt_<id>_<secret>, as `kiosk token new` printed it: check the copy)"
        )
    return None


def certificate_refusal(exc: BaseException) -> str | None:
    """Why TLS refused the other side's certificate, when that is what ``exc`` (an httpx
    error) is (self-signed, expired, another host name); None for any other failure."""
    seen: BaseException | None = exc
    for _ in range(8):  # httpx -> httpcore -> ssl; a chain is never longer
        if seen is None:
            break
        if isinstance(seen, ssl.SSLCertVerificationError):
            return str(seen.verify_message or seen)
        seen = seen.__cause__ or seen.__context__
    return None


#: How the office comes to trust a gate's certificate (``untrusted_certificate``).
GIVE_THE_OFFICE = (
    "give the office the kiosk's certificate (tls_cert, its fingerprint printed by"
    " scripts/install --tls): SSL_CERT_FILE=/path/to/gate-cert.pem"
)


def untrusted_certificate(
    exc: BaseException, whose: str = "the kiosk's", remedy: str = GIVE_THE_OFFICE
) -> str | None:
    """What to say when ``exc`` is this side refusing ``whose`` TLS certificate (the
    self-signed one ``scripts/install --tls`` makes, a wrong host name) and ``remedy``, how
    to trust it (by default the office refusing a kiosk's); None otherwise."""
    why = certificate_refusal(exc)
    if why is None:
        return None
    return f"{whose} TLS certificate is not trusted here ({why}); {remedy}"


def unknown_host(exc: BaseException, url: str) -> str | None:
    """What to say when ``exc`` (an httpx error) is the name server answering that the URL's
    host name does not exist (a typing error; a name the LAN's DNS does not know); None for
    any other failure, a name server failing for now (``EAI_AGAIN``) included."""
    seen: BaseException | None = exc
    for _ in range(8):  # httpx -> httpcore -> socket; a chain is never longer
        if seen is None:
            return None
        if isinstance(seen, socket.gaierror) and seen.errno in _NO_SUCH_NAME:
            host = httpx.URL(url).host
            return f"no host is named {host} (a typing error in the URL? not in the LAN's DNS?)"
        seen = seen.__cause__ or seen.__context__
    return None


#: What a refused connection is said as: nothing listens at that address and port.
REFUSED = "connection refused: is the kiosk running at that address and port?"


def connection_refused(exc: BaseException) -> bool:
    """Whether ``exc`` (an httpx error) is the address refusing the connection (no kiosk
    listening there: stopped, or another port): said at once, and the tries go on (a kiosk
    starting up answers a moment later)."""
    seen: BaseException | None = exc
    for _ in range(8):  # httpx -> httpcore -> socket, as ``unknown_host``
        if seen is None:
            return False
        if isinstance(seen, ConnectionRefusedError):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


#: ``getaddrinfo`` errors that say the name does not exist (not that the lookup failed).
_NO_SUCH_NAME = frozenset(
    code for code in (getattr(socket, n, None) for n in ("EAI_NONAME", "EAI_NODATA")) if code
)


def _detail(body: bytes | bytearray) -> str:
    """The error's ``detail``: a message, or the first problem of a validation error
    (``query.limit: Input should be ...``), at most 200 characters, ``kiosk.typed.visible``."""
    try:
        found = json.loads(body)
    except (ValueError, RecursionError):  # RecursionError: nested too deep for json.loads
        return ""
    detail = found.get("detail") if isinstance(found, dict) else None
    if isinstance(detail, list) and detail and isinstance(detail[0], dict):
        loc = detail[0].get("loc")
        where = ".".join(map(str, loc)) if isinstance(loc, list) else "?"
        detail = f"{where}: {detail[0].get('msg')}"
    return visible(detail[:200]) if isinstance(detail, str) else ""


def _refused(url: str, body: bytes | bytearray) -> PullError:
    """A 422: ``PageTooLarge`` when it is the page size (the kiosk's ``web.max_page`` is
    lower), else the refusal in words."""
    message = f"{url}: HTTP 422 {_detail(body)}"
    try:
        first = json.loads(body)["detail"][0]
        if first["loc"] == ["query", "limit"] and type(first["ctx"]["le"]) is int:
            return PageTooLarge(message, first["ctx"]["le"])
    except (ValueError, LookupError, TypeError, RecursionError):
        pass
    return PullError(message)


def pull(
    url: str,
    token: str,
    target: str | Path,
    **kwargs: Any,
) -> PullResult:
    """Pull one kiosk into ``target`` (see ``Puller`` for the keyword arguments)."""
    with Puller(target, **kwargs) as puller:
        return puller.pull(url, token)
