"""The guard's console on a Pi that booted without network (no battery-backed clock).

Until NTP steps the clock its events are stamped 1970 (a fresh image) or at the last
shutdown's time, flagged ``clock_synced = false``; the reports date them by their boot's
clock once it synchronised (``kiosk.dating``). The console shows them at that time too.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from guard_support import add_event, login, post

from kiosk import queries
from kiosk.clock import FakeClock
from ui import i18n

#: The real moment of the boot: 09:00 on 2 March in Shanghai (the default site's zone).
BOOT = datetime(2026, 3, 2, 1, 0, tzinfo=UTC)
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@pytest.fixture
def clock() -> FakeClock:
    """A Pi just booted on a fresh image: 1970, not synchronised."""
    return FakeClock(start=EPOCH, is_synced=False)


def ntp_step(clock: FakeClock, real: datetime) -> None:
    clock.set_wall(real)
    clock.is_synced = True


@pytest.fixture
def early(guard_core, clock):
    """A passage at 09:10 (the clock said 1970-01-01 00:10 UTC: 08:10 in Shanghai), NTP
    at 09:30, a passage at 09:40: the early one's ``seq``."""
    clock.advance(600)
    seq = add_event(guard_core, decision="deny", reasons=("no_temperature",), household="1-101")
    clock.advance(1200)
    ntp_step(clock, BOOT + timedelta(minutes=30))
    clock.advance(600)
    add_event(guard_core)
    return seq.seq


def test_the_feed_shows_a_passage_before_the_ntp_step_at_the_time_it_happened(guard_client, early):
    login(guard_client)
    rows = guard_client.get("/guard/api/feed").json()["rows"]
    assert [(r["seq"], r["time"]) for r in rows] == [(early + 1, "09:40:00"), (early, "09:10:00")]
    page = guard_client.get("/guard").text
    assert "09:10:00" in page
    assert "08:10:00" not in page
    newer = guard_client.get(f"/guard/api/feed?after={early - 1}").json()["rows"]
    assert [r["time"] for r in newer] == ["09:40:00", "09:10:00"]


def test_a_passages_page_shows_its_dated_time_and_what_the_clock_said(guard_client, early):
    login(guard_client)
    page = guard_client.get(f"/guard/passage/{early}").text
    assert "2026-03-02 09:10:00" in page
    assert "1970-01-01 08:10:00" in page  # the stamp as recorded, said to be the clock's


def test_a_passage_whose_boot_never_synchronised_says_its_clock_was_not_set(
    guard_client, guard_core, clock
):
    clock.advance(600)
    seq = add_event(guard_core).seq
    login(guard_client)
    rows = guard_client.get("/guard/api/feed").json()["rows"]
    assert rows[0]["time"].startswith("08:10:00 (")  # what the clock said, and that it was unset
    assert rows[0]["clock_unset"] is True
    assert "1970-01-01 08:10:00" in guard_client.get(f"/guard/passage/{seq}").text


def test_dating_the_rows_shown_costs_the_same_on_a_long_log(guard_core, clock):
    """Dating a page of the feed looks up only its own rows and their boots: by the
    primary keys, never a scan of the log (which is a year of passages on a Pi)."""
    store = guard_core.store
    for day, boot in enumerate(("boot-a", "boot-b")):
        store.boot_id = boot
        clock.set_wall(EPOCH)
        clock.is_synced = False
        for _ in range(60):
            clock.advance(30)
            add_event(guard_core)
        ntp_step(clock, BOOT + timedelta(days=day))
        for _ in range(60):
            clock.advance(30)
            add_event(guard_core)
    shown = queries.recent_events(store, 50) + [queries.event_by_seq(store, 1)]
    plan = [
        str(row[-1])
        for row in store.reader().execute(
            f"EXPLAIN QUERY PLAN {queries.DATED_ROWS_SQL}", [json.dumps([1, 2])]
        )
    ]
    assert not [p for p in plan if p.startswith("SCAN") and "json_each" not in p], plan
    assert any(p.startswith("SEARCH e USING INTEGER PRIMARY KEY") for p in plan), plan
    assert any(p.startswith("SEARCH b USING INDEX sqlite_autoindex_boot_clock") for p in plan)
    dated = queries.dated(store, shown)
    assert dated[-1]["dating"] == "boot"
    assert dated[-1]["dated_ts"] != dated[-1]["ts"]
    assert {e["dating"] for e in dated[:-1]} == {"clock"}


def test_a_guard_decides_by_hand_on_a_passage_made_before_the_ntp_step(
    guard_client, guard_core, early
):
    """Denied at 09:10 (no temperature: the clock said 1970), the resident is let in by hand
    at 09:40 about that passage: ten minutes old, not twelve hours and more."""
    from guard_support import hidden_fields, send

    login(guard_client)
    fields = hidden_fields(guard_client.get("/guard").text, "manual-form")
    fields |= {"decision": "pass", "subject": str(early), "reason": "measured by hand"}
    answer = send(guard_client, "/guard/manual", fields)
    assert "msg=ok.done" in answer.headers["location"], answer.headers["location"]
    assert queries.override_of(guard_core.store, early)["decision"] == "manual_pass"


