"""A real PostgreSQL for the fleet tests, started by the tests themselves when needed.

``KIOSK_TEST_PG_DSN`` set (a ``postgresql://`` URL naming a role allowed to ``CREATE
DATABASE``): every test gets a fresh database on that server, dropped at the end. Not set: a
throwaway cluster is started once per session (``initdb`` in a temporary directory,
``pg_ctl``, a unix socket, fsync off) and removed at the end. No server binaries: the tests
*fail* when ``CI=true`` (CI must test against a real PostgreSQL), and are skipped with the
reason elsewhere.

Use it from a test module with ``pytest_plugins = ("pgfixture",)``; the module also has the
in-process kiosk helpers the fleet tests share. (PYTEST_DONT_REWRITE: it is imported before
pytest registers it as a plugin, and it asserts nothing itself.)
"""

from __future__ import annotations

import hashlib
import itertools
import os
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest
from support import kiosk_api

from office.pg import TempCluster, find_pg_bin
from office.pull import SqliteTarget

_counter = itertools.count(1)


class _Server:
    """Either an external server (DSN) or our own ``TempCluster``; makes fresh databases.

    They are made on one connection kept for the session: a connection made for each (as
    ``TempCluster.create_database`` does: a server process started and ended each time)
    added ~5 ms to the ~10-15 ms of ``CREATE DATABASE``, in each of the ~250 tests that take
    ``pg_dsn``."""

    def __init__(self, dsn: str | None, cluster: TempCluster | None) -> None:
        self.base_dsn = dsn
        self.cluster = cluster
        self.created: list[str] = []
        self._conn: psycopg.Connection | None = None
        #: The next test's database, being made while this one runs (``create_database``).
        self._next: Future[str] | None = None
        self._ahead: ThreadPoolExecutor | None = None

    def _admin(self) -> psycopg.Connection:
        if self._conn is None or self._conn.closed:
            dsn = self.cluster.dsn() if self.cluster is not None else self.base_dsn
            assert dsn is not None
            self._conn = psycopg.connect(dsn, autocommit=True)
        return self._conn

    def close(self) -> None:
        """On an external server, leave nothing behind (a throwaway cluster just goes)."""
        if self._ahead is not None:
            self._ahead.shutdown(wait=True)  # the database made ahead is in ``created``
        try:
            if self.base_dsn is not None:
                for name in self.created:
                    self._admin().execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            if self._conn is not None:
                self._conn.close()

    def create_database(self) -> str:
        """A fresh, empty database: the one made while the previous test ran (``CREATE
        DATABASE`` took ~10-15 ms of each test's setup on a quiet machine, ~70 ms on a busy
        one), and the next one started. Made alike, from the server's template, by one
        statement on one connection, one at a time; one that failed fails the test that
        would have had it, as before."""
        ready, self._next = self._next, None
        dsn = ready.result() if ready is not None else self._create()
        if self._ahead is None:
            self._ahead = ThreadPoolExecutor(1, thread_name_prefix="kiosk-test-pg-next")
        self._next = self._ahead.submit(self._create)
        return dsn

    def _create(self, prefix: str = "kiosk_test") -> str:
        name = f"{prefix}_{os.getpid()}_{next(_counter)}_{uuid.uuid4().hex[:6]}"
        self._admin().execute(f'CREATE DATABASE "{name}"')
        if self.cluster is not None:
            return self.cluster.dsn(name)
        assert self.base_dsn is not None
        self.created.append(name)
        return urlunsplit(urlsplit(self.base_dsn)._replace(path="/" + name))


def _unavailable(reason: str) -> None:
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"PostgreSQL is required in CI: {reason}", pytrace=False)
    pytest.skip(f"PostgreSQL not available: {reason}")


@pytest.fixture(scope="session")
def pg_cluster() -> Iterator[_Server]:
    dsn = os.environ.get("KIOSK_TEST_PG_DSN")
    if dsn:
        if not dsn.startswith(("postgresql://", "postgres://")):
            pytest.fail("KIOSK_TEST_PG_DSN must be a postgresql:// URL", pytrace=False)
        try:
            psycopg.connect(dsn, connect_timeout=5).close()
        except psycopg.Error as exc:
            pytest.fail(f"KIOSK_TEST_PG_DSN is set but unusable: {exc}", pytrace=False)
        server = _Server(dsn, None)
        try:
            yield server
        finally:
            server.close()
        return
    if find_pg_bin() is None:
        _unavailable("no initdb/pg_ctl (apt-get install postgresql) and KIOSK_TEST_PG_DSN unset")
    try:
        cluster = _started_cluster()
    except (OSError, RuntimeError, subprocess.SubprocessError) as exc:
        _unavailable(f"could not start a throwaway cluster: {exc}")
    server = _Server(None, cluster)
    try:
        yield server
    finally:
        server.close()
        cluster.stop()


#: What a kept data directory was made by, besides the server and the user (``_template``).
_INITDB = "initdb -A trust -E UTF8 --no-sync, v1"


