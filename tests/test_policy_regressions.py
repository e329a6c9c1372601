"""Policy regressions (lists, passes, imports, quota, reports): each test
reproduces one and pins its fix."""

from __future__ import annotations

import threading
from datetime import UTC, date, datetime, time
from zoneinfo import ZoneInfo

import pytest
from support import xlsx_bytes
from test_lists import OFFICE, TRUST

from kiosk import lists as lists_mod
from kiosk.clock import FakeClock
from kiosk.lists import ListStore, sign_bundle
from kiosk.passes import TrustList
from kiosk.store import EventLog


@pytest.fixture
def log(tmp_path, clock):
    path = tmp_path / "kiosk.db"
    with EventLog(path, "gate-1", clock, migrations=[lists_mod.MIGRATIONS]) as opened:
        yield opened


def test_a_slow_guard_reload_never_hides_a_bundle_applied_meanwhile(log, clock, monkeypatch):
    """The list sync (its own thread) applies a bundle that quarantines 5-702 while a guard's
    revocation (a web thread) is still reading the lists back: the guard's older snapshot
    must not replace the newer one, or 5-702 walks out until the next list change."""
    store = ListStore(log, clock)
    store.load()
    guard_read = threading.Event()
    sync_done = threading.Event()
    real_build = lists_mod.Lists.build
    guard_thread: list[threading.Thread] = []

    def build(*args, **kwargs):
        snapshot = real_build(*args, **kwargs)
        if guard_thread and threading.current_thread() is guard_thread[0]:
            guard_read.set()  # the guard's reload has read the database ...
            assert sync_done.wait(10)  # ... and is slower than the whole list sync
        return snapshot

    monkeypatch.setattr(lists_mod.Lists, "build", staticmethod(build))
    guard = threading.Thread(target=store.revoke, args=("a1b2c3d4e5f6", "lost", "Zhao"))
    guard_thread.append(guard)
    guard.start()
    assert guard_read.wait(10)
    day = date(2026, 3, 5)
    bundle = sign_bundle(
        OFFICE,
        {
            "format": "kiosk-lists/1",
            "version": 1,
            "issued_at": "2026-03-01T20:00:00+00:00",
            "quarantine": [{"household": "5-702", "from": "2026-03-01", "until": "2026-03-14"}],
        },
    )
    sync = threading.Thread(target=store.import_bundle, args=(bundle, TRUST, "listsync"))
    sync.start()
    sync.join(10)
    sync_done.set()
    guard.join(10)
    assert not guard.is_alive() and not sync.is_alive()
    current = store.current
    assert current.quarantine_for("5-702", "Wang", day) is not None
    assert current.is_revoked("a1b2c3d4e5f6")


def _xlsx(*rows: list[object]) -> bytes:
    return xlsx_bytes(rows)


def test_a_spreadsheet_formula_with_no_saved_value_is_refused_not_read_as_blank():
    """A sheet written by a program (not saved by Excel/WPS) has formulas without their
    values; read as blank, a returnee's observation_until was silently dropped."""
    from kiosk.community import CommunityError
    from kiosk.listimport import plan_list_import
    from kiosk.lists import Lists

    data = _xlsx(
        ["household", "residents", "observation_until"],
        ["5-702", 3, "=TODAY()+14"],
    )
    with pytest.raises(CommunityError, match=r"line 2.*observation_until.*formula"):
        plan_list_import(data, "households.xlsx", Lists())


def _shared_strings_bomb(strings: int) -> bytes:
    """A valid .xlsx of two rows whose shared-strings part unpacks to ``strings`` entries:
    a few hundred kilobytes on the wire, tens of megabytes once unpacked."""
    import io
    import zipfile

    src = zipfile.ZipFile(io.BytesIO(_xlsx(["household", "residents"], ["5-702", 3])))
    out = io.BytesIO()
    ns = "http://schemas.openxmlformats.org"
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as z:
        for info in src.infolist():
            data = src.read(info.filename)
            if info.filename == "[Content_Types].xml":
                data = data.replace(
                    b"</Types>",
                    b'<Override PartName="/xl/sharedStrings.xml" ContentType="application/'
                    b'vnd.openxmlformats-officedocument.spreadsheetml.sharedStrings+xml"/></Types>',
                )
            if info.filename == "xl/_rels/workbook.xml.rels":
                data = data.replace(
                    b"</Relationships>",
                    f'<Relationship Id="rIdS" Type="{ns}/officeDocument/2006/relationships/'
                    'sharedStrings" Target="sharedStrings.xml"/></Relationships>'.encode(),
                )
            z.writestr(info.filename, data)
        body = b"<si><t>x</t></si>" * strings
        z.writestr(
            "xl/sharedStrings.xml",
            f'<sst xmlns="{ns}/spreadsheetml/2006/main">'.encode() + body + b"</sst>",
        )
    return out.getvalue()


@pytest.mark.slow  # integration: real sockets, processes or deadlines (CI runs it)
def test_an_xlsx_that_unpacks_to_far_more_than_its_size_is_refused_before_it_is_read():
    """A 170 kB upload whose shared strings unpack to 68 MB took 90 s and ~400 MB of memory
    to read (a Pi has 1 GB); it is refused from the zip's directory, unread."""
    from kiosk.community import CommunityError
    from kiosk.sheets import read_table

    data = _shared_strings_bomb(4_000_000)
    assert len(data) < 400_000
    with pytest.raises(CommunityError, match="unpack"):
        read_table(data, "households.xlsx")


