"""Exactness of the sampler against full enumeration of eq. (9), and determinism."""
import numpy as np
import pytest
from sampling_checks import assert_samples_match_enumeration, beta_for_x0_probability
from toy_models import tiny_keras_model

from kipoi_maxent.api import resolve_model
from kipoi_maxent.samplers import NaiveEngine, SamplerConfig, make_engine, run_chains
from kipoi_maxent.spec import ModelSpec

LENGTH = 5


@pytest.fixture(scope="module")
def tiny():
    return tiny_keras_model(LENGTH, n_outputs=2, seed=3)


@pytest.mark.parametrize("engine", ["naive", "incremental", "fused"])
@pytest.mark.parametrize("sampler", ["metropolis", "gibbs"])
@pytest.mark.parametrize("output_units", [(1, 0), (0,)])
@pytest.mark.parametrize("x0_probability, mu", [(0.003, -0.8), (0.012, 0.6)])
def test_sampler_matches_enumeration(tiny, output_units, x0_probability, mu, sampler, engine):
    resolved = resolve_model(tiny, ModelSpec(output_units=output_units))
    x0 = np.array([[2, 0, 3, 1, 2]], dtype=np.int8)
    beta = beta_for_x0_probability(resolved, x0[0], mu, x0_probability)
    assert_samples_match_enumeration(resolved, make_engine(engine, resolved)[0], x0[0], beta, mu, sampler)


def test_samples_do_not_depend_on_batching(tiny):
    resolved = resolve_model(tiny)
    references = np.random.default_rng(0).integers(0, 4, (5, LENGTH)).astype(np.int8)
    config = SamplerConfig(beta=5.0, mu=-0.3, chains=7, steps=300, thin=3, seed=4)
    engine = NaiveEngine(resolved.penultimate)
    together = run_chains(engine, resolved.weights, references, config)
    one_by_one = [run_chains(engine, resolved.weights, references[i:i + 1], config, input_indices=[i])[0]
                  for i in range(len(references))]
    for a, b in zip(together, one_by_one):
        np.testing.assert_array_equal(a.samples, b.samples)
        np.testing.assert_array_equal(a.distances, b.distances)
        assert a.acceptance_rate == b.acceptance_rate
    other_seed = run_chains(engine, resolved.weights, references, SamplerConfig(**{**config.__dict__, "seed": 5}))
    assert not np.array_equal(other_seed[0].samples, together[0].samples)


def test_unknown_bases_stay_fixed(tiny):
    resolved = resolve_model(tiny)
    x0 = np.array([[2, -1, 3, 1, -1]], dtype=np.int8)
    config = SamplerConfig(beta=1.0, chains=10, steps=200, thin=10)
    result = run_chains(NaiveEngine(resolved.penultimate), resolved.weights, x0, config)[0]
    assert np.all(result.samples[..., [1, 4]] == -1)
    assert len(np.unique(result.samples[..., 0])) > 1


class PositionRecordingEngine(NaiveEngine):
    """The naive engine, keeping the positions each step proposes."""

    def __init__(self, penultimate):
        super().__init__(penultimate)
        self.positions = []

    def propose(self, positions, bases):
        self.positions.append(positions.copy())
        return super().propose(positions, bases)


def test_inputs_share_positions_within_their_variable_positions(tiny):
    """Inputs without unknown bases mutate the same position at every step (the fast engines'
    updates read the same dense-kernel rows); an input with unknown bases draws uniformly
    among its others."""
    resolved = resolve_model(tiny)
    references = np.array([[2, 0, 3, 1, 2], [1, 1, 0, 3, 2], [-1, 2, -1, 0, 3]], dtype=np.int8)
    chains, steps = 3, 3000
    engine = PositionRecordingEngine(resolved.penultimate)
    run_chains(engine, resolved.weights, references, SamplerConfig(beta=1.0, chains=chains, steps=steps, thin=steps,
                                                                   burnin=0))
    per_input = np.array(engine.positions)[:, ::chains]  # (steps, inputs)
    np.testing.assert_array_equal(np.array(engine.positions), np.repeat(per_input, chains, axis=1))
    np.testing.assert_array_equal(per_input[:, 0], per_input[:, 1])
    counts = np.bincount(per_input[:, 0], minlength=LENGTH)
    assert np.all(np.abs(counts - steps / LENGTH) < 5 * np.sqrt(steps / LENGTH))
    counts = np.bincount(per_input[:, 2], minlength=LENGTH)
    assert counts[0] == counts[2] == 0
    assert np.all(np.abs(counts[[1, 3, 4]] - steps / 3) < 5 * np.sqrt(steps / 3))


