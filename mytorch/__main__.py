"""`python -m mytorch ...`: see mytorch.cli."""

import sys

from mytorch.cli import main

sys.exit(main())
