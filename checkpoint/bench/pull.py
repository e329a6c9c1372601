"""``pull`` bench: events per second of a pull over loopback, and what a pull costs the gate.

A child process runs the real kiosk core (``checkpoint.app.build_core``: the engine runner on the
default simulated devices, the event log with FULL sync, ``ui.app.create_app``) under uvicorn
on ``127.0.0.1`` (a free port) against a pre-filled temporary event log (100,000 events; 20,000
with ``quick``), with ``policy.mode = "pass_only"`` and the shortest gate pulse (100 ms; see
``bench_config``). This process pulls with the real client (``office.pull.Puller``: hash checks,
SQLite writes) into a fresh target each time (on ``/dev/shm`` when there is one, as if on the
office's machine: ``pull_target``), and 20 real SSE clients read ``/kiosk/events`` (fed a
health message every 50 ms besides the engine's own messages).

All the while a probe (``PassageProbe``) sends people through the real checkpoint loop: a
scanner-style thread hands a freshly signed, valid pass to ``EngineRunner.submit_code`` each
time the gate is free again (at most one every ``PROBE_PERIOD_S``), and a subscriber of the
kiosk's event bus (as a screen is) times each passage from the code's arrival
(``CodeRead.mono_ns``) to the committed decision (the ``decision`` message, published once
``EventLog.append`` confirmed the row) and to the gate command (the ``gate_open`` state,
published as the relay is commanded). ``pass_only`` so that no measurement or code timeout is
in the interval: it is the kiosk's own latency, with the FULL-sync commit in it.

* ``events_per_s``: median over repeats of a whole pull (events / wall seconds), no SSE.
* ``loop_p99_idle_ms`` / ``loop_p99_loaded_ms``: median over repeats of the p99 (nearest
  rank) of code → gate command over at least 220 passages (60 with ``quick``) per phase:
  idle (no pull, no SSE client) and loaded (20 SSE clients streaming while whole pulls run back
  to back until as many passages are timed; ``loaded_events_per_s`` is those pulls' rate).
  ``loop_metric`` names this; ``commit_p99_*`` is code → committed decision, ``loop_p50_*``
  the medians. ``loaded_over_idle`` is the loaded/idle ratio of the p99s.
* ``sched_lag_p99_idle_ms`` / ``sched_lag_p99_loaded_ms``: the former proxy, the asyncio
  scheduling lag of the daemon's loop (how late a 10 ms timer fires; ``ui.api.LoopLagMonitor``)
  over the same phases.

CPU placement: the served kiosk pins itself as the daemon does (``engine.cpu = "auto"``:
``checkpoint.app.settle_for_service``, ``checkpoint.cpu``), so its export helper runs, nicer,
on a CPU the daemon leaves to it. In the loaded phase this process (puller and SSE clients)
stands in for the office's machine and the screens' browsers, which in service are elsewhere:
it keeps off the kiosk's CPUs too (``kiosk_cpu`` / ``client_cpus`` in the result). The plain pull
(``events_per_s``) runs unpinned, as the office's puller would on a machine of its own. On a
2-core machine the same bench with nothing pinned measured the loaded p99 at 2-3x idle: the
client and the helper woke on the gate's core between its hand-offs.

Each repeat runs idle, plain and loaded back to back so machine noise hits all three alike.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import functools
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, Self

import httpx

from checkpoint.bench.background import Background, until_stopped

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    from fastapi import FastAPI
    from sqlite_utils import Database

    from checkpoint.cpu import CpuPlan
    from kiosk.config import KioskConfig
    from kiosk.core import Core
    from ui.api import LoopLagMonitor

SSE_CLIENTS = 20
#: (events, repeats, timed passages per phase and repeat)
FULL_SIZES = (100_000, 3, 220)
QUICK_SIZES = (20_000, 1, 60)


def prefill(path: Path, events: int, kiosk_id: str = "bench-gate") -> None:
    """Write ``events`` chained events in bulk, exactly as ``EventLog.append`` would hash
    them (one transaction per 10,000 rows instead of one per row, so set-up stays short)."""
    from checkpoint.bench import bench_draft
    from kiosk import hashchain
    from kiosk.clock import FakeClock
    from kiosk.store import EventLog, write_key

    clock = FakeClock()
    log = EventLog(path, kiosk_id, clock, "NORMAL").open()
    # One real append fixes the schema and the column encoding for the copies (the digests are
    # keyed with their day's salt, ``kiosk.store.write_key``, as the log's writer does).
    log.append(bench_draft())
    template = log.events(limit=1)[0]

    def write(db: Database, start: int, count: int) -> None:
        conn = db.conn
        prev = conn.execute("select hash from events order by seq desc limit 1").fetchone()[0]
        columns = list(template)
        sql = (
            f"insert into events ({', '.join(columns)})"  # noqa: S608 - fixed column names
            f" values ({', '.join('?' for _ in columns)})"
        )
        rows = []
        for seq in range(start, start + count):
            row = dict(template)
            row.update(
                seq=seq,
                id=f"00000000-0000-4000-8000-{seq:012d}",
                ts=f"2026-03-02T{(seq // 3600) % 24:02d}:{(seq // 60) % 60:02d}:"
                f"{seq % 60:02d}.000000Z",
                mono_ns=1_000_000_000 + seq * 1_000_000_000,
                direction="out" if seq % 2 else "in",
                decision="deny" if seq % 50 == 0 else "pass",
                reasons=["fever"] if seq % 50 == 0 else ["ok"],
                temp_c=35.8 + (seq % 20) / 10,
                pass_id=f"P-{seq:05d}",
                household=f"B{seq % 9}-{seq % 400:04d}",
            )
            row["personal_digest"] = hashchain.event_personal_digest(write_key(conn, row), row)
            row["prev_hash"] = prev
            row["hash"] = prev = hashchain.event_hash(row)
            stored = dict(
                row,
                reasons=json.dumps(row["reasons"]),
                flags=json.dumps(row["flags"]),
                person=hashchain.canonical(row["person"]).decode(),
                clock_synced=int(row["clock_synced"]),
            )
            rows.append([stored[c] for c in columns])
        conn.executemany(sql, rows)
        conn.execute("update meta set value = ? where key = 'events.seq'", [str(start + count - 1)])

    seq = 2
    while seq <= events:
        count = min(10_000, events - seq + 1)
        log.submit(functools.partial(write, start=seq, count=count))
        seq += count
    log.close()


# --- the server (child process) -------------------------------------------------------------

#: The probe's scanner name (``CodeRead.source``): only its passages are timed.
PROBE_SOURCE = "bench-scanner"
#: At most one probe code every this many seconds (the gate pulse must have ended too).
PROBE_PERIOD_S = 0.15


def _pct(values: list[float], q: float) -> float | None:
    """Nearest-rank percentile (no interpolation: a reported p99 is a real passage)."""
    if not values:
        return None
    ordered = sorted(values)
    index = max(0, min(len(ordered) - 1, int(round(q / 100 * len(ordered) + 0.5)) - 1))
    return ordered[index]


def bench_config(path: Path) -> KioskConfig:
    """The served kiosk's config: the defaults (fake camera reader, fake gate, FULL sync) with
    ``policy.mode = "pass_only"`` so a probe passage is code → decision → commit → gate with no
    measurement to wait for, and the shortest gate pulse so passages can follow each other."""
    from kiosk.config import parse_config

    return parse_config(
        {
            "site": {"kiosk_id": "bench-gate"},
            "store": {"path": path.name, "synchronous": "FULL"},
            "policy": {"mode": "pass_only"},
            "gate": {"pulse_ms": 100},
        }
    )


class PassageProbe:
    """Scanner-style passages through the real checkpoint loop, timed per passage.

    A thread (as a serial scanner's driver would be) hands a freshly issued, valid pass to
    ``EngineRunner.submit_code`` whenever the engine can start a passage (previous gate pulse
    over) and ``PROBE_PERIOD_S`` has passed. ``watch`` subscribes to the bus (on the loop) and
    takes the time from the code's arrival (``CodeRead.mono_ns``, stamped by ``submit_code`` in
    the scanner's thread) to the committed decision (the ``decision`` message:
    ``EventLog.append`` confirmed, FULL sync) and to the gate command (the ``gate_open``
    state)."""

    def __init__(self, core: Core, key: Ed25519PrivateKey) -> None:
        self.core, self.key = core, key
        self.commit_ms: list[float] = []
        self.gate_ms: list[float] = []
        self.denied = 0
        self.submitted = 0
        self.error: str | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="bench-probe", daemon=True)

    async def watch(self) -> None:
        """The passages as the screens see them: the kiosk's bus, until cancelled."""
        subscription = self.core.bus.subscribe(maxsize=10_000, name="bench-probe")
        try:
            async for message in subscription:
                if message["type"] == "decision":
                    self._on_decision(message)
                elif message["type"] == "state" and message["state"] == "gate_open":
                    self._on_gate()
        finally:
            subscription.close()

    def _since_code_ms(self) -> float | None:
        p = self.core.runner.engine.passage
        code = p.code if p is not None else None
        if code is None or code.source != PROBE_SOURCE:
            return None
        return (self.core.clock.monotonic_ns() - code.mono_ns) / 1e6

    def _on_decision(self, message: dict[str, Any]) -> None:
        ms = self._since_code_ms()
        if ms is None or message.get("kind") != "passage":
            return
        if message.get("decision") != "pass" or not message.get("committed"):
            self.denied += 1
        self.commit_ms.append(ms)

    def _on_gate(self) -> None:
        ms = self._since_code_ms()
        if ms is not None:
            self.gate_ms.append(ms)

    def reset(self) -> None:
        self.commit_ms.clear()
        self.gate_ms.clear()
        self.denied = 0

    def report(self) -> dict[str, Any]:
        gate = list(self.gate_ms)
        commit = list(self.commit_ms)
        return {
            "passages": len(gate),
            "p50_ms": _pct(gate, 50),
            "p99_ms": _pct(gate, 99),
            "max_ms": max(gate, default=None),
            "commit_p50_ms": _pct(commit, 50),
            "commit_p99_ms": _pct(commit, 99),
            "denied": self.denied,
            "error": self.error,
        }

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(2)

    def _run(self) -> None:
        try:
            self._passages()
        except Exception as exc:  # noqa: BLE001 - reported to the bench, which stops
            self.error = f"{type(exc).__name__}: {exc}"

    def _passages(self) -> None:
        from kiosk.passes import issue_pass

        engine = self.core.runner.engine
        n = 0
        next_at = time.monotonic()
        while not self._stop.is_set():
            n += 1
            text, _ = issue_pass(
                self.key, f"B{n % 9}-{n % 10000:04d}", f"Res {n}", days=1,
                now=self.core.clock.now(),
            )  # fmt: skip
            # Wait for a free gate: the previous person through, the pulse over, the relay
            # locked again (a code shown earlier would wait, and time the wait, not the loop).
            while not self._stop.is_set() and (
                time.monotonic() < next_at
                or engine.state not in ("idle", "decided")
                or engine.gate_is_open
            ):
                self._stop.wait(0.01)
            if self._stop.is_set():
                return
            self.core.runner.submit_code(text, source=PROBE_SOURCE)
            self.submitted += 1
            next_at = time.monotonic() + PROBE_PERIOD_S


