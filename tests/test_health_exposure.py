"""What ``/api/v1/health`` tells a stranger on the compound's LAN (docs/api.md, *Health*).

A gate with another gate of the compound and the office's list sync, built by the
composition root, its real app asked from a LAN address, from the kiosk itself and with the
office's token. Nothing here sleeps: the clock is a FakeClock, the other gate and the office
are mock transports that refuse the connection.
"""

from __future__ import annotations

from datetime import UTC, datetime

import httpx
import pytest
from fastapi.testclient import TestClient
from hypothesis import given, settings
from hypothesis import strategies as st

from checkpoint.app import build_core
from checkpoint.peers import PeerSync
from kiosk.clock import FakeClock
from kiosk.config import parse_config
from kiosk.peers import PEER_SCOPE
from office.listsync import ListSync
from ui.app import create_app

LAN = ("192.168.1.77", 50000)
LOCAL = ("127.0.0.1", 50000)
BASE = "http://192.168.1.50:8000"
PEER_URL = "http://192.168.1.51:8000"
OFFICE_URL = "http://192.168.1.9:9000/lists/bundle"
#: What the kiosk has always promised anyone: devices, store, clock, version,
#: and whether the kiosk decides.
PROMISED = {"devices", "deciding", "clock", "version"}
#: What names the compound's other gates and the office, their errors and the tokens that may
#: silence an alarm: for the kiosk itself and the office's token only.
#: ``fault_raised_ns``: the engine's monotonic stamps, the Pi's uptime to a stranger.
DETAIL = {
    "peers",
    "peer_tokens",
    "lists_sync",
    "trust",
    "retention",
    "data_volume",
    "fault_raised_ns",
}


def refused(request: httpx.Request) -> httpx.Response:
    raise httpx.ConnectError("connection refused", request=request)


@pytest.fixture
def gate(tmp_path, monkeypatch, request):
    """The gate; ``web`` settings of its own through ``indirect`` parametrisation."""
    clock = FakeClock(start=datetime(2026, 3, 2, 2, 0, tzinfo=UTC))
    config = parse_config(
        {
            "site": {"kiosk_id": "gate-south"},
            "compound": {
                "peers": [{"url": PEER_URL, "kiosk_id": "gate-north", "token_env": "PEER_T"}]
            },
            "web": {"api_rate_per_min": 12, **getattr(request, "param", {})},
        }
    )
    core = build_core(config, tmp_path / "data", clock)
    monkeypatch.setenv("PEER_T", "kt_00000000_" + "x" * 43)
    transport = httpx.MockTransport(refused)
    peers = PeerSync(core, config.compound, client=httpx.Client(transport=transport))
    core.peers = peers
    lists = ListSync(
        core.lists, core.trust, OFFICE_URL, clock, client=httpx.Client(transport=transport)
    )
    core.lists_sync = lists
    peers.poll()
    lists.check()
    # An older peer token that may speak for any gate: health says so, and so what it allows.
    core.tokens.create([PEER_SCOPE], "old north token")
    yield core
    peers.stop(5)
    core.close()


@pytest.fixture
def app(gate):
    return create_app(gate)


def asked(app, client=LAN, **headers) -> httpx.Response:
    with TestClient(app, base_url=BASE, client=client) as http:
        return http.get("/api/v1/health", headers=headers)


def bearer(core, *scopes: str) -> dict[str, str]:
    _, token = core.tokens.create(list(scopes), "monitor")
    return {"Authorization": f"Bearer {token}"}


def test_a_stranger_on_the_lan_learns_the_gates_health_but_not_the_compounds_map(app):
    full = asked(app, LOCAL).json()
    # The report named each other gate (id, URL, last error), the office's URL and error,
    # and that an unbound peer token may silence a gate's outage alarm: a map of the
    # compound's machines and where to strike, for anyone on the LAN.
    answer = asked(app)
    assert answer.status_code in (200, 503)
    report = answer.json()
    assert set(report) >= PROMISED
    assert set(report) & DETAIL == set()
    text = answer.text
    for secret in ("gate-north", PEER_URL, "192.168.1.9", "ConnectError", "connection refused"):
        assert secret not in text
    assert report["withheld"] == sorted(DETAIL & set(full))
    assert set(report) - {"withheld"} == set(full) - DETAIL
    assert report["devices"] == full["devices"] and report["lists"] == full["lists"]


def test_a_stranger_does_not_read_the_pis_uptime_off_a_faults_raise(gate, app):
    """A camera in fault: the report carried the engine's monotonic stamp of its raise,
    for anyone on the LAN (the Pi's uptime). The console reads it on the kiosk itself."""
    gate.runner.engine.on_reader_fault("cam0", "camera lost")
    full = asked(app, LOCAL).json()
    stamp = full["fault_raised_ns"]["reader"]
    report = asked(app).json()
    assert "reader" in report["fault_since"]
    assert "fault_raised_ns" not in report and "fault_raised_ns" in report["withheld"]
    assert str(stamp) not in asked(app).text


def test_the_kiosk_itself_and_the_offices_token_get_every_detail(gate, app):
    local = asked(app, LOCAL).json()
    here = DETAIL - {"data_volume"}  # the daemon's alone (tests/test_data_volume.py)
    assert here <= set(local) and "withheld" not in local
    assert local["peers"][0]["url"] == PEER_URL and local["peer_tokens"]["unbound"] == 1
    for scope in ("stats:read", "logs:read"):
        office = asked(app, **bearer(gate, scope))
        assert office.status_code in (200, 503)
        assert here <= set(office.json()) and "withheld" not in office.json()
        assert office.json()["lists_sync"]["url"] == OFFICE_URL


