from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from kiosk import base45
from kiosk.config.policy import PolicySection
from kiosk.config.thermometer import ThermometryConfig
from kiosk.history import PassageHistory
from kiosk.lists import Freshness, Household, Lists, QuarantineEntry, Revocation
from kiosk.passes import PREFIX, TrustList, issue_pass
from kiosk.policy import REASONS, PassageInputs, PolicyState, decide, should_remeasure
from kiosk.thermometry import Temperature

TZ = ZoneInfo("Asia/Shanghai")
NOW = datetime(2026, 3, 2, 2, 0, tzinfo=UTC)  # 10:00 in Shanghai
THERMO = ThermometryConfig()
KEY = Ed25519PrivateKey.from_private_bytes(b"\x33" * 32)
STRANGER = Ed25519PrivateKey.from_private_bytes(b"\x44" * 32)
TRUST = TrustList([("office", KEY.public_key())])

GOOD, GOOD_PASS = issue_pass(KEY, "1-1", "Wang L", "resident", 30, now=NOW - timedelta(days=1))
STAFF, STAFF_PASS = issue_pass(KEY, "1-1", "Chen", "staff", 30, now=NOW - timedelta(days=1))
OBSERVED, _ = issue_pass(
    KEY, "3-3", "Zhou", "resident", 30, now=NOW - timedelta(days=1), flags=["observation"]
)
EXPIRED, _ = issue_pass(KEY, "1-1", "Wang L", "resident", 30, now=NOW - timedelta(days=31))
EARLY, _ = issue_pass(KEY, "1-1", "Wang L", "resident", 30, now=NOW + timedelta(hours=2))
UNKNOWN, _ = issue_pass(STRANGER, "1-1", "Wang L", "resident", 30, now=NOW)
_record = base45.decode(GOOD[len(PREFIX) :])
FORGED = PREFIX + base45.encode(_record[:-64] + bytes(64))
ONE_DAY = (NOW.astimezone(TZ).date(), NOW.astimezone(TZ).date())


def temp(body_c: float | None = 36.6, status: str = "ok") -> Temperature:
    return Temperature(status, body_c, None if body_c is None else body_c - 2.0, 22.0, None)


FEVER = temp(38.2)
NORMAL = temp(36.6)


@dataclass
class Case:
    code: str | None = GOOD
    temperature: Temperature | None = field(default_factory=lambda: NORMAL)
    direction: str = "out"
    cfg: dict = field(default_factory=dict)
    lists: Lists = field(default_factory=Lists)
    history: list[tuple] = field(default_factory=list)  # (pass_id, household, dir, decision, ts)
    now: datetime = NOW
    reader_fault: bool = False
    store_fault: bool = False
    gate_fault: bool = False
    observing: object | None = None
    direction_trusted: bool = True
    clock_synced: bool = True


def run(case: Case):
    history = PassageHistory()
    for row in case.history:
        history.record(*row)
    inputs = PassageInputs(
        case.direction,
        case.code,
        case.temperature,
        case.reader_fault,
        case.store_fault,
        gate_fault=case.gate_fault,
        direction_trusted=case.direction_trusted,
        clock_synced=case.clock_synced,
    )
    cfg = PolicySection.model_validate(case.cfg)
    state = PolicyState(TRUST, case.lists, history, case.observing)
    return decide(inputs, state, case.now, cfg, THERMO, TZ)


QUARANTINED_1_1 = Lists.build(quarantine=[QuarantineEntry("1-1", None, *ONE_DAY)])
#: The office's lists, last heard of three days ago: 1-1's quarantine ended yesterday.
ENDED_OFFLINE = Lists.build(
    quarantine=[
        QuarantineEntry("1-1", None, ONE_DAY[0] - timedelta(days=9), ONE_DAY[0] - timedelta(days=1))
    ],
    freshness=Freshness(
        NOW - timedelta(days=3), "bundle", 1, bundle_applied_at=NOW - timedelta(days=3)
    ),
)
EXIT = (GOOD_PASS.pass_id, "1-1", "out", "pass", NOW - timedelta(hours=5))
RECENT_OUT = (GOOD_PASS.pass_id, "1-1", "out", "pass", NOW - timedelta(minutes=1))
QUOTA_ON = {"quota": {"enabled": True, "exits": 1, "period_days": 1}}
HOURS_ON = {"hours": {"enabled": True, "open_at": "08:30", "close_at": "17:30", "mode": "closed"}}
STAFFED = {"hours": {"enabled": True, "open_at": "08:30", "close_at": "17:30"}}
NIGHT = NOW + timedelta(hours=12)  # 22:00 in Shanghai


