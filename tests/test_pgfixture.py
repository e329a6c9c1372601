"""The tests' throwaway PostgreSQL (``tests/pgfixture.py``): started on a copy of the data
directory ``initdb`` made once and kept, made again when that copy no longer serves."""

from __future__ import annotations

import psycopg
import pytest
from pgfixture import _started_cluster, _template

from office.pg import TempCluster

pytest_plugins = ("pgfixture",)


def _no_initdb(self: TempCluster) -> None:
    raise AssertionError("initdb ran")


def _serves(cluster: TempCluster) -> bool:
    with psycopg.connect(cluster.dsn(), autocommit=True) as conn:
        return conn.execute("SELECT 1").fetchone() == (1,)


@pytest.mark.slow  # a second server started and stopped (~0.7 s); every PostgreSQL test of
# the unit suite starts its process's cluster this way once one run kept the directory
def test_a_cluster_starts_on_a_copy_of_the_kept_data_directory(pg_cluster, monkeypatch):
    if pg_cluster.cluster is None:
        pytest.skip("an external server (KIOSK_TEST_PG_DSN): no throwaway cluster")
    kept = _template(pg_cluster.cluster)
    assert kept is not None and (kept / "PG_VERSION").is_file()  # kept by the session's
    monkeypatch.setattr(TempCluster, "initdb", _no_initdb)
    cluster = _started_cluster()
    try:
        assert _serves(cluster)
    finally:
        cluster.stop()


@pytest.mark.slow  # two initdb runs (~1 s)
def test_a_kept_data_directory_that_no_longer_serves_is_made_again(monkeypatch, tmp_path):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    probe = TempCluster()
    kept = _template(probe)
    probe.stop()
    assert kept is not None
    kept.mkdir()  # what no server starts on (an older version's, a broken copy)
    cluster = _started_cluster()
    try:
        assert _serves(cluster)
        assert (kept / "PG_VERSION").is_file()
    finally:
        cluster.stop()
    again = _started_cluster()  # on the copy now
    try:
        assert _serves(again)
    finally:
        again.stop()
