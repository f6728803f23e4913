"""Type checkers see every loss's real signature: pyright (basic mode) on the package, on a
user-style script that calls every public loss, and on one that misuses each.

The scripts are written from the registry, so a new loss is checked with no edit here: the
good script calls each loss with its examples' options (numbers, flags, axes, arrays); the
bad one misspells an option, passes a reduction that is not one of the five, and gives a
flag or a number the wrong type. pyright must accept the first and flag every line of the
second.
"""

from __future__ import annotations

import inspect
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import jaxloss
from jaxloss._core import REGISTRY, ArrayOption, PerClass, Scalar, Static

PACKAGE = Path(jaxloss.__file__).resolve().parent
# One worker runs all three tests, so the module fixture runs pyright once (make test: --dist loadgroup).
pytestmark = pytest.mark.xdist_group("pyright")


def _pyright() -> list[str]:
    exe = shutil.which("pyright", path=str(Path(sys.executable).parent)) or shutil.which("pyright")
    if exe is None:
        pytest.skip("pyright is not installed (it is in the test extra)")
    return [exe]


def _run(paths: list[Path], tmp_path: Path) -> dict:
    config = tmp_path / "pyrightconfig.json"
    config.write_text(
        json.dumps({"typeCheckingMode": "basic", "pythonVersion": "3.11", "reportMissingModuleSource": False})
    )
    env = {**os.environ, "PYRIGHT_PYTHON_FORCE_VERSION": os.environ.get("PYRIGHT_PYTHON_FORCE_VERSION", "")}
    env = {k: v for k, v in env.items() if v}
    proc = subprocess.run(
        [*_pyright(), "--outputjson", "--pythonpath", sys.executable, "-p", str(config), *map(str, paths)],
        capture_output=True,
        text=True,
        timeout=600,
        env=env,
        check=False,
    )
    try:
        return json.loads(proc.stdout)
    except json.JSONDecodeError:
        pytest.fail(f"pyright did not run: {proc.stdout[-2000:]} {proc.stderr[-2000:]}")


def _errors(report: dict) -> list[dict]:
    return [d for d in report["generalDiagnostics"] if d["severity"] == "error"]


def _literal(value) -> str:
    if isinstance(value, np.ndarray):
        return f"np.asarray({value.tolist()!r})"
    return repr(value)


def _call(name: str, options: dict) -> str:
    spec = REGISTRY[name]
    arrays = ", ".join(["y"] * len(spec.required_arrays))
    opts = "".join(f", {k}={_literal(v)}" for k, v in options.items())
    return f'jaxloss.{name}({arrays}{opts}, sample_weight=None, reduction="sum")'


def _user_script() -> str:
    lines = ["import jax.numpy as jnp", "import numpy as np", "import jaxloss", "", "y = jnp.zeros((4, 3))"]
    for name, spec in sorted(REGISTRY.items()):
        for example in spec.examples:
            lines.append(_call(name, dict(example.options)))
        lines.append(f"bound = jaxloss.get({name!r})")
        if not spec.direct:
            lines.append(f"g = jaxloss.grad(jaxloss.{name})")
    lines += [
        "value, dy = jaxloss.value_and_grad('mse')(y, y)",
        "safe = jaxloss.checked(jaxloss.huber)",
        "safe(y, y, delta=0.5)",
    ]
    return "\n".join(lines) + "\n"


def _misuses(name: str):
    """(source line, what pyright must flag) for each misuse of loss ``name``."""
    spec = REGISTRY[name]
    # The required options too (gaussian_nll's variance): a call missing one is flagged for that alone.
    required = "".join(f", {k}=y" for k, o in spec.options.items() if o.default is inspect.Parameter.empty)
    arrays = ", ".join(["y"] * len(spec.required_arrays)) + required
    yield f'jaxloss.{name}({arrays}, reduction="avg")', "reduction"
    yield f"jaxloss.{name}({arrays}, not_an_option=1.0)", "not_an_option"
    for option, declared in spec.options.items():
        kind = declared.kind
        if isinstance(kind, Static) and kind.kind == "bool":
            yield f'jaxloss.{name}({arrays}, {option}="yes")', option
        elif isinstance(kind, Static) and kind.kind == "name":  # a mesh axis name: any hashable, not a list
            yield f"jaxloss.{name}({arrays}, {option}=[1])", option
        elif isinstance(kind, Static):
            yield f'jaxloss.{name}({arrays}, {option}="1")', option
        elif isinstance(kind, (Scalar, PerClass, ArrayOption)):
            yield f'jaxloss.{name}({arrays}, {option}="0.5")', option


def _misuse_script() -> tuple[str, dict[int, tuple[str, str]]]:
    lines, expected = ["import jax.numpy as jnp", "import jaxloss", "", "y = jnp.zeros((4, 3))"], {}
    for name in sorted(REGISTRY):
        for source, what in _misuses(name):
            expected[len(lines)] = (source, what)
            lines.append(source)
    return "\n".join(lines) + "\n", expected


@pytest.fixture(scope="module")
def pyright_errors(tmp_path_factory) -> dict[str, list[dict]]:
    """pyright's errors per checked file, in one run over the package and both scripts (each
    run starts pyright and analyses jaxloss again)."""
    tmp_path = tmp_path_factory.mktemp("pyright")
    user, misuse = tmp_path / "user_script.py", tmp_path / "misuse.py"
    user.write_text(_user_script())
    misuse.write_text(_misuse_script()[0])
    by_file: dict[str, list[dict]] = {"package": [], "user_script": [], "misuse": []}
    for e in _errors(_run([PACKAGE, user, misuse], tmp_path)):
        path = Path(e["file"]).resolve()
        key = "user_script" if path == user.resolve() else "misuse" if path == misuse.resolve() else "package"
        by_file[key].append(e)
    return by_file


def test_the_package_type_checks(pyright_errors):
    errors = pyright_errors["package"]
    assert not errors, "\n".join(f"{e['file']}:{e['range']['start']['line'] + 1}: {e['message']}" for e in errors)


def test_a_user_script_calling_every_loss_type_checks(pyright_errors):
    errors = pyright_errors["user_script"]
    assert not errors, "\n".join(f"line {e['range']['start']['line'] + 1}: {e['message']}" for e in errors)


def test_a_script_misusing_every_loss_is_flagged_line_by_line(pyright_errors):
    _, expected = _misuse_script()
    flagged: dict[int, list[str]] = {}
    for e in pyright_errors["misuse"]:
        flagged.setdefault(e["range"]["start"]["line"], []).append(e["message"])
    missed = {line: source for line, (source, _) in expected.items() if line not in flagged}
    assert not missed, f"pyright accepted {len(missed)} misuses: {sorted(missed.values())[:10]}"
    for line, (source, what) in expected.items():
        assert any(what in m for m in flagged[line]), (source, flagged[line])
    assert set(flagged) <= set(expected), "no error outside the misused lines"