class Observing:
    """The returnee ledger's snapshot: Wang L of 1-1 is under observation."""

    def observing(self, household, holder, day):
        return household == "1-1" and holder == "Wang L"


# rule name, case, decision, reasons, needs_guard, alarm, flags
TABLE = [
    ("all checks pass", Case(), "pass", ("ok",), False, None, ()),
    (
        "a quarantine that ended after the last sync of stale lists: the guard decides",
        Case(lists=ENDED_OFFLINE),
        "deny",
        ("quarantine_unconfirmed",),
        True,
        None,
        ("lists_stale",),
    ),
    (
        "a pass not valid yet by a clock NTP has not set: the guard decides",
        Case(code=EARLY, clock_synced=False),
        "deny",
        ("pass_not_yet_valid",),
        True,
        None,
        ("clock_not_set", "clock_not_set:pass_not_yet_valid"),
    ),
    (
        "a quarantine starting after the date of a clock NTP has not set: the guard decides",
        Case(
            clock_synced=False,
            lists=Lists.build(
                quarantine=[
                    QuarantineEntry(
                        "1-1", None, ONE_DAY[0] + timedelta(days=1), ONE_DAY[0] + timedelta(days=9)
                    )
                ],
                freshness=Freshness(NOW, "bundle", 1, bundle_applied_at=NOW),
            ),
        ),
        "deny",
        ("quarantine_unconfirmed",),
        True,
        None,
        ("clock_not_set", "clock_not_set:quarantine_unconfirmed"),
    ),
    (
        "store fault denies by default",
        Case(store_fault=True),
        "deny",
        ("store_fault",),
        False,
        "device_fault",
        (),
    ),
    (
        "a relay that does not answer: nobody is passed through it, the guard lets them by",
        Case(gate_fault=True),
        "deny",
        ("gate_fault",),
        True,
        "device_fault",
        (),
    ),
    (
        "store fault may ask the guard",
        Case(store_fault=True, cfg={"on_store_fault": "manual"}),
        "deny",
        ("store_fault",),
        True,
        "device_fault",
        (),
    ),
    (
        "reader fault asks the guard",
        Case(code=None, reader_fault=True),
        "deny",
        ("reader_fault",),
        True,
        "device_fault",
        (),
    ),
    (
        "reader fault may deny outright",
        Case(code=None, reader_fault=True, cfg={"on_reader_fault": "deny"}),
        "deny",
        ("reader_fault",),
        False,
        "device_fault",
        (),
    ),
    ("no code presented", Case(code=None), "deny", ("no_pass",), False, None, ()),
    ("malformed pass", Case(code="hello"), "deny", ("pass_malformed",), False, None, ()),
    (
        "pass from an unknown key",
        Case(code=UNKNOWN),
        "deny",
        ("pass_unknown_key",),
        False,
        None,
        (),
    ),
    (
        "forged pass alarms the guard",
        Case(code=FORGED),
        "deny",
        ("pass_bad_signature",),
        True,
        "forged_pass",
        (),
    ),
    ("pass not yet valid", Case(code=EARLY), "deny", ("pass_not_yet_valid",), False, None, ()),
    ("expired pass", Case(code=EXPIRED), "deny", ("pass_expired",), False, None, ()),
    (
        "revoked pass",
        Case(lists=Lists.build(revocations=[Revocation(GOOD_PASS.pass_id, "lost")])),
        "deny",
        ("pass_revoked",),
        False,
        None,
        (),
    ),
    (
        "quarantined household may not go out",
        Case(lists=QUARANTINED_1_1),
        "deny",
        ("quarantined",),
        True,
        "quarantine_breach",
        (),
    ),
    (
        "quarantined household may come home, guard alerted",
        Case(lists=QUARANTINED_1_1, direction="in"),
        "pass",
        ("ok",),
        False,
        "quarantine_return",
        ("quarantine",),
    ),
    (
        "quarantined coming home by a screen button needs the guard",
        Case(lists=QUARANTINED_1_1, direction="in", direction_trusted=False),
        "deny",
        ("quarantined",),
        True,
        "quarantine_return",
        ("direction_unverified",),
    ),
    (
        "quarantine blocking both directions",
        Case(lists=QUARANTINED_1_1, direction="in", cfg={"quarantine_blocks": "both"}),
        "deny",
        ("quarantined",),
        True,
        "quarantine_breach",
        (),
    ),
    (
        "person quarantine spares the rest of the household",
        Case(
            code=STAFF, lists=Lists.build(quarantine=[QuarantineEntry("1-1", "Wang L", *ONE_DAY)])
        ),
        "pass",
        ("ok",),
        False,
        None,
        (),
    ),
    (
        "quarantine over yesterday no longer applies (lists synced this morning)",
        Case(
            lists=Lists.build(
                quarantine=[
                    QuarantineEntry(
                        "1-1", None, date(2026, 2, 1), NOW.astimezone(TZ).date() - timedelta(days=1)
                    )
                ],
                freshness=Freshness(NOW - timedelta(hours=2), "bundle", 1, confirmed_at=NOW),
            )
        ),
        "pass",
        ("ok",),
        False,
        None,
        (),
    ),
    (
        "household quota used up",
        Case(cfg=QUOTA_ON, history=[EXIT]),
        "deny",
        ("quota_exceeded",),
        False,
        None,
        (),
    ),
    (
        "quota counts exits of the whole household",
        Case(code=GOOD, cfg=QUOTA_ON, history=[("otherpass", "1-1", "out", "pass", NOW)]),
        "deny",
        ("quota_exceeded",),
        False,
        None,
        (),
    ),
    (
        "quota never limits coming home",
        Case(cfg=QUOTA_ON, history=[EXIT], direction="in"),
        "pass",
        ("ok",),
        False,
        None,
        (),
    ),
    (
        "quota spares staff by default",
        Case(code=STAFF, cfg=QUOTA_ON, history=[EXIT]),
        "pass",
        ("ok",),
        False,
        None,
        ("quota_exempt",),  # and their exit is not the household's outing
    ),
    (
        "staff coming in are flagged too: a guard letting them out is no outing either",
        Case(code=STAFF, cfg=QUOTA_ON, history=[EXIT], direction="in"),
        "pass",
        ("ok",),
        False,
        None,
        ("quota_exempt",),
    ),
    (
        "quota period over",
        Case(cfg=QUOTA_ON, history=[EXIT], now=NOW + timedelta(hours=20)),
        "pass",
        ("ok",),
        False,
        None,
        (),
    ),
    (
        "soft passback lets through and flags",
        Case(history=[RECENT_OUT], cfg={"passback": {"mode": "soft"}}),
        "pass",
        ("ok",),
        False,
        None,
        ("passback",),
    ),
    (
        "hard passback denies and calls the guard",
        Case(history=[RECENT_OUT], cfg={"passback": {"mode": "hard", "window_min": 2}}),
        "deny",
        ("passback",),
        True,
        None,
        (),
    ),
    (
        "passback is per direction",
        Case(history=[RECENT_OUT], direction="in"),
        "pass",
        ("ok",),
        False,
        None,
        (),
    ),
    (
        "passback off lets a copied pass through",
        Case(history=[RECENT_OUT], cfg={"passback": {"enabled": False, "mode": "hard"}}),
        "pass",
        ("ok",),
        False,
        None,
        (),
    ),
    (
        "passback window over",
        Case(history=[RECENT_OUT], cfg={"passback": {"mode": "hard", "window_min": 1}}),
        "pass",
        ("ok",),
        False,
        None,
        (),
    ),
    (
        "outside opening hours",
        Case(cfg=HOURS_ON, now=NOW + timedelta(hours=8)),
        "deny",
        ("outside_hours",),
        False,
        None,
        (),
    ),
    (
        "opening hours for going out only",
        Case(
            cfg={"hours": {**HOURS_ON["hours"], "applies_to": "out"}},
            direction="in",
            now=NOW + timedelta(hours=8),
        ),
        "pass",
        ("ok",),
        False,
        None,
        (),
    ),
    ("fever denies and alarms", Case(temperature=FEVER), "deny", ("fever",), True, "fever", ()),
    (
        "fever threshold is inclusive",
        Case(temperature=temp(THERMO.fever_threshold_c)),
        "deny",
        ("fever",),
        True,
        "fever",
        (),
    ),
    (
        "implausible reading",
        Case(temperature=temp(30.0, "implausible")),
        "deny",
        ("temp_implausible",),
        False,
        None,
        (),
    ),
    (
        "air outside the calibration's trusted range: the guard checks by hand, no alarm",
        Case(temperature=Temperature("implausible", 36.0, 30.0, 6.0, "air_out_of_range")),
        "deny",
        ("air_out_of_range",),
        False,
        None,
        (),
    ),
    (
        "no temperature measured",
        Case(temperature=temp(None, "no_temperature")),
        "deny",
        ("no_temperature",),
        False,
        None,
        (),
    ),
    (
        "no temperature given at all",
        Case(temperature=None),
        "deny",
        ("no_temperature",),
        False,
        None,
        (),
    ),
    (
        "sensor fault asks the guard",
        Case(temperature=temp(None, "fault")),
        "deny",
        ("sensor_fault",),
        True,
        "device_fault",
        (),
    ),
    (
        "sensor fault may deny outright",
        Case(temperature=temp(None, "fault"), cfg={"on_sensor_fault": "deny"}),
        "deny",
        ("sensor_fault",),
        False,
        "device_fault",
        (),
    ),
    (
        "temperature-only mode ignores the pass",
        Case(code=None, cfg={"mode": "temperature_only"}),
        "pass",
        ("ok",),
        False,
        None,
        (),
    ),
    (
        "temperature-only mode still checks fever",
        Case(code="junk", temperature=FEVER, cfg={"mode": "temperature_only"}),
        "deny",
        ("fever",),
        True,
        "fever",
        (),
    ),
    (
        "pass-only mode ignores the thermometer",
        Case(temperature=temp(None, "fault"), cfg={"mode": "pass_only"}),
        "pass",
        ("ok",),
        False,
        None,
        (),
    ),
    (
        "pass-only mode still checks the pass",
        Case(code=EXPIRED, cfg={"mode": "pass_only"}),
        "deny",
        ("pass_expired",),
        False,
        None,
        (),
    ),
    (
        "observation household is flagged for the guard",
        Case(code=OBSERVED),
        "pass",
        ("ok",),
        False,
        None,
        ("observation",),
    ),
    (
        "ledger observation is flagged too",
        Case(lists=Lists.build(households=[Household("1-1", 2, ONE_DAY[0])])),
        "pass",
        ("ok",),
        False,
        None,
        ("observation",),
    ),
    (
        "a returnee under observation is flagged only, by default",
        Case(observing=Observing()),
        "pass",
        ("ok",),
        False,
        None,
        ("observation",),
    ),
    (
        "a returnee under observation does not go out where the site says so",
        Case(observing=Observing(), cfg={"observation_blocks": "out"}),
        "deny",
        ("under_observation",),
        False,
        None,
        ("observation",),
    ),
    (
        "a returnee under observation comes home",
        Case(observing=Observing(), cfg={"observation_blocks": "out"}, direction="in"),
        "pass",
        ("ok",),
        False,
        None,
        ("observation",),
    ),
    (
        "staffed hours: the kiosk lets a resident out alone at night",
        Case(cfg=STAFFED, now=NIGHT),
        "pass",
        ("ok",),
        False,
        None,
        (),
    ),
    (
        "staffed hours: a fever at night is denied without waiting for a guard",
        Case(cfg=STAFFED, now=NIGHT, temperature=FEVER),
        "deny",
        ("no_guard_on_duty", "fever"),
        False,
        "fever",
        (),
    ),
    (
        "staffed hours: a quarantined resident comes home at 08:00 through the entry lane",
        Case(cfg=STAFFED, now=NOW - timedelta(hours=2), direction="in", lists=QUARANTINED_1_1),
        "pass",
        ("ok",),
        False,
        "quarantine_return",
        ("quarantine",),
    ),
    (
        "staffed hours: 'in' by a screen button at 08:00 is denied with where to call",
        Case(
            cfg=STAFFED,
            now=NOW - timedelta(hours=2),
            direction="in",
            direction_trusted=False,
            lists=QUARANTINED_1_1,
        ),
        "deny",
        ("quarantined", "no_guard_on_duty"),
        False,
        "quarantine_return",
        ("direction_unverified",),
    ),
    (
        "staffed hours: the same resident going out at 08:00 is denied, nobody to call over",
        Case(cfg=STAFFED, now=NOW - timedelta(hours=2), lists=QUARANTINED_1_1),
        "deny",
        ("quarantined", "no_guard_on_duty"),
        False,
        "quarantine_breach",
        (),
    ),
]


