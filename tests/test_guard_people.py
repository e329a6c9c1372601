"""A resident's request at the console (``/guard/community/people``): the admin's only, the
CLI's keys bounded and checked, each show audited as the CLI's (``person_shown``, counts
only, one row), the JSON download the CLI's, the forget's preview changing nothing, its
confirmation refused when what it listed changed or something is in force unless forced,
and the ``kiosk fleet forget`` line the office runs. All on a FakeClock."""

from __future__ import annotations

import json
import re
import sqlite3
import threading
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
import sqlite_utils
from guard_support import BASE, add_event, console_fixtures, csrf_of, hidden_fields, send
from support import disk_full

from kiosk.config import KioskConfig
from kiosk.config.thermometer import ThermometryConfig
from kiosk.passes import issue_pass
from kiosk.people import Person, find
from kiosk.policy import PassageInputs, PolicyState, decide
from kiosk.thermometry import Temperature

clock, core, app, alice, admin = console_fixtures(datetime(2026, 3, 2, 8, 30, tzinfo=UTC))

NAME = "Marlowe Qiuxiang"
HOUSEHOLD = "7-1404"
PASS = "feedfacecafe"
NEIGHBOUR = "Ottoline Baptiste"
ROOM = "/guard/community/people"
KEYS = {"name": NAME, "household": HOUSEHOLD}


def _resident(core, *, quarantined: bool = False) -> None:
    add_event(core, holder=NAME, household=HOUSEHOLD, pass_id=PASS)
    add_event(core, holder=NAME, household=HOUSEHOLD, pass_id=PASS, direction="out")
    add_event(core, holder=NEIGHBOUR, household=HOUSEHOLD, pass_id="0a0b0c0d0e0f")
    if quarantined:
        until = date(2026, 3, 16)
        core.lists.add_quarantine(HOUSEHOLD, NAME, date(2026, 3, 1), until, "root", "positive")


def _post(client, path: str, **data: str):
    return send(client, path, {"csrf": client.csrf, **data})


def _audits(core, after: int) -> list[dict]:
    return core.store.audits(after_seq=after)


def _held(core) -> dict[str, int]:
    return find(
        core.store.reader(), Person.of(name=NAME, household=HOUSEHOLD), date(2026, 3, 2)
    ).counts()


def test_a_guard_gets_403_and_no_link_an_admin_gets_the_room_and_its_link(core, alice, admin):
    _resident(core)
    assert alice.get(ROOM).status_code == 403
    assert ROOM not in alice.get("/guard/community").text
    before = core.store.last_audit_seq
    refused = _post(alice, f"{ROOM}/show", **KEYS)
    assert refused.status_code == 403 and NAME not in refused.text
    (row,) = [a for a in _audits(core, before) if a["actor"] == "alice"]
    assert row["action"] == "person_show_failed" and row["detail"]["problem"] == "http_403"
    assert _post(alice, f"{ROOM}/forget", **KEYS, confirm="yes").status_code == 403
    assert _held(core)["events"] == 2  # nothing forgotten by a guard
    page = admin.get(ROOM)
    assert page.status_code == 200 and 'id="people-form"' in page.text
    assert f'href="{ROOM}"' in admin.get("/guard/community").text


@pytest.mark.slow
def test_without_the_csrf_token_or_cross_site_nothing_is_shown_nor_forgotten(core, admin):
    _resident(core)
    before = core.store.last_audit_seq
    wrong = send(admin, f"{ROOM}/show", {"csrf": "not-the-token", **KEYS})
    assert wrong.status_code == 403 and NAME not in wrong.text
    cross = admin.post(
        f"{ROOM}/forget",
        data={"csrf": admin.csrf, **KEYS, "confirm": "yes", "force": "yes"},
        headers={"Origin": "http://evil.test"},
        follow_redirects=False,
    )
    assert cross.status_code == 403
    assert not [a for a in _audits(core, before) if a["action"] == "person_shown"]
    assert _held(core)["events"] == 2