@pytest.mark.slow
def test_a_wrong_token_or_a_peers_token_gets_no_detail_and_guessing_is_limited(gate, app):
    assert asked(app, Authorization="Bearer kt_00000000_" + "y" * 43).status_code == 401
    assert asked(app, **bearer(gate, PEER_SCOPE)).status_code == 403
    codes = [
        asked(app, Authorization=f"Bearer kt_{i:08x}_" + "z" * 43).status_code for i in range(20)
    ]
    assert codes[-1] == 429, codes
    # Asked without a token, the report is still there: a monitor's status check is not
    # counted against the guesses.
    assert asked(app).status_code in (200, 503)


@pytest.mark.slow
def test_no_authorization_header_of_the_lan_is_a_server_error_or_shows_the_detail(app):
    # Property-based, as the API's schemathesis tests: any bytes a header may hold.
    values = st.binary(max_size=120).filter(lambda b: not set(b) & set(b"\r\n\x00"))
    schemes = st.sampled_from([b"", b"Bearer ", b"bearer ", b"Basic ", b"Bearer kt_"])
    with TestClient(app, base_url=BASE, client=LAN, raise_server_exceptions=False) as http:

        @given(scheme=schemes, value=values)
        @settings(max_examples=60, deadline=None, database=None)
        def check(scheme: bytes, value: bytes) -> None:
            answer = http.get("/api/v1/health", headers=[(b"Authorization", scheme + value)])
            assert answer.status_code in (200, 401, 403, 429, 503), answer.text
            assert PEER_URL not in answer.text and "gate-north" not in answer.text

        check()


def test_what_the_daemon_adds_to_the_core_is_typed_not_a_bag_of_anything():
    """The office's list sync, the compound's peers and the purges refused travelled in
    ``Core.extras: dict[str, Any]``, read by key and unchecked; each is a field of its own,
    typed by a seam of ``kiosk.ports`` (mypy --strict checks the daemon's and the API's use)."""
    import dataclasses

    from kiosk.core import Core

    types = {f.name: f.type for f in dataclasses.fields(Core)}
    assert "extras" not in types
    assert types["lists_sync"] == "ListsSyncStatus | None"
    assert types["peers"] == "Peers | None"
    assert types["purge_refused"] == "dict[str, Any] | None"


def _metric_devices(app, client=LAN, **headers) -> set[str]:
    """The ``device`` labels of ``kiosk_device_up`` that ``/metrics`` gives this caller."""
    with TestClient(app, base_url=BASE, client=client) as http:
        answer = http.get("/metrics", headers=headers)
    assert answer.status_code == 200, answer.text
    lines = [x for x in answer.text.splitlines() if x.startswith("kiosk_device_up{")]
    return {x.split('device="', 1)[1].split('"', 1)[0] for x in lines}


def _health_devices(report: object, prefix: str = "") -> set[str]:
    """Every entry of a health report that says a ``state``, named as ``/metrics`` names it."""
    found: set[str] = set()
    for key, value in report.items() if isinstance(report, dict) else ():
        if isinstance(value, dict) and isinstance(value.get("state"), str):
            found.add(prefix + key)
        elif isinstance(value, dict):
            found |= _health_devices(value, f"{prefix}{key}.")
    return found


def test_metrics_show_a_lan_caller_only_what_its_health_shows(app):
    """Public ``/metrics`` said ``kiosk_device_up{device="lists_sync",...}`` (the office's
    list sync: its state) to anyone on the LAN, while ``/api/v1/health`` withholds it from
    them: the metrics are drawn from the caller's own view of the health report."""
    lan = _metric_devices(app)
    assert lan == _health_devices(asked(app).json())
    assert "lists_sync" not in lan and not any(d.startswith(tuple(DETAIL)) for d in lan)
    assert {"lists_sync"} <= _metric_devices(app, LOCAL)  # the kiosk itself: the whole
    assert _metric_devices(app, LOCAL) == _health_devices(asked(app, LOCAL).json())


@pytest.mark.parametrize("gate", [{"metrics_public": False}], indirect=True)
def test_metrics_behind_a_token_show_what_the_tokens_health_shows(gate, app):
    """``web.metrics_public = false``: ``/metrics`` needs a ``stats:read`` token, which
    reads the whole health report: so do its metrics."""
    token = bearer(gate, "stats:read")
    shown = _metric_devices(app, **token)
    assert "lists_sync" in shown
    assert shown == _health_devices(asked(app, **bearer(gate, "stats:read")).json())


def test_the_readers_the_engine_holds_failing_are_in_the_report(gate, app):
    """The engine's reader faults (a camera or a scanner failing as the engine sees it) were
    not in the report: a console started or dropped meanwhile could not draw a reader's card
    from it. They are, as the engine's health messages carry its faults: public, as
    ``devices`` is."""
    assert asked(app).json()["faults"] == {}
    gate.runner.engine.on_reader_fault("cam0", "camera lost")
    assert asked(app).json()["faults"] == {"reader": "cam0"}
    assert asked(app, LOCAL).json()["faults"] == {"reader": "cam0"}
