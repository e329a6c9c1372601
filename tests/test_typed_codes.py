"""Identifiers as a Chinese input method types them: full-width ``１-１０１``, ``京Ａ１２３４５``,
an ideographic space U+3000 around or inside. Each is stored and compared as ``1-101``,
``京A12345`` whichever entry point it came through (``kiosk.typed.typed``, applied by the
core's own validators): otherwise the household ``１-１０１`` was a second household beside
``1-101`` in the lists, the map, the ledgers, and the reports counted it twice."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from guard_support import csrf_of, decided, login, nothing_recorded, post
from support import batch_args

from checkpoint.cli import main
from kiosk import compound, observation, services, stats, vehicles
from kiosk import lists as lists_mod
from kiosk.clock import FakeClock
from kiosk.community import CommunityError, clean_text
from kiosk.compound import CompoundMap
from kiosk.config.policy import QuotaConfig
from kiosk.history import PassageHistory
from kiosk.listimport import apply_list_import, plan_list_import
from kiosk.lists import ListStore
from kiosk.observation import ObservationLedger
from kiosk.passes import issue_pass
from kiosk.policy import quota_reached, quota_used
from kiosk.services import ServiceDesk
from kiosk.store import EventDraft, EventLog
from kiosk.typed import typed
from kiosk.vehicles import VehicleList

WIDE = "\u3000１-１０１ "  # full width, an ideographic space before, a plain one after
PLAIN = "1-101"
DAY = date(2026, 2, 12)


@pytest.mark.parametrize(
    ("text", "stored"),
    [
        ("１-１０１", "1-101"),
        ("５－７０２", "5-702"),
        ("\u3000Ａ１２３４５\u3000", "A12345"),
        ("京Ａ１２３４５", "京A12345"),  # the province character stays
        ("张\u3000\u3000三", "张 三"),  # a Chinese name stays; the spaces are one
        ("王秀英", "王秀英"),
        ("１３８００１３８０００", "13800138000"),
        ("a\u00a0 b", "a b"),
        ("", ""),
    ],
)
def test_typed_folds_width_and_spaces_and_keeps_chinese(text, stored):
    assert typed(text) == stored


@pytest.fixture
def clock():
    return FakeClock(start=datetime(2026, 2, 12, 2, 0, tzinfo=UTC))


@pytest.fixture
def log(tmp_path, clock):
    sets = [lists_mod.MIGRATIONS, compound.MIGRATIONS, vehicles.MIGRATIONS,
            observation.MIGRATIONS, services.MIGRATIONS]  # fmt: skip
    store = EventLog(tmp_path / "k.db", "g", clock, "NORMAL", migrations=sets)
    yield store.open()
    store.close()


def _lists(log, clock) -> ListStore:
    store = ListStore(log, clock)
    store.load()
    return store


def _household_set(log, clock) -> list[str]:
    return [h.household for h in _lists(log, clock).set_household(WIDE, "g").households.values()]


def _quarantine_added(log, clock) -> list[str]:
    added = _lists(log, clock).add_quarantine(WIDE, None, DAY, DAY, "g")
    return [q.household for q in added.quarantine]


def _list_imported(log, clock) -> list[str]:
    store = _lists(log, clock)
    plan = plan_list_import(f"household,residents\n{WIDE},3\n".encode(), "h.csv", store.current)
    apply_list_import(plan, store, "import")
    return list(store.load().households)


def _map_imported(log, clock) -> list[str]:
    cmap = CompoundMap(log, clock)
    csv = f"building,unit,floor,household\n1,1,1,{WIDE}\n"
    cmap.apply(cmap.plan_import(csv.encode(), "map.csv"), "manager")
    return [d.household for d in cmap.dwellings()]


def _vehicle_imported(log, clock) -> list[str]:
    cars = VehicleList(log, clock)
    cars.apply(cars.plan_import(f"plate,household\n京Ａ１２３４５,{WIDE}\n".encode(), "c.csv"), "m")
    return [str(cars.check("京A12345"))]


def _returnee_registered(log, clock) -> list[str]:
    ledger = ObservationLedger(log, clock, "Asia/Shanghai")
    person = ledger.register(name="王秀英", household=WIDE, phone="", origin="武汉",
                             date_back=DAY, actor="g")  # fmt: skip
    return [person.household]


def _service_opened(log, clock) -> list[str]:
    desk = ServiceDesk(log, clock, "Asia/Shanghai")
    return [desk.open(WIDE, "food", "g", confined=True).household]


def _text_cleaned(log, clock) -> list[str]:
    return [clean_text("household", WIDE)]


ENTRY_POINTS: dict[str, Callable[[Any, Any], list[str]]] = {
    "lists.set_household": _household_set,
    "lists.add_quarantine": _quarantine_added,
    "lists.import_csv": _list_imported,
    "compound.import": _map_imported,
    "vehicles.import": _vehicle_imported,
    "observation.register": _returnee_registered,
    "services.open": _service_opened,
    "community.clean_text": _text_cleaned,
}


@pytest.mark.parametrize("entry", sorted(ENTRY_POINTS))
def test_a_household_typed_full_width_is_stored_plain(log, clock, entry):
    assert ENTRY_POINTS[entry](log, clock) == [PLAIN]


def test_an_import_with_full_width_codes_merges_with_the_entries_in_force(log, clock):
    store = _lists(log, clock)
    store.set_household(PLAIN, "g", residents=2)
    plan = plan_list_import("household,residents\n１-１０１,3\n".encode(), "h.csv", store.current)
    assert plan.diff.counts()["added"] == 0 and plan.diff.counts()["changed"] == 1
    apply_list_import(plan, store, "import")
    assert {k: h.residents for k, h in store.load().households.items()} == {PLAIN: 3}
    assert store.remove_household("１-１０１", "g").households == {}
    cmap = CompoundMap(log, clock)
    cmap.apply(cmap.plan_import(b"building,floor,household\n1,1,1-101\n", "m.csv"), "m")
    again = cmap.plan_import("building,floor,household\n1,1,１-１０１\n".encode(), "m.csv")
    assert again.diff.counts() == {"added": 0, "changed": 0, "removed": 0, "unchanged": 1}


def test_a_household_list_import_in_another_case_updates_the_entry_in_force(log, clock):
    """Before: ``a-101`` in a sheet while the list held ``A-101`` was added as a second
    household, and the gate (which matches without case, ``same_text``) took either one's
    residents and observation date; one sheet holding both took both."""
    store = _lists(log, clock)
    store.set_household("A-101", "g", residents=2)
    plan = plan_list_import(b"household,residents\na-101,3\n", "h.csv", store.current)
    assert plan.diff.counts()["added"] == 0 and plan.diff.counts()["changed"] == 1
    apply_list_import(plan, store, "import")
    assert {k: h.residents for k, h in store.load().households.items()} == {"A-101": 3}
    with pytest.raises(CommunityError) as refused:
        plan_list_import(b"household,residents\nB-202,3\nb-202,3\n", "h.csv", store.current)
    assert str(refused.value) == (
        "line 3: household b-202 is household B-202 of line 2 (households are matched"
        " without case or width): one of them is a mistake"
    )


def test_a_guard_setting_a_household_in_another_case_edits_the_entry_in_force(log, clock):
    """Before: the guard's ``b-202`` beside the list's ``B-202`` was a second household, and
    the gate took either one's residents."""
    store = _lists(log, clock)
    store.set_household("B-202", "g", residents=2)
    store.set_household("b-202", "g", residents=5)
    assert {k: h.residents for k, h in store.load().households.items()} == {"B-202": 5}


