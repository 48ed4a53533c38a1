"""kipoi_maxent.features: feature declarations, exact background moments, dummies, δ and its
percentile, checked by brute force and on toy networks sampled with the real sampler."""
import itertools

import numpy as np
import pytest
from scipy import stats

from kipoi_maxent.features import (
    DUMMY_PAIRS,
    Feature,
    background_moments,
    builtin_features,
    dummy_features,
    dummy_sets,
    feature_columns,
    feature_importance,
    normality,
    parse_features,
    select_features,
)
from kipoi_maxent.samplers import NaiveEngine, SamplerConfig, run_chains
from kipoi_maxent.sequence import background_probabilities

YEAST_MU = np.log(0.38 / 0.62)


def _values(sequences, feature):
    """V(x) = Σ_i C[i, x_i] by a plain loop (unknown bases count 0): the reference for the matrix product."""
    return np.array([sum(feature.coefficients[i, b] for i, b in enumerate(row) if b >= 0) for row in sequences])


def _random_feature(rng, length, name="general"):
    return Feature(name, rng.normal(size=(length, 4)))


# ----------------------------------------------------------------------------- background moments


@pytest.mark.parametrize("mu", [0.0, YEAST_MU, 1.3])
@pytest.mark.parametrize("known", [None, np.array([True, False, True, True, False])])
def test_background_moments_match_enumeration(mu, known):
    length = 5
    rng = np.random.default_rng(7)
    features = [
        _random_feature(rng, length),
        parse_features([{"name": "gc_weighted", "bases": "GC", "weights": list(rng.normal(size=length))}], length)[
            "gc_weighted"],
        parse_features([{"name": "mixed", "bases": ["A", "GT", "", "ACG", "C"], "weights": 2.5}], length)["mixed"],
    ]
    q = background_probabilities(mu)
    variable = np.ones(length, bool) if known is None else known
    # every sequence of the known positions; unknown positions hold -1 (they never change)
    sequences = np.full((4 ** variable.sum(), length), -1, dtype=np.int8)
    sequences[:, variable] = list(itertools.product(range(4), repeat=int(variable.sum())))
    probabilities = np.prod(np.where(sequences >= 0, q[sequences], 1.0), axis=1)
    np.testing.assert_allclose(probabilities.sum(), 1.0, atol=1e-12)

    moments = background_moments(features, mu, known=known)
    for index, feature in enumerate(features):
        v = _values(sequences, feature)
        mean = probabilities @ v
        np.testing.assert_allclose(moments.mean[index], mean, rtol=0, atol=1e-12)
        np.testing.assert_allclose(moments.variance[index], probabilities @ (v - mean) ** 2, rtol=0, atol=1e-12)


def test_background_variance_is_methods_formula_for_indicator_features():
    # METHOD §5: σ² = Σ c_i² π_i (1 − π_i), π = P(G or C) = 0.38 at the yeast μ, ½ for a strong+weak pair
    weights = [1.0, 2.0, -0.5, 3.0]
    gc, ga = parse_features([{"name": "gc", "bases": "GC", "weights": weights},
                             {"name": "ga", "bases": "GA", "weights": weights}], 4).values()
    moments = background_moments([gc, ga], YEAST_MU)
    c2 = np.sum(np.square(weights))
    np.testing.assert_allclose(moments.variance, [c2 * 0.38 * 0.62, c2 * 0.25], atol=1e-12)
    np.testing.assert_allclose(moments.mean, [0.38 * sum(weights), 0.5 * sum(weights)], atol=1e-12)


def test_background_moments_check_known_mask():
    with pytest.raises(ValueError, match=r"known must be a boolean array of shape \(3,\)"):
        background_moments(list(builtin_features(3).values()), 0.0, known=np.array([1, 0, 1]))


# ----------------------------------------------------------------------------- dummies