def _served_core(db_path: Path, token_file: str) -> tuple[Core, Ed25519PrivateKey]:
    """The kiosk's core from the composition root, a bench issuer key it trusts, and a
    ``logs:read`` token written to ``token_file``."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from checkpoint.app import build_core
    from drivers.clocksync import system_clock
    from kiosk import stats
    from kiosk.passes import public_key_pem

    config = bench_config(db_path)
    key = Ed25519PrivateKey.generate()
    trust = db_path.parent / "trust"
    trust.mkdir(exist_ok=True)
    (trust / "bench.pub").write_bytes(public_key_pem(key.public_key()))
    core = build_core(config, db_path.parent, system_clock(assume_synced=True))
    core.store.submit(lambda db: stats.MIGRATIONS.apply(db))
    _, plain = core.tokens.create(["logs:read"], name="bench")
    Path(token_file).write_text(plain, encoding="utf-8")
    return core, key


def _bench_app(core: Core, probe: PassageProbe, lag: LoopLagMonitor) -> FastAPI:
    """``ui.app.create_app(core)`` run as the daemon runs it, with the probe watching the bus,
    screen traffic for the SSE clients, and two bench-only routes reporting the loop."""
    from checkpoint import cpu
    from checkpoint.app import settle_for_service
    from checkpoint.export_helper import HelperProcessPages
    from ui.app import create_app

    async def publisher() -> None:
        # Screen traffic for the SSE clients: a health message every 50 ms.
        n = 0
        while True:
            await asyncio.sleep(0.05)
            n += 1
            core.bus.publish({"type": "health", "n": n, **core.health()})

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await core.runner.start()
        settle_for_service(core)  # as ``checkpoint.app.Daemon.start`` does once the kiosk is up
        lag.ensure_started()
        loop = asyncio.get_running_loop()
        tasks = [loop.create_task(publisher()), loop.create_task(probe.watch())]
        probe.start()
        yield
        probe.stop()
        for task in tasks:
            task.cancel()
        await core.runner.stop()
        HelperProcessPages.shutdown()
        cpu.release()

    app = create_app(core)
    app.router.lifespan_context = lifespan

    @app.post("/_bench/reset")
    def reset() -> dict[str, Any]:
        lag.samples.clear()
        probe.reset()
        return {"ok": True}

    @app.get("/_bench/report")
    def report() -> dict[str, Any]:
        samples = list(lag.samples)
        return {
            "passage": probe.report(),
            "sched_lag": {
                "samples": len(samples),
                "p50_ms": (_pct(samples, 50) or 0.0) * 1000,
                "p99_ms": (_pct(samples, 99) or 0.0) * 1000,
                "max_ms": max(samples, default=0.0) * 1000,
            },
        }

    return app


def serve(db_path: str, token_file: str) -> None:
    """Child process: the real kiosk core (``checkpoint.app.build_core``: engine runner on the
    default simulated devices, event log, screens, API) on a free loopback port, printed on
    stdout, plus the passage probe and bench-only routes that report the loop's latency."""
    import uvicorn

    from checkpoint.export_helper import HelperProcessPages
    from checkpoint.server import bind_socket
    from ui.api import LoopLagMonitor

    core, key = _served_core(Path(db_path), token_file)
    probe = PassageProbe(core, key)
    app = _bench_app(core, probe, LoopLagMonitor(keep=200_000))
    sock = bind_socket("127.0.0.1", 0)  # as the daemon listens (TCP_NODELAY on its answers)
    print(sock.getsockname()[1], flush=True)
    server = uvicorn.Server(
        uvicorn.Config(app, log_level="warning", access_log=False, timeout_graceful_shutdown=2)
    )
    try:
        server.run(sockets=[sock])
    finally:
        probe.stop()
        HelperProcessPages.shutdown()
        core.close()  # the relay first, the log last (a stalled card)


