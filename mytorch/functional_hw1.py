"""`mytorch.functional_hw1`: the 2024 HW1 handout imports its rules from here (the code: mytorch/course)."""

from mytorch.course.functional_hw1 import *  # noqa: F403 - the handout imports everything from here
from mytorch.course.functional_hw1 import __all__  # noqa: F401
