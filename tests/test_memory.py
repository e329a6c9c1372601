"""Memory: what a gate loads for its devices, the allocator settings, the PSS measurement."""

from __future__ import annotations

import os
import platform
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

from checkpoint.bench import SECTIONS
from checkpoint.bench.memory import descendants, rollup_kb, tree_pss

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
    assert rollup_kb(child.pid) is None  # gone: nothing made up


def test_the_memory_section_is_part_of_the_bench():
    assert "memory" in SECTIONS


@pytest.mark.slow
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


_ROLLUP = """55a6b109f000-7ffd45884000 ---p 00000000 00:00 0                          [rollup]
Rss:              {rss} kB
Pss:              {pss} kB
Pss_Dirty:           112 kB
Pss_Anon:         {anon} kB
Pss_File:         {file} kB
Pss_Shmem:        {shmem} kB
Shared_Clean:       1620 kB
"""


def _fake_process(proc, pid, ppid, anon, file, shmem=0):
    folder = proc / str(pid)
    folder.mkdir()
    pss = anon + file + shmem
    rollup = _ROLLUP.format(rss=pss + 500, pss=pss, anon=anon, file=file, shmem=shmem)
    (folder / "smaps_rollup").write_text(rollup)
    (folder / "stat").write_text(f"{pid} (python3 x) S {ppid} 1 1 0 -1\n")
    (folder / "cmdline").write_bytes(b"python3\0-m\0checkpoint\0")


def test_the_total_is_split_into_what_the_board_cannot_and_can_reclaim(tmp_path, monkeypatch):
    from checkpoint.bench import memory

    proc = tmp_path / "proc"
    proc.mkdir()
    _fake_process(proc, 100, 1, anon=81_234, file=38_777, shmem=51)  # the daemon
    _fake_process(proc, 101, 100, anon=9_100, file=2_950)  # its export helper
    _fake_process(proc, 7, 1, anon=999_999, file=999_999)  # not ours: not counted
    monkeypatch.setattr(memory, "PROC", proc)
    tree = memory.tree_pss(100)
    assert [h["pid"] for h in tree["helpers"]] == [101]
    assert tree["anon_pss_mb"] == round((81_234 + 9_100) / 1024, 1)
    assert tree["file_pss_mb"] == round((38_777 + 2_950) / 1024, 1)
    assert tree["shmem_pss_mb"] == round(51 / 1024, 1)
    assert tree["total_pss_mb"] == pytest.approx(
        tree["anon_pss_mb"] + tree["file_pss_mb"] + tree["shmem_pss_mb"], abs=0.11
    )


def test_the_split_is_read_with_the_total_even_while_the_process_grows(tmp_path, monkeypatch):
    # Run 2 of this change read anon 100.8 + file 37.1 against a total of 139.7: each field
    # was its own read of smaps_rollup while the daemon's heap moved. Here every read of a
    # process's rollup finds it 1 MB bigger than the last.
    from checkpoint.bench import memory

    proc = tmp_path / "proc"
    proc.mkdir()
    _fake_process(proc, 100, 1, anon=80_000, file=38_000)
    _fake_process(proc, 101, 100, anon=9_000, file=3_000)
    reads = {100: 0, 101: 0}

    def growing(pid):
        reads[pid] += 1
        anon = {100: 80_000, 101: 9_000}[pid] + 1024 * reads[pid]
        file = {100: 38_000, 101: 3_000}[pid]
        return _ROLLUP.format(rss=anon + file, pss=anon + file, anon=anon, file=file, shmem=0)

    monkeypatch.setattr(memory, "PROC", proc)
    monkeypatch.setattr(memory, "_read_rollup", growing)
    tree = memory.tree_pss(100)
    assert reads == {100: 1, 101: 1}
    assert tree["total_pss_mb"] == pytest.approx(
        tree["anon_pss_mb"] + tree["file_pss_mb"] + tree["shmem_pss_mb"], abs=0.11
    )


