"""``kiosk demo``: the real daemon on emulated devices, fed by the scripted visitor stream.

Nothing here is a shortcut around the product: the visitors of ``scenarios/demo.toml`` are
played in real time onto the *devices* — the MLX90614 emulator gets a person with a body
temperature, the fake camera renders the signed pass as a QR on a phone screen, faults are
injected into the emulator and the camera — and the real engine, event log and web server do
the rest. The stream repeats, with fresh passes each round.

The demo's issuing key lives in memory only; its public half is written to the data dir's
trust folder so the kiosk verifies passes exactly as in production.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from checkpoint.app import Daemon, ExitAfterStop, build_core, stop_on_signals
from checkpoint.replay import (
    SCENARIO_DIR,
    DeviceTarget,
    ScenarioDriver,
    ScenarioKeys,
    StoreSwitch,
    emulator_of,
    fake_camera_of,
    load_scenario,
    play_realtime,
)
from drivers.clocksync import system_clock
from drivers.fake_hid import FakeHidReader
from drivers.pihealth import FAKE_THROTTLED
from kiosk.accounts import hash_password
from kiosk.bus import EventBus
from kiosk.clock import Clock, ShiftedClock
from kiosk.config import KioskConfig, trust_dir
from kiosk.config.pihealth import FakePiHealthConfig, PiHealthSection
from kiosk.config.web import WebSection
from kiosk.core import Core
from kiosk.passes import public_key_pem

log = logging.getLogger(__name__)

#: Pause between two rounds of the visitor stream.
ROUND_GAP_S = 20.0
#: Each round of the stream ends with the next morning (a day of scenario time in ~6 min),
#: so demo sign-ins last the longest session the config allows: 7 scenario days.
DEMO_SESSION_HOURS = 168.0


@dataclass
class DemoSession:
    core: Core
    daemon: Daemon
    keys: ScenarioKeys
    guard_user: str
    guard_password: str
    api_token: str
    store_switch: StoreSwitch
    admin_user: str = ""
    admin_password: str = ""


#: The demo gate's ``site.kiosk_id`` unless ``kiosk demo --kiosk-id`` names another.
DEMO_KIOSK_ID = "demo-gate"


def demo_config(port: int, host: str = "127.0.0.1", kiosk_id: str | None = None) -> KioskConfig:
    """The demo scenario's own config (its rules: quota, passback) on this host and port, as
    the gate ``kiosk_id`` (``kiosk demo --kiosk-id``, checked there; else ``DEMO_KIOSK_ID``)."""
    scenario = load_scenario(SCENARIO_DIR / "demo.toml")
    return scenario.config.model_copy(
        update={
            "site": scenario.config.site.model_copy(
                update={"kiosk_id": kiosk_id or DEMO_KIOSK_ID, "site_name": "演示小区"}
            ),
            "web": WebSection(host=host, port=port, session_hours=DEMO_SESSION_HOURS),
            # The Pi's power and heat from a fake's files in the data dir (``pi-sysfs``), to
            # be driven by hand: the banner says how.
            "pi_health": PiHealthSection(driver=FakePiHealthConfig()),
        }
    )


def device_target(core: Core, store_switch: StoreSwitch | None = None) -> DeviceTarget:
    runner = core.runner
    clock = core.clock
    return DeviceTarget(
        clock=core.clock,
        emulator=emulator_of(core),
        camera_dev=fake_camera_of(core),
        gate_dev=core.devices.gate,
        store_switch=store_switch,
        list_store=core.lists,
        timezone=core.config.site.timezone,
        code_sink=code_sink(core),
        on_direction=runner.select_direction,
        on_manual=lambda **kw: runner.manual_threadsafe(**kw),
        on_clock_jump=clock.jump if isinstance(clock, ShiftedClock) else None,
        event_log=core.store,
    )


def code_sink(core: Core) -> Callable[[str, str | None], None]:
    """Where the demo hands a code no camera shows: typed into a fake keyboard-mode scanner
    when the config has one (``type = "fake_hid"``: key events through the real driver), else
    straight to the runner, as the guard console hands one over."""
    runner = core.runner

    def submit(text: str, direction: str | None) -> None:
        runner.submit_code(text, direction, source="demo")

    fakes = [r.fake for r in core.devices.readers if isinstance(r, FakeHidReader)]
    if not fakes:
        return submit
    fake = fakes[0]

    def typed(text: str, direction: str | None) -> None:
        try:
            fake.scan(text)
        except ValueError:  # no US key types it (a forged pass in Chinese)
            submit(text, direction)

    return typed


async def start_demo(
    data_dir: Path,
    port: int,
    clock: Clock | None = None,
    host: str = "127.0.0.1",
    config: KioskConfig | None = None,
    stopping: asyncio.Event | None = None,
) -> DemoSession:
    """The demo kiosk, started. ``stopping``: the daemon's stop, set already by a signal
    that came while it started (``run_demo``); it is then stopped once started."""
    config = config or demo_config(port, host)
    keys = ScenarioKeys()
    trust = trust_dir(config, data_dir)
    trust.mkdir(parents=True, exist_ok=True)
    (trust / "demo.pub").write_bytes(public_key_pem(keys.demo.public_key()))
    scenario = load_scenario(SCENARIO_DIR / "demo.toml")
    # The scripted day starts at the scenario's 09:00 whatever the hour here, so opening
    # hours and the clock step the stream includes behave as in `kiosk replay demo`.
    core = await asyncio.to_thread(
        build_core, config, data_dir, clock or ShiftedClock(scenario.start, system_clock())
    )
    try:
        session = await _demo_session(core, keys, stopping)
    except BaseException:
        await asyncio.to_thread(core.close)
        raise
    try:
        await session.daemon.start()
    except BaseException:
        await session.daemon.stop()
        raise
    return session


async def _demo_session(
    core: Core, keys: ScenarioKeys, stopping: asyncio.Event | None
) -> DemoSession:
    """The demo's issuing key, event log switch, accounts and API token on ``core``, and its
    daemon, not started yet."""
    core.issuer_key = keys.demo
    # A switch in front of the event log lets the stream show a full disk (and recovery).
    store_switch = StoreSwitch(core.store)
    core.runner.store = store_switch
    # A guard (sees masked personal data, as on a real shift) and an admin (sees it all).
    password = secrets.token_urlsafe(9)
    await asyncio.to_thread(core.accounts.add, "guard", "guard", hash_password(password), "demo")
    admin_password = secrets.token_urlsafe(9)
    await asyncio.to_thread(
        core.accounts.add, "admin", "admin", hash_password(admin_password), "demo"
    )
    _, token = await asyncio.to_thread(
        core.tokens.create, ["logs:read", "stats:read"], "demo office", "demo"
    )
    daemon = Daemon(core, stopping=stopping)
    return DemoSession(
        core, daemon, keys, "guard", password, token, store_switch, "admin", admin_password
    )


async def walk_on_when_decided(
    bus: EventBus, target: DeviceTarget, driver: ScenarioDriver | None = None
) -> None:
    """Each decided visitor walks away from the sensor and lowers the phone, so the next one
    starts from an empty scene (as in replay), and ``driver`` learns the passage of each
    visitor step (``ScenarioDriver.decided``: a guard's step names it). Watches the bus, as
    the screens do."""
    subscription = bus.subscribe(name="demo-visitors")
    try:
        async for message in subscription:
            if message["type"] == "decision":
                if driver is not None:
                    driver.decided(message)
                await asyncio.to_thread(target.visitor_done, message)
    finally:
        subscription.close()


async def play_visitors(session: DemoSession) -> None:
    """Play ``demo.toml`` in real time onto the devices, round after round, until cancelled."""
    core = session.core
    target = device_target(core, session.store_switch)
    driver = ScenarioDriver(
        load_scenario(SCENARIO_DIR / "demo.toml"),
        core.clock,
        target,
        session.keys,
        core.config.site,
    )
    walking = asyncio.create_task(
        walk_on_when_decided(core.bus, target, driver), name="demo-walk-on"
    )
    try:
        await play_realtime(driver, repeat=True, gap_s=ROUND_GAP_S)
    finally:
        walking.cancel()
        with contextlib.suppress(BaseException):
            await walking


def print_banner(session: DemoSession) -> None:
    url = session.daemon.url
    print(
        "\n".join(
            [
                "Checkpoint kiosk demo is running on simulated devices.",
                f"  kiosk screen : {url}/kiosk",
                f"  guard console: {url}/guard   (login: {session.guard_user} / "
                f"{session.guard_password})",
                f"  as an admin  : {url}/guard   (login: {session.admin_user} / "
                f"{session.admin_password})   sees personal data unmasked",
                f"  API          : {url}/api/v1/health   (schema: {url}/openapi.json)",
                f"  API token    : {session.api_token}   (scopes logs:read stats:read)",
                f"  data         : {session.core.data_dir}",
                *_pi_power_line(session.core),
                "Scripted visitors arrive every few seconds on a scripted day that starts at"
                f" {session.core.clock.now().astimezone(session.core.tz):%Y-%m-%d %H:%M}"
                " site time. Ctrl-C stops.",
            ]
        ),
        flush=True,
    )


def _pi_power_line(core: Core) -> list[str]:
    """How to drive the fake Pi's power (``pi_health.driver`` ``fake``): its throttle word."""
    driver = core.config.pi_health.driver
    if not isinstance(driver, FakePiHealthConfig):
        return []
    word = (driver.root or core.data_dir / "pi-sysfs") / FAKE_THROTTLED
    return [f"  Pi power     : echo 50005 > {word}   (under-voltage; echo 0: over)"]


def run_demo_process(
    port: int,
    data: Path | None,
    host: str = "127.0.0.1",
    *,
    kiosk_id: str | None = None,
    leaving: ExitAfterStop | None = None,
) -> int:
    """``kiosk demo``'s process: ``run_demo`` on its own loop, ended as ``kiosk run`` ends
    (``leaving``, built before the loop runs, in the program's own process): a thread still
    stuck after the stop (a write to a stalled card, a request's) does not keep the process
    past the exit's grace. None: nothing ends the process (a caller's own)."""
    try:
        return asyncio.run(run_demo(port, data, host, kiosk_id=kiosk_id, leaving=leaving))
    finally:
        if leaving is not None:
            leaving.settle()  # the threads of the run have ended: the process ends by itself


async def run_demo(
    port: int,
    data: Path | None,
    host: str = "127.0.0.1",
    *,
    kiosk_id: str | None = None,
    leaving: ExitAfterStop | None = None,
) -> int:
    """The demo until a signal, then its daemon's stop; ``leaving`` armed after it."""
    stopping = asyncio.Event()
    stop_on_signals(stopping.set)  # first, as `kiosk run`: a SIGTERM while starting is a clean stop
    with contextlib.ExitStack() as stack:
        if data is None:
            data = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="kiosk-demo-")))
        config = demo_config(port, host, kiosk_id)
        session = await start_demo(data, port, host=host, config=config, stopping=stopping)
        print_banner(session)
        visitors = asyncio.create_task(play_visitors(session), name="demo-visitors")
        try:
            await session.daemon.run_until_signal()
        finally:
            visitors.cancel()
            with contextlib.suppress(BaseException):
                await visitors
            await session.daemon.stop()
            if leaving is not None:  # as `kiosk run`: a thread still stuck ends with the process
                leaving.arm(0 if sys.exc_info()[0] is None else 1)
    return 0
