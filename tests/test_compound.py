"""The compound map, the resident-vehicle list and the spreadsheets they come in."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest
from support import xlsx_bytes

from kiosk import compound, observation, services, vehicles
from kiosk.clock import FakeClock
from kiosk.community import CommunityError
from kiosk.compound import CompoundMap
from kiosk.config.policy import QuotaConfig
from kiosk.history import PassageHistory
from kiosk.lists import Household, Lists, QuarantineEntry
from kiosk.observation import ObservationLedger
from kiosk.policy import quota_used
from kiosk.services import ServiceDesk
from kiosk.sheets import read_table, write_xlsx
from kiosk.store import EventDraft, EventLog
from kiosk.vehicles import VehicleList, normalise_plate

DAY = date(2026, 2, 12)
MAP_CSV = (
    "building,unit,floor,household,residents\n"
    "3,1,7,3-1-701,2\n3,1,7,3-1-702,4\n3,1,1,3-1-101,1\n3,2,7,3-2-701,3\n5,1,2,5-1-201,\n"
)


@pytest.fixture
def clock():
    return FakeClock(start=datetime(2026, 2, 12, 2, 0, tzinfo=UTC))


@pytest.fixture
def log(tmp_path, clock):
    sets = [compound.MIGRATIONS, vehicles.MIGRATIONS, observation.MIGRATIONS, services.MIGRATIONS]
    store = EventLog(tmp_path / "k.db", "g", clock, "NORMAL", migrations=sets)
    yield store.open()
    store.close()


def test_a_map_import_shows_the_changes_then_applies_them(log, clock):
    cmap = CompoundMap(log, clock)
    first = cmap.plan_import(MAP_CSV.encode(), "map.csv")
    assert first.diff.counts() == {"added": 5, "changed": 0, "removed": 0, "unchanged": 0}
    assert cmap.dwellings() == []  # a plan changes nothing
    cmap.apply(first, "manager")
    assert len(cmap.dwellings()) == 5
    second = cmap.plan_import(
        xlsx_bytes([["Building", "Unit", "Floor", "Household", "Residents"],
              [3, 1, 7, "3-1-701", 3], [3, 1, 7, "3-1-702", 4], [3, 1, 1, "3-1-101", 1],
              [3, 2, 7, "3-2-701", 3], [6, 1, 3, "6-1-301", None]]),
        "map.xlsx",
    )  # fmt: skip
    assert second.diff.added == ("6-1-301",) and second.diff.removed == ("5-1-201",)
    assert second.diff.details["3-1-701"] == {"residents": (2, 3)}
    assert cmap.apply(second, "manager")["changed"] == 1
    assert {d.household for d in cmap.dwellings()} == {
        "3-1-701", "3-1-702", "3-1-101", "3-2-701", "6-1-301",
    }  # fmt: skip
    details = [a["detail"] for a in log.audits() if a["action"] == "compound.import"]
    assert details[-1] == {"households": 5, "added": 1, "changed": 1, "removed": 1,
                           "unchanged": 3}  # fmt: skip


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("building,floor\n3,1\n", "missing columns: household"),
        ("building,floor,household,colour\n3,1,a,red\n", "unknown columns: colour"),
        ("building,floor,household\n3,seven,3-701\n", r"line 2, column B \(floor\): 'seven'"),
        ("building,floor,household\n3,7,3-701\n3,7,3-701\n", "line 3: household 3-701 is"),
        ("building,floor,household\n3,7,\n", r"line 2, column C \(household\): required"),
        ("building,floor,household\n3,7,a,extra\n", "line 2: more fields than the header"),
        ("building,floor,household\n", "no households"),
        ("", "empty"),
    ],
)
def test_a_bad_map_is_refused_whole_with_the_line(log, clock, text, message):
    cmap = CompoundMap(log, clock)
    with pytest.raises(CommunityError, match=message):
        cmap.plan_import(text.encode(), "map.csv")


def test_a_household_on_the_map_twice_in_another_case_is_refused_naming_both_lines(log, clock):
    """Before: ``A-101`` and ``a-101`` were both taken (the duplicate check compared the text
    as typed), and the map's marks, the quota and the lists, which match households without
    case (``kiosk.lists.same_text``), then showed one of them for both."""
    cmap = CompoundMap(log, clock)
    text = "building,floor,household\n3,1,A-101\n3,2,B-201\n3,1,a-101\n"
    with pytest.raises(CommunityError) as refused:
        cmap.plan_import(text.encode(), "map.csv")
    assert str(refused.value) == (
        "line 4: household a-101 is household A-101 of line 2 (households are matched"
        " without case or width): one of them is a mistake"
    )
    assert cmap.dwellings() == []


def test_a_file_that_is_not_a_table_is_refused(log, clock):
    cmap = CompoundMap(log, clock)
    with pytest.raises(CommunityError, match="not a readable .xlsx"):
        cmap.plan_import(b"PK\x03\x04 not really", "map.xlsx")
    with pytest.raises(CommunityError, match=".csv or .xlsx"):
        cmap.plan_import(b"x", "map.pdf")
    with pytest.raises(CommunityError, match="larger than"):
        read_table(b"x" * (6 * 1024 * 1024), "big.csv")


def test_gb18030_csv_from_an_old_office_pc_reads(log, clock):
    table = read_table("building,floor,household\n三号楼,7,3-701\n".encode("gb18030"), "m.csv")
    assert table.rows[0]["building"] == "三号楼"


def test_statuses_and_the_grid_per_building(log, clock):
    cmap = CompoundMap(log, clock)
    cmap.apply(cmap.plan_import(MAP_CSV.encode(), "map.csv"), "manager")
    ObservationLedger(log, clock, "Asia/Shanghai").register(
        name="Wang", household="3-2-701", phone="", origin="Wuhan", date_back=DAY, actor="m"
    )
    ServiceDesk(log, clock, "Asia/Shanghai").open("3-1-702", "food", "g", confined=True)
    history = PassageHistory()
    history.record(log.append(EventDraft(direction="out", decision="pass", household="3-1-101")))
    lists = Lists.build(
        quarantine=[QuarantineEntry("3-1-702", None, DAY, date(2026, 2, 25))],
        households=[Household("5-1-201", observation_until=date(2026, 2, 20))],
    )
    used = quota_used(QuotaConfig(enabled=True, exits=1), history, clock.now(), tz="Asia/Shanghai")
    marks = compound.statuses(log.reader(), DAY, lists, used)
    assert marks == {
        "3-1-101": ("quota_used",),
        "3-1-702": ("quarantined", "open_request"),
        "3-2-701": ("observing",),
        "5-1-201": ("observing",),
    }
    grid = cmap.grid(marks)
    assert [b["building"] for b in grid] == ["3", "5"]
    unit1 = grid[0]["units"][0]
    assert [f["floor"] for f in unit1["floors"]] == [7, 1]  # top floor first
    assert unit1["floors"][0]["households"][1] == {
        "household": "3-1-702", "statuses": ["quarantined", "open_request"],
    }  # fmt: skip


def test_the_resident_vehicle_list_flags_unknown_plates(log, clock):
    cars = VehicleList(log, clock)
    data = write_xlsx({"cars": [["plate", "household"], ["京A·12345", "3-1-701"],
                                ["沪B 6789X", "3-2-701"]]})  # fmt: skip
    plan = cars.plan_import(data, "cars.xlsx")
    assert plan.diff.counts()["added"] == 2
    cars.apply(plan, "manager")
    assert cars.check("京a-12345") == "3-1-701"
    assert cars.check("京A99999") is None
    with pytest.raises(CommunityError, match="plate"):
        cars.check("!!")
    # The two spellings of one car, both lines named (before: only the second was).
    with pytest.raises(CommunityError, match=r"^line 3: plate 京A 12345 is 京A12345 of line 2"):
        cars.plan_import(b"plate,household\n\xe4\xba\xacA12345,1\n\xe4\xba\xacA 12345,2\n", "c.csv")
    assert normalise_plate(" 粤b.d1234 ") == "粤BD1234"
    assert log.audits()[-1]["action"] == "vehicles.import"


def test_a_quarantine_spelled_otherwise_on_the_list_marks_the_maps_household(log, clock):
    """The sub-district's list says ５－１－２０１ (full width), the map 5-1-201: the map showed
    the household unmarked, and the service desk (which asks the marks whether a household is
    confined) refused to open its food requests."""
    cmap = CompoundMap(log, clock)
    cmap.apply(cmap.plan_import(MAP_CSV.encode(), "map.csv"), "manager")
    lists = Lists.build(quarantine=[QuarantineEntry("５－１－２０１", None, DAY, DAY)])
    marks = compound.statuses(log.reader(), DAY, lists)
    assert marks == {"5-1-201": ("quarantined",)}


def test_two_observed_spellings_of_a_household_off_the_map_are_one_household_marked(log):
    """``5号楼 702`` and ``5号楼702``, both observed (an earlier release kept them apart), of a
    household the map does not hold (or no map yet): the map's marks are one household, under
    the spelling of its merged entry (``Lists.merged_households``), not one per spelling, as
    the stored entries would give (a household on the map is marked under the map's spelling
    either way)."""
    lists = Lists.build(households=[
        Household("5号楼702", observation_until=date(2026, 2, 20)),
        Household("5号楼 702", observation_until=date(2026, 2, 28)),
    ])  # fmt: skip
    assert compound.statuses(log.reader(), DAY, lists) == {"5号楼 702": ("observing",)}