def test_a_kernel_without_the_split_says_none_rather_than_a_made_up_figure(tmp_path, monkeypatch):
    from checkpoint.bench import memory

    proc = tmp_path / "proc"
    (proc / "100").mkdir(parents=True)
    (proc / "100" / "smaps_rollup").write_text("Rss: 2000 kB\nPss: 1024 kB\n")
    (proc / "100" / "stat").write_text("100 (python3) S 1 1 1 0 -1\n")
    monkeypatch.setattr(memory, "PROC", proc)
    tree = memory.tree_pss(100)
    assert tree["total_pss_mb"] == 1.0
    assert tree["anon_pss_mb"] is None and tree["file_pss_mb"] is None


@linux_proc
def test_the_split_of_a_real_process_tree_sums_to_its_total():
    tree = tree_pss(os.getpid())
    if tree["anon_pss_mb"] is None:
        pytest.skip("kernel before 5.8: no Pss_Anon in smaps_rollup")
    assert tree["anon_pss_mb"] > 0 and tree["file_pss_mb"] > 0
    parts = tree["anon_pss_mb"] + tree["file_pss_mb"] + tree["shmem_pss_mb"]
    assert tree["total_pss_mb"] == pytest.approx(parts, abs=0.2)


def _advised(monkeypatch):
    """Record each posix_fadvise call as (the file's path, offset, length, advice)."""
    calls = []

    def fadvise(fd, offset, length, advice):
        calls.append((os.readlink(f"/proc/self/fd/{fd}"), offset, length, advice))

    monkeypatch.setattr(os, "posix_fadvise", fadvise, raising=False)
    return calls


@pytest.mark.skipif(not hasattr(os, "POSIX_FADV_DONTNEED"), reason="no posix_fadvise here")
def test_the_daemon_files_are_dropped_from_the_page_cache_one_by_one(tmp_path, monkeypatch):
    from checkpoint.bench.memory import drop_page_cache

    files = [tmp_path / "libx.so.1", tmp_path / "mod.cpython-311.so", tmp_path / "m.pyc"]
    for i, path in enumerate(files):
        path.write_bytes(b"x" * (4096 * (i + 1)))
    calls = _advised(monkeypatch)
    state = drop_page_cache(files)
    assert calls == [(str(p), 0, 0, os.POSIX_FADV_DONTNEED) for p in files]
    assert state["page_cache"] == "dropped" and state["files"] == 3
    assert state["files_mb"] == round(6 * 4096 / 2**20, 1)


@pytest.mark.skipif(not hasattr(os, "POSIX_FADV_DONTNEED"), reason="no posix_fadvise here")
def test_a_real_drop_leaves_the_file_out_of_the_page_cache():
    # A file on disk nothing maps (tmp_path is in /dev/shm, whose pages are the files
    # themselves): the standard library's help topics, read and not written.
    import sysconfig

    from checkpoint.bench.memory import _cached_pages, drop_page_cache

    path = Path(sysconfig.get_paths()["stdlib"]) / "pydoc_data" / "topics.py"
    path.read_bytes()
    if _cached_pages(path) is None:
        pytest.skip("mincore unreadable here")
    state = drop_page_cache([path])
    assert state["files_mb"] > 0.1
    assert state["cached_mb_before"] == pytest.approx(state["files_mb"], abs=0.1)  # all read
    assert state["cached_mb_after"] == 0.0


def test_where_nothing_can_be_dropped_the_state_is_as_found(tmp_path, monkeypatch):
    from checkpoint.bench.memory import drop_page_cache

    path = tmp_path / "lib.so"
    path.write_bytes(b"x")
    monkeypatch.delattr(os, "posix_fadvise", raising=False)
    assert drop_page_cache([path])["page_cache"] == "as_found"


@pytest.mark.slow
def test_the_files_the_daemon_maps_are_the_venvs_and_the_interpreters():
    import sysconfig

    from checkpoint.bench.memory import daemon_files

    files = set(daemon_files())
    import _sqlite3
    import sqlite3  # noqa: F401  the stdlib: a .py and an extension module (lib-dynload)

    import pydantic_core  # the venv: an extension module

    assert Path(os.path.realpath(sys.executable)) in files
    assert Path(_sqlite3.__file__) in files
    assert Path(sqlite3.__file__) in files
    assert Path(pydantic_core._pydantic_core.__file__) in files
    library = sysconfig.get_config_var("LDLIBRARY")
    if library and library.endswith(".so"):
        assert any(p.name.startswith(library) for p in files)


