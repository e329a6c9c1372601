"""The repository carries its own interface reference: every verb, sub-verb and option of the
``kiosk`` command is in docs/cli.md, every HTTP route in docs/api.md, every bench section in
docs/bench.md."""

from __future__ import annotations

import argparse
import functools
import json
import os
import re
import shlex
from pathlib import Path

import pytest

from checkpoint.cli import build_parser

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"


def _commands(
    parser: argparse.ArgumentParser, path: tuple[str, ...] = ()
) -> list[tuple[tuple[str, ...], argparse.ArgumentParser]]:
    found = [(path, parser)] if path else []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                found += _commands(sub, (*path, name))
    return found


COMMANDS = _commands(build_parser())


def _section(text: str, path: tuple[str, ...]) -> str | None:
    """The text under the heading ``kiosk <path>``, up to the next heading of any level."""
    heading = re.search(rf"^#+ `kiosk {re.escape(' '.join(path))}`$", text, re.MULTILINE)
    if heading is None:
        return None
    rest = text[heading.end() :]
    following = re.search(r"^#+ ", rest, re.MULTILINE)
    return rest[: following.start()] if following else rest


@pytest.mark.parametrize(("path", "parser"), COMMANDS, ids=[" ".join(p) for p, _ in COMMANDS])
def test_every_command_and_option_is_in_the_cli_reference(path, parser):
    section = _section((DOCS / "cli.md").read_text(encoding="utf-8"), path)
    assert section is not None, f"docs/cli.md has no section `kiosk {' '.join(path)}`"
    options = [
        option
        for action in parser._actions
        if not isinstance(action, argparse._HelpAction)
        for option in action.option_strings
        if option.startswith("--")
    ]
    missing = [o for o in options if not re.search(rf"`{re.escape(o)}\b", section)]
    assert missing == [], f"`kiosk {' '.join(path)}` options missing from docs/cli.md"
    every = {o for action in parser._actions for o in action.option_strings}
    stale = [o for o in re.findall(r"^\| `(--[\w-]+)", section, re.M) if o not in every]
    assert stale == [], f"docs/cli.md documents options `kiosk {' '.join(path)}` does not take"


def _usage(section: str) -> str | None:
    """The section's usage block (its first fenced block starting ``kiosk``), one line."""
    block = re.search(r"^```\n(kiosk .*?)^```", section, re.S | re.M)
    return " ".join(block.group(1).split()) if block else None


@pytest.fixture(scope="module")
def _parser_of_no_kiosk_variable():
    """The parser built with no KIOSK_* variable set (some defaults come from them), once for
    the module: its tests only read it (~10 ms a build, ~120 tests)."""
    with pytest.MonkeyPatch.context() as patch:
        for name in [n for n in os.environ if n.startswith("KIOSK_")]:
            patch.delenv(name)
        patch.setenv("COLUMNS", "100")
        return build_parser()


@pytest.fixture
def fresh_parser(_parser_of_no_kiosk_variable, monkeypatch):
    """That parser, its help formatted 100 columns wide."""
    monkeypatch.setenv("COLUMNS", "100")
    return _parser_of_no_kiosk_variable


def _find(parser: argparse.ArgumentParser, path: tuple[str, ...]) -> argparse.ArgumentParser:
    return dict(_commands(parser))[path]


@pytest.mark.parametrize("path", [p for p, _ in COMMANDS], ids=[" ".join(p) for p, _ in COMMANDS])
def test_every_usage_line_in_the_cli_reference_is_the_commands_own(path, fresh_parser):
    """A usage line that names an option or argument the command does not take (or misses one,
    or takes it in another form) is a script written from the reference that fails."""
    section = _section((DOCS / "cli.md").read_text(encoding="utf-8"), path)
    assert section is not None
    parser = _find(fresh_parser, path)
    actual = " ".join(parser.format_usage().removeprefix("usage:").split())
    assert _usage(section) == actual, f"docs/cli.md's usage of `kiosk {' '.join(path)}`"


@pytest.mark.parametrize("path", [p for p, _ in COMMANDS], ids=[" ".join(p) for p, _ in COMMANDS])
def test_every_default_an_option_has_is_the_one_the_cli_reference_names(path, fresh_parser):
    section = _section((DOCS / "cli.md").read_text(encoding="utf-8"), path)
    assert section is not None
    rows = dict(re.findall(r"^\| `(--[\w-]+)[^`]*` \| (.*) \|$", section, re.M))
    wrong = [
        f"{action.option_strings[-1]} (default {action.default!r})"
        for action in _find(fresh_parser, path)._actions
        if action.option_strings
        and action.default != argparse.SUPPRESS
        and isinstance(action.default, str | int | float)
        and not isinstance(action.default, bool)
        and str(action.default) not in rows.get(action.option_strings[-1], "")
    ]
    assert wrong == [], f"docs/cli.md does not name these defaults of `kiosk {' '.join(path)}`"


def test_the_usage_finder_and_the_version_option():
    text = "x\n```\nkiosk a [-h]\n   [--b B]\n```\n```\nkiosk c\n```\n"
    assert _usage(text) == "kiosk a [-h] [--b B]"
    assert _usage("no block\n") is None
    root = [o for action in build_parser()._actions for o in action.option_strings]
    assert "--version" in root and "`kiosk --version`" in (DOCS / "cli.md").read_text("utf-8")


def test_the_section_finder_sees_a_missing_verb_and_a_missing_option():
    text = "# `kiosk a`\nuse `--x`\n## `kiosk a b`\nnothing\n"
    assert _section(text, ("a",)) == "\nuse `--x`\n"
    assert _section(text, ("a", "b")) == "\nnothing\n"
    assert _section(text, ("c",)) is None


def _routes(routes, prefix: str = ""):
    """(method, path) of every route, through routers included into the app."""
    for route in routes:
        inner = getattr(route, "original_router", None)  # an included router (FastAPI >= 0.120)
        if inner is not None:
            context = getattr(route, "include_context", None)
            yield from _routes(inner.routes, prefix + (getattr(context, "prefix", "") or ""))
            continue
        for method in sorted(getattr(route, "methods", None) or {"GET"}):
            if method != "HEAD":
                yield method, prefix + route.path


