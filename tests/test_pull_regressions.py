"""Pull regressions: defects found in the field review, each test failing before its fix."""

from __future__ import annotations

import json

import httpx
import pytest
from test_pull import Network, add_events, kiosk_rows, make_kiosk, target_rows

from kiosk.store import EventDraft
from office.pull import ChainError, PullError, pull


@pytest.fixture
def kiosk(tmp_path, clock):
    core = make_kiosk(tmp_path / "gate-1.db", "gate-1", clock, 40)
    yield core
    core.store.close()


@pytest.mark.parametrize("events", [0, 12, 39])
def test_a_replaced_log_shorter_than_the_copy_is_a_chain_error_not_up_to_date(
    kiosk, tmp_path, clock, events
):
    target = tmp_path / "central.db"
    pull("http://gate-1", kiosk.token, target, client=Network(kiosk).client())
    held = target_rows(target)
    # A new SD card (or a restored backup) under the same id, fewer events than held: before,
    # every pull said "0 new, up to date" until the new log outgrew the copy, and its events
    # never came.
    impostor = make_kiosk(tmp_path / "other.db", "gate-1", clock, events)
    try:
        with pytest.raises(ChainError, match=f"seq 40: the kiosk's log ends at seq {events}"):
            pull("http://gate-1", impostor.token, target, client=Network(impostor).client())
    finally:
        impostor.store.close()
    assert target_rows(target) == held


def test_the_same_log_with_nothing_new_is_still_up_to_date(kiosk, tmp_path):
    target = tmp_path / "central.db"
    net = Network(kiosk)
    pull("http://gate-1", kiosk.token, target, client=net.client(), page_size=7)
    same = pull("http://gate-1", kiosk.token, target, client=net.client(), page_size=7)
    assert (same.fetched, same.inserted, same.last_seq, same.head_seq) == (0, 0, 40, 40)
    add_events(kiosk, 9)
    more = pull("http://gate-1", kiosk.token, target, client=net.client(), page_size=7)
    assert (more.fetched, more.inserted, more.last_seq, more.head_seq) == (9, 9, 49, 49)
    assert target_rows(target) == kiosk_rows(kiosk)


def test_a_kiosk_that_does_not_say_its_head_is_not_taken_for_a_replaced_log(kiosk, tmp_path):
    def without_last(body):
        body.pop("last", None)
        return body

    target = tmp_path / "central.db"
    pull("http://gate-1", kiosk.token, target, client=Network(kiosk).client())
    net = Network(kiosk, faults=lambda request: without_last)
    again = pull("http://gate-1", kiosk.token, target, client=net.client())
    assert (again.fetched, again.last_seq) == (0, 40)


class Endless:
    """A body of ``chunks`` 64 KiB pieces that counts how many were read (a kiosk URL that
    points at something huge: a mirror, a video, a hostile host on the LAN)."""

    def __init__(self, chunks: int) -> None:
        self.chunks = chunks
        self.read = 0

    def __iter__(self):
        for _ in range(self.chunks):
            self.read += 1
            yield b" " * 65536


def test_an_answer_larger_than_the_page_cap_is_refused_without_reading_it_all(tmp_path):
    body = Endless(400)  # 25 MiB of nothing

    def huge(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=iter(body))

    client = httpx.Client(transport=httpx.MockTransport(huge))
    waits: list[float] = []
    with pytest.raises(PullError, match=r"larger than \d+ bytes"):  # page_cap: 1 event
        pull(
            "http://gate-1", "t", tmp_path / "c.db", client=client, sleep=waits.append,
            max_page_bytes=1 << 20,
        )  # fmt: skip
    assert body.read <= 17  # 1 MiB and the piece that crossed it, not 25 MiB
    assert waits == []  # a body too large is not a network hiccup: not tried again


def test_an_error_answer_is_read_only_as_far_as_its_message(tmp_path):
    body = Endless(400)

    def huge(request: httpx.Request) -> httpx.Response:
        return httpx.Response(403, content=iter(body))

    client = httpx.Client(transport=httpx.MockTransport(huge))
    with pytest.raises(PullError, match="403"):
        pull("http://gate-1", "t", tmp_path / "c.db", client=client)
    assert body.read <= 2