# --- the client (this process) --------------------------------------------------------------


class _SseClients(Background):
    """``n`` SSE clients reading ``/kiosk/events`` on one asyncio thread until stopped."""

    join_s = 10.0

    def __init__(self, base: str, n: int) -> None:
        super().__init__()
        self.base, self.n = base, n
        self.connected = 0
        self.messages = 0
        self._ready = threading.Event()

    def _run(self) -> None:
        asyncio.run(self._main())

    async def _one(self, client: httpx.AsyncClient) -> None:
        async with client.stream("GET", self.base + "/kiosk/events") as response:
            self.connected += 1
            if self.connected == self.n:
                self._ready.set()
            async for line in response.aiter_lines():
                if line.startswith("data:"):
                    self.messages += 1
                if self._stop.is_set():
                    return

    async def _main(self) -> None:
        limits = httpx.Limits(max_connections=self.n + 5)
        async with httpx.AsyncClient(timeout=None, limits=limits) as client:
            tasks = [asyncio.create_task(self._one(client)) for _ in range(self.n)]
            await until_stopped(self._stop, tasks, 0.05)

    def __enter__(self) -> Self:
        super().__enter__()
        if not self._ready.wait(20):
            raise RuntimeError(f"only {self.connected} of {self.n} SSE clients connected")
        return self


