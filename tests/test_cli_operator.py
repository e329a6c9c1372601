"""The ``kiosk`` command as a Pi operator at a terminal meets it: Ctrl-C in the middle of a
long verb, output piped to ``head``, odd file systems. Each case ends in one line on stderr,
the documented exit code (docs/cli.md), and nothing lost or left half-done."""

from __future__ import annotations

import pytest
from support import batch_args

from checkpoint.cli import main


@pytest.fixture
def issuer(tmp_path):
    assert main(["keys", "new", "--dir", str(tmp_path / "keys"), "--name", "office"]) == 0
    return tmp_path / "keys" / "office.key"


@pytest.mark.slow
def test_ctrl_c_during_pass_batch_leaves_no_card_without_its_line(
    tmp_path, issuer, monkeypatch, capsys
):
    # A card in the folder without passes.csv is a signed pass the office has no record of,
    # and the folder is no longer empty, so the batch cannot simply be run again.
    from checkpoint.cli import pass_cmd

    households = tmp_path / "households.csv"
    households.write_text("household,holder\n" + "".join(f"1-1-{i:04d},P{i}\n" for i in range(5)))
    real_card = pass_cmd._card
    cards = []

    def card_then_ctrl_c(*args, **kwargs):
        if len(cards) == 3:
            raise KeyboardInterrupt
        cards.append(1)
        return real_card(*args, **kwargs)

    monkeypatch.setattr(pass_cmd, "_card", card_then_ctrl_c)
    out = tmp_path / "cards"
    capsys.readouterr()
    code = main(batch_args(issuer, households, out))
    err = capsys.readouterr().err
    assert code == 130
    assert list(out.iterdir()) == []
    assert "interrupted" in err and "nothing issued" in err
    monkeypatch.setattr(pass_cmd, "_card", real_card)
    assert main(batch_args(issuer, households, out)) == 0
    assert len(list(out.iterdir())) == 6


def test_check_config_names_the_emulated_devices_a_valid_config_runs_on(tmp_path, capsys):
    # An empty or half-written /etc/kiosk/kiosk.toml is valid: the devices it leaves out are
    # the demo's emulators. `kiosk run` warns in its log; check-config said only "ok", so the
    # operator checking the file before a restart read that the gate was set up.
    from pathlib import Path

    from checkpoint.cli.daemon_cmd import emulated_devices
    from kiosk.config import load_config

    config = tmp_path / "kiosk.toml"
    config.write_text('[site]\nkiosk_id = "gate-7"\n')
    assert main(["check-config", str(config)]) == 0
    out, err = capsys.readouterr()
    assert out.startswith("ok: ")
    assert err.count("\n") == 1, err
    assert "emulated devices (not a real gate)" in err
    for device in ("thermometer.driver", "gate.driver", "readers.sources[0]"):
        assert device in err
    example = Path(__file__).resolve().parent.parent / "systemd" / "kiosk.toml.example"
    assert emulated_devices(load_config(example)) == []  # the example names real ones
    real = tmp_path / "real.toml"
    real.write_text(
        '[policy]\nmode = "temperature_only"\n[thermometer.driver]\ntype = "mlx90614"\n'
        '[gate.driver]\ntype = "gpio"\n'
    )
    assert main(["check-config", str(real)]) == 0
    out, err = capsys.readouterr()
    assert out.startswith("ok: ") and err == ""


def test_output_a_non_utf8_terminal_cannot_show_is_escaped_not_a_traceback(
    tmp_path, issuer, monkeypatch, capsys
):
    # A Pi set to an ISO-8859-1 locale (raspi-config offers them): a resident's Chinese name
    # in `pass verify`'s JSON ended in a UnicodeEncodeError traceback, the verdict unprinted.
    import io
    import json
    import sys

    assert main(["pass", "issue", "--tz=Asia/Shanghai", "--key", str(issuer),
                 "--household", "1-1-0101", "--holder", "王小明"]) == 0  # fmt: skip
    payload = capsys.readouterr().out.strip()
    stdout = io.TextIOWrapper(io.BytesIO(), encoding="latin-1")
    monkeypatch.setattr(sys, "stdout", stdout)
    code = main(["pass", "verify", "--trust", str(issuer.parent), payload])
    stdout.flush()
    printed = stdout.buffer.getvalue().decode("latin-1")
    assert code == 0, capsys.readouterr().err
    assert json.loads(printed)["holder"] == "王小明"  # escaped as JSON's \\u738b...


