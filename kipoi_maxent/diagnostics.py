"""Convergence diagnostics of one input's chains: rank-normalised R-hat and bulk ESS (ArviZ)
of the distance trace and of the GC count, and whether they pass the usual thresholds.

Works with ArviZ 0.x (``arviz.rhat``/``arviz.ess`` on a ``(chains, draws)`` ndarray) and 1.x
(the array functions of ``arviz_stats``).
"""
from __future__ import annotations

import functools
import warnings
from typing import Callable, NamedTuple

import numpy as np

from kipoi_maxent.sequence import gc_count

#: Thresholds of :attr:`ChainDiagnostics.converged` (Vehtari et al. 2021's recommendations).
MAX_RHAT = 1.05
MIN_ESS = 100.0


class ChainDiagnostics(NamedTuple):
    """R-hat and bulk ESS of one input's traces; NaN where undefined (a constant trace, or
    R-hat of a single chain)."""

    rhat_distance: float
    ess_distance: float
    rhat_gc: float
    ess_gc: float
    converged: bool


@functools.lru_cache(maxsize=1)
def _arviz_functions() -> tuple[Callable, Callable, str]:
    """``(rhat, ess, description)``, each taking a ``(chains, draws)`` float64 array."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import arviz
    if int(arviz.__version__.split(".")[0]) >= 1:
        from arviz_stats.base import array_stats

        return (
            lambda x: float(array_stats.rhat(x, chain_axis=0, draw_axis=1, method="rank")),
            lambda x: float(array_stats.ess(x, chain_axis=0, draw_axis=1, method="bulk")),
            f"arviz {arviz.__version__} (arviz_stats array functions, rank R-hat, bulk ESS)",
        )
    return (
        lambda x: float(arviz.rhat(x, method="rank")),
        lambda x: float(arviz.ess(x, method="bulk")),
        f"arviz {arviz.__version__} (arviz.rhat method='rank', arviz.ess method='bulk')",
    )


def arviz_description() -> str:
    """Which ArviZ functions compute the diagnostics (for run.json and benchmarks)."""
    return _arviz_functions()[2]


def _statistic(which: int, trace: np.ndarray, minimum_chains: int) -> float:
    trace = np.asarray(trace, dtype=np.float64)
    if trace.ndim != 2:
        raise ValueError(f"a trace must be (chains, draws), got shape {trace.shape}")
    if trace.shape[0] < minimum_chains or trace.shape[1] < 4 or np.ptp(trace) == 0:
        return float("nan")
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        return _arviz_functions()[which](trace)


def rank_rhat(trace: np.ndarray) -> float:
    """Rank-normalised split R-hat of a ``(chains, draws)`` trace; NaN for fewer than 2
    chains, fewer than 4 draws, or a constant trace."""
    return _statistic(0, trace, minimum_chains=2)


def bulk_ess(trace: np.ndarray) -> float:
    """Bulk effective sample size of a ``(chains, draws)`` trace (NaN when constant)."""
    return _statistic(1, trace, minimum_chains=1)


def chain_diagnostics(distances: np.ndarray, samples: np.ndarray) -> ChainDiagnostics:
    """Diagnostics of one input.

    Parameters
    ----------
    distances : np.ndarray, shape (chains, draws)
        d(Φ(x0), Φ(x)) of the kept states.
    samples : np.ndarray, shape (chains, draws, L), int8
        The kept states (their GC count is the second trace).

    Returns
    -------
    ChainDiagnostics
        ``converged``: R-hat ≤ :data:`MAX_RHAT` (when defined, i.e. ≥ 2 chains) and ESS ≥
        :data:`MIN_ESS` for both traces. A frozen chain (constant trace) never converges.
    """
    gc = gc_count(samples).astype(np.float64)
    rhat_d, ess_d, rhat_g, ess_g = rank_rhat(distances), bulk_ess(distances), rank_rhat(gc), bulk_ess(gc)
    several_chains = np.shape(distances)[0] >= 2

    def passes(rhat, ess):
        return bool(ess >= MIN_ESS and (rhat <= MAX_RHAT if several_chains else True))

    return ChainDiagnostics(rhat_d, ess_d, rhat_g, ess_g, passes(rhat_d, ess_d) and passes(rhat_g, ess_g))
