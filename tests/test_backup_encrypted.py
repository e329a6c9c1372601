"""``kiosk backup`` encrypted by default (a passphrase, scrypt and an AEAD), ``--plain`` only
when asked; ``kiosk restore`` reads either, and a wrong passphrase or an altered archive is one
line, exit 2, nothing moved."""

from __future__ import annotations

import io
import os
import sys

import pytest
import test_backup
from test_backup import make_gate, run_restore

from checkpoint.cli import main
from kiosk import backup

PASSPHRASE = "correct horse battery staple"


#: The same gate, stick and no installed kiosk as the plain archive's tests.
gate, usb, no_installed_kiosk = test_backup.gate, test_backup.usb, test_backup.no_installed_kiosk


@pytest.fixture(autouse=True)
def cheap_kdf(monkeypatch):
    """The documented seam: scrypt at test cost (the archive's header carries its own)."""
    monkeypatch.setattr(backup, "KDF", backup.Kdf(log_n=4, r=1, p=1))


@pytest.fixture
def secret(tmp_path):
    path = tmp_path / "passphrase"
    path.write_text(PASSPHRASE + "\n")
    return path


def backup_with(data, etc, into, *extra: str) -> int:
    args = ["backup", "--into", str(into), "--data", str(data)]
    return main([*args, "--config", str(etc / "kiosk.toml"), *extra])


def test_the_archive_is_encrypted_by_default_and_comes_back(gate, usb, secret, tmp_path, capsys):
    data, etc, log = gate
    archive = usb / "north.kbak"
    assert backup_with(data, etc, archive, "--passphrase-file", str(secret)) == 0
    raw = archive.read_bytes()
    assert raw.startswith(backup.ENCRYPTED_MAGIC)
    for clear in (b"Wang Lei", b"13800000000", b"private key", b"pepper", b"MANIFEST"):
        assert clear not in raw
    assert PASSPHRASE not in capsys.readouterr().err
    new_data, new_etc = tmp_path / "new" / "data", tmp_path / "new" / "etc"
    assert run_restore(new_data, new_etc, archive, "--passphrase-file", str(secret)) == 0
    assert (new_data / "keys" / "issuer.key").read_text() == "private key\n"
    assert (new_etc / "credentials" / "token_pepper").read_text() == "pepper\n"


def test_without_a_passphrase_or_a_terminal_no_archive_is_written(gate, usb, capsys, monkeypatch):
    data, etc, _ = gate
    monkeypatch.setattr(sys, "stdin", io.StringIO(""))
    assert backup_with(data, etc, usb / "north.kbak") == 2
    err = capsys.readouterr().err
    assert "--passphrase-file" in err and "--plain" in err
    assert list(usb.iterdir()) == []


def test_plain_is_asked_for_and_says_so(gate, usb, capsys):
    data, etc, _ = gate
    archive = usb / "north.tar"
    assert backup_with(data, etc, archive, "--plain") == 0
    assert b"private key" in archive.read_bytes()
    assert "NOT encrypted" in capsys.readouterr().err


@pytest.mark.parametrize("admin", [False, True], ids=["kiosk", "kiosk-admin"])
def test_the_passphrase_from_stdin(gate, usb, tmp_path, monkeypatch, admin):
    # Under `sudo kiosk-admin` (KIOSK_ADMIN_CWD set) `-` was taken as a relative path, the
    # operator's folder's file named "-", instead of stdin.
    if admin:
        monkeypatch.setenv("KIOSK_ADMIN_CWD", str(tmp_path))
    data, etc, _ = gate
    archive = usb / "north.kbak"
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(PASSPHRASE.encode() + b"\n")))
    assert backup_with(data, etc, archive, "--passphrase-file", "-") == 0
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(PASSPHRASE.encode())))
    new = tmp_path / "new"
    assert run_restore(new / "data", new / "etc", archive, "--passphrase-file", "-") == 0


@pytest.mark.slow  # a whole gate and a backup: the helper's own test is test_cli_stdin.py
def test_no_stdin_at_all_is_an_empty_passphrase(gate, usb, capsys, monkeypatch):
    """Run with stdin closed (cron, nohup, ``<&-``: Python's ``sys.stdin`` is None): the
    passphrase read from ``-`` crashed in 'I/O operation on closed file' (the empty stdin
    stood in was closed under its read). Now it is an empty passphrase: exit 2, said. The
    restore reads it through the same function."""
    data, etc, _ = gate
    monkeypatch.setattr(sys, "stdin", None)
    assert backup_with(data, etc, usb / "north.kbak", "--passphrase-file", "-") == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and "passphrase is empty" in err
    assert list(usb.iterdir()) == []


def test_the_passphrase_is_never_taken_on_the_command_line(gate, usb, capsys):
    data, etc, _ = gate
    assert backup_with(data, etc, usb / "north.kbak", "--passphrase", PASSPHRASE) == 2
    err = capsys.readouterr().err
    assert PASSPHRASE not in err and "--passphrase-file" in err
    assert list(usb.iterdir()) == []


def _restore_fails(archive, tmp_path, secret, capsys, clock) -> str:
    data, etc, log = make_gate(tmp_path / "south", clock, kiosk_id="gate-north", events=0)
    log.close()
    before = sorted(p.name for p in data.iterdir())
    db = (data / "kiosk.db").read_bytes()
    assert run_restore(data, etc, archive, "--passphrase-file", str(secret)) == 2
    assert sorted(p.name for p in data.iterdir() if p.name != "kiosk.lock") == before
    assert (data / "kiosk.db").read_bytes() == db
    assert not [p for p in etc.iterdir() if p.name.startswith("before-restore")]
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    return err


