"""What the fast engines share, below them all: the layer maths they support (activations,
layers that are the identity at inference), the error naming an unsupported model, and the
per-input helpers that keep their arithmetic independent of the batch.
"""
from __future__ import annotations

import numpy as np

#: Supported activations, by Keras name.
ACTIVATIONS = {
    "linear": lambda x: x,
    "relu": lambda x: np.maximum(x, 0),
    "sigmoid": lambda x: 1.0 / (1.0 + np.exp(-x)),
    "tanh": np.tanh,
}
#: Layers that are the identity at inference and may sit between the dense layer and Φ.
INFERENCE_IDENTITY = ("Dropout", "SpatialDropout1D", "GaussianNoise", "GaussianDropout", "AlphaDropout")


class UnsupportedModel(ValueError):
    """The incremental engine cannot run this model (the message says why)."""


def activation_name(layer) -> str:
    name = getattr(layer.activation, "__name__", str(layer.activation))
    if name not in ACTIVATIONS:
        raise UnsupportedModel(f"layer {layer.name!r} has activation {name!r}; supported: {', '.join(ACTIVATIONS)}")
    return name


def chains_per_input_of(chains: int, chains_per_input: int | None) -> int:
    """Validated chains per input of a :meth:`start` call of ``chains`` chains (default: all)."""
    if chains_per_input is None:
        return max(chains, 1)
    if chains_per_input < 1 or chains % chains_per_input:
        raise ValueError(f"chains_per_input ({chains_per_input}) must divide the number of chains ({chains})")
    return chains_per_input


def per_input_window_products(delta, dense_rows, first_rows, chains_per_input, out) -> None:
    """``out[c] = delta[c] @ dense_rows[first_rows[c] : first_rows[c] + W]`` (rows flattened).

    One matrix product of a fixed shape per input — its chains share the window, hence the
    rows — stacked over the inputs sharing a window, so an input's rounding does not depend on
    the batch (BLAS rounds a row differently at another position or matrix size); a chain
    whose input's chains do not share a window (direct engine use) gets its own product.

    Parameters
    ----------
    delta : (n, m, W·F) float32
        Change of the W flattened rows, per chain and alternative.
    dense_rows : (R, F, H) float32
        The Dense kernel, one ``(F, H)`` block per flattened row.
    first_rows : (n,) int
        First row of each chain's window.
    chains_per_input : int
    out : (n, m, H) float32, out
    """
    n, m, size = delta.shape
    window = size // dense_rows.shape[1]
    by_input = first_rows.reshape(-1, chains_per_input)
    shared = np.all(by_input == by_input[:, :1], axis=1)
    per_input_delta = delta.reshape(len(by_input), chains_per_input * m, size)
    per_input_out = out.reshape(len(by_input), chains_per_input * m, -1)
    for first in np.unique(by_input[shared, 0]):
        rows = dense_rows[first: first + window].reshape(size, -1)
        chosen = np.flatnonzero(shared & (by_input[:, 0] == first))
        if len(chosen) == len(by_input):
            np.matmul(per_input_delta, rows, out=per_input_out)
        else:
            per_input_out[chosen] = np.matmul(per_input_delta[chosen], rows)
    for chain in np.flatnonzero(np.repeat(~shared, chains_per_input)):
        out[chain] = delta[chain] @ dense_rows[first_rows[chain]: first_rows[chain] + window].reshape(size, -1)
