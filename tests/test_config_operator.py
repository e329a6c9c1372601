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


def test_a_relative_trust_dir_is_under_the_data_dir_as_store_path_is(tmp_path, monkeypatch):
    # An operator who writes trust_dir = "trust" (as store.path = "kiosk.db") means the data
    # dir's; it used to be the shell's current folder, so the kiosk's trust list changed with
    # where `kiosk run` was typed.
    from kiosk.config import check_paths, trust_dir

    config = parse_config({"policy": {"trust_dir": "trust"}})
    data = tmp_path / "data"
    (data / "trust").mkdir(parents=True)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    assert trust_dir(config, data) == data / "trust"
    assert check_paths(config, data=data) == []
    (data / "trust").rmdir()
    (elsewhere / "trust").mkdir()  # the shell's folder does not stand in for the data dir's
    assert check_paths(config, data=data) == [
        f"policy.trust_dir: trust (under the data dir: {data / 'trust'}) is not an existing"
        " directory"
    ]
    # check-config does not know the data dir: a relative one is not judged by the cwd.
    (elsewhere / "trust").rmdir()
    assert check_paths(config) == []
    absolute = parse_config({"policy": {"trust_dir": str(tmp_path / "keys")}})
    assert trust_dir(absolute, data) == tmp_path / "keys"


def test_kiosk_run_checks_a_relative_trust_dir_under_its_data_dir(tmp_path, monkeypatch, capsys):
    import checkpoint.app
    from checkpoint.cli import main

    def started(*_args: object, **_kwargs: object) -> None:
        raise AssertionError("the daemon started on a trust folder outside its data dir")

    monkeypatch.setattr(checkpoint.app, "build_core", started)
    config = tmp_path / "kiosk.toml"
    config.write_text('[policy]\nmode = "full"\ntrust_dir = "trust"\n[[readers.sources]]\n'
                      'type = "fake_camera"\nname = "cam"\n')  # fmt: skip
    data = tmp_path / "data"
    data.mkdir()
    monkeypatch.chdir(tmp_path)
    (tmp_path / "trust").mkdir()  # in the shell's folder, not the data dir's
    assert main(["run", "--config", str(config), "--data", str(data)]) == 2
    err = capsys.readouterr().err
    assert f"policy.trust_dir: trust (under the data dir: {data / 'trust'})" in err


def test_an_absolute_store_path_in_a_missing_folder_is_refused_not_made(
    tmp_path, monkeypatch, capsys
):
    # store.path on a USB disk that did not mount (or a typo in its folder): the daemon used
    # to make the folder on the SD card and begin a new, empty event log there, forgetting
    # every household's outings for the quota and writing where nobody looks.
    import checkpoint.app
    from checkpoint.cli import main
    from kiosk.config import check_paths

    folder = tmp_path / "ssd" / "kiosk"
    config = parse_config({"store": {"path": str(folder / "kiosk.db")}})
    problem = f"store.path: {folder} is not an existing directory (a disk not mounted?)"
    assert check_paths(config) == [problem]
    assert check_paths(config, made=[str(folder)]) == []  # the installer makes it first

    def started(*_args: object, **_kwargs: object) -> None:
        raise AssertionError("the daemon started a new event log in a folder it made")

    monkeypatch.setattr(checkpoint.app, "build_core", started)
    file = tmp_path / "kiosk.toml"
    file.write_text(f'[policy]\nmode = "temperature_only"\n[store]\npath = "{folder}/kiosk.db"\n')
    assert main(["check-config", str(file)]) == 2
    assert problem in capsys.readouterr().err
    # Not a config error to kiosk run (exit 2 stops kiosk.service for good): the disk may
    # mount later, so it exits 1 and systemd tries again.
    assert main(["run", "--config", str(file), "--data", str(tmp_path / "data")]) == 1
    assert problem in capsys.readouterr().err
    assert not folder.exists()
    folder.mkdir(parents=True)
    assert check_paths(config) == []
    relative = parse_config({"store": {"path": "logs/kiosk.db"}})  # under the data dir: made
    assert check_paths(relative, data=tmp_path / "data") == []


def test_a_config_saved_with_a_byte_order_mark_is_read(tmp_path, capsys):
    # Windows editors save "UTF-8 with BOM": the invisible mark made check-config and kiosk
    # run refuse the file with "(toml): Invalid statement (at line 1, column 1)", a line that
    # reads "[site]" in any editor.
    from checkpoint.cli import main
    from kiosk.config import load_config

    config = tmp_path / "kiosk.toml"
    config.write_bytes(
        b'\xef\xbb\xbf[site]\r\nkiosk_id = "east"\r\n[policy]\r\nmode = "temperature_only"\r\n'
    )
    assert load_config(config).site.kiosk_id == "east"
    assert main(["check-config", str(config)]) == 0
    assert capsys.readouterr().out.startswith(f"ok: {config} (kiosk_id=east)")


def test_check_config_judges_a_relative_trust_dir_under_kiosk_data(tmp_path, monkeypatch, capsys):
    # `sudo kiosk-admin check-config /etc/kiosk/kiosk.toml` sets $KIOSK_DATA to the daemon's.
    from checkpoint.cli import main

    config = tmp_path / "kiosk.toml"
    config.write_text('[policy]\nmode = "temperature_only"\ntrust_dir = "keys"\n')
    data = tmp_path / "data"
    data.mkdir()
    monkeypatch.setenv("KIOSK_DATA", str(data))
    assert main(["check-config", str(config)]) == 2
    assert (
        f"policy.trust_dir: keys (under the data dir: {data / 'keys'})" in capsys.readouterr().err
    )
    (data / "keys").mkdir()
    assert main(["check-config", str(config)]) == 0


def test_an_absolute_store_path_under_the_data_dir_is_made_with_it(tmp_path):
    # store.path = "/var/lib/kiosk/log/kiosk.db" is inside the data dir, which the daemon
    # makes (and the installer, `made`): its folder is made with it, as a relative one is.
    from kiosk.config import check_paths

    data = tmp_path / "data"
    config = parse_config({"store": {"path": str(data / "log" / "kiosk.db")}})
    assert check_paths(config, data=data) == []
    assert check_paths(config, made=[str(data)]) == []
    assert check_paths(config) != []  # without the data dir, not known to be made
