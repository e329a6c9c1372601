"""What a review of 49cc10b9 found in forgetting a person, pinned (the fix is in the commit that
added each test). On a FakeClock (the ``guard_core`` and ``clock`` fixtures), nothing written
outside ``tmp_path``."""

from __future__ import annotations

import io
import json

import pytest
from guard_support import add_event
from test_clock_floor import MORNING, _config, _decide, key  # noqa: F401 (a fixture)
from test_peer_revocations import card, gates, told_and_fetched  # noqa: F401 (a fixture)
from test_person import cli  # noqa: F401 (a fixture: kiosk person beside the core)

from checkpoint import app
from kiosk.clock import FakeClock
from kiosk.lists import sign_bundle
from kiosk.passes import TrustList, issue_pass, load_private_key, new_key_pair
from kiosk.people import Person, forget

NAME, HOUSEHOLD, CARD = "Marlowe Qiuxiang", "7-1404", "feedfacecafe"


@pytest.fixture
def office(tmp_path, guard_core, clock):
    """The office's bundles for ``guard_core``: ``publish(version, revocations)``."""
    key_path, _ = new_key_pair(tmp_path / "office", "office")
    signing, trust = load_private_key(key_path), TrustList.from_dir(tmp_path / "office")

    def publish(version: int, revocations: list[dict[str, str]]) -> None:
        payload = {"format": "kiosk-lists/1", "version": version}
        payload |= {"issued_at": clock.now().isoformat(), "revocations": revocations}
        result = guard_core.lists.import_bundle(sign_bundle(signing, payload), trust, "fleet")
        assert result.applied, result.message

    return publish


def test_a_forgotten_residents_card_the_office_had_revoked_stays_shut_when_it_lifts_it(
    guard_core, clock, office
):
    """The office's bundle had revoked her card (reported lost) when she was forgotten: the
    forget's revocation was INSERT OR IGNORE, so it added nothing of its own, and the office's
    next bundle, no longer listing the card (found again), deleted the bundle's row: the card
    of a resident forgotten opened the gate again. The forget's revocation is now a row of
    this gate's own (the office's reason kept under it as ``bundle_reason``)."""
    add_event(guard_core, pass_id=CARD, household=HOUSEHOLD, holder=NAME)
    office(1, [{"pass_id": CARD, "reason": "reported lost"}])
    done = forget(guard_core.store, Person.of(name=NAME, household=HOUSEHOLD), clock.now(),
                  actor="root", force=True)  # fmt: skip
    row = (
        guard_core.store.reader()
        .execute(
            "SELECT source, reason, bundle_reason FROM list_revocations WHERE pass_id = ?", [CARD]
        )
        .fetchone()
    )
    clock.advance(60)
    office(2, [])  # the office lifts its own void (the card found again)
    guard_core.lists.load()
    assert guard_core.lists.current.is_revoked(CARD)
    assert done.passes_revoked == 1
    assert tuple(row) == ("forget", "", "")  # the office's mark kept, its reason emptied


def test_a_forgotten_residents_revoked_card_shown_again_records_no_name(tmp_path, key):  # noqa: F811
    """Forgotten, then her revoked card shown at the gate: the deny copied the card's holder
    and household into the log again, the name the forget had just emptied. A ``pass_revoked``
    deny records the pass id only now (every one: a revoked card speaks for nobody)."""
    clock = FakeClock(start=MORNING)
    core = app.build_core(_config(), tmp_path, clock)
    try:
        text, _card = issue_pass(key, "2-202", "Li Wei", days=30, now=MORNING)
        assert _decide(core, clock, key, text=text)["decision"] == "pass"
        forget(core.store, Person.of(name="Li Wei", household="2-202"), clock.now(),
               actor="root", tz="Asia/Shanghai")  # fmt: skip
        core.lists.reload_if_changed()
        clock.advance(120)
        assert _decide(core, clock, key, text=text)["reasons"] == ["pass_revoked"]
        [row] = (
            core.store.reader()
            .execute(
                "SELECT decision, pass_id, household, holder FROM events WHERE purged_at IS NULL"
            )
            .fetchall()
        )
        assert tuple(row) == ("deny", _card.pass_id, None, None)
    finally:
        core.close()


def test_the_forgets_revocation_is_news_for_the_other_gates_at_once(gates, clock):  # noqa: F811
    """A guard's void pokes the other gates at once; the forget's revocation waited for their
    poll (an hour here): the card of the resident forgotten opened the next gate meanwhile.
    The reload that finds it (the console's at once, the daemon's lists check for the CLI's)
    tells the peers now."""
    north, south = gates
    code, pass_id = card("Wang L")
    assert north.passage(code, "out")["decision"] == "pass"
    south.sync.poll()  # south holds the passage: the forget deletes it there at its next page
    forget(north.core.store, Person.of(pass_ids=[pass_id]), clock.now(), actor="root")
    assert north.core.lists.reload_if_changed()  # the daemon's lists check, the console's
    clock.advance(5)
    told_and_fetched(north, south)
    assert south.passage(code, "in")["reasons"] == ["pass_revoked"]


def test_the_dry_run_says_which_pass_ids_no_row_holds(guard_core, cli, capsys, monkeypatch):  # noqa: F811
    """The dry run gave a count of passes only: a pass id no row holds, alone or beside keys
    that find rows, was voided with no word in it. Its JSON says ``pass_only`` and lists
    ``unheld``; stderr warns of each."""
    add_event(guard_core, holder=NAME, household=HOUSEHOLD, pass_id=CARD)
    monkeypatch.setattr("sys.stdin", io.TextIOWrapper(io.BytesIO(
        f"name={NAME}\nhousehold={HOUSEHOLD}\npass_id=dddddddddd07\n".encode())))  # fmt: skip
    assert cli("person", "forget", "--keys-file", "-") == 0
    said = capsys.readouterr()
    would = json.loads(said.out)
    assert (would["pass_only"], would["unheld"]) == (False, ["dddddddddd07"])
    assert "no row here holds pass id dddddddddd07" in said.err, said.err
    monkeypatch.setattr("sys.stdin", io.TextIOWrapper(io.BytesIO(b"pass_id=dddddddddd08\n")))
    assert cli("person", "forget", "--keys-file", "-") == 0
    said = capsys.readouterr()
    assert json.loads(said.out)["pass_only"] is True
    assert "no row here holds pass id dddddddddd08" in said.err, said.err
