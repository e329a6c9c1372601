"""A week at the gate as the Pi operator lives it: upgrades and downgrades of the database,
power cuts, a full card, backups, purges run by hand beside the daemon.

Every test builds its kiosk in ``tmp_path`` on the injected clock; nothing waits."""

from __future__ import annotations

import sqlite3

import pytest
from sqlite_utils.migrations import Migrations
from support import need
from test_store import draft  # one passage, as the event log's own tests write it

from checkpoint.cli import INSTALLED_KIOSK
from kiosk import lists
from kiosk.store import EventLog, StoreFault


def _newer_lists() -> Migrations:
    """``kiosk.lists`` as a later version of the program ships it: one migration more."""
    newer = Migrations(lists.MIGRATIONS.name)
    for migration in lists.MIGRATIONS._migrations:
        newer(name=migration.name)(migration.fn)

    @newer(name="m999_from_a_later_version")
    def later(db):  # type: ignore[no-untyped-def]
        db.execute("ALTER TABLE list_revocations ADD COLUMN later_field TEXT NOT NULL DEFAULT ''")

    return newer


def _daemon_sets() -> list[Migrations]:
    """The sets the daemon opens its log with (checkpoint.app)."""
    from kiosk import accounts, ledgers, peers, stats, tokens

    return [
        lists.MIGRATIONS,
        tokens.MIGRATIONS,
        accounts.MIGRATIONS,
        stats.MIGRATIONS,
        *ledgers.MIGRATIONS,
        peers.MIGRATIONS,
    ]


# -- downgrade: a database a newer program wrote -------------------------------------------


def test_a_database_written_by_a_newer_version_is_refused_by_name(tmp_path, clock):
    """Rolling the program back (an older checkout, ``scripts/install``) while kiosk.db keeps
    a newer schema: the older program must not write into a schema it does not know (its
    rows would miss the newer columns and triggers). It refuses to open, naming why."""
    path = tmp_path / "kiosk.db"
    with EventLog(path, "gate-1", clock, migrations=[_newer_lists()]) as newer:
        newer.append(draft())
    with pytest.raises(StoreFault) as refused:
        EventLog(path, "gate-1", clock, migrations=[lists.MIGRATIONS]).open()
    assert "newer version" in refused.value.detail
    assert "kiosk.lists m999_from_a_later_version" in refused.value.detail
    conn = sqlite3.connect(path)
    try:
        assert conn.execute("SELECT count(*) FROM events").fetchone() == (1,)
        assert conn.execute("SELECT count(*) FROM audit").fetchone() == (0,)
    finally:
        conn.close()


def test_a_table_set_only_a_newer_version_has_is_refused_by_name(tmp_path, clock):
    """A later version brings a new kind of record in a migration set of its own (its own
    tables, kept in step with the events by that version). This one has no such set: it used
    to open the file and write events the set's tables never heard of, so going forward
    again found them out of step. It refuses, naming the set, and writes nothing."""
    path = tmp_path / "kiosk.db"
    parcels = Migrations("kiosk.parcels")
    parcels(name="m001_parcels")(lambda db: db.execute("CREATE TABLE parcels (seq INTEGER)"))
    with EventLog(path, "gate-1", clock, migrations=[*_daemon_sets(), parcels]) as newer:
        newer.append(draft())
    with pytest.raises(StoreFault) as refused:
        EventLog(path, "gate-1", clock, migrations=_daemon_sets()).open()
    assert "newer version" in refused.value.detail
    assert "kiosk.parcels" in refused.value.detail
    conn = sqlite3.connect(path)
    try:
        assert conn.execute("SELECT count(*) FROM events").fetchone() == (1,)
    finally:
        conn.close()


def test_a_verb_opening_fewer_sets_still_opens_the_daemons_log(tmp_path, clock):
    """The maintenance verbs open the log with only the sets they use; every other set the
    daemon applied is this program's own and no reason to refuse."""
    path = tmp_path / "kiosk.db"
    with EventLog(path, "gate-1", clock, migrations=_daemon_sets()) as log:
        log.append(draft())
    with EventLog(path, "gate-1", clock, migrations=[lists.MIGRATIONS]) as log:
        assert [e["seq"] for e in log.events()] == [1]


