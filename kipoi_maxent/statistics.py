"""What is read off the samples (METHOD §4): frequencies, per-base KL importance, motif calls.

Pure functions on numpy arrays.
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np

from kipoi_maxent._validation import check_number


class MotifCall(NamedTuple):
    """The window of largest mean importance: positions ``[start, end)`` of the input."""

    start: int
    end: int
    score: float


def nucleotide_frequencies(samples: np.ndarray) -> np.ndarray:
    """Per-position base frequencies.

    Parameters
    ----------
    samples : np.ndarray, shape (..., L), int8
        Codes 0..3 (A, C, G, T); -1 (unknown, never sampled) counts as no base.

    Returns
    -------
    np.ndarray, shape (L, 4), float64
        Rows sum to 1, or to 0 at unknown positions.
    """
    flat = np.asarray(samples).reshape(-1, np.shape(samples)[-1])
    counts = np.stack([(flat == code).sum(axis=0) for code in range(4)], axis=1)
    return counts / max(len(flat), 1)


def kl_divergence(frequencies: np.ndarray, background: np.ndarray) -> np.ndarray:
    """Per-position KL divergence (bits) of the sample frequencies from the background q.

    Parameters
    ----------
    frequencies : np.ndarray, shape (L, 4)
    background : np.ndarray, shape (4,)
        q's single-site marginal (:func:`kipoi_maxent.sequence.background_probabilities`).

    Returns
    -------
    np.ndarray, shape (L,), float64
        ``Σ_b f_b log2(f_b / q_b)`` (0 log 0 = 0); NaN at positions with no base (unknown in x0).
    """
    f = np.asarray(frequencies, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(f > 0, f * np.log2(f / background), 0.0)
    kl = terms.sum(axis=1)
    kl[f.sum(axis=1) == 0] = np.nan
    return kl


def motif_window(importance: np.ndarray, width: int) -> MotifCall:
    """The window of ``width`` positions with the largest mean importance (first if tied).

    Unknown positions (NaN) count as 0.
    """
    importance = np.nan_to_num(np.asarray(importance, dtype=np.float64), nan=0.0)
    width = check_number(width, "motif width", integer=True, minimum=1, maximum=len(importance),
                         hint="the motif window cannot be longer than the input")
    window_sums = np.convolve(importance, np.ones(width), mode="valid")
    start = int(np.argmax(window_sums))
    return MotifCall(start, start + width, float(window_sums[start] / width))
