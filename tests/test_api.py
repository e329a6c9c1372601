"""The office API: tokens and scopes, keyset paging, masking, exports, limits, metrics."""

from __future__ import annotations

import csv
import io
import json
import re
import shutil
from datetime import timedelta
from pathlib import Path
from types import SimpleNamespace

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from support import reporting_log

from checkpoint.export_helper import HelperProcessPages
from kiosk.config import parse_config
from kiosk.export import InProcessPages
from kiosk.lists import Freshness
from kiosk.store import EventDraft, StoreFault
from kiosk.tokens import TokenStore
from ui import api

PHONE = "13800138000"
ID_NUMBER = "11010519491231002X"
PHONE_RE = re.compile(r"\b1[3-9]\d{9}\b")
ID_RE = re.compile(r"\b\d{17}[\dXx]\b")


def draft(i: int, **kw) -> EventDraft:
    fields = {
        "direction": "out" if i % 2 else "in",
        "decision": "pass",
        "reasons": ("ok",),
        "temp_c": 36.5,
        "pass_id": f"PASS-{i:04d}",
        "household": "B3-1201",
        "holder": "Zhang Wei",
        "operator": "=HYPERLINK(\"x\")" if i == 3 else None,
        "person": {"name": "张伟", "phone": PHONE, "id_number": ID_NUMBER,
                   "note": f"backup phone {PHONE}"},
    }  # fmt: skip
    fields.update(kw)
    return EventDraft(**fields)


def make_core(tmp_path, clock, web=None):
    config = parse_config({"web": {"api_rate_per_min": 100000, **(web or {})}})
    store = reporting_log(tmp_path / "kiosk.db", clock)
    return SimpleNamespace(
        config=config,
        clock=clock,
        store=store,
        tokens=TokenStore(store, b"pepper", clock),
        pages=InProcessPages(),
        runner=SimpleNamespace(metrics=lambda: {"queue_depth": 2, "loop_p99_ms": 3.5}),
        lists=SimpleNamespace(current=SimpleNamespace(freshness=Freshness())),
        health=lambda: {
            "deciding": True,
            "devices": {
                "thermometer": {"state": "ok", "detail": ""},
                "readers": {"camera": {"state": "fault", "detail": "unplugged"}},
            },
            # The office's list sync: health withholds it from the LAN, so do the metrics.
            "lists_sync": {"state": "failing", "url": "http://office.lan/lists/bundle"},
        },
    )


@pytest.fixture
def core(tmp_path, clock):
    core = make_core(tmp_path, clock)
    for i in range(1, 26):
        core.store.append(draft(i))
        clock.advance(30)
    yield core
    core.store.close()


def client_for(core) -> TestClient:
    app = FastAPI()
    api.install(app, core)
    return TestClient(app)


@pytest.fixture
def client(core):
    return client_for(core)


def bearer(core, *scopes: str) -> dict[str, str]:
    _, plain = core.tokens.create(scopes or ("logs:read",))
    return {"Authorization": f"Bearer {plain}"}


def assert_nothing_personal(text: str) -> None:
    assert not PHONE_RE.search(text), "unmasked phone number"
    assert not ID_RE.search(text), "unmasked ID number"
    assert "Zhang Wei" not in text and "张伟" not in text and "B3-1201" not in text


@pytest.mark.parametrize("path", ["/api/v1/events", "/api/v1/events.csv", "/api/v1/stats"])
@pytest.mark.parametrize("auth", [None, "Bearer nope", "Basic dXNlcjpwYXNz", "Bearer "])
def test_data_endpoints_answer_401_without_a_valid_token(client, path, auth):
    headers = {"Authorization": auth} if auth else {}
    response = client.get(path, headers=headers)
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"
    assert PHONE not in response.text


def test_revoked_token_gets_401(core, client):
    info, plain = core.tokens.create(["logs:read"])
    core.tokens.revoke(info.id)
    assert (
        client.get("/api/v1/events", headers={"Authorization": f"Bearer {plain}"}).status_code
        == 401
    )