@pytest.mark.parametrize(
    ("kind", "text", "message"),
    [
        (
            "households",
            "household,residents,observation_until\n5-702,3,2026-03-20\n5-702,3,\n",
            "line 3: 5-702 is also on line 2",
        ),
        (
            "revocations",
            "pass_id,reason\na1b2c3d4e5f6,lost\nA1B2C3D4E5F6,found again\n",
            "line 3: a1b2c3d4e5f6 is also on line 2",
        ),
    ],
)
def test_a_row_listed_twice_with_different_values_is_refused_not_silently_the_last(
    kind, text, message
):
    """The later of two rows for one household won silently: a blank observation_until
    below a dated one dropped the returnee's observation."""
    from kiosk.community import CommunityError
    from kiosk.listimport import plan_list_import
    from kiosk.lists import Lists

    with pytest.raises(CommunityError, match=message):
        plan_list_import(text.encode(), f"{kind}.csv", Lists())


def test_a_row_repeated_exactly_is_one_row():
    from kiosk.listimport import plan_list_import
    from kiosk.lists import Lists

    text = b"household,residents\n5-702,3\n5-702,3\n6-101,2\n"
    plan = plan_list_import(text, "households.csv", Lists())
    assert plan.diff.added == ("5-702", "6-101") and len(plan.rows) == 2


def test_a_quarantine_typed_in_full_width_or_other_case_still_stops_the_pass():
    """A Chinese input method types ５－７０２ (full width) into the sub-district's sheet; the
    office's pass says 5-702. They are the same household: the quarantine must apply."""
    from kiosk.lists import Household, Lists, QuarantineEntry

    day = date(2026, 3, 5)
    lists = Lists.build(
        quarantine=[
            QuarantineEntry("５－７０２", None, date(2026, 3, 1), date(2026, 3, 14)),
            QuarantineEntry("b3-1201", "Ｗａｎｇ Ｆａｎｇ", date(2026, 3, 1), date(2026, 3, 14)),
        ],
        households=[Household("Ａ1-101", observation_until=date(2026, 3, 9))],
    )
    assert lists.quarantine_for("5-702", "Anyone", day) is not None
    assert lists.quarantine_for("B3-1201", "wang fang", day) is not None
    assert lists.quarantine_for("B3-1201", "Li Lei", day) is None
    assert lists.quarantine_for("5-703", "Anyone", day) is None
    assert lists.under_observation("A1-101", day)
    from kiosk.observation import ObservationSnapshot, _key

    snap = ObservationSnapshot({_key("３－２－７０１", "Wang Fang"): ((day, day),)})
    assert snap.observing("3-2-701", "WANG FANG", day)


SHANGHAI = ZoneInfo("Asia/Shanghai")


def _returnee_ledger(tmp_path):
    """A returnee ledger on its own open event log (the caller closes it), its clock at
    09:00 Shanghai on 10 February, checks due by 20:00."""
    from kiosk import observation

    clock = FakeClock(start=datetime(2026, 2, 10, 1, 0, tzinfo=UTC))
    migrations = [observation.MIGRATIONS]
    log = EventLog(tmp_path / "k.db", "gate-1", clock, "NORMAL", migrations=migrations).open()
    return clock, log, observation.ObservationLedger(log, clock, SHANGHAI, check_due=time(20, 0))


def test_two_guards_registering_returnees_at_once_leave_both_under_observation(
    tmp_path, clock, monkeypatch
):
    """Guard A's snapshot of the ledger, read before guard B's registration committed, was
    put in force after B's: B's returnee was then not under observation at the gate (with
    ``observation_blocks = "out"`` they walked out) until the next change."""
    from datetime import UTC, datetime, time
    from zoneinfo import ZoneInfo

    from kiosk import observation
    from kiosk.clock import FakeClock

    clock = FakeClock(start=datetime(2026, 2, 10, 1, 0, tzinfo=UTC))
    log = EventLog(
        tmp_path / "k.db", "gate-1", clock, "NORMAL", migrations=[observation.MIGRATIONS]
    ).open()
    try:
        ledger = observation.ObservationLedger(
            log, clock, ZoneInfo("Asia/Shanghai"), check_due=time(20, 0)
        )
        ledger.load()
        a_read, b_done = threading.Event(), threading.Event()
        real = observation.ObservationLedger.snapshot
        first: list[threading.Thread] = []

        def snapshot(self):
            snap = real(self)
            if first and threading.current_thread() is first[0]:
                a_read.set()
                assert b_done.wait(10)
            return snap

        monkeypatch.setattr(observation.ObservationLedger, "snapshot", snapshot)
        back = date(2026, 2, 10)
        common = {"phone": "1", "origin": "Wuhan", "date_back": back}
        a = threading.Thread(
            target=ledger.register,
            kwargs={"name": "Wang Fang", "household": "3-2-701", "actor": "A", **common},
        )
        first.append(a)
        a.start()
        assert a_read.wait(10)
        ledger.register(name="Li Lei", household="3-2-702", actor="B", **common)
        b_done.set()
        a.join(10)
        assert not a.is_alive()
        assert ledger.current.observing("3-2-701", "Wang Fang", back)
        assert ledger.current.observing("3-2-702", "Li Lei", back)
    finally:
        log.close()