@pytest.mark.parametrize(
    ("case", "decision", "reasons", "needs_guard", "alarm", "flags"),
    [pytest.param(*row[1:], id=row[0]) for row in TABLE],
)
def test_each_rule_gives_its_reason(case, decision, reasons, needs_guard, alarm, flags):
    got = run(case)
    assert (got.decision, got.reasons) == (decision, reasons)
    # Every pass's decision records its role (``role:<role>``, the quota's later judge).
    found = tuple(f for f in got.flags if not f.startswith("role:"))
    assert len(got.flags) - len(found) <= 1
    assert (got.needs_guard, got.alarm, found) == (needs_guard, alarm, flags)


def test_the_plausible_range_holds_both_its_ends():
    """43.00 degC read is a fever (alarm, guard), not an implausible reading to measure again;
    the lowest plausible body is a reading, and a hundredth outside either end is not."""
    top = run(Case(temperature=temp(THERMO.plausible_max_c)))
    assert (top.reasons, top.alarm, top.needs_guard) == (("fever",), "fever", True)
    low = run(Case(temperature=temp(THERMO.plausible_min_c)))
    assert (low.decision, low.reasons) == ("pass", ("ok",))
    for body in (THERMO.plausible_max_c + 0.01, THERMO.plausible_min_c - 0.01):
        assert run(Case(temperature=temp(body))).reasons == ("temp_implausible",)