def test_check_config_says_when_the_readers_lanes_are_not_read(tmp_path, capsys):
    # Two readers, one per lane, with `direction` set, but site.direction_from left at its
    # default "screen": every code passed the default direction (or the screen button's), an
    # out-lane exit was counted "in" for the outing quota, and check-config said only "ok".
    config = tmp_path / "kiosk.toml"
    lanes = (
        '[[readers.sources]]\ntype = "serial"\nname = "lane-in"\nport = "/dev/ttyACM0"\n'
        'direction = "in"\n[[readers.sources]]\ntype = "serial"\nname = "lane-out"\n'
        'port = "/dev/ttyACM1"\ndirection = "out"\n'
    )
    config.write_text("[thermometer.driver]\ntype = 'mlx90614'\n[gate.driver]\ntype = 'gpio'\n"
                      + lanes)  # fmt: skip
    assert main(["check-config", str(config)]) == 0
    err = capsys.readouterr().err
    assert err.count("\n") == 1, err
    assert "readers.sources[0].direction, readers.sources[1].direction" in err
    assert "site.direction_from = 'readers'" in err
    config.write_text("[thermometer.driver]\ntype = 'mlx90614'\n[gate.driver]\ntype = 'gpio'\n"
                      "[site]\ndirection_from = 'readers'\n" + lanes)  # fmt: skip
    assert main(["check-config", str(config)]) == 0
    assert capsys.readouterr().err == ""


def test_kiosk_run_warns_of_unread_lanes(tmp_path, monkeypatch, capsys):
    import json

    import checkpoint.app

    def fails(*_args: object, **_kw: object) -> None:  # fails right after the warnings
        # Not a card's failure (EIO would stand by, kiosk.standby, on a real port for ever).
        raise OSError(19, "No such device", str(tmp_path / "data"))

    monkeypatch.setattr(checkpoint.app, "build_core", fails)
    config = tmp_path / "kiosk.toml"
    config.write_text('[site]\ndirection = "in"\n[[readers.sources]]\ntype = "fake_camera"\n'
                      'direction = "out"\n')  # fmt: skip
    assert main(["run", "--config", str(config), "--data", str(tmp_path / "data")]) == 1
    logged = [json.loads(line) for line in capsys.readouterr().err.splitlines() if "{" in line]
    (lanes,) = [r for r in logged if "readers.sources[0].direction not read" in r["msg"]]
    assert lanes["level"] == "warning"


def test_check_config_reads_the_config_once(tmp_path, monkeypatch, capsys):
    # `kiosk check-config <(ssh office cat kiosk.toml)` or a named pipe: the notes used to read
    # the file a second time, so they judged an empty pipe's defaults (or waited for ever on
    # a FIFO with no writer left), not this config.
    import kiosk.config

    real = kiosk.config.read_bounded
    reads = []

    def counted(path, limit):
        reads.append(path)
        return real(path, limit)

    monkeypatch.setattr(kiosk.config, "read_bounded", counted)
    config = tmp_path / "kiosk.toml"
    config.write_text(
        '[policy]\nmode = "temperature_only"\n[thermometer.driver]\ntype = "mlx90614"\n'
    )
    assert main(["check-config", str(config)]) == 0
    out, err = capsys.readouterr()
    assert out.startswith("ok: ") and "gate.driver" in err
    assert len(reads) == 1


