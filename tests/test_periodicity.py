"""kipoi_maxent.periodicity: normalised Fourier amplitudes and the mean-vs-individual contrast."""
import numpy as np
import pytest

from kipoi_maxent.periodicity import (
    band_amplitude,
    base_signal,
    normalised_amplitudes,
    periodicity,
)
from kipoi_maxent.samplers import NaiveEngine, SamplerConfig, run_chains
from kipoi_maxent.sequence import GC_CODES

LENGTH = 200
COMB = np.arange(5, LENGTH, 10)  # every 10th position
#: β of the comb network giving a comb position G/C with probability 1 / (1 + e^-β) = 0.8
BETA = float(np.log(4.0))


def _gc_count_network(positions):
    """Φ(x) = number of G/C at ``positions``: with x0 all G/C there, d = (count missing), so
    under eq. (9) each of those positions is G/C independently with probability 1 / (1 + e^-β)."""
    def penultimate(codes):
        return np.isin(codes[:, positions], GC_CODES).sum(axis=1, keepdims=True)
    return penultimate


def _sample(positions, seed):
    rng = np.random.default_rng(seed)
    x0 = rng.integers(0, 4, LENGTH).astype(np.int8)
    x0[positions] = 2  # G
    config = SamplerConfig(beta=BETA, chains=20, steps=6000, burnin=2000, thin=100, seed=seed)
    return run_chains(NaiveEngine(_gc_count_network(positions)), np.ones(1), x0[None], config)[0].samples


def test_periodic_constraint_shows_in_the_mean_signal_not_in_single_samples():
    samples = _sample(COMB, seed=1)
    comb_gc = np.isin(samples[..., COMB], GC_CODES).mean()
    assert comb_gc == pytest.approx(0.8, abs=0.04)  # the sampler really imposes the constraint
    result = periodicity(samples)
    mean_10 = band_amplitude(result.periods, result.mean_signal)
    individual_10 = band_amplitude(result.periods, result.individual)
    assert result.periods[np.argmax(result.mean_signal)] in (10.0, 5.0, 10 / 3, 2.5, 2.0)  # comb harmonics
    assert mean_10 >= 3 * individual_10, (mean_10, individual_10)


def test_non_periodic_constraint_gives_no_period_10_contrast():
    # the same constraint on scattered positions; one frequency's amplitude is noisy
    # (Rayleigh-like), so average the contrast over three networks
    ratios = []
    for seed in (2, 3, 4):
        scattered = np.sort(np.random.default_rng(seed + 10).choice(LENGTH, len(COMB), replace=False))
        result = periodicity(_sample(scattered, seed))
        ratios.append(band_amplitude(result.periods, result.mean_signal)
                      / band_amplitude(result.periods, result.individual))
    assert np.mean(ratios) < 1.5, ratios


def test_pure_sinusoid_peaks_at_its_period():
    positions = np.arange(120)
    for period in (10.0, 12.0, 7.5):
        signal = 3.0 + np.cos(2 * np.pi * positions / period + 0.4)
        periods, amplitudes = normalised_amplitudes(signal)
        assert periods[np.argmax(amplitudes)] == pytest.approx(period)
        assert amplitudes.max() == pytest.approx(1.0)  # all the (non-constant) power is there


def test_normalisation_and_zero_frequency_removed():
    rng = np.random.default_rng(0)
    signals = rng.random((3, 4, 51)) + 5.0  # large offset: a kept zero-frequency term would dominate
    periods, amplitudes = normalised_amplitudes(signals)
    assert amplitudes.shape == (3, 4, 25)
    np.testing.assert_allclose(periods, 51 / np.arange(1, 26))
    np.testing.assert_allclose((amplitudes ** 2).sum(axis=-1), 1.0)
    # adding a constant changes only the zero-frequency term, which is discarded
    np.testing.assert_allclose(normalised_amplitudes(signals - 5.0).amplitudes, amplitudes, atol=1e-12)
    np.testing.assert_array_equal(normalised_amplitudes(np.full(10, 0.7)).amplitudes, np.zeros(5))


def test_base_signal_sets_and_unknown_bases():
    codes = np.array([[0, 1, 2, 3, -1]], dtype=np.int8)
    np.testing.assert_array_equal(base_signal(codes), [[0, 1, 1, 0, 0]])
    np.testing.assert_array_equal(base_signal(codes, "at"), [[1, 0, 0, 1, 0]])
    assert base_signal(codes).dtype == np.float64
    for bad in ("", "GCN", "GG", None):
        with pytest.raises(ValueError, match="bases must be"):
            base_signal(codes, bad)
    with pytest.raises(ValueError, match="codes 0..3"):
        base_signal(np.array([[0, 4]]))


def test_mean_signal_and_individual_on_known_samples():
    # G/C signals [1, 1, 0, 0] and [1, 0, 0, 0]; mean [1, .5, 0, 0]: X_1 = 1 - i/2, X_2 = 1/2
    samples = np.array([[[2, 1, 0, 3], [1, 0, 3, 0]]], dtype=np.int8)
    result = periodicity(samples)
    np.testing.assert_allclose(result.periods, [4.0, 2.0])
    np.testing.assert_allclose(result.mean_signal, [np.sqrt(5 / 6), np.sqrt(1 / 6)])
    # sample 1: |X_1| = √2, |X_2| = 0; sample 2: |X_1| = 1, |X_2| = 1
    np.testing.assert_allclose(result.individual, [(1 + 1 / np.sqrt(2)) / 2, 1 / np.sqrt(2) / 2])


def test_band_amplitude_mean_in_band_and_nearest_fallback():
    periods = 201 / np.arange(1, 101)  # k = 20 -> 10.05 is the only period in [10, 10.5]
    amplitudes = np.arange(100.0)
    assert band_amplitude(periods, amplitudes) == 19.0
    assert band_amplitude(periods, amplitudes, 9.0, 11.0) == pytest.approx(np.mean([18, 19, 20, 21]))
    short = 15 / np.arange(1, 8)  # 15, 7.5, ...: nothing in [10, 10.5]; 7.5 is nearest to 10.25
    assert band_amplitude(short, np.arange(7.0)) == 1.0
    with pytest.raises(ValueError, match="high"):
        band_amplitude(periods, amplitudes, 10.5, 10.0)
    with pytest.raises(ValueError, match="shapes"):
        band_amplitude(periods, amplitudes[:-1])


def test_rejects_too_short_signals():
    with pytest.raises(ValueError, match="signal length"):
        normalised_amplitudes(np.ones(1))
    with pytest.raises(ValueError, match="empty"):
        periodicity(np.zeros((0, 5), dtype=np.int8))
