"""Lists out: the office publishes a signed bundle; a kiosk fetches, verifies, applies, ages."""

from __future__ import annotations

import json
import logging
import threading
from datetime import timedelta
from types import SimpleNamespace

import httpx
import pytest

from checkpoint.cli import main
from kiosk import lists as lists_mod
from kiosk.lists import BundleError, ListStore
from kiosk.logs import FLAP_LINES
from kiosk.passes import TrustList, load_private_key, new_key_pair
from kiosk.store import EventLog
from office import listsync as listsync_mod
from office.listsync import (
    MAX_BUNDLE_BYTES,
    BundleFile,
    ListSync,
    bundle_version,
    publish_bundle,
)

URL = "http://office/lists/bundle"
REVOKED = "0123456789ab"


@pytest.fixture
def office(tmp_path):
    key_path, _pub = new_key_pair(tmp_path / "office", "office")
    return SimpleNamespace(
        key=load_private_key(key_path),
        key_path=key_path,
        trust_dir=tmp_path / "office",
        bundle=tmp_path / "www" / "bundle.json",
    )


@pytest.fixture
def gate(tmp_path, clock, office):
    store = EventLog(tmp_path / "gate.db", "gate-1", clock, "NORMAL", [lists_mod.MIGRATIONS])
    store.open()
    list_store = ListStore(store, clock)
    list_store.load()
    yield SimpleNamespace(
        store=store, lists=list_store, trust=TrustList.from_dir(office.trust_dir), clock=clock
    )
    store.close()


class Office:
    """The collector's ``/lists/bundle`` (ETag, 304) as an httpx transport, or a failure."""

    def __init__(self, bundle_path):
        self.file = BundleFile(bundle_path)
        self.requests: list[httpx.Request] = []
        self.down = False
        self.body_override: bytes | None = None

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if self.down:
            raise httpx.ConnectError("office unreachable", request=request)
        if self.body_override is not None:
            return httpx.Response(200, content=self.body_override)
        got = self.file.get()
        if got is None:
            return httpx.Response(404)
        body, etag, _ = got
        if request.headers.get("if-none-match") == etag:
            return httpx.Response(304, headers={"ETag": etag})
        return httpx.Response(200, content=body, headers={"ETag": etag})


def _sync(gate, office_server, **kw):
    client = httpx.Client(transport=httpx.MockTransport(office_server))
    return ListSync(gate.lists, gate.trust, URL, gate.clock, client=client, **kw)


def _lists(n: int = 1) -> dict:
    return {
        "revocations": [{"pass_id": f"{i:012x}", "reason": "lost"} for i in range(n)]
        + [{"pass_id": REVOKED, "reason": "lost"}],
        "quarantine": [{"household": "3-201", "from": "2026-03-01", "until": "2026-03-14"}],
        "households": [{"household": "3-201", "residents": 3}],
    }


# --------------------------------------------------------------------------- office side


def test_publish_numbers_versions_upward_and_never_back(office, clock):
    first = publish_bundle(office.key, _lists(), office.bundle, now=clock.now())
    second = publish_bundle(office.key, _lists(2), office.bundle, now=clock.now())
    assert (first.version, second.version) == (1, 2) and first.etag != second.etag
    assert bundle_version(office.bundle.read_bytes()) == 2
    with pytest.raises(BundleError, match="not above the published version 2"):
        publish_bundle(office.key, _lists(), office.bundle, now=clock.now(), version=2)
    assert publish_bundle(office.key, _lists(), office.bundle, now=clock.now(), version=9).version
    names = sorted(p.name for p in office.bundle.parent.iterdir())
    assert names == ["bundle.compounds.json", "bundle.json", "bundle.json.version"]  # no temp left


def test_publish_refuses_a_bad_row_before_any_kiosk_sees_it(office, clock):
    bad = {"revocations": [{"pass_id": "not-hex"}]}
    with pytest.raises(BundleError, match=r"revocations\.0\.pass_id"):
        publish_bundle(office.key, bad, office.bundle, now=clock.now())
    with pytest.raises(BundleError, match="unknown lists: visitors"):
        publish_bundle(office.key, {"visitors": []}, office.bundle, now=clock.now())
    assert not office.bundle.exists()


