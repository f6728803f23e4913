"""``python -m benchmarks [options]``: the benchmark of every registered loss (see :mod:`benchmarks.harness`)."""

from __future__ import annotations

import sys

from .malloc import reexec_with_malloc_env


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    reexec_with_malloc_env(argv)  # before jax is imported: glibc reads its settings at process start
    from .harness import main as run

    return run(argv)


if __name__ == "__main__":
    sys.exit(main())