def test_a_staff_members_exit_does_not_use_up_the_households_outing():
    """``quota.roles`` lists the roles the quota counts: a staff member going out on the
    household's code used to use up the residents' one outing."""
    from datetime import UTC, datetime, timedelta
    from zoneinfo import ZoneInfo

    from kiosk.config.policy import PolicySection
    from kiosk.config.thermometer import ThermometryConfig
    from kiosk.history import PassageHistory
    from kiosk.lists import Lists
    from kiosk.passes import issue_pass
    from kiosk.policy import PassageInputs, PolicyState, decide
    from kiosk.thermometry import Temperature

    now = datetime(2026, 3, 2, 2, 0, tzinfo=UTC)
    trust = TrustList([("office", OFFICE.public_key())])
    resident_code, resident = issue_pass(
        OFFICE, "1-1", "Wang L", "resident", 30, now=now - timedelta(days=1)
    )
    staff_code, staff = issue_pass(OFFICE, "1-1", "Chen", "staff", 30, now=now - timedelta(days=1))
    history = PassageHistory()
    cfg = PolicySection.model_validate({"quota": {"enabled": True, "exits": 1}})
    normal = Temperature("ok", 36.6, 34.6, 22.0, None)

    def going_out(code, at):
        state = PolicyState(trust, Lists(), history)
        tz = ZoneInfo("Asia/Shanghai")
        return decide(PassageInputs("out", code, normal), state, at, cfg, ThermometryConfig(), tz)

    staff_exit = going_out(staff_code, now - timedelta(hours=1))
    assert staff_exit.reasons == ("ok",), staff_exit.reasons
    assert "quota_exempt" in staff_exit.flags
    # What the engine records after the staff member's committed exit (its flags with it):
    history.record(staff.pass_id, "1-1", "out", "pass", now - timedelta(hours=1), staff_exit.flags)
    first = going_out(resident_code, now)
    assert first.reasons == ("ok",) and "quota_exempt" not in first.flags
    history.record(resident.pass_id, "1-1", "out", "pass", now, first.flags)
    assert going_out(resident_code, now + timedelta(hours=1)).reasons == ("quota_exceeded",)


def test_staff_exits_stay_out_of_the_quota_after_a_restart(tmp_path):
    """The history a restarted kiosk rebuilds from its log leaves the staff exit out too."""
    from datetime import UTC, datetime

    from test_engine import Rig

    from kiosk.clock import FakeClock
    from kiosk.history import PassageHistory

    clock = FakeClock(start=datetime(2026, 3, 2, 2, 0, tzinfo=UTC))
    rig = Rig(clock, tmp_path, policy={"quota": {"enabled": True, "exits": 1}})
    try:
        staff = issue_pass_text(rig, "A-101", "Chen", "staff")
        rig.show(staff, "out")
        rig.emulator.person_arrives(36.6)
        rig.run(3)
        rig.emulator.person_leaves()
        rig.run(2)
        [event] = rig.events()
        assert (event["decision"], event["flags"]) == ("pass", ["role:staff", "quota_exempt"])
        assert rig.history.exits_in_period("A-101", clock.now(), 2) == 0
        rebuilt = PassageHistory()
        rebuilt.load(rig.events())
        assert rebuilt.exits_in_period("A-101", clock.now(), 2) == 0
        assert rebuilt.last_passage(event["pass_id"], "out") is not None  # passback still sees it
    finally:
        rig.close()


def issue_pass_text(rig, household: str, holder: str, role: str) -> str:
    from kiosk.passes import issue_pass

    return issue_pass(rig.key, household, holder, role, now=rig.clock.now())[0]


