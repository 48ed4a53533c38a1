"""The incremental engine against the naive reference: same samples, bounded drift, fallbacks."""
import numpy as np
import pytest
from sampling_checks import assert_phi_does_not_depend_on_the_batch, assert_resync_removes_drift, assert_same_chains
from toy_models import conv_dense_keras_model, tiny_keras_model

from kipoi_maxent.api import resolve_model
from kipoi_maxent.samplers import SamplerConfig, make_engine, run_chains
from kipoi_maxent.samplers.incremental import IncrementalEngine
from kipoi_maxent.spec import ModelSpec, Normalization

@pytest.mark.parametrize("sampler", ["metropolis", "gibbs"])
def test_same_samples_as_naive_on_the_ctcf_model(ctcf_model, sampler):
    references = np.random.default_rng(0).integers(0, 4, (3, 101)).astype(np.int8)
    config = SamplerConfig(beta=50, chains=8, steps=150, thin=10, seed=2, sampler=sampler)
    naive = run_chains(make_engine("naive", ctcf_model)[0], ctcf_model.weights, references, config)
    engine, fallback = make_engine("incremental", ctcf_model)
    assert fallback is None and type(engine) is IncrementalEngine
    fast = run_chains(engine, ctcf_model.weights, references, config)
    assert_same_chains(naive, fast)


@pytest.mark.parametrize("padding, activation, normalization", [
    ("same", "sigmoid", Normalization(center=(0.3, 0.2, 0.2, 0.3), scale=(0.46, 0.4, 0.4, 0.46))),
    ("valid", "tanh", None),
])
def test_same_samples_for_other_layer_options(padding, activation, normalization):
    resolved = resolve_model(conv_dense_keras_model(12, padding, activation, seed=5),
                             ModelSpec(normalization=normalization, alphabet="GCAT"))
    references = np.random.default_rng(1).integers(0, 4, (2, 12)).astype(np.int8)
    config = SamplerConfig(beta=20, chains=6, steps=300, thin=10, seed=3)
    naive = run_chains(make_engine("naive", resolved)[0], resolved.weights, references, config)
    fast = run_chains(make_engine("incremental", resolved)[0], resolved.weights, references, config)
    assert_same_chains(naive, fast)


def test_phi_stays_exact_over_1e5_steps(ctcf_model):
    """Running sums vs a full forward pass after 10^5 steps, without re-synchronising."""
    engine = make_engine("incremental", ctcf_model, resync_every=10**9)[0]
    reference = np.random.default_rng(4).integers(0, 4, (1, 101)).astype(np.int8)
    config = SamplerConfig(beta=50, chains=2, steps=100_000, thin=50_000, seed=1)
    run_chains(engine, ctcf_model.weights, reference, config)
    tracked = engine._dense_activation(engine._u)
    np.testing.assert_allclose(tracked, ctcf_model.penultimate(engine.states), atol=1e-4)
    assert (engine.states != reference).any()


def test_unsupported_models_fall_back_or_fail_clearly():
    resolved = resolve_model(conv_dense_keras_model(12, "valid", "relu", pool=True))
    engine, reason = make_engine("auto", resolved)
    assert engine.name == "windowed" and "MaxPooling1D" in reason  # the next engine in line takes it
    with pytest.raises(ValueError, match="incremental engine cannot run this model.*MaxPooling1D"):
        make_engine("incremental", resolved)
    channels_first = resolve_model(tiny_keras_model(5, input_shape=(4, 5)))
    assert "layout" in make_engine("auto", channels_first)[1]
    with pytest.raises(ValueError, match="engine must be"):
        make_engine("fast", resolved)


def test_phi_does_not_depend_on_the_batch():
    """The per-step update and the periodic full recomputation give an input the same Φ in any batch."""
    # big enough that BLAS blocks the products (tiny ones round the same at any batch)
    resolved = resolve_model(conv_dense_keras_model(40, "valid", "relu", seed=5, filters=32, width=12, hidden=64))
    engine = IncrementalEngine(resolved.network.sub_model, resolved.encoder, resync_every=7)
    assert_phi_does_not_depend_on_the_batch(engine, 40)


def test_resync_removes_drift(ctcf_model):
    assert_resync_removes_drift(make_engine("incremental", ctcf_model, resync_every=25)[0], 101, resync_every=25)
