"""A camera's ``device``: an index is an integer (``device = 0``, the first camera), a device
is its path (``/dev/video0``, ``/dev/v4l/by-id/...``). A quoted index (``device = "0"``) is
neither: it was taken as the text "0", so the config said a file path where the operator meant
the first camera; it is a config error saying what to write."""

from __future__ import annotations

import tomllib

import pytest
from test_config_types import problems_of

from kiosk.config import parse_config


def camera(device: str) -> str:
    return f'[[readers.sources]]\ntype = "camera"\ndevice = {device}\n'


@pytest.mark.parametrize(
    ("device", "problem"),
    [
        (
            '"0"',
            "readers.sources[0].device: a camera index is an integer: write device = 0 without"
            ' the quotes (or the camera\'s path, e.g. "/dev/video0")',
        ),
        (
            '" 2 "',
            "readers.sources[0].device: a camera index is an integer: write device = 2 without"
            ' the quotes (or the camera\'s path, e.g. "/dev/video2")',
        ),
        (
            '"video0"',
            "readers.sources[0].device: should be a camera index (device = 0) or the camera's"
            ' path, e.g. "/dev/video0" (got "video0")',
        ),
        ("-1", "readers.sources[0].device: should be at least 0 (got -1)"),
        ("256", "readers.sources[0].device: should be at most 255 (got 256)"),
        ('""', "readers.sources[0].device: should not be empty"),
    ],
)
def test_a_camera_device_is_an_index_or_a_path(device, problem):
    assert problems_of(camera(device)) == [problem]


@pytest.mark.parametrize(
    ("device", "value"),
    [
        ("0", 0),
        ("2", 2),
        ('"/dev/video0"', "/dev/video0"),
        (
            '"/dev/v4l/by-id/usb-046d_C270-video-index0"',
            "/dev/v4l/by-id/usb-046d_C270-video-index0",
        ),
    ],
)
def test_an_index_or_a_path_is_taken_as_written(device, value):
    source = parse_config(tomllib.loads(camera(device))).readers.sources[0]
    assert source.device == value  # type: ignore[union-attr]
