"""How the suite runs: its xdist groups hold, and its XLA flags are ones this jaxlib knows.

`make test` runs pytest with ``-n N --dist loadgroup`` so that the tests of an xdist_group
share one worker and its module fixture (pyright, the quick report, the subprocess meshes run
once). pytest-xdist 3.8 under pytest 9.2 ignored the marks silently: each worker then ran those
fixtures again. The first test runs a small grouped module that way and checks where its tests ran."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest

from .xla_flags import CHOSEN, FAST_COMPILE_FLAGS, accepted

GROUPED = textwrap.dedent(
    """
    import json, os
    import pytest

    pytestmark = pytest.mark.xdist_group("together")

    @pytest.mark.parametrize("i", range(6))
    def test_grouped(i, tmp_path_factory):
        where = tmp_path_factory.getbasetemp().parent / f"grouped-{i}.json"
        where.write_text(json.dumps(os.environ["PYTEST_XDIST_WORKER"]))

    @pytest.mark.parametrize("i", range(6))
    def test_free(i):
        pass
    """
)


def test_loadgroup_runs_a_group_on_one_worker(tmp_path):
    pytest.importorskip("xdist")
    (tmp_path / "test_grouped.py").write_text(GROUPED)
    base = tmp_path / "base"
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", "-n", "2", "--dist", "loadgroup"]
        + ["--basetemp", str(base), "-o", "addopts=", "test_grouped.py"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    workers = [json.loads(p.read_text()) for p in sorted(base.glob("grouped-*.json"))]
    assert len(workers) == 6, (workers, proc.stdout[-2000:])
    assert len(set(workers)) == 1, (
        f"the xdist_group's tests ran on workers {sorted(set(workers))}: this pytest "
        f"({pytest.__version__}) and pytest-xdist do not honour --dist loadgroup; use constraints.txt's versions"
    )


def test_a_flag_this_jaxlib_does_not_know_is_left_out():
    known = "--xla_backend_optimization_level=0"
    assert accepted(["--xla_no_such_flag_in_any_jaxlib=1", known]) == [known]


def test_the_suite_runs_with_the_flags_it_chose():
    if os.environ.get("JAXLOSS_TEST_XLA_DEFAULTS"):
        assert not set(FAST_COMPILE_FLAGS) & set(os.environ.get("XLA_FLAGS", "").split())
    else:
        chosen = os.environ[CHOSEN].split()
        assert set(chosen) <= set(FAST_COMPILE_FLAGS)
        assert set(chosen) <= set(os.environ["XLA_FLAGS"].split())
