"""The unit suite's full collections between tests (``tests/collector_pace.py``): the cyclic
garbage a test leaves is collected, what is still alive is moved out of the collector's way,
and none of it happens before it is due or while a test keeps the collector off."""

from __future__ import annotations

import gc
import weakref
from collections.abc import Iterator

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


def test_a_due_collection_frees_the_garbage_and_freezes_what_is_alive(collector_on):
    garbage, alive = Node(), Node()
    dead = weakref.ref(garbage)
    _in_the_oldest_generation(garbage)
    del garbage
    frozen = gc.get_freeze_count()
    assert collector_pace.survivors_collected_between_tests()
    assert dead() is None
    assert gc.get_freeze_count() > frozen
    assert not any(o is alive for o in gc.get_objects())  # frozen: never walked again
    assert gc.get_count()[2] == 0


def test_nothing_is_collected_before_it_is_due(collector_on):
    gc.collect()
    garbage = Node()
    dead = weakref.ref(garbage)
    del garbage
    assert not collector_pace.survivors_collected_between_tests()
    assert dead() is not None  # left to the young generations' collections
    gc.collect()


def test_a_test_that_turned_the_collector_off_is_left_as_it_is(collector_on):
    garbage = Node()
    dead = weakref.ref(garbage)
    _in_the_oldest_generation(garbage)
    del garbage
    gc.disable()
    try:
        assert not collector_pace.survivors_collected_between_tests()
        assert dead() is not None
    finally:
        gc.enable()
    gc.collect()