def test_every_http_route_is_in_the_api_reference(core):
    from ui.app import create_app

    reference = (DOCS / "api.md").read_text(encoding="utf-8")
    routes = sorted(set(_routes(create_app(core).routes)))
    assert len(routes) > 20
    missing = [f"{m} {p}" for m, p in routes if f"`{m} {p}`" not in reference]
    assert missing == [], "routes missing from docs/api.md"
    named = set(re.findall(r"`(GET|POST|PUT|PATCH|DELETE) (/[^`?\s]*)", reference))
    assert len(named) >= len(routes)
    assert sorted(named - set(routes)) == [], "docs/api.md names routes the app does not serve"
    index = re.findall(r"^\| (`(?:GET|POST) [^|]+`) \|", reference, re.M)
    assert len(index) > 20
    assert sorted({row for row in index if index.count(row) > 1}) == [], "listed twice"


def test_every_bench_section_and_field_is_in_the_bench_reference():
    from checkpoint.bench import SECTIONS

    reference = (DOCS / "bench.md").read_text(encoding="utf-8")
    missing = [name for name in (*SECTIONS, "fleet") if f"## `{name}`" not in reference]
    assert missing == [], "bench sections missing from docs/bench.md"


def test_the_repository_cites_no_document_it_does_not_carry():
    """Interfaces are documented in docs/cli.md, docs/api.md, docs/bench.md, not elsewhere."""
    citing = []
    for folder in ("kiosk", "drivers", "ui", "checkpoint", "office", "tests", "docs"):
        for path in sorted((ROOT / folder).rglob("*")):
            if (
                path.suffix in (".py", ".md", ".toml")
                and path != Path(__file__)
                and "CONTRACT" in path.read_text(encoding="utf-8")
            ):
                citing.append(str(path.relative_to(ROOT)))
    if "CONTRACT" in (ROOT / "README.md").read_text(encoding="utf-8"):
        citing.append("README.md")
    assert citing == []


def test_drivers_are_built_by_the_factory_the_docs_name():
    from drivers import factory

    text = (DOCS / "architecture.md").read_text(encoding="utf-8")
    assert "drivers/factory.py" in text
    assert callable(factory.build_devices)


def _bench_fields(text: str) -> dict[str, list[str]]:
    """Per ``## `section``` of docs/bench.md, the field names of its table's first column."""
    found: dict[str, list[str]] = {}
    for match in re.finditer(r"^## `(\w+)`\n(.*?)(?=^## |\Z)", text, re.S | re.M):
        cells = re.findall(r"^\| ([^|]+) \|", match.group(2), re.M)
        found[match.group(1)] = [n for cell in cells for n in re.findall(r"`(\w+)`", cell)]
    return found


BENCH_DOC = (DOCS / "bench.md").read_text(encoding="utf-8")
BENCH_FIELDS = _bench_fields(BENCH_DOC)


def test_every_bench_field_the_reference_names_is_produced_by_its_section():
    from checkpoint.bench import OPT_IN, SECTIONS

    assert set(BENCH_FIELDS) == {*SECTIONS, *OPT_IN}
    assert sum(map(len, BENCH_FIELDS.values())) > 100
    missing = [
        f"{section}.{name}"
        for section, names in BENCH_FIELDS.items()
        for name in names
        if f'"{name}"' not in (ROOT / "checkpoint" / "bench" / f"{section}.py").read_text()
    ]
    assert missing == [], "docs/bench.md names fields its section's module never writes"


def test_the_bench_field_finder_reads_first_cells_only():
    text = "## `a`\n| field | meaning |\n|---|---|\n| `x`, `y` | not `z` |\n## `b`\nnone\n"
    assert _bench_fields(text) == {"a": ["x", "y"], "b": []}


@pytest.mark.slow
@pytest.mark.parametrize("section", ["decide", "idle", "store", "thermo"])
def test_every_field_a_bench_section_prints_is_in_the_reference(section, tmp_path, monkeypatch):
    """Run the quicker sections for real: what they print is what docs/bench.md lists."""
    from checkpoint.bench import run_all

    monkeypatch.setenv("KIOSK_DATA", str(tmp_path))  # the store bench writes its files there
    monkeypatch.chdir(tmp_path)
    result = run_all(quick=True, only=[section])
    assert set(result) == {section, "rss_mb"} and "`rss_mb`" in BENCH_DOC
    additions = re.search(r"^## Additions.*?(?=^## `)", BENCH_DOC, re.S | re.M)
    assert additions is not None
    documented = {*BENCH_FIELDS[section], *re.findall(r"`(\w+)`", additions.group(0))}
    assert sorted(set(result[section]) - documented) == []
    assert sorted(set(BENCH_FIELDS[section]) - set(result[section])) == []


def test_the_event_log_reference_lists_every_field_of_the_one_record_definition():
    from kiosk import record

    text = (DOCS / "event-log.md").read_text(encoding="utf-8")
    section = text[text.index("## Record") : text.index("## Hash chains")]
    assert "`kiosk/record.py`" in section, "the reference names where the record is defined"
    missing = [
        name
        for name in (*record.EVENT_COLUMNS, *record.AUDIT_COLUMNS)
        if f"`{name}`" not in section
    ]
    assert missing == [], "record fields missing from docs/event-log.md"
    table = [
        n
        for row in re.findall(r"^\| ([^|]+) \|", section, re.M)
        for n in re.findall(r"`(\w+)`", row)
    ]
    assert len(table) > 15
    assert sorted(set(table) - set(record.EVENT_COLUMNS)) == [], "documented fields not in it"


def test_the_readme_names_every_verb_and_bench_section():
    from checkpoint.bench import SECTIONS

    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    verbs = sorted({path[0] for path, _ in COMMANDS})
    assert len(verbs) > 15
    table = readme[readme.index("## The `kiosk` command") : readme.index("## Configuration")]
    assert [v for v in verbs if f"`kiosk {v}" not in table] == []
    bench_row = next(line for line in readme.splitlines() if line.startswith("| `kiosk bench"))
    assert [s for s in SECTIONS if s not in bench_row] == []


#: Dotted words in the docs that name no Python object: files, units and a migration set.
NOT_PYTHON = {"kiosk.db", "kiosk.service", "kiosk.service.d", "kiosk.events"}
PACKAGES = "kiosk|drivers|ui|checkpoint|office"
DOC_FILES = [ROOT / "README.md", *sorted(DOCS.glob("*.md"))]