def test_a_passage_made_13_hours_before_is_past_deciding_whatever_the_clock_said(
    guard_client, guard_core, clock
):
    """The same rule by the monotonic clock: no synchronised event has dated the passage
    yet (NTP answered, nobody passed since), and it is 13 hours old all the same."""
    from guard_support import hidden_fields, send

    clock.advance(600)
    seq = add_event(guard_core, decision="deny", reasons=("no_temperature",)).seq
    clock.advance(13 * 3600)
    ntp_step(clock, BOOT + timedelta(hours=13, minutes=10))
    login(guard_client)
    fields = hidden_fields(guard_client.get("/guard").text, "manual-form")
    fields |= {"decision": "pass", "subject": str(seq), "reason": "measured by hand"}
    answer = send(guard_client, "/guard/manual", fields)
    assert "err=" in answer.headers["location"]
    assert queries.override_of(guard_core.store, seq) is None


def fever_cards(core) -> list[str]:
    """The open alarm cards of a console started now (a restart: a new desk)."""
    from kiosk.alarms import AlarmDesk

    return [a.key for a in AlarmDesk(core.store, core.clock).open_alarms([])]


def test_a_fever_card_opened_before_the_ntp_step_is_still_open_after_a_restart(guard_core, clock):
    """09:10 a fever at the gate (the clock said 1970); NTP at 09:30; the daemon restarts at
    10:00: the card nobody closed is on the console again, to be closed."""
    clock.advance(600)
    seq = add_event(guard_core, decision="deny", reasons=("fever",), temp_c=38.6).seq
    ntp_step(clock, BOOT + timedelta(minutes=30))
    clock.advance(600)
    add_event(guard_core)
    clock.advance(1200)
    assert fever_cards(guard_core) == [f"event:{seq}"]


def test_a_fever_card_still_open_when_ntp_answered_just_before_the_restart(guard_core, clock):
    """No passage since NTP stepped the clock: nothing in the log dates the boot yet."""
    clock.advance(600)
    seq = add_event(guard_core, decision="deny", reasons=("fever",), temp_c=38.6).seq
    ntp_step(clock, BOOT + timedelta(minutes=30))
    assert fever_cards(guard_core) == [f"event:{seq}"]


def test_a_fever_card_closed_before_the_ntp_step_stays_closed_after_a_restart(guard_core, clock):
    clock.advance(600)
    seq = add_event(guard_core, decision="deny", reasons=("fever",), temp_c=38.6).seq
    clock.advance(300)
    guard_core.store.audit("alice", "alarm_ack", {"key": f"event:{seq}", "outcome": "ok"})
    ntp_step(clock, BOOT + timedelta(minutes=30))
    clock.advance(600)
    add_event(guard_core)
    assert fever_cards(guard_core) == []


def test_a_fever_13_hours_before_the_restart_is_past_the_desks_look_back(guard_core, clock):
    clock.advance(600)
    add_event(guard_core, decision="deny", reasons=("fever",), temp_c=38.6)
    clock.advance(13 * 3600)
    ntp_step(clock, BOOT + timedelta(hours=13, minutes=10))
    assert fever_cards(guard_core) == []
    add_event(guard_core)
    assert fever_cards(guard_core) == []


def test_finding_the_look_backs_first_event_reads_indexes_not_the_log(guard_core):
    args = {"boot": "b", "first": 1, "mono": 0, "ms": 0}
    plan = [
        str(row[-1])
        for row in guard_core.store.reader().execute(
            f"EXPLAIN QUERY PLAN {queries.FIRST_UNSYNCED_SQL}", args
        )
    ]
    assert any(p.startswith("SEARCH e USING INDEX events_unsynced") for p in plan), plan
    # Only the boots table (a row a boot) is read whole; no scan of the events.
    assert not [p for p in plan if p.startswith(("SCAN e", "SCAN events"))], plan


@pytest.mark.slow
def test_a_visitor_registered_before_the_ntp_step_is_in_the_days_registrations(
    guard_client, guard_core, clock
):
    """Registered at 09:10 (the clock said 1970), NTP at 09:30: the register page's recent
    registrations still list the visitor, at 09:10, so nobody registers them again."""
    clock.advance(600)
    person = {"name": "Han Meimei", "unit": "3-402", "note": "visiting"}
    seq = add_event(
        guard_core, decision="manual_pass", reasons=("guard_override",), kind="registration",
        operator="alice", person=person, temp_c=36.6,
    ).seq  # fmt: skip
    clock.advance(1200)
    ntp_step(clock, BOOT + timedelta(minutes=30))
    login(guard_client)
    page = guard_client.get("/guard/register").text
    recent = page.split('class="count">', 1)[1]
    assert recent.startswith("1<"), recent[:40]
    # Nothing in the log dates the boot yet: the clock, synchronised now, does.
    assert f'<td class="num">{seq}</td><td>09:10:00</td>' in page
    clock.advance(60)
    add_event(guard_core)  # the boot's first synchronised event dates it
    page = guard_client.get("/guard/register").text
    assert f'<td class="num">{seq}</td><td>09:10:00</td>' in page


