"""The district report's outing quota, counted per compound with the compound's own rule.

A household belongs to one compound: its outings at that compound's gates count together, and
its code ("3-201") is the compound's own, so another compound's 3-201 is another household.
Which gates are one compound is what the office's lists name it by: the gates' ``[compound]
id`` (``compound.id`` of each gate's daily report, kept by the collector with the gate's quota
policy, ``office.gatereports.gate_policy``, for that day). The gates reporting one id are one
compound. A gate reporting none (none configured, an older release) is grouped by what it
counts the quota with, its peers (``compound.peers``): joined by a peer either way to other
gates without an id, and to the compound of the one id its gates so joined are peers of (of
two, to neither); with no peers it is a compound of its own. Where the peers and the ids
differ the compound says so, never resolving it without a word: a gate of it whose peers
leave out another of its gates counts the quota without that gate's outings
(``peers_unlisted``; the office counts them together); a gate in it by its peers reports no
id (``id_missing``: it applies every compound's entries of the office's lists); a gate of it
lists a peer of another compound (``peers_elsewhere``: it counts that gate's outings, the
office does not). A peer the report holds nothing of (a gate the collector does not pull, one
left out by ``--kiosk``) is named too (``peers_outside``): its outings are not in the count.

A compound's rule is the one its gates report for the day (on or off, outings per period, the
period's days on the site's clock, the pass roles it counts). Gates that report different rules
disagree: the report names each one's rule (``disagree``) and counts by neither
(``over_quota_households`` null). A gate whose rule for the day is not held (no report, a gate
of an older release) is named in ``unknown``; the compound counts by its other gates' rule, or
not at all (null) when none is held. Two zone names whose clocks agree over the quota's period
(``Asia/Chongqing`` and ``Asia/Shanghai``) are one site clock (``kiosk.days.same_clock``).
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlite_utils import Database

from kiosk import stats
from kiosk.config.policy import QuotaConfig
from kiosk.days import same_clock
from kiosk.lists import same_text
from kiosk.record import PURGED_HOUSEHOLD

__all__ = [
    "GatePolicy",
    "compounds",
    "district_exits",
    "gate_policies",
    "identity",
    "json_text",
    "lookback_days",
    "undeclared",
    "unlisted",
]

Row = tuple[Any, ...]
#: A rule as shown, in this order (``timezone`` after them).
_SHOWN = ("enabled", "exits", "period_days", "roles")


@dataclass(frozen=True, slots=True)
class GatePolicy:
    """One gate's report for the day: its zone, quota (``None``: not said), peers and its
    ``[compound] id`` (casefolded; ``None``: none said)."""

    zone: str
    quota: dict[str, Any] | None
    peers: tuple[str, ...] | None
    compound: str | None = None
    #: The ``[compound] id`` it reported that the office's lists do not declare (a typo at
    #: the gate): no compound, the gate grouped as one reporting none (``compound`` None).
    undeclared: str | None = None


def _peers_and_id(policy: dict[str, Any]) -> tuple[tuple[str, ...] | None, str | None]:
    """A kept policy's peers and compound id: its ``id``, or for a report of a release that
    said only whose office entries it holds, ``lists_for`` (held only by a gate with that id)."""
    peers, named = policy.get("peers"), policy.get("id") or policy.get("lists_for")
    return (
        tuple(peers) if isinstance(peers, list) else None,
        same_text(named) if isinstance(named, str) else None,
    )


def gate_policies(
    rows: Iterable[Row], nearest: Iterable[Row] = (), declared: Iterable[str] | None = None
) -> dict[str, GatePolicy]:
    """``(kiosk_id, timezone, policy)`` rows of ``fleet_gate_reports`` (the policy as
    ``office.gatereports.gate_policy`` kept it, or None) by gate. ``nearest``: ``(kiosk_id,
    policy)`` of each gate's report nearest the day that names its peers, for a gate whose
    report of the day does not (the collector keeps a week): which gates are one compound
    changes seldom, and a compound split in its gates would count its households twice.
    ``declared``: the office's compounds (its lists' ``compounds``; None: not known, every id
    is taken): an id outside them makes no compound (``undeclared``)."""
    held = _gate_policies(rows, nearest)
    if declared is None:
        return held
    known = {same_text(c) for c in declared}
    return {
        g: GatePolicy(p.zone, p.quota, p.peers, None, p.compound)
        if p.compound is not None and p.compound not in known
        else p
        for g, p in held.items()
    }


def _gate_policies(rows: Iterable[Row], nearest: Iterable[Row]) -> dict[str, GatePolicy]:
    held: dict[str, GatePolicy] = {}
    for kiosk_id, policy in nearest:
        if isinstance(policy, dict) and isinstance(policy.get("peers"), list):
            held[kiosk_id] = GatePolicy("", None, *_peers_and_id(policy))
    for kiosk_id, zone, policy in rows:
        policy = policy if isinstance(policy, dict) else {}
        quota = policy.get("quota")
        peers, compound = _peers_and_id(policy)
        if peers is None and kiosk_id in held:
            peers, compound = held[kiosk_id].peers, held[kiosk_id].compound
        held[kiosk_id] = GatePolicy(
            zone, quota if isinstance(quota, dict) else None, peers, compound
        )
    return held


def compounds(gates: Iterable[str], held: dict[str, GatePolicy]) -> list[list[str]]:
    """The gates grouped into compounds (sorted): the gates reporting one ``[compound] id``
    are one; a gate reporting none is joined by a peer named either way, to gates without an
    id, and to the compound of the one id its gates so joined are peers of (of two, to
    neither: ``identity`` names them)."""
    parent = {g: g for g in gates}

    def root(g: str) -> str:
        while parent[g] != g:
            parent[g] = parent[parent[g]]
            g = parent[g]
        return g

    ids = {g: _id(g, held) for g in parent}
    first: dict[str, str] = {}
    for g in sorted(parent):
        if (own := ids[g]) is not None:
            parent[root(g)] = root(first.setdefault(own, g))
    edges = [
        (g, p) for g, policy in held.items() for p in policy.peers or ()
        if g in parent and p in parent
    ]  # fmt: skip
    for g, p in edges:
        if ids[g] is None and ids[p] is None:
            parent[root(g)] = root(p)
    touches: dict[str, set[str]] = {}
    for g, p in edges:
        for a, b in ((g, p), (p, g)):
            if ids[a] is None and (other := ids[b]) is not None:
                touches.setdefault(root(a), set()).add(other)
    for top, found in touches.items():
        if len(found) == 1:
            parent[top] = root(first[found.pop()])
    groups: dict[str, list[str]] = {}
    for g in sorted(parent):
        groups.setdefault(root(g), []).append(g)
    return sorted(groups.values())


def _id(gate: str, held: dict[str, GatePolicy]) -> str | None:
    return held[gate].compound if gate in held else None


def identity(
    gates: list[str], held: dict[str, GatePolicy], groups: list[list[str]]
) -> dict[str, Any]:
    """What the compound is known by and where its gates' word disagrees: ``id``, its gates'
    ``[compound] id`` (``None``: known by peers alone); ``id_missing``, its gates reporting
    no id (joined by peers); ``peers_elsewhere``, each peer its gates list that is a gate of
    another compound (``compound``: that one's id) — those gates count the quota with it,
    the office does not, and its lists tell the compounds' households apart."""
    named = {g: _id(g, held) for g in gates}
    compound = next((i for i in named.values() if i is not None), None)
    where = {g: i for i, group in enumerate(groups) for g in group}
    ids = [next((_id(g, held) for g in group if _id(g, held)), None) for group in groups]
    elsewhere = [
        {"kiosk_id": g, "peer": p, "compound": ids[where[p]]}
        for g in gates if g in held
        for p in held[g].peers or ()
        if p in where and p not in gates
    ]  # fmt: skip
    return {
        "id": compound,
        "id_missing": [] if compound is None else [g for g in gates if named[g] is None],
        "peers_elsewhere": elsewhere,
    }


def undeclared(gates: Iterable[str], held: dict[str, GatePolicy]) -> list[dict[str, Any]]:
    """The gates reporting a ``[compound] id`` the office does not declare, with that id."""
    return [
        {"kiosk_id": g, "compound": held[g].undeclared}
        for g in gates
        if g in held and held[g].undeclared is not None
    ]


def unlisted(gates: list[str], held: dict[str, GatePolicy]) -> list[dict[str, Any]]:
    """The compound's gates whose ``[[compound.peers]]`` (as reported) leave out another of its
    gates: that gate's quota and passback count without the other's passages."""
    out = []
    for g in gates:
        peers = held[g].peers if g in held else None
        missing = [o for o in gates if o != g and o not in (peers or ())]
        if peers is not None and missing:
            out.append({"kiosk_id": g, "missing": missing})
    return out


def lookback_days(held: dict[str, GatePolicy], quota_cfg: QuotaConfig | None) -> int:
    """The longest quota period any gate (or the caller's ``quota_cfg``) counts, the day's
    rules before a change during it too (``quota_changes``)."""
    if quota_cfg is not None:
        return quota_cfg.period_days
    rules = [r for p in held.values() if p.quota for r in [p.quota, *p.quota.get("changes", ())]]
    return max((int(r["period_days"]) for r in rules), default=1)


@dataclass(slots=True)
class _Rule:
    quota: QuotaConfig | None = None
    site: ZoneInfo | None = None
    shown: dict[str, Any] | None = None
    disagree: list[dict[str, Any]] | None = None
    unknown: list[str] | None = None
    unlisted: list[dict[str, Any]] | None = None
    outside: list[str] | None = None
    identity: dict[str, Any] | None = None
    #: The roles whose exits are outings, by gate (``_counted_roles``).
    roles: dict[str, tuple[str, ...] | None] | None = None
    #: The quotas in force during the day when its gates' changed during it
    #: (``kiosk.stats.QuotaRules``: their reports' ``quota_changes``), else None.
    rules: stats.QuotaRules | None = None
    #: Each gate's own rules when they changed during the day (``rules`` set): a change comes
    #: into force at each gate when it restarts.
    by_gate: dict[str, stats.QuotaRules] | None = None
    #: ``rules`` as shown (the gates' ``quota_changes`` as the office keeps them), else None.
    changes: list[dict[str, Any]] | None = None
    #: The rules its gates' reports left out of their ``quota_changes`` (more than
    #: ``kiosk.stats.MAX_QUOTA_CHANGES`` in the day), the most of any gate, else None: its
    #: outings cannot be judged by the rule in force when each was made.
    left_out: int | None = None


def _zone(name: str) -> ZoneInfo | None:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):  # OSError: 'Asia', a folder
        return None


