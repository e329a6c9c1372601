"""``/api/v1/health`` and ``/metrics`` for monitors and load balancers: ``HEAD`` answers as
``GET`` (status and headers, no body), and the schema lists health's 503 (not deciding)."""

from __future__ import annotations


def test_head_health_answers_as_get_without_a_body(client):
    got, head = client.get("/api/v1/health"), client.head("/api/v1/health")
    assert got.status_code == head.status_code == 503  # not started: not deciding
    assert head.content == b""
    assert head.headers["content-type"] == got.headers["content-type"]
    assert head.headers["content-length"] == got.headers["content-length"]


def test_head_metrics_answers_as_get_without_a_body(client):
    got, head = client.get("/metrics"), client.head("/metrics")
    assert got.status_code == head.status_code == 200
    assert head.content == b""
    assert head.headers["content-type"] == got.headers["content-type"]


def test_the_schema_lists_healths_503_and_no_head_operation(client):
    paths = client.get("/openapi.json").json()["paths"]
    health = paths["/api/v1/health"]
    assert set(health) == {"get"}
    assert {"200", "503"} <= set(health["get"]["responses"])
    assert "not deciding" in health["get"]["responses"]["503"]["description"]
    assert set(paths["/metrics"]) == {"get"}


def test_head_health_while_standing_by_answers_as_get_without_a_body():
    from fastapi.testclient import TestClient

    from kiosk.standby import Standby
    from ui.standby import create_standby_app

    standby = Standby("store_fault: cannot open kiosk.db", "damaged", "2026-03-02T08:30:00Z")
    web = TestClient(create_standby_app(standby, "gate-1", local=("127.0.0.1",)))
    got, head = web.get("/api/v1/health"), web.head("/api/v1/health")
    assert got.status_code == head.status_code == 503
    assert head.content == b""
    assert head.headers["x-kiosk-state"] == got.headers["x-kiosk-state"] == "standby"