def test_a_households_people_and_requests_are_found_whatever_the_case_typed(log, clock):
    """Before: the console's check that a returnee is not registered twice, the service desk's
    one request of a kind at a time and the household's page looked people and requests up
    by the exact spelling: ``Wang Fang`` of ``B-2-701`` was registered again as of ``b-2-701``,
    and the map's ``B-2-701`` showed none of the requests opened for ``b-2-701``."""
    ledger = ObservationLedger(log, clock, "Asia/Shanghai")
    person = ledger.register(name="Wang Fang", household="B-2-701", phone="", origin="Wuhan",
                             date_back=DAY, actor="g")  # fmt: skip
    assert [p.id for p in ledger.people(status="observing", household="b-2-701")] == [person.id]
    assert [p.id for p in ledger.people(household="Ｂ-2-701")] == [person.id]
    assert ledger.people(household="B-2-702") == []
    desk = ServiceDesk(log, clock, "Asia/Shanghai")
    opened = desk.open("b-2-701", "food", "g", confined=True)
    assert [r.id for r in desk.requests(household="B-2-701", open_only=True)] == [opened.id]
    assert desk.requests(household="B-2-702") == []


def test_a_revoked_pass_id_typed_full_width_is_the_pass_id(log, clock):
    revoked = _lists(log, clock).revoke("Ａ０Ｂ１ｃ２ｄ３ｅ４ｆ５", "lost", "g")
    assert revoked.is_revoked("a0b1c2d3e4f5")


