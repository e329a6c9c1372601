"""Shared fixtures: fake clock, default config, data dir. Area fixtures live by their tests."""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
import time
import warnings
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:  # imported where used
    from kiosk.clock import FakeClock
    from kiosk.config import KioskConfig

# Tests write nothing into the tree: Hypothesis keeps its example database (the failing
# examples it replays first next time) and caches in the system temp, not in ./.hypothesis.
os.environ.setdefault(
    "HYPOTHESIS_STORAGE_DIRECTORY", str(Path(tempfile.gettempdir()) / "kiosk-tests-hypothesis")
)


def _no_hypothesis_deadline() -> None:
    """Hypothesis's 200 ms per-example deadline is a timing assertion: on a loaded 2-core
    machine a property test failed on it (268 ms) with nothing wrong. Speed is the bench's;
    tests check behaviour, so every property test runs without a deadline."""
    from hypothesis import settings

    settings.register_profile("kiosk", deadline=None)
    settings.load_profile("kiosk")


_no_hypothesis_deadline()


# Bytecode cached out of the tree (``bytecode_cache.py``): pyproject loads it before any
# other plugin; imported here too for a run without pyproject's addopts.
import bytecode_cache  # noqa: E402, F401


def _temporary_files_in_memory(shm: Path = Path("/dev/shm"), need_free: int = 4 << 30) -> None:
    """Put this process's temporary files (pytest's ``tmp_path``, ``tempfile``) in memory when
    the machine has a roomy ``/dev/shm``: every test opens fresh SQLite logs, and on a disk
    each one's WAL switch and commits wait for ``fsync`` (~2.5 ms a new log, ~1 ms a commit on
    a VM disk, ~10x less in memory). A ``TMPDIR`` the user set, or a small ``/dev/shm`` (a
    container's 64 MB), leaves the system temp as it is."""
    if os.environ.get("TMPDIR") or not os.access(shm, os.W_OK | os.X_OK):
        return
    try:
        if shutil.disk_usage(shm).free < need_free:
            return
    except OSError:
        return
    tempfile.tempdir = str(shm)


_temporary_files_in_memory()


def _message_catalogues_looked_up_once() -> None:
    """Remember where ``gettext`` found (or did not find) a message catalogue. argparse asks
    for one at every help string and error it builds: ~140 times per ``build_parser()``, each
    four ``stat`` calls for ``.mo`` files that are not there, ~20 ms of every CLI verb a test
    runs (hundreds of them). The answer depends only on its arguments, the locale variables
    (part of the key) and files no test writes, so the messages and their language stay as
    they were."""
    import gettext

    find = gettext.find
    found: dict[tuple[object, ...], object] = {}

    def find_once(domain, localedir=None, languages=None, all=False):  # noqa: A002 (gettext's)
        env = tuple(os.environ.get(v) for v in ("LANGUAGE", "LC_ALL", "LC_MESSAGES", "LANG"))
        key = (domain, localedir, None if languages is None else tuple(languages), all, env)
        if key not in found:
            found[key] = find(domain, localedir, languages, all)
        hit = found[key]
        return list(hit) if isinstance(hit, list) else hit

    gettext.find = find_once


_message_catalogues_looked_up_once()


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    _set_the_property_tests_depth(items)
    if os.environ.get("KIOSK_TEST_HARDWARE") == "1":
        return
    skip = pytest.mark.skip(reason="real hardware: set KIOSK_TEST_HARDWARE=1")
    for item in items:
        if "hardware" in item.keywords:
            item.add_marker(skip)


def pytest_configure(config: pytest.Config) -> None:
    import collector_pace

    # the oldest generation collected between tests, never in one
    config.pluginmanager.register(collector_pace, "collector_pace")


#: How deep the property-based (Hypothesis) tests search. ``full``: as many examples as each
#: test names (CI: ``./scripts/test`` sets it for its whole run). Otherwise (the unit suite a
#: developer runs): a quarter of them, at least ``UNIT_MIN_EXAMPLES`` — every property is still
#: checked on every run, on fewer random cases; the depth is CI's, not lost. Tests marked
#: ``slow`` always run as written.
DEPTH_VARIABLE = "KIOSK_TEST_DEPTH"
UNIT_MIN_EXAMPLES = 20


