"""Helpers shared by test modules (imported as ``from support import ...``)."""

from __future__ import annotations

import os

import pytest


def need(available: bool, what: str) -> None:
    """A tool a test needs: skipped on a developer machine without it, a failure in CI,
    where ``.ci/run`` installs everything and a silently skipped suite would hide a gap."""
    if available:
        return
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"{what} is required in CI (.ci/run installs it)", pytrace=False)
    pytest.skip(f"{what} is not installed")


def reporting_log(path, clock, kiosk_id: str = "gate-1"):
    """An open event log with the API tokens and daily aggregates tables, as the daemon
    opens it (NORMAL sync: tests need no fsync)."""
    from kiosk import stats, tokens
    from kiosk.store import EventLog

    migrations = [tokens.MIGRATIONS, stats.MIGRATIONS]
    return EventLog(path, kiosk_id, clock, "NORMAL", migrations=migrations).open()


def kiosk_api(path, kiosk_id: str, clock):
    """A kiosk's real event log and real HTTP API (``ui.api.router``), in process, with a
    ``logs:read`` token: the far end of a pull. ``.store``, ``.app``, ``.test_client``,
    ``.token``; close with ``.store.close()``."""
    from types import SimpleNamespace

    from fastapi import FastAPI
    from fastapi.testclient import TestClient

    from kiosk.config import parse_config
    from kiosk.export import InProcessPages
    from kiosk.lists import Freshness
    from kiosk.tokens import TokenStore
    from ui import api

    config = parse_config({"site": {"kiosk_id": kiosk_id}, "web": {"api_rate_per_min": 100000}})
    store = reporting_log(path, clock, kiosk_id)
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
    _, core.token = core.tokens.create(["logs:read"])
    return core