def _office_dir(fallback: Path) -> tuple[Path, bool]:
    """Where the pulled copies go: a RAM file system when there is one, as if on the office's
    machine (the kiosk's disk then carries only the kiosk's own writes and fsyncs, as in
    service); else ``fallback``, beside the kiosk's database. Second: whether it is RAM."""
    shm = Path("/dev/shm")
    if shm.is_dir() and os.access(shm, os.W_OK):
        return Path(tempfile.mkdtemp(prefix="kiosk-bench-office-", dir=shm)), True
    return fallback, False


def _timed_pull(base: str, token: str, target: Path) -> tuple[int, float]:
    from office.pull import Puller

    start = time.perf_counter()
    with Puller(target, page_size=5000) as puller:
        result = puller.pull(base, token)
    seconds = time.perf_counter() - start
    for path in (target, target.with_name(target.name + "-wal"),
                 target.with_name(target.name + "-shm")):  # fmt: skip
        path.unlink(missing_ok=True)
    return result.inserted, seconds


def _wait_passages(
    http: httpx.Client, base: str, passages: int, timeout_s: float
) -> dict[str, Any]:
    """Poll the server until the probe has timed ``passages`` passages; the report."""
    deadline = time.monotonic() + timeout_s
    while True:
        report: dict[str, Any] = http.get(base + "/_bench/report").json()
        if report["passage"]["error"]:
            raise RuntimeError(f"bench probe failed: {report['passage']['error']}")
        if report["passage"]["passages"] >= passages or time.monotonic() > deadline:
            return report
        time.sleep(0.25)