def test_passes_spelling_one_household_otherwise_share_its_outing_quota():
    """A pass issued as ``１-１０１`` (before this rule, or by another tool) and one issued as
    ``1-101``: the quota counted them as two households, letting the family out twice as often
    as the quota allows, and the map did not mark it."""
    history = PassageHistory()
    now = datetime(2026, 2, 12, 8, 0, tzinfo=UTC)
    history.record("p1", "１-１０１", "out", "pass", now - timedelta(hours=2))
    history.record("p2", "1-101", "out", "pass", now - timedelta(hours=1))
    assert history.exits_in_period("1-101", now, 1) == 2
    assert history.exits_in_period(" １-１０１", now, 1) == 2
    quota = QuotaConfig(enabled=True, exits=2)
    assert quota_reached(quota, history, "1-101", "resident", now, tz="Asia/Shanghai")
    assert quota_used(quota, history, now, tz="Asia/Shanghai") == {
        "１-１０１"
    }  # the first spelling, marked once


def _spelled_twice(db) -> None:
    """A row stored before the plain-spelling rule: the same household, typed full width."""
    row = next(db["list_quarantine"].rows)
    db["list_quarantine"].insert({k: v for k, v in row.items() if k != "id"} | {"household": WIDE})


def test_the_daily_report_counts_a_household_spelled_two_ways_once(reporting_store, clock):
    quota = QuotaConfig(enabled=True, exits=1, period_days=1)
    for hours, household in ((1, "１-１０１"), (2, "1-101")):
        clock.set_wall(datetime(2026, 2, 12, hours, tzinfo=UTC))
        reporting_store.append(EventDraft(direction="out", decision="pass", household=household))
    exits = stats.compute_report(reporting_store.reader(), DAY, "UTC", quota)
    assert exits["exits_per_household"] | {"quota_enabled": True} == {
        "quota_enabled": True, "quota_exits": 1, "period_days": 1, "quota_roles": ["resident"],
        "households": 1, "exits": 2,
        "histogram": {"2": 1}, "max": 2, "over_quota_households": 1,
    }  # fmt: skip


def test_a_quarantine_stored_in_two_spellings_is_one_quarantined_household(log, clock):
    _lists(log, clock).add_quarantine(PLAIN, None, DAY, DAY, "g")
    log.submit(_spelled_twice)
    community = stats.compute_report(log.reader(), DAY, "UTC")["community"]
    assert community["quarantined_households"] == 1


def test_a_guard_registering_a_quarantined_household_typed_full_width_is_warned(
    guard_client, guard_core
):
    """End to end at the console: the list says 1-101; the guard types １-１０１ going out."""
    guard_core.lists.add_quarantine(PLAIN, None, DAY, DAY, "root")  # the clock's day
    csrf = login(guard_client)
    form = {"name": "王秀英", "unit": WIDE, "reason": "看病", "direction": "out",
            "temp_c": "３６．５"}  # fmt: skip
    refused = post(guard_client, "/guard/register/person", csrf, **form)
    assert refused.status_code == 400 and nothing_recorded(guard_core)
    with decided(guard_client, guard_core):
        post(guard_client, "/guard/register/person", csrf, **form,
             confirm_quarantine="1", quarantine_reason="医院复诊")  # fmt: skip
    (event,) = guard_core.store.events()
    assert event["person"]["unit"] == PLAIN and "quarantine" in event["flags"]


def test_a_plate_typed_full_width_is_the_registered_vehicle(guard_client, guard_core):
    guard_core.store.submit(vehicles.MIGRATIONS.apply)
    cars = VehicleList(guard_core.store, guard_core.clock)
    cars.apply(cars.plan_import("plate,household\n京A12345,1-101\n".encode(), "c.csv"), "root")
    csrf = login(guard_client)
    form = {"plate": "京Ａ１２３４５\u3000", "driver": "赵刚", "driver_temp": "36.4",
            "reason": "回家"}  # fmt: skip
    with decided(guard_client, guard_core):
        assert post(guard_client, "/guard/register/vehicle", csrf, **form).status_code == 303
    (event,) = guard_core.store.events()
    assert event["person"]["plate"] == "京A12345"
    assert event["person"]["resident_of"] == PLAIN


def _issued_by_core(tmp_path, capsys) -> list[str]:
    key = Ed25519PrivateKey.generate()
    _text, pass_ = issue_pass(key, WIDE, "张\u3000三", now=datetime(2026, 2, 12, tzinfo=UTC))
    return [pass_.household, pass_.holder]


def _issued_by_cli(tmp_path, capsys) -> list[str]:
    assert main(["keys", "new", "--dir", str(tmp_path / "keys"), "--name", "office"]) == 0
    key = str(tmp_path / "keys" / "office.key")
    capsys.readouterr()
    assert (
        main(
            [
                "pass",
                "issue",
                "--tz=Asia/Shanghai",
                "--key",
                key,
                "--household",
                WIDE,
                "--holder",
                "张\u3000三",
            ]
        )
        == 0
    )
    payload = capsys.readouterr().out.strip()
    assert main(["pass", "verify", payload, "--trust", str(tmp_path / "keys")]) == 0
    verdict = json.loads(capsys.readouterr().out)
    return [verdict["household"], verdict["holder"]]


