"""The office's status port on the LAN (it listens there for the gates' list bundle): anyone
who reached it read every gate's URL and last error, and the database's host, name and user,
on ``/``, ``/status.json`` and ``/metrics``. As the gate's ``/api/v1/health``: a LAN caller
gets the public part and the names of what was withheld; the whole goes to this host
(loopback) and to the operator's ``status_token_env`` token. No PostgreSQL needed."""

from __future__ import annotations

import contextlib
import ipaddress
import json
import re
import socket
from pathlib import Path

import httpx
import pytest

from kiosk.config.fleet import CollectorConfig
from office.collector import Collector, StatusServer
from office.pg import PgError

DSN = "postgresql://collector@db.office.lan/fleet"
GATE = "http://gate-07.lan:8000"
FAULT = "could not connect to server at 10.9.8.7 beside gate-07.lan"
STATUS_TOKEN = "office-status-0123456789abcdef"


def _refuse(dsn: str):
    raise PgError(FAULT)


@pytest.fixture
def collector(monkeypatch, clock):
    monkeypatch.setenv("TOKEN", "unused")
    monkeypatch.setenv("STATUS_TOKEN", STATUS_TOKEN)
    config = CollectorConfig.model_validate(
        {"kiosks": [{"url": GATE, "token_env": "TOKEN"}], "status_token_env": "STATUS_TOKEN"}
    )
    made = Collector(config, DSN, clock=clock, target_factory=_refuse)
    made.pull_once(config.kiosks[0])  # fails: the status holds the URL and the error
    yield made
    made.stop()


def _lan_address() -> str | None:
    """One of this machine's own addresses that is not loopback (None: it has none)."""
    with contextlib.suppress(OSError), socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.connect(("192.0.2.1", 9))  # no packet is sent: the route picks the source
        found = s.getsockname()[0]
        if not ipaddress.ip_address(found).is_loopback:
            return str(found)
    return None


def _secret(text: str) -> list[str]:
    return [s for s in ("gate-07.lan", FAULT, "db.office.lan", "collector") if s in text]


def _left_out(whole: dict, public: dict) -> list[str]:
    """The fields of the whole status the public part lacks: ``KEY``, ``SECTION.KEY`` and
    ``kiosks.KEY`` (a key any gate's entry lacks), sorted."""
    out = {key for key in whole if key not in public}
    for key, value in whole.items():
        if isinstance(value, dict) and key in public:
            out |= {f"{key}.{k}" for k in value if k not in public[key]}
    for whole_kiosk, public_kiosk in zip(whole["kiosks"], public["kiosks"], strict=True):
        out |= {f"kiosks.{k}" for k in whole_kiosk if k not in public_kiosk}
    return sorted(out)


def _documented_withheld() -> list[str]:
    """The names docs/fleet.md says ``/status.json`` lists in ``withheld``, in its order."""
    text = (Path(__file__).resolve().parent.parent / "docs" / "fleet.md").read_text("utf-8")
    said = re.search(r"in `withheld` \(([^)]*)\)", text)
    assert said is not None, "docs/fleet.md no longer says what `withheld` names"
    return re.findall(r"`([^`]+)`", said.group(1))


def test_a_lan_caller_gets_the_public_part_and_the_names_of_what_was_withheld(collector):
    public = collector.status_json(whole=False)
    assert _secret(json.dumps(public)) == []
    assert _secret(collector.status_html(whole=False)) == []
    assert _secret(collector.metrics_text(whole=False)) == []
    # The whole, for this host and the token: as before.
    whole = collector.status_json()
    # ``withheld`` names what the public part left out of the whole, as docs/fleet.md says.
    assert public["withheld"] == _left_out(whole, public) == _documented_withheld()
    (kiosk,) = public["kiosks"]
    assert kiosk["state"] == "error" and kiosk["consecutive_failures"] == 1
    assert kiosk["last_error_at"] is not None and "url" not in kiosk
    assert 'kiosk="#1"' in collector.metrics_text(whole=False)
    assert "withheld" not in whole and whole["kiosks"][0]["url"] == GATE
    assert FAULT in whole["kiosks"][0]["last_error"]


def test_who_gets_the_whole(collector, clock):
    assert collector.status_view(None, "127.0.0.1") == (True, None)
    assert collector.status_view(None, "::1") == (True, None)
    assert collector.status_view(None, "192.168.1.21") == (False, None)
    good = f"Bearer {STATUS_TOKEN}"
    assert collector.status_view(good, "192.168.1.21") == (True, None)
    wrong = collector.status_view("Bearer guess", "192.168.1.21")
    assert wrong[0] is False and wrong[1] is not None and wrong[1][0] == 401
    for _ in range(20):
        collector.status_view("Bearer guess", "192.168.1.21")
    waited = collector.status_view(good, "192.168.1.21")
    assert waited[1] is not None and waited[1][0] == 429
    assert collector.status_view(good, "192.168.1.22") == (True, None)


def test_over_the_port_from_the_lan_and_from_this_host(collector):
    lan = _lan_address()
    if lan is None:
        pytest.skip("this machine has no address but loopback")
    server = StatusServer(collector, "0.0.0.0", 0)  # noqa: S104 - the LAN case itself
    server.start()
    base = f"http://127.0.0.1:{server.port}"
    from_lan = httpx.HTTPTransport(local_address=lan)
    try:
        with httpx.Client(base_url=base, transport=from_lan, timeout=10) as http:
            for path in ("/", "/status.json", "/metrics"):
                answer = http.get(path)
                assert answer.status_code == 200, path
                # Before: the gate's URL, its last error and the database, to anyone.
                assert _secret(answer.text) == [], path
            assert "withheld" in http.get("/status.json").json()
            bearer = {"Authorization": f"Bearer {STATUS_TOKEN}"}
            assert GATE in http.get("/status.json", headers=bearer).text
            refused = http.get("/status.json", headers={"Authorization": "Bearer nope"})
            assert refused.status_code == 401 and GATE not in refused.text
        with httpx.Client(base_url=base, timeout=10) as http:
            assert GATE in http.get("/status.json").text and FAULT in http.get("/").text
    finally:
        server.stop()


def test_an_ipv4_mapped_loopback_is_this_host_and_a_name_is_not():
    from office.collector import from_this_host

    assert from_this_host("::ffff:127.0.0.1") and not from_this_host("::ffff:192.168.1.2")
    assert not from_this_host("localhost") and not from_this_host("")
