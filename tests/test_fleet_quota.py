"""The district report's outing quota: each gate reports its policy and its compound's other
gates in its daily report, the collector keeps them, and the district counts the households
over the quota with each compound's own policy (real PostgreSQL, as in test_fleet_pg.py)."""

from __future__ import annotations

import json
import sqlite3
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import httpx
import psycopg
import pytest
from pgfixture import Network
from support import kiosk_api

from checkpoint.cli import main
from kiosk.clock import FakeClock
from kiosk.config.fleet import CollectorConfig
from kiosk.days import same_clock
from kiosk.passes import load_private_key, new_key_pair
from kiosk.store import EventDraft
from office.collector import Collector
from office.compounds import GatePolicy, compounds, identity
from office.district import district_csv, district_report
from office.gatereports import POLICY_KEY, collect_reports, fetch_report
from office.listsync import publish_bundle
from office.pg import PgTarget
from office.pull import PullError, pull

pytest_plugins = ("pgfixture",)

DAY = date(2026, 3, 2)
START = datetime(2026, 3, 2, 1, 0, tzinfo=UTC)  # 09:00 in Shanghai on DAY


def _gate(
    tmp_path, name, peers=(), exits=1, period_days=2, enabled=True, zone=None, roles=None,
    compound=None,
):  # fmt: skip
    quota = {"enabled": enabled, "exits": exits, "period_days": period_days}
    config = {
        "policy": {"quota": quota | ({"roles": roles} if roles else {})},
        "compound": {"peers": [
            {"kiosk_id": p, "url": f"https://{p}", "token_env": "PEER_TOKEN"} for p in peers
        ]} | ({"id": compound} if compound else {}),
    }  # fmt: skip
    if zone:
        config["site"] = {"kiosk_id": name, "timezone": zone}
    return kiosk_api(tmp_path / f"{name}.db", name, FakeClock(start=START), config=config)


def _out(core, household, hours=0.0):
    core.clock.set_wall(START + timedelta(hours=hours))
    core.store.append(
        EventDraft(direction="out", decision="pass", household=household, holder="Li Lei")
    )


def _collect_once(cores, dsn, monkeypatch, **extra):
    """One round of a collector pulling ``cores`` (each with its token), ``extra`` in its
    config: the collector, stopped, and its statuses."""
    for i, core in enumerate(cores):
        monkeypatch.setenv(f"TOKEN_{i}", core.token)
    config = CollectorConfig.model_validate({
        **extra,
        "kiosks": [{"url": f"http://{c.config.site.kiosk_id}", "token_env": f"TOKEN_{i}"}
                   for i, c in enumerate(cores)],
    })  # fmt: skip
    collector = Collector(config, dsn, client=Network(*cores).client(),
                          report_interval_s=0, clock=FakeClock(start=START))  # fmt: skip
    try:
        return collector, collector.run_once()
    finally:
        collector.stop()


def _to_the_office(dsn, *gates):
    """Each gate's events as a ``logs:personal`` copy holds them (clear households), and its
    daily reports as the collector fetches and keeps them."""
    net = Network(*gates)
    with PgTarget(dsn) as target, httpx.Client(transport=httpx.MockTransport(net)) as client:
        for core in gates:
            kiosk_id = core.config.site.kiosk_id
            target.write_page(f"http://{kiosk_id}", kiosk_id, core.store.events(limit=1000))
            collect_reports(client, target, f"http://{kiosk_id}", kiosk_id, core.token, days=2)


@pytest.fixture
def gates(tmp_path):
    made: list = []
    yield lambda *a, **k: made.append(_gate(tmp_path, *a, **k)) or made[-1]
    for core in made:
        core.store.close()


def test_the_district_counts_a_household_out_twice_within_its_compounds_period(
    gates, pg_dsn, monkeypatch, capsys
):
    """``kiosk fleet report`` passed no quota: ``quota_enabled`` was false and a household of a
    compound with "one outing every 2 days" that went out at the north gate in the morning and
    at the south gate in the afternoon was not over the quota at the office (0)."""
    north = gates("gate-north", peers=["gate-south"])
    south = gates("gate-south", peers=["gate-north"])
    _out(north, "3-201", 0)
    _out(south, "3-201", 6)  # the gates could not know of each other's outing in time
    _out(south, "5-101", 7)  # once: within the quota
    for core in (north, south):
        core.clock.set_wall(START + timedelta(days=1))  # the day is over at both gates
    _to_the_office(pg_dsn, north, south)
    monkeypatch.setenv("KIOSK_FLEET_DSN", pg_dsn)
    assert main(["fleet", "report", "--day", DAY.isoformat()]) == 0
    exits = json.loads(capsys.readouterr().out)["exits_per_household"]
    assert exits["over_quota_households"] == 1
    assert (exits["quota_enabled"], exits["quota_exits"], exits["period_days"]) == (True, 1, 2)
    assert exits["households"] == 2 and exits["exits"] == 3
    (compound,) = exits["compounds"]
    assert compound["gates"] == ["gate-north", "gate-south"]
    assert compound["quota"] == {
        "enabled": True, "exits": 1, "period_days": 2, "roles": ["resident"],
        "timezone": "Asia/Shanghai",
    }  # fmt: skip
    assert compound["disagree"] == [] and compound["unknown"] == []
    assert compound["over_quota_households"] == 1


