"""`python -m jaxloss verify`: table, JSON, exit status."""

import json
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxloss import _verify
from jaxloss._core import REGISTRY, LossSpec


def test_verify_passes_and_writes_json(tmp_path, capsys):
    path = tmp_path / "v.json"
    rc = _verify.main(
        ["--losses", "mse,huber,log_cosh", "--dtype", "float32", "--dtype", "bfloat16", "--json", str(path)]
    )
    out = capsys.readouterr().out
    assert rc == 0
    assert "huber" in out and "6 passed, 0 failed" in out
    rows = json.loads(path.read_text())["rows"]
    assert len(rows) == 6 and all(r["passed"] for r in rows)
    assert {r["dtype"] for r in rows} == {"float32", "bfloat16"}


def test_verify_fails_loudly_on_a_wrong_closed_form(monkeypatch, capsys):
    def wrong(loss, **options):
        good = _verify.grad(loss, **options)
        return lambda y_true, y_pred: np.asarray(good(y_true, y_pred)) * 1.01

    monkeypatch.setattr(_verify, "analytic_grad", wrong)
    rc = _verify.main(["--losses", "mse", "--dtype", "float32"])
    assert rc == 1
    assert "FAIL" in capsys.readouterr().out


def test_module_entry_point_usage():
    proc = subprocess.run([sys.executable, "-m", "jaxloss"], capture_output=True, text=True, check=False)
    assert proc.returncode == 2 and "verify" in proc.stdout


def test_array_options_in_table_and_json(tmp_path, capsys):
    # Per-class weights and class masks are arrays: shown by shape in the table, written out in the JSON.
    path = tmp_path / "v.json"
    rc = _verify.main(["--losses", "binary_crossentropy", "--dtype", "float32", "--json", str(path)])
    out = capsys.readouterr().out
    assert rc == 0 and "4 passed, 0 failed" in out
    assert "from_logits=True,pos_weight=<16>" in out
    rows = json.loads(path.read_text())["rows"]
    assert [r["options"].get("pos_weight") for r in rows] == [None, None, _verify.POS_WEIGHT.tolist(), 3.0]


def test_rows_cover_the_options_beyond_keras():
    covered = {(loss, option) for loss, options, _ in _verify.ROWS for option in options}
    for loss in ("categorical_crossentropy", "sparse_categorical_crossentropy"):
        assert {(loss, o) for o in ("class_weight", "where", "z_loss", "logit_soft_cap", "label_smoothing")} <= covered
    assert ("binary_crossentropy", "pos_weight") in covered
    assert {("kl_divergence", "log_input"), ("kl_divergence", "log_target")} <= covered
    assert {("ctc", o) for o in ("blank_index", "label_lengths", "logit_lengths")} <= covered
    # Every class mask keeps at least one class per row.
    for loss, options, _ in _verify.ROWS:
        if "where" in options:
            assert np.all(np.any(options["where"], axis=-1)), loss


def test_a_wrong_custom_rule_is_caught(monkeypatch):
    # A loss that carries its closed form as its custom_jvp rule: jax.grad of the loss runs that
    # rule, so verify differentiates the plain formula, else a wrong rule would agree with itself.
    def values(y_true, y_pred):
        return jnp.mean(jnp.square(y_pred - y_true), axis=-1)

    def wrong(y_true, y_pred):
        return 1.01 * 2.0 * (y_pred - y_true) / y_pred.shape[-1]

    spec = LossSpec("verify_probe", None, values, {}, local_grad=wrong, custom_jvp=True)

    def verify_probe(y_true, y_pred, *, sample_weight=None, reduction="sum_over_batch_size"):
        return spec.evaluate(y_true, y_pred, sample_weight, reduction)

    monkeypatch.setitem(REGISTRY, spec.name, (spec, verify_probe))
    make = _verify._real((8, 4))
    y_true, y_pred = (jnp.asarray(x, jnp.float32) for x in make(np.random.default_rng(0)))
    np.testing.assert_allclose(
        _verify.grad(spec.name)(y_true, y_pred), _verify.analytic_grad(spec.name)(y_true, y_pred)
    )
    row = _verify.verify_row(spec.name, {}, make, jax.devices("cpu")[0], "float32")
    assert not row["passed"]
    assert row["max_rel_error"] == pytest.approx(0.01, rel=1e-3)