class _ClosedPipe:
    """stdout whose reader went away (`kiosk ... | head -1` after head's line)."""

    encoding = "utf-8"

    def write(self, _text: str) -> int:
        raise BrokenPipeError(32, "Broken pipe")

    def flush(self) -> None:
        raise BrokenPipeError(32, "Broken pipe")


@pytest.mark.slow
def test_output_piped_to_head_ends_quietly_with_the_pipes_status(tmp_path, monkeypatch, capsys):
    # `kiosk verify-log --json | head -1`, `kiosk scan *.png | head`: the verb said
    # "kiosk VERB: Broken pipe" and exited 1, which for verify-log is its "a row was edited"
    # status, to a script with `set -o pipefail`. As cat or grep: nothing said, 128 + SIGPIPE.
    import sys

    monkeypatch.setattr(sys, "stdout", _ClosedPipe())
    for argv in (["replay", "--list"], ["replay", "ok"]):
        assert main(argv) == 141
        assert capsys.readouterr().err == ""


def test_a_broken_pipe_that_is_not_stdout_is_still_an_error(monkeypatch, capsys):
    # A socket or a file's broken pipe is a failure to report, not a reader that left.
    import checkpoint.replay

    def broken() -> list[object]:
        raise BrokenPipeError(32, "Broken pipe")

    monkeypatch.setattr(checkpoint.replay, "shipped_scenarios", broken)
    assert main(["replay", "--list"]) == 1
    assert capsys.readouterr().err == "kiosk replay: Broken pipe\n"


