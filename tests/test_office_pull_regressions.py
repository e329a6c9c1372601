"""Office-side defects found in the second hunt (the pull against kiosks that do not answer,
reports that count fevers, hostile kiosks). Each test failed before its fix."""

from __future__ import annotations

import re
import socket
import threading

import httpx
import pytest

from kiosk.hashchain import GENESIS
from office.pull import CONNECT_TIMEOUT_S, SILENT_TRIES, PinError, Puller, PullError


class SilentKiosk:
    """A real local kiosk that never answers: ``accepting`` takes the connection and then says
    nothing (a hung daemon, a connection gone silent); otherwise its accept queue is full, so
    the kernel drops the SYNs as a firewall or a switched-off host does."""

    def __init__(self, accepting: bool) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(0 if not accepting else 16)
        self.port = self.sock.getsockname()[1]
        self.accepted: list[socket.socket] = []
        self.filler: socket.socket | None = None
        self.stop = threading.Event()
        if accepting:
            self.thread = threading.Thread(target=self._accept, daemon=True)
            self.thread.start()
        else:  # one queued connection fills a backlog of 0: later SYNs are dropped
            self.filler = socket.create_connection(("127.0.0.1", self.port))

    def _accept(self) -> None:
        self.sock.settimeout(0.05)
        while not self.stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            self.accepted.append(conn)

    def close(self) -> None:
        self.stop.set()
        if self.filler is not None:
            self.filler.close()
        self.sock.close()
        for conn in self.accepted:
            conn.close()


@pytest.fixture(params=[False, True], ids=["syn-dropped", "connection-silent"])
def silent(request):
    kiosk = SilentKiosk(accepting=request.param)
    yield kiosk
    kiosk.close()


@pytest.mark.slow  # integration: real sockets, processes or deadlines (CI runs it)
def test_a_silent_kiosk_is_given_up_after_two_tries_naming_what_was_tried(tmp_path, silent):
    waits: list[float] = []
    client = httpx.Client(timeout=httpx.Timeout(0.3))
    url = f"http://127.0.0.1:{silent.port}"
    with (
        Puller(tmp_path / "c.db", client=client, attempts=8, sleep=waits.append) as puller,
        pytest.raises(PullError) as caught,
    ):
        puller.pull(url, "t")
    client.close()
    message = str(caught.value)
    # Before: 8 tries of the full timeout and 61.5 s of backoff (8 x 30 s + 61.5 s = 5 min
    # with the defaults), "giving up after 8 tries (ConnectTimeout)".
    assert len(waits) == SILENT_TRIES - 1 == 1
    assert url in message
    assert "did not answer" in message and "2 tries" in message
    if silent.accepted:
        assert len(silent.accepted) == SILENT_TRIES
        assert "went silent" in message
    else:
        assert "not accepted" in message


def test_the_pull_connects_within_a_short_timeout_and_reads_within_the_long_one(tmp_path):
    with Puller(tmp_path / "c.db") as puller:
        timeout = puller.client.timeout
    assert timeout.connect == CONNECT_TIMEOUT_S == 10.0
    assert timeout.read == 30.0


def test_a_transient_error_is_still_retried_the_documented_number_of_times(tmp_path):
    calls = []

    def refuse(request):
        calls.append(request)
        raise httpx.ConnectError("connection refused")

    waits: list[float] = []
    client = httpx.Client(transport=httpx.MockTransport(refuse))
    with (
        Puller(tmp_path / "c.db", client=client, attempts=8, sleep=waits.append) as puller,
        pytest.raises(PullError, match="giving up after 8 tries"),
    ):
        puller.pull("http://gate-1", "t")
    assert len(calls) == 8
    assert waits == [0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 30.0]


# --- a hostile kiosk: forged pages whose chain is self-consistent -----------------------------


def _forged(kiosk_core, changes: dict) -> list[dict]:
    """The kiosk's three events with ``changes`` made to the last, the chain hashed again
    over them as a forger would (the hash only proves the rows agree with each other)."""
    from kiosk.hashchain import GENESIS, event_hash

    rows = kiosk_core.store.events(limit=3)
    rows[-1].update(changes)
    prev = GENESIS
    for row in rows:
        row["prev_hash"] = prev
        row["hash"] = prev = event_hash(row)
    return rows


def _serving(rows: list[dict]) -> httpx.Client:
    def answer(request: httpx.Request) -> httpx.Response:
        after = int(request.url.params.get("after", 0))
        limit = int(request.url.params.get("limit", 100))
        page = [r for r in rows if r["seq"] > after][:limit]
        return httpx.Response(200, json={"events": page, "last": rows[-1]["seq"]})

    return httpx.Client(transport=httpx.MockTransport(answer))


