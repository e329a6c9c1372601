"""``store`` bench: commit latency and committed appends per second of the event log.

The kiosk commits a decision *before* the relay fires, so ``commit_ms`` is added to every
passage. It is measured in the configured ``synchronous`` mode (``commit_ms``,
``appends_per_s``) and, in the same run with repeats interleaved so machine noise hits both
alike, in FULL and NORMAL: ``full_over_normal`` is what durability across a power cut costs.

The files go in ``$KIOSK_DATA`` (else ``./data`` if present, else the temp dir) because the
figure is about *that* disk: a tmpfs ``fsync`` is free and would flatter FULL, so the
filesystem type is reported too.

What a passage costs the SD card is counted, not timed (``_wear``, ``_log_lines``): over
``WEAR_APPENDS`` appends in the configured mode, the bytes the writer thread hands to the
kernel (``/proc/self/task/<tid>/io``, the syscalls, whatever the file system), the pages
SQLite puts in the WAL and the WAL's restarts and checkpoints (its index, ``-shm``: the
layout of sqlite.org/walformat.html), the commits (the writer's statements) and from those
the ``fsync``s SQLite makes at its sync points; and the journal lines (INFO and above) of
ordinary passes through the engine (``checkpoint.replay``). Counts do not depend on load.
"""

from __future__ import annotations

import contextlib
import logging
import os
import statistics
import struct
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from checkpoint.bench import bench_draft
from drivers.clocksync import system_clock
from kiosk.config import load_config
from kiosk.store import EventLog

_DRAFT = bench_draft()


#: (repeats, appends per repeat, warm-up appends)
QUICK_SIZES = (3, 40, 5)
FULL_SIZES = (5, 200, 20)
#: Appends whose writes are counted (quick, full): past a WAL cycle (~1,000 pages, ~125
#: passages), so the automatic checkpoints are in the figures.
WEAR_APPENDS = (300, 1500)
#: Ordinary passes through the engine whose journal lines are counted (quick, full).
LOG_PASSES = (3, 10)


def _bench_dir() -> Path:
    env = os.environ.get("KIOSK_DATA")
    if env and Path(env).is_dir():
        return Path(env)
    if Path("data").is_dir():
        return Path("data")
    return Path(tempfile.gettempdir())


def _fs_type(path: Path) -> str:
    """The filesystem type holding ``path`` (longest matching mount point in /proc/mounts)."""
    target = str(path.resolve())
    best, fstype = "", "unknown"
    try:
        with open("/proc/mounts", encoding="utf-8") as mounts:
            for line in mounts:
                parts = line.split()
                if len(parts) < 3:
                    continue
                mount_point = parts[1].replace("\\040", " ")
                inside = target == mount_point or target.startswith(mount_point.rstrip("/") + "/")
                if inside and len(mount_point) >= len(best):
                    best, fstype = mount_point, parts[2]
    except OSError:
        pass
    return fstype


def _one_repeat(store: EventLog, appends: int) -> tuple[float, float]:
    """(median commit ms, committed appends per second) for ``appends`` sequential appends."""
    latencies: list[int] = []
    started = time.perf_counter_ns()
    for _ in range(appends):
        t0 = time.perf_counter_ns()
        store.append(_DRAFT)
        latencies.append(time.perf_counter_ns() - t0)
    elapsed_s = (time.perf_counter_ns() - started) / 1e9
    return statistics.median(latencies) / 1e6, appends / elapsed_s


