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
    accept decision (~1e-7 apart) may send a rare chain its own way from that step on: at most
    one chain in fifty (and one in any smaller run; the benchmark counts them on large ones)."""
    same = np.concatenate([(a.samples == b.samples).all(axis=(1, 2)) for a, b in zip(naive, fast)])
    assert (~same).sum() <= max(1, len(same) // 50), f"{(~same).sum()} of {len(same)} chains differ"
    for a, b in zip(naive, fast):
        same = (a.samples == b.samples).all(axis=(1, 2))
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


def assert_phi_does_not_depend_on_the_batch(engine, length, inputs=3, chains=4, steps=25, seed=0):
    """Φ of every proposal of an input is bit-identical run in a batch of ``inputs`` inputs and alone.

    Each step proposes all three other bases at one position per input, shared by its chains
    (as :func:`~kipoi_maxent.samplers.run_chains` does), on even steps the same for all inputs
    (as for inputs without unknown bases), and accepts a random alternative or none.
    """
    rng = np.random.default_rng(seed)
    references = rng.integers(0, 4, (inputs, length)).astype(np.int8)
    positions = rng.integers(0, length, (steps, inputs))
    positions[::2] = positions[::2, :1]
    choices = rng.integers(-1, 3, (steps, inputs, chains))

    def trajectory(selected):
        phis = [engine.start(np.repeat(references[selected], chains, axis=0), chains_per_input=chains)]
        rows = np.arange(len(selected) * chains)
        for step in range(steps):
            at = np.repeat(positions[step, selected], chains)
            bases = ((engine.states[rows, at][:, None] + np.arange(1, 4)) % 4).astype(np.int8)
            phis.append(engine.propose(at, bases))
            engine.accept(choices[step, selected].ravel())
        return [phi.reshape(len(selected), chains, *phi.shape[1:]) for phi in phis]

    together = trajectory(np.arange(inputs))
    for i in range(inputs):
        alone = trajectory(np.array([i]))
        for step, (a, b) in enumerate(zip(together, alone)):
            np.testing.assert_array_equal(a[i], b[0], err_msg=f"input {i}, step {step}")


def assert_resync_removes_drift(engine, length, resync_every, inputs=2, chains=3, seed=0):
    """The periodic full recomputation of a fast engine's running sums (``resync_every``
    steps) removes whatever drift they carry: a drift planted in the sums is visible in Φ up
    to the step before, and gone after it. Φ of the current states is read through the engine
    interface, as a proposal of the base already there."""
    rng = np.random.default_rng(seed)
    engine.start(rng.integers(0, 4, (inputs * chains, length)).astype(np.int8), chains_per_input=chains)
    engine._u = engine._u + rng.normal(0, 1e-2, engine._u.shape)  # as if rounding had run away
    rows = np.arange(inputs * chains)

    def drift():
        at = np.repeat(rng.integers(0, length, inputs), chains)
        tracked = engine.propose(at, engine.states[rows, at][:, None])[:, 0]
        return np.abs(tracked - engine.evaluate(engine.states)).max()

    for step in range(1, resync_every + 1):
        if step == resync_every:
            assert drift() > 1e-3, "the planted drift should still show before the re-sync"
        at = np.repeat(rng.integers(0, length, inputs), chains)
        engine.propose(at, ((engine.states[rows, at] + rng.integers(1, 4, len(at))) % 4)[:, None].astype(np.int8))
        engine.accept(rng.integers(-1, 1, len(at)))
    assert drift() < 1e-5, "the re-sync should have removed the drift"
