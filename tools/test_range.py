"""Run the test suite against the built wheel on the declared floor and on the newest releases.

``make test-range`` runs this. It builds the wheel once, then for each target makes a
fresh venv, installs the wheel with its test extra, copies ``tests/`` (and
``benchmarks/``, which some tests import) into an otherwise empty directory and runs
pytest there, so every import of ``jaxloss`` resolves to the installed package and
never to the source tree. The doctests run from the installed modules too.

Targets:

- ``floor``: Python 3.11 with jax, jaxlib, optax and chex at exactly the lower bounds in
  ``pyproject.toml`` (and keras at the test extra's bound).
- ``newest``: Python 3.12 with the newest jax, jaxlib, optax, chex and keras on the
  package index (and the newest of every other dependency that its declared range allows).

Usage::

    python tools/test_range.py [floor] [newest] [--pins "jax==0.10.0 optax==0.2.8"] [--python 3.13]
                               [--workers N] [--all] [--select tests/test_hinge.py ...]
                               [--dir build/test-range] [--source DIR] [-- PYTEST ARGS]

``--pins`` replaces or adds exact versions for the floor target (used to bisect the
floor); ``--all`` runs the whole grid (``--run-slow``) instead of CI's sample. The
output of each run is kept in ``<dir>/<target>/pytest.log``. Exits 1 if any run fails.
"""

from __future__ import annotations

import argparse
import glob
import os
import re
import shutil
import subprocess
import sys
import time
import tomllib
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
# The source tree the wheel, tests/ and benchmarks/ come from (--source: e.g. a `git archive` of a commit).
ROOT = REPO
# The packages whose floor the project declares; the first four are runtime dependencies.
FLOOR_PACKAGES = ("jax", "jaxlib", "optax", "chex", "keras")
# torch is in the test extra for the benchmarks' PyTorch peer; no test imports it. The CPU
# build lies on this machine's disk for CPython 3.11 only: for another Python the index
# serves a multi-GB CUDA build, so the newest target installs the rest of the extra.
SKIP_ON_NEWEST = ("torch",)
REPORTED = ("jax", "jaxlib", "optax", "chex", "keras", "numpy", "flax", "equinox", "hypothesis", "pytest")