def test_a_fever_card_opened_before_the_ntp_step_shows_when_the_fever_was(
    guard_client, guard_core, clock
):
    """The card raised at 09:10 (the clock said 1970-01-01 00:10 UTC) says 03-02 09:10:00 once
    NTP has stepped the clock, as the feed and the day's report do; while the clock is not
    set it says what the clock said, and that it was not set."""
    clock.advance(600)
    add_event(guard_core, decision="deny", reasons=("fever",), temp_c=38.6, household="1-101")
    login(guard_client)
    cards = guard_client.get("/guard/api/feed").json()["alarms"]
    assert cards[0]["time"].startswith("01-01 08:10:00 (")
    clock.advance(1200)
    ntp_step(clock, BOOT + timedelta(minutes=30))
    [card] = guard_client.get("/guard/api/feed").json()["alarms"]
    assert card["time"] == "03-02 09:10:00"


def test_the_live_stream_of_a_guard_signed_in_before_the_ntp_step_goes_on_after_it(
    guard_core, clock
):
    """Signed in at 09:05 (the clock said 1970); NTP steps it 56 years on at 09:30. The
    shift has hours left: the live feed goes on, it does not end as if the shift had."""
    import asyncio

    from ui.guard.deps import Guard
    from ui.guard.live import FeedStream

    g = Guard.build(guard_core)
    clock.advance(300)
    session = g.auth.sessions.read(g.auth.sessions.issue(g.auth.accounts.get("alice"))[0])
    stream = FeedStream(g, session, "en", 0)
    assert asyncio.run(stream.expired()) is None
    clock.advance(1500)
    ntp_step(clock, BOOT + timedelta(minutes=30))
    assert asyncio.run(stream.expired()) is None
    clock.advance(guard_core.config.web.session_hours * 3600)  # the shift is over
    assert asyncio.run(stream.expired()) == ""  # over, no roster's reason to say


def test_a_card_opened_before_the_step_and_a_restart_is_closed_after_them_for_good(
    guard_core, clock
):
    """The field round's shift: a fever at 09:10 (stamped 1970); NTP at 09:30; the daemon
    restarts; the guard closes the card at 09:45; the daemon restarts again: it stays
    closed, and it was shown and closed at 09:10."""
    from guard_support import BASE, make_app, post
    from starlette.testclient import TestClient

    clock.advance(600)
    add_event(guard_core, decision="deny", reasons=("fever",), temp_c=38.6, household="1-101")
    clock.advance(1200)
    ntp_step(clock, BOOT + timedelta(minutes=30))
    clock.advance(900)
    with TestClient(make_app(guard_core), base_url=BASE) as restarted:
        csrf = login(restarted)
        [card] = restarted.get("/guard/api/feed").json()["alarms"]
        assert card["time"] == "03-02 09:10:00"
        answer = post(restarted, "/guard/alarms/ack", csrf, only=f"{card['key']}@{card['count']}")
        assert "err=" not in answer.headers["location"]
    with TestClient(make_app(guard_core), base_url=BASE) as again:
        login(again)
        assert again.get("/guard/api/feed").json()["alarms"] == []


def test_an_earlier_visitor_found_by_name_shows_when_they_were_registered(
    guard_client, guard_core, clock
):
    """Looking up yesterday's visitor to fill the form: the one registered minutes after a
    boot without network is said to have come at 09:10 on 2 March, not in 1970."""
    clock.advance(600)
    person = {"name": "Han Meimei", "unit": "3-402", "note": "visiting"}
    add_event(
        guard_core, decision="manual_pass", reasons=("guard_override",), kind="registration",
        operator="alice", person=person, temp_c=36.6,
    )  # fmt: skip
    clock.advance(1200)
    ntp_step(clock, BOOT + timedelta(minutes=30))
    clock.advance(86400)
    add_event(guard_core)
    csrf = login(guard_client)
    page = post(guard_client, "/guard/register/search", csrf, q="Han").text
    found = page.split('id="found"', 1)[1][:600]
    assert "2026-03-02 09:10" in found, found


@pytest.mark.parametrize(
    "message",
    [
        {"type": "alarm", "alarm": "sensor_fault", "state": "raised"},  # a device card
        {"type": "alarm", "alarm": "tamper", "state": "raised"},  # a bus alarm of no passage
    ],
)
def test_a_device_card_raised_from_the_bus_before_the_ntp_step_is_not_dated_1970(
    guard_client, guard_core, clock, message
):
    """A thermometer fault at 09:10 on a Pi booted without network (the clock said 1970-01-01
    00:10 UTC): the card says what the clock said and that it was not set, as the fever's
    card does, and 03-02 09:10:00 once NTP stepped the clock; never a bare 1970 time."""
    clock.advance(600)
    desk = guard_client.app.state.guard.alarms
    login(guard_client)
    assert desk.note_message(message | {"mono_ns": clock.monotonic_ns()})
    [card] = guard_client.get("/guard/api/feed").json()["alarms"]
    assert card["time"].startswith("01-01 08:10:00 (")
    assert card["time"] != "01-01 08:10:00"
    clock.advance(1200)
    ntp_step(clock, BOOT + timedelta(minutes=30))
    [card] = guard_client.get("/guard/api/feed").json()["alarms"]
    assert card["time"] == "03-02 09:10:00"


