"""A household's observation day stays within the days the console takes, as a quarantine's
does: ``0206-03-16`` (2026 typed wrong), ``9999-12-31`` or ``0001-01-01`` was taken and said
"done" by the console's household form, the list store, the office's bundle and a sheet,
while the quarantine form beside it refused the same typo."""

from __future__ import annotations

import pytest
from guard_support import hidden_fields, login, refused_with, send
from test_lists import OFFICE, TRUST

from checkpoint.cli import main
from kiosk import lists as lists_mod
from kiosk import queries
from kiosk.clock import FakeClock
from kiosk.lists import BundleError, ListError, ListStore, sign_bundle
from kiosk.store import EventLog
from office.listsync import publish_bundle

ADD = "/guard/lists/households/add"
WRONG = ["0206-03-16", "9999-12-31", "0001-01-01", "1999-12-31"]


def _households(core) -> list[str]:
    return [str(r["household"]) for r in queries.list_rows(core.store)["households"]]


@pytest.mark.parametrize("until", WRONG)
def test_the_consoles_household_form_refuses_an_observation_day_outside_its_days(
    guard_client, guard_core, until
):
    login(guard_client)
    fields = hidden_fields(guard_client.get("/guard/lists").text, "households-form")
    typed = {"household": "3-201", "residents": "2", "observation_until": until}
    refused = send(guard_client, f"{ADD}?lang=en", fields | typed)
    assert refused.status_code == 400
    said = "Observation until must be between 2000-01-01 and 2999-12-31"
    assert refused_with(guard_client, refused) == said
    form = refused.text.split('id="households-form"', 1)[1].split("</form>", 1)[0]
    assert f'value="{until}"' in form  # the form as typed, to correct the year
    assert _households(guard_core) == []


def test_the_consoles_household_form_takes_the_first_and_last_of_its_days(guard_client, guard_core):
    login(guard_client)
    for household, until in (("3-201", "2000-01-01"), ("3-202", "2999-12-31")):
        fields = hidden_fields(guard_client.get("/guard/lists").text, "households-form")
        typed = {"household": household, "observation_until": until}
        assert refused_with(guard_client, send(guard_client, ADD, fields | typed)) is None
    assert sorted(_households(guard_core)) == ["3-201", "3-202"]


@pytest.fixture
def store(tmp_path, clock):
    with EventLog(tmp_path / "k.db", "gate-1", clock, migrations=[lists_mod.MIGRATIONS]) as log:
        opened = ListStore(log, clock)
        opened.load()
        yield opened


@pytest.mark.parametrize("until", WRONG)
def test_the_list_store_refuses_an_observation_day_outside_its_days(store, until):
    with pytest.raises(ListError, match=r"outside 2000-01-01\.\.2999-12-31"):
        store.set_household("3-201", "g", 2, until)
    assert store.load().households == {}


def test_a_bundle_with_an_observation_day_outside_its_days_names_the_row_and_keeps_the_lists(
    store,
):
    """The whole bundle is refused, naming its row; the lists in force stay as they were
    (as a quarantine's day outside them is: the engine never decides on half a bundle)."""
    good = {"format": "kiosk-lists/1", "issued_at": "2026-03-01T20:00:00+00:00"}
    kept = [{"household": "3-201", "residents": 2}]
    store.import_bundle(sign_bundle(OFFICE, good | {"version": 1, "households": kept}), TRUST, "o")
    rows = kept + [{"household": "3-202", "observation_until": "0206-03-16"}]
    payload = good | {"version": 2, "households": rows}
    with pytest.raises(BundleError, match=r"households\[1\]\.observation_until.*2999-12-31"):
        store.import_bundle(sign_bundle(OFFICE, payload), TRUST, actor="o")
    assert list(store.load().households) == ["3-201"]


def test_the_office_refuses_to_publish_an_observation_day_outside_its_days(tmp_path, clock):
    from kiosk.passes import load_private_key, new_key_pair

    key = load_private_key(new_key_pair(tmp_path / "office", "office")[0])
    lists = {"households": [{"household": "3-201", "observation_until": "9999-12-31"}]}
    out = tmp_path / "www" / "bundle.json"
    with pytest.raises(BundleError, match=r"households\.0\.observation_until.*2999-12-31"):
        publish_bundle(key, lists, out, now=clock.now())
    assert not out.exists()


def test_a_csv_import_with_an_observation_day_outside_its_days_names_the_line(store):
    text = "household,observation_until\n3-201,2026-03-16\n3-202,0206-03-16\n"
    with pytest.raises(ListError, match=r"line 3: observation_until: .*2999-12-31"):
        store.import_csv("households", text, actor="g")
    assert store.load().households == {}


def test_a_sheet_with_an_observation_day_outside_its_days_is_refused_naming_its_line(
    tmp_path, capsys
):
    """`kiosk lists import` (the clerk's sheet, as the console's import takes it): refused
    naming the line and the column, nothing applied, the lists as they were."""
    path = tmp_path / "kiosk.db"
    EventLog(path, "gate-1", FakeClock(), "NORMAL").open().close()
    sheet = tmp_path / "h.csv"
    sheet.write_text(
        "household,residents,observation_until\n3-201,2,2026-03-16\n3-202,3,9999-12-31\n",
        encoding="utf-8",
    )
    assert main(["lists", "import", str(sheet), "--apply", "--db", str(path)]) == 2
    err = capsys.readouterr().err
    assert "line 3" in err and "observation_until" in err and "2999-12-31" in err, err
    log = EventLog(path, "gate-1", FakeClock(), "NORMAL").open()
    try:
        assert list(log.reader()["list_households"].rows) == []
    finally:
        log.close()
