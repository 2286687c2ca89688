"""The `vouch` console script: Ctrl-C while the CLI is still importing exits 130 quietly.

Importing the CLI (web3, pydantic, the agents and adapters) takes a second or
two; a Ctrl-C then would print a traceback from deep inside an import. This
module imports nothing heavy itself (``vouch/__init__`` is lazy), so the
console script reaches ``main`` first.
"""

from __future__ import annotations

import os
import sys


def main() -> None:
    """Import the CLI, then run ``vouch.cli.main``; Ctrl-C during the import exits 130."""
    try:
        from .cli import main as cli_main
    except KeyboardInterrupt:
        sys.stderr.write("interrupted\n")
        sys.stderr.flush()
        os._exit(130)
    cli_main()


if __name__ == "__main__":  # pragma: no cover - `python -m vouch` goes through __main__
    main()
