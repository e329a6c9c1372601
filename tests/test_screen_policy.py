"""Chromium's managed policy for the kiosk's own screen (``systemd/chromium-policy.json``,
installed as ``/etc/chromium/policies/managed/kiosk-screen.json``).

The page refuses every key it is given, but Chromium keeps a few for itself before any page
sees them: Ctrl+N and Ctrl+T opened a new window over the kiosk page, on Chromium's new tab
page, with a search box to the whole web, settings and a file browser, and the kiosk page
behind it still ran, so the screen unit's watcher saw nothing wrong: the gate's screen stayed
covered by whatever a passer-by typed. Ctrl+Shift+N opened an incognito window. With the
policy, a new window opens on the kiosk page itself, and nothing but the kiosk's own host
can be opened at all."""

from __future__ import annotations

import json
import mmap
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from support import need
from test_systemd_units import CHROMIUM_BINARIES, UNIT_DIR, load, values

POLICY = UNIT_DIR / "chromium-policy.json"


def policy() -> dict[str, Any]:
    loaded = json.loads(POLICY.read_text(encoding="utf-8"))
    assert isinstance(loaded, dict)
    return loaded


def screen_origin() -> str:
    environment = dict(
        v.split("=", 1) for v in values(load("kiosk-screen.service"), "Service", "Environment")
    )
    return environment["KIOSK_SCREEN_ORIGIN"]


def test_a_new_window_opens_on_the_kiosk_and_nothing_else_can_be_opened():
    rules = policy()
    origin = screen_origin()
    assert rules["NewTabPageLocation"] == origin + "/kiosk"  # Ctrl+N, Ctrl+T: the kiosk
    # The web, file://, data: and, named on their own, chrome:// pages (settings): blocked.
    assert rules["URLBlocklist"] == ["*", "chrome://*"]
    assert rules["URLAllowlist"] == [urlsplit(origin).hostname]  # http and https alike
    assert rules["IncognitoModeAvailability"] == 1  # Ctrl+Shift+N: no incognito window
    assert rules["DeveloperToolsAvailability"] == 2
    assert rules["BrowserGuestModeEnabled"] is False
    assert rules["PrintingEnabled"] is False
    assert rules["DownloadRestrictions"] == 3
    assert rules["AllowFileSelectionDialogs"] is False


@pytest.mark.slow
def test_every_policy_the_screen_sets_is_one_chromium_knows():
    # Chromium ignores a policy it does not know (chrome://policy shows it as unknown, which
    # nobody at the gate reads): a misspelt name is no policy at all.
    binary = next((b for b in CHROMIUM_BINARIES if b.is_file()), None)
    need(binary is not None, "Chromium")
    assert binary is not None
    with binary.open("rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as image:
        unknown = sorted(n for n in policy() if image.find(b"\0" + n.encode() + b"\0") < 0)
    assert unknown == [], f"{binary} does not know: {unknown}"


def policy_browser(tmp_path: Path, origin: str) -> Path:
    """A Chromium that reads the shipped policy (with the test daemon's origin) as its managed
    policy: run in a mount namespace of its own, with a tmpfs over /etc/chromium holding the
    policy, so no other browser on this machine sees it."""
    need(os.geteuid() == 0 and shutil.which("unshare") is not None, "root and unshare")
    probe = subprocess.run(["unshare", "-m", "true"], capture_output=True, check=False)
    need(probe.returncode == 0, "a mount namespace (unshare -m)")
    etc = tmp_path / "etc-chromium"
    (etc / "policies" / "managed").mkdir(parents=True)
    for kept in Path("/etc/chromium").glob("*"):
        if kept.is_file():
            shutil.copy(kept, etc / kept.name)
    rules = policy()
    rules["NewTabPageLocation"] = rules["NewTabPageLocation"].replace(screen_origin(), origin)
    # Playwright drives Chromium through its DevTools protocol, which this one turns off.
    del rules["DeveloperToolsAvailability"]
    (etc / "policies" / "managed" / "kiosk-screen.json").write_text(json.dumps(rules))
    wrapper = tmp_path / "chromium-with-policy"
    wrapper.write_text(
        "#!/bin/sh\n"
        'exec unshare -m --propagation private /bin/sh -c \'mount --bind "$0" /etc/chromium'
        ' && exec /usr/bin/chromium "$@"\' ' + f'"{etc}" "$@"\n'
    )
    wrapper.chmod(0o755)
    return wrapper


@pytest.mark.browser
def test_under_the_policy_ctrl_t_shows_the_kiosk_and_the_web_is_closed(tmp_path_factory):
    from playwright import sync_api
    from test_browser_kiosk import KioskDemo, serving

    tmp_path = tmp_path_factory.mktemp("policy")
    need(Path("/usr/bin/chromium").exists(), "Debian chromium")
    for demo in serving(KioskDemo(tmp_path / "demo")):
        wrapper = policy_browser(tmp_path, demo.url)
        args = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run"]
        with sync_api.sync_playwright() as pw:
            # The profile's own context, as the screen's Chromium has: Playwright's usual
            # contexts are incognito ones, which the policy refuses.
            browser = pw.chromium.launch_persistent_context(
                tmp_path / "profile", executable_path=str(wrapper), args=args
            )
            try:
                page = browser.new_page()
                page.goto(f"{demo.url}/kiosk")  # the kiosk's own host: allowed
                page.wait_for_function("window.kioskView !== undefined")
                new_tab = browser.new_page()  # what Ctrl+T and Ctrl+N open: the new tab page
                new_tab.goto("chrome://newtab")
                assert new_tab.url == f"{demo.url}/kiosk"
                new_tab.wait_for_function("window.kioskView !== undefined")
                elsewhere_urls = ("chrome://settings", "file:///etc/passwd", "data:text/html,x")
                for elsewhere in elsewhere_urls:
                    with pytest.raises(sync_api.Error, match="ERR_BLOCKED_BY_ADMINISTRATOR"):
                        page.goto(elsewhere)
            finally:
                browser.close()
