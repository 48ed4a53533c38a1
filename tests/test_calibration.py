"""kipoi_maxent.calibration: the paper's two rules for β, on real samples and on hand-made grids."""
import numpy as np
import pytest

from kipoi_maxent import calibration
from kipoi_maxent.calibration import (
    auto_beta,
    ENTROPY_THRESHOLD,
    BetaSummary,
    CalibrationRow,
    calibration_row,
    min_position_entropy,
    nearest_other_distances,
    plot_calibration,
    recommend_beta,
    summarise,
)
from kipoi_maxent.samplers import NaiveEngine, SamplerConfig, run_chains
from kipoi_maxent.sequence import one_hot
from kipoi_maxent.statistics import nucleotide_frequencies

BETAS = (0.3, 1.0, 3.0, 10.0, 30.0)


@pytest.fixture(scope="module")
def sweep():
    """A tiny tanh network (L = 12, k = 6) sampled for 8 inputs at each β of :data:`BETAS`."""
    length, units, n_inputs = 12, 6, 8
    rng = np.random.default_rng(0)
    kernel, bias = rng.normal(0, 0.5, (length * 4, units)), rng.normal(0, 0.5, units)
    weights = rng.normal(0, 1, units)

    def penultimate(codes):
        return np.tanh(one_hot(codes, np.float64).reshape(len(codes), -1) @ kernel + bias)

    references = rng.integers(0, 4, (n_inputs, length)).astype(np.int8)
    nearest = nearest_other_distances(penultimate(references), weights)
    rows = []
    for beta in BETAS:
        config = SamplerConfig(beta=beta, chains=10, steps=1200, burnin=200, thin=10, seed=1)
        results = run_chains(NaiveEngine(penultimate), weights, references, config)
        rows += [calibration_row(beta, f"input{i}", mean_distance=result.distances.mean(),
                                 sd_distance=result.distances.std(), nearest_distance=nearest[i],
                                 frequencies=nucleotide_frequencies(result.samples),
                                 acceptance_rate=result.acceptance_rate, max_kl=1.0)
                 for i, result in enumerate(results)]
    return rows


def test_distance_and_entropy_fall_with_beta(sweep):
    summaries = summarise(sweep)
    assert [s.beta for s in summaries] == list(BETAS) and all(s.n_inputs == 8 for s in summaries)
    mean_distances = [s.median_mean_distance for s in summaries]
    assert np.all(np.diff(mean_distances) < 0), mean_distances
    entropies = [s.median_min_entropy for s in summaries]
    assert np.all(np.diff(entropies) < 0.02), entropies
    assert entropies[0] > 1.9 and entropies[-1] < 0.5  # near-uniform at small β, frozen-ish at large β
    z = [s.median_z for s in summaries]
    assert np.all(np.diff(z) > 0), z  # z grows with β: what rule 1's "raise/lower β" relies on
    # each row's own numbers are consistent
    row = sweep[0]
    assert row.z == pytest.approx((row.nearest_distance - row.mean_distance) / row.sd_distance)
    frozen = calibration_row(1.0, "x", mean_distance=0.0, sd_distance=0.0, nearest_distance=0.5,
                             frequencies=np.eye(4), acceptance_rate=0.0, max_kl=2.0)
    assert frozen.z == np.inf and frozen.min_entropy == 0.0
    assert 0 < row.acceptance_rate <= 1
    # this grid jumps over z in [2, 3] between β = 3 and 10; the entropy rule stops before β = 30
    recommendation = recommend_beta(summaries)
    assert recommendation.by_distance is None and "between β = 3" in recommendation.explanation
    assert recommendation.by_entropy == 10.0


