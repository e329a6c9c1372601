"""A process whose new descriptors are numbered past 1024, as a busy daemon's are (LAN
connections under ``LimitNOFILE=8192``) when it reopens a re-plugged device: ``select()``
refuses such a descriptor, ``FD_SET`` writes past its set."""

from __future__ import annotations

import contextlib
import os
import resource
from collections.abc import Iterator

import pytest


@contextlib.contextmanager
def descriptors_past_1024() -> Iterator[None]:
    """Every descriptor opened meanwhile is numbered past 1024 (the low ones are filled)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < 1100:
        pytest.skip(f"at most {hard} descriptors here")
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, 1100), hard))
    filler: list[int] = []
    try:
        while not filler or filler[-1] < 1030:
            filler.append(os.open(os.devnull, os.O_RDONLY))
        yield
    finally:
        for fd in filler:
            os.close(fd)
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
