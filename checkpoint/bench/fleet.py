"""``fleet`` bench: central ingest from 20 kiosks into PostgreSQL, and decision → row lag.

Run it alone with ``python -m checkpoint.bench.fleet [--quick] [--json]`` (or as the ``fleet``
section of ``kiosk bench`` once listed in ``checkpoint.bench.SECTIONS``). It needs PostgreSQL:
``KIOSK_BENCH_PG_DSN`` (a role that may ``CREATE DATABASE``), else a throwaway cluster is
started (``office.pg.TempCluster``, durable: fsync on, as in production).

Set-up: 20 kiosks, five to a *host* process (``python -m checkpoint.bench.fleet host SPEC``), each a
real ``EventLog`` behind the real API router (``ui.api.router``) on its own loopback port. The
same host runs the fleet end-to-end test.

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
from pathlib import Path
from typing import Any

KIOSKS = 20
PER_HOST = 5
#: (backlog per kiosk, ingest repeats, live seconds)
FULL = (2500, 3, 20.0)
QUICK = (500, 1, 8.0)
RATE_PER_KIOSK_PER_S = 10.0
POLL_INTERVAL_S = 0.5
PEPPER = b"fleet-bench-pepper"


# --------------------------------------------------------------------------- host process


def host_main(spec_path: str) -> None:
    """A process hosting several kiosks: event log, API on a loopback port, optional list
    sync, decisions appended through ``EventLog.append``. Writes ``ready_file`` once every
    server listens; stops on SIGTERM. Spec (JSON): ``kiosks`` [{kiosk_id, port, data}],
    ``backlog``, ``rate_per_s``, ``go_file`` (produce once it exists; none: at once),
    ``stop_file`` (stop producing), ``ready_file``, ``trust_dir`` + ``lists_url`` (optional)."""
    import asyncio

    import uvicorn
    from fastapi import FastAPI

    from kiosk import lists, stats, tokens
    from kiosk.clock import SystemClock
    from kiosk.config import parse_config
    from kiosk.export import InProcessPages
    from kiosk.lists import ListStore
    from kiosk.passes import TrustList
    from kiosk.store import EventDraft, EventLog, StoreFault
    from kiosk.tokens import TokenStore
    from office.listsync import ListSync
    from ui import api

    spec = json.loads(Path(spec_path).read_text())
    stop_file = Path(spec["stop_file"])
    go_file = Path(spec["go_file"]) if spec.get("go_file") else None
    rate = float(spec.get("rate_per_s", RATE_PER_KIOSK_PER_S))
    clock = SystemClock(assume_synced=True)
    rng = random.Random()

    class Server(uvicorn.Server):
        @contextlib.contextmanager
        def capture_signals(self) -> Any:  # the host owns SIGTERM
            yield

    def draft(i: int) -> EventDraft:
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

    class _Core:  # what ui.api.router needs of checkpoint.app.Core
        runner = None
        pages = InProcessPages()

        def __init__(self, config: Any, store: EventLog, token_store: TokenStore) -> None:
            self.config, self.clock, self.store, self.tokens = config, clock, store, token_store

        def health(self) -> dict[str, Any]:
            return {"deciding": True}

    async def run() -> None:
        servers, syncs, stores, producers = [], [], [], []
        for k in spec["kiosks"]:
            data = Path(k["data"])
            data.mkdir(parents=True, exist_ok=True)
            store = EventLog(
                data / "kiosk.db",
                k["kiosk_id"],
                clock,
                "NORMAL",
                migrations=[tokens.MIGRATIONS, stats.MIGRATIONS, lists.MIGRATIONS],
            )
            store.open()
            stores.append(store)
            for i in range(max(0, int(spec.get("backlog", 0)) - store.last_seq)):
                store.append(draft(i))
            token_store = TokenStore(store, PEPPER, clock)
            token_file = data / "token"
            if not token_file.exists():
                _, secret = token_store.create(["logs:read"], name="collector")
                tmp = data / "token.tmp"
                tmp.write_text(secret)
                os.replace(tmp, token_file)
            config = parse_config(
                {"site": {"kiosk_id": k["kiosk_id"]}, "web": {"api_rate_per_min": 100000}}
            )
            app = FastAPI()
            app.include_router(api.router(_Core(config, store, token_store)))
            servers.append(
                Server(
                    uvicorn.Config(
                        app, host="127.0.0.1", port=k["port"], log_config=None,
                        access_log=False, lifespan="off",
                    )
                )
            )  # fmt: skip
            if spec.get("lists_url"):
                list_store = ListStore(store, clock)
                list_store.load()
                syncs.append(
                    ListSync(
                        list_store, TrustList.from_dir(spec["trust_dir"]), spec["lists_url"],
                        clock, interval_s=0.5, timeout_s=5,
                    )
                )  # fmt: skip

            async def produce(store: EventLog = store) -> None:
                while go_file is not None and not go_file.exists():
                    await asyncio.sleep(0.05)
                i = 0
                while not stop_file.exists():
                    await asyncio.sleep(rng.uniform(0, 2 / rate))
                    i += 1
                    with contextlib.suppress(StoreFault):
                        await asyncio.to_thread(store.append, draft(i))

            producers.append(produce)
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
        work = [asyncio.create_task(p()) for p in producers]
        await stopping.wait()
        for t in work:
            t.cancel()
        for s in servers:
            s.should_exit = True
        await asyncio.gather(*tasks, return_exceptions=True)
        for sync in syncs:
            sync.stop()
        for store in stores:
            store.close()

    asyncio.run(run())


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
        self.procs: list[subprocess.Popen | None] = []
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

    def collector_config(self, **extra: Any) -> Any:
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
def _server() -> Any:
    from office.pg import TempCluster

    dsn = os.environ.get("KIOSK_BENCH_PG_DSN")
    if dsn:
        yield None, dsn
        return
    with TempCluster(durable=True) as cluster:
        yield cluster, None


def _fresh_db(cluster: Any, dsn: str | None, name: str) -> str:
    if cluster is not None:
        return cluster.create_database(name)
    import psycopg

    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
        conn.execute(f'CREATE DATABASE "{name}"')
    info = psycopg.conninfo.conninfo_to_dict(dsn)
    info["dbname"] = name
    return psycopg.conninfo.make_conninfo(**info)


def _count(dsn: str) -> int:
    import psycopg

    with psycopg.connect(dsn) as conn:
        return int(conn.execute("SELECT count(*) FROM fleet_events").fetchone()[0])


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