def run(quick: bool) -> dict[str, Any]:
    repeats, appends, warmup = QUICK_SIZES if quick else FULL_SIZES
    configured = load_config(os.environ.get("KIOSK_CONFIG") or None).store.synchronous
    base = _bench_dir()
    results: dict[str, dict[str, list[float]]] = {
        mode: {"commit_ms": [], "appends_per_s": []} for mode in ("FULL", "NORMAL")
    }
    with (
        tempfile.TemporaryDirectory(prefix="kiosk-bench-store-", dir=base) as tmp,
        held_index(Path(tmp) / f"{configured.lower()}.db") as index,
    ):
        logs = {
            mode: EventLog(Path(tmp) / f"{mode.lower()}.db", "bench", system_clock(), mode).open()
            for mode in ("FULL", "NORMAL")
        }
        try:
            for log in logs.values():
                for _ in range(warmup):
                    log.append(_DRAFT)
            for _ in range(repeats):
                for mode, log in logs.items():  # interleaved: same noise for both modes
                    commit_ms, per_s = _one_repeat(log, appends)
                    results[mode]["commit_ms"].append(commit_ms)
                    results[mode]["appends_per_s"].append(per_s)
            wear = _wear(logs[configured], WEAR_APPENDS[0 if quick else 1], index)
            verified = all(log.verify().ok for log in logs.values())
        finally:
            for log in logs.values():
                log.close()

    def med(mode: str, key: str) -> float:
        return statistics.median(results[mode][key])

    full_ms, normal_ms = med("FULL", "commit_ms"), med("NORMAL", "commit_ms")
    return {
        "commit_ms": round(med(configured, "commit_ms"), 3),
        "appends_per_s": round(med(configured, "appends_per_s"), 1),
        "synchronous": configured,
        "commit_ms_full": round(full_ms, 3),
        "commit_ms_normal": round(normal_ms, 3),
        "appends_per_s_full": round(med("FULL", "appends_per_s"), 1),
        "appends_per_s_normal": round(med("NORMAL", "appends_per_s"), 1),
        "full_over_normal": round(full_ms / normal_ms, 2) if normal_ms > 0 else None,
        "repeats": repeats,
        "appends_per_repeat": appends,
        "fs": _fs_type(base),
        "chains_verified": verified,
        **wear,
        "log_lines_per_pass": _log_lines(LOG_PASSES[0 if quick else 1]),
    }


def _writer_io(tid: int) -> tuple[int, int] | None:
    """(bytes, calls) the thread ``tid`` passed to write/pwrite so far; None without
    per-task I/O accounting in this kernel."""
    try:
        text = Path(f"/proc/self/task/{tid}/io").read_text(encoding="ascii")
    except OSError:
        return None
    fields = dict(line.split(": ", 1) for line in text.splitlines() if ": " in line)
    try:
        return int(fields["wchar"]), int(fields["syscw"])
    except (KeyError, ValueError):
        return None


@dataclass(frozen=True)
class _WalIndex:
    """The WAL as its index (``-shm``) says: walformat.html, native byte order."""

    frames: int  # in the WAL now
    salt: bytes  # changes when the WAL begins again from its start
    backfilled: int  # frames a checkpoint copied into the database
    page: int

    @classmethod
    def of(cls, head: bytes) -> _WalIndex | None:
        """The index's header read; None when short (no index yet)."""
        if len(head) < 100:
            return None
        size, frames = struct.unpack_from("=HI", head, 14)
        (backfilled,) = struct.unpack_from("=I", head, 96)
        return cls(frames, head[32:40], backfilled, 65536 if size == 1 else size)


class ShmIndex:
    """The WAL index (``-shm``) of the database at ``db``, read through one descriptor opened
    at the first read and held until ``close``, which comes after the log's own close (enter
    ``held_index`` before opening the log). SQLite's locks on the index are the process's
    POSIX locks, dropped by closing *any* descriptor of the file: a read by ``open()`` and
    close while the log was open dropped the log's (its dead-man-switch lock), what
    docs/event-log.md says is never done."""

    def __init__(self, db: Path) -> None:
        self.path = db.with_name(db.name + "-shm")
        self._fd: int | None = None

    def read(self) -> _WalIndex | None:
        """None when there is no index to read (not WAL mode, or exclusive locking)."""
        try:
            if self._fd is None:
                self._fd = os.open(self.path, os.O_RDONLY | os.O_CLOEXEC)
            return _WalIndex.of(os.pread(self._fd, 100, 0))
        except OSError:
            return None

    def close(self) -> None:
        fd, self._fd = self._fd, None
        if fd is not None:
            os.close(fd)


@contextlib.contextmanager
def held_index(db: Path) -> Iterator[ShmIndex]:
    """A ``ShmIndex`` of ``db`` closed at the end: enter it before the log opens, so that it
    closes after the log."""
    index = ShmIndex(db)
    try:
        yield index
    finally:
        index.close()