def test_out_of_scope_gets_403(core, client):
    assert client.get("/api/v1/events", headers=bearer(core, "stats:read")).status_code == 403
    assert client.get("/api/v1/stats", headers=bearer(core, "logs:personal")).status_code == 403
    assert client.get("/api/v1/events.csv", headers=bearer(core, "stats:read")).status_code == 403


@pytest.mark.parametrize("scope", ["logs:read", "stats:read"])
def test_the_daily_report_is_read_with_the_pull_token_or_a_stats_token(core, client, scope):
    # The interface: /api/v1/stats takes the same token as /api/v1/events (scope logs:read);
    # stats:read is the narrower token for the report alone (and private /metrics).
    response = client.get("/api/v1/stats", headers=bearer(core, scope))
    assert response.status_code == 200
    assert set(response.json()) >= {"by_decision", "by_reason", "by_direction", "by_hour"}


def test_keyset_paging_resumes_exactly_under_concurrent_writes(core, client, clock):
    headers = bearer(core)
    seen: list[int] = []
    after = 0
    while True:
        page = client.get("/api/v1/events", params={"after": after, "limit": 4}, headers=headers)
        assert page.status_code == 200
        body = page.json()
        if not body["events"]:
            assert body["next"] == after
            break
        seen += [e["seq"] for e in body["events"]]
        assert body["next"] == body["events"][-1]["seq"]
        after = body["next"]
        if len(seen) == 8:  # the kiosk keeps deciding while the office pages through
            for i in range(3):
                core.store.append(draft(100 + i))
    assert seen == list(range(1, 29))


def test_page_reports_the_head_seq(core, client):
    body = client.get("/api/v1/events", params={"limit": 2}, headers=bearer(core)).json()
    assert body["last"] == 25 and body["next"] == 2


@pytest.mark.parametrize("params", [{"limit": 0}, {"limit": 5001}, {"after": -1}, {"after": "x"}])
def test_out_of_bounds_paging_is_422(core, client, params):
    assert client.get("/api/v1/events", params=params, headers=bearer(core)).status_code == 422


def test_ndjson_streams_one_event_per_line(core, client):
    headers = {**bearer(core), "Accept": "application/x-ndjson"}
    response = client.get("/api/v1/events", params={"after": 5, "limit": 10}, headers=headers)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/x-ndjson")
    lines = response.text.splitlines()
    assert [json.loads(line)["seq"] for line in lines] == list(range(6, 16))
    assert response.headers["x-next"] == "15"
    assert_nothing_personal(response.text)


def test_personal_fields_are_masked_by_default(core, client):
    body = client.get("/api/v1/events", params={"limit": 1}, headers=bearer(core)).json()
    event = body["events"][0]
    assert event["holder"] == "Z."
    assert event["pass_id"] == "*******01"
    assert event["person"]["phone"] == "138****8000"
    assert event["person"]["id_number"] == "110*************2X"
    assert_nothing_personal(json.dumps(body, ensure_ascii=False))


def test_fields_need_the_personal_scope(core, client):
    response = client.get("/api/v1/events", params={"fields": "holder"}, headers=bearer(core))
    assert response.status_code == 403
    personal = bearer(core, "logs:read", "logs:personal")
    body = client.get(
        "/api/v1/events", params={"limit": 1, "fields": "holder,person.phone"}, headers=personal
    ).json()
    event = body["events"][0]
    assert event["holder"] == "Zhang Wei" and event["person"]["phone"] == PHONE
    assert event["person"]["id_number"] == "110*************2X"
    assert event["pass_id"] == "*******01"


@pytest.mark.parametrize("fields", ["password", "holder,", "holder;drop", "person.pin"])
def test_unknown_field_names_are_refused(core, client, fields):
    personal = bearer(core, "logs:read", "logs:personal")
    response = client.get("/api/v1/events", params={"fields": fields}, headers=personal)
    assert response.status_code == 422
    assert "pattern" in json.dumps(response.json())


