"""`python -m mytorch ...`: see mytorch.cli."""

import os
import sys

if sys.argv[1:2] == ["check"]:
    # `check` makes thousands of calls on tiny arrays (a 3x3 triangular solve, a small conv), one
    # process per core: OpenBLAS' and OpenMP's threads only wake and wait on each other there (the
    # solve took ten times as long), so one thread each. Read when NumPy and torch load: set first.
    for variable in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS"):
        os.environ.setdefault(variable, "1")

from mytorch.cli import main  # noqa: E402  (after the thread settings above)

sys.exit(main())
