"""A scenario's own keys are as strict as its ``[config]``: a value of the wrong TOML type is
an error naming the step and the key, in TOML's words, never a converted value (``at_s =
"1"`` ran at 1 s, ``body_c = "36.6"`` measured 36.6, ``leaves = "false"`` walked away)."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from checkpoint.cli import main
from checkpoint.replay import ScenarioError, load_scenario, parse_scenario, shipped_scenarios

STEP = 'name = "x"\n[[steps]]\n'


def error_of(toml: str) -> str:
    with pytest.raises(ScenarioError) as info:
        parse_scenario(tomllib.loads(toml), "bad.toml")
    return str(info.value)


@pytest.mark.parametrize(
    ("toml", "problem"),
    [
        (
            STEP + 'at_s = "1"',
            "steps[0].at_s: should be a decimal number (got a string: write 1 without the quotes)",
        ),
        (
            STEP + 'at_s = 1\nbody_c = "36.6"',
            "steps[0].body_c: should be a decimal number"
            " (got a string: write 36.6 without the quotes)",
        ),
        (
            STEP + 'at_s = 1\nleaves = "false"',
            "steps[0].leaves: should be true or false"
            " (got a string: write false without the quotes)",
        ),
        (STEP + "at_s = 1\nambient_c = true", "steps[0].ambient_c: should be a decimal number"),
        (
            STEP + 'at_s = 1\nclock_jump_s = "60"',
            "steps[0].clock_jump_s: should be a decimal number (got a string: write 60",
        ),
        (
            STEP + 'at_s = 1\nthermometer = { name = "nack", count = 2.0 }',
            "steps[0].thermometer.count: should be an integer (got a decimal number: write 2)",
        ),
        (
            STEP + 'at_s = 1\nquarantine = { household = "H-1", days = "14" }',
            "steps[0].quarantine.days: should be an integer (got a string: write 14",
        ),
        (
            STEP + 'at_s = 1\npass = { household = "A", holder = "B", days = "30" }',
            "steps[0].pass.days: should be a decimal number (got a string: write 30",
        ),
        (
            STEP + "at_s = 1\npass = 5",
            "steps[0].pass: should be a table or a string (got an integer)",
        ),
        (
            STEP + 'at_s = 1\nexpect = { decision = "deny", reasons = "fever" }',
            "steps[0].expect.reasons: should be an array (got a string)",
        ),
        (
            STEP + 'at_s = 1\nexpect = { decision = "deny", exact = "true" }',
            "steps[0].expect.exact: should be true or false (got a string: write true",
        ),
        (
            STEP + 'at_s = 1\nexpect = { decision = "denied" }',
            'steps[0].expect.decision: should be one of "pass", "deny", "manual_pass",'
            ' "manual_deny" (got "denied")',
        ),
        ('name = "x"\nduration_s = "60"\n[[steps]]\nat_s = 1', "duration_s: should be a decimal"),
        ('name = "x"\nclock_synced = "yes"\n[[steps]]\nat_s = 1', "clock_synced: should be true"),
        ("name = 5\n[[steps]]\nat_s = 1", "name: should be a string (got an integer)"),
        (
            'name = "x"\nstart = "2026-03-02T09:00:00+08:00"\n[[steps]]\nat_s = 1',
            "start: should be a date and time with its offset (2026-03-02T09:00:00+08:00)"
            " (got a string)",
        ),
        ('name = "x"\nconfig = "full"\n[[steps]]\nat_s = 1', "config: should be a table"),
    ],
)
def test_a_scenario_value_of_the_wrong_type_names_the_step_and_key(toml, problem):
    message = error_of(toml)
    assert message.startswith(f"bad.toml: {problem}")


def test_kiosk_replay_says_so_in_one_line_exit_2(tmp_path, capsys):
    path = tmp_path / "bad.toml"
    path.write_text('name = "x"\n[[steps]]\nat_s = 1\nbody_c = "36.6"\n')
    assert main(["replay", str(path)]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert f"{path}: steps[0].body_c: should be a decimal number" in captured.err
    assert "Traceback" not in captured.err


@pytest.mark.parametrize("path", shipped_scenarios(), ids=lambda p: p.stem)
def test_every_shipped_scenario_still_loads(path: Path):
    assert load_scenario(path).steps
