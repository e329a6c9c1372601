"""Scenarios: every shipped one meets its expectations; the format refuses mistakes clearly."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from checkpoint.cli import main
from checkpoint.replay import (
    SCENARIO_DIR,
    Expect,
    PassSpec,
    ScenarioError,
    ScenarioKeys,
    check_expectation,
    load_scenario,
    parse_scenario,
    replay,
    shipped_scenarios,
)
from kiosk.passes import PassError

RULES = {
    "fever",
    "implausible",
    "no_temperature",
    "sensor_fault",
    "reader_fault",
    "forged",
    "unknown_key",
    "malformed",
    "expired",
    "not_yet_valid",
    "revoked",
    "quarantined",
    "quota_exceeded",
    "passback",
    "outside_hours",
    "store_fault",
    "ok",
    "demo",
}


#: Every shipped scenario's decisions, recorded with ``kiosk replay`` before the replay
#: harness moved onto the composition root; a change of the program must not change them.
#: Left out: when things happened and what the thermometer measured (``t_s``, ``latency_ms``,
#: ``temp_c``), which follow the virtual-time cadence of the devices, not the rules.
DECISIONS = json.loads((Path(__file__).parent / "data" / "replay_decisions.json").read_text())
TIMING = ("t_s", "latency_ms", "temp_c")


def _decisions(result) -> list[dict]:
    return [{k: v for k, v in rec.items() if k not in TIMING} for rec in result.decisions]


def test_the_recorded_decisions_cover_every_shipped_scenario():
    assert set(DECISIONS) == {p.stem for p in shipped_scenarios()}


def test_a_scenario_ships_for_every_rule_and_the_demo():
    assert {p.stem for p in shipped_scenarios()} >= RULES


@pytest.mark.slow
@pytest.mark.parametrize(
    "path",
    [p for p in shipped_scenarios() if p.stem not in ("demo", "gate_fault")],
    ids=lambda p: p.stem,
)
def test_shipped_scenario_meets_its_expectations(path):
    scenario = load_scenario(path)
    result = replay(scenario)
    assert result.failures == []
    assert result.expectations >= 1
    assert sum(1 for d in result.decisions if "expect" in d) == result.expectations
    assert _decisions(result) == DECISIONS[path.stem]


@pytest.mark.slow  # the whole demo day in virtual time: ~6 s of CPU
def test_demo_stream_meets_its_expectations_and_covers_what_the_demo_promises():
    result = replay(load_scenario("demo"))
    assert result.failures == []
    assert _decisions(result) == DECISIONS["demo"]
    assert sum(1 for d in result.decisions if "expect" in d) == result.expectations
    alarms = {a["alarm"] for a in result.alarms}
    assert {"fever", "forged_pass", "quarantine_breach", "sensor_fault", "reader_fault"} <= alarms
    decisions = [d["decision"] for d in result.decisions]
    assert decisions.count("pass") >= 3
    assert "manual_pass" in decisions


def _scenario(steps, **top):
    data = {"name": "t", "steps": steps}
    data.update(top)
    return parse_scenario(data, "t.toml")


@pytest.mark.slow
def test_failed_expectation_is_reported_with_the_step():
    scenario = _scenario(
        [
            {
                "at_s": 1,
                "pass": {"household": "A-1", "holder": "Li"},
                "body_c": 38.8,
                "direction": "in",
                "expect": {"decision": "pass"},
            }
        ]
    )
    result = replay(scenario)
    assert not result.ok
    assert result.failures[0].startswith("step 0")
    assert "decision deny != pass" in result.failures[0]


def test_expectation_without_any_decision_fails():
    scenario = _scenario(
        [{"at_s": 1, "body_c": 36.6, "expect": {"decision": "pass"}}], duration_s=3
    )
    result = replay(scenario)
    assert result.failures == ["step 0: expected a pass, got none"]


@pytest.mark.slow
def test_gate_commands_are_recorded_in_virtual_time():
    result = replay(load_scenario("ok"))
    (t_open, is_open), (t_close, is_closed) = result.gate_commands
    assert is_open and not is_closed
    assert t_close - t_open == pytest.approx(3.0, abs=0.1)


@pytest.mark.slow
def test_replay_keeps_the_event_log_when_asked(tmp_path):
    db = tmp_path / "replay.db"
    replay(load_scenario("passback"), db_path=db)
    import sqlite3

    rows = sqlite3.connect(db).execute("SELECT decision FROM events ORDER BY seq").fetchall()
    assert rows == [("pass",), ("deny",)]


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"steps": [{"at_s": 1}]}, "name: missing (this key is required)"),
        ({"name": "x", "steps": []}, "steps: should have at least 1 entry"),
        ({"name": "x", "steps": [{"at_s": 2}, {"at_s": 1}]}, "steps must be in at_s order"),
        ({"name": "x", "steps": [{"at_s": 1, "bodyc": 36}]}, "steps[0].bodyc: unknown key"),
        (
            {
                "name": "x",
                "steps": [{"at_s": 1, "pass": {"household": "A", "holder": "B", "key": "x"}}],
            },
            "steps[0].pass.key",
        ),
        (
            {"name": "x", "steps": [{"at_s": 1, "code": "a", "pass": "p"}]},
            "at most one of code, pass, frame",
        ),
        (
            {"name": "x", "config": {"engine": {"order": "sideways"}}, "steps": [{"at_s": 1}]},
            "config.engine.order",
        ),
        (
            {"name": "x", "start": datetime(2026, 3, 2, 9, 0), "steps": [{"at_s": 1}]},
            "timezone",
        ),
        (  # a traceback from the engine before
            {
                "name": "x",
                "config": {"site": {"direction": "in"}},
                "steps": [{"at_s": 1, "code": "a", "direction": "out"}],
            },
            "steps[0].direction: this kiosk only passes 'in'",
        ),
        (  # a traceback from issue_pass before (it needs at least an hour)
            {
                "name": "x",
                "steps": [{"at_s": 1, "pass": {"household": "A", "holder": "B", "days": 0.0001}}],
            },
            "steps[0].pass.days: should be at least 0.041",
        ),
        (
            {
                "name": "x",
                "steps": [{"at_s": 1, "pass": {"household": "A", "holder": "B", "days": 2731}}],
            },
            "steps[0].pass.days: should be at most 2730",
        ),
        (  # the step would silently never run (exit 0, nothing checked)
            {"name": "x", "duration_s": 5, "steps": [{"at_s": 1}, {"at_s": 30, "body_c": 36}]},
            "steps[1].at_s: 30 is after duration_s 5",
        ),
    ],
)
def test_malformed_scenario_names_the_field(data, message):
    with pytest.raises(ScenarioError) as info:
        parse_scenario(data, "bad.toml")
    assert message in str(info.value)
    assert str(info.value).startswith("bad.toml: ")


def test_revoking_an_unknown_pass_id_is_a_scenario_error():
    scenario = _scenario([{"at_s": 1, "revoke": "nobody"}])
    with pytest.raises(ScenarioError, match="no pass with id 'nobody'"):
        replay(scenario)


@pytest.mark.slow
def test_revoking_a_pass_twice_is_a_scenario_error_naming_the_step():
    """A guard's second revocation of a pass is refused (its first reason and guard stand):
    a scenario revoking it again is told which step, not a traceback."""
    card = {"id": "li", "household": "A-1", "holder": "Li"}
    scenario = _scenario(
        [
            {"at_s": 1, "pass": card, "body_c": 36.6, "direction": "in"},
            {"at_s": 20, "revoke": "li"},
            {"at_s": 30, "revoke": "li"},
        ]
    )
    with pytest.raises(ScenarioError, match=r"steps\[2\]\.revoke: .*already revoked"):
        replay(scenario)


@pytest.mark.parametrize(
    ("step", "message"),
    [
        (
            "manual = {decision = 'manual_pass', operator = 'g', reason = 'r',"
            " kind = 'registration'}",
            "steps[0].manual: a registration needs the person's details",
        ),
        (
            "manual = {decision = 'manual_pass', operator = ' ', reason = 'r', direction = 'in'}",
            "steps[0].manual: operator:",
        ),
        ("quarantine = {household = '  '}", "steps[0].quarantine: household:"),
    ],
)
def test_cli_replay_a_step_the_kiosk_refuses_is_a_malformed_scenario(
    tmp_path, capsys, step, message
):
    """A guard action or list change the kiosk refuses used to end the replay with a
    traceback and exit 1 (as if an expectation had failed); it is the scenario's mistake."""
    _refused_as_malformed(tmp_path, capsys, f"name = 'x'\n[[steps]]\nat_s = 0\n{step}\n", message)


