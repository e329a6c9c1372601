"""A gate of the compound that stops answering, as the guard meets it on the live page: a
device alarm naming the gate and since when its outings are unknown here, said once, gone
when it answers again (``checkpoint.peers``, ``kiosk.alarms.peer_alarms``)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from types import SimpleNamespace

import httpx
import pytest
from guard_support import close_core, make_app, make_core, signed_in

from checkpoint.peers import PeerSync
from kiosk.clock import FakeClock
from kiosk.config import parse_config

NOW = datetime(2026, 3, 2, 2, 0, tzinfo=UTC)  # 10:00 in Shanghai
KEY = "device:peer:gate-north"


class North:
    """The peer gate, as this gate's client meets it: up (an empty page) or down."""

    def __init__(self) -> None:
        self.up = True

    def __call__(self, request: httpx.Request) -> httpx.Response:
        if not self.up:
            raise httpx.ConnectError("no route to host", request=request)
        body = {"kiosk_id": "gate-north", "passages": [], "next": 0, "last": 0}
        return httpx.Response(200, json=body)


@pytest.fixture
def clock():
    return FakeClock(start=NOW)


@pytest.fixture
def gate(tmp_path, clock, monkeypatch):
    monkeypatch.setenv("PEER_TOKEN_GATE_NORTH", "kt_00000000_" + "a" * 43)
    peer = {"url": "https://gate-north.lan", "kiosk_id": "gate-north"}
    config = parse_config(
        {
            "site": {"kiosk_id": "gate-south", "timezone": "Asia/Shanghai"},
            "compound": {"peers": [peer | {"token_env": "PEER_TOKEN_GATE_NORTH"}]},
        }
    )
    (tmp_path / "data").mkdir()
    core = make_core(tmp_path / "data", clock, monkeypatch, config)
    north = North()
    client = httpx.Client(transport=httpx.MockTransport(north))
    sync = PeerSync(core, config.compound, client=client)
    core.peers = sync
    yield core, sync, north
    sync.stop(0)
    close_core(core)


def peer_cards(client, lang: str = "en") -> list[dict]:
    alarms = client.get(f"/guard/api/feed?lang={lang}").json()["alarms"]
    return [a for a in alarms if a["key"] == KEY]


def test_a_peer_gone_stale_is_a_device_alarm_on_the_live_page_until_it_answers(gate, clock):
    core, sync, north = gate
    told = core.bus.subscribe(name="test-peers")
    with signed_in(make_app(core)) as guard:
        sync.poll()
        assert peer_cards(guard) == []
        north.up = False
        clock.advance(130)  # past stale_after_s (120) since it was last heard, at 10:00
        sync.poll()
        [card] = peer_cards(guard)
        assert card["kind"] == "device" and card["title"] == "Device fault"
        assert card["detail"] == (
            "Passages at compound gate gate-north unknown since 10:00:"
            " the outing quota and passback hold at this gate only"
        )
        assert "network" in card["todo"]
        [zh] = peer_cards(guard, "zh-CN")
        assert zh["detail"] == (
            "本小区闸口 gate-north 的出行记录自 10:00 起未知：出行配额和防回传只在本门有效"
        )
        page = guard.get("/guard?lang=en").text
        assert f'data-key="{KEY}"' in page and "unknown since 10:00" in page
        sync.poll()  # still down: no second word of it
        north.up = True
        sync.poll()
        assert peer_cards(guard) == []
    # The live stream is woken by each change (once down, once back), not by every poll.
    said = []
    while (message := told.get_nowait()) is not None:
        if message.get("type") == "peers":
            said.append(message["stale"])
    assert said == [["gate-north"], []]


def test_the_live_stream_draws_the_alarms_again_when_a_peer_changes(gate):
    import asyncio

    from ui.guard import live
    from ui.guard.deps import Guard
    from ui.views import ScreenTracker, current_state

    core, sync, north = gate
    guard = SimpleNamespace(is_admin=False)  # the session: only its role is read here
    stream = live.FeedStream(Guard.build(core), guard, "en", 0)  # type: ignore[arg-type]
    tracker = ScreenTracker(current_state(core))
    north.up = False
    sync.poll()  # never heard, and the first ask failed: its outings are unknown here
    lines = asyncio.run(stream.on_message({"type": "peers", "stale": []}, tracker))
    assert len(lines) == 1 and lines[0].startswith("event: alarms")
    cards = json.loads(lines[0].split("data: ", 1)[1])
    assert [c["key"] for c in cards] == [KEY]


def test_a_restart_raises_no_alarm_before_the_first_ask_of_a_peer_ends(gate, clock):
    """Every restart showed the peer's card (and sounded the siren) until the first poll came
    back: a peer not asked yet is ``starting``; a failed ask, or silence past
    ``stale_after_s`` since the start, is an outage."""
    core, sync, north = gate
    with signed_in(make_app(core)) as guard:
        assert [p["state"] for p in sync.status()] == ["starting"]
        assert peer_cards(guard) == []
        clock.advance(121)  # no ask has ended in stale_after_s (a thread held up)
        assert [p["state"] for p in sync.status()] == ["stale"]
        assert [c["key"] for c in peer_cards(guard)] == [KEY]


def test_a_peer_refused_as_forged_says_so_on_its_card():
    """The card of a gate whose answers were refused as forged told the guard to check the
    network, as for an outage: it says someone may be posing as that gate."""
    from zoneinfo import ZoneInfo

    from kiosk.alarms import peer_alarms
    from ui.guard.display import alarm_view

    peers = [{"kiosk_id": "gate-north", "state": "forged", "stale_since": NOW.isoformat()}]
    [alarm] = peer_alarms(peers)
    tz = ZoneInfo("Asia/Shanghai")
    card = alarm_view(alarm, "en", tz, frozenset())
    assert "not signed by its key" in card["detail"] and "10:00" in card["detail"]
    assert "posing as" in card["todo"] and "Check the network" not in card["todo"]
    zh = alarm_view(alarm, "zh-CN", tz, frozenset())
    assert "签名" in zh["detail"] and "冒充" in zh["todo"]
    # An outage's card is as before.
    [stale] = peer_alarms([peers[0] | {"state": "stale"}])
    assert "unknown since 10:00" in alarm_view(stale, "en", tz, frozenset())["detail"]
