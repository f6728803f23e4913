"""`python -m benchmarks` (and `python -m jaxloss bench`): the harness in --quick mode, its JSON, table
and plot, its cases drawn from the registry, and its pieces.

The benchmarks are a package of the source checkout, not of the wheel: from a wheel-only test run
this module is collected and skipped.
"""

import json
import math
import os
import shutil
import subprocess
import sys
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxloss

harness = pytest.importorskip(
    "benchmarks.harness", reason="the benchmarks package is not importable (a wheel-only run, not a source checkout)"
)
from benchmarks import malloc  # noqa: E402

from .torch_oracle import torch  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
# The PyTorch peer runs where torch is installed (make test-range's newest run has none).
TORCH = ("torch",) if torch is not None else ()
# Its tests share one module fixture: one worker runs them all (make test: --dist loadgroup).
pytestmark = pytest.mark.xdist_group("bench")
IMPL_KEYS = {
    "call",
    "compile_s",
    "memory",
    "cost",
    "program",
    "times_s",
    "median_s",
    "calls_per_round",
    "ns_per_element",
}
CASES = harness.all_cases()


@pytest.fixture(scope="module")
def quick(tmp_path_factory):
    out = tmp_path_factory.mktemp("bench")
    argv = ["--quick", "--sizes", "1e3,3e3", "--losses", "mse,huber", "--rounds", "2", "--out", str(out)]
    rc = harness.main(argv)
    return rc, out, json.loads((out / "bench.json").read_text())


def test_quick_run_schema_and_ratios(quick):
    rc, _, result = quick
    assert rc == 0
    assert result["schema"] == "jaxloss-bench/2"
    assert set(result) >= {"meta", "rows", "skipped", "sparse_memory", "targets", "notes"}
    meta = result["meta"]
    assert meta["jax"] == jax.__version__ and meta["jaxlib"] and meta["optax"]
    assert meta["platform"] == jax.devices()[0].platform and meta["device"]
    assert "xla_flags" in meta and set(meta["malloc_env"]) == set(malloc.MALLOC_ENV)
    rows = result["rows"]
    assert [(r["loss"], r["elements"]) for r in rows] == [
        ("huber", 1024),
        ("huber", 3072),
        ("mean_squared_error", 1024),
        ("mean_squared_error", 3072),
    ]
    for row in rows:
        assert row["dtype"] == "float32" and row["errors"] == {}
        assert {"jaxloss", "optax", "keras", "floor", *TORCH} <= set(row["impls"])
        for name, impl in row["impls"].items():
            assert IMPL_KEYS <= set(impl), name
            assert len(impl["times_s"]) == 2 and all(t > 0 for t in impl["times_s"])
            if name != "torch":  # XLA programs
                assert impl["compile_s"] > 0 and impl["cost"]["bytes_accessed"] > 0
        assert set(row["ratios"]) == set(row["impls"]) - {"jaxloss"}
        assert all(math.isfinite(r) and r > 0 for r in row["ratios"].values())
    # The floor reads two arrays and writes one.
    floor = rows[0]["impls"]["floor"]
    assert floor["cost"]["bytes_accessed"] == pytest.approx(3 * 1024 * 4, rel=0.01)
    # huber carries a custom rule, so plain autodiff is a distinct program; mse's is jaxloss's own.
    assert "autodiff" in rows[0]["ratios"] and rows[2]["same_as_jaxloss"] == ["autodiff"]
    # Peers (the declarations' optax and PyTorch peers, Keras's class) are checked to compute the
    # same value and gradient on the smallest size.
    for row in (rows[0], rows[2]):
        assert all(row["impls"][p]["agrees"] for p in ("optax", "keras", *TORCH)), row["impls"]
    assert "optax.losses.huber_loss" in rows[0]["impls"]["optax"]["call"]
    assert result["targets"] == []  # the targets need 8192x1024


def test_quick_run_writes_table_and_plot(quick):
    _, out, _ = quick
    text = (out / "bench.txt").read_text()
    assert "mean_squared_error" in text and "huber" in text and "floor" in text and "keras" in text
    assert f"jax {jax.__version__}" in text and "XLA_FLAGS=" in text
    # In-process (not the command), the malloc settings are not in effect, and the output says so.
    assert "malloc: NOT set" in text and "python -m benchmarks" in text
    pytest.importorskip("matplotlib", reason="the plot needs matplotlib (the examples extra)")
    png = out / "bench.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 10_000


