"""Each thing once: of several with the same key, the first, in the order they came.

One rule for what reads the same thing from more than one place: a code a camera frame
decodes twice (the first decode and the second pass, ``drivers.pipeline``), a card two gates
both voided (the lists page, ``ui.guard.lists``), a person found by several registrations
(a visitor search, ``kiosk.queries.past_visitors``).
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable, Iterator
from typing import TypeVar

T = TypeVar("T")
K = TypeVar("K", bound=Hashable)


def firsts(items: Iterable[T], key: Callable[[T], K], seen: set[K] | None = None) -> Iterator[T]:
    """``items`` in their order, each but the first of its ``key`` left out. ``seen``: keys
    already had (left out too); it gains each key given, for the caller to read after."""
    had: set[K] = set() if seen is None else seen
    for item in items:
        k = key(item)
        if k not in had:
            had.add(k)
            yield item
