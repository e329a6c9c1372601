"""``fleet`` bench: central ingest from 20 kiosks into PostgreSQL, and decision → row lag.

Run it alone with ``python -m checkpoint.bench.fleet [--quick] [--json]`` (or as the ``fleet``
section of ``kiosk bench`` once listed in ``checkpoint.bench.SECTIONS``). It needs PostgreSQL:
``KIOSK_BENCH_PG_DSN`` (a role that may ``CREATE DATABASE``), else a throwaway cluster is
started (``office.pg.TempCluster``, durable: fsync on, as in production).

Set-up: 20 kiosks, five to a *host* process (``python -m checkpoint.bench.fleet host SPEC``),
each a core built by the composition root (``checkpoint.app.build_core``; the engine is not
started: twenty engines with fake cameras would not fit two cores) behind the web app
(``ui.app.create_app``) on its own loopback port. The same host runs the fleet end-to-end test.

* ``ingest``: every kiosk starts with a backlog written through ``EventLog.append``
  (2,500 events each, 500 with ``--quick``); one collector round (``Collector.run_once``, eight
  kiosks at a time, the real ``Puller`` into ``PgTarget``) copies all of it.
  ``events_per_s`` = events / wall seconds of that round (median over repeats, each into a
  fresh database).
* ``lag``: then the kiosks decide live (``rate_per_kiosk_per_s`` each, ~200/s in all) for
  ``seconds`` while the collector service runs with ``poll_interval_s``; for every event of
  that window, ``pulled_at - ts`` is how long a decision at a gate took to become a row in
  PostgreSQL (both stamps from this machine's clock). ``p50_ms``/``p95_ms``/``max_ms``.
  The poll interval dominates it, by design: lower it for fresher data at more requests.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from kiosk.clock import Clock
    from kiosk.config.fleet import CollectorConfig
    from kiosk.core import Core
    from kiosk.store import EventDraft
    from office.pg import TempCluster

KIOSKS = 20
PER_HOST = 5
#: (backlog per kiosk, ingest repeats, live seconds)
FULL = (2500, 3, 20.0)
QUICK = (500, 1, 8.0)
RATE_PER_KIOSK_PER_S = 10.0
POLL_INTERVAL_S = 0.5


# --------------------------------------------------------------------------- host process


def _decision_draft(i: int, rng: random.Random) -> EventDraft:
    """A made-up decision (one in nine a fever deny) with a random pass id."""
    from kiosk.store import EventDraft

    return EventDraft(
        direction="in" if i % 2 else "out",
        decision="pass" if i % 9 else "deny",
        reasons=("ok",) if i % 9 else ("fever",),
        temp_c=36.5 if i % 9 else 38.3,
        latency_ms=120.0,
        pass_id=f"{rng.getrandbits(48):012x}",
        household="3-201",
        holder="Resident",
    )


def host_core(
    kiosk: dict[str, Any], spec: dict[str, Any], clock: Clock, rng: random.Random
) -> Core:
    """One hosted kiosk's core, from the composition root (``checkpoint.app.build_core``; the
    engine is not started), with its ``backlog`` of decisions and a collector token in
    ``DATA/token``. The spec's ``trust_dir`` is the kiosk's trust folder (the office's key
    signs the list bundles)."""
    from checkpoint.app import build_core
    from kiosk.config import parse_config

    data = Path(kiosk["data"])
    raw: dict[str, Any] = {
        "site": {"kiosk_id": kiosk["kiosk_id"]},
        "web": {"api_rate_per_min": 100000},
        "store": {"synchronous": "NORMAL"},
    }
    if spec.get("trust_dir"):
        raw["policy"] = {"trust_dir": spec["trust_dir"]}
    core = build_core(parse_config(raw), data, clock)
    for i in range(max(0, int(spec.get("backlog", 0)) - core.store.last_seq)):
        core.store.append(_decision_draft(i, rng))
    token_file = data / "token"
    if not token_file.exists():
        _, secret = core.tokens.create(["logs:read"], name="collector")
        tmp = data / "token.tmp"
        tmp.write_text(secret)
        os.replace(tmp, token_file)
    return core


class _HostServer:
    """uvicorn on a loopback port serving ``ui.app.create_app(core)``; the host owns SIGTERM."""

    def __init__(self, core: Core, port: int) -> None:
        import uvicorn

        from ui.app import create_app

        class Server(uvicorn.Server):
            @contextlib.contextmanager
            def capture_signals(self) -> Iterator[None]:
                yield

        config = uvicorn.Config(
            create_app(core), host="127.0.0.1", port=port, log_config=None,
            access_log=False, lifespan="off",
        )  # fmt: skip
        self.server = Server(config)


async def _produce(core: Core, spec: dict[str, Any], rng: random.Random) -> None:
    """Decisions at random moments (``rate_per_s`` on average) once ``go_file`` exists (none:
    at once), until ``stop_file`` does."""
    import asyncio

    from kiosk.store import StoreFault

    go_file = Path(spec["go_file"]) if spec.get("go_file") else None
    stop_file = Path(spec["stop_file"])
    rate = float(spec.get("rate_per_s", RATE_PER_KIOSK_PER_S))
    while go_file is not None and not go_file.exists():
        await asyncio.sleep(0.05)
    i = 0
    while not stop_file.exists():
        await asyncio.sleep(rng.uniform(0, 2 / rate))
        i += 1
        with contextlib.suppress(StoreFault):
            await asyncio.to_thread(core.store.append, _decision_draft(i, rng))


async def _host(spec: dict[str, Any]) -> None:
    import asyncio

    from drivers.clocksync import system_clock
    from office.listsync import ListSync

    clock = system_clock(assume_synced=True)
    rng = random.Random()
    cores = [host_core(k, spec, clock, rng) for k in spec["kiosks"]]
    servers = [_HostServer(c, k["port"]).server for c, k in zip(cores, spec["kiosks"], strict=True)]
    syncs = []
    if spec.get("lists_url"):
        syncs = [
            ListSync(core.lists, core.trust, spec["lists_url"], clock, interval_s=0.5, timeout_s=5)
            for core in cores
        ]
    tasks = [asyncio.create_task(s.serve()) for s in servers]
    while not all(s.started for s in servers):
        if any(t.done() for t in tasks):
            raise SystemExit("a kiosk server did not start")
        await asyncio.sleep(0.02)
    for sync in syncs:
        sync.start()
    Path(spec["ready_file"]).write_text("ready")
    stopping = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stopping.set)
    work = [asyncio.create_task(_produce(core, spec, rng)) for core in cores]
    await stopping.wait()
    for t in work:
        t.cancel()
    for s in servers:
        s.should_exit = True
    await asyncio.gather(*tasks, return_exceptions=True)
    for sync in syncs:
        sync.stop()
    for core in cores:
        core.close()


def host_main(spec_path: str) -> None:
    """A process hosting several kiosks: each a core from the composition root with its API on
    a loopback port, optional list sync, decisions appended through ``EventLog.append``.
    Writes ``ready_file`` once every server listens; stops on SIGTERM. Spec (JSON): ``kiosks``
    [{kiosk_id, port, data}], ``backlog``, ``rate_per_s``, ``go_file`` (produce once it
    exists; none: at once), ``stop_file`` (stop producing), ``ready_file``, ``trust_dir`` +
    ``lists_url`` (optional)."""
    import asyncio

    asyncio.run(_host(json.loads(Path(spec_path).read_text())))


# --------------------------------------------------------------------------- orchestration


def free_ports(n: int) -> list[int]:
    socks, ports = [], []
    for _ in range(n):
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        socks.append(s)
        ports.append(s.getsockname()[1])
    for s in socks:
        s.close()
    return ports


def host_env(root: Path | None = None) -> dict[str, str]:
    """The environment for a host process: this checkout first on the path."""
    root = root or Path(__file__).resolve().parents[2]
    env = dict(os.environ)
    env["PYTHONPATH"] = str(root) + os.pathsep + env.get("PYTHONPATH", "")
    return env


class Hosts:
    """``KIOSKS`` kiosks in ``KIOSKS // PER_HOST`` host processes under ``work``."""

    def __init__(self, work: Path, *, kiosks: int = KIOSKS, **spec: Any) -> None:
        self.work = work
        ports = free_ports(kiosks)
        self.kiosks = [
            {"kiosk_id": f"gate-{i:02d}", "port": ports[i], "data": str(work / f"gate-{i:02d}")}
            for i in range(kiosks)
        ]
        self.stop_file = work / "stop-producing"
        self.specs: list[Path] = []
        self.procs: list[subprocess.Popen[bytes] | None] = []
        self.log = open(work / "hosts.log", "ab")  # noqa: SIM115 - closed in stop()
        for h in range(0, kiosks, PER_HOST):
            path = work / f"host-{h // PER_HOST}.json"
            path.write_text(
                json.dumps(
                    {
                        "kiosks": self.kiosks[h : h + PER_HOST],
                        "stop_file": str(self.stop_file),
                        "ready_file": str(path.with_suffix(".ready")),
                        **spec,
                    }
                )
            )
            self.specs.append(path)
            self.procs.append(None)

    def start(self, h: int) -> None:
        self.specs[h].with_suffix(".ready").unlink(missing_ok=True)
        self.procs[h] = subprocess.Popen(
            [sys.executable, "-m", "checkpoint.bench.fleet", "host", str(self.specs[h])],
            env=host_env(),
            stdout=self.log,
            stderr=self.log,
        )

    def start_all(self) -> None:
        for h in range(len(self.specs)):
            self.start(h)

    def wait_ready(self, timeout_s: float = 120.0) -> None:
        deadline = time.monotonic() + timeout_s
        for h, spec in enumerate(self.specs):
            while not spec.with_suffix(".ready").exists():
                proc = self.procs[h]
                if proc is not None and proc.poll() is not None:
                    raise RuntimeError(f"host {h} exited with {proc.returncode}; see hosts.log")
                if time.monotonic() > deadline:
                    raise TimeoutError("kiosk hosts did not start in time")
                time.sleep(0.05)

    def kill(self, h: int) -> None:
        proc = self.procs[h]
        if proc is not None:
            proc.send_signal(signal.SIGKILL)
            proc.wait(10)

    def stop(self) -> None:
        procs = [p for p in self.procs if p is not None]
        for p in procs:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in procs:
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait(5)
        self.log.close()

    def collector_config(self, **extra: Any) -> CollectorConfig:
        from kiosk.config.fleet import CollectorConfig

        return CollectorConfig.model_validate(
            {
                "kiosks": [
                    {"url": f"http://127.0.0.1:{k['port']}", "token_file": f"{k['data']}/token"}
                    for k in self.kiosks
                ],
                **extra,
            }
        )


