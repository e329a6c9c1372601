"""The command line: every verb answers --help, is documented, and fails cleanly."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from checkpoint.cli import build_parser, main

ROOT = Path(__file__).resolve().parent.parent
#: The verbs docs/cli.md promises (more may exist; each is checked against the docs).
REFERENCE_VERBS = [
    "demo", "run", "check-config", "keys", "pass", "scan", "replay", "token", "pull",
    "purge", "verify-log", "calibrate", "collect", "bench",
]  # fmt: skip


def _verbs() -> list[str]:
    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "verb")
    return sorted(sub.choices)


def test_every_contract_verb_exists():
    assert set(REFERENCE_VERBS) <= set(_verbs())


@pytest.mark.parametrize("verb", _verbs())
def test_every_verb_has_help(verb, capsys):
    with pytest.raises(SystemExit) as info:
        main([verb, "--help"])
    assert info.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: kiosk " + verb)


@pytest.mark.parametrize("verb", _verbs())
def test_every_verb_is_documented_in_the_readme(verb):
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert re.search(rf"`kiosk {re.escape(verb)}\b", readme), f"README does not document {verb}"


def test_unknown_verb_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as info:
        main(["frobnicate"])
    assert info.value.code == 2
    assert "invalid choice" in capsys.readouterr().err


@pytest.mark.slow  # integration: real sockets, processes or deadlines (CI runs it)
def test_console_script_runs_as_a_module():
    proc = subprocess.run(
        [sys.executable, "-m", "checkpoint", "--version"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0
    assert proc.stdout.startswith("kiosk ")


def test_demo_on_a_busy_port_names_a_free_one(capsys):
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        code = main(["demo", "--port", str(port)])
    err = capsys.readouterr().err
    assert code == 1
    suggested = int(re.search(r"try: kiosk demo --port (\d+)", err).group(1))
    assert f"port {port} is already in use" in err and suggested != port
    with socket.socket() as free:
        free.bind(("127.0.0.1", suggested))  # the suggestion was free


def test_a_demo_sign_in_survives_the_scenarios_day_jumps():
    from checkpoint.demo import demo_config
    from checkpoint.replay import SCENARIO_DIR, load_scenario
    from kiosk.accounts import Account
    from kiosk.clock import FakeClock
    from ui.auth import SessionManager

    config = demo_config(0)
    scenario = load_scenario(SCENARIO_DIR / "demo.toml")
    round_jump_s = sum(step.clock_jump_s or 0 for step in scenario.steps)
    clock = FakeClock()
    sessions = SessionManager(b"k" * 32, clock, config.web.session_hours * 3600)
    cookie, _ = sessions.issue(Account("guard", "guard", "x"))
    for _round in range(6):  # about 40 minutes of demo
        clock.advance(round_jump_s)
    assert sessions.read(cookie) is not None


def test_bench_only_takes_sections_comma_separated_or_repeated(monkeypatch, capsys):
    from checkpoint.cli import bench_cmd

    asked: list[list[str] | None] = []

    def fake_run_all(quick: bool = False, only: list[str] | None = None) -> dict:
        asked.append(only)
        return {}

    monkeypatch.setattr(bench_cmd, "run_all", fake_run_all)
    assert main(["bench", "--json", "--only", "decode,thermo", "--only", "edge"]) == 0
    assert asked == [["decode", "thermo", "edge"]]
    assert main(["bench", "--only", "decode,nonsense"]) == 2
    assert "unknown section 'nonsense'" in capsys.readouterr().err
    assert len(asked) == 1  # nothing ran


@pytest.mark.parametrize("only", ["", ",", " , "])
def test_bench_only_naming_no_section_is_a_usage_error_not_the_whole_suite(
    monkeypatch, capsys, only
):
    """`--only "$SECTIONS"` with the variable empty ran every section, edge and memory
    included (over ten minutes of a loaded machine), where the caller asked for some."""
    from checkpoint.cli import bench_cmd

    asked: list[list[str] | None] = []
    monkeypatch.setattr(
        bench_cmd, "run_all", lambda quick=False, only=None: asked.append(only) or {}
    )
    assert main(["bench", "--json", "--only", only]) == 2
    assert asked == []
    assert "--only names no section" in capsys.readouterr().err


def test_the_fleet_bench_runs_only_when_named(monkeypatch):
    from checkpoint import bench

    ran: list[str] = []
    monkeypatch.setattr(
        bench, "_section_runner", lambda name: lambda quick: ran.append(name) or {"ok": True}
    )
    result = bench.run_all(quick=True)
    assert "fleet" not in ran and sorted(ran) == sorted(bench.SECTIONS)
    assert list(result)[: len(bench.SECTIONS)] == list(bench.SECTIONS)  # the contract's order
    ran.clear()
    assert bench.run_all(quick=True, only=["fleet"])["fleet"] == {"ok": True}
    assert ran == ["fleet"]


def test_the_memory_bench_runs_before_any_section_loads_the_camera_libraries(monkeypatch):
    """``decode`` loads cv2 and numpy into the bench process; measured after it, the daemon
    shared those pages with the bench and its PSS read ~8.5 MB low (129.8 against 138.3)."""
    from checkpoint import bench

    ran: list[str] = []
    monkeypatch.setattr(
        bench, "_section_runner", lambda name: lambda quick: ran.append(name) or {"ok": True}
    )
    result = bench.run_all(quick=True, only=["decode", "pull", "memory"])
    assert ran == ["memory", "decode", "pull"]
    assert list(result) == ["decode", "pull", "memory", "rss_mb"]


def test_a_bench_section_that_fails_is_reported_and_the_others_are_kept(monkeypatch, capsys):
    """A long bench run whose one section crashes still prints every other section's figures
    (the crash as that section's reason) and exits 1, not a traceback and no JSON at all."""
    from checkpoint import bench

    def runner(name):
        def run(quick):
            if name == "decide":
                raise RuntimeError("the demo did not start")
            return {"median_us": 1.0}

        return run

    monkeypatch.setattr(bench, "_section_runner", runner)
    assert main(["bench", "--json", "--only", "decide,store"]) == 1
    captured = capsys.readouterr()
    result = json.loads(captured.out)
    assert result["store"] == {"median_us": 1.0}
    assert result["decide"] == {
        "available": False,
        "reason": "failed: RuntimeError: the demo did not start",
    }
    assert "kiosk bench: decide failed: RuntimeError: the demo did not start" in captured.err


def test_two_demos_on_one_machine_can_be_two_gates(monkeypatch, capsys):
    """Before: `kiosk demo` had no option for its kiosk id, so a second demo beside the
    first answered as the same gate, demo-gate (a compound's pull could not be tried)."""
    import checkpoint.demo
    from checkpoint.demo import demo_config

    started = {}

    def run_demo_process(port, data, host="127.0.0.1", *, kiosk_id=None, leaving=None):
        started.update(port=port, kiosk_id=kiosk_id)
        return 0

    monkeypatch.setattr(checkpoint.demo, "run_demo_process", run_demo_process)
    assert main(["demo", "--port", "0", "--kiosk-id", "gate-2"]) == 0
    assert started == {"port": 0, "kiosk_id": "gate-2"}
    assert demo_config(0, kiosk_id="gate-2").site.kiosk_id == "gate-2"
    assert demo_config(0).site.kiosk_id == "demo-gate"
    for bad, said in (("gate 2", "letters, digits"), ("", "not be empty"), ("g" * 65, "64")):
        started.clear()
        assert main(["demo", "--port", "0", "--kiosk-id", bad]) == 2
        err = capsys.readouterr().err
        assert err.startswith("kiosk demo: --kiosk-id: should") and said in err, err
        assert started == {}


def test_an_earlier_demos_data_as_another_gate_is_refused_in_words(monkeypatch, tmp_path, capsys):
    """Before: 'the kiosk's database could not be written (...): check the card', exit 1."""
    import checkpoint.demo
    from checkpoint.app import ForeignLog
    from checkpoint.cli.daemon_cmd import DEMO_MARK

    def run_demo_process(*args, **kwargs):
        raise ForeignLog("store_fault", "the config's words", owner="demo-gate")

    monkeypatch.setattr(checkpoint.demo, "run_demo_process", run_demo_process)
    (tmp_path / DEMO_MARK).write_text("")
    argv = ["demo", "--port", "0", "--data", str(tmp_path), "--kiosk-id", "gate-2"]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert f"--data {tmp_path} holds the demo log of kiosk 'demo-gate'" in err
    assert "run it with --kiosk-id demo-gate, or give another --data" in err
    assert "check the card" not in err and "site.kiosk_id" not in err


def test_a_log_of_another_gate_names_its_owner(tmp_path, clock):
    """The demo has no config: its refusal said "set site.kiosk_id back". The refusal
    carries the gate the log is of, for the demo to name its --kiosk-id."""
    from test_store_full import draft

    from checkpoint.app import ForeignLog, _check_log_owner
    from kiosk.store import EventLog

    with EventLog(tmp_path / "kiosk.db", "demo-gate", clock) as log:
        log.append(draft())
        with pytest.raises(ForeignLog) as refused:
            _check_log_owner(log, "gate-2")
    assert refused.value.owner == "demo-gate"
