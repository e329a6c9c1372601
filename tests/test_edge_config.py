"""Config for the network edge (issue 15): direction sources, addresses, timezone, paths."""

from __future__ import annotations

import pytest

from kiosk.config import ConfigError, check_paths, parse_config
from kiosk.devices import CodeRead
from kiosk.engine import Passage


def problems_of(data: dict) -> list[str]:
    with pytest.raises(ConfigError) as info:
        parse_config(data)
    return info.value.problems


def test_an_unknown_timezone_is_a_config_error_with_its_field():
    (problem,) = problems_of({"site": {"timezone": "Mars/Base"}})
    assert problem.startswith("site.timezone:") and "Mars/Base" in problem


def test_readers_as_the_direction_source_need_a_lane_on_every_reader():
    (problem,) = problems_of(
        {
            "site": {"direction": "both", "direction_from": "readers"},
            "readers": {"sources": [{"type": "fake_camera", "direction": "in"},
                                    {"type": "serial", "name": "scanner"}]},
        }
    )  # fmt: skip
    assert "missing on ['scanner']" in problem


def test_screen_addresses_and_proxies_must_be_addresses():
    (problem,) = problems_of({"web": {"trusted_proxies": ["proxy.lan"]}})
    assert problem.startswith("web.trusted_proxies:") and "proxy.lan" in problem
    cfg = parse_config({"web": {"screen_addresses": ["127.0.0.1", "10.1.2.0/24"]}})
    assert cfg.web.screen_addresses == ("127.0.0.1", "10.1.2.0/24")


def test_paths_that_do_not_exist_are_named(tmp_path):
    cfg = parse_config({"policy": {"trust_dir": str(tmp_path / "missing")}})
    missing = tmp_path / "missing"
    assert check_paths(cfg) == [f"policy.trust_dir: {missing} is not an existing directory"]
    (tmp_path / "missing").mkdir()
    assert check_paths(cfg) == []


def test_passback_is_hard_by_default():
    assert parse_config({}).policy.passback.mode == "hard"


@pytest.mark.parametrize(
    ("site", "source", "direction", "trusted"),
    [
        ({"direction": "in"}, "camera", "in", True),  # one-way kiosk: the lane's
        ({"direction": "both"}, "camera", "in", False),  # a screen button or the default
        ({"direction": "both", "direction_from": "readers"}, "gate-in", "in", True),
        ({"direction": "both", "direction_from": "readers"}, "gate-in", "out", False),
        ({"direction": "both", "direction_from": "readers"}, "guard", "in", False),
    ],
)
def test_only_a_lane_reader_or_a_one_way_kiosk_makes_a_direction_trusted(
    site, source, direction, trusted, clock
):
    from kiosk.engine import Engine

    readers = [{"type": "fake_camera", "name": "gate-in", "direction": "in"},
               {"type": "fake_camera", "name": "gate-out", "direction": "out"}]  # fmt: skip
    cfg = parse_config({"site": site, "readers": {"sources": readers}})
    engine = Engine.__new__(Engine)  # only the config is read
    engine.config = cfg
    passage = Passage(1, 0, direction, code=CodeRead("x", source, 0))
    assert engine.direction_from_hardware(passage) is trusted


def test_check_config_looks_for_paths_under_an_install_root(tmp_path, capsys):
    from checkpoint.cli import main

    cfg = tmp_path / "kiosk.toml"
    cfg.write_text('[policy]\ntrust_dir = "/var/lib/kiosk/trust"\n')
    root = tmp_path / "root"
    (root / "var/lib/kiosk/trust").mkdir(parents=True)
    assert main(["check-config", "--root", str(root), str(cfg)]) == 0
    assert main(["check-config", "--root", str(tmp_path / "empty"), str(cfg)]) == 2
    assert "policy.trust_dir" in capsys.readouterr().err
