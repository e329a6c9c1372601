"""What the community pages share: their strings (``TEXT``, both languages, used in the
templates as ``tr("key")``), rendering with them, masking by role, form values, making one
ledger change (a refused change becomes ``BadInput``: back to the form, audited as refused;
a made one goes back to the page showing it saved), and imports previewed but not applied yet.
"""

from __future__ import annotations

import asyncio
import secrets
import threading
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Annotated, Any, Protocol, TypeVar

from fastapi import APIRouter, Depends, Path, Request
from fastapi.responses import HTMLResponse, Response
from starlette.datastructures import FormData

from kiosk.community import CommunityError, Role, mask_record
from kiosk.compound import ImportPlan
from kiosk.ledgers import Ledgers
from kiosk.listimport import ListPlan
from kiosk.lists import ListError
from kiosk.observation import Alarm as ObservationAlarm
from kiosk.vehicles import VehiclePlan
from ui.auth import Session
from ui.guard.deps import (
    ActionSession,
    Guard,
    GuardDep,
    PageSession,
    done,
    form_not_acted,
    note,
    room,
    signed_flash,
    wants_json,
)
from ui.guard.display import shown_time
from ui.guard.forms import BadInput, typed_number
from ui.report_words import PAIRS

__all__ = [
    "TEXT",
    "PREFIX",
    "RecordId",
    "Pending",
    "change",
    "drawn_again",
    "or_again",
    "save",
    "typed_of",
    "form_float",
    "form_int",
    "form_text",
]

PREFIX = "/guard/community"
PENDING_S = 900
#: Previews held at once (each a parsed upload of up to 5 MB): the oldest goes first.
PENDING_KEPT = 4
#: The ``msg=`` a page shows as saved.
SAVED = "saved"
#: A ledger record's number in a path: a positive SQLite integer (anything else is a 422,
#: never a number the database cannot take).
RecordId = Annotated[int, Path(ge=1, le=2**63 - 1)]

T = TypeVar("T")

