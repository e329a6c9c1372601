"""`kiosk --help` and the quick verbs start at once: building the parser loads no verb's heavy
libraries (each verb imports those when it runs: docs/architecture.md, The command line).

On a Pi 3B `kiosk --help` took 4-6 s when every verb module imported its libraries at the top
(the store, the config's models, the card renderer), and so did every `kiosk-admin` call, the
systemd units' ExecStartPre checks and the install script's calls."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from checkpoint.cli import build_parser, main

#: What no verb needs to be listed or parsed: a verb that runs imports them itself.
HEAVY = (
    "pydantic",  # the config's models (kiosk.config)
    "kiosk.config",
    "kiosk.store",
    "kiosk.core",
    "sqlite_utils",
    "segno",  # the pass cards
    "cv2",
    "numpy",
    "fastapi",
    "httpx",
    "openpyxl",
    "cryptography",  # the passes' keys and signatures (kiosk.passes): ~28 ms of every --help
)

_BUILD_PARSER = """
import json, sys
import checkpoint.cli
checkpoint.cli.build_parser()
heavy = json.loads(sys.argv[1])
print(json.dumps(sorted(m for m in heavy if m in sys.modules)))
"""


@pytest.mark.slow  # a fresh interpreter
def test_building_the_parser_loads_no_verbs_heavy_libraries():
    out = subprocess.run(
        [sys.executable, "-c", _BUILD_PARSER, json.dumps(HEAVY)],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    assert json.loads(out.stdout) == []


def test_kiosk_help_still_lists_every_verb(capsys):
    parser = build_parser()
    verbs = next(a for a in parser._actions if a.dest == "verb")
    with pytest.raises(SystemExit) as info:
        main(["--help"])
    assert info.value.code == 0
    out = capsys.readouterr().out
    listed = set(re.findall(r"^    (\S+)", out, re.MULTILINE))
    assert listed == set(verbs.choices)
    for name, sub in verbs.choices.items():  # each with its one line, from its docstring
        help_line = next(a.help for a in verbs._choices_actions if a.dest == name)
        assert help_line and help_line.split()[0] in out, name
        assert sub.prog == f"kiosk {name}"


@pytest.mark.parametrize(
    ("named", "data", "expected"),
    [
        (None, "/var/lib/kiosk", "/var/lib/kiosk/trust"),
        ("keys/trust", "/var/lib/kiosk", "/var/lib/kiosk/keys/trust"),
        ("/etc/kiosk/trust", "/var/lib/kiosk", "/etc/kiosk/trust"),
        ("keys/trust", None, None),
    ],
)
def test_check_configs_trust_folder_is_the_daemons(named, data, expected, monkeypatch):
    # check-config reads the trust folder by the daemon's own rule (kiosk.config.trust_dir),
    # without importing kiosk.core (the whole kiosk).
    from checkpoint.cli.config_cmd import _trust_folder
    from kiosk.config import parse_config, trust_dir

    config = parse_config({"policy": {"trust_dir": named}} if named else {})
    if data is None:
        monkeypatch.delenv("KIOSK_DATA", raising=False)
    else:
        monkeypatch.setenv("KIOSK_DATA", data)
        assert _trust_folder(config) == trust_dir(config, Path(data))
    assert _trust_folder(config) == (Path(expected) if expected else None)
