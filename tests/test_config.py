from __future__ import annotations

from datetime import time

import pytest

from checkpoint.cli import main
from kiosk.config import ConfigError, KioskConfig, load_config, parse_config


def test_defaults_need_no_file_and_use_fake_devices():
    cfg = load_config(None)
    assert cfg.thermometer.driver.type == "fake"
    assert cfg.gate.driver.type == "fake"
    assert [s.type for s in cfg.readers.sources] == ["fake_camera"]


def test_device_is_chosen_by_type_field():
    cfg = parse_config({"thermometer": {"driver": {"type": "mlx90614", "address": 0x5B}}})
    assert cfg.thermometer.driver.type == "mlx90614"
    assert cfg.thermometer.driver.address == 0x5B


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (
            {"site": {"kiosk_idd": "x"}},
            "site.kiosk_idd: unknown key (check its spelling and the table it is in)",
        ),
        (
            {"thermometry": {}},
            "thermometry: unknown key (check its spelling and the table it is in)",
        ),
        (
            {"thermometer": {"thermometry": {"fever_threshold_c": 45}}},
            "thermometer.thermometry.fever_threshold_c: should be at most 40 (got 45)",
        ),
        (
            {"web": {"port": "eighty"}},
            "web.port: should be an integer (got a string)",
        ),
        (
            {"thermometer": {"driver": {"type": "mlx90614", "pec": "maybe"}}},
            'thermometer.driver.pec: should be one of "strict", "warn", "off" (got "maybe")',
        ),
        (
            {"readers": {"sources": [{"type": "serial", "baudrate": 5}]}},
            "readers.sources[0].baudrate: should be at least 1200 (got 5)",
        ),
    ],
)
def test_bad_config_names_the_field_path(data, expected):
    with pytest.raises(ConfigError) as info:
        parse_config(data)
    assert expected in info.value.problems


def test_every_problem_is_reported_not_just_the_first():
    with pytest.raises(ConfigError) as info:
        parse_config({"web": {"port": -1, "host": 5}, "store": {"retention_days": 0}})
    paths = sorted(p.split(":")[0] for p in info.value.problems)
    assert paths == ["store.retention_days", "web.host", "web.port"]


def test_every_field_is_described():
    missing = []

    def walk(model, prefix):
        for name, field in model.model_fields.items():
            ann = field.annotation
            sub = getattr(ann, "model_fields", None)
            if sub is not None:
                walk(ann, f"{prefix}{name}.")
            elif not field.description and name != "type":
                missing.append(prefix + name)

    walk(KioskConfig, "")
    assert missing == []


def test_check_config_cli_exit_codes(tmp_path, capsys):
    good = tmp_path / "good.toml"
    good.write_text('[site]\nkiosk_id = "east-gate"\n[gate.driver]\ntype = "none"\n')
    assert main(["check-config", str(good)]) == 0
    assert "east-gate" in capsys.readouterr().out

    bad = tmp_path / "bad.toml"
    bad.write_text('[site]\nkiosk_id = "east gate!"\ncolour = 1\n[web]\nport = 70000\n')
    assert main(["check-config", str(bad)]) == 2
    err = capsys.readouterr().err
    assert "site.kiosk_id: should be letters, digits" in err  # the pattern in words
    assert "site.colour: unknown key" in err
    assert "web.port: should be at most 65535 (got 70000)" in err

    broken = tmp_path / "broken.toml"
    broken.write_text("[site\n")
    assert main(["check-config", str(broken)]) == 2
    assert "(toml):" in capsys.readouterr().err

    assert main(["check-config", str(tmp_path / "nope.toml")]) == 2
    assert "cannot read" in capsys.readouterr().err


def test_opening_hours_may_cross_midnight_for_a_night_guard():
    cfg = parse_config({"policy": {"hours": {"open_at": "20:00", "close_at": "08:00"}}})
    assert cfg.policy.hours.windows() == ((time(20), time(8)),)


