"""Fuzz the calibration file (kiosk/calibration.py ``Calibration.load``): JSON a person edits.

Only ``CalibrationError`` may come out: the daemon's ``CalibrationStore`` keeps the last good
model on it and says why; anything else escapes into the reading loop.
"""

from __future__ import annotations

import json

import atheris
from _fuzz import instrumented, run, scratch

with instrumented():
    from kiosk.calibration import Calibration, CalibrationError

_PATH = scratch() / "file.json"
_SEED = json.dumps(Calibration().to_dict()).encode()


def one_input(data: bytes) -> None:
    fdp = atheris.FuzzedDataProvider(data)
    if fdp.ConsumeBool():
        # Structure-aware: the real file with one value replaced by fuzzed JSON.
        doc = Calibration().to_dict()
        model = doc["model"]
        key = fdp.PickValueInList(sorted(model))
        try:
            model[key] = json.loads(fdp.ConsumeUnicodeNoSurrogates(64))
        except (ValueError, RecursionError):
            model[key] = fdp.ConsumeInt(8) * 10 ** fdp.ConsumeIntInRange(0, 400)
        raw = json.dumps(doc).encode()
    else:
        raw = fdp.ConsumeBytes(fdp.remaining_bytes()) or _SEED
    with open(_PATH, "wb") as f:
        f.write(raw)
    try:
        Calibration.load(_PATH)
    except CalibrationError:
        pass


if __name__ == "__main__":
    run(one_input)
