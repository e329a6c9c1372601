"""Lists from the sub-district as spreadsheets: see what an import changes, then apply it.

``plan_list_import(data, filename, current)`` reads a CSV or .xlsx (``kiosk.sheets``), works
out which list it is from its columns (or takes ``kind``), checks every row with the same
models the signed bundle and ``ListStore.import_csv`` use, and compares it with the lists in
force: rows added, rows changed (field by field), rows already there. Nothing is written.
``apply_list_import(plan, list_store, actor)`` then hands the new and changed rows to
``ListStore.import_csv`` (one transaction, audited as ``lists.csv``). An import adds and
updates; it never removes (a guard's revocation is not undone by a spreadsheet).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import BaseModel, ValidationError

from .community import CommunityError
from .headers import HEADERS, Headers, refuse_at
from .lists import (
    FORGET_SOURCE,
    HouseholdIn,
    ImportResult,
    Lists,
    ListStore,
    QuarantineIn,
    RevocationIn,
    same_text,
    value_problem,
)
from .sheets import Diff, Layout, Table, csv_text, diff_rows, read_table

__all__ = ["ListPlan", "apply_list_import", "guess_kind", "plan_list_import"]

Kind = Literal["revocations", "quarantine", "households"]
_MODELS: dict[Kind, type[BaseModel]] = {
    "revocations": RevocationIn,
    "quarantine": QuarantineIn,
    "households": HouseholdIn,
}


@dataclass(frozen=True)
class ListPlan:
    kind: Kind
    header: tuple[str, ...]
    rows: tuple[Mapping[str, str], ...] = ()  # the rows to apply (new or changed)
    diff: Diff = field(default_factory=Diff)
    layout: Layout = field(default_factory=Layout)  # the file's header line, lines skipped


def guess_kind(header: tuple[str, ...]) -> Kind:
    """Which list a file holds, from its columns."""
    columns = set(header)
    if "pass_id" in columns:
        return "revocations"
    if {"from", "until"} & columns:
        return "quarantine"
    if "household" in columns:
        return "households"
    raise CommunityError("cannot tell the list from the columns; name it with --list")


def _key(kind: Kind, row: BaseModel) -> str:
    values = row.model_dump()
    if kind == "revocations":
        return str(values["pass_id"])
    if kind == "households":  # as the gate matches it: A-101 is a-101
        return same_text(str(values["household"]))
    return f"{values['household']}|{values['holder'] or ''}|{values['from_']}|{values['until']}"


def _current(kind: Kind, lists: Lists) -> dict[str, dict[str, Any]]:
    if kind == "revocations":
        return {r.pass_id: {"reason": r.reason} for r in lists.revocations.values()}
    if kind == "households":
        return {
            h.household: {
                "residents": h.residents,
                "observation_until": h.observation_until,
                "note": h.note,
            }
            for h in lists.households.values()
        }
    return {
        f"{q.household}|{q.holder or ''}|{q.from_date}|{q.until_date}": {"note": q.note}
        for q in lists.quarantine
    }


# The fields a row of an existing key may change; a column the file lacks keeps its value.
_UPDATABLE: dict[Kind, tuple[str, ...]] = {
    "revocations": ("reason",),
    "households": ("residents", "observation_until", "note"),
}


def _fields(kind: Kind, row: BaseModel, header: tuple[str, ...]) -> dict[str, Any]:
    values = row.model_dump()
    if kind == "quarantine":  # added whole, never edited in place
        return {"note": values["note"]}
    return {k: values[k] for k in _UPDATABLE[kind] if k in header}


def _cell(value: Any) -> str:
    return "" if value is None else value.isoformat() if hasattr(value, "isoformat") else str(value)


def _kept(
    kind: Kind, header: tuple[str, ...], current: Mapping[str, Mapping[str, Any]]
) -> tuple[tuple[str, ...], Callable[[str, Mapping[str, str]], Mapping[str, str]]]:
    """The columns the file lacks, and how to complete a row with the values in force for
    them (so applying a sheet of `household,residents` keeps the observation dates)."""
    missing = tuple(c for c in _UPDATABLE.get(kind, ()) if c not in header)

    def complete(key: str, raw: Mapping[str, str]) -> Mapping[str, str]:
        if key not in current:
            return raw
        return {**raw, **{c: _cell(current[key][c]) for c in missing}}

    return missing, complete


def _columns(kind: Kind) -> frozenset[str]:
    """The columns a file of ``kind`` may have. ``compound`` is the office's
    (``kiosk.lists.BundlePayload.for_compound``), not a gate's."""
    fields = _MODELS[kind].model_fields
    return frozenset(f.alias or name for name, f in fields.items()) - {"compound"}


