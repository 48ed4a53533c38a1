"""Engines: the chains' current states and Φ of proposed single-base mutations.

Every engine has the same interface, so samplers never know which one runs:

- ``start(states, chains_per_input)`` sets the chains' sequences ``(n, L)`` and returns their
  Φ ``(n, k)``; rows ``i·c … (i+1)·c − 1`` (``c = chains_per_input``, default all) are the
  chains of input ``i``: an engine's arithmetic for one input must not depend on the others
  (batch invariance), and those chains always share the proposed position;
- ``propose(positions, bases)`` returns Φ ``(n, m, k)`` of each chain with ``bases[c, j]``
  written at ``positions[c]``, for ``m`` alternatives, leaving the states unchanged;
- ``accept(choice)`` commits alternative ``choice[c]`` of the last proposal (``-1``: keep);
- ``evaluate(codes)`` is Φ of arbitrary sequences (full forward pass).

The naive engine is the paper's algorithm — one forward pass of the penultimate sub-model
per proposal, batched over all chains — and the reference every faster engine is checked
against (:mod:`kipoi_maxent.samplers.incremental`, :mod:`kipoi_maxent.samplers.windowed`).
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


#: Engine names :func:`make_engine` knows, fastest first (``auto`` tries them in this order).
ENGINES = ("incremental", "windowed", "naive")


def make_engine(name: str, resolved, **options):
    """The engine ``name`` (``naive``, ``incremental``, ``windowed`` or ``auto``) for a resolved model.

    ``auto`` takes the incremental engine when the model qualifies, else the windowed one,
    else the naive one. ``options`` (e.g. ``resync_every``) go to the incremental or windowed
    engine. Returns ``(engine, reason)``; ``reason`` says why ``auto`` did not take the
    incremental engine (and, for the naive one, why not the windowed one), else ``None``.
    """
    from kipoi_maxent.samplers.incremental import IncrementalEngine, UnsupportedModel
    from kipoi_maxent.samplers.windowed import WindowedEngine

    if name not in ENGINES + ("auto",):
        raise ValueError(f"engine must be {', '.join(ENGINES)} or auto, got {name!r}")
    if name == "naive":
        return NaiveEngine(resolved.penultimate), None
    if resolved.network.sub_model is None:
        reason = f"the {resolved.network.framework} backend gives no layer graph"
        if name != "auto":
            raise ValueError(f"the {name} engine cannot run this model: {reason}")
        return NaiveEngine(resolved.penultimate), reason
    reasons = []
    for kind, engine_class in (("incremental", IncrementalEngine), ("windowed", WindowedEngine)):
        if name not in (kind, "auto"):
            continue
        try:
            engine = engine_class(resolved.network.sub_model, resolved.encoder,
                                  reference=resolved.network.activations, **options)
            return engine, "; ".join(reasons) or None
        except UnsupportedModel as error:
            if name == kind:
                raise ValueError(f"the {kind} engine cannot run this model: {error}; use --engine naive") from None
            reasons.append(str(error) if kind == "incremental" else f"windowed engine: {error}")
    return NaiveEngine(resolved.penultimate), "; ".join(reasons)