def test_dummy_features_are_seeded_pairs_over_the_window():
    length, window = 50, (8, 48)
    dummies = dummy_features(300, window, length, seed=4)
    assert [d.name for d in dummies[:3]] == ["dummy_0", "dummy_1", "dummy_2"] and len(dummies) == 300
    again = dummy_features(300, window, length, seed=4)
    assert all(np.array_equal(a.coefficients, b.coefficients) for a, b in zip(dummies, again))
    other = dummy_features(300, window, length, seed=5)
    assert not all(np.array_equal(a.coefficients, b.coefficients) for a, b in zip(dummies, other))

    coefficients = np.stack([d.coefficients for d in dummies])  # (300, L, 4)
    assert not coefficients[:, :window[0]].any() and not coefficients[:, window[1]:].any()
    inside = coefficients[:, window[0]:window[1]].reshape(-1, 4)
    pairs = {tuple(sorted(pair)) for pair in DUMMY_PAIRS}
    assert len(pairs) == 6
    drawn = [tuple(np.flatnonzero(row)) for row in inside]
    assert set(drawn) == pairs  # every position one of the six pairs, and all six occur
    assert np.all(inside.sum(axis=1) == 2)
    frequency = np.array([drawn.count(pair) for pair in sorted(pairs)]) / len(drawn)
    np.testing.assert_allclose(frequency, 1 / 6, atol=0.02)  # uniform: 12 000 draws, SE 0.0034
    assert all(d.window == window for d in dummies)


def test_dummy_sets_one_group_per_distinct_window():
    declared = parse_features([{"name": "gc", "bases": "GC", "window": [2, 9]},
                               {"name": "at_core", "bases": "AT", "window": [2, 9]},
                               {"name": "a_all", "bases": "A"}], 12)
    groups = dummy_sets(list(declared.values()), n=5, seed=1)
    assert sorted(groups) == [(0, 12), (2, 9)]
    assert all(len(group) == 5 for group in groups.values())
    np.testing.assert_array_equal(groups[(2, 9)][3].coefficients,
                                  dummy_features(5, (2, 9), 12, seed=1)[3].coefficients)


# ----------------------------------------------------------------------------- declarations


def test_parse_windows_sets_and_weights():
    declared = parse_features([
        {"name": "gc", "bases": "gc", "window": {"center": 147}},
        {"name": "a_span", "bases": "A", "window": [3, 6], "weights": [1, 2, 3]},
        {"name": "per_position", "bases": ["GC", "", "T"], "window": [0, 3], "weights": -1},
        {"name": "whole", "bases": "AT"},
    ], 201)
    assert list(declared) == ["gc", "a_span", "per_position", "whole"]
    gc = declared["gc"].coefficients
    assert declared["gc"].window == (27, 174)  # central 147 of 201: 27 on each flank
    np.testing.assert_array_equal(gc[27:174], np.tile([0, 1, 1, 0], (147, 1)))
    assert gc[:27].sum() == 0 and gc[174:].sum() == 0
    np.testing.assert_array_equal(declared["a_span"].coefficients[3:6, 0], [1, 2, 3])
    assert declared["a_span"].coefficients.sum() == 6
    expected = np.zeros((3, 4))
    expected[0, [1, 2]] = -1
    expected[2, 3] = -1
    np.testing.assert_array_equal(declared["per_position"].coefficients[:3], expected)
    assert declared["per_position"].window == (0, 3)
    assert declared["whole"].window == (0, 201)
    # an odd leftover goes to the right flank
    assert parse_features([{"name": "c", "bases": "C", "window": {"center": 4}}], 11)["c"].window == (3, 7)
    assert parse_features(None, 10) == {}


