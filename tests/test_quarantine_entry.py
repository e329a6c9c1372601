"""A quarantine as a guard or a clerk enters it: a household the compound map does not know
is asked about first (a typo, ``9-999`` for ``9-909``, confined nobody and let the real
residents walk out), and its days stay within the days the console takes (``9999-12-31``, a
year typed wrong, was a quarantine for good)."""

from __future__ import annotations

import html
import json
import re

import pytest
from guard_support import hidden_fields, login, refused_with, send
from test_lists import OFFICE, TRUST

from checkpoint.cli import main
from kiosk import lists as lists_mod
from kiosk import queries
from kiosk.clock import FakeClock
from kiosk.lists import BundleError, ListError, ListStore, sign_bundle
from kiosk.store import EventLog

ADD = "/guard/lists/quarantine/add"
MAP = b"building,floor,household\n5,7,5-702\n9,9,9-909\n"


def _with_map(core) -> None:
    led = core.ledgers
    led.compound.apply(led.compound.plan_import(MAP, "map.csv"), "root")


def _add(client, typed: dict[str, str]):
    fields = hidden_fields(client.get("/guard/lists?lang=en").text, "quarantine-form")
    return send(client, f"{ADD}?lang=en", fields | {"until": "2026-03-16"} | typed)


def _confirm_form(page: str) -> dict[str, str]:
    form = page.split('id="confirm-form"', 1)[1].split("</form>", 1)[0]
    found = re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', form)
    return {k: html.unescape(v) for k, v in found}


def _quarantined(core) -> list[str]:
    return [str(r["household"]) for r in queries.list_rows(core.store)["quarantine"]]


def test_a_quarantine_for_a_household_not_on_the_map_is_asked_about_first(guard_client, guard_core):
    _with_map(guard_core)
    login(guard_client)
    asked = _add(guard_client, {"household": "9-999"})
    assert asked.status_code == 200 and 'id="confirm-form"' in asked.text
    assert "9-999 is not on the compound map" in html.unescape(asked.text)
    assert _quarantined(guard_core) == []
    confirmed = send(guard_client, ADD, _confirm_form(asked.text))
    assert refused_with(guard_client, confirmed) is None
    assert _quarantined(guard_core) == ["9-999"]


@pytest.mark.parametrize("household", ["9-909", "５－７０２"])
def test_a_quarantine_for_a_household_on_the_map_is_added_at_once(
    guard_client, guard_core, household
):
    """On the map however it is typed (``kiosk.lists.same_text``): no question."""
    _with_map(guard_core)
    login(guard_client)
    added = _add(guard_client, {"household": household})
    assert added.status_code == 303 and refused_with(guard_client, added) is None
    assert len(_quarantined(guard_core)) == 1


def test_without_a_map_a_quarantine_is_added_at_once(guard_client, guard_core):
    login(guard_client)
    added = _add(guard_client, {"household": "9-999"})
    assert added.status_code == 303 and refused_with(guard_client, added) is None
    assert _quarantined(guard_core) == ["9-999"]


@pytest.mark.parametrize(
    "days",
    [{"until": "9999-12-31"}, {"from": "0001-01-01"}, {"from": "1999-12-31"}],
    ids=["until", "from", "from-1999"],
)
def test_a_quarantine_day_outside_the_consoles_days_is_refused_and_the_form_kept(
    guard_client, guard_core, days
):
    login(guard_client)
    refused = _add(guard_client, {"household": "5-702", **days})
    assert refused.status_code == 400
    said = refused_with(guard_client, refused) or ""
    assert "2000-01-01" in said and "2999-12-31" in said, said
    form = refused.text.split('id="quarantine-form"', 1)[1].split("</form>", 1)[0]
    for value in days.values():
        assert f'value="{value}"' in form
    assert _quarantined(guard_core) == []


@pytest.fixture
def log(tmp_path, clock):
    with EventLog(tmp_path / "k.db", "gate-1", clock, migrations=[lists_mod.MIGRATIONS]) as opened:
        yield opened