def test_show_is_the_clis_show_one_person_shown_row_with_counts_only(core, admin):
    _resident(core)
    before = core.store.last_audit_seq
    shown = _post(admin, f"{ROOM}/show", **KEYS)
    assert shown.status_code == 200
    assert NAME in shown.text and PASS in shown.text and NEIGHBOUR not in shown.text
    assert 'data-store="events"' in shown.text
    rows = _audits(core, before)
    assert [(a["actor"], a["action"]) for a in rows] == [("root", "person_shown")]
    assert rows[0]["detail"] == {"keys": ["household", "name"], "rows": {"events": 2}}
    assert NAME not in json.dumps(rows, ensure_ascii=False)


def test_the_download_is_the_json_the_cli_prints_and_is_a_show_audited_too(core, admin):
    _resident(core)
    page = _post(admin, f"{ROOM}/show", **KEYS).text
    fields = hidden_fields(page, "download-form")
    assert fields["as"] == "json" and fields["name"] == NAME and fields["household"] == HOUSEHOLD
    before = core.store.last_audit_seq
    got = send(admin, f"{ROOM}/show", fields)
    assert got.status_code == 200 and got.headers["content-type"].startswith("application/json")
    assert got.headers["content-disposition"].startswith("attachment;")
    copy = got.json()
    person = Person.of(name=NAME, household=HOUSEHOLD)
    cli = find(core.store.reader(), person, date(2026, 3, 2)).as_dict()
    assert copy == json.loads(json.dumps(cli, ensure_ascii=False, default=str))
    assert [e["seq"] for e in copy["stores"]["events"]] == [1, 2]
    assert [a["action"] for a in _audits(core, before)] == ["person_shown"]


@pytest.mark.slow
def test_a_malformed_or_missing_key_is_refused_in_the_admins_words_form_kept(core, admin):
    _resident(core)
    cases = [
        ({"pass_id": "not-hex"}, "12 hex digits"),
        ({"phone": "12"}, "5 to 20 digits"),
        ({"plate": "!"}, "A plate is 4 to 10"),
        ({"returnee": "x1"}, "A returnee number"),
        ({"returnee": "0"}, "A returnee number"),
        ({"returnee": "²"}, "A returnee number"),  # a digit to isdigit(), none to int()
        ({"returnee": "①"}, "A returnee number"),
        ({"returnee": "1²"}, "A returnee number"),
        ({"returnee": "٣"}, "A returnee number"),  # ASCII digits only, as the CLI's
        ({"name": "a\u200bb"}, "Name"),  # an invisible character pasted
        ({"name": "x" * 65}, "Name"),
        ({"pass_id": ",".join(["feedfacecafe"] * 9)}, "at most 8"),
        ({"phone": "1" * 601}, "at most 600"),
        ({}, "Give at least one key"),
        ({"name": "Nobody Here"}, "No store of this gate holds anyone"),
    ]
    for form, words in cases:
        before = core.store.last_audit_seq
        for path in ("show", "forget"):
            refused = _post(admin, f"{ROOM}/{path}?lang=en", **form)
            assert refused.status_code == 400, (form, path)
            assert words in refused.text, (form, path, re.findall(r"✖[^<]*", refused.text))
            for value in form.values():
                if len(value) < 100 and "\u200b" not in value:
                    assert f'value="{value}"' in refused.text  # the form as typed
        rows = _audits(core, before)
        assert [a["action"] for a in rows] == ["person_show_failed", "person_forget_failed"]
        assert all(a["detail"]["outcome"] == "refused" for a in rows)
    assert _held(core)["events"] == 2


def test_zh_cn_says_a_refusal_and_the_keys_in_chinese(core, admin):
    _resident(core)
    refused = _post(admin, f"{ROOM}/show?lang=zh-CN", phone="12")
    assert refused.status_code == 400 and "电话为 5 至 20 位数字" in refused.text
    shown = _post(admin, f"{ROOM}/show?lang=zh-CN", **KEYS)
    assert "（查找方式：户号, 姓名）" in shown.text and "通行记录" in shown.text


