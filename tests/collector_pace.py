"""The oldest generation of the garbage collector collected between tests (a pytest plugin
``tests/conftest.py`` registers), never in the middle of one.

Left to itself, the interpreter collects its oldest generation whenever enough survivors
piled up, in whichever test happens to allocate then, and each such collection walks every
object the test process keeps alive that the collector was not told to leave alone: the
caches the tests filled, a module's fixtures, ~100,000 objects, 0.1-0.3 s each time, a
hundred times a run. Here it runs between two tests instead, once as many middle-generation
collections moved survivors there as the interpreter's own threshold.

It runs as the next test's setup starts (``pytest_runtest_setup``, before any other part of
it): pytest has let go of the finished test's fixtures by then (``item.funcargs``), so a
test's cyclic garbage (its app, Core, Engine, event log) is collected at the latest as the
next test starts, its finalizers run, and a ``__del__`` that raises is reported there (an
error, by pyproject's ``filterwarnings``). Run in the finished test's teardown it froze them
alive instead.

What lives on is moved out of the collector's way (``gc.freeze``) only where no later test
can free it: once the test modules are collected (the program's and the libraries' modules
and classes, the collected items: ~300,000 objects), and as a new module's first test starts
(the module before it, its module-scoped fixtures, torn down by then). A session-scoped
fixture frozen so is freed at the end: everything is unfrozen as the session finishes,
before pytest's last collection (which reports an unraisable ``__del__``), and what outlives
that is frozen again for the collections of the process's exit. The young generations are
collected as ever, in the tests too; a test that turned the collector off (a soak test
counting its own objects) is left so.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from pathlib import Path

import pytest

#: A full collection between two tests once this many middle-generation collections
#: (``gc.get_count()[2]``) passed since the last one: the interpreter's own ``threshold2``.
FULL_COLLECTION_EVERY = 10

#: The oldest generation's threshold while the tests run: a C int never reached.
NEVER = 2**31 - 1


class _Pace:
    #: The module whose tests run now (its path): a change is a freeze.
    module: Path | None = None
    #: The test modules are collected and the tests' pace is set (this process runs tests).
    paced: bool = False


def full_collections_between_tests() -> None:
    """What the process holds now frozen, and no automatic collection of the oldest
    generation from now on in this process."""
    gc.collect()
    gc.freeze()
    young, middle, _ = gc.get_threshold()
    gc.set_threshold(young, middle, NEVER)
    _Pace.paced = True


def between_tests(module: Path | None) -> str | None:
    """Before a test of ``module`` sets up: ``"freeze"`` (a new module: collected, what lives
    on frozen), ``"collect"`` (the full collection due) or None (nothing, or the collector
    turned off)."""
    if not gc.isenabled():
        return None
    if module != _Pace.module:
        _Pace.module = module
        gc.collect()
        gc.freeze()
        return "freeze"
    if gc.get_count()[2] < FULL_COLLECTION_EVERY:
        return None
    gc.collect()
    return "collect"


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_collection(session: pytest.Session) -> Iterator[object]:
    """No automatic collection of the oldest generation while the test modules are imported
    and their items made either: each walked everything collected so far (the program, the
    libraries, the items: up to ~300,000 objects), 8 times in a worker's collection, ~1 s of
    its 4 s. The one full collection at the end (``pytest_collection_finish``) frees what the
    collection left. A process that collected nothing (xdist's controller) is left as it was."""
    young, middle, oldest = gc.get_threshold()
    gc.set_threshold(young, middle, NEVER)
    try:
        return (yield)
    finally:
        if not _Pace.paced:
            gc.set_threshold(young, middle, oldest)


@pytest.hookimpl(trylast=True)
def pytest_collection_finish(session: pytest.Session) -> None:
    full_collections_between_tests()


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> Iterator[None]:
    """Before the rest of the setup (the CPU a test is measured by starts after it)."""
    between_tests(getattr(item, "path", None))
    return (yield)


@pytest.hookimpl(tryfirst=True)
def pytest_sessionfinish(session: pytest.Session) -> None:
    """Everything unfrozen (a session fixture's garbage collectable again) before pytest's
    last collection, at unconfigure."""
    gc.unfreeze()
    _Pace.module = None


@pytest.hookimpl(trylast=True)
def pytest_unconfigure(config: pytest.Config) -> None:
    """After pytest's last collection (its ``unraisableexception`` plugin's, which reports a
    raising ``__del__``), what is still alive lives until the process ends: frozen, so the
    collections after it (pytest's cleanup's, the interpreter's own as it exits, two or more)
    walk only what is made from now on, not the whole heap again: ~1 s of a worker's exit.
    Garbage made from now on is collected as ever; a cycle that is let go only as the modules
    are torn down at exit is left to the process's end, with the rest of its memory."""
    gc.freeze()
