"""The API's export helper process: ``/api/v1/events`` pages built off the gate's CPU.

``HelperProcessPages`` is the ``kiosk.export.PageSource`` the daemon hands to the API when
``web.api_worker_process`` is on. The helper is this module run as a program
(``python -m checkpoint.export_helper PARENT_PID [CPUS]``): it imports only the page builder
(``kiosk.export``: sqlite3, the hash chain, masking) and answers length-prefixed requests on
its stdin with pages on its stdout, one at a time.

What it costs is what it does (``kiosk bench``, memory section): ~12 MB PSS while it works,
nothing while the office is not pulling. It is started on the first page, stops by itself
after ``IDLE_STOP_S`` without one (the next page starts a new one, a fraction of a second
against a pull's seconds), and exits at once when the daemon is gone (its stdin closes). No
multiprocessing pool: a spawned pool worker re-imports the daemon's whole program (~40 MB)
and brings a resource-tracker process (~7 MB) along for the daemon's lifetime.
"""

from __future__ import annotations

import contextlib
import logging
import os
import pickle
import select
import struct
import subprocess
import sys
import threading
import time
from typing import IO, TYPE_CHECKING, Any

from checkpoint import malloc
from checkpoint.cpu import background_cpus, enter_background

if TYPE_CHECKING:  # the helper program imports the page builder itself, after its set-up
    from kiosk.store import EventLog

log = logging.getLogger(__name__)

#: A helper with no page to build for this long exits (the office pulls now and then).
IDLE_STOP_S = 30.0
#: The longest a page may take before the helper is given up on (and the page built here).
PAGE_TIMEOUT_S = 60.0
_HEADER = struct.Struct("!I")
#: A reply: ok, body length, then the page's count, next and last (an error: its message).
_REPLY = struct.Struct("!?Iqqq")
#: A request is a path and four small values; a reply a page of at most a few MB.
_MAX_REQUEST_BYTES = 1 << 16
_MAX_REPLY_BYTES = 1 << 30


class HelperGone(RuntimeError):
    """The helper process exited, closed its pipe or took too long."""


class HelperStopped(HelperGone):
    """``shutdown`` ended the helper while a page was asked of it: the page is built in this
    process, not asked of a new helper; or the daemon's stop closed these pages (``close``):
    none is asked of a helper after it."""


def _read_exact(stream: IO[bytes], n: int) -> bytes:
    data = b""
    while len(data) < n:
        chunk = stream.read(n - len(data))
        if not chunk:
            raise HelperGone("pipe closed")
        data += chunk
    return data


def _send(stream: IO[bytes], obj: object) -> None:
    payload = pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL)
    stream.write(_HEADER.pack(len(payload)) + payload)
    stream.flush()


def _send_reply(stream: IO[bytes], ok: bool, body: bytes, page: tuple[int, int, int]) -> None:
    """A page goes as it is, not pickled: no second copy of a few MB on either side."""
    stream.write(_REPLY.pack(ok, len(body), *page))
    stream.write(body)
    stream.flush()


def _receive_reply(stream: IO[bytes]) -> tuple[bool, bytes, int, int, int]:
    ok, size, count, next_seq, last = _REPLY.unpack(_read_exact(stream, _REPLY.size))
    if size > _MAX_REPLY_BYTES:
        raise HelperGone(f"reply of {size} bytes over the {_MAX_REPLY_BYTES} limit")
    return ok, _read_exact(stream, size), count, next_seq, last


def _receive(stream: IO[bytes], limit: int) -> Any:
    (size,) = _HEADER.unpack(_read_exact(stream, _HEADER.size))
    if size > limit:
        raise HelperGone(f"message of {size} bytes over the {limit} limit")
    return pickle.loads(_read_exact(stream, size))  # noqa: S301 - our own process's bytes


