"""One decision's trip from the engine to the world and back: a ``Crossing`` out, an ``Outcome`` in.

The engine decides; whoever runs it (``kiosk.runner.EngineRunner`` on the asyncio loop,
``checkpoint.virtual.DirectPorts`` in virtual time) carries the decision out, in this order,
and answers once:

1. **commit** ``crossing.draft`` to the event log;
2. **open the gate** if ``crossing.opens_gate(committed)`` says so. A decision that could not be
   recorded keeps the gate shut (the engine then records the store-fault outcome instead),
   except a guard's manual pass where ``policy.on_store_fault = "manual"``: the guard's word
   opens it and the record waits in the engine's backlog;
   A crossing ``behind_held`` (records the engine holds before it cannot be written now)
   is not committed: its outcome is a store fault at once (``Crossing.held_back``);
3. **answer** ``Engine.on_crossed(Outcome(...))``: what the log said, whether the gate was
   commanded open and whether the relay failed. The engine then publishes the decision (a
   screen never shows a decision before the log has it, or before its fate is known).

A draft written on a condition (``EventDraft.unless``: a registration another tablet recorded
a moment before, ``kiosk.again``) that the log found met is not written and decided nothing:
its outcome is ``refused`` (``kiosk.store.AlreadyRecorded``), and no gate opens for it.

No ticket crosses: the ``Outcome`` carries its ``Crossing`` back, and a crossing is equal only
to itself. A commit answered as a store fault because it missed its deadline is still under
way (``Outcome.pending``): its end is answered once more, ``Engine.on_late_commit(crossing,
event)`` when it landed after all, ``(crossing, refused)`` when its condition found its record
(a pass held for it is then not written), ``(crossing, None)`` when it failed, so the engine
keeps one record and never commits that event again while the first attempt may still land.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from kiosk.devices import DeviceFault
from kiosk.store import AlreadyRecorded, Event, EventDraft, StoreFault


@dataclass(frozen=True, eq=False)
class Crossing:
    """What the engine hands over for one decision (a passage's, a guard's, or a record held
    back in the backlog): the event to commit and when the gate opens for it."""

    draft: EventDraft
    #: Open the gate once the event is committed (a pass).
    open_if_committed: bool = False
    #: Open it even when the event cannot be committed (only a guard's manual pass, when
    #: ``on_store_fault = "manual"``).
    open_if_unrecorded: bool = False
    #: Records held before it (the engine's backlog) cannot be written now: its event goes
    #: to the log only after them, so it is not committed at all (``held_back``).
    behind_held: bool = False

    def opens_gate(self, committed: bool) -> bool:
        """Whether the gate is commanded open after the commit (``committed``: it succeeded)."""
        return self.open_if_committed if committed else self.open_if_unrecorded

    def held_back(self) -> Outcome | None:
        """Its outcome without a commit when it is ``behind_held``: a store fault (the engine
        holds its event after the others); None: commit it."""
        if not self.behind_held:
            return None
        fault = StoreFault("store_fault", "records held before it are not written yet")
        return Outcome(self, store_fault=fault)


@dataclass(frozen=True)
class Outcome:
    """What became of a ``Crossing``: exactly one of ``event`` (committed), ``store_fault`` and
    ``refused`` (its draft's condition found its record in the log: nothing written, nothing
    decided); ``gate_commanded`` when the gate was commanded open, ``gate_fault`` when that
    command failed."""

    crossing: Crossing
    event: Event | None = None
    store_fault: StoreFault | None = None
    refused: AlreadyRecorded | None = None
    gate_commanded: bool = False
    gate_fault: DeviceFault | None = None
    #: The store fault is a missed deadline: the commit is still under way and its end is
    #: answered later (``Engine.on_late_commit``).
    pending: bool = False

    def __post_init__(self) -> None:
        if sum(x is not None for x in (self.event, self.store_fault, self.refused)) != 1:
            raise ValueError("an outcome is either committed (event), a store fault or refused")
        if self.refused is not None and self.gate_commanded:
            raise ValueError("no gate opens for a draft refused")
        if self.pending and self.store_fault is None:
            raise ValueError("only a store fault can still be pending")
        if self.gate_fault is not None and not self.gate_commanded:
            raise ValueError("a gate fault without a gate command")

    @property
    def committed(self) -> bool:
        return self.event is not None

    @property
    def gate_opened(self) -> bool:
        """The gate was commanded open and the relay did it."""
        return self.gate_commanded and self.gate_fault is None

    @property
    def opens_gate(self) -> bool:
        """Whether its crossing asks for the gate to open now (before the gate is commanded):
        never for a draft refused (nothing was decided)."""
        return self.refused is None and self.crossing.opens_gate(self.committed)

    def gate_answered(self, fault: DeviceFault | None) -> Outcome:
        """This outcome after the gate was commanded open, ``fault`` if the relay failed."""
        return dataclasses.replace(self, gate_commanded=True, gate_fault=fault)