@pytest.mark.parametrize(
    ("config", "step", "message"),
    [
        (
            "present = 'scanner'\n[config.readers]\nsources = [{type = 'serial', name = 's'}]",
            "camera = 'freeze'",
            "camera steps need the fake camera",
        ),
        ("[config.gate.driver]\ntype = 'none'", "gate = 'unplug'", "gate steps need the fake gate"),
    ],
)
def test_cli_replay_a_device_step_without_that_fake_device_is_a_malformed_scenario(
    tmp_path, capsys, config, step, message
):
    """A camera or gate step on a kiosk without the fake camera or gate ended the replay with
    an AttributeError traceback (exit 1)."""
    scenario = f"name = 'x'\n{config}\n[[steps]]\nat_s = 0\n{step}\n"
    _refused_as_malformed(tmp_path, capsys, scenario, message)


def _refused_as_malformed(tmp_path, capsys, scenario: str, message: str) -> None:
    """``kiosk replay`` of ``scenario`` exits 2 with ``message`` and no traceback."""
    path = tmp_path / "bad.toml"
    path.write_text(scenario)
    assert main(["replay", str(path)]) == 2
    err = capsys.readouterr().err
    assert message in err
    assert "Traceback" not in err


def test_keys_issue_genuine_forged_and_untrusted_passes():
    keys = ScenarioKeys()
    now = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
    text, issued = keys.issue(PassSpec(household="A-1", holder="Li"), now)
    assert keys.trust.verify(text).pass_id == issued.pass_id
    forged, _ = keys.issue(PassSpec(household="A-1", holder="Li", key="forged"), now)
    with pytest.raises(PassError) as info:
        keys.trust.verify(forged)
    assert info.value.reason == "pass_bad_signature"
    unknown, _ = keys.issue(PassSpec(household="A-1", holder="Li", key="unknown"), now)
    with pytest.raises(PassError) as info:
        keys.trust.verify(unknown)
    assert info.value.reason == "pass_unknown_key"


