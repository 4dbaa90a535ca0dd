"""Run the benchmark from a checkout: `python benchmarks/run.py [--quick] [--json PATH]`.

The same as `python -m mytorch bench`; the workloads live in mytorch/bench/ so the command works
from an installed package too.
"""

import sys

from mytorch.cli import main

if __name__ == "__main__":
    sys.exit(main(["bench", *sys.argv[1:]]))
