"""``[compound]``: the other gates of this compound, whose passages the quota and the
anti-passback count as well as this gate's own (``kiosk.peers``, docs/operations.md), and the
compound's id, whose entries of the office's lists this gate applies (docs/fleet.md).

Nothing configured (no ``[[compound.peers]]``) is a gate on its own, as before."""

from __future__ import annotations

from datetime import time
from pathlib import Path

from pydantic import Field, model_validator

from ._base import ClockTime, Section
from .fleet import TokenSource

__all__ = ["CompoundSection", "PeerSource", "id_note", "peer_notes"]

KIOSK_ID_PATTERN = r"^[A-Za-z0-9._-]+$"


class PeerSource(TokenSource):
    """One other gate of the compound (a `[[compound.peers]]` table; its token of the
    `passages:peer` scope)."""

    kiosk_id: str = Field(min_length=1, max_length=64, pattern=KIOSK_ID_PATTERN)
    """The peer's `site.kiosk_id`: the URL is pinned to it, an answer as another id (or a row
    of another kiosk) is refused."""
    trust_key: str | None = Field(None, min_length=1, max_length=64, pattern=KIOSK_ID_PATTERN)
    """The peer's key, pinned: the name of its `.pub` in this gate's trust folder
    (`gate-north` for `trust/gate-north.pub`, the public half of that gate's issuer key). Set,
    every answer must be signed by that key for the very request it answers, or nothing of it
    is kept (a forged or replayed page, over plain http too); the peer needs its issuer key
    (`issuer_key_path`). Unset: answers are taken unsigned, as before."""
    closed_from: ClockTime | None = None
    """The peer's own closed hours, from (local time, the site's timezone; with
    `closed_until`, e.g. `"22:00"` to `"06:30"`, across midnight too): a side gate switched off
    at night, a Pi a timer powers down. Within them, and for `stale_after_s` after (it boots),
    a peer not heard is shown closed, no alarm; outside them, an outage alarms as ever. Unset:
    it is expected to answer at any hour."""
    closed_until: ClockTime | None = None
    """The end of its closed hours (local time): see `closed_from`."""

    @model_validator(mode="after")
    def _hours(self) -> PeerSource:
        if (self.closed_from is None) != (self.closed_until is None):
            raise ValueError("closed_from and closed_until: give both, or neither")
        if self.closed_from is not None and self.closed_from == self.closed_until:
            raise ValueError("closed_from and closed_until are the same time (closed all day?)")
        return self

    @property
    def closed_hours(self) -> tuple[time, time] | None:
        """``(closed_from, closed_until)``, or ``None`` when it keeps no closed hours."""
        if self.closed_from is None or self.closed_until is None:
            return None
        return self.closed_from, self.closed_until


class CompoundSection(Section):
    """``[compound]``: the compound's other gates, shared quota and anti-passback."""

    id: str | None = Field(None, min_length=1, max_length=64, pattern=KIOSK_ID_PATTERN)
    """This gate's compound, as the office's lists name it (`compound` of a quarantine or
    household entry): of the office's bundle the gate applies its own compound's entries and
    those naming none. Unset: every entry applies, as before (docs/fleet.md, Lists out)."""
    peers: tuple[PeerSource, ...] = Field((), max_length=16, strict=False)
    """The other gates (`[[compound.peers]]`); none: this gate's rules count its own
    passages only."""
    poll_s: float = Field(10.0, ge=1, le=3600)
    """How often each peer is asked for its new passages."""
    timeout_s: float = Field(5.0, ge=1, le=60)
    """HTTP timeout per read, and (three times it) the deadline of one whole answer."""
    stale_after_s: float = Field(120.0, ge=5, le=86400)
    """A peer not heard from for this long is shown stale on the health page: its outings
    are unknown here, the rules hold per gate."""
    max_rows: int = Field(20000, ge=100, le=200000)
    """The most passages held of one peer (the oldest go first)."""

    @model_validator(mode="after")
    def _distinct(self) -> CompoundSection:
        ids: set[str] = set()
        urls: set[str] = set()
        for i, peer in enumerate(self.peers):
            if peer.kiosk_id in ids:
                raise ValueError(f"peers[{i}].kiosk_id: {peer.kiosk_id} is listed twice")
            if peer.url in urls:
                raise ValueError(f"peers[{i}].url: {peer.url} is listed twice")
            ids.add(peer.kiosk_id)
            urls.add(peer.url)
        return self


def peer_notes(section: CompoundSection, trust: Path | None = None) -> list[str]:
    """What ``kiosk check-config`` notes of valid peers: a token it cannot read here (the
    daemon reads it at each fetch; without it that gate's outings stay unknown), a plain http
    URL without a pinned key (anyone answering at that address could make up passages), a
    pinned key not in the trust folder ``trust`` (when it is known)."""
    from kiosk.passes import TrustListError, key_files

    try:  # as the kiosk reads the folder: office.pub, and as Windows saved it, office.pub.txt
        trusted = {name for name, _ in key_files(trust)} if trust is not None else set()
    except TrustListError:
        trusted = set()
    notes = []
    for i, peer in enumerate(section.peers):
        pub = f"{peer.trust_key}.pub"
        if trust is not None and peer.trust_key is not None and peer.trust_key not in trusted:
            notes.append(
                f"compound.peers[{i}].trust_key: no {pub} in {trust}: nothing of that gate's"
                " answers is kept until its key is there (docs/operations.md, Several gates)"
            )
        try:
            peer.token()
        except ValueError as exc:
            notes.append(
                f"compound.peers[{i}] ({peer.kiosk_id}): its token cannot be read here ({exc});"
                " the daemon needs it, or that gate's outings stay unknown at this one"
            )
        if peer.url.startswith("http://") and peer.trust_key is None:
            notes.append(
                f"compound.peers[{i}].url is plain http: anyone on the LAN answering at that"
                " address could make up passages; use https, or pin its key with trust_key"
                " (docs/operations.md, Several gates)"
            )
    return notes


def id_note(section: CompoundSection, takes_lists: bool) -> str | None:
    """What ``kiosk check-config`` notes of a gate with peers that takes the office's lists
    (``takes_lists``: ``[fleet] lists_url``) without ``[compound] id``: it applies every
    compound's entries of them, and the office's district report can tell its compound only
    by its peers. A note: a config from before the id stays valid, and at an office of one
    compound nothing differs."""
    if not section.peers or section.id is not None or not takes_lists:
        return None
    return (
        "compound.id is not set while compound.peers are: this gate applies every compound's"
        " entries of the office's lists (another compound's quarantined household of the same"
        " code is denied here), and the office's district report tells its compound by its"
        " peers alone; set it to this compound's id as the office's lists name it"
        " (docs/fleet.md, Lists out)"
    )
