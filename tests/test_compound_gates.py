"""A compound with two gates, each its own kiosk: the outing quota and the anti-passback hold
at both (``kiosk.peers``, ``checkpoint.peers``, docs/operations.md "Several gates").

Two real kiosks built by the composition root, each with its real app; the south gate's
``PeerSync`` asks the north gate's app through a TestClient (no socket), on one fake clock.
A passage at a gate is decided by the real policy on that gate's history and committed to
its event log, then recorded as the engine does after a commit.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from fastapi.testclient import TestClient

from checkpoint.app import build_core
from checkpoint.peers import MAX_ANSWER_BYTES, PeerSync
from kiosk.clock import FakeClock
from kiosk.config import ConfigError, parse_config
from kiosk.config.thermometer import ThermometryConfig
from kiosk.passes import TrustList, issue_pass
from kiosk.peers import MAX_AHEAD, PEER_SCOPE
from kiosk.policy import PassageInputs, PolicyState, decide
from kiosk.store import EventDraft
from kiosk.thermometry import Temperature
from ui.app import create_app

TZ = ZoneInfo("Asia/Shanghai")
NOW = datetime(2026, 3, 2, 2, 0, tzinfo=UTC)  # 10:00 in Shanghai
KEY = Ed25519PrivateKey.from_private_bytes(b"\x51" * 32)
TRUST = TrustList([("office", KEY.public_key())])
NORMAL = Temperature("ok", 36.6, 34.6, 22.0, None)
POLICY = {
    "quota": {"enabled": True, "exits": 1, "period_days": 2},
    "passback": {"enabled": True, "window_min": 5, "mode": "hard"},
}
NORTH_URL = "http://testserver"


class Gate:
    """One kiosk of the compound: its core (composition root), app and peer sync."""

    def __init__(
        self, tmp_path, name: str, clock: FakeClock, peers=(), web=None, **compound
    ) -> None:
        self.config = parse_config(
            {
                "site": {"kiosk_id": name},
                "policy": POLICY,
                "compound": {"peers": list(peers), **compound},
                "web": web or {},
            }
        )
        self.dir = tmp_path / name
        self.clock = clock
        self.core = build_core(self.config, self.dir, clock)
        self.app = create_app(self.core)
        self.sync: PeerSync | None = None

    def peer_of(self, other: Gate, monkeypatch, *, transport=None) -> PeerSync:
        """This gate's sync asking ``other`` (its app in process) with a passages:peer token."""
        me = self.config.site.kiosk_id  # a token made for this gate, as operations.md says
        _, token = other.core.tokens.create([PEER_SCOPE], "gate peer", peer=me)
        monkeypatch.setenv(env_name(other.core.config.site.kiosk_id), token)
        client = TestClient(other.app) if transport is None else httpx.Client(transport=transport)
        self.sync = PeerSync(self.core, self.config.compound, client=client)
        self.core.peers = self.sync
        return self.sync

    def passage(self, code: str, direction: str = "out") -> dict:
        """Decided by the real policy on this gate's history, committed and recorded."""
        inputs = PassageInputs(direction, code, NORMAL, False, False, direction_trusted=True)
        state = PolicyState(TRUST, self.core.lists.current, self.core.history, None)
        now = self.clock.now()
        decision = decide(inputs, state, now, self.config.policy, ThermometryConfig(), TZ)
        pass_ = decision.pass_
        event = self.core.store.append(
            EventDraft(
                direction=direction,
                decision=decision.decision,
                reasons=tuple(decision.reasons),
                pass_id=pass_.pass_id if pass_ else None,
                household=pass_.household if pass_ else None,
                flags=tuple(decision.flags),
            )
        )
        self.core.history.record(event)
        return {"decision": decision.decision, "reasons": list(decision.reasons)}

    def close(self) -> None:
        """Its sync's threads (if started) joined before its store is closed."""
        if self.sync is not None:
            self.sync.stop(5)
        self.core.close()


def env_name(kiosk_id: str) -> str:
    return "PEER_TOKEN_" + kiosk_id.upper().replace("-", "_")


def peer_entry(name: str) -> dict:
    return {"url": NORTH_URL, "kiosk_id": name, "token_env": env_name(name)}


@pytest.fixture
def clock():
    return FakeClock(start=NOW)


@pytest.fixture
def north(tmp_path, clock):
    gate = Gate(tmp_path, "gate-north", clock)
    yield gate
    gate.close()


@pytest.fixture
def south(tmp_path, clock):
    gate = Gate(tmp_path, "gate-south", clock, [peer_entry("gate-north")])
    yield gate
    gate.close()


@contextlib.contextmanager
def paired(tmp_path, clock, monkeypatch) -> Iterator[tuple[Gate, Gate]]:
    """North and south, each a peer of the other (no key pinned), polled only when a test
    says so."""
    north = Gate(tmp_path, "gate-north", clock, [peer_entry("gate-south")], poll_s=3600)
    south = Gate(tmp_path, "gate-south", clock, [peer_entry("gate-north")], poll_s=3600)
    try:
        north.peer_of(south, monkeypatch)
        south.peer_of(north, monkeypatch)
        yield north, south
    finally:
        south.close()
        north.close()


def resident(household: str = "1-101", holder: str = "Wang L") -> str:
    code, _ = issue_pass(KEY, household, holder, "resident", 30, now=NOW - timedelta(days=1))
    return code


# --- the rules across the gates --------------------------------------------------------------


def test_an_outing_at_the_north_gate_uses_the_households_quota_at_the_south_gate(
    north, south, clock, monkeypatch
):
    sync = south.peer_of(north, monkeypatch)
    assert north.passage(resident(holder="Wang L"))["decision"] == "pass"
    clock.advance(3600)
    sync.poll()
    # Another of the household, at the other gate, the same day: over "one every two days".
    again = south.passage(resident(holder="Wang M"))
    assert again == {"decision": "deny", "reasons": ["quota_exceeded"]}
    # Without the peer (today's behaviour) the south gate would have let them out.
    assert south.passage(resident("2-202"))["decision"] == "pass"


def test_a_copied_card_used_at_both_gates_within_the_window_is_a_passback(
    north, south, clock, monkeypatch
):
    sync = south.peer_of(north, monkeypatch)
    card = resident()
    assert north.passage(card, "in")["decision"] == "pass"
    clock.advance(60)
    sync.poll()
    assert south.passage(card, "in") == {"decision": "deny", "reasons": ["passback"]}


def test_the_peers_rows_survive_a_restart_of_the_gate(tmp_path, north, clock, monkeypatch):
    south = Gate(tmp_path, "gate-south", clock, [peer_entry("gate-north")])
    try:
        south.peer_of(north, monkeypatch)
        north.passage(resident())
        clock.advance(60)
        south.sync.poll()
    finally:
        south.close()
    restarted = Gate(tmp_path, "gate-south", clock, [peer_entry("gate-north")])
    try:
        assert restarted.core.runner._load_history() == 1  # as the runner does at start
        assert restarted.core.history.exits_in_period("1-101", clock.now(), 2) == 1
        clock.advance(3600)
        assert restarted.passage(resident(holder="Wang M"))["reasons"] == ["quota_exceeded"]
    finally:
        restarted.close()


def test_a_page_fetched_twice_is_held_once(north, south, clock, monkeypatch):
    sync = south.peer_of(north, monkeypatch)
    north.passage(resident())
    sync.poll()
    south.core.store.submit(lambda db: db.execute("UPDATE peer_cursors SET after = 0"))
    sync.poll()
    assert sync.ledger.held() == {"gate-north": 1}
    assert south.core.history.exits_in_period("1-101", clock.now(), 2) == 1


# --- a peer down, then back ---------------------------------------------------------------------


def test_a_peer_down_is_shown_stale_and_its_outings_come_in_when_it_is_back(
    north, south, clock, monkeypatch
):
    way = Switch(north)
    way.up = False
    sync = south.peer_of(north, monkeypatch, transport=httpx.MockTransport(way))
    for household in ("1-101", "2-202", "3-303"):
        north.passage(resident(household))
    sync.poll()
    [peer] = south.core.health()["peers"]
    assert peer["state"] == "stale" and peer["last_success"] is None
    assert peer["stale_since"] == NOW.isoformat() and "ConnectError" in peer["last_error"]
    # The gate goes on deciding on what it holds: the rule holds at this gate only.
    assert south.passage(resident("1-101", "Wang M"))["decision"] == "pass"
    clock.advance(600)
    way.up = True
    sync.poll()
    [peer] = south.core.health()["peers"]
    assert peer["state"] == "ok" and peer["rows_held"] == 3 and peer["last_error"] is None
    assert south.passage(resident("2-202", "Li"))["reasons"] == ["quota_exceeded"]
    clock.advance(south.config.compound.stale_after_s + 1)
    [peer] = south.core.health()["peers"]
    assert (
        peer["state"] == "stale"
        and peer["stale_since"] == (NOW + timedelta(seconds=600)).isoformat()
    )


def test_a_backlog_comes_in_over_pages(north, south, clock, monkeypatch):
    import checkpoint.peers as peers_mod

    monkeypatch.setattr(peers_mod, "PAGE_ROWS", 2)
    sync = south.peer_of(north, monkeypatch)
    for i in range(5):
        north.passage(resident(f"{i}-1"))
    assert sync.fetch(south.config.compound.peers[0]) == 5
    assert sync.ledger.held() == {"gate-north": 5}


def test_the_guard_sees_each_peer_on_the_devices_page(north, south, clock, monkeypatch):
    from ui.guard.display import health_rows

    sync = south.peer_of(north, monkeypatch)
    rows = health_rows(south.core.health(), "en", TZ)
    [row] = [r for r in rows if r["device"] == "compound gate gate-north"]
    assert row["state"] == "ok" and "for the first time" in row["detail"]  # not asked yet
    sync.poll()
    rows = health_rows(south.core.health(), "en", TZ)
    [row] = [r for r in rows if r["device"] == "compound gate gate-north"]
    assert row["state"] == "ok" and "0 passages held" in row["detail"]
    clock.advance(3600)
    rows = health_rows(south.core.health(), "en", TZ)
    [row] = [r for r in rows if r["device"] == "compound gate gate-north"]
    assert row["state"] == "degraded" and "hold at this gate only" in row["detail"]


def test_a_peer_whose_clock_is_far_behind_is_shown_to_the_guard_and_logged_once(
    tmp_path, south, clock, monkeypatch, caplog
):
    from ui.guard.display import health_rows

    # The north gate's clock is 3 hours slow: its outing at 07:00 by it was at 10:00 here.
    north = Gate(tmp_path, "gate-north", FakeClock(start=NOW - timedelta(hours=3)))
    try:
        sync = south.peer_of(north, monkeypatch)
        north.passage(resident())
        assert north.core.store.events()[0]["ts"].startswith("2026-03-01T23:00")
        with caplog.at_level("INFO", logger="checkpoint.peers"):
            sync.poll()
            sync.poll()
        [peer] = south.core.health()["peers"]
        assert peer["state"] == "ok" and peer["clock_skew_s"] == -3 * 3600
        said = [r.getMessage() for r in caplog.records if "clock" in r.getMessage()]
        assert said == [
            "compound: peer gate-north's clock is 3 h 0 min behind this gate's: its passages"
            " are kept as it stamps them (fix its NTP)"
        ]
        rows = health_rows(south.core.health(), "en", TZ)
        [row] = [r for r in rows if r["device"] == "compound gate gate-north"]
        assert row["state"] == "degraded"
        assert "clock is 3 h 0 min behind" in row["detail"] and "NTP" in row["detail"]
        # Its rows are not "corrected": kept at the time it stamped them.
        [held] = south.core.store.reader().execute("SELECT ts FROM peer_passages").fetchall()
        assert held[0].startswith("2026-03-01T23:00")
    finally:
        north.close()


def test_a_peer_whose_clock_is_within_the_bound_is_not_flagged(south, north, clock, monkeypatch):
    sync = south.peer_of(north, monkeypatch)
    sync.poll()
    [peer] = south.core.health()["peers"]
    assert peer["clock_skew_s"] == 0 and not peer["clock_skewed"]


# --- a hostile peer ------------------------------------------------------------


def hostile(south, monkeypatch, body: bytes | str, status: int = 200, **extra) -> PeerSync:
    content = body.encode() if isinstance(body, str) else body

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(status, stream=httpx.ByteStream(content), **extra)

    monkeypatch.setenv("PEER_TOKEN_GATE_NORTH", "kt_00000000_" + "a" * 43)
    sync = PeerSync(
        south.core,
        south.config.compound,
        client=httpx.Client(transport=httpx.MockTransport(handler)),
    )
    south.core.peers = sync
    return sync


def row(**over) -> dict:
    base = {
        "kiosk_id": "gate-north",
        "seq": 1,
        "pass_id": "p1",
        "household": "1-101",
        "direction": "out",
        "decision": "pass",
        "ts": NOW.isoformat(),
        "flags": [],
    }
    return base | over