@dataclasses.dataclass
class _Phases:
    """What the repeats measured: per repeat, the idle and loaded probe reports and pull rates."""

    idle: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    loaded: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    rates: list[float] = dataclasses.field(default_factory=list)
    loaded_rates: list[float] = dataclasses.field(default_factory=list)
    sse_messages: int = 0
    denied: int = 0


def _start_server(db: Path, token_file: Path) -> tuple[subprocess.Popen[str], str | None]:
    """The served kiosk in a child process; its base URL once it answers (None: it died)."""
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    proc = subprocess.Popen(
        [sys.executable, "-m", "checkpoint.bench.pull", "serve", str(db), str(token_file)],
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )
    assert proc.stdout is not None
    port = int(proc.stdout.readline().strip() or 0)
    if not port:
        proc.wait(10)
        return proc, None
    base = f"http://127.0.0.1:{port}"
    with httpx.Client(timeout=10) as http:
        for _ in range(200):
            try:
                http.get(base + "/_bench/report")
                break
            except httpx.TransportError:
                time.sleep(0.05)
    return proc, base


def _stop_server(proc: subprocess.Popen[str]) -> None:
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def _loaded_phase(
    http: httpx.Client, base: str, token: str, target: Path, passages: int, limit_s: float
) -> tuple[dict[str, Any], list[float], int]:
    """20 SSE clients streaming while whole pulls run back to back, until the probe has timed
    ``passages`` passages: the last report, the pulls' rates, the SSE messages read."""
    rates: list[float] = []
    with _SseClients(base, SSE_CLIENTS) as sse:
        http.post(base + "/_bench/reset")
        started = time.monotonic()
        n = 0
        while True:
            n += 1
            inserted, seconds = _timed_pull(base, token, target.with_name(f"{target.name}-{n}.db"))
            rates.append(inserted / seconds)
            report = http.get(base + "/_bench/report").json()
            if report["passage"]["passages"] >= passages or time.monotonic() - started > limit_s:
                return report, rates, sse.messages


def _repeat(
    phases: _Phases,
    http: httpx.Client,
    base: str,
    token: str,
    office: Path,
    i: int,
    sizes: tuple[int, int, float, CpuPlan],
) -> None:
    """Idle, plain and loaded back to back, so machine noise hits all three alike."""
    from checkpoint import cpu

    events, passages, limit_s, placement = sizes
    # Idle: no pull, no SSE client; only the probe's passages.
    http.post(base + "/_bench/reset")
    phases.idle.append(_wait_passages(http, base, passages, limit_s))
    inserted, seconds = _timed_pull(base, token, office / f"plain-{i}.db")
    if inserted < events:  # the probe's passages add a few more
        raise RuntimeError(f"pulled {inserted} of {events} events")
    phases.rates.append(inserted / seconds)
    # Loaded. The puller and the SSE clients stand in for the office's machine and the
    # screens' browsers, elsewhere in service: here they keep off the CPU the served kiosk
    # keeps for itself (engine.cpu = auto), as its export helper does.
    cpu.pin_process(cpu.CpuPlan(placement.background, None, "bench client"))
    try:
        report, rates, messages = _loaded_phase(
            http, base, token, office / f"loaded-{i}", passages, limit_s
        )
    finally:
        cpu.release()
    phases.loaded.append(report)
    phases.loaded_rates.extend(rates)
    phases.sse_messages += messages
    for phase in (phases.idle[-1], report):
        phases.denied += phase["passage"]["denied"]
        if phase["passage"]["passages"] < passages:
            raise RuntimeError(
                f"probe timed {phase['passage']['passages']} of {passages}"
                " passages (is the engine deciding?)"
            )