def test_each_compound_counts_with_its_own_policy_and_its_own_households(gates, pg_dsn):
    """Two compounds, each with its own gate and its own household 3-201 (a code is the
    compound's): one has "one outing every 2 days", the other "two". Neither household went
    out twice at its own compound's gates; across the district the code went out twice."""
    strict = gates("gate-a", exits=1)
    loose = gates("gate-b", exits=2, period_days=3)
    _out(strict, "3-201", 0)
    _out(loose, "3-201", 2)
    _out(loose, "3-201", 4)  # twice at its compound: within "two every 3 days"
    _to_the_office(pg_dsn, strict, loose)
    exits = district_report(pg_dsn, DAY, "Asia/Shanghai")["exits_per_household"]
    assert exits["over_quota_households"] == 0
    assert exits["households"] == 2 and exits["exits"] == 3  # not one household out three times
    assert exits["quota_enabled"] is True
    assert exits["quota_exits"] is None and exits["period_days"] is None  # not one policy
    by_gates = {tuple(c["gates"]): c for c in exits["compounds"]}
    assert by_gates[("gate-a",)]["quota"]["exits"] == 1
    assert by_gates[("gate-b",)]["quota"]["period_days"] == 3


def test_gates_of_one_compound_that_disagree_on_the_quota_are_named_not_resolved(gates, pg_dsn):
    north = gates("gate-north", peers=["gate-south"], exits=1, period_days=2)
    south = gates("gate-south", peers=["gate-north"], exits=2, period_days=2)
    _out(north, "3-201", 0)
    _out(south, "3-201", 6)
    _to_the_office(pg_dsn, north, south)
    exits = district_report(pg_dsn, DAY, "Asia/Shanghai")["exits_per_household"]
    (compound,) = exits["compounds"]
    assert compound["quota"] is None
    assert [(d["kiosk_id"], d["quota"]["exits"]) for d in compound["disagree"]] == [
        ("gate-north", 1), ("gate-south", 2),
    ]  # fmt: skip
    # Counted by neither rule: unknown, and so the district's sum.
    assert compound["over_quota_households"] is None
    assert exits["over_quota_households"] is None


def test_a_compound_whose_gates_never_reported_their_policy_is_unknown_not_zero(gates, pg_dsn):
    north = gates("gate-north")
    _out(north, "3-201", 0)
    _out(north, "3-201", 6)
    with PgTarget(pg_dsn) as target:  # events only: the gate refused its report, say
        target.write_page("http://gate-north", "gate-north", north.store.events(limit=1000))
    exits = district_report(pg_dsn, DAY, "Asia/Shanghai")["exits_per_household"]
    (compound,) = exits["compounds"]
    assert compound["unknown"] == ["gate-north"] and compound["quota"] is None
    assert compound["over_quota_households"] is None and exits["over_quota_households"] is None
    assert exits["quota_enabled"] is None


def test_the_gate_reports_its_quota_and_its_peers_and_a_forged_policy_is_refused(gates):
    north = gates("gate-north", peers=["gate-south", "gate-east"], exits=3, period_days=7)
    client = httpx.Client(transport=httpx.MockTransport(Network(north)))
    _, zone, figures = fetch_report(client, "http://gate-north", north.token, DAY)
    assert zone == "Asia/Shanghai"
    assert figures[POLICY_KEY] == {
        "quota": {"enabled": True, "exits": 3, "period_days": 7, "roles": ["resident"]},
        "peers": ["gate-east", "gate-south"],
        "id": None,
        "lists_for": None,
    }
    report = north.test_client.get(
        "/api/v1/stats", params={"day": DAY.isoformat()},
        headers={"Authorization": f"Bearer {north.token}"},
    ).json()  # fmt: skip
    for forged in (
        {"compound": {"peers": ["../../etc"]}},
        {"compound": {"peers": ["g"] * 100}},
        {"compound": {"peers": [], "lists_for": "../../etc"}},
        {"compound": {"peers": [], "lists_for": ["east"]}},
        {"compound": {"peers": [], "id": "../../etc"}},
        {"compound": {"peers": [], "id": 7}},
        {"exits_per_household": {**report["exits_per_household"], "quota_exits": 10**12}},
        {"exits_per_household": {**report["exits_per_household"], "quota_enabled": "yes"}},
        {"exits_per_household": {**report["exits_per_household"], "quota_roles": ["admin"]}},
    ):
        answer = httpx.Response(200, json={**report, **forged})
        bad = httpx.Client(transport=httpx.MockTransport(lambda r, a=answer: a))
        with pytest.raises(PullError, match="not a daily report"):
            fetch_report(bad, "http://gate-north", north.token, DAY)
    older = {k: v for k, v in report.items() if k != "compound"}  # a gate before this release
    older["exits_per_household"] = {
        k: v for k, v in report["exits_per_household"].items() if k != "quota_roles"
    }
    old = httpx.Client(transport=httpx.MockTransport(lambda r: httpx.Response(200, json=older)))
    policy = fetch_report(old, "http://gate-north", north.token, DAY)[2][POLICY_KEY]
    assert policy["peers"] is None and policy["quota"]["roles"] is None


