"""Checks shared by the sampler tests: β on a network's distance scale, exact marginals from
full enumeration, agreement of two engines' chains."""
import numpy as np

from kipoi_maxent.energy import exact_distribution


def beta_for_x0_probability(resolved, x0, mu, target):
    """β on the network's distance scale: the one giving x0 probability ``target`` (bisection)."""
    low, high = 1e-3, 1e4
    for _ in range(60):
        beta = np.sqrt(low * high)
        sequences, probabilities, _ = exact_distribution(resolved.penultimate, x0, resolved.weights, beta, mu)
        p_x0 = probabilities[(sequences == x0).all(axis=1)][0]
        low, high = (beta, high) if p_x0 < target else (low, beta)
    return beta


def exact_marginals(sequences, probabilities):
    """Per-position base probabilities ``(L, 4)`` of an enumerated distribution."""
    return np.stack([np.bincount(sequences[:, i], weights=probabilities, minlength=4)
                     for i in range(sequences.shape[1])])


def assert_same_chains(naive, fast):
    """Same seed, same draws: the chains coincide, except that a float32 near-tie in an
    accept decision (~1e-7 apart) may send a rare chain its own way from that step on."""
    for a, b in zip(naive, fast):
        same = (a.samples == b.samples).all(axis=(1, 2))
        assert same.mean() >= 0.75, same
        np.testing.assert_allclose(a.distances[same], b.distances[same], rtol=1e-4, atol=1e-5)
        assert 0.05 < a.acceptance_rate < 0.95
        assert abs(a.acceptance_rate - b.acceptance_rate) < 0.02
