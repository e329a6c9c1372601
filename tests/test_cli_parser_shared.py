"""The tests' one ``kiosk`` parser (``tests/cli_parser.py``): built once for the verbs a test
process runs (``main`` built all ~230 arguments again for each, ~5 ms), and built again
whenever building it again would make another."""

from __future__ import annotations

import argparse
import os

from checkpoint import cli
from checkpoint.cli import log_cmd


def _verbs(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    return dict(parser._subparsers._group_actions[0].choices)  # type: ignore[union-attr]


def test_the_verbs_run_in_a_row_share_one_parser():
    assert cli.build_parser() is cli.build_parser()


def test_a_changed_environment_builds_it_again_with_its_defaults(tmp_path, monkeypatch):
    before = cli.build_parser()
    monkeypatch.setenv("KIOSK_CONFIG", str(tmp_path / "kiosk.toml"))
    after = cli.build_parser()
    assert after is not before
    assert after.parse_args(["verify-log"]).config == str(tmp_path / "kiosk.toml")


def test_a_verbs_function_patched_is_the_one_run(monkeypatch):
    cli.build_parser()

    def instead(args: argparse.Namespace) -> int:
        """A verb."""
        return 0

    monkeypatch.setattr(log_cmd, "run", instead)
    assert cli.build_parser().parse_args(["verify-log"]).func is instead


def test_a_default_changed_in_place_is_never_handed_out_again():
    parser = cli.build_parser()
    lists = [
        action
        for verb in _verbs(parser).values()
        for action in verb._actions
        if isinstance(action.default, list)
    ]
    assert lists, "no verb has a list default: this test checks nothing"
    lists[0].default.append("left by a verb")
    again = cli.build_parser()
    assert again is not parser
    assert all(
        "left by a verb" not in action.default
        for verb in _verbs(again).values()
        for action in verb._actions
        if isinstance(action.default, list)
    )


def test_a_variable_no_parser_is_built_from_keeps_the_one_parser(monkeypatch):
    before = cli.build_parser()
    monkeypatch.setenv("KIOSK_TEST_READ_BY_NO_PARSER", "1")
    monkeypatch.delenv("KIOSK_TEST_NOT_SET_EITHER", raising=False)
    assert cli.build_parser() is before


def test_a_build_that_went_through_the_whole_environment_is_built_again_at_any_change(
    monkeypatch,
):
    register, seen = log_cmd.register, []

    def reading_everything(sub: argparse._SubParsersAction) -> None:
        seen.append(dict(os.environ))
        register(sub)

    monkeypatch.setattr(log_cmd, "register", reading_everything)
    first = cli.build_parser()
    monkeypatch.setenv("KIOSK_TEST_READ_BY_NO_PARSER", "1")
    again = cli.build_parser()
    assert again is not first and seen[-1]["KIOSK_TEST_READ_BY_NO_PARSER"] == "1"
    assert cli.build_parser() is again


def test_the_suites_own_patch_of_the_cli_is_one_object_for_the_whole_session():
    """What the suite patches in ``checkpoint.cli`` for every test is patched once, before
    the first: a new object at each test was a changed attribute, and each test's first verb
    built the parser again."""
    from conftest import _SyncedSystemClock

    from checkpoint.cli import pass_cmd

    assert isinstance(pass_cmd.system_clock, _SyncedSystemClock)
    assert cli.build_parser() is cli.build_parser()