def test_a_pass_is_valid_from_its_first_second_and_expired_at_its_valid_until():
    got = run(Case(now=GOOD_PASS.valid_until))
    assert (got.decision, got.reasons) == ("deny", ("pass_expired",))
    last = GOOD_PASS.valid_until - timedelta(seconds=1)
    assert run(Case(now=last)).reasons == ("ok",)
    assert run(Case(now=GOOD_PASS.valid_from)).reasons == ("ok",)
    before = GOOD_PASS.valid_from - timedelta(seconds=1)
    assert run(Case(now=before)).reasons == ("pass_not_yet_valid",)


def test_passback_is_hard_by_default_a_copied_pass_is_denied():
    got = run(Case(history=[RECENT_OUT]))
    assert got.decision == "deny" and got.reasons == ("passback",) and got.needs_guard


def test_the_table_covers_every_reason_code():
    covered = {reason for row in TABLE for reason in row[3]}
    assert covered == set(REASONS) | {"ok"}


def test_every_failed_rule_is_listed_not_just_the_first():
    case = Case(
        code=EXPIRED,
        temperature=FEVER,
        cfg={**QUOTA_ON, **HOURS_ON, "passback": {"mode": "hard"}},
        lists=Lists.build(
            revocations=[Revocation(GOOD_PASS.pass_id)],
            quarantine=[QuarantineEntry("1-1", None, *ONE_DAY)],
        ),
        history=[
            (
                TRUST.verify(EXPIRED).pass_id,
                "1-1",
                "out",
                "pass",
                NOW + timedelta(hours=8) - timedelta(seconds=30),
            )
        ],
        now=NOW + timedelta(hours=8),
        store_fault=True,
    )
    got = run(case)
    assert got.reasons == (
        "store_fault",
        "pass_expired",
        "quarantined",
        "quota_exceeded",
        "passback",
        "outside_hours",
        "fever",
    )
    assert got.alarm == "fever" and got.needs_guard
    assert got.pass_ is not None and got.pass_.household == "1-1"


