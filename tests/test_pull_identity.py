"""Which gate is which at the office: a source's kiosk id is pinned to its URL.

The hash chain is no signature: a host that answers at another URL with a configured gate's
``kiosk_id`` (a hostile host on the LAN, or a gate whose config and log were copied from
another) could extend that gate's chain with rows of its own. The first successful pull of a
URL pins the kiosk id it served to that URL; another URL answering with a pinned id, or the URL
answering with another id, is refused, naming both, until the operator re-pins explicitly.
Each test runs against a SQLite file and against a real PostgreSQL (``pgfixture``).
"""

from __future__ import annotations

import sqlite3

import httpx
import pytest
from pgfixture import make_kiosk

from office.pg import PgTarget
from office.pull import PinError, Puller

pytest_plugins = ("pgfixture",)  # pg_cluster, pg_dsn: a real PostgreSQL


def copied(core, path, clock, forged: int):
    """A second kiosk whose log is a copy of ``core``'s (same kiosk_id, same chain), then
    ``forged`` rows of its own that continue that chain."""
    src = sqlite3.connect(core.store.path)
    dst = sqlite3.connect(path)
    src.backup(dst)
    src.close()
    dst.close()
    return make_kiosk(path, core.config.site.kiosk_id, clock, forged)


class Hosts:
    """An httpx transport: URL host -> the in-process kiosk answering there."""

    def __init__(self, **hosts):
        self.hosts = dict(hosts)

    def __call__(self, request: httpx.Request) -> httpx.Response:
        kiosk = self.hosts.get(request.url.host)
        if kiosk is None:
            raise httpx.ConnectError("no route to host", request=request)
        answer = kiosk.test_client.get(
            request.url.path, params=request.url.params, headers=dict(request.headers)
        )
        return httpx.Response(answer.status_code, headers=answer.headers, content=answer.content)

    def client(self) -> httpx.Client:
        return httpx.Client(transport=httpx.MockTransport(self))


@pytest.fixture(params=["sqlite", "postgresql"])
def target(request, tmp_path):
    """A factory of targets (each the caller's to close) on one SQLite file or database."""
    if request.param == "sqlite":
        path = tmp_path / "central.db"
        return lambda: Puller(path).target
    dsn = request.getfixturevalue("pg_dsn")
    return lambda: PgTarget(dsn)


def held(make_target) -> list[tuple[str, int, str]]:
    t = make_target()
    try:
        conn = t.conn
        table = "fleet_events" if isinstance(t, PgTarget) else "pulled_events"
        return [
            tuple(r)
            for r in conn.execute(
                f"SELECT kiosk_id, seq, hash FROM {table} ORDER BY kiosk_id, seq"  # noqa: S608
            ).fetchall()
        ]
    finally:
        t.close()


def do_pull(make_target, hosts, url, token, **kwargs):
    t = make_target()
    try:
        with Puller(t, client=hosts.client()) as puller:
            return puller.pull(url, token, **kwargs)
    finally:
        t.close()


@pytest.mark.slow
def test_a_second_host_answering_with_a_pinned_kiosk_id_is_refused(target, tmp_path, clock):
    """Before: taken. gate-b (a copied config and log, or a hostile host) answered as gate-1
    and its 5 forged rows extended gate-1's chain; the real gate-1's next rows then hit a
    ChainError, and the district report counted the forged ones."""
    real = make_kiosk(tmp_path / "gate-1.db", "gate-1", clock, 40)
    hosts = Hosts(**{"gate-a": real})
    try:
        assert do_pull(target, hosts, "http://gate-a", real.token).inserted == 40
        before = held(target)
        impostor = copied(real, tmp_path / "impostor.db", clock, 5)
        hosts.hosts["gate-b"] = impostor
        try:
            with pytest.raises(PinError) as refused:
                do_pull(target, hosts, "http://gate-b", impostor.token)
            message = str(refused.value)
            assert "http://gate-b" in message and "http://gate-a" in message
            assert "gate-1" in message and "--repin" in message
            assert held(target) == before  # nothing forged was written
            # The real gate's own new rows still come.
            from test_pull import add_events

            add_events(real, 3)
            assert do_pull(target, hosts, "http://gate-a", real.token).inserted == 3
        finally:
            impostor.store.close()
    finally:
        real.store.close()