def unit_examples(written: int) -> int:
    """The examples a test that names ``written`` runs in the unit suite."""
    return min(written, max(UNIT_MIN_EXAMPLES, written // 4))


def _set_the_property_tests_depth(items: list[pytest.Item]) -> None:
    """Apply the depth to every collected Hypothesis test: a ``@given`` test's settings
    (its own, or the default profile's) and a state machine's ``TestCase.settings``. Both are
    read when the test runs, so only the number of examples changes, nothing else of them."""
    if os.environ.get(DEPTH_VARIABLE) == "full":
        return
    from hypothesis import settings

    for item in items:
        obj = getattr(item, "obj", None)
        test = getattr(obj, "__func__", obj)
        if not getattr(test, "is_hypothesis_test", False) or "slow" in item.keywords:
            continue  # a slow test (a hunt run on purpose) runs as written
        machine = getattr(item, "cls", None)
        holder = machine if isinstance(getattr(machine, "settings", None), settings) else test
        if getattr(holder, "_kiosk_unit_depth", False):
            continue  # already set (a test collected twice)
        name = "settings" if holder is machine else "_hypothesis_internal_use_settings"
        written = getattr(holder, name, None) or settings.default
        setattr(holder, name, settings(written, max_examples=unit_examples(written.max_examples)))
        holder._kiosk_unit_depth = True


@pytest.fixture
def clock() -> FakeClock:
    """A clock at 2026-03-02 08:30 UTC that moves only when the test advances it."""
    from kiosk.clock import FakeClock

    return FakeClock(start=datetime(2026, 3, 2, 8, 30, tzinfo=UTC))


@pytest.fixture
def config() -> KioskConfig:
    from kiosk.config import KioskConfig

    return KioskConfig()


@pytest.fixture
def data_dir(tmp_path):
    d = tmp_path / "data"
    d.mkdir()
    return d


@pytest.fixture
def store(data_dir, clock):
    """A fresh event log (real SQLite, single writer) in a temp dir."""
    from kiosk.store import EventLog

    log = EventLog(data_dir / "kiosk.db", "test-gate", clock).open()
    yield log
    log.close()


@pytest.fixture
def reporting_store(tmp_path, clock):
    """An event log with the API tokens and the daily aggregates tables (as the daemon opens
    it), NORMAL sync: for the daily report and retention tests."""
    from support import reporting_log

    log = reporting_log(tmp_path / "kiosk.db", clock)
    yield log
    log.close()


@pytest.fixture
def core(data_dir, clock, config):
    """Every core object wired on fake devices and the fake clock; not started."""
    from checkpoint.app import build_core

    built = build_core(config, data_dir, clock)
    yield built
    built.close()


@pytest.fixture
def client(core):
    """A TestClient on the real app built from ``core``."""
    from fastapi.testclient import TestClient

    from ui.app import create_app

    with TestClient(create_app(core)) as test_client:
        yield test_client


class _SyncedSystemClock:
    """``drivers.clocksync.system_clock`` as a machine whose kernel calls its clock
    synchronised has it, whatever the caller asks (the real one, taken before any test)."""

    def __init__(self) -> None:
        from drivers.clocksync import system_clock

        self.real = system_clock

    def __call__(self, **_: object) -> Any:
        return self.real(assume_synced=True)


@pytest.fixture(autouse=True, scope="session")
def _machine_clock_synced():
    """``kiosk pass issue|batch`` on a machine whose kernel calls its clock synchronised,
    whatever this one's says (a container's does not): on a clock not synchronised a pass is
    issued only from ``--start`` (``kiosk.passes.pass_start``). A test of that patches again.
    Patched once for the session, the same object in every test: per test it cost every
    test a fixture and a monkeypatch (~0.3 ms), and a new function each time was a changed
    attribute of ``checkpoint.cli`` to ``cli_parser``, which built the parser again."""
    from checkpoint.cli import pass_cmd

    patch = pytest.MonkeyPatch()
    patch.setattr(pass_cmd, "system_clock", _SyncedSystemClock())
    yield
    patch.undo()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None):
    """CLI verbs configure logging for a real process; keep that from leaking between tests:
    the root logger's handlers and level as they were before the test's setup, after its
    teardown (a hook, not an autouse fixture: that cost every test ~0.1 ms of fixture)."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    try:
        return (yield)
    finally:
        if root.handlers != handlers:
            root.handlers[:] = handlers
        if root.level != level:  # setLevel empties every logger's cache
            root.setLevel(level)


@pytest.fixture(autouse=True, scope="session")
def _keep_the_test_processs_allocator():
    """``kiosk run``/``demo`` (run in-process by some tests) retune glibc's allocator for a
    long-running daemon (``checkpoint/malloc.py``): with its fixed 128 KB mmap threshold every
    later camera frame in the worker is mapped and unmapped, which made each replay after
    such a test ~3x slower. Here ``tune`` touches nothing; ``tests/test_memory.py`` checks in
    fresh interpreters that glibc takes the settings and that both verbs apply them."""
    from checkpoint import malloc

    patch = pytest.MonkeyPatch()
    patch.setattr(malloc, "tune", lambda: True)
    yield
    patch.undo()


@pytest.fixture(autouse=True, scope="session")
def _new_event_logs_start_from_a_template(tmp_path_factory):
    """A new event log of the program's migration sets starts as a copy of one migrated for
    real once per test process (``log_templates.py``): ~4 ms less of every core a test builds.
    A test's own or patched sets, and a connection factory a test replaced, migrate as ever."""
    from log_templates import LogTemplates

    patch = pytest.MonkeyPatch()
    templates = LogTemplates(tmp_path_factory.mktemp("log-templates"))
    templates.install(patch)
    yield templates
    patch.undo()


@pytest.fixture(autouse=True, scope="session")
def _routes_compiled_once_per_process():
    """Each route of the modules' routers compiled once for the apps of every test, not once
    per app (``app_routes.py``): ~0.5 ms a route, ~20,000 compilations a run."""
    from app_routes import CompiledRoutes

    patch = pytest.MonkeyPatch()
    routes = CompiledRoutes()
    routes.install(patch)
    if routes.not_installed:
        # A speed-up of the tests, not a behaviour: a FastAPI that changed the private hook
        # runs the suite slower, saying so, never red.
        warnings.warn(routes.not_installed, stacklevel=1)
    yield routes
    patch.undo()


@pytest.fixture(autouse=True, scope="session")
def _portal_calls_in_one_trip():
    """A test client's calls into its event loop's thread wait once each, for the result,
    not first for the task's spawn too (``portal_calls.py``): ~40,000 calls a run."""
    import portal_calls

    patch = pytest.MonkeyPatch()
    not_installed = portal_calls.install(patch)
    if not_installed:  # a speed-up of the tests, not a behaviour: slower, said, never red
        warnings.warn(not_installed, stacklevel=1)
    yield
    patch.undo()


@pytest.fixture(autouse=True, scope="session")
def _servers_poll_at_the_tests_pace():
    """A uvicorn server stopped in ~5 ms, not ~0.2 s of its fixed polls, and the collector's
    status server in ~5 ms, not up to 50 ms (``server_polls.py``)."""
    import server_polls

    patch = pytest.MonkeyPatch()
    not_installed = server_polls.install(patch)
    if not_installed:  # a speed-up of the tests, not a behaviour: slower, said, never red
        warnings.warn(not_installed, stacklevel=1)
    yield
    patch.undo()


@pytest.fixture(autouse=True, scope="session")
def _one_cli_parser_per_process():
    """The ``kiosk`` parser ``main`` builds (~5 ms) built again only when what it is built
    from changed (``cli_parser.py``): the tests run the CLI's verbs in-process ~1,000 times."""
    from cli_parser import SharedParser

    patch = pytest.MonkeyPatch()
    shared = SharedParser()
    shared.install(patch)
    yield shared
    patch.undo()


@pytest.fixture
def guard_core(data_dir, clock, monkeypatch):
    """The real core as the daemon builds it (``guard_support.make_core``), closed after."""
    from guard_support import close_core, make_core

    core = make_core(data_dir, clock, monkeypatch)
    yield core
    close_core(core)


@pytest.fixture
def guard_client(guard_core):
    """A test client of the kiosk screen and the guard console on ``guard_core``."""
    from fastapi.testclient import TestClient
    from guard_support import BASE, make_app

    with TestClient(make_app(guard_core), base_url=BASE) as client:
        yield client


@pytest.fixture
def as_root() -> None:
    """The test needs root (a real install, a mount, a file given to another user): skipped
    without it on a developer machine, a failure in CI (``support.need``)."""
    from support import need

    need(os.geteuid() == 0, "root")


@pytest.fixture(scope="module")
def browser():
    """Debian's headless Chromium through Playwright (never ``playwright install``), one per
    browser test module. The flags keep it offline and quiet: no GPU, no background
    fetches, no component updates, no first-run pages."""
    from playwright import sync_api
    from support import need

    chromium = "/usr/bin/chromium"
    need(os.path.exists(chromium), "Debian chromium")
    args = [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--no-first-run",
    ]
    with sync_api.sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=chromium, args=args)
        yield b
        b.close()


