"""Convergence diagnostics of one input's chains: rank-normalised split R-hat, bulk and tail
ESS (ArviZ) of the distance trace and of the GC count, and whether they pass the thresholds
Vehtari et al. (2021) recommend (R-hat ≤ 1.01, both ESS ≥ 400), the ArviZ/Stan standard.

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
MAX_RHAT = 1.01
MIN_ESS = 400.0


class ChainDiagnostics(NamedTuple):
    """R-hat, bulk and tail ESS of one input's traces; NaN where undefined (a constant trace,
    or R-hat of a single chain)."""

    rhat_distance: float
    ess_distance: float
    ess_tail_distance: float
    rhat_gc: float
    ess_gc: float
    ess_tail_gc: float
    converged: bool


@functools.lru_cache(maxsize=1)
def _arviz_functions() -> tuple[Callable, Callable, Callable, str]:
    """``(rhat, bulk ess, tail ess, description)``, each taking a ``(chains, draws)`` float64 array."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import arviz
    if int(arviz.__version__.split(".")[0]) >= 1:
        from arviz_stats.base import array_stats

        return (
            lambda x: float(array_stats.rhat(x, chain_axis=0, draw_axis=1, method="rank")),
            lambda x: float(array_stats.ess(x, chain_axis=0, draw_axis=1, method="bulk")),
            lambda x: float(array_stats.ess(x, chain_axis=0, draw_axis=1, method="tail")),
            f"arviz {arviz.__version__} (arviz_stats array functions, rank R-hat, bulk and tail ESS)",
        )
    return (
        lambda x: float(arviz.rhat(x, method="rank")),
        lambda x: float(arviz.ess(x, method="bulk")),
        lambda x: float(arviz.ess(x, method="tail")),
        f"arviz {arviz.__version__} (arviz.rhat method='rank', arviz.ess method='bulk' and 'tail')",
    )


def arviz_description() -> str:
    """Which ArviZ functions compute the diagnostics (for run.json and benchmarks)."""
    return _arviz_functions()[3]


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


def tail_ess(trace: np.ndarray) -> float:
    """Tail effective sample size (of the 5 % and 95 % quantiles) of a ``(chains, draws)`` trace
    (NaN when constant)."""
    return _statistic(2, trace, minimum_chains=1)


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
        ``converged``: for both traces, R-hat ≤ :data:`MAX_RHAT` (when defined, i.e. ≥ 2
        chains) and bulk and tail ESS ≥ :data:`MIN_ESS`. A frozen chain (constant trace) never
        converges.
    """
    gc = gc_count(samples).astype(np.float64)
    several_chains = np.shape(distances)[0] >= 2
    values = {}
    for name, trace in (("distance", distances), ("gc", gc)):
        values[f"rhat_{name}"] = rank_rhat(trace)
        values[f"ess_{name}"] = bulk_ess(trace)
        values[f"ess_tail_{name}"] = tail_ess(trace)

    def passes(name):
        rhat, bulk, tail = values[f"rhat_{name}"], values[f"ess_{name}"], values[f"ess_tail_{name}"]
        return bool(bulk >= MIN_ESS and tail >= MIN_ESS and (rhat <= MAX_RHAT if several_chains else True))

    return ChainDiagnostics(**values, converged=passes("distance") and passes("gc"))


def converged(distances: np.ndarray, samples: np.ndarray) -> bool:
    """:attr:`ChainDiagnostics.converged` of one input's draws: the rule an ``auto`` run stops by
    (:func:`kipoi_maxent.samplers.run_chains`), checked statistic by statistic until one fails."""
    several_chains = np.shape(distances)[0] >= 2
    for trace in (distances, lambda: gc_count(samples).astype(np.float64)):
        trace = trace() if callable(trace) else trace
        if several_chains and not rank_rhat(trace) <= MAX_RHAT:
            return False
        if not (bulk_ess(trace) >= MIN_ESS and tail_ess(trace) >= MIN_ESS):
            return False
    return True