def test_a_days_report_matches_an_independent_count_on_a_25_hour_day(reporting_store, clock):
    """A day of random events around the DST change (Berlin, 25 October 2026: 25 hours) and
    both midnights, counted straight from the rows with zoneinfo, not with the report's SQL."""
    import random
    from collections import Counter
    from datetime import UTC, datetime, timedelta
    from zoneinfo import ZoneInfo

    from kiosk.config.policy import QuotaConfig
    from kiosk.stats import compute_report
    from kiosk.store import EventDraft

    zone = ZoneInfo("Europe/Berlin")
    day = date(2026, 10, 25)
    rng = random.Random(25)
    start = datetime(2026, 10, 23, 20, 0, tzinfo=UTC)
    when = start
    while when < datetime(2026, 10, 26, 2, 0, tzinfo=UTC):
        clock.set_wall(when)
        temp = rng.choice([36.2, 36.6, 37.0, 37.6, 38.4, 34.5, 39.5, None])
        reasons = rng.choice([("ok",), ("fever",), ("pass_expired", "quarantined"), ("no_pass",)])
        decision = "pass" if reasons == ("ok",) else "deny"
        if rng.random() < 0.1:
            decision, reasons = rng.choice(["manual_pass", "manual_deny"]), ("guard_override",)
        reporting_store.append(
            EventDraft(
                direction=rng.choice(["in", "out"]),
                decision=decision,
                reasons=reasons,
                household=rng.choice(["1-101", "1-102", "2-201", None]),
                temp_c=temp,
            )
        )
        when += timedelta(minutes=rng.randint(5, 95))
    quota = QuotaConfig(enabled=True, exits=1, period_days=2)
    report = compute_report(reporting_store.reader(), day, zone, quota)

    rows = reporting_store.events(limit=10_000)
    local = [(datetime.fromisoformat(e["ts"]).astimezone(zone), e) for e in rows]
    today = [(t, e) for t, e in local if t.date() == day]
    assert report["events"] == len(today) > 20
    assert report["by_decision"] == dict(Counter(e["decision"] for _, e in today))
    assert report["by_reason"] == dict(Counter(r for _, e in today for r in e["reasons"]))
    assert report["by_direction"] == dict(Counter(e["direction"] for _, e in today))
    assert report["by_hour"] == [sum(t.hour == h for t, _ in today) for h in range(24)]
    fevers = [t for t, e in today if "fever" in e["reasons"]]
    # No vehicles here: each fever is one person.
    assert report["fever_alarms"] == {
        "count": len(fevers),
        "people": len(fevers),
        "times": [t.strftime("%H:%M:%S") for t in fevers],
        "at": [t.isoformat(timespec="seconds") for t in fevers],
    }
    # The day's 25 real hours, each with the events of its clock hour and UTC offset.
    hours = [(h["hour"], h["start"][-6:], h["events"]) for h in report["hours"]]
    assert len(hours) == 25
    assert hours == [
        (hour, offset, sum((t.hour, t.isoformat()[-6:]) == (hour, offset) for t, _ in today))
        for hour, offset, _ in hours
    ]
    assert sum(n for _, _, n in hours) == len(today)
    assert report["no_temperature"] == sum(e["temp_c"] is None for _, e in today)
    histogram = sum(b["count"] for b in report["temperature_histogram"])
    assert histogram == sum(e["temp_c"] is not None for _, e in today)

    def exits(days):
        return Counter(
            e["household"]
            for t, e in local
            if t.date() in days
            and e["direction"] == "out"
            and e["decision"] in ("pass", "manual_pass")
            and e["household"]
        )

    mine = exits({day})
    outings = [
        (t, e["household"])
        for t, e in local
        if e["direction"] == "out" and e["decision"] in ("pass", "manual_pass") and e["household"]
    ]
    # Over the quota as the gate counts it: an outing today with another one in the 48 h
    # before it (a rolling period, not calendar days).
    over = {
        h
        for t, h in outings
        if t.date() == day and any(h2 == h and t - timedelta(days=2) < t2 < t for t2, h2 in outings)
    }
    got = report["exits_per_household"]
    assert got["households"] == len(mine) and got["exits"] == sum(mine.values())
    assert got["over_quota_households"] == len(over)
    assert got["histogram"] == {str(k): v for k, v in sorted(Counter(mine.values()).items())}


def test_an_invisible_character_in_a_quarantine_holder_is_refused(log, clock):
    """A holder cell holding only a zero-width space (pasted from a chat) made a person-level
    quarantine for "\\u200b" — nobody — so the whole household intended walked out."""
    from kiosk.community import CommunityError
    from kiosk.listimport import plan_list_import
    from kiosk.lists import ListError, Lists, ListStore

    text = "household,holder,from,until\n5-702,\u200b,2026-03-01,2026-03-14\n"
    with pytest.raises(CommunityError, match=r"line 2, column B \(holder\)"):
        plan_list_import(text.encode(), "quarantine.csv", Lists())
    with pytest.raises(ListError, match="holder"):
        ListStore(log, clock).import_csv("quarantine", text, "Zhao")


@pytest.mark.parametrize(
    ("cell", "expected"),
    [
        ("2026/3/1", date(2026, 3, 1)),
        ("2026-3-1", date(2026, 3, 1)),
        ("2026.03.01", date(2026, 3, 1)),
    ],
)
def test_dates_as_a_chinese_excel_writes_them_in_csv_are_read(cell, expected):
    """Excel (zh-CN) saves dates to CSV as 2026/3/1; that was refused as "input is too short"."""
    from kiosk.listimport import plan_list_import
    from kiosk.lists import Lists

    text = f"household,holder,from,until\n5-702,,{cell},2026/3/14\n"
    plan = plan_list_import(text.encode(), "quarantine.csv", Lists())
    assert plan.diff.added == (f"5-702||{expected}|2026-03-14",)


@pytest.mark.parametrize("cell", ["0", "86400", "46082", "3/1/2026", "2026-03-01T08:00:00"])
def test_a_number_or_an_ambiguous_date_is_not_a_date(cell):
    """A number was read as seconds since 1970 ("0" gave 1970-01-01, silently)."""
    from kiosk.community import CommunityError
    from kiosk.listimport import plan_list_import
    from kiosk.lists import Lists

    text = f"household,residents,observation_until\n5-702,3,{cell}\n"
    with pytest.raises(CommunityError, match="observation_until.*2026-03-01"):
        plan_list_import(text.encode(), "households.csv", Lists())


