"""The collector against a hostile or broken gate: the others go on, that one is retried."""

from __future__ import annotations

import httpx
import pytest
from pgfixture import Network, add_events, central_rows, kiosk_rows, make_kiosk

from kiosk.config.fleet import CollectorConfig
from office import pull as pull_module
from office.collector import Collector, page_bytes
from office.pg import PgError
from office.pull import json_values, value_budget

pytest_plugins = ("pgfixture",)  # pg_cluster, pg_dsn: a real PostgreSQL


@pytest.mark.slow
def test_a_gate_answering_a_page_of_empty_containers_is_refused_and_retried_later(
    tmp_path, clock, pg_dsn, monkeypatch
):
    """``{"events":[[],[],...]}`` within a pull's share of the page bytes was parsed (32
    bytes of objects per byte: GBs for the collector's concurrent pulls). It is refused
    unparsed with an error naming the gate; the other gates are pulled; the next round,
    the gate mended, carries on with nothing lost or twice."""
    gates = [make_kiosk(tmp_path / f"g{i}.db", f"gate-{i}", clock, 10 * (i + 1)) for i in range(3)]
    try:
        kiosks = []
        for i, core in enumerate(gates):
            monkeypatch.setenv(f"TOKEN_{i}", core.token)
            kiosks.append({"url": f"http://gate-{i}", "token_env": f"TOKEN_{i}"})
        config = CollectorConfig.model_validate({"kiosks": kiosks, "max_concurrent": 64})
        share = page_bytes(config.max_concurrent)
        hostile = httpx.Response(200, json={"events": [[]] * (share // 4), "last": 10**6})
        assert json_values(hostile.content) > 2 * value_budget(share)
        net = Network(*gates)
        collector = Collector(config, pg_dsn, client=net.client(), backoff_wait=lambda s: None)
        collector.run_once()  # every gate known
        for core in gates:
            add_events(core, 3)
        net.faults = lambda r: hostile if r.url.host == "gate-1" else None
        parsed: list[int] = []
        real = pull_module._loads
        monkeypatch.setattr(
            pull_module, "_loads", lambda body: parsed.append(json_values(body)) or real(body)
        )
        statuses = {s.url: s for s in collector.run_once()}
        assert max(parsed) <= value_budget(share)
        bad = statuses["http://gate-1"]
        assert bad.state == "error" and "http://gate-1" in (bad.last_error or "")
        assert [statuses[f"http://gate-{i}"].state for i in (0, 2)] == ["ok", "ok"]
        assert central_rows(pg_dsn, "gate-2") == kiosk_rows(gates[2])
        net.faults = lambda r: None
        statuses = {s.url: s for s in collector.run_once()}
        collector.stop()
        assert statuses["http://gate-1"].state == "ok"
        for core in gates:
            assert central_rows(pg_dsn, core.config.site.kiosk_id) == kiosk_rows(core)
    finally:
        for core in gates:
            core.store.close()


@pytest.mark.slow
@pytest.mark.parametrize(
    ("fields", "named"),
    [
        ({"holder": {"a": 1}}, "holder"),
        ({"direction": [1]}, "direction"),
        ({"clock_synced": [1]}, "clock_synced"),
    ],
)
def test_a_forged_row_the_database_cannot_hold_is_the_gates_error_not_the_databases(
    pg_dsn, fields, named
):
    """An object where a text column goes (its hash agrees: a chain is no secret) failed in
    psycopg's COPY as ``PgError`` "database: cannot adapt type 'dict'": the collector blamed
    the database and dropped its connection at every round, for one gate's forged row; a list
    went in as the array literal "{1}", a central row that no longer matched its hash."""
    from test_pull_hostile import _forged

    from office.pg import PgTarget
    from office.pull import Puller, PullError

    with PgTarget(pg_dsn) as target, Puller(target, client=_forged(**fields)) as puller:
        with pytest.raises(PullError, match=rf"seq 1: {named}") as refused:
            puller.pull("http://gate-1", "t")
        assert not isinstance(refused.value, PgError)
        assert target.tail("gate-1")[0] == 0


def _chain(*changes: dict) -> httpx.Client:
    """A gate answering rows that chain and hash as they should, with ``changes``."""
    from kiosk.export import COLUMNS
    from kiosk.hashchain import GENESIS, event_hash

    rows, prev = [], GENESIS
    for seq, fields in enumerate(changes, 1):
        row = dict.fromkeys(COLUMNS) | {"kiosk_id": "gate-x", "seq": seq, "prev_hash": prev}
        row |= {"id": f"e{seq}", "decision": "pass", "reasons": [], "flags": [], "boot_id": "b"}
        row |= {"mono_ns": seq, "ts": "2026-03-02T08:30:00.000000Z"} | fields
        row["hash"] = prev = event_hash(row)
        rows.append(row)
    page = {"events": rows, "last": len(rows)}
    return httpx.Client(transport=httpx.MockTransport(lambda r: httpx.Response(200, json=page)))


@pytest.mark.parametrize("ts", ["2026-03-02T99:99:99.000000Z", "2026-03-02 at noon"])
def test_a_gates_row_with_a_ts_that_is_no_time_cannot_break_the_district_report(pg_dsn, ts):
    """``ts`` was checked only for a date in its first 10 characters: a gate's row stamped
    "2026-03-02T99:99:99" went in, and the district report's ``ts::timestamptz`` failed on it
    for every gate, every day ("invalid input syntax for type timestamp")."""
    from datetime import date

    from office.district import district_report
    from office.pg import PgTarget
    from office.pull import Puller, PullError

    client = _chain({"clock_synced": False}, {"clock_synced": True, "ts": ts})
    with (
        PgTarget(pg_dsn) as target,
        Puller(target, client=client) as puller,
        pytest.raises(PullError, match="seq 2: ts"),
    ):
        puller.pull("http://gate-x", "t")
    report = district_report(pg_dsn, date(2026, 3, 2), "UTC")  # no PgError
    assert report["by_gate"] == []  # nothing of the refused page was written
