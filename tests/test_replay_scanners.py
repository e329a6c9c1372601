"""Replay drives a scenario's scanner through its real driver on a fake device (the house
rule: replay drives the real device wrappers on fakes), not straight into the engine."""

from __future__ import annotations

import pytest

from checkpoint.replay import parse_scenario, replay

SOURCES = {
    "fake_hid": {"type": "fake_hid", "name": "handheld"},
    "hid": {"type": "hid", "name": "handheld", "device": "/dev/input/by-id/usb-X-event-kbd"},
    "serial": {"type": "serial", "name": "gm65", "port": "/dev/serial/by-id/usb-GM65-if00"},
}


def _scenario(source: str, steps: list[dict], holdoff_s: float = 3.0) -> object:
    data = {
        "name": "t",
        "present": "scanner",
        "config": {"readers": {"sources": [SOURCES[source]], "decoder": {"holdoff_s": holdoff_s}}},
        "steps": steps,
    }
    return parse_scenario(data, "t.toml")


@pytest.mark.parametrize("source", sorted(SOURCES))
def test_a_pass_scanned_twice_within_the_hold_off_is_one_passage_as_at_the_gate(source):
    """The scanner's hold-off is the driver's: straight into the engine, a second scan of
    a card still held up to the scanner was a second decision the gate would never make."""
    scenario = _scenario(
        source,
        [
            {
                "at_s": 1,
                "pass": {"id": "p", "household": "A-1", "holder": "Li"},
                "body_c": 36.6,
                "direction": "in",
                "expect": {"decision": "pass"},
            },
            {"at_s": 12, "pass": "p", "body_c": 36.6, "direction": "in"},
        ],
        holdoff_s=30,
    )
    result = replay(scenario)
    assert result.ok, result.failures
    assert [d["decision"] for d in result.decisions] == ["pass"]


@pytest.mark.parametrize("source", sorted(SOURCES))
def test_a_code_the_scanner_driver_refuses_never_reaches_the_engine(source):
    """A line with a control character (GS1's group separator) is refused by the driver's
    hygiene; straight into the engine it was a pass_malformed denial."""
    scenario = _scenario(
        source,
        [
            {"at_s": 1, "code": "0104012345678901\u001d10ABC", "body_c": 36.6},
            {
                "at_s": 8,
                "code": "https://shop.example/coupon?id=42",
                "expect": {"decision": "deny", "reasons": ["pass_malformed"]},
            },
        ],
    )
    result = replay(scenario)
    assert result.ok, result.failures
    assert len(result.decisions) == 1
