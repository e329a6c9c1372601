"""``store`` bench: commit latency and committed appends per second of the event log.

The kiosk commits a decision *before* the relay fires, so ``commit_ms`` is added to every
passage. It is measured in the configured ``synchronous`` mode (``commit_ms``,
``appends_per_s``) and, in the same run with repeats interleaved so machine noise hits both
alike, in FULL and NORMAL: ``full_over_normal`` is what durability across a power cut costs.

The files go in ``$KIOSK_DATA`` (else ``./data`` if present, else the temp dir) because the
figure is about *that* disk: a tmpfs ``fsync`` is free and would flatter FULL, so the
filesystem type is reported too.
"""

from __future__ import annotations

import os
import statistics
import tempfile
import time
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


def _one_repeat(log: EventLog, appends: int) -> tuple[float, float]:
    """(median commit ms, committed appends per second) for ``appends`` sequential appends."""
    latencies: list[int] = []
    started = time.perf_counter_ns()
    for _ in range(appends):
        t0 = time.perf_counter_ns()
        log.append(_DRAFT)
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
    with tempfile.TemporaryDirectory(prefix="kiosk-bench-store-", dir=base) as tmp:
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
    }