def test_the_calibration_pages_last_reading_before_the_ntp_step_is_not_dated_1970(
    guard_client, guard_core, clock
):
    """The morning's calibration on a Pi booted without network: the kiosk reading the
    clinical one goes with was taken at 09:10 (the clock said 1970). The page says what the
    clock said and that it was not set, then 2026-03-02 09:10:00 once NTP stepped it."""
    clock.advance(600)
    add_event(guard_core, temp_c=36.6, temp_object_c=34.1, temp_ambient_c=22.0)
    login(guard_client)
    page = guard_client.get("/guard/calibration").text
    assert "1970-01-01 08:10:00 (" in page
    clock.advance(1200)
    ntp_step(clock, BOOT + timedelta(minutes=30))
    page = guard_client.get("/guard/calibration").text
    assert "2026-03-02 09:10:00" in page
    assert "1970-01-01" not in page


def test_a_calibration_made_on_a_clock_never_set_is_not_said_made_in_1970(
    guard_client, guard_core, clock
):
    """A technician calibrated a fresh card before it had network time: the pairs typed on
    the console and the fit (``kiosk calibrate fit``, the machine's clock) were stamped 1970,
    and the calibration and devices pages said "fitted for this site on 1970-01-01" as fact."""
    import re

    from guard_support import post

    from kiosk.calibration import default_path, fit_file

    clock.advance(600)
    csrf = login(guard_client)
    added = post(
        guard_client, "/guard/calibration", csrf, clinical_c="36.8", object_c="34.9",
        ambient_c="24.0",
    )  # fmt: skip
    assert "err=" not in added.headers["location"]
    fit_file(default_path(guard_core.data_dir), clock.now())
    unsynced = f"({i18n.t('en', 'banner.clock_unsynced')})"
    for path in ("/guard/calibration?lang=en", "/guard/health?lang=en"):
        page = guard_client.get(path).text
        said = re.findall(r"1970-01-01[0-9: ]*(?:\([^)]*\))?", page)
        assert said and all(s.endswith(unsynced) for s in said), (path, said)


def test_a_list_entry_made_on_a_clock_never_set_is_not_said_made_in_1970(
    guard_client, guard_core, clock
):
    """A guard revoked a lost pass and added a household on a fresh card before it had
    network time: the lists page said they were changed on 1970-01-01, and that the lists
    were last updated then."""
    import re

    from guard_support import post

    clock.advance(600)
    csrf = login(guard_client)
    post(guard_client, "/guard/lists/revocations/add", csrf, pass_id="0123456789ab",
         note="lost", confirm="yes")  # fmt: skip
    post(guard_client, "/guard/lists/households/add", csrf, household="9-909", residents="3")
    assert guard_core.lists.current.is_revoked("0123456789ab")
    unsynced = f"({i18n.t('en', 'banner.clock_unsynced')})"
    page = guard_client.get("/guard/lists?lang=en").text
    assert 'name="from" type="date" value=""' in page  # no "today" offered on 1970
    said = re.findall(r"1970-01-01[0-9: ]*(?:\([^)]*\))?", page)
    assert said and all(s.endswith(unsynced) for s in said), said


def test_a_pass_is_not_issued_on_the_reading_of_a_clock_ntp_has_not_set(
    guard_client, guard_core, clock
):
    """A pass issued at 09:10 on a fresh card booted without network would be valid from 1970
    to 1970-01-02: a card handed to a visitor already expired once NTP sets the clock. It is
    refused, in words saying what the clock reads, nothing recorded, until the guard types the
    time now as its start (kiosk.passes.pass_start)."""
    from guard_support import hidden_fields, refused_with, send

    from ui import i18n

    clock.advance(600)
    login(guard_client)
    typed = {"household": "4-401", "holder": "Zhao Lei", "days": "1"}
    page = guard_client.get("/guard/passes").text
    assert 'name="start" type="datetime-local" required' in page
    assert "1970-01-01 08:10" in page.split('id="pass-clock"')[1].split("</p>")[0]
    fields = hidden_fields(page, "pass-form") | typed
    refused = send(guard_client, "/guard/passes", fields)
    said = i18n.t("zh-CN", "err.pass_clock_unsynced", reading="1970-01-01 08:10")
    assert refused_with(guard_client, refused) == said
    assert queries.issued_passes(guard_core.store) == []
    issued = send(guard_client, "/guard/passes", fields | {"start": "2026-03-02T09:10"})
    assert issued.status_code == 200
    [row] = queries.issued_passes(guard_core.store)
    assert row.detail["valid_from"] == "2026-03-02T01:10:00+00:00"