def _issued_in_a_batch(tmp_path, capsys) -> list[str]:
    assert main(["keys", "new", "--dir", str(tmp_path / "keys"), "--name", "office"]) == 0
    rows = tmp_path / "h.csv"
    rows.write_text(f"household,holder\n{WIDE},张\u3000三\n", encoding="utf-8")
    key, out = str(tmp_path / "keys" / "office.key"), tmp_path / "cards"
    assert main(batch_args(key, rows, out)) == 0
    (manifest,) = out.glob("*.csv")
    (row,) = csv.DictReader(io.StringIO(manifest.read_text(encoding="utf-8-sig")))
    return [row["household"], row["holder"]]


PASS_ISSUERS: dict[str, Callable[[Any, Any], list[str]]] = {
    "passes.issue_pass": _issued_by_core,
    "kiosk pass issue": _issued_by_cli,
    "kiosk pass batch": _issued_in_a_batch,
}


@pytest.mark.parametrize("issuer", sorted(PASS_ISSUERS))
def test_a_pass_issued_for_a_household_typed_full_width_carries_it_plain(tmp_path, capsys, issuer):
    assert PASS_ISSUERS[issuer](tmp_path, capsys) == [PLAIN, "张 三"]


def test_a_pass_issued_at_the_console_for_a_household_typed_full_width_carries_it_plain(
    guard_client, guard_core
):
    csrf = login(guard_client)
    form = {"household": WIDE, "holder": "张\u3000三", "role": "visitor", "days": "1"}
    assert post(guard_client, "/guard/passes", csrf, **form).status_code in (200, 303)
    issued = [a["detail"] for a in guard_core.store.audits() if a["action"].startswith("pass")]
    assert issued and PLAIN in json.dumps(issued, ensure_ascii=False)


def test_the_pass_list_search_finds_a_household_or_pass_id_typed_full_width(
    guard_client, guard_core
):
    csrf = login(guard_client)
    form = {"household": PLAIN, "holder": "张三", "role": "visitor", "days": "1"}
    post(guard_client, "/guard/passes", csrf, **form)
    (pass_id,) = [a["detail"]["pass_id"] for a in guard_core.store.audits()
                  if a["action"] == "pass_issued"]  # fmt: skip
    wide_id = "".join(chr(ord(c) + 0xFEE0) for c in pass_id.upper())  # Ａ０Ｂ１...
    for q in (PLAIN, WIDE, wide_id):
        assert pass_id in post(guard_client, "/guard/passes/search", csrf, q=q).text, q
    assert pass_id not in post(guard_client, "/guard/passes/search", csrf, q="9-999").text


def test_the_earlier_visitor_search_finds_a_phone_typed_full_width(guard_client, guard_core):
    csrf = login(guard_client)
    with decided(guard_client, guard_core):
        post(guard_client, "/guard/register/person", csrf, name="王秀英", unit="3-402",
             phone="13800138000", reason="看望母亲", temp_c="36.5")  # fmt: skip
    found = post(guard_client, "/guard/register/search", csrf, q="１３８００１３８０００").text
    assert 'id="found"' in found and "王秀英" in found.split('id="found"', 1)[1]


@pytest.mark.parametrize(
    ("verb", "sheet", "table"),
    [
        ("lists", f"household,residents\n{WIDE},2\n", "list_households"),
        ("lists", f"household,from,until\n{WIDE},2026-02-10,2026-02-24\n", "list_quarantine"),
        ("compound", f"building,unit,floor,household\n1,1,1,{WIDE}\n", "compound_households"),
        ("vehicles", f"plate,household\n京Ａ１２３４５\u3000,{WIDE}\n", "resident_vehicles"),
    ],
)
def test_a_cli_import_typed_full_width_is_stored_plain(tmp_path, capsys, verb, sheet, table):
    path = tmp_path / "kiosk.db"
    EventLog(path, "gate-1", FakeClock(), "NORMAL").open().close()
    data = tmp_path / "in.csv"
    data.write_text(sheet, encoding="utf-8")
    assert main([verb, "import", str(data), "--apply", "--db", str(path)]) == 0
    log = EventLog(path, "gate-1", FakeClock(), "NORMAL").open()
    try:
        rows = list(log.reader()[table].rows)
    finally:
        log.close()
    assert [r["household"] for r in rows] == [PLAIN]
    assert all(r.get("plate", "京A12345") == "京A12345" for r in rows)


