"""The oldest generation of the garbage collector collected between tests (installed by
``tests/conftest.py``), never in the middle of one.

Left to itself, the interpreter collects its oldest generation whenever enough survivors
piled up, in whichever test happens to allocate then, and each such collection walks every
object the test process keeps alive that the collector was not told to leave alone: the
caches the tests filled, a module's fixtures, ~100,000 objects, 0.1-0.3 s each time, a
hundred times a run. Here it runs between two tests instead (after a test's teardown, in its
time), once as many middle-generation collections moved survivors there as the
interpreter's own threshold; what survives it is alive between two tests, so it is moved out
of the collector's way (``gc.freeze``), as conftest does with the modules at the start: the
next full collection walks only what the tests left since. The young generations are
collected as ever, in the tests too; a test's cyclic garbage is collected at the latest after
it; a test that turned the collector off (a soak test counting its own objects) is left so.
"""

from __future__ import annotations

import gc

#: A full collection between two tests once this many middle-generation collections
#: (``gc.get_count()[2]``) passed since the last one: the interpreter's own ``threshold2``.
FULL_COLLECTION_EVERY = 10

#: The oldest generation's threshold while the tests run: a C int never reached.
NEVER = 2**31 - 1


def full_collections_between_tests() -> None:
    """No automatic collection of the oldest generation from now on in this process."""
    young, middle, _ = gc.get_threshold()
    gc.set_threshold(young, middle, NEVER)


def survivors_collected_between_tests() -> bool:
    """The full collection, and its survivors frozen, if it is due; whether it ran."""
    if not gc.isenabled() or gc.get_count()[2] < FULL_COLLECTION_EVERY:
        return False
    gc.collect()
    gc.freeze()
    return True
