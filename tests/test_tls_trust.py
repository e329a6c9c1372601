"""The certificates the HTTP clients of the office and of a gate trust (``office.pull.tls_trust``):
each client made (a pull, the collector, the list sync, the peers) loaded the whole CA bundle
again, ~20 ms of CPU on a PC, two at every start of a daemon with its list sync and peers."""

from __future__ import annotations

import os
import ssl
import time

import pytest
from guard_support import WAIT_S
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


def _ca_pem(name: str) -> bytes:
    """A CA certificate of a fixed size (an Ed25519 signature, a name of ``name``'s length)."""
    import datetime

    from cryptography import x509
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ed25519
    from cryptography.x509.oid import NameOID

    key = ed25519.Ed25519PrivateKey.generate()
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    start = datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(0x1122334455667788)
        .not_valid_before(start)
        .not_valid_after(start + datetime.timedelta(days=3650))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, None)
    )
    return cert.public_bytes(serialization.Encoding.PEM)


def test_a_renewed_certificate_copied_in_place_keeping_its_time_is_trusted(
    tmp_path, loads, monkeypatch
):
    """The office's certificate renewed, the same size, copied over the old one keeping its
    time (``cp -p``, ``rsync -t``, ``install -p``): the same inode, size and modification
    time, and the trust loaded before was kept, the new certificate not trusted. Its change
    time (set by the kernel, by no user) tells."""
    path = tmp_path / "office-cert.pem"
    old, new = _ca_pem("office-ca-2025"), _ca_pem("office-ca-2026")
    assert len(old) == len(new)
    path.write_bytes(old)
    monkeypatch.setenv("SSL_CERT_FILE", str(path))
    before = os.stat(path)
    first = tls_trust()
    with path.open("r+b") as f:
        f.write(new)
    # The kernel stamps the change time by its coarse clock (a tick, 1-10 ms): the copy must
    # land in a later tick than the load, as a renewal does (months later).
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))
    deadline = time.monotonic() + WAIT_S
    while os.stat(path).st_ctime_ns == before.st_ctime_ns and time.monotonic() < deadline:
        os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))
    after = os.stat(path)
    assert (after.st_ino, after.st_size, after.st_mtime_ns) == (
        before.st_ino,
        before.st_size,
        before.st_mtime_ns,
    )
    trusted = tls_trust()
    assert trusted is not first
    [ca] = trusted.get_ca_certs()
    assert dict(n[0] for n in ca["subject"])["commonName"] == "office-ca-2026"


def test_a_renewed_file_replaces_its_old_trust_in_the_cache(tmp_path, loads, monkeypatch):
    """Each renewal of the file kept a context more for the process's life: the old one is
    dropped as the new one is kept (another file's, the bundle's, stays)."""
    bundle = tls_trust()
    cert, _ = _self_signed(tmp_path)
    monkeypatch.setenv("SSL_CERT_FILE", str(cert))
    tls_trust()
    (tmp_path / "next").mkdir()
    other, _ = _self_signed(tmp_path / "next")
    for _ in range(3):
        cert.write_bytes(cert.read_bytes() + other.read_bytes())
        tls_trust()
    assert len([k for k in pull._TRUSTED if k[0] == str(cert)]) == 1
    monkeypatch.delenv("SSL_CERT_FILE")
    assert tls_trust() is bundle
