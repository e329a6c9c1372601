"""Household services: a quarantined household's requests, taken by a named helper, done."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from kiosk import services
from kiosk.clock import FakeClock
from kiosk.community import CommunityError
from kiosk.services import ServiceDesk
from kiosk.store import EventLog

TZ = ZoneInfo("Asia/Shanghai")
DAY = date(2026, 2, 12)


@pytest.fixture
def clock():
    return FakeClock(start=datetime(2026, 2, 12, 0, 0, tzinfo=UTC))  # 08:00 Shanghai


@pytest.fixture
def log(tmp_path, clock):
    store = EventLog(tmp_path / "k.db", "g", clock, "NORMAL", migrations=[services.MIGRATIONS])
    yield store.open()
    store.close()


@pytest.fixture
def desk(log, clock):
    return ServiceDesk(log, clock, TZ)


def test_a_quarantined_households_day_of_requests(desk, log, clock):
    food = desk.open("5-1-702", "food", "guard Zhao", confined=True, note="rice, no lift")
    rubbish = desk.open("5-1-702", "rubbish", "guard Zhao", confined=True)
    medicine = desk.open("5-1-702", "medicine", "guard Zhao", confined=True)
    clock.advance(1800)
    assert desk.take(food.id, "helper Chen").taken_by == "helper Chen"
    clock.advance(1800)
    done = desk.done(food.id, "helper Chen")
    assert (done.state, done.taken_by) == ("done", "helper Chen")
    assert done.done_at == datetime(2026, 2, 12, 1, 0, tzinfo=UTC)
    desk.done(rubbish.id, "helper Wu")  # done without being taken first: Wu took it
    assert desk.get(rubbish.id).taken_by == "helper Wu"
    assert [r.id for r in desk.requests(household="5-1-702", open_only=True)] == [medicine.id]
    assert desk.counts(DAY) == {
        "opened": 3, "done": 2, "open_at_end": 1,
        "by_kind": {"food": 1, "medicine": 1, "rubbish": 1},
    }  # fmt: skip
    clock.advance(24 * 3600)
    desk.cancel(medicine.id, "manager")
    assert desk.counts(DAY + timedelta(days=1))["open_at_end"] == 0
    assert desk.counts(DAY)["open_at_end"] == 1  # a past day is counted as it ended
    actions = [a["action"] for a in log.audits(limit=50)]
    assert actions == ["service.open"] * 3 + ["service.taken", "service.done", "service.done",
                                              "service.cancelled"]  # fmt: skip
    assert all("rice" not in str(a["detail"]) for a in log.audits(limit=50))


def test_only_confined_households_get_requests(desk, log):
    with pytest.raises(CommunityError, match="neither quarantined nor under observation"):
        desk.open("1-1-101", "food", "guard", confined=False)
    assert desk.requests() == [] and log.audits() == []


@pytest.mark.parametrize(
    ("household", "kind", "actor", "message"),
    [
        ("", "food", "g", "household: required"),
        ("5-1-702", "pizza", "g", "kind: one of"),
        ("5-1-702", "food", " ", "actor: required"),
        ("x" * 41, "food", "g", "household: at most 40"),
    ],
)
def test_bad_requests_are_refused(desk, household, kind, actor, message):
    with pytest.raises(CommunityError, match=message):
        desk.open(household, kind, actor, confined=True)


def test_a_request_moves_forward_only(desk):
    r = desk.open("5-1-702", "parcel", "g", confined=True)
    desk.done(r.id, "h")
    with pytest.raises(CommunityError, match="is done; cannot be taken"):
        desk.take(r.id, "h")
    with pytest.raises(CommunityError, match="no service request 42"):
        desk.done(42, "h")


def test_purge_empties_notes_of_closed_requests(desk, log, clock):
    r = desk.open("5-1-702", "food", "g", confined=True, note="call 13812345678")
    still = desk.open("5-1-702", "medicine", "g", confined=True, note="open one")
    desk.done(r.id, "h")
    clock.advance(40 * 24 * 3600)
    now = clock.now()
    assert log.submit(lambda db: services.purge(db, now - timedelta(days=30), now)) == 1
    assert (desk.get(r.id).note, desk.get(r.id).household) == ("", "")
    assert desk.get(still.id).note == "open one"


def test_a_request_opened_before_the_ntp_step_counts_on_the_day_it_was_opened(tmp_path):
    """A food request taken down at 09:10 on 2 March on a clock reading 1970 (a Pi booted
    without network): the day's report counted it opened on 1 January 1970, and on 2 March
    as nothing new."""
    from datetime import UTC, date, datetime
    from zoneinfo import ZoneInfo

    from kiosk import services
    from kiosk.clock import FakeClock
    from kiosk.services import ServiceDesk, counts_for_day
    from kiosk.store import EventDraft, EventLog

    clock = FakeClock(start=datetime(1970, 1, 1, tzinfo=UTC), is_synced=False)
    store = EventLog(tmp_path / "k.db", "gate-1", clock, "NORMAL", migrations=[services.MIGRATIONS])
    log = store.open()
    try:
        clock.advance(600)
        ServiceDesk(log, clock, "Asia/Shanghai").open("5-702", "food", "Zhao", confined=True)
        clock.advance(1200)
        clock.set_wall(datetime(2026, 3, 2, 1, 30, tzinfo=UTC))  # NTP: 09:30 in Shanghai
        clock.is_synced = True
        log.append(EventDraft(direction="in", decision="pass"))  # dates the boot
        tz = ZoneInfo("Asia/Shanghai")
        assert counts_for_day(log.reader(), date(2026, 3, 2), tz)["opened"] == 1
        assert counts_for_day(log.reader(), date(1970, 1, 1), tz)["opened"] == 0
    finally:
        store.close()


@pytest.mark.parametrize("dated_by_an_event", [True, False])
def test_a_request_closed_before_the_ntp_step_keeps_its_note_for_the_retention_period(
    tmp_path, dated_by_an_event
):
    """A request done at 09:10 on 2 March on a clock reading 1970 (a Pi booted without
    network): the first purge once NTP set the clock emptied its household and note at once
    (1970 is older than any cutoff), 30 days before retention said. Its close is dated as an
    event is: by its boot's synchronised clock (an event since, or this boot's clock now)."""
    from kiosk.retention import purge
    from kiosk.store import EventDraft

    clock = FakeClock(start=datetime(1970, 1, 1, tzinfo=UTC), is_synced=False)
    store = EventLog(tmp_path / "k.db", "gate-1", clock, "NORMAL", migrations=[services.MIGRATIONS])
    log = store.open()
    try:
        desk = ServiceDesk(log, clock, TZ)
        clock.advance(600)
        request = desk.open("5-702", "food", "Zhao", confined=True, note="rice, call 13812345678")
        desk.done(request.id, "helper Chen")
        clock.advance(1200)
        clock.set_wall(datetime(2026, 3, 2, 1, 30, tzinfo=UTC))  # NTP: 09:30 in Shanghai
        clock.is_synced = True
        if dated_by_an_event:
            log.append(EventDraft(direction="in", decision="pass"))
        clock.advance(3600)
        purge(log, 30, clock.now(), tz=TZ)
        kept = desk.get(request.id)
        assert (kept.household, kept.note) == ("5-702", "rice, call 13812345678")
        clock.advance(30 * 24 * 3600)
        purge(log, 30, clock.now(), tz=TZ)
        gone = desk.get(request.id)
        assert (gone.household, gone.note) == ("", "")
    finally:
        store.close()


@pytest.mark.parametrize("later_event", [True, False])
def test_a_request_closed_in_a_boot_never_dated_keeps_its_note_for_the_retention_period(
    tmp_path, later_event
):
    """A request done on a clock reading 1970, then the power went before NTP ever answered
    (that boot never dated: nothing of it on a set clock). The next boot had network time and
    its first purge emptied the household and note at once, 1970 being older than any cutoff,
    though the request was closed minutes before the power cut. Such a close is dated no
    earlier than it can have happened: by the first stamp on a set clock after its boot's
    last row (or the clock now), less the monotonic time between."""
    from kiosk.retention import purge
    from kiosk.store import EventDraft

    unset = FakeClock(start=datetime(1970, 1, 1, tzinfo=UTC), is_synced=False)
    store = EventLog(
        tmp_path / "k.db", "gate-1", unset, "NORMAL", migrations=[services.MIGRATIONS],
        boot_id="boot-a",
    )  # fmt: skip
    log = store.open()
    desk = ServiceDesk(log, unset, TZ)
    unset.advance(600)
    request = desk.open("5-702", "food", "Zhao", confined=True, note="rice, call 13812345678")
    desk.done(request.id, "helper Chen")
    log.append(EventDraft(direction="in", decision="deny", reasons=("fever",)))
    store.close()  # the power cut: that boot never dated
    clock = FakeClock(start=datetime(2026, 3, 2, 1, 30, tzinfo=UTC))  # booted with NTP
    store = EventLog(
        tmp_path / "k.db", "gate-1", clock, "NORMAL", migrations=[services.MIGRATIONS],
        boot_id="boot-b",
    )  # fmt: skip
    log = store.open()
    try:
        desk = ServiceDesk(log, clock, TZ)
        if later_event:
            log.append(EventDraft(direction="in", decision="pass"))
        clock.advance(3600)
        purge(log, 30, clock.now(), tz=TZ)
        kept = desk.get(request.id)
        assert (kept.household, kept.note) == ("5-702", "rice, call 13812345678")
        clock.advance(31 * 24 * 3600)
        log.append(EventDraft(direction="in", decision="pass"))
        purge(log, 30, clock.now(), tz=TZ)
        gone = desk.get(request.id)
        assert (gone.household, gone.note) == ("", "")
    finally:
        store.close()


def test_two_writers_opening_one_request_at_once_make_one(tmp_path, clock):
    """The console looked for an untaken request of the kind, then opened one, under a lock
    of its own process: a second writer of the same log (an admin's ``kiosk`` beside the
    daemon, a second console) looked before either wrote, and both opened "food" for 5-1-702:
    two helpers climbed seven floors with two bags. The look is made in the opening's own
    write transaction: the second is refused, naming the first."""
    from support import two_writers_at_once

    path = tmp_path / "k.db"
    logs = [
        EventLog(path, "g", clock, "NORMAL", migrations=[services.MIGRATIONS]).open()
        for _writer in "ab"
    ]
    try:
        desks = {id(log): ServiceDesk(log, clock, TZ) for log in logs}
        told = two_writers_at_once(
            logs, lambda log: desks[id(log)].open("5-1-702", "food", "guard Zhao", confined=True)
        )
        made = [t for t in told if not isinstance(t, Exception)]
        refused = [t for t in told if isinstance(t, Exception)]
        assert len(made) == 1 and len(refused) == 1, told
        assert isinstance(refused[0], CommunityError)
        assert str(refused[0]) == f"request #{made[0].id} of this kind is still open"
        assert [q.id for q in desks[id(logs[0])].requests()] == [made[0].id]
        assert [r["action"] for r in logs[0].audits(0, 100)] == ["service.open"]
    finally:
        for log in logs:
            log.close()


def test_a_second_untaken_request_of_a_kind_is_refused_by_the_desk(desk):
    """Whoever opens it (the console, a script), however the dwelling is spelled; one taken
    (a helper on the stairs with it) or of another kind leaves a new one open to open."""
    food = desk.open("5-1-702", "food", "guard Zhao", confined=True)
    with pytest.raises(CommunityError, match=f"request #{food.id} of this kind is still open"):
        desk.open("５-1-702", "food", "guard Li", confined=True)
    desk.open("5-1-702", "medicine", "guard Li", confined=True)
    desk.take(food.id, "helper Chen")
    assert desk.open("5-1-702", "food", "guard Li", confined=True).state == "open"