def test_nearest_other_distances_against_brute_force(monkeypatch):
    rng = np.random.default_rng(1)
    activations, weights = rng.normal(size=(9, 4)), rng.normal(size=4)
    brute = [min(np.sqrt(np.sum((weights * (activations[i] - activations[j])) ** 2)) for j in range(9) if j != i)
             for i in range(9)]
    np.testing.assert_allclose(nearest_other_distances(activations, weights), brute)
    monkeypatch.setattr(calibration, "_CHUNK_ELEMENTS", 2 * 9 * 4)  # 2 rows per chunk
    np.testing.assert_allclose(nearest_other_distances(activations, weights), brute)
    duplicated = np.vstack([activations[:1], activations[:1]])
    np.testing.assert_array_equal(nearest_other_distances(duplicated, weights), [0.0, 0.0])
    with pytest.raises(ValueError, match="at least 2 inputs"):
        nearest_other_distances(activations[:1], weights)
    with pytest.raises(ValueError, match="weights"):
        nearest_other_distances(activations, weights[:3])


def test_min_position_entropy():
    frequencies = np.array([
        [0.25, 0.25, 0.25, 0.25],  # 2 bits
        [0.5, 0.5, 0.0, 0.0],      # 1 bit
        [0.0, 0.0, 0.0, 0.0],      # unknown in x0: ignored
    ])
    assert min_position_entropy(frequencies) == pytest.approx(1.0)
    assert min_position_entropy(np.array([[0.0, 1.0, 0.0, 0.0], [0.5, 0.5, 0, 0]])) == 0.0  # frozen
    assert ENTROPY_THRESHOLD == pytest.approx(min_position_entropy(np.array([[0.99, 0.01, 0.0, 0.0]])))
    with pytest.raises(ValueError, match="all unknown"):
        min_position_entropy(np.zeros((3, 4)))
    with pytest.raises(ValueError, match=r"\(L, 4\)"):
        min_position_entropy(np.zeros((3, 5)))


def _summaries(z_values, fractions):
    betas = [1.0, 3.0, 10.0, 30.0, 100.0][:len(z_values)]
    return [BetaSummary(beta, 10, 1.0, 0.1, 2.0, z, 1.0, fraction, ENTROPY_THRESHOLD, 0.5, 1.0)
            for beta, z, fraction in zip(betas, z_values, fractions)]


def test_recommend_beta_picks_each_rule():
    recommendation = recommend_beta(_summaries([0.5, 2.1, 2.6, 3.4, 8.0], [1.0, 1.0, 0.97, 0.6, 0.0]))
    assert recommendation.by_distance == 10.0  # z = 2.6 is nearer 2.5 than z = 2.1
    assert recommendation.by_entropy == 10.0   # 97 % >= 95 %; β = 30 freezes 40 % of inputs
    assert "β = 10" in recommendation.explanation
    # a narrower range and a stricter fraction
    stricter = recommend_beta(_summaries([0.5, 2.1, 2.6, 3.4, 8.0], [1.0, 1.0, 0.97, 0.6, 0.0]),
                              z_range=(2.0, 2.3), min_fraction=1.0)
    assert (stricter.by_distance, stricter.by_entropy) == (3.0, 3.0)
    # entropy rule stops at the first failure even if a larger β passes again (noise)
    assert recommend_beta(_summaries([2.5, 9, 9], [1.0, 0.5, 1.0])).by_entropy == 1.0
    # the order of the summaries does not matter
    assert recommend_beta(_summaries([0.5, 2.6], [1.0, 1.0])[::-1]).by_distance == 3.0


def test_recommend_beta_out_of_range_says_which_way():
    too_low = recommend_beta(_summaries([0.1, 0.5, 1.2], [1.0, 1.0, 1.0]))
    assert too_low.by_distance is None and "raise β above 10" in too_low.explanation
    assert too_low.by_entropy == 10.0 and "extend the grid upwards" in too_low.explanation
    too_high = recommend_beta(_summaries([4.0, 7.0, 12.0], [0.5, 0.2, 0.0]))
    assert too_high.by_distance is None and "lower β below 1" in too_high.explanation
    assert too_high.by_entropy is None and "even β = 1 freezes" in too_high.explanation
    jumped = recommend_beta(_summaries([1.0, 3.5], [1.0, 1.0]))
    assert jumped.by_distance is None and "between β = 1 (z = 1.00) and β = 3" in jumped.explanation
    with pytest.raises(ValueError, match="no summaries"):
        recommend_beta([])