def test_the_policy_kept_leaves_no_personal_data_in_the_database(gates, pg_dsn):
    north = gates("gate-north", peers=["gate-south"])
    _out(north, "3-201", 0)
    _to_the_office(pg_dsn, north)
    with psycopg.connect(pg_dsn) as conn:
        kept = json.dumps(conn.execute("SELECT ledgers FROM fleet_gate_reports").fetchall())
    assert "3-201" not in kept and "Li Lei" not in kept and "gate-south" in kept


def test_gates_whose_zone_names_differ_but_keep_one_clock_agree(gates, pg_dsn):
    """Asia/Chongqing is another name of Shanghai's clock: not a disagreement."""
    north = gates("gate-north", peers=["gate-south"])
    south = gates("gate-south", peers=["gate-north"], zone="Asia/Chongqing")
    _out(north, "3-201", 0)
    _out(south, "3-201", 6)
    _to_the_office(pg_dsn, north, south)
    exits = district_report(pg_dsn, DAY, "Asia/Shanghai")["exits_per_household"]
    (compound,) = exits["compounds"]
    assert compound["disagree"] == [] and compound["over_quota_households"] == 1


def test_same_clock_compares_the_rules_over_the_period_not_the_names():
    winter = datetime(2026, 1, 10, tzinfo=UTC)
    assert same_clock(ZoneInfo("Asia/Shanghai"), ZoneInfo("Asia/Chongqing"), winter, winter)
    assert same_clock(ZoneInfo("Europe/Berlin"), ZoneInfo("Europe/Paris"), winter,
                      winter + timedelta(days=200))  # fmt: skip
    lagos, berlin = ZoneInfo("Africa/Lagos"), ZoneInfo("Europe/Berlin")
    assert same_clock(lagos, berlin, winter, winter + timedelta(days=30))
    spring = datetime(2026, 3, 20, tzinfo=UTC)  # Berlin moves on the 29th, Lagos never
    assert not same_clock(lagos, berlin, spring, spring + timedelta(days=10))


@pytest.mark.slow
def test_gates_reporting_in_two_names_of_one_clock_are_one_district_day(
    gates, pg_dsn, monkeypatch, capsys
):
    """A gate set up with Asia/Chongqing beside gates on Asia/Shanghai (one clock, two names):
    ``kiosk fleet report --day D`` refused, "the gates report their days in several time zones",
    and with ``--tz Asia/Shanghai`` that gate's ledger figures were "missing"."""
    shanghai = gates("gate-s")
    chongqing = gates("gate-c", zone="Asia/Chongqing")
    for core in (shanghai, chongqing):
        _out(core, "3-201", 2)
    _to_the_office(pg_dsn, shanghai, chongqing)
    monkeypatch.setenv("KIOSK_FLEET_DSN", pg_dsn)
    for tz in ([], ["--tz", "Asia/Shanghai"], ["--tz", "Asia/Chongqing"]):
        assert main(["fleet", "report", "--day", DAY.isoformat(), *tz]) == 0, tz
        printed = json.loads(capsys.readouterr().out)
        assert printed["ledgers"]["missing"] == [], tz
        assert [g["kiosk_id"] for g in printed["ledgers"]["gates"]] == ["gate-c", "gate-s"]
        assert printed["events"] == 2


@pytest.mark.slow
def test_the_collector_asks_for_households_when_told_so_the_office_counts_the_quota(
    tmp_path, pg_dsn, monkeypatch
):
    """fleet.md: "a ``logs:personal`` token gives the collector clear ... households". The
    collector never asked for them (``?fields=``), so with such a token every household still
    came masked and the district's over-quota households were unknown (null) for good.
    ``personal_fields`` asks for the ones named; with a ``logs:read`` token the gate refuses."""
    cores = [
        kiosk_api(tmp_path / f"{n}.db", n, FakeClock(start=START),
                  scopes=("logs:read", "logs:personal"),
                  config={"policy": {"quota": {"enabled": True}}, "compound": {"peers": [
                      {"kiosk_id": p, "url": f"https://{p}", "token_env": "PEER_TOKEN"}]}})
        for n, p in (("gate-north", "gate-south"), ("gate-south", "gate-north"))
    ]  # fmt: skip
    north, south = cores
    try:
        _out(north, "3-201", 0)
        _out(south, "3-201", 6)
        _, statuses = _collect_once(cores, pg_dsn, monkeypatch, personal_fields=["household"])
        assert [(s.state, s.report_error) for s in statuses] == [("ok", None)] * 2
        report = district_report(pg_dsn, DAY, "Asia/Shanghai")
        assert report["household_rows"] == 2
        assert report["exits_per_household"]["over_quota_households"] == 1
    finally:
        for core in cores:
            core.store.close()


