"""``python -m gkd.cli``: the same as ``gkd``."""
import sys

from . import main

sys.exit(main())
