"""Fuzz the config (kiosk/config: ``load_config``, TOML bytes through ``read_toml`` and the
pydantic validation with its plain-words problems). Only ``ConfigError`` may come out; its
message is built too (that is what ``kiosk check-config`` prints).

Half the inputs are the walkthrough config (tests/system/walk.toml) with one line's value
replaced by fuzzed text, so the validation of each section is reached, not only the TOML
parser.
"""

from __future__ import annotations

from pathlib import Path

import atheris
from _fuzz import instrumented, run, scratch

with instrumented():
    from kiosk.config import ConfigError, load_config

_LINES = (Path(__file__).parents[1] / "system" / "walk.toml").read_text().splitlines()
_VALUES = [i for i, line in enumerate(_LINES) if " = " in line and not line.startswith("#")]
_PATH = scratch() / "file.toml"


def one_input(data: bytes) -> None:
    fdp = atheris.FuzzedDataProvider(data)
    if fdp.ConsumeBool():
        lines = list(_LINES)
        at = fdp.PickValueInList(_VALUES)
        key = lines[at].partition(" = ")[0]
        lines[at] = f"{key} = {fdp.ConsumeUnicodeNoSurrogates(fdp.remaining_bytes())}"
        raw = "\n".join(lines).encode("utf-8")
    else:
        raw = fdp.ConsumeBytes(fdp.remaining_bytes())
    with open(_PATH, "wb") as f:
        f.write(raw)
    try:
        load_config(_PATH)
    except ConfigError as exc:
        str(exc)


if __name__ == "__main__":
    run(one_input)
