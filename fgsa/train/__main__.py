"""``python -m fgsa.train`` (see fgsa.train.cli)."""

import sys

from fgsa.train.cli import main

sys.exit(main())
