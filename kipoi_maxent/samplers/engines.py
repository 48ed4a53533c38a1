"""Engines: the chains' current states and Φ of proposed single-base mutations.

The naive engine is the paper's algorithm — one forward pass of the penultimate sub-model
per proposal, batched over all chains — and the reference every faster engine is checked
against.
"""
from __future__ import annotations

from typing import Callable

import numpy as np

#: ``(n, L) int8 codes -> (n, k) activations``.
PenultimateFunction = Callable[[np.ndarray], np.ndarray]


class NaiveEngine:
    """Full forward pass of every proposal.

    Parameters
    ----------
    penultimate : callable
        ``(n, L) int8 codes -> (n, k)`` penultimate activations.
    """

    def __init__(self, penultimate: PenultimateFunction):
        self._penultimate = penultimate
        self.states: np.ndarray | None = None
        self._proposal: np.ndarray | None = None

    def start(self, states: np.ndarray) -> np.ndarray:
        """Set the chains' states, shape (n, L) int8; return their Φ, shape (n, k) float64."""
        self.states = np.array(states, dtype=np.int8, copy=True)
        return self.evaluate(self.states)

    def evaluate(self, codes: np.ndarray) -> np.ndarray:
        """Φ of arbitrary sequences, ``(n, L)`` -> ``(n, k)`` float64."""
        return np.asarray(self._penultimate(codes), dtype=np.float64)

    def propose(self, positions: np.ndarray, bases: np.ndarray) -> np.ndarray:
        """Φ of each chain with ``bases[c]`` written at ``positions[c]`` (states unchanged).

        Parameters
        ----------
        positions, bases : np.ndarray, shape (n,)
        Returns
        -------
        np.ndarray, shape (n, k), float64
        """
        proposal = self.states.copy()
        proposal[np.arange(len(proposal)), positions] = bases
        self._proposal = proposal
        return self.evaluate(proposal)

    def accept(self, accepted: np.ndarray) -> None:
        """Commit the last proposal for the chains where ``accepted`` (n,) bool is set."""
        self.states[accepted] = self._proposal[accepted]
