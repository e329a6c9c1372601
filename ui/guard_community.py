"""The guard console's community pages: the compound map, returnees, household services,
roster and handover, the daily report in the office's categories, and list imports.

``router(core, auth)`` returns an ``APIRouter`` under ``/guard/community``; ``auth`` is the
guard console's ``GuardAuth`` (the same sign-in). The ledgers are ``core.extras["ledgers"]``
when the composition root made them, else built here on ``core.store`` (their tables are
created idempotently through the store's writer). Routes only translate HTTP to the ledgers
(``kiosk.ledgers``) and back; every change is audited by the ledger with the guard's name.

Personal data is masked by role (``kiosk.community.mask_record``: admins see all, guards see
names, households and plates but no phone numbers; with ``web.mask_personal = false``
nothing is masked) and never put in a URL: a household page is addressed by its row on the
map, a returnee by the ledger id. The report and the imports are admin pages; the report can
be printed (print stylesheet) and exported as .xlsx and CSV.

Strings are in ``TEXT`` (both languages), used in the templates as ``tr("key")``.
"""

from __future__ import annotations

import secrets
import threading
from collections.abc import Callable
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING, Any
from urllib.parse import quote
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response

from kiosk.categories import report_csv, report_rows, report_xlsx
from kiosk.community import CommunityError, Role, mask_record
from kiosk.compound import statuses
from kiosk.ledgers import MIGRATIONS, Ledgers
from kiosk.listimport import apply_list_import, plan_list_import
from kiosk.lists import ListError
from kiosk.services import KINDS
from kiosk.stats import daily_report
from ui import i18n
from ui.auth import GuardAuth, Session
from ui.kiosk_screen import secure_headers, templates

if TYPE_CHECKING:
    from kiosk.core import Core

__all__ = ["TEXT", "router"]

MAX_UPLOAD = 5 * 1024 * 1024
PENDING_S = 900

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
    "alarms": ("待处理提醒", "Open alarms"),
    "missed_check": ("漏测体温", "Missed check"),
    "fever": ("发热", "Fever"),
    "due": ("观察期满待解除", "Due for clearing"),
    "open_requests": ("未完成服务", "Open requests"),
    "st.quarantined": ("居家隔离", "Quarantined"),
    "st.observing": ("居家观察", "Observing"),
    "st.quota_used": ("今日已外出", "Quota used today"),
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
    "temperature": ("体温", "Temperature"),
    "record": ("记录", "Record"),
    "acknowledge": ("确认", "Acknowledge"),
    "s.observing": ("观察中", "observing"),
    "s.cleared": ("已解除", "cleared"),
    "s.escalated": ("已上报", "escalated"),
    "s.transferred": ("已转运", "transferred"),
    "kind": ("类别", "Kind"),
    "k.food": ("食品", "food"),
    "k.medicine": ("药品", "medicine"),
    "k.parcel": ("快递", "parcel"),
    "k.rubbish": ("垃圾", "rubbish"),
    "k.other": ("其他", "other"),
    "open": ("提交", "Open"),
    "take": ("接单", "Take"),
    "done": ("完成", "Done"),
    "cancel": ("取消", "Cancel"),
    "taken_by": ("接单人", "Taken by"),
    "opened_at": ("提交时间", "Opened"),
    "state": ("进度", "State"),
    "shift": ("班次", "Shift"),
    "guard": ("保安", "Guard"),
    "starts": ("开始", "Starts"),
    "ends": ("结束", "Ends"),
    "add_shift": ("添加班次", "Add shift"),
    "handover": ("交接", "Handover"),
    "incoming": ("接班人", "Incoming guard"),
    "open_handover": ("发起交接", "Open handover"),
    "since": ("自", "Since"),
    "complete": ("交接完成", "Complete"),
    "waiting": ("待确认", "Waiting"),
    "h.open_alarms": ("待处理提醒", "Open alarms"),
    "h.fevers": ("发热", "Fevers"),
    "h.quarantine_returns": ("隔离人员返回", "Quarantine returns"),
    "h.new_returnees": ("新返回人员", "New returnees"),
    "h.registrations": ("人工登记", "Registrations"),
    "h.vehicles": ("车辆", "Vehicles"),
    "h.open_requests": ("未完成服务", "Open requests"),
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
    "nothing": ("暂无", "None"),
    "saved": ("已保存", "Saved"),
    "admin_only": ("仅管理员", "Admins only"),
    "utc": ("协调世界时", "UTC"),
    "xlsx": ("导出 Excel", "Export .xlsx"),
    "csv": ("导出 CSV", "Export CSV"),
}