def run(quick: bool) -> dict[str, Any]:
    from checkpoint import cpu

    events, repeats, passages = QUICK_SIZES if quick else FULL_SIZES
    phases = _Phases()
    with tempfile.TemporaryDirectory(prefix="kiosk-bench-pull-") as tmp:
        tmp_path = Path(tmp)
        db = tmp_path / "kiosk.db"
        prefill(db, events)
        token_file = tmp_path / "token"
        placement = cpu.plan(bench_config(db).engine.cpu)  # what the served kiosk will do
        office, office_in_ram = _office_dir(tmp_path)
        proc, base = _start_server(db, token_file)
        try:
            if base is None:
                reason = f"bench server did not start (exit {proc.returncode})"
                return {"available": False, "reason": reason}
            token = token_file.read_text(encoding="utf-8").strip()
            limit_s = passages * 0.5 + 60  # a stuck probe ends the phase, not the bench
            sizes = (events, passages, limit_s, placement)
            with httpx.Client(timeout=10) as http:
                for i in range(repeats):
                    _repeat(phases, http, base, token, office, i, sizes)
        finally:
            cpu.release()
            if office != tmp_path:
                shutil.rmtree(office, ignore_errors=True)
            _stop_server(proc)
    return _summary(phases, events, repeats, office_in_ram, placement)


def _summary(
    phases: _Phases, events: int, repeats: int, office_in_ram: bool, placement: CpuPlan
) -> dict[str, Any]:
    idle, loaded = phases.idle, phases.loaded

    def med(reports: list[dict[str, Any]], part: str, key: str) -> float:
        value: float = statistics.median(r[part][key] for r in reports)
        return round(value, 3)

    idle_p99 = med(idle, "passage", "p99_ms")
    loaded_p99 = med(loaded, "passage", "p99_ms")
    lag_idle = med(idle, "sched_lag", "p99_ms")
    lag_loaded = med(loaded, "sched_lag", "p99_ms")
    return {
        "events": events,
        "events_per_s": round(statistics.median(phases.rates)),
        "loop_p99_idle_ms": idle_p99,
        "loop_p99_loaded_ms": loaded_p99,
        "loop_metric": "pass_only_scanner_code_to_committed_gate_command",
        "loaded_over_idle": round(loaded_p99 / idle_p99, 2) if idle_p99 > 0 else None,
        "loop_p50_idle_ms": med(idle, "passage", "p50_ms"),
        "loop_p50_loaded_ms": med(loaded, "passage", "p50_ms"),
        "loop_max_loaded_ms": med(loaded, "passage", "max_ms"),
        "commit_p99_idle_ms": med(idle, "passage", "commit_p99_ms"),
        "commit_p99_loaded_ms": med(loaded, "passage", "commit_p99_ms"),
        "passages_per_phase": min(r["passage"]["passages"] for r in idle + loaded),
        "probe_denied": phases.denied,
        "sched_lag_p99_idle_ms": lag_idle,
        "sched_lag_p99_loaded_ms": lag_loaded,
        "sched_lag_loaded_over_idle": round(lag_loaded / lag_idle, 2) if lag_idle > 0 else None,
        "loaded_events_per_s": round(statistics.median(phases.loaded_rates)),
        "loaded_pulls": len(phases.loaded_rates),
        "pull_target": "tmpfs" if office_in_ram else "same_disk",
        "kiosk_cpu": sorted(placement.gate) if placement.gate else None,
        "client_cpus": sorted(placement.background) if placement.background else None,
        "sse_clients": SSE_CLIENTS,
        "sse_messages": phases.sse_messages,
        "repeats": repeats,
    }


if __name__ == "__main__":  # pragma: no cover - the bench's child process
    if len(sys.argv) == 4 and sys.argv[1] == "serve":
        serve(sys.argv[2], sys.argv[3])
    else:
        print("usage: python -m checkpoint.bench.pull serve DB TOKEN_FILE", file=sys.stderr)
        sys.exit(2)