def test_a_name_namesakes_of_two_households_hold_is_refused_as_such_not_as_malformed(core, admin):
    """The core refuses a name without a household that people of several households hold;
    the room once read its sentence's ``--name`` and said the name was malformed."""
    _resident(core)
    add_event(core, holder=NAME, household="9-909", pass_id="0b0b0b0b0b0b")
    for lang, words in (("en", "People of 2 households hold this name"), ("zh-CN", "2 户")):
        for path in ("show", "forget"):
            refused = _post(admin, f"{ROOM}/{path}?lang={lang}", name=NAME)
            assert refused.status_code == 400 and words in refused.text, (lang, path)
            assert "9-909" not in refused.text and "printable" not in refused.text
    assert _held(core)["events"] == 2


def test_several_values_of_a_key_are_taken_separated_by_commas(core, admin):
    _resident(core)
    shown = _post(admin, f"{ROOM}/show", pass_id=f"{PASS}，0a0b0c0d0e0f")
    assert shown.status_code == 200 and NEIGHBOUR in shown.text and NAME in shown.text


def test_the_preview_changes_nothing_and_lists_what_would_go(core, admin):
    _resident(core, quarantined=True)
    held, last_seq = _held(core), core.store.last_seq
    revoked = len(core.lists.current.revoked)
    before = core.store.last_audit_seq
    dry = _post(admin, f"{ROOM}/forget?lang=en", **KEYS)
    assert dry.status_code == 200 and 'id="people-dry"' in dry.text
    assert 'data-store="events"' in dry.text and 'data-store="list_quarantine"' in dry.text
    assert "Still in force" in dry.text and 'id="people-force"' in dry.text
    assert _held(core) == held and core.store.last_seq == last_seq
    assert len(core.lists.current.revoked) == revoked
    assert all(e["holder"] == NAME for e in core.store.events(0, 2))
    (row,) = _audits(core, before)  # the request's own row: counts, never the data
    assert row["action"] == "confirm_asked" and row["detail"]["about"] == "person_forgotten"
    assert row["detail"]["rows"] == held and NAME not in json.dumps(row, ensure_ascii=False)


def test_forget_confirmed_refuses_in_force_unless_forced_then_says_the_fleet_line(core, admin):
    _resident(core, quarantined=True)
    fields = hidden_fields(_post(admin, f"{ROOM}/forget", **KEYS).text, "forget-form")
    assert fields["confirm"] == "yes" and fields["seen"] and "force" not in fields
    before = core.store.last_audit_seq
    refused = send(admin, f"{ROOM}/forget?lang=en", fields)
    assert refused.status_code == 400 and "Nothing was forgotten: still in force" in refused.text
    assert 'id="people-dry"' in refused.text  # the preview again, to tick force on
    assert _held(core)["list_quarantine"] == 1
    assert [a["action"] for a in _audits(core, before)] == ["person_forget_failed"]
    before = core.store.last_audit_seq
    done = send(admin, f"{ROOM}/forget?lang=en", fields | {"force": "yes"})
    assert done.status_code == 200 and 'id="people-done"' in done.text
    fleet = re.search(r'id="people-fleet">([^<]*)<', done.text)
    assert (
        fleet and fleet.group(1) == f"kiosk fleet forget --kiosk {core.store.kiosk_id} --seqs 1-2"
    )
    rows = _audits(core, before)
    assert [(a["actor"], a["action"]) for a in rows] == [("root", "person_forgotten")]
    assert rows[0]["detail"]["forced"] is True
    assert [e["holder"] for e in core.store.events(0, 3)] == [None, None, NEIGHBOUR]
    assert PASS in core.lists.current.revoked


def test_a_change_between_the_preview_and_the_confirmation_refuses(core, admin, clock):
    _resident(core)
    fields = hidden_fields(_post(admin, f"{ROOM}/forget", **KEYS).text, "forget-form")
    clock.advance(60)
    add_event(core, holder=NAME, household=HOUSEHOLD, pass_id=PASS)  # a passage since
    refused = send(admin, f"{ROOM}/forget?lang=en", fields)
    assert refused.status_code == 400 and "changed since the preview" in refused.text
    assert _held(core)["events"] == 3  # nothing forgotten
    again = hidden_fields(refused.text, "forget-form")  # the preview of what is there now
    assert again["seen"] != fields["seen"]
    done = send(admin, f"{ROOM}/forget", again)
    assert done.status_code == 200 and "--seqs 1-2,4" in done.text


