"""numba kernels of the incremental engine: the per-step loops over the mutated window.

Activation codes: 0 linear, 1 relu, 2 sigmoid, 3 tanh (see :data:`ACTIVATION_CODES`).
"""
import os

import numba
import numpy as np

# numba's OpenMP layer spin-waits after each parallel loop and steals the cores from the
# BLAS threads of the matrix products that follow (measured: 56k vs 87k proposals/s);
# the workqueue layer sleeps. A user's explicit choice wins.
if "NUMBA_THREADING_LAYER" not in os.environ:
    numba.config.THREADING_LAYER = "workqueue"

ACTIVATION_CODES = {"linear": 0, "relu": 1, "sigmoid": 2, "tanh": 3}


@numba.njit(inline="always", cache=True, error_model="numpy")
def _activate(x, kind):
    # float32 constants: a float64 one in any branch would make every branch float64 and
    # keep the kernels' loops from vectorising
    one = np.float32(1.0)
    if kind == 1:
        return x if x > 0 else np.float32(0.0)
    if kind == 2:
        return one / (one + np.exp(-x))
    if kind == 3:
        return np.tanh(x)
    return x


@numba.njit(parallel=True, cache=True, error_model="numpy")
def window_activation_deltas(z, taps, window, current, bases, kind, delta_a):
    """Change of the activated convolution outputs of each chain's mutated window.

    Parameters
    ----------
    z : (n, P + 2(K−1), F) float32
        Padded convolution pre-activations of the chains.
    taps : (4, K, F) float32
        Filter column of each base code at each window row.
    window : (n,) int
        First padded row of each chain's window.
    current : (n,) int8, bases : (n, m) int8
        Base now at the position, and the m alternatives.
    kind : int
        Activation code.
    delta_a : (n, m, K·F) float32, out
        ``act(z + Δz) − act(z)`` per alternative.
    """
    width, filters = taps.shape[1], taps.shape[2]
    for chain in numba.prange(len(window)):
        old_taps = taps[current[chain]]
        for row in range(width):
            before_row = z[chain, window[chain] + row]
            for alt in range(bases.shape[1]):
                new_taps = taps[bases[chain, alt]]
                out = delta_a[chain, alt, row * filters: (row + 1) * filters]
                for f in range(filters):  # innermost and contiguous: vectorised
                    before = before_row[f]
                    after = before + new_taps[row, f] - old_taps[row, f]
                    out[f] = _activate(after, kind) - _activate(before, kind)


@numba.njit(parallel=True, cache=True, error_model="numpy")
def apply_window_change(z, taps, window, old, new, chains):
    """Add the window change of writing ``new[i]`` over ``old[i]`` to ``z`` for ``chains[i]``."""
    width, filters = taps.shape[1], taps.shape[2]
    for i in numba.prange(len(chains)):
        chain = chains[i]
        for row in range(width):
            for f in range(filters):
                z[chain, window[chain] + row, f] += taps[new[i], row, f] - taps[old[i], row, f]