def page(*rows, kiosk_id="gate-north", next_=None, last=None) -> str:
    seqs = [r["seq"] for r in rows] or [0]
    return json.dumps(
        {
            "kiosk_id": kiosk_id,
            "passages": list(rows),
            "next": max(seqs) if next_ is None else next_,
            "last": max(seqs) if last is None else last,
        }
    )


@pytest.mark.parametrize(
    ("body", "said"),
    [
        (page(row(), kiosk_id="gate-east"), "answers as kiosk 'gate-east'"),
        (page(row(kiosk_id="gate-east")), "forged row"),
        (page(row(seq=2), row(seq=1)), "does not follow"),
        (page(row(household="x" * 10000)), "not text of 1 to 64"),
        # A lone surrogate ("\ud800" in the JSON) is no text SQLite can hold: it was taken,
        # then failed the write, said as this gate's event log failing, with a traceback.
        (page(row(household="\ud800")), "not text of 1 to 64"),
        (page(row(pass_id="P\udcff")), "not text of 1 to 128"),
        (page(row(direction="sideways")), "not 'in' or 'out'"),
        (page(row(decision="deny")), "not a passing decision"),
        # A list or object for the decision raised TypeError (unhashable) out of the page's
        # check: said as this gate's event log failing, with a traceback in the journal.
        (page(row(decision=["pass"])), "decision is a JSON list"),
        (page(row(decision={"pass": 1})), "decision is a JSON object"),
        (page(row(ts="yesterday")), "not an ISO 8601 time"),
        (page(row(ts="2026-03-02T10:00:00")), "without its UTC offset"),
        (page(row(flags=["x"] * 100)), "not a short list"),
        (page(row(seq=-1)), "not a seq"),
        (page(row(extra=1)), "with a field 'extra'"),
        (page(row(), next_=10**6, last=1), "next is 1000000"),
        ("[" * 100000, "more values than a page"),
        ("x" * (MAX_ANSWER_BYTES + 1), "larger than"),
        ("not json", "not JSON"),
        (json.dumps([1, 2]), "not a JSON object"),
    ],
)
def test_a_hostile_answer_is_refused_whole_and_the_gate_goes_on(south, monkeypatch, body, said):
    sync = hostile(south, monkeypatch, body)
    sync.poll()
    [peer] = south.core.health()["peers"]
    assert said in peer["last_error"] and peer["state"] == "stale"
    assert sync.ledger.held() == {} and sync.ledger.cursor("gate-north") == 0
    assert len(south.core.history) == 0


def test_a_compressed_or_endless_answer_is_not_read(south, monkeypatch):
    sync = hostile(
        south, monkeypatch, b"\x1f\x8b" + b"\0" * 100, headers={"Content-Encoding": "gzip"}
    )
    sync.poll()
    assert "encoded as 'gzip'" in south.core.health()["peers"][0]["last_error"]
    sync = hostile(south, monkeypatch, b"{}", headers={"Content-Length": str(10**9)})
    sync.poll()
    assert "larger than" in south.core.health()["peers"][0]["last_error"]


def test_a_peers_clock_far_ahead_is_a_clock_that_was_wrong_not_a_passage(south, clock, monkeypatch):
    ahead = (NOW + MAX_AHEAD + timedelta(minutes=1)).isoformat()
    near = (NOW + timedelta(minutes=1)).isoformat()
    sync = hostile(
        south, monkeypatch, page(row(seq=1, ts=ahead), row(seq=2, ts=near, household="2-202"))
    )
    sync.poll()
    [peer] = south.core.health()["peers"]
    assert peer["ahead_dropped"] == 1 and peer["rows_held"] == 1 and peer["state"] == "ok"
    assert south.core.history.exits_in_period("1-101", clock.now(), 2) == 0
    assert south.core.history.exits_in_period("2-202", clock.now(), 2) == 1
    assert sync.ledger.cursor("gate-north") == 2


def test_a_peers_row_with_an_invisible_character_is_refused_counted_and_shown(
    south, clock, monkeypatch
):
    from ui.guard.display import peer_words

    bad = row(seq=1, household="1-101\u200b")
    sync = hostile(south, monkeypatch, page(bad, row(seq=2, household="2-202")))
    sync.poll()
    [peer] = south.core.health()["peers"]
    assert peer["rows_refused"] == 1 and peer["rows_held"] == 1
    assert south.core.history.exits_in_period("2-202", clock.now(), 2) == 1
    assert sync.ledger.cursor("gate-north") == 2
    _, state, words = peer_words(peer, "en", TZ)
    assert state == "degraded" and "1 of its passages refused" in words and "\u200b" not in words
    assert "拒收" in peer_words(peer, "zh-CN", TZ)[2]


def test_a_peer_whose_log_starts_again_is_fetched_from_its_start(south, monkeypatch):
    sync = hostile(south, monkeypatch, page(row(seq=1), last=1))
    south.core.store.submit(
        lambda db: db.execute(
            "INSERT INTO peer_cursors (kiosk_id, after, url, updated_at)"
            " VALUES ('gate-north', 50, 'http://testserver', 'x')"
        )
    )
    sync.poll()
    assert sync.ledger.cursor("gate-north") == 1 and sync.ledger.held() == {"gate-north": 1}


# --- the config ------------------------------------------------------------


def test_no_peers_is_a_gate_on_its_own(north):
    assert north.core.config.compound.peers == ()
    assert PeerSync.from_config(north.core) is None
    assert "peers" not in north.core.health()


@pytest.mark.parametrize(
    ("peers", "said"),
    [
        ([{"url": "http://a.lan", "kiosk_id": "gate-1", "token_env": "T"}], "this kiosk's own"),
        ([{"url": "http://a.lan", "kiosk_id": "b"}], "exactly one of token_env or token_file"),
        ([{"url": "http://a.lan", "kiosk_id": "b", "token": "kt_..."}], "token"),
        ([{"url": "ftp://a.lan", "kiosk_id": "b", "token_env": "T"}], "not an http(s) URL"),
        ([{"url": "http://u:p@a.lan", "kiosk_id": "b", "token_env": "T"}], "password"),
        ([{"url": "http://a.lan", "kiosk_id": "b c", "token_env": "T"}], "kiosk_id"),
        (
            [
                {"url": "http://a.lan", "kiosk_id": "b", "token_env": "T"},
                {"url": "http://c.lan", "kiosk_id": "b", "token_env": "T"},
            ],
            "listed twice",
        ),
    ],
)
def test_check_config_says_what_is_wrong_with_a_peer(peers, said):
    with pytest.raises(ConfigError) as caught:
        parse_config({"compound": {"peers": peers}})
    assert any(said in problem for problem in caught.value.problems), caught.value.problems


def test_a_missing_token_is_the_peers_error_not_a_crash(south, monkeypatch):
    monkeypatch.delenv("PEER_TOKEN_GATE_NORTH", raising=False)
    sync = PeerSync(south.core, south.config.compound, client=httpx.Client())
    sync.poll()
    assert "PEER_TOKEN_GATE_NORTH is not set" in sync.status()[0]["last_error"]
    sync.stop(0)


def test_peer_rows_are_recorded_on_the_engines_loop_not_the_fetching_thread(south):
    """The history the engine reads is changed between two of its steps, on its loop."""
    import asyncio
    import threading

    runner = south.core.runner
    loop = asyncio.new_event_loop()
    runner._loop, runner._started = loop, True
    try:
        seen: list[threading.Thread] = []
        done = threading.Thread(
            target=runner.in_loop, args=(lambda: seen.append(threading.current_thread()),)
        )
        done.start()
        done.join()
        assert seen == []  # queued for the loop, not run in the fetching thread
        loop.call_soon(loop.stop)
        loop.run_forever()
        assert seen == [threading.current_thread()]
    finally:
        runner._started, runner._loop = False, None
        loop.close()


@pytest.mark.slow  # integration: two daemons on real sockets, real time
def test_two_daemons_share_the_quota_over_http(tmp_path, monkeypatch):
    import asyncio
    import time as real_time

    from checkpoint.app import Daemon
    from checkpoint.notify import Notifier

    def config(name: str, peers=()) -> object:
        return parse_config(
            {
                "site": {"kiosk_id": name},
                "web": {"host": "127.0.0.1", "port": 0},
                "policy": POLICY,
                "compound": {"peers": list(peers), "poll_s": 1},
            }
        )

    async def scenario() -> None:
        north_core = await asyncio.to_thread(build_core, config("gate-north"), tmp_path / "n")
        north = Daemon(north_core, notifier=Notifier(None))
        await north.start()
        try:
            _, token = north_core.tokens.create([PEER_SCOPE], "gate-south")
            monkeypatch.setenv("PEER_TOKEN_GATE_NORTH", token)
            entry = {
                "url": north.url,
                "kiosk_id": "gate-north",
                "token_env": "PEER_TOKEN_GATE_NORTH",
            }
            south_core = await asyncio.to_thread(
                build_core, config("gate-south", [entry]), tmp_path / "s"
            )
            south = Daemon(south_core, notifier=Notifier(None))
            await south.start()
            try:
                await asyncio.to_thread(
                    north_core.store.append,
                    EventDraft(direction="out", decision="pass", pass_id="P1", household="1-101"),
                )
                end = real_time.monotonic() + 10
                while real_time.monotonic() < end:
                    now = south_core.clock.now()
                    if south_core.history.exits_in_period("1-101", now, 2) == 1:
                        break
                    await asyncio.sleep(0.1)
                assert south_core.history.exits_in_period("1-101", south_core.clock.now(), 2) == 1
                [peer] = south_core.health()["peers"]
                assert peer["state"] == "ok" and peer["rows_held"] == 1
            finally:
                await asyncio.wait_for(south.stop(), 3.0)
        finally:
            await asyncio.wait_for(north.stop(), 3.0)

    asyncio.run(scenario())


def test_check_config_names_a_bad_peer_and_notes_an_unreadable_token_or_plain_http(
    tmp_path, capsys, monkeypatch
):
    from checkpoint.cli import main

    config = tmp_path / "kiosk.toml"
    config.write_text(
        '[site]\nkiosk_id = "gate-south"\n[[compound.peers]]\nurl = "http://gate-north.lan"\n'
        'kiosk_id = "gate-south"\ntoken_file = "/nonexistent/peer.token"\n'
    )
    assert main(["check-config", str(config)]) == 2
    err = capsys.readouterr().err
    assert "compound.peers[0].kiosk_id: gate-south is this kiosk's own site.kiosk_id" in err
    config.write_text(
        config.read_text().replace(
            'kiosk_id = "gate-south"\ntoken', 'kiosk_id = "gate-north"\ntoken'
        )
    )
    assert main(["check-config", str(config)]) == 0
    err = capsys.readouterr().err
    assert "compound.peers[0] (gate-north): its token cannot be read here" in err
    assert "compound.peers[0].url is plain http" in err
    token = tmp_path / "peer.token"
    token.write_text("kt_00000000_" + "a" * 43 + "\n")
    https = (
        config.read_text()
        .replace("http://", "https://")
        .replace("/nonexistent/peer.token", str(token))
    )
    config.write_text(https)
    assert main(["check-config", str(config)]) == 0
    assert "compound" not in capsys.readouterr().err
    # Plain http with the peer's key pinned: its answers are signed, nothing to note.
    pinned = https.replace("https://", "http://") + 'trust_key = "gate-north"\n'
    config.write_text(pinned)
    assert main(["check-config", str(config)]) == 0
    assert "compound" not in capsys.readouterr().err


def test_a_peer_that_stays_wrong_is_logged_once_and_no_value_of_a_row_is(
    south, monkeypatch, caplog
):
    import logging

    sync = hostile(south, monkeypatch, page(row(household="1-101 " + "x" * 100)))
    with caplog.at_level(logging.INFO, logger="checkpoint.peers"):
        for _ in range(3):
            sync.poll()
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "household is not text" in warnings[0].getMessage()
    assert "1-101" not in caplog.text and "1-101" not in str(south.core.health())


# --- a peer's answers signed by its key (plain http too) --------------------------------------

NORTH_KEY = Ed25519PrivateKey.from_private_bytes(b"\x52" * 32)


@pytest.fixture
def pinned(tmp_path, clock, north):
    """South asks north with north's key pinned (``trust_key``): north signs with its issuer
    key, south holds ``gate-north.pub`` in its trust folder."""
    from kiosk.passes import public_key_pem

    north.core.issuer_key = NORTH_KEY
    entry = peer_entry("gate-north") | {"trust_key": "gate-north"}
    (tmp_path / "gate-south" / "trust").mkdir(parents=True)
    (tmp_path / "gate-south" / "trust" / "gate-north.pub").write_bytes(
        public_key_pem(NORTH_KEY.public_key())
    )
    gate = Gate(tmp_path, "gate-south", clock, [entry])
    yield gate
    gate.close()


