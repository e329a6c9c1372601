"""The compound's other gates, fetched: a thread that asks each peer for its new passages.

``PeerSync`` asks every ``[[compound.peers]]`` kiosk each ``compound.poll_s`` for its passing
passages after the last one held (``GET /api/v1/passages``, a ``passages:peer`` token), judges
the answer (``kiosk.peers.check_page``), keeps the new rows (``PeerLedger.merge``) and hands
them to the engine's loop to record in its history (``EngineRunner.in_loop``). The gate's
decision never waits for any of it: a peer that is down, slow or hostile costs this thread
its deadline (``office.pull.fetch_bounded``: the answer bounded in bytes and values before it
is parsed, and in time), and the gate decides on what it holds. ``status()`` says, for the
health report and the guard's devices page, when each peer was last heard and whether its
outings are unknown here (``stale``): then the quota and the anti-passback hold at this gate
only (docs/operations.md, "Several gates"). A peer whose key is pinned (``trust_key``) is
asked with a fresh nonce each time and its answer kept only when signed by that key for that
request (``kiosk.peers.verify_page``); one that is not is ``forged``: refused, counted and an
alarm at once; one with no signature at all is ``unsigned`` (refused, counted and an alarm as
well, and told apart: a peer without an issuer key or on an older release sends none).

The poll is the backstop; news comes sooner. After each committed passing decision here,
each passing row written late (a guard's pass held through a storage fault) and each row
saying the gate did not open for a pass (the engine's ``recorded`` message for both;
``news``, from the bus on the loop: it only sets a flag, never blocks the loop) a push
thread of each peer tells it at once (``POST /api/v1/passages/poke``, its own token, nothing in
it but this gate's kiosk id), and a peer told wakes its ask of this gate (``poke``), no more
often than ``POKE_GAP_S``. News that comes while a push is pending is told with it
(``coalesced``: the poke carries no passage, the ask fetches them all); a peer that does not
take it costs a count (``failed``) and waits for its poll. A poke is not trusted for anything
but to ask now: what is kept still comes by the ask, judged (and signed) as always. A guard's
void or restore here is news as well (``revocation_news``, told by the lists' store); the page
asked brings the peer's guards' revocations, held and put in force here (``_revocations``).
"""

from __future__ import annotations

import contextlib
import json
import logging
import secrets
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from datetime import time as dt_time
from typing import Any

import httpx

from kiosk.bus import EventBus
from kiosk.clock import ClockReading
from kiosk.config.compound import CompoundSection, PeerSource
from kiosk.core import Core
from kiosk.days import FIRST_DAY, LAST_DAY
from kiosk.deadline import LogUses, Stopped
from kiosk.history import COUNTED_DECISIONS
from kiosk.logs import FlapLimit, RepeatedFailure
from kiosk.peers import (
    LEDGER_HORIZON,
    MAX_PAGE_NOT_OPENED,
    MAX_PAGE_QUARANTINE,
    MAX_PAGE_REVOCATIONS,
    MAX_SKEW,
    MAX_SKEW_KEPT,
    PEER_SCOPE,
    SIGNATURE_HEADER,
    CheckedPage,
    PeerForged,
    PeerLedger,
    PeerPageError,
    PeerRestarted,
    PeerRolledBack,
    PeerRow,
    PeerUnsigned,
    check_page,
    closed_window,
    closing_time,
    forget_peer_rows,
    record_peer_rows,
    sign_closing,
    verify_closing,
    verify_page,
)
from kiosk.store import format_ts
from office.deadline import Deadline, DeadlineExceeded
from office.pull import (
    PLAIN_JSON,
    PullError,
    TrustedClient,
    client_timeout,
    fetch_bounded,
    json_values,
    status_words,
    unknown_host,
    untrusted_certificate,
)

log = logging.getLogger(__name__)

#: How this gate comes to trust a peer's certificate (its fetch refused it): before, it was
#: told to "give the office the kiosk's certificate", another machine's remedy.
TRUST_THE_PEER = (
    "give this gate's kiosk.service the peer's certificate (its tls_cert) in the file"
    " SSL_CERT_FILE names, with the office's if it has one: one file, read again when it"
    " changes"
)

__all__ = ["PAGE_ROWS", "UNKNOWN_STATES", "PeerState", "PeerSync"]

#: A peer's states in which its outings are unknown here (a device alarm while they last).
UNKNOWN_STATES = ("stale", "forged", "unsigned")

#: Passages asked for in one request, and the most pages one poll reads (a peer's backlog
#: after an outage comes in over several polls, each bounded).
PAGE_ROWS = 500
PAGES_PER_POLL = 10
#: The most of one answer read: ``PAGE_ROWS`` of the largest legal rows, the serving gate's
#: whole set of guards' revocations (``MAX_PAGE_REVOCATIONS``, a guard's name of 64 Chinese
#: characters each) and quarantine entries (``MAX_PAGE_QUARANTINE``), the seqs of the passes it
#: did not open for (``MAX_PAGE_NOT_OPENED``, 20 digits and a comma each) and the envelope.
MAX_ANSWER_BYTES = (
    PAGE_ROWS * 600
    + MAX_PAGE_REVOCATIONS * 320
    + MAX_PAGE_QUARANTINE * 720
    + MAX_PAGE_NOT_OPENED * 21
    + 4096
)
#: The most JSON values one answer is parsed with (``json_values``: a row counts 20, its
#: keys, values, a flag and its time's colons; a revocation 10, a quarantine entry 13, a
#: seq of ``not_opened`` 1).
#: Without the revocations, a backlog's full page beside a few hundred of them was refused at
#: every poll, the peer stale until its backlog shrank, which it never did.
MAX_ANSWER_VALUES = (
    PAGE_ROWS * 24
    + MAX_PAGE_REVOCATIONS * 12
    + MAX_PAGE_QUARANTINE * 16
    + MAX_PAGE_NOT_OPENED * 2
    + 64
)
#: The least time between two asks of one peer woken by its news: a flood of pokes costs an
#: ask a second at most.
POKE_GAP_S = 1.0
#: The most one poke of a peer may take, whatever it answers (the poll is the backstop).
POKE_DEADLINE_S = 3.0
#: ``MAX_SKEW`` on the monotonic clock.
_MAX_SKEW_NS = int(MAX_SKEW.total_seconds()) * 1_000_000_000
#: A moment: the closed hours just ended are those of a moment before their end.
_TICK = timedelta(microseconds=1)
#: The most ``stop`` waits for a use of the event log under way (a page being kept) to end.
STORE_USE_S = 5.0
#: The most a stopping gate waits for its peers to take its closing notice, all at once.
FAREWELL_S = 2.0
#: The bus messages the push thread may be behind by before it is dropped as slow (then it
#: subscribes again: news lost meanwhile waits for the poll).
NEWS_QUEUE = 256
#: What to do about a redirect a peer answered.
PEER_MOVED = "if the peer gate answers there, set its compound.peers url to that base URL"