# -- the unit suite's CPU budget -------------------------------------------------------------
#: The CPU one unit test may take (its process's threads and the processes it waited for),
#: setup and teardown included. The owner's bar is the unit suite in under a minute on a quiet
#: 2-core machine: a unit test takes at most a tenth of a second of CPU, and waits at most
#: a fifth of a second of real time (a deadline it must see pass); a heavier one (a whole
#: scenario replayed, a server or PostgreSQL run through, a property test's search) is marked
#: ``slow``: ``./scripts/test`` and CI run it with the rest. The checks of the code's own
#: rules (no function over 80 lines, the documented calls, every sheet writer checked, every
#: command closing its core) stay in the unit suite whatever they cost: every change must
#: pass them before it reaches CI. A test over this is named at the end of the run (it does
#: not fail: CPU is measured, not asserted; the waiting is not reported, a loaded machine's
#: own) so it is made cheaper, or marked ``slow`` on purpose.
UNIT_CPU_BUDGET_S = 0.1
_CPU_START = pytest.StashKey[float]()
_over_budget: list[tuple[float, str]] = []
_suite_cpu = [0.0, 0]


def _cpu_now() -> float:
    import resource

    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return time.process_time() + children.ru_utime + children.ru_stime


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_setup(item: pytest.Item):
    item.stash[_CPU_START] = _cpu_now()
    yield


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]):
    outcome = yield
    if call.when == "teardown" and _CPU_START in item.stash:
        report = outcome.get_result()
        report.user_properties.append(("cpu_s", round(_cpu_now() - item.stash[_CPU_START], 3)))
        if _at_full_depth(item):
            report.user_properties.append(("full_depth", True))


