"""The pull reads at most one page ahead of the one it writes (``office.pull._Lead``): a page
is asked for only once the page before the one read ahead was written and the pull goes on,
so a turn that ends (``Puller.turn_over``) has asked for no page it will not write. And a
pull that fails while its fetcher waits for leave to ask leaves no fetching thread behind."""

from __future__ import annotations

import threading

import pytest
from pgfixture import Network, make_kiosk

from office import pull
from office.pull import Puller, SqliteTarget

PAGE = 5


class _Parking(threading.Condition):
    """The lead's condition, ``parked`` set when the fetcher waits on it (for leave to ask)."""

    def __init__(self, parked: threading.Event) -> None:
        super().__init__()
        self.parked = parked

    def wait(self, timeout: float | None = None) -> bool:
        self.parked.set()
        return super().wait(timeout)


class _Gate(Network):
    """The gate's network, its page requests counted; ``too_far`` set at the third."""

    def __init__(self, *kiosks, too_far: threading.Event) -> None:
        super().__init__(*kiosks)
        self.pages, self.too_far = 0, too_far

    def __call__(self, request):
        if request.url.params.get("limit") == str(PAGE):
            self.pages += 1
            if self.pages == 3:
                self.too_far.set()
        return super().__call__(request)


class _Held(SqliteTarget):
    """The copy, its first page's write held until ``go``: the fetcher then waits for leave
    (correct) or asks for a third page (too far); ``asked`` is the gate's count then."""

    def __init__(self, path, gate: _Gate, go: threading.Event, fail: bool = False) -> None:
        super().__init__(path)
        self.gate, self.go, self.fail = gate, go, fail
        self.asked: int | None = None
        self.fetchers: list[threading.Thread] = []

    def write_page(self, url: str, kiosk_id: str, rows: list[dict]) -> int:
        if self.asked is None:
            assert self.go.wait(30)
            self.asked = self.gate.pages
            self.fetchers = [t for t in threading.enumerate() if t.name == "kiosk-pull-fetch"]
            if self.fail:
                raise RuntimeError("the copy's disk is gone")
        return super().write_page(url, kiosk_id, rows)


@pytest.fixture
def held(tmp_path, clock, monkeypatch):
    """A gate of 15 events (three pages) and a copy holding its first write, until the
    fetcher waits for leave to ask or asks a third page (one event: ``go``)."""
    go = threading.Event()

    class _Lead(pull._Lead):
        def __init__(self) -> None:
            super().__init__()
            self._changed = _Parking(go)

    monkeypatch.setattr(pull, "_Lead", _Lead)
    kiosk = make_kiosk(tmp_path / "gate.db", "gate", clock, 3 * PAGE)
    gate = _Gate(kiosk, too_far=go)
    yield gate, lambda fail=False: _Held(tmp_path / "copy.db", gate, go, fail)
    kiosk.store.close()


def _puller(gate: _Gate, copy: _Held) -> Puller:
    return Puller(copy, client=gate.client(), page_size=PAGE, sleep=lambda s: None)


def test_the_pull_asks_for_one_page_ahead_of_the_one_it_writes(held):
    """The first page's write held: the second is asked for (read ahead), the third not until
    the first is written. Two or more ahead, a turn ending would leave pages asked for and
    never written (asked again by the next turn)."""
    gate, copy_of = held
    copy = copy_of()
    try:
        result = _puller(gate, copy).pull("http://gate", gate.kiosks["gate"].token)
    finally:
        copy.close()
    assert copy.asked == 2 and (result.last_seq, result.pages) == (3 * PAGE, 3)


def test_a_pull_failing_while_its_fetcher_waits_leaves_no_fetching_thread(held):
    """The first page's write fails while the fetcher waits for leave to ask for the third:
    told the pull ended, it ends too (before, it was left waiting for ever)."""
    gate, copy_of = held
    copy = copy_of(fail=True)
    try:
        with pytest.raises(RuntimeError, match="disk is gone"):
            _puller(gate, copy).pull("http://gate", gate.kiosks["gate"].token)
    finally:
        copy.close()
    assert copy.asked == 2 and len(copy.fetchers) == 1
    assert not copy.fetchers[0].is_alive()
