"""``memory``: what the whole gate daemon costs in memory, read from ``/proc``, not estimated.

The real ``kiosk demo`` runs as a child process (``python -m checkpoint demo``: the daemon on
simulated devices, its scripted visitors passing) on a data dir whose event log was
pre-filled (100,000 events; 20,000 with ``quick``, ``checkpoint.bench.pull.prefill``). After
``TRAFFIC_S`` of the demo's own traffic (600 s, the issue's ten minutes; 20 s with ``quick``)
this process pulls the whole log through the API with the real client (``office.pull``),
which starts the export helper; then the PSS (``/proc/<pid>/smaps_rollup``) of the daemon and
of every process below it (the export helper, multiprocessing's resource tracker) is summed.
PSS, not RSS: shared library pages are split between the processes that map them, so the
sum is what the daemon's processes really take from the board. (Other processes mapping the
same files, e.g. a second kiosk program from the same venv, lower it: measure on a machine
where the daemon runs alone.)

* ``daemon_pss_mb``: the daemon process; ``helpers_pss_mb``: all its descendants, with
  ``helpers`` listing each (``pid``, ``pss_mb``, the start of its command line);
  ``total_pss_mb``: both (``total_rss_mb``: the same processes' RSS, which counts every
  shared page in full: the worst case); ``after_idle_pss_mb``: the total again once the
  helper has been idle for ``IDLE_WAIT_S`` (it stops when idle; ``checkpoint.export_helper``);
* ``anon_pss_mb``, ``file_pss_mb``, ``shmem_pss_mb``: the total split as the kernel splits it
  (``Pss_Anon``: the heap and stacks, what the board cannot take back without killing the
  process; ``Pss_File``: pages of the mapped files, clean ones the kernel drops under
  pressure and reads again when touched);
* ``imports_mb``: PSS a fresh interpreter gains importing what the demo imports
  (``checkpoint.demo``), against the bare interpreter; ``cv2_mb`` is OpenCV's share of it.

The state it measures from is "as after a boot": before the demo starts, and again before the
imports probe, the files the daemon maps or reads (``daemon_files``: the venv's and the
interpreter's shared libraries, extension modules and ``.py``/``.pyc``) are dropped from the
page cache (``drop_page_cache``: ``posix_fadvise(DONTNEED)`` per file, no root). A library
left cached would be mapped by the kernel's fault-around in larger pieces and count more PSS
(docs/memory.md, "Pinned versions and the page cache"). A page another process maps stays
(the bench's own interpreter, libc): ``page_cache_drop`` says how much was cached before and
after (``mincore``), and ``page_cache`` is ``"as_found"`` where nothing could be dropped.
``read_ahead_kb`` is the venv's disk's readahead, part of that state (how much a
first fault reads around it).

The child inherits this process's environment, so ``MALLOC_ARENA_MAX=2 kiosk bench --only
memory`` measures the unit's allocator setting (``systemd/kiosk.service``).
"""

from __future__ import annotations

import contextlib
import ctypes
import mmap
import os
import re
import signal
import socket
import subprocess
import sys
import sysconfig
import tempfile
import time
from pathlib import Path
from typing import Any

from checkpoint.bench.pull import _timed_pull, prefill

#: (events pre-filled, seconds of demo traffic before the pull)
FULL = (100_000, 600.0)
QUICK = (20_000, 20.0)
#: ``checkpoint.cli.daemon_cmd.DEMO_MARK`` (not imported: the CLI imports the benches), the mark
#: of a folder ``kiosk demo --data`` may use; ``tests/test_memory.py`` checks the demo takes it.
DEMO_MARK = ".kiosk-demo"
#: After the pull, how long to wait for the idle helper to stop (its idle limit plus slack).
IDLE_WAIT_S = 40.0
#: Where the processes are read (tests point it at a fake tree).
PROC = Path("/proc")
_IMPORT_PROBE = (
    "import re, sys\n"
    "def pss():\n"
    "    text = open('/proc/self/smaps_rollup').read()\n"
    "    return int(re.search(r'^Pss:\\s+(\\d+) kB', text, re.M).group(1))\n"
    "before = pss()\n"
    "import cv2\n"
    "with_cv2 = pss()\n"
    "import checkpoint.demo\n"
    "print(before, with_cv2, pss())\n"
)