def test_csv_export_is_masked_and_safe_for_spreadsheets(core, client):
    response = client.get("/api/v1/events.csv", params={"after": 1}, headers=bearer(core))
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(response.text)))
    assert [int(r["seq"]) for r in rows] == list(range(2, 26))
    assert rows[1]["operator"].startswith("'=")  # seq 3: a formula is neutralised
    assert json.loads(rows[0]["reasons"]) == ["ok"]
    assert {r["clock_synced"] for r in rows} <= {"True", "False"}  # as api.md says
    assert_nothing_personal(response.text)


def test_the_csv_export_is_written_by_the_kiosks_one_csv_writer(core, client):
    """The API's CSV, page by page, is what ``kiosk.sheets.write_csv`` writes for the same
    cells: CR LF line ends and one quoting rule with the kiosk's other sheets."""
    from kiosk.sheets import write_csv

    text = client.get("/api/v1/events.csv", headers=bearer(core)).text
    rows = list(csv.reader(io.StringIO(text, newline="")))
    assert len(rows) > 2 and text.endswith("\r\n")
    assert text == write_csv(rows)


def test_csv_export_honours_limit_across_internal_pages(tmp_path, clock):
    core = make_core(tmp_path, clock, {"max_page": 3})
    try:
        for i in range(10):
            core.store.append(draft(i))
        client = client_for(core)
        response = client.get("/api/v1/events.csv", params={"limit": 7}, headers=bearer(core))
        assert [int(r["seq"]) for r in csv.DictReader(io.StringIO(response.text))] == list(
            range(1, 8)
        )
    finally:
        core.store.close()


def test_an_events_page_defaults_to_api_default_page_and_refuses_past_max_page(tmp_path, clock):
    core = make_core(tmp_path, clock, {"max_page": 3, "api_default_page": 2})
    try:
        for i in range(5):
            core.store.append(draft(i))
        client = client_for(core)
        page = client.get("/api/v1/events", headers=bearer(core)).json()
        assert [e["seq"] for e in page["events"]] == [1, 2]
        refused = client.get("/api/v1/events", params={"limit": 4}, headers=bearer(core))
        assert refused.status_code == 422
        assert refused.json()["detail"][0]["loc"] == ["query", "limit"]
        exports = [r for r in core.store.audits(after_seq=0) if r["action"] == "export_events"]
        assert [r["detail"]["count"] for r in exports] == [2]  # the refused page exported nothing
    finally:
        core.store.close()


def test_each_export_is_one_audit_row_naming_token_range_and_fields(core, client):
    info, plain = core.tokens.create(["logs:read", "logs:personal"])
    headers = {"Authorization": f"Bearer {plain}"}
    before = core.store.last_audit_seq
    client.get("/api/v1/events", params={"after": 3, "limit": 10, "fields": "holder"},
               headers=headers)  # fmt: skip
    client.get("/api/v1/events.csv", headers=headers)
    rows = core.store.audits(after_seq=before)
    assert [r["action"] for r in rows] == ["export_events", "export_csv"]
    assert rows[0]["actor"] == f"token:{info.id}"
    assert rows[0]["detail"] == {
        "format": "json", "after": 3, "through": 13, "count": 10, "fields": ["holder"]
    }  # fmt: skip
    assert rows[1]["detail"]["format"] == "csv"


def test_export_is_refused_when_it_cannot_be_audited(core, client, monkeypatch):
    """Unmasked personal fields never leave without their row written; a masked export's row
    may wait in memory (tests/test_export_cut.py), while there is room for it."""
    personal = bearer(core, "logs:read", "logs:personal")
    headers = bearer(core)

    def broken(*args, **kwargs):
        raise StoreFault("store_fault", "disk full")

    monkeypatch.setattr(core.store, "audit", broken)
    response = client.get("/api/v1/events", params={"fields": "holder"}, headers=personal)
    assert response.status_code == 503
    assert "events" not in response.json()
    client.app.state.api.held = api.HeldRows(max_rows=0, reserve=0)  # no room left
    response = client.get("/api/v1/events", headers=headers)
    assert response.status_code == 503
    assert "events" not in response.json()


