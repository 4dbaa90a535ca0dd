"""RNNCell and GRUCell: one step of a recurrent network, `h' = cell(x, h)`, as in PyTorch.

    RNN:  h' = tanh(x W_ihᵀ + b_ih + h W_hhᵀ + b_hh)
    GRU:  r = σ(x W_irᵀ + b_ir + h W_hrᵀ + b_hr)          reset gate
          z = σ(x W_izᵀ + b_iz + h W_hzᵀ + b_hz)          update gate
          n = tanh(x W_inᵀ + b_in + r ⊙ (h W_hnᵀ + b_hn))  candidate
          h' = (1 - z) ⊙ n + z ⊙ h

The GRU's three gates are stacked in one weight (r, z, n), as PyTorch stores them.
"""

from __future__ import annotations

import numpy as np

from mytorch import functional as F
from mytorch.autograd_engine import Autograd
from mytorch.nn.linear import uniform
from mytorch.nn.module import Module


class _Cell(Module):
    gates = 1

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True,
                 autograd_engine: Autograd | None = None) -> None:
        super().__init__(autograd_engine)
        self.input_size, self.hidden_size = input_size, hidden_size
        bound = 1 / np.sqrt(hidden_size)  # PyTorch: every weight and bias from U(-1/√H, 1/√H)
        rows = self.gates * hidden_size
        self.register_parameter("weight_ih", uniform(bound, (rows, input_size)))
        self.register_parameter("weight_hh", uniform(bound, (rows, hidden_size)))
        self.register_parameter("bias_ih", uniform(bound, (rows,)) if bias else None)
        self.register_parameter("bias_hh", uniform(bound, (rows,)) if bias else None)

    def _initial_state(self, x: np.ndarray, h: np.ndarray | None) -> np.ndarray:
        shape = np.shape(x)
        if len(shape) not in (1, 2) or shape[-1] != self.input_size:
            raise ValueError(
                f"{type(self).__name__}: expected input (N, {self.input_size}) or ({self.input_size},), "
                f"got shape {shape}"
            )
        state_shape = shape[:-1] + (self.hidden_size,)
        if h is None:
            return np.zeros(state_shape, dtype=x.dtype)
        if np.shape(h) != state_shape:
            raise ValueError(
                f"{type(self).__name__}: hidden state of shape {np.shape(h)}, expected {state_shape}"
            )
        return h

    def extra_repr(self) -> str:
        return f"{self.input_size}, {self.hidden_size}"


class RNNCell(_Cell):
    """An Elman RNN cell (tanh, or nonlinearity="relu").

    >>> cell = RNNCell(3, 5)
    >>> cell(np.ones((2, 3))).shape
    (2, 5)
    """

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True, nonlinearity: str = "tanh",
                 autograd_engine: Autograd | None = None) -> None:
        super().__init__(input_size, hidden_size, bias, autograd_engine)
        if nonlinearity not in ("tanh", "relu"):
            raise ValueError(f"RNNCell: nonlinearity must be 'tanh' or 'relu', got {nonlinearity!r}")
        self.nonlinearity = nonlinearity

    def forward(self, x: np.ndarray, h: np.ndarray | None = None) -> np.ndarray:
        h = self._initial_state(x, h)
        z = F.add(F.linear(x, self.weight_ih, self.bias_ih), F.linear(h, self.weight_hh, self.bias_hh))
        return F.tanh(z) if self.nonlinearity == "tanh" else F.relu(z)


class GRUCell(_Cell):
    """A gated recurrent unit cell.

    >>> cell = GRUCell(3, 5)
    >>> [p.shape for p in cell.parameters()]
    [(15, 3), (15, 5), (15,), (15,)]
    """

    gates = 3

    def forward(self, x: np.ndarray, h: np.ndarray | None = None) -> np.ndarray:
        h = self._initial_state(x, h)
        from_input = F.linear(x, self.weight_ih, self.bias_ih)
        from_state = F.linear(h, self.weight_hh, self.bias_hh)
        size = self.hidden_size

        def gate(a: np.ndarray, k: int) -> np.ndarray:
            return F.getitem(a, (Ellipsis, slice(k * size, (k + 1) * size)))

        r = F.sigmoid(F.add(gate(from_input, 0), gate(from_state, 0)))
        z = F.sigmoid(F.add(gate(from_input, 1), gate(from_state, 1)))
        n = F.tanh(F.add(gate(from_input, 2), F.mul(r, gate(from_state, 2))))
        return F.add(F.mul(F.sub(1.0, z), n), F.mul(z, h))