#: The pages' strings: key → (zh-CN, en).
TEXT: dict[str, tuple[str, str]] = {
    "nav.overview": ("社区", "Community"),
    "nav.map": ("平面图", "Map"),
    "nav.returnees": ("返回人员", "Returnees"),
    "nav.services": ("上门服务", "Services"),
    "nav.handover": ("排班交接", "Roster & handover"),
    "nav.report": ("统计报表", "Daily report"),
    "nav.imports": ("导入名单", "Imports"),
    "on_duty": ("当班", "On duty"),
    "nobody": ("无人当班", "Nobody on duty"),
    "duty_unknown": (
        "时钟尚未校准，无法判断谁当班",
        "The clock is not set yet: who is on duty cannot be told",
    ),
    "alarms": ("待处理提醒", "Open alarms"),
    "gate_alarms": ("实时页面上待处理的门岗提醒：{n}", "Gate alarms open on the live page: {n}"),
    "missed_check": ("漏测体温", "Missed check"),
    "fever": ("发热", "Fever"),
    "due": ("观察期满待解除", "Due for clearing"),
    "open_requests": ("未完成服务", "Open requests"),
    "st.quarantined": ("居家隔离", "Quarantined"),
    "st.observing": ("居家观察", "Observing"),
    "st.quota_used": ("外出次数已用完", "Outing quota used up"),
    "st.open_request": ("有服务请求", "Open request"),
    "building": ("楼栋", "Building"),
    "unit": ("单元", "Unit"),
    "floor": ("楼层", "Floor"),
    "household": ("住户", "Household"),
    "passages": ("通行记录", "Passages"),
    "people": ("人员", "People"),
    "requests": ("服务请求", "Requests"),
    "name": ("姓名", "Name"),
    "phone": ("电话", "Phone"),
    "origin": ("来自", "From"),
    "date_back": ("返回日期", "Back on"),
    "until": ("观察至", "Observed until"),
    "status": ("状态", "Status"),
    "days": ("天数", "Days"),
    "note": ("备注", "Note"),
    "register": ("登记", "Register"),
    "correct": ("更正登记", "Correct"),
    # a correction refused because the record changed since, redrawn on it as it is now
    "merged.kept": (
        "已保留您的修改：{fields}；其他各项为记录现值。",
        "Your changes kept: {fields}; the other fields are the record as it is now.",
    ),
    "merged.none": (
        "您未做修改；表单为记录现值。",
        "You changed nothing; the form shows the record now.",
    ),
    "merged.both": ("双方都修改了：", "Changed by both:"),
    "merged.now": ("现为", "now"),
    "merged.choose": (
        "表单中为您的值，确认后再保存",
        "the form has yours: choose, then save again",
    ),
    "temperature": ("体温", "Temperature"),
    "record": ("记录", "Record"),
    "acknowledge": ("确认", "Acknowledge"),
    "s.observing": ("观察中", "observing"),
    "s.cleared": ("已解除", "cleared"),
    "s.escalated": ("已上报", "escalated"),
    "s.transferred": ("已转运", "transferred"),
    "kind": ("类别", "Kind"),
    "open": ("提交", "Open"),
    "take": ("接单", "Take"),
    "done": ("完成", "Done"),
    "cancel": ("取消", "Cancel"),
    "taken_by": ("接单人", "Taken by"),
    "q.open": ("待接单", "Open"),
    "q.taken": ("已接单", "Taken"),
    "q.done": ("已完成", "Done"),
    "q.cancelled": ("已取消", "Cancelled"),
    "opened_at": ("提交时间", "Opened"),
    "state": ("进度", "State"),
    "shift": ("班次", "Shift"),
    "guard": ("保安", "Guard"),
    "starts": ("开始", "Starts"),
    "ends": ("结束", "Ends"),
    "add_shift": ("添加班次", "Add shift"),
    "remove_shift": ("删除班次", "Remove shift"),
    "more_shifts": (
        "另有 {n} 个班次（{after} 之后开始）未列出：本页最多列出 {cap} 个",
        "{n} more shifts (starting after {after}) are not listed: the page lists {cap} at most",
    ),
    "handover": ("交接", "Handover"),
    "incoming": ("接班人", "Incoming guard"),
    "open_handover": ("发起交接", "Open handover"),
    "since": ("自", "Since"),
    "complete": ("交接完成", "Complete"),
    "waiting": ("待确认", "Waiting"),
    "h.open_alarms": ("待处理提醒", "Open alarms"),
    "h.fevers": ("发热", "Fevers"),
    "h.quarantine_returns": ("隔离人员返回", "Quarantine returns"),
    "h.quarantine_breaches": ("隔离人员被拦", "Quarantine breach attempts"),
    "h.overrides": ("保安改判", "Guard overrides"),
    "h.new_returnees": ("新返回人员", "New returnees"),
    "h.registrations": ("人工登记", "Registrations"),
    "h.vehicles": ("车辆", "Vehicles"),
    "h.open_requests": ("未完成服务", "Open requests"),
    "h.clock_stepped_back": (
        "时钟曾被调回：计数可能含上次交接已计入的部分",
        "Clock was set back: counts may include what the last handover covered",
    ),
    "day": ("日期", "Day"),
    "show": ("显示", "Show"),
    "print": ("打印", "Print"),
    "category": ("类别", "Category"),
    "item": ("项目", "Item"),
    "value": ("数值", "Value"),
    "file": ("文件", "File"),
    "list_kind": ("名单", "List"),
    "preview": ("预览变更", "Preview changes"),
    "apply": ("确认导入", "Apply"),
    "added": ("新增", "Added"),
    "changed": ("修改", "Changed"),
    "removed": ("删除", "Removed"),
    "unchanged": ("不变", "Unchanged"),
    "sheet_read": ("读取的工作表", "Sheet read"),
    "header_line": ("表头所在行", "Header on line"),
    "skipped_title": ("跳过（表头上方）", "Skipped (above the header)"),
    "skipped_footer": (
        "跳过（表格下方：合计、制表人等）",
        "Skipped (below the table: totals, signatures)",
    ),
    "skipped_hidden": ("跳过（表中隐藏或筛选掉的行）", "Skipped (hidden or filtered out)"),
    "columns_taken": ("各列读作", "Columns read as"),
    "columns_not_kept": ("未导入的列（不保存）", "Columns not imported (not kept)"),
    "nothing": ("暂无", "None"),
    "saved": ("已保存", "Saved"),
    "admin_only": ("仅管理员", "Admins only"),
    "time": ("时间", "Time"),
    "xlsx": ("导出 Excel", "Export .xlsx"),
    "csv": ("导出 CSV", "Export CSV"),
    "xlsx_zh": ("导出 Excel（中文标签）", "Export .xlsx (Chinese labels)"),
    "csv_zh": ("导出 CSV（中文标签）", "Export CSV (Chinese labels)"),
    # the daily report's sheets, columns, categories and items (``ui.report_words``: the
    # exports' words too) and the service requests' kinds
    **PAIRS,
}