#: The wall clock a Pi restarted after a power cut reads until NTP answers: the time of the
#: last shutdown (the log's last synchronised stamp), 22:00 the evening before in Shanghai.
SHUTDOWN = BOOT - timedelta(hours=11)


def _issue_at_10_past(guard_client, guard_core, clock) -> str:
    """A pass issued at 09:10 on a clock that read 22:10 the evening before."""
    clock.set_wall(SHUTDOWN)
    clock.advance(600)
    csrf = login(guard_client)
    response = guard_client.post(
        "/guard/passes",
        data={
            "csrf": csrf,
            "household": "3-402",
            "holder": "Wang",
            "days": "30",
            "start": "2026-03-02T09:10",
        },  # fmt: skip
    )
    assert response.status_code == 200, response.text
    return queries.issued_passes(guard_core.store)[0].detail["pass_id"]


def _issued_cell(page: str, pass_id: str) -> str:
    row = page.split(f'data-pass="{pass_id}"')[1].split("</tr>")[0]
    return row.split("<td>")[-1]


def test_a_pass_issued_before_the_ntp_step_is_listed_at_the_time_it_was_issued(
    guard_client, guard_core, clock
):
    pass_id = _issue_at_10_past(guard_client, guard_core, clock)
    clock.advance(1200)
    ntp_step(clock, BOOT + timedelta(minutes=30))
    cell = _issued_cell(guard_client.get("/guard/passes").text, pass_id)
    assert "2026-03-02 09:10" in cell and "2026-03-01 22:10" not in cell  # dated by now
    clock.advance(600)
    add_event(guard_core)  # the boot's first synchronised event dates it from now on
    cell = _issued_cell(guard_client.get("/guard/passes").text, pass_id)
    assert "2026-03-02 09:10" in cell and "2026-03-01 22:10" not in cell


def test_a_pass_issued_on_a_clock_never_set_says_so_beside_its_time(
    guard_client, guard_core, clock
):
    pass_id = _issue_at_10_past(guard_client, guard_core, clock)
    cell = _issued_cell(guard_client.get("/guard/passes").text, pass_id)
    assert f"2026-03-01 22:10 ({i18n.t('zh-CN', 'banner.clock_unsynced')})" in cell


def test_a_night_handover_opened_before_the_ntp_step_reads_from_the_shift_to_when_it_was_opened(
    guard_client, guard_core, clock
):
    """The night guard's shift 20:00-08:00; a power cut in the night, and at 08:00 the Pi's
    clock read 22:10 the evening before (its last shutdown) when alice handed over. The
    handover said when it was opened as the clock did; dated by its boot's clocks once NTP
    answered, it reads 2026-03-02 08:00, across the two calendar days of the shift."""
    roster, gate = guard_core.ledgers.roster, guard_core.config.site.kiosk_id
    night = SHUTDOWN - timedelta(hours=2)  # 20:00 on 1 March in Shanghai
    roster.add_shift(gate, "alice", night, night + timedelta(hours=12), actor="root")
    clock.set_wall(SHUTDOWN)
    clock.advance(600)  # really 08:00 on 2 March; the clock reads 22:10 the evening before
    csrf = login(guard_client)
    opened = guard_client.post("/guard/community/handover", data={"csrf": csrf, "incoming": "root"})
    assert opened.status_code in (200, 303)
    unset = i18n.t("en", "banner.clock_unsynced")
    page = guard_client.get("/guard/community/handover?lang=en").text
    assert f"2026-03-01 22:10 ({unset})" in page  # what the clock said, and that it was unset
    clock.advance(600)
    ntp_step(clock, BOOT - timedelta(hours=1) + timedelta(minutes=10))  # 08:10 on 2 March
    page = guard_client.get("/guard/community/handover?lang=en").text
    assert "2026-03-01 20:00 – 2026-03-02 08:00" in page
    assert "22:10" not in page


@pytest.mark.parametrize("page", ["/guard/community", "/guard/community/handover"])
def test_on_a_clock_never_set_the_console_does_not_say_nobody_is_on_duty(
    guard_client, guard_core, clock, page
):
    """A Pi booted without network reads 1970: no shift covers it, and the console said
    "Nobody on duty" while alice's shift was on. Who is on duty cannot be told yet."""
    roster, gate = guard_core.ledgers.roster, guard_core.config.site.kiosk_id
    roster.add_shift(gate, "alice", BOOT - timedelta(hours=1), BOOT + timedelta(hours=7), "root")
    login(guard_client)
    shown = guard_client.get(f"{page}?lang=en").text
    assert "Nobody on duty" not in shown
    assert "The clock is not set yet: who is on duty cannot be told" in shown
    ntp_step(clock, BOOT)
    shown = guard_client.get(f"{page}?lang=en").text
    assert '<p class="c-guard">alice' in shown and "cannot be told" not in shown


