"""Fuzz ``kiosk pass batch``'s households CSV (checkpoint/cli/pass_cmd.py ``_batch_rows``) and
what each accepted row becomes: a pass (``issue_pass``) and its SVG card (kiosk/cards.py).

Only ``UsageError`` may come out of the CSV; a row it accepts must issue, verify back to the
same household and holder, and make a card that is well-formed XML showing both as text (a
name with ``<`` or ``&`` must not break or inject into the SVG).
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from datetime import UTC, datetime

import atheris
from _fuzz import instrumented, run, scratch

with instrumented():
    from checkpoint.cli.errors import UsageError
    from checkpoint.cli.pass_cmd import _batch_rows
    from kiosk.cards import render_card
    from kiosk.passes import TrustList, issue_pass

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

_KEY = Ed25519PrivateKey.from_private_bytes(bytes(range(32)))
_TRUST = TrustList([("office", _KEY.public_key())])
_PATH = scratch() / "households.csv"
_NOW = datetime(2026, 3, 1, tzinfo=UTC)


def one_input(data: bytes) -> None:
    fdp = atheris.FuzzedDataProvider(data)
    header = fdp.PickValueInList([b"household,holder\n", b"household,holder,role,days,flags\n"])
    _PATH.write_bytes((header if fdp.ConsumeBool() else b"") + fdp.ConsumeBytes(4000))
    try:
        rows = _batch_rows(_PATH, 30.0)
    except UsageError:
        return
    for row in rows[:3]:
        text, pass_ = issue_pass(
            _KEY, row["household"], row["holder"], row["role"], row["days"], _NOW, row["flags"]
        )
        again = _TRUST.verify(text)
        if (again.household, again.holder) != (row["household"], row["holder"]):
            raise AssertionError(f"{row} verified as {again}")
        svg = ET.fromstring(
            render_card(pass_, text, "svg", site_name=row["holder"], tz="Asia/Shanghai")
        )
        shown = {"".join(t.itertext()) for t in svg.iter("{http://www.w3.org/2000/svg}text")}
        if row["household"] not in shown:
            raise AssertionError(f"household {row['household']!r} not on the card: {shown}")


if __name__ == "__main__":
    run(one_input)