@pytest.mark.parametrize("declarations, message", [
    ([{"name": "x", "bases": "GCN"}], r"unknown letter\(s\) N; use A, C, G, T"),
    ([{"name": "x", "bases": ["G", "Q", "C"], "window": [0, 3]}], r"unknown letter\(s\) Q"),
    ([{"name": "x", "bases": 5}], "bases must be a string of ACGT letters"),
    ([{"name": "x", "bases": "GC", "window": [5, 25]}], r"window end must be >= 6 and <= 20, got 25"),
    ([{"name": "x", "bases": "GC", "window": [-1, 5]}], r"window start must be >= 0"),
    ([{"name": "x", "bases": "GC", "window": [7, 7]}], r"window end must be >= 8"),
    ([{"name": "x", "bases": "GC", "window": {"center": 21}}], r"window center width must be >= 1 and <= 20"),
    ([{"name": "x", "bases": "GC", "window": {"middle": 3}}], r"window mapping must be \{center: width\}"),
    ([{"name": "x", "bases": "GC", "window": [1, 2, 3]}], r"window must be \[start, end\]"),
    ([{"name": "x", "bases": ["G", "C"], "window": [0, 3]}], "bases lists 2 values but the window has 3 positions"),
    ([{"name": "x", "bases": "G", "weights": [1, 2]}], "weights lists 2 values but the window has 20 positions"),
    ([{"name": "x", "bases": "G", "weights": "heavy"}], "weight at position 0 must be a number"),
    ([{"name": "x", "bases": "GC"}, {"name": "x", "bases": "AT"}], r"'x' is declared twice \(declarations 1 and 2\)"),
    ([{"name": "x", "bases": ""}], "'x' is empty"),
    ([{"name": "x", "bases": "ACGT"}], "'x' is empty"),
    ([{"name": "x", "bases": "GC", "weights": 0}], "'x' is empty"),
    ([{"name": "x", "bases": ["", "", ""], "window": [0, 3]}], "'x' is empty"),
    ([{"name": "x"}], "'x' needs bases"),
    ([{"name": "x", "bases": "GC", "weight": 2}], r"unknown key\(s\) weight; allowed: name, bases, window, weights"),
    ([{"name": "gc content", "bases": "GC"}], "needs a name of letters, digits"),
    ([{"bases": "GC"}], "declaration 1 needs a name"),
    (["gc"], "declaration 1 must be a mapping"),
    ({"name": "x", "bases": "GC"}, "features must be a list of mappings"),
])
def test_parse_errors(declarations, message):
    with pytest.raises(ValueError, match=message):
        parse_features(declarations, 20)


def test_select_features_overrides_builtin_gc_and_keeps_order():
    length = 201
    builtin = builtin_features(length)["gc"]
    assert builtin.window == (0, 201)
    assert builtin.coefficients[:, [1, 2]].all() and not builtin.coefficients[:, [0, 3]].any()
    declared = parse_features([{"name": "at", "bases": "AT"}, {"name": "gc", "bases": "GC", "window": {"center": 147}}],
                              length)
    selected = select_features(["at", "gc"], declared, length)
    assert [f.name for f in selected] == ["at", "gc"] and selected[1].window == (27, 174)
    assert select_features(["gc"], {}, length)[0].window == (0, 201)
    with pytest.raises(ValueError, match="unknown feature 'cpg'; available: gc, at"):
        select_features(["gc", "cpg"], declared, length)
    with pytest.raises(ValueError, match="'gc' is requested twice"):
        select_features(["gc", "gc"], declared, length)
    with pytest.raises(ValueError, match="for 201-bp inputs, the model takes 100"):
        select_features(["at"], declared, 100)


def test_feature_checks_its_coefficients():
    with pytest.raises(ValueError, match=r"shape \(L, 4\)"):
        Feature("x", np.ones((5, 3)))
    with pytest.raises(ValueError, match="finite"):
        Feature("x", np.full((5, 4), np.nan))
    with pytest.raises(ValueError, match="is empty"):
        Feature("x", np.ones((5, 4)))
    feature = Feature("x", np.eye(4))
    with pytest.raises(ValueError):
        feature.coefficients[0, 0] = 2.0  # read-only: a feature cannot change behind its window


# ----------------------------------------------------------------------------- δ on given samples


def test_feature_importance_matches_direct_computation():
    rng = np.random.default_rng(3)
    length = 12
    reference = rng.integers(0, 4, length).astype(np.int8)
    reference[[2, 9]] = -1
    samples = rng.integers(0, 4, size=(3, 40, length)).astype(np.int8)
    samples[..., [2, 9]] = -1
    features = [builtin_features(length)["gc"], _random_feature(rng, length)]
    results = feature_importance(samples, reference, features, YEAST_MU)
    sigma2 = background_moments(features, YEAST_MU, known=reference >= 0).variance
    for result, feature, background in zip(results, features, sigma2):
        v = _values(samples.reshape(-1, length), feature)
        assert result.name == feature.name
        # δ = 1/s² − 1/σ² is a difference of two O(1/σ²) terms: compare it at their scale. The
        # library takes feature values in float32 (exact for integer coefficients, ~1e-7
        # relative for this random feature's), and the cancellation magnifies that relative to
        # a small δ (seen: 1.2e-5 relative on δ = 8e-4, i.e. 6e-8 of 1/σ²)
        np.testing.assert_allclose(result.delta, 1 / v.var() - 1 / background, rtol=1e-5, atol=1e-6 / background)
        np.testing.assert_allclose(result.sample_mean, v.mean(), rtol=1e-6)
        np.testing.assert_allclose(result.input_value, _values([reference], feature)[0], rtol=1e-12)
        np.testing.assert_allclose([result.skewness, result.excess_kurtosis], [stats.skew(v), stats.kurtosis(v)],
                                   rtol=1e-4, atol=1e-6)
        assert np.isnan(result.percentile) and not result.important  # no dummies


