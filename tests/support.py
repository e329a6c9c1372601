"""Helpers shared by test modules (imported as ``from support import ...``)."""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def xlsx_bytes(rows) -> bytes:
    """An .xlsx (one default sheet, as Excel or WPS saves it) holding ``rows``."""
    import io

    import openpyxl

    book = openpyxl.Workbook()
    for row in rows:
        book.active.append(list(row))
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def unit_seconds(key: str) -> float:
    """systemd/kiosk.service's ``key`` (``TimeoutStopSec``, ``TimeoutStartSec``), in seconds
    (``15``, ``15s``, ``1min 5s``): the time systemd gives the daemon for that step."""
    text = (ROOT / "systemd" / "kiosk.service").read_text(encoding="utf-8")
    [value] = [ln.partition("=")[2] for ln in text.splitlines() if ln.startswith(f"{key}=")]
    units = {"": 1, "s": 1, "sec": 1, "min": 60, "m": 60}
    parts = re.findall(r"(\d+(?:\.\d+)?)\s*([a-z]*)", value.strip())
    assert parts and "".join(n + u for n, u in parts) == value.replace(" ", ""), value
    return sum(float(n) * units[u] for n, u in parts)


def need(available: bool, what: str) -> None:
    """What a test needs from the machine (a tool, root, a mount): skipped on a developer
    machine without it, a failure in CI, where ``.ci/run`` runs as root and installs every
    tool the suites use, so a silently skipped suite would hide a gap."""
    if available:
        return
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(
            f"{what} is required in CI (.ci/run runs as root and installs every tool)",
            pytrace=False,
        )
    pytest.skip(f"needs {what}")


def reporting_log(path, clock, kiosk_id: str = "gate-1", *, ledgers: bool = False):
    """An open event log with the API tokens and daily aggregates tables, as the daemon
    opens it (NORMAL sync: tests need no fsync); ``ledgers``: the lists' and the ledgers'
    tables too."""
    from kiosk import lists, stats, tokens
    from kiosk.ledgers import MIGRATIONS
    from kiosk.store import EventLog

    migrations = [tokens.MIGRATIONS, stats.MIGRATIONS]
    if ledgers:
        migrations += [lists.MIGRATIONS, *MIGRATIONS]
    return EventLog(path, kiosk_id, clock, "NORMAL", migrations=migrations).open()


def kiosk_api(
    path, kiosk_id: str, clock, *, ledgers: bool = False, scopes=("logs:read",), config=None
):
    """A kiosk's real event log and real HTTP API (``ui.api.router``), in process, with a
    token of ``scopes``: the far end of a pull. ``.store``, ``.app``, ``.test_client``,
    ``.token``; close with ``.store.close()``. ``ledgers``: with its ledgers
    (``.ledgers``, ``kiosk.ledgers.Ledgers``) and list store (``.list_store``). ``config``:
    more sections of its config (``policy``, ``compound``...)."""
    from types import SimpleNamespace

    from fastapi import FastAPI
    from fastapi.testclient import TestClient

    from kiosk.config import parse_config
    from kiosk.export import InProcessPages
    from kiosk.lists import Freshness
    from kiosk.tokens import TokenStore
    from ui import api

    config = parse_config(
        {"site": {"kiosk_id": kiosk_id}, "web": {"api_rate_per_min": 100000}, **(config or {})}
    )
    store = reporting_log(path, clock, kiosk_id, ledgers=ledgers)
    core = SimpleNamespace(
        config=config,
        clock=clock,
        store=store,
        tokens=TokenStore(store, b"pepper", clock),
        runner=SimpleNamespace(metrics=dict),
        lists=SimpleNamespace(current=SimpleNamespace(freshness=Freshness())),
        pages=InProcessPages(),
        health=lambda: {"deciding": True},
    )
    app = FastAPI()
    api.install(app, core)
    core.app = app
    core.test_client = TestClient(app, base_url=f"http://{kiosk_id}")
    _, core.token = core.tokens.create(list(scopes))
    if ledgers:
        from kiosk.ledgers import Ledgers
        from kiosk.lists import ListStore

        days = config.store.retention_days
        core.ledgers = Ledgers.build(store, clock, config.site.timezone, 37.3, retention_days=days)
        core.list_store = ListStore(store, clock)
        core.list_store.load()
    return core


