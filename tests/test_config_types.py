"""A config value of the wrong TOML type is an error naming its key and what was expected,
never a silently different value (``pulse_ms = "3000"`` used to run as 3000 ms, ``true`` for a
number as 1, ``3000.0`` truncated into an int). What TOML cannot write otherwise stays valid:
an integer for a decimal setting, a path, a choice or a time of day as a string."""

from __future__ import annotations

import re
import tomllib
from datetime import time
from pathlib import Path

import pytest

from checkpoint.cli import main
from kiosk.config import ConfigError, load_config, parse_config
from kiosk.config.fleet import CollectorConfig, load_collector_config

ROOT = Path(__file__).resolve().parent.parent


def problems_of(toml: str) -> list[str]:
    with pytest.raises(ConfigError) as info:
        parse_config(tomllib.loads(toml))
    return info.value.problems


@pytest.mark.parametrize(
    ("toml", "problem"),
    [
        (
            '[gate]\npulse_ms = "3000"',
            "gate.pulse_ms: should be an integer (got a string: write 3000 without the quotes)",
        ),
        (
            "[gate]\npulse_ms = true",
            "gate.pulse_ms: should be an integer (got a boolean)",
        ),
        (
            "[gate]\npulse_ms = 3000.0",
            "gate.pulse_ms: should be an integer (got a decimal number: write 3000)",
        ),
        (
            "[store]\nretention_days = 30.9",
            "store.retention_days: should be an integer (got a decimal number)",
        ),
        (
            "[thermometer.thermometry]\nsample_hz = true",
            "thermometer.thermometry.sample_hz: should be a decimal number (got a boolean)",
        ),
        (
            '[thermometer.thermometry]\nfever_threshold_c = "37.5"',
            "thermometer.thermometry.fever_threshold_c: should be a decimal number"
            " (got a string: write 37.5 without the quotes)",
        ),
        (
            "[site]\nsite_name = 5",
            "site.site_name: should be a string (got an integer)",
        ),
        (
            "[web]\ndocs_enabled = 1",
            "web.docs_enabled: should be true or false (got an integer)",
        ),
        (
            '[web]\nmask_personal = "false"',
            "web.mask_personal: should be true or false"
            " (got a string: write false without the quotes)",
        ),
        (
            "[web]\nscreen_addresses = [1]",
            "web.screen_addresses[0]: should be a string (got an integer)",
        ),
        (
            "[policy.hours]\nenabled = true\nopen_at = 30600",
            'policy.hours.open_at: should be a time of day (08:30:00 or "08:30") (got an integer)',
        ),
        (
            '[policy.hours]\nenabled = true\nopen_at = "08:30+08:00"',
            "policy.hours.open_at: a local time of day has no UTC offset (the"
            " site's timezone applies)",
        ),
        (
            '[[readers.sources]]\ntype = "camera"\ndevice = 0.0',
            "readers.sources[0].device: should be an integer or a string"
            " (got a decimal number: write 0)",
        ),
    ],
)
def test_a_value_of_the_wrong_type_is_an_error_naming_the_key(toml, problem):
    assert problem in problems_of(toml)


@pytest.mark.parametrize(
    ("toml", "problem"),
    [
        (
            '[[kiosks]]\nurl = "http://gate-1.lan:8000"\ntoken_env = "T"\npoll_interval_s = "10"',
            "kiosks[0].poll_interval_s: unknown key (check its spelling and the table it is in)",
        ),
        (
            'poll_interval_s = "10"\n[[kiosks]]\nurl = "http://gate-1.lan:8000"\ntoken_env = "T"',
            "poll_interval_s: should be a decimal number"
            " (got a string: write 10 without the quotes)",
        ),
        (
            'max_concurrent = 8.0\n[[kiosks]]\nurl = "http://gate-1.lan:8000"\ntoken_env = "T"',
            "max_concurrent: should be an integer (got a decimal number: write 8)",
        ),
        (
            '[[kiosks]]\nurl = "http://gate-1.lan:8000"\ntoken_file = 5',
            "kiosks[0].token_file: should be a path (a string) (got an integer)",
        ),
    ],
)
def test_the_collector_config_is_as_strict(tmp_path, toml, problem):
    path = tmp_path / "collector.toml"
    path.write_text(toml)
    with pytest.raises(ConfigError) as info:
        load_collector_config(path)
    assert problem in info.value.problems