def test_personal_fields_are_checked_when_the_config_loads():
    with pytest.raises(ValueError, match="unknown field 'phone'"):
        CollectorConfig.model_validate(
            {"personal_fields": ["phone"], "kiosks": [{"url": "http://g", "token_env": "T"}]}
        )


def test_kiosk_pull_fields_copies_the_named_fields_unmasked(tmp_path, monkeypatch, capsys):
    gate = kiosk_api(tmp_path / "g.db", "gate-1", FakeClock(start=START),
                     scopes=("logs:read", "logs:personal"))  # fmt: skip
    try:
        _out(gate, "3-201", 0)
        real_client, transport = httpx.Client, httpx.MockTransport(Network(gate))
        monkeypatch.setattr(httpx, "Client", lambda **kw: real_client(transport=transport))
        into = tmp_path / "copy.db"
        args = ["pull", "http://gate-1", "--token", gate.token, "--into", str(into)]
        assert main([*args, "--fields", "phone"]) == 2
        assert "unknown field 'phone'" in capsys.readouterr().err
        assert main([*args, "--fields", "household"]) == 0
        with sqlite3.connect(into) as conn:
            assert conn.execute("SELECT household, holder FROM pulled_events").fetchall() == [
                ("3-201", "L.")  # the holder still masked
            ]
    finally:
        gate.store.close()


def test_a_gate_that_does_not_list_its_compounds_other_gate_is_named(gates, pg_dsn):
    """North lists south as its peer, south lists nobody: south counts the quota without
    north's outings and let 3-201 out again. The office counted them as one compound, as it
    should, but said nothing of the gates' lists that differ (the reason south let it out)."""
    north = gates("gate-north", peers=["gate-south"])
    south = gates("gate-south")
    east = gates("gate-east")  # a compound of its own: nothing to list
    _out(north, "3-201", 0)
    _out(south, "3-201", 6)
    _out(east, "1-101", 6)
    _to_the_office(pg_dsn, north, south, east)
    exits = district_report(pg_dsn, DAY, "Asia/Shanghai")["exits_per_household"]
    by_gates = {tuple(c["gates"]): c for c in exits["compounds"]}
    compound = by_gates[("gate-north", "gate-south")]
    assert compound["over_quota_households"] == 1
    assert compound["peers_unlisted"] == [{"kiosk_id": "gate-south", "missing": ["gate-north"]}]
    assert by_gates[("gate-east",)]["peers_unlisted"] == []


def test_a_day_before_the_gates_reports_keeps_each_compound_whole(gates, pg_dsn):
    """The collector keeps the gates' reports of the last 7 days; for a day older than the
    first one kept, every gate was a compound of its own, and a household out at the north and
    the south gate counted as two households. The compound is the one the gates' nearest
    report names; the rule of that day stays unknown (not taken from another day)."""
    north = gates("gate-north", peers=["gate-south"])
    south = gates("gate-south", peers=["gate-north"])
    _out(north, "3-201", 0)
    _out(south, "3-201", 6)
    for core in (north, south):
        core.clock.set_wall(START + timedelta(days=20))  # reports of day 14 to 20 only
    _to_the_office(pg_dsn, north, south)
    exits = district_report(pg_dsn, DAY, "Asia/Shanghai")["exits_per_household"]
    (compound,) = exits["compounds"]
    assert compound["gates"] == ["gate-north", "gate-south"]
    assert compound["unknown"] == ["gate-north", "gate-south"] and compound["quota"] is None
    assert exits["households"] == 1 and exits["histogram"] == {"2": 1}
    assert exits["over_quota_households"] is None  # no rule held for that day


