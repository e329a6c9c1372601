"""The office's lists across several compounds: a household code ("3-201") is its compound's
own, so what the office lists for one compound's household must not touch another's."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from types import SimpleNamespace

import httpx
import pytest

from kiosk import lists as lists_mod
from kiosk.lists import ListStore
from kiosk.passes import TrustList, load_private_key, new_key_pair
from kiosk.store import EventLog
from office.listsync import BundleFile, ListSync, compounds_path, publish_bundle

pytest_plugins = ("pgfixture",)  # pg_cluster, pg_dsn: a real PostgreSQL (the district test)

URL = "http://office/lists/bundle"
DAY = date(2026, 3, 5)


@pytest.fixture
def office(tmp_path):
    key_path, _pub = new_key_pair(tmp_path / "office", "office")
    return SimpleNamespace(
        key=load_private_key(key_path),
        trust=TrustList.from_dir(tmp_path / "office"),
        bundle=tmp_path / "www" / "bundle.json",
    )


@pytest.fixture
def gates(tmp_path, clock):
    made = []

    def make(name: str) -> SimpleNamespace:
        store = EventLog(tmp_path / f"{name}.db", name, clock, "NORMAL", [lists_mod.MIGRATIONS])
        store.open()
        made.append(store)
        lists = ListStore(store, clock)
        lists.load()
        return SimpleNamespace(store=store, lists=lists)

    yield make
    for store in made:
        store.close()


class Collector:
    """``/lists/bundle`` as the collector serves it: the form with compounds to a gate that
    names its compound (``?compound=``), the plain one to any other."""

    def __init__(self, bundle):
        self.plain = BundleFile(bundle)
        self.tagged = BundleFile(compounds_path(bundle))
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        asks = "compound" in request.url.params
        got = (self.tagged if asks else self.plain).get()
        body, etag, _ = got
        if request.headers.get("if-none-match") == etag:
            return httpx.Response(304, headers={"ETag": etag})
        return httpx.Response(200, content=body, headers={"ETag": etag})


def _sync(gate, office, server, clock, compound=None):
    client = httpx.Client(transport=httpx.MockTransport(server))
    return ListSync(gate.lists, office.trust, URL, clock, client=client, compound=compound)


def _quarantine(household: str, compound: str | None = None) -> dict:
    entry = {"household": household, "from": "2026-03-01", "until": "2026-03-14"}
    return entry | ({"compound": compound} if compound else {})


def test_the_office_quarantining_one_compounds_3_201_leaves_anothers_3_201_alone(
    office, gates, clock
):
    """A district office serves the gates of two compounds, east and west; each has its own
    household 3-201. The office quarantined east's 3-201, and west's gates denied west's
    3-201 as well: the bundle's entries named no compound. An entry names its compound now,
    and a gate that knows its own (``[compound] id``) applies only its compound's entries."""
    lists = {
        "compounds": ["east", "west"],
        "revocations": [{"pass_id": "0123456789ab", "reason": "lost"}],
        "quarantine": [_quarantine("3-201", "east"), _quarantine("9-909")],
        "households": [
            {"household": "3-201", "compound": "east", "observation_until": "2026-03-10"},
            {"household": "3-201", "compound": "west", "residents": 4},
        ],
    }
    publish_bundle(office.key, lists, office.bundle, now=clock.now())
    server = Collector(office.bundle)
    east, west = gates("gate-east"), gates("gate-west")
    assert _sync(east, office, server, clock, "east").check().outcome == "applied"
    assert _sync(west, office, server, clock, "west").check().outcome == "applied"
    assert east.lists.current.quarantine_for("3-201", None, DAY) is not None
    assert west.lists.current.quarantine_for("3-201", None, DAY) is None
    assert east.lists.current.under_observation("3-201", DAY)
    assert not west.lists.current.under_observation("3-201", DAY)
    assert west.lists.current.households["3-201"].residents == 4
    for gate in (east, west):  # no compound: every gate's; a pass id is the district's
        assert gate.lists.current.quarantine_for("9-909", None, DAY) is not None
        assert gate.lists.current.is_revoked("0123456789ab")
    assert dict(server.requests[0].url.params) == {"compound": "east"}