def translator(lang: str) -> Callable[..., str]:
    index = 0 if lang == "zh-CN" else 1

    def tr(key: str, **params: Any) -> str:
        pair = TEXT.get(key)
        text = pair[index] if pair else key
        return text.format(**params) if params else text

    return tr


def ledgers(g: Guard) -> Ledgers:
    return g.core.ledgers


def render(g: Guard, request: Request, name: str, session: Session, **ctx: Any) -> HTMLResponse:
    """``Guard.render`` with the pages' strings (``tr``), their success note (``?msg=saved``)
    and the problem a refused change was sent back with (``?err=``), each shown only when this
    process signed it (``signed_flash``): a link from anyone else cannot put words in the
    banner, nor say a change was saved."""
    lang = g.lang(request)
    saved = signed_flash(request).get("msg") == SAVED
    base = {
        "here": None if request.method == "GET" else page_path(name),
        "tr": translator(lang),
        "local": lambda iso, seconds=False: site_time(g, iso, seconds),
        "flash_ok": translator(lang)("saved") if saved else None,
        "flash_err": g.flash(request)["flash_err"],
    }
    return g.render(request, name, session, **{**base, **ctx})


def page_path(name: str) -> str:
    """The address of the community page drawn by template ``name``: where a page drawn in
    answer to a form (an import's preview) leads its language and sign-in links back to (the
    form's target answers no GET)."""
    key = name.removeprefix("community_").removesuffix(".html")
    return PREFIX if key == "overview" else f"{PREFIX}/{key}"


@dataclass(frozen=True)
class OpenAlarms:
    """The alarms open now as the handover counts them (its ``open_alarms``,
    docs/community.md): the returnee ledger's (``returnee``: listed, and acknowledged, on the
    community pages) and the live console's (``gate``: fevers, quarantine, passes, devices;
    counted here, closed on ``/guard``)."""

    returnee: list[ObservationAlarm]
    gate: int

    @property
    def total(self) -> int:
        return len(self.returnee) + self.gate


def open_alarms(g: Guard) -> OpenAlarms:
    """What is open now (blocking: two reads)."""
    return OpenAlarms(ledgers(g).observation.alarms(), len(g.open_alarms()))


def on_duty(g: Guard) -> dict[str, Any]:
    """Who holds a shift at this gate now (``on_duty``), and ``clock_unset``: the clock is not
    synchronised, so "now" is what it reads (1970 on a Pi booted without network, the last
    shutdown's time after a power cut): no shift found is then not "nobody on duty"."""
    shifts = ledgers(g).roster.on_duty(g.cfg.site.kiosk_id)
    return {"on_duty": [s.to_dict() for s in shifts], "clock_unset": not g.core.clock.synced()}