@dataclass
class PeerState:
    """What this gate knows of one peer, for the health report."""

    url: str
    kiosk_id: str
    last_success: datetime | None = None
    #: This boot's monotonic clock at ``last_success``: how long ago it was heard, and when,
    #: right across NTP's step of a clock not set (``last_success`` then said 1970).
    heard_mono_ns: int | None = None
    last_attempt: datetime | None = None
    last_error: str | None = None
    ahead_dropped: int = 0
    #: Its rows refused since the start for a household or pass id holding a character nobody
    #: sees (``kiosk.peers.CheckedPage.refused``): outings there this gate does not count.
    rows_refused: int = 0
    #: Its rows stamped on its clock not set, dated here by its skew since the start
    #: (``kiosk.peers.CheckedPage.redated``).
    rows_redated: int = 0
    #: Its passages its last answer left with it, stamped ahead of this gate's clock not set
    #: (``kiosk.peers.CheckedPage.held_back``): not counted here until NTP sets it. While
    #: some are, the peer is ``held`` (not ``ok``), since ``held_mono_ns`` (this boot's).
    held_back: int = 0
    held_mono_ns: int | None = None
    #: Its quarantine entries its last answer carried with a day outside the days a guard may
    #: type (``kiosk.peers.CheckedPage.quarantine_refused``): clamped to them, in force here.
    quarantine_refused: int = 0
    fetched: int = 0
    #: Its clock less this gate's at the last answer; ``None``: its answers do not say.
    skew: timedelta | None = None
    #: Its clock as its last answer said it (``CheckedPage.said``) and this boot's monotonic
    #: clock then: its clock now, whatever NTP did to this gate's since (a closing notice's
    #: time is judged by it).
    said_mono: tuple[datetime, int] | None = None
    #: Whether that skew is beyond ``MAX_SKEW`` as told (never while this gate's own clock is
    #: not set: 1970 here is not the peer's clock wrong).
    skewed: bool = False
    #: Answers refused as not signed by its pinned key (forged or replayed), since the start.
    forged: int = 0
    #: When the last of them was refused, and the first of that spell (a spell ends
    #: ``stale_after_s`` after its last: till then the peer is ``forged``, real answers or not).
    forged_at: datetime | None = None
    forged_since: datetime | None = None
    #: This boot's monotonic clock at ``forged_at`` and ``forged_since``: a spell is timed on
    #: it (NTP stepping the clock an hour, or from 1970, neither ends nor stretches one).
    forged_mono_ns: int | None = None
    forged_since_mono_ns: int | None = None
    #: Answers refused as carrying no signature at all while its key is pinned (an older
    #: release, no issuer key), and that spell's last and first, as for ``forged``.
    unsigned: int = 0
    unsigned_at: datetime | None = None
    unsigned_since: datetime | None = None
    unsigned_mono_ns: int | None = None
    unsigned_since_mono_ns: int | None = None
    #: Pokes of it with this gate's news it took (202), and those it did not (no answer or
    #: another status: its poll brings the news instead).
    told: int = 0
    tell_failed: int = 0
    #: Its answer to the last poke (``None``: none yet, or no answer).
    tell_status: int | None = None
    #: When it said it was closing (stopping cleanly), by this gate's clock; ``None``: it is
    #: not closed (or never said so). Until it answers again it is ``closed``, no alarm.
    closed_at: datetime | None = None
    #: This boot's monotonic clock at ``closed_at`` (``None``: said before this gate started):
    #: an answer crosses the notice by it, and ``closed_at`` is shown by the clock read now.
    closed_mono_ns: int | None = None
    #: The time its last closing notice taken said, by its clock: a notice must be later
    #: (one played back is refused), and an answer it dated later ends the closing.
    closing_said: datetime | None = None