@pytest.mark.slow
def test_an_outing_the_office_holds_masked_within_the_period_makes_the_count_unknown(
    tmp_path, pg_dsn
):
    """The office turned ``personal_fields = ["household"]`` on this morning: yesterday's
    outings were pulled masked. 3-201 went out yesterday and again today, and the district
    said 0 households over "one outing every 2 days": the masked outing is no one's, so the
    count is unknown (null), not 0; the next period is counted again."""
    north = kiosk_api(tmp_path / "n.db", "gate-north", FakeClock(start=START),
                      scopes=("logs:read", "logs:personal"),
                      config={"policy": {"quota": {"enabled": True}}})  # fmt: skip
    try:
        net = Network(north)
        _out(north, "3-201", -20)  # yesterday, 13:00
        with PgTarget(pg_dsn) as target:
            pull("http://gate-north", north.token, target, client=net.client())
        _out(north, "3-201", 2)
        _out(north, "5-101", 3)
        with PgTarget(pg_dsn) as target, net.client() as client:
            pull("http://gate-north", north.token, target, client=client, fields=["household"])
            collect_reports(client, target, "http://gate-north", "gate-north", north.token)
        exits = district_report(pg_dsn, DAY, "Asia/Shanghai")["exits_per_household"]
        assert exits["households"] == 2  # today's outings are all clear
        assert exits["over_quota_households"] is None
        later = district_report(pg_dsn, DAY + timedelta(days=3), "Asia/Shanghai")
        assert later["exits_per_household"]["over_quota_households"] == 0
    finally:
        north.store.close()


def test_a_compound_gate_the_office_does_not_pull_is_named(gates, pg_dsn):
    """North names south as its peer, but the office's collector has no [[kiosks]] entry for
    south: south's outings were silently left out of the compound's count. The compound names
    the peers its gates list that the report holds nothing of (``peers_outside``)."""
    north = gates("gate-north", peers=["gate-south", "gate-west"])
    south = gates("gate-south", peers=["gate-north"])
    _out(north, "3-201", 0)
    _out(south, "3-201", 6)
    _to_the_office(pg_dsn, north)  # south never pulled
    exits = district_report(pg_dsn, DAY, "Asia/Shanghai")["exits_per_household"]
    (compound,) = exits["compounds"]
    assert compound["gates"] == ["gate-north"]
    assert compound["peers_outside"] == ["gate-south", "gate-west"]
    _to_the_office(pg_dsn, south)
    only = district_report(pg_dsn, DAY, "Asia/Shanghai", kiosks=["gate-north"])
    assert only["exits_per_household"]["compounds"][0]["peers_outside"] == [
        "gate-south", "gate-west",
    ]  # fmt: skip
    both = district_report(pg_dsn, DAY, "Asia/Shanghai")["exits_per_household"]
    assert both["compounds"][0]["peers_outside"] == ["gate-west"]


def test_gates_that_count_different_roles_against_the_quota_disagree(gates, pg_dsn):
    """North counts staff against the quota, south does not: a staff member out at south is
    free there and counted at north. The gates did not report whom their quota counts, so the
    district took them for one rule."""
    north = gates("gate-north", peers=["gate-south"], roles=["resident", "staff"])
    south = gates("gate-south", peers=["gate-north"])
    _out(north, "3-201", 0)
    _out(south, "3-201", 6)
    _to_the_office(pg_dsn, north, south)
    exits = district_report(pg_dsn, DAY, "Asia/Shanghai")["exits_per_household"]
    (compound,) = exits["compounds"]
    assert [(d["kiosk_id"], d["quota"]["roles"]) for d in compound["disagree"]] == [
        ("gate-north", ["resident", "staff"]), ("gate-south", ["resident"]),
    ]  # fmt: skip
    assert compound["over_quota_households"] is None


def test_peered_gates_of_two_compounds_by_their_id_are_two_compounds_and_named(gates, pg_dsn):
    """East's gate lists west's as its peer (a config copied from west's), and each gate's
    ``[compound] id`` names its own compound, as the office's lists do. The district report
    counted the two gates as one compound by their peers, without a word: east's 3-201 and
    west's 3-201 were one household, out twice and over the quota. The id is the compound;
    the peers across two compounds are named (``peers_elsewhere``)."""
    east = gates("gate-east", peers=["gate-west"], compound="east")
    west = gates("gate-west", peers=["gate-east"], compound="West")  # case ignored
    _out(east, "3-201", 0)
    _out(west, "3-201", 6)
    _to_the_office(pg_dsn, east, west)
    exits = district_report(pg_dsn, DAY, "Asia/Shanghai")["exits_per_household"]
    by_gates = {tuple(c["gates"]): c for c in exits["compounds"]}
    assert sorted(by_gates) == [("gate-east",), ("gate-west",)]
    assert exits["households"] == 2 and exits["over_quota_households"] == 0
    assert by_gates[("gate-east",)]["id"] == "east" and by_gates[("gate-west",)]["id"] == "west"
    assert by_gates[("gate-east",)]["peers_elsewhere"] == [
        {"kiosk_id": "gate-east", "peer": "gate-west", "compound": "west"}
    ]
    assert by_gates[("gate-west",)]["peers_elsewhere"] == [
        {"kiosk_id": "gate-west", "peer": "gate-east", "compound": "east"}
    ]