def test_bundle_file_rereads_when_republished(office, clock):
    served = BundleFile(office.bundle)
    assert served.get() is None
    publish_bundle(office.key, _lists(), office.bundle, now=clock.now())
    body1, etag1, v1 = served.get()
    publish_bundle(office.key, _lists(3), office.bundle, now=clock.now())
    body2, etag2, v2 = served.get()
    assert (v1, v2) == (1, 2) and etag1 != etag2 and body2 == office.bundle.read_bytes()


def test_cli_publish(office, tmp_path, capsys):
    lists_file = tmp_path / "lists.json"
    lists_file.write_text(json.dumps(_lists()), encoding="utf-8")
    argv = ["fleet", "publish", "--key", str(office.key_path), "--lists", str(lists_file)]
    argv += ["--out", str(office.bundle)]
    office.bundle.parent.mkdir()
    assert main(argv) == 0 and json.loads(capsys.readouterr().out)["version"] == 1
    assert main(argv) == 0 and json.loads(capsys.readouterr().out)["version"] == 2
    assert main([*argv, "--version", "1"]) == 2
    assert "not above the published version 2" in capsys.readouterr().err


# --------------------------------------------------------------------------- kiosk side


def test_a_published_bundle_is_fetched_verified_and_applied(gate, office, clock):
    server = Office(office.bundle)
    publish_bundle(office.key, _lists(), office.bundle, now=clock.now())
    sync = _sync(gate, server)
    result = sync.check()
    assert (result.outcome, result.version) == ("applied", 1)
    assert gate.lists.current.is_revoked(REVOKED)
    assert gate.lists.current.quarantine_for("3-201", None, clock.now().date()) is not None
    assert sync.status()["state"] == "ok" and sync.status()["bundle_version"] == 1


def test_an_unchanged_bundle_costs_a_304_and_still_confirms_the_lists(gate, office, clock):
    server = Office(office.bundle)
    publish_bundle(office.key, _lists(), office.bundle, now=clock.now())
    sync = _sync(gate, server)
    sync.check()
    clock.advance(3600)
    result = sync.check()
    assert result.outcome == "not_modified"
    assert server.requests[-1].headers["if-none-match"] == BundleFile(office.bundle).get()[1]
    assert sync.status()["age_s"] == 0  # confirmed just now, though unchanged for an hour


def test_a_newer_bundle_replaces_the_previous_one_atomically(gate, office, clock):
    server = Office(office.bundle)
    publish_bundle(office.key, _lists(5), office.bundle, now=clock.now())
    sync = _sync(gate, server)
    sync.check()
    assert len(gate.lists.current.revocations) == 6
    publish_bundle(office.key, {"revocations": [{"pass_id": REVOKED}]}, office.bundle,
                   now=clock.now(), confirm_drop=True)  # fmt: skip
    assert sync.check().outcome == "applied"
    assert gate.lists.current.revoked == frozenset({REVOKED})
    assert gate.lists.current.quarantine == ()


def test_an_older_bundle_is_never_applied(gate, office, clock):
    server = Office(office.bundle)
    publish_bundle(office.key, _lists(), office.bundle, now=clock.now())
    old = office.bundle.read_bytes()
    publish_bundle(office.key, {"revocations": []}, office.bundle, now=clock.now())
    sync = _sync(gate, server)
    assert sync.check().version == 2
    server.body_override = old  # a replayed (or rolled-back) version 1
    result = sync.check()
    assert result.outcome == "rejected" and "older" in result.message
    assert gate.lists.current.freshness.bundle_version == 2
    assert not gate.lists.current.is_revoked(REVOKED)
    assert sync.status()["state"] == "rejected"


def test_a_bundle_not_signed_by_a_trusted_key_is_rejected(gate, office, clock, tmp_path):
    stranger_key, _ = new_key_pair(tmp_path / "stranger", "stranger")
    server = Office(office.bundle)
    publish_bundle(load_private_key(stranger_key), _lists(), office.bundle, now=clock.now())
    sync = _sync(gate, server)
    assert sync.check().outcome == "rejected"
    tampered = json.loads(office.bundle.read_text())
    publish_bundle(office.key, _lists(), tmp_path / "good.json", now=clock.now())
    good = json.loads((tmp_path / "good.json").read_text())
    good["payload"] = good["payload"].replace(REVOKED, "ba9876543210")
    server.body_override = json.dumps(good).encode()
    assert sync.check().outcome == "rejected"
    assert tampered["key_id"] != good["key_id"]
    assert gate.lists.current.freshness.bundle_version == 0 and not gate.lists.current.revoked