def test_rate_limit_per_token_answers_429_with_retry_after(tmp_path, clock):
    core = make_core(tmp_path, clock, {"api_rate_per_min": 6})  # burst 1, then 1 per 10 s
    try:
        client = client_for(core)
        headers = bearer(core)
        assert client.get("/api/v1/events", headers=headers).status_code == 200
        limited = client.get("/api/v1/events", headers=headers)
        assert limited.status_code == 429
        assert int(limited.headers["retry-after"]) >= 1
        clock.advance(10)
        assert client.get("/api/v1/events", headers=headers).status_code == 200
    finally:
        core.store.close()


def test_rate_limit_per_address_applies_before_authentication(tmp_path, clock):
    core = make_core(tmp_path, clock, {"api_rate_per_min": 6})
    try:
        client = client_for(core)
        assert client.get("/api/v1/events").status_code == 401
        # Guessing tokens from one address is slowed down too.
        response = client.get("/api/v1/events", headers={"Authorization": "Bearer guess"})
        assert response.status_code == 429 and "retry-after" in response.headers
    finally:
        core.store.close()


def test_oversized_requests_are_refused(core, client):
    headers = bearer(core)
    long_query = "x" * 20000
    assert client.get(f"/api/v1/events?pad={long_query}", headers=headers).status_code == 414
    big = client.request(
        "GET", "/api/v1/events", headers={**headers, "Content-Length": "999999"}, content=b""
    )
    assert big.status_code == 413


def test_stats_returns_the_daily_report_for_a_day(core, client):
    headers = bearer(core, "stats:read")
    response = client.get("/api/v1/stats", params={"day": "2026-03-02"}, headers=headers)
    assert response.status_code == 200
    report = response.json()
    assert report["day"] == "2026-03-02" and report["events"] == 25
    assert report["timezone"] == "Asia/Shanghai"
    assert report["by_decision"] == {"pass": 25}
    assert report["overrides"]["overriding"] == 0  # the guards' decisions, by what they did
    assert_nothing_personal(response.text)
    # Default: today in the site's timezone.
    assert client.get("/api/v1/stats", headers=headers).json()["day"] == "2026-03-02"
    assert client.get("/api/v1/stats", params={"day": "March"}, headers=headers).status_code == 422


def test_stats_refuses_a_day_not_begun_instead_of_zeros(core, client):
    """``kiosk report`` and the console refuse a year typed wrong; the API sent a report of
    zeros up to the office's dashboard for it."""
    headers = bearer(core, "stats:read")
    response = client.get("/api/v1/stats", params={"day": "2027-03-02"}, headers=headers)
    assert response.status_code == 400
    assert response.json()["detail"] == (
        "day 2027-03-02: that day has not begun (today is 2026-03-02 in Asia/Shanghai):"
        " nothing to report; check the day typed"
    )
    assert (
        client.get("/api/v1/stats", params={"day": "2026-03-03"}, headers=headers).status_code
        == 400
    )


@pytest.mark.slow
def test_a_dashboard_polling_stats_writes_an_audit_row_an_hour_not_one_a_poll(core, client, clock):
    # An office dashboard polling /api/v1/stats every 10 s wrote 8,640 chained, fsynced
    # audit rows a day on the gate's one writer, kept for ever (their detail alone purged).
    headers, other = bearer(core, "stats:read"), bearer(core, "stats:read")
    before = core.store.audits(limit=1000)[-1]["seq"]

    def stats_rows() -> list[dict]:
        rows = core.store.audits(after_seq=before, limit=1000)
        return [r for r in rows if r["action"] == "export_stats"]

    for _ in range(12):  # an hour of polls (every 5 min here: the rule is the same at 10 s)
        assert client.get("/api/v1/stats", headers=headers).status_code == 200
        clock.advance(300)
    assert [r["detail"] for r in stats_rows()] == [{"day": "2026-03-02", "repeats": 0}]
    assert client.get("/api/v1/stats", headers=headers).status_code == 200
    assert stats_rows()[-1]["detail"] == {"day": "2026-03-02", "repeats": 11}
    # Another day's report, or another token, is another read: its own row at once.
    client.get("/api/v1/stats", params={"day": "2026-03-01"}, headers=headers)
    client.get("/api/v1/stats", headers=other)
    rows = stats_rows()
    assert len(rows) == 4 and rows[2]["detail"]["day"] == "2026-03-01"
    assert rows[3]["actor"] != rows[0]["actor"]