def _slower_of_two(monkeypatch, cls, read_name: str, slower, faster) -> object:
    """Two people acting on one record at once, the race made certain: ``slower`` runs in a
    thread that pauses right after it read the record (``cls.read_name``) until ``faster``
    has finished. What ``slower`` got: its result, or the ``CommunityError`` it was told."""
    from kiosk.community import CommunityError

    read, other_done = threading.Event(), threading.Event()
    real = getattr(cls, read_name)
    first: list[threading.Thread] = []
    outcome: list[object] = []

    def reading(self, *args):
        got = real(self, *args)
        if first and threading.current_thread() is first[0] and not read.is_set():
            read.set()
            assert other_done.wait(10)
        return got

    monkeypatch.setattr(cls, read_name, reading)

    def run_slower():
        try:
            outcome.append(slower())
        except CommunityError as exc:
            outcome.append(exc)

    thread = threading.Thread(target=run_slower)
    first.append(thread)
    thread.start()
    assert read.wait(10)
    faster()
    other_done.set()
    thread.join(10)
    return outcome[0]


def test_two_helpers_taking_one_request_at_once_one_is_told_it_is_taken(
    tmp_path, clock, monkeypatch
):
    """Both read "open", both wrote "taken": the first helper was told the request was theirs
    and then silently replaced by the second (two people up the stairs, one on the record)."""
    from zoneinfo import ZoneInfo

    from kiosk import services
    from kiosk.community import CommunityError

    log = EventLog(tmp_path / "k.db", "g", clock, "NORMAL", migrations=[services.MIGRATIONS])
    log.open()
    try:
        desk = services.ServiceDesk(log, clock, ZoneInfo("Asia/Shanghai"))
        request = desk.open("5-1-702", "food", "guard Zhao", confined=True)
        real_get = services.ServiceDesk.get
        li = _slower_of_two(  # helper Li has seen "open", and is slower than helper Wu
            monkeypatch,
            services.ServiceDesk,
            "get",
            lambda: desk.take(request.id, "helper Li"),
            lambda: desk.take(request.id, "helper Wu"),
        )
        assert isinstance(li, CommunityError) and "taken" in str(li)
        assert real_get(desk, request.id).taken_by == "helper Wu"
        takes = [a for a in log.audits(limit=100) if a["action"] == "service.taken"]
        assert len(takes) == 1
    finally:
        log.close()


def _wang_fang_back_from_wuhan(ledger):
    """A returnee registered as back on 10 February: (the day back, the person)."""
    back = date(2026, 2, 10)
    person = ledger.register(name="Wang Fang", household="3-2-701", phone="1",
                             origin="Wuhan", date_back=back, actor="m")  # fmt: skip
    return back, person


def test_two_managers_clearing_one_returnee_at_once_count_one_clearing(tmp_path, monkeypatch):
    """Both saw "observing", both wrote "cleared": the daily report counted two clearings of
    one person (and the audit two changes)."""

    from kiosk import observation
    from kiosk.community import CommunityError

    zone = SHANGHAI
    _, log, ledger = _returnee_ledger(tmp_path)
    try:
        back, person = _wang_fang_back_from_wuhan(ledger)
        a = _slower_of_two(
            monkeypatch,
            observation.ObservationLedger,
            "person",
            lambda: ledger.set_status(person.id, "cleared", "manager A"),
            lambda: ledger.set_status(person.id, "cleared", "manager B"),
        )
        assert isinstance(a, CommunityError)
        assert observation.counts_for_day(log.reader(), back, zone)["cleared"] == 1
    finally:
        log.close()


def test_a_person_cleared_twice_in_a_day_is_one_clearing(tmp_path):
    """Cleared by mistake, put back, cleared again: the report said two people were cleared."""

    from kiosk import observation

    zone = SHANGHAI
    clock, log, ledger = _returnee_ledger(tmp_path)
    try:
        back, person = _wang_fang_back_from_wuhan(ledger)
        for status in ("cleared", "observing", "cleared"):
            clock.advance(60)
            ledger.set_status(person.id, status, "manager")
        counts = observation.counts_for_day(log.reader(), back, zone)
        assert (counts["new"], counts["cleared"], counts["observing"]) == (1, 1, 0)
    finally:
        log.close()