def test_a_storage_failure_forgets_nothing_and_is_no_5xx(core, admin):
    _resident(core)
    fields = hidden_fields(_post(admin, f"{ROOM}/forget", **KEYS).text, "forget-form")
    real = core.store._transaction

    def full(fn, **kwargs):
        def then_fail(db):
            fn(db)
            raise disk_full()

        return real(then_fail, **kwargs)

    core.store._transaction = full
    try:
        response = send(admin, f"{ROOM}/forget", fields)
    finally:
        core.store._transaction = real
    assert response.status_code == 303 and "err=" in response.headers["location"]
    assert [e["holder"] for e in core.store.events(0, 2)] == [NAME, NAME]
    assert PASS not in core.lists.current.revoked
    assert not [a for a in core.store.audits() if a["action"] == "person_forgotten"]


def test_the_same_confirmation_sent_twice_forgets_once(core, admin):
    _resident(core)
    fields = hidden_fields(_post(admin, f"{ROOM}/forget", **KEYS).text, "forget-form")
    assert send(admin, f"{ROOM}/forget", fields).status_code == 200
    before = core.store.last_audit_seq
    second = send(admin, f"{ROOM}/forget", fields)
    assert second.status_code == 400
    assert [a["action"] for a in _audits(core, before)] == ["person_forget_failed"]


def test_an_expired_session_posting_is_not_shown_anything(core, admin, clock):
    _resident(core)
    clock.advance(timedelta(days=2).total_seconds())
    refused = _post(admin, f"{ROOM}/show", **KEYS)
    assert refused.status_code in (303, 401, 403) and NAME not in refused.text


def test_the_rooms_page_keeps_the_keys_out_of_its_address(core, admin):
    _resident(core)
    page = admin.get(ROOM).text
    forms = re.findall(r'<form method="([a-z]+)" action="([^"]+)"', page)
    assert ("post", f"{ROOM}/show") in forms and all(m == "post" for m, _ in forms)
    assert csrf_of(page) == admin.csrf
    assert BASE.startswith("http")


class _CountingConnection(sqlite3.Connection):
    """Counts the functions defined on it (a definition takes the connection's mutex)."""

    defined = 0

    def create_function(self, *args: Any, **kwargs: Any) -> None:
        type(self).defined += 1
        super().create_function(*args, **kwargs)


def test_find_defines_person_key_once_per_connection_never_again_nor_drops_it(core):
    """Another thread may be running a query on the connection: a definition or a drop
    there froze every thread (SQLite's mutex against the GIL)."""
    _resident(core)
    conn = sqlite3.connect(core.store.path, factory=_CountingConnection, check_same_thread=False)
    db = sqlite_utils.Database(conn)
    person = Person.of(name=NAME, household=HOUSEHOLD)
    first = find(db, person, date(2026, 3, 2)).counts()
    assert _CountingConnection.defined == 1  # person_key
    for _ in range(3):
        assert find(db, person, date(2026, 3, 2)).counts() == first
    assert _CountingConnection.defined == 1
    conn.close()


def test_the_preview_reads_on_the_worker_threads_own_reader(core, admin, monkeypatch):
    """The reader of the thread that runs the preview (``would_forget``, the CLI's dry run),
    never the event loop's (another preview's worker may be using that one at the same
    moment)."""
    import ui.guard.community.people as room
    from kiosk.people import would_forget

    _resident(core)
    own: list[bool] = []

    def spy(db, person, today):
        own.append(db is core.store.reader())
        return would_forget(db, person, today)

    monkeypatch.setattr(room, "would_forget", spy)
    assert _post(admin, f"{ROOM}/forget", **KEYS).status_code == 200
    assert own == [True]