@pytest.mark.parametrize(
    ("start", "until"), [("2026-03-02", "9999-12-31"), ("0001-01-01", "2026-03-02")]
)
def test_the_list_store_refuses_a_quarantine_day_outside_its_days(log, clock, start, until):
    store = ListStore(log, clock)
    store.load()
    with pytest.raises(ListError, match=r"outside 2000-01-01\.\.2999-12-31"):
        store.add_quarantine("5-702", None, start, until, actor="g")
    assert store.load().quarantine == ()


def test_a_bundle_with_a_quarantine_day_outside_its_days_names_the_row(log, clock):
    store = ListStore(log, clock)
    store.load()
    payload = {
        "format": "kiosk-lists/1",
        "version": 2,
        "issued_at": "2026-03-01T20:00:00+00:00",
        "quarantine": [{"household": "5-702", "from": "2026-03-01", "until": "9999-12-31"}],
    }
    with pytest.raises(BundleError, match=r"quarantine\[0\]\.until.*2999-12-31"):
        store.import_bundle(sign_bundle(OFFICE, payload), TRUST, actor="o")
    assert store.load().quarantine == ()


def test_a_sheet_with_a_quarantine_day_outside_its_days_is_a_clear_error(tmp_path, capsys):
    path = tmp_path / "kiosk.db"
    EventLog(path, "gate-1", FakeClock(), "NORMAL").open().close()
    sheet = tmp_path / "q.csv"
    sheet.write_text("household,from,until\n5-702,2026-03-02,9999-12-31\n", encoding="utf-8")
    assert main(["lists", "import", str(sheet), "--apply", "--db", str(path)]) == 2
    err = capsys.readouterr().err
    assert "until" in err and "2999-12-31" in err, err
    log = EventLog(path, "gate-1", FakeClock(), "NORMAL").open()
    try:
        assert list(log.reader()["list_quarantine"].rows) == []
    finally:
        log.close()


def test_a_sheets_quarantine_for_a_household_not_on_the_map_is_said_before_it_is_applied(
    tmp_path, capsys
):
    """The preview (no ``--apply``) counts the sheet's quarantined households the compound
    map lacks, names them with ``--show-keys`` and says to check them; nothing is written."""
    path = tmp_path / "kiosk.db"
    mapped = tmp_path / "map.csv"
    mapped.write_bytes(MAP)
    assert main(["compound", "import", str(mapped), "--apply", "--db", str(path)]) == 0
    sheet = tmp_path / "q.csv"
    rows = "5-702,2026-03-02,2026-03-16\n9-999,2026-03-02,2026-03-16\n"
    sheet.write_text(f"household,from,until\n{rows}", encoding="utf-8")
    capsys.readouterr()
    assert main(["lists", "import", str(sheet), "--db", str(path), "--show-keys"]) == 0
    out, err = capsys.readouterr()
    said = json.loads(out)
    assert said["not_on_map"] == 1 and said["keys"]["not_on_map"] == ["9-999"]
    assert "1 household" in err and "not on the compound map" in err
    assert main(["lists", "import", str(sheet), "--db", str(path)]) == 0
    out, err = capsys.readouterr()
    assert "9-999" not in out + err  # a household code is personal data: --show-keys names it


@pytest.mark.parametrize(
    ("lang", "words"),
    [("zh-CN", "结束日期应在 2000-01-01 到 2999-12-31 之间"),
     ("en", "Until must be between 2000-01-01 and 2999-12-31")],
)  # fmt: skip
def test_a_quarantine_until_outside_the_days_is_refused_by_the_console_in_its_words(
    guard_client, guard_core, lang, words
):
    """The console refuses an ``until`` outside its days itself, naming the field in the
    guard's language, before the list store would (which says it in its own words)."""
    login(guard_client)
    fields = hidden_fields(guard_client.get("/guard/lists").text, "quarantine-form")
    typed = {"household": "5-702", "until": "9999-12-31"}
    refused = send(guard_client, f"{ADD}?lang={lang}", fields | typed)
    said = refused_with(guard_client, refused) or ""
    assert refused.status_code == 400 and said == words
    assert _quarantined(guard_core) == []
