"""A refused request's audit row says which kind it was for only when that is a kind there is:
the posted ``kind`` went into the row as typed, so a crafted POST (or a field filled by a
browser's autofill) stored a resident's name or phone in the audit chain, which outlives every
ledger's retention and no forget reaches as it does a ledger (docs/privacy.md)."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from guard_support import BASE, console_fixtures, post

from kiosk.services import KINDS

clock, core, app, alice, admin = console_fixtures(datetime(2026, 3, 2, 8, 30, tzinfo=UTC))

CRAFTED = "Wang Lei 1380013800"  # within the 20 characters the row kept


def _details(core, after: int) -> str:
    return json.dumps([a["detail"] for a in core.store.audits(after_seq=after)], ensure_ascii=False)


def _kinds(core, after: int) -> list[str]:
    return [a["detail"].get("kind") for a in core.store.audits(after_seq=after)]


def test_a_service_request_of_no_known_kind_is_audited_without_the_posted_text(core, alice):
    before = core.store.last_audit_seq
    refused = post(alice, "/guard/community/services", alice.csrf, household="5-702", kind=CRAFTED)
    assert refused.status_code == 400
    assert "Wang Lei" not in _details(core, before) and "1380013800" not in _details(core, before)
    assert _kinds(core, before) == ["(unknown)"]
    core.lists.add_quarantine("5-702", None, "2026-02-28", "2026-03-14", "root")
    before = core.store.last_audit_seq
    post(alice, "/guard/community/services", alice.csrf, household="5-702", kind=KINDS[0])
    assert _kinds(core, before) == [KINDS[0]]


@pytest.mark.parametrize(("kind", "said"), [(CRAFTED, "(unknown)"), ("vehicles", "vehicles")])
def test_an_import_preview_is_audited_with_its_kind_only_when_it_is_one(core, admin, kind, said):
    before = core.store.last_audit_seq
    admin.post(
        "/guard/community/imports/preview",
        data={"csrf": admin.csrf, "kind": kind},
        files={"file": ("v.csv", b"not,a\nsheet,at all\n")},
        headers={"Origin": BASE},
    )
    assert "Wang Lei" not in _details(core, before)
    assert _kinds(core, before) == [said]