def test_a_signed_answer_of_the_pinned_peer_is_kept(north, pinned, monkeypatch):
    sync = pinned.peer_of(north, monkeypatch)
    north.passage(resident())
    sync.poll()
    [peer] = pinned.core.health()["peers"]
    assert peer["state"] == "ok" and peer["rows_held"] == 1 and peer["forged"] == 0


def test_a_forged_answer_at_the_peers_address_is_refused_counted_and_shown(
    north, pinned, monkeypatch
):
    """Anyone answering at the peer's address (ARP spoofing on the LAN) made up an outing
    that then denied the household at this gate: signed by another key, or with a signature
    that is not one, it is refused, counted, shown as the peer's state and never kept."""
    forger = Ed25519PrivateKey.from_private_bytes(b"\x53" * 32)
    made_up = page(row(household="1-101", ts=NOW.isoformat()))

    def garbled(request: httpx.Request) -> httpx.Response:
        from kiosk.peers import SIGNATURE_HEADER

        return httpx.Response(200, text=made_up, headers={SIGNATURE_HEADER: "0a1b:AAAA"})

    def signed_by_another(request: httpx.Request) -> httpx.Response:
        from kiosk.peers import SIGNATURE_HEADER, sign_page

        q = request.url.params
        body = made_up.encode()
        nonce, after, limit = q["nonce"], int(q["after"]), int(q["limit"])
        sig = sign_page(forger, "gate-north", nonce, after, limit, body)
        return httpx.Response(200, content=body, headers={SIGNATURE_HEADER: sig})

    handlers = [garbled, signed_by_another]
    transport = httpx.MockTransport(lambda request: handlers[0](request))
    sync = pinned.peer_of(north, monkeypatch, transport=transport)
    for count in (1, 2):
        sync.poll()
        [peer] = pinned.core.health()["peers"]
        assert peer["state"] == "forged" and peer["forged"] == count
        assert "nothing of it is kept" in peer["last_error"]
        assert sync.ledger.held() == {} and sync.ledger.cursor("gate-north") == 0
        assert pinned.core.history.exits_in_period("1-101", NOW, 2) == 0
        handlers.pop(0)
    # The guard sees it at once on the live page, not only after stale_after_s.
    from kiosk.alarms import peer_alarms

    [alarm] = peer_alarms(pinned.core.health()["peers"])
    assert alarm.key == "device:peer:gate-north"
    from ui.guard.display import health_rows

    rows = health_rows(pinned.core.health(), "en", TZ)
    [shown] = [r for r in rows if r["device"] == "compound gate gate-north"]
    assert shown["state"] == "degraded" and "not signed by its key" in shown["detail"]
    assert "(2)" in shown["detail"]  # both refused answers counted


def test_an_answer_of_the_real_peer_replayed_to_a_later_request_is_refused(
    north, pinned, monkeypatch
):
    """A real signed page, recorded and answered again to a later ask (or to an ask for
    another cursor), is refused: the signature binds the asker's fresh nonce and cursor."""
    real = TestClient(north.app)
    north.passage(resident())
    recorded: list[httpx.Response] = []

    def recorder(request: httpx.Request) -> httpx.Response:
        answer = real.get(str(request.url.copy_with(scheme="http")), headers=request.headers)
        recorded.append(answer)
        return httpx.Response(answer.status_code, content=answer.content, headers=answer.headers)

    sync = pinned.peer_of(north, monkeypatch, transport=httpx.MockTransport(recorder))
    sync.poll()
    assert sync.ledger.held() == {"gate-north": 1}
    pinned.core.store.submit(lambda db: db.execute("DELETE FROM peer_passages"))
    pinned.core.store.submit(lambda db: db.execute("DELETE FROM peer_cursors"))

    def replay(request: httpx.Request) -> httpx.Response:
        old = recorded[0]
        return httpx.Response(200, content=old.content, headers=old.headers)

    sync = pinned.peer_of(north, monkeypatch, transport=httpx.MockTransport(replay))
    sync.poll()
    [peer] = pinned.core.health()["peers"]
    assert peer["state"] == "forged" and "forged or replayed" in peer["last_error"]
    assert sync.ledger.held() == {}


def test_a_pinned_peer_that_sends_no_signature_is_told_apart_from_a_forger(
    north, pinned, clock, monkeypatch
):
    """A pinned peer without an issuer key (or on a release before signed pages) showed
    ``forged``, as an impostor would: its answers carry no signature at all, and the guard is
    told that (upgrade it or check the key), still nothing of them kept and still an alarm
    (its outings are unknown here); a signature that does not verify stays ``forged``."""
    from kiosk.alarms import peer_alarms
    from ui.guard.display import health_rows, peer_alarm_view

    north.core.issuer_key = None
    sync = pinned.peer_of(north, monkeypatch)
    north.passage(resident())
    for count in (1, 2):
        sync.poll()
        [peer] = pinned.core.health()["peers"]
        assert peer["state"] == "unsigned" and peer["unsigned"] == count
        assert peer["forged"] == 0 and peer["stale_since"] == NOW.isoformat()
        assert "sends no signature" in peer["last_error"]
        assert (
            sync.ledger.held() == {} and pinned.core.history.exits_in_period("1-101", NOW, 2) == 0
        )
        clock.advance(10)
    [alarm] = peer_alarms(pinned.core.health()["peers"])
    assert alarm.cause == "unsigned"
    card = peer_alarm_view(alarm, "en", TZ)
    assert "sends no signature" in card["detail"] and "upgrade" in card["todo"]
    assert "posing" not in card["todo"]
    [shown] = [
        r for r in health_rows(pinned.core.health(), "en", TZ) if "gate-north" in r["device"]
    ]
    assert shown["state"] == "degraded" and "sends no signature" in shown["detail"]
    assert "posing" not in shown["detail"]
    # Upgraded (its issuer key in place): its signed answers are kept at once, and the alarm
    # goes stale_after_s after the last unsigned one (an impostor may send them too).
    north.core.issuer_key = NORTH_KEY
    sync.poll()
    [peer] = pinned.core.health()["peers"]
    assert peer["state"] == "unsigned" and peer["rows_held"] == 1
    clock.advance(121)
    sync.poll()
    [peer] = pinned.core.health()["peers"]
    assert peer["state"] == "ok" and peer["rows_held"] == 1


def test_a_pinned_key_missing_from_the_trust_folder_keeps_nothing(north, pinned, monkeypatch):
    (pinned.dir / "trust" / "gate-north.pub").unlink()
    sync = pinned.peer_of(north, monkeypatch)
    north.passage(resident())
    sync.poll()
    [peer] = pinned.core.health()["peers"]
    assert "no gate-north.pub" in peer["last_error"] and sync.ledger.held() == {}


def test_the_answering_gate_signs_its_page_for_the_nonce_it_was_asked_with(north):
    from kiosk.peers import SIGNATURE_HEADER, verify_page

    north.core.issuer_key = NORTH_KEY
    north.passage(resident())
    client = TestClient(north.app)
    _, token = north.core.tokens.create([PEER_SCOPE], "gate peer")
    auth = {"Authorization": f"Bearer {token}"}
    nonce = "n" * 22
    got = client.get(f"/api/v1/passages?after=0&limit=7&nonce={nonce}", headers=auth)
    said = got.headers[SIGNATURE_HEADER]
    verify_page(NORTH_KEY.public_key(), said, "gate-north", nonce, 0, 7, got.content)
    with pytest.raises(ValueError, match="forged or replayed"):
        verify_page(NORTH_KEY.public_key(), said, "gate-north", "m" * 22, 0, 7, got.content)
    with pytest.raises(ValueError, match="forged or replayed"):
        verify_page(NORTH_KEY.public_key(), said, "gate-north", nonce, 1, 7, got.content)
    for bad in ("short", "x" * 65, "a" * 21 + "/"):
        answer = client.get(f"/api/v1/passages?nonce={bad}", headers=auth)
        assert answer.status_code == 422
    # A gate without an issuer key answers unsigned, as before.
    north.core.issuer_key = None
    assert SIGNATURE_HEADER not in client.get("/api/v1/passages", headers=auth).headers


# --- an outing told to the other gates at once --------------------------------------------------


@contextlib.contextmanager
def poked_gates(tmp_path, clock, monkeypatch):
    """Two gates polling an hour apart: the north's sync that tells, the south's that asks
    (no gap between pokes: test_pokes_wake_a_peer_no_more_than_once_a_second has the gap), and
    a semaphore released at each of the south's asks. Not started."""
    north = Gate(tmp_path, "gate-north", clock, [peer_entry("gate-south")], poll_s=3600)
    south = Gate(tmp_path, "gate-south", clock, [peer_entry("gate-north")], poll_s=3600)
    try:
        told = north.peer_of(south, monkeypatch)
        asking = south.peer_of(north, monkeypatch)
        asked = threading.Semaphore(0)
        fetch = asking.fetch

        def counted(peer):
            got = fetch(peer)
            asked.release()
            return got

        monkeypatch.setattr(asking, "fetch", counted)
        asking.poke_gap_s = 0
        yield north, south, told, asking, asked
    finally:
        south.close()  # first: its threads ask north's app, whose store north.close() closes
        north.close()


def test_an_outing_at_one_gate_counts_at_the_other_before_its_next_poll(
    tmp_path, clock, monkeypatch
):
    """An outing within the last poll (10 s) at the north gate was not counted at the south
    gate yet: the north gate tells its peers at once after the decision and the south gate
    fetches then, so the window is the network's latency (the poll stays the backstop)."""
    with poked_gates(tmp_path, clock, monkeypatch) as (north, south, told, asking, asked):
        asking.start()
        assert asked.acquire(timeout=10)  # its first ask, at the start
        assert north.passage(resident(holder="Wang L"))["decision"] == "pass"
        told.news({"type": "decision", "decision": "pass", "committed": True})
        assert told.push() == {"gate-south": 202}
        assert asked.acquire(timeout=10)  # woken by the north gate, not by its hour's poll
        assert south.passage(resident(holder="Wang M"))["reasons"] == ["quota_exceeded"]
        told_south = told.states["gate-south"]
        assert (told_south.told, told_south.tell_failed) == (1, 0)


def test_only_a_committed_passage_is_told_and_many_are_told_once(north, south, monkeypatch):
    sync = south.peer_of(north, monkeypatch)
    sync.news({"type": "decision", "decision": "deny", "committed": True})
    sync.news({"type": "decision", "decision": "pass", "committed": False})
    sync.news({"type": "state", "state": "idle"})
    assert sync.push() == {}  # nothing to tell
    for _ in range(50):
        sync.news({"type": "decision", "decision": "manual_pass", "committed": True})
    assert list(sync.push()) == ["gate-north"]
    assert sync.push() == {}


def test_the_poke_wakes_only_a_configured_peer_behind_its_scope(north, south, monkeypatch):
    sync = south.peer_of(north, monkeypatch)
    client = TestClient(south.app)
    _, token = south.core.tokens.create([PEER_SCOPE], "north")
    _, office = south.core.tokens.create(["logs:read"], "office")
    auth = {"Authorization": f"Bearer {token}"}
    url = "/api/v1/passages/poke?kiosk_id=gate-north"
    assert client.post(url).status_code == 401
    assert client.post(url, headers={"Authorization": f"Bearer {office}"}).status_code == 403
    assert client.post(url, headers=auth).status_code == 202
    assert sync.woken("gate-north")
    assert client.post(url.replace("north", "east"), headers=auth).status_code == 404
    assert client.post(url.replace("gate-north", "a/b"), headers=auth).status_code == 422
    # A gate on its own has no peer to wake.
    assert TestClient(north.app).post(url, headers=bearer_of(north)).status_code == 404


def bearer_of(gate: Gate) -> dict[str, str]:
    _, token = gate.core.tokens.create([PEER_SCOPE], "t")
    return {"Authorization": f"Bearer {token}"}


