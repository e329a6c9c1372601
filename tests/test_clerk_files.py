"""The files the compound office's clerks hand the kiosk, as they really come: a title above
the header, a signature line below it, a damaged UTF-8 file, a token with the wrong text."""

from __future__ import annotations


def test_a_lists_token_that_is_no_token_stops_the_daemon_naming_the_key(
    tmp_path, capsys, monkeypatch
):
    from checkpoint.cli import main

    monkeypatch.setenv("KIOSK_LISTS_TOKEN", "kt_1_sécret")  # pasted from a chat, with an é
    cfg = tmp_path / "kiosk.toml"
    cfg.write_text(
        '[web]\nport = 0\n[fleet]\nlists_url = "http://office.lan/lists/bundle"\n'
        'lists_token_env = "KIOSK_LISTS_TOKEN"\n'
    )
    assert main(["run", "--config", str(cfg), "--data", str(tmp_path / "d")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1
    assert "fleet.lists_token_env" in err[0] and "KIOSK_LISTS_TOKEN" in err[0]
    assert "sécret" not in err[0]  # the secret itself is never said


def test_an_unset_or_good_lists_token_is_no_config_problem(monkeypatch):
    from kiosk.config import check_environment, parse_config

    config = parse_config(
        {"fleet": {"lists_url": "http://office.lan/b", "lists_token_env": "KIOSK_LISTS_TOKEN"}}
    )
    assert check_environment(config, {}) == []
    assert check_environment(config, {"KIOSK_LISTS_TOKEN": "kt_1_abc"}) == []
    assert check_environment(config, {"KIOSK_LISTS_TOKEN": "kt 1"})[0].startswith(
        "fleet.lists_token_env: environment variable KIOSK_LISTS_TOKEN"
    )