def test_gates_of_one_compound_by_their_id_that_list_no_peers_count_together(gates, pg_dsn):
    """Two gates with ``[compound] id = "east"``, no ``[[compound.peers]]``: the office's lists
    treat them as one compound, the district report counted each gate as a compound of its
    own, and 3-201 out at both was two households within the quota. One compound by its id;
    each gate's peers that leave out the other are named, also for a day before the reports
    the office keeps (the id of each gate's nearest report)."""
    north = gates("gate-north", compound="east")
    south = gates("gate-south", compound="east")
    _out(north, "3-201", 0)
    _out(south, "3-201", 6)
    _to_the_office(pg_dsn, north, south)
    exits = district_report(pg_dsn, DAY, "Asia/Shanghai")["exits_per_household"]
    (compound,) = exits["compounds"]
    assert compound["gates"] == ["gate-north", "gate-south"] and compound["id"] == "east"
    assert compound["over_quota_households"] == 1
    assert compound["peers_unlisted"] == [
        {"kiosk_id": "gate-north", "missing": ["gate-south"]},
        {"kiosk_id": "gate-south", "missing": ["gate-north"]},
    ]
    assert compound["id_missing"] == [] and compound["peers_elsewhere"] == []
    earlier = district_report(pg_dsn, DAY - timedelta(days=5), "Asia/Shanghai")
    (compound,) = earlier["exits_per_household"]["compounds"]
    assert compound["gates"] == ["gate-north", "gate-south"] and compound["id"] == "east"


def test_a_peer_without_a_compound_id_joins_its_peers_compound_and_is_named(gates, pg_dsn):
    """North says ``[compound] id = "east"``, south (its peer) says none: south applies every
    compound's entries of the office's lists while the office counts it with east. It is
    counted with east by its peers, and named (``id_missing``)."""
    north = gates("gate-north", peers=["gate-south"], compound="east")
    south = gates("gate-south", peers=["gate-north"])
    _out(north, "3-201", 0)
    _out(south, "3-201", 6)
    _to_the_office(pg_dsn, north, south)
    exits = district_report(pg_dsn, DAY, "Asia/Shanghai")["exits_per_household"]
    (compound,) = exits["compounds"]
    assert compound["gates"] == ["gate-north", "gate-south"] and compound["id"] == "east"
    assert compound["id_missing"] == ["gate-south"] and compound["over_quota_households"] == 1


def test_a_gate_without_an_id_peered_into_two_compounds_is_joined_to_neither():
    """A gate of no id listing a gate of east and one of west: which compound it is the
    office cannot tell, and does not guess; it stays a compound of its own, its peers named."""
    held = {
        "gate-mid": GatePolicy("Asia/Shanghai", None, ("gate-east", "gate-west")),
        "gate-east": GatePolicy("Asia/Shanghai", None, (), "east"),
        "gate-west": GatePolicy("Asia/Shanghai", None, ("gate-mid",), "west"),
        "gate-old": GatePolicy("Asia/Shanghai", None, None),  # a release before the peers
        "gate-new": GatePolicy("Asia/Shanghai", None, ("gate-old",)),
    }
    groups = compounds(held, held)
    assert groups == [["gate-east"], ["gate-mid"], ["gate-new", "gate-old"], ["gate-west"]]
    assert identity(["gate-mid"], held, groups) == {
        "id": None,
        "id_missing": [],
        "peers_elsewhere": [
            {"kiosk_id": "gate-mid", "peer": "gate-east", "compound": "east"},
            {"kiosk_id": "gate-mid", "peer": "gate-west", "compound": "west"},
        ],
    }
    assert identity(["gate-west"], held, groups)["peers_elsewhere"] == [
        {"kiosk_id": "gate-west", "peer": "gate-mid", "compound": None}
    ]
    assert identity(["gate-new", "gate-old"], held, groups)["id"] is None


def _exports(tmp_path, dsn, monkeypatch):
    """``kiosk fleet report --xlsx --csv``: the workbook's ``compounds`` sheet as header →
    values per row, and the CSV's rows."""
    import csv
    import io

    import openpyxl

    xlsx, sheet_csv = tmp_path / "district.xlsx", tmp_path / "district.csv"
    monkeypatch.setenv("KIOSK_FLEET_DSN", dsn)
    argv = [
        "fleet",
        "report",
        "--day",
        DAY.isoformat(),
        "--xlsx",
        str(xlsx),
        "--csv",
        str(sheet_csv),
    ]
    assert main(argv) == 0
    book = openpyxl.load_workbook(xlsx)
    assert "daily report" in book.sheetnames  # the categories sheet is still the first
    header, *rows = book["compounds"].iter_rows(values_only=True)
    sheet = [dict(zip(header, row, strict=True)) for row in rows]
    lines = list(csv.reader(io.StringIO(sheet_csv.read_text(encoding="utf-8"), newline="")))
    return sheet, lines


