"""The unit suite's full collections between tests (``tests/collector_pace.py``): the cyclic
garbage a test leaves is collected as the next test starts, fixtures included; only what
outlives a module is moved out of the collector's way; nothing happens before it is due or
while a test keeps the collector off."""

from __future__ import annotations

import gc
import os
import subprocess
import sys
import weakref
from collections.abc import Iterator
from pathlib import Path

import collector_pace
import pytest


class Node:
    def __init__(self) -> None:
        self.me = self  # a cycle: only the cyclic collector frees it


def _in_the_oldest_generation(obj: object) -> None:
    """``obj`` moved to the oldest generation, and the full collection due."""
    gc.collect(0)
    gc.collect(1)  # survivors of the middle generation are moved to the oldest
    assert gc.is_tracked(obj)
    while gc.get_count()[2] < collector_pace.FULL_COLLECTION_EVERY:
        gc.collect(1)


@pytest.fixture
def collector_on() -> Iterator[None]:
    was = gc.isenabled()
    gc.enable()
    yield
    if not was:
        gc.disable()


def test_the_tests_never_collect_the_oldest_generation_on_their_own():
    assert gc.get_threshold()[2] == collector_pace.NEVER


@pytest.fixture
def threshold() -> Iterator[tuple[int, int, int]]:
    """The interpreter's own thresholds while the test runs, the suite's put back after."""
    was = gc.get_threshold()
    gc.set_threshold(700, 10, 10)
    yield gc.get_threshold()
    gc.set_threshold(*was)


def test_the_collection_never_collects_the_oldest_generation_on_its_own(threshold, monkeypatch):
    monkeypatch.setattr(collector_pace._Pace, "paced", False)
    collecting = collector_pace.pytest_collection(None)
    next(collecting)
    assert gc.get_threshold()[2] == collector_pace.NEVER  # while the modules are imported
    monkeypatch.setattr(collector_pace._Pace, "paced", True)  # collection_finish ran
    with pytest.raises(StopIteration):
        collecting.send(None)
    assert gc.get_threshold()[2] == collector_pace.NEVER


def test_a_process_that_collected_nothing_keeps_the_interpreters_threshold(threshold, monkeypatch):
    monkeypatch.setattr(collector_pace._Pace, "paced", False)
    collecting = collector_pace.pytest_collection(None)  # xdist's controller: collects none
    next(collecting)
    with pytest.raises(StopIteration):
        collecting.send(None)
    assert gc.get_threshold() == threshold


def test_what_outlives_pytests_last_collection_is_left_to_the_process_exit():
    alive = Node()
    assert collector_pace.pytest_unconfigure.pytest_impl["trylast"]  # after pytest's own
    collector_pace.pytest_unconfigure(None)
    assert not any(o is alive for o in gc.get_objects())  # the exit's collections skip it


def test_a_due_collection_frees_the_garbage_and_freezes_nothing(collector_on):
    here = Path(__file__)
    collector_pace.between_tests(here)  # this module's: no freeze below
    garbage, alive = Node(), Node()
    dead = weakref.ref(garbage)
    _in_the_oldest_generation(garbage)
    del garbage
    frozen = gc.get_freeze_count()
    assert collector_pace.between_tests(here) == "collect"
    assert dead() is None
    # Nothing frozen (a later test may still free what lives); frozen objects freed by their
    # count meanwhile (another thread of the process letting go of one) lower it.
    assert gc.get_freeze_count() <= frozen
    assert any(o is alive for o in gc.get_objects())
    assert gc.get_count()[2] == 0


def test_a_new_module_freezes_what_outlived_the_one_before(collector_on):
    garbage, alive = Node(), Node()
    dead = weakref.ref(garbage)
    del garbage
    assert collector_pace.between_tests(Path("tests/test_next_module.py")) == "freeze"
    assert dead() is None
    assert not any(o is alive for o in gc.get_objects())  # frozen: never walked again
    collector_pace.between_tests(Path(__file__))


def test_nothing_is_collected_before_it_is_due(collector_on):
    collector_pace.between_tests(Path(__file__))
    gc.collect()
    garbage = Node()
    dead = weakref.ref(garbage)
    del garbage
    assert collector_pace.between_tests(Path(__file__)) is None
    assert dead() is not None  # left to the young generations' collections
    gc.collect()


def test_a_test_that_turned_the_collector_off_is_left_as_it_is(collector_on):
    garbage = Node()
    dead = weakref.ref(garbage)
    _in_the_oldest_generation(garbage)
    del garbage
    gc.disable()
    try:
        assert collector_pace.between_tests(Path("tests/elsewhere.py")) is None
        assert dead() is not None
    finally:
        gc.enable()
    gc.collect()


INNER = '''
import gc, weakref
import pytest
import collector_pace

DUE = collector_pace.FULL_COLLECTION_EVERY
REFS = []


class App:
    """A test's app: a cycle, as FastAPI apps, cores and engines are."""
    def __init__(self):
        self.me = self


class Leaky(App):
    def __del__(self):
        raise RuntimeError("boom in __del__")


def _due(obj):
    gc.collect(0); gc.collect(1)
    while gc.get_count()[2] < DUE:
        gc.collect(1)


@pytest.fixture
def app():
    a = App(); REFS.append(weakref.ref(a)); yield a


@pytest.fixture
def leaky():
    yield Leaky()


@pytest.fixture(scope="session")
def held():
    yield Leaky()


def test_uses_an_app(app, held):
    _due(app)


def test_the_app_before_is_gone():
    assert REFS[0]() is None


def test_uses_a_leaky_one(leaky):
    _due(leaky)


def test_after_the_leaky_one():
    pass
'''


@pytest.mark.slow  # a pytest run of its own (~1 s)
def test_a_finished_tests_fixtures_are_collected_and_a_raising_del_reported(tmp_path):
    """The due collection ran in the finished test's teardown, while pytest still held its
    fixtures, and froze them: never collected, their ``__del__`` never run, an unraisable
    exception in one (an error by pyproject's filterwarnings) never reported."""
    (tmp_path / "test_inner.py").write_text(INNER)
    env = os.environ | {"PYTHONPATH": str(Path(__file__).parent)}
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "collector_pace",
         "-W", "error::pytest.PytestUnraisableExceptionWarning", "test_inner.py"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    out = run.stdout + run.stderr
    assert "FAILED test_inner.py::test_the_app_before_is_gone" not in out, out  # collected
    assert "ERROR test_inner.py::test_after_the_leaky_one" in out, out  # reported there
    assert out.count("boom in __del__") >= 2, out  # and the session fixture's, at the end