def _resolves(dotted: str) -> bool:
    """Whether ``dotted`` (``kiosk.lists.same_text``) is an importable module or an attribute
    of one, followed down attribute by attribute."""
    import importlib

    parts = dotted.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            found: object = importlib.import_module(".".join(parts[:cut]))
        except ImportError:
            continue
        for name in parts[cut:]:
            if not hasattr(found, name):
                return False
            found = getattr(found, name)
        return True
    return False


@pytest.mark.parametrize("doc", DOC_FILES, ids=lambda p: p.name)
def test_every_file_and_python_name_a_document_cites_exists(doc):
    """A reader follows `kiosk/deadline.py` or `kiosk.lists.same_text` to the code: a name
    that was renamed or removed sends them nowhere."""
    text = doc.read_text(encoding="utf-8")
    paths = re.findall(rf"`((?:{PACKAGES}|tests|scripts|systemd|docs|\.ci)/[\w./-]*)`", text)
    gone = [p for p in paths if not (ROOT / p.rstrip("/")).exists()]
    names = set(re.findall(rf"`((?:{PACKAGES})(?:\.[A-Za-z_]\w*)+)", text)) - NOT_PYTHON
    for block in re.findall(r"```python\n(.*?)```", text, re.S):  # its imports, too
        for module, imported in re.findall(r"^from ([\w.]+) import ([\w, ]+)$", block, re.M):
            names |= {f"{module}.{name.strip()}" for name in imported.split(",")}
    gone += sorted(n for n in names if not _resolves(n))
    assert gone == [], f"{doc.name} cites what the repository does not have"


def test_the_name_resolver_follows_modules_and_attributes():
    assert _resolves("kiosk.lists.ListStore.import_csv") and _resolves("kiosk.deadline")
    assert not _resolves("drivers.thermometer.read_with_deadline")
    assert not _resolves("kiosk.nonexistent_module")


def test_the_scenario_reference_lists_every_step_key_the_replay_takes():
    from checkpoint.replay import ScenarioFile, Step

    text = (DOCS / "scenarios.md").read_text(encoding="utf-8")
    table = text[text.index("### Step keys") : text.index("`pass.key` picks")]
    documented = set(re.findall(r"^\| `(\w+)` \|", table, re.M))
    taken = {field.alias or name for name, field in Step.model_fields.items()} - {"note"}
    assert documented == taken, "docs/scenarios.md's step keys are not the replay's"
    example = text[text.index("## File format") : text.index("### Step keys")]
    assert {*ScenarioFile.model_fields} <= set(re.findall(r"^\[*(\w+)", example, re.M))
    assert "at most one of `code`, `pass`, `frame`" in table


def _json_keys(section: str) -> set[str]:
    """The field names the `--json` row of a cli.md section lists (before any `;`, outside
    parentheses)."""
    row = re.search(r"^\| `--json` \| [^:|]*: ([^|;]*)", section, re.M)
    assert row is not None, "the --json row names no fields"
    return set(re.findall(r"`(\w+)`", re.sub(r"\([^()]*\)", "", row.group(1))))


def test_the_json_the_database_verbs_print_has_the_fields_the_reference_lists(
    store, data_dir, capsys
):
    from checkpoint.cli import main
    from office.pull import PullResult

    text = (DOCS / "cli.md").read_text(encoding="utf-8")
    db = str(data_dir / "kiosk.db")
    assert main(["token", "new", "--scope", "logs:read", "--db", db]) == 0
    assert main(["token", "list", "--json", "--db", db]) == 0
    assert main(["verify-log", "--json", "--db", db]) == 0
    lines = capsys.readouterr().out.splitlines()
    token, verdict = json.loads(lines[-2]), json.loads(lines[-1])
    assert set(token) == _json_keys(_section(text, ("token", "list")) or "")
    assert set(verdict) == _json_keys(_section(text, ("verify-log",)) or "")
    pulled = PullResult("http://gate-1:8000", "gate-1").as_dict()
    assert set(pulled) == _json_keys(_section(text, ("pull",)) or "")