def _rule(
    gates: list[str], held: dict[str, GatePolicy], window: tuple[datetime, datetime]
) -> _Rule:
    """The compound's rule from its gates' reports: one, disagreeing ones, or none."""
    told: dict[str, tuple[GatePolicy, ZoneInfo]] = {}
    for g in gates:
        zone = _zone(held[g].zone) if g in held and held[g].quota else None
        if zone is not None:
            told[g] = (held[g], zone)
    rule = _Rule(disagree=[], unknown=[g for g in gates if g not in told])
    quotas = [held[g].quota for g in gates if g in held]  # a zone unknown here too
    left_out = [int(q.get("changes_left_out") or 0) for q in quotas if q]
    rule.left_out = max(left_out, default=0) or None
    rules = [(p.quota or {}, zone) for p, zone in told.values()]
    agree = all(
        _same_rule(q, quota)
        and _same_changes(q.get("changes"), quota.get("changes"))
        and (not quota["enabled"] or same_clock(zone, z, *window))
        for i, (quota, zone) in enumerate(rules)
        for q, z in rules[:i]
    )  # each pair: a gate that says no changes agrees with gates whose changes differ
    if not agree:
        rule.disagree = [
            {
                "kiosk_id": g,
                "quota": {k: (p.quota or {}).get(k) for k in _SHOWN} | {"timezone": p.zone},
                "quota_changes": (p.quota or {}).get("changes"),
            }
            for g, (p, _) in told.items()
        ]
    elif rules:
        quota, zone = next(((q, z) for q, z in rules if q.get("changes")), rules[0])
        roles = next((q["roles"] for q in _told_quotas(told) if q.get("roles")), None)
        rule.quota = QuotaConfig(
            enabled=quota["enabled"], exits=quota["exits"], period_days=quota["period_days"]
        )
        if roles is not None:
            rule.quota = rule.quota.model_copy(update={"roles": tuple(roles)})
        rule.site, rule.shown = zone, _given(rule.quota, zone).shown
        rule.rules, rule.changes = _changed_rules(quota.get("changes")), quota.get("changes")
        if rule.rules is not None:  # each gate's outings by its own rules
            changed = {g: (p.quota or {}).get("changes") for g, (p, _) in told.items()}
            rule.by_gate = {g: own for g, c in changed.items() if (own := _changed_rules(c))}
            rule.unknown = [*(rule.unknown or []), *sorted(set(told) - set(rule.by_gate))]
    return rule


