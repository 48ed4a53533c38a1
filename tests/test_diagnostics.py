"""kipoi_maxent.diagnostics: R-hat and ESS on traces with known behaviour."""
import numpy as np
import pytest

from kipoi_maxent.diagnostics import (
    MAX_RHAT,
    MIN_ESS,
    bulk_ess,
    chain_diagnostics,
    converged,
    rank_rhat,
    tail_ess,
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


def test_tail_ess_sees_slowly_mixing_tails_that_bulk_ess_does_not():
    assert tail_ess(ar1(4, 2000, 0.0)) == pytest.approx(8000, rel=0.25)
    # the size of the values drifts slowly (ρ = 0.995) while their ranks around the median do not
    scale = np.exp(1.5 * ar1(4, 2000, 0.995, seed=5) / 10)
    trace = scale * ar1(4, 2000, 0.0, seed=6)
    assert tail_ess(trace) < 0.5 * bulk_ess(trace)


def gc_samples(gc_trace: np.ndarray, length: int = 60) -> np.ndarray:
    """Samples (chains, draws, L) whose GC count is ``gc_trace`` (rounded, clipped to 0..L)."""
    counts = np.clip(np.round(gc_trace), 0, length).astype(int)
    samples = np.zeros((*counts.shape, length), dtype=np.int8)  # all A
    samples[np.arange(length) < counts[..., None]] = 2             # the first `count` bases G
    return samples


def test_converged_needs_both_traces_and_every_statistic():
    """Each half of the rule on its own fails the flag: the distance trace and the GC trace,
    R-hat and the bulk and tail ESS of each."""
    mixing = ar1(4, 1000, 0.0)
    good_gc = gc_samples(30 + 4 * ar1(4, 1000, 0.0, seed=7))
    assert converged(mixing, good_gc) and chain_diagnostics(mixing, good_gc).converged

    stuck_gc = gc_samples(30 + 4 * ar1(4, 1000, 0.0, seed=7, offsets=[0, 0, 3, 3]))
    result = chain_diagnostics(mixing, stuck_gc)
    assert result.rhat_distance <= MAX_RHAT and result.rhat_gc > MAX_RHAT
    assert not result.converged and not converged(mixing, stuck_gc)

    slow_gc = gc_samples(30 + 4 * ar1(4, 1000, 0.95, seed=7))  # R-hat fine, too few effective draws
    result = chain_diagnostics(mixing, slow_gc)
    assert result.ess_gc < MIN_ESS and not result.converged and not converged(mixing, slow_gc)

    slow_distance = ar1(4, 1000, 0.95)
    result = chain_diagnostics(slow_distance, good_gc)
    assert result.ess_distance < MIN_ESS and result.ess_gc >= MIN_ESS
    assert not result.converged and not converged(slow_distance, good_gc)


def test_one_chain_is_judged_by_its_ess_alone():
    """R-hat is undefined for a single chain: the rule then rests on the ESS."""
    long, short = ar1(1, 4000, 0.0), ar1(1, 300, 0.0)
    assert converged(long, gc_samples(30 + 4 * ar1(1, 4000, 0.0, seed=3)))
    assert chain_diagnostics(long, gc_samples(30 + 4 * ar1(1, 4000, 0.0, seed=3))).converged
    assert not converged(short, gc_samples(30 + 4 * ar1(1, 300, 0.0, seed=3)))  # ESS ≈ 300 < 400


def test_chain_diagnostics_converged_flag():
    rng = np.random.default_rng(1)
    samples = rng.integers(0, 4, (4, 500, 30)).astype(np.int8)
    good = chain_diagnostics(ar1(4, 500, 0.0), samples)
    assert good.converged and good.ess_gc > MIN_ESS and good.rhat_gc < MAX_RHAT
    frozen = chain_diagnostics(np.zeros((4, 500)), np.repeat(samples[:, :1], 500, axis=1))
    assert not frozen.converged and np.isnan(frozen.rhat_distance)
    apart = chain_diagnostics(ar1(4, 500, 0.0, offsets=[0, 0, 9, 9]), samples)
    assert not apart.converged and apart.rhat_distance > MAX_RHAT


def test_reported_ess_predicts_the_seed_to_seed_spread():
    """The ESS a run reports is honest: over 48 seeds of the default sampler (4 chains from x0
    sharing the proposed positions, second half kept), the seed-to-seed variance of each input's
    sample mean is within a factor of 2 of its predicted variance s²/ESS, for the GC count and
    the distance, on four CTCF peaks of the shipped example with its trained network."""
    from pathlib import Path

    from kipoi_maxent.api import resolve_model
    from kipoi_maxent.inputs import bed_inputs
    from kipoi_maxent.samplers import SamplerConfig, make_engine, run_chains
    from kipoi_maxent.sequence import gc_count

    example = Path(__file__).resolve().parent.parent / "example_configs"
    resolved = resolve_model(str(example / "models" / "ctcf_cnn"), source="dir")
    peaks = list(bed_inputs(example / "data" / "ctcf_peaks.bed", example / "data" / "ctcf_genome.fa", 101))[:4]
    references = np.stack([peak.codes for peak in peaks])
    engine = make_engine("auto", resolved)[0]
    means, predicted = [], []  # (seed, input, trace)
    for seed in range(48):
        config = SamplerConfig(beta=50, chains=4, steps=4000, thin=10, seed=seed)
        results = run_chains(engine, resolved.weights, references, config)
        traces = [(gc_count(r.samples).astype(float), r.distances) for r in results]
        diagnostics = [chain_diagnostics(r.distances, r.samples) for r in results]
        means.append([[trace.mean() for trace in pair] for pair in traces])
        predicted.append([[gc.var() / d.ess_gc, distance.var() / d.ess_distance]
                          for (gc, distance), d in zip(traces, diagnostics)])
    ratio = np.var(means, axis=0, ddof=1) / np.mean(predicted, axis=0)  # (input, trace)
    assert np.all((ratio > 0.5) & (ratio < 2.0)), ratio
