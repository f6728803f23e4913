"""``python -m jaxloss bench``: a thin entry to the harness in the source tree's ``benchmarks/``.

The harness compares jaxloss with optax, Keras 3, plain autodiff and PyTorch; none
of those (nor matplotlib or tqdm) is a dependency of jaxloss, so it lives beside
the package, not in it, and imports each peer lazily.

On glibc, a fresh output buffer of a few MiB or more is an ``mmap`` that
page-faults on first touch, and a freed one goes back to the kernel: on CPU that
can cost more than the loss itself. The bench therefore re-executes itself with
malloc's thresholds raised and a single arena (XLA's worker threads would
otherwise allocate from secondary arenas, which ``mmap`` any block over 64 MiB
whatever the threshold), and says so in its output. These settings are read
once at process start, hence the re-exec.
"""

from __future__ import annotations

import importlib
import os
import sys
from pathlib import Path

MALLOC_ENV = {
    "MALLOC_MMAP_THRESHOLD_": str(1 << 32),
    "MALLOC_TRIM_THRESHOLD_": str(1 << 34),
    "MALLOC_ARENA_MAX": "1",
}


def _glibc() -> bool:
    try:
        return sys.platform.startswith("linux") and bool(os.confstr("CS_GNU_LIBC_VERSION"))
    except (AttributeError, ValueError, OSError):
        return False


def _is_command() -> bool:
    """True when this process is ``python -m jaxloss`` (not an import from tests or a notebook)."""
    main = sys.modules.get("__main__")
    spec = getattr(main, "__spec__", None)
    return getattr(spec, "name", None) == "jaxloss.__main__"


def _reexec_with_malloc_env(argv: list[str]) -> None:
    if not (_glibc() and _is_command()) or all(os.environ.get(k) == v for k, v in MALLOC_ENV.items()):
        return
    if os.environ.get("JAXLOSS_BENCH_REEXEC") == "0":
        return
    env = {**os.environ, **MALLOC_ENV}
    sys.stdout.flush()
    sys.stderr.flush()
    os.execve(sys.executable, [sys.executable, "-m", "jaxloss", "bench", *argv], env)


def load_harness():
    """``benchmarks.harness`` from the source tree that holds this package."""
    root = Path(__file__).resolve().parents[1]
    if not (root / "benchmarks" / "harness.py").is_file():
        raise ImportError(
            "python -m jaxloss bench runs from a source checkout: the harness lives in the repository's "
            f"benchmarks/ folder, which is not shipped in the wheel (looked in {root})."
        )
    if str(root) not in sys.path:
        sys.path.insert(0, str(root))
    module = importlib.import_module("benchmarks.harness")
    if Path(module.__file__ or "").resolve().parent != root / "benchmarks":
        raise ImportError(
            f"benchmarks.harness resolved to {module.__file__}, not this checkout's {root / 'benchmarks'}"
        )
    return module


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    _reexec_with_malloc_env(argv)
    try:
        harness = load_harness()
    except ImportError as err:
        print(f"jaxloss bench: {err}", file=sys.stderr)
        return 2
    return harness.main(argv)