#: How far apart two gates' changes of their quota may come into force and be one change: a
#: fleet config push restarts a compound's gates in turn, seconds or minutes apart.
SAME_CHANGE = timedelta(minutes=15)


def _same_changes(a: list[dict[str, Any]] | None, b: list[dict[str, Any]] | None) -> bool:
    """Whether two gates' quotas changed alike during the day (``quota_changes``): the same
    rules in the same order, each in force from within ``SAME_CHANGE`` of the other's. A gate
    that says none (an older release's report says its last rule only) agrees with any
    (``_same_rule`` holds its rule to the other's last): its rule before is not held, it is
    named ``unknown`` and its outings judged by the other's. Each gate's outings are judged
    by its own rules."""
    if not a or not b:
        return True
    if len(a) != len(b):
        return False
    for x, y in zip(a, b, strict=True):
        if not _same_rule(x, y) or (x["from"] is None) != (y["from"] is None):
            return False
        if x["from"] is not None:
            apart = datetime.fromisoformat(x["from"]) - datetime.fromisoformat(y["from"])
            if abs(apart) > SAME_CHANGE:
                return False
    return True


def _changed_rules(changes: list[dict[str, Any]] | None) -> stats.QuotaRules | None:
    """The quotas in force during the day, each from when (``office.gatereports`` checked
    them), of a gate whose rule changed during it; None when it did not."""
    if not changes:
        return None
    return [
        (datetime.fromisoformat(c["from"]) if c["from"] else None, _quota_config(c))
        for c in changes
    ]