def test_key_rotation_as_documented_works_on_a_running_kiosk(tmp_path):
    """docs/passes.md: copy the new .pub to every kiosk, start issuing with the new key,
    remove the old .pub later. The running kiosk read its trust folder only at start, so every
    new pass was denied (pass_unknown_key) and a removed (say, leaked) key stayed trusted
    until someone restarted it."""
    import os
    from datetime import UTC, datetime

    from kiosk.passes import PassError, TrustList, issue_pass, load_private_key, new_key_pair

    keys, trust = tmp_path / "keys", tmp_path / "trust"
    trust.mkdir()
    minutes = iter(range(1, 100))

    def later() -> None:  # the operator's next step, minutes later (the folder's mtime says so)
        stamp = 1_780_000_000_000_000_000 + next(minutes) * 60_000_000_000
        os.utime(trust, ns=(stamp, stamp))

    old_key, old_pub = new_key_pair(keys, "office-2025")
    new_key, new_pub = new_key_pair(keys, "office-2026")
    (trust / old_pub.name).write_bytes(old_pub.read_bytes())
    later()
    now = datetime(2026, 3, 2, 2, 0, tzinfo=UTC)
    old_pass, _ = issue_pass(load_private_key(old_key), "1-1", "Wang", now=now)
    new_pass, _ = issue_pass(load_private_key(new_key), "1-1", "Wang", now=now)
    kiosk = TrustList.from_dir(trust)
    assert kiosk.verify(old_pass).holder == "Wang"
    with pytest.raises(PassError):
        kiosk.verify(new_pass)

    (trust / new_pub.name).write_bytes(new_pub.read_bytes())  # step 1: on every kiosk
    later()
    assert kiosk.verify(new_pass).holder == "Wang"
    assert kiosk.verify(old_pass).holder == "Wang"  # both verify meanwhile
    (trust / old_pub.name).unlink()  # step 3: the old key goes
    later()
    with pytest.raises(PassError) as gone:
        kiosk.verify(old_pass)
    assert gone.value.reason == "pass_unknown_key"
    assert kiosk.names == ("office-2026",)

    (trust / "broken.pub").write_text("not a key")  # a bad file: the keys in force stay
    later()
    assert kiosk.verify(new_pass).holder == "Wang"
    assert "broken.pub" in (kiosk.problem or "")
    # A key caught half-copied (cp creates the file, then writes it: the folder's time
    # changes only at the first step) is read again once whole.
    (trust / "broken.pub").write_bytes(old_pub.read_bytes())
    assert kiosk.verify(old_pass).holder == "Wang"
    assert kiosk.problem is None and kiosk.names == ("broken", "office-2026")


def test_a_returnee_registered_in_full_width_is_checked_by_the_gate(tmp_path):
    """Registered as ３－２－７０１ (a Chinese input method), passing the gate daily with a pass
    saying 3-2-701: the gate's readings were never matched, so every day raised a missed-check
    alarm."""
    from kiosk.store import EventDraft

    _, log, ledger = _returnee_ledger(tmp_path)
    try:
        person = ledger.register(
            name="Wang Fang", household="３－２－７０１", phone="1", origin="Wuhan",
            date_back=date(2026, 2, 10), actor="m",
        )  # fmt: skip
        log.append(EventDraft(direction="in", decision="pass", household="3-2-701",
                              holder="WANG FANG", temp_c=36.6))  # fmt: skip
        checks = ledger.checks(person.id)
        assert [(c.source, c.temp_c) for c in checks] == [("gate", 36.6)]
        late = datetime(2026, 2, 10, 13, 0, tzinfo=UTC)  # 21:00 local, past the due time
        assert ledger.alarms(late) == []
    finally:
        log.close()


@pytest.mark.parametrize("day", [date(1, 1, 1), date(9999, 12, 31), date(1, 1, 2)])
def test_a_report_for_the_first_or_last_calendar_day_is_empty_not_a_crash(reporting_store, day):
    """`kiosk report --day 0001-01-01` and the guard's report page with ?day=9999-12-31 died
    with OverflowError (a traceback, a 500): the local day's bounds do not fit in UTC."""
    from kiosk.config.policy import QuotaConfig
    from kiosk.stats import daily_report

    report = daily_report(
        reporting_store.reader(), day, "Asia/Shanghai", QuotaConfig(period_days=30)
    )
    assert report["events"] == 0 and report["day"] == day.isoformat()
    assert daily_report(reporting_store.reader(), day, "America/Los_Angeles")["events"] == 0


def _revoking_bundle(version: int, *pass_ids: str) -> str:
    payload = {
        "format": "kiosk-lists/1",
        "version": version,
        "issued_at": "2026-03-01T20:00:00+00:00",
        "revocations": [{"pass_id": p, "reason": "confiscated"} for p in pass_ids],
    }
    return sign_bundle(OFFICE, payload)


@pytest.mark.parametrize("guard_first", [True, False])
def test_a_guard_lifting_their_own_revocation_does_not_lift_the_offices(log, clock, guard_first):
    """A card revoked by a guard (lost) and by the office (confiscated): the guard's
    "found it, unrevoke" deleted the one row, and the office's revocation went with it; the
    card passed again until the office published a new version."""
    from kiosk.lists import ListError

    store = ListStore(log, clock)
    store.load()
    card = "a1b2c3d4e5f6"
    if guard_first:
        store.revoke(card, "lost", "guard Zhao")
        store.import_bundle(_revoking_bundle(1, card), TRUST, "listsync")
    else:
        store.import_bundle(_revoking_bundle(1, card), TRUST, "listsync")
        store.revoke(card, "lost", "guard Zhao")
    with pytest.raises(ListError, match="office"):
        store.unrevoke(card, "guard Zhao")
    assert store.current.is_revoked(card)
    store.import_bundle(_revoking_bundle(2), TRUST, "listsync")  # the office lifts it
    assert store.current.is_revoked(card)  # the guard's own revocation still stands
    store.unrevoke(card, "guard Zhao")
    assert not store.current.is_revoked(card)