def test_a_stats_read_whose_audit_row_cannot_be_written_is_held_or_refused(
    core, client, monkeypatch
):
    """Counts only: on a card that takes no row the read goes ahead with its row held (written
    before the next one); with no room to hold it, refused, and the next read is audited."""
    headers = bearer(core, "stats:read")
    real = core.store.audit

    def broken(*args, **kwargs):
        raise StoreFault("store_fault", "disk full")

    monkeypatch.setattr(core.store, "audit", broken)
    assert client.get("/api/v1/stats", headers=headers).status_code == 200
    monkeypatch.setattr(core.store, "audit", real)
    day = {"day": "2026-03-01"}  # another day: its own row at once, the held one first
    assert client.get("/api/v1/stats", params=day, headers=headers).status_code == 200
    rows = [r for r in core.store.audits(limit=1000) if r["action"] == "export_stats"]
    assert sorted(r["detail"]["day"] for r in rows) == ["2026-03-01", "2026-03-02"]
    assert [r["detail"]["repeats"] for r in rows] == [0, 0]

    client.app.state.api.held = api.HeldRows(max_rows=0, reserve=0)  # no room left
    monkeypatch.setattr(core.store, "audit", broken)
    day = {"day": "2026-02-27"}
    assert client.get("/api/v1/stats", params=day, headers=headers).status_code == 503
    monkeypatch.setattr(core.store, "audit", real)
    assert client.get("/api/v1/stats", params=day, headers=headers).status_code == 200
    rows = [r for r in core.store.audits(limit=1000) if r["detail"].get("day") == "2026-02-27"]
    assert [r["detail"]["repeats"] for r in rows] == [0]


@pytest.mark.parametrize(
    ("day", "status"),
    [("0001-01-01", 422), ("9999-12-31", 422), ("2026-02-30", 422), ("0", 422), ("1e9", 422)],
)
def test_stats_rejects_days_it_cannot_report_never_a_500(core, client, day, status):
    headers = bearer(core, "stats:read")
    response = client.get("/api/v1/stats", params={"day": day}, headers=headers)
    assert response.status_code == status, response.text


def test_metrics_in_prometheus_text(core, client):
    core.store.append(draft(99, decision="deny", reasons=("fever", "quarantined")))
    response = client.get("/metrics")
    assert response.status_code == 200
    text = response.text
    assert 'kiosk_decisions_total{decision="pass",reason="ok"} 25' in text
    assert 'kiosk_decisions_total{decision="deny",reason="fever"} 1' in text
    assert 'kiosk_device_up{device="devices.thermometer",state="ok"} 1' in text
    assert 'kiosk_device_up{device="devices.readers.camera",state="fault"} 0' in text
    assert "lists_sync" not in text
    assert "kiosk_queue_depth 2" in text
    assert 'kiosk_loop_lag_seconds_bucket{le="+Inf"}' in text
    assert re.search(r"^kiosk_disk_free_bytes \d+$", text, re.M)
    assert "kiosk_events_last_seq 26" in text
    # Counted incrementally: a new event adds one, nothing is counted twice.
    core.store.append(draft(100))
    assert 'kiosk_decisions_total{decision="pass",reason="ok"} 26' in client.get("/metrics").text


def test_metrics_can_require_a_token(tmp_path, clock):
    core = make_core(tmp_path, clock, {"metrics_public": False})
    try:
        client = client_for(core)
        assert client.get("/metrics").status_code == 401
        assert client.get("/metrics", headers=bearer(core, "logs:read")).status_code == 403
        assert client.get("/metrics", headers=bearer(core, "stats:read")).status_code == 200
    finally:
        core.store.close()