def test_a_pass_that_fails_verification_carries_no_pass_but_temperature_still_counts():
    got = run(Case(code=FORGED, temperature=FEVER))
    assert got.pass_ is None
    assert got.reasons == ("pass_bad_signature", "fever")
    assert got.alarm == "fever"


def test_another_reader_delivering_a_code_outweighs_a_reader_fault():
    assert run(Case(reader_fault=True)).reasons == ("ok",)


def test_decide_is_pure_same_inputs_same_decision():
    case = Case(cfg=QUOTA_ON, history=[EXIT])
    assert run(case) == run(case)


_STATUSES = st.sampled_from(["ok", "implausible", "no_temperature", "fault", "weird"])
_BODIES = st.one_of(
    st.none(),
    st.floats(allow_nan=True, allow_infinity=True),
    st.floats(min_value=30, max_value=45),
)


@given(status=_STATUSES, body=_BODIES)
def test_a_bad_reading_never_becomes_a_pass(status, body):
    got = run(Case(temperature=Temperature(status, body, None, None, None)))  # type: ignore[arg-type]
    if got.decision == "pass":
        assert status == "ok"
        assert body is not None and math.isfinite(body)
        assert THERMO.plausible_min_c <= body < THERMO.fever_threshold_c


def test_should_remeasure_once_on_fever_and_once_on_implausible():
    fever = run(Case(temperature=FEVER))
    assert should_remeasure(fever, THERMO, set()) == "fever"
    assert should_remeasure(fever, THERMO, {"fever"}) is None
    no_remeasure = ThermometryConfig(remeasure_on_fever=False)
    assert should_remeasure(fever, no_remeasure, set()) is None
    odd = run(Case(temperature=temp(30.0, "implausible")))
    assert should_remeasure(odd, THERMO, set()) == "implausible"
    assert should_remeasure(odd, THERMO, {"implausible"}) is None
    assert should_remeasure(run(Case()), THERMO, set()) is None