def _quota_config(rule: dict[str, Any]) -> QuotaConfig:
    """A rule as a gate reported it (``office.gatereports``) as the quota it counts by."""
    return QuotaConfig(
        enabled=rule["enabled"],
        exits=rule["exits"],
        period_days=rule["period_days"],
        **({"roles": tuple(rule["roles"])} if rule.get("roles") else {}),
    )


def _counted_roles(
    gates: list[str], rule: _Rule, held: dict[str, GatePolicy]
) -> dict[str, tuple[str, ...] | None]:
    """The roles each gate's exits are outings by, for the day's count
    (``kiosk.stats.DayOutings``): the compound's rule's, the one its over-quota count reads;
    without one (its gates disagree, or did not say), each gate's as it reported them (None:
    not said, each exit as judged when it was made)."""
    if rule.quota is not None:
        return dict.fromkeys(gates, tuple(rule.quota.roles))
    told = {g: (held[g].quota or {}).get("roles") if g in held else None for g in gates}
    return {g: tuple(roles) if roles else None for g, roles in told.items()}


def _same_rule(a: dict[str, Any], b: dict[str, Any]) -> bool:
    """Whether two gates' quotas are one rule: with the quota off its numbers count for
    nothing; the roles counted, when both gates say (a report frozen before: ``None``)."""
    if not (a["enabled"] and b["enabled"]):
        return bool(a["enabled"] == b["enabled"])
    if (a["exits"], a["period_days"]) != (b["exits"], b["period_days"]):
        return False
    roles = a.get("roles"), b.get("roles")
    return None in roles or roles[0] == roles[1]


def _told_quotas(told: dict[str, tuple[GatePolicy, ZoneInfo]]) -> list[dict[str, Any]]:
    return [p.quota for p, _ in told.values() if p.quota]


def _given(quota_cfg: QuotaConfig, zone: ZoneInfo) -> _Rule:
    shown: dict[str, Any] = {"enabled": quota_cfg.enabled, "exits": quota_cfg.exits}
    shown |= {"period_days": quota_cfg.period_days, "roles": sorted(quota_cfg.roles)}
    shown["timezone"] = zone.key
    return _Rule(quota_cfg, zone, shown, [], [])


def _compound_exits(
    gates: list[str],
    rule: _Rule,
    day_rows: list[Row],
    count: Callable[[list[str], _Rule, set[str]], int | None],
    masked: Callable[[Row], bool],
) -> dict[str, Any]:
    """One compound's outings on the day (``day_rows``: the district's) and its households
    over its quota, by the gate's own rules: its day's outings counted as the gate's report
    counts them (``kiosk.stats.DayOutings``: one no one's here, ``masked``, masked or purged,
    is counted, and leaves the households unknown), its look-back's no one's outings unknown
    only where they could put a household over (``count``: ``stats.over_quota_households``)."""
    outings = stats.DayOutings(  # the over-quota count's roles, of each rule of the day
        by_gate=rule.roles, rules=rule.rules, rules_by_gate=rule.by_gate
    )
    for r in day_rows:
        if r[1] in gates:
            outings.count(
                {
                    "seq": r[0],
                    "kiosk_id": r[1],
                    "ts": r[2],
                    "direction": r[3],
                    "decision": r[4],
                    "household": PURGED_HOUSEHOLD if (gone := masked(r)) else r[7],
                    "flags": json_text(r[10]),
                    "purged": gone,
                }  # fmt: skip
            )
    exits = outings.exits
    known = rule.identity or {}
    entry: dict[str, Any] = {
        "gates": gates, "id": known.get("id"), "quota": rule.shown,
        "quota_changes": _shown_changes(rule.changes),
        "disagree": rule.disagree, "unknown": rule.unknown,
        "peers_unlisted": rule.unlisted, "peers_outside": rule.outside,
        "id_missing": known.get("id_missing"), "peers_elsewhere": known.get("peers_elsewhere"),
        "households": len(exits), "exits": exits.total(), "histogram": Counter(exits.values()),
    }  # fmt: skip
    if rule.left_out:  # added 2026-12-07, only when a gate's report abridged its day's rules:
        # its outings (the roles counted) and who is over are judged by rules not all held
        entry["quota_changes_left_out"] = rule.left_out
        stats.unknown_outings(entry)
        return entry
    if not exits or (rule.quota is not None and not rule.quota.enabled and not rule.rules):
        entry["over_quota_households"] = 0
    elif rule.quota is None or rule.site is None:  # no rule held, or rules that disagree
        entry["over_quota_households"] = None
    else:
        over = count(gates, rule, set(exits))
        entry["over_quota_households"] = over
    return outings.unknown(entry)


