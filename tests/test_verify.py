"""`python -m jaxloss verify`: rows from the registry, table, JSON, exit status."""

import json
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxloss import _verify
from jaxloss._core import REGISTRY, Example, register
from jaxloss._inputs import REAL


def _rows_of(*names):
    return sum(len(REGISTRY[n].examples) for n in names)


def test_verify_passes_and_writes_json(tmp_path, capsys):
    path = tmp_path / "v.json"
    rc = _verify.main(
        ["--losses", "mse,huber,log_cosh", "--dtype", "float32", "--dtype", "bfloat16", "--json", str(path)]
    )
    out = capsys.readouterr().out
    rows = 2 * _rows_of("mean_squared_error", "huber", "log_cosh")
    assert rc == 0
    assert "huber" in out and f"{rows} passed, 0 failed" in out
    data = json.loads(path.read_text())
    assert len(data["rows"]) == rows and all(r["passed"] for r in data["rows"])
    assert {r["dtype"] for r in data["rows"]} == {"float32", "bfloat16"}
    assert data["meta"]["jax"] == jax.__version__


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
    assert rc == 0 and f"{_rows_of('binary_crossentropy')} passed, 0 failed" in out
    assert "pos_weight=<5>" in out
    rows = json.loads(path.read_text())["rows"]
    assert [0.5, 1.0, 2.0, 3.0, 0.0] in [r["options"].get("pos_weight") for r in rows]


def test_rows_are_every_example_of_every_loss():
    rows = _verify.rows()
    assert len(rows) == sum(len(spec.examples) for spec in REGISTRY.values())
    covered = {(spec.name, option) for spec, example in rows for option in example.options}
    for name, spec in REGISTRY.items():
        assert {(name, option) for option in spec.options} <= covered, name


def test_a_wrong_custom_rule_is_caught():
    # A loss that carries its closed form as its custom_jvp rule: jax.grad of the loss runs that
    # rule, so verify differentiates the plain formula, else a wrong rule would agree with itself.
    def values(y_true, y_pred):
        return jnp.mean(jnp.square(y_pred - y_true), axis=-1)

    def wrong(y_true, y_pred):
        return 1.01 * 2.0 * (y_pred - y_true) / y_pred.shape[-1]

    saved = dict(REGISTRY)
    try:

        @register(
            formula=values,
            local_grad=wrong,
            gradient="rule",
            inputs={"y_true": REAL, "y_pred": REAL},
            examples=(Example(shape=(8, 4)),),
        )
        def verify_probe(y_true, y_pred, *, sample_weight=None, reduction="sum_over_batch_size"):
            """A probe."""

        spec = REGISTRY["verify_probe"]
        y_true, y_pred = (jnp.asarray(x, jnp.float32) for x in spec.draw(spec.examples[0], np.random.default_rng(0)))
        np.testing.assert_allclose(
            _verify.grad(spec.name)(y_true, y_pred), _verify.analytic_grad(spec.name)(y_true, y_pred)
        )
        row = _verify.verify_row(spec, spec.examples[0], jax.devices("cpu")[0], "float32")
        assert not row["passed"]
        assert row["max_rel_error"] == pytest.approx(0.01, rel=1e-3)
    finally:
        REGISTRY.clear()
        REGISTRY.update(saved)