def test_the_cli_names_the_newer_database_in_one_line(tmp_path, clock, capsys):
    from checkpoint.cli import main

    path = tmp_path / "kiosk.db"
    from kiosk import tokens

    newer_tokens = Migrations(tokens.MIGRATIONS.name)
    for migration in tokens.MIGRATIONS._migrations:
        newer_tokens(name=migration.name)(migration.fn)
    newer_tokens(name="m999_later")(lambda db: None)
    with EventLog(path, "gate-1", clock, migrations=[newer_tokens]):
        pass
    assert main(["token", "list", "--db", str(path)]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "newer version" in err and "kiosk.tokens m999_later" in err


def test_an_older_schema_is_upgraded_in_place_keeping_rows_and_chain(tmp_path, clock):
    """Upgrading: kiosk.db from a version whose lists lacked ``m002_bundle_reason`` is opened
    by this one; the missing migration runs, the revocation and the chain are kept."""
    path = tmp_path / "kiosk.db"
    older = Migrations(lists.MIGRATIONS.name)
    first = lists.MIGRATIONS._migrations[0]
    older(name=first.name)(first.fn)
    with EventLog(path, "gate-1", clock, migrations=[older]) as log:
        log.append(draft())
        log.submit(
            lambda db: db.execute(
                "INSERT INTO list_revocations (pass_id, reason, revoked_at)"
                " VALUES ('P-9', 'lost', '2026-03-01T00:00:00Z')"
            )
        )
    with EventLog(path, "gate-1", clock, migrations=[lists.MIGRATIONS]) as log:
        cols = {r[1] for r in log.reader().execute("PRAGMA table_info(list_revocations)")}
        assert "bundle_reason" in cols
        assert [r["pass_id"] for r in log.reader()["list_revocations"].rows] == ["P-9"]
        log.append(draft())
        assert log.verify().ok
        assert [e["seq"] for e in log.events()] == [1, 2]


# -- the wrong user: the technician without sudo -------------------------------------------


def _as_another_user(tmp_path):
    """A folder holding a kiosk's files that this process may not read: the technician's
    view of /var/lib/kiosk (0750, owner kiosk), and the command prefix that makes it so."""
    import os
    import shutil

    folder = tmp_path / "var-lib-kiosk"
    folder.mkdir()
    if os.geteuid() != 0:
        return folder, [], lambda: folder.chmod(0o000)
    setpriv = shutil.which("setpriv")
    need(setpriv is not None, "setpriv (util-linux) to drop root's file-access override")
    # Root without CAP_DAC_OVERRIDE/CAP_DAC_READ_SEARCH is held to the modes, as a user is.
    prefix = [setpriv, "--bounding-set=-dac_override,-dac_read_search", "--inh-caps=-all"]

    def lock() -> None:
        os.chown(folder, 65534, 65534)
        for child in folder.iterdir():
            os.chown(child, 65534, 65534)
        folder.chmod(0o700)

    return folder, prefix, lock


@pytest.mark.parametrize(
    "verb",
    [
        ["verify-log", "--db", "{folder}/kiosk.db"],
        [
            "calibrate",
            "--data",
            "{folder}",
            "add",
            "--clinical",
            "36.6",
            "--object",
            "33.9",
            "--ambient",
            "24.5",
        ],
    ],
    ids=["verify-log", "calibrate-add"],
)
@pytest.mark.slow  # integration: real sockets, processes or deadlines (CI runs it)
def test_a_verb_run_without_the_rights_to_the_kiosk_files_says_so_in_one_line(
    tmp_path, clock, verb
):
    """``kiosk verify-log`` / ``calibrate add`` typed without ``sudo kiosk-admin``: one line
    naming the file and what to do, exit 1; not a Python traceback."""
    import subprocess
    import sys

    folder, prefix, lock = _as_another_user(tmp_path)
    with EventLog(folder / "kiosk.db", "gate-1", clock) as log:
        log.append(draft())
    lock()
    argv = [a.replace("{folder}", str(folder)) for a in verb]
    done = subprocess.run(
        [*prefix, sys.executable, "-m", "checkpoint", *argv],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert "Traceback" not in done.stderr, done.stderr
    assert done.returncode == 1, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    # Root held to the modes (the suite's stand-in for the user pi) is still root: a verb that
    # writes there is refused as root first (``refuse_root_over``), with the same way out.
    said = "run as root on" if prefix and verb[0] == "calibrate" else "permission denied:"
    assert lines[0].startswith(f"kiosk {verb[0]}: {said} {folder}")
    assert "sudo kiosk-admin" in lines[0]


# -- backup and restore ----------------------------------------------------------------------


class _Lan:
    """httpx transport to one in-process kiosk API (``support.kiosk_api``)."""

    def __init__(self, kiosk) -> None:  # type: ignore[no-untyped-def]
        self.kiosk = kiosk

    def __call__(self, request):  # type: ignore[no-untyped-def]
        import httpx

        answer = self.kiosk.test_client.get(
            request.url.path, params=request.url.params, headers=dict(request.headers)
        )
        return httpx.Response(answer.status_code, headers=answer.headers, content=answer.content)

    def client(self):  # type: ignore[no-untyped-def]
        import httpx

        return httpx.Client(transport=httpx.MockTransport(self))


def _copy_log(source, dest) -> None:  # type: ignore[no-untyped-def]
    """``kiosk.db`` plus ``kiosk.db-wal`` if present, as operations.md says; a ``-wal`` or
    ``-shm`` already at ``dest`` (the dead card's) goes first."""
    import shutil

    for suffix in ("", "-wal", "-shm"):
        dest.with_name(dest.name + suffix).unlink(missing_ok=True)
    for suffix in ("", "-wal"):
        if source.with_name(source.name + suffix).exists():
            shutil.copy(source.with_name(source.name + suffix), dest.with_name(dest.name + suffix))


def _gate(path, clock, n):  # type: ignore[no-untyped-def]
    from support import kiosk_api

    kiosk = kiosk_api(path, "gate-1", clock)
    for _ in range(n):
        kiosk.store.append(draft())
        clock.advance(60)
    return kiosk


def test_a_kiosk_restored_from_a_stopped_copy_goes_on_where_the_office_left_it(tmp_path, clock):
    """The documented backup: stop the daemon, copy kiosk.db; put it back on a new card. The
    office's pull goes on after its last row: nothing pulled twice, nothing missed."""
    from office.pull import pull

    live, office = tmp_path / "kiosk.db", tmp_path / "office.db"
    kiosk = _gate(live, clock, 12)
    pull("http://gate-1", kiosk.token, office, client=_Lan(kiosk).client())
    kiosk.store.close()  # systemctl stop kiosk
    _copy_log(live, tmp_path / "backup.db")
    live.unlink()  # the card died
    _copy_log(tmp_path / "backup.db", live)  # restored
    kiosk = _gate(live, clock, 3)
    try:
        result = pull("http://gate-1", kiosk.token, office, client=_Lan(kiosk).client())
        assert (result.inserted, result.last_seq) == (3, 15)
        assert kiosk.store.verify().ok
    finally:
        kiosk.store.close()
    conn = sqlite3.connect(office)
    try:
        seqs = [r[0] for r in conn.execute("SELECT seq FROM pulled_events ORDER BY seq")]
    finally:
        conn.close()
    assert seqs == list(range(1, 16))


def test_a_copy_older_than_the_offices_is_named_before_the_restored_kiosk_starts(
    tmp_path, clock, capsys
):
    """A restored kiosk.db taken before the office's last pull has lost the events since and
    would give new events seqs the office already holds (its pull then refuses the kiosk).
    The check operations.md gives for a restore, ``verify-log --against`` the office's copy,
    names it while the kiosk is still stopped."""
    from checkpoint.cli import main
    from office.pull import ChainError, pull

    live, office = tmp_path / "kiosk.db", tmp_path / "office.db"
    kiosk = _gate(live, clock, 10)
    kiosk.store.close()
    _copy_log(live, tmp_path / "backup.db")  # the last copy: seq 10
    kiosk = _gate(live, clock, 5)
    pull("http://gate-1", kiosk.token, office, client=_Lan(kiosk).client())  # office: seq 15
    kiosk.store.close()
    _copy_log(tmp_path / "backup.db", live)  # the card died; restored from the old copy
    code = main(["verify-log", "--db", str(live), "--against", str(office)])
    err = capsys.readouterr().err
    assert code == 1
    assert "events seq 11: in the office's copy but not in the kiosk's file" in err
    kiosk = _gate(live, clock, 7)  # started anyway: seq 11..17, other events
    try:
        with pytest.raises(ChainError):
            pull("http://gate-1", kiosk.token, office, client=_Lan(kiosk).client())
    finally:
        kiosk.store.close()


def test_operations_backups_name_what_a_restored_kiosk_needs():
    """The Backups section must cover what a kiosk needs besides its events: the trust
    folder (the office's and other gates' issuer keys: without them their passes are
    ``pass_unknown_key``), the lists, tokens and accounts that live in kiosk.db but never
    travel with the office's pull, and the check of a restored log against the office's."""
    from pathlib import Path

    text = (Path(__file__).parents[1] / "docs" / "operations.md").read_text(encoding="utf-8")
    backups = text.split("## Backups", 1)[1].split("\n## ", 1)[0]
    assert "/var/lib/kiosk/trust/" in backups
    for held in ("revocations", "quarantine", "tokens", "guard accounts"):
        assert held in backups, held
    assert "verify-log --against" in backups


# -- checking health: what operations.md promises a Prometheus scraper -----------------------


def test_the_metrics_operations_md_names_are_the_ones_metrics_serves(client):
    """operations.md sent the office's Prometheus to /metrics for "decision latency", which
    it never served. Every metric the page names must be there, and it must name them."""
    import re
    from pathlib import Path

    text = (Path(__file__).parents[1] / "docs" / "operations.md").read_text(encoding="utf-8")
    health = text.split("## Checking health", 1)[1].split("\n## ", 1)[0]
    named = set(re.findall(r"`(kiosk_[a-z_]+)`", health))
    assert named, "operations.md names no /metrics metric"
    served = set(re.findall(r"^# TYPE (kiosk_[a-z_]+) ", client.get("/metrics").text, re.M))
    assert named <= served, named - served


# -- the card is full (or has gone read-only): the maintenance verbs -------------------------


class _CardConnection(sqlite3.Connection):
    """A real connection whose writes fail as a full (or read-only) SD card makes them."""

    failing: tuple[str, int, str] | None = None

    def execute(self, sql, *args):  # type: ignore[no-untyped-def]
        words = sql.lstrip().split(None, 1)
        if _CardConnection.failing and words and words[0].upper() in ("INSERT", "UPDATE"):
            name, code, message = _CardConnection.failing
            exc = sqlite3.OperationalError(message)
            exc.sqlite_errorname, exc.sqlite_errorcode = name, code  # type: ignore[attr-defined]
            raise exc
        return super().execute(sql, *args)


@pytest.mark.parametrize(
    "failure",
    [
        ("SQLITE_FULL", 13, "database or disk is full"),
        ("SQLITE_READONLY", 8, "attempt to write a readonly database"),
    ],
    ids=["full", "read-only"],
)
@pytest.mark.parametrize(
    "verb",
    [
        ["token", "new", "--scope", "logs:read", "--name", "office"],
        ["token", "revoke", "{token_id}"],
        ["guard", "add", "night", "--password-stdin"],
        ["guard", "remove", "day"],
    ],
    ids=["token-new", "token-revoke", "guard-add", "guard-remove"],
)
def test_a_verb_that_cannot_write_the_full_card_says_so_in_one_line(
    tmp_path, clock, monkeypatch, capsys, verb, failure
):
    """The alarm table says: disk low, pull the log. Making the office a token for that pull
    on the full card (or on one the kernel has remounted read-only) ended in a StoreFault
    traceback. One line naming the SQLite error, exit 1, nothing written."""
    import io

    from checkpoint.cli import main
    from kiosk import accounts, stats, store, tokens

    path = tmp_path / "kiosk.db"
    every = [tokens.MIGRATIONS, stats.MIGRATIONS, accounts.MIGRATIONS]  # as the daemon left it
    with EventLog(path, "gate-1", clock, migrations=every) as log:
        token_id = tokens.TokenStore(log, clock=clock).create(["logs:read"], "x")[0].id
        hashed = accounts.hash_password("a long enough password")
        accounts.AccountStore(log).add("day", "guard", hashed, actor="test")

    def connect(p, timeout_s):  # type: ignore[no-untyped-def]
        return sqlite3.connect(str(p), timeout=timeout_s, factory=_CardConnection)

    monkeypatch.setattr(store, "_open_connection", connect)
    monkeypatch.setattr(_CardConnection, "failing", failure)
    monkeypatch.setattr("sys.stdin", io.StringIO("another long password\n"))
    argv = [a.replace("{token_id}", token_id) for a in verb]
    code = main([*argv, "--db", str(path)])
    out, err = capsys.readouterr()
    assert code == 1, err
    assert err.count("\n") == 1 and err.startswith(f"kiosk {verb[0]}: "), err
    if failure[0] == "SQLITE_FULL":  # the card's words (test_card_words)
        assert " is full (" in err and "nothing was changed" in err
        assert "SQLITE" not in err
    else:  # READONLY on a card not mounted so: another user's file, not the card's
        assert failure[0] in err and "could not be written" in err
    assert "kt_" not in out  # no token shown that was never stored
    monkeypatch.setattr(_CardConnection, "failing", None)
    with EventLog(path, "gate-1", clock, migrations=every) as log:
        assert [(t.id, t.revoked_at) for t in tokens.TokenStore(log, clock=clock).list()] == [
            (token_id, None)
        ]
        assert [a.name for a in accounts.AccountStore(log).names()] == ["day"]


@pytest.mark.slow  # integration: real sockets, processes or deadlines (CI runs it)
def test_a_log_left_owned_by_another_user_is_named_when_it_cannot_be_opened(tmp_path, clock):
    """``sudo kiosk token new --data /var/lib/kiosk`` (root, not kiosk-admin) before the
    daemon's first start leaves kiosk.db owned by root; the daemon (user kiosk) then stopped
    at "cannot open kiosk.db (SQLITE_READONLY)", which reads as a failing card. The message
    names the file this user cannot write and its owner (and, since 2026-12-07, how to give
    it back: it said "could not be written ... check the card")."""
    import os
    import subprocess
    import sys

    folder, prefix, _lock = _as_another_user(tmp_path)
    need(os.geteuid() == 0, "root to give the file to another user")
    with EventLog(folder / "kiosk.db", "gate-1", clock):
        pass
    for child in folder.iterdir():
        os.chown(child, 65534, 65534)  # the folder stays this user's, as /var/lib/kiosk does
    done = subprocess.run(
        [
            *prefix,
            sys.executable,
            "-m",
            "checkpoint",
            "guard",
            "list",
            "--db",
            str(folder / "kiosk.db"),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 1, done.stderr
    assert "SQLITE_READONLY" in done.stderr
    # Whose it is, and as whom to run it: the folder is root's, never given away (since a
    # second fix of 2026-12-07: it said `sudo chown -R root:root FOLDER`).
    assert f"{folder}/kiosk.db is nobody's (uid 65534) and this command runs as root" in done.stderr
    assert "chown" not in done.stderr
    assert f"run it as nobody: `sudo -u nobody {INSTALLED_KIOSK} guard ...`" in done.stderr


# -- the commands operations.md and install.md give, copied as written -----------------------


def _documented_commands(doc: str) -> list[tuple[str, bool]]:
    """``(command, in a sh block)`` for every code span and sh-block line of ``doc``."""
    import re
    from pathlib import Path

    text = (Path(__file__).parents[1] / "docs" / doc).read_text(encoding="utf-8")
    spans = re.findall(r"(?<!`)`([^`]+)`(?!`)", text)
    found = [(" ".join(span.split()), False) for span in spans]
    for block in re.findall(r"```sh\n(.*?)```", text, re.S):
        found += [(line.split("  #")[0].strip(), True) for line in block.splitlines()]
    return found


@pytest.mark.parametrize("doc", ["operations.md", "install.md"])
def test_every_kiosk_command_the_runbooks_give_runs_as_written(doc):
    """A command an operator copies from the runbook must be one the shell and the ``kiosk``
    parser take: ``sudo kiosk-admin VERB ...`` (or a ``kiosk VERB ...`` line of a shell
    block) with arguments the verb accepts. ``calibrate --data ... reset --yes`` alone was
    ``calibrate: command not found``."""
    import contextlib
    import io
    import shlex

    from checkpoint.cli import build_parser

    parser = build_parser()
    verbs = set(parser._subparsers._group_actions[0].choices)  # type: ignore[union-attr]
    placeholders = {"ID": "abcd1234", "N": "1"}
    checked = 0
    for command, in_block in _documented_commands(doc):
        words = command.split()
        if len(words) > 1 and words[0] in verbs and words[1].startswith("--"):
            pytest.fail(f"{doc}: `{command}` is not a command (sudo kiosk-admin {command}?)")
        prefixes = (["sudo", "kiosk-admin"], ["kiosk"]) if in_block else (["sudo", "kiosk-admin"],)
        prefix = next((p for p in prefixes if words[: len(p)] == p), None)
        if prefix is None or len(words) == len(prefix) or words[len(prefix)] not in verbs:
            continue
        if "..." in words:
            continue  # an elided command: its shape is told in the text around it
        argv = [placeholders.get(w, w) for w in shlex.split(command)[len(prefix) :]]
        with (
            contextlib.redirect_stderr(io.StringIO()) as err,
            contextlib.redirect_stdout(io.StringIO()),
        ):
            try:
                parser.parse_args(argv)
            except SystemExit as exc:
                assert not exc.code, f"{doc}: `{command}`: {err.getvalue().strip()}"
        checked += 1
    assert checked >= 1


# -- a token or an account change and its audit row: one transaction -----------------------


class _AuditFails(sqlite3.Connection):
    """The card fills between a change and its audit row: only the audit insert fails."""

    failing = False

    def execute(self, sql, *args):  # type: ignore[no-untyped-def]
        if _AuditFails.failing and sql.lstrip().upper().startswith("INSERT INTO AUDIT"):
            exc = sqlite3.OperationalError("database or disk is full")
            exc.sqlite_errorname, exc.sqlite_errorcode = "SQLITE_FULL", 13  # type: ignore[attr-defined]
            raise exc
        return super().execute(sql, *args)


@pytest.mark.parametrize("change", ["token-new", "token-revoke", "guard-add", "guard-remove"])
def test_a_token_or_account_change_never_stands_without_its_audit_row(
    tmp_path, clock, monkeypatch, change
):
    """privacy.md: token creation and revocation are audited (guard accounts too). They were
    two commits, the change and then its audit row: a full card or a power cut between left
    a token made (or revoked, an account changed) that the audit chain never names, and the
    operator was told it failed. Now the change and its row commit together or not at all."""
    from kiosk import accounts, store, tokens

    def connect(p, timeout_s):  # type: ignore[no-untyped-def]
        return sqlite3.connect(str(p), timeout=timeout_s, factory=_AuditFails)

    monkeypatch.setattr(store, "_open_connection", connect)
    monkeypatch.setattr(_AuditFails, "failing", False)
    every = [tokens.MIGRATIONS, accounts.MIGRATIONS]
    with EventLog(tmp_path / "kiosk.db", "gate-1", clock, migrations=every) as log:
        token_store = tokens.TokenStore(log, b"pepper-of-sixteen+", clock)
        account_store = accounts.AccountStore(log)
        token_id = token_store.create(["logs:read"], "office")[0].id
        hashed = accounts.hash_password("a long enough password")
        account_store.add("day", "guard", hashed, actor="test")

        def state():  # type: ignore[no-untyped-def]
            return (
                [(t.id, t.revoked_at) for t in token_store.list()],
                [a.name for a in account_store.names()],
                len(log.audits(limit=100)),
            )

        before = state()
        monkeypatch.setattr(_AuditFails, "failing", True)
        with pytest.raises(StoreFault):
            if change == "token-new":
                token_store.create(["logs:read"], "second")
            elif change == "token-revoke":
                token_store.revoke(token_id)
            elif change == "guard-add":
                account_store.add("night", "guard", hashed, actor="test")
            else:
                account_store.disable("day", actor="test")
        monkeypatch.setattr(_AuditFails, "failing", False)
        assert state() == before
        assert log.verify().ok


# -- installing and updating: what pip may keep ----------------------------------------------


def test_the_sqlite_utils_floor_is_a_version_that_has_the_migrations_the_log_opens_with():
    """kiosk.store builds its schema with ``sqlite_utils.migrations`` (sqlite-utils 4.0 and
    later). pyproject asked for ``>=3.36``, so pip kept a 3.x already in the environment (an
    office machine with datasette's sqlite-utils, an update into an older venv) and every
    verb that opens a database ended in an ImportError."""
    import re
    import tomllib
    from pathlib import Path

    from packaging.requirements import Requirement

    project = tomllib.loads((Path(__file__).parents[1] / "pyproject.toml").read_text())
    [spec] = [
        Requirement(r).specifier
        for r in project["project"]["dependencies"]
        if re.match(r"sqlite-utils\b", r)
    ]
    assert not spec.contains("3.38"), spec
    assert spec.contains("4.2.1"), spec


# -- changing the config: the kiosk's id ----------------------------------------------------


def test_the_daemon_refuses_a_kiosk_id_that_is_not_its_logs(tmp_path, clock):
    """Two kiosks installed with the example's ``kiosk_id = "gate-1"``; the technician fixes
    the second one's config and restarts it. The daemon went on writing the same log under
    the new id: its next event ended the office's pull for good (``ChainError: kiosk_id
    'north-gate', expected 'gate-1'``). It refuses to start instead, naming both ids."""
    from checkpoint.app import build_core
    from kiosk.config import parse_config

    data = tmp_path / "data"
    data.mkdir()
    with EventLog(data / "kiosk.db", "gate-1", clock) as log:
        log.append(draft())
    renamed = parse_config({"site": {"kiosk_id": "north-gate"}, "web": {"port": 0}})
    with pytest.raises(StoreFault) as refused:
        build_core(renamed, data, clock)
    assert "'gate-1'" in refused.value.detail and "'north-gate'" in refused.value.detail
    with EventLog(data / "kiosk.db", "gate-1", clock) as log:
        assert [e["kiosk_id"] for e in log.events()] == ["gate-1"]  # nothing written
    same = parse_config({"site": {"kiosk_id": "gate-1"}, "web": {"port": 0}})
    core = build_core(same, data, clock)  # its own id: starts as before
    core.store.close()


@pytest.mark.parametrize(
    "verb",
    [
        ["add", "--clinical", "36.7", "--object", "34.0", "--ambient", "24.5"],
        ["fit"],
        ["reset", "--yes"],
    ],
    ids=["add", "fit", "reset"],
)
def test_calibrate_on_a_full_card_says_so_in_one_line_and_keeps_the_file(
    tmp_path, monkeypatch, capsys, verb
):
    """``kiosk calibrate add`` (and fit, reset) on a full card ended in an OSError traceback.
    One line naming the file system's answer, exit 1; calibration.json as it was."""
    import errno
    import tempfile

    from checkpoint.cli import main
    from kiosk import files

    data = tmp_path / "data"
    data.mkdir()
    for clinical, obj in ((36.6, 33.9), (36.8, 34.2), (36.5, 33.7)):
        argv = ["calibrate", "--data", str(data), "add", "--clinical", str(clinical)]
        assert main([*argv, "--object", str(obj), "--ambient", "24.5"]) == 0
    before = (data / "calibration.json").read_bytes()
    capsys.readouterr()

    def full(*args, **kwargs):  # type: ignore[no-untyped-def]
        raise OSError(errno.ENOSPC, "No space left on device", str(data))

    monkeypatch.setattr(files.tempfile, "mkstemp", full)
    code = main(["calibrate", "--data", str(data), *verb])
    err = capsys.readouterr().err
    monkeypatch.setattr(files.tempfile, "mkstemp", tempfile.mkstemp)
    assert code == 1, err
    assert err.count("\n") == 1 and err.startswith("kiosk calibrate: "), err
    assert " is full (" in err and str(data) in err  # the card's words (test_card_words)
    assert (data / "calibration.json").read_bytes() == before


def test_every_migration_set_of_the_program_is_named_in_program_sets():
    """A set added to a module but not to ``kiosk.schema.PROGRAM_SETS`` would make this very
    program refuse the log its daemon wrote, from any verb that does not open that set."""
    import importlib
    import pkgutil

    import kiosk
    from kiosk.schema import PROGRAM_SETS

    found = set()
    for module in pkgutil.iter_modules(kiosk.__path__):
        sets = getattr(importlib.import_module(f"kiosk.{module.name}"), "MIGRATIONS", ())
        found |= {s.name for s in (sets if isinstance(sets, tuple) else (sets,))}
    assert found == PROGRAM_SETS
    assert {s.name for s in _daemon_sets()} | {"kiosk.events"} == PROGRAM_SETS


def test_the_daemon_refusing_a_newer_log_says_to_install_that_version_not_to_check_the_card(
    tmp_path, clock, capsys
):
    """Going back to this version after a later one migrated kiosk.db: the daemon's journal
    line sent the technician to the card (`df -h`, `dmesg`) and to sudo kiosk-admin, though
    nothing is wrong with either. It names the version mismatch and the way back only."""
    from checkpoint.cli import main
    from checkpoint.cli.daemon_cmd import DEMO_MARK

    (tmp_path / DEMO_MARK).write_text("an earlier demo's data\n")
    newer = _newer_lists()
    with EventLog(tmp_path / "kiosk.db", "demo-gate", clock, migrations=[newer]) as log:
        log.append(draft())
    assert main(["demo", "--data", str(tmp_path), "--port", "0"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1, err
    assert "written by a newer version" in err and "m999_from_a_later_version" in err
    assert "df -h" not in err and "dmesg" not in err and "kiosk-admin" not in err
    assert "docs/install.md" in err


def test_verify_log_of_a_log_a_newer_version_migrated_says_so_instead_of_a_verdict(
    tmp_path, clock, capsys
):
    """Going back, then checking the log: the release of 211cd92 read a log the next one had
    migrated (period salts) and said `FAIL events seq 6: personal fields do not match their
    digest (edited)`, a tamper alarm for rows nobody edited. A change this version does not
    know may be of the kind its checks read; it gives no verdict and names the version."""
    from checkpoint.cli import main

    path = tmp_path / "kiosk.db"
    with EventLog(path, "gate-1", clock, migrations=[_newer_lists()]) as log:
        log.append(draft())
    assert main(["verify-log", "--db", str(path)]) == 2
    out, err = capsys.readouterr()
    assert out == "" and err.count("\n") == 1, (out, err)
    assert "newer version" in err and "kiosk.lists m999_from_a_later_version" in err
    assert main(["verify-log", "--db", str(path), "--json"]) == 2
