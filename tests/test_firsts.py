"""kiosk.firsts: of several things with one key, the first, in the order they came."""

from __future__ import annotations

from collections.abc import Iterator
from itertools import islice

from kiosk.firsts import firsts


def test_each_key_once_the_first_in_order() -> None:
    items = [("a", 1), ("b", 2), ("a", 3), ("c", 4), ("b", 5)]
    assert list(firsts(items, lambda i: i[0])) == [("a", 1), ("b", 2), ("c", 4)]


def test_keys_already_seen_are_left_out_and_the_set_gains_the_new_ones() -> None:
    seen = {"b"}
    assert list(firsts(["a", "b", "c", "a"], str, seen)) == ["a", "c"]
    assert seen == {"a", "b", "c"}


def test_reads_no_further_than_asked() -> None:
    read: list[int] = []

    def numbers() -> Iterator[int]:
        for n in range(10):
            read.append(n)
            yield n

    assert list(islice(firsts(numbers(), lambda n: n // 2), 2)) == [0, 2]
    assert read == [0, 1, 2]
