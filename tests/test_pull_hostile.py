"""The pull against a hostile or broken gate: what one answer can cost the office."""

from __future__ import annotations

import httpx
import pytest
from test_pull import Network, add_events, kiosk_rows, make_kiosk, target_rows

from kiosk.store import EventDraft
from office import pull as pull_module
from office.pull import ChainError, PullError, json_values, page_cap, pull, value_budget

GENESIS = "0" * 64


@pytest.fixture
def kiosk(tmp_path, clock):
    core = make_kiosk(tmp_path / "gate-1.db", "gate-1", clock, 40)
    yield core
    core.store.close()


def _spy_loads(monkeypatch) -> list[int]:
    """The JSON values of every answer the pull parses (``office.pull._loads``)."""
    parsed: list[int] = []
    real = pull_module._loads

    def spy(body):
        parsed.append(json_values(body))
        return real(body)

    monkeypatch.setattr(pull_module, "_loads", spy)
    return parsed


@pytest.mark.slow
def test_a_page_of_empty_containers_is_not_parsed_into_millions_of_objects(
    kiosk, tmp_path, monkeypatch
):
    """``{"events":[[],[],...]}`` within the page cap: 62 MiB of it took 2 GB and 11 s to
    parse (32 bytes of objects per byte), times the collector's concurrent pulls: an
    out-of-memory kill of the office. The answer's values are counted before it is parsed
    (C-speed ``bytes.count``) and a page with more than its budget is not parsed."""
    target = tmp_path / "central.db"
    ceiling = 4 << 20
    pull("http://gate-1", kiosk.token, target, client=Network(kiosk).client())
    add_events(kiosk, 5)
    hostile = {"events": [[]] * 400_000, "next": 1, "last": 10**6}  # 1.6 MB
    net = Network(kiosk, faults=lambda request: lambda page: hostile)
    parsed = _spy_loads(monkeypatch)
    waits: list[float] = []
    with pytest.raises(PullError, match="gate-1"):
        pull(
            "http://gate-1", kiosk.token, target, client=net.client(), sleep=waits.append,
            max_page_bytes=ceiling,
        )  # fmt: skip
    assert json_values(httpx.Response(200, json=hostile).content) > 3 * value_budget(ceiling)
    assert parsed == [] or max(parsed) <= value_budget(ceiling)
    assert waits == []  # not a network hiccup: not tried again
    net.faults = lambda request: None  # the gate mended: the next pull carries on exactly
    again = pull("http://gate-1", kiosk.token, target, client=net.client(), max_page_bytes=ceiling)
    assert again.fetched == 5 and target_rows(target) == kiosk_rows(kiosk)


def test_the_value_budget_always_parses_one_row_of_the_largest_kind():
    """Each value follows one of ``[{,:`` (counted inside strings too: an upper bound no
    larger than the bytes), so a page of one event, at most ``page_cap(1)`` bytes, is within
    any budget, and the smallest ``max_page_bytes`` still pulls one event at a time."""
    for ceiling in (1, page_cap(1), 1 << 20, 64 << 20):
        assert value_budget(ceiling) >= page_cap(1)
    body = b'{"a":[1,{"b":[]}],"c":"x,y:z"}'
    assert json_values(body) >= 7  # the object, a, the list, 1, the object, b, [], c, "..."
    assert json_values(body) <= len(body)


@pytest.mark.slow
def test_a_legal_page_of_many_values_is_asked_again_in_smaller_pages_not_refused(tmp_path, clock):
    """A ``person`` may hold many small values (a vehicle's 12,000 ``occupants`` fit in its
    64 KiB): a page over the value budget is asked again with fewer events, and the pull
    completes with every row."""
    from support import kiosk_api

    core = kiosk_api(tmp_path / "big.db", "gate-9", clock, scopes=("logs:read", "logs:personal"))
    try:
        for i in range(24):
            core.store.append(
                EventDraft(
                    direction="in", decision="pass", pass_id=f"P{i}", household="H1",
                    person={"occupants": ["a"] * 12000},
                )
            )  # fmt: skip
            core.clock.advance(1)
        target = tmp_path / "central.db"
        ceiling = page_cap(16)
        assert value_budget(ceiling) < 16 * 12000  # a page of 16 is over the budget
        result = pull(
            "http://gate-9", core.token, target, client=Network(core).client(),
            max_page_bytes=ceiling,
        )  # fmt: skip
        assert result.fetched == 24 and result.pages >= 3
        assert target_rows(target) == kiosk_rows(core)
    finally:
        core.store.close()


