"""kipoi_maxent.statistics: frequencies, KL importance (bits), motif window."""
import numpy as np
import pytest

from kipoi_maxent.sequence import background_probabilities
from kipoi_maxent.statistics import kl_divergence, motif_window, nucleotide_frequencies


def test_frequencies_of_known_samples():
    # (chains=2, draws=2, L=3)
    samples = np.array([
        [[0, 1, -1], [0, 2, -1]],
        [[0, 3, -1], [1, 1, -1]],
    ], dtype=np.int8)
    f = nucleotide_frequencies(samples)
    np.testing.assert_allclose(f, [
        [0.75, 0.25, 0.0, 0.0],
        [0.0, 0.5, 0.25, 0.25],
        [0.0, 0.0, 0.0, 0.0],     # unknown in every sample: no base
    ])


def test_kl_against_hand_computation_uniform_background():
    uniform = background_probabilities(0.0)
    f = np.array([
        [1.0, 0.0, 0.0, 0.0],     # fixed: log2(1 / 0.25) = 2 bits
        [0.25, 0.25, 0.25, 0.25],  # background itself: 0
        [0.5, 0.5, 0.0, 0.0],     # two bases: 1 bit
        [0.7, 0.1, 0.1, 0.1],
    ])
    expected_last = 0.7 * np.log2(0.7 / 0.25) + 3 * 0.1 * np.log2(0.1 / 0.25)
    np.testing.assert_allclose(kl_divergence(f, uniform), [2.0, 0.0, 1.0, expected_last], atol=1e-12)


def test_kl_against_gc_biased_background():
    mu = np.log(0.38 / 0.62)
    q = background_probabilities(mu)  # A, C, G, T = 0.31, 0.19, 0.19, 0.31
    np.testing.assert_allclose(q, [0.31, 0.19, 0.19, 0.31], atol=1e-12)
    f = np.array([
        [0.0, 0.0, 1.0, 0.0],
        [0.5, 0.0, 0.0, 0.5],
        [0.31, 0.19, 0.19, 0.31],
    ])
    expected = [np.log2(1 / 0.19), np.log2(0.5 / 0.31), 0.0]
    np.testing.assert_allclose(kl_divergence(f, q), expected, atol=1e-12)


def test_kl_is_nan_only_at_all_unknown_positions():
    samples = np.array([[0, -1, 2], [0, -1, 3]], dtype=np.int8)
    kl = kl_divergence(nucleotide_frequencies(samples), background_probabilities(0.0))
    assert np.isnan(kl[1])
    np.testing.assert_allclose(kl[[0, 2]], [2.0, 1.0])


def test_motif_window_picks_best_window_against_brute_force():
    rng = np.random.default_rng(5)
    importance = rng.random(40)
    for width in (1, 5, 19, 40):
        call = motif_window(importance, width)
        means = [importance[s:s + width].mean() for s in range(40 - width + 1)]
        best = int(np.argmax(means))
        assert (call.start, call.end) == (best, best + width)
        assert call.score == pytest.approx(means[best])


def test_motif_window_first_on_ties():
    importance = np.array([0.0, 1.0, 1.0, 0.0, 1.0, 1.0, 0.0, 1.0, 1.0])
    call = motif_window(importance, 2)
    assert (call.start, call.end, call.score) == (1, 3, 1.0)


def test_motif_window_treats_nan_as_zero():
    importance = np.array([5.0, np.nan, 5.0, 0.0, 3.0, 3.0, 3.0])
    # window sums with NaN -> 0: 10, 5, 8, 6, 9
    call = motif_window(importance, 3)
    assert (call.start, call.end) == (0, 3)
    assert call.score == pytest.approx(10 / 3)
    assert motif_window(np.full(4, np.nan), 2) == (0, 2, 0.0)


@pytest.mark.parametrize("width", [0, -1, 11])
def test_motif_window_rejects_bad_width(width):
    with pytest.raises(ValueError, match="motif width"):
        motif_window(np.ones(10), width)
