"""python -m ue: the focus-ue command line."""

import sys

from ue.cli import main

sys.exit(main())
