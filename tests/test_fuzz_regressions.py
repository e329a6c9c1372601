"""Defects found by the coverage-guided fuzzers (tests/fuzz/, docs/system-tests.md) or while
writing them, each pinned with the minimised input inline: no atheris is needed to run these."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from kiosk import lists as lists_mod
from kiosk.calibration import Calibration, CalibrationStore
from kiosk.community import CommunityError
from kiosk.listimport import plan_list_import
from kiosk.lists import BundleError, ListError, ListStore, open_bundle
from kiosk.passes import (
    KeyFileError,
    TrustList,
    TrustListError,
    issue_pass,
    key_id_of,
    load_private_key,
    public_key_pem,
)
from kiosk.store import EventLog
from office.gatereports import collect_reports
from office.listsync import ListSync
from office.pull import PullError


def test_a_calibration_number_too_large_for_a_float_is_corrupt_and_the_store_keeps_the_good_one(
    tmp_path,
):
    """fuzz_calibration: ``"curve": 1000...0`` (400 digits) raised OverflowError out of
    ``Calibration.load``, past the store's ``CalibrationError`` and into the reading loop."""
    path = tmp_path / "calibration.json"
    Calibration(offset_c=0.7).save(path)
    store = CalibrationStore(path)
    doc = Calibration().to_dict()
    doc["model"]["curve"] = 10**400
    path.write_text(json.dumps(doc))
    assert store.get().offset_c == 0.7
    assert store.problem is not None and "is corrupt" in store.problem


#: An SM2 public key (the curve Chinese offices issue keys on), which cryptography cannot load.
SM2_PUBLIC_PEM = b"""-----BEGIN PUBLIC KEY-----
MFkwEwYHKoZIzj0CAQYIKoEcz1UBgi0DQgAEiz7fFjeE55mmFdHd6DCf7UJtv7xe
IDUxuaKGSGmKKGh/S6PxJE3qbgCv35lRbmkA0fWLlDEWD/BaGCAKYDb0Jg==
-----END PUBLIC KEY-----
"""


def test_a_key_on_an_unsupported_curve_in_the_trust_folder_is_refused_and_passes_still_verify(
    tmp_path,
):
    """Found writing fuzz_trust (read in its loader, not by a run): ``load_public_key`` let
    cryptography's ``UnsupportedAlgorithm`` through (it is no ValueError): ``kiosk run``
    stopped on a traceback, and a running kiosk's re-read failed inside every ``verify``, so
    every pass was ``pass_malformed``."""
    key = Ed25519PrivateKey.generate()
    (tmp_path / "office.pub").write_bytes(public_key_pem(key.public_key()))
    trust = TrustList.from_dir(tmp_path)
    text, _ = issue_pass(key, "12-3", "Wang Fang", now=datetime(2026, 3, 1, tzinfo=UTC))
    (tmp_path / "district.pub").write_bytes(SM2_PUBLIC_PEM)
    assert trust.verify(text).household == "12-3"
    assert trust.problem is not None and "district.pub" in trust.problem
    with pytest.raises(TrustListError, match="district.pub"):
        TrustList.from_dir(tmp_path)


def test_an_sm2_private_key_file_is_a_key_file_error_not_a_traceback(tmp_path):
    """The same for the issuer's key (``kiosk pass issue --key``): a throwaway SM2 key."""
    path = tmp_path / "issuer.key"
    path.write_bytes(
        b"-----BEGIN PRIVATE KEY-----\n"
        b"MIGHAgEAMBMGByqGSM49AgEGCCqBHM9VAYItBG0wawIBAQQgyNbAv5mGIcqhQmnD\n"
        b"Z6uLP0XwbioHJPtY4I6EP81P5OihRANCAAS37e7L+AbkG5iSjsYWlNRqsNUZ90Bz\n"
        b"oPXBMbDjPu+F19E8t6M2WOd5I+Gh8nvP6hke4x8iREOugPLeFfqTi63l\n"
        b"-----END PRIVATE KEY-----\n"
    )
    with pytest.raises(KeyFileError, match="issuer.key"):
        load_private_key(path)


def test_a_bundle_whose_payload_escapes_a_lone_surrogate_is_rejected_not_a_traceback(
    tmp_path, clock
):
    """Found writing fuzz_lists: ``"payload": "\\ud800"`` is valid JSON for a text Python
    cannot encode; ``open_bundle`` let the UnicodeEncodeError out: the gate's list sync logged
    a traceback every minute while its status kept the last good check."""
    key = Ed25519PrivateKey.generate()
    trust = TrustList([("office", key.public_key())])
    body = json.dumps(
        {"key_id": key_id_of(key.public_key()), "payload": "\ud800", "signature": ""}
    ).encode()
    with pytest.raises(BundleError, match="payload"):
        open_bundle(body, trust)
    log = EventLog(tmp_path / "gate.db", "gate-1", clock, "NORMAL", [lists_mod.MIGRATIONS])
    log.open()
    try:
        store = ListStore(log, clock)
        store.load()
        client = httpx.Client(
            transport=httpx.MockTransport(lambda r: httpx.Response(200, content=body))
        )
        sync = ListSync(store, trust, "http://office/lists/bundle", clock, client=client)
        assert sync.check().outcome == "rejected"
        assert sync.last_error is not None and sync.failures == 1
    finally:
        log.close()


def test_a_list_sheet_whose_note_holds_a_lone_carriage_return_is_refused(tmp_path, clock):
    """fuzz_lists: a note cell holding a lone CR (an old Mac line end, ``"a\\rb"`` in quotes)
    passed the preview, then the apply's hand-off CSV carried it unquoted and
    ``ListStore.import_csv`` raised the csv module's Error: the guard's apply was a 500. A
    line break in a single-line cell is refused at the preview now (most often a stray quote
    that swallowed the rows below), naming its line; nothing is applied."""
    log = EventLog(tmp_path / "gate.db", "gate-1", clock, "NORMAL", [lists_mod.MIGRATIONS])
    log.open()
    try:
        store = ListStore(log, clock)
        store.load()
        data = b'household,residents,note\n12-3,4,"moved in\rlast week"\n'
        with pytest.raises(CommunityError, match="line 2, column C .*line break"):
            plan_list_import(data, "households.csv", store.current, "households")
        assert list(log.reader().query("select note from list_households")) == []
        with pytest.raises(ListError, match="line 2"):
            store.import_csv("households", "household,note\n12-3,moved in\rlast week\n", "g")
    finally:
        log.close()


class _KeptReports:
    def write_gate_report(self, kiosk_id, day, timezone, ledgers, final):
        raise AssertionError(f"kept a report of a gate in {timezone!r}")

    def final_report_days(self, kiosk_id, since):
        return set()


def test_a_gate_report_naming_a_zone_folder_as_its_timezone_is_the_reports_error(tmp_path):
    """Found writing fuzz_reports (the office's other reader of a gate's answers): a report whose
    ``timezone`` was ``"Asia"`` (a folder of the zone database, which ZoneInfo opens and fails
    on with IsADirectoryError) escaped ``collect_reports``: the collector logged "pull failed
    unexpectedly" with a traceback every round and showed the office's zoneinfo path."""
    report = {"day": "2026-03-03", "timezone": "Asia", "community": {}}
    client = httpx.Client(transport=httpx.MockTransport(lambda r: httpx.Response(200, json=report)))
    now = datetime(2026, 3, 3, 1, 0, tzinfo=UTC)
    with pytest.raises(PullError, match="'Asia' is unknown here"):
        collect_reports(client, _KeptReports(), "http://gate-1", "gate-1", "t" * 20, now=now)
