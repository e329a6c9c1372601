"""Memory: what a gate loads for its devices, the allocator settings, the PSS measurement."""

from __future__ import annotations

import os
import platform
import subprocess
import sys
from types import SimpleNamespace

import pytest

from checkpoint.bench import SECTIONS
from checkpoint.bench.memory import descendants, pss_kb, tree_pss

linux_proc = pytest.mark.skipif(
    not os.path.exists("/proc/self/smaps_rollup"), reason="needs /proc/<pid>/smaps_rollup"
)

_SERIAL_GATE = """
import sys, tempfile
from pathlib import Path
from kiosk.config import parse_config
from checkpoint.app import build_core
cfg = parse_config({"readers": {"sources": [
    {"type": "serial", "port": "/dev/kiosk-test-no-such-port", "name": "scanner"}]}})
core = build_core(cfg, Path(sys.argv[1]))
heavy = ("cv2", "numpy", "zxingcpp", "pyzbar", "drivers.pipeline")
print(" ".join(m for m in heavy if m in sys.modules))
core.store.close()
"""


def _printed_by(script: str, *args: str) -> list[str]:
    """What a fresh interpreter running ``script`` prints, as words."""
    out = subprocess.run(
        [sys.executable, "-c", script, *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return out.stdout.split()


def _loaded_by_a_gate_with(source: str, data_dir) -> set[str]:
    script = _SERIAL_GATE.replace(
        '{"type": "serial", "port": "/dev/kiosk-test-no-such-port", "name": "scanner"}', source
    )
    return set(_printed_by(script, str(data_dir)))


@pytest.mark.slow  # a fresh interpreter per case
def test_a_serial_scanner_gate_never_loads_opencv_numpy_or_a_decoder(tmp_path):
    serial = '{"type": "serial", "port": "/dev/kiosk-test-no-such-port", "name": "scanner"}'
    assert _loaded_by_a_gate_with(serial, tmp_path) == set()


@pytest.mark.slow  # a fresh interpreter per case
def test_a_keyboard_mode_scanner_gate_never_loads_them_either(tmp_path):
    hid = '{"type": "hid", "device": "/dev/input/kiosk-test-no-such-node", "name": "scanner"}'
    assert _loaded_by_a_gate_with(hid, tmp_path) == set()


@pytest.mark.slow  # a fresh interpreter per case
def test_a_camera_gate_still_loads_them(tmp_path):
    camera = '{"type": "fake_camera", "name": "cam"}'
    loaded = _loaded_by_a_gate_with(camera, tmp_path)
    assert loaded >= {"cv2", "numpy", "zxingcpp", "drivers.pipeline"}


@pytest.mark.skipif(
    platform.system() != "Linux" or platform.libc_ver()[0] != "glibc", reason="glibc only"
)
def test_the_allocator_takes_the_daemon_settings_once():
    # In a fresh interpreter: the settings last for the process (conftest keeps them out of
    # the test workers, where they would slow every later test).
    script = (
        "from checkpoint import malloc\n"
        "assert not malloc._applied\n"
        "print(malloc.tune(), malloc._applied, malloc.tune())\n"  # the second: idempotent
    )
    assert _printed_by(script) == ["True", "True", "True"]


@pytest.mark.slow  # a fresh interpreter per case
@pytest.mark.parametrize("verb", ["run", "demo"])
def test_the_daemon_verbs_tune_the_allocator_before_they_build_the_program(tmp_path, verb):
    # Lost once in a merge (the demo daemon grew by ~58 MB PSS). The daemon's process is
    # `kiosk run` (or `kiosk demo`, which the memory bench measures): each applies it before
    # the program is built; build_core, stopped here, reports whether it was.
    config = tmp_path / "kiosk.toml"
    config.write_text("[site]\nkiosk_id = 'gate-1'\n")
    args = {"run": ["run", "--config", str(config)], "demo": ["demo", "--port", "0"]}[verb]
    script = (
        "import sys\nfrom checkpoint import app, demo, malloc\nfrom checkpoint.cli import main\n"
        "assert not malloc._applied\n"
        "def stop(*a, **k):\n    print(malloc._applied)\n    raise SystemExit(0)\n"
        "app.build_core = demo.build_core = stop\n"
        "main(sys.argv[1:])\n"
    )
    expected = platform.system() == "Linux" and platform.libc_ver()[0] == "glibc"
    printed = _printed_by(script, *args, "--data", str(tmp_path / "data"))
    assert printed == [str(expected)]


@linux_proc
def test_pss_is_summed_over_a_process_and_everything_below_it():
    child = subprocess.Popen(
        [sys.executable, "-c", "import sys; sys.stdin.read()"], stdin=subprocess.PIPE
    )
    try:
        assert child.pid in descendants(os.getpid())
        tree = tree_pss(os.getpid())
        assert child.pid in [h["pid"] for h in tree["helpers"]]
        assert tree["daemon_pss_mb"] > 0 and tree["helpers_pss_mb"] > 0
        assert tree["total_pss_mb"] == pytest.approx(
            tree["daemon_pss_mb"] + tree["helpers_pss_mb"], abs=0.11
        )
    finally:
        child.stdin.close()
        child.wait(10)
    assert pss_kb(child.pid) is None  # gone: nothing made up


def test_the_memory_section_is_part_of_the_bench():
    assert "memory" in SECTIONS


def test_a_page_the_helper_cannot_build_is_reported_and_built_in_thread(tmp_path, caplog):
    # Replies are not pickled (a page is a few MB: no second copy on either side), so the
    # error reply has its own shape: the daemon logs the helper's reason and builds the page.
    from checkpoint.bench import bench_draft
    from checkpoint.export_helper import HelperProcessPages
    from kiosk.clock import FakeClock
    from kiosk.export import InProcessPages
    from kiosk.store import EventLog

    log = EventLog(tmp_path / "kiosk.db", "gate", FakeClock(), "NORMAL").open()
    try:
        for _ in range(3):
            log.append(bench_draft())
        helper_view = SimpleNamespace(path=tmp_path / "gone.db", reader=log.reader)
        page = HelperProcessPages().build(helper_view, 0, 2, frozenset(), False)
        assert "export worker failed (OperationalError" in caplog.text
        assert page == InProcessPages().build(log, 0, 2, frozenset(), False)
        assert page[1:] == (2, 2, 3)
        caplog.clear()
        assert HelperProcessPages().build(log, 1, 5, frozenset(), True)[1:] == (2, 3, 3)
        assert "export worker" not in caplog.text
    finally:
        HelperProcessPages.shutdown()
        log.close()


@pytest.mark.slow  # a fresh interpreter per case
def test_numpy_is_refused_to_sqlite_utils_only():
    script = (
        "import sys, kiosk.store, sqlite_utils.db\n"
        "print(sqlite_utils.db.np is None, 'numpy' in sys.modules)\n"
        "import numpy\n"
        "print(numpy.zeros(2).sum() == 0)\n"
    )
    assert _printed_by(script) == ["True", "False", "True"]


def test_the_export_helper_loads_only_the_page_builder():
    script = (
        "import sys, checkpoint.export_helper, kiosk.export\n"
        "heavy = ('sqlite_utils', 'numpy', 'pydantic', 'fastapi', 'openpyxl', 'httpx')\n"
        "print(' '.join(m for m in heavy if m in sys.modules) or '-')\n"
    )
    assert _printed_by(script) == ["-"]


def test_the_memory_bench_prepares_a_data_dir_the_demo_accepts(tmp_path):
    # The demo refuses a --data folder holding another kiosk's data; the bench's pre-filled
    # log is the demo's own, so it must be marked as such (else the section never starts).
    from checkpoint.bench import memory
    from checkpoint.bench.memory import demo_data
    from checkpoint.cli.daemon_cmd import DEMO_MARK, demo_data_dir

    assert memory.DEMO_MARK == DEMO_MARK

    data = demo_data(tmp_path, 3)
    assert demo_data_dir(data) == data
    assert (data / "kiosk.db").is_file()
