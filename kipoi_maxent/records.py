"""The record types the pipeline stores and the output writers read: one module below both,
so a writer never reaches up into the pipeline."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterator, NamedTuple, Protocol

import numpy as np

from kipoi_maxent.statistics import MotifCall


@dataclass(frozen=True)
class AnalysisConfig:
    """What is read off each input's samples besides frequencies and KL.

    Attributes
    ----------
    motif_width : int
    features : tuple of Feature
        Global features scored by δ (:mod:`kipoi_maxent.features`).
    dummies : dict of (start, end) -> list of Feature
        Random dummy features for the δ percentile per feature window
        (:func:`~kipoi_maxent.features.dummy_sets`: drawn once per run, same for every input).
    importance_percentile : float
        δ percentile above which a feature is called important.
    periodicity_bases : str
        Base set of the Fourier signal (default G/C).
    pca_components : int
        Lowest-variance principal components kept per input (0: no PCA).
    pca_control : np.ndarray, shape (k, L), optional
        Random orthonormal directions of the paper's k-NN control.
    keep_samples : bool
        Keep the samples (for ``samples.h5``).
    jaspar : dict, optional
        ``load_jaspar`` arguments (release, collection, tax_group): annotate each motif call
        with its best JASPAR match (TOMTOM); None: no annotation.
    """

    motif_width: int = 19
    features: tuple = ()
    dummies: dict = field(default_factory=dict, compare=False)
    importance_percentile: float = 90.0
    periodicity_bases: str = "GC"
    pca_components: int = 0
    pca_control: np.ndarray | None = field(default=None, compare=False)
    keep_samples: bool = False
    jaspar: dict | None = field(default=None, compare=False)


class IntervalRecord(NamedTuple):
    """Everything kept of one input after analysis (its samples only when asked for).

    Attributes
    ----------
    index : int
        Position of the input in the run.
    row : dict
        Its ``summary.tsv`` fields.
    frequencies : np.ndarray, shape (L, 4), float32
    importance : np.ndarray, shape (L,), float32 (NaN at unknown bases)
    fourier : np.ndarray, shape (2, F), float32
        Normalised amplitudes of the sample-mean signal and mean over samples, per period.
    reference : np.ndarray, shape (L,), int8
        The input x0.
    pca : object or None
        :class:`~kipoi_maxent.denovo.SamplePCA` when PCA was asked for.
    samples : np.ndarray, shape (chains, draws, L), int8, or None
    """

    index: int
    row: dict
    frequencies: np.ndarray
    importance: np.ndarray
    fourier: np.ndarray
    reference: np.ndarray
    pca: object
    samples: np.ndarray | None

    @property
    def motif_call(self) -> MotifCall:
        """The motif call in input coordinates (``summary.tsv`` holds genome coordinates)."""
        row = self.row
        return MotifCall(row["motif_start"] - row["start"], row["motif_end"] - row["start"], row["motif_score"])


class RecordSource(Protocol):
    """Where a finished run's records come from (the pipeline's part store)."""

    def records(self, samples: bool = False) -> Iterator[IntervalRecord]:
        """Every record in input order (samples only if asked)."""

    def record(self, index: int) -> IntervalRecord:
        """Record ``index``, without samples."""