@pytest.fixture
def kiosk_core(tmp_path, clock):
    from test_pull import make_kiosk

    core = make_kiosk(tmp_path / "gate-1.db", "gate-1", clock, 3)
    yield core
    core.store.close()


FORGERIES = {
    "seq past SQLite's integers": ({"seq": 2**63}, "seq 9223372036854775808: not a seq"),
    "a NUL in a text": ({"operator": "a\x00b"}, "seq 3: operator holds a NUL character"),
    "a NUL inside person": ({"person": {"note": "x\x00"}}, "seq 3: person holds a NUL"),
    "no id": ({"id": None}, "seq 3: id is missing"),
    "ts no timestamp": ({"ts": "yesterday"}, "seq 3: ts 'yesterday' is not a UTC timestamp"),
}


def test_a_forged_seq_past_sqlites_integers_is_the_kiosks_error_not_a_traceback(
    kiosk_core, tmp_path
):
    changes, message = FORGERIES["seq past SQLite's integers"]
    rows = _forged(kiosk_core, changes)
    # Before: OverflowError out of sqlite3, a traceback from `kiosk pull`. (A NUL, a row
    # without an id, a ts that is no time: the SQLite copy keeps what the kiosk sent.)
    with Puller(tmp_path / "c.db", client=_serving(rows)) as puller:
        with pytest.raises(PullError, match=re.escape(message)):
            puller.pull("http://gate-1", "t")
        assert puller.target.tail("gate-1") == (0, GENESIS)  # nothing of the page written


pytest_plugins = ("pgfixture",)


@pytest.mark.parametrize("changes, message", FORGERIES.values(), ids=FORGERIES.keys())
def test_a_forged_row_is_the_kiosks_error_not_the_databases(kiosk_core, pg_dsn, changes, message):
    from office.pg import PgError, PgTarget

    rows = _forged(kiosk_core, changes)
    with PgTarget(pg_dsn) as target, Puller(target, client=_serving(rows)) as puller:
        # Before: PgError "<the database>: value ... out of range for type bigint" / "text
        # fields cannot contain NUL" / "null value in column id": the collector said
        # "database: ...", and dropped and reopened its connection at every round.
        with pytest.raises(PullError, match=re.escape(message)) as caught:
            puller.pull("http://gate-1", "t")
        assert not isinstance(caught.value, PgError)
        assert target.tail("gate-1") == (0, GENESIS)


# --- two logs under one kiosk id ------------------------------------------------------------


def _two_gates_one_id(tmp_path, events_b: int):
    """Two kiosks configured with the same ``site.kiosk_id`` (a copied config), at two URLs,
    with different logs; a client that routes by host."""
    from datetime import UTC, datetime

    from test_pull import make_kiosk

    from kiosk.clock import FakeClock

    a = make_kiosk(
        tmp_path / "a.db", "gate-1", FakeClock(start=datetime(2026, 3, 2, 8, tzinfo=UTC)), 40
    )
    b = make_kiosk(
        tmp_path / "b.db", "gate-1", FakeClock(start=datetime(2026, 3, 2, 9, tzinfo=UTC)), events_b
    )
    hosts = {"gate-a": a, "gate-b": b}

    def route(request: httpx.Request) -> httpx.Response:
        kiosk = hosts[request.url.host]
        answer = kiosk.test_client.get(
            request.url.path, params=request.url.params, headers=dict(request.headers)
        )
        return httpx.Response(answer.status_code, headers=answer.headers, content=answer.content)

    return a, b, httpx.Client(transport=httpx.MockTransport(route))


def test_a_second_log_as_long_as_the_copy_is_not_taken_for_up_to_date(tmp_path):
    a, b, client = _two_gates_one_id(tmp_path, 40)
    try:
        with Puller(tmp_path / "c.db", client=client) as puller:
            assert puller.pull("http://gate-a", a.token).inserted == 40
            # Before: "0 new events, up to seq 40": gate-b's 40 events were never pulled and
            # the collector showed it up to date (lag 0). gate-1 is pinned to gate-a now
            # (tests/test_pull_identity.py): refused before any page, naming both; the same
            # log at gate-a's own URL is still the ChainError of test_pull.py.
            with pytest.raises(PinError, match="gate-b answers as kiosk gate-1, which is pinned"):
                puller.pull("http://gate-b", b.token)
            again = puller.pull("http://gate-a", a.token)  # the first gate is still fine
            assert (again.inserted, again.fetched, again.last_seq) == (0, 0, 40)
            a.store.append(_draft())
            more = puller.pull("http://gate-a", a.token)
            assert (more.inserted, more.fetched, more.last_seq) == (1, 1, 41)
    finally:
        a.store.close()
        b.store.close()