@pytest.mark.slow
def test_a_url_answering_with_another_kiosk_id_is_refused_until_re_pinned(target, tmp_path, clock):
    """A URL pinned to gate-1 that answers as gate-9 (another host took its address, or the
    gate was given a new site.kiosk_id) is refused, naming both; ``repin`` (``kiosk pull
    --repin ID``) is the operator's explicit word, and then it is pulled under its new id."""
    first = make_kiosk(tmp_path / "gate-1.db", "gate-1", clock, 10)
    other = make_kiosk(tmp_path / "gate-9.db", "gate-9", clock, 4)
    hosts = Hosts(**{"gate-a": first})
    try:
        do_pull(target, hosts, "http://gate-a", first.token)
        hosts.hosts["gate-a"] = other
        with pytest.raises(PinError) as refused:
            do_pull(target, hosts, "http://gate-a", other.token)
        message = str(refused.value)
        assert "gate-9" in message and "gate-1" in message and "http://gate-a" in message
        # Re-pinning to an id the URL does not answer as is refused too, pin unchanged.
        with pytest.raises(PinError, match="gate-7"):
            do_pull(target, hosts, "http://gate-a", other.token, repin="gate-7")
        result = do_pull(target, hosts, "http://gate-a", other.token, repin="gate-9")
        assert (result.kiosk_id, result.inserted) == ("gate-9", 4)
        assert [r[0] for r in held(target)].count("gate-1") == 10  # the old rows stay
        t = target()
        try:
            assert t.source_kiosk("http://gate-a") == "gate-9"
            assert [c[1:3] for c in t.pin_changes()] == [("http://gate-a", "gate-9")]
        finally:
            t.close()
    finally:
        first.store.close()
        other.store.close()


@pytest.mark.slow
def test_a_gate_that_moved_is_re_pinned_explicitly_and_its_old_url_released(
    target, tmp_path, clock
):
    """gate-1 moved from gate-a to gate-c (a new IP): refused until re-pinned; afterwards the
    old URL no longer holds gate-1 (a host appearing there as gate-1 is refused)."""
    gate = make_kiosk(tmp_path / "gate-1.db", "gate-1", clock, 8)
    hosts = Hosts(**{"gate-a": gate})
    try:
        do_pull(target, hosts, "http://gate-a", gate.token)
        del hosts.hosts["gate-a"]
        hosts.hosts["gate-c"] = gate
        with pytest.raises(PinError, match="http://gate-a"):
            do_pull(target, hosts, "http://gate-c", gate.token)
        from test_pull import add_events

        add_events(gate, 2)
        result = do_pull(target, hosts, "http://gate-c", gate.token, repin="gate-1")
        assert (result.kiosk_id, result.inserted) == ("gate-1", 2)
        hosts.hosts["gate-a"] = gate
        with pytest.raises(PinError, match="http://gate-c"):
            do_pull(target, hosts, "http://gate-a", gate.token)
        t = target()
        try:
            assert t.source_kiosk("http://gate-a") is None
        finally:
            t.close()
    finally:
        gate.store.close()


def test_an_old_copy_without_pins_is_pinned_on_its_next_pull(tmp_path, clock):
    """A file made before pinning (``pull_sources`` of url, kiosk_id, updated_at): the URL's
    row becomes its pin at the next pull, and a second URL claiming the id is then refused."""
    gate = make_kiosk(tmp_path / "gate-1.db", "gate-1", clock, 6)
    path = tmp_path / "old.db"
    hosts = Hosts(**{"gate-a": gate, "gate-b": gate})
    try:
        # An old copy: the tables as the previous version made them, one pull's rows in them.
        old = sqlite3.connect(path)
        old.executescript(
            "CREATE TABLE pull_sources (url TEXT PRIMARY KEY, kiosk_id TEXT NOT NULL,"
            " updated_at TEXT NOT NULL);"
            "INSERT INTO pull_sources VALUES ('http://gate-a', 'gate-1', '2026-01-01');"
        )
        old.close()
        assert (
            do_pull(lambda: Puller(path).target, hosts, "http://gate-a", gate.token).inserted == 6
        )
        with pytest.raises(PinError, match="http://gate-a"):
            do_pull(lambda: Puller(path).target, hosts, "http://gate-b", gate.token)
    finally:
        gate.store.close()


def test_cli_pull_repin_moves_a_gate_and_says_so(tmp_path, clock, monkeypatch, capsys):
    """``kiosk pull URL --repin ID``: refused without it (exit 1, both URLs named), re-pinned
    and pulled with it, the re-pin printed; --repin with two URLs is a usage error."""
    from checkpoint.cli import main

    gate = make_kiosk(tmp_path / "gate-1.db", "gate-1", clock, 5)
    hosts = Hosts(**{"gate-a": gate, "gate-c": gate})
    real_client, transport = httpx.Client, httpx.MockTransport(hosts)
    monkeypatch.setattr(httpx, "Client", lambda **kw: real_client(transport=transport))
    into = str(tmp_path / "central.db")
    base = ["--token", gate.token, "--retries", "1", "--into", into]
    try:
        assert main(["pull", "http://gate-a", *base]) == 0
        capsys.readouterr()
        assert main(["pull", "http://gate-c", *base]) == 1
        err = capsys.readouterr().err
        assert "http://gate-c answers as kiosk gate-1, which is pinned to http://gate-a" in err
        assert main(["pull", "http://gate-c", *base, "--repin", "gate-1"]) == 0
        err = capsys.readouterr().err
        assert "http://gate-c re-pinned to kiosk gate-1 (http://gate-c was not pinned;" in err
        assert "http://gate-a released" in err
        assert (
            main(["pull", "http://gate-c", "--from", "http://gate-a", *base, "--repin", "x"]) == 2
        )
    finally:
        gate.store.close()