CONSOLE_FORMS = [
    # From the day after the desk's entry of DAY: the same days again would be refused.
    ("/guard/lists/quarantine/add",
     {"household": WIDE, "from": "2026-02-13", "until": "2026-02-20"}, "list_quarantine"),
    ("/guard/lists/households/add", {"household": WIDE, "residents": "3"}, "list_households"),
    ("/guard/community/returnees",
     {"name": "Wang Fang", "household": WIDE, "phone": "１３８１２３４５６７８", "origin": "Wuhan",
      "date_back": "2026-02-12", "days": "14"}, "obs_people"),
    ("/guard/community/services", {"household": WIDE, "kind": "medicine"}, "service_requests"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("path", "form", "table"), CONSOLE_FORMS, ids=[c[0] for c in CONSOLE_FORMS]
)
def test_a_console_form_typed_full_width_is_stored_plain(
    guard_client, guard_core, path, form, table
):
    guard_core.lists.add_quarantine("1-101", None, DAY, DAY, "root")  # the desk serves it
    csrf = login(guard_client)
    assert post(guard_client, path, csrf, **form).status_code == 303
    rows = list(guard_core.store.reader()[table].rows)
    assert {r["household"] for r in rows} == {PLAIN}
    assert all(r.get("phone", "13812345678") == "13812345678" for r in rows)


def test_a_pass_id_typed_full_width_at_the_console_revokes_that_pass(guard_client, guard_core):
    csrf = login(guard_client)
    form = {"pass_id": "０１２３４５６７８９ＡＢ", "note": "lost", "confirm": "yes"}
    assert post(guard_client, "/guard/lists/revocations/add", csrf, **form).status_code == 303
    assert guard_core.lists.current.is_revoked("0123456789ab")


def test_the_service_desk_knows_a_quarantined_household_typed_full_width(guard_client, guard_core):
    """The desk refused a food request for １-１０１ ('neither quarantined nor under
    observation'), and a second request of the same kind was not seen as still open."""
    guard_core.lists.add_quarantine(PLAIN, None, DAY, DAY, "root")
    csrf = login(guard_client)
    for household in (WIDE, PLAIN, "１-１０１"):
        post(guard_client, "/guard/community/services", csrf, household=household, kind="food")
    rows = list(guard_core.store.reader()["service_requests"].rows)
    assert [(r["household"], r["kind"]) for r in rows] == [(PLAIN, "food")]
    ledger = ObservationLedger(guard_core.store, guard_core.clock, "Asia/Shanghai")
    ledger.register(
        name="王秀英", household=PLAIN, phone="", origin="武汉", date_back=DAY, actor="g"
    )
    assert [p.household for p in ledger.people(household=WIDE)] == [PLAIN]


def test_a_returnee_registered_again_typed_otherwise_is_already_observed(guard_client, guard_core):
    csrf = login(guard_client)
    form = {"origin": "Wuhan", "date_back": "2026-02-12", "days": "14", "phone": ""}
    for name, household in (("Wang Fang", WIDE), ("Ｗａｎｇ\u3000ｆａｎｇ", PLAIN)):
        post(
            guard_client, "/guard/community/returnees", csrf, name=name, household=household, **form
        )
    rows = list(guard_core.store.reader()["obs_people"].rows)
    assert [(r["name"], r["household"]) for r in rows] == [("Wang Fang", PLAIN)]


def test_a_returnee_registered_again_with_another_name_dot_is_already_observed(
    guard_client, guard_core
):
    """The second helper's input method typed the name's separator as a bullet, and the
    household in lower case: the same person, not a second returnee."""
    csrf = login(guard_client)
    form = {"origin": "Kashgar", "date_back": "2026-02-12", "days": "14", "phone": ""}
    for name, household in (("尼格买提·热合曼", "B-2-701"), ("尼格买提•热合曼", "b-2-701")):
        post(
            guard_client, "/guard/community/returnees", csrf, name=name, household=household, **form
        )
    rows = list(guard_core.store.reader()["obs_people"].rows)
    assert [(r["name"], r["household"]) for r in rows] == [("尼格买提·热合曼", "B-2-701")]


def test_a_guard_signing_in_with_the_name_typed_full_width_is_that_guard(guard_client, guard_core):
    """A phone's input method left in full-width mode types ａｌｉｃｅ: refused as a wrong name
    or password, with the right password. Failed sign-ins count per address, not per name, so
    another spelling gives no extra tries."""
    login(guard_client, "\u3000ａｌｉｃｅ")
    csrf = csrf_of(guard_client.get("/guard").text)
    with decided(guard_client, guard_core):
        post(guard_client, "/guard/register/person", csrf, name="李雷", unit="1-102", reason="r",
             temp_c="36.5")  # fmt: skip
    (event,) = guard_core.store.events()
    assert event["operator"] == "alice"
    signed_in = [a["actor"] for a in guard_core.store.audits() if "login" in a["action"]]
    assert signed_in == ["alice"]


@pytest.mark.parametrize(
    "dot", ["\u2022", "\u30fb", "\uff65", "\u2219", "\u22c5", "\u2027", "\u25cf"]
)
def test_a_name_whose_separator_dot_was_typed_otherwise_is_the_same_person(dot):
    """A Uyghur or Kazakh name's separator is U+00B7 (民委发〔2016〕33号); input methods and
    fonts give a bullet, a katakana middle dot or a black circle instead. Before: a
    person-level quarantine of 尼格买提·热合曼 did not cover the pass of 尼格买提•热合曼,
    who walked out of a quarantined household."""
    from kiosk.lists import QuarantineEntry, same_text

    entry = QuarantineEntry("1-101", "尼格买提·热合曼", DAY, DAY)
    assert entry.covers("1-101", f"尼格买提{dot}热合曼")
    assert same_text(f"阿依{dot}古丽") == same_text("阿依·古丽")
    assert not entry.covers("1-101", "尼格买提热合曼")  # no dot is another spelling still


@pytest.mark.parametrize(
    ("held", "shown"),
    [
        ("欧阳娜娜", "欧阳 娜娜"),  # the console's space for an IME's full-width one
        ("王芳", "王  芳"),
        ("欧阳 娜娜", "欧阳娜娜"),
        ("尼格买提·热合曼", "尼格买提 · 热合曼"),  # spaces around the separator dot
        ("김민수", "김 민수"),
        ("Zhang San", "Zhang  San"),  # a run of spaces between words is one
        ("Zhang San", "zhang\u3000san"),
    ],
)
def test_a_name_with_a_space_typed_otherwise_is_the_same_person(log, clock, held, shown):
    """The console turns an IME's full-width space into a space: a pass for ``欧阳　娜娜``
    says ``欧阳 娜娜``. Before: a quarantine of ``欧阳娜娜`` did not cover it (the gate let the
    quarantined resident out), a returnee under observation was not observed, and a second
    quarantine of ``欧阳 娜娜`` was added beside the first."""
    from kiosk.alarms import Alarm
    from kiosk.lists import QuarantineEntry, same_text
    from kiosk.observation import ObservationSnapshot, _key
    from kiosk.people import key_of

    assert same_text(held) == same_text(shown)
    assert QuarantineEntry("5-702", held, DAY, DAY).covers("5-702", shown)
    snap = ObservationSnapshot({_key("5-702", held): ((DAY, DAY),)})
    assert snap.observing("5-702", shown, DAY)
    assert key_of("text", held) == key_of("text", shown)
    one, two = (Alarm("k", "fever", "t", household="5-702", holder=h) for h in (held, shown))
    assert one.subject == two.subject
    store = _lists(log, clock)
    store.add_quarantine("5-702", held, DAY, DAY, "g")
    with pytest.raises(lists_mod.ListError, match="already quarantined"):
        store.add_quarantine("5-702", shown, DAY, DAY, "g")


@pytest.mark.parametrize(
    ("one", "other"),
    [
        ("Ann Li", "Annli"),  # a space between Latin words is part of the name
        ("Li Na", "Lin A"),
        ("1-101", "1 - 101"),
        ("王芳", "王芬"),
    ],
)
def test_a_space_between_latin_words_still_tells_two_people_apart(one, other):
    """Only a space beside a character of a script written without spaces (Chinese,
    Japanese, Korean, the name's dot) is ignored: ``same_text`` is also whom a guard's
    forget empties (a name in free text, as a substring) and an alarm's person, where two
    people must not become one."""
    from kiosk.lists import QuarantineEntry, same_text
    from kiosk.people import key_of

    assert same_text(one) != same_text(other)
    assert not QuarantineEntry("5-702", one, DAY, DAY).covers("5-702", other)
    assert key_of("text", one) != key_of("text", other)


def test_a_forget_finds_a_name_in_free_text_however_its_inner_space_was_typed():
    """A forget empties the notes that carry the name (a substring of ``key_of``'s text):
    ``欧阳娜娜`` is in a note that says ``欧阳 娜娜``; ``Annli`` is not in ``Ann Li came``."""
    from kiosk.people import key_of

    needle = key_of("text", "Annli")
    assert needle is not None and needle not in (key_of("text", "Ann Li came by") or "")
    assert key_of("text", "欧阳娜娜") in (key_of("text", "来访: 欧阳 娜娜 的亲戚") or "")


def test_a_long_run_of_spaces_is_folded_as_a_short_one():
    """The rule for spaces beside a Chinese character was a regular expression quadratic in
    a run of spaces (16,000 spaces: 2.3 s of a gate's CPU for one name). The run is made
    one space first, then a single space beside such a character dropped."""
    from kiosk.lists import same_text

    run = " " * 100_000
    assert same_text(f"王{run}芳") == "王芳"
    assert same_text(f"Zhang{run}San") == "zhang san"
    assert same_text(f"王{run}San") == "王san"
    assert same_text(f"Zhang{run}\t{run}·{run}热合曼") == "zhang·热合曼"


def test_households_one_now_and_two_before_are_said_at_start_by_count(caplog):
    """``5号楼 702`` and ``5号楼702`` were two entries of the households list before spaces
    beside a Chinese character were ignored; now they share a key and the index holds them as
    one merged entry. The start says how many, never which."""
    import logging

    from checkpoint.app import say_shared_keys
    from kiosk.lists import Household, Lists

    current = Lists.build(households=[
        Household("5号楼 702", observation_until=DAY), Household("5号楼702"),
        Household("Ann Li"), Household("Annli"), Household("1-101"),
    ])  # fmt: skip
    assert current.households_sharing_a_key() == 2
    with caplog.at_level(logging.WARNING, logger="checkpoint.app"):
        say_shared_keys(current)
    [said] = [r.getMessage() for r in caplog.records if "households list" in r.getMessage()]
    assert said.startswith("lists: 2 entries") and "5号楼" not in said
    caplog.clear()
    say_shared_keys(Lists.build(households=[Household("5号楼702"), Household("1-101")]))
    assert not [r for r in caplog.records if "households list" in r.getMessage()]


def test_a_space_beside_the_name_dot_between_latin_letters_is_no_part_of_the_name():
    """The separator dot is in the set a space beside is dropped by: a name written in Latin
    letters with it (``Nigmat · Rahman``) is ``Nigmat·Rahman``."""
    from kiosk.lists import same_text

    assert same_text("Nigmat · Rahman") == same_text("Nigmat·Rahman") == "nigmat·rahman"


_SEVENTH = date(2026, 12, 7)


@pytest.mark.parametrize("flip", [False, True])
def test_two_spellings_of_one_household_merge_strictly_in_either_order(flip):
    """``5号楼 702`` observed until 2026-12-20 and ``5号楼702`` not: whichever the list holds
    last, the gate holds the household under observation (the index kept the last before)."""
    from kiosk.lists import Household, Lists

    entries = [Household("5号楼 702", observation_until=date(2026, 12, 20)), Household("5号楼702")]
    current = Lists.build(households=entries[::-1] if flip else entries)
    assert current.under_observation("5号楼702", _SEVENTH)
    assert current.under_observation("5号楼 702", _SEVENTH)
    [merged] = current.merged_households()
    assert merged.observation_until == date(2026, 12, 20)


def test_each_field_of_colliding_households_is_merged_on_its_strict_side():
    """The latest observation (a date over none), the most residents, every note; the same
    merged entry whichever order the list holds them in."""
    from kiosk.lists import Household, Lists

    a = Household("5号楼 702", residents=2, observation_until=date(2026, 12, 10), note="back")
    b = Household("5号楼702", residents=4, observation_until=date(2026, 12, 20), note="x")
    c = Household("５号楼702", residents=None, observation_until=None, note="", source="office")
    merged = {Lists.build(households=order).merged_households() for order in [(a, b, c), (c, b, a)]}
    [[one]] = [list(m) for m in merged]
    assert one.observation_until == date(2026, 12, 20)
    assert one.residents == 4
    assert set(one.note.split("; ")) == {"back", "x"}
    assert Lists.build(households=[c, a]).merged_households()[0].residents == 2
    assert Lists.build(households=[c]).merged_households() == (c,)


def test_households_sharing_a_key_are_counted_in_health_and_on_the_lists_page(
    guard_client, guard_core
):
    """Not only the journal line at start: ``/health`` and the console's lists page (both
    languages) say how many entries share a key, never which."""
    guard_core.lists.set_household("5号楼 702", "root", observation_until=DAY)
    assert guard_core.health()["lists"]["households_sharing_a_key"] == 0
    guard_core.store.submit(
        lambda db: db.execute(
            "INSERT INTO list_households (household, source) VALUES ('5号楼702', 'guard')"
        )
    )
    guard_core.lists.load()
    assert guard_core.health()["lists"]["households_sharing_a_key"] == 2
    assert guard_core.lists.current.under_observation("5号楼702", DAY)
    login(guard_client)
    assert "户籍名单中有 2 条" in guard_client.get("/guard/lists").text
    page = guard_client.get("/guard/lists?lang=en").text
    assert "2 entries of the households list are one household" in page


def _two_spellings(core) -> None:
    """``5号楼 702`` observed and ``5号楼702`` not, as an earlier release kept them apart:
    the unobserved one stored first."""
    core.store.submit(
        lambda db: db.execute(
            "INSERT INTO list_households (household, source, observation_until) VALUES"
            " ('5号楼702', 'guard', NULL), ('5号楼 702', 'guard', '2026-12-20')"
        )
    )
    core.lists.load()


def test_an_edit_of_a_household_two_entries_spell_is_refused_until_they_are_merged(guard_core):
    """The edit matched the first stored spelling: a guard lifting the observation of
    ``5号楼 702`` updated the unobserved ``5号楼702`` (or the other way round) and the gate
    kept denying the household while the guard thought it lifted. Now the edit is refused
    and says how many entries spell the household; nothing changes."""
    _two_spellings(guard_core)
    assert set(guard_core.lists.current.households) == {"5号楼702", "5号楼 702"}
    for typed_as in ("5号楼702", "5号楼 702", "５号楼 702"):
        with pytest.raises(lists_mod.ListError, match="2 entries are spellings of household"):
            guard_core.lists.set_household(typed_as, "guard Li", observation_until=None)
        with pytest.raises(lists_mod.ListError, match="merge them first"):
            guard_core.lists.household_entry(typed_as)
    held = guard_core.lists.current.households
    assert held["5号楼 702"].observation_until == date(2026, 12, 20)
    assert held["5号楼702"].observation_until is None and held["5号楼702"].source == "guard"
    # Merged as the docs say (keep one, remove the other), the edit applies to the one left.
    guard_core.lists.remove_household("5号楼702", "root")
    guard_core.lists.set_household("5号楼702", "guard Li", observation_until=None)
    assert set(guard_core.lists.current.households) == {"5号楼 702"}
    assert not guard_core.lists.current.under_observation("5号楼702", date(2026, 12, 7))


def test_the_console_refuses_the_edit_of_a_household_two_entries_spell_in_both_languages(
    guard_client, guard_core
):
    """The console's households form showed (and offered to replace) whichever spelling was
    stored first; now it refuses, in the page's language, before asking anything."""
    from ui.core_words import refusal_text

    _two_spellings(guard_core)
    login(guard_client)
    csrf = csrf_of(guard_client.get("/guard/lists").text)
    sent = {"household": "5号楼702", "residents": "3", "confirm": "yes"}
    answer = post(guard_client, "/guard/lists/households/add", csrf, **sent)
    said = answer.text if answer.status_code == 400 else answer.headers.get("location", "")
    assert "confirm-form" not in said
    english = (
        "2 entries are spellings of household 5号楼702: merge them first"
        " (keep one, remove the others)"
    )
    chinese = refusal_text("zh-CN", english)
    assert chinese != english and "2" in chinese and "5号楼702" in chinese
    assert refusal_text("en", english) == english
    assert answer.status_code == 400 and chinese in answer.text
    held = guard_core.lists.current.households
    assert held["5号楼702"].residents is None and held["5号楼 702"].residents is None


def test_households_sharing_a_key_are_counted_once_when_the_lists_are_built(monkeypatch):
    """``core.health()`` (``/health``, ``/metrics``, the alarms, each screen's banner) asked
    for the count and it folded every spelling of the whole list again (47 ms at 20,355
    households). It is counted once, from the grouping the lists are built with."""
    from kiosk.lists import Freshness, Household, Lists

    current = Lists.build(households=[
        Household("5号楼 702"), Household("5号楼702"), Household("５号楼702"),
        Household("Ann Li"), Household("Annli"), Household("1-101"),
    ])  # fmt: skip

    def folded_again(text: str) -> str:
        raise AssertionError("the households list was folded again")

    monkeypatch.setattr(lists_mod, "same_text", folded_again)
    assert current.households_sharing_a_key() == 3
    assert current.with_freshness(Freshness(source="guard")).households_sharing_a_key() == 3
    monkeypatch.undo()
    assert Lists.build(households=[Household("1-101")]).households_sharing_a_key() == 0
    assert Lists().households_sharing_a_key() == 0


@pytest.mark.parametrize("text", ["²", "①", "᧚", "١٢", "12²", "", " 12", "-3", "1" * 19])
def test_a_number_a_machine_writes_is_ascii_digits_only(text):
    """``str.isdigit`` takes ``²``, ``①`` and ``᧚`` for digits, and ``int`` refused them: a
    flag ``overrides:²`` in a gate's row (a report, the console's passage page) or a hostile
    answer's header raised ValueError where None was meant."""
    from kiosk import links
    from kiosk.typed import whole_number

    assert whole_number(text) is None
    assert links.overridden([f"overrides:{text}"]) is None
    assert links.not_opened([f"not_opened:{text}", "not_opened:7"]) == 7


def test_a_number_a_machine_writes_is_read_whole():
    from kiosk.typed import whole_number

    assert whole_number("0") == 0
    assert whole_number("0042") == 42
    assert whole_number("9" * 18) == 10**18 - 1
    assert whole_number("12345", most_digits=4) is None
