"""CPU placement (checkpoint.cpu): helpers on one core, the gate's process on the others."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import threading

import pytest

from checkpoint import cpu
from checkpoint.app import Daemon, build_core
from kiosk.config import ConfigError, parse_config

linux_affinity = pytest.mark.skipif(
    not hasattr(os, "sched_setaffinity"), reason="CPU affinity is Linux-only"
)


def test_auto_keeps_helpers_on_the_lowest_cpu_and_the_daemon_on_the_others():
    plan = cpu.plan("auto", frozenset({0, 1, 2, 3}))  # a Pi 4/5
    assert plan.pinned
    assert plan.gate == {1, 2, 3}
    assert plan.background == {0}
    two = cpu.plan("auto", frozenset({0, 1}))
    assert two.gate == {1} and two.background == {0}


def test_auto_on_a_single_cpu_pins_nothing():
    plan = cpu.plan("auto", frozenset({0}))
    assert not plan.pinned and plan.background is None
    assert "1 usable CPU" in plan.reason


def test_off_pins_nothing_even_with_many_cpus():
    assert not cpu.plan("off", frozenset({0, 1, 2, 3})).pinned


def test_a_chosen_cpu_is_used_when_this_machine_has_it():
    plan = cpu.plan(1, frozenset({0, 1, 2, 3}))
    assert plan.gate == {1} and plan.background == {0, 2, 3}


def test_a_cpu_this_machine_lacks_is_ignored_with_a_reason_not_an_error():
    plan = cpu.plan(7, frozenset({0, 1, 2, 3}))
    assert not plan.pinned
    assert "engine.cpu = 7" in plan.reason and "0,1,2,3" in plan.reason


def test_a_nonsense_setting_is_an_error():
    with pytest.raises(ValueError, match="engine.cpu"):
        cpu.plan("fast", frozenset({0, 1}))
    with pytest.raises(ValueError):
        cpu.plan(True, frozenset({0, 1}))  # type: ignore[arg-type]


def test_config_accepts_auto_off_and_a_cpu_number_only():
    assert parse_config({}).engine.cpu == "auto"
    assert parse_config({"engine": {"cpu": 2}}).engine.cpu == 2
    for bad in ("fast", -1, True, "2"):
        with pytest.raises(ConfigError, match="engine.cpu"):
            parse_config({"engine": {"cpu": bad}})


@linux_affinity
def test_pin_moves_every_existing_thread_and_release_puts_them_back():
    before = os.sched_getaffinity(0)
    target = frozenset({min(before)})
    seen: dict[str, set[int]] = {}
    pinned, looked, done = threading.Event(), threading.Event(), threading.Event()

    def worker() -> None:  # started before pinning: must be moved too
        pinned.wait(5)
        seen["during"] = os.sched_getaffinity(0)
        looked.set()
        done.wait(5)
        seen["after"] = os.sched_getaffinity(0)

    thread = threading.Thread(target=worker)
    thread.start()
    interval = sys.getswitchinterval()
    try:
        assert cpu.pin_process(cpu.CpuPlan(target, frozenset(before) - target, "test"))
        assert os.sched_getaffinity(0) == target
        assert sys.getswitchinterval() == pytest.approx(cpu.GATE_SWITCH_INTERVAL_S)
        assert cpu.background_cpus() == (tuple(sorted(before - target)) or None)
        pinned.set()
        late: dict[str, set[int]] = {}
        t2 = threading.Thread(target=lambda: late.update(a=os.sched_getaffinity(0)))
        t2.start()
        t2.join()
        assert late["a"] == target  # a thread started later inherits the pin
        assert looked.wait(5)
    finally:
        cpu.release()
        done.set()
        thread.join(5)
    assert seen["during"] == target
    assert seen["after"] == before
    assert os.sched_getaffinity(0) == before
    assert sys.getswitchinterval() == interval
    assert cpu.background_cpus() is None


def test_an_unpinned_plan_changes_nothing():
    before = os.sched_getaffinity(0) if hasattr(os, "sched_getaffinity") else None
    assert cpu.pin_process(cpu.plan("off")) is False
    assert cpu.background_cpus() is None
    if before is not None:
        assert os.sched_getaffinity(0) == before


@linux_affinity
def test_a_helper_leaves_the_gate_cpu_and_runs_nicer():
    cpus = sorted(os.sched_getaffinity(0))
    target = cpus[:1]
    script = (
        "import os, sys\n"
        "from checkpoint.cpu import enter_background\n"
        "before = os.nice(0)\n"
        f"enter_background({tuple(target)!r})\n"
        "print(sorted(os.sched_getaffinity(0)), os.nice(0) - before)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=True
    ).stdout.split(maxsplit=1)
    # sorted list printed as "[0]" (one element: no spaces inside)
    assert out[0] == str(target)
    assert int(out[1]) == cpu.BACKGROUND_NICE


@linux_affinity
@pytest.mark.slow  # integration: real sockets, processes or deadlines (CI runs it)
def test_the_export_helper_runs_off_the_daemons_cpu(core):
    from checkpoint.export_helper import HelperProcessPages as PageBuilder

    available = frozenset(os.sched_getaffinity(0))
    if len(available) < 2:
        pytest.skip("needs two CPUs to keep apart")
    plan = cpu.plan("auto", available)
    PageBuilder.shutdown()  # a helper from an earlier test would keep its old placement
    try:
        cpu.pin_process(plan)
        PageBuilder().build(core.store, 0, 1, frozenset(), False)  # up, and past its set-up
        helper = PageBuilder._proc.pid
        helper_cpus = os.sched_getaffinity(helper)
        helper_nice = os.getpriority(os.PRIO_PROCESS, helper)
    finally:
        PageBuilder.shutdown()
        cpu.release()
    assert helper_cpus == plan.background
    assert helper_nice >= os.nice(0) + cpu.BACKGROUND_NICE


@linux_affinity
@pytest.mark.slow  # integration: real sockets, processes or deadlines (CI runs it)
def test_the_daemon_pins_itself_while_up_and_lets_go_on_stop(data_dir):
    available = frozenset(os.sched_getaffinity(0))
    if len(available) < 2:
        pytest.skip("needs two CPUs to keep apart")
    config = parse_config(
        {"site": {"kiosk_id": "gate-cpu"}, "web": {"port": 0}, "engine": {"cpu": min(available)}}
    )

    async def scenario() -> tuple[set[int], cpu.CpuPlan | None]:
        core = await asyncio.to_thread(build_core, config, data_dir)
        daemon = Daemon(core)
        await daemon.start()
        try:
            return os.sched_getaffinity(0), daemon.cpu_plan
        finally:
            await daemon.stop()

    during, plan = asyncio.run(scenario())
    assert during == {min(available)}
    assert plan is not None and plan.background == available - {min(available)}
    assert os.sched_getaffinity(0) == available