@pytest.fixture
def sealed(gate, usb, secret, capsys):
    data, etc, _ = gate
    archive = usb / "north.kbak"
    assert backup_with(data, etc, archive, "--passphrase-file", str(secret)) == 0
    capsys.readouterr()
    return archive


def test_a_wrong_passphrase_is_one_line_and_nothing_moves(sealed, tmp_path, capsys, clock):
    wrong = tmp_path / "wrong"
    wrong.write_text("not it\n")
    assert "wrong passphrase" in _restore_fails(sealed, tmp_path, wrong, capsys, clock)


@pytest.mark.parametrize("where", ["first", "middle", "last", "cut", "header"])
def test_an_altered_encrypted_archive_is_refused(sealed, tmp_path, secret, capsys, where, clock):
    raw = bytearray(sealed.read_bytes())
    header = backup.ENCRYPTED_HEADER_SIZE
    if where == "cut":
        whole = (len(raw) - header - 1) // (backup.ENCRYPTED_CHUNK + 16)
        assert whole >= 1  # the last chunk cut away, exactly at a chunk's end
        raw = raw[: header + whole * (backup.ENCRYPTED_CHUNK + 16)]
    else:
        at = {"first": header + 40, "middle": len(raw) // 2, "last": len(raw) - 3}.get(where)
        raw[header - 1 if at is None else at] ^= 0x01
    sealed.write_bytes(bytes(raw))
    err = _restore_fails(sealed, tmp_path, secret, capsys, clock)
    assert "altered" in err


def test_a_hostile_header_asking_for_gigabytes_of_scrypt_is_refused(
    sealed, tmp_path, secret, capsys, clock
):
    raw = bytearray(sealed.read_bytes())
    raw[len(backup.ENCRYPTED_MAGIC) + 1] = 40  # log2 N
    sealed.write_bytes(bytes(raw))
    assert "scrypt" in _restore_fails(sealed, tmp_path, secret, capsys, clock)


def test_a_plain_archive_is_still_restored_without_a_passphrase(gate, usb, tmp_path, capsys):
    data, etc, _ = gate
    archive = usb / "north.tar"
    assert backup_with(data, etc, archive, "--plain") == 0
    new = tmp_path / "new"
    assert run_restore(new / "data", new / "etc", archive) == 0


def test_an_encrypted_archive_without_its_passphrase_is_one_line(sealed, tmp_path, capsys):
    new = tmp_path / "new"
    assert run_restore(new / "data", new / "etc", sealed) == 2
    assert "--passphrase-file" in capsys.readouterr().err


def test_chunks_are_streamed_not_held(tmp_path):
    """A log of several chunks round-trips through the seekable reader, in any order."""
    body = os.urandom(3 * backup.ENCRYPTED_CHUNK + 123)
    path = tmp_path / "x"
    with open(path, "wb") as raw:
        sink = backup.Encrypting(raw, b"pw")
        for i in range(0, len(body), 10_000):
            sink.write(body[i : i + 10_000])
        sink.finish()
    reader = backup.Decrypting(open(path, "rb"), b"pw")  # noqa: SIM115
    try:
        reader.seek(2 * backup.ENCRYPTED_CHUNK - 5)
        assert (
            reader.read(10) == body[2 * backup.ENCRYPTED_CHUNK - 5 : 2 * backup.ENCRYPTED_CHUNK + 5]
        )
        reader.seek(0)
        assert reader.read() == body
    finally:
        reader.close()


@pytest.mark.slow
def test_the_production_kdf_round_trips(tmp_path, monkeypatch):
    monkeypatch.setattr(backup, "KDF", backup.Kdf(log_n=17, r=8, p=1))
    path = tmp_path / "x"
    with open(path, "wb") as raw:
        sink = backup.Encrypting(raw, b"pw")
        sink.write(b"hello")
        sink.finish()
    reader = backup.Decrypting(open(path, "rb"), b"pw")  # noqa: SIM115
    assert reader.read() == b"hello"
    reader.close()


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_at_a_terminal_the_passphrase_is_asked_twice(gate, usb, tmp_path, monkeypatch, capsys):
    data, etc, _ = gate
    monkeypatch.setattr(sys, "stdin", _Terminal())
    typed = iter([PASSPHRASE, "a slip"])
    monkeypatch.setattr("getpass.getpass", lambda prompt="": next(typed))
    assert backup_with(data, etc, usb / "north.kbak") == 2  # the two differ: nothing written
    assert "differ" in capsys.readouterr().err and list(usb.iterdir()) == []
    typed = iter([PASSPHRASE, PASSPHRASE, PASSPHRASE])
    assert backup_with(data, etc, usb / "north.kbak") == 0
    new = tmp_path / "new"
    assert run_restore(new / "data", new / "etc", usb / "north.kbak") == 0  # asked once
    assert next(typed, None) is None


def test_a_full_card_under_a_sealed_backup_is_said_of_the_card_not_the_stick(
    tmp_path, clock, secret, capsys
):
    """A sealed backup copies the log beside it, on the card: the card full there was said
    as the stick's (``the disk is full (... at /media/usb)``), whose free space was fine."""
    from support import tiny_tmpfs
    from test_operator_faults import fill

    stick = tmp_path / "usb"  # another file system than the card below
    stick.mkdir()
    with tiny_tmpfs(tmp_path / "card", "4m") as card:
        data, etc, log = make_gate(card / "north", clock)
        log.close()
        filler = fill(card)
        code = backup_with(data, etc, stick / "north.kbak", "--passphrase-file", str(secret))
        err = capsys.readouterr().err
        filler.unlink()

    assert code == 1
    assert "is full (" in err and f" MB free at {data})" in err
    assert str(stick) not in err.splitlines()[-1]