def _check_rows(kind: Kind, table: Table) -> dict[str, tuple[BaseModel, Mapping[str, str]]]:
    model = _MODELS[kind]
    known = _columns(kind)
    if unknown := [c for c in table.header if c not in known]:
        raise CommunityError(f"unknown columns for {kind}: {', '.join(unknown)}")
    rows: dict[str, tuple[BaseModel, Mapping[str, str]]] = {}
    lines: dict[str, int] = {}
    for line, raw in table.numbered():
        try:
            row = model.model_validate(raw)
        except ValidationError as exc:
            first = exc.errors()[0]
            field = ".".join(str(p) for p in first["loc"]) or "row"
            # The column as the clerk headed it (隔离开始日期), not the field (from).
            refuse_at(line, field, table.layout.columns, value_problem(first))
        key = _key(kind, row)
        if key in rows and rows[key][0] != row:
            _spelled_otherwise(kind, rows[key][0], row, (lines[key], line))
            # Which one is meant? Taking the last silently once dropped an observation date.
            shown = key.split("|", 1)[0]
            raise CommunityError(
                f"line {line}: {shown} is also on line {lines[key]}, with other values"
            )
        lines.setdefault(key, line)
        rows[key] = (row, raw)
    if not rows:
        raise CommunityError("the file has no rows")
    return rows


def _spelled_otherwise(
    kind: Kind, first: BaseModel, row: BaseModel, lines: tuple[int, int]
) -> None:
    """``CommunityError`` naming both lines when ``row`` is ``first``'s household in another
    spelling (case, width): the gate would take either for the other."""
    if kind != "households":
        return
    was, now = str(first.model_dump()["household"]), str(row.model_dump()["household"])
    if was != now:
        raise CommunityError(
            f"line {lines[1]}: household {now} is household {was} of line {lines[0]}"
            " (households are matched without case or width): one of them is a mistake"
        )


def _in_force_spelling(
    kind: Kind,
    rows: Mapping[str, tuple[BaseModel, Mapping[str, str]]],
    in_force: Mapping[str, Any],
) -> dict[str, tuple[BaseModel, Mapping[str, str]]]:
    """The file's rows by the keys of the entries in force: a household by the spelling the
    list holds it in (``A-101`` for the sheet's ``a-101``: the entry updated, not a second
    one the gate would confuse with it), a new one as typed (``kiosk.typed``)."""
    if kind != "households":
        return dict(rows)
    spelled = {same_text(k): k for k in in_force}
    out: dict[str, tuple[BaseModel, Mapping[str, str]]] = {}
    for key, (row, raw) in rows.items():
        household = spelled.get(key, str(row.model_dump()["household"]))
        out[household] = (row, {**raw, "household": household})
    return out


def plan_list_import(
    data: bytes, filename: str, current: Lists, kind: str | None = None
) -> ListPlan:
    if kind is not None and kind not in _MODELS:
        raise CommunityError("list: revocations, quarantine or households")
    fields = frozenset().union(*(_columns(k) for k in _MODELS if kind in (None, k)))
    known = HEADERS["lists"]  # 户号, 姓名, 隔离开始日期...: the fields as a clerk names them
    columns = Headers({f: known.fields[f] for f in sorted(fields)}, known.not_kept)
    texts = ("household", "holder", "pass_id")
    lines = ("reason", "holder", "note")  # a line break here: a stray quote, rows swallowed
    table = read_table(data, filename, text_columns=texts, columns=columns, one_line=lines)
    which: Kind = kind if kind is not None else guess_kind(table.header)
    in_force = _current(which, current)
    rows = _in_force_spelling(which, _check_rows(which, table), in_force)
    new = {key: _fields(which, row, table.header) for key, (row, _raw) in rows.items()}
    # A card a resident's forget revoked stays as the forget wrote it (no reason, its mark):
    # unchanged, never applied (``kiosk.lists.upsert_local_revocations`` keeps it too).
    new |= {key: in_force[key] for key in new if _forgotten_here(which, key, current)}
    diff = diff_rows(in_force, new, replace=False)
    if which == "quarantine":  # a quarantine row is added, never edited in place
        diff = Diff(diff.added, (), (), diff.unchanged + len(diff.changed), {})
    missing, complete = _kept(which, table.header, in_force)
    keys = (*diff.added, *diff.changed, *_taken(which, rows, diff, current))
    apply = [complete(k, rows[k][1]) for k in keys]
    return ListPlan(which, (*table.header, *missing), tuple(apply), diff, table.layout)


def _forgotten_here(kind: Kind, key: str, current: Lists) -> bool:
    """Whether ``key`` of a revocations sheet is a card a forget revoked at this gate."""
    found = current.revocations.get(key) if kind == "revocations" else None
    return found is not None and found.source == FORGET_SOURCE


def _taken(kind: Kind, rows: Mapping[str, Any], diff: Diff, current: Lists) -> list[str]:
    """The sheet's households held with its values as the office's bundle or a guard wrote
    them ("unchanged" in the preview): written again, they are the sheet's, so the office's next
    bundle without them leaves them (``ListStore.import_bundle`` drops only its own rows)."""
    if kind != "households":
        return []
    source = {h.household: h.source for h in current.households.values()}
    written = {*diff.added, *diff.changed}
    return [k for k in rows if k not in written and source.get(k) != "csv"]


def apply_list_import(plan: ListPlan, list_store: ListStore, actor: str) -> ImportResult | None:
    """Apply the plan's new and changed rows; None when there is nothing to apply."""
    if not plan.rows:
        return None
    # ``csv_text`` quotes a cell holding a CR or LF (a lone CR in a note, an old Mac line end),
    # which the list store's reader would refuse bare; it keeps every cell as imported (no
    # spreadsheet opens this text: a note starting with "-" is stored as it came).
    text = csv_text([plan.header, *([r.get(h, "") for h in plan.header] for r in plan.rows)])
    return list_store.import_csv(plan.kind, text, actor)