def test_a_service_request_opened_before_the_ntp_step_shows_when_it_was_opened(
    guard_client, guard_core, clock
):
    """A confined household's food request taken down at 09:10 on a clock reading 1970:
    the services page said it was opened on 1 January 1970, as fact."""
    clock.advance(600)  # really 09:10; the clock reads 1970-01-01 08:10 in Shanghai
    desk = guard_core.ledgers.services
    opened = desk.open("5-702", "food", "alice", confined=True)
    login(guard_client)
    unset = i18n.t("en", "banner.clock_unsynced")
    row = guard_client.get("/guard/community/services?lang=en").text.split(
        f'data-request="{opened.id}"'
    )[1]
    assert f"1970-01-01 08:10 ({unset})" in row.split("</tr>")[0]
    clock.advance(1200)
    ntp_step(clock, BOOT + timedelta(minutes=30))
    row = guard_client.get("/guard/community/services?lang=en").text.split(
        f'data-request="{opened.id}"'
    )[1]
    assert "2026-03-02 09:10" in row.split("</tr>")[0] and "1970" not in row.split("</tr>")[0]
    stamps = desk.take(opened.id, "alice").stamps()
    assert stamps["opened_at"].boot_id == guard_core.store.boot_id
    assert stamps["taken_at"].synced  # taken after the step


def test_a_households_passage_before_the_ntp_step_is_dated_on_its_page_or_said_unset(
    guard_client, guard_core, clock
):
    """The household's page listed a passage stamped on a clock never set at 1970 as fact,
    and still did after NTP answered until the next passage dated it (the feed dates it at
    once)."""
    led = guard_core.ledgers
    led.compound.apply(
        led.compound.plan_import(b"building,floor,household\n5,7,5-702\n", "map.csv"), "root"
    )
    clock.advance(600)  # really 09:10; the clock reads 1970-01-01 08:10 in Shanghai
    add_event(guard_core, household="5-702", holder="Wang", temp_c=36.1)
    login(guard_client)

    def passages() -> str:
        home = guard_client.get("/guard/community/household/1?lang=en").text
        return home.split('id="passages"', 1)[1].split("</section>", 1)[0]

    assert f"1970-01-01 08:10:00 ({i18n.t('en', 'banner.clock_unsynced')})" in passages()
    clock.advance(1200)
    ntp_step(clock, BOOT + timedelta(minutes=30))  # nobody has passed since
    shown = passages()
    assert "2026-03-02 09:10:00" in shown and "1970" not in shown


def test_a_six_hour_pass_issued_after_a_power_cut_is_valid_from_the_time_the_guard_typed(
    guard_client, guard_core, clock
):
    """09:10, after a night's power cut: the clock reads 22:10 the evening before (the last
    shutdown's time). A six-hour visitor's pass signed on that reading was valid 22:10-04:10,
    expired when handed over. The page shows the clock's time; the guard types the time now."""
    from guard_support import hidden_fields, refused_with, send

    clock.set_wall(SHUTDOWN)
    clock.advance(600)
    login(guard_client)
    page = guard_client.get("/guard/passes").text
    assert "2026-03-01 22:10" in page.split('id="pass-clock"')[1].split("</p>")[0]
    fields = hidden_fields(page, "pass-form") | {
        "household": "3-402", "holder": "Wang", "days": "0.25", "role": "visitor",
    }  # fmt: skip
    bad = send(guard_client, "/guard/passes", fields | {"start": "9:10"})
    assert refused_with(guard_client, bad) == i18n.t("zh-CN", "err.pass_start_format")
    assert queries.issued_passes(guard_core.store) == []
    issued = send(guard_client, "/guard/passes", fields | {"start": "2026-03-02T09:10"})
    assert issued.status_code == 200
    [row] = queries.issued_passes(guard_core.store)
    assert row.detail["valid_from"] == "2026-03-02T01:10:00+00:00"
    assert row.detail["valid_until"] == "2026-03-02T07:10:00+00:00"  # 15:10: six hours on


def test_on_a_synchronised_clock_the_pass_starts_at_its_time_and_no_start_is_asked(
    guard_client, guard_core, clock
):
    from guard_support import hidden_fields, refused_with, send

    ntp_step(clock, BOOT)
    login(guard_client)
    page = guard_client.get("/guard/passes").text
    assert 'name="start"' not in page and 'id="pass-clock"' not in page
    fields = hidden_fields(page, "pass-form") | {"household": "3-402", "holder": "Wang"}
    far = send(guard_client, "/guard/passes", fields | {"days": "1", "start": "2026-03-05T09:00"})
    words = {"earliest": "2026-03-02 08:50", "reading": "2026-03-02 09:00"}
    assert refused_with(guard_client, far) == i18n.t("zh-CN", "err.pass_start_not_now", **words)
    assert send(guard_client, "/guard/passes", fields | {"days": "1"}).status_code == 200
    [row] = queries.issued_passes(guard_core.store)
    assert row.detail["valid_from"] == "2026-03-02T01:00:00+00:00"