def test_a_page_under_the_cap_is_pulled_as_before(kiosk, tmp_path):
    target = tmp_path / "central.db"
    result = pull(
        "http://gate-1", kiosk.token, target, client=Network(kiosk).client(),
        max_page_bytes=1 << 20,
    )  # fmt: skip
    assert result.fetched == 40 and target_rows(target) == kiosk_rows(kiosk)


GENESIS = "0" * 64


def _answering(body: dict) -> httpx.Client:
    content = json.dumps(body).encode()
    return httpx.Client(
        transport=httpx.MockTransport(lambda r: httpx.Response(200, content=content))
    )


def test_a_row_without_a_hash_is_refused_not_taken_unchecked(tmp_path):
    # An odd value (a float mono_ns) sends the row past the fast hash; with no hash of its
    # own, "no fast hash" == "no hash" and the row went in unverified (or a KeyError).
    row = {"kiosk_id": "k", "seq": 1, "prev_hash": GENESIS, "hash": None, "mono_ns": 1.5,
           "decision": "pass", "reasons": ["ok"], "flags": []}  # fmt: skip
    target = tmp_path / "c.db"
    for shown in (row, {k: v for k, v in row.items() if k != "hash"}):
        with pytest.raises(ChainError, match="seq 1: "):
            pull("http://k", "t", target, client=_answering({"events": [shown], "last": 1}))
    assert target_rows(target) == []


@pytest.mark.parametrize(
    "body",
    [
        {"events": [1], "last": 1},
        {"events": [None]},
        {"events": [["k", 1]], "last": 1},
        {"events": [{"kiosk_id": "k", "seq": 1}], "last": "abc"},
        {"events": [{"kiosk_id": "k", "seq": 1}], "last": [1]},
        {"events": [], "last": {"seq": 1}},
    ],
)
def test_an_answer_that_is_not_a_kiosk_page_is_a_pull_error_not_a_traceback(tmp_path, body):
    with pytest.raises(PullError):
        pull("http://k", "t", tmp_path / "c.db", client=_answering(body), attempts=1)


def test_a_url_httpx_cannot_use_is_one_line_not_a_traceback(tmp_path, capsys):
    from checkpoint.cli import main

    # "host:port:port" passes the URL check (it has a scheme and a netloc) and httpx then
    # raised InvalidURL, which is neither a PullError nor a network error: a traceback.
    with pytest.raises(PullError, match="not a usable URL"):
        pull("http://gate-1:8000:99", "t", tmp_path / "c.db")
    code = main(["pull", "http://gate-1:8000:99", "--token", "t", "--into", str(tmp_path / "c.db")])
    err = capsys.readouterr().err
    assert code == 1 and "Traceback" not in err and "not a usable URL" in err


def test_a_page_size_above_the_kiosks_max_page_is_lowered_to_it_not_a_bare_422(tmp_path, clock):
    from support import kiosk_api

    gate = kiosk_api(tmp_path / "g.db", "gate-1", clock)
    try:
        add_events(gate, 30)
        gate.app.state.api.max_page = 7  # web.max_page = 7 at this gate
        net = Network(gate)
        # Before: "HTTP 422 " and nothing else, on every pull, for a page size the gate's
        # web.max_page does not allow (kiosk pull --page, the collector's page_size).
        result = pull("http://gate-1", gate.token, tmp_path / "c.db", client=net.client(),
                      page_size=10)  # fmt: skip
        assert (result.fetched, result.last_seq) == (30, 30)
        assert target_rows(tmp_path / "c.db") == kiosk_rows(gate)
    finally:
        gate.store.close()


def test_a_refusal_the_pull_cannot_adapt_to_says_why(tmp_path):
    body = {"detail": [{"loc": ["query", "after"], "msg": "Input should be a valid integer"}]}

    def refuse(request: httpx.Request) -> httpx.Response:
        return httpx.Response(422, json=body)

    client = httpx.Client(transport=httpx.MockTransport(refuse))
    with pytest.raises(PullError, match="HTTP 422 query.after: Input should be a valid integer"):
        pull("http://gate-1", "t", tmp_path / "c.db", client=client)


# -- a failed first pull leaves no file behind ---------------------------------------------------


def _failing_after(seq: int):
    return lambda request: "connect" if request.url.params.get("after") == str(seq) else None


def _interrupt(request):
    raise KeyboardInterrupt  # ^C while the first request is under way


