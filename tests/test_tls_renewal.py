"""A renewed certificate is trusted without restarting the daemons (``office.pull.TrustedClient``).

The gate's list sync, its peers' sync and the office's collector made their HTTP client once,
at start, with the certificates trusted then: the office's certificate renewed (the file
``SSL_CERT_FILE`` names replaced), the list sync and the peers' fetches were refused for hours
until someone restarted ``kiosk.service``, the lists going stale meanwhile. Each now makes a
new client before its next request once the trust changed, closing the old one."""

from __future__ import annotations

import http.server
import logging
import ssl
from pathlib import Path

import httpx
import pytest
import test_bounded_collector
import test_compound_gates
import test_fleet_lists
import test_tls_trust
from test_compound_gates import Gate, peer_entry
from test_edge_hostile import _self_signed
from test_lan_regressions import tls_server
from test_tls_trust import _ca_pem

from checkpoint.peers import PeerSync
from kiosk.config.fleet import CollectorConfig
from office import pull
from office.collector import Collector
from office.listsync import ListSync
from office.pull import tls_trust

#: The gate and the office of the list sync's tests; the trust loaded anew (``loads``).
gate, office, loads = test_fleet_lists.gate, test_fleet_lists.office, test_tls_trust.loads


class Served:
    """Every request that reached the network, answered ``status`` without a socket: the
    transports (one per client) that carried them."""

    def __init__(self, status: int) -> None:
        self.status = status
        self.transports: list[httpx.HTTPTransport] = []


@pytest.fixture
def network(monkeypatch, loads) -> Served:
    """The real clients, their requests answered here (``Served``), 304 unless told."""
    served = Served(304)

    def handle_request(transport: httpx.HTTPTransport, request: httpx.Request) -> httpx.Response:
        served.transports.append(transport)
        return httpx.Response(served.status, request=request)

    monkeypatch.setattr(httpx.HTTPTransport, "handle_request", handle_request)
    return served


@pytest.fixture
def made(monkeypatch) -> list[tuple[httpx.Client, ssl.SSLContext | None]]:
    """Each client ``office.pull`` makes from now on, and the trust it was made with."""
    clients: list[tuple[httpx.Client, ssl.SSLContext | None]] = []
    real = pull.http_client

    def http_client(timeout: httpx.Timeout | float, trust: ssl.SSLContext | None = None):
        client = real(timeout, trust)
        clients.append((client, trust))
        return client

    monkeypatch.setattr(pull, "http_client", http_client)
    return clients


@pytest.fixture
def cert_file(tmp_path, monkeypatch, loads) -> Path:
    """The certificate trusted (the office's, a gate's), the file ``SSL_CERT_FILE`` names."""
    path = tmp_path / "office-cert.pem"
    path.write_bytes(_ca_pem("office-2025"))
    monkeypatch.setenv("SSL_CERT_FILE", str(path))
    return path


def renew(path: Path) -> ssl.SSLContext:
    """The certificate renewed in place (another one, another size); the trust it makes."""
    path.write_bytes(_ca_pem("office-renewed-2026"))
    return tls_trust()


def test_a_renewed_office_certificate_is_used_by_the_list_syncs_next_check(
    gate, cert_file, network, made
):
    sync = ListSync(gate.lists, gate.trust, "https://office.lan/lists/bundle", gate.clock)
    try:
        assert sync.check().outcome == "not_modified"
        renewed = renew(cert_file)
        assert sync.check().outcome == "not_modified"
        assert sync.check().outcome == "not_modified"
    finally:
        sync.stop()
    first, second, third = network.transports
    assert second is not first and third is second  # a new client, once
    [(old, _), (new, trust)] = made
    assert trust is renewed and old.is_closed
    assert new.is_closed  # by the stop: the sync closes what it made


@pytest.fixture
def south(tmp_path, clock, monkeypatch):
    """The south gate asking the north gate for its passages (its token set)."""
    monkeypatch.setenv(test_compound_gates.env_name("gate-north"), "kt_00000000_" + "a" * 43)
    gate = Gate(tmp_path, "gate-south", clock, [peer_entry("gate-north")])
    yield gate
    gate.close()


def test_a_renewed_peer_certificate_is_used_by_the_peers_next_fetch(
    south, cert_file, network, made
):
    network.status = 503
    sync = south.sync = PeerSync(south.core, south.config.compound)
    sync.poll()
    renewed = renew(cert_file)
    sync.poll()
    first, second = network.transports
    assert second is not first
    [(old, _), (_new, trust)] = made
    assert trust is renewed and old.is_closed


