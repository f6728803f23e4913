"""Every example runs in a fast mode and prints sane metrics."""

import importlib.util
import pathlib

import pytest

from .xla_flags import CHOSEN

EXAMPLES = pathlib.Path(__file__).resolve().parents[1] / "examples"


def _load(name):
    spec = importlib.util.spec_from_file_location(name, EXAMPLES / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_train_digits_fast(tmp_path, capsys):
    pytest.importorskip("sklearn")
    accuracies = _load("train_digits").main(["--steps", "150", "--out", str(tmp_path)])
    out = capsys.readouterr().out
    assert set(accuracies) == {
        "sparse_categorical_crossentropy",
        "categorical_crossentropy(label_smoothing=0.1)",
        "categorical_focal_crossentropy",
    }
    for name, accuracy in accuracies.items():
        assert accuracy > 0.8, (name, accuracy)  # chance is 0.1; full runs reach >= 95%
        assert name in out
    assert (tmp_path / "train_digits.png").stat().st_size > 10_000


def test_robust_regression_fast(tmp_path, capsys):
    pytest.importorskip("sklearn")
    maes = _load("robust_regression").main(["--steps", "200", "--out", str(tmp_path)])
    out = capsys.readouterr().out
    for name in maes:
        assert name in out
    # Predicting the training median gives a held-out MAE near 65; every fit must beat that.
    assert all(mae < 65.0 for mae in maes.values()), maes
    # The robust losses ignore most of the corrupted targets; squared error chases them.
    assert maes["huber(delta=1.0)"] < maes["mean_squared_error"] - 5.0, maes
    assert maes["log_cosh"] < maes["mean_squared_error"] - 5.0, maes
    assert maes["mean_squared_error, clean targets"] < min(maes["huber(delta=1.0)"], maes["log_cosh"]), maes
    assert (tmp_path / "robust_regression.png").stat().st_size > 10_000


def test_imbalanced_binary_fast(tmp_path, capsys):
    pytest.importorskip("sklearn")
    metrics = _load("imbalanced_binary").main(["--steps", "150", "--out", str(tmp_path)])
    out = capsys.readouterr().out
    bce, focal = metrics["binary_crossentropy"], metrics["binary_focal_crossentropy(balanced)"]
    for name, m in metrics.items():
        assert name in out
        assert m["pr_auc"] > 10 / 51, (name, m)  # chance is the positive rate, 1/51
    assert focal["recall_at_precision"] > bce["recall_at_precision"], metrics
    assert (tmp_path / "imbalanced_binary.png").stat().st_size > 10_000


def test_per_example_gradients_fast(tmp_path, capsys):
    pytest.importorskip("sklearn")
    metrics = _load("per_example_gradients").main(["--steps", "100", "--out", str(tmp_path)])
    out = capsys.readouterr().out
    # vmap(jaxloss.grad) + vjp gives the same per-example gradients as vmap(jax.grad) of the whole loss,
    # and the written-out aggregation equals optax's.
    assert metrics["autodiff_max_abs_diff"] < 1e-5, metrics
    assert metrics["optax_max_abs_diff"] < 1e-6, metrics
    assert metrics["non-private"] > 0.9, metrics  # chance is 0.1
    assert metrics["per-example clipping"] > 0.9, metrics
    assert 0.5 < metrics["DP-SGD"] < metrics["non-private"], metrics  # the noise costs accuracy
    assert "DP-SGD" in out
    assert (tmp_path / "per_example_gradients.png").stat().st_size > 10_000


def test_data_parallel_fast(tmp_path):
    """In a fresh interpreter that has already started jax on one CPU device, main() re-runs the script with 8."""
    pytest.importorskip("sklearn")
    import json
    import os
    import subprocess
    import sys

    program = (
        "import importlib.util, json, sys, jax\n"
        "assert len(jax.devices('cpu')) == 1\n"
        f"spec = importlib.util.spec_from_file_location('data_parallel', {str(EXAMPLES / 'data_parallel.py')!r})\n"
        "module = importlib.util.module_from_spec(spec)\n"
        "spec.loader.exec_module(module)\n"
        f"metrics = module.main(['--steps', '40', '--out', {str(tmp_path)!r}])\n"
        "print('METRICS', json.dumps(metrics))\n"
    )
    # No device count in XLA_FLAGS (the suite's compile flags stay, see tests/xla_flags.py).
    env = {k: v for k, v in os.environ.items() if k != "XLA_FLAGS"}
    env["XLA_FLAGS"] = os.environ.get(CHOSEN, "")
    env["JAX_PLATFORMS"] = "cpu"
    result = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True, env=env, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    out = result.stdout
    assert "running again in a subprocess" in out
    assert "mesh {'data': 8} over 8 CPU devices" in out
    assert "8 shards of (32, 20)" in out
    assert "losses match" in out
    metrics = json.loads(out.split("METRICS ", 1)[1])
    assert metrics["max_abs_diff"] < 1e-5, metrics
    assert metrics["single_device_accuracy"] > 0.5, metrics  # chance is 0.25
    assert abs(metrics["single_device_accuracy"] - metrics["sharded_accuracy"]) < 1e-3, metrics
    assert (tmp_path / "data_parallel.png").stat().st_size > 10_000


def test_lm_head_fast(tmp_path, capsys):
    pytest.importorskip("matplotlib")
    metrics = _load("lm_head").main(["--steps", "60", "--out", str(tmp_path)])
    out = capsys.readouterr().out
    # Untrained, the model spreads its mass over the characters: log2(V) bits; 60 steps learn their frequencies.
    assert metrics["first_held_out_bits"] > 6.0, metrics
    assert metrics["final_held_out_bits"] < metrics["first_held_out_bits"] - 1.5, metrics
    assert metrics["naive_minus_ours"] < 1e-5, metrics  # the same loss as on the explicit logits
    for row in metrics["memory"]:  # compile-only memory at a large vocabulary: no (tokens, V) logits
        assert row["linear_cross_entropy"] * 10 < row["naive"], row
    for prompt, text in zip(["Return the ", "If the file ", "This module provides "], metrics["samples"], strict=True):
        assert text.startswith(prompt) and len(text) > len(prompt) + 100
    assert "held-out" in out
    assert (tmp_path / "lm_head.png").stat().st_size > 10_000