def _payload(path) -> dict:
    return json.loads(json.loads(path.read_text())["payload"])


def test_an_older_gate_and_a_single_compound_office_get_the_bundle_they_always_got(
    office, gates, clock
):
    """The plain bundle (the one at ``--out``, ``/lists/bundle`` without ``compound=``) has
    no key a gate of an older release does not know, and every entry, as before."""
    lists = {
        "compounds": ["east", "west"],
        "quarantine": [_quarantine("3-201", "east"), _quarantine("9-909")],
    }
    published = publish_bundle(office.key, lists, office.bundle, now=clock.now())
    assert published.compounds == ["east"]
    plain = _payload(office.bundle)
    assert plain["format"] == "kiosk-lists/1"
    assert all("compound" not in row for row in plain["quarantine"])
    assert _payload(compounds_path(office.bundle))["quarantine"][0]["compound"] == "east"
    unknown = gates("gate-unknown")  # no [compound] id: asks the plain question
    server = Collector(office.bundle)
    assert _sync(unknown, office, server, clock).check().outcome == "applied"
    assert dict(server.requests[0].url.params) == {}
    assert len(unknown.lists.current.quarantine) == 2
    single = {"quarantine": [_quarantine("3-201")]}
    publish_bundle(office.key, single, office.bundle, now=clock.now())
    assert _payload(office.bundle)["quarantine"] == [
        {"household": "3-201", "holder": None, "from": "2026-03-01", "until": "2026-03-14",
         "note": ""}
    ]  # fmt: skip


def test_a_gate_whose_compound_changes_applies_the_same_version_for_its_new_compound(
    office, gates, clock
):
    """Version 1 applied as east's (or from the plain bundle, before the gate knew its
    compound): set to west, the same version was "already applied" and east's quarantine
    stayed until the office published again."""
    lists = {"compounds": ["east", "west"], "quarantine": [_quarantine("3-201", "east")]}
    publish_bundle(office.key, lists, office.bundle, now=clock.now())
    server = Collector(office.bundle)
    gate = gates("gate-1")
    assert _sync(gate, office, server, clock).check().outcome == "applied"  # plain: all
    assert gate.lists.current.quarantine_for("3-201", None, DAY) is not None
    assert _sync(gate, office, server, clock, "west").check().outcome == "applied"
    assert gate.lists.current.quarantine_for("3-201", None, DAY) is None
    assert _sync(gate, office, server, clock, "west").check().outcome == "current"
    assert _sync(gate, office, server, clock, "East").check().outcome == "applied"
    assert gate.lists.current.quarantine_for("3-201", None, DAY) is not None


def test_a_plain_bundle_naming_a_compound_is_refused_whole(office, gates, clock, tmp_path):
    """Entries name a compound only in the form that says they may: a first-format bundle
    naming one is malformed, and nothing of it applies."""
    from kiosk.lists import BundleError, sign_bundle

    gate = gates("gate-1")
    payload = {
        "format": "kiosk-lists/1",
        "version": 1,
        "issued_at": clock.now().isoformat(),
        "revocations": [{"pass_id": "0123456789ab"}],
        "quarantine": [_quarantine("3-201", "east")],
    }
    with pytest.raises(BundleError, match=r"quarantine\[0\]\.compound"):
        gate.lists.import_bundle(sign_bundle(office.key, payload), office.trust, "fleet", "west")
    assert not gate.lists.current.revoked and gate.lists.current.freshness.bundle_version == 0
    for bad in ("", "a b", "x" * 65):
        lists = {"households": [{"household": "3-201", "compound": bad}]}
        with pytest.raises(BundleError, match="compound"):
            publish_bundle(office.key, lists, tmp_path / "b.json", now=clock.now())
    assert not (tmp_path / "b.json").exists()


def test_a_gates_own_csv_names_no_compound(gates):
    """The ``compound`` of an entry is the office's; a gate's own rows are its own."""
    from kiosk.lists import ListError

    gate = gates("gate-1")
    text = "household,from,until,compound\n3-201,2026-03-01,2026-03-14,east\n"
    with pytest.raises(ListError, match="unknown columns: compound"):
        gate.lists.import_csv("quarantine", text, "guard")


