"""`python -m jaxloss bench`: the harness in --quick mode, its JSON, table and plot, and its pieces."""

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxloss import _bench

harness = _bench.load_harness()
ROOT = Path(__file__).resolve().parents[1]
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


@pytest.fixture(scope="module")
def quick(tmp_path_factory):
    out = tmp_path_factory.mktemp("bench")
    argv = ["--quick", "--sizes", "1e3,3e3", "--losses", "mse,huber", "--rounds", "2", "--out", str(out)]
    rc = harness.main(argv)
    return rc, out, json.loads((out / "bench.json").read_text())


def test_quick_run_schema_and_ratios(quick):
    rc, _, result = quick
    assert rc == 0
    assert result["schema"] == "jaxloss-bench/1"
    assert set(result) >= {"meta", "rows", "skipped", "sparse_memory", "targets", "notes"}
    meta = result["meta"]
    assert meta["jax"] == jax.__version__ and meta["jaxlib"] and meta["optax"]
    assert meta["platform"] == jax.devices()[0].platform and meta["device"]
    assert "xla_flags" in meta and set(meta["malloc_env"]) == set(_bench.MALLOC_ENV)
    rows = result["rows"]
    assert [(r["loss"], r["elements"]) for r in rows] == [
        ("mean_squared_error", 1024),
        ("mean_squared_error", 3072),
        ("huber", 1024),
        ("huber", 3072),
    ]
    for row in rows:
        assert row["dtype"] == "float32" and row["errors"] == {}
        assert {"jaxloss", "optax", "keras", "floor"} <= set(row["impls"])
        for name, impl in row["impls"].items():
            assert IMPL_KEYS <= set(impl), name
            assert len(impl["times_s"]) == 2 and all(t > 0 for t in impl["times_s"])
            assert impl["compile_s"] > 0 and impl["cost"]["bytes_accessed"] > 0
        assert set(row["ratios"]) == set(row["impls"]) - {"jaxloss"}
        assert all(math.isfinite(r) and r > 0 for r in row["ratios"].values())
    # The floor reads two arrays and writes one.
    floor = rows[0]["impls"]["floor"]
    assert floor["cost"]["bytes_accessed"] == pytest.approx(3 * 1024 * 4, rel=0.01)
    # huber carries a custom rule, so plain autodiff is a distinct program; mse's is jaxloss's own.
    assert "autodiff" in rows[2]["ratios"] and rows[0]["same_as_jaxloss"] == ["autodiff"]
    # Peers are checked to compute the same value and gradient on the smallest size.
    for row in (rows[0], rows[2]):
        assert all(row["impls"][p]["agrees"] for p in ("optax", "keras")), row["impls"]
    assert result["targets"] == []  # the targets need 8192x1024


def test_quick_run_writes_table_and_plot(quick, capsys):
    _, out, result = quick
    text = (out / "bench.txt").read_text()
    assert "mean_squared_error" in text and "huber" in text and "floor" in text and "keras" in text
    assert f"jax {jax.__version__}" in text and "XLA_FLAGS=" in text
    # In-process (not the command), the malloc settings are not in effect, and the output says so.
    assert "malloc: NOT set" in text
    if result["meta"]["torch"] is None:
        assert any("torch is not installed" in note for note in result["notes"])
    png = out / "bench.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 10_000


def test_command_reexecs_with_malloc_settings(tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in _bench.MALLOC_ENV}
    cmd = [sys.executable, "-m", "jaxloss", "bench", "--quick", "--sizes", "2e3", "--losses", "mae"]
    cmd += ["--peers", "optax,floor", "--rounds", "1", "--no-plot", "--out", str(tmp_path)]
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, check=False, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "set by the bench for its own process" in proc.stdout
    meta = json.loads((tmp_path / "bench.json").read_text())["meta"]
    assert meta["malloc_env"] == _bench.MALLOC_ENV and meta["malloc_env_set"]
    assert not (tmp_path / "bench.png").exists()


@pytest.mark.parametrize(("text", "elements"), [("1e4", 10_000), ("30000", 30_000), ("8192x1024", 8_388_608)])
def test_parse_size(text, elements):
    assert harness.parse_size(text) == elements


@pytest.mark.parametrize("text", ["ten", "0", "1.5", "8x"])
def test_parse_size_rejects(text):
    with pytest.raises(Exception, match="--sizes"):
        harness.parse_size(text)


def test_unknown_peer_and_dtype_are_rejected(capsys):
    with pytest.raises(SystemExit):
        harness.parse_args(["--peers", "optax,tensorflow"])
    assert "unknown ['tensorflow']" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        harness.parse_args(["--dtype", "int8"])
    assert "unknown dtype 'int8'" in capsys.readouterr().err


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


def test_every_case_names_a_registered_loss():
    # A typo in the table would silently skip a loss.
    from jaxloss._core import REGISTRY

    for case in harness.CASES:
        assert case.loss in REGISTRY, case.loss
    assert len({c.label for c in harness.CASES}) == len(harness.CASES)


def test_every_registered_loss_has_a_case():
    # `python -m jaxloss bench` lists uncovered losses; the table should leave none.
    from jaxloss._core import REGISTRY

    assert sorted(set(REGISTRY) - {c.loss for c in harness.CASES}) == []
    assert harness.select_cases(None)[1] == []


@pytest.mark.parametrize("case", [c for c in harness.CASES if c.optax is not None], ids=lambda c: c.label)
def test_optax_peers_agree_with_jaxloss(case):
    # What the harness checks on its smallest size, here on every case with an optax peer.
    from jaxloss._core import REGISTRY

    y_true, y_pred = (jnp.asarray(x) for x in case.make(np.random.default_rng(0), 4096))
    fn = REGISTRY[case.loss][1]
    ours = jax.value_and_grad(lambda p: fn(y_true, p, **case.options))(y_pred)
    theirs = jax.value_and_grad(lambda p: case.optax[0](y_true, p))(y_pred)
    ok, value_err, grad_err = harness.agreement(ours, theirs, "float32")
    assert ok, (value_err, grad_err)


def test_sparse_memory_check_meets_the_memory_targets():
    # Compile only (nothing of 512 MiB is allocated): the N=4096, V=32768 check.
    sparse = harness.sparse_memory_check(jax.devices()[0])
    ours, gpu_form, optax_ = (sparse["impls"][k] for k in ("jaxloss", "gpu_form", "optax"))
    if ours.get("temp_bytes") is None:
        pytest.skip("this backend reports no memory analysis")
    assert ours["temp_bytes"] <= 2**20
    assert gpu_form["temp_bytes"] <= 2**20
    # The CPU form keeps exp(z - m): no more traffic than optax. The GPU/TPU form reads the logits
    # for the max, the sum and the gradient and writes the gradient; cost_analysis counts the label
    # gather's operand as a fifth full read. The 1e-3 is the (N,)-sized vectors (labels, max, sum).
    assert ours["bytes_over_logits"] <= optax_["bytes_over_logits"] + 1e-3
    assert gpu_form["bytes_over_logits"] <= 5.0 + 1e-3
