"""The published list bundle names quarantined households and people (health data): its files
are the publisher's and one group's (the collector's user, who serves them), never every
account's on the office PC (docs/fleet.md, "Who reads the bundle")."""

from __future__ import annotations

import json
import os
import stat

import pytest
from support import need

from checkpoint.cli import main
from kiosk.passes import load_private_key, new_key_pair
from office import listsync
from office.listsync import compounds_path, high_water_path, publish_bundle

LISTS = {
    "quarantine": [
        {"household": "3-201", "holder": "Marlowe Q", "from": "2026-03-01", "until": "2026-03-14"}
    ],
    "households": [{"household": "3-201", "residents": 3}],
}


@pytest.fixture
def office(tmp_path):
    key_path, _pub = new_key_pair(tmp_path / "keys", "office")
    folder = tmp_path / "www"
    folder.mkdir()
    return key_path, folder / "bundle.json"


def modes(out) -> dict[str, int]:
    paths = (out, compounds_path(out), high_water_path(out))
    return {p.name: stat.S_IMODE(p.stat().st_mode) for p in paths}


def test_the_bundles_files_are_readable_by_their_owner_and_group_only(office, clock):
    key_path, out = office
    # An older publish left its files readable by every account: the next one closes them.
    out.write_text("")
    out.chmod(0o644)
    publish_bundle(load_private_key(key_path), LISTS, out, now=clock.now())
    assert modes(out) == dict.fromkeys(("bundle.json", "bundle.compounds.json",
                                        "bundle.json.version"), 0o640)  # fmt: skip
    assert sorted(p.name for p in out.parent.iterdir()) == sorted(modes(out))  # no temp left


def test_the_files_get_the_folders_group_or_the_one_asked(office, clock, monkeypatch):
    key_path, out = office
    key = load_private_key(key_path)
    other = next((g for g in os.getgroups() if g != out.parent.stat().st_gid), None)
    if other is None and os.geteuid() == 0:
        other = 4242  # root gives any group
    need(other is not None, "root, or a user in a second group")
    os.chown(out.parent, -1, other)
    publish_bundle(key, LISTS, out, now=clock.now())
    assert {p.stat().st_gid for p in out.parent.iterdir()} == {other}
    publish_bundle(key, LISTS, out, now=clock.now(), group=os.getegid())
    assert {p.stat().st_gid for p in out.parent.iterdir()} == {os.getegid()}
    # A folder whose group this user may not give: the system's choice, not a failure.
    monkeypatch.setattr(listsync, "may_give_group", lambda gid: False)
    assert listsync.bundle_group(out.parent) is None


def test_cli_publish_group_is_checked_before_anything_is_written(office, tmp_path, capsys):
    key_path, out = office
    lists_file = tmp_path / "lists.json"
    lists_file.write_text(json.dumps(LISTS), encoding="utf-8")
    argv = ["fleet", "publish", "--key", str(key_path), "--lists", str(lists_file)]
    argv += ["--out", str(out)]
    assert main([*argv, "--group", "no-such-group-here"]) == 2
    assert "--group no-such-group-here: no such group" in capsys.readouterr().err
    assert list(out.parent.iterdir()) == []
    assert main([*argv, "--group", str(os.getegid())]) == 0
    assert out.stat().st_gid == os.getegid() and modes(out)["bundle.json"] == 0o640


def test_cli_publish_refuses_a_group_this_user_is_not_in(office, tmp_path, capsys, monkeypatch):
    key_path, out = office
    lists_file = tmp_path / "lists.json"
    lists_file.write_text(json.dumps(LISTS), encoding="utf-8")
    monkeypatch.setattr(listsync, "may_give_group", lambda gid: False)
    argv = ["fleet", "publish", "--key", str(key_path), "--lists", str(lists_file)]
    assert main([*argv, "--out", str(out), "--group", "0"]) == 2
    assert "--group 0: you are not a member of it" in capsys.readouterr().err
    assert list(out.parent.iterdir()) == []


def test_a_collector_that_cannot_read_the_bundle_says_so_and_answers_the_gates(tmp_path, caplog):
    """Its user not in the bundle's group (0640): the gates' asks broke off with no answer (a
    traceback each in the journal) and the status page failed whole; now the gates get a 503
    (they keep their lists), the status says why, once in the journal."""
    import httpx

    from kiosk.config.fleet import CollectorConfig
    from office.collector import Collector, StatusServer

    unreadable = tmp_path / "bundle.json"
    unreadable.mkdir()  # read as a file, it fails as a file the user may not read does
    config = CollectorConfig.model_validate({
        "kiosks": [{"url": "http://gate-1", "token_env": "GATE_TOKEN"}],
        "lists_bundle_file": str(unreadable),
    })  # fmt: skip
    collector = Collector(config, "postgresql://nobody@127.0.0.1:1/fleet")
    server = StatusServer(collector, "127.0.0.1", 0)
    server.start()
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{server.port}", timeout=10) as http:
            for _ in range(3):
                asked = http.get("/lists/bundle")
                assert asked.status_code == 503 and "cannot be read" in asked.json()["detail"]
            status = http.get("/status.json")
            assert status.status_code == 200
            assert "cannot be read" in status.json()["lists_bundle_notice"]
            assert "cannot be read" in http.get("/").text
            assert http.get("/metrics").status_code == 200
    finally:
        server.stop()
        collector.stop()
    told = [r for r in caplog.records if "cannot be read" in r.getMessage()]
    assert len(told) == 1 and told[0].levelname == "WARNING"
    assert not [r for r in caplog.records if r.exc_info]
