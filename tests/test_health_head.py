"""``/api/v1/health`` and ``/metrics`` for monitors and load balancers: ``HEAD`` answers as
``GET`` (status and headers, no body), and the schema lists health's 503 (not deciding)."""

from __future__ import annotations


def test_the_schema_lists_healths_503_and_no_head_operation(client):
    paths = client.get("/openapi.json").json()["paths"]
    health = paths["/api/v1/health"]
    assert set(health) == {"get"}
    assert {"200", "503"} <= set(health["get"]["responses"])
    assert "not deciding" in health["get"]["responses"]["503"]["description"]
    assert set(paths["/metrics"]) == {"get"}