def test_command_hands_over_and_reexecs_with_malloc_settings(tmp_path):
    if not (ROOT / "jaxloss").is_dir():
        pytest.skip("the command hands over to the checkout's benchmarks; this is an installed-wheel run")
    # `python -m jaxloss bench` hands over to `python -m benchmarks`, which re-executes itself.
    env = {k: v for k, v in os.environ.items() if k not in malloc.MALLOC_ENV}
    cmd = [sys.executable, "-m", "jaxloss", "bench", "--quick", "--sizes", "2e3", "--losses", "mae"]
    cmd += ["--peers", "optax,floor", "--rounds", "1", "--no-plot", "--out", str(tmp_path)]
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, check=False, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "set by the bench for its own process" in proc.stdout
    meta = json.loads((tmp_path / "bench.json").read_text())["meta"]
    assert meta["malloc_env"] == malloc.MALLOC_ENV and meta["malloc_env_set"]
    assert meta["command"].startswith("python -m benchmarks --quick")
    assert not (tmp_path / "bench.png").exists()


def test_bench_from_a_wheel_says_so(tmp_path):
    # A wheel ships jaxloss alone: a copy of the package on the path, and no folder of the path
    # holding a `benchmarks` package (an editable install puts the checkout there).
    site = tmp_path / "site"
    package = Path(jaxloss.__file__).resolve().parent  # the checkout's, or the installed wheel's
    shutil.copytree(package, site / "jaxloss", ignore=shutil.ignore_patterns("__pycache__"))
    script = (
        "import os, sys\n"
        "sys.path = [p for p in sys.path if not os.path.isdir(os.path.join(p or '.', 'benchmarks'))]\n"
        f"sys.path.insert(0, {str(site)!r})\n"
        "from jaxloss.__main__ import main\n"
        "sys.exit(main(['bench', '--quick']))\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", script], cwd=tmp_path, capture_output=True, text=True, check=False, timeout=300
    )
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert "the wheel does not ship" in proc.stderr and "python -m benchmarks" in proc.stderr


def test_time_budget_skips_what_is_left(tmp_path):
    argv = ["--quick", "--sizes", "1e3,2e3", "--losses", "mae,mse", "--peers", "floor", "--rounds", "1"]
    rc = harness.main([*argv, "--time-budget", "0", "--no-plot", "--out", str(tmp_path)])
    assert rc == 0
    result = json.loads((tmp_path / "bench.json").read_text())
    assert result["rows"] == []
    assert {(s["loss"], s["elements"]) for s in result["skipped"]} == {
        (loss, n) for loss in ("mean_absolute_error", "mean_squared_error") for n in (1000, 2000)
    }
    assert all("time budget" in s["reason"] for s in result["skipped"])
    assert "not measured:" in (tmp_path / "bench.txt").read_text()


@pytest.mark.parametrize(("text", "elements"), [("1e4", 10_000), ("30000", 30_000), ("8192x1024", 8_388_608)])
def test_parse_size(text, elements):
    assert harness.parse_size(text) == elements


@pytest.mark.parametrize("text", ["ten", "0", "1.5", "8x"])
def test_parse_size_rejects(text):
    with pytest.raises(Exception, match="--sizes"):
        harness.parse_size(text)


def test_unknown_peer_dtype_and_loss_are_rejected(capsys):
    with pytest.raises(SystemExit):
        harness.parse_args(["--peers", "optax,tensorflow"])
    assert "unknown ['tensorflow']" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        harness.parse_args(["--dtype", "int8"])
    assert "unknown dtype 'int8'" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        harness.parse_args(["--losses", "mse,hubber"])
    assert "unknown loss 'hubber'" in capsys.readouterr().err


def test_median_ratio_pairs_rounds():
    # A slow round slows both sides: pairing by round cancels it, unlike a ratio of medians.
    ours, theirs = [1.0, 10.0, 1.1, 9.0], [2.0, 20.0, 2.2, 30.0]
    assert harness.median_ratio(ours, theirs) == pytest.approx(0.5)


def test_agreement_flags_a_different_quantity():
    g = jnp.array([[0.5, -0.5]])
    assert harness.agreement((1.0, g), (1.0 + 1e-5, g), "float32")[0]
    assert not harness.agreement((1.0, g), (2.0, g), "float32")[0]  # a sum where a mean is due
    assert not harness.agreement((1.0, g), (1.0, 2 * g), "float32")[0]
    assert not harness.agreement((1.0, g), (1.0, g.T), "float32")[0]


def test_program_fingerprint_ignores_names_only():
    x = jnp.ones((4, 8))

    def text(f):
        return jax.jit(f).lower(x, x).compile().as_text()

    def first(a, b):
        return jnp.sum(jnp.square(a - b))

    def second(t, p):  # other names, other source lines: the same program
        return jnp.sum(jnp.square(t - p))

    def third(a, b):
        return jnp.sum(jnp.abs(a - b))

    assert harness.program_fingerprint(text(first)) == harness.program_fingerprint(text(second))
    assert harness.program_fingerprint(text(first)) != harness.program_fingerprint(text(third))


def _row(loss, ratios, family=None, crossentropy=False, identical=()):
    return {
        "loss": loss,
        "dtype": "float32",
        "elements": harness.TARGET_ELEMENTS,
        "ratios": ratios,
        "family": family,
        "crossentropy": crossentropy,
        "identical_program": list(identical),
    }