def _bomb(encoding: str, asked: list[str]) -> httpx.Client:
    """A gate answering 32 MiB of spaces compressed ~1,000:1 (32 KiB on the wire)."""
    import gzip
    import zlib

    plain = b" " * (32 << 20)
    packed = gzip.compress(plain) if encoding == "gzip" else zlib.compress(plain)

    def bomb(request: httpx.Request) -> httpx.Response:
        asked.append(request.headers.get("accept-encoding", ""))
        # A stream, as from the network (bytes would be inflated here, by the Response).
        headers = {"Content-Encoding": encoding}
        return httpx.Response(200, content=iter([packed]), headers=headers)

    return httpx.Client(transport=httpx.MockTransport(bomb))


@pytest.mark.slow
@pytest.mark.parametrize("encoding", ["gzip", "deflate"])
def test_a_compressed_answer_is_not_inflated_past_the_cap(tmp_path, encoding):
    """httpx inflates a ``Content-Encoding: gzip`` (or deflate) answer chunk by chunk before
    the page cap sees it: 32 KiB of gzip are 32 MiB of page at once (~1,000:1), however
    small the cap. A kiosk sends plain JSON: the pull asks for ``identity`` and refuses an
    encoded answer unread."""
    import tracemalloc

    asked: list[str] = []
    client = _bomb(encoding, asked)
    waits: list[float] = []
    tracemalloc.start()
    try:
        with pytest.raises(PullError, match="gate-1") as refused:
            pull("http://gate-1", "t", tmp_path / "c.db", client=client, sleep=waits.append)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 4 << 20, peak
    assert encoding in str(refused.value)
    assert asked == ["identity"] and waits == []


@pytest.mark.slow
def test_a_gate_report_compressed_is_not_inflated_past_its_cap():
    """The collector's ask for a gate's daily report (``office.gatereports``, 2 MiB at most)
    inflated the same way."""
    import tracemalloc

    from office.gatereports import fetch_report

    asked: list[str] = []
    client = _bomb("gzip", asked)
    tracemalloc.start()
    try:
        with pytest.raises(PullError, match="gate-1.*gzip"):
            fetch_report(client, "http://gate-1", "t")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 4 << 20, peak
    assert asked == ["identity"]


@pytest.mark.slow
def test_a_lists_bundle_compressed_is_not_inflated_past_its_cap(tmp_path, clock):
    """A gate's list sync read the office's bundle by a loop of its own, not the pull's
    bounded read: it asked for gzip (httpx's default) and inflated the answer chunk by chunk
    before its cap saw it, where the pull, the peers and the gate reports ask for plain JSON
    and refuse an encoded answer unread. It reads through the same one now."""
    import tracemalloc

    from kiosk import lists as lists_mod
    from kiosk.lists import ListStore
    from kiosk.passes import TrustList, new_key_pair
    from kiosk.store import EventLog
    from office.listsync import ListSync

    new_key_pair(tmp_path / "office", "office")
    store = EventLog(tmp_path / "gate.db", "gate-1", clock, "NORMAL", [lists_mod.MIGRATIONS])
    store.open()
    asked: list[str] = []
    try:
        lists = ListStore(store, clock)
        lists.load()
        trust = TrustList.from_dir(tmp_path / "office")
        sync = ListSync(
            lists, trust, "http://office/lists/bundle", clock, client=_bomb("gzip", asked)
        )
        tracemalloc.start()
        try:
            result = sync.check()
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
    finally:
        store.close()
    assert result.outcome == "error" and "gzip" in result.message
    assert peak < 4 << 20, peak
    assert asked == ["identity"]


