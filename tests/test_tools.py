"""The repository's tools parse what the Makefile passes them."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

TOOLS = Path(__file__).resolve().parents[1] / "tools"


@pytest.fixture
def test_range():
    path = TOOLS / "test_range.py"
    if not path.is_file():
        pytest.skip("no tools/ beside this copy of tests/ (the installed-wheel run)")
    spec = importlib.util.spec_from_file_location("test_range", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_test_range_targets_default_to_both(test_range):
    # `make test-range` passes no target: on Python 3.11, argparse's choices= rejected that.
    args, pytest_args = test_range.parse_args([])
    assert args.targets == ["floor", "newest"] and pytest_args == []
    args, pytest_args = test_range.parse_args(["newest", "--workers", "1", "--", "-x"])
    assert args.targets == ["newest"] and args.workers == 1 and pytest_args == ["-x"]


def test_test_range_rejects_an_unknown_target(test_range, capsys):
    with pytest.raises(SystemExit):
        test_range.parse_args(["flor"])
    assert "unknown targets ['flor']" in capsys.readouterr().err
