"""The naive engine, the paper's algorithm: one full forward pass of the penultimate sub-model
per proposal, batched over all chains. The reference every faster engine is checked against.
"""
from __future__ import annotations

from collections.abc import Callable

import numpy as np

#: ``(n, L) int8 codes -> (n, k)`` activations.
PenultimateFunction = Callable[[np.ndarray], np.ndarray]


class NaiveEngine:
    """Full forward pass of every proposal.

    Parameters
    ----------
    penultimate : callable
        ``(n, L) int8 codes -> (n, k)`` penultimate activations.
    """

    name = "naive"

    def __init__(self, penultimate: PenultimateFunction):
        self.penultimate = penultimate
        self.states: np.ndarray | None = None
        self._proposals: np.ndarray | None = None

    def evaluate(self, codes: np.ndarray) -> np.ndarray:
        """Φ of arbitrary sequences, ``(n, L)`` -> ``(n, k)`` float64."""
        return np.asarray(self.penultimate(codes), dtype=np.float64)

    def start(self, states: np.ndarray, chains_per_input: int | None = None) -> np.ndarray:
        # resolved.penultimate runs fixed 256-row blocks: invariant whatever the grouping
        self.states = np.array(states, dtype=np.int8, copy=True)
        return self.evaluate(self.states)

    def propose(self, positions: np.ndarray, bases: np.ndarray) -> np.ndarray:
        n, m = bases.shape
        proposals = np.repeat(self.states[:, None, :], m, axis=1)
        proposals[np.arange(n), :, positions] = bases
        self._proposals = proposals
        return self.evaluate(proposals.reshape(n * m, -1)).reshape(n, m, -1)

    def accept(self, choice: np.ndarray) -> None:
        chosen = np.flatnonzero(choice >= 0)
        self.states[chosen] = self._proposals[chosen, choice[chosen]]

    def keep(self, rows: np.ndarray) -> None:
        self.states = self.states[rows]