@pytest.mark.parametrize("field, value, message", [
    ("beta", 0, "beta must be > 0"),
    ("beta", -1, "beta must be > 0"),
    ("chains", 0, "chains must be >= 1"),
    ("thin", 500, "no sample would be kept"),
    ("mu", float("nan"), "mu must be finite"),
])
def test_config_errors(field, value, message):
    with pytest.raises(ValueError, match=message):
        SamplerConfig(**{"steps": 100, field: value})


def stops_by_input(distances, samples):
    """A convergence rule that depends on the input's own chains only, and stops different
    inputs at different checkpoints: on the first base of the first kept draw."""
    return distances.shape[1] >= 60 + 20 * int(samples[0, 0, 0] % 3)


@pytest.mark.parametrize("engine_name", ["naive", "incremental", "fused"])
def test_auto_steps_stop_each_input_on_its_own_chains(tiny, engine_name):
    """With steps="auto" an input stops at the first checkpoint where its rule passes, keeps
    draws from the second half of what it ran, at most 2 × max_draws; and its samples are the same
    in a batch (where other inputs stop before or after it) and alone."""
    from kipoi_maxent.samplers.mcmc import checkpoints

    resolved = resolve_model(tiny)
    engine = make_engine(engine_name, resolved)[0]
    references = np.random.default_rng(2).integers(0, 4, (6, LENGTH)).astype(np.int8)
    config = SamplerConfig(beta=5.0, mu=0.2, chains=3, steps="auto", max_steps=6000, max_draws=100)
    together = run_chains(engine, resolved.weights, references, config, converged=stops_by_input)
    points = checkpoints(config.max_steps)
    assert len({r.steps for r in together}) > 1  # inputs stopped at different checkpoints
    for index, result in enumerate(together):
        assert result.steps in points
        assert result.converged == stops_by_input(result.distances, result.samples)
        assert result.converged or result.steps == points[-1]
        assert 50 <= result.samples.shape[1] <= 200 and result.samples.shape[:2] == result.distances.shape
        alone = run_chains(engine, resolved.weights, references[index:index + 1], config, input_indices=[index],
                           converged=stops_by_input)[0]
        np.testing.assert_array_equal(alone.samples, result.samples)
        np.testing.assert_array_equal(alone.distances, result.distances)
        assert (alone.steps, alone.acceptance_rate, alone.converged) == (
            result.steps, result.acceptance_rate, result.converged)


def test_progress_counts_each_input_done_when_it_stops(tiny):
    """Progress hears of an input when it stops, not when its whole batch does: after every
    report, inputs done + inputs still sampling = inputs, and proposals add up to the steps run."""
    resolved = resolve_model(tiny)
    engine = make_engine("fused", resolved)[0]
    references = np.random.default_rng(2).integers(0, 4, (6, LENGTH)).astype(np.int8)
    config = SamplerConfig(beta=5.0, mu=0.2, chains=3, steps="auto", max_steps=6000, max_draws=100)
    state = {"done": 0, "converged": 0, "proposals": 0}
    seen = []

    def progress(done=0, converged=0, proposals=0, running=None):
        state["done"] += done
        state["converged"] += converged
        state["proposals"] += proposals
        if running is not None:
            seen.append((state["done"], running))

    results = run_chains(engine, resolved.weights, references, config, converged=stops_by_input, progress=progress)
    assert len({r.steps for r in results}) > 1
    assert all(done + running == len(references) for done, running in seen)
    assert {done for done, _ in seen} != {0}  # some inputs were reported done while others still ran
    assert state["done"] == len(references)
    assert state["converged"] == sum(bool(r.converged) for r in results)
    assert state["proposals"] == sum(r.steps for r in results) * config.chains


def test_auto_steps_keep_the_second_half():
    """The draws an auto run keeps were taken after half of its steps, thinned evenly."""
    from kipoi_maxent.samplers.mcmc import _Draws

    draws = _Draws(rows=1, length=2, capacity=20, thin=1, start=0, grows=True)
    for step in range(1, 1001):
        draws.add(step, np.full((1, 2), step % 4, dtype=np.int8), np.full(1, float(step)))
    kept = draws.after(500)
    steps = draws.steps[kept]
    assert steps.min() > 500 and np.all(np.diff(steps) == draws.thin) and 5 <= len(kept) <= 20
    np.testing.assert_array_equal(draws.distances[0, kept], steps.astype(float))


def test_auto_steps_need_a_rule_and_refuse_fixed_options():
    with pytest.raises(ValueError, match="--thin apply to a fixed number of --steps"):
        SamplerConfig(steps="auto", thin=10)
    with pytest.raises(ValueError, match="max_steps must be >= 1024"):
        SamplerConfig(steps="auto", max_steps=100)
