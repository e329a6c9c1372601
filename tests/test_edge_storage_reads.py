"""The API's reads during a storage outage (a full or read-only card, a log that cannot be
opened): what can be answered is, and what cannot is a 503 with ``Retry-After``, never a 500."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from guard_support import BASE, add_event
from support import storage_failing

from kiosk.auditing import HeldRows
from kiosk.store import StoreFault
from ui.app import create_app


@pytest.fixture
def world(guard_core):
    for _ in range(3):
        add_event(guard_core, pass_id="abcdef012345", household="1-101")
    _, peer = guard_core.tokens.create(["passages:peer"])
    _, office = guard_core.tokens.create(["logs:read", "stats:read"])
    app = create_app(guard_core)
    client = TestClient(app, base_url=BASE, raise_server_exceptions=False)
    return guard_core, app, client, peer, office


def get(client: TestClient, path: str, token: str | None):
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return client.get(path, headers=headers)


def test_a_peer_gate_still_gets_the_passages_off_a_card_that_takes_no_write(world):
    # The card full or read-only: the office's masked pull went on (its audit row held in
    # memory) but /api/v1/passages was refused (503) for as long as it lasted, because its
    # row could not be written: the other gates lost this gate's passages, voids and
    # quarantines (the shared quota, anti-passback, a quarantined household let in there)
    # while the log itself read as ever. The page holds no name: its row is held as the
    # masked exports' are, and written once the card takes writes again.
    core, app, client, peer, _ = world
    with storage_failing(core.store, "audit"):
        page = get(client, "/api/v1/passages?after=0", peer)
    assert page.status_code == 200, page.text
    assert len(page.json()["passages"]) == 3
    assert len(app.state.guard.held) == 1
    assert not [r for r in core.store.audits(0, 1000) if r["action"] == "export_passages"]
    again = get(client, "/api/v1/passages?after=0", peer)  # the card works: held row first
    assert again.status_code == 200 and len(app.state.guard.held) == 0
    rows = [r for r in core.store.audits(0, 1000) if r["action"] == "export_passages"]
    assert ["held_at" in r["detail"] for r in rows] == [True, False]


def test_with_no_room_to_hold_its_row_the_page_is_a_503_with_retry_after(world):
    core, app, client, peer, office = world
    app.state.api.held = HeldRows(max_rows=0, reserve=0)
    with storage_failing(core.store, "audit"):
        for token, path in ((peer, "/api/v1/passages?after=0"), (office, "/api/v1/events")):
            refused = get(client, path, token)
            assert refused.status_code == 503, (path, refused.text)
            assert int(refused.headers["retry-after"]) >= 1
            assert refused.json() == {"detail": "the event log is unavailable"}


def cannot_open(*args, **kwargs):
    raise StoreFault("store_fault", "cannot open a reader (SQLITE_CANTOPEN)")


@pytest.mark.parametrize(
    ("path", "who"),
    [
        ("/api/v1/passages?after=0", "peer"),
        ("/api/v1/events", "office"),
        ("/api/v1/events.csv", "office"),
        ("/api/v1/stats", "office"),
        ("/api/v1/health", "office"),
        ("/api/v1/health", None),
        ("/metrics", None),
    ],
)
def test_a_log_that_cannot_be_opened_is_a_503_with_retry_after_never_a_500(
    world, monkeypatch, path, who
):
    # The data volume unplugged, the card's mount gone, the open-file limit reached: a reader
    # that cannot be opened raised StoreFault through every API route (500 and a traceback in
    # the journal per request), the health report included, the one read that should say so.
    core, _app, client, peer, office = world
    monkeypatch.setattr(core.store, "reader", cannot_open)
    token = {"peer": peer, "office": office, None: None}[who]
    answer = get(client, path, token)
    assert answer.status_code in (200, 503), (path, answer.status_code, answer.text[:200])
    if path.startswith("/api/v1/health"):
        assert answer.json()["deciding"] in (True, False)  # the report, not an error
    elif answer.status_code == 503:
        assert int(answer.headers["retry-after"]) >= 1
        assert "unavailable" in answer.json()["detail"]


def test_a_poke_for_another_gate_is_still_refused_403_on_a_card_that_takes_no_write(world):
    # A token bound to one gate poking as another is refused and the refusal audited; on a
    # full or read-only card its row could not be written and the poke was told 503 (retry
    # later) instead: the poking gate retried a refusal for as long as the outage lasted.
    core, app, client, _, _ = world
    _, bound = core.tokens.create(["passages:peer"], peer="gate-north")
    with storage_failing(core.store, "audit"):
        answer = client.post(
            "/api/v1/passages/poke",
            params={"kiosk_id": "gate-south"},
            headers={"Authorization": f"Bearer {bound}"},
        )
    assert answer.status_code == 403, answer.text
    assert len(app.state.guard.held) == 1  # its row, waiting for the card