def test_check_expectation_reads_reasons_as_must_include_unless_exact():
    decision = {"decision": "deny", "reasons": ["pass_expired", "fever"], "committed": True}
    assert check_expectation(Expect(decision="deny", reasons=("fever",)), decision) is None
    problem = check_expectation(Expect(decision="deny", reasons=("fever",), exact=True), decision)
    assert "reasons" in problem


@pytest.mark.slow
def test_cli_replay_prints_one_json_line_per_decision(capsys):
    assert main(["replay", "passback"]) == 0
    out = capsys.readouterr()
    lines = [json.loads(line) for line in out.out.splitlines()]
    assert [rec["decision"] for rec in lines] == ["pass", "deny"]
    assert all(rec["expect"] == "ok" for rec in lines)
    assert "2/2 expectations met" in out.err


@pytest.mark.slow
def test_cli_replay_exits_1_when_an_expectation_fails(tmp_path, capsys):
    path = tmp_path / "wrong.toml"
    path.write_text(
        'name = "wrong"\n[[steps]]\nat_s = 1\nbody_c = 39.0\ndirection = "in"\n'
        'pass = { household = "A-1", holder = "Li" }\nexpect = { decision = "pass" }\n'
    )
    assert main(["replay", str(path)]) == 1
    err = capsys.readouterr().err
    assert "expectation failed" in err
    assert "Traceback" not in err


def test_cli_replay_exits_2_for_a_malformed_scenario(tmp_path, capsys):
    path = tmp_path / "bad.toml"
    path.write_text("name = 'x'\n[[steps]]\nat_s = 'soon'\n")
    assert main(["replay", str(path)]) == 2
    err = capsys.readouterr().err
    assert "steps[0].at_s" in err
    assert err.count("\n") == 1


def test_cli_replay_missing_file_is_bad_input(capsys):
    assert main(["replay", "/nonexistent/scenario.toml"]) == 2
    assert "cannot read" in capsys.readouterr().err


def test_shipped_scenarios_live_in_the_package():
    assert SCENARIO_DIR.name == "scenarios"
    assert (SCENARIO_DIR / "demo.toml").is_file()


@pytest.mark.slow  # integration: real sockets, processes or deadlines (CI runs it)
def test_gate_fault_scenario_alarms_and_recovers():
    result = replay(load_scenario("gate_fault"))
    assert result.failures == []
    assert _decisions(result) == DECISIONS["gate_fault"]
    states = [(a["alarm"], a["state"]) for a in result.alarms]
    assert ("gate_fault", "raised") in states
    assert ("gate_fault", "cleared") in states
    assert result.gate_commands[-1][1] is False