def test_openapi_declares_every_response_model(client):
    schema = client.get("/openapi.json").json()
    events = schema["paths"]["/api/v1/events"]["get"]["responses"]
    assert events["200"]["content"]["application/json"]["schema"]["$ref"].endswith("EventsPage")
    assert "application/x-ndjson" in events["200"]["content"]
    for code in ("401", "403", "429", "422"):
        assert code in events
    stats_ok = schema["paths"]["/api/v1/stats"]["get"]["responses"]["200"]
    assert stats_ok["content"]["application/json"]["schema"]["$ref"].endswith("DailyReport")
    assert "text/csv" in schema["paths"]["/api/v1/events.csv"]["get"]["responses"]["200"]["content"]
    assert "HTTPBearer" in schema["components"]["securitySchemes"]


def _undeclared(value, schema: dict, spec: dict, path: str) -> list[str]:
    """The keys of ``value`` (a JSON answer) that the OpenAPI ``schema`` does not declare, and
    the required ones it lacks, as dotted paths; nested objects and lists are followed."""
    while "$ref" in schema:
        schema = spec["components"]["schemas"][schema["$ref"].rsplit("/", 1)[-1]]
    if value is None:
        return []
    options = schema.get("anyOf") or [schema]
    kind = "object" if isinstance(value, dict) else "array" if isinstance(value, list) else None
    for option in options:
        while "$ref" in option:
            option = spec["components"]["schemas"][option["$ref"].rsplit("/", 1)[-1]]
        if kind is None or option.get("type") == kind:
            schema = option
            break
    if isinstance(value, list):
        items = schema.get("items", {})
        return [p for v in value for p in _undeclared(v, items, spec, f"{path}[]")]
    if not isinstance(value, dict) or "properties" not in schema:
        return []
    props = schema["properties"]
    found = [f"{path}.{k} (not declared)" for k in value if k not in props]
    found += [f"{path}.{k} (missing)" for k in schema.get("required", []) if k not in value]
    return found + [
        p
        for k, v in value.items()
        if k in props
        for p in _undeclared(v, props[k], spec, f"{path}.{k}")
    ]


def test_the_openapi_schema_declares_every_field_the_office_api_answers(core, client, clock):
    """The office writes its client from /openapi.json: a field the answer carries and the
    schema does not name is one it never learns of (the report's `clock` was such a field)."""
    spec = client.get("/openapi.json").json()
    headers = bearer(core, "logs:read")
    answers = {
        "/api/v1/stats": client.get("/api/v1/stats?day=2026-03-02", headers=headers).json(),
        "/api/v1/events": client.get("/api/v1/events?limit=5", headers=headers).json(),
    }
    assert answers["/api/v1/stats"]["events"] == 25 and len(answers["/api/v1/events"]["events"])
    undeclared = [
        found
        for path, answer in answers.items()
        for found in _undeclared(
            answer,
            spec["paths"][path]["get"]["responses"]["200"]["content"]["application/json"]["schema"],
            spec,
            path,
        )
    ]
    assert undeclared == []


def test_the_schema_walk_finds_an_undeclared_nested_field():
    a = {"type": "object", "properties": {"b": {"type": "integer"}}}
    spec = {"components": {"schemas": {"A": a}}}
    nullable_a = {"anyOf": [{"$ref": "#/x/A"}, {"type": "null"}]}
    schema = {"type": "object", "properties": {"a": nullable_a, "z": {}}, "required": ["z"]}
    assert _undeclared({"a": {"b": 1, "c": 2}}, schema, spec, "r") == [
        "r.z (missing)",
        "r.a.c (not declared)",
    ]
    assert _undeclared({"a": None, "z": 1}, schema, spec, "r") == []