def test_the_gate_config_names_its_compound_to_the_sync(gates, office, clock):
    from kiosk.config import ConfigError, parse_config

    config = parse_config({"fleet": {"lists_url": URL}, "compound": {"id": "east"}})
    gate = gates("gate-1")
    core = SimpleNamespace(config=config, lists=gate.lists, trust=office.trust, clock=clock)
    sync = ListSync.from_config(core)
    assert sync.compound == "east"
    assert str(sync._asked()) == URL + "?compound=east"
    sync.stop()
    with pytest.raises(ConfigError, match=r"compound\.id"):
        parse_config({"compound": {"id": "east wing"}})


def test_publish_never_replaces_another_file_where_the_compounds_bundle_goes(
    office, tmp_path, capsys
):
    from checkpoint.cli import main

    key_path = tmp_path / "office" / "office.key"
    lists = tmp_path / "bundle.compounds.json"  # the office's lists, named unluckily
    lists.write_text(json.dumps({"quarantine": [_quarantine("3-201", "east")]}))
    argv = ["fleet", "publish", "--key", str(key_path), "--lists", str(lists)]
    assert main([*argv, "--out", str(tmp_path / "bundle.json")]) == 2
    assert "beside --out" in capsys.readouterr().err
    assert json.loads(lists.read_text())["quarantine"][0]["compound"] == "east"
    assert not (tmp_path / "bundle.json").exists()


def test_two_publishes_at_once_never_sign_two_bundles_of_one_version(office, clock, monkeypatch):
    """The office's nightly publish and a clerk's ran at once: both read version 1 as the
    published one, both signed a version 2 of their own lists, and the one written last
    replaced the other's. A gate that had fetched the first took the second for "already
    applied" and kept the first's lists until the next publish, and with the two forms
    beside each other one gate could hold one's and another the other's. A publish holds
    the bundle's folder while it reads the version and writes: the other is refused."""
    from kiosk.lists import BundleError
    from office import listsync

    publish_bundle(office.key, {}, office.bundle, now=clock.now())
    real = listsync.write_atomic
    raced: list[object] = []

    def racing(path, body, *args, **kwargs):
        if not raced:
            raced.append(None)
            clerk = {"quarantine": [_quarantine("9-909")]}
            try:
                raced[0] = publish_bundle(office.key, clerk, office.bundle, now=clock.now())
            except BundleError as exc:
                raced[0] = exc
        real(path, body, *args, **kwargs)

    monkeypatch.setattr(listsync, "write_atomic", racing)
    nightly = publish_bundle(
        office.key, {"quarantine": [_quarantine("3-201")]}, office.bundle, now=clock.now()
    )
    assert isinstance(raced[0], BundleError) and "another publish" in str(raced[0])
    for path in (office.bundle, compounds_path(office.bundle)):
        payload = _payload(path)
        assert payload["version"] == nightly.version == 2
        assert [q["household"] for q in payload["quarantine"]] == ["3-201"]
    monkeypatch.setattr(listsync, "write_atomic", real)
    assert publish_bundle(office.key, {}, office.bundle, now=clock.now()).version == 3


def test_a_publish_while_another_holds_the_folder_is_a_run_time_failure(
    office, clock, tmp_path, capsys
):
    from checkpoint.cli import main
    from office import listsync

    lists = tmp_path / "lists.json"
    lists.write_text(json.dumps({"quarantine": [_quarantine("3-201")]}))
    argv = ["fleet", "publish", "--key", str(tmp_path / "office" / "office.key")]
    argv += ["--lists", str(lists), "--out", str(office.bundle)]
    office.bundle.parent.mkdir()
    with listsync._publishing(office.bundle.parent):
        assert main(argv) == 1
    assert "another publish is writing" in capsys.readouterr().err
    assert not office.bundle.exists()
    assert main(argv) == 0


def _office_lists(n: int) -> dict:
    return {
        "compounds": ["east"],
        "revocations": [{"pass_id": f"{i:012x}", "reason": "lost"} for i in range(n)],
        "quarantine": [_quarantine(f"3-{i:03d}", "east") for i in range(n)],
        "households": [{"household": f"3-{i:03d}", "residents": 2} for i in range(n)],
    }