class HelperProcessPages:
    """Builds ``/api/v1/events`` pages, by default in one helper process.

    Why a process: reading, masking and encoding 5,000 events allocates ~100,000 objects and
    holds the GIL for tens of milliseconds in total; in the daemon's process that shows up as
    scheduling lag on the asyncio loop that runs the gate (measured by ``kiosk bench``, pull
    section). The helper reads the same SQLite file through its own read-only connection (WAL
    lets it) and hands back bytes. If the helper cannot be used the page is built in this
    thread instead, so an export never fails for it. Once the daemon's stop has closed them
    (``close``) none is built: a page asked then is refused as the log's reads are at its
    close (``LogClosing``: 503, "the checkpoint is stopping"), never a helper started."""

    _proc: subprocess.Popen[bytes] | None = None
    #: Held by ``_ask`` for as long as a page takes (one page at a time on the pipes).
    _lock = threading.Lock()
    #: Guards ``_proc`` only, never held across a page: ``shutdown`` never waits for one.
    _proc_lock = threading.Lock()
    #: The helper's last failure, said once: a page a bad sector keeps from being read is
    #: asked for at every pull, and each warning would go to the journal on that card.
    _failed: str | None = None
    idle_stop_s = IDLE_STOP_S

    def __init__(self) -> None:
        #: Set by the daemon's stop (``close``), under ``_proc_lock``; cleared by its start.
        self._closed = False

    def open(self) -> None:
        """The daemon's start: pages are asked of the helper (again, after a stop)."""
        with self._proc_lock:
            self._closed = False

    def close(self) -> None:
        """The daemon's stop: no page is asked of a helper from now on and none is started,
        the one under way included (``HelperStopped``, refused by ``build``); the helper is
        stopped (``shutdown``)."""
        with self._proc_lock:
            self._closed = True
        self.shutdown()

    def helper(self) -> subprocess.Popen[bytes]:
        """The running helper process, started if there is none (call with ``_lock`` held);
        ``HelperStopped`` once the stop closed these pages."""
        with self._proc_lock:
            if self._closed:
                raise HelperStopped("the daemon's stop closed the page helper")
            proc = HelperProcessPages._proc
            if proc is None or proc.poll() is not None:
                proc = HelperProcessPages._proc = self._start()
            return proc

    @classmethod
    def _start(cls) -> subprocess.Popen[bytes]:
        cpus = background_cpus()
        return subprocess.Popen(
            [
                sys.executable,
                "-m",
                "checkpoint.export_helper",
                str(os.getpid()),
                ",".join(map(str, cpus or ())),
                str(cls.idle_stop_s),
            ],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            close_fds=True,
        )

    @classmethod
    def shutdown(cls) -> None:
        """Stop the helper process (the daemon's stop, a helper that failed); it also exits
        by itself when idle or when this process dies. Never waits behind a page under way
        (``_ask`` holds ``_lock`` for as long as it takes: an export reading a stalled card,
        up to ``PAGE_TIMEOUT_S``): that helper is terminated, and the asking thread builds
        its page itself (``HelperStopped``). An idle one is told to end (its stdin closed)."""
        with cls._proc_lock:
            proc, cls._proc = cls._proc, None
        if proc is None:
            return
        if not cls._lock.acquire(blocking=False):  # a page under way: its thread retires it
            proc.terminate()
            return
        try:
            _retire(proc, 5.0)
        finally:
            cls._lock.release()

    def _ask(
        self, request: tuple[str, int, int, tuple[str, ...], bool]
    ) -> tuple[bool, bytes, int, int, int]:
        with self._lock:
            proc = self.helper()
            try:
                return _page_of(proc, request)
            except (HelperGone, OSError, ValueError, struct.error):
                if HelperProcessPages._proc is proc:
                    raise
                _retire(proc, 1.0)  # ``shutdown`` took it meanwhile, and terminated it
                raise HelperStopped("the helper was stopped") from None

    def build(
        self, store: EventLog, after: int, limit: int, allowed: frozenset[str], ndjson: bool
    ) -> tuple[bytes, int, int, int]:
        request = (str(store.path), after, limit, tuple(sorted(allowed)), ndjson)
        for attempt in range(2):
            try:
                ok, body, count, next_seq, last = self._ask(request)
            except (HelperGone, OSError, ValueError, struct.error) as exc:
                if isinstance(exc, HelperStopped):
                    log.debug("export worker stopped; building in-process")
                    break
                if attempt == 0 and isinstance(exc, HelperGone):
                    continue  # an idle helper may exit between our check and our request
                log.warning("export worker unavailable (%s); building in-process", exc)
                self.shutdown()
                break
            if ok:
                HelperProcessPages._failed = None
                return body, count, next_seq, last
            said = body.decode(errors="replace")
            if said != HelperProcessPages._failed:
                log.warning("export worker failed (%s); building in-process", said)
            else:
                log.debug("export worker failed again (%s); building in-process", said)
            HelperProcessPages._failed = said
            break
        self._stopped()  # however the helper failed it: refused once the stop closed the pages
        from kiosk.export import InProcessPages

        return InProcessPages().build(store, after, limit, allowed, ndjson)

    def _stopped(self) -> None:
        """A page the helper did not build (stopped, failed, gone): ``LogClosing`` if the
        daemon's stop closed these pages (before the page reached the helper, or under it),
        else the page is built here."""
        if self._closed:
            from kiosk.store import LogClosing  # loaded by the daemon; not by the helper

            raise LogClosing from None


