"""The rotation of docs/passes.md end to end, as a site runs it over a year: a new issuer key
added to the trust folder, the old key's passes still accepted until its ``.pub`` is removed,
then refused; and the guard console's own issuing key, which a rotation can leave untrusted."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from guard_support import login, post, refused_with

from kiosk.passes import (
    PassError,
    issue_pass,
    load_private_key,
    new_key_pair,
    public_key_pem,
)


def test_rotation_accepts_both_keys_meanwhile_and_refuses_the_old_once_removed(
    guard_core, data_dir, tmp_path
):
    trust = guard_core.trust
    old_key = guard_core.issuer_key
    now = guard_core.clock.now()
    old_payload, _ = issue_pass(old_key, "5-702", "Li", days=365, now=now)
    new_key_path, new_pub = new_key_pair(tmp_path / "office", "office-2027")
    (data_dir / "trust" / "office-2027.pub").write_bytes(new_pub.read_bytes())
    new_payload, _ = issue_pass(load_private_key(new_key_path), "5-702", "Li", days=365, now=now)
    assert trust.verify(old_payload).household == trust.verify(new_payload).household == "5-702"
    (data_dir / "trust" / "site.pub").unlink()
    assert trust.verify(new_payload).holder == "Li"
    try:
        trust.verify(old_payload)
    except PassError as exc:
        assert exc.reason == "pass_unknown_key"
    else:
        raise AssertionError("the removed key's pass was still accepted")


@pytest.mark.slow
def test_the_console_refuses_to_issue_a_pass_its_own_gate_would_refuse(
    guard_client, guard_core, data_dir, tmp_path
):
    """Rotation done by the book (the new office key added, the old ``.pub`` removed) while
    the console still signs with the key whose ``.pub`` went: every pass a guard issued there
    was printed and handed out, then refused at this gate as another compound's pass
    (``pass_unknown_key``, a 'foreign pass' alarm). The console says its key is not trusted
    here, on the page and when asked to issue, and issues nothing."""
    _, new_pub = new_key_pair(tmp_path / "office", "office-2027")
    (data_dir / "trust" / "office-2027.pub").write_bytes(new_pub.read_bytes())
    (data_dir / "trust" / "site.pub").unlink()
    guard_core.clock.advance(timedelta(days=200).total_seconds())
    csrf = login(guard_client)
    page = guard_client.get("/guard/passes").text
    assert 'id="pass-form"' not in page
    assert "removed in a key rotation?" in guard_client.get("/guard/passes?lang=en").text
    response = post(
        guard_client, "/guard/passes?lang=en", csrf, household="7-301", holder="A", days="1"
    )
    assert "put its .pub back in the trust folder" in refused_with(guard_client, response)
    assert not [a for a in guard_core.store.audits() if a["action"] == "pass_issued"]
    # Trusted again (its .pub put back): issuing works at once, no restart.
    pub = guard_core.issuer_key.public_key()
    (data_dir / "trust" / "site.pub").write_bytes(public_key_pem(pub))
    response = post(guard_client, "/guard/passes", csrf, household="7-301", holder="A", days="1")
    assert response.status_code == 200 and 'id="print-card"' in response.text
    assert re.search(r'data-payload="KP1:', response.text)
