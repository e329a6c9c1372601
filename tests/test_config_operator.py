"""Configs a Pi operator writes half-way: settings each within its own bounds that together
leave the kiosk unable to do its job are refused by ``check-config`` and ``kiosk run``, naming
the keys and what is allowed, instead of being accepted as ``ok``."""

from __future__ import annotations

import tomllib

import pytest
from test_config_types import problems_of

from kiosk.config import parse_config

THERMO = "[policy]\nmode = 'temperature_only'\n[thermometer.thermometry]\n"


@pytest.mark.parametrize(
    ("settings", "keys"),
    [
        # No estimate is both at or above normal_min_c and below the fever threshold: every
        # person is re-measured as "come closer" or denied for fever, nobody ever passes.
        ("fever_threshold_c = 36.0\nnormal_min_c = 36.5", ("normal_min_c", "fever_threshold_c")),
        ("fever_threshold_c = 36.0\nnormal_min_c = 36.0", ("normal_min_c", "fever_threshold_c")),
        (
            "fever_threshold_c = 36.0\nplausible_min_c = 36.0\nnormal_min_c = 35.0",
            ("plausible_min_c", "fever_threshold_c"),
        ),
        # A fever above plausible_max_c is "implausible": re-measured, never denied as fever.
        (
            "fever_threshold_c = 39.0\nplausible_max_c = 38.0",
            ("fever_threshold_c", "plausible_max_c"),
        ),
        (
            "fever_threshold_c = 38.0\nplausible_max_c = 38.0",
            ("fever_threshold_c", "plausible_max_c"),
        ),
    ],
)
def test_thermometry_thresholds_out_of_order_are_refused(
    settings: str, keys: tuple[str, str]
) -> None:
    problems = problems_of(THERMO + settings)
    assert len(problems) == 1, problems
    problem = problems[0]
    assert problem.startswith("thermometer.thermometry: "), problem
    for key in keys:
        assert key in problem, problem
    assert "Value error" not in problem


def test_thermometry_thresholds_in_order_stay_valid() -> None:
    # The defaults, and the tightest order that still leaves a normal band and a fever band.
    parse_config({})
    parse_config(
        tomllib.loads(
            THERMO + "fever_threshold_c = 36.1\nnormal_min_c = 36.0\nplausible_min_c = 36.0\n"
            "plausible_max_c = 38.0\n"
        )
    )