#: How the community pages show a stored time (``site_time``): to the minute, or the second.
SITE_MINUTES, SITE_SECONDS = "%Y-%m-%d %H:%M", "%Y-%m-%d %H:%M:%S"


def site_time(g: Guard, iso: str, seconds: bool = True) -> str:
    """A stored UTC time as the site reads it: ``YYYY-MM-DD HH:MM[:SS]`` in its time zone (the
    manager types shifts in local time; a guard never converts from UTC); a time the autumn
    change repeats with its UTC offset after it (``shown_time``)."""
    return shown_time(iso, g.tz, SITE_SECONDS if seconds else SITE_MINUTES)


def role(g: Guard, session: Session) -> Role:
    if not g.cfg.web.mask_personal or session.is_admin:
        return "admin"
    return "guard"


def masked(g: Guard, session: Session, record: dict[str, Any]) -> dict[str, Any]:
    return mask_record(record, role(g, session))


def admin(g: Guard, session: Session) -> Session:
    """Only an admin (the manager) may: 403 for anyone else."""
    return g.auth.admin_action(session)


def admin_session(session: ActionSession, g: GuardDep) -> Session:
    """For the manager's actions: ``action_session``, and 403 for anyone but an admin (the
    refusal is audited with the guard's name)."""
    return admin(g, session)


AdminSession = Annotated[Session, Depends(admin_session)]


def community_room(page: str) -> APIRouter:
    """The router of a community page (``deps.room`` under ``PREFIX``)."""
    return room(page, prefix=PREFIX, tag="guard console: community")


def form_text(form: FormData, name: str) -> str:
    value = form.get(name)
    return value if isinstance(value, str) else ""


def form_int(form: FormData, name: str) -> int:
    try:
        return int(form_text(form, name)[:12])
    except ValueError:
        raise CommunityError(f"{name}: expected a whole number") from None


def form_float(form: FormData, name: str) -> float:
    try:
        return float(typed_number(form_text(form, name))[:32])
    except ValueError:
        raise CommunityError(f"{name}: expected a number") from None


async def change(fn: Callable[[], T]) -> T:
    """Make one ledger change off the loop (it writes through the event log's writer). A
    change the ledger refuses changed nothing (it checks everything before it writes) and
    becomes ``BadInput`` in the ledger's words."""
    try:
        return await asyncio.to_thread(fn)
    except (CommunityError, ListError) as exc:
        raise BadInput(str(exc)) from None


async def save(request: Request, page: str, fn: Callable[[], object]) -> Response:
    """Make one ledger change (``change``) and go back to ``page`` showing it saved."""
    await change(fn)
    return done(request, page, SAVED)


@dataclass(frozen=True)
class Refused:
    """A form drawn again after a refusal: its fields as ``typed`` and the problem's words
    (``FRESH``: a page drawn fresh, its forms empty)."""

    typed: dict[str, str] = field(default_factory=dict)
    error: str | None = None

    def context(self) -> dict[str, Any]:
        """The template's context: the forms' values, and the problem with status 400."""
        shown = {} if self.error is None else {"flash_err": self.error, "status_code": 400}
        return {"typed": self.typed} | shown


FRESH = Refused()

#: A page drawn again with a refused form as typed (``drawn_again``).
Again = Callable[[Request, Guard, Session, Refused], HTMLResponse]


class FormPage(Protocol):
    """A guard's page with a form that can be refused: drawn fresh, or ``refused``."""

    def __call__(
        self, request: Request, g: Guard, session: Session, refused: Refused = ...
    ) -> HTMLResponse: ...


def form_page(router: APIRouter, path: str) -> Callable[[FormPage], FormPage]:
    """``page`` drawn fresh at ``GET path`` of ``router``; it stays the function the route's
    forms are drawn ``again`` on when refused (``or_again``, ``save_or_again``)."""

    def register(page: FormPage) -> FormPage:
        def fresh(request: Request, session: PageSession, g: GuardDep) -> Response:
            return page(request, g, session)

        name = f"{page.__module__.rsplit('.', 1)[-1]}_page"
        router.add_api_route(
            path, fresh, methods=["GET"], response_class=HTMLResponse, name=name,
            include_in_schema=False,
        )  # fmt: skip
        return page

    return register


