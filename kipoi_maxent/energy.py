"""The target distribution, eq. (9): ``p(x) ∝ exp(−β d(Φ(x0), Φ(x)) + μ N(x))``.

Pure functions on numpy arrays. ``Φ`` is the penultimate-layer activation vector (k units),
``d`` the Euclidean distance weighted by the output layer's weights (METHOD §1).
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

from kipoi_maxent.sequence import gc_count


def output_unit_weights(output_kernel: np.ndarray, output_units: Sequence[int]) -> np.ndarray:
    """Distance weights ``w`` from the output layer's kernel.

    Parameters
    ----------
    output_kernel : np.ndarray, shape (k, n_outputs)
        Weights from the k penultimate units into the output units.
    output_units : sequence of int
        ``[o]``: ``w_i = W[i, o]``; ``[a, b]``: ``w_i = W[i, a] − W[i, b]`` (log-odds of a over b).

    Returns
    -------
    np.ndarray, shape (k,), float64
    """
    kernel = np.asarray(output_kernel, dtype=np.float64)
    if kernel.ndim != 2:
        raise ValueError(f"the output kernel must be 2-D (k, n_outputs), got shape {kernel.shape}")
    n_outputs = kernel.shape[1]
    if len(output_units) not in (1, 2):
        raise ValueError(f"output_units must be [o] or [a, b], got {list(output_units)}")
    for unit in output_units:
        if not 0 <= unit < n_outputs:
            raise ValueError(
                f"output unit {unit} is out of range: the output layer has {n_outputs} unit(s) "
                f"(valid: 0..{n_outputs - 1})"
            )
    if len(output_units) == 1:
        return kernel[:, output_units[0]].copy()
    a, b = output_units
    return kernel[:, a] - kernel[:, b]


def weighted_distance(reference: np.ndarray, activations: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """``d(Φ(x0), Φ(x)) = sqrt(Σ_i w_i² (Φ_i(x0) − Φ_i(x))²)``.

    Parameters
    ----------
    reference : np.ndarray, shape (k,) or broadcastable to ``activations``
        Φ(x0).
    activations : np.ndarray, shape (..., k)
        Φ(x) for each sequence.
    weights : np.ndarray, shape (k,)

    Returns
    -------
    np.ndarray, shape (...,), float64
    """
    diff = np.subtract(activations, reference, dtype=np.float64)
    diff *= weights  # in place: on every MCMC step, temporaries cost more than the arithmetic
    return np.sqrt(np.einsum("...k,...k->...", diff, diff))


def log_weight(distance: np.ndarray, n_gc: np.ndarray, beta: float, mu: float) -> np.ndarray:
    """Unnormalised log-probability of eq. (9): ``−β d + μ N``."""
    return -beta * np.asarray(distance, dtype=np.float64) + mu * np.asarray(n_gc, dtype=np.float64)


def exact_distribution(
    penultimate, reference_codes: np.ndarray, weights: np.ndarray, beta: float, mu: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Eq. (9) by full enumeration of the ``4**L`` sequences (for tests and tiny ``L``).

    Parameters
    ----------
    penultimate : callable
        ``(n, L) int8 codes -> (n, k)`` penultimate activations.
    reference_codes : np.ndarray, shape (L,)
        x0.

    Returns
    -------
    sequences : np.ndarray, shape (4**L, L), int8
    probabilities : np.ndarray, shape (4**L,), float64
    distances : np.ndarray, shape (4**L,), float64
    """
    length = len(reference_codes)
    if length > 8:
        raise ValueError(f"exact enumeration is for L <= 8, got L = {length}")
    grid = np.indices((4,) * length).reshape(length, -1).T.astype(np.int8)
    reference = np.asarray(penultimate(np.asarray(reference_codes, dtype=np.int8)[None]))[0]
    distances = weighted_distance(reference, penultimate(grid), weights)
    logp = log_weight(distances, gc_count(grid), beta, mu)
    p = np.exp(logp - logp.max())
    return grid, p / p.sum(), distances
