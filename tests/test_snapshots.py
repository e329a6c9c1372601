"""The latest read wins (``kiosk.snapshots.LatestRead``): a snapshot is put in force only if
its read began after the one in force; when reads finish is not what orders them."""

from __future__ import annotations

import threading

from kiosk.snapshots import LatestRead


def test_a_later_read_replaces_the_snapshot_in_force():
    snapshots = LatestRead("empty")
    assert snapshots.current == "empty"
    assert snapshots.load(lambda: "first") == "first"
    assert snapshots.load(lambda: "second") == "second"
    assert snapshots.current == "second"


def test_a_read_that_began_earlier_but_finished_later_does_not_replace_a_newer_one():
    """The interleaving made certain: the newer load runs whole inside the older one's read."""
    snapshots = LatestRead("empty")

    def older_read() -> str:
        assert snapshots.load(lambda: "newer") == "newer"
        return "older"

    assert snapshots.load(older_read) == "newer"  # the older load gets the newer one back
    assert snapshots.current == "newer"


class _HeldLoad:
    """A load on its own thread that has taken its ticket and is reading; ``finish`` lets
    the read end and gives what the load returned."""

    def __init__(self, snapshots: LatestRead[str], value: str) -> None:
        self._snapshots, self._value = snapshots, value
        self._reading, self._release = threading.Event(), threading.Event()
        self._returned: list[str] = []
        self._thread = threading.Thread(target=self._load)
        self._thread.start()
        assert self._reading.wait(10)

    def _read(self) -> str:
        self._reading.set()
        assert self._release.wait(10)
        return self._value

    def _load(self) -> None:
        self._returned.append(self._snapshots.load(self._read))

    def finish(self) -> str:
        self._release.set()
        self._thread.join(10)
        assert not self._thread.is_alive()
        return self._returned[0]


def test_on_threads_an_older_read_finishing_last_keeps_the_newer_snapshot():
    snapshots = LatestRead("empty")
    older = _HeldLoad(snapshots, "older")
    newer = _HeldLoad(snapshots, "newer")
    assert newer.finish() == "newer"
    assert older.finish() == "newer"
    assert snapshots.current == "newer"


def test_on_threads_reads_finishing_in_the_order_they_began_both_go_in_force():
    snapshots = LatestRead("empty")
    older = _HeldLoad(snapshots, "older")
    newer = _HeldLoad(snapshots, "newer")
    assert older.finish() == "older"
    assert snapshots.current == "older"
    assert newer.finish() == "newer"
    assert snapshots.current == "newer"


def test_adopt_and_on_load_see_only_snapshots_put_in_force_and_run_under_the_lock():
    adopted: list[str] = []
    loaded: list[tuple[str, str]] = []
    snapshots: LatestRead[str]

    def adopt(snapshot: str) -> str:
        assert snapshots._lock.locked()  # noqa: SLF001
        adopted.append(snapshot)
        return snapshot.upper()

    def on_load(snapshot: str) -> None:
        assert snapshots._lock.locked()  # noqa: SLF001
        loaded.append((snapshot, snapshots.current))

    snapshots = LatestRead("empty", adopt=adopt, on_load=on_load)

    def older_read() -> str:
        snapshots.load(lambda: "newer")
        return "older"

    assert snapshots.load(older_read) == "NEWER"
    assert adopted == ["newer"]  # the stale read is neither adopted nor announced
    assert loaded == [("NEWER", "NEWER")]  # announced once in force


def test_an_amendment_changes_the_snapshot_in_force_but_not_the_order_of_reads():
    snapshots = LatestRead(1)

    def older_read() -> int:
        snapshots.load(lambda: 10)
        assert snapshots.amend(lambda n: n + 1) == 11
        return 5

    assert snapshots.load(older_read) == 11  # the amended newer one stays in force
    assert snapshots.load(lambda: 20) == 20  # a read begun after it still replaces it