def test_opening_hours_that_start_when_they_end_are_refused_not_read_as_none_or_all_day():
    with pytest.raises(ConfigError) as info:
        parse_config({"policy": {"hours": {"open_at": "08:00", "close_at": "08:00"}}})
    assert info.value.problems[0].startswith("policy.hours: ")
    assert "ambiguous" in info.value.problems[0]


def test_two_spans_of_hours_and_their_mistakes():
    cfg = parse_config({"policy": {"hours": {"spans": ["08:30-17:30", "20:00-08:00"]}}})
    assert cfg.policy.hours.windows() == ((time(8, 30), time(17, 30)), (time(20), time(8)))
    assert cfg.policy.hours.text() == "08:30–17:30, 20:00–08:00"
    for bad, words in [
        ({"spans": ["20:00-20:00"]}, "ambiguous"),
        ({"spans": ["8h30-17h30"]}, "HH:MM-HH:MM"),
        ({"spans": ["25:00-08:00"]}, "HH:MM-HH:MM"),
        ({"spans": ["08:30-17:30"], "open_at": "09:00"}, "either spans or open_at/close_at"),
    ]:
        with pytest.raises(ConfigError) as info:
            parse_config({"policy": {"hours": bad}})
        assert words in " ".join(info.value.problems), bad


def test_the_default_hours_keep_meaning_what_they_meant():
    hours = parse_config({}).policy.hours
    assert hours.windows() == ((time(8, 30), time(17, 30)),)
    assert hours.text() == "08:30–17:30"


def test_the_kiosk_screen_says_night_hours_as_they_are_staffed():
    from ui.views import opening_hours

    both = {"enabled": True, "spans": ["08:30-17:30", "20:00-08:00"]}
    assert opening_hours(parse_config({"policy": {"hours": both}})) == "08:30–17:30, 20:00–08:00"
    night = {"enabled": True, "open_at": "20:00", "close_at": "08:00"}
    assert opening_hours(parse_config({"policy": {"hours": night}})) == "20:00–08:00"


def test_an_old_zone_name_debian_13_moved_out_names_the_package_that_has_it(monkeypatch):
    # Debian 13 (Raspberry Pi OS Trixie) keeps the old names ('Asia/Calcutta', 'PRC', ...) in
    # tzdata-legacy, not installed: a config that worked on Bookworm was "unknown", no way on.
    from zoneinfo import ZoneInfoNotFoundError

    import kiosk.config.site as site

    def trixie_zoneinfo(key: str):
        raise ZoneInfoNotFoundError(f"No time zone found with key {key}")

    monkeypatch.setattr(site, "ZoneInfo", trixie_zoneinfo)
    with pytest.raises(ConfigError) as info:
        parse_config({"site": {"timezone": "Asia/Calcutta"}})
    (problem,) = info.value.problems
    assert problem.startswith("site.timezone: ") and "'Asia/Calcutta'" in problem
    assert "tzdata-legacy" in problem


@pytest.mark.parametrize(
    ("toml", "key"),
    [
        ('[store]\npath = "kiosk\\u0000.db"\n', "store.path"),
        ('[web]\nhost = "127.0.0.1\\u0000"\n', "web.host"),
        ('[web]\nhost = "127.0.0.1\\n"\n', "web.host"),
        ('[policy]\ntrust_dir = "trust\\u001b[8m"\n', "policy.trust_dir"),
    ],
)
@pytest.mark.parametrize("verb", ["check-config", "run"])
def test_a_control_character_in_a_path_or_host_is_refused_naming_the_key(
    tmp_path, capsys, toml, key, verb
):
    """A NUL in store.path or web.host passed check-config; `kiosk run` then died of a
    traceback (embedded null byte; a TypeError in the server), restarted every 3 s."""
    config = tmp_path / "kiosk.toml"
    config.write_text('[site]\nkiosk_id = "g1"\n' + toml)
    argv = ["check-config", str(config)]
    if verb == "run":
        argv = ["run", "--config", str(config), "--data", str(tmp_path / "data")]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert f"{key}: " in err and "control character" in err, err
    assert "Traceback" not in err
