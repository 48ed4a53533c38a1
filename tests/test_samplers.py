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


@pytest.mark.parametrize("engine", ["naive", "incremental"])
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
    run_chains(engine, resolved.weights, references, SamplerConfig(beta=1.0, chains=chains, steps=steps, thin=steps))
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
