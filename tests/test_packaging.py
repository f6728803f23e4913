"""The wheel ships what a user needs: the package, its type marker, the license and true metadata."""

from __future__ import annotations

import email
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
# Its tests share one module fixture: one worker runs them all (make test: --dist loadgroup).
pytestmark = pytest.mark.xdist_group("packaging")


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> zipfile.ZipFile:
    if not (ROOT / "pyproject.toml").is_file():
        pytest.skip("no pyproject.toml beside this copy of tests/ (the installed-wheel run)")
    pytest.importorskip("hatchling", reason="building the wheel offline needs hatchling installed")
    out = tmp_path_factory.mktemp("wheel")
    # No build isolation: nothing is fetched, the installed hatchling builds it.
    cmd = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-w", str(out), str(ROOT)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    (path,) = out.glob("jaxloss-*.whl")
    return zipfile.ZipFile(path)


def _metadata(wheel: zipfile.ZipFile) -> email.message.Message:
    (name,) = [n for n in wheel.namelist() if n.endswith(".dist-info/METADATA")]
    return email.message_from_bytes(wheel.read(name))


def test_wheel_holds_the_package_and_the_license(wheel):
    names = set(wheel.namelist())
    assert "jaxloss/__init__.py" in names and "jaxloss/py.typed" in names
    (license_file,) = [n for n in names if n.endswith(".dist-info/licenses/LICENSE")]
    assert wheel.read(license_file) == (ROOT / "LICENSE").read_bytes()
    assert b"Apache License" in wheel.read(license_file) and b"Version 2.0" in wheel.read(license_file)
    # Only the library: tests, benchmarks and examples stay in the repository.
    assert not {n.split("/", 1)[0] for n in names} & {"tests", "benchmarks", "examples", "docs"}


def test_metadata_declares_license_python_and_floor(wheel):
    meta = _metadata(wheel)
    assert meta["License-Expression"] == "Apache-2.0"
    assert meta.get_all("License-File") == ["LICENSE"]
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert meta["Requires-Python"] == project["requires-python"] == ">=3.11"
    classifiers = set(meta.get_all("Classifier"))
    assert {f"Programming Language :: Python :: 3.{minor}" for minor in (11, 12, 13)} <= classifiers
    assert any(c.startswith("Development Status ::") for c in classifiers)
    requires = {r.split(";")[0].replace(" ", "") for r in meta.get_all("Requires-Dist") if "extra ==" not in r}
    assert requires == {r.replace(" ", "") for r in project["dependencies"]}
    assert {r.split(">=")[0] for r in requires} == {"jax", "jaxlib", "optax", "chex"}
    assert all(">=" in r for r in requires), requires  # every runtime dependency has a tested floor
