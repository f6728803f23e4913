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
