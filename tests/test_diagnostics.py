"""kipoi_maxent.diagnostics: R-hat and ESS on traces with known behaviour."""
import numpy as np
import pytest

from kipoi_maxent.diagnostics import (
    MAX_RHAT,
    MIN_ESS,
    bulk_ess,
    chain_diagnostics,
    rank_rhat,
)


def ar1(chains, draws, rho, seed=0, offsets=None):
    """AR(1) chains: ESS per chain ≈ draws (1 − ρ)/(1 + ρ)."""
    rng = np.random.default_rng(seed)
    x = np.zeros((chains, draws))
    noise = rng.normal(size=(chains, draws))
    for t in range(1, draws):
        x[:, t] = rho * x[:, t - 1] + noise[:, t]
    return x + (0 if offsets is None else np.asarray(offsets)[:, None])


def test_independent_chains_mix():
    trace = ar1(4, 1000, 0.0)
    assert rank_rhat(trace) < 1.01
    assert bulk_ess(trace) == pytest.approx(4000, rel=0.15)


def test_autocorrelation_lowers_ess():
    rho = 0.9
    assert bulk_ess(ar1(4, 2000, rho)) == pytest.approx(8000 * (1 - rho) / (1 + rho), rel=0.35)


def test_chains_stuck_apart_fail_rhat():
    assert rank_rhat(ar1(4, 500, 0.5, offsets=[0, 0, 5, 5])) > 1.5


def test_constant_and_single_chain_traces_are_nan():
    assert np.isnan(rank_rhat(np.ones((4, 100)))) and np.isnan(bulk_ess(np.ones((4, 100))))
    assert np.isnan(rank_rhat(ar1(1, 100, 0.0))) and bulk_ess(ar1(1, 100, 0.0)) > 50
    with pytest.raises(ValueError, match="chains, draws"):
        bulk_ess(np.ones(10))


def test_chain_diagnostics_converged_flag():
    rng = np.random.default_rng(1)
    samples = rng.integers(0, 4, (4, 500, 30)).astype(np.int8)
    good = chain_diagnostics(ar1(4, 500, 0.0), samples)
    assert good.converged and good.ess_gc > MIN_ESS and good.rhat_gc < MAX_RHAT
    frozen = chain_diagnostics(np.zeros((4, 500)), np.repeat(samples[:, :1], 500, axis=1))
    assert not frozen.converged and np.isnan(frozen.rhat_distance)
    apart = chain_diagnostics(ar1(4, 500, 0.0, offsets=[0, 0, 9, 9]), samples)
    assert not apart.converged and apart.rhat_distance > MAX_RHAT
