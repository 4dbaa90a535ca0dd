"""Layers and losses, each a composition of primitives (no hand-written gradient code).

>>> from mytorch import nn
>>> model = nn.Sequential(nn.Linear(4, 16), nn.Sigmoid(), nn.Linear(16, 3))
>>> [p.shape for p in model.parameters()]
[(16, 4), (16,), (3, 16), (3,)]
"""

from mytorch.nn import functional
from mytorch.nn.activation import GELU, ReLU, Sigmoid, Softmax, Tanh
from mytorch.nn.batchnorm import BatchNorm1d
from mytorch.nn.conv import Conv1d, Conv2d, MaxPool2d
from mytorch.nn.linear import Dropout, Flatten, Identity, Linear
from mytorch.nn.loss import BCEWithLogitsLoss, CrossEntropyLoss, CTCLoss, MSELoss, SoftmaxCrossEntropy
from mytorch.nn.module import Module, Sequential
from mytorch.nn.resampling import Downsample1d, Downsample2d, Upsample1d, Upsample2d
from mytorch.nn.rnn import GRUCell, RNNCell

__all__ = [
    "BCEWithLogitsLoss",
    "BatchNorm1d",
    "Conv1d",
    "Conv2d",
    "CTCLoss",
    "CrossEntropyLoss",
    "Downsample1d",
    "Downsample2d",
    "Dropout",
    "Flatten",
    "GELU",
    "GRUCell",
    "Identity",
    "Linear",
    "MSELoss",
    "MaxPool2d",
    "Module",
    "RNNCell",
    "ReLU",
    "Sequential",
    "Sigmoid",
    "Softmax",
    "SoftmaxCrossEntropy",
    "Tanh",
    "Upsample1d",
    "Upsample2d",
    "functional",
]