def _draft():
    from kiosk.store import EventDraft

    return EventDraft(direction="in", decision="pass", reasons=("ok",), temp_c=36.5)


def test_a_resumed_pull_of_one_event_a_page_checks_the_held_row_and_goes_on(kiosk_core, tmp_path):
    from test_pull import Network, add_events, kiosk_rows, target_rows

    target = tmp_path / "c.db"
    net = Network(kiosk_core)
    with Puller(target, client=net.client(), page_size=1) as puller:
        assert puller.pull("http://gate-1", kiosk_core.token).inserted == 3
        add_events(kiosk_core, 2)
        result = puller.pull("http://gate-1", kiosk_core.token)
    assert (result.inserted, result.fetched, result.last_seq) == (2, 2, 5)
    assert target_rows(target) == kiosk_rows(kiosk_core)


@pytest.mark.parametrize("events", [10, 60], ids=["shorter", "longer"])
def test_a_kiosk_given_a_new_kiosk_id_with_its_new_log_is_pulled_under_that_id_once_re_pinned(
    tmp_path, events
):
    """docs/operations.md: a kiosk whose damaged log was moved aside starts a new one; "give the
    kiosk a new site.kiosk_id if both logs are to be kept apart". Its URL stays the same."""
    from datetime import UTC, datetime

    from test_pull import make_kiosk, target_rows

    from kiosk.clock import FakeClock

    old = make_kiosk(
        tmp_path / "a.db", "gate-1", FakeClock(start=datetime(2026, 3, 2, tzinfo=UTC)), 40
    )
    new = make_kiosk(
        tmp_path / "b.db", "gate-1b", FakeClock(start=datetime(2026, 3, 3, tzinfo=UTC)), events
    )
    serving = {"kiosk": old}

    def route(request: httpx.Request) -> httpx.Response:
        answer = serving["kiosk"].test_client.get(
            request.url.path, params=request.url.params, headers=dict(request.headers)
        )
        return httpx.Response(answer.status_code, headers=answer.headers, content=answer.content)

    target = tmp_path / "c.db"
    try:
        with Puller(target, client=httpx.Client(transport=httpx.MockTransport(route))) as puller:
            assert puller.pull("http://gate-a", old.token).inserted == 40
            serving["kiosk"] = new
            # Before: a ChainError at every pull, for ever ("seq 40: the kiosk's log ends at
            # seq 10 ..." / "seq 41: kiosk_id 'gate-1b', expected 'gate-1'"): the URL's
            # remembered id was pulled, not the kiosk's own. The URL is pinned to gate-1
            # (tests/test_pull_identity.py): the new id is refused, naming both, until the
            # office re-pins it (`kiosk pull --repin gate-1b`).
            with pytest.raises(PinError, match="answers as kiosk gate-1b.*pinned to kiosk gate-1"):
                puller.pull("http://gate-a", new.token)
            result = puller.pull("http://gate-a", new.token, repin="gate-1b")
            assert (result.kiosk_id, result.inserted, result.last_seq) == (
                "gate-1b",
                events,
                events,
            )
            assert puller.pull("http://gate-a", new.token).inserted == 0
            assert puller.target.source_kiosk("http://gate-a") == "gate-1b"
        ids = [row[0] for row in target_rows(target)]
        assert ids.count("gate-1") == 40 and ids.count("gate-1b") == events  # both logs kept
    finally:
        old.store.close()
        new.store.close()


def test_the_district_report_of_a_gate_the_database_does_not_know_is_an_error(kiosk_core, pg_dsn):
    from datetime import date

    from pgfixture import Network as PgNetwork
    from test_fleet_pg import pull_pg

    from office.district import district_report
    from office.pg import PgError

    pull_pg("http://gate-1", kiosk_core.token, pg_dsn, PgNetwork(kiosk_core))
    day = date(2026, 3, 2)
    assert district_report(pg_dsn, day, "UTC", kiosks=["gate-1"])["events"] == 3
    # Before: a typed gate name (gate-l for gate-1) gave a report of zeros, "no events that
    # day", for a gate that is not there.
    with pytest.raises(PgError, match=r"no gate gate-l in the database \(it holds gate-1\)"):
        district_report(pg_dsn, day, "UTC", kiosks=["gate-1", "gate-l"])


