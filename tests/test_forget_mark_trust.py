"""Another gate's "forgotten" mark cannot hide who tried this gate (docs/privacy.md, *The pass*
and *A revoked card shown again*).

A peer's page names the revocations a resident's forget made (``forgotten``), and this gate
then records a deny of such a card with the pass id alone. Any peer could say so of any card:
one whose key this gate does not pin (its pages taken unsigned), or a signing one about a card
this gate's own guard voided; and even a real forget hid the household a quarantine held, so
the breach's alarm named nobody and a guard's manual pass over it was asked no hold. Pinned
here, with the forget's count of a card a guard had voided (it said ``0 passes ... voided``) and
the console's words when lifting a forget's revocation. On FakeClocks, nothing written outside
``tmp_path``.
"""

from __future__ import annotations

import io
from datetime import timedelta

import pytest
import test_compound_gates
from fastapi.testclient import TestClient
from guard_support import BASE, add_event, close_core, login, make_app, make_core, post
from guard_support import send as send_form
from test_clock_floor import _config, _decide, trusted_key
from test_compound_gates import KEY, NOW, Gate, peer_entry
from test_forget_marks import gates  # noqa: F401 (a fixture: north's key pinned at south)
from test_guard_two_tablets import remove_form
from test_peer_revocations import base_page, card
from test_person import cli  # noqa: F401 (a fixture: kiosk person beside the core)

import ui.api
from kiosk import policy
from kiosk.config import parse_config
from kiosk.lists import sign_bundle
from kiosk.passes import TrustList, issue_pass, public_key_pem
from kiosk.peers import check_page, held_revocations
from kiosk.people import Person, forget

HOUSEHOLD = "1-101"


def _last(core) -> tuple:
    return tuple(
        core.store.reader()
        .execute("SELECT decision, pass_id, household, holder FROM events ORDER BY seq DESC")
        .fetchone()
    )


def _forged_page(monkeypatch, pass_id: str) -> None:
    """North's page says its forget revoked ``pass_id`` (north compromised, or whoever answers
    at its address)."""
    said = {"revocations": [{"pass_id": pass_id, "revoked_at": None, "actor": None}]}
    monkeypatch.setattr(ui.api, "revocations_page", lambda db: said | {"forgotten": [pass_id]})


def _quarantined(core, clock) -> None:
    today = clock.now().date()
    core.lists.add_quarantine(
        HOUSEHOLD, None, today, today + timedelta(days=14), actor="guard Zhao"
    )


@pytest.fixture
def unpinned(tmp_path, clock, monkeypatch):
    """North and south, south pinning no key of north's (compound.peers without trust_key:
    its answers taken unsigned, docs/operations.md), north signing nothing."""
    policy = test_compound_gates.POLICY | {"mode": "pass_only", "hours": {"enabled": False}}
    monkeypatch.setattr(test_compound_gates, "POLICY", policy)
    trust = tmp_path / "gate-south" / "trust"
    trust.mkdir(parents=True)
    (trust / "office.pub").write_bytes(public_key_pem(KEY.public_key()))
    north = Gate(tmp_path, "gate-north", clock, [peer_entry("gate-south")], poll_s=3600)
    south = Gate(tmp_path, "gate-south", clock, [peer_entry("gate-north")], poll_s=3600)
    north.peer_of(south, monkeypatch)
    south.peer_of(north, monkeypatch)
    yield north, south
    south.close()
    north.close()


# --- 1. whose mark is believed ---------------------------------------------------------------


def test_an_unpinned_peers_forgotten_mark_is_held_as_a_guards_void(unpinned, clock, monkeypatch):
    """Any peer, unpinned and unsigned, could mark a card forgotten: south then recorded the
    deny of a quarantined household's card naming nobody."""
    _north, south = unpinned
    code, pass_id = card("Wang L")
    _quarantined(south.core, clock)
    _forged_page(monkeypatch, pass_id)
    south.sync.poll()
    south.core.lists.reload_if_changed()
    [held] = held_revocations(south.core.store.reader())
    assert (held.pass_id, held.forgotten) == (pass_id, False)
    assert not south.core.lists.current.is_forgotten(pass_id)
    said = _decide(south.core, clock, KEY, "out", text=code)
    assert said["reasons"] == ["pass_revoked", "quarantined"]
    assert _last(south.core) == ("deny", pass_id, HOUSEHOLD, "Wang L")