def test_a_list_cleared_by_mistake_is_not_published_without_a_confirmation(
    office, gates, clock, tmp_path, capsys
):
    """A clerk saved the office's lists with the quarantine emptied (a spreadsheet filter
    left on) and published: every gate dropped all 12 quarantines at once and let the
    households out. A publish that drops most of the entries in force of a list (at least 3,
    and more than half) is refused, saying so; ``--confirm-drop`` publishes it."""
    from kiosk.lists import BundleError

    publish_bundle(office.key, _office_lists(12), office.bundle, now=clock.now())
    cleared = _office_lists(12) | {"quarantine": []}
    with pytest.raises(BundleError, match="drops 12 of the 12 quarantine entries in force"):
        publish_bundle(office.key, cleared, office.bundle, now=clock.now())
    assert _payload(office.bundle)["version"] == 1
    for kind in ("revocations", "households"):
        with pytest.raises(BundleError, match=f"drops 7 of the 12 {kind}"):
            publish_bundle(
                office.key, _office_lists(12) | {kind: _office_lists(5)[kind]}, office.bundle,
                now=clock.now(),
            )  # fmt: skip
    # Lifting a few, or quarantines past their dates, is the office's daily work.
    fewer = _office_lists(12) | {"quarantine": _office_lists(10)["quarantine"]}
    assert publish_bundle(office.key, fewer, office.bundle, now=clock.now()).version == 2
    clock.advance(30 * 86400)  # every quarantine over
    assert publish_bundle(office.key, cleared, office.bundle, now=clock.now()).version == 3
    publish_bundle(office.key, _office_lists(12), office.bundle, now=clock.now(), confirm_drop=True)
    lists = tmp_path / "lists.json"
    lists.write_text(json.dumps(_office_lists(12) | {"revocations": []}))
    from checkpoint.cli import main

    argv = ["fleet", "publish", "--key", str(tmp_path / "office" / "office.key")]
    argv += ["--lists", str(lists), "--out", str(office.bundle)]
    assert main(argv) == 2 and "--confirm-drop" in capsys.readouterr().err
    assert main([*argv, "--confirm-drop"]) == 0
    assert _payload(office.bundle)["revocations"] == []


def test_a_compound_mistyped_at_the_office_or_the_gate_never_lets_a_quarantine_go(
    office, gates, clock, caplog
):
    """East's 3-201 quarantined as "eats": no gate knowing its compound applied the entry,
    and the household walked out of east's gates; a gate set to `id = "eats"` applied none
    of east's entries. The office's lists declare its compounds (``compounds``), publish
    refuses an entry naming another; a gate whose id is not among them applies every entry
    (as a gate not knowing its compound) and says so."""
    from kiosk.lists import BundleError

    typo = {"compounds": ["east", "west"], "quarantine": [_quarantine("3-201", "eats")]}
    with pytest.raises(BundleError, match=r"quarantine\[0\]\.compound: eats is not one of"):
        publish_bundle(office.key, typo, office.bundle, now=clock.now())
    undeclared = {"quarantine": [_quarantine("3-201", "east")]}
    with pytest.raises(BundleError, match="declare the office's compounds"):
        publish_bundle(office.key, undeclared, office.bundle, now=clock.now())
    lists = {
        "compounds": ["east", "west"],
        "quarantine": [_quarantine("3-201", "east"), _quarantine("7-707", "west")],
    }
    publish_bundle(office.key, lists, office.bundle, now=clock.now())
    assert _payload(compounds_path(office.bundle))["compounds"] == ["east", "west"]
    assert "compounds" not in _payload(office.bundle)  # an older gate refuses a key it lacks
    server = Collector(office.bundle)
    gate = gates("gate-east")
    sync = _sync(gate, office, server, clock, "eats")
    with caplog.at_level("WARNING", logger="office.listsync"):
        assert sync.check().outcome == "applied"
    assert gate.lists.current.quarantine_for("3-201", None, DAY) is not None
    assert gate.lists.current.quarantine_for("7-707", None, DAY) is not None
    assert "compound eats ([compound] id) is not one of the office's" in caplog.text
    assert sync.status()["compound"] == {"id": "eats", "lists_for": None}
    right = _sync(gate, office, server, clock, "east")
    assert right.check().outcome == "applied"
    assert right.status()["compound"] == {"id": "east", "lists_for": "east"}
    assert gate.lists.current.quarantine_for("7-707", None, DAY) is None