@pytest.mark.slow
def test_the_district_sheet_and_csv_carry_each_compounds_households_over_the_quota(
    gates, pg_dsn, tmp_path, monkeypatch
):
    """The office clerk's daily file (``--xlsx``/``--csv``) had the categories only: a
    household out twice in a compound's "one outing every 2 days" was in the JSON's
    ``exits_per_household.compounds`` and nowhere in the file the clerk reads."""
    north = gates("gate-north", peers=["gate-south"])
    south = gates("gate-south", peers=["gate-north"])
    _out(north, "3-201", 0)
    _out(south, "3-201", 6)
    _out(south, "5-101", 7)
    _to_the_office(pg_dsn, north, south)
    sheet, lines = _exports(tmp_path, pg_dsn, monkeypatch)
    district, compound = sheet
    assert compound["gates"] == "gate-north, gate-south"
    assert compound["over_quota_households"] == 1 and district["over_quota_households"] == 1
    assert (compound["quota_enabled"], compound["quota_exits"], compound["period_days"]) == (
        True, 1, 2,
    )  # fmt: skip
    assert (compound["households"], compound["exits"], compound["max"]) == (2, 3, 2)
    assert lines[0] == ["category", "item", "value"]  # the categories' rows, then these
    assert ["exits_per_household", "over_quota_households", "1"] in lines
    label = "compound gate-north, gate-south"
    assert [label, "over_quota_households", "1"] in lines
    assert [label, "quota_exits", "1"] in lines and [label, "period_days", "2"] in lines


@pytest.mark.slow
def test_a_compound_counted_by_neither_rule_reads_unknown_in_the_sheet_and_csv_not_0(
    gates, pg_dsn, tmp_path, monkeypatch
):
    """Gates of one compound that disagree on the quota: the JSON's ``null`` must not turn
    into a blank a spreadsheet sums as 0; the disagreement is named in the file too."""
    north = gates("gate-north", peers=["gate-south"], exits=1, period_days=2)
    south = gates("gate-south", peers=["gate-north"], exits=2, period_days=2)
    _out(north, "3-201", 0)
    _out(south, "3-201", 6)
    _to_the_office(pg_dsn, north, south)
    sheet, lines = _exports(tmp_path, pg_dsn, monkeypatch)
    district, compound = sheet
    assert compound["over_quota_households"] == "unknown"
    assert district["over_quota_households"] == "unknown"
    assert compound["quota_enabled"] == "unknown"
    assert compound["disagree"] == (
        "gate-north: 1 every 2 days (resident, Asia/Shanghai);"
        " gate-south: 2 every 2 days (resident, Asia/Shanghai)"
    )
    label = "compound gate-north, gate-south"
    assert [label, "over_quota_households", "unknown"] in lines
    assert ["exits_per_household", "over_quota_households", "unknown"] in lines


@pytest.mark.slow
def test_a_gate_with_a_mistyped_compound_id_makes_no_compound_and_is_named(
    tmp_path, pg_dsn, monkeypatch
):
    """The office declares east and west; south's ``[compound] id`` reads "eats" (a typo at
    the gate). The district report made "eats" a compound of its own and counted east without
    south's outings: 3-201 out at north and at south was within the quota. An id the office
    has not declared is no compound: the gate is grouped as one reporting none (by its peers,
    here into east) and named, ``undeclared compound eats from gate gate-south``."""
    key_path, _pub = new_key_pair(tmp_path / "office", "office")
    bundle = tmp_path / "www" / "bundle.json"
    lists = {"compounds": ["east", "west"]}
    publish_bundle(load_private_key(key_path), lists, bundle, now=START)
    cores = [
        _gate(tmp_path, "gate-north", peers=["gate-south"], compound="east"),
        _gate(tmp_path, "gate-south", peers=["gate-north"], compound="eats"),
    ]
    try:
        _out(cores[0], "3-201", 0)
        _out(cores[1], "3-201", 6)
        collector, statuses = _collect_once(
            cores, pg_dsn, monkeypatch, lists_bundle_file=str(bundle)
        )
        assert [s.state for s in statuses] == ["ok", "ok"]
        assert statuses[1].compound_error == "undeclared compound eats from gate gate-south"
        assert "undeclared compound eats from gate gate-south" in collector.status_html()
        report = district_report(pg_dsn, DAY, "Asia/Shanghai")
    finally:
        for core in cores:
            core.store.close()
    exits = report["exits_per_household"]
    (compound,) = exits["compounds"]
    assert compound["gates"] == ["gate-north", "gate-south"] and compound["id"] == "east"
    assert compound["undeclared"] == [{"kiosk_id": "gate-south", "compound": "eats"}]
    assert compound["id_missing"] == ["gate-south"]
    assert report["undeclared_compounds"] == [
        {"kiosk_id": "gate-south", "compound": "eats",
         "detail": "undeclared compound eats from gate gate-south"}
    ]  # fmt: skip
    assert "eats" in district_csv(report)