def test_an_unsigned_page_keeps_no_mark_a_signed_one_does():
    page = base_page([{"pass_id": "a" * 12}]) | {"forgotten": ["a" * 12]}
    [held] = check_page(page, "gate-north", 0, 500, test_compound_gates.NOW).revocations
    assert not held.forgotten
    [held] = check_page(
        page, "gate-north", 0, 500, test_compound_gates.NOW, signed=True
    ).revocations
    assert held.forgotten


def test_a_peers_mark_never_blanks_the_household_of_this_gates_guards_void(
    gates, clock, monkeypatch,  # noqa: F811
):  # fmt: skip
    """South's guard voided the card as stolen; north's signed page (north compromised) said a
    forget made it: south's deny of the quarantine breach then named nobody. The household
    stays; the holder a signed mark hides (a forget mark keeps the holder out everywhere)."""
    _north, south = gates
    code, pass_id = card("Wang L")
    south.core.lists.revoke(pass_id, "stolen from Wang L", actor="guard Zhao")
    _quarantined(south.core, clock)
    _forged_page(monkeypatch, pass_id)
    south.sync.poll()
    south.core.lists.reload_if_changed()
    assert [r.forgotten for r in held_revocations(south.core.store.reader())] == [True]
    assert south.core.lists.current.revocations[pass_id].source == "guard"
    said = _decide(south.core, clock, KEY, "out", text=code)
    assert (said["alarm"], said["household"]) == ("quarantine_breach", HOUSEHOLD)
    assert _last(south.core) == ("deny", pass_id, HOUSEHOLD, None)


def _office_voided(core, pass_id: str) -> None:
    """The office's bundle revokes ``pass_id`` (a lost card, reported at the office)."""
    payload = {"format": "kiosk-lists/1", "version": 1, "issued_at": NOW.isoformat()}
    payload["revocations"] = [{"pass_id": pass_id, "reason": "lost"}]
    core.lists.import_bundle(
        sign_bundle(KEY, payload), TrustList([("office", KEY.public_key())]), "o"
    )


@pytest.mark.parametrize("voided_by", ["guard", "bundle"])
def test_a_genuine_forget_at_a_peer_keeps_the_holder_of_a_card_voided_here_out(
    gates, clock, voided_by,  # noqa: F811
):  # fmt: skip
    """Her lost card voided at south (by its guard, or by the office's bundle), the resident
    later forgotten at north (pinned, signed): south held north's mark, yet its deny of the
    card recorded her name again, because its own void "decided". Now the name never comes
    back; the household of south's own void stays."""
    north, south = gates
    code, pass_id = card("Wang L")
    if voided_by == "guard":
        south.core.lists.revoke(pass_id, "lost", actor="guard Zhao")
    else:
        _office_voided(south.core, pass_id)
    south.core.lists.reload_if_changed()
    forget(north.core.store, Person.of(pass_ids=[pass_id]), clock.now(), actor="root")
    assert north.core.lists.reload_if_changed()
    clock.advance(5)
    south.sync.poll()
    south.core.lists.reload_if_changed()
    assert south.core.lists.current.revocations[pass_id].source == voided_by
    assert south.core.lists.current.is_forgotten(pass_id)
    said = _decide(south.core, clock, KEY, "out", text=code)
    assert said["reasons"] == ["pass_revoked"] and said["holder_initial"] is None
    assert _last(south.core) == ("deny", pass_id, HOUSEHOLD, None)


# --- 2. a hold keeps the household -----------------------------------------------------------


def test_the_hold_reasons_are_reasons_the_policy_gives():
    holds = getattr(policy, "HOLD_REASONS", frozenset())
    assert holds <= set(policy.REASONS)
    assert {"quarantined", "quota_exceeded"} <= holds and "pass_revoked" not in holds