def test_no_response_carries_an_unmasked_phone_or_id(core, client, monkeypatch):
    # /metrics carries the card's free bytes: 13-20 GB free is an 11-digit number beginning
    # 13-19, which a phone pattern matches. The free space is fixed here, not this machine's.
    usage = shutil.disk_usage(core.store.path.parent)
    fixed = type(usage)(total=2**34, used=2**33, free=2**33)
    monkeypatch.setattr(shutil, "disk_usage", lambda path: fixed)
    headers = bearer(core, "logs:read", "stats:read")
    texts = [
        client.get("/api/v1/events", params={"limit": 100}, headers=headers).text,
        client.get("/api/v1/events", headers={**headers, "Accept": "application/x-ndjson"}).text,
        client.get("/api/v1/events.csv", headers=headers).text,
        client.get("/api/v1/stats", params={"day": "2026-03-02"}, headers=headers).text,
        client.get("/metrics").text,
    ]
    for text in texts:
        assert_nothing_personal(text)
    audits = json.dumps(core.store.audits(limit=1000), ensure_ascii=False)
    assert_nothing_personal(audits)


def test_events_after_purge_carry_no_personal_fields(core, client, clock):
    from kiosk.retention import purge

    purge(core.store, 0, clock.now() + timedelta(seconds=1), tz="Asia/Shanghai")
    body = client.get("/api/v1/events", params={"limit": 3}, headers=bearer(core)).json()
    assert all(e["holder"] is None and e["purged_at"] for e in body["events"])


def test_app_factory_can_hide_docs(tmp_path, clock):
    from checkpoint.app import build_core
    from ui.app import create_app

    config = parse_config({"web": {"docs_enabled": False}})
    real = build_core(config, tmp_path / "data", clock)
    try:
        client = TestClient(create_app(real))
        assert client.get("/openapi.json").status_code == 404
        assert client.get("/docs").status_code == 404
        assert client.get("/api/v1/events").status_code == 401
    finally:
        real.store.close()
        real.devices.close()


def test_no_log_line_carries_personal_data(core, client, caplog, monkeypatch):
    import logging

    caplog.set_level(logging.DEBUG)
    headers = bearer(core, "logs:read", "stats:read")
    client.get("/api/v1/events", params={"limit": 50}, headers=headers)
    client.get("/api/v1/events.csv", headers=headers)
    client.get("/api/v1/stats", headers=headers)
    client.get("/metrics")
    client.get("/api/v1/events", headers={"Authorization": f"Bearer {PHONE}"})

    def broken(*args, **kwargs):
        raise StoreFault("store_fault", "disk full")

    monkeypatch.setattr(core.store, "audit", broken)
    client.get("/api/v1/events", headers=headers)
    assert "export_events held in memory" in caplog.text
    personal = bearer(core, "logs:read", "logs:personal")
    client.get("/api/v1/events", params={"fields": "holder,person"}, headers=personal)
    assert "export refused" in caplog.text
    assert_nothing_personal(caplog.text)


def test_stats_report_list_freshness_from_the_list_store(core, client):
    from datetime import UTC, datetime

    updated = datetime(2026, 3, 2, 6, 0, tzinfo=UTC)
    core.lists = SimpleNamespace(current=SimpleNamespace(freshness=Freshness(updated_at=updated)))
    report = client.get("/api/v1/stats", headers=bearer(core, "stats:read")).json()
    assert report["lists_freshness"]["updated_at"] == "2026-03-02T06:00:00+00:00"


def test_pages_from_the_helper_process_match_pages_built_in_thread(core):
    for ndjson in (False, True):
        in_process = HelperProcessPages().build(core.store, 3, 7, frozenset({"holder"}), ndjson)
        in_thread = InProcessPages().build(core.store, 3, 7, frozenset({"holder"}), ndjson)
        assert in_process == in_thread
        assert in_process[1:] == (7, 10, 25)


def test_a_dead_helper_process_is_replaced_by_a_fresh_one(core):
    builder = HelperProcessPages()
    builder.build(core.store, 0, 1, frozenset(), False)  # the helper is up
    first = HelperProcessPages._proc
    first.kill()
    first.wait(5)
    body, count, next_seq, last = builder.build(core.store, 0, 5, frozenset(), False)
    assert (count, next_seq, last) == (5, 5, 25)
    assert json.loads(body)["events"][0]["holder"] == "Z."
    assert HelperProcessPages._proc is not first and HelperProcessPages._proc.poll() is None