def _read_rollup(pid: int) -> str | None:
    try:
        return (PROC / str(pid) / "smaps_rollup").read_text()
    except OSError:
        return None


def rollup_kb(pid: int) -> dict[str, int] | None:
    """Every ``kB`` line of the process's ``smaps_rollup`` (``Pss``, ``Pss_Anon``, ``Rss``...),
    from one read, or None if it is gone (or not ours to read)."""
    text = _read_rollup(pid)
    if text is None:
        return None
    return {m[1]: int(m[2]) for m in re.finditer(r"^(\w+):\s+(\d+) kB", text, re.M)}


def descendants(pid: int) -> list[int]:
    """Every live process below ``pid`` (children, their children, ...)."""
    children: dict[int, list[int]] = {}
    for entry in PROC.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # The command name is in parentheses and may hold spaces: the ppid follows the last ')'.
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(entry.name))
    found: list[int] = []
    todo = [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def _cmdline(pid: int) -> str:
    try:
        raw = (PROC / str(pid) / "cmdline").read_bytes()
    except OSError:
        return "?"
    return raw.replace(b"\0", b" ").decode(errors="replace").strip()[:80]


def _sum_mb(rollups: list[dict[str, int]], field: str) -> float | None:
    """``field`` summed over the processes' rollups in MB; None if the kernel has no such line
    (``Pss_Anon``, ``Pss_File``, ``Pss_Shmem``: Linux 5.8+)."""
    if any(field not in r for r in rollups):
        return None
    return round(sum(r[field] for r in rollups) / 1024, 1)


def tree_pss(pid: int) -> dict[str, Any]:
    """PSS of ``pid`` and everything below it. Each process's figures come from one read of its
    rollup, so the split (anon, file, shmem) sums to the total it is read with."""
    daemon = rollup_kb(pid) or {}
    helpers = [(p, r) for p in descendants(pid) if (r := rollup_kb(p)) and "Pss" in r]
    rollups = [daemon, *(r for _, r in helpers)]
    daemon_kb = daemon.get("Pss", 0)
    helper_kb = sum(r["Pss"] for _, r in helpers)
    return {
        "daemon_pss_mb": round(daemon_kb / 1024, 1),
        "helpers_pss_mb": round(helper_kb / 1024, 1),
        "total_pss_mb": round((daemon_kb + helper_kb) / 1024, 1),
        "total_rss_mb": round(sum(r.get("Rss", 0) for r in rollups) / 1024, 1),
        "anon_pss_mb": _sum_mb(rollups, "Pss_Anon"),
        "file_pss_mb": _sum_mb(rollups, "Pss_File"),
        "shmem_pss_mb": _sum_mb(rollups, "Pss_Shmem"),
        "helpers": [
            {"pid": p, "pss_mb": round(r["Pss"] / 1024, 1), "cmd": _cmdline(p)} for p, r in helpers
        ],
    }


def import_cost_mb() -> tuple[float, float]:
    """(everything the demo imports, of which cv2), in PSS MB, in a fresh interpreter."""
    out = subprocess.run(
        [sys.executable, "-c", _IMPORT_PROBE], capture_output=True, text=True, timeout=120
    )
    before, with_cv2, after = (int(x) for x in out.stdout.split())
    return round((after - before) / 1024, 1), round((with_cv2 - before) / 1024, 1)


#: What the daemon maps or reads from its installation: shared libraries and extension modules
#: (``.so``, ``.so.6``, ...) and Python sources and bytecode.
_LIB_SUFFIXES = (".py", ".pyc")


def _is_daemon_file(name: str) -> bool:
    return name.endswith(_LIB_SUFFIXES) or name.endswith(".so") or ".so." in name


def daemon_files() -> list[Path]:
    """The files a daemon of this interpreter maps or reads at start: everything of the venv
    (``sys.prefix``) and of the interpreter's standard library (``lib-dynload`` with it) that
    is a shared library, an extension module or Python code, the interpreter itself and its
    ``libpython``. More than one daemon uses (the dev tools of a venv): harmless, a file
    nothing maps is only read again if something needs it."""
    paths = sysconfig.get_paths()
    roots = {Path(sys.prefix), Path(paths["stdlib"]), Path(paths["platstdlib"])}
    found: set[Path] = {Path(os.path.realpath(sys.executable))}
    libdir, library = sysconfig.get_config_var("LIBDIR"), sysconfig.get_config_var("LDLIBRARY")
    if libdir and library and (Path(libdir) / library).is_file():
        found.add(Path(os.path.realpath(Path(libdir) / library)))
    for root in roots:
        for folder, dirs, names in os.walk(root):
            if root != Path(sys.prefix):  # the base interpreter's packages: not the venv's
                dirs[:] = [d for d in dirs if d not in ("site-packages", "dist-packages")]
            found.update(Path(folder) / n for n in names if _is_daemon_file(n))
    return sorted(p for p in found if p.is_file() and not p.is_symlink())


def _cached_pages(path: Path) -> int | None:
    """How many of the file's pages the page cache holds (``mincore`` on a mapping that touches
    none of them), or None where that cannot be read."""
    try:
        with path.open("rb") as f:
            size = os.fstat(f.fileno()).st_size
            if size == 0:
                return 0
            with mmap.mmap(f.fileno(), size, access=mmap.ACCESS_COPY) as mapped:
                view = (ctypes.c_char * size).from_buffer(mapped)
                pages = -(-size // mmap.PAGESIZE)
                vector = (ctypes.c_ubyte * pages)()
                rc = _LIBC.mincore(ctypes.c_void_p(ctypes.addressof(view)), size, vector)
                del view  # the mapping cannot close while a view of it is alive
                return None if rc else pages - bytes(vector).count(0)
    except (OSError, ValueError, AttributeError):
        return None


try:
    _LIBC: Any = ctypes.CDLL(None, use_errno=True)
except OSError:  # pragma: no cover - not a POSIX libc
    _LIBC = None


def _cached_mb(files: list[Path]) -> float | None:
    counts = [_cached_pages(p) for p in files]
    if any(c is None for c in counts):
        return None
    return round(sum(c or 0 for c in counts) * mmap.PAGESIZE / 2**20, 1)


def _drop(path: Path) -> bool:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return False
    try:
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        return True
    except OSError:
        return False
    finally:
        os.close(fd)


def read_ahead_kb(path: Path, sys_root: Path = Path("/sys")) -> int | None:
    """The readahead (KiB) of the block device holding ``path``'s filesystem, or None (no
    block device: tmpfs, overlay; no sysfs). A partition's is its disk's. The kernel reads
    that much around a first page fault into the page cache and maps what it holds around
    each fault: the larger it is, the more file PSS the same libraries count."""
    try:
        dev = path.stat().st_dev
        device = (sys_root / "dev" / "block" / f"{os.major(dev)}:{os.minor(dev)}").resolve()
        for queue in (device / "queue", device.parent / "queue"):
            if (queue / "read_ahead_kb").is_file():
                return int((queue / "read_ahead_kb").read_text(encoding="ascii").strip())
    except (OSError, ValueError):
        return None
    return None


def drop_page_cache(files: list[Path]) -> dict[str, Any]:
    """Ask the kernel to drop ``files`` from the page cache (``POSIX_FADV_DONTNEED``: no root,
    only this process's own request; pages another process maps stay). ``page_cache`` is
    ``"dropped"`` if any file was, else ``"as_found"``; ``cached_mb_before`` and ``_after``
    what ``mincore`` saw (None where it cannot)."""
    before = _cached_mb(files)
    dropped = sum(_drop(path) for path in files) if hasattr(os, "posix_fadvise") else 0
    return {
        "page_cache": "dropped" if dropped else "as_found",
        "files": dropped,
        "files_mb": round(sum(p.stat().st_size for p in files) / 2**20, 1),
        "cached_mb_before": before,
        "cached_mb_after": _cached_mb(files),
    }


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def demo_data(tmp: Path, events: int) -> Path:
    """A data dir for the demo child: its event log pre-filled with ``events`` events, marked
    as a demo's (``kiosk demo --data`` refuses a folder holding any other data)."""
    data = tmp / "data"
    data.mkdir()
    prefill(data / "kiosk.db", events, kiosk_id="demo-gate")
    (data / DEMO_MARK).write_text("kiosk bench memory: a demo's pre-filled data\n")
    return data


def _start_demo(data: Path, port: int) -> tuple[subprocess.Popen[str], str]:
    """The demo child and its API token (from its banner)."""
    errors = data.parent / "demo.err"
    with errors.open("w") as stderr:
        proc = subprocess.Popen(
            [sys.executable, "-m", "checkpoint", "demo", "--port", str(port), "--data", str(data)],
            stdout=subprocess.PIPE,
            stderr=stderr,
            text=True,
        )
    assert proc.stdout is not None
    deadline = time.monotonic() + 120
    for line in proc.stdout:
        if line.strip().startswith("API token"):
            return proc, line.split(":", 1)[1].split()[0]
        if time.monotonic() > deadline:
            break
    proc.kill()
    said = errors.read_text(errors="replace").strip().splitlines()
    raise RuntimeError(
        f"the demo did not start (exit {proc.wait()}): {said[-1] if said else 'no message'}"
    )


def _stop(proc: subprocess.Popen[str]) -> None:
    with contextlib.suppress(ProcessLookupError):
        proc.send_signal(signal.SIGINT)
    try:
        proc.wait(30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(10)


def run(quick: bool) -> dict[str, Any]:
    if not Path("/proc/self/smaps_rollup").exists():
        from checkpoint.bench import unavailable

        return unavailable("no /proc/<pid>/smaps_rollup here (Linux 4.14+ only)")
    events, traffic_s = QUICK if quick else FULL
    with tempfile.TemporaryDirectory(prefix="kiosk-bench-memory-") as tmp:
        data = demo_data(Path(tmp), events)
        port = _free_port()
        files = daemon_files()
        cold = drop_page_cache(files)  # as after a boot: after the prefill, before the start
        proc, token = _start_demo(data, port)
        try:
            time.sleep(traffic_s)
            pulled, seconds = _timed_pull(f"http://127.0.0.1:{port}", token, Path(tmp) / "o.db")
            after_pull = tree_pss(proc.pid)
            time.sleep(IDLE_WAIT_S)
            after_idle = tree_pss(proc.pid)
        finally:
            _stop(proc)
    cold_imports = drop_page_cache(files)  # the demo has just made them hot again
    imports, cv2_mb = import_cost_mb()
    return {
        **after_pull,
        "page_cache": cold["page_cache"],
        "page_cache_drop": {k: v for k, v in cold.items() if k != "page_cache"},
        "read_ahead_kb": read_ahead_kb(Path(sys.prefix)),
        "imports_mb": imports,
        "cv2_mb": cv2_mb,
        "imports_page_cache": cold_imports["page_cache"],
        "after_idle_pss_mb": after_idle["total_pss_mb"],
        "after_idle_helpers": after_idle["helpers"],
        "traffic_s": traffic_s,
        "pulled_events": pulled,
        "pull_s": round(seconds, 2),
        "malloc_arena_max": os.environ.get("MALLOC_ARENA_MAX"),
        "bench_loaded": bench_loaded(),
    }


def bench_loaded() -> list[str]:
    """The camera libraries this process had loaded while it measured: each shares its pages
    with the daemon and lowers its PSS (``kiosk bench`` runs this section first, so none)."""
    return [name for name in ("cv2", "numpy") if name in sys.modules]