@pytest.fixture
def right_rtc(data_dir, monkeypatch):
    """A gate with a right RTC and no network time, off overnight: its log's last synchronised
    stamp is 22:00 last night; it is 09:00, and its clock says so, unsynchronised."""
    from fastapi.testclient import TestClient
    from guard_support import BASE, close_core, make_app, make_core

    from kiosk.clock import FlooredClock

    before = make_core(data_dir, FakeClock(start=SHUTDOWN), monkeypatch)
    add_event(before)
    close_core(before)
    base = FakeClock(start=BOOT, is_synced=False)
    core = make_core(data_dir, FlooredClock(base), monkeypatch)
    try:
        with TestClient(make_app(core), base_url=BASE) as client:
            yield client, core, base
    finally:
        close_core(core)


def test_a_guard_vouches_for_a_right_unsynchronised_clock_and_the_floor_is_its_reading(
    right_rtc,
):
    """Without the guard's word the floor lags the clock all day (last night's stamp plus
    the uptime): what the two disagree on went to the guard until NTP, which never came.
    The console shows what the clock reads (site time) and takes the guard's word for it:
    audited with who and when; the floor is the clock's reading."""
    from guard_support import hidden_fields, send

    client, core, base = right_rtc
    login(client)
    page = client.get("/guard/passes").text
    vouch = page.split('id="clock-vouch"')[1].split("</form>")[0]
    assert "2026-03-02 09:00" in vouch  # what the clock reads, in the site's zone
    done = send(client, "/guard/passes/clock", hidden_fields(page, "clock-vouch"))
    assert done.status_code == 303
    assert core.clock.floor() == BOOT
    [row] = [a for a in core.store.audits() if a["action"] == "clock.vouched"]
    assert row["actor"] == "alice" and row["detail"]["why"] == "clock"
    assert 'id="clock-vouch"' not in client.get("/guard/passes").text  # nothing to vouch now


def test_a_start_the_guard_typed_raises_the_floor_as_a_vouch_does(right_rtc):
    from guard_support import hidden_fields, send

    client, core, base = right_rtc
    base.advance(600)
    login(client)
    page = client.get("/guard/passes").text
    fields = hidden_fields(page, "pass-form") | {
        "household": "3-402", "holder": "Wang", "days": "1", "start": "2026-03-02T09:10",
    }  # fmt: skip
    assert send(client, "/guard/passes", fields).status_code == 200
    assert core.clock.floor() == BOOT + timedelta(minutes=10)
    [row] = [a for a in core.store.audits() if a["action"] == "clock.vouched"]
    assert row["actor"] == "alice" and row["detail"]["why"] == "pass_start"


def test_a_start_typed_more_than_a_day_ahead_of_the_gates_clock_is_refused(right_rtc):
    """A mistyped month on the console's pass form: refused, naming both times."""
    from guard_support import hidden_fields, refused_with, send

    client, core, base = right_rtc
    login(client)
    page = client.get("/guard/passes").text
    fields = hidden_fields(page, "pass-form") | {
        "household": "3-402", "holder": "Wang", "days": "1", "start": "2026-04-02T09:00",
    }  # fmt: skip
    refused = send(client, "/guard/passes", fields)
    said = {"start": "2026-04-02 09:00", "reading": "2026-03-02 09:00"}
    assert refused_with(client, refused) == i18n.t("zh-CN", "err.pass_start_far", **said)
    assert queries.issued_passes(core.store) == []


@pytest.fixture
def fresh_card(data_dir, monkeypatch):
    """A gate on a fresh card: its clock reads 1970, unsynchronised, its log empty."""
    from fastapi.testclient import TestClient
    from guard_support import BASE, close_core, make_app, make_core

    from kiosk.clock import FlooredClock

    base = FakeClock(start=EPOCH, is_synced=False)
    core = make_core(data_dir, FlooredClock(base), monkeypatch)
    try:
        with TestClient(make_app(core), base_url=BASE) as client:
            yield client, core, base
    finally:
        close_core(core)


def test_a_start_typed_on_a_clock_at_1970_vouches_for_nothing(fresh_card):
    """The first pass on a fresh card wrote 'clock.vouched at 1970' (the earlier of the
    typed start and the clock) and every later pass was refused as too far from it until
    NTP: a typed start the clock disagrees with vouches for nothing."""
    from guard_support import hidden_fields, send

    client, core, base = fresh_card
    login(client)
    for household, start in (("3-402", "2026-03-02T09:10"), ("3-403", "2026-03-02T09:15")):
        page = client.get("/guard/passes").text
        fields = hidden_fields(page, "pass-form") | {
            "household": household, "holder": "Wang", "days": "1", "start": start,
        }  # fmt: skip
        assert send(client, "/guard/passes", fields).status_code == 200
        base.advance(300)
    assert len(queries.issued_passes(core.store)) == 2
    assert not [a for a in core.store.audits() if a["action"] == "clock.vouched"]
    assert core.clock.floor() is None


