"""Periodicity of a base set along the samples (METHOD §6, paper Methods 2.3.3 and Fig. 4B).

A per-position signal (e.g. the G/C indicator) is Fourier transformed with numpy, the
zero-frequency term set to 0, the components normalised by their Euclidean norm, and the
amplitude read at each frequency. The amplitude spectrum of the *sample-mean* signal is compared
with the mean amplitude spectrum of the *individual* samples: a feature the network imposes on
every sample shows up in both, one that only appears on average (the paper's 10-bp nucleosome
periodicity) is strong in the former and suppressed in the latter.

Pure functions on numpy arrays.
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np

from kipoi_maxent._validation import check_codes, check_number
from kipoi_maxent.sequence import ALPHABET


class FourierAmplitudes(NamedTuple):
    """Normalised Fourier amplitudes of signals of length ``L``.

    Attributes
    ----------
    periods : np.ndarray, shape (F,), float64
        ``L / k`` for the frequencies ``k = 1 .. F``, ``F = L // 2`` (decreasing; the last,
        ``k = L / 2`` for even ``L``, is the Nyquist term, period 2).
    amplitudes : np.ndarray, shape (..., F), float64
        ``|X_k|`` of each signal at those frequencies, with ``Σ_k |X_k|² = 1``
        (all zeros for a constant signal).
    """

    periods: np.ndarray
    amplitudes: np.ndarray


class Periodicity(NamedTuple):
    """Fourier amplitudes of one input's samples (paper Fig. 4B).

    Attributes
    ----------
    periods : np.ndarray, shape (F,), float64
        See :class:`FourierAmplitudes`.
    mean_signal : np.ndarray, shape (F,), float64
        Normalised amplitudes of the sample-mean signal (per-position frequency of the base set).
    individual : np.ndarray, shape (F,), float64
        Normalised amplitudes of each sample's own signal, averaged over the samples.
    """

    periods: np.ndarray
    mean_signal: np.ndarray
    individual: np.ndarray


def base_signal(samples: np.ndarray, bases: str = "GC") -> np.ndarray:
    """Indicator of a base set at every position.

    Parameters
    ----------
    samples : np.ndarray, shape (..., L), int8
        Codes 0..3 (A, C, G, T), -1 for unknown bases.
    bases : str, default ``"GC"``
        The set, as distinct letters of ``ACGT`` (case-insensitive), e.g. ``"GC"`` or ``"AT"``.

    Returns
    -------
    np.ndarray, shape (..., L), float64
        1.0 where the base is in the set, else 0.0 (unknown bases: 0.0).
    """
    codes = np.asarray(samples)
    check_codes(codes.reshape(-1, codes.shape[-1]) if codes.ndim > 1 else codes, "samples")
    return np.isin(codes, _base_codes(bases)).astype(np.float64)


def fourier_periods(length: int) -> np.ndarray:
    """Periods ``L / k``, ``k = 1 .. L // 2``, of the components :func:`normalised_amplitudes`
    returns for length-``L`` signals, ``(L // 2,)`` float64."""
    return length / np.arange(1, length // 2 + 1)


def normalised_amplitudes(signal: np.ndarray) -> FourierAmplitudes:
    """Normalised Fourier amplitudes of each signal (numpy ``rfft`` along the last axis).

    The zero-frequency term is set to 0 and dropped; the remaining one-sided components
    ``X_k``, ``k = 1 .. L // 2``, are divided by their Euclidean norm, so the returned
    amplitudes have unit sum of squares. A constant signal (up to rounding) has no non-zero
    component and gets all-zero amplitudes.

    Parameters
    ----------
    signal : np.ndarray, shape (..., L), float
        ``L >= 2``.

    Returns
    -------
    FourierAmplitudes
        ``periods`` (F,) and ``amplitudes`` (..., F), ``F = L // 2``.
    """
    signal = np.asarray(signal, dtype=np.float64)
    length = signal.shape[-1] if signal.ndim else 0
    check_number(length, "signal length", integer=True, minimum=2,
                 hint="a Fourier spectrum needs at least two positions")
    # rfft index 0 is the zero frequency; dropping it is setting it to 0 before normalising
    components = np.fft.rfft(signal, axis=-1)[..., 1:]
    norm = np.linalg.norm(components, axis=-1, keepdims=True)
    # a constant signal leaves only rounding noise (~ eps · L · max|x|) in the components
    rounding = 1e-12 * length * np.abs(signal).max(axis=-1, keepdims=True)
    amplitudes = np.divide(np.abs(components), norm, out=np.zeros(components.shape), where=norm > rounding)
    return FourierAmplitudes(fourier_periods(length), amplitudes)


def periodicity(samples: np.ndarray, bases: str = "GC") -> Periodicity:
    """Amplitude spectrum of the sample-mean signal vs the mean spectrum of single samples.

    Parameters
    ----------
    samples : np.ndarray, shape (chains, draws, L), int8
        One input's samples (any leading shape; all samples are pooled).
    bases : str, default ``"GC"``
        Base set of the signal (:func:`base_signal`).

    Returns
    -------
    Periodicity
    """
    signal = base_signal(samples, bases)
    signal = signal.reshape(-1, signal.shape[-1])
    if len(signal) == 0:
        raise ValueError("samples are empty: periodicity needs at least one sample")
    mean = normalised_amplitudes(signal.mean(axis=0))
    individual = normalised_amplitudes(signal).amplitudes.mean(axis=0)
    return Periodicity(mean.periods, mean.amplitudes, individual)


def band_amplitude(periods: np.ndarray, amplitudes: np.ndarray, low: float = 10.0, high: float = 10.5) -> float:
    """Mean amplitude over the periods in ``[low, high]`` (default: the ~10-bp helical repeat).

    When no period ``L / k`` falls in the band (short inputs: the grid of periods is coarse),
    the amplitude at the period nearest to the band's centre ``(low + high) / 2`` is returned
    instead (the first of two equally near).

    Parameters
    ----------
    periods : np.ndarray, shape (F,)
    amplitudes : np.ndarray, shape (F,)
    low, high : float, defaults 10.0 and 10.5
        Band limits in positions, ``0 < low <= high``.

    Returns
    -------
    float
    """
    periods = np.asarray(periods, dtype=np.float64)
    amplitudes = np.asarray(amplitudes, dtype=np.float64)
    if periods.ndim != 1 or periods.shape != amplitudes.shape or len(periods) == 0:
        raise ValueError(
            f"periods and amplitudes must be 1-D arrays of one non-zero length, got shapes "
            f"{periods.shape} and {amplitudes.shape}"
        )
    low = check_number(low, "low", minimum=0, exclusive=True)
    high = check_number(high, "high", minimum=low, hint="the band is [low, high]")
    in_band = (periods >= low) & (periods <= high)
    if in_band.any():
        return float(amplitudes[in_band].mean())
    return float(amplitudes[np.argmin(np.abs(periods - (low + high) / 2))])


def _base_codes(bases: str) -> list[int]:
    """Codes of a base set given as letters; a clear error for anything else."""
    letters = bases.upper() if isinstance(bases, str) else None
    if not letters or any(letter not in ALPHABET for letter in letters) or len(set(letters)) != len(letters):
        raise ValueError(
            f"bases must be distinct letters of {ALPHABET} such as 'GC' or 'AT', got {bases!r}"
        )
    return [ALPHABET.index(letter) for letter in letters]