# --------------------------------------------------------------------------- stateful


class GateMachine(RuleBasedStateMachine):
    """Residents of two households come and go while time passes. The model is the list of
    committed passes; the invariants are the rules' promises, checked on every step."""

    EXITS, PERIOD_DAYS, WINDOW_MIN = 2, 1, 30

    def __init__(self) -> None:
        super().__init__()
        self.now = NOW
        self.history = PassageHistory()
        self.passed: list[tuple[str, str, str, datetime]] = []  # pass_id, household, dir, ts
        self.passes = {}
        for household, holder in (("1-1", "A"), ("1-1", "B"), ("2-2", "C")):
            payload, p = issue_pass(KEY, household, holder, "resident", 60, now=NOW)
            self.passes[payload] = p

    @initialize(mode=st.sampled_from(["hard", "soft"]))
    def choose_mode(self, mode):
        self.mode = mode
        self.cfg = PolicySection.model_validate(
            {
                "quota": {"enabled": True, "exits": self.EXITS, "period_days": self.PERIOD_DAYS},
                "passback": {"enabled": True, "mode": mode, "window_min": self.WINDOW_MIN},
            }
        )

    @rule(minutes=st.one_of(st.sampled_from([0, 1, 29, 30, 31]), st.integers(0, 26 * 60)))
    def time_passes(self, minutes):
        self.now += timedelta(minutes=minutes)

    @rule(index=st.integers(0, 2), direction=st.sampled_from(["in", "out"]))
    def someone_scans(self, index, direction):
        payload = list(self.passes)[index]
        p = self.passes[payload]
        state = PolicyState(TRUST, Lists(), self.history)
        got = decide(
            PassageInputs(direction, payload, NORMAL), state, self.now, self.cfg, THERMO, TZ
        )
        window = timedelta(minutes=self.WINDOW_MIN)
        recent_same = any(
            pid == p.pass_id and d == direction and self.now - ts < window
            for pid, _, d, ts in self.passed
        )
        exits = sum(
            1
            for _, hh, d, ts in self.passed
            if hh == p.household and d == "out" and self.now - ts < timedelta(days=self.PERIOD_DAYS)
        )
        over_quota = direction == "out" and exits >= self.EXITS
        assert ("quota_exceeded" in got.reasons) == over_quota
        if self.mode == "hard":
            assert ("passback" in got.reasons) == recent_same
        else:
            assert "passback" not in got.reasons
            assert ("passback" in got.flags) == recent_same
        assert (got.decision == "pass") == (set(got.reasons) == {"ok"})
        if got.decision == "pass":
            self.history.record(p.pass_id, p.household, direction, "pass", self.now)
            self.passed.append((p.pass_id, p.household, direction, self.now))

    @invariant()
    def quota_never_exceeded_in_any_period(self):
        outs: dict[str, list[datetime]] = {}
        for _, hh, d, ts in self.passed:
            if d == "out":
                outs.setdefault(hh, []).append(ts)
        period = timedelta(days=self.PERIOD_DAYS)
        for times in outs.values():
            for i, t in enumerate(times):
                assert sum(1 for u in times[: i + 1] if t - u < period) <= self.EXITS

    @invariant()
    def hard_passback_never_lets_a_pass_through_twice_in_the_window(self):
        if getattr(self, "mode", None) != "hard":
            return
        last: dict[tuple[str, str], datetime] = {}
        for pid, _, d, ts in self.passed:
            previous = last.get((pid, d))
            assert previous is None or ts - previous >= timedelta(minutes=self.WINDOW_MIN)
            last[(pid, d)] = ts