def test_an_oversized_bundle_is_refused_without_reading_it_all(gate, office):
    server = Office(office.bundle)
    server.body_override = b"x" * (MAX_BUNDLE_BYTES + 1)
    assert _sync(gate, server).check().outcome == "rejected"


class Portal(Office):
    """A captive portal or a proxy between the gate and the office: its own page, 200."""

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        page = b"<!DOCTYPE html><html><body>Sign in to the guest Wi-Fi</body></html>"
        return httpx.Response(200, content=page, headers={"Content-Type": "text/html"})


def test_a_captive_portals_page_is_the_office_not_reached_not_a_rejected_bundle(gate, office):
    # A proxy's or captive portal's HTML page, answered 200, was "lists rejected: bundle
    # must be an object with key_id, payload and signature" and state "rejected", as for a
    # bundle the office signed wrong: the operator looked at the office's signing key.
    sync = _sync(gate, Portal(office.bundle))
    result = sync.check()
    assert result.outcome == "error", result
    assert URL in result.message and "text/html" in result.message, result.message
    assert "not a lists bundle" in result.message, result.message
    assert sync.status()["state"] == "offline"


def test_a_gate_offline_for_a_day_keeps_its_lists_and_says_how_old_they_are(gate, office, clock):
    server = Office(office.bundle)
    publish_bundle(office.key, _lists(), office.bundle, now=clock.now())
    sync = _sync(gate, server, stale_after_h=24)
    sync.check()
    server.down = True
    for _ in range(25):  # hourly checks, all failing
        clock.advance(3600)
        assert sync.check().outcome == "error"
    status = sync.status()
    assert status["state"] == "offline" and status["stale"] is True
    assert status["age_s"] == 25 * 3600 and status["consecutive_failures"] == 25
    assert "cannot reach the office" in status["last_error"]
    assert gate.lists.current.is_revoked(REVOKED)  # still deciding on the last good lists
    server.down = False
    assert sync.check().outcome == "not_modified"
    assert sync.status()["stale"] is False and sync.status()["age_s"] == 0


def test_after_a_restart_the_age_counts_from_the_last_change(gate, office, clock):
    server = Office(office.bundle)
    publish_bundle(office.key, _lists(), office.bundle, now=clock.now())
    _sync(gate, server).check()
    clock.advance(timedelta(hours=5).total_seconds())
    restarted = _sync(gate, server)
    assert restarted.status()["age_s"] == 5 * 3600
    assert restarted.status()["state"] == "never_checked"


def test_from_config_is_off_without_a_lists_url(gate):
    from kiosk.config import parse_config

    core = SimpleNamespace(config=parse_config({}))
    assert ListSync.from_config(core) is None
    core = SimpleNamespace(config=parse_config({"fleet": {"lists_poll_s": 60}}))
    assert ListSync.from_config(core) is None


def test_the_kiosk_config_fleet_section_turns_the_sync_on(gate, office, clock):
    from kiosk.config import parse_config

    config = parse_config(
        {"fleet": {"lists_url": URL, "lists_poll_s": 60}, "policy": {"lists_stale_after_h": 12}}
    )
    core = SimpleNamespace(config=config, lists=gate.lists, trust=gate.trust, clock=clock)
    sync = ListSync.from_config(core)
    assert (sync.url, sync.interval_s, sync.stale_after_h) == (URL, 60, 12)
    sync.stop()


def test_lists_the_office_confirms_are_not_shown_stale_on_the_screens(gate, office, clock):
    """Three quiet days (no list changes, a 304 every check): the guard's banner and the
    health report said "lists stale (72 h)" though the office had confirmed them minutes ago;
    what the screens show is the freshness of the lists in force (``Freshness``)."""
    server = Office(office.bundle)
    publish_bundle(office.key, _lists(), office.bundle, now=clock.now())
    sync = _sync(gate, server)
    assert sync.check().outcome == "applied"
    for _ in range(72):
        clock.advance(3600)
        assert sync.check().outcome == "not_modified"
    fresh = gate.lists.current.freshness
    assert not fresh.is_stale(clock.now(), 48)
    shown = fresh.to_dict(clock.now(), 48)
    assert shown["stale"] is False and shown["age_s"] == 0
    assert shown["confirmed_at"] == clock.now().isoformat()
    assert shown["updated_at"] != shown["confirmed_at"]  # the last change is still told apart
    gate.lists.load()  # a guard's edit reloads from the database: the confirmation stays
    assert not gate.lists.current.freshness.is_stale(clock.now(), 48)


