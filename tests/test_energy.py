"""kipoi_maxent.energy: distance weights, weighted distance, exact distribution of eq. (9)."""
import itertools

import numpy as np
import pytest

from kipoi_maxent.energy import (
    exact_distribution,
    output_unit_weights,
    weighted_distance,
)
from kipoi_maxent.sequence import one_hot

RNG = np.random.default_rng(1)


def test_output_unit_weights_single_and_pair():
    kernel = RNG.normal(size=(6, 3))
    np.testing.assert_array_equal(output_unit_weights(kernel, [2]), kernel[:, 2])
    np.testing.assert_allclose(output_unit_weights(kernel, [1, 0]), kernel[:, 1] - kernel[:, 0])
    np.testing.assert_allclose(output_unit_weights(kernel, (0, 2)), kernel[:, 0] - kernel[:, 2])


@pytest.mark.parametrize("units", [[3], [0, 3], [-1]])
def test_output_unit_out_of_range_names_valid_range(units):
    kernel = RNG.normal(size=(6, 3))
    with pytest.raises(ValueError, match=r"out of range.*valid: 0\.\.2"):
        output_unit_weights(kernel, units)


@pytest.mark.parametrize("units", [[], [0, 1, 2]])
def test_output_units_must_be_one_or_two(units):
    with pytest.raises(ValueError, match=r"\[o\] or \[a, b\]"):
        output_unit_weights(RNG.normal(size=(6, 3)), units)


def test_output_kernel_must_be_2d():
    with pytest.raises(ValueError, match="2-D"):
        output_unit_weights(np.ones(5), [0])


def test_weighted_distance_matches_loop():
    k = 7
    reference = RNG.normal(size=k)
    activations = RNG.normal(size=(3, 4, k))
    weights = RNG.normal(size=k)
    got = weighted_distance(reference, activations, weights)
    assert got.shape == (3, 4)
    for i in range(3):
        for j in range(4):
            total = 0.0
            for u in range(k):
                total += weights[u] ** 2 * (reference[u] - activations[i, j, u]) ** 2
            assert got[i, j] == pytest.approx(np.sqrt(total), rel=1e-12)
    assert weighted_distance(reference, reference[None], weights)[0] == 0.0


def _toy_penultimate(length, k=3, seed=2):
    matrix = np.random.default_rng(seed).normal(size=(4 * length, k))

    def penultimate(codes):
        codes = np.asarray(codes)
        return np.tanh(one_hot(codes, np.float64).reshape(len(codes), -1) @ matrix)

    return penultimate


@pytest.mark.parametrize("beta, mu", [(3.0, 0.0), (6.0, -0.8), (0.0, 1.2), (40.0, 0.5)])
def test_exact_distribution_matches_brute_force(beta, mu):
    length = 3
    penultimate = _toy_penultimate(length)
    weights = np.array([1.5, -0.7, 2.0])
    x0 = np.array([2, 0, 3], dtype=np.int8)
    sequences, probabilities, distances = exact_distribution(penultimate, x0, weights, beta, mu)

    assert sequences.shape == (64, 3) and sequences.dtype == np.int8
    assert len({tuple(s) for s in sequences}) == 64
    assert probabilities.sum() == pytest.approx(1.0, abs=1e-12)

    phi0 = penultimate(x0[None])[0]
    brute = {}
    for seq in itertools.product(range(4), repeat=length):
        phi = penultimate(np.array([seq]))[0]
        d = np.sqrt(sum(w * w * (a - b) ** 2 for w, a, b in zip(weights, phi0, phi)))
        n_gc = sum(base in (1, 2) for base in seq)
        brute[seq] = (d, np.exp(-beta * d + mu * n_gc))
    z = sum(weight for _, weight in brute.values())
    for seq, p, d in zip(sequences, probabilities, distances):
        expected_d, weight = brute[tuple(int(b) for b in seq)]
        assert d == pytest.approx(expected_d, rel=1e-9, abs=1e-12)
        assert p == pytest.approx(weight / z, rel=1e-9)
    # x0 is the most probable sequence at mu = 0 (distance 0)
    if mu == 0 and beta > 0:
        assert tuple(sequences[np.argmax(probabilities)]) == tuple(x0)


def test_exact_distribution_refuses_long_inputs():
    def never(codes):
        raise AssertionError("must refuse before enumerating")

    with pytest.raises(ValueError, match="L <= 8"):
        exact_distribution(never, np.zeros(9, dtype=np.int8), np.ones(3), 1.0, 0.0)