def _translator(lang: str) -> Callable[..., str]:
    index = 0 if lang == "zh-CN" else 1

    def tr(key: str, **params: Any) -> str:
        pair = TEXT.get(key)
        text = pair[index] if pair else key
        return text.format(**params) if params else text

    return tr


def _role(session: Session, mask_personal: bool) -> Role:
    if not mask_personal or session.is_admin:
        return "admin"
    return "guard"


def _form_text(form: Any, name: str) -> str:
    value = form.get(name)
    return value if isinstance(value, str) else ""


def _form_int(form: Any, name: str) -> int:
    try:
        return int(_form_text(form, name))
    except ValueError:
        raise CommunityError(f"{name}: expected a whole number") from None


def _form_float(form: Any, name: str) -> float:
    try:
        return float(_form_text(form, name).replace(",", "."))
    except ValueError:
        raise CommunityError(f"{name}: expected a number") from None


class _Pending:
    """Imports previewed and not applied yet: kept in memory for ``PENDING_S``, per guard."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._items: dict[str, tuple[str, str, Any, datetime]] = {}

    def put(self, owner: str, kind: str, plan: Any, now: datetime) -> str:
        token = secrets.token_urlsafe(16)
        with self._lock:
            self._items = {k: v for k, v in self._items.items() if v[3] > now}
            self._items[token] = (owner, kind, plan, now + timedelta(seconds=PENDING_S))
        return token

    def take(self, token: str, owner: str, now: datetime) -> tuple[str, Any]:
        with self._lock:
            item = self._items.pop(token, None)
        if item is None or item[0] != owner or item[3] <= now:
            raise CommunityError("this preview has expired: upload the file again")
        return item[1], item[2]


def _ledgers(core: Core) -> Ledgers:
    made = core.extras.get("ledgers")
    if isinstance(made, Ledgers):
        return made

    def create(db: Any) -> None:
        for migrations in MIGRATIONS:
            migrations.apply(db)

    core.store.submit(create)
    cfg = core.config
    built = Ledgers.build(
        core.store, core.clock, cfg.site.timezone, cfg.thermometer.thermometry.fever_threshold_c
    )
    built.observation.load()
    core.extras["ledgers"] = built
    return built


def router(core: Core, auth: GuardAuth) -> APIRouter:
    r = APIRouter(prefix="/guard/community", tags=["guard console: community"])
    led = _ledgers(core)
    cfg = core.config
    tz = ZoneInfo(cfg.site.timezone)
    tpl = templates()
    pending = _Pending()

    def today() -> date:
        return core.clock.now().astimezone(tz).date()

    def render(request: Request, name: str, session: Session, **ctx: Any) -> HTMLResponse:
        chosen = request.query_params.get("lang") or request.cookies.get("kiosk_lang")
        lang = i18n.pick_lang(chosen, cfg.site.language)
        err = request.query_params.get("err")
        base = {
            "lang": lang,
            "_": i18n.translator(lang),
            "tr": _translator(lang),
            "session": session,
            "csrf": auth.sessions.csrf_token(session),
            "site_name": cfg.site.site_name,
            "kiosk_id": cfg.site.kiosk_id,
            "page": name.removesuffix(".html"),
            "other_lang": "en" if lang == "zh-CN" else "zh-CN",
            "role_text": i18n.t(lang, f"role.{session.role}"),
            "flash_ok": _translator(lang)("saved") if request.query_params.get("msg") else None,
            "flash_err": err[:300] if err else None,
        }
        response = tpl.TemplateResponse(request, name, {**base, **ctx})
        response.headers["Cache-Control"] = "no-store"
        secure_headers(response)
        return response

    def back(target: str, change: Callable[[], object]) -> Response:
        """Make one ledger change, then back to the page with the outcome (a refused change
        changed nothing: the ledger checks everything before it writes)."""
        try:
            change()
        except (CommunityError, ListError) as exc:
            return RedirectResponse(f"{target}?err={quote(str(exc)[:300])}", status_code=303)
        return RedirectResponse(f"{target}?msg=saved", status_code=303)

    def masked(session: Session, record: dict[str, Any]) -> dict[str, Any]:
        return mask_record(record, _role(session, cfg.web.mask_personal))

    def admin(session: Session) -> Session:
        return auth.admin_action(session)

    _overview_routes(r, core, led, auth, render, today)
    _map_routes(r, core, led, auth, render, masked, today, tz)
    _returnee_routes(r, led, auth, render, masked, back, admin)
    _service_routes(r, core, led, auth, render, masked, back, today, tz)
    _handover_routes(r, core, led, auth, render, back, admin, tz)
    _report_routes(r, core, auth, render, admin, today, tz)
    _import_routes(r, core, led, auth, render, back, admin, pending)
    r.ledgers = led  # type: ignore[attr-defined]  # for tests and the app
    return r


def _overview_routes(r: APIRouter, core: Core, led: Ledgers, auth: GuardAuth, render: Any,
                     today: Callable[[], date]) -> None:  # fmt: skip
    @r.get("", response_class=HTMLResponse, include_in_schema=False)
    def overview(request: Request, session: Session = Depends(auth.page)) -> Response:
        alarms = led.observation.alarms()
        return render(
            request,
            "community_overview.html",
            session,
            on_duty=[s.to_dict() for s in led.roster.on_duty(core.config.site.kiosk_id)],
            alarms=[a.to_dict() | {"household": None} for a in alarms],
            due=len(led.observation.due_for_clearing(today())),
            open_requests=len(led.services.requests(open_only=True)),
        )

    @r.post("/plate", include_in_schema=False)
    async def plate(request: Request, session: Session = Depends(auth.action)) -> Response:
        """At a vehicle registration: is the plate on the resident list? (unknown: flag it)
        A POST, so the plate never appears in a URL or an access log."""
        form = await request.form()
        try:
            household = led.vehicles.check(_form_text(form, "plate")[:20])
        except CommunityError as exc:
            return JSONResponse({"error": str(exc)}, status_code=400)
        return JSONResponse({"known": household is not None, "household": household})


def _map_routes(r: APIRouter, core: Core, led: Ledgers, auth: GuardAuth, render: Any,
                masked: Any, today: Callable[[], date], tz: ZoneInfo) -> None:  # fmt: skip
    def marks() -> dict[str, tuple[str, ...]]:
        quota = core.config.policy.quota.exits
        return statuses(core.store.reader(), today(), tz, core.lists.current, quota)

    def row_ids() -> dict[str, int]:
        rows = core.store.reader().query("select rowid, household from compound_households")
        return {row["household"]: int(row["rowid"]) for row in rows}

    @r.get("/map", response_class=HTMLResponse, include_in_schema=False)
    def compound_map(request: Request, session: Session = Depends(auth.page)) -> Response:
        ids = row_ids()
        grid = led.compound.grid(marks())
        for building in grid:
            for unit in building["units"]:
                for floor in unit["floors"]:
                    for h in floor["households"]:
                        h["row"] = ids[h["household"]]
                        h["label"] = masked(session, {"household": h["household"]})["household"]
        return render(request, "community_map.html", session, grid=grid, day=today())

    @r.get("/household/{row}", response_class=HTMLResponse, include_in_schema=False)
    def household(row: int, request: Request, session: Session = Depends(auth.page)) -> Response:
        code = next((h for h, i in row_ids().items() if i == row), None)
        if code is None:
            return render(request, "community_household.html", session, found=False)
        db = core.store.reader()
        passages = list(
            db.query(
                "select ts, direction, decision, reasons, temp_c from events"
                " where household = ? order by seq desc limit 50",
                [code],
            )
        )
        return render(
            request,
            "community_household.html",
            session,
            found=True,
            label=masked(session, {"household": code})["household"],
            statuses=marks().get(code, ()),
            passages=passages,
            people=[masked(session, p.to_dict()) for p in led.observation.people(household=code)],
            requests=[masked(session, q.to_dict()) for q in led.services.requests(household=code)],
        )


def _returnee_routes(r: APIRouter, led: Ledgers, auth: GuardAuth, render: Any, masked: Any,
                     back: Any, admin: Any) -> None:  # fmt: skip
    target = "/guard/community/returnees"

    @r.get("/returnees", response_class=HTMLResponse, include_in_schema=False)
    def returnees(request: Request, session: Session = Depends(auth.page)) -> Response:
        people = led.observation.people()
        return render(
            request,
            "community_returnees.html",
            session,
            people=[masked(session, p.to_dict()) for p in reversed(people)],
            alarms=[a.to_dict() for a in led.observation.alarms()],
        )

    @r.post("/returnees", include_in_schema=False)
    async def register(request: Request, session: Session = Depends(auth.action)) -> Response:
        form = await request.form()
        return back(
            target,
            lambda: led.observation.register(
                name=_form_text(form, "name"),
                household=_form_text(form, "household"),
                phone=_form_text(form, "phone"),
                origin=_form_text(form, "origin"),
                date_back=_form_text(form, "date_back"),
                days=_form_int(form, "days"),
                note=_form_text(form, "note"),
                actor=session.name,
            ),
        )

    @r.post("/returnees/{pid}/{what}", include_in_schema=False)
    async def change(
        pid: int, what: str, request: Request, session: Session = Depends(auth.action)
    ) -> Response:
        form = await request.form()
        if what == "status":
            admin(session)  # clearing, escalating: the manager's decision
        ledger, who = led.observation, session.name
        changes: dict[str, Callable[[], object]] = {
            "temperature": lambda: ledger.record_temperature(pid, _form_float(form, "temp_c"), who),
            "ack": lambda: ledger.acknowledge(
                pid, _form_text(form, "day"), _form_text(form, "kind"), who
            ),
            "status": lambda: ledger.set_status(pid, _form_text(form, "status"), who),
        }
        if what not in changes:
            return JSONResponse({"detail": "unknown change"}, status_code=404)
        return back(target, changes[what])


def _service_routes(r: APIRouter, core: Core, led: Ledgers, auth: GuardAuth, render: Any,
                    masked: Any, back: Any, today: Callable[[], date],
                    tz: ZoneInfo) -> None:  # fmt: skip
    target = "/guard/community/services"

    @r.get("/services", response_class=HTMLResponse, include_in_schema=False)
    def services(request: Request, session: Session = Depends(auth.page)) -> Response:
        return render(
            request,
            "community_services.html",
            session,
            requests=[masked(session, q.to_dict()) for q in led.services.requests(limit=200)],
            kinds=KINDS,
        )

    @r.post("/services", include_in_schema=False)
    async def open_request(request: Request, session: Session = Depends(auth.action)) -> Response:
        form = await request.form()
        household = _form_text(form, "household").strip()
        marks = statuses(core.store.reader(), today(), tz, core.lists.current, 1 << 30)
        confined = bool({"quarantined", "observing"} & set(marks.get(household, ())))
        kind, note = _form_text(form, "kind"), _form_text(form, "note")
        return back(
            target,
            lambda: led.services.open(household, kind, session.name, confined=confined, note=note),
        )

    @r.post("/services/{rid}/{action}", include_in_schema=False)
    async def move(
        rid: int, action: str, request: Request, session: Session = Depends(auth.action)
    ) -> Response:
        steps = {
            "take": led.services.take,
            "done": led.services.done,
            "cancel": led.services.cancel,
        }
        if action not in steps:
            return JSONResponse({"detail": "unknown action"}, status_code=404)
        return back(target, lambda: steps[action](rid, session.name))


def _handover_routes(r: APIRouter, core: Core, led: Ledgers, auth: GuardAuth, render: Any,
                     back: Any, admin: Any, tz: ZoneInfo) -> None:  # fmt: skip
    target = "/guard/community/handover"
    gate = core.config.site.kiosk_id

    @r.get("/handover", response_class=HTMLResponse, include_in_schema=False)
    def handover(request: Request, session: Session = Depends(auth.page)) -> Response:
        now = core.clock.now()
        shifts = led.roster.shifts(gate, now - timedelta(hours=24), now + timedelta(days=7))
        return render(
            request,
            "community_handover.html",
            session,
            on_duty=[s.to_dict() for s in led.roster.on_duty(gate)],
            shifts=[s.to_dict() for s in shifts],
            handovers=[h.to_dict() for h in led.roster.handovers(gate, limit=10)],
        )

    def local(text: str) -> datetime:
        try:
            return datetime.fromisoformat(text).replace(tzinfo=tz)
        except ValueError:
            raise CommunityError(f"{text[:20]!r}: expected a local date and time") from None

    @r.post("/shifts", include_in_schema=False)
    async def add_shift(request: Request, session: Session = Depends(auth.action)) -> Response:
        admin(session)
        form = await request.form()

        def add() -> object:
            start, end = local(_form_text(form, "starts")), local(_form_text(form, "ends"))
            return led.roster.add_shift(gate, _form_text(form, "guard"), start, end, session.name)

        return back(target, add)

    @r.post("/handover", include_in_schema=False)
    async def open_handover(request: Request, session: Session = Depends(auth.action)) -> Response:
        form = await request.form()
        incoming = _form_text(form, "incoming")
        return back(target, lambda: led.roster.open_handover(gate, session.name, incoming))

    @r.post("/handover/{hid}/ack", include_in_schema=False)
    async def ack(hid: int, request: Request, session: Session = Depends(auth.action)) -> Response:
        return back(target, lambda: led.roster.acknowledge(hid, session.name))


def _report_routes(r: APIRouter, core: Core, auth: GuardAuth, render: Any, admin: Any,
                   today: Callable[[], date], tz: ZoneInfo) -> None:  # fmt: skip
    def report_for(request: Request) -> dict[str, Any] | None:
        text = request.query_params.get("day", "")[:10]
        try:
            day = date.fromisoformat(text) if text else today()
        except ValueError:
            return None
        freshness = core.lists.current.freshness
        return daily_report(core.store.reader(), day, tz, core.config.policy.quota, freshness)

    @r.get("/report", response_class=HTMLResponse, include_in_schema=False)
    def report(request: Request, session: Session = Depends(auth.page)) -> Response:
        data = report_for(request)
        if data is None:
            return render(request, "community_report.html", session, rows=[], day="",
                          flash_err="day: expected YYYY-MM-DD")  # fmt: skip
        return render(request, "community_report.html", session, rows=report_rows(data)[1:],
                      day=data["day"])  # fmt: skip

    @r.get("/report.{fmt}", include_in_schema=False)
    def export(fmt: str, request: Request, session: Session = Depends(auth.page)) -> Response:
        data = report_for(request)
        if data is None or fmt not in ("xlsx", "csv"):
            return JSONResponse({"detail": "day: YYYY-MM-DD; format: xlsx or csv"}, 400)
        name = f"report-{core.config.site.kiosk_id}-{data['day']}.{fmt}"
        headers = {"Content-Disposition": f'attachment; filename="{quote(name)}"'}
        if fmt == "xlsx":
            media = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
            return Response(report_xlsx(data), media_type=media, headers=headers)
        return Response(report_csv(data), media_type="text/csv; charset=utf-8", headers=headers)


def _import_routes(r: APIRouter, core: Core, led: Ledgers, auth: GuardAuth, render: Any,
                   back: Any, admin: Any, pending: _Pending) -> None:  # fmt: skip
    target = "/guard/community/imports"

    @r.get("/imports", response_class=HTMLResponse, include_in_schema=False)
    def imports(request: Request, session: Session = Depends(auth.page)) -> Response:
        return render(request, "community_imports.html", session, plan=None, token=None)

    def plan_for(kind: str, data: bytes, filename: str) -> Any:
        if kind == "compound":
            return led.compound.plan_import(data, filename)
        if kind == "vehicles":
            return led.vehicles.plan_import(data, filename)
        if kind in ("revocations", "quarantine", "households", "lists"):
            which = None if kind == "lists" else kind
            return plan_list_import(data, filename, core.lists.current, which)
        raise CommunityError("list: compound, vehicles, lists or one of the lists")

    @r.post("/imports/preview", include_in_schema=False)
    async def preview(request: Request, session: Session = Depends(auth.action)) -> Response:
        admin(session)
        form = await request.form()
        upload, kind = form.get("file"), _form_text(form, "kind")
        data = (
            b"" if upload is None or isinstance(upload, str) else await upload.read(MAX_UPLOAD + 1)
        )
        name = "" if upload is None or isinstance(upload, str) else upload.filename or ""
        plans: list[Any] = []

        def check() -> None:
            if len(data) > MAX_UPLOAD:
                raise CommunityError("file is larger than 5 MB")
            plans.append(plan_for(kind, data, name))

        refused = back(target, check)
        if not plans:
            return refused
        plan = plans[0]
        token = pending.put(session.name, kind, plan, core.clock.now())
        counts = plan.diff.counts()
        return render(request, "community_imports.html", session, plan=counts, token=token)

    @r.post("/imports/apply", include_in_schema=False)
    async def apply(request: Request, session: Session = Depends(auth.action)) -> Response:
        admin(session)
        form = await request.form()

        def apply_plan() -> None:
            kind, plan = pending.take(_form_text(form, "token"), session.name, core.clock.now())
            if kind in ("compound", "vehicles"):
                getattr(led, kind).apply(plan, session.name)
            else:
                apply_list_import(plan, core.lists, session.name)

        return back(target, apply_plan)