def _page_of(
    proc: subprocess.Popen[bytes], request: tuple[str, int, int, tuple[str, ...], bool]
) -> tuple[bool, bytes, int, int, int]:
    """``request`` sent to the helper ``proc`` and its reply read (``_lock`` held)."""
    assert proc.stdin is not None and proc.stdout is not None
    try:
        _send(proc.stdin, request)
    except OSError as exc:  # it exited (idle) just now: the caller retries once
        raise HelperGone(str(exc)) from None
    ready, _, _ = select.select([proc.stdout], [], [], PAGE_TIMEOUT_S)
    if not ready:
        proc.kill()
        raise HelperGone("no page in time")
    return _receive_reply(proc.stdout)


def _retire(proc: subprocess.Popen[bytes], wait_s: float) -> None:
    """A helper nobody asks any more: told to end (its stdin closed), killed if it has not
    within ``wait_s``, its pipes closed. Only by the thread that holds ``_lock``: a pipe
    closed under another thread's read waits for that read."""
    with contextlib.suppress(OSError, ValueError):
        if proc.stdin is not None:
            proc.stdin.close()  # its read sees the end and it exits
    try:
        proc.wait(wait_s)
    except subprocess.TimeoutExpired:
        proc.kill()
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(wait_s)  # a helper stuck in the kernel (a stalled card) is left
    if proc.stdout is not None:
        proc.stdout.close()


def serve(stdin: IO[bytes], stdout: IO[bytes], idle_stop_s: float) -> int:
    """The helper's loop: a request in, a page (or the error) out, until idle or orphaned."""
    from kiosk.export import export_page_at

    while True:
        ready, _, _ = select.select([stdin], [], [], idle_stop_s)
        if not ready:
            return 0  # idle: the next page starts a new helper
        try:
            request = _receive(stdin, _MAX_REQUEST_BYTES)
        except HelperGone:
            return 0  # the daemon closed the pipe (stop) or is gone
        try:
            body, count, next_seq, last = export_page_at(*request)
        except Exception as exc:  # noqa: BLE001 - reported to the daemon, which builds it itself
            _send_reply(stdout, False, f"{type(exc).__name__}: {exc}".encode(), (0, 0, 0))
            continue
        _send_reply(stdout, True, body, (count, next_seq, last))
        del body  # not held while waiting for the next request


def _watch_parent(parent_pid: int) -> None:
    """A daemon killed hard cannot close our pipe in time if a page is being built: leave as
    soon as it is gone, not holding the database open."""

    def watch() -> None:
        while os.getppid() == parent_pid:
            time.sleep(1.0)
        os._exit(0)

    threading.Thread(target=watch, name="kiosk-export-parent-watch", daemon=True).start()


def main(argv: list[str]) -> int:
    parent_pid = int(argv[0])
    cpus = tuple(int(c) for c in argv[1].split(",") if c) if len(argv) > 1 else ()
    idle_stop_s = float(argv[2]) if len(argv) > 2 else IDLE_STOP_S
    malloc.tune()
    enter_background(cpus or None)
    _watch_parent(parent_pid)
    return serve(sys.stdin.buffer, sys.stdout.buffer, idle_stop_s)


if __name__ == "__main__":
    # sqlite_utils (under kiosk.store) imports numpy, when it can, only to map numpy values
    # to column types; pages never carry any, and numpy would be most of this process.
    sys.modules.setdefault("numpy", None)  # type: ignore[arg-type]
    sys.exit(main(sys.argv[1:]))