def _forgotten_at_north(gates, clock) -> tuple:  # noqa: F811
    """North forgot the resident by her card, and south polled it: ``(south, card, id)``."""
    north, south = gates
    code, pass_id = card("Wang L")
    forget(north.core.store, Person.of(pass_ids=[pass_id]), clock.now(), actor="root")
    assert north.core.lists.reload_if_changed()
    clock.advance(5)
    south.sync.poll()
    south.core.lists.reload_if_changed()
    return south, code, pass_id


def test_a_forgotten_cards_deny_keeps_the_household_a_peers_quarantine_holds(gates, clock):  # noqa: F811
    """North really forgot the resident; south quarantines the household (its other
    residents, say): the breach on the forgotten card was recorded and announced naming no
    household. The household is kept, the holder never."""
    south, code, pass_id = _forgotten_at_north(gates, clock)
    assert south.core.lists.current.is_forgotten(pass_id)
    _quarantined(south.core, clock)
    said = _decide(south.core, clock, KEY, "out", text=code)
    assert said["reasons"] == ["pass_revoked", "quarantined"]
    assert (said["alarm"], said["household"], said["holder_initial"]) == (
        "quarantine_breach", HOUSEHOLD, None,
    )  # fmt: skip
    assert _last(south.core) == ("deny", pass_id, HOUSEHOLD, None)


def test_a_forgotten_cards_deny_without_a_hold_still_names_nobody(gates, clock):  # noqa: F811
    south, code, pass_id = _forgotten_at_north(gates, clock)
    assert _decide(south.core, clock, KEY, "out", text=code)["reasons"] == ["pass_revoked"]
    assert _last(south.core) == ("deny", pass_id, None, None)


@pytest.fixture
def site(data_dir, clock, monkeypatch):
    """A gate deciding on a card alone, trusting ``key`` (``(core, key)``), its console on."""
    key = trusted_key(data_dir)
    core = make_core(data_dir, clock, monkeypatch, _config())
    yield core, key
    close_core(core)


def test_a_guards_manual_pass_over_a_forgotten_cards_quarantine_breach_is_asked_the_hold(
    site, clock
):
    """The deny of a card forgotten here, its household quarantined, named no household: the
    guard's manual pass "about the last passage" let the person out, no hold asked."""
    core, key = site
    code, pass_ = issue_pass(key, HOUSEHOLD, "Wang L", days=30, now=clock.now())
    forget(core.store, Person.of(pass_ids=[pass_.pass_id]), clock.now(), actor="root")
    core.lists.reload_if_changed()
    _quarantined(core, clock)
    said = _decide(core, clock, key, "out", text=code)
    assert said["reasons"] == ["pass_revoked", "quarantined"]
    seq = core.store.last_seq
    assert _last(core) == ("deny", pass_.pass_id, HOUSEHOLD, None)
    with TestClient(make_app(core), base_url=BASE) as client:
        csrf = login(client)
        sent = {"decision": "pass", "subject": str(seq), "reason": "让他出去", "direction": "out"}
        asked = post(client, "/guard/manual", csrf, **sent)
        assert asked.status_code == 200 and 'id="confirm-confirm-quarantine"' in asked.text
        assert core.store.last_seq == seq  # nothing recorded until the hold is confirmed


def test_a_forgotten_card_coming_home_to_a_quarantined_household_keeps_the_household(
    data_dir, clock, monkeypatch
):
    """A one-way "in" lane (its direction trusted): a forgotten card coming home to a
    quarantined household passes with flag ``quarantine`` and alarm ``quarantine_return`` and
    no reason to deny, and its event named no household: the guard's alarm named nobody."""
    key = trusted_key(data_dir)
    site = {"kiosk_id": "gate-1", "timezone": "Asia/Shanghai", "direction": "in"}
    cfg = parse_config({"site": site, "policy": {"mode": "pass_only", "hours": {"enabled": False}}})
    core = make_core(data_dir, clock, monkeypatch, cfg)
    try:
        code, pass_ = issue_pass(key, HOUSEHOLD, "Wang L", days=30, now=clock.now())
        forget(core.store, Person.of(pass_ids=[pass_.pass_id]), clock.now(), actor="root")
        core.lists.reload_if_changed()
        _quarantined(core, clock)
        core.lists.reload_if_changed()
        said = _decide(core, clock, key, "in", text=code)
        assert "quarantine" in said["flags"] and said["alarm"] == "quarantine_return"
        assert not policy.HOLD_REASONS & set(said["reasons"])
        assert (said["household"], said["holder_initial"]) == (HOUSEHOLD, None)
        assert _last(core) == ("deny", pass_.pass_id, HOUSEHOLD, None)
    finally:
        close_core(core)


