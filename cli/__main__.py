"""``python -m cli ...``: the same as ``kehoach ...``."""

import sys

from cli.main import main

sys.exit(main())