def test_a_helper_that_cannot_run_falls_back_to_building_in_thread(core, caplog, monkeypatch):
    def cannot_start(_pages) -> None:
        raise OSError("no interpreter")

    HelperProcessPages.shutdown()
    monkeypatch.setattr(HelperProcessPages, "helper", cannot_start)
    body, count, next_seq, last = HelperProcessPages().build(core.store, 0, 5, frozenset(), False)
    assert (count, next_seq, last) == (5, 5, 25)
    assert json.loads(body)["events"][0]["holder"] == "Z."
    assert "export worker unavailable" in caplog.text


@pytest.mark.slow  # integration: real sockets, processes or deadlines (CI runs it)
def test_the_helper_process_stops_when_idle_and_a_later_page_starts_a_new_one(core, monkeypatch):
    HelperProcessPages.shutdown()
    monkeypatch.setattr(HelperProcessPages, "idle_stop_s", 0.2)
    builder = HelperProcessPages()
    builder.build(core.store, 0, 1, frozenset(), False)
    first = HelperProcessPages._proc
    assert first.wait(10) == 0  # it left by itself, nobody asked it to
    assert builder.build(core.store, 0, 5, frozenset(), False)[1:] == (5, 5, 25)
    assert HelperProcessPages._proc is not first
    HelperProcessPages.shutdown()


def test_the_helper_process_imports_no_numpy_or_web_framework(core):
    HelperProcessPages().build(core.store, 0, 1, frozenset(), False)
    pid = HelperProcessPages._proc.pid
    maps = Path(f"/proc/{pid}/maps").read_text()
    assert "_multiarray_umath" not in maps and "cv2" not in maps
    assert "_pydantic_core" not in maps


@pytest.mark.slow
def test_the_helper_process_exits_when_the_daemon_is_killed(core):
    import os
    import signal
    import subprocess
    import sys
    import time

    script = (
        "import os, sys\n"
        "from pathlib import Path\n"
        "from types import SimpleNamespace\n"
        "from checkpoint.export_helper import HelperProcessPages as PageBuilder\n"
        "PageBuilder().build(SimpleNamespace(path=Path(sys.argv[1])), 0, 1, frozenset(), False)\n"
        "print(PageBuilder._proc.pid, flush=True)\n"
        "os.kill(os.getpid(), 9)\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", script, str(core.store.path)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == -signal.SIGKILL
    helper = int(proc.stdout.strip())
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            os.kill(helper, 0)
        except ProcessLookupError:
            return
        time.sleep(0.1)
    os.kill(helper, signal.SIGKILL)
    pytest.fail("the helper process outlived its parent")


def test_a_large_page_is_written_in_pieces_with_its_full_length(core, client, monkeypatch):
    whole = client.get("/api/v1/events", params={"limit": 25}, headers=bearer(core))
    monkeypatch.setattr(api.PageResponse, "CHUNK", 1000)
    sent: list[dict] = []

    async def send(message: dict) -> None:
        sent.append(message)

    async def receive() -> dict:
        return {"type": "http.request", "body": b"", "more_body": False}

    import asyncio

    page = api.PageResponse(whole.content, media_type="application/json")
    asyncio.run(page({"type": "http", "method": "GET"}, receive, send))
    bodies = [m for m in sent if m["type"] == "http.response.body"]
    assert len(bodies) > 2 and all(len(m["body"]) <= 1000 for m in bodies)
    assert b"".join(m["body"] for m in bodies) == whole.content
    assert not bodies[-1]["more_body"] and all(m["more_body"] for m in bodies[:-1])
    assert (b"content-length", str(len(whole.content)).encode()) in sent[0]["headers"]
    # Through the route too: the same bytes and length, however they were cut.
    again = client.get("/api/v1/events", params={"limit": 25}, headers=bearer(core))
    assert again.content == whole.content
    assert again.headers["content-length"] == str(len(whole.content))