def test_a_household_code_excel_turned_into_a_date_is_refused():
    """Typed 12-3 in Excel, stored as 3 December: the quarantine was imported for household
    "2026-12-03" — nobody — and household 12-3 walked out."""
    from datetime import datetime

    from kiosk.community import CommunityError
    from kiosk.listimport import plan_list_import
    from kiosk.lists import Lists

    data = _xlsx(
        ["household", "holder", "from", "until"],
        [datetime(2026, 12, 3), "", datetime(2026, 3, 1), datetime(2026, 3, 14)],
    )
    with pytest.raises(CommunityError, match=r"line 2, column A \(household\): .*date"):
        plan_list_import(data, "quarantine.xlsx", Lists())
    # Dates where dates belong are fine:
    data = _xlsx(["household", "from", "until"], ["12-3", datetime(2026, 3, 1), "2026-03-14"])
    plan = plan_list_import(data, "quarantine.xlsx", Lists())
    assert plan.diff.added == ("12-3||2026-03-01|2026-03-14",)


def _decide_observed(direction: str, trusted: bool):
    from datetime import UTC, datetime, timedelta
    from zoneinfo import ZoneInfo

    from kiosk.config.policy import PolicySection
    from kiosk.config.thermometer import ThermometryConfig
    from kiosk.history import PassageHistory
    from kiosk.lists import Lists
    from kiosk.observation import ObservationSnapshot, _key
    from kiosk.passes import issue_pass
    from kiosk.policy import PassageInputs, PolicyState, decide
    from kiosk.thermometry import Temperature

    now = datetime(2026, 3, 2, 2, 0, tzinfo=UTC)
    day = date(2026, 3, 2)
    code, _ = issue_pass(OFFICE, "3-2-701", "Wang Fang", now=now - timedelta(days=1))
    observing = ObservationSnapshot({_key("3-2-701", "Wang Fang"): ((day, day),)})
    cfg = PolicySection.model_validate({"observation_blocks": "out"})
    return decide(
        PassageInputs(
            direction,  # type: ignore[arg-type]
            code,
            Temperature("ok", 36.6, 34.6, 22.0, None),
            direction_trusted=trusted,
        ),
        PolicyState(TRUST, Lists(), PassageHistory(), observing),
        now,
        cfg,
        ThermometryConfig(),
        ZoneInfo("Asia/Shanghai"),
    )


def test_an_observed_returnee_cannot_walk_out_by_pressing_coming_home():
    """observation_blocks = "out" kept an observed returnee in, unless they pressed the
    screen's "coming home" button and walked out: an unverified "in" passed. Home quarantine
    already calls the guard for that case (direction_unverified); observation did not."""
    pressed = _decide_observed("in", trusted=False)
    assert pressed.decision == "deny"
    assert "under_observation" in pressed.reasons and "direction_unverified" in pressed.flags
    assert pressed.needs_guard
    lane = _decide_observed("in", trusted=True)  # a one-way lane: coming home is coming home
    assert lane.reasons == ("ok",) and "observation" in lane.flags
    assert _decide_observed("out", trusted=True).reasons == ("under_observation",)


def _xlsx_with(part: str, change) -> bytes:
    import io
    import zipfile

    src = zipfile.ZipFile(io.BytesIO(_xlsx(["household", "residents"], ["5-702", 3])))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as z:
        for name in src.namelist():
            data = src.read(name)
            z.writestr(name, change(data) if name == part else data)
    return out.getvalue()


