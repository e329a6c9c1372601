"""The guard's cards built from what a gate learned late (an outing over the quota shown by a
peer's passages, a passage on a pass revoked before the gate heard of it): whom they name once
retention purged the rows they were built from, and when they say it happened."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from kiosk import peers
from kiosk.alarms import QUOTA_DETAIL, AlarmDesk
from kiosk.clock import FakeClock
from kiosk.config.policy import QuotaConfig
from kiosk.store import EventDraft, EventLog, format_ts, purge_personal

TZ = ZoneInfo("Asia/Shanghai")
NOW = datetime(2026, 3, 2, 2, 0, tzinfo=UTC)  # 10:00 in Shanghai
QUOTA = QuotaConfig(enabled=True, exits=1, period_days=2)


@pytest.fixture
def clock():
    return FakeClock(start=NOW)


@pytest.fixture
def log(tmp_path, clock):
    store = EventLog(
        tmp_path / "k.db", "gate-south", clock, "NORMAL", migrations=[peers.MIGRATIONS]
    )
    opened = store.open()
    yield opened
    store.close()


def keep_peer_row(log, seq: int, ts: datetime, fetched: datetime, household="1-101") -> None:
    def keep(db) -> None:
        db.table("peer_passages").insert(
            {"kiosk_id": "gate-north", "seq": seq, "household": household, "direction": "out",
             "decision": "pass", "ts": format_ts(ts), "flags": "[]",
             "fetched_at": format_ts(fetched)}
        )  # fmt: skip

    log.submit(keep)


def quota_cards(desk: AlarmDesk):
    return [a for a in desk.open_alarms([]) if a.detail == QUOTA_DETAIL]


def test_a_card_about_a_peers_outing_stops_naming_the_household_once_its_row_is_purged(log, clock):
    """Out here at 10:00, out at the north gate at 10:05 (learnt at 10:15): the card is the
    north gate's outing, no event of this log; retention purged the peer's row and the card
    went on naming the household on the console."""
    log.append(EventDraft(direction="out", decision="pass", household="1-101"))
    clock.advance(900)
    keep_peer_row(log, 7, NOW + timedelta(seconds=300), clock.now())
    desk = AlarmDesk(log, clock, quota=QUOTA, tz=TZ)
    [card] = quota_cards(desk)
    assert card.household == "1-101"
    log.submit(lambda db: peers.purge(db, NOW + timedelta(days=1)))
    [card] = quota_cards(desk)
    assert card.household is None
    assert [gate for gate, _ in card.passages] == ["gate-south", "gate-north"]  # what, when


def test_a_card_stops_naming_the_household_once_the_outing_before_is_purged_here(log, clock):
    """The outing over the quota is north's; the one before it, this gate's: retention
    purged this gate's event (not one of the card's ``seqs``) and the card named the
    household still."""
    log.append(EventDraft(direction="out", decision="pass", household="1-101"))
    clock.advance(900)
    keep_peer_row(log, 7, NOW + timedelta(seconds=300), clock.now())
    desk = AlarmDesk(log, clock, quota=QUOTA, tz=TZ)
    [card] = quota_cards(desk)
    log.submit(lambda db: purge_personal(db, NOW + timedelta(seconds=1), clock.now()))
    [card] = quota_cards(desk)
    assert card.household is None


def test_a_quota_card_of_an_outing_on_a_clock_not_set_says_so_then_dates_it(log, clock):
    """The whole compound came back from a power cut without network time: out at the north
    gate, then here, both stamped 1970. The card showed "01-01 08:01" as if that were when
    the household went out; once NTP answered it went on showing it."""
    from ui.guard.display import alarm_view

    clock.set_wall(datetime(1970, 1, 1, 0, 0, tzinfo=UTC))
    clock.is_synced = False
    keep_peer_row(log, 7, datetime(1970, 1, 1, 0, 0, 30, tzinfo=UTC), clock.now())
    clock.advance(60)
    log.append(EventDraft(direction="out", decision="pass", household="1-101"))
    desk = AlarmDesk(log, clock, quota=QUOTA, tz=TZ)
    [card] = quota_cards(desk)
    detail = alarm_view(card, "en", TZ, frozenset())["detail"]
    assert detail.count("Clock not synchronised") == 2, detail
    clock.advance(60)
    clock.set_wall(NOW)  # NTP steps the clock; the next passage dates this boot's
    clock.is_synced = True
    log.append(EventDraft(direction="in", decision="pass", household="2-202"))
    [card] = quota_cards(desk)
    view = alarm_view(card, "en", TZ, frozenset())
    assert "again at gate-south 03-02 09:59" in view["detail"], view["detail"]
    assert "Clock not synchronised" not in view["time"]
    assert view["time"].startswith("03-02 09:59"), view["time"]


def test_a_revoked_pass_card_learnt_on_a_clock_not_set_is_still_open_after_a_restart(log, clock):
    """Back from a power cut without network time, the gate let a card through, then took
    the office's bundle revoking it (both stamped 1970): the guard had the card. NTP answered
    and the console restarted: the bundle's row read "1970", older than the look-back, and
    the card was gone though nobody had closed it."""
    from kiosk.alarms import BUNDLE_ACTION, REVOKED_KEY
    from kiosk.lists import REVOKED_PASSED

    clock.set_wall(datetime(1970, 1, 1, 0, 0, tzinfo=UTC))
    clock.is_synced = False
    passed = log.append(EventDraft(direction="out", decision="pass", pass_id="P-1"))
    clock.advance(60)
    log.audit("office", BUNDLE_ACTION, {REVOKED_PASSED: [passed.seq]})
    key = f"{REVOKED_KEY}{passed.seq}"
    assert [a.key for a in AlarmDesk(log, clock).open_alarms([])] == [key]
    clock.advance(60)
    clock.set_wall(NOW)
    clock.is_synced = True
    log.append(EventDraft(direction="in", decision="pass", household="2-202"))
    assert [a.key for a in AlarmDesk(log, clock).open_alarms([])] == [key]


def test_a_revoked_pass_card_is_not_swallowed_by_an_open_referral_of_the_same_person(log, clock):
    """A resident referred to the guard (the lists could not confirm her quarantine over)
    went out on her card five minutes later; the office's bundle then said that card had
    been revoked: the revoked card joined the open referral as "2 times" and the guard never
    read that the pass was revoked."""
    from kiosk.alarms import BUNDLE_ACTION, REVOKED_DETAIL
    from kiosk.lists import REVOKED_PASSED

    who = {"pass_id": "P-1", "household": "1-101", "holder": "Li W"}
    log.append(
        EventDraft(direction="out", decision="deny", reasons=("quarantine_unconfirmed",), **who)
    )
    clock.advance(300)
    passed = log.append(EventDraft(direction="out", decision="pass", **who))
    clock.advance(60)
    log.audit("office", BUNDLE_ACTION, {REVOKED_PASSED: [passed.seq]})
    cards = AlarmDesk(log, clock).open_alarms([])
    assert sorted(a.detail for a in cards) == ["quarantine_unconfirmed", REVOKED_DETAIL]


def test_cards_stamped_on_a_clock_not_set_are_listed_where_they_happened(log, clock):
    """The console lists open cards newest first by their raw stamp: a quota card (or any)
    stamped 1970 before NTP answered stayed at the bottom, below yesterday's cards, while it
    was undated and after it was dated 10:10 today. A dated card goes by its dated time; one
    not dated yet (a clock not set: when cannot be told) is listed first."""
    from kiosk.alarms import Alarm, AlarmBoard

    board = AlarmBoard()
    yesterday = Alarm(key="a", kind="device", ts="2026-03-01T01:00:00.000000Z", detail="x")
    today = Alarm(key="b", kind="device", ts="2026-03-02T01:00:00.000000Z", detail="x")
    dated = Alarm(
        key="c", kind="guard", ts="1970-01-01T00:10:00.000000Z", detail=QUOTA_DETAIL,
        clock_synced=False, dated_ts="2026-03-02T02:10:00.000000Z",
    )  # fmt: skip
    undated = Alarm(
        key="d", kind="guard", ts="1970-01-01T00:20:00.000000Z", detail=QUOTA_DETAIL,
        clock_synced=False,
    )  # fmt: skip
    for alarm in (yesterday, undated, today, dated):
        board.add(alarm)
    assert [a.key for a in board.open()] == ["d", "c", "b", "a"]


def fever_deny(seq: int, ts: str, boot: str, mono_s: int, synced: bool) -> dict:
    return {
        "seq": seq, "ts": ts, "boot_id": boot, "mono_ns": mono_s * 10**9,
        "clock_synced": synced, "decision": "deny", "reasons": ["fever"],
        "household": "1-101", "holder": "Wang L", "direction": "in", "temp_c": 38.6,
    }  # fmt: skip


def test_a_person_denied_either_side_of_the_ntp_step_is_one_incident():
    """A feverish resident denied at the gate a minute after a boot without network time
    (stamped 1970), and again two minutes later, NTP having set the clock between: two cards
    and two sirens for one incident, their stamps 56 years apart. Within one boot the
    incident's window is counted on the monotonic clock."""
    from kiosk.alarms import AlarmBoard, alarm_from_event

    board = AlarmBoard()
    board.add(alarm_from_event(fever_deny(1, "1970-01-01T00:01:00.000000Z", "b1", 60, False)))
    board.add(alarm_from_event(fever_deny(2, "2026-03-02T02:00:00.000000Z", "b1", 180, True)))
    [card] = board.open()
    assert card.seqs == [1, 2]


def test_two_boots_that_both_read_1970_are_two_incidents():
    """A gate that never gets network time boots at 1970 each morning: a fever card left
    open on Monday took in Tuesday's fever of the same person as 'one more time', both
    stamped 00:05 on 1 January 1970, and Tuesday's raised no card of its own."""
    from kiosk.alarms import AlarmBoard, alarm_from_event

    board = AlarmBoard()
    board.add(alarm_from_event(fever_deny(1, "1970-01-01T00:05:00.000000Z", "mon", 300, False)))
    board.add(alarm_from_event(fever_deny(9, "1970-01-01T00:06:00.000000Z", "tue", 360, False)))
    assert sorted(a.seqs[0] for a in board.open()) == [1, 9]