def test_what_toml_cannot_write_otherwise_stays_valid():
    cfg = parse_config(
        tomllib.loads(
            "[thermometer.thermometry]\nsample_hz = 8\nfever_threshold_c = 38\n"
            '[policy]\ntrust_dir = "/etc/kiosk/trust"\nmode = "full"\n'
            '[policy.quota]\nroles = ["resident", "staff"]\n'
            '[policy.hours]\nopen_at = "07:45"\nclose_at = 18:00:00\n'
            '[web]\nscreen_addresses = ["10.0.0.5", "::1"]\n'
            '[[readers.sources]]\ntype = "camera"\ndevice = "/dev/video0"\n'
            '[[readers.sources]]\ntype = "serial"\n'
            "[engine]\ncpu = 1\n"
        )
    )
    thermometry = cfg.thermometer.thermometry
    assert (thermometry.sample_hz, thermometry.fever_threshold_c) == (8.0, 38.0)
    assert isinstance(thermometry.sample_hz, float)
    assert cfg.policy.quota.roles == ("resident", "staff")
    assert (cfg.policy.hours.open_at, cfg.policy.hours.close_at) == (time(7, 45), time(18))
    assert cfg.web.screen_addresses == ("10.0.0.5", "::1")
    assert cfg.readers.sources[0].device == "/dev/video0"  # type: ignore[union-attr]
    assert cfg.engine.cpu == 1
    collector = CollectorConfig.model_validate(
        {"kiosks": [{"url": "http://g.lan", "token_file": "/run/credentials/g"}], "page_size": 10}
    )
    assert collector.kiosks[0].token_file == Path("/run/credentials/g")


def _doc_blocks() -> list[tuple[str, str]]:
    blocks = []
    for doc in sorted([ROOT / "README.md", *(ROOT / "docs").glob("*.md")]):
        for i, text in enumerate(re.findall(r"```toml\n(.*?)```", doc.read_text(), re.S)):
            blocks.append((f"{doc.name}#{i}", text))
    return blocks


@pytest.mark.parametrize(("where", "text"), _doc_blocks())
def test_every_documented_config_example_loads(where, text, tmp_path):
    data = tomllib.loads(text)
    if "steps" in data:  # a replay scenario: its [config] is a kiosk config
        data = data.get("config", {})
    if "kiosks" in data:
        path = tmp_path / "collector.toml"
        path.write_text(text)
        load_collector_config(path)
        return
    if data.get("policy", {}).get("mode", "full") != "temperature_only":
        data.setdefault("readers", {}).setdefault("sources", [{"type": "fake_camera"}])
    parse_config(data, where)


@pytest.mark.parametrize(
    "path",
    [
        ROOT / "systemd" / "kiosk.toml.example",
        *sorted((ROOT / "checkpoint" / "scenarios").glob("*.toml")),
    ],
    ids=lambda p: p.name,
)
def test_every_shipped_config_loads(path):
    if path.parent.name == "scenarios":
        parse_config(tomllib.loads(path.read_text()).get("config", {}), path.name)
    else:
        load_config(path)


def test_check_config_prints_the_key_and_what_was_expected(tmp_path, capsys):
    bad = tmp_path / "kiosk.toml"
    bad.write_text('[gate]\npulse_ms = "3000"\n')
    assert main(["check-config", str(bad)]) == 2
    err = capsys.readouterr().err
    assert f"{bad}: gate.pulse_ms: should be an integer (got a string: write 3000" in err


@pytest.mark.parametrize(
    ("toml", "key"),
    [
        ('[web]\nhost = ""', "web.host"),  # was: listening on every interface (0.0.0.0)
        ('[store]\npath = ""', "store.path"),
        ('[[readers.sources]]\ntype = "fake_camera"\nimages = ""', "readers.sources[0].images"),
        ('[[readers.sources]]\ntype = "serial"\nport = ""', "readers.sources[0].port"),
        ('[[readers.sources]]\ntype = "serial"\nname = ""', "readers.sources[0].name"),
    ],
)
def test_an_empty_address_path_or_name_is_an_error_not_everywhere_or_here(toml, key):
    """``host = ""`` bound the kiosk's web server to every interface, the opposite of the
    loopback default; an empty images path played the working directory."""
    assert f"{key}: should not be empty" in problems_of(toml)


def test_the_examples_commented_keyboard_scanner_loads_beside_its_camera(tmp_path):
    """The example's commented `hid` source, uncommented as an installer would, is a config
    the kiosk takes (node path and all)."""
    text = (ROOT / "systemd" / "kiosk.toml.example").read_text()
    start = text.index('#   type = "hid"') - len("#   [[readers.sources]]\n")
    block = text[start:].split("\n\n")[0].split("\n")
    hid = [line.removeprefix("#   ") for line in block if line.startswith("#   ")]
    assert hid[:2] == ["[[readers.sources]]", 'type = "hid"']
    config = tmp_path / "kiosk.toml"
    config.write_text(text + "\n" + "\n".join(hid) + "\n")
    kinds = [s.type for s in load_config(config).readers.sources]
    assert kinds == ["camera", "hid"]