@pytest.mark.parametrize(
    ("part", "change"),
    [
        ("docProps/core.xml", lambda d: d[: len(d) // 2]),  # cut short
        ("xl/worksheets/sheet1.xml", lambda d: d.replace(b'r="A2"', b'r="ZZZZZZZZ2"')),
        ("xl/workbook.xml", lambda d: b'<?xml version="1.0"?><foo/>'),  # no sheets
        ("xl/worksheets/sheet1.xml", lambda d: d[: len(d) - 40]),
    ],
)
def test_a_damaged_xlsx_is_a_clear_error_not_a_crash(part, change):
    """A damaged upload raised ParseError / ValueError / IndexError out of openpyxl: a
    traceback from `kiosk lists import`, a 500 from the console's import page."""
    from kiosk.community import CommunityError
    from kiosk.sheets import read_table

    with pytest.raises(CommunityError, match="not a readable .xlsx"):
        read_table(_xlsx_with(part, change), "households.xlsx")


def test_a_pass_whose_commit_lands_after_its_deadline_uses_up_no_outing(tmp_path):
    """A resident going out; the SD card stalls past the commit deadline: the screen says
    'store fault, denied', the gate stays shut. The commit lands a moment later: the log holds
    "pass" (append-only), but nobody went through, so the history counts no exit (the second
    try used to be quota_exceeded) and the guard's alarm says the record is wrong."""
    from datetime import UTC, datetime

    from test_engine import Rig, _hold_crossings, land_late

    from kiosk.clock import FakeClock

    clock = FakeClock(start=datetime(2026, 3, 2, 2, 0, tzinfo=UTC))
    rig = Rig(clock, tmp_path, policy={"quota": {"enabled": True, "exits": 1}})
    try:
        held = _hold_crossings(rig)
        rig.show(rig.pass_text(household="A-101"), "out")
        rig.emulator.person_arrives(36.6)
        rig.run(3)
        [crossing] = held
        event = land_late(rig, crossing)
        assert rig.history.exits_in_period("A-101", clock.now(), 2) == 0
        [late] = [m for m in rig.messages if m.get("alarm") == "store_late_commit"]
        assert late["seq"] == event.seq and "gate stayed shut" in late["detail"]
    finally:
        rig.close()


def test_without_a_quota_no_household_is_reported_over_it(reporting_store, clock):
    """With the quota off, the guard's statistics said "2 households went out, 1 over the
    quota": over a quota of one exit per two days that the site does not have."""
    from datetime import UTC, datetime

    from kiosk.config.policy import QuotaConfig
    from kiosk.stats import compute_report
    from kiosk.store import EventDraft

    for hour in (1, 3):
        clock.set_wall(datetime(2026, 3, 2, hour, 0, tzinfo=UTC))
        for household in ("1-101", "1-102") if hour == 1 else ("1-101",):
            reporting_store.append(
                EventDraft(direction="out", decision="pass", household=household)
            )
    day = date(2026, 3, 2)
    off = compute_report(reporting_store.reader(), day, "Asia/Shanghai", QuotaConfig())
    assert off["exits_per_household"]["households"] == 2
    assert off["exits_per_household"]["over_quota_households"] == 0
    on = compute_report(reporting_store.reader(), day, "Asia/Shanghai", QuotaConfig(enabled=True))
    assert on["exits_per_household"]["over_quota_households"] == 1


@pytest.mark.parametrize(
    ("local", "on_duty"),
    [
        ("08:29:59.999999", False),
        ("08:30:00", True),
        ("17:29:59.999999", True),
        ("17:30:00", False),
        ("00:00:00", False),
    ],
)
def test_staffed_hours_edges_a_fever_waits_for_the_guard_only_while_one_is_on_duty(local, on_duty):
    """08:30 inclusive, 17:30 exclusive, in the site's time zone (the kiosk clock is UTC)."""
    from datetime import datetime, time, timedelta
    from zoneinfo import ZoneInfo

    from kiosk.config.policy import PolicySection
    from kiosk.config.thermometer import ThermometryConfig
    from kiosk.history import PassageHistory
    from kiosk.lists import Lists
    from kiosk.passes import issue_pass
    from kiosk.policy import PassageInputs, PolicyState, decide
    from kiosk.thermometry import Temperature

    zone = ZoneInfo("Asia/Shanghai")
    now = datetime.combine(date(2026, 3, 2), time.fromisoformat(local), zone)
    code, _ = issue_pass(OFFICE, "1-1", "Wang", now=now - timedelta(days=1))
    cfg = PolicySection.model_validate({"hours": {"enabled": True}})  # 08:30-17:30, staffed
    fever = Temperature("ok", 38.4, 36.0, 22.0, None)
    got = decide(
        PassageInputs("out", code, fever),
        PolicyState(TRUST, Lists(), PassageHistory()),
        now.astimezone(UTC),
        cfg,
        ThermometryConfig(),
        zone,
    )
    assert got.decision == "deny" and got.alarm == "fever"
    assert got.needs_guard is on_duty
    assert ("no_guard_on_duty" in got.reasons) is not on_duty


def test_a_huge_file_in_the_trust_folder_is_refused_unread(tmp_path):
    """A key file is read whole (a PEM key is ~110 bytes); a 2 MB file named *.pub in the
    trust folder — or a device node, a log, a wrong copy — was read entirely, at start-up and
    now at the next pass after it appears."""
    from kiosk.passes import TrustList, TrustListError, load_public_key

    trust = tmp_path / "trust"
    trust.mkdir()
    big = trust / "huge.pub"
    big.write_bytes(b"-----BEGIN PUBLIC KEY-----\n" + b"A" * 2_000_000)
    with pytest.raises(TrustListError, match="larger than"):
        load_public_key(big)
    with pytest.raises(TrustListError, match="larger than"):
        TrustList.from_dir(trust)


def test_a_plate_typed_in_full_width_is_the_same_car():
    """A Chinese input method in full-width mode types 京Ａ１２３４５: refused as "not 4 to 10
    letters or digits" at the vehicle registration, and never matched to the resident list."""
    from kiosk.vehicles import normalise_plate

    assert normalise_plate("京Ａ·１２３４５") == normalise_plate("京A12345") == "京A12345"
    assert normalise_plate("京ａ　１２３４５") == "京A12345"  # an ideographic space too


def test_one_passage_under_a_clock_a_year_ahead_neither_wipes_nor_blocks_the_quota():
    """One passage stamped by a wall clock far ahead (a bad NTP step) used to prune every real
    exit (a second outing) and then count as its household's exit until real time passed it."""
    from datetime import datetime, timedelta

    from kiosk.history import PassageHistory

    history = PassageHistory()
    t = datetime(2026, 3, 2, 2, 0, tzinfo=UTC)
    history.record("p1", "1-101", "out", "pass", t)
    history.record("p2", "2-201", "out", "pass", t + timedelta(days=400))  # the bad step
    back = t + timedelta(hours=1)  # NTP puts the clock right
    assert history.exits_in_period("1-101", back, 2) == 1  # was wiped: a second outing
    assert history.exits_in_period("2-201", back + timedelta(days=3), 2) == 0  # blocked 400 d
