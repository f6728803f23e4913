"""``python -m jaxloss verify | bench | report``."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

COMMANDS = ("verify", "bench", "report")

NO_BENCHMARKS = (
    "jaxloss bench: the benchmarks are the `benchmarks` package of jaxloss's source repository, which the "
    "wheel does not ship, and no such package is importable here. From a source checkout, run "
    "`python -m benchmarks` (or `python -m jaxloss bench`) in the repository's root."
)


def bench(argv: list[str]) -> int:
    """Hand over to ``python -m benchmarks`` by module name (the library never imports it)."""
    from ._report import benchmarks_location

    location = benchmarks_location()
    if location is None:
        print(NO_BENCHMARKS, file=sys.stderr)
        return 2
    checkout = Path(__file__).resolve().parents[1]
    if location.parent != checkout:
        # Another checkout's harness would benchmark whichever jaxloss comes first on its path.
        print(
            f"jaxloss bench: the importable benchmarks package ({location}) is not beside this jaxloss "
            f"({checkout / 'jaxloss'}). Run `python -m benchmarks` in the root of the checkout to benchmark.",
            file=sys.stderr,
        )
        return 2
    return importlib.import_module("benchmarks.__main__").main(argv)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0] not in COMMANDS:
        print(f"usage: python -m jaxloss {{{'|'.join(COMMANDS)}}} [options]  (--help after a command for its options)")
        return 2
    command, rest = argv[0], list(argv[1:])
    if command == "bench":
        return bench(rest)
    if command == "verify":
        from ._verify import main as run
    else:
        from ._report import main as run
    return run(rest)


if __name__ == "__main__":
    sys.exit(main())