@pytest.mark.parametrize("mu", [0.0, YEAST_MU])
def test_samples_from_the_background_give_delta_near_zero(mu):
    # no network: p = q, so s² estimates σ² and every δ·σ² = σ²/s² − 1 is sampling noise (~1 %)
    rng = np.random.default_rng(11)
    length = 40
    q = background_probabilities(mu)
    samples = rng.choice(4, p=q, size=(4, 5000, length)).astype(np.int8)
    features = select_features(["gc", "at_core"], parse_features(
        [{"name": "at_core", "bases": "AT", "window": [5, 30]}], length), length)
    features.append(_random_feature(rng, length))
    results = feature_importance(samples, samples[0, 0], features, mu)
    moments = background_moments(features, mu)
    for result, mean, variance in zip(results, moments.mean, moments.variance):
        assert abs(result.delta * variance) < 0.05
        assert abs(result.sample_mean - mean) < 4 * np.sqrt(variance / 20000)
        assert result.normal


def _swap_within_strong_and_weak(reference, rng, shape):
    """Samples with x0's GC count at every draw: G<->C and A<->T swaps only (GC frozen, dummies not)."""
    partner = np.array([3, 2, 1, 0], dtype=np.int8)  # A<->T, C<->G
    swap = rng.random(shape + reference.shape) < 0.5
    return np.where(swap, partner[reference], reference).astype(np.int8)


def test_frozen_feature_has_infinite_delta_at_the_top_of_its_dummies():
    rng = np.random.default_rng(0)
    length = 30
    reference = rng.integers(0, 4, length).astype(np.int8)
    samples = _swap_within_strong_and_weak(reference, rng, (2, 50))
    gc = builtin_features(length)["gc"]
    result = feature_importance(samples, reference, [gc], 0.0, dummies=dummy_sets([gc], n=300, seed=0),
                                percentile_threshold=99.9)[0]
    assert result.delta == np.inf and result.percentile == 100.0 and result.important
    assert np.isnan(result.skewness) and not result.normal
    assert result.sample_mean == result.input_value == np.isin(reference, (1, 2)).sum()


def test_ties_count_half_and_unknown_windows_give_nan():
    length = 20
    reference = np.zeros(length, dtype=np.int8)
    reference[:5] = -1
    samples = np.broadcast_to(reference, (2, 10, length))
    features = select_features(["gc", "edge"], parse_features([{"name": "edge", "bases": "GC", "window": [0, 5]}],
                                                              length), length)
    dummies = dummy_sets(features, n=50, seed=2)
    whole, edge = feature_importance(samples, reference, features, 0.0, dummies=dummies)
    # everything frozen: δ = inf for the feature and all its dummies, so the percentile is 50
    assert whole.delta == np.inf and whole.percentile == 50.0 and not whole.important
    # the window is unknown in x0: V cannot vary, δ and its percentile are undefined
    assert np.isnan(edge.delta) and np.isnan(edge.percentile) and not edge.important


def test_feature_importance_input_errors():
    length = 10
    gc = builtin_features(length)["gc"]
    reference = np.zeros(length, dtype=np.int8)
    samples = np.zeros((2, 3, length), dtype=np.int8)
    with pytest.raises(ValueError, match=r"no dummy features for window \[0, 10\] of feature 'gc'"):
        feature_importance(samples, reference, [gc], 0.0, dummies={(0, 5): dummy_features(3, (0, 5), length)})
    with pytest.raises(ValueError, match="the model takes 10"):
        feature_importance(np.zeros((2, 3, 12), dtype=np.int8), reference, [gc], 0.0)
    with pytest.raises(ValueError, match="no features given"):
        feature_importance(samples, reference, [], 0.0)
    with pytest.raises(ValueError, match="percentile_threshold must be >= 0 and <= 100"):
        feature_importance(samples, reference, [gc], 0.0, percentile_threshold=140)
    with pytest.raises(ValueError, match="at least 2 sequences"):
        feature_importance(samples[:1, :1], reference, [gc], 0.0)


