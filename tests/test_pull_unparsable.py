"""A gate's answer the pull cannot parse. A complete answer that is no JSON (a lone surrogate
orjson refuses, a trailing comma) is not a network problem: it was tried 8 times over about a
minute and ended in "giving up (JSONDecodeError)", naming neither the page nor the fault. It is
refused at once, naming the gate, the page and what was wrong, what was pulled before it kept;
a body cut short (the JSON ends before its end) is asked once more."""

from __future__ import annotations

import httpx
import pytest
from test_pull import Network, kiosk_rows, make_kiosk, target_rows

from office.pull import Puller, PullError


@pytest.fixture
def kiosk(tmp_path, clock):
    core = make_kiosk(tmp_path / "gate-1.db", "gate-1", clock, 12)
    yield core
    core.store.close()


def spoiled(net: Network, after: str, spoil, times: int = 1_000):
    """A transport answering as ``net``, but the page after seq ``after`` spoiled by
    ``spoil(body)`` the first ``times`` times it is asked for."""
    asked: list[str] = []

    def handle(request: httpx.Request) -> httpx.Response:
        response = net(request)
        here = request.url.params.get("after")
        asked.append(here or "")
        if here == after and asked.count(after) <= times:
            return httpx.Response(200, content=spoil(response.content))
        return response

    return httpx.Client(transport=httpx.MockTransport(handle)), asked


def lone_surrogate(body: bytes) -> bytes:
    return body.replace(b'"holder":"L."', b'"holder":"\\ud800"', 1)


def test_a_complete_answer_that_is_no_json_is_refused_at_once_naming_the_page(kiosk, tmp_path):
    client, asked = spoiled(Network(kiosk), "8", lone_surrogate)
    waits: list[float] = []
    target = tmp_path / "central.db"
    with (
        Puller(target, client=client, page_size=4, attempts=8, sleep=waits.append) as puller,
        pytest.raises(PullError) as caught,
    ):
        puller.pull("http://gate-1", kiosk.token)
    message = str(caught.value)
    # Before: 8 tries, 61.5 s of backoff, "giving up after 8 tries (JSONDecodeError)".
    assert asked.count("8") == 1 and waits == []
    assert "http://gate-1/api/v1/events" in message
    assert "the page after seq 8" in message
    assert "surrogate" in message and "not tried again" in message
    assert "giving up" not in message
    # The pages before it are kept: seq 1-8.
    assert target_rows(target) == kiosk_rows(kiosk)[:8]


def test_a_body_cut_short_is_asked_once_more_and_then_pulled(kiosk, tmp_path):
    client, asked = spoiled(Network(kiosk), "4", lambda body: body[: len(body) // 2], times=1)
    waits: list[float] = []
    target = tmp_path / "central.db"
    with Puller(target, client=client, page_size=4, attempts=8, sleep=waits.append) as puller:
        result = puller.pull("http://gate-1", kiosk.token)
    assert asked.count("4") == 2 and len(waits) == 1
    assert result.last_seq == 12 and target_rows(target) == kiosk_rows(kiosk)


def test_a_body_cut_short_twice_is_refused_saying_so(kiosk, tmp_path):
    client, asked = spoiled(Network(kiosk), "4", lambda body: body[: len(body) // 2])
    waits: list[float] = []
    target = tmp_path / "central.db"
    with (
        Puller(target, client=client, page_size=4, attempts=8, sleep=waits.append) as puller,
        pytest.raises(PullError) as caught,
    ):
        puller.pull("http://gate-1", kiosk.token)
    message = str(caught.value)
    assert asked.count("4") == 2 and len(waits) == 1
    assert "the page after seq 4" in message and "cut short" in message
    assert target_rows(target) == kiosk_rows(kiosk)[:4]


def test_the_cli_names_the_gate_and_goes_on_to_the_next(kiosk, tmp_path, clock, capsys):
    other = make_kiosk(tmp_path / "gate-2.db", "gate-2", clock, 3)
    net = Network(kiosk, other)
    client, _ = spoiled(
        net, "0", lambda body: body.replace(b"}", b",}", 1) if b"gate-1" in body else body
    )
    target = tmp_path / "central.db"
    with Puller(target, client=client, attempts=8, sleep=lambda s: None) as puller:
        with pytest.raises(PullError, match="trailing comma"):
            puller.pull("http://gate-1", kiosk.token)
        assert puller.pull("http://gate-2", other.token).last_seq == 3
    other.store.close()