@pytest.mark.parametrize("status", [401, 403, 404, 422])
def test_an_error_answer_of_deep_nesting_is_a_pull_error_not_a_recursion_error(tmp_path, status):
    """The message of an error answer was parsed by ``json.loads``, which raises
    ``RecursionError`` (not ``ValueError``) on 64 KiB of ``[``: a traceback from ``kiosk
    pull``, and "pull failed unexpectedly" with one in the collector's log."""
    deep = b"[" * 65536
    client = httpx.Client(
        transport=httpx.MockTransport(lambda request: httpx.Response(status, content=deep))
    )
    with pytest.raises(PullError, match=rf"gate-1.*{status}"):
        pull("http://gate-1", "t", tmp_path / "c.db", client=client, sleep=lambda s: None)


@pytest.mark.parametrize("status", [200, 500])
def test_a_gate_report_of_deep_nesting_is_a_pull_error_not_a_recursion_error(status):
    """The same in the collector's ask for a gate's report: the ``RecursionError`` went past
    the report's error handling (``report_error`` never said it) into the pull's: "pull failed
    unexpectedly" and a traceback in the collector's log."""
    from office.gatereports import fetch_report

    deep = b"[" * 60000  # within the value budget: parsed
    client = httpx.Client(
        transport=httpx.MockTransport(lambda request: httpx.Response(status, content=deep))
    )
    with pytest.raises(PullError, match="gate-1"):
        fetch_report(client, "http://gate-1", "t")


