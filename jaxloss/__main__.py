"""``python -m jaxloss verify | bench``."""

from __future__ import annotations

import sys


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    commands = ("verify", "bench")
    if not argv or argv[0] not in commands:
        print(f"usage: python -m jaxloss {{{'|'.join(commands)}}} [options]  (--help after a command for its options)")
        return 2
    if argv[0] == "verify":
        from ._verify import main as run
    else:
        from ._bench import main as run
    return run(argv[1:])


if __name__ == "__main__":
    sys.exit(main())
