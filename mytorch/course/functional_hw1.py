"""`mytorch.functional_hw1`: the rules under the module name of the course's 2024 HW1 handout.

The same functions as `mytorch.nn.functional` (re-exported, not copied): `add_backward`,
`matmul_backward`, `max_backward`, ... for `Autograd.add_operation`, and the primitives themselves.

>>> import mytorch.functional_hw1 as hw1, mytorch.nn.functional as nnf
>>> hw1.matmul_backward is nnf.matmul_backward
True
"""

from mytorch.nn.functional import *  # noqa: F403 - the handout imports everything from here
from mytorch.nn.functional import __all__  # noqa: F401