def test_normality_rule():
    rng = np.random.default_rng(5)
    values = np.stack([
        rng.normal(size=20000),
        rng.binomial(147, 0.38, size=20000),  # the GC count of the paper: normal enough
        rng.exponential(size=20000),          # skewness 2
        rng.standard_t(4, size=20000),        # heavy tails
        np.full(20000, 3.0),                  # constant
    ], axis=1)
    result = normality(values)
    np.testing.assert_array_equal(result.normal, [True, True, False, False, False])
    np.testing.assert_allclose(result.skewness[2], 2.0, atol=0.3)
    assert np.isnan(result.skewness[4]) and np.isnan(result.excess_kurtosis[4])


def test_feature_columns():
    rng = np.random.default_rng(1)
    length = 8
    reference = rng.integers(0, 4, length).astype(np.int8)
    samples = rng.integers(0, 4, size=(2, 20, length)).astype(np.int8)
    features = select_features(["gc"], {}, length)
    results = feature_importance(samples, reference, features, 0.0, dummies=dummy_sets(features, n=10))
    columns = feature_columns(results)
    assert list(columns) == ["gc_delta", "gc_percentile", "gc_important", "gc_sample_mean", "gc_input_value",
                             "gc_normality", "gc_skewness", "gc_excess_kurtosis"]
    assert columns["gc_delta"] == results[0].delta and columns["gc_input_value"] == np.isin(reference, (1, 2)).sum()
    assert columns["gc_normality"] == ("normal" if results[0].normal else "non-normal")
    assert feature_columns([results[0]._replace(normal=False)])["gc_normality"] == "non-normal"


# ----------------------------------------------------------------------------- toy networks, real sampler

LENGTH = 60
WINDOW = (10, 50)


def _gc_count_network(codes):
    """Φ = [G+C count over the window]: the network has learned exactly the GC feature."""
    window = codes[:, WINDOW[0]:WINDOW[1]]
    return np.isin(window, (1, 2)).sum(axis=1, keepdims=True).astype(np.float64)


def _a_minus_t_network(codes):
    """Φ = [#A − #T over the window]: blind to GC composition."""
    window = codes[:, WINDOW[0]:WINDOW[1]]
    return ((window == 0).sum(axis=1) - (window == 3).sum(axis=1))[:, None].astype(np.float64)


@pytest.fixture(scope="module")
def toy_setup():
    references = np.random.default_rng(0).integers(0, 4, size=(10, LENGTH)).astype(np.int8)
    declared = parse_features([{"name": "gc", "bases": "GC", "window": list(WINDOW)}], LENGTH)
    a_minus_t = np.zeros((LENGTH, 4))
    a_minus_t[WINDOW[0]:WINDOW[1], 0], a_minus_t[WINDOW[0]:WINDOW[1], 3] = 1.0, -1.0
    features = select_features(["gc"], declared, LENGTH) + [Feature("a_minus_t", a_minus_t)]
    return references, features, dummy_sets(features, n=300, seed=0)


def _percentiles(network, toy_setup):
    references, features, dummies = toy_setup
    config = SamplerConfig(beta=0.5, mu=YEAST_MU, chains=20, steps=4000, thin=10, burnin=1000, seed=0)
    results = run_chains(NaiveEngine(network), np.ones(1), references, config)
    assert min(r.acceptance_rate for r in results) > 0.5  # the chains move
    return np.array([[f.percentile for f in feature_importance(r.samples, x0, features, YEAST_MU, dummies=dummies)]
                     for r, x0 in zip(results, references)])  # (inputs, [gc, a_minus_t])


def test_gc_network_ranks_gc_above_its_dummies(toy_setup):
    gc = _percentiles(_gc_count_network, toy_setup)[:, 0]
    assert (gc > 95).sum() >= 8, gc


def test_gc_blind_network_leaves_gc_among_its_dummies(toy_setup):
    percentiles = _percentiles(_a_minus_t_network, toy_setup)
    gc, a_minus_t = percentiles.T
    assert np.median(gc) < 80 and (gc > 90).sum() < 5, gc
    # positive control: the feature this network does use stands out, so the sampling is not vacuous
    assert (a_minus_t > 95).sum() >= 8, a_minus_t