@pytest.mark.slow
def test_the_district_counts_every_compounds_quarantined_households(tmp_path, pg_dsn, monkeypatch):
    """East's gate holds the office's entries for east and those for every compound, west's
    the ones for west and every compound; the district report took the office's list as the
    most any gate holds (it was the same at every gate) and said 3 quarantined households
    where the office had 4. Each gate reports which compound its office entries are chosen
    for and how many name it; the district counts each compound's once."""
    from pgfixture import Network, add_events
    from support import kiosk_api

    from kiosk.clock import FakeClock
    from kiosk.config.fleet import CollectorConfig
    from office.collector import Collector
    from office.district import district_report

    day = date(2026, 3, 2)
    key = load_private_key(new_key_pair(tmp_path / "office", "office")[0])
    trust = TrustList.from_dir(tmp_path / "office")
    start = datetime(2026, 3, 2, 1, 0, tzinfo=UTC)
    lists = {
        "compounds": ["east", "west"],
        "quarantine": [_quarantine("3-201", "east"), _quarantine("3-202", "east"),
                       _quarantine("3-201", "west"), _quarantine("9-909")],
    }  # fmt: skip
    publish_bundle(key, lists, tmp_path / "bundle.json", now=start)
    tagged = compounds_path(tmp_path / "bundle.json").read_bytes()
    cores = [
        kiosk_api(tmp_path / f"{n}.db", f"gate-{n}", FakeClock(start=start), ledgers=True,
                  scopes=("logs:read", "stats:read"), config={"compound": {"id": n}})
        for n in ("east", "west")
    ]  # fmt: skip
    try:
        for i, core in enumerate(cores):
            core.lists = core.list_store
            core.list_store.import_bundle(tagged, trust, "office-sync", core.config.compound.id)
            monkeypatch.setenv(f"TOKEN_{i}", core.token)
            add_events(core, 2)
            core.clock.advance(86400)
        cores[1].list_store.add_quarantine("7-101", None, day, day, "manager")  # west's own
        config = CollectorConfig.model_validate({"kiosks": [
            {"url": f"http://{c.config.site.kiosk_id}", "token_env": f"TOKEN_{i}"}
            for i, c in enumerate(cores)]})  # fmt: skip
        collector = Collector(config, pg_dsn, client=Network(*cores).client(), report_interval_s=0,
                              clock=FakeClock(start=start + timedelta(days=1)))  # fmt: skip
        try:
            collector.run_once()
        finally:
            collector.stop()
        report = district_report(pg_dsn, day, "Asia/Shanghai")
    finally:
        for core in cores:
            core.store.close()
    per_gate = {g["kiosk_id"]: g["community"]["quarantined_households"] for g in report["by_gate"]}
    assert per_gate == {"gate-east": 3, "gate-west": 3}
    assert report["community"]["quarantined_households"] == 5  # 4 of the office's, 1 west's own


def test_a_household_listed_twice_for_one_compound_is_refused_at_the_office(office, clock):
    """The office's sheet held 3-201 twice (one row with its observation date, one without,
    or one for every compound and one for east), and the gates kept whichever came last:
    east's gates dropped the observation, west's kept it. Which one is meant is the office's
    to say: publish refuses the second."""
    from kiosk.lists import BundleError

    observed = {"household": "3-201", "observation_until": "2026-03-10"}
    for second in (
        {"household": "3-201", "residents": 3},
        {"household": "３-２０１", "residents": 3},  # the same code, typed full width
        {"household": "3-201", "compound": "east", "residents": 3},
    ):
        lists = {"compounds": ["east", "west"], "households": [observed, second]}
        with pytest.raises(BundleError, match=r"households\[1\]: 3-201 is also households\[0\]"):
            publish_bundle(office.key, lists, office.bundle, now=clock.now())
    assert not office.bundle.exists()
    apart = {"household": "3-201", "compound": "west", "residents": 4}
    east = {"household": "3-201", "compound": "east", "residents": 3}
    lists = {"compounds": ["east", "west"], "households": [east, apart]}
    assert publish_bundle(office.key, lists, office.bundle, now=clock.now()).version == 1