class PeerSync:
    """Fetches the compound's other gates' passages for ``core`` (one thread for all peers).

    ``poll()`` is one round (what tests call, with an injected ``client``); ``start()`` runs
    it every ``poll_s`` on a daemon thread until ``stop()``."""

    def __init__(
        self,
        core: Core,
        section: CompoundSection,
        *,
        client: httpx.Client | None = None,
        monotonic: Callable[[], float] = time.monotonic,
        poke_gap_s: float = POKE_GAP_S,
    ) -> None:
        self.core = core
        self.section = section
        self.peers: Sequence[PeerSource] = section.peers
        self.ledger = PeerLedger(core.store, LEDGER_HORIZON, section.max_rows, core.store.boot_id)
        #: Its client, made again when the certificates trusted change (``TrustedClient``).
        self._http = TrustedClient(client_timeout(section.timeout_s), client)
        self._monotonic = monotonic
        self._started_mono_ns = core.clock.monotonic_ns()
        self.states = {p.kiosk_id: PeerState(p.url, p.kiosk_id) for p in self.peers}
        self._sources = {p.kiosk_id: p for p in self.peers}
        self._lock = threading.Lock()
        #: The peers last said to be stale on the bus (``_tell``).
        self._told: tuple[str, ...] = ()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        #: Uses of the event log under way (``LogUses.using``; they never wait for each other):
        #: ``stop`` waits for them to end (``STORE_USE_S`` at most), and none starts after (a
        #: fetch still on its way then drops its answer). ``log_released``: set once none is
        #: under way and none will be; the daemon closes the log only then (as the list sync's).
        self._uses = LogUses()
        self.log_released = self._uses.released
        #: Set by a peer's poke: its thread asks it now, not at its next poll.
        self._wakes = {p.kiosk_id: threading.Event() for p in self.peers}
        #: A passing decision here not told to that peer yet (a queue of one: news coalesces).
        self._news = {p.kiosk_id: threading.Event() for p in self.peers}
        #: Each peer's last answer to a poke (``None`` never: no answer is not one).
        self._answered: dict[str, int] = {}
        self.poke_gap_s = poke_gap_s
        #: A peer's passages that the event log keeps refusing (a full or failing card, asked
        #: again every poll): its traceback once per kind of error, not once a poll.
        self._keeping = {
            p.kiosk_id: RepeatedFailure(
                log,
                f"compound: keeping {p.kiosk_id}'s passages failed",
                f"compound: {p.kiosk_id}'s passages are kept again",
            )
            for p in self.peers
        }
        #: A peer's errors and recoveries, logged as a flapping device's are: a peer on a flaky
        #: link (lost and back at every other poll) is a few lines an hour and their count.
        self._lines = {p.kiosk_id: FlapLimit(core.clock.monotonic_ns) for p in self.peers}
        self._load_closings()
        # A guard's void (or its lift) here is news for the peers as a passage is.
        core.lists.watch_revocations(self.revocation_news)

    def _load_closings(self) -> None:
        """The peers that said they were closing before this gate started (kept in the log)."""
        try:
            closings = self.ledger.closings()
        except Exception:  # noqa: BLE001 - a start never fails on it: they show stale instead
            log.exception("compound: the peers' closings could not be read")
            return
        for kiosk_id, (at, said) in closings.items():
            if kiosk_id in self.states:
                self.states[kiosk_id].closed_at = at
                self.states[kiosk_id].closing_said = said

    # -- one round --------------------------------------------------------------------------------

    def poll(self) -> None:
        """Ask every peer once, one after the other (tests; the daemon's threads ask each
        on its own); never raises."""
        for peer in self.peers:
            self._fetch_logged(peer)

    def _fetch_logged(self, peer: PeerSource) -> None:
        keeping = self._keeping[peer.kiosk_id]
        try:
            self.fetch(peer)
        except Stopped:
            return  # stopped while its answer was on the way: dropped
        except Exception as exc:  # noqa: BLE001 - a store fault while keeping: the next round retries
            keeping.failed(exc)
            self._failed(peer, "its passages could not be kept here (event log)")
        else:
            keeping.worked()
        self._settle_lines(peer.kiosk_id)
        self._tell()

    def _say(self, kiosk_id: str, level: int, text: str) -> None:
        """A change of the peer's state, in the journal unless it changes too often
        (``FlapLimit``: then counted, and said with the state an hour on)."""
        line = self._lines[kiosk_id].change(text)
        log.log(logging.DEBUG if line is None else level, "%s", text if line is None else line)

    def _settle_lines(self, kiosk_id: str) -> None:
        """After an hour whose changes went partly unlogged: the peer's state now, and their
        count."""
        error = self.states[kiosk_id].last_error
        now = f"peer {kiosk_id}: {error}" if error is not None else f"peer {kiosk_id} answers"
        line = self._lines[kiosk_id].settled(f"compound: {now}")
        if line is not None:
            log.log(logging.INFO if error is None else logging.WARNING, "%s", line)

    def _tell(self) -> None:
        """A ``peers`` bus message (``stale``: the peers whose outings are unknown here) when
        that set changed since it was last said: the guard's live page draws its alarms
        again (a stale peer is a standing device alarm, ``kiosk.alarms.peer_alarms``)."""
        stale = tuple(p["kiosk_id"] for p in self.status() if p["state"] in UNKNOWN_STATES)
        with self._lock:
            if stale == self._told:
                return
            self._told = stale
        bus = self.core.bus
        message = {"type": "peers", "stale": list(stale)}
        self.core.runner.in_loop(lambda: bus.publish(message))

    def fetch(self, peer: PeerSource) -> int:
        """The new passages of ``peer``, kept and recorded; how many. A failure is its
        state's ``last_error`` (and 0), never an exception out of the thread."""
        state = self.states[peer.kiosk_id]
        state.last_attempt = self.core.clock.now()
        got = 0
        for _ in range(PAGES_PER_POLL):
            try:
                token = peer.token()
            except ValueError as exc:
                self._failed(peer, f"no token ({exc})")
                return got
            with self._uses.using():
                after = self.ledger.cursor(peer.kiosk_id)
                origin = self.ledger.origin(peer.kiosk_id)
            try:
                page = self._page(peer, token, after, origin)
            except PeerRestarted as exc:
                log.warning("compound: %s: %s; fetching it again", peer.kiosk_id, exc)
                with self._uses.using():
                    self.ledger.restart(peer.kiosk_id, self.core.clock.now())
                continue
            except PeerRolledBack as exc:
                log.warning("compound: %s: %s; going on from there", peer.kiosk_id, exc)
                with self._uses.using():
                    self.ledger.rolled_back(peer.kiosk_id, exc.last)
                continue
            except PeerForged as exc:
                self._forged(state, unsigned=isinstance(exc, PeerUnsigned))
                self._failed(peer, str(exc))
                return got
            except (PullError, PeerPageError) as exc:
                self._failed(peer, str(exc))
                return got
            clock = self.core.clock
            read = ClockReading.take(clock)
            new = self._keep(peer, page, read)
            got += len(new)
            if page.revocations is not None or page.quarantine is not None:
                self._revocations(peer, page, read)
            with self._lock:
                if state.last_error is not None:
                    self._say(
                        peer.kiosk_id, logging.INFO, f"compound: peer {peer.kiosk_id} answers again"
                    )
                state.last_success, state.last_error = self.core.clock.now(), None
                state.heard_mono_ns = self.core.clock.monotonic_ns()
                if page.said is not None:
                    state.said_mono = (page.said, state.heard_mono_ns)
                reopened = self._reopened(state, page.said)
                state.ahead_dropped += page.ahead
                state.rows_refused += page.refused
                state.rows_redated += page.redated
                self._held(state, page.held_back)
                self._quarantine_refused(state, page)
                state.fetched += len(new)
                self._skewed(state, page.skew, bool(page.redated))
            if page.refused:  # counted, never quoted: a household is personal data
                log.warning(
                    "compound: %s: %d passages refused: a household or pass id holds a"
                    " character nobody sees",
                    peer.kiosk_id,
                    page.refused,
                )
            if reopened:
                with self._uses.using():
                    self.ledger.set_closed(peer.url, peer.kiosk_id, None, None, clock.now())
            if page.next >= page.last or page.held_back or (page.next == after and not page.rows):
                break  # the rest: left with the peer (a passage it cannot date yet)
        return got

    def _keep(self, peer: PeerSource, page: CheckedPage, read: ClockReading) -> list[PeerRow]:
        """Keep ``page``'s rows and record the new ones in the history; drop those held that
        its gate says it did not open for (fetched before it knew: nobody went through), and
        take them back from the history. The new rows."""
        with self._uses.using():
            new = self.ledger.merge(
                peer.url,
                peer.kiosk_id,
                page,
                read.wall,
                synced=read.synced,
                mono_ns=read.mono_ns,
            )
            if new:
                self._record(new)
            dropped = self.ledger.drop_not_opened(peer.kiosk_id, page.not_opened or ())
            if dropped:
                self._forget(dropped)
        return new

    def _revocations(self, peer: PeerSource, page: CheckedPage, read: ClockReading) -> None:
        """Hold the peer's guards' revocations and quarantine entries as its page said them
        (each when it says them: a peer on an earlier release says neither, or no quarantine);
        when they changed, the lists in force are read again (the engine refuses them from
        its next passage)."""
        changed: list[str] = []
        with self._uses.using():
            if page.revocations is not None and self.ledger.set_revocations(
                peer.kiosk_id, page.revocations, read.wall, synced=read.synced
            ):
                changed.append(f"{len(page.revocations)} revocations")
            if page.quarantine is not None and self.ledger.set_quarantine(
                peer.kiosk_id, page.quarantine, read.wall, synced=read.synced
            ):
                changed.append(f"{len(page.quarantine)} quarantine entries")
            if changed:
                self.core.lists.load()
        if changed:
            log.info(
                "compound: peer %s's guards' %s now held here", peer.kiosk_id, ", ".join(changed)
            )

    def _record(self, rows: list[Any]) -> None:
        self._on_history(record_peer_rows, rows, "recorded")

    def _forget(self, rows: list[PeerRow]) -> None:
        log.info(
            "compound: %d passages of a peer dropped: its gate did not open for them", len(rows)
        )
        self._on_history(forget_peer_rows, rows, "taken back")

    def _on_history(
        self, apply: Callable[[Any, list[Any]], Any], rows: list[Any], done: str
    ) -> None:
        """``apply(history, rows)`` on the engine's loop (the history is its own)."""
        history = self.core.history

        def run() -> None:
            try:
                apply(history, rows)
            except Exception:  # noqa: BLE001 - the history is an aid, the decision goes on
                log.exception("compound: peers' passages could not be %s", done)

        self.core.runner.in_loop(run)

    def _page(self, peer: PeerSource, token: str, after: int, origin: str | None) -> Any:
        url = f"{peer.url}/api/v1/passages"
        headers = {"Authorization": f"Bearer {token}", **PLAIN_JSON}
        nonce = secrets.token_urlsafe(18)
        params: dict[str, int | str] = {"after": after, "limit": PAGE_ROWS, "nonce": nonce}
        try:
            with self._http.use() as client:
                status, answer_headers, body = fetch_bounded(
                    client,
                    url,
                    params,
                    headers,
                    cap=MAX_ANSWER_BYTES,
                    deadline_s=self.section.timeout_s * 3,
                    monotonic=self._monotonic,
                )
        except httpx.HTTPError as exc:
            why = untrusted_certificate(exc, "the peer's", TRUST_THE_PEER) or unknown_host(exc, url)
            raise PullError(f"{url}: {why or 'no answer (' + type(exc).__name__ + ')'}") from None
        if status in (401, 403):
            me = self.core.config.site.kiosk_id
            raise PullError(
                f"{url}: HTTP {status}: the peer refuses this gate's token (it needs a"
                f" {PEER_SCOPE} token of that gate made for this one: kiosk token new"
                f" --scope {PEER_SCOPE} --for {me})"
            )
        if status == 421:  # its guard against DNS rebinding (docs/network.md)
            raise PullError(f"{url}: 421: {misdirected(peer.url)}")
        if status != 200:
            raise PullError(f"{url}: {status_words(status, answer_headers, body, PEER_MOVED)}")
        if peer.trust_key is not None:
            key = self.core.trust.named(peer.trust_key)
            if key is None:
                raise PullError(
                    f"its key is pinned (trust_key) and there is no {peer.trust_key}.pub in this"
                    " gate's trust folder: nothing of its answers is kept"
                )
            said = answer_headers.get(SIGNATURE_HEADER)
            try:
                verify_page(key, said, peer.kiosk_id, nonce, after, PAGE_ROWS, bytes(body))
            except PeerUnsigned:
                raise
            except PeerForged as exc:
                asked = (peer.kiosk_id, nonce, after, PAGE_ROWS, bytes(body))
                raise PeerForged(f"{exc}{self._rotated(peer, said, asked)}") from None
        if json_values(body) > MAX_ANSWER_VALUES:
            raise PullError(f"{url}: an answer with more values than a page of passages has")
        try:
            parsed = json.loads(body)
        except (ValueError, RecursionError):
            raise PullError(f"{url}: the answer is not JSON (not a kiosk?)") from None
        now = self.core.clock.now()
        synced = self.core.clock.synced()  # a clock not set cannot tell a row ahead of it
        return check_page(
            parsed, peer.kiosk_id, after, PAGE_ROWS, now, self.section.id, origin, synced,
            signed=peer.trust_key is not None,  # verified above: only then its forget marks
        )  # fmt: skip

    def _reopened(self, state: PeerState, said: datetime | None) -> bool:
        """An answer of a peer that said it was closing ends that when it dated it after its
        notice (one crossing the farewell does not; one without its time does), or when it
        came ``MAX_SKEW`` after the notice (no crossing: back on a clock not set yet); whether
        it ended."""
        if state.closed_at is None:
            return False
        now = ClockReading.take(self.core.clock)
        if state.closed_mono_ns is not None:  # timed on this boot's monotonic clock
            crossing = now.mono_ns - state.closed_mono_ns <= _MAX_SKEW_NS
        else:
            crossing = now.wall - state.closed_at <= MAX_SKEW
        later = said is None or state.closing_said is None or said > state.closing_said
        if later or not crossing:
            log.info("compound: peer %s is open again", state.kiosk_id)
            state.closed_at, state.closed_mono_ns = None, None
            return True
        return False

    def _rotated(self, peer: PeerSource, said: str | None, asked: tuple[Any, ...]) -> str:
        """A hint when the answer is signed by another key of the trust folder (the peer's
        key rotated, its new .pub brought under another name): which, and what to pin. The
        answer is refused all the same."""
        key_id = (said or "").partition(":")[0]
        for name, key in self.core.trust.keys_for(key_id) if key_id else []:
            try:
                verify_page(key, said, *asked)
            except PeerForged:
                continue
            return (
                f"; it is signed by {name}.pub of this gate's trust folder: if that is"
                f' {peer.kiosk_id}\'s new key, set its trust_key = "{name}"'
            )
        return ""

    def _skewed(self, state: PeerState, skew: timedelta | None, redated: bool = False) -> None:
        """Keep the peer's clock skew; logged once when it goes beyond ``MAX_SKEW`` and once
        when it is back within (its rows are kept as it stamps them either way, but those it
        stamped on its clock not set: ``redated``, dated here by the skew), on this gate's
        clock synchronised only."""
        was = state.skewed
        # A clock of this gate's not set yet (1970 after a boot without network time) makes
        # every peer look decades ahead: not theirs to fix.
        now = skew is not None and abs(skew) > MAX_SKEW and self.core.clock.synced()
        state.skew, state.skewed = skew, now
        if now and not was:
            assert skew is not None
            kept = (
                "its passages stamped on it, not set, are dated by this gate's clock"
                if redated
                else "its passages are kept as it stamps them"
            )
            log.warning(
                "compound: peer %s's clock is %s this gate's: %s (fix its NTP)",
                state.kiosk_id,
                skew_words(skew),
                kept,
            )
        elif was and not now:
            log.info("compound: peer %s's clock agrees with this gate's again", state.kiosk_id)

    def _held(self, state: PeerState, held_back: int) -> None:
        """Keep how many passages the answer left with the peer (ahead of this gate's clock
        not set); logged when they begin to be, and when none are any more."""
        if held_back and not state.held_back:
            state.held_mono_ns = self.core.clock.monotonic_ns()
            log.warning(
                "compound: %d of peer %s's passages left with it: this gate's clock is not"
                " set (no network time since it started), so it cannot tell them from a wrong"
                " clock; the quota and passback count them once it is set",
                held_back,
                state.kiosk_id,
            )
        elif state.held_back and not held_back:
            state.held_mono_ns = None
            log.info("compound: peer %s's passages are all counted here again", state.kiosk_id)
        state.held_back = held_back

    def _quarantine_refused(self, state: PeerState, page: CheckedPage) -> None:
        """Keep how many of the peer's quarantine entries its answer carried with a day
        outside the days a guard may type (clamped, in force); logged, by count, when it
        changes."""
        if page.quarantine is None or page.quarantine_refused == state.quarantine_refused:
            return
        if page.quarantine_refused:
            log.warning(
                "compound: %d of peer %s's quarantine entries have a day outside %s..%s"
                " (a year typed wrong there): clamped to those, in force here; lift and add"
                " them again at that gate",
                page.quarantine_refused,
                state.kiosk_id,
                FIRST_DAY,
                LAST_DAY,
            )
        else:
            log.info("compound: peer %s's quarantine entries are all in force here", state.kiosk_id)
        state.quarantine_refused = page.quarantine_refused

    def _forged(self, state: PeerState, *, unsigned: bool = False) -> None:
        """An answer refused as forged (or ``unsigned``: no signature at all): counted, and
        the peer ``forged`` (``unsigned``) for ``stale_after_s`` from now (a forger answering
        now and then, the real peer between, keeps one alarm standing rather than one coming
        and going at every other poll)."""
        now = ClockReading.take(self.core.clock)
        with self._lock:
            if unsigned:
                state.unsigned += 1
                if not self._within(state.unsigned_mono_ns, now.mono_ns):
                    state.unsigned_since, state.unsigned_since_mono_ns = now.wall, now.mono_ns
                state.unsigned_at, state.unsigned_mono_ns = now.wall, now.mono_ns
                return
            state.forged += 1
            if not self._within(state.forged_mono_ns, now.mono_ns):
                state.forged_since, state.forged_since_mono_ns = now.wall, now.mono_ns
            state.forged_at, state.forged_mono_ns = now.wall, now.mono_ns

    def _within(self, at_ns: int | None, now_ns: int) -> bool:
        """``at_ns`` is at most ``stale_after_s`` before ``now_ns`` (a refusal's spell lasts),
        both of this boot's monotonic clock: a wall clock stepped by NTP (an hour, or from
        1970) ended a spell at once or stretched it."""
        window_ns = self.section.stale_after_s * 1_000_000_000
        return at_ns is not None and 0 <= now_ns - at_ns <= window_ns

    def _failed(self, peer: PeerSource, message: str) -> None:
        """The peer's error, for its status; logged when it is new (not at every poll of a
        peer that stays down)."""
        message = message[:300]
        with self._lock:
            state = self.states[peer.kiosk_id]
            new, state.last_error = message != state.last_error, message
        if new:
            self._say(peer.kiosk_id, logging.WARNING, f"compound: peer {peer.kiosk_id}: {message}")

    # -- news: told at once, taken at once --------------------------------------------------------

    def news(self, message: Mapping[str, Any]) -> None:
        """A bus message, on the loop's thread: a committed passing decision is news for the
        peers (told by the push thread), and so is a row the engine wrote after its decision
        was told (``recorded``) that passes someone (a guard's pass held through a storage
        fault) or says the gate did not open for a pass (``not_opened``: a peer holding that
        pass drops it when it asks now, not at its next poll); never blocks, never fails."""
        kind = message.get("type")
        passing = message.get("decision") in COUNTED_DECISIONS
        if kind == "decision":
            told = passing and message.get("committed") is True
        else:
            told = kind == "recorded" and (passing or message.get("not_opened") is not None)
        if told:
            self._news_for_all()

    def revocation_news(self) -> None:
        """A guard's revocation or its lift written here (``ListStore.watch_revocations``, on
        the guard's thread): news for every peer, told by the push threads; never blocks."""
        self._news_for_all()

    def _news_for_all(self) -> None:
        with self._lock:
            for pending in self._news.values():
                pending.set()

    async def follow(self, bus: EventBus) -> None:
        """The daemon's task: every bus message to ``news`` until cancelled or the bus
        closes; dropped as slow (a loop starved for long), it subscribes again (the news
        missed meanwhile waits for the poll)."""
        while True:
            subscription = bus.subscribe(maxsize=NEWS_QUEUE, name="peers-news")
            try:
                async for message in subscription:
                    self.news(message)
            finally:
                subscription.close()
            if not subscription.dropped:
                return  # the bus closed: the daemon is stopping
            log.warning("compound: this gate's news fell behind; its peers poll for it")

    def push(self) -> dict[str, int | None]:
        """Tell each peer with news pending: ``{kiosk_id: its HTTP status}`` (``None``: no
        answer). What each peer's push thread does for its peer; tests call it."""
        return {p.kiosk_id: self._tell_news(p) for p in self.peers if self._take_news(p.kiosk_id)}

    def _take_news(self, kiosk_id: str) -> bool:
        with self._lock:
            pending = self._news[kiosk_id]
            if not pending.is_set():
                return False
            pending.clear()
            return True

    def _tell_news(self, peer: PeerSource) -> int | None:
        status = self._poke(peer)
        with self._lock:
            state = self.states[peer.kiosk_id]
            if status == 202:
                state.told += 1
            else:
                state.tell_failed += 1
            # Against its last answer, not a missing one: a flaky link between two refusals
            # does not make the second one news again.
            answered = self._answered.get(peer.kiosk_id)
            if status is not None:
                self._answered[peer.kiosk_id] = status
            if status == 421 and answered != 421:
                log.warning(
                    "compound: peer %s does not take this gate's news (HTTP 421): %s",
                    peer.kiosk_id,
                    misdirected(peer.url),
                )
            elif status == 403 and answered != 403:
                log.warning(
                    "compound: peer %s refuses this gate's token for its news (HTTP 403): it"
                    " needs a token of that gate made for this one (kiosk token new --scope %s"
                    " --for %s); its poll brings them, but its closing notice is refused too",
                    peer.kiosk_id,
                    PEER_SCOPE,
                    self.core.config.site.kiosk_id,
                )
            elif status not in (202, None, answered):
                log.warning(
                    "compound: peer %s does not take this gate's news (HTTP %s): it runs"
                    " earlier code or does not list this gate in its compound.peers; its"
                    " poll brings them",
                    peer.kiosk_id,
                    status,
                )
            state.tell_status = status
        return status

    def _poke(
        self, peer: PeerSource, closing: str | None = None, limit_s: float = POKE_DEADLINE_S
    ) -> int | None:
        url = f"{peer.url}/api/v1/passages/poke"
        me = self.core.config.site.kiosk_id
        params = {"kiosk_id": me} if closing is None else {"kiosk_id": me, "closing": closing}
        try:
            headers = {"Authorization": f"Bearer {peer.token()}", **PLAIN_JSON}
            key = self.core.issuer_key
            if closing is not None and key is not None:
                headers[SIGNATURE_HEADER] = sign_closing(key, me, peer.kiosk_id, closing)
            deadline = Deadline(min(limit_s, self.section.timeout_s), self._monotonic)
            with (
                self._http.use() as client,
                deadline,
                client.stream(
                    "POST", url, params=params, **deadline.httpx_args(headers)
                ) as response,
            ):
                return response.status_code  # its body is not read
        except (ValueError, httpx.HTTPError, DeadlineExceeded) as exc:
            log.debug("compound: %s not told of the news: %s", peer.kiosk_id, exc)
            return None

    def farewell(self, wait_s: float = FAREWELL_S) -> dict[str, int | None]:
        """This gate is stopping cleanly (the daemon's stop): tell every peer at once that it
        is closing (``POST /api/v1/passages/poke?closing=NOW``, signed with the issuer key),
        so they show it ``closed``, not an outage; ``{kiosk_id: its HTTP status}`` (``None``:
        no answer within ``wait_s``, then it alarms there as a gate gone without a word)."""
        if self._stop.is_set():  # stopped already: its client is closed
            return {}
        at = format_ts(self.core.clock.now())
        said: dict[str, int | None] = {p.kiosk_id: None for p in self.peers}

        def tell(peer: PeerSource) -> None:
            said[peer.kiosk_id] = self._poke(peer, at, wait_s)

        threads = [
            threading.Thread(target=tell, args=(p,), name=f"kiosk-farewell-{p.kiosk_id}")
            for p in self.peers
        ]
        for thread in threads:
            thread.daemon = True
            thread.start()
        end = self._monotonic() + wait_s
        for thread in threads:
            thread.join(max(0.0, end - self._monotonic()))
        return dict(said)

    def closing(self, kiosk_id: str, at: str, signature: str | None) -> None:
        """Peer ``kiosk_id`` says it is closing at ``at`` (its clock, ``format_ts``): it is
        ``closed`` until it answers again. ``PeerPageError`` (nothing changed): ``at`` is
        not a time; ``PeerForged``: with its key pinned, the notice is not signed by it for
        this gate (``PeerUnsigned``: not at all), or not fresh (by its clock as last heard,
        within ``MAX_SKEW``, and after the last one taken: one played back), counted as its
        forged answers are. ``KeyError``: no such peer."""
        peer = {p.kiosk_id: p for p in self.peers}[kiosk_id]
        when = closing_time(at)
        state = self.states[kiosk_id]
        try:
            self._authentic(peer, state, at, when, signature)
        except PeerForged as exc:
            self._forged(state, unsigned=isinstance(exc, PeerUnsigned))
            self._failed(peer, f"a closing notice refused: {exc}")
            self._tell()  # an alarm on the guard's live page at once
            raise
        read = ClockReading.take(self.core.clock)
        now = read.wall
        with self._lock:
            state.closed_at, state.closing_said = now, when
            state.closed_mono_ns = read.mono_ns
        # Kept for a restart of this gate; shown now either way.
        with contextlib.suppress(Exception), self._uses.using():
            self.ledger.set_closed(peer.url, kiosk_id, now, when, now)
        log.info("compound: peer %s says it is closing (stopped cleanly)", kiosk_id)
        self._tell()

    def _authentic(
        self, peer: PeerSource, state: PeerState, at: str, when: datetime, signature: str | None
    ) -> None:
        if peer.trust_key is not None:
            key = self.core.trust.named(peer.trust_key)
            if key is None:
                raise PeerForged(f"there is no {peer.trust_key}.pub to check it with")
            verify_closing(key, signature, peer.kiosk_id, self.core.config.site.kiosk_id, at)
        expected = _peer_now(state, ClockReading.take(self.core.clock))
        if abs(when - expected) > MAX_SKEW:
            raise PeerForged(f"it is dated {at}, not now by its clock: played back, not kept")
        if state.closing_said is not None and when <= state.closing_said:
            raise PeerForged(f"it is dated {at}, not after the last one: played back, not kept")

    def poke(self, kiosk_id: str) -> bool:
        """A peer told of news (``POST /api/v1/passages/poke``): its thread asks it now;
        ``False``: no peer of that id here."""
        wake = self._wakes.get(kiosk_id)
        if wake is None:
            return False
        wake.set()
        return True

    def woken(self, kiosk_id: str) -> bool:
        """A poke of that peer is waiting for its thread (tests)."""
        return self._wakes[kiosk_id].is_set()

    # -- what the guard is told -------------------------------------------------------------------

    def status(self) -> list[dict[str, Any]]:
        """Each peer: ``state`` (``ok``; ``starting``: not asked to the end yet, and less
        than ``stale_after_s`` after this sync started; ``stale``: its outings are unknown here
        since ``stale_since``; ``forged``: an answer not signed by its pinned key was refused
        within ``stale_after_s``, the first of them at ``stale_since``; ``unsigned``: the same
        for answers with no signature at all; ``held``: heard, but its last answer left
        ``held_back`` of its passages with it, stamped ahead of this gate's clock not set, since
        ``stale_since``), ``last_success``, ``rows_held``,
        ``last_error``, rows dropped as stamped ahead of this clock, rows refused for a
        character nobody sees in a household or pass id (``rows_refused``), its quarantine
        entries its last answer carried with a day outside the days a guard may type
        (``quarantine_refused``: clamped, in force), answers refused as
        ``forged`` and as ``unsigned`` since the start, and the pokes with this gate's news it
        took (``told``) or not (``tell_failed``)."""
        reading = ClockReading.take(self.core.clock)
        try:
            with self._uses.using():
                held = self.ledger.held()
        except Exception:  # noqa: BLE001 - the health report must not fail on it (nor stopped)
            held = {}
        out = []
        with self._lock:
            for state in self.states.values():
                word, since = self._standing(state, reading)
                heard = _heard(state, reading)
                out.append(
                    {
                        "kiosk_id": state.kiosk_id,
                        "url": state.url,
                        "state": word,
                        "last_success": heard.isoformat() if heard else None,
                        "stale_since": None if word == "closed" else _iso(since),
                        "closed_since": _iso(
                            since
                            if word == "closed"
                            else _dated(state.closed_at, state.closed_mono_ns, reading)
                        ),
                        "rows_held": held.get(state.kiosk_id, 0),
                        "last_error": state.last_error,
                        "ahead_dropped": state.ahead_dropped,
                        "rows_refused": state.rows_refused,
                        "quarantine_refused": state.quarantine_refused,
                        "rows_redated": state.rows_redated,
                        "held_back": state.held_back,
                        "clock_skew_s": _seconds(state.skew),
                        "clock_skewed": state.skewed,
                        "forged": state.forged,
                        "unsigned": state.unsigned,
                        "told": state.told,
                        "tell_failed": state.tell_failed,
                    }
                )
        return out

    def _standing(self, state: PeerState, reading: ClockReading) -> tuple[str, datetime | None]:
        """The peer's state and since when its outings are unknown here, or (``closed``)
        since when it is closed (``None``: neither). How long ago it was heard, and since
        this sync started, on the monotonic clock: NTP stepping a clock not set (1970) made a
        peer heard a second before "not heard for 56 years", an alarm for nothing."""
        now = reading.wall
        if self._within(state.forged_mono_ns, reading.mono_ns):
            return "forged", _dated(state.forged_since, state.forged_since_mono_ns, reading)
        if self._within(state.unsigned_mono_ns, reading.mono_ns):
            return "unsigned", _dated(state.unsigned_since, state.unsigned_since_mono_ns, reading)
        if state.closed_at is not None:  # it said so as it stopped: not an outage
            return "closed", _dated(state.closed_at, state.closed_mono_ns, reading)
        stale_after = timedelta(seconds=self.section.stale_after_s)
        heard = _heard(state, reading)
        if heard is not None and timedelta(0) <= now - heard <= stale_after:
            if state.held_back:  # heard, but not all it said is counted here
                return "held", _dated(None, state.held_mono_ns, reading)
            return "ok", None
        started = reading.wall_at(self._started_mono_ns)
        since = heard or started
        hours = self._sources[state.kiosk_id].closed_hours
        if hours is not None:  # its own closed hours: not heard then is not an outage
            # Its clock less this one's now (as its last answer said it, and the monotonic
            # time since: a skew told against this clock before NTP set it is hours off).
            skew = _peer_now(state, reading) - now
            began, ended = self._closed_hours(skew, now, hours)
            if began is not None:
                return "closed", began
            if now - ended <= stale_after:  # it is booting after them
                return "closed", self._closed_hours(skew, ended - _TICK, hours)[0] or ended
            since = max(since, ended)
        # Not asked to the end yet since the start (the first poll under way): not an outage
        # (a restart raised the guard's alarm every time). Any failure is one.
        if (
            heard is None
            and state.last_error is None
            and timedelta(0) <= now - started <= stale_after
        ):
            return "starting", None
        return "stale", since

    def _closed_hours(
        self, skew: timedelta, now: datetime, hours: tuple[dt_time, dt_time]
    ) -> tuple[datetime | None, datetime]:
        """``kiosk.peers.closed_window`` by the peer's clock (its timer keeps its hours; its
        ``skew``, its clock less this one's), the times given back on this gate's clock."""
        began, ended = closed_window(now + skew, self.core.tz, hours)
        return (None if began is None else began - skew), ended - skew

    # -- schedule ---------------------------------------------------------------------------------

    def start(self) -> None:
        """Two threads a peer (its asks, its news): a peer that does not answer delays
        nobody else's."""
        if self._threads:
            return
        self._stop.clear()
        self._uses.open()
        for peer in self.peers:
            for target, name in ((self._loop, "peer"), (self._push_loop, "news")):
                thread = threading.Thread(
                    target=target, args=(peer,), name=f"kiosk-{name}-{peer.kiosk_id}", daemon=True
                )
                self._threads.append(thread)
        for thread in self._threads:
            thread.start()

    def _loop(self, peer: PeerSource) -> None:
        wake = self._wakes[peer.kiosk_id]
        while not self._stop.is_set():
            wake.clear()
            asked = self._monotonic()
            self._fetch_logged(peer)
            if wake.wait(self.section.poll_s) and not self._stop.is_set():
                self._stop.wait(self.gap_after(asked))

    def gap_after(self, asked: float) -> float:
        """Told of news: the peer is asked now, but no sooner than ``poke_gap_s`` after it
        was last asked (at ``asked``, monotonic): a flood of pokes costs an ask a second."""
        return max(0.0, asked + self.poke_gap_s - self._monotonic())

    def _push_loop(self, peer: PeerSource) -> None:
        """Tell ``peer`` each news (its own thread: a peer slow to take it delays no other)."""
        pending = self._news[peer.kiosk_id]
        while not self._stop.is_set():
            pending.wait()
            if not self._stop.is_set() and self._take_news(peer.kiosk_id):
                self._tell_news(peer)

    def stop(self, timeout_s: float = 2.0) -> bool:
        """Ask the threads to end and wait for them within ``timeout_s`` in all (a fetch
        under way ends at its deadline; its thread is a daemon's), then for the uses of the
        event log under way (``STORE_USE_S`` at most); none begins after. Whether none is
        under way any more: False, one (a slow card) outlasted the wait; ``log_released`` is
        set when it ends, and the caller closes the log only then, never on this return."""
        self._stop.set()
        for event in (*self._wakes.values(), *self._news.values()):
            event.set()
        end = self._monotonic() + timeout_s
        for thread in self._threads:
            thread.join(max(0.0, end - self._monotonic()))
        self._threads = []
        idle = self._uses.close(STORE_USE_S)  # a thread not ended yet keeps out of the log
        self._http.close()
        return idle

    @classmethod
    def from_config(cls, core: Core, *, client: httpx.Client | None = None) -> PeerSync | None:
        """For the daemon: ``None`` without ``[[compound.peers]]`` (a gate on its own)."""
        section = core.config.compound
        if not section.peers:
            return None
        return cls(core, section, client=client)