GateMachine.TestCase.settings = settings(max_examples=40, stateful_step_count=30, deadline=None)
TestGateMachine = GateMachine.TestCase
TestGateMachine.pytestmark = [pytest.mark.slow]


# A night guard: staffed 20:00-08:00 (a span across midnight), or volunteers by day and the
# night guard after them (two spans), on the site's clock.
NIGHT_SHIFT = {"enabled": True, "open_at": "20:00", "close_at": "08:00"}
TWO_SPANS = {"enabled": True, "spans": ["08:30-17:30", "20:00-08:00"]}


def _at(local_hm: str, day: date = date(2026, 3, 2), tz: ZoneInfo = TZ) -> datetime:
    hour, minute = (int(x) for x in local_hm.split(":"))
    return datetime(day.year, day.month, day.day, hour, minute, tzinfo=tz).astimezone(UTC)


@pytest.mark.parametrize(
    ("hours", "local", "inside"),
    [
        (NIGHT_SHIFT, "20:00", True),
        (NIGHT_SHIFT, "23:59", True),
        (NIGHT_SHIFT, "00:00", True),
        (NIGHT_SHIFT, "07:59", True),
        (NIGHT_SHIFT, "08:00", False),
        (NIGHT_SHIFT, "12:00", False),
        (NIGHT_SHIFT, "19:59", False),
        (TWO_SPANS, "07:59", True),
        (TWO_SPANS, "08:10", False),
        (TWO_SPANS, "08:30", True),
        (TWO_SPANS, "12:00", True),
        (TWO_SPANS, "17:30", False),
        (TWO_SPANS, "19:59", False),
        (TWO_SPANS, "20:00", True),
        (TWO_SPANS, "03:00", True),
    ],
)
def test_closed_hours_across_midnight_let_through_inside_them_only(hours, local, inside):
    case = Case(cfg={"hours": {**hours, "mode": "closed"}}, now=_at(local))
    assert run(case).reasons == (("ok",) if inside else ("outside_hours",))