def _shown_changes(changes: list[dict[str, Any]] | None) -> list[dict[str, Any]] | None:
    """The rules in force during the day when they changed during it, as a rule is shown
    (``from``: UTC, None for the one in force when the day began), else None."""
    if not changes:
        return None
    return [{"from": c["from"], **{k: c.get(k) for k in _SHOWN}} for c in changes]


def json_text(value: object) -> str | None:
    """A JSON field of a row as its text: the district reads them as text (``::text``, nothing
    decoded to be encoded again); a decoded value (a list, a mapping) is encoded."""
    if value is None or isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False)


def _sum(values: list[Any]) -> Any:
    return None if any(v is None for v in values) else sum(values)


def district_exits(
    section: dict[str, Any],
    groups: list[list[str]],
    held: dict[str, GatePolicy],
    quota_cfg: QuotaConfig | None,
    when: tuple[date, ZoneInfo, datetime, datetime],
    day_rows: list[Row],
    db: Database,
    masked: Callable[[Row], bool],
) -> dict[str, Any]:
    """``exits_per_household`` across the district: each compound's (``compounds``) summed,
    every compound listed with its rule. ``when``: the day, the zone it is cut in, and the
    quota's look-back window; ``day_rows``: the day's rows (``masked``: an outing no one's
    here, masked or purged); ``db``: every row read, the look-back's too, an events table
    each compound's gates' rows are read from (its no one's outings held as purged ones)."""
    day, zone, since, until = when

    def count(gates: list[str], rule: _Rule, households: set[str]) -> int | None:
        site = rule.site
        if rule.quota is None or site is None:  # no rule held (_compound_exits counts none)
            return None
        clock = None if same_clock(site, zone, since, until) else site
        return stats.over_quota_households(
            db, day, zone, rule.quota, households, clock, gates, rule.rules, rule.by_gate
        )

    in_report = {g for gates in groups for g in gates}
    entries = []
    for gates in groups:
        rule = _given(quota_cfg, zone) if quota_cfg else _rule(gates, held, (since, until))
        rule.unlisted = unlisted(gates, held)
        named = {p for g in gates if g in held for p in held[g].peers or ()}
        rule.outside = sorted(named - in_report)
        rule.identity = identity(gates, held, groups)
        rule.roles = _counted_roles(gates, rule, held)
        entry = _compound_exits(gates, rule, day_rows, count, masked)
        entries.append(entry | {"undeclared": undeclared(gates, held)})
    return _roll_up(section, entries)


def _roll_up(section: dict[str, Any], entries: list[dict[str, Any]]) -> dict[str, Any]:
    histogram: Counter[int] = Counter()
    for entry in entries:
        histogram.update(entry["histogram"] or {})
    known = [e["histogram"] for e in entries]
    rules = [e["quota"] for e in entries]
    on = {(q["exits"], q["period_days"]) for q in rules if q and q["enabled"]}
    enabled = True if on else (None if None in rules else False)
    section |= {
        "quota_enabled": enabled,
        "households": _sum([e["households"] for e in entries]),
        "exits": _sum([e["exits"] for e in entries]),
        "histogram": None if None in known else {str(k): v for k, v in sorted(histogram.items())},
        "max": None if None in known else max(histogram, default=0),
        "over_quota_households": _sum([e["over_quota_households"] for e in entries]),
    }
    if len(on) == 1:
        section["quota_exits"], section["period_days"] = next(iter(on))
    elif on or enabled is None:
        section["quota_exits"] = section["period_days"] = None
    for entry in entries:
        entry["histogram"] = (
            None if entry["histogram"] is None
            else {str(k): v for k, v in sorted(entry["histogram"].items())}
        )  # fmt: skip
    section["compounds"] = entries
    return section