def test_a_renewed_gate_certificate_is_used_by_the_collectors_next_pull(
    clock, cert_file, network, made, monkeypatch
):
    network.status = 401  # refused: no retry, the pull over
    monkeypatch.setenv("GATE_TOKEN", "kt_00000000_" + "a" * 43)
    config = CollectorConfig.model_validate(
        {"kiosks": [{"url": "https://gate-1.lan:8000", "token_env": "GATE_TOKEN"}]}
    )
    collector = Collector(
        config,
        "postgresql://office/unused",
        clock=clock,
        target_factory=lambda dsn: test_bounded_collector._Target(),
        monotonic=lambda: clock.monotonic_ns() / 1e9,
    )
    try:
        [source] = config.kiosks
        assert collector.pull_once(source).state == "error"
        renewed = renew(cert_file)
        assert collector.pull_once(source).state == "error"
    finally:
        collector.stop()
    assert len(set(map(id, network.transports))) == 2  # the second pull's, a new client's
    assert network.transports[0] is not network.transports[-1]
    [(old, _), (_new, trust)] = made
    assert trust is renewed and old.is_closed


def test_a_client_handed_in_is_never_replaced_nor_closed(cert_file, loads):
    from office.pull import TrustedClient

    given = httpx.Client(transport=httpx.MockTransport(lambda r: httpx.Response(204)))
    held = TrustedClient(5.0, given)
    with held.use() as client:
        assert client is given
    renew(cert_file)
    with held.use() as client:
        assert client is given
    held.close()
    assert not given.is_closed
    given.close()


def test_a_client_in_use_when_the_trust_changes_is_closed_when_its_use_ends(cert_file, loads):
    """Another thread's request under way (a peer's fetch, the collector's other pulls) is
    not cut: the old client is closed by the last use of it."""
    from office.pull import TrustedClient

    held = TrustedClient(5.0)
    with held.use() as old:
        renewed = renew(cert_file)
        with held.use() as new:
            assert new is not old and not old.is_closed
        assert not old.is_closed
    assert old.is_closed and not new.is_closed
    with held.use() as again:
        assert again is new and held.current is new
    assert renewed is tls_trust()
    held.close()
    assert new.is_closed


def test_a_trust_file_that_cannot_be_read_again_keeps_the_client_said_once(
    cert_file, loads, caplog
):
    from office.pull import TrustedClient

    held = TrustedClient(5.0)
    first = held.current
    cert_file.unlink()  # being replaced: removed, not there yet
    with caplog.at_level(logging.INFO, logger="office.pull"):
        for _ in range(3):
            with held.use() as client:
                assert client is first and not first.is_closed
        said = [r.getMessage() for r in caplog.records]
        assert len(said) == 1 and "could not be read again" in said[0]
        renew(cert_file)
        with held.use() as client:
            assert client is not first and first.is_closed
        assert "read again" in caplog.records[-1].getMessage()
    held.close()


def test_a_peer_certificate_this_gate_refuses_says_how_this_gate_comes_to_trust_it(south):
    """The south gate's devices page told its admin to "give the office the kiosk's
    certificate": the office's remedy, not this gate's."""

    def refused(request: httpx.Request) -> httpx.Response:
        cause = ssl.SSLCertVerificationError(1, "certificate verify failed")
        cause.verify_message = "self-signed certificate"
        raise httpx.ConnectError("certificate verify failed", request=request) from cause

    client = httpx.Client(transport=httpx.MockTransport(refused))
    south.sync = south.core.peers = PeerSync(south.core, south.config.compound, client=client)
    south.sync.poll()
    error = south.core.health()["peers"][0]["last_error"]
    assert "the peer's TLS certificate is not trusted here (self-signed certificate)" in error
    assert "kiosk.service" in error and "SSL_CERT_FILE" in error
    assert "give the office" not in error
    client.close()


class _NotModified(http.server.BaseHTTPRequestHandler):
    """An office whose bundle the gate holds already: 304 to every GET."""

    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        self.send_response(304)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.mark.slow  # integration: real sockets, processes or deadlines (CI runs it)
def test_the_office_certificate_renewed_on_disk_is_trusted_by_the_running_list_sync(
    gate, tmp_path, monkeypatch, loads
):
    """End to end, over real TLS: the office serves its renewed certificate; the gate still
    trusts the old one and says so; the new one put in the file, the same sync's next check
    reaches the office."""
    for name in ("old-tls", "new-tls"):
        (tmp_path / name).mkdir()
    old, _ = _self_signed(tmp_path / "old-tls", ("localhost",))
    new, key = _self_signed(tmp_path / "new-tls", ("localhost",))
    trusted = tmp_path / "office-cert.pem"
    trusted.write_bytes(old.read_bytes())
    monkeypatch.setenv("SSL_CERT_FILE", str(trusted))
    with tls_server(new, key, _NotModified) as port:  # its URL by a name in its certificate
        url = f"https://localhost:{port}/lists/bundle"
        sync = ListSync(gate.lists, gate.trust, url, gate.clock)
        try:
            before = sync.check()
            renewed = new.read_bytes()  # given to the gate, another size than the old one
            trusted.write_bytes(renewed + b"\n" * (abs(len(renewed) - trusted.stat().st_size) + 1))
            after = sync.check()
        finally:
            sync.stop()
    assert before.outcome == "error"
    assert "the office's TLS certificate is not trusted here" in before.message
    assert after.outcome == "not_modified", after.message


