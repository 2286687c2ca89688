"""``python -m verifier audit|replay|export|import``: see ``verifier._cli``."""

import sys

from ._cli import main

sys.exit(main())