def test_targets_verdicts():
    rows = [
        _row("huber", {"optax": 0.6, "keras": 1.02, "floor": 2.5}, family="polynomial"),
        _row("binary_crossentropy", {"optax": 0.9, "keras": 0.7, "floor": 5.5}, "transcendental", crossentropy=True),
        _row("mean_absolute_error", {"keras": 1.03, "floor": 2.0}, "polynomial", identical=["keras"]),
        dict(_row("mean_squared_error", {"optax": 2.0}), dtype="bfloat16"),  # not the target dtype
    ]
    sparse = {"impls": {"jaxloss": {"temp_bytes": 2**19, "bytes_over_logits": 6.0}}}
    got = {(t["loss"], t["target"]): (t["ratio"], t["limit"], t["met"]) for t in harness.evaluate_targets(rows, sparse)}
    assert got == {
        ("huber", "<= optax"): (0.6, 1.0, True),
        ("huber", "<= keras"): (1.02, 1.0, False),
        ("huber", "vs floor (polynomial)"): (2.5, 3.0, True),
        ("binary_crossentropy", "<= optax"): (0.9, 1.0, True),
        ("binary_crossentropy", "2x faster than keras"): (0.7, 0.5, False),
        ("binary_crossentropy", "vs floor (transcendental)"): (5.5, 5.0, False),
        ("mean_absolute_error", "<= keras"): (1.03, 1.0, True),  # the same XLA program as Keras's
        ("mean_absolute_error", "vs floor (polynomial)"): (2.0, 3.0, True),
        ("sparse_categorical_crossentropy", "temp MiB at 4096x32768"): (0.5, 1.0, True),
        ("sparse_categorical_crossentropy", "bytes / logits bytes"): (6.0, 5.0, False),
    }


def test_every_registered_loss_is_a_case():
    # The cases are the registry (linear_cross_entropy has its own benchmark): a newly registered
    # loss is benchmarked with no edit to benchmarks/.
    assert [c.loss for c in CASES] == [spec.name for spec in jaxloss.declarations() if not spec.direct]
    assert len({c.label for c in CASES}) == len(CASES)
    assert [c.loss for c in harness.select_cases("mse,CategoricalCrossentropy")] == [
        "categorical_crossentropy",
        "mean_squared_error",
    ]


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.label)
def test_bench_inputs_have_the_bench_shape_and_domains(case):
    n = 4096 if case.max_elements is None else min(4096, case.max_elements)
    y_true, y_pred = case.draw(np.random.default_rng(0), n)
    assert y_pred.shape == case.shape(n) and y_pred.dtype == np.float32
    assert y_true.dtype in (np.float32, np.int32)
    # checked() derives its runtime checks from the same domains: the drawn inputs pass them.
    value = jaxloss.checked(case.spec.function)(y_true, y_pred, **case.options)
    assert np.isfinite(float(value))


PEERS = [
    pytest.param(case, name, id=f"{case.label}-{name}")
    for case in CASES
    for name in ("optax", "torch")
    if case.peer(name) is not None
]


@pytest.mark.parametrize(("case", "library"), PEERS)
def test_peers_agree_with_jaxloss_on_the_bench_inputs(case, library):
    # What the harness checks on its smallest size, here for every case and peer: the peer's
    # per-sample values, averaged, are jaxloss's default reduction, value and gradient.
    host = case.draw(np.random.default_rng(0), 4096 if case.max_elements is None else min(4096, case.max_elements))
    y_true, y_pred = (jnp.asarray(x) for x in host)
    ours = jax.jit(harness.value_and_grad(harness.public_loss(case)))(y_true, y_pred)
    peer = case.peer(library)
    if library == "optax":
        theirs = jax.jit(harness.value_and_grad(harness.optax_loss(peer, case.all_options)))(y_true, y_pred)
    else:
        torch = pytest.importorskip("torch")
        theirs = harness.torch_impl(torch, peer, case.all_options, host, "cpu").first
    ok, value_err, grad_err = harness.agreement(ours, theirs, "float32")
    assert ok, (peer.text, value_err, grad_err)


def test_sparse_memory_check_meets_the_memory_target():
    # Compile only (nothing of 512 MiB is allocated): N=4096, V=32768.
    sparse = harness.sparse_memory_check(jax.devices()[0])
    ours, optax_ = sparse["impls"]["jaxloss"], sparse["impls"]["optax"]
    if ours.get("temp_bytes") is None:
        pytest.skip("this backend reports no memory analysis")
    assert ours["temp_bytes"] <= 2**20
    # On CPU the form that keeps exp(z - m): no more traffic than optax. (On a GPU or TPU the
    # form that recomputes it reads the logits for the max, the sum and the gradient.)
    assert ours["bytes_over_logits"] <= optax_["bytes_over_logits"] + 1e-3