@pytest.mark.slow
def test_a_gate_offline_since_the_morning_is_named_not_counted_as_a_quiet_day(
    gates, pg_dsn, tmp_path
):
    """South was pulled last at 10:00 and then went off the network; its afternoon's
    passages were never pulled. The district report showed its day as 1 passage, the
    district's total as fact, without a word: the clerk cannot tell a quiet gate from one not
    heard from. A gate not heard from since before the day ended is named
    (``events_missing``, ``by_gate[].events_complete`` false), in the sheet and CSV too."""
    north = gates("gate-north")
    south = gates("gate-south")
    _out(north, "3-201", 0)
    _out(south, "4-101", 0)
    _out(south, "4-102", 6)  # after its last pull: still on the gate
    net = Network(north, south)
    with PgTarget(pg_dsn) as target, httpx.Client(transport=httpx.MockTransport(net)) as client:
        target.write_page("http://gate-north", "gate-north", north.store.events(limit=1000))
        collect_reports(client, target, "http://gate-north", "gate-north", north.token, days=2)
        target.write_page("http://gate-south", "gate-south", south.store.events(limit=1))
    with psycopg.connect(pg_dsn, autocommit=True) as conn:
        conn.execute(
            "UPDATE fleet_sources SET updated_at = %s WHERE kiosk_id = 'gate-south'",
            [START + timedelta(hours=1)],
        )
    report = district_report(pg_dsn, DAY, "Asia/Shanghai")
    by_gate = {g["kiosk_id"]: g for g in report["by_gate"]}
    assert by_gate["gate-north"]["events_complete"] is True
    assert by_gate["gate-south"]["events_complete"] is False
    assert by_gate["gate-south"]["last_contact_at"] == (START + timedelta(hours=1)).isoformat()
    (missing,) = report["events_missing"]
    assert missing["kiosk_id"] == "gate-south"
    assert "not heard from since 2026-03-02 10:00 (Asia/Shanghai)" in missing["detail"]
    assert "gate-south" in district_csv(report).split("events_missing")[1]


@pytest.mark.slow
def test_an_unreadable_bundle_file_does_not_keep_the_gates_reports_from_the_office(
    tmp_path, pg_dsn, monkeypatch
):
    """``lists_bundle_file`` names a folder (a path typed one level short): reading the lists'
    compounds after each pull raised, and the gate's ledger report was never fetched, its
    day missing from the district report while the pull said ok."""
    core = _gate(tmp_path, "gate-north")
    try:
        _out(core, "3-201", 0)
        _, (status,) = _collect_once([core], pg_dsn, monkeypatch, lists_bundle_file=str(tmp_path))
    finally:
        core.store.close()
    assert (status.state, status.report_error, status.report_day) == ("ok", None, "2026-03-02")


def test_the_quotas_look_back_is_read_once_and_lean_not_into_each_gates_report(
    gates, pg_dsn, monkeypatch
):
    """Before: every row of the quota's look-back (a month of the district's, with
    ``period_days = 30``) was read whole (names, reasons: the JSON decoded and encoded again)
    and copied into the district's table, again into each gate's report, which counts only
    its day, and again for each compound: 20 gates of 3,000 events a day took 12 s and 68 MB
    more for each day looked back. Now each gate's report gets the day's rows only, the
    look-back is read once with the columns the quota reads, streamed into the district's
    table (never held as rows), and the counts are unchanged."""
    import office.district as district

    north = gates("gate-north", peers=["gate-south"])
    south = gates("gate-south", peers=["gate-north"])
    _out(north, "3-201", -20)  # yesterday, 13:00: within the period of 2 days
    _out(south, "3-201", 2)
    _out(north, "5-101", 3)
    for core in (north, south):
        core.clock.set_wall(START + timedelta(days=1))
    _to_the_office(pg_dsn, north, south)
    copied: list[list[tuple]] = []
    memory = district._memory_events
    monkeypatch.setattr(
        district,
        "_memory_events",
        lambda *parts: memory(copied.append([r for p in parts for r in p]) or copied[-1]),
    )
    exits = district_report(pg_dsn, DAY, "Asia/Shanghai")["exits_per_household"]
    assert (exits["households"], exits["exits"], exits["over_quota_households"]) == (2, 2, 1)
    start, end = "2026-03-01T16:00:00", "2026-03-02T16:00:00"  # DAY in Shanghai, UTC
    whole, *each = copied  # the district's, then each gate's (and a quiet gate's: none)
    assert sorted(r[2] < start for r in whole) == [False, False, True]
    assert all(start <= r[2] < end for rows in each for r in rows)
    assert len(each) <= 3 and sum(len(rows) for rows in each) == 2
    (lookback,) = [r for r in whole if r[2] < start]
    assert (lookback[5], lookback[9]) == (None, None)  # its reasons and person are not read
