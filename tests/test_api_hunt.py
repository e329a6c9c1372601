"""API defects found by the defect hunt."""

from __future__ import annotations

import re
from types import SimpleNamespace

import pytest
from fastapi.testclient import TestClient

from checkpoint.app import build_core
from checkpoint.demo import print_banner
from kiosk.config import parse_config
from ui.app import create_app


@pytest.fixture
def real(tmp_path, clock):
    core = build_core(parse_config({}), tmp_path / "data", clock)
    yield core
    core.store.close()
    core.devices.close()


def test_every_url_the_demo_prints_is_served(real, capsys):
    session = SimpleNamespace(
        daemon=SimpleNamespace(url="http://127.0.0.1:8000"),
        core=SimpleNamespace(data_dir="/d", clock=real.clock, tz=real.tz),
        guard_user="guard", guard_password="pw", admin_user="admin", admin_password="pw",
        api_token="kt_x",
    )  # fmt: skip
    print_banner(session)
    paths = re.findall(r"http://127\.0\.0\.1:8000(/[^\s)]*)", capsys.readouterr().out)
    assert "/api/v1/health" in paths
    client = TestClient(create_app(real), client=("127.0.0.1", 5000))
    # "(docs: .../docs)" was printed, and /docs is not served (no Swagger page: it loads
    # its scripts from a CDN): a 404 for whoever follows the demo's own hint.
    assert [p for p in paths if client.get(p).status_code == 404] == []
