"""`python -m jaxloss verify`: table, JSON, exit status."""

import json
import subprocess
import sys

import numpy as np

from jaxloss import _verify


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
