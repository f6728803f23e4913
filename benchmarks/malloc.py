"""glibc malloc settings for the benchmark process, applied by re-executing it.

On glibc, a fresh output buffer of a few MiB or more is an ``mmap`` that
page-faults on first touch, and a freed one goes back to the kernel: on CPU that
can cost more than the loss itself. ``python -m benchmarks`` therefore re-executes
itself with malloc's thresholds raised and a single arena (XLA's worker threads
would otherwise allocate from secondary arenas, which ``mmap`` any block over
64 MiB whatever the threshold), and says so in its output. glibc reads these
settings once at process start, hence the re-exec.
"""

from __future__ import annotations

import ctypes
import os
import sys
from pathlib import Path

MALLOC_ENV = {
    "MALLOC_MMAP_THRESHOLD_": str(1 << 32),
    "MALLOC_TRIM_THRESHOLD_": str(1 << 34),
    "MALLOC_ARENA_MAX": "1",
}
# Set to "0" to keep the current process (a profiler attached to it, say).
REEXEC_VARIABLE = "JAXLOSS_BENCH_REEXEC"
# The entry points whose process is the benchmark's own (not a test or a notebook importing it).
COMMANDS = ("benchmarks.__main__", "jaxloss.__main__")


def glibc() -> bool:
    try:
        return sys.platform.startswith("linux") and bool(os.confstr("CS_GNU_LIBC_VERSION"))
    except (AttributeError, ValueError, OSError):
        return False


def is_command() -> bool:
    """True when this process is ``python -m benchmarks`` or ``python -m jaxloss bench``."""
    main = sys.modules.get("__main__")
    spec = getattr(main, "__spec__", None)
    return getattr(spec, "name", None) in COMMANDS


def settings_in_effect() -> bool:
    return all(os.environ.get(k) == v for k, v in MALLOC_ENV.items())


def reexec_with_malloc_env(argv: list[str]) -> None:
    """Replace this process by ``python -m benchmarks *argv`` with :data:`MALLOC_ENV` set, when it is
    the benchmark command on glibc and the settings are not in effect yet; otherwise return."""
    if not (glibc() and is_command()) or settings_in_effect() or os.environ.get(REEXEC_VARIABLE) == "0":
        return
    env = {**os.environ, **MALLOC_ENV}
    # The re-executed process must import this very checkout, whatever its working directory.
    root = str(Path(__file__).resolve().parents[1])
    paths = [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p]
    if root not in paths:
        env["PYTHONPATH"] = os.pathsep.join([root, *paths])
    sys.stdout.flush()
    sys.stderr.flush()
    os.execve(sys.executable, [sys.executable, "-m", "benchmarks", *argv], env)


def mmapped_blocks() -> dict[str, int] | None:
    """glibc's count of live mmapped blocks (what the malloc settings aim to keep at 0)."""
    if not glibc():
        return None
    try:
        libc = ctypes.CDLL("libc.so.6")

        class MallInfo2(ctypes.Structure):
            _fields_ = [
                (name, ctypes.c_size_t)
                for name in "arena ordblks smblks hblks hblkhd usmblks fsmblks uordblks fordblks keepcost".split()
            ]

        libc.mallinfo2.restype = MallInfo2
        info = libc.mallinfo2()
    except (OSError, AttributeError):
        return None
    return {"blocks": int(info.hblks), "bytes": int(info.hblkhd), "heap_bytes": int(info.arena)}