def pyenv_python(version_glob: str) -> str:
    try:
        root = subprocess.run(["pyenv", "root"], capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        root = os.path.expanduser("~/.pyenv")
    found = sorted(glob.glob(f"{root}/versions/{version_glob}/bin/python"), key=_version_key)
    if not found:
        sys.exit(f"test_range: no Python {version_glob} under {root}/versions (set PYTHON_FLOOR / PYTHON_NEWEST)")
    return found[-1]


def _version_key(path: str) -> tuple[int, ...]:
    version = Path(path).parents[1].name
    return tuple(int(p) for p in re.findall(r"\d+", version))


def _requirement_name(requirement: str) -> str:
    return re.split(r"[\s<>=!~\[;]", requirement, maxsplit=1)[0].lower()


def declared() -> tuple[list[str], list[str]]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    return project["dependencies"], project["optional-dependencies"]["test"]


def floor_pins(extra_pins: list[str]) -> dict[str, str]:
    runtime, test = declared()
    pins = {}
    for requirement in runtime + test:
        name = _requirement_name(requirement)
        if name in FLOOR_PACKAGES:
            bound = re.search(r">=\s*([\w.]+)", requirement)
            if bound is None:
                sys.exit(f"test_range: {requirement!r} in pyproject.toml has no >= bound to test")
            pins[name] = bound.group(1)
    for pin in extra_pins:
        name, _, version = pin.partition("==")
        pins[name.strip().lower()] = version.strip()
    return pins


def run(cmd: list[str], **kwargs) -> None:
    print("+", " ".join(str(c) for c in cmd), flush=True)
    subprocess.run(cmd, check=True, **kwargs)


def build_wheel(python: str, out: Path) -> Path:
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    run([python, "-m", "pip", "wheel", "--no-deps", "--wheel-dir", str(out), str(ROOT)])
    (wheel,) = out.glob("jaxloss-*.whl")
    return wheel


def make_venv(python: str, path: Path) -> str:
    shutil.rmtree(path, ignore_errors=True)
    run([python, "-m", "venv", str(path)])
    venv_python = str(path / "bin" / "python")
    run([venv_python, "-m", "pip", "install", "--upgrade", "pip"])
    return venv_python


def versions(venv_python: str) -> dict[str, str]:
    program = (
        "import importlib.metadata as m, json, sys\n"
        f"names = {list(REPORTED)!r}\n"
        "out = {'python': sys.version.split()[0]}\n"
        "for n in names:\n"
        "    try:\n"
        "        out[n] = m.version(n)\n"
        "    except m.PackageNotFoundError:\n"
        "        out[n] = '-'\n"
        "print(json.dumps(out))\n"
    )
    import json

    return json.loads(subprocess.run([venv_python, "-c", program], capture_output=True, text=True, check=True).stdout)


def summary_line(log: str) -> str:
    for line in reversed(log.splitlines()):
        if re.search(r"\b(passed|failed|errors?|skipped|deselected|no tests ran)\b.* in [\d.]+s", line):
            return line.strip("= ").strip()
    return "no pytest summary line"


def run_suite(
    venv_python: str, target_dir: Path, workers: int, run_all: bool, pytest_args: list[str], select: list[str]
):
    run_dir = target_dir / "run"
    shutil.rmtree(run_dir, ignore_errors=True)
    run_dir.mkdir(parents=True)
    shutil.copytree(ROOT / "tests", run_dir / "tests", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(ROOT / "benchmarks", run_dir / "benchmarks", ignore=shutil.ignore_patterns("__pycache__"))
    cmd = [venv_python, "-m", "pytest", "-p", "no:cacheprovider", "-q", "--doctest-modules"]
    if workers > 1:
        cmd += ["-n", str(workers), "--dist", "loadgroup"]
    if run_all:
        cmd.append("--run-slow")
    cmd += [*pytest_args, *(select or ["tests", "--pyargs", "jaxloss"])]
    env = {**os.environ, "KERAS_BACKEND": "jax", "PYTHONDONTWRITEBYTECODE": "1"}
    env.pop("PYTHONPATH", None)
    if not run_all:
        env["CI"] = "true"  # the same seeded sample and hypothesis profile as CI
    print(f"+ (cd {run_dir} && {' '.join(cmd)})", flush=True)
    start = time.perf_counter()
    with open(target_dir / "pytest.log", "w") as log:
        proc = subprocess.Popen(cmd, cwd=run_dir, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        assert proc.stdout is not None
        for line in proc.stdout:
            sys.stdout.write(line)
            log.write(line)
        rc = proc.wait()
    seconds = time.perf_counter() - start
    return rc, summary_line((target_dir / "pytest.log").read_text()), seconds


def install_floor(venv_python: str, wheel: Path, target_dir: Path, pins: dict[str, str], bisecting: bool) -> None:
    constraints = target_dir / "floor-constraints.txt"
    lines = [f"{name}=={version}" for name, version in pins.items()]
    # The CPU build of torch, from this machine's disk (see constraints.txt).
    lines += [line for line in (ROOT / "constraints.txt").read_text().splitlines() if line.startswith("torch==")]
    constraints.write_text("\n".join(lines) + "\n")
    print(f"floor pins: {' '.join(lines)}", flush=True)
    install = [venv_python, "-m", "pip", "install", "--only-binary", ":all:", "-c", str(constraints)]
    if bisecting:
        # Versions below the wheel's declared bounds: install its requirements by hand.
        runtime, test = declared()
        others = [r for r in runtime + test if _requirement_name(r) not in pins]
        run([venv_python, "-m", "pip", "install", "--no-deps", str(wheel)])
        run([*install, *others, *(f"{name}=={version}" for name, version in pins.items())])
    else:
        run([*install, f"{wheel}[test]"])


def install_newest(venv_python: str, wheel: Path) -> None:
    _, test = declared()
    extra = [r for r in test if _requirement_name(r) not in SKIP_ON_NEWEST]
    run([venv_python, "-m", "pip", "install", "--only-binary", ":all:", str(wheel), *extra])
    # Whatever the resolver picked first, take the newest release of every dependency that
    # its declared range allows (the test extra caps pytest).
    run([venv_python, "-m", "pip", "install", "--only-binary", ":all:", "--upgrade", *declared()[0], *extra])


def parse_args(argv: list[str]) -> tuple[argparse.Namespace, list[str]]:
    """The options, and what follows ``--`` (handed to pytest)."""
    pytest_args: list[str] = []
    if "--" in argv:
        at = argv.index("--")
        argv, pytest_args = argv[:at], argv[at + 1 :]
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    # Checked below, not with choices=: Python 3.11's argparse rejects an empty nargs="*" list against them.
    parser.add_argument("targets", nargs="*", metavar="{floor,newest}", help="default: both")
    parser.add_argument(
        "--pins", default="", help="exact versions for the floor target, e.g. 'jax==0.10.0 optax==0.2.8'"
    )
    parser.add_argument("--workers", type=int, default=int(os.environ.get("TEST_RANGE_WORKERS", "2")))
    parser.add_argument("--all", action="store_true", help="the whole grid (--run-slow), not CI's sample")
    parser.add_argument(
        "--select",
        nargs="+",
        default=[],
        help="test paths to run (default: tests and the doctests), e.g. tests/test_hinge.py",
    )
    parser.add_argument("--python", choices=["3.11", "3.12", "3.13"], help="the interpreter for every target")
    parser.add_argument("--dir", type=Path, default=REPO / "build" / "test-range")
    parser.add_argument("--source", type=Path, default=REPO, help="the source tree to test (default: this one)")
    args = parser.parse_args(argv)
    args.targets = args.targets or ["floor", "newest"]
    unknown = sorted(set(args.targets) - {"floor", "newest"})
    if unknown:
        parser.error(f"unknown targets {unknown} (choose from floor, newest)")
    return args, pytest_args


def main(argv: list[str] | None = None) -> int:
    args, pytest_args = parse_args(sys.argv[1:] if argv is None else argv)
    global ROOT
    ROOT = args.source.resolve()

    start = time.perf_counter()
    pythons = {
        "floor": os.environ.get("PYTHON_FLOOR") or pyenv_python(f"{args.python or '3.11'}.*"),
        "newest": os.environ.get("PYTHON_NEWEST") or pyenv_python(f"{args.python or '3.12'}.*"),
    }
    wheel = build_wheel(pythons[args.targets[0]], args.dir / "wheel")
    results = []
    for target in args.targets:
        target_dir = args.dir / target
        target_dir.mkdir(parents=True, exist_ok=True)
        venv_python = make_venv(pythons[target], target_dir / "venv")
        if target == "floor":
            install_floor(venv_python, wheel, target_dir, floor_pins(args.pins.split()), bisecting=bool(args.pins))
        else:
            install_newest(venv_python, wheel)
        found = versions(venv_python)
        print("versions: " + ", ".join(f"{k} {v}" for k, v in found.items()), flush=True)
        rc, line, seconds = run_suite(venv_python, target_dir, args.workers, args.all, pytest_args, args.select)
        results.append((target, found, rc, line, seconds))

    print(f"\ntest-range ({time.perf_counter() - start:.0f}s in all, wheel {wheel.name}):")
    for target, found, rc, line, seconds in results:
        pinned = ", ".join(f"{k} {found[k]}" for k in ("python", *FLOOR_PACKAGES))
        print(f"  {target:<7} {'ok  ' if rc == 0 else 'FAIL'} {pinned}: {line} ({seconds:.0f}s)")
    return 0 if all(result[2] == 0 for result in results) else 1


if __name__ == "__main__":
    sys.exit(main())