def test_the_readme_names_every_os_package_the_two_scripts_install():
    """The quick start tells an operator without sudo which packages to install by hand."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    quick = readme[readme.index("## Quick start") : readme.index("## Screens")]
    packages = {
        name
        for script in ("demo", "test")
        for line in (ROOT / "scripts" / script).read_text(encoding="utf-8").splitlines()
        if line.startswith("kiosk_apt ")
        for word in shlex.split(line)[1:]
        for name in word.split("|")  # one package under each release's name
    }
    assert {"libzbar0", "libzbar0t64", "chromium"} <= packages
    assert sorted(p for p in packages if f"`{p}`" not in quick) == []


def test_the_readme_leads_to_every_document():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    unlisted = [d.name for d in sorted(DOCS.glob("*.md")) if f"docs/{d.name}" not in readme]
    assert unlisted == [], "docs the README's 'Where to go next' does not name"


def test_the_api_reference_lists_exactly_the_fields_a_personal_token_may_unmask():
    from kiosk.privacy import FIELD_NAMES

    text = (DOCS / "api.md").read_text(encoding="utf-8")
    sentence = re.search(r"^`fields` \(needs `logs:personal`\): (.*?)Anything", text, re.S | re.M)
    assert sentence is not None
    assert set(re.findall(r"`([\w.]+)`", sentence.group(1))) == set(FIELD_NAMES)


def test_every_field_of_the_health_report_is_in_the_api_reference(core):
    text = (DOCS / "api.md").read_text(encoding="utf-8")
    section = text[text.index("### `GET /api/v1/health`") : text.index("## Kiosk screen")]
    report = core.health()
    assert {"devices", "deciding", "clock", "version"} <= set(report)
    optional = {"lists_sync", "data_volume", "peers"}  # only when the daemon has them
    missing = [k for k in sorted({*report, *optional}) if f"`{k}`" not in section]
    assert missing == [], "health fields docs/api.md does not describe"
    devices = [k for k in report["devices"] if f"`{k.split(':')[0]}" not in section]
    assert devices == []


#: The bench fields the product promises scripts (only ever added to): section -> fields;
#: "a.b" is field b inside the object a.
PROMISED_BENCH_FIELDS = {
    "decode": "frames decoded bare_decoded bare_ms pipeline_ms ratio",
    "thermo": "traces settle_ms sensor_settle_ms ratio mean_abs_err_c max_abs_err_c"
    " calibrated_mean_abs_err_c faults_passed_as_temperature decision_ms"
    " decision_ms.normal_p50 decision_ms.normal_p95 decision_ms.fever_p50 decision_ms.fever_p95",
    "decide": "passages median_us",
    "loop": "passages p50_ms p99_ms decode_ms overhead_p99_ms",
    "idle": "fps cpu_fraction every_frame_cpu_fraction ratio",
    "store": "commit_ms appends_per_s",
    "pull": "events events_per_s loop_p99_idle_ms loop_p99_loaded_ms",
    "edge": "connections slowloris loop_p99_idle_ms loop_p99_flood_ms passages"
    " passages_without_temperature lost_events",
    "memory": "daemon_pss_mb helpers_pss_mb total_pss_mb imports_mb",
    "fleet": "kiosks ingest ingest.events ingest.events_per_s lag lag.events lag.p50_ms"
    " lag.p95_ms lag.max_ms",
}


@pytest.mark.parametrize("section", sorted(PROMISED_BENCH_FIELDS))
def test_every_promised_bench_field_is_documented_and_written(section):
    """docs/bench.md's table and the section's module: a promised field that either loses
    fails here, the whole-run check being slow."""
    text = re.search(rf"^## `{section}`\n(.*?)(?=^## |\Z)", BENCH_DOC, re.S | re.M)
    assert text is not None
    source = (ROOT / "checkpoint" / "bench" / f"{section}.py").read_text(encoding="utf-8")
    missing = []
    for field in PROMISED_BENCH_FIELDS[section].split():
        outer, _, inner = field.partition(".")
        documented = (
            outer in BENCH_FIELDS[section]
            if not inner
            else re.search(rf"^\| `{outer}` \|.*\b{inner}\b", text.group(1), re.M)
        )
        if not documented or f'"{inner or outer}"' not in source:
            missing.append(field)
    assert missing == []


#: The reason codes the event record promises (only ever added to).
PROMISED_REASONS = [
    "ok", "fever", "temp_implausible", "no_temperature", "sensor_fault", "reader_fault",
    "pass_malformed", "pass_bad_signature", "pass_unknown_key", "pass_expired",
    "pass_not_yet_valid", "pass_revoked", "quarantined", "quota_exceeded", "passback",
    "outside_hours", "store_fault", "guard_override",
]  # fmt: skip


def test_every_promised_reason_code_is_given_and_documented():
    from kiosk.policy import REASONS

    given = {*REASONS, "ok", "guard_override"}  # the engine adds the last for a guard's word
    assert [r for r in PROMISED_REASONS if r not in given] == []
    policy = (DOCS / "policy.md").read_text(encoding="utf-8")
    table = set(re.findall(r"^\|[^|]*\| `(\w+)` \|", policy, re.M))
    assert sorted(set(REASONS) - table) == [], "reasons policy.md's rule table lacks"
    record = (DOCS / "event-log.md").read_text(encoding="utf-8")
    row = next(line for line in record.splitlines() if line.startswith("| `reasons` |"))
    assert [r for r in PROMISED_REASONS if f"`{r}`" not in row] == []


def _form_fields(source: str) -> set[str]:
    """The form fields and query parameters a module of the console reads by name (the
    routes' own parameters are FastAPI's, checked against the app's schema elsewhere)."""
    return {
        *re.findall(r'form(?:_text|_int)?\(\s*form,\s*"(\w+)"', source),
        *re.findall(r'form\.get(?:list)?\(\s*"(\w+)"', source),
        *re.findall(r'query_params\.get\(\s*"(\w+)"', source),
    }


def test_every_form_field_a_guard_route_reads_is_in_the_api_reference():
    """A script (or a page) posting the fields docs/api.md lists must be able to act: the
    manual decision's form named no `subject`, which the console requires (no default)."""
    reference = (DOCS / "api.md").read_text(encoding="utf-8")
    read = {
        (name, str(path.relative_to(ROOT)))
        for path in sorted((ROOT / "ui").rglob("*.py"))
        for name in _form_fields(path.read_text(encoding="utf-8"))
    }
    assert len(read) > 40 and ("subject", "ui/guard/live.py") in read
    missing = sorted(f"{path}: {name}" for name, path in read if f"`{name}" not in reference)
    assert missing == [], "form fields the console reads that docs/api.md does not name"


def _cookies_and_headers(source: str) -> set[str]:
    """The cookies a module reads by name, and the cookies and headers it names as constants."""
    return {
        *re.findall(r'cookies\.get\(\s*"(\w+)"', source),
        *re.findall(r'^[A-Z_]*(?:COOKIE|HEADER)[A-Z_]* = "([\w-]+)"', source, re.M),
    }


def test_every_cookie_and_header_of_the_console_and_screen_is_in_the_api_reference():
    """A guard reading docs/api.md could not tell how the console's language is chosen (its
    `?lang=`, kept in the `kiosk_lang` cookie), nor a paired screen's header and cookie."""
    reference = (DOCS / "api.md").read_text(encoding="utf-8")
    named = {
        name
        for folder in ("ui", "kiosk")
        for path in sorted((ROOT / folder).rglob("*.py"))
        for name in _cookies_and_headers(path.read_text(encoding="utf-8"))
    }
    assert {"kiosk_session", "X-CSRF-Token", "kiosk_lang"} <= named
    assert sorted(n for n in named if f"`{n}" not in reference) == []


def test_the_form_field_finder_reads_the_three_ways_a_route_reads_them():
    source = 'form_text(form, "a")\nform.getlist("b")\nx = request.query_params.get("c")\n'
    assert _form_fields(source + 'form_int(form, "d")') == {"a", "b", "c", "d"}
    named = 'SCREEN_COOKIE = "s"\nCSRF_HEADER = "X-C"\nrequest.cookies.get("l")\nX = "y"\n'
    assert _cookies_and_headers(named) == {"s", "X-C", "l"}


@pytest.mark.parametrize(
    ("where", "said"),
    [
        ("nowhere/kiosk.db", "no such directory for the database: DIR"),
        ("missing.db", "no event log at FILE (no such file)"),
        (".", "FILE: not a file"),
    ],
)
def test_what_the_database_verbs_say_pointed_at_no_log_is_what_the_reference_says(
    where, said, tmp_path, capsys
):
    """cli.md told only of `no event log at FILE`: a `--data` or `--db` naming a folder that
    does not exist, the commonest typo, answered words no reference held."""
    from checkpoint.cli import main

    assert main(["token", "list", "--db", str(tmp_path / where)]) == 2
    err = capsys.readouterr().err
    shown = err.replace(str(tmp_path / where), "FILE").replace(str(tmp_path / "nowhere"), "DIR")
    assert shown.startswith(f"kiosk token: {said}")
    text = (DOCS / "cli.md").read_text(encoding="utf-8")
    assert f"`{said}" in " ".join(text.split())


def test_every_field_of_the_collectors_status_json_is_in_the_fleet_reference():
    """An office's monitor reads `/status.json`: fleet.md said only "the same as JSON" as the
    page's table, so `state`, `last_pull_ms`, `pulls` and the rest had no name to read by."""
    import dataclasses
    import inspect

    from office.collector import Collector, KioskStatus

    text = (DOCS / "fleet.md").read_text(encoding="utf-8")
    row = next(line for line in text.splitlines() if line.startswith("| `/status.json` |"))
    top = re.findall(r'^\s+"(\w+)":', inspect.getsource(Collector.status_json), re.M)
    assert {"kiosks", "retention"} <= set(top)
    fields = [f.name for f in dataclasses.fields(KioskStatus)]
    assert sorted(n for n in {*top, *fields} if f"`{n}`" not in row) == []


def _console_pages_named(text: str) -> set[str]:
    """The console pages a document sends a guard to: "`/guard` → X", "the guard's X page"."""
    named = re.findall(r"`/guard` → \*?(\w+)", text)
    named += re.findall(r"(?:guard's|console's) \*?(\w+)\*? page", text)
    return {n.casefold() for n in named}


def test_every_console_page_a_document_sends_a_guard_to_is_in_the_consoles_menu():
    """operations.md sent an admin to `/guard` → accounts to manage the guard accounts: the
    console has no such page (accounts are `kiosk guard` on the shell)."""
    import tomllib

    words = tomllib.loads((ROOT / "ui" / "messages.toml").read_text(encoding="utf-8"))
    menu = {en.casefold() for key, (_, en) in words["screens"].items() if key.startswith("nav.")}
    assert {"devices", "statistics", "lists"} <= menu
    named = {
        (doc.name, page)
        for doc in DOC_FILES
        for page in _console_pages_named(doc.read_text(encoding="utf-8"))
    }
    assert ("passes.md", "devices") in named
    assert sorted((doc, page) for doc, page in named if page not in menu) == []


def test_the_console_page_finder():
    text = "see `/guard` → *Lists*, the guard's Devices page and the console's *calibration* page"
    assert _console_pages_named(text) == {"lists", "devices", "calibration"}


def _stream_words(source: str) -> set[str]:
    """What an SSE stream's module sends: its event names, and `keep-alive` for comments."""
    words = set(re.findall(r'\bsse\("(\w+)"', source))
    return words | ({"keep-alive"} if '": keep-alive' in source else set())


@pytest.mark.parametrize(
    ("heading", "module"),
    [
        ("### `GET /kiosk/events", "ui/kiosk_screen.py"),
        ("### `GET /guard/events`", "ui/guard/live.py"),
    ],
)
def test_the_api_reference_names_exactly_the_events_each_stream_sends(heading, module):
    """api.md promised the kiosk screen's stream `: keep-alive` comments while idle: it sends
    `event: tick` with the kiosk's clock instead; the console's stream named no event at all."""
    text = (DOCS / "api.md").read_text(encoding="utf-8")
    section = text[text.index(heading) :]
    section = section[: section.index("\n#", 1)]
    documented = set(re.findall(r"`event: (\w+)`", section))
    documented |= {"keep-alive"} if "`: keep-alive`" in section else set()
    sent = _stream_words((ROOT / module).read_text(encoding="utf-8"))
    assert len(sent) >= 4
    assert documented == sent


def test_the_stream_word_finder():
    source = 'yield sse("a", {})\nout.append(sse("b", x))\nyield ": keep-alive\\n\\n"\n'
    assert _stream_words(source) == {"a", "b", "keep-alive"}
    assert _stream_words('cached("c", lambda: sse("d", 1))') == {"d"}


def test_the_console_module_map_names_every_route_where_it_lives(core):
    """screens.md's module map is where a newcomer finds the code of a console route: it left
    out five (a passage's page, printing and voiding passes, the .xlsx export, the household
    check) and the community package."""
    from fastapi.routing import APIRoute

    from ui.app import create_app

    text = (DOCS / "screens.md").read_text(encoding="utf-8")
    rows = dict(re.findall(r"^\| `([\w/]+?)(?:\.py|/)` \| (.*) \|$", text, re.M))
    assert {"live", "deps", "community"} <= set(rows)

    def walk(routes, prefix=""):
        for route in routes:
            inner = getattr(route, "original_router", None)  # as _routes, above
            if inner is not None:
                context = getattr(route, "include_context", None)
                yield from walk(inner.routes, prefix + (getattr(context, "prefix", "") or ""))
            elif isinstance(route, APIRoute):
                yield prefix + route.path, route.endpoint.__module__

    found = list(walk(create_app(core).routes))
    assert ("/guard/passes/revoke", "ui.guard.passes") in found
    missing = set()
    for full, module in found:
        if not module.startswith("ui.guard."):
            continue
        name = module.split(".")[2]
        path = full.rstrip("/") or "/"
        if f"`{path}`" not in rows.get(name, "") and not (
            name == "community" and "`/guard/community`" in rows[name]
        ):
            missing.add(f"{name}: {path}")
    assert sorted(missing) == []


def test_where_things_live_names_every_module_of_the_five_packages():
    """architecture.md's "Where things live" is a newcomer's map of the code: 23 modules
    (the sheets, the typed text, the host check, the GM65 set-up, the office's retention, ...)
    were on no row of it."""
    text = (DOCS / "architecture.md").read_text(encoding="utf-8")
    table = text[text.index("## Where things live") :]
    table = table[: table.index("\n## ")]
    missing = []
    for package in ("kiosk", "drivers", "ui", "checkpoint", "office"):
        for path in sorted((ROOT / package).iterdir()):
            if path.name.startswith("_") or path.name in ("static", "templates", "scenarios"):
                continue
            if path.suffix == ".py" and f"`{package}/{path.name}`" not in table:
                missing.append(f"{package}/{path.name}")
            package_dir = path.is_dir() and (path / "__init__.py").exists()
            if package_dir and f"`{package}/{path.name}/`" not in table:
                missing.append(f"{package}/{path.name}/")
    assert len(table) > 3000
    assert missing == []


def test_the_readme_layout_names_every_script():
    """The layout's `scripts/` row left out `fuzz`, one of the scripts the README itself runs."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    row = next(line for line in readme.splitlines() if line.startswith("| `scripts/` |"))
    scripts = [p.name for p in sorted((ROOT / "scripts").iterdir()) if p.name[0] not in "._"]
    assert {"demo", "test", "install"} <= set(scripts)
    assert [s for s in scripts if f"`{s}`" not in row] == []


def test_the_calibration_steps_send_the_operator_where_the_console_shows_both_readings(
    guard_client, guard_core
):
    """operations.md had the operator note the kiosk's object and ambient readings from the
    console's live feed: the feed shows the estimate only. The page the steps name must show
    the last passage's two readings."""
    from guard_support import add_event, login

    text = (DOCS / "operations.md").read_text(encoding="utf-8")
    section = text[text.index("## Calibration") :]
    pages = _console_pages_named(section[: section.index("\n## ")])
    assert pages, "the calibration steps name no console page to read the readings on"
    add_event(guard_core, temp_c=36.5, temp_object_c=33.9, temp_ambient_c=24.5)
    login(guard_client)
    feed = guard_client.get("/guard/api/feed").json()["rows"][0]
    assert "33.9" not in json.dumps(feed)  # what the steps said to read there is not there
    for page in pages:
        shown = guard_client.get(f"/guard/{page}?lang=en").text
        assert "33.9" in shown and "24.5" in shown, page


def test_what_operations_says_the_gate_does_after_hours_is_what_it_decides():
    """operations.md said a gate with `policy.hours.enabled = true` denies everyone outside
    its hours (`outside_hours`): that is only `mode = "closed"`; the default (`staffed`)
    still decides alone what it may and denies what needs a guard with `no_guard_on_duty`."""
    from datetime import UTC, date, datetime, time
    from zoneinfo import ZoneInfo

    from test_lists import TRUST

    from kiosk.config.policy import PolicySection
    from kiosk.config.thermometer import ThermometryConfig
    from kiosk.history import PassageHistory
    from kiosk.lists import Lists
    from kiosk.policy import PassageInputs, PolicyState, decide
    from kiosk.thermometry import Temperature

    zone = ZoneInfo("Asia/Shanghai")
    night = datetime.combine(date(2026, 3, 2), time(3, 0), zone).astimezone(UTC)
    fever = Temperature("ok", 38.4, 36.0, 22.0, None)

    def reasons(hours: dict[str, object]) -> tuple[str, ...]:
        state = PolicyState(TRUST, Lists(), PassageHistory())
        policy = PolicySection.model_validate({"hours": hours})
        inputs = PassageInputs("in", None, fever)
        return decide(inputs, state, night, policy, ThermometryConfig(), zone).reasons

    assert "no_guard_on_duty" in reasons({"enabled": True})
    assert "outside_hours" in reasons({"enabled": True, "mode": "closed"})
    text = (DOCS / "operations.md").read_text(encoding="utf-8")
    closing = text[text.index("**Closing") :]
    closing = " ".join(closing[: closing.index("\n\n")].split())
    assert "`policy.hours.enabled = true`" in closing and "`no_guard_on_duty`" in closing
    assert "`outside_hours`" not in closing or '`mode = "closed"`' in closing


def test_screens_md_gives_the_technician_the_pages_remedy_for_an_unreadable_calibration(
    tmp_path,
):
    """screens.md said `kiosk calibrate reset` cannot mend an unreadable calibration file,
    while the page itself tells the technician to run it: it mends it (the corrupt file is set
    aside, the default model written)."""
    from checkpoint.cli import main
    from kiosk.calibration import Calibration

    text = " ".join((DOCS / "screens.md").read_text(encoding="utf-8").split())
    bullet = text[text.index("* **Calibration** (`/guard/calibration`)") :]
    bullet = bullet[: min(bullet.index(" ### "), bullet.index(" * **"))]
    assert "`cal.file_unreadable`" in bullet
    assert "calibrate --data DATA reset --yes" in bullet and "cannot mend" not in bullet
    (tmp_path / "calibration.json").write_text("{corrupt", encoding="utf-8")
    assert main(["calibrate", "--data", str(tmp_path), "reset", "--yes"]) == 0
    assert len(list(tmp_path.glob("calibration.json.corrupt-*"))) == 1
    assert Calibration.load(tmp_path / "calibration.json").points == ()


def test_the_kiosk_screens_endpoint_list_is_the_screens_routes_and_events(core):
    """screens.md's list of the kiosk screen's endpoints left out `POST /kiosk/pair` (how a
    screen on another machine gets in) and the stream's `edition` event."""
    from ui.app import create_app

    text = (DOCS / "screens.md").read_text(encoding="utf-8")
    line = " ".join(text[text.index("Endpoints: `GET /kiosk`") :].split("\n\n")[0].split())
    routes = {f"{m} {p}" for m, p in _routes(create_app(core).routes) if p.startswith("/kiosk")}
    assert len(routes) >= 7
    assert sorted(r for r in routes if f"`{r}`" not in line) == []
    events = _stream_words((ROOT / "ui" / "kiosk_screen.py").read_text(encoding="utf-8"))
    assert sorted(e for e in events if f"`{e}`" not in line) == []


def test_the_event_log_api_block_lists_every_field_of_an_event_draft():
    """event-log.md's `EventDraft(...)` left out `audit`, the field a guard's decision carries
    its request's audit row in (one commit with the event)."""
    import dataclasses

    from kiosk.store import EventDraft

    text = (DOCS / "event-log.md").read_text(encoding="utf-8")
    block = text[text.index("\nEventDraft(") : text.index("\nStoreFault(")]
    documented = re.findall(r"\b(\w+)=", block)
    assert documented == [f.name for f in dataclasses.fields(EventDraft)]


def _documented_calls(block: str, prefix: str) -> dict[str, list[str]]:
    """``prefix.NAME(params)`` in a code block: each call's parameter names, as written
    (``name: type``, ``name=...`` or a bare name; a literal such as ``"in"|"out"`` names none)."""
    text = re.sub(r"#[^\n]*", "", block)
    calls = {}
    for match in re.finditer(rf"\b{re.escape(prefix)}\.(\w+)\(", text):
        depth, end = 1, match.end()
        while depth:
            depth += {"(": 1, ")": -1}.get(text[end], 0)
            end += 1
        inside = text[match.end() : end - 1]
        items = [i.strip() for i in re.split(r",(?![^\[]*\])", inside) if i.strip()]
        calls[match.group(1)] = [m.group(1) for i in items if (m := re.match(r"(\w+)\b", i))]
    return calls


def test_the_engine_reference_gives_each_input_the_parameters_it_takes():
    """engine.md's `engine.manual(...)` stopped at `temp_c`: the `subject` a guard's decision
    names (a passage, or `none`), its `flags`, `audit` row and `on_recorded` were missing."""
    import inspect

    from kiosk.engine import Engine

    text = (DOCS / "engine.md").read_text(encoding="utf-8")
    block = next(b for b in re.findall(r"```python\n(.*?)```", text, re.S) if "# inputs" in b)
    calls = _documented_calls(block, "engine")
    assert {"on_code", "manual", "on_crossed"} <= set(calls)
    wrong = {
        name: params
        for name, params in calls.items()
        if params and params != [p for p in inspect.signature(getattr(Engine, name)).parameters][1:]
    }
    assert wrong == {}


def test_the_call_finder_reads_names_across_lines_and_skips_literals():
    block = 'engine.a(x: int, y: "p"|"q" = 1,\n   z=None)  # c, d\nengine.b("in"|"out")\n'
    assert _documented_calls(block, "engine") == {"a": ["x", "y", "z"], "b": []}


@functools.lru_cache
def _definition(name: str) -> object | None:
    """The class or function ``name`` as defined (``class NAME`` / ``def NAME`` at the top of
    a module) in one of the five packages, imported; None when no module defines it."""
    import importlib

    for package in PACKAGES.split("|"):
        for path in sorted((ROOT / package).rglob("*.py")):
            if re.search(rf"^(?:class|def) {name}\b", path.read_text(encoding="utf-8"), re.M):
                dotted = ".".join(path.relative_to(ROOT).with_suffix("").parts)
                return getattr(importlib.import_module(dotted), name, None)
    return None


def test_every_keyword_a_documented_python_call_passes_is_one_it_takes():
    """engine.md built the runner with `EngineRunner(..., event_log=EventLog, ...)`: it takes
    `store`, so code written from the page fails with a TypeError."""
    import inspect
    import typing

    wrong, checked = [], 0
    for doc in sorted(DOCS.glob("*.md")):
        for block in re.findall(r"```python\n(.*?)```", doc.read_text(encoding="utf-8"), re.S):
            calls = re.finditer(r"(?<![\w.])([A-Z]\w+)\(((?:[^()]|\([^()]*\))*)\)", block)
            for call in calls:
                found = _definition(call.group(1))
                if found is None:
                    continue
                signature = inspect.signature(found, eval_str=True)
                taken, checked = set(signature.parameters), checked + 1
                for param in signature.parameters.values():
                    if param.kind is param.VAR_KEYWORD:  # **seams: Unpack[EngineSeams]
                        unpacked = typing.get_args(param.annotation)
                        taken |= set(typing.get_type_hints(unpacked[0])) if unpacked else {"*"}
                given = re.findall(r"(?:^|,)\s*(\w+)=", re.sub(r"#[^\n]*", "", call.group(2)))
                wrong += [
                    f"{doc.name}: {call.group(1)}({k}=)"
                    for k in given
                    if k not in taken and "*" not in taken  # "*": a plain **kwargs
                ]
    assert checked >= 10 and wrong == []


def test_every_field_of_the_daily_report_is_in_the_api_reference(core, client):
    """api.md described the daily report in prose ("counts of events by decision, reason,
    direction", "a temperature histogram", "list freshness"): an office's script could not
    tell it reads `by_decision`, `temperature_histogram`, `lists_freshness` and the rest."""
    _, plain = core.tokens.create(("stats:read",))
    answer = client.get("/api/v1/stats", headers={"Authorization": f"Bearer {plain}"})
    assert answer.status_code == 200 and "by_hour" in answer.json()
    text = (DOCS / "api.md").read_text(encoding="utf-8")
    section = text[text.index("#### `GET /api/v1/stats") : text.index("#### `GET /api/v1/passages")]
    assert sorted(k for k in answer.json() if f"`{k}`" not in section) == []


def test_the_json_calibrate_show_prints_has_the_fields_the_reference_lists(tmp_path, capsys):
    """`kiosk calibrate show --json` was "the stored JSON", its fields named nowhere."""
    from checkpoint.cli import main

    argv = ["calibrate", "--data", str(tmp_path)]
    assert main([*argv, "add", "--clinical", "36.6", "--object", "33.9", "--ambient", "24.5"]) == 0
    capsys.readouterr()
    assert main([*argv, "show", "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    keys = {*shown, *shown["model"], *shown["points"][0]}
    section = _section((DOCS / "cli.md").read_text(encoding="utf-8"), ("calibrate", "show"))
    assert section is not None and len(keys) > 10
    assert sorted(k for k in keys if f"`{k}`" not in section) == []


def test_the_json_line_a_purge_prints_has_the_fields_the_reference_lists(tmp_path, capsys):
    """`kiosk purge`'s JSON line carries `cutoff`, `days_frozen` and
    `events_waiting_for_clock`, which its section never named."""
    from checkpoint.cli import main

    db = str(tmp_path / "kiosk.db")
    assert main(["token", "new", "--scope", "logs:read", "--db", db]) == 0
    capsys.readouterr()
    assert main(["purge", "--older-than", "30", "--trust-clock", "--db", db]) == 0
    keys = set(json.loads(capsys.readouterr().out))
    section = _section((DOCS / "cli.md").read_text(encoding="utf-8"), ("purge",))
    assert section is not None and {"events_purged", "batches"} <= keys
    assert sorted(k for k in keys if f"`{k}" not in section) == []


def test_the_json_an_import_prints_has_the_fields_the_reference_lists(tmp_path, capsys):
    """An import's JSON names its `file`, the `list` it took the sheet for and whether it was
    `applied`: community.md's account of that JSON named none of the three."""
    from checkpoint.cli import main

    sheet = tmp_path / "q.csv"
    sheet.write_text("household,holder,from,until\n1-101,Li,2026-03-01,2026-03-14\n")
    db = str(tmp_path / "kiosk.db")
    assert main(["lists", "import", str(sheet), "--show-keys", "--apply", "--db", db]) == 0
    printed = json.loads(capsys.readouterr().out)
    text = " ".join((DOCS / "community.md").read_text(encoding="utf-8").split())
    said = text[text.index("An import prints the changes as JSON") :].split(". ")[0]
    assert {"added", "keys", "applied"} <= set(printed)
    assert sorted(k for k in printed if f"`{k}`" not in said) == []


def test_the_columns_of_a_batchs_passes_csv_are_in_the_passes_reference(tmp_path):
    """A clerk mail-merging `passes.csv` read "with every payload": its columns (the card's
    file, the pass id, the validity) were named nowhere."""
    import csv

    from checkpoint.cli import main
    from kiosk.passes import new_key_pair

    key, _ = new_key_pair(tmp_path / "keys", "office")
    (tmp_path / "h.csv").write_text("household,holder\n1-101,Li\n", encoding="utf-8")
    argv = ["--key", str(key), "--csv", str(tmp_path / "h.csv")]
    assert (
        main(["pass", "batch", "--tz=Asia/Shanghai", *argv, "--out", str(tmp_path / "cards")]) == 0
    )
    with (tmp_path / "cards" / "passes.csv").open(encoding="utf-8-sig") as f:
        columns = next(csv.reader(f))
    text = " ".join((DOCS / "passes.md").read_text(encoding="utf-8").split())
    said = text[text.index("`passes.csv` with every payload") :][:600]
    assert "payload" in columns and [c for c in columns if f"`{c}`" not in said] == []


def _sketched_calls(text: str, name: str) -> list[list[str]]:
    """Each ``name(...)`` written out in ``text``: its parameters' names in order (``*`` for
    the keyword-only mark, ``…`` for "and more"; ``a | b`` names both); ``name()`` skipped."""
    calls = []
    for match in re.finditer(rf"(?<![\w.]){re.escape(name)}\(", text):
        depth, i, items, item = 1, match.end(), [], ""
        while depth:
            ch = text[i]
            depth += {"(": 1, "[": 1, ")": -1, "]": -1}.get(ch, 0)
            if ch == "#":  # a comment to the end of the line
                i = text.index("\n", i)
                continue
            if (ch == "," and depth == 1) or depth == 0:
                items.append(item.strip())
                item = ""
            else:
                item += ch
            i += 1
        if items == [""]:
            continue
        names: list[str] = []
        for part in items:
            head = re.split(r"[:=]", part, maxsplit=1)[0]
            names += ["…"] if head in ("...", "…") else [n.strip() for n in head.split("|")]
        calls.append(names)
    return calls


def _parameters(obj: object) -> list[str]:
    import inspect

    names = []
    for p in inspect.signature(obj).parameters.values():  # type: ignore[arg-type]
        if p.kind is p.KEYWORD_ONLY and "*" not in names:
            names.append("*")
        names.append(p.name)
    return names


def test_architecture_sketches_name_the_parameters_the_code_takes():
    """architecture.md's signature sketches had fallen behind the code (PassageInputs without
    gate_fault, Temperature without early and doubt, build_core without ``gate``): each one
    written out names the parameters in the code's order, all of them unless it ends in "…"."""
    from checkpoint.app import build_core
    from drivers.factory import build_devices
    from kiosk.crossing import Crossing, Outcome
    from kiosk.devices import CodeRead, Health, ThermoReading
    from kiosk.passes import Pass
    from kiosk.policy import Decision, PassageInputs, PolicyState, decide
    from kiosk.store import EventLog
    from kiosk.thermometry import Measurement, Temperature

    text = (DOCS / "architecture.md").read_text(encoding="utf-8")
    checked = 0
    for obj in (build_core, build_devices, Crossing, Outcome, CodeRead, Health, ThermoReading,
                Pass, Decision, PassageInputs, PolicyState, decide, EventLog, Measurement,
                Temperature):  # fmt: skip
        code = _parameters(obj)
        for sketch in _sketched_calls(text, obj.__name__):
            checked += 1
            if "…" in sketch:
                shown = [n for n in sketch if n != "…"]
                assert [n for n in code if n in shown] == shown, (obj.__name__, sketch)
            else:
                assert sketch == code, (obj.__name__, sketch, code)
    assert checked >= 15


def test_the_event_log_has_one_name_where_it_is_held_or_passed():
    """architecture.md, *Names*: the event log was ``store`` in most annotations, ``log`` in
    five and ``event_log`` in one, and a ``ListStore`` was a ``store`` too. The log is
    ``store`` (the scenario harness's ``event_log``, whose ``store`` is a step, excepted); a
    ``ListStore`` is ``lists`` or ``list_store``."""
    names: dict[str, set[str]] = {"EventLog": set(), "ListStore": set()}
    layers = ("kiosk", "ui", "checkpoint", "office", "drivers")
    for path in (p for layer in layers for p in sorted((ROOT / layer).rglob("*.py"))):
        text = path.read_text(encoding="utf-8")
        for name, kind in re.findall(r"\b(\w+): (EventLog|ListStore)\b(?!\()", text):
            if (name, path.name) != ("event_log", "replay.py"):
                names[kind].add(name)
    assert names == {"EventLog": {"store"}, "ListStore": {"lists", "list_store"}}
    assert "## Names" in (DOCS / "architecture.md").read_text(encoding="utf-8")