@pytest.mark.slow
def test_the_collector_shows_the_impostor_refused_and_keeps_pulling_the_real_gate(
    tmp_path, clock, pg_dsn, monkeypatch
):
    """Two configured gates, the second set up from a copy of the first (config and log): its
    status is the error naming both URLs, the first is ok, and the central table holds the
    real gate's rows only (the district report counts what is there)."""
    from pgfixture import central_rows, kiosk_rows

    from kiosk.config.fleet import CollectorConfig
    from office.collector import Collector

    real = make_kiosk(tmp_path / "gate-1.db", "gate-1", clock, 12)
    impostor = copied(real, tmp_path / "copy.db", clock, 4)
    monkeypatch.setenv("TOKEN_A", real.token)
    monkeypatch.setenv("TOKEN_B", impostor.token)
    config = CollectorConfig.model_validate(
        {
            "kiosks": [
                {"url": "http://gate-a", "token_env": "TOKEN_A"},
                {"url": "http://gate-b", "token_env": "TOKEN_B"},
            ]
        }
    )
    client = Hosts(**{"gate-a": real, "gate-b": impostor}).client()
    collector = Collector(config, pg_dsn, client=client, backoff_wait=lambda s: None)
    try:
        first = collector.pull_once(config.kiosks[0])
        second = collector.pull_once(config.kiosks[1])
    finally:
        collector.stop()
    try:
        assert (first.state, first.kiosk_id, first.last_seq) == ("ok", "gate-1", 12)
        assert second.state == "error" and second.kiosk_id is None
        assert "http://gate-b answers as kiosk gate-1, which is pinned to http://gate-a" in (
            second.last_error or ""
        )
        assert central_rows(pg_dsn, "gate-1") == kiosk_rows(real)
    finally:
        real.store.close()
        impostor.store.close()


@pytest.mark.parametrize(
    ("typed", "normal"),
    [
        ("http://Gate-1:8443/", "http://gate-1:8443"),
        ("HTTP://GATE-1.:8443", "http://gate-1:8443"),
        ("http://gate-1:80", "http://gate-1"),
        ("https://gate-1:443/kiosk/", "https://gate-1/kiosk"),
        ("https://Tor-Nord.example", "https://tor-nord.example"),
        ("http://[FE80::1]:8443", "http://[fe80::1]:8443"),
        ("http://Tür-1.lan", "http://xn--tr-1-0ra.lan"),
        ("http://gate-1/Kiosk", "http://gate-1/Kiosk"),  # the path keeps its case
    ],
)
def test_a_gate_url_is_one_url_however_its_host_is_typed(typed, normal):
    """Before: ``http://Gate-1:8443`` stayed as typed, a different source (and pin) from
    ``http://gate-1:8443``; host names are case-insensitive, a trailing dot and the default
    port name the same host."""
    from kiosk.config.fleet import normalise_url

    assert normalise_url(typed) == normal


def test_a_gate_typed_with_capitals_is_the_same_pinned_source(target, tmp_path, clock):
    """Before: pulled once as ``http://Gate-A``, then as ``http://gate-a`` (the same host), the
    second pull was refused as another source claiming the pinned kiosk id."""
    gate = make_kiosk(tmp_path / "gate-1.db", "gate-1", clock, 6)
    hosts = Hosts(**{"gate-a": gate})
    try:
        assert do_pull(target, hosts, "http://Gate-A", gate.token).inserted == 6
        from test_pull import add_events

        add_events(gate, 2)
        assert do_pull(target, hosts, "http://gate-a:80/", gate.token).inserted == 2
    finally:
        gate.store.close()


