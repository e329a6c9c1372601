"""Bench section ``decide``: verify + decide time per passage (docs/bench.md: passages, median_us).

Realistic state, because lookups are what could grow: a trust list with three keys (one
rotation in progress), a thousand revocations, quarantine entries, a household ledger and a
passage history of several thousand recent events. Each timed passage is one ``decide`` call
(which verifies the pass) on a pre-read code, as the engine makes it. ``verify_median_us`` is
Ed25519 verification alone, measured in the same run, so the cost of the rules is visible as
the difference.
"""

from __future__ import annotations

import random
import statistics
import time
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from kiosk.config.policy import PolicySection
from kiosk.config.thermometer import ThermometryConfig
from kiosk.history import PassageHistory
from kiosk.lists import Household, Lists, QuarantineEntry, Revocation
from kiosk.passes import TrustList, issue_pass
from kiosk.policy import PassageInputs, PolicyState, decide
from kiosk.thermometry import Temperature


def _setup(n_passes: int, seed: int = 5) -> tuple[list[PassageInputs], PolicyState, datetime]:
    rng = random.Random(seed)
    now = datetime(2026, 3, 2, 2, 0, tzinfo=UTC)
    keys = [Ed25519PrivateKey.from_private_bytes(bytes([i]) * 32) for i in (1, 2, 3)]
    trust = TrustList((f"k{i}", k.public_key()) for i, k in enumerate(keys))
    codes = []
    for i in range(n_passes):
        payload, _ = issue_pass(
            keys[i % 2], f"{i % 300:03d}-{i % 7}", f"H{i}", "resident", 30,
            now=now - timedelta(days=1),
        )  # fmt: skip
        codes.append(payload)
    today = now.date()
    lists = Lists.build(
        revocations=[Revocation(f"{rng.getrandbits(48):012x}") for _ in range(1000)],
        quarantine=[
            QuarantineEntry(f"{i:03d}-{i % 7}", None, today, today + timedelta(days=14))
            for i in range(0, 300, 10)
        ],
        households=[Household(f"{i:03d}-{j}", 3) for i in range(300) for j in range(7)],
    )
    history = PassageHistory()
    for i in range(5000):
        history.record(
            f"{rng.getrandbits(48):012x}", f"{i % 300:03d}-{i % 7}", rng.choice(["in", "out"]),
            "pass", now - timedelta(minutes=rng.randint(1, 3 * 24 * 60)),
        )  # fmt: skip
    temperature = Temperature("ok", 36.6, 34.6, 22.0, None)
    inputs = [PassageInputs(rng.choice(["in", "out"]), code, temperature) for code in codes]
    return inputs, PolicyState(trust, lists, history), now


def run(quick: bool) -> dict[str, Any]:
    passages = 200 if quick else 1000
    repeats = 3 if quick else 7
    inputs, state, now = _setup(passages)
    cfg = PolicySection.model_validate(
        {"quota": {"enabled": True, "exits": 2}, "hours": {"enabled": True}}
    )
    thermo = ThermometryConfig()
    tz = ZoneInfo("Asia/Shanghai")
    decide_medians, verify_medians, p99s = [], [], []
    outcomes: dict[str, int] = {}
    for _ in range(repeats):
        times = []
        for item in inputs:
            t0 = time.perf_counter_ns()
            decision = decide(item, state, now, cfg, thermo, tz)
            times.append(time.perf_counter_ns() - t0)
            outcomes[decision.decision] = outcomes.get(decision.decision, 0) + 1
        decide_medians.append(statistics.median(times) / 1000)
        p99s.append(sorted(times)[int(len(times) * 0.99) - 1] / 1000)
        vtimes = []
        for item in inputs:
            t0 = time.perf_counter_ns()
            state.trust.verify(item.code)
            vtimes.append(time.perf_counter_ns() - t0)
        verify_medians.append(statistics.median(vtimes) / 1000)
    return {
        "passages": passages,
        "median_us": round(statistics.median(decide_medians), 1),
        "p99_us": round(statistics.median(p99s), 1),
        "verify_median_us": round(statistics.median(verify_medians), 1),
        "repeats": repeats,
        "denied_fraction": round(outcomes.get("deny", 0) / sum(outcomes.values()), 3),
    }
