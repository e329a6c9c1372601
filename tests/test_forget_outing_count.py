"""A resident's forget on the day of their outing: the day's outing count is kept, the
household figures it cannot tell stay unknown (docs/privacy.md, *A resident's request*)."""

from __future__ import annotations

from zoneinfo import ZoneInfo

from guard_support import add_event

from kiosk.config.policy import QuotaConfig
from kiosk.people import Person, forget
from kiosk.stats import daily_report, freeze_days

QUOTA = QuotaConfig(enabled=True, exits=1, period_days=2)


def _today(core, clock):
    return clock.now().astimezone(ZoneInfo(core.config.site.timezone)).date()


def _report(core, day):
    return daily_report(core.store.reader(), day, core.config.site.timezone, QUOTA)


def _the_day(guard_core, clock):
    """Zhao Min (1-101) out twice, a neighbour (2-202) once, one pass out the gate did not
    open for (no outing), then Zhao Min's forget the same day."""
    add_event(guard_core, direction="out", holder="Zhao Min", household="1-101", pass_id="a" * 12)
    clock.advance(3600)
    add_event(guard_core, direction="out", holder="Zhao Min", household="1-101", pass_id="a" * 12)
    clock.advance(3600)
    add_event(guard_core, direction="out", holder="Qian Hong", household="2-202", pass_id="b" * 12)
    day = _today(guard_core, clock)
    before = _report(guard_core, day)["exits_per_household"]
    forget(guard_core.store, Person.of(name="Zhao Min", household="1-101"), clock.now(), actor="t")
    return day, before


def test_a_forget_on_the_day_keeps_the_days_outing_count(guard_core, clock):
    """Before: every outing figure of the day was null for good once the forget emptied the
    resident's outings (their household gone, the day not frozen yet): the count of outings,
    which names nobody, too. The rows keep their direction, decision and flags: counted."""
    day, before = _the_day(guard_core, clock)
    assert before["exits"] == 3
    after = _report(guard_core, day)["exits_per_household"]
    assert after["exits"] == 3
    # Whose the two emptied outings were is what the forget erased: households, how many
    # each, the most, who was over the quota cannot be told.
    assert [after[k] for k in ("households", "histogram", "max", "over_quota_households")] == [
        None
    ] * 4
    clock.advance(2 * 86400)
    freeze_days(guard_core.store, guard_core.config.site.timezone, QUOTA, clock.now())
    assert _report(guard_core, day)["exits_per_household"] == after


def test_an_emptied_outing_the_gate_did_not_open_for_is_no_outing(guard_core, clock):
    first = add_event(
        guard_core, direction="out", holder="Zhao Min", household="1-101", pass_id="a" * 12
    )
    add_event(
        guard_core,
        direction="out",
        decision="deny",
        reasons=("gate_fault",),
        holder="Zhao Min",
        household="1-101",
        pass_id="a" * 12,
        flags=(f"not_opened:{first.seq}",),
    )
    day = _today(guard_core, clock)
    forget(guard_core.store, Person.of(name="Zhao Min", household="1-101"), clock.now(), actor="t")
    after = _report(guard_core, day)["exits_per_household"]
    assert (after["exits"], after["households"], after["over_quota_households"]) == (0, 0, 0)


def test_the_console_says_the_outings_counted_and_the_households_unknown(
    guard_client, guard_core, clock
):
    from guard_support import login

    day, _ = _the_day(guard_core, clock)
    login(guard_client)
    page = guard_client.get(f"/guard/stats?day={day.isoformat()}").text
    summary = page.split('id="exits-summary">')[1].split("</p>")[0]
    assert summary.startswith("外出 3 次，外出住户数不明")


def test_forgetting_a_visitor_adds_no_outing(guard_core, clock):
    """A visitor's exit named no household: never anyone's outing. Before, once the forget
    emptied it, it was taken for an outing whose household was gone: one exit more and the
    households unknown."""
    add_event(guard_core, direction="out", holder="Qian Hong", household="2-202", pass_id="b" * 12)
    clock.advance(600)
    add_event(guard_core, direction="out", holder="Visitor Li", pass_id="c" * 12)
    day = _today(guard_core, clock)
    forget(guard_core.store, Person.of(pass_ids=["c" * 12]), clock.now(), actor="t")
    after = _report(guard_core, day)["exits_per_household"]
    assert (after["exits"], after["households"], after["over_quota_households"]) == (1, 1, 0)


def test_forgetting_a_guards_pass_for_nobody_adds_no_outing(guard_core, clock):
    """A guard's manual pass for a person without a pass naming no household (``unchecked``)."""
    add_event(guard_core, direction="out", holder="Qian Hong", household="2-202", pass_id="b" * 12)
    clock.advance(600)
    add_event(
        guard_core,
        direction="out",
        decision="manual_pass",
        reasons=("ok",),
        holder="Wang Fang",
        flags=("unchecked",),
    )
    day = _today(guard_core, clock)
    forget(guard_core.store, Person.of(name="Wang Fang"), clock.now(), actor="t")
    after = _report(guard_core, day)["exits_per_household"]
    assert (after["exits"], after["households"], after["over_quota_households"]) == (1, 1, 0)