def misdirected(url: str) -> str:
    """What a peer's 421 means and what to do (``kiosk.hosts``: the peer refuses the name
    this gate asks it by)."""
    host = httpx.URL(url).host
    return (
        f"the gate does not answer to {host}; if that name is the gate's, add it to that"
        " gate's [web] allowed_hosts (docs/network.md)"
    )


def _peer_now(state: PeerState, reading: ClockReading) -> datetime:
    """The peer's clock now: as its last answer said it, plus the monotonic time since (this
    gate's clock stepped by NTP since, from 1970, changes nothing); without one, this gate's
    clock and the skew last told."""
    if state.said_mono is not None:
        said, mono_ns = state.said_mono
        with contextlib.suppress(OverflowError):  # a clock said at year 9999: the skew kept
            now = said + timedelta(microseconds=(reading.mono_ns - mono_ns) // 1000)
            if abs(now - reading.wall) <= MAX_SKEW_KEPT:  # this gate's time plus it is a time
                return now
    return reading.wall + (state.skew or timedelta(0))


def _dated(when: datetime | None, mono_ns: int | None, reading: ClockReading) -> datetime | None:
    """A time of this gate's clock kept with this boot's monotonic reading then, by the clock
    read now (``reading``): dated right once NTP stepped it; ``when`` without one."""
    return when if mono_ns is None else reading.wall_at(mono_ns)


def _heard(state: PeerState, reading: ClockReading) -> datetime | None:
    """When the peer was last heard, by the clock read now (``reading``): its monotonic time
    then (a time heard on a clock not set is dated once NTP set it)."""
    if state.heard_mono_ns is None:
        return state.last_success
    return reading.wall_at(state.heard_mono_ns)


def _iso(when: datetime | None) -> str | None:
    return when.isoformat() if when is not None else None


def _seconds(skew: timedelta | None) -> int | None:
    return None if skew is None else round(skew.total_seconds())


def skew_words(skew: timedelta) -> str:
    """``3 h 5 min behind`` / ``40 min ahead`` (of this gate's clock), for the log."""
    minutes = round(abs(skew.total_seconds()) / 60)
    hours, minutes = divmod(minutes, 60)
    amount = f"{hours} h {minutes} min" if hours else f"{minutes} min"
    return f"{amount} {'behind' if skew < timedelta(0) else 'ahead of'}"
