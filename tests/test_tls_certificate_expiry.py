"""The API's TLS certificate runs out one day (scripts/install makes it for 3,650 days from the
clock at install; an operator's own may live a year or 90 days): from then on the office's
pull and collector are refused ('certificate has expired') and nothing at the gate said so
before. The daemon reads its validity at start; health and the guard's Devices page warn
``WARN_DAYS`` ahead, and say when it has run out or is not valid yet (made on a clock ahead)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding
from guard_support import login

from checkpoint.server import certificate_validity
from kiosk.tlscert import WARN_DAYS, TlsCertificate

MADE = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)


def _self_signed(path, not_before: datetime, days: int) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(x509.NameOID.COMMON_NAME, "gate-1")])
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(not_before)
        .not_valid_after(not_before + timedelta(days=days))
        .sign(key, hashes.SHA256())
    )
    path.write_bytes(cert.public_bytes(Encoding.PEM))


def test_the_validity_is_read_from_the_certificate_file(tmp_path):
    _self_signed(tmp_path / "tls_cert", MADE, 365)
    cert = certificate_validity(str(tmp_path / "tls_cert"))
    assert cert == TlsCertificate(MADE, MADE + timedelta(days=365))
    (tmp_path / "junk").write_text("not a certificate")
    assert certificate_validity(str(tmp_path / "junk")) is None
    assert certificate_validity(str(tmp_path / "missing")) is None


@pytest.mark.parametrize(
    ("now", "state", "days_left"),
    [
        (MADE + timedelta(days=200), "ok", 165),
        (MADE + timedelta(days=365 - WARN_DAYS, seconds=1), "expires_soon", WARN_DAYS - 1),
        (MADE + timedelta(days=364, hours=23), "expires_soon", 0),
        (MADE + timedelta(days=365), "expired", 0),
        (MADE - timedelta(days=3), "not_yet_valid", 368),
    ],
)
def test_health_says_ahead_when_the_certificate_runs_out(now, state, days_left):
    found = TlsCertificate(MADE, MADE + timedelta(days=365)).to_dict(now)
    assert (found["state"], found["days_left"]) == (state, days_left)
    assert found["not_after"] == "2027-03-02T08:00:00+00:00"


def test_the_devices_page_warns_a_month_ahead_that_the_office_pull_will_stop(
    guard_client, guard_core
):
    now = guard_core.clock.now()
    guard_core.tls_certificate = TlsCertificate(now - timedelta(days=350), now + timedelta(days=9))
    assert guard_core.health()["tls_certificate"]["state"] == "expires_soon"
    login(guard_client)
    page = guard_client.get("/guard/health?lang=en").text
    assert "TLS certificate" in page and "runs out in 9 days" in page
    guard_core.tls_certificate = TlsCertificate(now - timedelta(days=400), now - timedelta(days=1))
    page = guard_client.get("/guard/health?lang=zh-CN").text
    assert "证书已过期" in page


def test_the_daemon_reads_the_certificate_it_serves(tmp_path, monkeypatch):
    from checkpoint.cli.daemon_cmd import served_certificate
    from kiosk.config import KioskConfig

    _self_signed(tmp_path / "tls_cert", MADE, 3650)
    (tmp_path / "tls_key").write_text("a key")
    monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(tmp_path))
    with_tls = KioskConfig.model_validate({"web": {"tls": True}})
    assert served_certificate(with_tls) == TlsCertificate(MADE, MADE + timedelta(days=3650))
    assert served_certificate(KioskConfig()) is None  # no TLS: nothing to run out
    monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(tmp_path / "none"))
    assert served_certificate(with_tls) is None  # missing: the server's start says so