@dataclass
class _WalCount:
    """Pages put in the WAL, its restarts and its checkpoints, from index to index."""

    last: _WalIndex | None
    frames: int = 0
    restarts: int = 0
    checkpoints: int = 0
    readable: bool = True

    def after_append(self, now: _WalIndex | None) -> None:
        last, self.last = self.last, now
        if last is None or now is None:
            self.readable = False
        elif now.salt != last.salt:  # the WAL began again from its start (after a checkpoint)
            self.restarts += 1
            self.frames += now.frames
        else:
            self.frames += now.frames - last.frames
            self.checkpoints += now.backfilled > last.backfilled


def _wear(store: EventLog, appends: int, index: ShmIndex) -> dict[str, Any]:
    """What ``appends`` appends write, per event: counted at the writer thread's syscalls,
    in the WAL's index (``index``: held past the log's close) and in the writer's
    statements. A count this system cannot take is null, never a made-up figure."""
    statements: list[str] = []

    def trace(db: Any) -> int:
        db.conn.set_trace_callback(statements.append)
        return threading.get_native_id()

    tid = store.submit(trace)
    wal = _WalCount(index.read())
    statements.clear()
    before = _writer_io(tid)
    for _ in range(appends):
        store.append(_DRAFT)
        wal.after_append(index.read())
    after = _writer_io(tid)
    store.submit(lambda db: db.conn.set_trace_callback(None))
    commits = statements.count("COMMIT")
    # SQLite's sync points in WAL mode: each commit in FULL (none in NORMAL), the WAL's
    # header when it begins again, the WAL and then the database at each checkpoint.
    syncs = (commits if store.synchronous == "FULL" else 0) + wal.restarts + 2 * wal.checkpoints
    written = None if before is None or after is None else (after[0] - before[0]) / appends
    page = wal.last.page if wal.readable and wal.last is not None else None
    return {
        "commits_per_event": round(commits / appends, 3),
        "fsyncs_per_event": round(syncs / appends, 3) if page else None,
        "wal_frames_per_event": round(wal.frames / appends, 2) if page else None,
        "wal_bytes_per_event": round(wal.frames * (page + 24) / appends) if page else None,
        "bytes_written_per_event": None if written is None else round(written),
        "events_per_checkpoint": (
            round(appends / wal.checkpoints, 1) if page and wal.checkpoints else None
        ),
        "wear_appends": appends,
    }


class _Lines(logging.Handler):
    """Counts the records a journal would get (INFO and above) while ``counting``."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.counting = False
        self.lines = 0

    def emit(self, record: logging.LogRecord) -> None:
        self.lines += self.counting


def _log_lines(passes: int) -> float:
    """Journal lines (INFO and above, the daemon's default level) per ordinary pass: residents
    of as many households passing through the engine on the simulated devices (replay), from
    the first decision to the last (the first pass's own lines may be the start's)."""
    from checkpoint.replay import parse_scenario, replay

    steps = [
        {
            "at_s": 1 + 12 * i,
            "pass": {"household": f"A-{101 + i}", "holder": f"Resident {i}"},
            "body_c": 36.6,
            "direction": "out" if i % 2 else "in",
            "expect": {"decision": "pass", "reasons": ["ok"], "exact": True},
        }
        for i in range(passes + 1)
    ]
    scenario = parse_scenario({"name": "bench-log-lines", "steps": steps})
    root = logging.getLogger()
    counter, level = _Lines(), root.level
    root.addHandler(counter)
    root.setLevel(logging.INFO)
    decided: list[str] = []

    def on_decision(record: dict[str, Any]) -> None:
        decided.append(str(record.get("decision")))
        counter.counting = len(decided) < len(steps)

    try:
        result = replay(scenario, on_decision=on_decision)
    finally:
        root.removeHandler(counter)
        root.setLevel(level)
    if not result.ok or decided != ["pass"] * len(steps):
        raise RuntimeError(f"bench passes were not all passed: {result.failures or decided}")
    return round(counter.lines / passes, 2)