def disk_full():
    """SQLite's own ``SQLITE_FULL`` (from a database capped at two pages), as the event log's
    writer gets it from a full SD card."""
    import sqlite3

    scratch = sqlite3.connect(":memory:")
    try:
        scratch.execute("PRAGMA max_page_count = 2")
        scratch.execute("CREATE TABLE t (x)")
        scratch.execute("INSERT INTO t VALUES (randomblob(100000))")
    except sqlite3.OperationalError as exc:
        assert exc.sqlite_errorname == "SQLITE_FULL"
        return exc
    finally:
        scratch.close()
    raise AssertionError("SQLite did not fill up")


@contextlib.contextmanager
def storage_failing(log, where: str):
    """The event log ``log``'s storage is full at ``where``: ``audit`` — every audit row's
    insert (the disk fills between a change and its row); ``commit`` — the end of every write
    transaction, after everything in it was written."""
    real_insert, real_transaction = log._insert_audit, log._transaction

    def insert_audit(*args, **kwargs):
        raise disk_full()

    def transaction(fn, **kwargs):
        def then_fail(db):
            fn(db)
            raise disk_full()

        return real_transaction(then_fail, **kwargs)

    if where == "audit":
        log._insert_audit = insert_audit
    else:
        log._transaction = transaction
    try:
        yield
    finally:
        log._insert_audit, log._transaction = real_insert, real_transaction


def database_rows(log) -> dict[str, list[tuple]]:
    """Every row of every table of the event log ``log``'s database."""
    db = log.reader()
    return {
        name: sorted(map(tuple, db.execute(f'select * from "{name}"').fetchall()), key=repr)
        for name in db.table_names()
    }


@contextlib.contextmanager
def mounted(where, *mount_args: str, needs: tuple[str, ...] = ("mount",)):
    """``where`` with a real file system mounted on it (``mount ARGS where``), unmounted
    after: for the tests of a full, tiny or read-only card. Where it cannot be done (not
    root, no ``mount``, a container that refuses it), ``need`` says why."""
    need(os.geteuid() == 0, "root for a real file system")
    for tool in needs:
        need(shutil.which(tool) is not None, tool)
    where.mkdir(exist_ok=True)
    done = subprocess.run(["mount", *mount_args, str(where)], capture_output=True, check=False)
    need(done.returncode == 0, f"a mount that works (mount: {done.stderr.decode().strip()})")
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], check=False, capture_output=True)


def tiny_tmpfs(path, size: str = "1m"):
    """A real tmpfs of ``size`` on ``path`` (a card that fills up): ``mounted``."""
    return mounted(path, "-t", "tmpfs", "-o", f"size={size}", "tmpfs")


def exits_since(history, household: str, since) -> int:
    """Exits of ``household`` strictly after ``since`` in a ``kiosk.history.PassageHistory``:
    what the tests ask of it; the quota asks ``exits_in_period``."""
    return history._exits_between(household, since, None)


def wait_for_frame(reader, timeout_s: float) -> bool:
    """True when a ``drivers.camera.CameraReader``'s grab thread posted a frame (or an error)
    since the last call: how a test waits for the grab thread."""
    posted = reader._frame_evt.wait(timeout_s)
    reader._frame_evt.clear()
    return posted


def batch_args(key, rows, out, *more: str) -> list[str]:
    """``kiosk pass batch`` of ``rows`` (a CSV) signed by ``key`` into ``out``, in the tests'
    site zone (Asia/Shanghai), and ``more``."""
    return ["pass", "batch", "--tz=Asia/Shanghai", "--key", str(key), "--csv", str(rows),
            "--out", str(out), *more]  # fmt: skip


def two_writers_at_once(logs, write, wait_s: float = 5.0) -> list:
    """``write(log)`` on each of ``logs`` (the event log opened twice on one file: the daemon
    and a ``kiosk`` run by an admin), each in its own thread, held so that neither begins its
    write transaction (``EventLog.submit_audited``) before both have got there: whatever
    either looked at before writing, the other had not written yet. Returns each one's
    result or the exception it raised, in the order of ``logs``."""
    import threading
    from concurrent.futures import ThreadPoolExecutor

    both = threading.Barrier(len(logs), timeout=wait_s)
    patch = pytest.MonkeyPatch()
    for log in logs:
        submit = log.submit_audited

        def held(*args, _submit=submit, **kwargs):
            both.wait()
            return _submit(*args, **kwargs)

        patch.setattr(log, "submit_audited", held)

    def outcome(log):
        try:
            return write(log)
        except Exception as exc:  # noqa: BLE001 - what each writer was told
            return exc

    try:
        with ThreadPoolExecutor(len(logs)) as pool:
            return list(pool.map(outcome, logs))
    finally:
        patch.undo()
