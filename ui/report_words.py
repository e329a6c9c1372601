"""The daily report's words (统计报表) in zh-CN and English: one table for the console's report
page and every report file (the gate's ``kiosk report``, the console's ``report.{fmt}``, the
district's ``kiosk fleet report``).

The core builds the files (``kiosk.categories``) and holds no words: the callers above it hand
in ``words(lang)`` (``kiosk.categories.Words``). A file keeps its codes, numbers and dates
where they always were and adds the words beside them (``kiosk.categories.worded``); the reasons
are the screens' (``ui.i18n.reason_text``). English, the default, is the file as it always
was: its codes are its words (``file_words``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from kiosk.categories import Words
from kiosk.stats import as_of_text
from ui import i18n

__all__ = ["FILE_LANGS", "PAIRS", "as_of_line", "file_words", "words"]

#: The languages a report file is written in; ``en`` (the default) is the file as it always was.
FILE_LANGS = ("en", "zh-CN")

_SHEETS = {
    "sheet.daily report": ("日报", "daily report"),
    "sheet.by hour": ("按小时", "by hour"),
    "sheet.by reason": ("按原因", "by reason"),
    "sheet.by gate": ("按岗点", "by gate"),
    "sheet.compounds": ("按小区", "compounds"),
}
_COLUMNS = {
    "col.category": ("类别代码", "category"),
    "col.item": ("项目代码", "item"),
    "col.value": ("数值", "value"),
    "col.category.words": ("类别", "category (words)"),
    "col.item.words": ("项目", "item (words)"),
    "col.hour": ("小时", "hour"),
    "col.events": ("记录条数", "events"),
    "col.utc_offset": ("UTC 偏移", "utc_offset"),
    "col.reason": ("原因代码", "reason"),
    "col.reason.words": ("原因", "reason (words)"),
    "col.gate": ("岗点", "gate"),
    # the district's compounds sheet (``office.district.COMPOUND_COLUMNS``)
    "col.compound": ("小区", "compound"),
    "col.gates": ("岗点", "gates"),
    "col.quota_enabled": ("外出限额", "quota_enabled"),
    "col.quota_exits": ("每周期外出次数", "quota_exits"),
    "col.period_days": ("周期（天）", "period_days"),
    "col.roles": ("计入的身份", "roles"),
    "col.timezone": ("时区", "timezone"),
    "col.households": ("外出户数", "households"),
    "col.exits": ("外出次数", "exits"),
    "col.max": ("单户最多外出次数", "max"),
    "col.over_quota_households": ("超出限额户数", "over_quota_households"),
    "col.disagree": ("规则不一致的岗点", "disagree"),
    "col.unknown": ("无法计数的岗点", "unknown"),
    "col.peers_unlisted": ("未互相列出的岗点", "peers_unlisted"),
    "col.peers_outside": ("列出的外小区岗点", "peers_outside"),
    "col.id_missing": ("未设小区编号的岗点", "id_missing"),
    "col.peers_elsewhere": ("属于其他小区的岗点", "peers_elsewhere"),
    "col.undeclared": ("名单未列的小区", "undeclared"),
    # the district CSV's row of a compound's day whose quota changed (added 2026-12-07)
    "col.quota_changes": ("当日外出限额变更", "quota_changes"),
    # the words beside the compounds sheet's codes (``kiosk.categories.VALUE_COLUMNS``)
    "col.quota_enabled.words": ("外出限额（文字）", "quota_enabled (words)"),
    "col.roles.words": ("计入的身份（文字）", "roles (words)"),
    "col.quota_changes.words": ("当日外出限额变更（文字）", "quota_changes (words)"),
}
_KINDS = {
    "k.food": ("食品", "food"),
    "k.medicine": ("药品", "medicine"),
    "k.parcel": ("快递", "parcel"),
    "k.rubbish": ("垃圾", "rubbish"),
    "k.other": ("其他", "other"),
}
#: The report's categories and items (``r.CATEGORY``, ``r.CATEGORY.ITEM``).
_ITEMS = {
    "r.report": ("报表", "Report"),
    "r.report.day": ("日期", "Day"),
    "r.report.timezone": ("时区", "Time zone"),
    "r.report.frozen_timezone": (
        "留存时的时区（本机无此时区数据）",
        "Kept under (a zone this system lacks)",
    ),
    "r.report.scope": ("范围", "Scope"),
    "r.report.gates": ("岗点", "Gates"),
    "r.report.events": ("记录条数", "Events"),
    "r.report.as_of": ("生成时间", "Made at"),
    "r.report.passed": ("通过", "Passed"),
    "r.report.denied": ("拒绝", "Denied"),
    "r.report.fever_alarms": ("发热拒绝次数", "Fever refusals"),
    "r.report.events_complete": ("记录齐全", "Events complete"),
    "r.scope.gate": ("本岗点", "This gate"),
    "r.scope.district": ("全辖区", "The district"),
    "r.gate": ("岗点", "Gate"),
    "r.compound": ("小区", "Compound"),
    "r.events": ("记录条数", "Events"),
    "r.decisions": ("判定", "Decisions"),
    "r.decisions.pass": ("通过", "Pass"),
    "r.decisions.deny": ("拒绝", "Deny"),
    "r.decisions.manual_pass": ("人工放行", "Manual pass"),
    "r.decisions.manual_deny": ("人工拒绝", "Manual deny"),
    "r.by_decision": ("判定", "Decisions"),
    "r.by_decision.pass": ("通过", "Pass"),
    "r.by_decision.deny": ("拒绝", "Deny"),
    "r.by_decision.manual_pass": ("人工放行", "Manual pass"),
    "r.by_decision.manual_deny": ("人工拒绝", "Manual deny"),
    "r.passages": ("通行", "Passages"),
    "r.passages.total": ("合计", "Total"),
    "r.passages.passed": ("通过", "Passed"),
    "r.passages.denied": ("拒绝", "Denied"),
    "r.ledgers": ("台账", "Ledgers"),
    "r.ledgers.gates": ("已上报岗点", "Gates reporting"),
    "r.ledgers.missing": ("未上报岗点", "Gates missing"),
    "r.ledgers_not_final": ("台账非全天数字", "Ledger figures of a day not over"),
    "r.events_missing": ("记录可能不全", "Events that may be missing"),
    "r.no_figures": ("无台账数字", "No ledger figures"),
    "r.unreadable_rows": ("岗点有无法读取的记录", "Rows a gate cannot read"),
    "r.collector_down": ("办公室采集程序停止", "Office collector down"),
    "r.overrides": ("保安人工判定", "Guard decisions"),
    "r.overrides.registrations": (
        "人工登记（无闸口判定）",
        "Registered by hand (no kiosk decision)",
    ),
    "r.overrides.confirmed_denies": ("确认拒绝", "Denies confirmed"),
    "r.overrides.let_through_over_a_deny": ("拒绝后放行", "Let through over a deny"),
    "r.overrides.stopped_over_a_pass": ("通过后拦下", "Stopped over a pass"),
    "r.overrides.confirmed_passes": ("确认通过", "Passes confirmed"),
    "r.overrides.overriding": ("改判合计", "Overrides (the kiosk's decision changed)"),
    "r.people": ("人员进出", "People"),
    "r.people.in": ("进入", "In"),
    "r.people.out": ("外出", "Out"),
    "r.fevers": ("发热", "Fevers"),
    "r.fevers.gate": ("闸口测温", "At the gate"),
    "r.fevers.returnee_checks": ("返回人员测温", "Returnee checks"),
    "r.returnees": ("返回人员", "Returnees"),
    "r.returnees.new": ("新登记", "New"),
    "r.returnees.observing": ("观察中", "Observing"),
    "r.returnees.cleared": ("已解除", "Cleared"),
    "r.returnees.escalated": ("已上报", "Escalated"),
    "r.returnees.transferred": ("已转运", "Transferred"),
    "r.quarantined_households": ("居家隔离户数", "Quarantined households"),
    "r.registrations": ("人工登记人数", "People registered by hand"),
    "r.vehicles": ("车辆", "Vehicles"),
    "r.vehicles.registrations": ("车辆登记", "Registrations"),
    "r.vehicles.occupants": ("随车人数（不含司机）", "Passengers (not the driver)"),
    "r.vehicles.unknown_plates": ("非本小区车牌", "Unknown plates"),
    "r.service_requests": ("上门服务", "Service requests"),
    "r.unknown_dwellings": (
        "人工放行户号未核对（按所填户号记录）",
        "Manual passes, dwelling not checked (kept as typed)",
    ),
    "r.service_requests.opened": ("新提交", "Opened"),
    "r.service_requests.done": ("已完成", "Done"),
    "r.service_requests.open_at_end": ("日终未完成", "Open at the day's end"),
    "r.by_kind": ("按类别", "By kind"),
    "r.staffing": ("值守", "Staffing"),
    "r.staffing.hours": ("值守时段", "Staffed hours"),
    "r.staffing.staffed": ("有人值守", "Staffed"),
    "r.staffing.unstaffed": ("无人值守（机器自行判定）", "Unstaffed (the kiosk alone)"),
    "r.downtime": ("停机与故障", "Downtime"),
    "r.downtime.boots": ("开机次数（当日有记录）", "Boots that decided"),
    "r.downtime.restarts_total": ("重启次数", "Restarts"),
    "r.downtime.restart_minutes": ("重启间隔合计（分钟，至多）", "Minutes restarting (at most)"),
    "r.downtime.faults_total": ("设备故障段数", "Device fault spells"),
    "r.downtime.restarts": ("重启", "Restart"),
    "r.downtime.faults": ("设备故障", "Device fault"),
    "r.restarts.from": ("停机前最后一条记录", "Last event before"),
    "r.restarts.booted": ("重新开机", "Booted again"),
    "r.restarts.to": ("恢复后第一条记录", "First event after"),
    "r.restarts.minutes": ("间隔（分钟）", "Minutes between"),
    "r.restarts.kind": ("类型", "Kind"),
    "r.faults.reason": ("原因", "Reason"),
    "r.faults.from": ("起", "From"),
    "r.faults.to": ("止", "To"),
    "r.faults.events": ("记录条数", "Events"),
    "r.downtime.power_total": ("主机供电与降频段数", "Pi power spells"),
    "r.downtime.power": ("主机供电与降频", "Pi power"),
    "r.power.condition": ("情况", "Condition"),
    "r.power.from": ("起", "From"),
    "r.power.to": ("止", "To"),
    "r.power.minutes": ("时长（分钟）", "Minutes"),
    "r.power.flaps": ("期间反复次数", "Came back within it"),
    "r.power.dating": ("时间依据", "Dated by"),
    "r.exits_per_household": ("每户外出", "Outings per household"),
    "r.exits_per_household.quota_enabled": ("外出限额", "Quota on"),
    "r.exits_per_household.quota_exits": ("每周期外出次数", "Outings per period"),
    "r.exits_per_household.period_days": ("周期（天）", "Period (days)"),
    "r.exits_per_household.households": ("外出户数", "Households out"),
    "r.exits_per_household.exits": ("外出次数", "Outings"),
    "r.exits_per_household.max": ("单户最多外出次数", "Most outings of a household"),
    "r.exits_per_household.over_quota_households": ("超出限额户数", "Households over the quota"),
    "r.exits_per_household.quota_roles": ("计入限额的身份", "Whose outings count"),
    "r.exits_per_household.quota_changes": ("当日限额变更", "Quota changes during the day"),
}
#: A report's values that are codes (``kiosk.categories.value_words``): shown in words on
#: the page and beside their item in a file's words column, the value column unchanged.
_VALUES = {
    "v.yes": ("是", "Yes"), "v.no": ("否", "No"), "v.none": ("无", "None"),
    "v.off": ("关闭", "Off"), "v.unknown": ("未知", "Unknown"),
    "v.every role": ("所有身份", "Every role"), "v.role.resident": ("居民", "Resident"),
    "v.role.staff": ("工作人员", "Staff"), "v.role.delivery": ("快递/外卖", "Delivery"),
    "v.role.visitor": ("访客", "Visitor"), "v.list": ("、", ", "), "v.is": ("：", ": "),
}  # fmt: skip
#: A day's changed rules in Chinese (``kiosk.categories.changes_words``: ``start off; 12:00
#: 1 every 2 days (resident)`` said 开始时 关闭；12:00 每 2 天 1 次（居民）), added 2026-12-08;
#: none in English, where the sentence is shown as written.
_CHANGES_ZH = {
    "v.start": "开始时",
    "v.rule": "每 {days} 天 {exits} 次（{roles}）",
    "v.left_out.one": "（另有 1 条规则未列出）",
    "v.left_out": "（另有 {n} 条规则未列出）",
    "v.then": "；",
}
#: The words of the report's whole table: its sheets, columns, categories, items and values.
PAIRS: dict[str, tuple[str, str]] = {**_SHEETS, **_COLUMNS, **_KINDS, **_ITEMS, **_VALUES}
#: A day not over yet (``kiosk.stats.SO_FAR``).
_SO_FAR = (
    "当日尚未结束，以下为截至此时的数字",
    "the day has not ended, these are its figures so far",
)
#: A day that ended before the gate's log began (``kiosk.stats.BEFORE_LOG``).
_BEFORE_LOG = (
    "该日在本闸口日志开始之前已结束：没有记录，不是零",
    "the day ended before this gate's log began: nothing was kept, not a day of zeros",
)


def words(lang: str) -> Words:
    """The report's words in ``lang`` (``zh-CN``, else English): ``PAIRS``, the reasons in
    the screens' words (``reason.CODE``), ``so_far`` and ``before_log``; None for a key it has
    no words for."""
    at = 0 if lang == "zh-CN" else 1

    def word(key: str) -> str | None:
        if key.startswith("reason."):
            code = key.removeprefix("reason.")
            return i18n.reason_text(lang, code) if code in i18n.reason_codes() else None
        if key == "so_far":
            return _SO_FAR[at]
        if key == "before_log":
            return _BEFORE_LOG[at]
        if key in _CHANGES_ZH:
            return _CHANGES_ZH[key] if at == 0 else None
        pair = PAIRS.get(key)
        return None if pair is None else pair[at]

    return word


def file_words(lang: str | None) -> Words | None:
    """The words a report file in ``lang`` is written with: None for English or no choice
    (the default: the file as it always was, its codes its words); ``ValueError`` naming the
    languages for anything else."""
    if lang is None or lang == "en":
        return None
    if lang == "zh-CN":
        return words(lang)
    raise ValueError(f"lang: one of {', '.join(FILE_LANGS)}")


def as_of_line(report: Mapping[str, Any], lang: str) -> tuple[str, str] | None:
    """``(label, text)``, the line above a report shown in the console (its printable page,
    the statistics page, the export's figures sheet): when it was made and, for a day not
    over, that its figures are so far, in ``lang`` (``kiosk.stats.as_of_text``, the files'
    ``as_of`` row); None for a report not stamped."""
    said = words(lang)
    text = as_of_text(report, said)
    return None if text is None else (said("r.report.as_of") or "as_of", text)