@pytest.mark.slow
def test_a_pin_stored_under_the_old_typed_form_is_kept(target, tmp_path, clock):
    """A pin the previous version stored as typed (``http://Gate-A``) is moved to the
    normal form when the target opens: the gate keeps its pin (no refusal of its own URL, no
    re-pin needed), and another host claiming its id is still refused."""
    gate = make_kiosk(tmp_path / "gate-1.db", "gate-1", clock, 6)
    hosts = Hosts(**{"gate-a": gate, "gate-b": gate})
    try:
        t = target()
        try:
            table = "fleet_sources" if isinstance(t, PgTarget) else "pull_sources"
            mark = "%s" if isinstance(t, PgTarget) else "?"
            t.conn.execute(
                f"INSERT INTO {table} (url, kiosk_id, updated_at)"  # noqa: S608
                f" VALUES ({mark}, {mark}, {mark})",
                ["http://Gate-A.", "gate-1", "2026-01-01T00:00:00+00:00"],
            )
            if isinstance(t, PgTarget):
                t.conn.commit()
        finally:
            t.close()
        assert do_pull(target, hosts, "http://gate-a", gate.token).inserted == 6
        with pytest.raises(PinError, match="http://gate-a"):
            do_pull(target, hosts, "http://gate-b", gate.token)
        t = target()
        try:
            table = "fleet_sources" if isinstance(t, PgTarget) else "pull_sources"
            urls = [r[0] for r in t.conn.execute(f"SELECT url FROM {table}").fetchall()]  # noqa: S608
        finally:
            t.close()
        assert urls == ["http://gate-a"]
    finally:
        gate.store.close()


@pytest.mark.slow
def test_the_district_report_names_every_configured_gate_without_figures(
    tmp_path, clock, pg_dsn, monkeypatch
):
    """Before: a gate refused for a duplicate kiosk id (and one never reached, and one not
    pulled yet) was absent from the district report, which the director reads as a quiet
    gate: the report names each configured gate without figures, and why (JSON and CSV)."""
    from kiosk.config.fleet import CollectorConfig
    from office.collector import Collector
    from office.district import district_csv, district_report

    real = make_kiosk(tmp_path / "gate-1.db", "gate-1", clock, 12)
    impostor = copied(real, tmp_path / "copy.db", clock, 4)
    for name, token in (("A", real.token), ("B", impostor.token), ("C", "t"), ("D", "t")):
        monkeypatch.setenv(f"TOKEN_{name}", token)
    config = CollectorConfig.model_validate(
        {
            "kiosks": [
                {"url": "http://gate-a", "token_env": "TOKEN_A"},
                {"url": "http://gate-b", "token_env": "TOKEN_B", "name": "north"},
                {"url": "http://gate-c", "token_env": "TOKEN_C"},
                {"url": "http://gate-d", "token_env": "TOKEN_D"},
            ]
        }
    )
    client = Hosts(**{"gate-a": real, "gate-b": impostor}).client()
    collector = Collector(config, pg_dsn, client=client, backoff_wait=lambda s: None)
    try:
        for source in config.kiosks[:3]:  # gate-d: configured, not pulled yet
            collector.pull_once(source)
    finally:
        collector.stop()
    try:
        report = district_report(pg_dsn, clock.now().date(), "UTC")
        without = {g["url"]: g["why"] for g in report["gates_without_figures"]}
        assert without == {
            "http://gate-b": "refused: duplicate id",
            "http://gate-c": "unreachable",
            "http://gate-d": "never pulled",
        }
        north = next(g for g in report["gates_without_figures"] if g["url"] == "http://gate-b")
        assert north["gate"] == "north" and north["kiosk_id"] == "gate-1"
        assert [g["kiosk_id"] for g in report["by_gate"]] == ["gate-1"]
        text = district_csv(report)
        assert "no_figures,north,north (http://gate-b): refused: duplicate id" in text
        assert "no_figures,http://gate-d,http://gate-d: never pulled" in text
    finally:
        real.store.close()
        impostor.store.close()


def test_a_district_csv_with_chinese_text_opens_in_excel_as_utf8(tmp_path, pg_dsn, monkeypatch):
    """Before: the district CSV was UTF-8 without a BOM, which Excel on a Chinese Windows
    reads as GBK: a gate named 北门 came out as mojibake. A CSV holding any non-ASCII text
    starts with the BOM; the JSON is unchanged."""
    from checkpoint.cli import main

    with PgTarget(pg_dsn) as t:
        t.record_gates(
            [{"url": "http://gate-n", "name": "北门", "kiosk_id": None, "why": "never pulled"}]
        )
        day = t.conn.execute("SELECT current_date").fetchone()[0]
    monkeypatch.setenv("KIOSK_FLEET_DSN", pg_dsn)
    out = tmp_path / "district.csv"
    args = ["fleet", "report", "--day", day.isoformat(), "--tz", "UTC"]
    assert main([*args, "--csv", str(out)]) == 0
    data = out.read_bytes()
    assert data.startswith(b"\xef\xbb\xbf")
    assert "no_figures,北门,北门 (http://gate-n): never pulled" in data.decode("utf-8-sig")
