"""Every guard form whose repeat would act twice carries the one-time ``once`` token
(``ui.guard.deps.once_per_form``): a double tap, or a resend after an answer that never came
(or after the daemon restarted), is refused with ``err.sent_twice`` and nothing happens twice.
Each kind: a pass issued, a calibration pair, a quarantine entry. The repeats that are
harmless (a reprint, an alarm closed, a step of a ledger's state) are not here:
they act the same however often they are sent."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest
from guard_support import BASE, close_core, hidden_fields, login, make_app, make_core, send
from starlette.testclient import TestClient

from kiosk import queries
from kiosk.calibration import Calibration, default_path
from ui import i18n


def passes(core) -> int:
    return len(queries.issued_passes(core.store))


def pairs(core) -> int:
    return len(Calibration.load(default_path(core.data_dir)).points)


def quarantined(core) -> int:
    return len(core.lists.current.quarantine)


KINDS = [  # page, form id, path, what is typed, how many were made
    ("/guard/passes", "pass-form", "/guard/passes",
     {"household": "4-401", "holder": "Zhao Lei", "days": "1"}, passes),
    ("/guard/calibration", "cal-form", "/guard/calibration",
     {"clinical_c": "36.7", "object_c": "34.1", "ambient_c": "22.0"}, pairs),
    ("/guard/lists", "quarantine-form", "/guard/lists/quarantine/add",
     {"household": "Q-909", "until": "2026-12-31", "note": "back from abroad"}, quarantined),
]  # fmt: skip


def refusal(response) -> str | None:
    assert response.status_code in (200, 303, 400), response.text[:300]
    if response.status_code == 200:
        return None
    if response.status_code == 400:  # drawn again with the form as typed
        return response.text.split('class="flash err"', 1)[1].split(">", 1)[1].split("<", 1)[0]
    return parse_qs(urlsplit(response.headers["location"]).query).get("err", [None])[0]


@pytest.mark.parametrize(("page", "form_id", "path", "typed", "made"), KINDS)
def test_a_form_sent_twice_acts_once(guard_client, guard_core, page, form_id, path, typed, made):
    login(guard_client)
    before = made(guard_core)
    fields = hidden_fields(guard_client.get(page).text, form_id) | typed
    assert "once" in fields
    assert refusal(send(guard_client, path, fields)) is None
    assert refusal(send(guard_client, path, fields)) == i18n.t("zh-CN", "err.sent_twice")
    assert made(guard_core) == before + 1
    # The same form drawn again is the next one.
    fresh = hidden_fields(guard_client.get(page).text, form_id) | typed
    if made is quarantined:
        fresh["household"] = "Q-910"
    assert refusal(send(guard_client, path, fresh)) is None
    assert made(guard_core) == before + 2


def test_a_pass_form_sent_again_after_a_restart_issues_no_second_pass(data_dir, clock, monkeypatch):
    """The answer (the card) never reached the guard's phone and the daemon restarted: the
    form sent again finds its token in the pass's own audit row."""
    core = make_core(data_dir, clock, monkeypatch)
    client = TestClient(make_app(core), base_url=BASE)
    login(client)
    fields = hidden_fields(client.get("/guard/passes").text, "pass-form") | KINDS[0][3]
    assert refusal(send(client, "/guard/passes", fields)) is None
    cookies = client.cookies
    close_core(core)
    core = make_core(data_dir, clock, monkeypatch)
    try:
        after = TestClient(make_app(core), base_url=BASE)
        after.cookies = cookies
        assert refusal(send(after, "/guard/passes", fields)) == i18n.t("zh-CN", "err.sent_twice")
        assert passes(core) == 1
    finally:
        close_core(core)


def test_a_refused_form_is_not_on_record_as_sent(data_dir, clock, monkeypatch):
    """A form refused (a field missing) before a restart is sent corrected after it."""
    core = make_core(data_dir, clock, monkeypatch)
    client = TestClient(make_app(core), base_url=BASE)
    login(client)
    fields = hidden_fields(client.get("/guard/passes").text, "pass-form") | KINDS[0][3]
    assert refusal(send(client, "/guard/passes", fields | {"holder": ""}))
    cookies = client.cookies
    close_core(core)
    core = make_core(data_dir, clock, monkeypatch)
    try:
        after = TestClient(make_app(core), base_url=BASE)
        after.cookies = cookies
        assert refusal(send(after, "/guard/passes", fields)) is None
        assert passes(core) == 1
    finally:
        close_core(core)


def test_a_confirmation_step_draws_its_own_token(guard_client, guard_core):
    """A list edit that asks to confirm first acts on the confirmation's form, once."""
    login(guard_client)
    page = guard_client.get("/guard/lists").text
    fields = hidden_fields(page, "quarantine-form") | KINDS[2][3]
    assert refusal(send(guard_client, "/guard/lists/quarantine/add", fields)) is None
    entry = guard_core.lists.current.quarantine[0]
    asked = send(guard_client, "/guard/lists/quarantine/remove",
                 {"csrf": fields["csrf"], "id": str(entry.id)})  # fmt: skip
    confirm = hidden_fields(asked.text, "confirm-form")
    assert confirm.get("once") and confirm["once"] != fields["once"]
    assert refusal(send(guard_client, "/guard/lists/quarantine/remove", confirm)) is None
    assert quarantined(guard_core) == 0


def temperature_form(page: str, pid: int) -> dict[str, str]:
    """The hidden fields of the temperature form of returnee ``pid`` on the returnees page."""
    action = f'action="/guard/community/returnees/{pid}/temperature"'
    form = page.split(action, 1)[1].split("</form>", 1)[0]
    return hidden_fields(f'id="t"{form}</form>', "t")


def test_a_returnee_temperature_sent_twice_is_one_reading(guard_client, guard_core, clock):
    """A helper's reading at the door, tapped twice (or resent on a slow phone): one reading
    in the day's checks, not two. The next person's form on the same page still records."""
    observation = guard_core.ledgers.observation
    people = [
        observation.register(name=name, household="3-402", phone="", origin="Wuhan",
                             date_back=clock.now().date(), actor="manager", note="", days=3)
        for name in ("Wang Fang", "Li Lei")
    ]  # fmt: skip
    login(guard_client)
    page = guard_client.get("/guard/community/returnees").text
    first, second = (temperature_form(page, p.id) | {"temp_c": "36.6"} for p in people)
    assert "once" in first
    path = f"/guard/community/returnees/{people[0].id}/temperature"
    assert refusal(send(guard_client, path, first)) is None
    assert refusal(send(guard_client, path, first)) == i18n.t("zh-CN", "err.sent_twice")
    assert len(observation.checks(people[0].id)) == 1
    # The other row's form on that same page is its own form.
    path = f"/guard/community/returnees/{people[1].id}/temperature"
    assert refusal(send(guard_client, path, second)) is None
    assert len(observation.checks(people[1].id)) == 1
    # The reading's own ledger row keeps the form's token: found again after a restart.
    rows = (
        guard_core.store.reader()
        .execute("SELECT action FROM audit WHERE json_extract(detail, '$.form_once') IS NOT NULL")
        .fetchall()
    )
    assert [r[0] for r in rows] == ["observation.check", "observation.check"]
