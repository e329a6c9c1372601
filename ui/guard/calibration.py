"""The site's thermometer calibration (``/guard/calibration``): clinical readings paired with
the kiosk's latest measurement, and the fitted correction."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse, Response

from kiosk import queries
from kiosk.calibration import Calibration, CalibrationError, default_path, record_clinical_pair
from kiosk.store import ReadFailure
from ui.guard import deps
from ui.guard.deps import ActionSession, Guard, GuardDep, PageSession, done, note, room
from ui.guard.display import clock_time, event_time
from ui.guard.forms import BadInput, needed

router = room("/guard/calibration")


def points_view(cal: Calibration, g: Guard, lang: str) -> list[dict[str, Any]]:
    """The latest 20 points, newest first, with their residuals."""
    residuals = cal.residuals()
    points = [
        {
            "n": i + 1,
            "when": clock_time(p.recorded_at, lang, g.tz),
            "clinical": f"{p.clinical_c:.1f}",
            "object": f"{p.object_c:.1f}",
            "ambient": f"{p.ambient_c:.1f}",
            "residual": f"{residuals[i]:+.2f}",
            "source": p.source,
        }
        for i, p in enumerate(cal.points)
    ][-20:]
    return list(reversed(points))


def unreadable(g: Guard) -> BadInput:
    """The calibration file cannot be read (corrupt, or not a file one can open), in the
    guard's words with what the technician does: restore it from the backup, or put the
    default model back with the CLI's ``reset`` (which sets a corrupt file aside), and the
    command that prints the core's own words. The page does not show those: like a file that
    could not be written (``cal.not_saved``), the system's text is the technician's, not the
    guard's."""
    cli = f"sudo kiosk-admin calibrate --data {g.core.data_dir}"
    return BadInput(
        "cal.file_unreadable",
        path=str(default_path(g.core.data_dir)),
        command=f"{cli} show",
        reset=f"{cli} reset --yes",
    )


def readable(path: Path) -> bool:
    try:
        Calibration.load(path)
    except CalibrationError:
        return False
    return True


def last_when(g: Guard, seq: int, lang: str) -> str:
    """When the kiosk's last reading was taken, as the feed says it (``event_time``): one
    stamped before NTP stepped the clock at its dated time, or what the clock said and that
    it was not set; never a bare 1970."""
    event = queries.event_by_seq(g.core.store, seq)
    if event is None:  # purged meanwhile
        return ""
    return event_time(g.dated([event])[0], lang, g.tz, "%Y-%m-%d %H:%M:%S")


#: How many of the newest rows a reading is looked for in past a damaged page (a clinical
#: reading is taken right after the kiosk's).
RECENT_READINGS = 50


def last_reading(g: Guard) -> queries.Measured | None:
    """The kiosk's latest reading a clinical one goes with; past a damaged page of the log
    (the alarms name its rows), the latest among the newest rows that can be read."""
    try:
        return queries.last_measured(g.core.store)
    except ReadFailure as exc:
        g.core.store.read_past(exc)
    return queries.measured_in(g.core.store.readable_recent(RECENT_READINGS))


@router.get("/calibration", response_class=HTMLResponse, include_in_schema=False)
def calibration_page(request: Request, session: PageSession, g: GuardDep) -> Response:
    try:
        cal = Calibration.load(default_path(g.core.data_dir))
        problem = None
    except CalibrationError:
        cal, problem = Calibration(), unreadable(g).text(g.lang(request))
    last = last_reading(g)
    return g.render(
        request,
        "guard_calibration.html",
        session,
        points=points_view(cal, g, g.lang(request)),
        stored=len(cal.points),
        model=cal,
        fitted_when=clock_time(cal.fitted_at, g.lang(request), g.tz),
        problem=problem,
        last=last,
        last_when=last_when(g, last.seq, g.lang(request)) if last else "",
        **g.flash(request),
    )


@router.post("/calibration", name="calibration_point", include_in_schema=False)
@deps.once_per_form  # one pair measured, one pair in the fit
async def calibration_add(request: Request, session: ActionSession, g: GuardDep) -> Response:
    form = await request.form()
    clinical = needed(form.get("clinical_c"), "cal.reference", 34.0, 43.0)
    obj = needed(form.get("object_c"), "cal.object", 25.0, 43.0)
    ambient = needed(form.get("ambient_c"), "cal.ambient", -20.0, 50.0)
    if obj <= ambient:  # the core refuses it too, in English: said here in the guard's words
        raise BadInput("cal.not_above_ambient")
    note(request, clinical_c=clinical, object_c=obj, ambient_c=ambient)
    try:  # the file, then its row; the file put back if the row fails (err.store)
        await asyncio.to_thread(
            record_clinical_pair,
            default_path(g.core.data_dir),
            clinical,
            obj,
            ambient,
            now=g.core.clock.now(),
            source="guard",
            record=lambda: deps.write_row_first(request),
        )
    except CalibrationError as exc:
        # The pair passed the checks above: the core refused the file, unless it reads.
        if await asyncio.to_thread(readable, default_path(g.core.data_dir)):
            raise BadInput(str(exc)) from None
        raise unreadable(g) from None
    except OSError:  # the file could not be written (a full or failing card): nothing saved
        raise BadInput("cal.not_saved") from None
    return done(request, "/guard/calibration", "cal.saved")