def test_the_section_measures_from_a_dropped_page_cache(tmp_path, monkeypatch):
    # The order is the point: the drop after the prefill and before the demo starts, and
    # again once the demo (which made them hot) has stopped, before the imports probe.
    from checkpoint.bench import memory

    steps = []
    lib = tmp_path / "lib.so"
    lib.write_bytes(b"x" * 4096)
    state = {"page_cache": "dropped", "files": 1, "files_mb": 0.0}
    state |= {"cached_mb_before": 0.0, "cached_mb_after": 0.0}
    tree = {"total_pss_mb": 1.0, "helpers": [], "anon_pss_mb": 0.6, "file_pss_mb": 0.4}
    fake_proc = SimpleNamespace(pid=4242)
    monkeypatch.setattr(memory, "daemon_files", lambda: [lib])
    monkeypatch.setattr(memory, "demo_data", lambda tmp, n: steps.append("prefill") or tmp)
    monkeypatch.setattr(
        memory, "drop_page_cache", lambda files: steps.append(("drop", files)) or state
    )
    monkeypatch.setattr(
        memory, "_start_demo", lambda data, port: steps.append("start") or (fake_proc, "t")
    )
    monkeypatch.setattr(memory, "_timed_pull", lambda *a: (10, 0.5))
    monkeypatch.setattr(memory, "tree_pss", lambda pid: dict(tree))
    monkeypatch.setattr(memory, "_stop", lambda proc: steps.append("stop"))
    monkeypatch.setattr(memory, "import_cost_mb", lambda: steps.append("probe") or (60.0, 28.0))
    monkeypatch.setattr(memory.time, "sleep", lambda s: None)
    result = memory.run(quick=True)
    assert steps == ["prefill", ("drop", [lib]), "start", "stop", ("drop", [lib]), "probe"]
    assert result["page_cache"] == "dropped" and result["imports_page_cache"] == "dropped"
    assert result["page_cache_drop"]["files"] == 1
    assert result["anon_pss_mb"] == 0.6 and result["file_pss_mb"] == 0.4


def _sysfs_with(tmp_path: Path, path: Path, disk: str, kb: str, partition: bool) -> Path:
    """A sysfs tree where ``path``'s device is a disk (or a partition of one) reading ``kb``."""
    dev = path.stat().st_dev
    sys_root = tmp_path / "sys"
    disk_dir = sys_root / "devices" / "virtual" / "block" / disk
    (disk_dir / "queue").mkdir(parents=True)
    (disk_dir / "queue" / "read_ahead_kb").write_text(kb + "\n")
    node = disk_dir / f"{disk}p2" if partition else disk_dir
    node.mkdir(exist_ok=True)
    links = sys_root / "dev" / "block"
    links.mkdir(parents=True)
    (links / f"{os.major(dev)}:{os.minor(dev)}").symlink_to(node)
    return sys_root


@pytest.mark.parametrize("partition", [False, True])
def test_the_readahead_of_the_venvs_disk_is_read_from_its_device_or_its_partitions_disk(
    tmp_path, partition
):
    from checkpoint.bench.memory import read_ahead_kb

    here = tmp_path / "venv"
    here.mkdir()
    sys_root = _sysfs_with(tmp_path, here, "mmcblk0", "128", partition)
    assert read_ahead_kb(here, sys_root) == 128


def test_a_filesystem_with_no_block_device_or_a_garbled_readahead_says_none(tmp_path):
    from checkpoint.bench.memory import read_ahead_kb

    here = tmp_path / "venv"
    here.mkdir()
    assert read_ahead_kb(here, tmp_path / "no-sysfs") is None
    sys_root = _sysfs_with(tmp_path, here, "vda", "lots", partition=False)
    assert read_ahead_kb(here, sys_root) is None
