"""Fuzz the list imports (kiosk/lists.py, kiosk/listimport.py): the signed bundle envelope
an office sends, a bundle payload signed by the trusted key (what an issuer's bug or a
compromised office tool could send), and the CSV a guard uploads.

Only ``BundleError`` / ``ListError`` (``open_bundle``, ``import_csv``) and ``CommunityError``
(``plan_list_import``) may come out.
"""

from __future__ import annotations

import json

import atheris
from _fuzz import instrumented, run, scratch

with instrumented():
    from kiosk import lists as lists_mod
    from kiosk.clock import FakeClock
    from kiosk.community import CommunityError
    from kiosk.listimport import plan_list_import
    from kiosk.lists import BundleError, ListError, ListStore, open_bundle, sign_bundle
    from kiosk.passes import TrustList
    from kiosk.store import EventLog

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

_KEY = Ed25519PrivateKey.from_private_bytes(bytes(range(32)))
_TRUST = TrustList([("office", _KEY.public_key())])
_CLOCK = FakeClock()
_LOG = EventLog(scratch() / "kiosk.db", "gate-1", _CLOCK, migrations=[lists_mod.MIGRATIONS])
_LOG.open()
_STORE = ListStore(_LOG, _CLOCK)
_STORE.load()
_PAYLOAD = {
    "format": "kiosk-lists/1",
    "version": 1,
    "issued_at": "2026-03-01T20:00:00+00:00",
    "revocations": [{"pass_id": "a1b2c3d4e5f6", "reason": "lost"}],
    "quarantine": [{"household": "12-3", "from": "2026-03-01", "until": "2026-03-14"}],
    "households": [{"household": "12-3", "residents": 4, "observation_until": "2026-03-20"}],
}
_HEADERS = {
    "revocations": "pass_id,reason",
    "quarantine": "household,holder,from,until,note",
    "households": "household,residents,observation_until,note",
}


def _signed(fdp: atheris.FuzzedDataProvider) -> None:
    doc = json.loads(json.dumps(_PAYLOAD))
    section = fdp.PickValueInList(["revocations", "quarantine", "households", None])
    text = fdp.ConsumeUnicodeNoSurrogates(fdp.ConsumeIntInRange(0, 80))
    try:
        value = json.loads(text)
    except (ValueError, RecursionError):
        value = text
    if section is None:
        doc[fdp.PickValueInList(["version", "issued_at", "format"])] = value
    else:
        row = doc[section][0]
        row[fdp.PickValueInList(sorted(row) + ["extra"])] = value
    try:
        bundle = sign_bundle(_KEY, doc)
    except UnicodeEncodeError:  # a lone surrogate from a JSON escape: the office cannot sign it
        return
    try:
        open_bundle(bundle, _TRUST)
    except BundleError:
        pass


def _csv(fdp: atheris.FuzzedDataProvider) -> None:
    kind = fdp.PickValueInList(sorted(_HEADERS))
    body = fdp.ConsumeBytes(fdp.remaining_bytes())
    data = (_HEADERS[kind] + "\n").encode() + body if fdp.ConsumeBool() else body
    try:
        plan_list_import(data, "list.csv", _STORE.current, kind)
    except CommunityError:
        pass
    try:
        _STORE.import_csv(kind, data.decode("utf-8", "replace"), "fuzz")
    except ListError:
        pass


def one_input(data: bytes) -> None:
    fdp = atheris.FuzzedDataProvider(data)
    mode = fdp.ConsumeIntInRange(0, 2)
    if mode == 0:
        try:
            open_bundle(fdp.ConsumeBytes(fdp.remaining_bytes()), _TRUST)
        except BundleError:
            pass
    elif mode == 1:
        _signed(fdp)
    else:
        _csv(fdp)


if __name__ == "__main__":
    run(one_input)
