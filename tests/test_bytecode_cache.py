"""The unit suite's bytecode cache (``tests/bytecode_cache.py``): set up before pytest loads
the plugins it finds installed, so their rewritten modules are cached too."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import bytecode_cache
import pytest
from _pytest.assertion.rewrite import PYC_TAIL


def test_it_is_set_up_before_pytest_loads_the_installed_plugins(pytestconfig):
    order = [getattr(p, "__name__", "") for _, p in pytestconfig.pluginmanager.list_name_plugin()]
    assert order.index("bytecode_cache") < order.index("_hypothesis_pytestplugin"), order


def test_the_plugins_pytest_rewrites_before_the_conftest_are_cached_too():
    if sys.pycache_prefix is None or not sys.flags.dont_write_bytecode:
        pytest.skip("bytecode is cached as usual (PYTHONDONTWRITEBYTECODE unset)")
    spec = importlib.util.find_spec("_hypothesis_pytestplugin")  # loaded as pytest starts
    assert spec is not None and spec.origin is not None
    source = Path(spec.origin)
    cached = Path(sys.pycache_prefix, *source.parent.parts[1:], source.stem + PYC_TAIL)
    assert cached.is_file(), cached


def test_a_prefix_the_user_chose_is_kept(monkeypatch, tmp_path):
    monkeypatch.setattr(sys, "dont_write_bytecode", True)
    monkeypatch.setattr(sys, "pycache_prefix", str(tmp_path))
    bytecode_cache.keep_bytecode_out_of_the_tree()
    assert (sys.pycache_prefix, sys.dont_write_bytecode) == (str(tmp_path), True)


def test_without_dontwritebytecode_nothing_changes(monkeypatch):
    monkeypatch.setattr(sys, "dont_write_bytecode", False)
    monkeypatch.setattr(sys, "pycache_prefix", None)
    bytecode_cache.keep_bytecode_out_of_the_tree()
    assert sys.pycache_prefix is None


def test_the_cache_is_in_the_users_cache_directory_not_the_tree(monkeypatch, tmp_path):
    monkeypatch.setattr(sys, "dont_write_bytecode", True)
    monkeypatch.setattr(sys, "pycache_prefix", None)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    bytecode_cache.keep_bytecode_out_of_the_tree()
    assert sys.pycache_prefix == str(tmp_path / "kiosk-tests" / "pycache")
    assert not sys.dont_write_bytecode