def test_a_bundle_is_published_with_dates_every_kiosk_version_reads(office, clock):
    """The office's list written with 2026/3/1 dates (as Excel saves them) was signed as
    typed: kiosks not yet updated to read that form would refuse the whole bundle. The
    bundle carries the checked rows, dates as YYYY-MM-DD."""
    lists = _lists()
    lists["quarantine"] = [{"household": "3-201", "from": "2026/3/1", "until": "2026.3.14"}]
    lists["households"] = [{"household": "3-201", "observation_until": "2026/3/9"}]
    publish_bundle(office.key, lists, office.bundle, now=clock.now())
    payload = json.loads(json.loads(office.bundle.read_text())["payload"])
    assert payload["quarantine"][0]["from"] == "2026-03-01"
    assert payload["quarantine"][0]["until"] == "2026-03-14"
    assert payload["households"][0]["observation_until"] == "2026-03-09"


def test_a_sync_status_after_the_clock_stepped_back_is_not_fresh(gate, office, clock):
    """Checked at 08:30 on a clock three days ahead, then NTP stepped it back: the status
    said "age_s": -259200, "stale": false, until the next check. A check stamped in the
    future gives no age: stale, and ``stamp_ahead`` says why."""
    server = Office(office.bundle)
    publish_bundle(office.key, _lists(), office.bundle, now=clock.now())
    sync = _sync(gate, server)
    assert sync.check().outcome == "applied"
    clock.set_wall(clock.now() - timedelta(days=3))
    status = sync.status()
    assert status["age_s"] is None and status["stale"] is True and status["stamp_ahead"] is True
    assert sync.check().outcome == "not_modified"
    status = sync.status()
    assert status["age_s"] == 0 and status["stale"] is False and status["stamp_ahead"] is False


@pytest.mark.slow
def test_an_office_down_for_a_day_is_one_warning_and_its_return_one_line(
    gate, office, clock, caplog
):
    """The office unreachable (its PC off over a holiday): the retry every minute wrote
    'lists error' each time, 1,440 warnings a day in the gate's journal."""
    server = Office(office.bundle)
    publish_bundle(office.key, _lists(), office.bundle, now=clock.now())
    sync = _sync(gate, server)
    sync.check()
    caplog.set_level("INFO", logger="office.listsync")
    server.down = True
    for _ in range(1440):  # a day of retries, one a minute
        clock.advance(60)
        assert sync.check().outcome == "error"
    lines = [r for r in caplog.records if r.name == "office.listsync"]
    assert [r.levelname for r in lines] == ["WARNING"]
    assert "cannot reach the office" in lines[0].detail
    server.down = False
    clock.advance(60)
    assert sync.check().outcome == "not_modified"
    clock.advance(60)
    sync.check()
    lines = [r for r in caplog.records if r.name == "office.listsync"]
    assert [r.levelname for r in lines] == ["WARNING", "INFO"]
    assert "1440" in lines[1].getMessage() + str(getattr(lines[1], "detail", ""))


def test_an_office_on_a_flaky_link_is_a_few_lines_an_hour_with_the_count(
    gate, office, clock, caplog
):
    """The office's link lost and back at every other check (a Wi-Fi bridge failing): its
    error and the check working again were two lines per flap, for as long as it lasted.
    They are logged as a flapping device's: six an hour, then the state with the count."""
    server = Office(office.bundle)
    publish_bundle(office.key, _lists(), office.bundle, now=clock.now())
    sync = _sync(gate, server)
    sync.check()
    caplog.set_level("INFO", logger="office.listsync")
    for i in range(60):  # an hour: a failed check, the retry a minute on works, ...
        server.down = not i % 2
        sync.check()
        clock.advance(60)
    lines = [r.getMessage() for r in caplog.records if r.name == "office.listsync"]
    assert len(lines) <= FLAP_LINES
    server.down = False
    clock.advance(60)
    sync.check()
    lines = [r.getMessage() for r in caplog.records if r.name == "office.listsync"]
    assert lines[-1].startswith("lists check works (") and "changes not logged" in lines[-1]


