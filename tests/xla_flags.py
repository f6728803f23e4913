"""The XLA flags the test suite runs with.

The suite compiles thousands of small programs and runs each once or twice, so XLA:CPU's
compile time is most of its time. FAST_COMPILE_FLAGS cut it about fourfold: LLVM without
optimisation, and the loop emitters instead of the fusion emitters. The HLO a test compiles is
the same, only its machine code differs; the suite passes with XLA's own settings too
(``JAXLOSS_TEST_XLA_DEFAULTS=1``).
"""

from __future__ import annotations

import os
import subprocess
import sys

FAST_COMPILE_FLAGS = ("--xla_cpu_use_fusion_emitters=false", "--xla_backend_optimization_level=0")
# Set to the flags chosen, so xdist workers and the tests' subprocesses (which inherit the
# environment) do not choose again.
CHOSEN = "JAXLOSS_TEST_FAST_COMPILE"


def accepted(flags: list[str] | tuple[str, ...], base: str = "") -> list[str]:
    """The flags this jaxlib knows: one that it does not aborts the process at start, so they
    are tried in a fresh interpreter, all at once and then, if that fails, one by one."""

    def starts(candidate) -> bool:
        env = {**os.environ, "XLA_FLAGS": " ".join([base, *candidate]).strip(), "JAX_PLATFORMS": "cpu"}
        probe = [sys.executable, "-c", "import jax; jax.devices()"]
        return subprocess.run(probe, env=env, capture_output=True, check=False, timeout=120).returncode == 0

    return list(flags) if starts(flags) else [f for f in flags if starts([f])]


def use_fast_compile_flags() -> None:
    """Add the accepted FAST_COMPILE_FLAGS to XLA_FLAGS, once per run."""
    if os.environ.get("JAXLOSS_TEST_XLA_DEFAULTS") or CHOSEN in os.environ:
        return
    current = os.environ.get("XLA_FLAGS", "")
    flags = accepted(FAST_COMPILE_FLAGS, current)
    os.environ["XLA_FLAGS"] = " ".join([current, *flags]).strip()
    os.environ[CHOSEN] = " ".join(flags)
