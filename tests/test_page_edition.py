"""The kiosk page's edition (``ui.kiosk_screen.page_edition``): the digest of what the page
is built from, its files read once per process while none of them changes."""

from __future__ import annotations

import os
import shutil

from ui import kiosk_screen


def _sources_in(tmp_path, monkeypatch):
    here = tmp_path / "ui"
    for name in kiosk_screen.PAGE_SOURCES:
        (here / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(kiosk_screen.HERE / name, here / name)
    shutil.copytree(kiosk_screen.HERE / "static", here / "static")
    monkeypatch.setattr(kiosk_screen, "HERE", here)
    return here


def test_a_static_file_changed_under_the_process_is_another_edition(tmp_path, monkeypatch):
    here = _sources_in(tmp_path, monkeypatch)
    before = kiosk_screen.page_edition({"site_name": "Gate"})
    assert kiosk_screen.page_edition({"site_name": "Gate"}) == before
    script = here / "static" / "kiosk.js"
    stat = script.stat()
    script.write_text(script.read_text() + "\n// another release\n")
    os.utime(script, ns=(stat.st_atime_ns, stat.st_mtime_ns))  # the same time, not the size
    assert kiosk_screen.page_edition({"site_name": "Gate"}) != before
    assert kiosk_screen.page_edition({"site_name": "Another"}) != kiosk_screen.page_edition(
        {"site_name": "Gate"}
    )


def test_a_file_added_to_the_static_folder_is_another_edition(tmp_path, monkeypatch):
    here = _sources_in(tmp_path, monkeypatch)
    before = kiosk_screen.page_edition({})
    (here / "static" / "new.css").write_text("body {}\n")
    assert kiosk_screen.page_edition({}) != before


def test_the_files_are_read_once_while_none_changes(tmp_path, monkeypatch):
    _sources_in(tmp_path, monkeypatch)
    kiosk_screen.page_edition({})
    reads = []
    real = kiosk_screen.Path.read_bytes
    monkeypatch.setattr(kiosk_screen.Path, "read_bytes", lambda p: reads.append(p) or real(p))
    kiosk_screen.page_edition({"site_name": "Gate"})
    assert reads == []