def _decision(reasons=(), flags=(), alarm=None) -> policy.Decision:
    return policy.Decision("deny", tuple(reasons), None, False, alarm, tuple(flags))


@pytest.mark.parametrize(
    ("decision", "holds"),
    [
        (_decision(["pass_revoked"]), False),
        (_decision(["pass_revoked"], ["observation"], "forged_pass"), False),
        (_decision(["pass_revoked", "quota_exceeded"]), True),
        (_decision([], ["quarantine"], "quarantine_return"), True),
        (_decision([], ["quarantine"], "fever"), True),  # a fever's alarm first: the flag says it
        (_decision(["fever"], [], "quarantine_breach"), True),
    ],
)
def test_a_hold_is_a_hold_reason_or_a_quarantine_alarm_or_flag(decision, holds):
    assert policy.holds_household(decision) is holds


# --- 3. what the forget says it voided, what lifting it says ---------------------------------

NAME, HH, PID = "Marlowe Qiuxiang", "7-1404", "c0ffee000002"


def test_a_forget_by_name_counts_the_card_a_guard_had_voided(guard_core, cli, capsys, monkeypatch):  # noqa: F811
    """The guard had voided her card (lost); the forget marked that row its own and said
    ``0 passes found in this gate's rows voided`` ... STILL OPENS THE GATE."""
    add_event(guard_core, holder=NAME, household=HH, pass_id=PID)
    guard_core.lists.revoke(PID, "lost", actor="guard Li")
    keys = f"name={NAME}\nhousehold={HH}\n".encode()
    monkeypatch.setattr("sys.stdin", io.TextIOWrapper(io.BytesIO(keys)))
    assert cli("person", "forget", "--keys-file", "-", "--yes") == 0
    said = capsys.readouterr()
    assert '"passes_revoked": 1' in said.out
    assert "1 pass found in this gate's rows voided or already voided" in said.err, said.err
    row = guard_core.store.reader().execute(
        "SELECT source FROM list_revocations WHERE pass_id = ?", [PID]
    )
    assert row.fetchone()[0] == "forget"


def test_forgetting_again_counts_no_card_the_first_forget_voided(guard_core, clock):
    forget(guard_core.store, Person.of(pass_ids=[PID]), clock.now(), actor="root")
    clock.advance(60)
    again = forget(guard_core.store, Person.of(pass_ids=[PID]), clock.now(), actor="root")
    assert again.passes_revoked == 0


@pytest.mark.parametrize(
    ("lang", "words"), [("en", "when a resident was forgotten"), ("zh", "删除一位居民的个人信息")]
)
def test_lifting_a_forgets_revocation_says_it_undoes_the_forget(guard_core, clock, lang, words):
    """The console's confirmation said only "It will open the gate again"."""
    forget(guard_core.store, Person.of(pass_ids=[PID]), clock.now(), actor="root")
    guard_core.lists.revoke("c0ffee000003", "lost", actor="guard Li")
    guard_core.lists.reload_if_changed()
    with TestClient(make_app(guard_core), base_url=BASE) as client:
        login(client)
        client.cookies.set("kiosk_lang", lang)
        page = client.get("/guard/lists").text
        path = "/guard/lists/revocations/remove"
        asked = send_form(client, path, remove_form(page, "revocations", "pass_id", PID))
        assert asked.status_code == 200 and words in asked.text
        other = remove_form(page, "revocations", "pass_id", "c0ffee000003")
        assert words not in send_form(client, path, other).text