@contextlib.contextmanager
def _server() -> Iterator[tuple[TempCluster | None, str | None]]:
    from office.pg import TempCluster

    dsn = os.environ.get("KIOSK_BENCH_PG_DSN")
    if dsn:
        yield None, dsn
        return
    with TempCluster(durable=True) as cluster:
        yield cluster, None


def _fresh_db(cluster: TempCluster | None, dsn: str | None, name: str) -> str:
    if cluster is not None:
        return cluster.create_database(name)
    import psycopg

    if dsn is None:
        raise ValueError("either a throwaway cluster or KIOSK_BENCH_PG_DSN is needed")
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
        conn.execute(f'CREATE DATABASE "{name}"')
    info = psycopg.conninfo.conninfo_to_dict(dsn)
    info["dbname"] = name
    return psycopg.conninfo.make_conninfo("", **info)


def _count(dsn: str) -> int:
    import psycopg

    with psycopg.connect(dsn) as conn:
        row = conn.execute("SELECT count(*) FROM fleet_events").fetchone()
    return int(row[0]) if row else 0


def run(quick: bool = False) -> dict[str, Any]:
    from office.collector import Collector
    from office.pg import find_pg_bin

    if not os.environ.get("KIOSK_BENCH_PG_DSN") and find_pg_bin() is None:
        return {"available": False, "reason": "no PostgreSQL (set KIOSK_BENCH_PG_DSN)"}
    backlog, repeats, live_s = QUICK if quick else FULL
    with (
        tempfile.TemporaryDirectory(prefix="kiosk-fleet-bench-") as tmp,
        _server() as (
            cluster,
            base_dsn,
        ),
    ):
        work = Path(tmp)
        go_file = work / "go"
        hosts = Hosts(work, backlog=backlog, rate_per_s=RATE_PER_KIOSK_PER_S, go_file=str(go_file))
        try:
            started = time.perf_counter()
            hosts.start_all()
            hosts.wait_ready()
            setup_s = time.perf_counter() - started
            rates = []
            for r in range(repeats):
                dsn = _fresh_db(cluster, base_dsn, f"fleet_bench_ingest_{r}")
                collector = Collector(hosts.collector_config(max_concurrent=8), dsn)
                t0 = time.perf_counter()
                statuses = collector.run_once()
                elapsed = time.perf_counter() - t0
                collector.stop()
                failed = [s.last_error for s in statuses if s.state != "ok"]
                if failed:
                    raise RuntimeError(f"ingest failed: {failed[:3]}")
                events = _count(dsn)
                assert events == KIOSKS * backlog, (events, KIOSKS * backlog)
                rates.append(events / elapsed)

            # Live: decisions at ~RATE per kiosk while the collector service polls.
            dsn = _fresh_db(cluster, base_dsn, "fleet_bench_lag")
            collector = Collector(
                hosts.collector_config(max_concurrent=8, poll_interval_s=POLL_INTERVAL_S), dsn
            )
            collector.run_once()  # the backlog first: the window below is live load only
            collector.start()
            window_start = _now_iso()
            go_file.write_text("go")
            time.sleep(live_s)
            hosts.stop_file.write_text("stop")
            window_end = _now_iso()
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                if all((s.lag_events or 0) == 0 for s in collector.statuses()):
                    time.sleep(POLL_INTERVAL_S * 3)  # one more round for the last appends
                    break
                time.sleep(0.2)
            collector.stop()
            lags, live_events = _lags(dsn, window_start, window_end)
        finally:
            hosts.stop()
    lags.sort()
    return {
        "kiosks": KIOSKS,
        "setup_s": round(setup_s, 1),
        "ingest": {
            "events": KIOSKS * backlog,
            "repeats": repeats,
            "events_per_s": round(statistics.median(rates)),
            "max_concurrent": 8,
        },
        "lag": {
            "seconds": live_s,
            "events": live_events,
            "events_per_s": round(live_events / live_s),
            "poll_interval_s": POLL_INTERVAL_S,
            "p50_ms": round(_quantile(lags, 0.5), 1),
            "p95_ms": round(_quantile(lags, 0.95), 1),
            "max_ms": round(lags[-1], 1) if lags else None,
        },
        "durable": base_dsn is None,
    }


def _now_iso() -> str:
    from datetime import UTC, datetime

    from kiosk.store import format_ts

    return format_ts(datetime.now(UTC))


def _lags(dsn: str, start: str, end: str) -> tuple[list[float], int]:
    import psycopg

    with psycopg.connect(dsn) as conn:
        rows = conn.execute(
            "SELECT extract(epoch FROM pulled_at - (ts::timestamptz)) * 1000 FROM fleet_events"
            " WHERE ts >= %s AND ts < %s",
            [start, end],
        ).fetchall()
    return [float(r[0]) for r in rows], len(rows)


def _quantile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    return values[min(len(values) - 1, int(q * len(values)))]


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["host"] and len(argv) == 2:
        host_main(argv[1])
        return 0
    quick = "--quick" in argv
    result = run(quick)
    if "--json" in argv:
        print(json.dumps(result))
    else:
        print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
