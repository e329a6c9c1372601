"""Schemathesis over the guard console's JSON routes with a signed-in guard: whatever the
parameters, every answer is in the schema and none is a 5xx. (The SSE stream ``/guard/events``
never ends, so its parameters are checked in ``test_guard_rooms.py`` instead.)"""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from guard_support import BASE, add_event, close_core, make_app, make_core
from hypothesis import HealthCheck, given, settings

from ui.auth import COOKIE

pytestmark = pytest.mark.slow

STREAMS = {"/guard/events"}


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    from kiosk.clock import FakeClock

    monkeypatch = pytest.MonkeyPatch()
    data_dir = tmp_path_factory.mktemp("guard-schema") / "data"
    data_dir.mkdir()
    core = make_core(data_dir, FakeClock(), monkeypatch)
    for i in range(12):
        add_event(
            core,
            decision="deny" if i % 4 == 0 else "pass",
            reasons=("fever",) if i % 4 == 0 else ("ok",),
            temp_c=36.5 + i / 10,
            holder="Wang Fang",
            person={"phone": "13800138000"},
        )
    app = make_app(core)
    cookie, _ = app.state.guard.auth.sessions.issue(core.accounts.get("alice"))
    yield app, f"{COOKIE}={cookie}"
    close_core(core)
    monkeypatch.undo()


@pytest.fixture(scope="module")
def operations(world):
    app, _cookie = world
    import schemathesis  # here, not at the top: the unit suite collects this module, runs none

    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    ops = [r.ok() for r in schema.get_all_operations()]
    guard_ops = [op for op in ops if op.path.startswith("/guard") and op.path not in STREAMS]
    assert {op.path for op in guard_ops} == {
        "/guard/api/feed",
        "/guard/api/health",
        "/guard/api/households",
    }
    return guard_ops


def test_guard_json_routes_conform_to_their_schema_and_never_answer_5xx(world, operations):
    _app, cookie = world
    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
        def check(case):
            response = case.call_and_validate(headers={"Cookie": cookie})
            assert response.status_code < 500

        check()


def test_the_stream_refuses_bad_parameters_before_it_starts(world):
    app, cookie = world
    with TestClient(app, base_url=BASE) as client:
        for after in ("abc", "-1", "1e3", "99999999999999999999999"):
            response = client.get(f"/guard/events?after={after}", headers={"Cookie": cookie})
            assert response.status_code == 422, after
