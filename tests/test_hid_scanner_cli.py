"""``kiosk scanner list`` and ``kiosk scanner read``: finding a keyboard-mode scanner's input
node and reading codes from it with the kiosk's own driver (a fake scanner's FIFO here)."""

from __future__ import annotations

import json

import pytest

from checkpoint.cli import main
from drivers import hid_scanner
from drivers.fake_hid import FakeHidScanner

PASS = "KP1:6BFOXN*TS0BI$ZD4N9:9S6RCVN5+O30K3/XIV0W23NTDE$VK G2EC0LSV5RF"
KEY_F1 = 59


@pytest.fixture
def fake(tmp_path, monkeypatch):
    with FakeHidScanner(tmp_path) as scanner:
        # A FIFO has no EVIOCGRAB: the fake's grab stands in for the ioctl.
        monkeypatch.setattr(hid_scanner, "ioctl_grab", scanner.grab)
        yield scanner


def test_list_names_the_keyboard_nodes_and_where_they_point(tmp_path, capsys):
    by_id = tmp_path / "by-id"
    by_id.mkdir()
    (tmp_path / "event3").write_bytes(b"")
    (tmp_path / "event4").write_bytes(b"")
    (by_id / "usb-Scanner-event-kbd").symlink_to("../event3")
    (by_id / "usb-Logitech_Mouse-event-mouse").symlink_to("../event4")
    assert main(["scanner", "list", "--by-id", str(by_id)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out == [f"{by_id}/usb-Scanner-event-kbd -> {tmp_path}/event3"]


def test_list_without_a_keyboard_node_says_where_to_look_and_fails(tmp_path, capsys):
    assert main(["scanner", "list", "--by-id", str(tmp_path / "none")]) == 1
    err = capsys.readouterr().err
    assert "no keyboard input node" in err and "ls /dev/serial/by-id/" in err


def test_read_prints_the_codes_the_kiosk_would_read_and_what_it_would_refuse(fake, capsys):
    fake.type_text("KP1:AB")
    fake.press(KEY_F1)
    fake.scan("CD")
    fake.scan(PASS)  # waiting in the node for the reader
    assert main(["scanner", "read", fake.node, "--timeout", "5"]) == 0
    captured = capsys.readouterr()
    assert [json.loads(line) for line in captured.out.splitlines()] == [{"code": PASS}]
    assert "refused: unknown_key" in captured.err
    assert not fake.grabbed  # given back


def test_read_of_a_scanner_the_daemon_holds_says_to_stop_it_first(fake, capsys):
    fake.hold_grab()
    assert main(["scanner", "read", fake.node, "--timeout", "5"]) == 1
    err = capsys.readouterr().err
    assert "another program holds it" in err and "sudo systemctl stop kiosk" in err


def test_read_of_a_missing_node_names_it(tmp_path, capsys):
    node = str(tmp_path / "usb-Gone-event-kbd")
    assert main(["scanner", "read", node, "--timeout", "5"]) == 1
    assert f"cannot open {node}: no such device" in capsys.readouterr().err


@pytest.mark.parametrize("option", [["--count", "0"], ["--timeout", "0"]])
def test_read_with_bad_options_is_a_usage_error(fake, option):
    assert main(["scanner", "read", fake.node, *option]) == 2


def test_read_with_an_end_key_that_is_none_is_a_usage_error(fake):
    with pytest.raises(SystemExit) as exited:
        main(["scanner", "read", fake.node, "--end-key", "esc"])
    assert exited.value.code == 2