@pytest.mark.parametrize(
    ("faults", "token", "error"),
    [
        (lambda request: "connect", None, PullError),  # the kiosk is unreachable
        (None, "kt_00000000_" + "A" * 43, PullError),  # a token the kiosk refuses (401)
        (_interrupt, None, KeyboardInterrupt),
    ],
    ids=["unreachable", "refused-token", "interrupted"],
)
def test_a_failed_first_pull_leaves_no_target_file_and_the_retry_starts_clean(
    kiosk, tmp_path, faults, token, error
):
    """The target was created (0600, the schema written) before the first request: a first
    pull that failed left a database with no events behind, which looks like a pulled copy."""
    office = tmp_path / "office"
    office.mkdir()
    target = office / "central.db"
    net = Network(kiosk, faults=faults)
    with pytest.raises(error):
        pull("http://gate-1", token or kiosk.token, target, client=net.client(), attempts=1)
    assert sorted(p.name for p in office.iterdir()) == []
    net.faults = lambda request: None
    result = pull("http://gate-1", kiosk.token, target, client=net.client())
    assert result.inserted == 40 and target_rows(target) == kiosk_rows(kiosk)


def test_a_failed_first_pull_from_the_cli_leaves_no_file(tmp_path, capsys):
    from checkpoint.cli import main

    target = tmp_path / "central.db"
    argv = ["pull", "http://127.0.0.1:9", "--token", "t", "--retries", "1", "--into", str(target)]
    assert main(argv) == 1
    assert "giving up after 1 tries" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def test_a_failed_pull_keeps_what_a_first_pull_committed_and_the_retry_resumes(kiosk, tmp_path):
    target = tmp_path / "central.db"
    net = Network(kiosk, faults=_failing_after(20))
    with pytest.raises(PullError):
        pull("http://gate-1", kiosk.token, target, client=net.client(), page_size=10, attempts=1)
    assert target_rows(target) == kiosk_rows(kiosk)[:20]
    net.faults = lambda request: None
    assert pull("http://gate-1", kiosk.token, target, client=net.client()).inserted == 20
    assert target_rows(target) == kiosk_rows(kiosk)


@pytest.mark.parametrize("held", [0, 12], ids=["left-empty-by-an-earlier-run", "with-events"])
def test_a_failed_pull_never_touches_a_target_it_did_not_create(kiosk, tmp_path, held):
    from office.pull import SqliteTarget

    target = tmp_path / "central.db"
    if held:
        net = Network(kiosk, faults=_failing_after(held))
        with pytest.raises(PullError):
            pull("http://gate-1", kiosk.token, target, client=net.client(), page_size=held,
                 attempts=1)  # fmt: skip
    else:
        SqliteTarget(target).close()  # the empty copy a failed first pull used to leave
    before = target.read_bytes()
    net = Network(kiosk, faults=lambda request: "connect")
    with pytest.raises(PullError):
        pull("http://gate-1", kiosk.token, target, client=net.client(), attempts=1)
    assert target.read_bytes() == before
    net.faults = lambda request: None
    pull("http://gate-1", kiosk.token, target, client=net.client())
    assert target_rows(target) == kiosk_rows(kiosk)


