"""``loop``: from a camera frame arriving to the gate command and to the committed event.

Over at least 1,000 replayed passages (virtual time for everything that waits: the
measurement, the gate pulse, the result hold), each passage is timed in real time from the
moment its frame reaches the real ``FramePipeline`` to

* the committed event (``EventLog.append`` returned: FULL sync, on a temporary file), and
* the gate command (the relay driver called; it is always after the commit).

The kiosk runs temperature-first here, so the person is already measured when the frame
arrives: the interval is the product's own latency, not a person's. ``overhead_p99_ms`` is
the 99th percentile of (latency to the gate minus the decode time of that same frame), i.e.
everything the kiosk adds to decoding: gray conversion and change gate, pass verification,
the rules, the event commit with its fsync, the relay call. Target: <= 5 ms. The decode time
is measured here around the camera reader's ``FramePipeline.process`` (the pipeline times
itself on the injected clock, which is virtual here). ``engine_overhead_p99_ms`` is the same
without the time spent inside ``EventLog.append`` (the FULL-sync fsync, which depends on the
storage), so a slow disk and a slow engine can be told apart.

The program is the daemon's, built by the composition root (``checkpoint.app.build_core``) and
stepped by ``checkpoint.virtual.VirtualKiosk``; the times are taken at the devices: the event
log's append (a timing wrapper in front of it) and the relay driver's command.

Every figure is the median over repeated runs (``repeats``), each run on a fresh database.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from checkpoint.bench import simulated_gate, simulated_thermometer

if TYPE_CHECKING:
    import numpy as np
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from checkpoint.virtual import VirtualKiosk
    from drivers.mlx90614_emulator import Mlx90614Emulator
    from kiosk.clock import Clock
    from kiosk.core import Core
    from kiosk.store import Event, EventDraft, EventLog


def _pct(values: list[float], q: float) -> float:
    """Nearest-rank percentile (no interpolation: a reported p99 is a real passage)."""
    ordered = sorted(values)
    index = max(0, min(len(ordered) - 1, int(round(q / 100 * len(ordered) + 0.5)) - 1))
    return ordered[index]


def _frames(keys: Ed25519PrivateKey, clock: Clock, count: int) -> list[np.ndarray]:
    from drivers.fake_camera import FakeCamera
    from kiosk.passes import issue_pass

    camera = FakeCamera(clock, seed=7)
    frames = []
    for i in range(count):
        text, _ = issue_pass(keys, f"B-{i:03d}", f"Res {i}", days=30, now=clock.now())
        camera.show_code(text, seed=1000 + i)
        frames.append(camera.next_frame()[0])
    return frames


def _bench_core(key: Ed25519PrivateKey, workdir: Path) -> Core:
    """The program from the composition root on a ``FakeClock``: temperature-first, FULL sync,
    the default simulated devices, ``key``'s public half in the trust folder."""
    from checkpoint.app import build_core
    from kiosk.clock import FakeClock
    from kiosk.config import parse_config, trust_dir
    from kiosk.passes import public_key_pem

    cfg = parse_config(
        {
            "site": {"kiosk_id": "bench"},
            "engine": {"order": "temperature_first"},
            # The same few frames (passes) go round again within seconds: no anti-passback.
            "policy": {"passback": {"enabled": False}},
            "store": {"synchronous": "FULL"},
            "thermometer": {"driver": {"type": "fake", "seed": 3}},
        }
    )
    trust = trust_dir(cfg, workdir)
    trust.mkdir(parents=True, exist_ok=True)
    (trust / "bench.pub").write_bytes(public_key_pem(key.public_key()))
    return build_core(cfg, workdir, FakeClock())


class _TimedLog:
    """The real event log; notes when the append started and returned (the fsync is inside)."""

    def __init__(self, store: EventLog, marks: dict[str, int]) -> None:
        self.store, self.marks = store, marks

    def append(self, draft: EventDraft) -> Event:
        self.marks.setdefault("commit_start", time.perf_counter_ns())
        event = self.store.append(draft)
        self.marks.setdefault("commit", time.perf_counter_ns())
        return event

    def audit(self, actor: str, action: str, detail: Mapping[str, Any] | None = None) -> None:
        self.store.audit(actor, action, detail)


def _measure(kiosk: VirtualKiosk, emulator: Mlx90614Emulator, index: int) -> None:
    """The person steps up and is measured: the engine then waits for the code."""
    emulator.person_arrives(36.6)
    sample_dt = 1.0 / kiosk.core.config.thermometer.thermometry.sample_hz
    for _ in range(200):
        kiosk.sample_thermometer()
        kiosk.tick()
        kiosk.clock.advance(sample_dt)
        if kiosk.engine.state == "awaiting_code":
            return
    raise RuntimeError(f"bench passage {index}: no temperature ({kiosk.engine.state})")