@pytest.mark.parametrize(("local", "on_duty"), [("03:00", True), ("12:00", False)])
def test_a_night_guard_is_on_duty_after_midnight_and_not_at_noon(local, on_duty):
    decision = run(Case(cfg={"hours": NIGHT_SHIFT}, now=_at(local), temperature=FEVER))
    assert decision.needs_guard is on_duty
    assert ("no_guard_on_duty" in decision.reasons) is (not on_duty)
    assert decision.alarm == "fever"


def test_night_hours_are_read_on_the_local_clock_across_a_daylight_saving_change():
    """Berlin, the spring change (2027-03-28: 02:00 CET is 03:00 CEST): a night span
    22:00-02:30 closes as the clock jumps past 02:30; the autumn one (2027-10-31) repeats
    02:00-03:00: 22:00-02:30 ends at the first 02:30 (``kiosk.days.span_on``, as the roster's
    stretches and a peer's closed hours), so the second 02:15 is outside."""
    berlin = ZoneInfo("Europe/Berlin")
    cfg = PolicySection.model_validate(
        {
            "mode": "temperature_only",  # no pass runs that long: the hours alone decide
            "hours": {"enabled": True, "open_at": "22:00", "close_at": "02:30", "mode": "closed"},
        }
    )

    def reasons(when: datetime) -> tuple[str, ...]:
        inputs = PassageInputs("out", GOOD, NORMAL)
        state = PolicyState(TRUST, Lists(), PassageHistory())
        return decide(inputs, state, when, cfg, THERMO, berlin).reasons

    assert reasons(datetime(2027, 3, 28, 0, 59, tzinfo=UTC)) == ("ok",)  # 01:59 CET
    assert reasons(datetime(2027, 3, 28, 1, 0, tzinfo=UTC)) == ("outside_hours",)  # 03:00 CEST
    assert reasons(datetime(2027, 10, 31, 0, 15, tzinfo=UTC)) == ("ok",)  # 02:15 CEST
    assert reasons(datetime(2027, 10, 31, 1, 15, tzinfo=UTC)) == ("outside_hours",)  # 02:15 CET
    assert reasons(datetime(2027, 10, 31, 1, 45, tzinfo=UTC)) == ("outside_hours",)  # 02:45


@pytest.mark.parametrize(
    "spans", [["20:00-02:30"], ["02:30-10:00"], ["22:00-02:15", "02:40-10:00"]]
)
def test_a_guard_is_on_duty_exactly_while_the_staffed_stretch_holds_on_the_autumn_night(spans):
    """Berlin, 2024-10-27 (02:00-03:00 twice). The guard's session runs by the staffed
    stretches (``kiosk.roster.staffed_stretches``: spans at ``local_at``'s instants), and
    ``decide`` asks ``guard_on_duty``: it read the wall clock, so in the second pass a span
    02:30-10:00 (begun at the first 02:30) was off duty while the guard was signed in, a
    fever denied outright with ``no_guard_on_duty``. Both now read spans one way."""
    from kiosk.policy import guard_on_duty
    from kiosk.roster import staffed_stretches

    berlin = ZoneInfo("Europe/Berlin")
    cfg = PolicySection.model_validate({"hours": {"enabled": True, "spans": spans}})
    start = datetime(2024, 10, 26, 23, 45, tzinfo=UTC)  # 01:45 CEST
    stretches = staffed_stretches(cfg.hours.windows(), berlin, start)
    for minutes in range(0, 181, 5):
        at = start + timedelta(minutes=minutes)
        held = any(a <= at < b for a, b in stretches)
        assert guard_on_duty(at, cfg, berlin) is held, at.astimezone(berlin)
