"""Defects a guard on a Chinese-language phone or tablet met: what the console answers is
said in the console's language, on the console's pages."""

from __future__ import annotations

from guard_support import BASE, login, post

from kiosk.calibration import default_path

HTML = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"


def test_a_form_from_a_page_of_an_earlier_sign_in_is_refused_on_the_page_in_chinese(
    guard_client, guard_core
):
    """A tab left open while the tablet was signed out and in again (the next guard) posts
    its form with the earlier sign-in's token: refused, nothing done, and said on the page
    in the guard's language (was: a bare ``{"detail":"missing or wrong CSRF token"}``)."""
    old = login(guard_client)
    guard_client.get("/guard/calibration?lang=zh-CN")
    post(guard_client, "/guard/logout", old)
    login(guard_client)
    form = {"csrf": old, "clinical_c": "36.8", "object_c": "34.9", "ambient_c": "24.0"}
    refused = guard_client.post(
        "/guard/calibration",
        data=form,
        headers={"Origin": BASE, "Accept": HTML},
        follow_redirects=False,
    )
    assert refused.status_code == 303, refused.text
    shown = guard_client.get(refused.headers["location"]).text
    assert "本页是在之前登录时打开的" in shown and "CSRF" not in shown
    assert not default_path(guard_core.data_dir).exists()  # nothing recorded


def test_a_script_posting_with_a_wrong_token_is_still_refused_403(guard_client):
    login(guard_client)
    refused = post(guard_client, "/guard/calibration", "not-the-token", clinical_c="36.8")
    assert refused.status_code == 403


def _calibration(points: int, fitted_at: str | None = None):
    from kiosk.calibration import Calibration, CalibrationPoint

    point = CalibrationPoint(36.8, 34.9, 24.0, "2026-03-01T01:00:00+00:00", "guard")
    return Calibration(fitted_at=fitted_at, points=(point,) * points)


def test_the_calibration_page_says_when_the_model_was_fitted_in_the_sites_time(
    guard_client, guard_core
):
    """Was ``2026-03-01T18:30`` (the stored UTC time, cut at 16 characters) beside pairs
    dated in the site's time."""
    fitted = "2026-03-01T18:30:00+00:00"
    _calibration(3, fitted).save(default_path(guard_core.data_dir))
    login(guard_client)
    page = guard_client.get("/guard/calibration?lang=zh-CN").text
    from ui.guard.display import local_time

    tz = guard_client.app.state.guard.tz
    assert local_time(fitted, tz, "%Y-%m-%d %H:%M") in page
    assert "2026-03-01T18:30" not in page


def test_the_calibration_page_counts_every_pair_stored_not_the_twenty_it_lists(
    guard_client, guard_core
):
    """Was 20 (the rows listed) with 1000 pairs stored and a new pair refused as "full"."""
    import re

    _calibration(45).save(default_path(guard_core.data_dir))
    login(guard_client)
    page = guard_client.get("/guard/calibration?lang=zh-CN").text
    assert re.search(r'<span class="count">45</span>', page), page
    assert page.count('<td class="num">36.8</td>') == 20  # the latest 20 are listed


def test_a_link_cannot_put_words_in_the_sign_in_pages_error_banner(guard_client):
    """``/guard/login?error=…`` showed any text in the sign-in page's red banner, on the
    console's own page: a link or a QR code sent to a guard could ask for the password
    ("系统升级，请致电 138… 告知密码"). The banner says only the console's own problems."""
    planted = "系统升级，请致电 13800138000 告知密码"
    page = guard_client.get("/guard/login", params={"error": planted, "lang": "zh-CN"}).text
    assert "13800138000" not in page
    assert 'class="flash err"' not in page


import pytest  # noqa: E402

from ui.guard.forms import BadInput, number  # noqa: E402


@pytest.mark.parametrize("typed", ["３６．８", "36。8", "３６，８", "36．8", " ３６.８ "])
def test_a_temperature_typed_with_a_chinese_input_method_is_read(typed):
    """A tablet's Chinese input method in full-width mode types ３６．８, and 。 for the
    point: the console read ３６.８ (full-width digits) but refused those as "not a number"."""
    assert number(typed, "reg.temp") == 36.8


@pytest.mark.parametrize("typed", ["３６。８。", "36..8", "三十六", "inf", "３６ ８"])
def test_what_is_not_a_number_in_any_width_is_still_refused(typed):
    with pytest.raises(BadInput):
        number(typed, "reg.temp")


@pytest.mark.parametrize("typed", ["３６．８", "36。8", "36,8"])
def test_a_returnees_temperature_typed_with_a_chinese_input_method_is_read(typed):
    from starlette.datastructures import FormData

    from ui.guard.community.common import form_float

    assert form_float(FormData({"temp_c": typed}), "temp_c") == 36.8


def test_the_kiosk_screen_opened_on_a_guards_phone_says_why_in_the_sites_language(tmp_path, clock):
    """A guard opening /kiosk on a phone got ``{"detail":"this is the kiosk's own screen; not
    served to others"}``: a bare English line. Still refused (403), in the site's language,
    with the way to the guard console."""
    from fastapi.testclient import TestClient

    from checkpoint.app import build_core
    from kiosk.config import parse_config
    from ui.app import create_app

    core = build_core(parse_config({}), tmp_path / "d", clock)
    try:
        phone = TestClient(create_app(core), client=("192.168.1.50", 40000))
        refused = phone.get("/kiosk", headers={"Accept": HTML})
        assert refused.status_code == 403
        assert "text/html" in refused.headers["content-type"]
        assert "测温通行机自己的屏幕" in refused.text and 'href="/guard"' in refused.text
        assert "not served" not in refused.text
        assert phone.get("/kiosk").status_code == 403  # a script: as before
    finally:
        core.store.close()
        core.devices.close()