def typed_of(form: FormData, fields: tuple[str, ...], bound: int = 500) -> dict[str, str]:
    """The form's ``fields`` as typed (each bounded: ``bound``, at least the longest a field
    takes, or a form carrying them on would send them cut), to draw the form again with."""
    return {k: str(form.get(k) or "")[:bound] for k in fields}


async def drawn_again(
    request: Request, g: Guard, session: Session, problem: BadInput, typed: dict[str, str],
    again: Again,
) -> HTMLResponse:  # fmt: skip
    """The one way every guard form that can be refused comes back: the page (``again``)
    with the form ``typed`` as sent and the problem, status 400, never an empty form the
    guard types again at the gate. The refusal is audited by the route class (``refused``:
    the problem's key, never the text); the form did not act, so its one-time token is
    free again (``deps.form_not_acted``). A script's (JSON) refusal, or a problem with its
    own page (``BadInput.shown``), is raised on to the route class as before."""
    if wants_json(request) or problem.shown is not None:
        raise problem
    note(request, refused=problem.code)
    form_not_acted(request)
    refused = Refused(typed, problem.text(g.lang(request)))
    return await asyncio.to_thread(again, request, g, session, refused)


async def or_again(
    request: Request, g: Guard, session: Session, act: Callable[[], Awaitable[Response]], *,
    typed: dict[str, str], again: Again,
) -> Response:  # fmt: skip
    """``act`` (the form's action); refused (``BadInput``), the form ``drawn_again``."""
    try:
        return await act()
    except BadInput as problem:
        return await drawn_again(request, g, session, problem, typed, again)


async def save_or_again(
    request: Request, g: Guard, session: Session, page: str, fn: Callable[[], object], *,
    form: FormData, fields: tuple[str, ...], again: Again,
) -> Response:  # fmt: skip
    """``save``; a refusal comes back on the page (``again``) with the form's ``fields`` as
    typed and the problem (``drawn_again``)."""
    typed = typed_of(form, fields)
    return await or_again(
        request, g, session, lambda: save(request, page, fn), typed=typed, again=again
    )


#: A checked import of the compound map, the resident vehicles or one of the lists.
Plan = ImportPlan | VehiclePlan | ListPlan


class Pending:
    """Imports previewed and not applied yet: kept in memory for ``PENDING_S``, per guard,
    the latest ``PENDING_KEPT`` of them; dropped once expired by the next preview or the
    daemon's hourly purge (``expire``), whichever comes first. ``now`` is the monotonic
    clock in seconds (a step of the wall clock, NTP on a Pi booted without network, neither
    ages a preview nor keeps it)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._items: dict[str, tuple[str, str, Plan, float]] = {}

    def __len__(self) -> int:
        with self._lock:
            return len(self._items)

    def expire(self, now: float) -> None:
        """Drop the previews whose time is over: a sheet nobody applied (names, households,
        plates) is not held until the next preview (the daemon's hourly purge calls it)."""
        with self._lock:
            self._items = {k: v for k, v in self._items.items() if v[3] > now}

    def put(self, owner: str, kind: str, plan: Plan, now: float) -> str:
        token = secrets.token_urlsafe(16)
        self.expire(now)
        with self._lock:
            while len(self._items) >= PENDING_KEPT:
                del self._items[next(iter(self._items))]
            self._items[token] = (owner, kind, plan, now + PENDING_S)
        return token

    def take(self, token: str, owner: str, now: float) -> tuple[str, Plan]:
        with self._lock:
            item = self._items.pop(token, None)
        if item is None or item[0] != owner or item[3] <= now:
            raise CommunityError("this preview has expired: upload the file again")
        return item[1], item[2]