def test_a_card_that_cannot_take_the_bundle_is_one_traceback_not_one_a_minute(
    gate, office, clock, caplog, monkeypatch
):
    from kiosk.store import StoreFault

    server = Office(office.bundle)
    publish_bundle(office.key, _lists(), office.bundle, now=clock.now())
    sync = _sync(gate, server)

    def full(*args, **kwargs):
        raise StoreFault("store_fault", "SQLITE_FULL")

    monkeypatch.setattr(gate.lists, "import_bundle", full)
    caplog.set_level("INFO", logger="office.listsync")
    for _ in range(60):  # an hour of retries
        assert sync.run_once() is False
    assert not gate.lists.current.is_revoked(REVOKED)
    errors = [r for r in caplog.records if r.levelname == "ERROR"]
    assert len(errors) == 1 and errors[0].exc_info is not None


def test_a_bundle_restored_from_an_old_backup_does_not_send_versions_back(
    office, gate, clock, tmp_path, capsys
):
    """bundle.json restored from last week's backup held version 1 while the gates had
    applied version 3: the next publish was version 2, which every gate refused as a rollback
    until the office had published twice more, and a new quarantine did not reach them. The
    office keeps the highest version it published outside the bundle: the next is 4, and
    publish says what it found."""
    publish_bundle(office.key, _lists(), office.bundle, now=clock.now())
    backup = {p: p.read_bytes() for p in office.bundle.parent.glob("bundle*.json")}
    publish_bundle(office.key, _lists(2), office.bundle, now=clock.now())
    publish_bundle(office.key, _lists(3), office.bundle, now=clock.now())
    server = Office(office.bundle)
    assert _sync(gate, server).check().version == 3
    for path, body in backup.items():
        path.write_bytes(body)
    lists = _lists(3)
    lists["quarantine"].append({"household": "5-101", "from": "2026-03-01", "until": "2026-03-20"})
    lists_file = tmp_path / "lists.json"
    lists_file.write_text(json.dumps(lists), encoding="utf-8")
    argv = ["fleet", "publish", "--key", str(office.key_path), "--lists", str(lists_file)]
    assert main([*argv, "--out", str(office.bundle)]) == 0
    out, err = capsys.readouterr()
    assert json.loads(out)["version"] == 4
    assert "held version 1, below version 3 published before" in err
    assert "published as version 4" in err
    applied = _sync(gate, server).check()
    assert (applied.outcome, applied.version) == ("applied", 4)
    with pytest.raises(BundleError, match="not above the published version 4"):
        publish_bundle(office.key, lists, office.bundle, now=clock.now(), version=4)


def test_a_bundle_named_like_the_kept_version_is_not_overwritten_by_it(office, clock):
    """``--out lists.version``: the highest version kept beside the bundle had the bundle's own
    name, and its number replaced the bundle the collector serves."""
    out = office.bundle.with_name("lists.version")
    publish_bundle(office.key, _lists(), out, now=clock.now())
    again = publish_bundle(office.key, _lists(), out, now=clock.now())
    assert again.version == 2 and bundle_version(out.read_bytes()) == 2


def test_a_republish_within_the_folders_clock_tick_is_served_not_the_one_before(office, clock):
    """The bundle's folder on a share whose file times tick by the second (FAT, SMB): the
    clerk published, saw a typo and published again within that second, same size. The
    collector kept serving the first, by its time and size, until some later publish."""
    import os

    served = BundleFile(office.bundle)
    publish_bundle(office.key, _lists(), office.bundle, now=clock.now())
    first = office.bundle.stat()
    assert served.get()[2] == 1
    publish_bundle(office.key, _lists(), office.bundle, now=clock.now())
    os.utime(office.bundle, ns=(first.st_atime_ns, first.st_mtime_ns))  # the same tick
    assert office.bundle.stat().st_size == first.st_size
    assert served.get()[2] == 2


