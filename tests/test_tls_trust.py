"""The certificates the HTTP clients of the office and of a gate trust (``office.pull.tls_trust``):
each client made (a pull, the collector, the list sync, the peers) loaded the whole CA bundle
again, ~20 ms of CPU on a PC, two at every start of a daemon with its list sync and peers."""

from __future__ import annotations

import ssl

import pytest
from test_edge_hostile import _self_signed  # the kiosk's own TLS test certificate

from office import pull
from office.pull import Puller, tls_trust


@pytest.fixture
def loads(monkeypatch) -> list[object]:
    """Each CA bundle or file loaded into a new trust from now on (none kept from before)."""
    monkeypatch.setattr(pull, "_TRUSTED", {})
    monkeypatch.delenv("SSL_CERT_FILE", raising=False)
    monkeypatch.delenv("SSL_CERT_DIR", raising=False)
    made: list[object] = []
    real = ssl.create_default_context

    def create_default_context(*args, **kwargs):
        made.append(kwargs.get("cafile") or kwargs.get("capath"))
        return real(*args, **kwargs)

    monkeypatch.setattr(ssl, "create_default_context", create_default_context)
    return made


def test_the_clients_load_the_bundle_once_per_process(tmp_path, loads):
    with Puller(tmp_path / "a.db") as first, Puller(tmp_path / "b.db") as second:
        assert first.client is not second.client
    assert len(loads) == 1  # certifi's bundle, once
    trust = tls_trust()
    assert tls_trust() is trust and trust.cert_store_stats()["x509_ca"] > 10


def test_a_certificate_file_named_or_changed_is_loaded_again(tmp_path, loads, monkeypatch):
    """``SSL_CERT_FILE`` (how an office trusts a gate's own certificate, docs/fleet.md) is the
    trust as before, and a file changed since is read again: nothing trusted is ever stale."""
    bundle = tls_trust()
    cert, _ = _self_signed(tmp_path)
    monkeypatch.setenv("SSL_CERT_FILE", str(cert))
    own = tls_trust()
    assert own is not bundle and own.cert_store_stats()["x509"] == 1 and tls_trust() is own
    (tmp_path / "next").mkdir()
    other, _ = _self_signed(tmp_path / "next")
    cert.write_bytes(cert.read_bytes() + other.read_bytes())  # another certificate added
    grown = tls_trust()
    assert grown is not own and grown.cert_store_stats()["x509"] == 2
    monkeypatch.delenv("SSL_CERT_FILE")
    assert tls_trust() is bundle
    assert loads == [loads[0], str(cert), str(cert)]


def test_a_missing_certificate_file_is_refused_as_before(tmp_path, loads, monkeypatch):
    monkeypatch.setenv("SSL_CERT_FILE", str(tmp_path / "none.pem"))
    for _ in range(2):  # never kept: refused each time
        with pytest.raises(FileNotFoundError):
            tls_trust()