@pytest.fixture
def cert_dir(tmp_path, monkeypatch, loads) -> Path:
    """The folder ``SSL_CERT_DIR`` names (the office's certificate in it), no file named."""
    folder = tmp_path / "certs"
    folder.mkdir()
    (folder / "office-2025.pem").write_bytes(_ca_pem("office-2025"))
    monkeypatch.setenv("SSL_CERT_DIR", str(folder))
    return folder


def test_a_certificate_caught_half_copied_into_the_trust_folder_is_trusted_once_whole(
    cert_dir, made
):
    """A request between a renewed file's creation and its last byte made a client (the
    folder changed) that could not trust it, and the end of the copy changed nothing the
    folder's own stat shows: the renewed certificate was refused until a restart."""
    from office.pull import TrustedClient

    held = TrustedClient(5.0)
    renewed = _ca_pem("office-renewed-2026")
    with (cert_dir / "office-2026.pem").open("wb") as copy:
        copy.write(renewed[:100])
        copy.flush()
        with held.use() as during:  # the copy under way
            pass
        copy.write(renewed[100:])
    with held.use() as after:
        assert after is not during and during.is_closed
    (cert_dir / "office-2025.pem").write_bytes(renewed + b"\n")  # rewritten in place
    with held.use() as rewritten:
        assert rewritten is not after
    with held.use() as again:
        assert again is rewritten
    assert len(made) == 4  # the first, the half copy's, the whole copy's, the rewrite's
    held.close()


def test_a_trust_folder_not_there_makes_no_new_client_at_each_request(
    tmp_path, monkeypatch, loads, made
):
    """``SSL_CERT_DIR`` naming a folder not made yet: each request made a new client (no
    keep-alive, a context loaded each time); one now, and another once the folder is made."""
    from office.pull import TrustedClient

    monkeypatch.setenv("SSL_CERT_DIR", str(tmp_path / "certs"))
    held = TrustedClient(5.0)
    for _ in range(3):
        with held.use() as client:
            assert client is held.current
    assert len(made) == 1
    (tmp_path / "certs").mkdir()
    with held.use() as client:
        assert len(made) == 2 and client is made[1][0]
    held.close()


def test_a_use_that_read_the_old_trust_never_brings_it_back(cert_file, monkeypatch, made):
    """A thread that read the trust just before a renewal, and took the client just after
    another thread switched to the renewed one, switched back: a new client made with the old
    certificate (its request refused), and a third at the next request. Here the other
    thread's use runs in between, as the read ends."""
    from office.pull import TrustedClient

    held = TrustedClient(5.0)
    real = pull.tls_trust
    between: list[httpx.Client] = []

    def read_before_the_renewal() -> ssl.SSLContext:
        trust = real()
        if not between:
            renewed = renew(cert_file)
            monkeypatch.setattr(pull, "tls_trust", real)  # the other thread reads it anew
            with held.use() as other:
                between.append(other)
            assert made[-1] == (other, renewed)
        return trust

    monkeypatch.setattr(pull, "tls_trust", read_before_the_renewal)
    with held.use() as late:
        assert late is between[0] and not late.is_closed
    with held.use() as next_one:
        assert next_one is late
    assert len(made) == 2 and made[-1][1] is real()
    held.close()


def _two_certificates() -> tuple[bytes, int]:
    """A bundle of two certificates (the office's and a peer's), and where the first ends."""
    first = _ca_pem("office-renewed-2026")  # another size than the file had
    return first + _ca_pem("peer-2026"), len(first)


def test_a_bundle_caught_half_copied_is_trusted_in_full_at_the_next_request(cert_file, made):
    """What docs/operations.md says of a file caught half copied: its certificates whole then
    are trusted for that request (no word said), all of them from the next one after."""
    from office.pull import TrustedClient

    held = TrustedClient(5.0)
    bundle, cut = _two_certificates()
    cert_file.write_bytes(bundle[:cut])
    with held.use():
        assert len(made[-1][1].get_ca_certs()) == 1
    cert_file.write_bytes(bundle)
    with held.use():
        assert len(made[-1][1].get_ca_certs()) == 2
    held.close()