def test_a_mass_drop_after_a_restore_names_the_lists_it_was_compared_with(office, clock):
    """After bundle.json was restored from a backup (version 1) while version 3 had been
    published, a mass drop was told as of "published version 3": the lists compared were
    version 1's, restored, and the gates hold version 3's, which the office cannot compare."""
    publish_bundle(office.key, _lists(5), office.bundle, now=clock.now())
    backup = {p: p.read_bytes() for p in office.bundle.parent.glob("bundle*.json")}
    for _ in range(2):
        publish_bundle(office.key, _lists(5), office.bundle, now=clock.now())
    for path, body in backup.items():
        path.write_bytes(body)
    with pytest.raises(BundleError) as refused:
        publish_bundle(office.key, _lists(0), office.bundle, now=clock.now())
    assert "(version 1, restored here; the gates hold version 3's lists" in str(refused.value)


def test_a_bundle_arriving_after_the_stop_is_not_applied_to_a_log_being_closed(
    gate, office, clock, caplog
):
    """``stop`` returned while the office's answer was still on its way (a slow office:
    the daemon's stop waits ``LISTS_STOP_S`` for the thread), and the daemon then closed the
    event log: the thread went on to apply the bundle (``import_bundle``'s audited write) on
    a log closed under it (one closed under a running query crashed the process). Once
    ``stop`` has returned, no thread of the sync uses the log: the answer is dropped, nothing
    applied, nothing said, and the thread ends."""
    publish_bundle(office.key, _lists(), office.bundle, now=clock.now())
    real = Office(office.bundle)
    arrived, release = threading.Event(), threading.Event()

    def slow(request: httpx.Request) -> httpx.Response:
        arrived.set()
        release.wait(10)
        return real(request)

    sync = _sync(gate, slow)
    late: list[str] = []
    stopped = threading.Event()
    apply = gate.lists.import_bundle

    def spy(*args, **kwargs):
        if stopped.is_set():
            late.append("import_bundle")
        return apply(*args, **kwargs)

    gate.lists.import_bundle = spy
    sync.start()
    assert arrived.wait(10)  # its first ask is on its way
    thread = sync._thread
    assert thread is not None
    with caplog.at_level(logging.INFO, logger="office.listsync"):
        sync.stop(0)
        stopped.set()
        release.set()
        thread.join(10)
    assert not thread.is_alive()
    assert late == []
    assert gate.lists.current.freshness.bundle_version == 0
    assert (sync.checks, sync.failures) == (0, 0)
    assert [r.getMessage() for r in caplog.records] == []


def test_an_apply_outlasting_the_stops_wait_keeps_the_log_in_use_until_it_ends(
    gate, office, clock, monkeypatch
):
    """``stop`` waited ``APPLY_WAIT_S`` (5 s) for an apply under way and returned as if it
    had ended when it had not (a slow card, a big bundle on a Pi): the daemon then closed
    the event log under the apply. Now ``stop`` says the apply outlasted its wait (False),
    and ``log_released`` (what the daemon's close of the log waits for) is set only once
    the apply has ended."""
    monkeypatch.setattr(listsync_mod, "APPLY_WAIT_S", 0.0)  # the wait run out at once
    publish_bundle(office.key, _lists(), office.bundle, now=clock.now())
    sync = _sync(gate, Office(office.bundle))
    inside, release = threading.Event(), threading.Event()
    apply = gate.lists.import_bundle

    def slow(*args, **kwargs):  # the bundle's audited write on a slow card
        inside.set()
        release.wait(10)
        return apply(*args, **kwargs)

    gate.lists.import_bundle = slow
    checking = threading.Thread(target=sync.check)
    checking.start()
    try:
        assert inside.wait(10)
        assert sync.stop(0) is False  # the apply is still under way
        assert not sync.log_released.is_set()
    finally:
        release.set()
        checking.join(10)
    assert sync.log_released.is_set()  # set by the apply's end
    assert gate.lists.current.freshness.bundle_version == 1


def test_a_stop_with_no_apply_under_way_releases_the_log_at_once(gate, office):
    sync = _sync(gate, Office(office.bundle))
    sync.start()
    assert not sync.log_released.is_set()
    assert sync.stop(0) is True
    assert sync.log_released.is_set()
    sync.start()  # started again: it uses the log again
    assert not sync.log_released.is_set()
    assert sync.stop(0) is True and sync.log_released.is_set()