@pytest.mark.slow
def test_two_previews_at_once_both_answer(core, admin):
    """A double tap, two admins: both previews answer (before, the daemon froze whole)."""
    for _ in range(200):
        add_event(core, holder=NAME, household=HOUSEHOLD, pass_id=PASS)
    start = threading.Barrier(2, timeout=30)
    codes: list[int] = []

    def preview() -> None:
        start.wait()
        for _ in range(3):
            codes.append(_post(admin, f"{ROOM}/forget", **KEYS).status_code)

    threads = [threading.Thread(target=preview, daemon=True) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not any(t.is_alive() for t in threads)
    assert codes == [200] * 6


def test_keys_up_to_the_fields_600_characters_travel_whole_in_the_download_and_forget(core, admin):
    """The forms carried the keys cut at 500 characters: the download left the second pass
    out of the resident's copy, the confirmation forgot another set than the preview's."""
    add_event(core, holder="A", household="7-1404", pass_id=PASS)
    add_event(core, holder="B", household="7-1405", pass_id="0a0b0c0d0e0f")
    typed = f"{PASS}," + " " * 520 + ",0a0b0c0d0e0f"
    assert len(typed) <= 600
    page = _post(admin, f"{ROOM}/show", pass_id=typed).text
    fields = hidden_fields(page, "download-form")
    assert fields["pass_id"] == typed
    copy = send(admin, f"{ROOM}/show", fields).json()
    assert copy["passes"] == ["0a0b0c0d0e0f", PASS]
    preview = _post(admin, f"{ROOM}/forget", pass_id=typed).text
    fields = hidden_fields(preview, "forget-form")
    assert fields["pass_id"] == typed
    done = send(admin, f"{ROOM}/forget", fields)
    assert done.status_code == 200 and "kiosk fleet forget" in done.text
    assert [e["holder"] for e in core.store.events() if e["purged_at"] is None] == []


def test_a_passage_committed_after_the_confirmations_check_is_not_forgotten(
    core, admin, clock, monkeypatch
):
    """Between the route's check of the version and ``forget``'s transaction there are
    awaits: a passage committed there was forgotten without having been previewed. The
    version is compared inside ``forget``'s transaction: refused, nothing forgotten."""
    import kiosk.people as people

    _resident(core)
    fields = hidden_fields(_post(admin, f"{ROOM}/forget", **KEYS).text, "forget-form")
    freeze = people._freeze

    def passage_meanwhile(*args: Any) -> None:  # after the check, before the transaction
        add_event(core, holder=NAME, household=HOUSEHOLD, pass_id=PASS)
        freeze(*args)

    monkeypatch.setattr(people, "_freeze", passage_meanwhile)
    before = core.store.last_audit_seq
    refused = send(admin, f"{ROOM}/forget?lang=en", fields)
    assert refused.status_code == 400 and "changed since the preview" in refused.text
    assert _held(core)["events"] == 3  # nothing forgotten, the new passage neither
    assert "person_forgotten" not in [a["action"] for a in _audits(core, before)]
    assert PASS not in core.lists.current.revoked
    monkeypatch.setattr(people, "_freeze", freeze)
    again = hidden_fields(refused.text, "forget-form")  # the preview of what is there now
    done = send(admin, f"{ROOM}/forget", again)
    assert done.status_code == 200 and "--seqs 1-2,4" in done.text


def test_every_store_a_forget_reaches_has_its_words_in_both_languages():
    """The room names each store it lists (``people.st.<table>``) and what a forget does
    there (``people.do.<table>``): a table of ``kiosk.people.RULES`` without them, the
    manager's corrections of a returnee (``obs_corrections``), made show and forget 500."""
    from kiosk.people import RULES
    from ui import i18n

    missing = [
        f"{family}.{table}"
        for table in RULES
        for family in ("people.st", "people.do")
        if not i18n.has(f"{family}.{table}")
    ]
    assert missing == []
    for lang in ("zh", "en"):
        assert all(i18n.t(lang, f"people.st.{table}") != f"people.st.{table}" for table in RULES)


def test_a_returnee_a_manager_corrected_is_shown_and_previewed(core, admin):
    """Show and the forget's preview answered 500 for any returnee whose registration a
    manager had corrected: the corrections' store had no name on the page."""
    back = date(2026, 3, 1)
    person = core.ledgers.observation.register(
        name="Marlowe Qiuxiang", household="7-1044", phone="13800000000", origin="Wuhan",
        date_back=back, actor="manager", days=14,
    )  # fmt: skip
    core.ledgers.observation.correct(
        person.id, name=NAME, household=HOUSEHOLD, date_back=back,
        until=date(2026, 3, 14), actor="manager",
    )  # fmt: skip
    shown = _post(admin, f"{ROOM}/show?lang=en", **KEYS)
    assert shown.status_code == 200
    assert 'data-store="obs_corrections"' in shown.text
    assert 'id="store-obs_corrections">Returnees&#39; corrections' in shown.text
    dry = _post(admin, f"{ROOM}/forget?lang=en", **KEYS)
    assert dry.status_code == 200 and 'data-store="obs_corrections"' in dry.text


def _scanned(core, code: str) -> tuple[str, tuple[str, ...]]:
    """The gate's decision on ``code`` shown at it now: the real policy on its lists."""
    normal = Temperature("ok", 36.6, 34.6, 22.0, None)
    inputs = PassageInputs("in", code, normal, False, False, direction_trusted=True)
    state = PolicyState(core.trust, core.lists.current, core.history, None)
    policy, thermometry = KioskConfig().policy, ThermometryConfig()
    decision = decide(inputs, state, core.clock.now(), policy, thermometry, UTC)
    return decision.decision, tuple(decision.reasons)


def test_a_pass_id_alone_no_row_holds_is_revoked_by_the_consoles_forget(core, admin, clock):
    """A resident this gate never recorded (first seen after the archive its card was restored
    from), forgotten from the office's list at the console by the pass they hold: the preview
    was "No store of this gate holds anyone" (400), nothing to confirm, and the card kept
    opening the gate, while ``kiosk person forget`` revoked it (571a293e). The console's
    forget is the core's, as the CLI's: the preview says no row holds the pass and that the
    forget voids it, changing nothing; confirmed, the card is refused as revoked, no row
    touched, one ``person_forgotten`` row (counts only)."""
    _resident(core)
    code, card = issue_pass(core.issuer_key, "D4-0404", "Late Comer", now=clock.now())
    assert _scanned(core, code)[0] == "pass"
    events = core.store.events()
    dry = _post(admin, f"{ROOM}/forget?lang=en", pass_id=card.pass_id.upper())
    assert dry.status_code == 200 and 'id="people-dry"' in dry.text, refused_words(dry.text)
    assert 'id="people-pass-only"' in dry.text and "check it against the request" in dry.text
    assert card.pass_id not in core.lists.current.revoked  # the preview changes nothing
    before = core.store.last_audit_seq
    done = send(admin, f"{ROOM}/forget?lang=en", hidden_fields(dry.text, "forget-form"))
    assert done.status_code == 200 and 'id="people-done"' in done.text
    assert "a card with this pass id opens this gate no more" in done.text
    assert _scanned(core, code) == ("deny", ("pass_revoked",))
    assert core.store.events() == events
    (row,) = [a for a in _audits(core, before) if a["action"] == "person_forgotten"]
    assert row["detail"]["keys"] == ["pass_id"] and row["detail"]["passes_revoked"] == 1


def test_other_keys_beside_a_pass_id_that_find_no_one_are_refused_as_the_cli_refuses(core, admin):
    """The office's list spelling a name otherwise than this gate recorded it, with the pass
    she holds now: refused (a privacy request must never read as done), nothing voided, and,
    as the CLI says it, told to forget the pass id alone when she was never recorded here."""
    _resident(core)
    keys = {"name": "Marie Claire Dubois", "pass_id": "aabbccddee01"}
    before = core.store.last_audit_seq
    for lang, words in (("en", "forget their pass id alone"), ("zh-CN", "只填通行证编号")):
        refused = _post(admin, f"{ROOM}/forget?lang={lang}", **keys)
        assert refused.status_code == 400 and words in refused.text, refused_words(refused.text)
        assert 'id="people-dry"' not in refused.text
    shown = _post(admin, f"{ROOM}/show?lang=en", pass_id="aabbccddee01")
    assert shown.status_code == 400 and "No store of this gate holds anyone" in shown.text
    assert "alone" not in refused_words(shown.text)  # show finds nobody: nothing to forget
    assert "aabbccddee01" not in core.lists.current.revoked
    actions = [a["action"] for a in _audits(core, before)]
    assert actions == ["person_forget_failed"] * 2 + ["person_show_failed"]


def refused_words(page: str) -> str:
    return " ".join(re.findall(r"✖[^<]*", page))