def _one_run(
    passages: int, frames: list[np.ndarray], key: Ed25519PrivateKey, workdir: Path
) -> dict[str, Any]:
    """``passages`` passages through the program in virtual time (``checkpoint.virtual``); the
    timings are real: the frame into the camera reader's pipeline, the event log's append (a
    wrapper in front of it) and the relay driver's command (the fake gate's record)."""
    from checkpoint.virtual import VirtualKiosk

    core = _bench_core(key, workdir)
    try:
        marks: dict[str, int] = {}
        kiosk = VirtualKiosk(core, store=_TimedLog(core.store, marks))
        gate = simulated_gate(core)
        gate.on_command = lambda _c: marks.setdefault("gate", time.perf_counter_ns())
        emulator = simulated_thermometer(core)
        pipeline = kiosk.cameras[0].pipeline
        cfg = core.config
        settle_ticks = int((cfg.gate.pulse_ms / 1000 + cfg.engine.result_hold_s + 1) / 0.05)
        times = _Times()
        for i in range(passages):
            _measure(kiosk, emulator, i)
            marks.clear()
            frame = frames[i % len(frames)]
            t0 = time.perf_counter_ns()
            codes = pipeline.process(frame, kiosk.clock.monotonic_ns())
            t_decoded = time.perf_counter_ns()
            for code in codes:
                kiosk.engine.on_code(code)
            times.add(marks, t0, t_decoded)
            emulator.person_leaves()
            for _ in range(settle_ticks):
                kiosk.tick()
                kiosk.clock.advance(0.05)
    finally:
        core.close()
    return times.summary()


class _Times:
    def __init__(self) -> None:
        self.to_gate: list[float] = []
        self.to_commit: list[float] = []
        self.decode: list[float] = []
        self.overhead: list[float] = []
        self.engine_only: list[float] = []
        self.missed = 0

    def add(self, marks: dict[str, int], t0: int, t_decoded: int) -> None:
        if "gate" not in marks:
            self.missed += 1
            return
        gate_ms = (marks["gate"] - t0) / 1e6
        decode_ms = (t_decoded - t0) / 1e6
        commit_ms = (marks["commit"] - marks["commit_start"]) / 1e6
        self.to_gate.append(gate_ms)
        self.to_commit.append((marks["commit"] - t0) / 1e6)
        self.decode.append(decode_ms)
        self.overhead.append(gate_ms - decode_ms)
        self.engine_only.append(gate_ms - decode_ms - commit_ms)

    def summary(self) -> dict[str, Any]:
        if not self.to_gate:
            raise RuntimeError("bench: no passage reached the gate")
        fsync = (o - e for o, e in zip(self.overhead, self.engine_only, strict=True))
        return {
            "p50_ms": statistics.median(self.to_gate),
            "p99_ms": _pct(self.to_gate, 99),
            "commit_p50_ms": statistics.median(self.to_commit),
            "commit_p99_ms": _pct(self.to_commit, 99),
            "decode_ms": statistics.median(self.decode),
            "overhead_p50_ms": statistics.median(self.overhead),
            "overhead_p99_ms": _pct(self.overhead, 99),
            "fsync_commit_p50_ms": statistics.median(fsync),
            "engine_overhead_p99_ms": _pct(self.engine_only, 99),
            "missed": self.missed,
        }


def run(quick: bool) -> dict[str, Any]:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from kiosk.clock import FakeClock

    passages = 1000
    repeats = 1 if quick else 3
    key = Ed25519PrivateKey.generate()
    frames = _frames(key, FakeClock(), 40)
    runs = []
    for _ in range(repeats):
        with tempfile.TemporaryDirectory(prefix="kiosk-bench-loop-") as tmp:
            runs.append(_one_run(passages, frames, key, Path(tmp)))

    def med(name: str) -> float:
        value: float = statistics.median(run[name] for run in runs)
        return round(value, 3)

    return {
        "passages": passages,
        "p50_ms": med("p50_ms"),
        "p99_ms": med("p99_ms"),
        "decode_ms": med("decode_ms"),
        "overhead_p99_ms": med("overhead_p99_ms"),
        "overhead_p50_ms": med("overhead_p50_ms"),
        "commit_p50_ms": med("commit_p50_ms"),
        "commit_p99_ms": med("commit_p99_ms"),
        "fsync_commit_p50_ms": med("fsync_commit_p50_ms"),
        "engine_overhead_p99_ms": med("engine_overhead_p99_ms"),
        "missed": int(statistics.median(run["missed"] for run in runs)),
        "repeats": repeats,
        "store": "FULL",
    }