def _largest_legal_event() -> dict:
    """An event row as ``/api/v1/events`` sends it, every field at the bound the log holds
    it to (``kiosk.store``: texts of 256 characters, codes of 64, ``person`` of 64 KiB of
    canonical JSON), unmasked, in characters JSON escapes the most."""
    from kiosk.export import COLUMNS
    from kiosk.store import MAX_JSON_BYTES

    wide = "\x01" * 256  # 6 bytes each in JSON (\u0001)
    person = {"note": "\x01" * ((MAX_JSON_BYTES - 20) // 6)}
    event = dict.fromkeys(COLUMNS, "x" * 64)
    event |= {c: wide for c in ("pass_id", "household", "holder", "operator")}
    event |= {"seq": 2**63 - 1, "mono_ns": 2**63 - 1, "clock_synced": True, "person": person}
    event |= {c: -1.2345678901234567e-300 for c in ("temp_c", "temp_object_c")}
    event |= {c: -1.2345678901234567e-300 for c in ("temp_ambient_c", "latency_ms")}
    event |= {"reasons": ["\x01" * 64] * 8, "flags": ["\x01" * 64] * 8}
    return event


def test_the_page_cap_holds_a_page_of_the_largest_legal_events():
    from kiosk.export import dumps_event
    from kiosk.hashchain import canonical
    from kiosk.store import MAX_JSON_BYTES
    from office.pull import MAX_EVENT_BYTES, page_cap

    event = _largest_legal_event()
    assert len(canonical(event["person"])) <= MAX_JSON_BYTES
    assert len(dumps_event(event)) <= MAX_EVENT_BYTES
    page = b'{"events":[' + b",".join([dumps_event(event)] * 3) + b'],"next":1,"last":1}'
    assert len(page) <= page_cap(3, 1 << 30)
    assert page_cap(5000, 1 << 20) == 1 << 20  # max_page_bytes stays the ceiling


def test_a_page_is_read_no_further_than_its_limit_of_events_can_need(tmp_path):
    """A kiosk's answer was read up to 256 MiB whatever the page size (and parsing it holds
    ~5x more, times the collector's concurrent pulls): an out-of-memory kill of the office
    from one broken or hostile kiosk. A page of ``limit`` events needs at most ``limit`` of
    the largest legal rows."""
    from office.pull import MAX_EVENT_BYTES

    body = Endless(400)  # 25 MiB

    def huge(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=iter(body))

    client = httpx.Client(transport=httpx.MockTransport(huge))
    waits: list[float] = []
    with pytest.raises(PullError, match=r"gate-1.*larger than \d+ bytes") as refused:
        pull("http://gate-1", "t", tmp_path / "c.db", client=client, sleep=waits.append)
    assert "at most 1 event" in str(refused.value)  # the probe asks for one
    assert body.read * 65536 <= MAX_EVENT_BYTES + (1 << 20)
    assert waits == []


def test_a_page_body_is_held_once_while_it_is_read(tmp_path):
    """``_read`` returned ``bytes(body[:None])``: the page three times over (the buffer, its
    slice, its copy) at the moment it was complete."""
    import tracemalloc

    from office.pull import Puller

    size = 16 << 20
    client = httpx.Client(
        transport=httpx.MockTransport(
            lambda request: httpx.Response(200, content=iter([b" " * 65536] * (size >> 16)))
        )
    )
    with Puller(tmp_path / "c.db", client=client) as puller:
        tracemalloc.start()
        try:
            _, _, body = puller._fetch("http://gate-1/api/v1/events", {"limit": 10000}, {})
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
    assert len(body) == size
    assert peak < 1.5 * size, peak


@pytest.mark.slow
def test_a_legal_page_over_the_cap_is_asked_again_in_pages_that_surely_fit(tmp_path, clock):
    """Lowering the cap must not refuse a kiosk whose residents' ``person`` fields are large:
    a page over ``max_page_bytes`` is asked again with as many events as fit at their
    largest (``safe_limit``), and the pull completes."""
    from support import kiosk_api

    from office.pull import page_cap, safe_limit

    core = kiosk_api(tmp_path / "big.db", "gate-9", clock, scopes=("logs:read", "logs:personal"))
    try:
        for i in range(12):
            core.store.append(
                EventDraft(
                    direction="in", decision="pass", pass_id=f"P{i}", household="H1",
                    person={"note": "a" * 60000},
                )
            )  # fmt: skip
            core.clock.advance(1)
        target = tmp_path / "central.db"
        ceiling = page_cap(4)
        assert safe_limit(ceiling) == 4
        result = pull(
            "http://gate-9", core.token, target, client=Network(core).client(),
            max_page_bytes=ceiling,
        )  # fmt: skip
        assert (result.fetched, result.pages) == (12, 3)
        assert target_rows(target) == kiosk_rows(core)
    finally:
        core.store.close()


def test_a_gate_that_does_not_answer_to_the_pulled_name_says_what_to_set(kiosk, tmp_path):
    """An office pulling a gate by a DNS name the gate was never told is its own: the gate's
    DNS-rebinding guard answers 421, and the office must learn which setting lets it in."""
    from starlette.testclient import TestClient

    from checkpoint.server import HostCheck
    from kiosk.hosts import own_host_names

    gate = TestClient(
        HostCheck(kiosk.test_client.app, own_host_names()), base_url="http://gate-01.lan:8000"
    )
    with pytest.raises(PullError, match=r"421: the gate does not answer to gate-01\.lan") as err:
        pull("http://gate-01.lan:8000", kiosk.token, tmp_path / "c.db", client=gate)
    assert "[web] allowed_hosts" in str(err.value)
    assert not (tmp_path / "c.db").exists()