def _at_full_depth(item: pytest.Item) -> bool:
    """A Hypothesis test run at CI's full depth (``DEPTH_VARIABLE``): up to four times the
    examples the unit suite runs it with, so its CPU says nothing of the unit suite's."""
    obj = getattr(item, "obj", None)
    test = getattr(obj, "__func__", obj)
    return os.environ.get(DEPTH_VARIABLE) == "full" and bool(
        getattr(test, "is_hypothesis_test", False)
    )


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    """Runs where the results are gathered (the controller, under xdist)."""
    if report.when != "teardown":
        return
    props = dict(report.user_properties)
    cpu = props.get("cpu_s")
    if not isinstance(cpu, float):
        return
    _suite_cpu[0] += cpu
    _suite_cpu[1] += 1
    # The budget is the unit suite's: not for slow or browser tests, nor for a property test
    # at CI's full depth (the unit suite runs it with a quarter of the examples).
    if props.get("full_depth"):
        return
    if cpu > UNIT_CPU_BUDGET_S and not {"slow", "browser"} & set(report.keywords):
        _over_budget.append((cpu, report.nodeid))


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if not _suite_cpu[1]:
        return
    line = terminalreporter.write_line
    if _over_budget:
        terminalreporter.section("unit tests over the CPU budget")
        line(
            f"each took more than {UNIT_CPU_BUDGET_S:.1f} s of CPU (tests/conftest.py,"
            " UNIT_CPU_BUDGET_S): make it cheaper, or mark it slow (CI runs those)"
        )
        for cpu, nodeid in sorted(_over_budget, reverse=True):
            line(f"  {cpu:6.2f} s  {nodeid}")
    line(f"tests' CPU: {_suite_cpu[0]:.1f} s over {_suite_cpu[1]} tests")


@pytest.fixture
def kiosk_owned(tmp_path, monkeypatch):
    """A data dir the service's user owns, and this process root (``sudo kiosk ...``)."""
    data = tmp_path / "data"
    data.mkdir()
    if os.geteuid() == 0:
        os.chown(data, 4321, 4321)
    monkeypatch.setattr(os, "geteuid", lambda: 0)
    return data