def _unreadable_config_says_kiosk_admin(tmp_path, argv, capsys) -> None:
    # /etc/kiosk/kiosk.toml is root:kiosk 0640: from the pi user's shell, a verb given it
    # said "FILE: (file): cannot read: Permission denied", exit 2 (bad input), and not the
    # way out docs/cli.md promises for the kiosk's own files, exit 1.
    config = tmp_path / "kiosk.toml"
    config.write_text('[site]\nkiosk_id = "east"\n')
    config.chmod(0)
    assert main([*argv, "--config", str(config)]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1, err
    assert f"permission denied: {config}; " in err and "sudo kiosk-admin" in err


def test_a_config_this_user_may_not_read_says_run_it_as_kiosk_admin(tmp_path, monkeypatch, capsys):
    # The tests run as root (CI does), who may read any file: the file system's refusal is
    # made up where the verbs meet it, ``os.access`` and the bounded read.
    import os

    real = os.access
    config = tmp_path / "kiosk.toml"
    monkeypatch.setattr(
        os,
        "access",
        lambda path, mode, **kw: False if str(path) == str(config) else real(path, mode, **kw),
    )
    import kiosk.config

    real_read = kiosk.config.read_bounded

    def denied(path, limit):
        if str(path) == str(config):
            raise kiosk.config.UnreadableFile("cannot read: Permission denied", "unreadable")
        return real_read(path, limit)

    monkeypatch.setattr(kiosk.config, "read_bounded", denied)
    for argv in (
        ["token", "list"],
        ["guard", "list"],
        ["report", "--day", "2026-12-05"],
        ["calibrate", "emissivity"],
        ["scan", str(config)],
    ):
        _unreadable_config_says_kiosk_admin(tmp_path, argv, capsys)


def _path_arguments():
    """Every (verb words, option) of the ``kiosk`` parser whose value names a file or folder:
    its metavar is FILE, DIR, IMAGE, PORT, TARGET, CENTRAL or SCENARIO, or it is a ``Path``."""
    import argparse

    from checkpoint.cli import build_parser

    found = []

    def walk(parser, words):
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                for name, sub in action.choices.items():
                    walk(sub, [*words, name])
                continue
            names = {"FILE", "DIR", "IMAGE", "PORT", "TARGET", "CENTRAL", "SCENARIO"}
            pathy = action.metavar in names or action.dest in ("dir", "trust", "key", "out")
            if pathy or action.dest in ("db", "data", "config", "file", "csv", "xlsx"):
                found.append((words, action))

    walk(build_parser(), [])
    return found


def test_every_path_argument_refuses_an_empty_value():
    # `--db ''`, `--data "$UNSET"` acted as absent: the default database was opened (or
    # `kiosk keys new --dir ''` wrote the key pair into the current folder). One type for
    # every argument that names a file or folder refuses the empty one as bad input.
    import argparse

    found = _path_arguments()
    assert len(found) > 30
    untyped = []
    for words, action in found:
        try:
            (action.type or str)("")
        except argparse.ArgumentTypeError:
            continue
        untyped.append((" ".join(words), action.option_strings or action.dest))
    assert untyped == []


def test_an_empty_path_is_a_usage_error_and_writes_nothing(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    for argv in (
        ["keys", "new", "--dir", "", "--name", "x"],
        ["guard", "list", "--db", ""],
        ["token", "list", "--data", ""],
        ["check-config", ""],
        ["replay", "fever", "--db", ""],
        ["run", "--config", str(tmp_path / "k.toml"), "--data", ""],
    ):
        with pytest.raises(SystemExit) as exit:
            main(argv)
        assert exit.value.code == 2, argv
        err = capsys.readouterr().err
        assert "an empty path" in err, (argv, err)
    assert list(tmp_path.iterdir()) == []


def test_under_kiosk_admin_a_relative_path_is_the_operators_folder(tmp_path, monkeypatch, capsys):
    # `sudo kiosk-admin` runs the verb as user kiosk in /var/lib/kiosk: `lists import ./q.csv`
    # looked for /var/lib/kiosk/q.csv, and `report --xlsx r.xlsx` wrote the report there.
    # kiosk-admin says where it was run ($KIOSK_ADMIN_CWD); relative paths are taken there.
    operator, daemon = tmp_path / "home", tmp_path / "var-lib-kiosk"
    operator.mkdir()
    daemon.mkdir()
    (operator / "q.csv").write_text("household,from,until\n1-1-0101,2026-12-01,2026-12-14\n")
    db = str(daemon / "kiosk.db")
    assert main(["token", "new", "--db", db, "--scope", "logs:read"]) == 0
    monkeypatch.chdir(daemon)
    monkeypatch.setenv("KIOSK_ADMIN_CWD", str(operator))
    capsys.readouterr()
    assert main(["lists", "import", "./q.csv", "--list", "quarantine", "--db", db]) == 0
    assert '"added": 1' in capsys.readouterr().out
    assert main(["report", "--day", "2026-12-05", "--db", db, "--xlsx", "r.xlsx"]) == 0
    assert (operator / "r.xlsx").is_file()
    assert sorted(p.name for p in daemon.iterdir() if not p.name.startswith("kiosk.db")) == []
    from checkpoint.cli.parsers import path_arg  # a URL or an absolute path is left alone

    assert path_arg("postgresql://office/kiosk") == "postgresql://office/kiosk"
    assert path_arg("/etc/kiosk/kiosk.toml") == "/etc/kiosk/kiosk.toml"


def test_under_kiosk_admin_a_refused_file_is_not_sent_back_to_kiosk_admin(
    tmp_path, monkeypatch, capsys
):
    # The kiosk user may not read the operator's home (0700 on Raspberry Pi OS): "run it as
    # `sudo kiosk-admin`" was the advice given to someone running it so.
    import checkpoint.cli.community_cmd as community

    def denied(path, limit):
        raise PermissionError(13, "Permission denied", path)

    monkeypatch.setattr(community, "read_bounded", denied)
    monkeypatch.setenv("KIOSK_ADMIN_CWD", str(tmp_path))
    assert main(["lists", "import", "q.csv", "--list", "quarantine"]) == 1
    err = capsys.readouterr().err
    assert f"permission denied: {tmp_path / 'q.csv'}; kiosk-admin runs the verb as user" in err
    assert "run it as `sudo kiosk-admin" not in err


def test_a_second_daemon_on_the_same_data_dir_is_refused(tmp_path, monkeypatch, capsys):
    # `kiosk run` beside kiosk.service on another port started: two daemons wrote one event
    # log and drove one relay and thermometer. The first holds a lock on the data dir.
    import os

    import checkpoint.app
    from checkpoint.cli.daemon_cmd import LOCK_FILE, hold_data_dir

    started = []

    def build_core(*_args: object, **_kw: object) -> None:  # stops right after the lock
        started.append(True)
        # Not a card's failure (EIO would stand by, kiosk.standby, on a real port for ever).
        raise OSError(19, "No such device", str(data))

    monkeypatch.setattr(checkpoint.app, "build_core", build_core)
    config = tmp_path / "kiosk.toml"
    config.write_text("[site]\nkiosk_id = 'gate-1'\n")
    data = tmp_path / "data"
    first = hold_data_dir(data)  # the daemon already running (this process: its pid)
    try:
        assert main(["run", "--config", str(config), "--data", str(data)]) == 1
        (err,) = [line for line in capsys.readouterr().err.splitlines() if "kiosk run:" in line]
        assert f"another kiosk daemon (pid {os.getpid()}) runs on the data dir {data}" in err
        assert started == []
    finally:
        first.close()  # the first stops (or crashes: the kernel lets go all the same)
    assert main(["run", "--config", str(config), "--data", str(data)]) == 1
    assert started == [True]  # it got past the lock
    assert "another kiosk daemon" not in capsys.readouterr().err
    assert (data / LOCK_FILE).read_text() == f"{os.getpid()}\n"


def test_a_second_demo_on_the_same_data_dir_is_refused(tmp_path, capsys):
    from checkpoint.cli.daemon_cmd import DEMO_MARK, hold_data_dir

    data = tmp_path / "demo"
    data.mkdir()
    (data / DEMO_MARK).write_text("")
    first = hold_data_dir(data)
    try:
        assert main(["demo", "--port", "0", "--data", str(data)]) == 1
    finally:
        first.close()
    assert "another kiosk daemon" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("make", "said"),
    [
        (lambda p: p.write_bytes(b""), "no event log at {path} (an empty file)"),
        (lambda p: None, "no event log at {path} (no such file)"),
        (lambda p: p.write_text("hello\n"), "{path}: not an event log (not an SQLite database)"),
        (
            lambda p: __import__("sqlite3").connect(p).execute("CREATE TABLE pulled (x)"),
            "{path}: not a kiosk event log (no events/audit/meta tables)",
        ),
    ],
    ids=["empty", "missing", "text", "other-sqlite"],
)
def test_a_file_that_is_no_event_log_gets_one_answer_from_every_verb(tmp_path, capsys, make, said):
    # `guard list --db EMPTY` wrote a whole schema into the 0-byte file and exited 0 (a typo's
    # empty file then looked like the kiosk's log); `guard list --db TEXTFILE` exited 1 with
    # SQLITE_NOTADB where verify-log exited 2. One check (store_args.check_event_log): exit 2,
    # the same line, the file untouched.
    path = tmp_path / "x.db"
    make(path)
    before = path.read_bytes() if path.exists() else None
    for argv in (
        ["guard", "list"],
        ["token", "list"],
        ["verify-log"],
        ["report", "--day", "2026-12-05"],
        ["token", "revoke", "abcdefgh"],
    ):
        assert main([*argv, "--db", str(path)]) == 2, argv
        err = capsys.readouterr().err
        assert err.count("\n") == 1, err
        assert said.format(path=path) in err, (argv, err)
        assert (path.read_bytes() if path.exists() else None) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == (["x.db"] if before is not None else [])
    if said.startswith("no event log"):  # a verb that adds may begin a log there
        assert main(["token", "new", "--db", str(path), "--scope", "logs:read"]) == 0
        assert main(["guard", "list", "--db", str(path)]) == 0


@pytest.mark.parametrize(
    "argv",
    [
        ["demo", "--host", "{long}"],
        ["token", "new", "--scope", "{long}"],
        ["report", "--day", "{long}"],
        ["lists", "import", "x.csv", "--list", "{long}"],
        ["guard", "list", "--db", "{long}"],
        ["check-config", "{long}"],
        ["keys", "new", "--dir", "{tmp}", "--name", "{long}"],
        ["token", "new", "--scope", "{spaced}"],
    ],
    ids=lambda argv: " ".join(a for a in argv if "{" not in a),
)
def test_a_very_long_argument_is_not_echoed_whole(tmp_path, monkeypatch, capsys, argv):
    # A 100 KB argument (a file pasted instead of its name) came back whole in the error, up
    # to 300 KB on one line of stderr, into the journal and the terminal.
    monkeypatch.chdir(tmp_path)
    long, spaced = "a" * 100_000, "ab " * 30_000
    argv = [a.format(long=long, spaced=spaced, tmp=tmp_path) for a in argv]
    try:
        code = main(argv)
    except SystemExit as exc:
        code = exc.code
    assert code == 2
    err = capsys.readouterr().err
    assert 0 < len(err) < 2_500, len(err)
    assert "Traceback" not in err
    if long in argv and "--dir" not in argv and "--db" not in argv and "check-config" not in argv:
        assert f"{'a' * 59}...[1000" in err  # its start and its length are quoted


def test_check_config_checks_a_collector_config_as_one(tmp_path, capsys):
    # `kiosk check-config collector.toml` (the office's, for `kiosk collect`) said only
    # `kiosks: unknown key (check its spelling and the table it is in)`, exit 2, of a valid one.
    config = tmp_path / "collector.toml"
    config.write_text('[[kiosks]]\nurl = "http://gate-1:8000"\ntoken_env = "GATE1"\n'
                      '[[kiosks]]\nurl = "http://gate-2:8000"\ntoken_env = "GATE2"\n')  # fmt: skip
    assert main(["check-config", str(config)]) == 0
    out, err = capsys.readouterr()
    assert out == f"ok: {config} (collector config: 2 kiosks)\n"
    assert "kiosk collect --config" in err and "unknown key" not in err
    config.write_text('[[kiosks]]\nurl = "http://gate-1:8000"\ntoken_env = "GATE1"\n' * 2)
    assert main(["check-config", str(config)]) == 2
    err = capsys.readouterr().err
    assert "listed twice" in err and "kiosk collect --config" in err and "unknown key" not in err


def test_ctrl_c_during_an_applied_import_says_whether_it_was_applied(tmp_path, monkeypatch, capsys):
    # `lists import --apply` runs its transaction on the log's writer thread: Ctrl-C ended
    # the verb with exit 130 and not a word, while the import was committed all the same.
    import os
    import signal
    import sqlite3

    from checkpoint.cli import community_cmd

    db = tmp_path / "kiosk.db"
    csv = tmp_path / "q.csv"
    csv.write_text("household,from,until\n1-1-0101,2026-12-01,2026-12-14\n")
    argv = ["lists", "import", str(csv), "--list", "quarantine", "--db", str(db), "--apply"]
    real_plan = community_cmd._plan

    def ctrl_c_in_apply(*args):
        plan, apply = real_plan(*args)

        def apply_then_ctrl_c(actor):
            os.kill(os.getpid(), signal.SIGINT)  # the operator's Ctrl-C, mid-transaction
            return apply(actor)

        return plan, apply_then_ctrl_c

    monkeypatch.setattr(community_cmd, "_plan", ctrl_c_in_apply)
    assert main(argv) == 130
    out, err = capsys.readouterr()
    assert err == "kiosk lists: interrupted after the import was applied (in force, audited)\n"
    assert '"applied": true' in out
    rows = sqlite3.connect(db).execute("SELECT COUNT(*) FROM list_quarantine").fetchone()[0]
    assert rows == 1

    def ctrl_c_in_plan(*args):
        raise KeyboardInterrupt

    monkeypatch.setattr(community_cmd, "_plan", ctrl_c_in_plan)
    assert main(argv) == 130
    assert capsys.readouterr().err == "kiosk lists: interrupted: nothing applied\n"