def test_a_peer_that_does_not_take_the_news_costs_nothing_but_a_count(north, south, monkeypatch):
    def down(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("no route to host", request=request)

    sync = south.peer_of(north, monkeypatch, transport=httpx.MockTransport(down))
    sync.news({"type": "decision", "decision": "pass", "committed": True})
    assert sync.push() == {"gate-north": None}
    [peer] = south.core.health()["peers"]
    assert peer["tell_failed"] == 1 and peer["told"] == 0


def test_the_daemon_follows_the_bus_for_passing_decisions(north, south, monkeypatch):
    import asyncio

    from kiosk.bus import EventBus

    sync = south.peer_of(north, monkeypatch)

    async def scenario() -> None:
        bus = EventBus(maxsize=4)
        follower = asyncio.create_task(sync.follow(bus))
        await asyncio.sleep(0)
        for _ in range(10):  # more than the subscription holds: never dropped as slow
            bus.publish({"type": "decision", "decision": "pass", "committed": True})
            await asyncio.sleep(0)
        follower.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await follower

    asyncio.run(scenario())
    assert list(sync.push()) == ["gate-north"]


def test_pokes_wake_a_peer_no_more_than_once_a_second(south):
    now = [100.0]
    sync = PeerSync(
        south.core, south.config.compound, client=httpx.Client(), monotonic=lambda: now[0]
    )
    assert sync.gap_after(99.8) == pytest.approx(0.8)  # asked 0.2 s ago: the rest of the second
    assert sync.gap_after(98.0) == 0.0
    sync.stop(0)


@pytest.mark.slow  # integration: two daemons on real sockets, real time
def test_two_daemons_tell_each_other_of_an_outing_at_once(tmp_path, monkeypatch):
    """Polls an hour apart: the outing at the north gate is held at the south gate within
    seconds all the same, told from the north gate's decision through the bus and its push."""
    import asyncio
    import socket
    import time as real_time

    from checkpoint.app import Daemon
    from checkpoint.notify import Notifier

    ports = []
    for _ in range(2):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            ports.append(s.getsockname()[1])
    urls = {
        "gate-north": f"http://127.0.0.1:{ports[0]}",
        "gate-south": f"http://127.0.0.1:{ports[1]}",
    }

    def config(name: str, port: int, other: str) -> object:
        entry = {"url": urls[other], "kiosk_id": other, "token_env": env_name(other)}
        return parse_config(
            {
                "site": {"kiosk_id": name},
                "web": {"host": "127.0.0.1", "port": port},
                "policy": POLICY,
                "compound": {"peers": [entry], "poll_s": 3600},
            }
        )

    async def scenario() -> None:
        north_core = await asyncio.to_thread(
            build_core, config("gate-north", ports[0], "gate-south"), tmp_path / "n"
        )
        south_core = await asyncio.to_thread(
            build_core, config("gate-south", ports[1], "gate-north"), tmp_path / "s"
        )
        monkeypatch.setenv(env_name("gate-north"), north_core.tokens.create([PEER_SCOPE], "s")[1])
        monkeypatch.setenv(env_name("gate-south"), south_core.tokens.create([PEER_SCOPE], "n")[1])
        north = Daemon(north_core, notifier=Notifier(None))
        south = Daemon(south_core, notifier=Notifier(None))
        stopped = []
        await north.start()
        await south.start()
        try:

            async def until(what) -> bool:
                end = real_time.monotonic() + 10
                while real_time.monotonic() < end and not what():
                    await asyncio.sleep(0.05)
                return bool(what())

            assert await until(lambda: south_core.health()["peers"][0]["state"] == "ok")
            await asyncio.to_thread(
                north_core.runner.manual_threadsafe,
                decision="manual_pass",
                operator="guard",
                reason="test",
                direction="out",
                subject="none",
            )
            assert await until(lambda: south_core.health()["peers"][0]["rows_held"] == 1)
            # North stops cleanly: it tells south it is closing, no alarm there.
            stopped.append(north)
            await asyncio.wait_for(north.stop(), 6.0)
            assert south_core.health()["peers"][0]["state"] == "closed"
        finally:
            await asyncio.wait_for(south.stop(), 6.0)
            if not stopped:
                await asyncio.wait_for(north.stop(), 6.0)

    asyncio.run(scenario())


def test_forged_answers_between_real_ones_keep_one_alarm_standing(
    north, pinned, clock, monkeypatch
):
    """Someone on the LAN answering for the peer now and then (its real answers between) made
    the peer's alarm go and come at every other poll, a new card and siren each time the guard
    had closed it: a forged answer keeps the peer ``forged`` for stale_after_s after the last
    one, the real answers kept meanwhile."""
    real = TestClient(north.app)
    forging = [True]

    def now_and_then(request: httpx.Request) -> httpx.Response:
        if forging[0]:  # signed, but not by its key
            return httpx.Response(200, text=page(row()), headers={"X-Kiosk-Signature": "0a1b:AA"})
        answer = real.get(str(request.url), headers=request.headers)
        return httpx.Response(answer.status_code, content=answer.content, headers=answer.headers)

    sync = pinned.peer_of(north, monkeypatch, transport=httpx.MockTransport(now_and_then))
    sync.poll()
    [peer] = pinned.core.health()["peers"]
    assert peer["state"] == "forged" and peer["stale_since"] == NOW.isoformat()
    north.passage(resident())
    forging[0] = False
    clock.advance(10)
    sync.poll()
    [peer] = pinned.core.health()["peers"]
    assert peer["rows_held"] == 1  # the real page is kept
    assert peer["state"] == "forged" and peer["stale_since"] == NOW.isoformat()
    clock.advance(121)  # stale_after_s since the last forged answer, real ones meanwhile
    sync.poll()
    assert pinned.core.health()["peers"][0]["state"] == "ok"


def test_check_config_notes_a_pinned_key_not_in_the_trust_folder(tmp_path, capsys, monkeypatch):
    """An operator who set trust_key and forgot to bring the peer's .pub heard nothing of it
    until the guard's devices page showed the peer stale: check-config names the file."""
    from checkpoint.cli import main
    from kiosk.passes import public_key_pem

    monkeypatch.setenv("PEER_TOKEN_GATE_NORTH", "kt_00000000_" + "a" * 43)
    trust = tmp_path / "trust"
    trust.mkdir()
    (trust / "office.pub").write_bytes(public_key_pem(Ed25519PrivateKey.generate().public_key()))
    config = tmp_path / "kiosk.toml"
    config.write_text(
        f'[site]\nkiosk_id = "gate-south"\n[policy]\ntrust_dir = "{trust}"\n'
        '[[compound.peers]]\nurl = "http://gate-north.lan"\nkiosk_id = "gate-north"\n'
        'token_env = "PEER_TOKEN_GATE_NORTH"\ntrust_key = "gate-north"\n'
    )
    assert main(["check-config", str(config)]) == 0
    err = capsys.readouterr().err
    assert f"compound.peers[0].trust_key: no gate-north.pub in {trust}" in err
    (trust / "gate-north.pub").write_bytes(public_key_pem(NORTH_KEY.public_key()))
    assert main(["check-config", str(config)]) == 0
    assert "compound" not in capsys.readouterr().err


def test_the_news_follower_ends_with_the_bus_and_outlives_being_dropped(north, south, monkeypatch):
    import asyncio

    from kiosk.bus import EventBus

    sync = south.peer_of(north, monkeypatch)

    async def scenario() -> None:
        bus = EventBus(maxsize=2)
        follower = asyncio.create_task(sync.follow(bus))
        await asyncio.sleep(0)
        for _ in range(300):  # the loop never yields: the follower falls behind, dropped
            bus.publish({"type": "state", "state": "idle"})
        await asyncio.sleep(0)
        await asyncio.sleep(0)
        assert bus.subscribers == 1 and not follower.done()  # subscribed again
        bus.publish({"type": "decision", "decision": "pass", "committed": True})
        await asyncio.sleep(0)
        bus.close()
        await asyncio.wait_for(follower, 1)

    asyncio.run(scenario())
    assert list(sync.push()) == ["gate-north"]


def test_a_peer_that_refuses_the_news_is_logged_once(north, south, monkeypatch, caplog):
    import logging

    def old_code(request: httpx.Request) -> httpx.Response:
        return httpx.Response(405, json={"detail": "Method Not Allowed"})

    sync = south.peer_of(north, monkeypatch, transport=httpx.MockTransport(old_code))
    with caplog.at_level(logging.WARNING, logger="checkpoint.peers"):
        for _ in range(3):
            sync.news({"type": "decision", "decision": "pass", "committed": True})
            assert sync.push() == {"gate-north": 405}
    [said] = [r.getMessage() for r in caplog.records if "news" in r.getMessage()]
    assert "gate-north does not take this gate's news (HTTP 405)" in said
    assert south.core.health()["peers"][0]["tell_failed"] == 3


def test_a_peer_slow_to_take_the_news_delays_no_other(tmp_path, clock, monkeypatch):
    """The news went to the peers one after the other: one whose poke hung (a host gone, each
    connect waiting out its timeout) held every peer after it for seconds. Each is told on
    its own."""
    east = peer_entry("gate-east") | {"url": "http://gate-east.lan"}
    south = Gate(tmp_path, "gate-south", clock, [peer_entry("gate-north"), east], poll_s=3600)
    hung, east_told = threading.Event(), threading.Event()

    def handler(request: httpx.Request) -> httpx.Response:
        north = request.url.host == "testserver"
        if request.method == "GET":
            return httpx.Response(200, text=page(kiosk_id="gate-north" if north else "gate-east"))
        if north:
            hung.wait(10)  # the north gate's poke hangs until the test ends
            raise httpx.ConnectTimeout("timed out", request=request)
        east_told.set()
        return httpx.Response(202, json={"fetching": True})

    monkeypatch.setenv(env_name("gate-north"), "kt_north_" + "a" * 43)
    monkeypatch.setenv(env_name("gate-east"), "kt_east_" + "a" * 43)
    sync = PeerSync(
        south.core,
        south.config.compound,
        client=httpx.Client(transport=httpx.MockTransport(handler)),
    )
    try:
        sync.start()
        sync.news({"type": "decision", "decision": "pass", "committed": True})
        assert east_told.wait(5)  # while the north gate's poke still hangs
    finally:
        hung.set()
        sync.stop(2)
        south.close()


def test_check_config_notes_peers_taking_the_offices_lists_without_a_compound_id(tmp_path, capsys):
    """A gate with ``[[compound.peers]]`` and the office's lists but no ``[compound] id``
    checked ``ok`` without a word: it applies every compound's entries of the office's lists
    (west's quarantined 3-201 denies east's 3-201 here), and the district report can tell its
    compound only by its peers. A note, not an error: configs from before the id stay valid."""
    from checkpoint.cli import main

    token = tmp_path / "peer.token"
    token.write_text("kt_00000000_" + "a" * 43 + "\n")
    config = tmp_path / "kiosk.toml"
    peers = (
        '[[compound.peers]]\nurl = "https://gate-north.lan"\nkiosk_id = "gate-north"\n'
        f'token_file = "{token}"\n'
    )
    fleet = '[fleet]\nlists_url = "https://office.lan:9110/lists/bundle"\n'
    config.write_text('[site]\nkiosk_id = "gate-south"\n' + fleet + peers)
    assert main(["check-config", str(config)]) == 0
    err = capsys.readouterr().err
    assert "note: compound.id is not set" in err and "every compound's entries" in err
    named = '[compound]\nid = "east"\n'
    config.write_text('[site]\nkiosk_id = "gate-south"\n' + fleet + named + peers)
    assert main(["check-config", str(config)]) == 0
    assert "compound" not in capsys.readouterr().err
    config.write_text('[site]\nkiosk_id = "gate-south"\n' + fleet)  # a gate on its own
    assert main(["check-config", str(config)]) == 0
    assert "compound" not in capsys.readouterr().err


def test_a_peer_of_another_compound_by_id_is_refused_not_counted(tmp_path, clock, monkeypatch):
    """The south gate (``[compound] id = "east"``) listed west's gate as its peer (a config
    copied from the other compound): west's 3-201 went out there, and east's 3-201 was denied
    ``quota_exceeded`` at south — another compound's household, as the office's lists tell
    them apart. The peer's answer says its compound; one of another id is refused, nothing
    of it kept, and said (the rules hold at this gate alone, as with a peer down)."""
    west = Gate(tmp_path, "gate-north", clock, id="west")
    south = Gate(tmp_path, "gate-south", clock, [peer_entry("gate-north")], id="East")
    try:
        sync = south.peer_of(west, monkeypatch)
        assert west.passage(resident("3-201"))["decision"] == "pass"
        clock.advance(60)
        sync.poll()
        assert sync.ledger.held() == {}
        [peer] = south.core.health()["peers"]
        assert "of compound west" in peer["last_error"] and "east" in peer["last_error"]
        assert south.passage(resident("3-201", "Wang M"))["decision"] == "pass"
        # Of one compound (case ignored), or a peer that says none: counted, as before.
        east = Gate(tmp_path / "east", "gate-north", clock, id="EAST")
        try:
            south.sync.stop(0)
            sync = south.peer_of(east, monkeypatch)
            east.passage(resident("1-101"))
            sync.poll()
            assert sync.ledger.held() == {"gate-north": 1}
        finally:
            east.close()
    finally:
        south.close()
        west.close()


# --- a gate switched off: closing, said to its peers ---------------------------------------------


class Switch:
    """South's way to north: its app, or nothing answering (north's Pi powered down)."""

    def __init__(self, gate: Gate) -> None:
        self.real = TestClient(gate.app)
        self.up = True

    def __call__(self, request: httpx.Request) -> httpx.Response:
        if not self.up:
            raise httpx.ConnectError("no route to host", request=request)
        kwargs = {"headers": request.headers}
        if request.method == "POST":
            answer = self.real.post(str(request.url), **kwargs)
        else:
            answer = self.real.get(str(request.url), **kwargs)
        return httpx.Response(answer.status_code, content=answer.content, headers=answer.headers)


def closing_pair(tmp_path, clock, monkeypatch, south: Gate):
    """North listing south as its peer (it tells south it is closing), south asking north
    through a ``Switch``."""
    north = Gate(tmp_path, "gate-north", clock, [peer_entry("gate-south")])
    switch = Switch(north)
    south_sync = south.peer_of(north, monkeypatch, transport=httpx.MockTransport(switch))
    north.peer_of(south, monkeypatch)
    return north, switch, south_sync


def test_a_gate_that_stops_cleanly_is_shown_closed_at_its_peer_not_alarmed(
    tmp_path, clock, south, monkeypatch
):
    """A side gate switched off at 22:00 every night raised a nightly alarm at the main gate:
    stopping cleanly it tells its peers it is closing, and they show it "closed since
    22:00", no alarm, until it answers again; one that vanishes without a word still alarms."""
    from kiosk.alarms import peer_alarms
    from ui.guard.display import health_rows

    north, switch, sync = closing_pair(tmp_path, clock, monkeypatch, south)
    try:
        sync.poll()
        assert south.core.health()["peers"][0]["state"] == "ok"
        clock.advance(12 * 3600)  # 22:00 in Shanghai
        sync.poll()
        assert north.sync.farewell() == {"gate-south": 202}
        switch.up = False  # its Pi goes off
        for _ in range(3):
            clock.advance(3600)
            sync.poll()
            [peer] = south.core.health()["peers"]
            assert peer["state"] == "closed" and peer["closed_since"] == "2026-03-02T14:00:00+00:00"
            assert peer_alarms([peer]) == [] and peer["stale_since"] is None
        [shown] = [r for r in health_rows(south.core.health(), "en", TZ) if "north" in r["device"]]
        assert "closed since 22:00" in shown["detail"]
        # Back in the morning: it answers, the closing is over.
        switch.up = True
        sync.poll()
        assert south.core.health()["peers"][0]["state"] == "ok"
        # Gone without a word: an outage, an alarm as before.
        switch.up = False
        clock.advance(121)
        sync.poll()
        [peer] = south.core.health()["peers"]
        assert peer["state"] == "stale" and len(peer_alarms([peer])) == 1
    finally:
        north.close()


def test_an_answer_from_before_the_closing_does_not_end_it(tmp_path, clock, south, monkeypatch):
    """A page the peer answered before it said it was closing (a poll crossing its farewell)
    leaves it closed: only one it answered after, by its own clock, means it is back."""
    north, switch, sync = closing_pair(tmp_path, clock, monkeypatch, south)
    try:
        north.sync.farewell()
        north.clock = FakeClock(start=NOW - timedelta(seconds=5))
        north.core.clock = north.clock  # its answer dated before its farewell
        sync.poll()
        assert south.core.health()["peers"][0]["state"] == "closed"
        # Answering minutes after its farewell is no crossing: it is back, whatever its clock
        # says (a Pi that booted without its clock set, reading a time before it stopped).
        clock.advance(150)
        sync.poll()
        assert south.core.health()["peers"][0]["state"] == "ok"
    finally:
        north.close()


@pytest.mark.slow
def test_a_closing_notice_for_a_pinned_peer_must_be_signed_by_its_key(
    tmp_path, clock, pinned, monkeypatch
):
    """Anyone on the LAN with the token could silence a peer's outage alarm by saying it
    closed: with its key pinned the notice must be signed by it for this gate and be fresh
    (a recorded one played back is refused), else it is refused and counted as forged."""
    from kiosk.peers import SIGNATURE_HEADER, sign_closing
    from kiosk.store import format_ts

    north = Gate(tmp_path, "gate-north", clock, [peer_entry("gate-south")])
    try:
        pinned.peer_of(north, monkeypatch)
        client = TestClient(pinned.app)
        auth = bearer_of(pinned)
        at = format_ts(clock.now())
        url = f"/api/v1/passages/poke?kiosk_id=gate-north&closing={at}"
        told = pinned.core.bus.subscribe(name="test-peers")
        assert client.post(url, headers=auth).status_code == 403  # unsigned
        # The guard's live page is told at once, not at the next poll.
        assert told.get_nowait() == {"type": "peers", "stale": ["gate-north"]}
        forger = Ed25519PrivateKey.from_private_bytes(b"\x53" * 32)
        forged = {SIGNATURE_HEADER: sign_closing(forger, "gate-north", "gate-south", at)}
        assert client.post(url, headers=auth | forged).status_code == 403
        [peer] = pinned.core.health()["peers"]
        assert peer["state"] == "forged" and peer["closed_since"] is None
        for_another = {SIGNATURE_HEADER: sign_closing(NORTH_KEY, "gate-north", "gate-east", at)}
        assert client.post(url, headers=auth | for_another).status_code == 403
        old = format_ts(clock.now() - timedelta(minutes=10))
        stale = {SIGNATURE_HEADER: sign_closing(NORTH_KEY, "gate-north", "gate-south", old)}
        assert client.post(url.replace(at, old), headers=auth | stale).status_code == 403
        signed = {SIGNATURE_HEADER: sign_closing(NORTH_KEY, "gate-north", "gate-south", at)}
        got = client.post(url, headers=auth | signed)
        assert got.status_code == 202 and got.json() == {"fetching": False, "closed": True}
        assert pinned.core.health()["peers"][0]["closed_since"] == NOW.isoformat()
        # The same notice again (recorded, played back later) is refused.
        assert client.post(url, headers=auth | signed).status_code == 403
        for bad in ("yesterday", "x" * 41, "0001-01-01T00:00:00%2B01:00"):
            assert client.post(url.replace(at, bad), headers=auth | signed).status_code == 422
    finally:
        north.close()


def test_the_stopping_gate_signs_its_closing_notice_with_its_issuer_key(
    tmp_path, clock, pinned, monkeypatch
):
    north = Gate(tmp_path, "gate-north", clock, [peer_entry("gate-south")])
    try:
        north.core.issuer_key = NORTH_KEY
        pinned.peer_of(north, monkeypatch)
        north.peer_of(pinned, monkeypatch)
        assert north.sync.farewell() == {"gate-south": 202}
        assert pinned.core.health()["peers"][0]["state"] == "closed"
    finally:
        north.close()


def test_a_peer_within_its_closed_hours_is_not_alarmed_about(tmp_path, clock, monkeypatch):
    """A side gate whose Pi a timer powers off at 22:00 (no clean stop, no notice) raised a
    nightly alarm at the main gate: with the peer's closed hours configured it is shown closed
    during them, no alarm; outside them (and once they are over, after stale_after_s) a peer
    not heard alarms as before."""
    from kiosk.alarms import peer_alarms
    from ui.guard.display import health_rows

    north = Gate(tmp_path, "gate-north", clock)
    hours = {"closed_from": "22:00", "closed_until": "06:30"}
    south = Gate(tmp_path, "gate-south", clock, [peer_entry("gate-north") | hours])
    try:
        switch = Switch(north)
        sync = south.peer_of(north, monkeypatch, transport=httpx.MockTransport(switch))
        clock.advance(11 * 3600 + 59 * 60)  # 21:59 in Shanghai
        sync.poll()
        switch.up = False  # powered off by its timer at 22:00, no word
        clock.advance(60)
        sync.poll()
        assert south.core.health()["peers"][0]["state"] == "ok"  # heard a minute ago
        clock.advance(120)  # 22:02
        sync.poll()
        [peer] = south.core.health()["peers"]
        assert peer["state"] == "closed" and peer_alarms([peer]) == []
        assert peer["closed_since"] == "2026-03-02T14:00:00+00:00"  # 22:00 local
        for _ in range(8):  # through the night
            clock.advance(3600)
            sync.poll()
            [peer] = south.core.health()["peers"]
            assert peer["state"] == "closed", clock.now()
        [shown] = [r for r in health_rows(south.core.health(), "en", TZ) if "north" in r["device"]]
        assert "closed since 22:00" in shown["detail"]
        # Within stale_after_s after its hours it is still booting: closed, no alarm.
        clock.advance(29 * 60)  # 06:31
        assert south.core.health()["peers"][0]["state"] == "closed"
        # 06:59: its hours ended at 06:30 and it has not answered for stale_after_s since.
        clock.advance(28 * 60)
        assert clock.now().astimezone(TZ).strftime("%H:%M") == "06:59"
        [peer] = south.core.health()["peers"]
        assert peer["state"] == "stale" and len(peer_alarms([peer])) == 1
        assert peer["stale_since"] == "2026-03-02T22:30:00+00:00"  # its hours' end
        # Outside its hours, gone without a word: an alarm as ever.
        clock.advance(3 * 3600)
        assert south.core.health()["peers"][0]["state"] == "stale"
    finally:
        north.close()
        south.close()


@pytest.mark.parametrize(
    ("hours", "said"),
    [
        ({"closed_from": "22:00"}, "closed_from and closed_until"),
        ({"closed_until": "06:00"}, "closed_from and closed_until"),
        ({"closed_from": "22:00", "closed_until": "22:00"}, "the same time"),
    ],
)
def test_a_peers_closed_hours_are_both_given_and_differ(hours, said):
    with pytest.raises(ConfigError, match=said):
        parse_config({"compound": {"peers": [peer_entry("gate-north") | hours]}})


@pytest.mark.parametrize(
    ("local", "began", "ended"),
    [
        ("03:00", "01:00", "05:00 the day before"),
        ("06:00", None, "05:00"),
        ("00:30", None, "05:00 the day before"),
    ],
)
def test_closed_hours_within_one_night(local, began, ended):
    from kiosk.peers import closed_window

    def at(words: str) -> datetime:
        hh, mm = map(int, words[:5].split(":"))
        day = 1 if words.endswith("the day before") else 2
        return datetime(2026, 3, day, hh, mm, tzinfo=TZ).astimezone(UTC)

    from datetime import time

    now = at(local)
    got = closed_window(now, TZ, (time(1), time(5)))
    assert got == ((at(began) if began else None), at(ended))


def test_closed_hours_ending_in_the_hour_the_spring_change_skips_ended_when_the_clock_went_on():
    """Berlin, 2026-03-29: 02:00 CET became 03:00 CEST. A peer closed 22:00-02:30 was placed
    as ending at 03:30 CEST, after now (03:10): "ended" in the future. There was no 02:30
    that night; the window ended when the clock went on (03:00 CEST), as ``days_before`` reads
    a skipped time."""
    from datetime import time
    from zoneinfo import ZoneInfo

    from kiosk.peers import closed_window

    berlin = ZoneInfo("Europe/Berlin")
    now = datetime(2026, 3, 29, 3, 10, tzinfo=berlin)
    began, ended = closed_window(now, berlin, (time(22), time(2, 30)))
    assert began is None and ended == datetime(2026, 3, 29, 1, 0, tzinfo=UTC) <= now
    began, ended = closed_window(now, berlin, (time(2, 30), time(5)))  # began in it
    assert began == datetime(2026, 3, 29, 1, 0, tzinfo=UTC)


def test_closed_hours_at_the_hour_the_autumn_change_repeats_go_by_its_first_pass():
    """Berlin, 2024-10-27: 03:00 CEST became 02:00 CET, and 02:00-03:00 came twice. A peer
    closed 22:00-02:30 (its timer powers it at the first 02:30, as ``local_at`` places a
    repeated time) was still read as closed at 02:10 of the second pass, an hour after its
    hours ended (no alarm for a peer lost then); one closed from 02:15 was not yet closed at
    that 02:10, though its hours had begun 55 minutes before. The hours are instants now."""
    from datetime import time

    from kiosk.peers import closed_window

    berlin = ZoneInfo("Europe/Berlin")
    first = datetime(2024, 10, 27, 2, 10, tzinfo=berlin)  # 00:10 UTC, CEST
    second = first.replace(fold=1)  # 01:10 UTC, CET
    assert second.astimezone(UTC) - first.astimezone(UTC) == timedelta(hours=1)
    night = (time(22), time(2, 30))
    began_night = datetime(2024, 10, 26, 20, 0, tzinfo=UTC)  # 22:00 CEST
    ended_before = datetime(2024, 10, 26, 0, 30, tzinfo=UTC)  # 02:30 CEST the day before
    assert closed_window(first, berlin, night) == (began_night, ended_before)
    ended = datetime(2024, 10, 27, 0, 30, tzinfo=UTC)  # the first 02:30, CEST
    assert closed_window(second, berlin, night) == (None, ended)
    began, ended = closed_window(second, berlin, (time(2, 15), time(5)))
    assert began == datetime(2024, 10, 27, 0, 15, tzinfo=UTC)  # the first 02:15, CEST
    assert ended == datetime(2024, 10, 26, 3, 0, tzinfo=UTC)  # 05:00 CEST the day before


def test_a_fetch_under_way_when_the_sync_stops_never_touches_the_closed_store(
    north, south, monkeypatch
):
    """``stop`` returned while a peer's answer was still on its way (a slow peer, or a test's
    ``stop(0)``), and the daemon (or the test) then closed the event log: the thread went on
    to read its cursor and keep the page on a store being closed under it (a crashed xdist
    worker once, the next test running). After ``stop`` returns, no thread of it uses the
    store: the answer is dropped and the thread ends."""
    real = TestClient(north.app)
    north.passage(resident())
    arrived, release = threading.Event(), threading.Event()

    def slow(request: httpx.Request) -> httpx.Response:
        if request.method == "POST":
            return httpx.Response(202, json={"fetching": True})
        arrived.set()
        release.wait(10)
        answer = real.get(str(request.url), headers=request.headers)
        return httpx.Response(answer.status_code, content=answer.content, headers=answer.headers)

    sync = south.peer_of(north, monkeypatch, transport=httpx.MockTransport(slow))
    late: list[str] = []
    stopped = threading.Event()
    for name in ("cursor", "merge", "held", "restart"):
        real_call = getattr(sync.ledger, name)

        def spy(*args, _name=name, _call=real_call, **kwargs):
            if stopped.is_set():
                late.append(_name)
            return _call(*args, **kwargs)

        monkeypatch.setattr(sync.ledger, name, spy)
    sync.start()
    assert arrived.wait(10)  # its first ask is on its way
    [asking] = [t for t in sync._threads if t.name == "kiosk-peer-gate-north"]
    sync.stop(0)
    stopped.set()
    release.set()
    asking.join(10)
    assert not asking.is_alive()
    assert late == []
    assert sync.status()[0]["rows_held"] == 0  # the health report still answers


def test_a_peer_on_a_fresh_log_past_the_cursor_is_fetched_again_from_its_start(
    tmp_path, north, south, clock, monkeypatch
):
    """The north gate's card was replaced (a fresh log, seq from 1 again) and had more
    passages by the south gate's next ask than its old log had: its log was not shorter than
    the cursor, so the south gate asked after the old cursor and never held the new log's
    first outings (a household out there went out again here). A page says which log it is
    (``origin``: its first event's id); another log than the one held is fetched again from
    its start."""
    sync = south.peer_of(north, monkeypatch)
    north.passage(resident("1-101"))
    north.passage(resident("1-102"))
    sync.poll()
    assert sync.ledger.cursor("gate-north") == 2
    fresh = Gate(tmp_path / "new-card", "gate-north", clock)
    try:
        clock.advance(60)
        for household in ("2-201", "2-202", "2-203"):
            assert fresh.passage(resident(household))["decision"] == "pass"
        south.peer_of(fresh, monkeypatch).poll()
        for household in ("1-101", "2-201", "2-202", "2-203"):  # the old log's counted still
            assert south.core.history.exits_in_period(household, clock.now(), 2) == 1
        assert south.passage(resident("2-201", "Wang M"))["reasons"] == ["quota_exceeded"]
        assert south.sync.ledger.held() == {"gate-north": 3}
        assert south.sync.ledger.cursor("gate-north") == 3
    finally:
        fresh.close()


def test_a_peer_restored_from_an_older_copy_of_its_log_is_not_counted_twice(
    tmp_path, north, south, clock, monkeypatch
):
    """The north gate's card was restored from a copy of its log taken before its last
    outings (docs/operations.md, Backups): its log ended before the south gate's cursor, so
    the south gate fetched it again from its start and counted every outing of the look-back
    a second time (a household out once was denied ``quota_exceeded`` at the south gate).
    The same log (``origin``) rolled back keeps the passages held up to its end, drops the
    ones past it (counted still: they happened) and goes on from there."""
    import sqlite3

    sync = south.peer_of(north, monkeypatch)
    north.passage(resident("1-101"))
    north.passage(resident("1-102"))
    copy = tmp_path / "restored" / "gate-north"
    copy.mkdir(parents=True)
    with sqlite3.connect(north.core.store.path) as src, sqlite3.connect(copy / "kiosk.db") as dst:
        src.backup(dst)
    north.passage(resident("1-103"))
    sync.poll()
    assert sync.ledger.cursor("gate-north") == 3
    restored = Gate(tmp_path / "restored", "gate-north", clock)
    try:
        clock.advance(60)
        assert restored.core.store.last_seq == 2
        sync = south.peer_of(restored, monkeypatch)
        sync.poll()
        for household in ("1-101", "1-102", "1-103"):
            assert south.core.history.exits_in_period(household, clock.now(), 2) == 1, household
        assert sync.ledger.held() == {"gate-north": 2} and sync.ledger.cursor("gate-north") == 2
        # Its next outing (seq 3 again, another one) is held and counted.
        restored.passage(resident("1-104"))
        sync.poll()
        assert south.core.history.exits_in_period("1-104", clock.now(), 2) == 1
        assert sync.ledger.held() == {"gate-north": 3}
    finally:
        restored.close()


def test_a_peer_that_said_it_closed_stays_closed_across_this_gates_restart(
    tmp_path, clock, south, monkeypatch
):
    """The side gate said it was closing at 22:00; the main gate restarted at 03:00 (an
    update) and, knowing nothing of it, alarmed at its first ask: the closing is kept with
    the peer's cursor, and a restarted gate still shows it closed until it answers again."""
    north, switch, sync = closing_pair(tmp_path, clock, monkeypatch, south)
    try:
        clock.advance(12 * 3600)
        assert north.sync.farewell() == {"gate-south": 202}
        switch.up = False
        south.close()
        clock.advance(5 * 3600)
        again = Gate(tmp_path, "gate-south", clock, [peer_entry("gate-north")])
        try:
            resync = again.peer_of(north, monkeypatch, transport=httpx.MockTransport(switch))
            resync.poll()
            [peer] = again.core.health()["peers"]
            assert peer["state"] == "closed" and peer["closed_since"] == "2026-03-02T14:00:00+00:00"
            # Back in the morning: it answers, the closing is over.
            switch.up = True
            resync.poll()
            assert again.core.health()["peers"][0]["state"] == "ok"
            resync.poll()
            assert again.core.health()["peers"][0]["closed_since"] is None
        finally:
            again.close()
    finally:
        north.close()


def test_a_peers_closed_hours_are_kept_by_its_own_clock(tmp_path, clock, monkeypatch):
    """The side gate's timer, on its clock 5 minutes ahead, powered it off at its 22:00, the
    main gate's 21:55: every night it alarmed for the minutes until the main gate's 22:00.
    Its closed hours go by its clock (as its last answer told it), as its timer does."""
    ahead = FakeClock(start=NOW + timedelta(minutes=5))
    north = Gate(tmp_path, "gate-north", ahead)
    hours = {"closed_from": "22:00", "closed_until": "06:30"}
    south = Gate(tmp_path, "gate-south", clock, [peer_entry("gate-north") | hours])
    try:
        switch = Switch(north)
        sync = south.peer_of(north, monkeypatch, transport=httpx.MockTransport(switch))
        for c in (clock, ahead):
            c.advance(11 * 3600 + 54 * 60)  # 21:54 here, 21:59 there
        sync.poll()
        assert south.core.health()["peers"][0]["clock_skew_s"] == 300
        switch.up = False  # off at 22:00 by its clock
        clock.advance(4 * 60)  # 21:58 here
        sync.poll()
        [peer] = south.core.health()["peers"]
        assert peer["state"] == "closed" and peer["closed_since"] == "2026-03-02T13:55:00+00:00"
        clock.advance(8 * 3600 + 27 * 60)  # 06:25 here, 06:30 there: booting, still closed
        [peer] = south.core.health()["peers"]
        assert peer["state"] == "closed" and peer["closed_since"] == "2026-03-02T13:55:00+00:00"
        clock.advance(3 * 60)  # 06:28 here: its hours ended 3 minutes ago by its clock
        assert south.core.health()["peers"][0]["state"] == "stale"
    finally:
        north.close()
        south.close()


def test_a_peer_that_does_not_answer_to_its_name_says_which_setting(south, monkeypatch, caplog):
    """The north gate refused the name the south gate asks it by (its guard against DNS
    rebinding, docs/network.md): the south gate's devices page said only "HTTP 421", and its
    news was logged as "runs earlier code or does not list this gate". Both name the north
    gate's [web] allowed_hosts, as the office's pull does."""
    import logging

    sync = hostile(south, monkeypatch, '{"detail": "Misdirected Request"}', status=421)
    sync.poll()
    error = south.core.health()["peers"][0]["last_error"]
    assert "does not answer to testserver" in error and "allowed_hosts" in error
    with caplog.at_level(logging.WARNING, logger="checkpoint.peers"):
        sync.news({"type": "decision", "decision": "pass", "committed": True})
        assert sync.push() == {"gate-north": 421}
    [said] = [r.getMessage() for r in caplog.records if "news" in r.getMessage()]
    assert "allowed_hosts" in said and "earlier code" not in said


def test_a_peer_whose_key_was_rotated_is_refused_and_told_which_key_to_pin(
    north, pinned, monkeypatch
):
    """The north gate's issuer key was rotated and its new .pub brought to the south gate's
    trust folder under a new name, trust_key left as it was: every answer was 'forged' with
    no word of the key that does sign it. Still refused (the pinned key is the pinned key),
    its error names the trusted .pub that signs it and what to set."""
    from kiosk.passes import public_key_pem

    rotated = Ed25519PrivateKey.from_private_bytes(b"\x54" * 32)
    north.core.issuer_key = rotated
    (pinned.dir / "trust" / "gate-north-2027.pub").write_bytes(public_key_pem(rotated.public_key()))
    sync = pinned.peer_of(north, monkeypatch)
    north.passage(resident())
    sync.poll()
    [peer] = pinned.core.health()["peers"]
    assert peer["state"] == "forged" and sync.ledger.held() == {}
    assert "gate-north-2027.pub" in peer["last_error"]
    assert 'trust_key = "gate-north-2027"' in peer["last_error"]


def test_an_outing_over_the_quota_found_when_a_peer_answers_again_raises_a_guard_card(
    north, south, clock, monkeypatch
):
    """North unreachable: a household out at the north gate at 10:00 goes out again at the
    south gate at 10:05 (the south gate could not know). North's passages arrive at 10:15:
    the breach was counted in the reports only; no guard was told."""
    from kiosk.alarms import AlarmDesk
    from ui.guard.display import alarm_view

    way = Switch(north)
    way.up = False
    sync = south.peer_of(north, monkeypatch, transport=httpx.MockTransport(way))
    north.passage(resident("1-101"))
    north.passage(resident("2-202"))
    clock.advance(300)
    sync.poll()
    assert south.passage(resident("1-101", "Wang M"))["decision"] == "pass"
    south.passage(resident("3-303"))  # out at one gate only: within the quota
    desk = AlarmDesk(south.core.store, clock, quota=quota_of(south), tz=TZ)
    assert [a for a in desk.open_alarms([]) if a.detail == "quota_breach_late"] == []
    clock.advance(600)
    way.up = True
    sync.poll()
    [card] = [a for a in desk.open_alarms([]) if a.detail == "quota_breach_late"]
    assert (card.kind, card.household) == ("guard", "1-101")
    assert [gate for gate, _ in card.passages] == ["gate-north", "gate-south"]
    view = alarm_view(card, "en", TZ, frozenset())
    assert "out at gate-north 03-02 10:00, again at gate-south 03-02 10:05" in view["detail"]
    assert "1-101" not in view["who"]  # masked as the console masks it
    # still open after a restart, until a guard closes it; then closed after the next one
    again = AlarmDesk(south.core.store, clock, quota=quota_of(south), tz=TZ)
    [card] = [a for a in again.open_alarms([]) if a.detail == "quota_breach_late"]
    again.close(
        [card.key],
        "guard-zhou",
        [],
        record=lambda closed: south.core.store.audit(
            "guard-zhou", "alarm_ack", {"keys": [a.key for a in closed], "resolution": "handled"}
        ),
    )
    third = AlarmDesk(south.core.store, clock, quota=quota_of(south), tz=TZ)
    assert [a for a in third.open_alarms([]) if a.detail == "quota_breach_late"] == []


def test_an_outing_the_gate_denied_or_passed_knowing_raises_no_late_card(
    north, south, clock, monkeypatch
):
    from kiosk.alarms import AlarmDesk

    sync = south.peer_of(north, monkeypatch)
    north.passage(resident("1-101"))
    clock.advance(60)
    sync.poll()
    assert south.passage(resident("1-101", "Wang M"))["decision"] == "deny"
    desk = AlarmDesk(south.core.store, clock, quota=quota_of(south), tz=TZ)
    assert [a for a in desk.open_alarms([]) if a.detail == "quota_breach_late"] == []


def quota_of(gate: Gate):  # the gate's quota, as the console's desk has it
    return gate.config.policy.quota


def test_a_breach_found_late_names_the_other_gates_outing_whatever_the_quota(tmp_path, clock):
    """Two outings every two days: out at the north gate at 10:00, then twice at the south
    gate (10:05, 10:10) while north was unreachable. The third is over the quota; the one
    before it was the south gate's own, and the breach is the north outing's."""
    from kiosk import peers
    from kiosk.config.policy import QuotaConfig
    from kiosk.store import EventLog, format_ts

    store = EventLog(
        tmp_path / "k.db", "gate-south", clock, "NORMAL", migrations=[peers.MIGRATIONS]
    )
    log = store.open()
    try:
        for _ in range(2):
            clock.advance(300)
            log.append(EventDraft(direction="out", decision="pass", household="1-101"))
        clock.advance(300)

        def keep(db) -> None:
            db.table("peer_passages").insert(
                {"kiosk_id": "gate-north", "seq": 7, "household": "1-101", "direction": "out",
                 "decision": "pass", "ts": format_ts(NOW), "flags": "[]",
                 "fetched_at": format_ts(clock.now())}
            )  # fmt: skip

        log.submit(keep)
        quota = QuotaConfig(enabled=True, exits=2, period_days=2)
        found, last = peers.late_breaches(log.reader(), 0, "gate-south", quota, TZ)
        assert last == 1
        [breach] = found
        assert (breach.first[0], breach.second[0], breach.seq, breach.here) == (
            "gate-north", "gate-south", 2, True
        )  # fmt: skip
        assert peers.late_breaches(log.reader(), last, "gate-south", quota, TZ) == ([], 1)
    finally:
        store.close()


def test_a_breach_found_late_is_found_whichever_way_each_gate_spells_the_household(tmp_path, clock):
    """Before: the late-breach scan matched a household by its exact text, while the quota
    matches it as ``kiosk.lists.same_text`` does: the north gate's ``A-101`` (a pass issued in
    capitals) and this gate's ``a-101`` were two households, and the outing over the quota
    went unflagged."""
    from kiosk import peers
    from kiosk.config.policy import QuotaConfig
    from kiosk.store import EventLog, format_ts

    store = EventLog(
        tmp_path / "k.db", "gate-south", clock, "NORMAL", migrations=[peers.MIGRATIONS]
    )
    log = store.open()
    try:
        clock.advance(300)
        log.append(EventDraft(direction="out", decision="pass", household="a-101"))
        clock.advance(300)

        def keep(db) -> None:
            db.table("peer_passages").insert(
                {"kiosk_id": "gate-north", "seq": 7, "household": "Ａ-101", "direction": "out",
                 "decision": "pass", "ts": format_ts(NOW), "flags": "[]",
                 "fetched_at": format_ts(clock.now())}
            )  # fmt: skip

        log.submit(keep)
        quota = QuotaConfig(enabled=True, exits=1, period_days=2)
        [breach] = peers.late_breaches(log.reader(), 0, "gate-south", quota, TZ)[0]
        assert (breach.first, breach.second[0], breach.seq, breach.here) == (
            ("gate-north", format_ts(NOW)), "gate-south", 1, True
        )  # fmt: skip
    finally:
        store.close()


def test_a_gate_whose_clock_is_not_set_keeps_its_peers_passages_for_when_it_is(
    north, south, clock, monkeypatch
):
    """Back from a power cut with the LAN up and no network time, the south gate read 1970:
    every passage of the north gate was "ahead" of its clock, dropped, and never asked for
    again; once NTP answered, the household out at north went out again at south."""
    sync = south.peer_of(north, monkeypatch)
    north.passage(resident("1-101"))
    clock.advance(60)
    clock.set_wall(datetime(1970, 1, 1, 0, 1, tzinfo=UTC))
    clock.is_synced = False
    sync.poll()
    [peer] = south.core.health()["peers"]
    assert peer["rows_held"] == 0  # nothing of it can be judged yet
    clock.set_wall(NOW + timedelta(seconds=120))  # NTP
    clock.is_synced = True
    sync.poll()
    assert south.passage(resident("1-101", "Wang M"))["reasons"] == ["quota_exceeded"]


def test_a_breach_learnt_on_a_clock_set_back_by_a_power_cut_still_raises_the_card(
    north, south, clock, monkeypatch
):
    """The south gate let the household out at 10:05 while north was unreachable, then came
    back from a power cut with the LAN up and no network time, its clock at the 10:00 it last
    saved: north's passages arrived stamped as fetched "before" the outing, and the breach was
    taken as one the gate knew of."""
    from kiosk.alarms import AlarmDesk

    way = Switch(north)
    way.up = False
    sync = south.peer_of(north, monkeypatch, transport=httpx.MockTransport(way))
    north.passage(resident("1-101"))
    clock.advance(300)
    sync.poll()
    assert south.passage(resident("1-101", "Wang M"))["decision"] == "pass"
    clock.advance(600)
    clock.set_wall(NOW + timedelta(seconds=30))
    clock.is_synced = False
    way.up = True
    sync.poll()
    desk = AlarmDesk(south.core.store, clock, quota=quota_of(south), tz=TZ)
    [card] = [a for a in desk.open_alarms([]) if a.detail == "quota_breach_late"]
    assert card.household == "1-101"


@pytest.mark.parametrize("heard_after_ntp", [True, False], ids=["dated", "peer-down-since"])
def test_a_breach_learnt_on_a_clock_not_set_is_still_open_after_ntp_and_a_restart(
    north, south, clock, monkeypatch, heard_after_ntp
):
    """The south gate let the household out at 10:05 while north was unreachable, lost its
    power, and came back the next day with the LAN up and no network time, its clock at the
    10:00 it last saved: north's passages arrived and the card was raised. NTP answered; the
    daemon restarted: the card was gone, nobody having closed it (the rows' fetch time, the
    day before by the clock not set, lay before the alarms' look-back)."""
    from kiosk.alarms import AlarmDesk

    way = Switch(north)
    way.up = False
    sync = south.peer_of(north, monkeypatch, transport=httpx.MockTransport(way))
    north.passage(resident("1-101"))
    clock.advance(300)
    sync.poll()
    assert south.passage(resident("1-101", "Wang M"))["decision"] == "pass"
    clock.advance(600)
    clock.set_wall(NOW + timedelta(seconds=30))  # a day on, the clock saved at 10:00 read
    clock.is_synced = False
    way.up = True
    sync.poll()
    desk = AlarmDesk(south.core.store, clock, quota=quota_of(south), tz=TZ)
    assert [a.household for a in desk.open_alarms([]) if a.detail == "quota_breach_late"] == [
        "1-101"
    ]
    clock.advance(120)
    clock.set_wall(NOW + timedelta(days=1, minutes=20))  # NTP
    clock.is_synced = True
    way.up = heard_after_ntp  # an answer after NTP dates the rows fetched before it
    sync.poll()
    clock.advance(600)  # the daemon restarts: its desk reads the look-back again
    again = AlarmDesk(south.core.store, clock, quota=quota_of(south), tz=TZ)
    [card] = [a for a in again.open_alarms([]) if a.detail == "quota_breach_late"]
    assert card.household == "1-101"
    again.close(
        [card.key],
        "guard-zhou",
        [],
        record=lambda closed: south.core.store.audit(
            "guard-zhou", "alarm_ack", {"keys": [a.key for a in closed], "resolution": "handled"}
        ),
    )
    third = AlarmDesk(south.core.store, clock, quota=quota_of(south), tz=TZ)
    assert [a for a in third.open_alarms([]) if a.detail == "quota_breach_late"] == []


def test_a_guards_pass_before_a_breach_learnt_on_a_clock_set_back_still_raises_the_card(
    north, south, clock, monkeypatch
):
    """North unreachable, the guard at the south gate let the household out by hand at 10:05
    (nothing told of its outing at north at 10:00); the gate rebooted with the clock at the
    09:58 last saved and north's passage came in then: "fetched at 09:58", taken as known
    before the guard's pass of 10:05, so no guard was told of the breach."""
    from kiosk.alarms import AlarmDesk

    way = Switch(north)
    way.up = False
    sync = south.peer_of(north, monkeypatch, transport=httpx.MockTransport(way))
    north.passage(resident("1-101"))
    north.passage(resident("2-202"))
    clock.advance(300)
    sync.poll()
    guards_pass = EventDraft(direction="out", decision="manual_pass", reasons=("guard_override",),
                             household="1-101", holder="Wang M", operator="guard-zhou")  # fmt: skip
    south.core.store.append(guards_pass)
    clock.advance(600)
    clock.set_wall(NOW - timedelta(minutes=2))  # a reboot on the clock saved before
    clock.is_synced = False
    way.up = True
    sync.poll()
    desk = AlarmDesk(south.core.store, clock, quota=quota_of(south), tz=TZ)
    [card] = [a for a in desk.open_alarms([]) if a.detail == "quota_breach_late"]
    assert card.household == "1-101"
    # NTP answers (north unreachable again: nothing dates the fetch), and the guard lets 2-202
    # out by hand after north's passages came in: knowingly, no card
    clock.advance(60)
    clock.set_wall(NOW + timedelta(hours=2))
    clock.is_synced = True
    way.up = False
    sync.poll()
    south.core.store.append(dataclasses.replace(guards_pass, household="2-202"))
    again = AlarmDesk(south.core.store, clock, quota=quota_of(south), tz=TZ)  # a restart
    cards = [a for a in again.open_alarms([]) if a.detail == "quota_breach_late"]
    assert [a.household for a in cards] == ["1-101"]


def test_a_guards_pass_on_a_clock_never_set_is_counted_in_a_breach_found_after_ntp(
    tmp_path, north, monkeypatch
):
    """A fresh south gate booted without network time (1970): the guard let the household
    out by hand, nothing known of its outing at the north gate. Once NTP set the clock
    north's passage came in, and no card was raised: the guard's pass was looked for by
    its 1970 stamp, not when it happened."""
    from kiosk.alarms import AlarmDesk

    unset = FakeClock(start=datetime(1970, 1, 1, 0, 1, tzinfo=UTC), is_synced=False)
    south = Gate(tmp_path, "gate-south", unset, [peer_entry("gate-north")])
    try:
        sync = south.peer_of(north, monkeypatch)
        north.passage(resident("1-101"))
        sync.poll()  # north's passage is ahead of 1970: left with north for now
        south.core.store.append(
            EventDraft(direction="out", decision="manual_pass", reasons=("guard_override",),
                       household="1-101", holder="Wang M", operator="guard-zhou")
        )  # fmt: skip
        unset.advance(600)
        unset.set_wall(NOW + timedelta(minutes=15))  # NTP: the guard's pass was at 10:05
        unset.is_synced = True
        sync.poll()
        desk = AlarmDesk(south.core.store, unset, quota=quota_of(south), tz=TZ)
        [card] = [a for a in desk.open_alarms([]) if a.detail == "quota_breach_late"]
        assert card.household == "1-101"
        assert [gate for gate, _ in card.passages] == ["gate-north", "gate-south"]
    finally:
        south.close()


def test_an_outing_at_a_peer_on_a_clock_never_set_counts_here_once_that_peer_dates_it(
    tmp_path, south, clock, monkeypatch
):
    """The north gate, a fresh card booted without network time (1970), let the household
    out by a guard's manual pass. The south gate never learnt of it: north left out what it
    stamped before the look-back (1970), and once NTP set north's clock the passage was
    behind the cursor; the household went out again at the south gate."""
    unset = FakeClock(start=datetime(1970, 1, 1, 0, 1, tzinfo=UTC), is_synced=False)
    north = Gate(tmp_path, "gate-north", unset)
    try:
        sync = south.peer_of(north, monkeypatch)
        north.core.store.append(
            EventDraft(direction="out", decision="manual_pass", reasons=("guard_override",),
                       household="1-101", holder="Wang L", operator="guard-zhou")
        )  # fmt: skip
        sync.poll()
        [peer] = south.core.health()["peers"]
        assert peer["rows_held"] == 0  # a 1970 time says nothing: left with north for now
        unset.advance(600)
        unset.set_wall(NOW - timedelta(minutes=5))  # NTP at north: the pass was at 09:45
        unset.is_synced = True
        north.passage(resident("2-202"))  # its boot's clock now dates what it stamped before
        clock.advance(60)
        sync.poll()
        assert south.passage(resident("1-101", "Wang M"))["reasons"] == ["quota_exceeded"]
    finally:
        north.close()


def test_a_gate_whose_own_clock_is_not_set_does_not_blame_its_peers_clock(
    tmp_path, north, monkeypatch, caplog
):
    """Booted without network time the south gate read 1970: its devices page showed the
    north gate's clock "56 years ahead" and the log said to fix the north gate's NTP."""
    unset = FakeClock(start=datetime(1970, 1, 1, 0, 1, tzinfo=UTC), is_synced=False)
    south = Gate(tmp_path, "gate-south", unset, [peer_entry("gate-north")])
    try:
        sync = south.peer_of(north, monkeypatch)
        with caplog.at_level("INFO", logger="checkpoint.peers"):
            sync.poll()
        [peer] = south.core.health()["peers"]
        assert peer["state"] == "ok" and not peer["clock_skewed"]
        assert [r for r in caplog.records if "NTP" in r.getMessage()] == []
    finally:
        south.close()


def test_a_peer_heard_before_ntp_set_this_gates_clock_is_not_shown_lost_since_1970(
    tmp_path, north, monkeypatch
):
    """Booted without network time the south gate heard the north gate at "00:01 1970";
    NTP stepped the clock: north was at once "not heard since 01-01 08:01", a device alarm on
    the live page for nothing, and once north went down it stayed said so: a 1970 time."""
    unset = FakeClock(start=datetime(1970, 1, 1, 0, 1, tzinfo=UTC), is_synced=False)
    south = Gate(tmp_path, "gate-south", unset, [peer_entry("gate-north")])
    try:
        way = Switch(north)
        sync = south.peer_of(north, monkeypatch, transport=httpx.MockTransport(way))
        sync.poll()
        unset.advance(5)
        unset.set_wall(NOW)  # NTP
        unset.is_synced = True
        [peer] = south.core.health()["peers"]
        assert peer["state"] == "ok"
        assert peer["last_success"].startswith((NOW - timedelta(seconds=5)).isoformat()[:19])
        way.up = False
        unset.advance(600)
        sync.poll()
        [peer] = south.core.health()["peers"]
        assert peer["state"] == "stale"
        assert peer["stale_since"].startswith((NOW - timedelta(seconds=5)).isoformat()[:19])
    finally:
        south.close()


# --- a peer token speaks for its own gate alone ------------------------------------------


def test_a_peer_token_speaks_only_for_the_gate_it_was_issued_for(tmp_path, clock, monkeypatch):
    """Any passages:peer token (made for the east gate, or leaked from it) could send a closing
    notice naming the north gate and so silence north's outage alarm for the night: a token
    issued ``--for`` a gate pokes and closes as that gate alone (403, audited, for another),
    an older unbound one still works and is said to be unbound in the health report."""
    from kiosk.store import format_ts

    east = peer_entry("gate-east") | {"url": "http://gate-east.lan"}
    south = Gate(tmp_path, "gate-south", clock, [peer_entry("gate-north"), east])
    try:
        down = httpx.MockTransport(lambda r: httpx.Response(503))
        south.sync = PeerSync(
            south.core, south.config.compound, client=httpx.Client(transport=down)
        )
        south.core.peers = south.sync
        client = TestClient(south.app)
        east_info, east_token = south.core.tokens.create([PEER_SCOPE], "east", peer="gate-east")
        assert east_info.peer == "gate-east"
        assert south.core.tokens.get(east_info.id).peer == "gate-east"
        auth = {"Authorization": f"Bearer {east_token}"}
        at = format_ts(clock.now())
        closing = f"/api/v1/passages/poke?kiosk_id=gate-north&closing={at}"
        refused = client.post(closing, headers=auth)
        assert refused.status_code == 403 and "gate-east" in refused.json()["detail"]
        assert client.post(closing.split("&")[0], headers=auth).status_code == 403
        # Nothing taken: north is not closed, and no kiosk id is told apart (east's own 404s
        # only for a gate that is not a peer, as before).
        assert all(p["closed_since"] is None for p in south.core.health()["peers"])
        assert (
            client.post(closing.replace("gate-north", "gate-west"), headers=auth).status_code == 403
        )
        rows = list(
            south.core.store.reader().query(
                "select actor, action, detail from audit where action = 'peer_refused'"
            )
        )
        assert len(rows) == 3 and rows[0]["actor"] == f"token:{east_info.id}"
        assert json.loads(rows[0]["detail"]) == {"kiosk_id": "gate-north", "for": "gate-east"}
        # For its own gate it is taken as before.
        own = client.post(closing.replace("gate-north", "gate-east"), headers=auth)
        assert own.status_code == 202 and own.json()["closed"] is True
        # An older token bound to no gate still works, and the health report says so.
        assert south.core.health()["peer_tokens"]["unbound"] == 0
        _, old = south.core.tokens.create([PEER_SCOPE], "old")
        got = client.post(closing, headers={"Authorization": f"Bearer {old}"})
        assert got.status_code == 202
        tokens = south.core.health()["peer_tokens"]
        assert tokens["unbound"] == 1 and "any" in tokens["note"]
    finally:
        south.close()


def test_a_token_for_a_gate_needs_the_peer_scope_and_a_kiosk_id(tmp_path):
    from kiosk.clock import FakeClock as Clock
    from kiosk.store import EventLog
    from kiosk.tokens import MIGRATIONS, TokenError, TokenStore

    store = EventLog(tmp_path / "k.db", "k1", Clock(start=NOW), migrations=[MIGRATIONS]).open()
    try:
        tokens = TokenStore(store, b"p" * 32)
        with pytest.raises(TokenError, match="passages:peer"):
            tokens.create(["logs:read"], "office", peer="gate-north")
        with pytest.raises(TokenError, match="kiosk id"):
            tokens.create([PEER_SCOPE], "x", peer="a/b")
        info, _ = tokens.create([PEER_SCOPE], "north", peer="gate-north")
        assert info.as_dict()["for"] == "gate-north"
        assert tokens.list()[0].peer == "gate-north"
    finally:
        store.close()


def test_kiosk_token_new_for_a_gate_and_the_list_saying_unbound_ones(tmp_path, capsys):
    from checkpoint.cli import main

    db = str(tmp_path / "kiosk.db")
    new = ["token", "new", "--db", db, "--scope", PEER_SCOPE]
    assert main([*new, "--for", "gate-north", "--name", "north"]) == 0
    assert main([*new, "--name", "old"]) == 0
    assert "unbound: may poke and say closing as any gate" in capsys.readouterr().err
    assert main(["token", "new", "--db", db, "--scope", "logs:read", "--for", "gate-north"]) == 2
    assert main([*new, "--for", "../north"]) == 2
    capsys.readouterr()
    assert main(["token", "list", "--db", db]) == 0
    north, old = capsys.readouterr().out.splitlines()
    assert north.endswith("active  for gate-north") and "unbound" not in north
    assert "unbound: may poke and say closing as any gate" in old
    assert main(["token", "list", "--db", db, "--json"]) == 0
    assert [json.loads(x)["for"] for x in capsys.readouterr().out.splitlines()] == [
        "gate-north",
        None,
    ]


def test_a_peer_answering_with_its_clock_at_year_9999_breaks_neither_health_nor_the_poke(
    tmp_path, clock, monkeypatch
):
    """A host at the peer's address (or a Pi with a mad RTC) answered ``now`` = 9999-12-31:
    this gate's time plus that skew overflowed, so its health report and every closing notice
    after it were a 500 (a hostile host could keep the health endpoint down). The skew kept is
    bounded: shown far off, the notice judged as any other."""
    from kiosk.store import format_ts

    north = peer_entry("gate-north") | {"closed_from": "22:00", "closed_until": "06:00"}
    south = Gate(tmp_path, "gate-south", clock, [north])
    try:
        body = json.loads(page()) | {"now": "9999-12-31T23:59:59Z"}
        mad = httpx.MockTransport(lambda r: httpx.Response(200, json=body))
        monkeypatch.setenv(env_name("gate-north"), "kt_abcdef01_" + "a" * 43)
        south.sync = PeerSync(south.core, south.config.compound, client=httpx.Client(transport=mad))
        south.core.peers = south.sync
        south.sync.poll()
        clock.advance(12 * 3600)  # 22:00 in Shanghai: within its closed hours
        [peer] = south.core.health()["peers"]
        assert peer["clock_skewed"] is True and peer["clock_skew_s"] > 0
        client = TestClient(south.app, raise_server_exceptions=False)
        at = format_ts(clock.now())
        got = client.post(
            f"/api/v1/passages/poke?kiosk_id=gate-north&closing={at}", headers=bearer_of(south)
        )
        assert got.status_code == 403 and "not now by its clock" in got.json()["detail"]
    finally:
        south.close()


@pytest.mark.slow
def test_a_stranger_learns_nothing_of_which_gates_are_peers(north, south, monkeypatch):
    south.peer_of(north, monkeypatch)
    client = TestClient(south.app)
    bogus = {"Authorization": "Bearer kt_abcdef01_" + "a" * 43}
    answers = set()
    for kiosk_id in ("gate-north", "gate-east", "a/b", "x" * 65):
        for extra in ("", "&closing=2026-03-02T02:00:00Z", "&closing=yesterday"):
            for headers in ({}, bogus):
                got = client.post(
                    f"/api/v1/passages/poke?kiosk_id={kiosk_id}{extra}", headers=headers
                )
                answers.add((got.status_code, got.text))
    assert {code for code, _ in answers} == {401} and len(answers) == 1


def test_a_token_made_for_another_gate_is_named_as_such_in_the_log(north, caplog, monkeypatch):
    """The operator made north's token ``--for gate-east`` and put it on the south gate: its
    news and its closing notice were refused (403) and the log blamed older code at north."""
    south = Gate(north.dir.parent, "gate-south", north.clock, [peer_entry("gate-north")])
    try:
        _, token = north.core.tokens.create([PEER_SCOPE], "east", peer="gate-east")
        monkeypatch.setenv(env_name("gate-north"), token)
        sync = PeerSync(south.core, south.config.compound, client=TestClient(north.app))
        south.sync = sync
        sync.news({"type": "decision", "decision": "pass", "committed": True})
        with caplog.at_level("WARNING", logger="checkpoint.peers"):
            assert sync.push() == {"gate-north": 403}
        said = caplog.text
        assert "refuses this gate's token" in said and "--for gate-south" in said
    finally:
        south.close()


@pytest.mark.slow
@pytest.mark.parametrize("bound", [True, False])
def test_the_peer_routes_conform_to_their_schema_with_a_peer_token(
    tmp_path, clock, monkeypatch, bound
):
    """The schemathesis run of the API holds no passages:peer token: the peer routes were only
    ever asked for a 403. Here with one (bound to the peer, and unbound) on a gate with a
    peer: no 5xx from any value, every answer as declared (without a token: the stranger's
    test above; unauthenticated retries meet the per-address limit, a 429, here)."""
    import schemathesis
    from hypothesis import HealthCheck, given, settings
    from schemathesis.specs.openapi.checks import ignored_auth, positive_data_acceptance

    rate = {"api_rate_per_min": 100000}
    south = Gate(tmp_path, "gate-south", clock, [peer_entry("gate-north")], web=rate)
    try:
        down = httpx.MockTransport(lambda r: httpx.Response(503))
        monkeypatch.setenv(env_name("gate-north"), "kt_abcdef01_" + "a" * 43)
        south.sync = PeerSync(
            south.core, south.config.compound, client=httpx.Client(transport=down)
        )
        south.core.peers = south.sync
        _, token = south.core.tokens.create(
            [PEER_SCOPE], "north", peer="gate-north" if bound else None
        )
        headers = {"Authorization": f"Bearer {token}"}
        schema = schemathesis.openapi.from_asgi("/openapi.json", south.app)
        ops = [r.ok() for r in schema.get_all_operations()]
        ops = [op for op in ops if op.path.startswith("/api/v1/passages")]
        assert len(ops) == 2
        for operation in ops:

            @given(case=operation.as_strategy())
            @settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
            def check(case):
                case.call_and_validate(
                    headers=headers, excluded_checks=[positive_data_acceptance, ignored_auth]
                )

            check()
    finally:
        south.close()


def test_a_peer_threads_use_of_the_log_outlasting_the_stops_wait_keeps_the_log_in_use(
    south, monkeypatch
):
    """``stop`` waited ``STORE_USE_S`` (5 s) for a peer thread's use of the event log (a page
    kept on a slow card) and returned as if it had ended when it had not: the daemon then
    closed the log under the query. Now ``stop`` says so (False), and ``log_released`` (what
    the daemon's close of the log waits for, as for the list sync) is set only once it ended."""
    import threading

    from checkpoint import peers as peers_mod

    monkeypatch.setattr(peers_mod, "STORE_USE_S", 0.0)
    sync = PeerSync(south.core, south.config.compound, client=httpx.Client())
    inside, release = threading.Event(), threading.Event()

    def slow_use():
        with sync._uses.using():
            inside.set()
            release.wait(10)

    using = threading.Thread(target=slow_use)
    using.start()
    try:
        assert inside.wait(10)
        assert sync.stop(0) is False  # a use still under way
        assert not sync.log_released.is_set()
    finally:
        release.set()
        using.join(10)
    assert sync.log_released.is_set()  # set by the use's end
    sync.start()  # started again: it uses the log again
    assert not sync.log_released.is_set()
    sync.stop(0)  # its threads' first asks may be under way: released once they end
    assert sync.log_released.wait(10)
