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


def assert_samples_match_enumeration(resolved, engine, x0, beta, mu, sampler):
    """Sample eq. (9) for ``x0`` (L,) with ``engine`` and compare with full enumeration: the
    per-position marginals within total variation 0.02, the mean distance within 5 % of its
    SD, and every recorded distance equal to that of its recorded state."""
    from kipoi_maxent.samplers import SamplerConfig, run_chains

    sequences, probabilities, distances = exact_distribution(resolved.penultimate, x0, resolved.weights, beta, mu)
    exact = exact_marginals(sequences, probabilities)
    # the target must be far from both the uniform and the frozen case for the test to mean anything
    assert 0.05 < 0.5 * np.abs(exact - 0.25).sum(axis=1).max() < 0.8
    assert probabilities.max() < 0.2

    config = SamplerConfig(beta=beta, mu=mu, chains=100, steps=2400, thin=4, burnin=200, seed=11, sampler=sampler)
    result = run_chains(engine, resolved.weights, np.asarray(x0, dtype=np.int8)[None], config)[0]
    samples = result.samples.reshape(-1, len(x0))
    sampled = np.stack([np.bincount(samples[:, i], minlength=4) for i in range(len(x0))]) / len(samples)
    total_variation = 0.5 * np.abs(sampled - exact).sum(axis=1)
    assert total_variation.max() <= 0.02, total_variation
    exact_mean = float((probabilities * distances).sum())
    exact_sd = float(np.sqrt((probabilities * (distances - exact_mean) ** 2).sum()))
    assert abs(result.distances.mean() - exact_mean) <= 0.05 * exact_sd + 1e-9
    recomputed = np.linalg.norm((resolved.penultimate(samples) - result.reference_activations) * resolved.weights,
                                axis=1)
    # float32 networks; the fast engines accumulate float32 updates between re-syncs
    np.testing.assert_allclose(result.distances.ravel(), recomputed, rtol=1e-4, atol=1e-4)
