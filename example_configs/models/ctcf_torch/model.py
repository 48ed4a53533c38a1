"""The CTCF example network in PyTorch (Finnegan & Song's CTCF architecture, METHOD.md §9).

Kipoi loads it through ``model.yaml`` (``module_file: model.py``, ``module_class: CtcfCnn``) and
then the trained ``state_dict`` in ``model.pth``. Input ``(n, 4, 101)``: one-hot, channels
first, channel order A, C, G, T.
"""
from collections import OrderedDict

from torch import nn

SEQ_LEN = 101
FILTERS, WIDTH, HIDDEN = 64, 24, 100


class CtcfCnn(nn.Sequential):
    """Conv1d(64 × 24, ReLU) -> Flatten -> Linear(100, ReLU) -> Dropout(0.1) -> Linear(2) -> Softmax.

    Module names (``named_modules()`` paths) follow the Keras example's layer names; the
    penultimate layer of the maximum-entropy method is ``hidden_relu`` (100 units). Output
    index 1 is P(CTCF-bound).
    """

    def __init__(self):
        super().__init__(OrderedDict([
            ("conv", nn.Conv1d(4, FILTERS, WIDTH)),
            ("conv_relu", nn.ReLU()),
            ("flatten", nn.Flatten()),
            ("hidden", nn.Linear(FILTERS * (SEQ_LEN - WIDTH + 1), HIDDEN)),
            ("hidden_relu", nn.ReLU()),
            ("dropout", nn.Dropout(0.1)),
            ("output", nn.Linear(HIDDEN, 2)),
            ("softmax", nn.Softmax(dim=1)),
        ]))
