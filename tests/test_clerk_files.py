"""The files the compound office's clerks hand the kiosk, as they really come: a title above
the header, a signature line below it, a damaged UTF-8 file, a token with the wrong text."""

from __future__ import annotations

import pytest


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


_QUARANTINE = "household,holder,from,until\n" + "".join(
    f"5-{700 + i},张{name},2026-12-01,2026-12-14\n" for i, name in enumerate("伟芳娜秀英敏静丽")
)


def test_a_utf8_list_with_a_damaged_byte_is_refused_where_it_is_not_read_as_gb18030():
    """One byte of 张秀 (line 5) damaged on a USB stick: the rest of the file is UTF-8 but
    the whole decoded as GB18030 (its byte pairs all fit) and the names imported as 寮犱紵."""
    from kiosk.community import CommunityError
    from kiosk.sheets import decode_text

    data = bytearray(_QUARANTINE.encode())
    at = data.index("秀".encode()) + 1
    data[at] = 0xC9  # was 0xA7
    with pytest.raises(CommunityError) as refused:
        decode_text(bytes(data))
    assert f"line 5, byte {at}" in str(refused.value)  # where 秀 starts
    assert "UTF-8" in str(refused.value)


def test_a_real_gb18030_list_still_reads_rare_name_characters_and_all():
    from kiosk.sheets import decode_text

    text = _QUARANTINE + "5-800,王堃,2026-12-01,2026-12-14\n"  # 堃: GBK, not GB2312
    assert decode_text(text.encode("gb18030")) == text
    assert decode_text(("\ufeff" + text).encode()) == text