def test_a_gate_report_of_empty_containers_is_refused_before_it_is_parsed():
    """A gate's daily report is ~2 KB of ~260 values; its 2 MiB cap of ``[],[],...`` was
    parsed into ~45 MB of lists, at each of the collector's concurrent pulls (64: ~3 GB)."""
    import tracemalloc

    from office.gatereports import fetch_report

    body = b"[" + b",".join([b"[]"] * ((2 << 20) // 3 - 1)) + b"]"
    client = httpx.Client(
        transport=httpx.MockTransport(lambda request: httpx.Response(200, content=iter([body])))
    )
    tracemalloc.start()
    try:
        with pytest.raises(PullError, match="gate-1.*values"):
            fetch_report(client, "http://gate-1", "t")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 3 * len(body), peak  # the body (and its copy), not its parse


@pytest.mark.parametrize(
    "kiosk_id",
    ["x" * 100_000, "gate-1\u202e1-etag", "gate 1\r\nX-Injected: 1", "", "../gate-2", "\x00"],
)
def test_a_gate_naming_itself_with_what_no_kiosk_id_can_be_is_refused(tmp_path, kiosk_id):
    """The office took any string a gate's first event gave as its ``kiosk_id``: 100 KB, a
    right-to-left override, control characters, into every central row, the status page,
    /metrics and the district report. A kiosk's id is 1 to 64 of ``A-Z a-z 0-9 . _ -``
    (``site.kiosk_id``)."""
    from kiosk.export import COLUMNS
    from kiosk.hashchain import event_hash

    row = dict.fromkeys(COLUMNS) | {"kiosk_id": kiosk_id, "seq": 1, "prev_hash": GENESIS}
    row |= {"mono_ns": 1, "reasons": [], "flags": []}
    row["hash"] = event_hash(row)  # a chain is no secret: anyone can make one
    client = httpx.Client(
        transport=httpx.MockTransport(
            lambda request: httpx.Response(200, json={"events": [row], "last": 1})
        )
    )
    target = tmp_path / "c.db"
    with pytest.raises(PullError, match=r"gate-1.*not a kiosk id"):
        pull("http://gate-1", "t", target, client=client)
    assert not target.exists()


def test_the_kiosk_id_the_office_accepts_is_the_one_a_kiosk_can_have():
    from pydantic import ValidationError

    from kiosk.config.site import SiteConfig
    from office.pull import is_kiosk_id

    for candidate in ("gate-1", "A.b_c-9", "x" * 64, "x" * 65, "", "gate 1", "gáte", "a/b"):
        try:
            SiteConfig(kiosk_id=candidate)
            valid = True
        except ValidationError:
            valid = False
        assert is_kiosk_id(candidate) is valid, candidate


def test_a_second_gate_with_the_same_kiosk_id_is_named_as_the_likely_cause(kiosk, tmp_path, clock):
    """A new Pi set up from a copy of a gate's config answers as that gate's id. With fewer
    events than the copy holds, the refusal blamed only a replaced or restored log ("its log
    was replaced or restored from a backup"): the clerk went looking for a backup, not for
    the second gate; the longer case already named both causes."""
    target = tmp_path / "central.db"
    pull("http://gate-1", kiosk.token, target, client=Network(kiosk).client())
    copy = make_kiosk(tmp_path / "copy.db", "gate-1", clock, 12)
    try:
        with pytest.raises(ChainError, match="same site.kiosk_id") as refused:
            pull("http://gate-1", copy.token, target, client=Network(copy).client())
    finally:
        copy.store.close()
    assert "seq 40: the kiosk's log ends at seq 12" in str(refused.value)


def _forged(**fields) -> httpx.Client:
    """A gate answering one row whose hash agrees with it (a chain is no secret)."""
    from kiosk.export import COLUMNS
    from kiosk.hashchain import event_hash

    row = dict.fromkeys(COLUMNS) | {"kiosk_id": "gate-1", "seq": 1, "prev_hash": GENESIS}
    row |= {"mono_ns": 1, "reasons": [], "flags": [], "ts": "2026-03-02T08:30:00+00:00"}
    row |= {"id": "e1", "decision": "pass"} | fields
    row["hash"] = event_hash(row)
    return httpx.Client(
        transport=httpx.MockTransport(
            lambda request: httpx.Response(200, json={"events": [row], "last": 1})
        )
    )


@pytest.mark.parametrize(
    ("fields", "named"),
    [
        ({"mono_ns": 2**64 - 1}, "mono_ns"),
        ({"temp_c": 2**64 - 1}, "temp_c"),
        ({"holder": {"a": 1}}, "holder"),
        ({"direction": [1]}, "direction"),
    ],
)
def test_a_forged_row_a_file_cannot_hold_is_a_pull_error_not_a_traceback(tmp_path, fields, named):
    """A row whose values SQLite cannot bind (an integer past 64 bits: ``OverflowError``; an
    object where a text goes: ``sqlite3.ProgrammingError``) escaped the pull as a traceback
    from ``kiosk pull``. The row is the gate's error: a ``PullError`` naming it, nothing
    written."""
    target = tmp_path / "c.db"
    with pytest.raises(PullError, match=rf"gate-1.*seq 1: {named}"):
        pull("http://gate-1", "t", target, client=_forged(**fields))
    assert not target.exists()


@pytest.mark.parametrize("status", [401, 404, 422, 503])
@pytest.mark.parametrize(
    "detail",
    [
        "\x1b[1A\x1b[2Kkiosk pull: gate-1: 40 events, chain verified",  # erases its own line
        "forbidden\u202e1-etag",  # a right-to-left override
        "bad\rtoken\x00",
    ],
)
def test_an_error_answer_whose_detail_holds_control_characters_is_said_escaped(
    tmp_path, status, detail
):
    """Anything at a gate's address (the LAN is hostile) could answer an error whose
    ``detail`` held terminal escapes: 'kiosk pull: ...' printed them raw on the office's
    terminal (a line that erases itself and shows 'chain verified'), and the collector's
    page, the list sync's status and the journal showed a right-to-left override reordering
    the words. The detail is said with every character nobody sees escaped, as a Location."""
    client = httpx.Client(
        transport=httpx.MockTransport(
            lambda request: httpx.Response(status, json={"detail": detail})
        )
    )
    with pytest.raises(PullError) as refused:
        pull("http://gate-1", "t", tmp_path / "c.db", client=client, sleep=lambda s: None)
    said = str(refused.value)
    assert said.isprintable(), said
    assert repr(detail)[1:-1] in said  # still told, escaped