def test_a_vouch_that_takes_nothing_says_so_and_is_not_audited_as_done(right_rtc):
    """A double post, or one after network time answered, was answered 'vouched' and audited
    as done though nothing was taken: the guard is told there is nothing to vouch for."""
    from guard_support import hidden_fields, refused_with, send

    client, core, base = right_rtc
    login(client)
    page = client.get("/guard/passes").text
    fields = hidden_fields(page, "clock-vouch")
    assert refused_with(client, send(client, "/guard/passes/clock", fields)) is None
    nothing = i18n.t("zh-CN", "err.nothing_to_vouch")
    assert refused_with(client, send(client, "/guard/passes/clock", fields)) == nothing
    base.is_synced = True
    assert refused_with(client, send(client, "/guard/passes/clock", fields)) == nothing
    vouched = [a for a in core.store.audits() if a["action"] == "clock.vouched"]
    assert len(vouched) == 1
    posts = [a["action"] for a in core.store.audits() if a["action"].startswith("clock_vouched")]
    assert posts == ["clock_vouched", "clock_vouched_failed", "clock_vouched_failed"]


def test_a_vouch_is_for_the_reading_the_guard_saw_not_one_the_clock_stepped_to(right_rtc):
    """'The clock is right' vouched for whatever the clock read when it was tapped: a clock
    stepped five hours (a wrong `date -s`) after the page was drawn was vouched for, unseen.
    The form carries the reading shown; a tap vouches only while the clock reads that plus
    the time since, within a minute; else the page says the clock changed, nothing taken."""
    from guard_support import hidden_fields, refused_with, send

    client, core, base = right_rtc
    login(client)
    page = client.get("/guard/passes").text
    base.set_wall(BOOT + timedelta(hours=5))
    changed = send(client, "/guard/passes/clock", hidden_fields(page, "clock-vouch"))
    assert refused_with(client, changed) == i18n.t("zh-CN", "err.clock_vouch_changed")
    assert core.clock.floor() < BOOT
    assert not [a for a in core.store.audits() if a["action"] == "clock.vouched"]
    page = client.get("/guard/passes").text  # drawn again: the reading it shows now
    base.advance(50)  # the guard checks a phone: the clock ran on as it was shown to
    done = send(client, "/guard/passes/clock", hidden_fields(page, "clock-vouch"))
    assert refused_with(client, done) is None
    assert core.clock.floor() == BOOT + timedelta(hours=5, seconds=50)


@pytest.mark.parametrize(
    "sent",
    [
        {"shown": "9999-12-31T23:59:59+00:00", "drawn": "0"},  # the calendar's last second
        {"shown": "0001-01-01T00:00:00+14:00", "drawn": "0"},  # before its first, in UTC
        {"drawn": "-" + "9" * 23},  # the monotonic clock's far past
        {"drawn": "9" * 40},  # its far future
    ],
)
def test_a_vouch_sent_with_a_reading_at_the_calendars_ends_is_refused_in_the_guards_words(
    right_rtc, sent
):
    """A vouch whose `shown` was the calendar's last second, or whose `drawn` was far in
    the monotonic past, was a 500 (OverflowError, a traceback in the journal): the page says
    the clock changed, and nothing is vouched for."""
    from guard_support import hidden_fields, refused_with, send

    client, core, base = right_rtc
    login(client)
    page = client.get("/guard/passes").text
    answer = send(client, "/guard/passes/clock", hidden_fields(page, "clock-vouch") | sent)
    assert answer.status_code in (303, 400)
    assert refused_with(client, answer) == i18n.t("zh-CN", "err.clock_vouch_changed")
    assert core.clock.floor() < BOOT
    assert not [a for a in core.store.audits() if a["action"] == "clock.vouched"]


@pytest.mark.parametrize(
    "start",
    [
        "0001-01-01T00:00",
        "0001-01-01T00:00:00+14:00",
        "9999-12-31T23:59:59-14:00",
        "9999-12-31T20:00:00+00:00",
        "1999-12-31T23:59",
    ],
)
@pytest.mark.parametrize("synced", [True, False])
def test_a_pass_start_at_the_calendars_ends_is_refused_in_the_guards_words(
    guard_client, guard_core, clock, start, synced
):
    """A start typed (or sent) at the calendar's ends was a 500: OverflowError where it met
    the site's zone (`kiosk.days.shown_local`, the refusal's `local_time`). It is refused as
    the days a person may type, the form drawn again, nothing issued."""
    from guard_support import hidden_fields, refused_with, send

    if synced:
        ntp_step(clock, BOOT)
    login(guard_client)
    page = guard_client.get("/guard/passes").text
    fields = hidden_fields(page, "pass-form") | {"household": "3-402", "holder": "Wang"}
    refused = send(guard_client, "/guard/passes", fields | {"days": "1", "start": start})
    assert refused.status_code == 400
    words = {"field": i18n.t("zh-CN", "pass.start"), "lo": "2000-01-01", "hi": "2999-12-31"}
    assert refused_with(guard_client, refused) == i18n.t("zh-CN", "err.range", **words)
    assert queries.issued_passes(guard_core.store) == []