def test_summarise_counts_fluctuating_inputs():
    def row(beta, min_entropy, z):
        return CalibrationRow(beta, "x", 1.0, 0.5, 2.0, z, min_entropy, 0.4, 1.0)

    rows = [row(2.0, 0.5, 3.0), row(2.0, 0.0, 1.0), row(2.0, 0.05, 2.0), row(1.0, 1.0, 0.5)]
    first, second = summarise(rows)
    assert (first.beta, first.n_inputs, first.fraction_fluctuating) == (1.0, 1, 1.0)
    assert (second.n_inputs, second.median_z, second.median_min_entropy) == (3, 2.0, 0.05)
    assert second.fraction_fluctuating == pytest.approx(1 / 3)  # 0.05 bits < threshold 0.081
    assert summarise(rows, entropy_threshold=0.01)[1].fraction_fluctuating == pytest.approx(2 / 3)
    with pytest.raises(ValueError, match="no calibration rows"):
        summarise([])


def test_plot_is_a_png(tmp_path, sweep):
    import matplotlib.image

    path = tmp_path / "calibration.png"
    plot_calibration(summarise(sweep), path)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    image = matplotlib.image.imread(path)
    assert image.shape[0] > 300 and image.shape[1] > 400


def _pilot(*points):
    """BetaSummary rows of a pilot from (β, median z, median acceptance, median max KL)."""
    return [BetaSummary(beta, 8, 0.1, 0.1, 0.5, z, 0.5, 1.0, ENTROPY_THRESHOLD, acceptance, max_kl)
            for beta, z, acceptance, max_kl in points]


def test_auto_beta_interpolates_the_distance_rule_in_log_beta():
    # the README's calibrate table of the CTCF example: z crosses 2.5 between β = 20 and 50
    choice = auto_beta(_pilot((5, -1.6, 0.9, 0.1), (20, 1.5, 0.77, 0.6), (50, 6.5, 0.66, 1.5), (200, 5.9, 0.3, 2.0),
                              (800, 850, 0.0004, 2.0)))
    expected = np.exp(np.log(20) + (2.5 - 1.5) / (6.5 - 1.5) * (np.log(50) - np.log(20)))
    assert choice.beta == pytest.approx(expected) and choice.rule == "distance rule"
    assert "median z = 2.5" in choice.explanation


def test_auto_beta_guards_win_over_the_distance_rule():
    # z reaches 2.5 only where the chains freeze: the acceptance guard decides
    frozen = auto_beta(_pilot((10, 0.5, 0.6, 0.8), (40, 1.5, 0.2, 1.5), (160, 3.0, 0.05, 2.0)))
    limit = np.exp(np.log(40) + (0.15 - 0.2) / (0.05 - 0.2) * (np.log(160) - np.log(40)))
    assert frozen.rule == "acceptance guard" and frozen.beta == pytest.approx(limit)
    assert "acceptance guard wins" in frozen.explanation
    # z is past 2.5 already where nothing is constrained yet: the importance guard decides
    loose = auto_beta(_pilot((1, 2.0, 0.95, 0.1), (4, 4.0, 0.9, 0.2), (16, 6.0, 0.8, 0.5)))
    assert loose.rule == "importance guard" and 4 < loose.beta < 16
    # the guards overlap: mixing wins
    both = auto_beta(_pilot((1, 0.0, 0.5, 0.05), (4, 1.0, 0.1, 0.1), (16, 3.0, 0.01, 0.4)))
    assert both.rule == "acceptance guard" and "guards overlap" in both.explanation


def test_auto_beta_says_where_to_look_when_the_grid_does_not_decide():
    up = auto_beta(_pilot((1, -2.0, 0.9, 0.05), (4, 0.5, 0.8, 0.4)))
    assert up.beta is None and up.direction == "up"
    down = auto_beta(_pilot((10, 4.0, 0.5, 1.0), (40, 9.0, 0.3, 1.5)))
    assert down.beta is None and down.direction == "down"
    frozen_already = auto_beta(_pilot((10, 4.0, 0.05, 1.0)))
    assert frozen_already.beta is None and frozen_already.direction == "down"