def test_stopping_the_collector_ends_a_long_pull_after_its_page_in_flight(
    tmp_path, clock, pg_dsn, monkeypatch
):
    from pgfixture import Network as PgNetwork
    from pgfixture import central_rows
    from pgfixture import make_kiosk as pg_kiosk

    from kiosk.config.fleet import CollectorConfig
    from office.collector import Collector

    gate = pg_kiosk(tmp_path / "g.db", "gate-1", clock, 60)
    monkeypatch.setenv("TOKEN", gate.token)
    config = CollectorConfig.model_validate(
        {"kiosks": [{"url": "http://gate-1", "token_env": "TOKEN"}], "page_size": 10}
    )
    asked: list[str] = []

    def stop_at_the_third_page(request):
        asked.append(f"{request.url.path}?{request.url.query.decode()}")
        if len(asked) == 4:  # the probe and two pages done: kiosk collect gets SIGTERM
            collector._stop.set()

    net = PgNetwork(gate, faults=stop_at_the_third_page)
    collector = Collector(config, pg_dsn, client=net.client())
    try:
        status = collector.pull_once(config.kiosks[0])
    finally:
        collector.stop()
        gate.store.close()
    # Before: the whole backlog (6 pages) was pulled before stop() could return (a backlog of
    # a million events: minutes, and systemd's SIGKILL). The docstring said "let pulls in
    # flight finish their page".
    # The page fetcher ran ahead of the writer and asked for up to two more pages after the
    # stop when a write was slow (flaky under load): it now stops asking at once.
    held = len(central_rows(pg_dsn, "gate-1"))
    assert held <= 40 and len(asked) == 4, asked  # nor the gate's reports asked for after it
    assert status.state == "ok" and status.last_seq == held  # what was pulled is kept


def _unresolved(code: int):
    def answer(request: httpx.Request) -> httpx.Response:
        try:
            raise socket.gaierror(code, "Name or service not known")
        except socket.gaierror as exc:
            raise httpx.ConnectError(str(exc), request=request) from exc

    return answer


def test_a_kiosk_host_name_that_does_not_exist_fails_at_once_saying_so(tmp_path):
    waits: list[float] = []
    client = httpx.Client(transport=httpx.MockTransport(_unresolved(socket.EAI_NONAME)))
    with (
        Puller(tmp_path / "c.db", client=client, attempts=8, sleep=waits.append) as puller,
        pytest.raises(PullError, match="no host is named gate-1.lan") as caught,
    ):
        puller.pull("http://gate-1.lan:8000", "t")
    # Before: 8 tries and a minute of backoff, then "giving up after 8 tries (ConnectError)"
    # for a typing error in the URL.
    assert waits == []
    assert "http://gate-1.lan:8000" in str(caught.value)


def test_a_name_server_that_fails_for_now_is_still_retried(tmp_path):
    waits: list[float] = []
    client = httpx.Client(transport=httpx.MockTransport(_unresolved(socket.EAI_AGAIN)))
    with (
        Puller(tmp_path / "c.db", client=client, attempts=3, sleep=waits.append) as puller,
        pytest.raises(PullError, match="giving up after 3 tries"),
    ):
        puller.pull("http://gate-1.lan:8000", "t")
    assert waits == [0.5, 1.0]


def _refusing_port():
    """A port on 127.0.0.1 where nothing listens (bound, never listened on: refused)."""
    import socket

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    return sock, sock.getsockname()[1]


def test_a_refused_connection_is_said_at_the_first_try_and_tried_again(tmp_path):
    """`kiosk pull http://127.0.0.1:1` was silent for 64 s, then said `giving up after 8
    tries (ConnectError)`: the cause is said at the first refusal, the tries go on."""
    from office.pull import Puller

    sock, port = _refusing_port()
    told: list[str] = []
    sleeps: list[float] = []
    url = f"http://127.0.0.1:{port}"
    try:
        with (
            Puller(tmp_path / "c.db", attempts=3, sleep=sleeps.append, tell=told.append) as p,
            pytest.raises(
                PullError,
                match=r"giving up after 3 tries \(connection refused: is the kiosk running",
            ),
        ):
            p.pull(url, "t")
    finally:
        sock.close()
    assert told == [
        f"{url}/api/v1/events: connection refused: is the kiosk running at that address and"
        " port? (trying again, 3 tries in all)"
    ]
    assert len(sleeps) == 2


def test_kiosk_pull_says_a_refused_connection_on_stderr(tmp_path, capsys):
    from checkpoint.cli import main

    sock, port = _refusing_port()
    try:
        argv = ["pull", f"http://127.0.0.1:{port}", "--token", "t", "--retries", "1"]
        assert main([*argv, "--into", str(tmp_path / "c.db")]) == 1
    finally:
        sock.close()
    err = capsys.readouterr().err
    assert "connection refused: is the kiosk running at that address and port?" in err, err
