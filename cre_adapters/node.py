"""A node process: ``python -m vouch.cre_adapters.node --don FILE --node NAME [--password-file F]``.

What a node host runs (``vouch node run`` does the same through the CLI). It
imports only what a node needs: the DON config, the keystore, the node's
logic and its HTTP app (uvicorn), no CLI, web3 or model client. The
keystore password: VOUCH_KEY_PASSWORDS__<KEY> (KEY = the keystore's name in
upper case, ``-`` as ``_``), ``--password-file``, VOUCH_KEYSTORE_PASSWORD, or
the keystore's own ``<keystore>.password`` file (0600).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from ._don import DonConfig
from ._errors import CreError
from ._keystore import load_key, password_file, read_password


def node_password(keystore: Path, given: Path | None = None) -> str:
    """The node key's password, looked up in the documented order.

    Raises:
        KeystoreError: none of them is there.
    """
    key_id = keystore.stem.replace("-", "_").upper()
    own = os.environ.get(f"VOUCH_KEY_PASSWORDS__{key_id}")
    if own:
        return own
    if given is not None:
        return read_password(given, None)
    shared = os.environ.get("VOUCH_KEYSTORE_PASSWORD")
    if shared:
        return shared
    return read_password(password_file(keystore), None, private=True)


def run(don_file: Path, name: str, password: Path | None = None) -> None:
    """Load node ``name``'s key from its keystore and serve it (blocks).

    Raises:
        CreError: the config, the keystore, its password or the TLS key is wrong.
    """
    from ._node_app import serve

    don = DonConfig.load(don_file)
    keystore = don.node(name).keystore
    serve(don, name, load_key(keystore, node_password(keystore, password)))


def main(argv: list[str] | None = None) -> int:
    """Parse the command line and run the node; errors are one line on stderr, exit 1."""
    parser = argparse.ArgumentParser(prog="python -m vouch.cre_adapters.node", description=__doc__)
    parser.add_argument("--don", type=Path, required=True, help="the DON config file")
    parser.add_argument("--node", required=True, help="this node's name in the DON config")
    parser.add_argument("--password-file", type=Path, help="file with the keystore password")
    args = parser.parse_args(argv)
    try:
        run(args.don, args.node, args.password_file)
    except CreError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
