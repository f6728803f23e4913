"""`python -m jaxloss report`: the accelerator report's short form on CPU, its files and fields, and its
time budgets (a stage that runs out of time stops and says so; the report is always written)."""

import json
import subprocess
import sys
from pathlib import Path

import jax
import pytest

from jaxloss import _report

ROOT = Path(__file__).resolve().parents[1]
# The bench stage runs the checkout's benchmarks: against an installed wheel (a copy of tests/
# and benchmarks/ beside no jaxloss/), it is skipped, as the report says.
CHECKOUT = (ROOT / "pyproject.toml").is_file() and (ROOT / "jaxloss").is_dir()
NOT_A_CHECKOUT = "the bench stage runs from a source checkout; this is an installed-wheel run"
# Its tests share one module fixture: one worker runs them all (make test: --dist loadgroup).
pytestmark = pytest.mark.xdist_group("report")


@pytest.fixture(scope="module")
def quick(tmp_path_factory):
    out = tmp_path_factory.mktemp("report")
    cmd = [sys.executable, "-m", "jaxloss", "report", "--platform", "cpu", "--quick", "--out", str(out)]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, check=False, timeout=600)
    return proc, out, json.loads((out / "report.json").read_text())


def test_quick_report_runs_every_stage(quick):
    proc, _, report = quick
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert report["schema"] == "jaxloss-accelerator-report/1" and report["finished"]
    meta = report["meta"]
    assert meta["versions"]["jax"] == jax.__version__ and meta["versions"]["optax"]
    assert meta["python"] and meta["host"]["cpu_count"] and meta["command"].startswith("python -m jaxloss report")
    assert report["device"].startswith("cpu:0")
    assert [s for s in meta["stages"]] == ["verify", "bench", "large-vocab"]
    for name, stage in report["stages"].items():
        if name in ("bench", "large-vocab") and not CHECKOUT:  # both run benchmarks/ (the checkout's)
            assert stage["status"] == "skipped" and "not this checkout's" in stage["message"], stage
            continue
        assert stage["status"] == "ok", (name, stage["message"])
        assert 0 < stage["duration_s"] <= stage["budget_s"], name
    assert report["elapsed_s"] <= meta["time_budget_s"]


def test_quick_report_verify_rows(quick):
    _, _, report = quick
    verify = report["stages"]["verify"]
    assert verify["devices"][0]["id"] == "cpu:0" and verify["not_run"] == 0
    rows = verify["rows"]
    assert {r["loss"] for r in rows} == {"mean_squared_error", "huber"}
    assert {r["dtype"] for r in rows} == {"float32", "bfloat16"}
    assert len(rows) == verify["total_rows"] and all(r["passed"] for r in rows)
    assert all(r["max_rel_error"] <= 1.6e-2 for r in rows)


@pytest.mark.skipif(not CHECKOUT, reason=NOT_A_CHECKOUT)
def test_quick_report_benchmarks(quick):
    _, out, report = quick
    bench = report["stages"]["bench"]
    rows = bench["result"]["rows"]
    assert [(r["loss"], r["elements"]) for r in rows] == [("huber", 1024), ("mean_squared_error", 1024)]
    assert all({"jaxloss", "optax", "floor"} <= set(r["impls"]) for r in rows)
    assert all(r["impls"]["optax"]["agrees"] for r in rows) and bench["disagreements"] == []
    assert (out / "bench" / "bench.json").exists() and "huber" in bench["table"]
    large = report["stages"]["large-vocab"]["result"]
    assert large["shape"] == {"n": 128, "d": 32, "v": 512}
    for impl in ("jaxloss", "naive"):
        r = large["results"][impl]
        assert r["median_s"] > 0 and r["peak_bytes"] > 0 and len(r["times_s"]) == 2, impl
    # The two forms compute the same loss on inputs drawn alike.
    assert large["summary"]["value_spread"] < 1e-5
    assert "time" in large["summary"]["ratios"]["naive"]


@pytest.mark.skipif(not CHECKOUT, reason=NOT_A_CHECKOUT)
def test_quick_report_markdown_names_device_versions_and_figures(quick):
    _, out, report = quick
    text = (out / "report.md").read_text()
    assert text.startswith("# jaxloss accelerator report: cpu:0")
    assert f"jax {jax.__version__}" in text and "| verify | ok |" in text
    float32 = sum(r["dtype"] == "float32" for r in report["stages"]["verify"]["rows"])
    assert f"| cpu:0 float32 | {float32} | 0 |" in text
    assert "## Benchmark" in text and "mean_squared_error" in text
    assert "## Large vocabulary" in text and "linear_cross_entropy at N=128 d=32 V=512" in text
    for stage in report["stages"].values():
        assert stage["message"] in text


def test_stages_out_of_time_are_skipped_and_the_report_written(tmp_path):
    # 15 s in all leaves no stage its minimum: each is skipped with the reason, in a written report.
    assert _report.main(["--platform", "cpu", "--time-budget", "15", "--out", str(tmp_path)]) == 0
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["finished"] and list(report["stages"]) == ["verify", "bench", "large-vocab"]
    for stage in report["stages"].values():
        assert stage["status"] == "skipped" and "time budget spent" in stage["message"]
    assert "| verify | skipped |" in (tmp_path / "report.md").read_text()


def test_verify_stops_at_its_deadline(tmp_path):
    # A budget whose rows' share ends as the workers start: no row runs, every row is counted as not run.
    (tmp_path / "logs").mkdir()
    args = _report.parse_args(["--platform", "cpu", "--losses", "mse"])
    stage = _report.verify_stage(args, _report.CPU, tmp_path, budget=120.0, margin=120.0)
    assert stage["status"] == "partial" and stage["rows"] == []
    assert stage["not_run"] == stage["total_rows"] > 0
    assert "not run (time budget spent)" in stage["message"]


def test_benchmark_stages_from_a_wheel_are_skipped(tmp_path, monkeypatch):
    monkeypatch.setattr(_report, "benchmarks_location", lambda: None)
    args = _report.parse_args(["--platform", "cpu"])
    for run in (_report.bench_stage, _report.large_vocab_stage):
        stage = run(args, _report.QUICK, tmp_path, 100.0)
        assert stage["status"] == "skipped" and "not importable (jaxloss from a wheel)" in stage["message"]


def test_unknown_stage_is_rejected(capsys):
    with pytest.raises(SystemExit):
        _report.parse_args(["--stages", "verify,profile"])
    assert "unknown ['profile']" in capsys.readouterr().err