def _template(cluster: TempCluster) -> Path | None:
    """Where ``initdb``'s data directory for ``cluster`` is kept between runs: the user's
    cache directory, by the server's binaries (their version), the user it runs as, the
    locale and ``_INITDB``. None without a writable cache directory."""
    initdb = (cluster.bin / "initdb").stat()
    locale = [os.environ.get(v, "") for v in ("LC_ALL", "LC_COLLATE", "LC_CTYPE", "LANG")]
    made_by = [str(cluster.bin), initdb.st_size, initdb.st_mtime_ns, cluster.role, *locale]
    key = hashlib.sha256(repr([*made_by, _INITDB]).encode()).hexdigest()[:16]
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    try:
        (base / "kiosk-tests").mkdir(parents=True, exist_ok=True, mode=0o700)
    except OSError:
        return None
    return base / "kiosk-tests" / f"pg-data-{key}"


def _started_cluster() -> TempCluster:
    """A throwaway cluster on a copy of the data directory ``initdb`` made in an earlier run
    (``initdb`` took ~0.5 s of CPU, ~1.5 s on a loaded machine, of the first PostgreSQL test
    of every test process), kept in the user's cache directory; made and kept the first
    time. One that no longer starts is made again."""
    cluster = TempCluster()
    template = _template(cluster)
    if template is not None and template.is_dir():
        try:
            return cluster.start(template=template)
        except (OSError, RuntimeError, subprocess.SubprocessError):
            cluster.stop()
            shutil.rmtree(template, ignore_errors=True)
            cluster = TempCluster()
    data = cluster.initdb()
    if template is not None:
        part = template.with_name(f"{template.name}.{os.getpid()}.part")
        keep = subprocess.run(["cp", "-a", "--", str(data), str(part)], check=False)
        if keep.returncode != 0 or not _renamed(part, template):
            shutil.rmtree(part, ignore_errors=True)  # another process kept one first
    return cluster.start()


def _renamed(part: Path, template: Path) -> bool:
    try:
        part.rename(template)
    except OSError:
        return False
    return True


@pytest.fixture
def pg_dsn(pg_cluster: _Server) -> str:
    """A fresh, empty database for one test."""
    return pg_cluster.create_database()


# --------------------------------------------------------------------------- in-process kiosks


def make_kiosk(path, kiosk_id: str, clock, n: int = 0):
    """A kiosk's real event log and real HTTP API (``ui.api.router``), in process."""
    core = kiosk_api(path, kiosk_id, clock)
    add_events(core, n)
    return core


def add_events(core, n: int, *, fever_every: int = 0, advance_s: float = 1.0) -> None:
    """``n`` decisions through the real ``EventLog.append``."""
    from kiosk.store import EventDraft

    for i in range(n):
        fever = fever_every and i % fever_every == 0
        core.store.append(
            EventDraft(
                direction="in" if i % 2 else "out",
                decision="deny" if fever else "pass",
                reasons=("fever",) if fever else ("ok",),
                temp_c=38.4 if fever else 36.0 + (i % 10) / 10,
                pass_id=f"{i:012x}",
                household=f"3-20{i % 3}",
                holder="Li Lei",
                person={"phone": "13800138000"},
            )
        )
        core.clock.advance(advance_s)


class Network:
    """An httpx transport routing ``http://<kiosk_id>/...`` to in-process kiosks; ``faults``
    may answer instead (``"connect"``, ``"500"``, or any ``httpx.Response``) to make the
    network misbehave."""

    def __init__(self, *kiosks, faults=None):
        import httpx

        self._httpx = httpx
        self.kiosks = {k.config.site.kiosk_id: k for k in kiosks}
        self.faults = faults or (lambda request: None)
        self.requests: list = []

    def __call__(self, request):
        httpx = self._httpx
        self.requests.append(request)
        fault = self.faults(request)
        if fault == "connect":
            raise httpx.ConnectError("refused", request=request)
        if fault == "500":
            return httpx.Response(500, json={"detail": "boom"})
        if isinstance(fault, httpx.Response):
            return fault
        kiosk = self.kiosks.get(request.url.host)
        if kiosk is None:
            raise httpx.ConnectError("no route to host", request=request)
        response = kiosk.test_client.get(
            request.url.path, params=request.url.params, headers=dict(request.headers)
        )
        return httpx.Response(
            response.status_code, headers=response.headers, content=response.content
        )

    def client(self):
        return self._httpx.Client(transport=self._httpx.MockTransport(self))


def central_rows(dsn: str, kiosk_id: str | None = None) -> list[tuple]:
    with psycopg.connect(dsn) as conn:
        return conn.execute(
            "SELECT kiosk_id, seq, hash, prev_hash, ts FROM fleet_events"
            " WHERE %s::text IS NULL OR kiosk_id = %s ORDER BY kiosk_id, seq",
            [kiosk_id, kiosk_id],
        ).fetchall()


def kiosk_rows(core) -> list[tuple]:
    rows, after = [], 0
    while True:
        page = core.store.events(after_seq=after, limit=10000)
        if not page:
            return rows
        rows += [(e["kiosk_id"], e["seq"], e["hash"], e["prev_hash"], e["ts"]) for e in page]
        after = page[-1]["seq"]


class PagesOnlyTarget(SqliteTarget):
    """The office's database as a SQLite file that keeps the pulled pages only: the
    collector's beats, gates and ledger reports go nowhere (no report day is final)."""

    def record_run(self, *args: object, **kwargs: object) -> None:
        pass

    def record_gates(self, gates: list[dict]) -> None:
        pass

    def write_gate_report(self, *report) -> None:
        pass

    def final_report_days(self, kiosk_id: str, since) -> set:
        return set()

    def reported_compound(self, kiosk_id: str, day) -> None:
        return None