@pytest.mark.slow
def test_frame_step_goes_through_the_real_frame_pipeline(tmp_path):
    import cv2

    from drivers.fake_camera import SceneParams, render_scene

    params = SceneParams("paper", 220, 0.0, 0.0, 0.0, 0.0, 1.0, 0.0, 95)
    cv2.imwrite(str(tmp_path / "coupon.png"), render_scene("https://shop.example/c", params, 1))
    cv2.imwrite(str(tmp_path / "wall.png"), render_scene(None, params, 2))
    (tmp_path / "frames.toml").write_text(
        'name = "frames"\n'
        '[[steps]]\nat_s = 1\nframe = "wall.png"\n'
        '[[steps]]\nat_s = 3\nframe = "coupon.png"\nbody_c = 36.6\ndirection = "in"\n'
        'expect = { decision = "deny", reasons = ["pass_malformed"], exact = true }\n'
    )
    result = replay(load_scenario(tmp_path / "frames.toml"))
    assert result.failures == []
    assert len(result.decisions) == 1


def test_missing_frame_file_is_a_scenario_error(tmp_path):
    path = tmp_path / "s.toml"
    path.write_text('name = "x"\n[[steps]]\nat_s = 1\nframe = "nope.png"\n')
    with pytest.raises(ScenarioError, match=r"steps\[0\].frame: no such file nope.png"):
        load_scenario(path)


@pytest.mark.slow
def test_clock_jump_step_moves_wall_time_for_the_rules():
    scenario = _scenario(
        [
            {"at_s": 0.5, "clock_jump_s": 3600},
            {
                "at_s": 1,
                "pass": {"household": "A-1", "holder": "Li"},
                "body_c": 36.6,
                "direction": "out",
                "expect": {"decision": "deny", "reasons": ["outside_hours"], "exact": True},
            },
        ],
        start=datetime.fromisoformat("2026-03-02T17:00:00+08:00"),
        config={"policy": {"hours": {"enabled": True, "mode": "closed"}}},
    )
    assert replay(scenario).failures == []


@pytest.mark.slow
def test_loop_bench_times_every_replayed_passage(tmp_path):
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from checkpoint.bench import loop
    from kiosk.clock import FakeClock

    key = Ed25519PrivateKey.generate()
    frames = loop._frames(key, FakeClock(), 3)
    figures = loop._one_run(6, frames, key, tmp_path)
    assert figures["missed"] == 0
    assert figures["p99_ms"] >= figures["p50_ms"] > 0
    assert figures["commit_p50_ms"] <= figures["p50_ms"]
    assert figures["p99_ms"] - figures["decode_ms"] >= 0


@pytest.mark.parametrize(("frozen_frame_s", "alarmed"), [(3.0, True), (60.0, False)])
def test_a_frozen_camera_is_caught_by_the_camera_readers_own_watchdog(frozen_frame_s, alarmed):
    """Replay runs ``drivers.camera.CameraReader`` on the fake camera: the frozen-frame limit
    of the reader's watchdog config decides whether the wedged camera is a fault."""
    watchdog = {"frozen_frame_s": frozen_frame_s, "reopen_initial_s": 0.1}
    scenario = _scenario(
        [{"at_s": 1, "camera": "freeze"}, {"at_s": 9, "camera": "unfreeze"}],
        duration_s=12,
        config={"readers": {"sources": [{"type": "fake_camera", "watchdog": watchdog}]}},
    )
    states = [(a["alarm"], a["state"]) for a in replay(scenario).alarms]
    if alarmed:
        assert states == [("reader_fault", "raised"), ("reader_fault", "cleared")]
    else:
        assert states == []


def test_demo_visitors_walk_on_when_the_bus_announces_a_decision(core):
    """The demo watches decisions on the bus, as the screens do (no hook on the runner)."""
    import asyncio

    from checkpoint.demo import walk_on_when_decided
    from checkpoint.replay import DeviceTarget

    async def main() -> list[str]:
        loop = asyncio.get_running_loop()
        left = asyncio.Event()
        seen: list[str] = []

        class Person:
            def person_leaves(self) -> None:
                seen.append("left")
                loop.call_soon_threadsafe(left.set)

        target = DeviceTarget(core.clock, emulator=Person())
        task = asyncio.create_task(walk_on_when_decided(core.bus, target))
        await asyncio.sleep(0)  # let it subscribe
        core.bus.publish({"type": "decision", "decision": "pass"})
        await asyncio.wait_for(left.wait(), 10)
        task.cancel()
        return seen

    assert asyncio.run(main()) == ["left"]
    assert core.bus.subscribers == 0
