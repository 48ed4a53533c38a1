"""The windowed engine: exact by enumeration, the naive engine's Φ and samples, bounded drift, fallbacks."""
import re

import keras
import numpy as np
import pytest
from sampling_checks import (
    assert_phi_does_not_depend_on_the_batch,
    assert_resync_removes_drift,
    assert_same_chains,
    assert_samples_match_enumeration,
    beta_for_x0_probability,
)
from toy_models import tiny_keras_model, tiny_pooled_keras_model

from kipoi_maxent.api import resolve_model
from kipoi_maxent.samplers import NaiveEngine, SamplerConfig, make_engine, run_chains
from kipoi_maxent.samplers.layers import UnsupportedModel
from kipoi_maxent.samplers.windowed import WindowedEngine
from kipoi_maxent.spec import ModelSpec, Normalization

LENGTH = 6


def _basset_like(length=60, seed=0):
    """3 blocks with every supported layer kind: same/valid padding, max/average pooling,
    BatchNormalization (non-trivial statistics), ReLU and Activation layers, Dropout, and two
    dense layers after Flatten."""
    keras.utils.set_random_seed(seed)
    layers = keras.layers
    inputs = keras.Input((length, 4))
    x = layers.Conv1D(8, 5, padding="same", activation="relu")(inputs)
    x = layers.MaxPooling1D(3)(x)
    x = layers.Conv1D(8, 3)(x)
    x = layers.BatchNormalization()(x)
    x = layers.ReLU()(x)
    x = layers.AveragePooling1D(2)(x)
    x = layers.Dropout(0.2)(x)
    x = layers.Conv1D(8, 4, padding="same", activation="tanh")(x)
    x = layers.MaxPooling1D(2)(x)
    x = layers.Flatten()(x)
    x = layers.Dense(16, activation="relu")(x)
    x = layers.Dropout(0.1)(x)
    x = layers.Dense(16)(x)
    x = layers.Activation("sigmoid")(x)
    model = keras.Model(inputs, layers.Dense(2)(x))
    rng = np.random.default_rng(seed)
    # random batch-norm statistics and biases, so that no layer is the identity
    model.set_weights([w + rng.uniform(0.2, 0.5, w.shape).astype(np.float32) if w.ndim == 1 else w
                       for w in model.get_weights()])
    return model


@pytest.fixture(scope="module")
def basset_like():
    return resolve_model(_basset_like(), ModelSpec(normalization=Normalization(center=(0.3, 0.2, 0.2, 0.3),
                                                                               scale=(0.46, 0.4, 0.4, 0.46))))


@pytest.fixture(scope="module")
def tiny():
    # seed 4: a landscape the chains cross within the run (with seeds 0, 2, 3, ReLU + max
    # pooling make modes that trap the naive engine's chains as well)
    return resolve_model(tiny_pooled_keras_model(LENGTH, seed=4), ModelSpec(output_units=(1, 0)))


@pytest.mark.parametrize("sampler", ["metropolis", "gibbs"])
@pytest.mark.parametrize("x0_probability, mu", [(0.003, -0.8), (0.012, 0.6)])
def test_sampler_matches_enumeration(tiny, x0_probability, mu, sampler):
    engine, fallback = make_engine("auto", tiny)
    assert engine.name == "windowed" and "MaxPooling1D" in fallback
    x0 = np.array([[2, 0, 3, 1, 2, 1]], dtype=np.int8)
    beta = beta_for_x0_probability(tiny, x0[0], mu, x0_probability)
    assert_samples_match_enumeration(tiny, engine, x0[0], beta, mu, sampler)


def test_phi_of_random_proposals_equals_the_naive_engine(basset_like):
    engine = make_engine("windowed", basset_like)[0]
    assert [(b.stride, b.outputs, b.window) for b in engine.blocks] == [(3, 20, 3), (2, 9, 3), (2, 4, 4)]
    naive = NaiveEngine(basset_like.penultimate)
    rng = np.random.default_rng(5)
    chains, length = 4, basset_like.sequence_length
    states = rng.integers(0, 4, (3 * chains, length)).astype(np.int8)
    np.testing.assert_allclose(engine.start(states), naive.start(states), rtol=1e-5, atol=1e-6)
    # every position (both ends included) is proposed, with one or all three alternatives
    for step, position in enumerate(rng.permutation(np.r_[np.arange(length), 0, length - 1, 0])):
        positions = np.repeat([position, rng.integers(length), length - 1 - position], chains)
        current = engine.states[np.arange(len(positions)), positions]
        offsets = np.arange(1, 4) if step % 2 else rng.integers(1, 4, (len(positions), 1))
        bases = ((current[:, None] + offsets) % 4).astype(np.int8)
        np.testing.assert_allclose(engine.propose(positions, bases), naive.propose(positions, bases),
                                   rtol=1e-5, atol=1e-6)
        choice = rng.integers(-1, bases.shape[1], len(positions))
        engine.accept(choice)
        naive.accept(choice)
    np.testing.assert_array_equal(engine.states, naive.states)
    assert (engine.states != states).any()


@pytest.mark.parametrize("sampler", ["metropolis", "gibbs"])
def test_same_samples_as_naive(basset_like, sampler):
    references = np.random.default_rng(0).integers(0, 4, (2, basset_like.sequence_length)).astype(np.int8)
    config = SamplerConfig(beta=30, chains=6, steps=300, thin=10, seed=2, sampler=sampler)
    naive = run_chains(make_engine("naive", basset_like)[0], basset_like.weights, references, config)
    engine, fallback = make_engine("auto", basset_like)
    assert engine.name == "windowed", fallback
    assert_same_chains(naive, run_chains(engine, basset_like.weights, references, config))


def test_phi_stays_exact_over_1e5_steps(tiny):
    """Only the first Dense pre-activations are a running sum: after 10^5 accepted mutations
    without re-synchronising they still match a full forward pass (measured drift: 1.5e-5),
    and the stored block outputs, recomputed rather than summed, match it to rounding."""
    engine = make_engine("windowed", tiny, resync_every=10**9)[0]
    rng = np.random.default_rng(1)
    start = rng.integers(0, 4, (2, LENGTH)).astype(np.int8)
    engine.start(start)
    chains, accept_all = np.arange(2), np.zeros(2, dtype=np.int64)
    for position, offset in zip(rng.integers(0, LENGTH, 100_000), rng.integers(1, 4, 100_000)):
        positions = np.full(2, position)
        engine.propose(positions, ((engine.states[chains, positions] + offset) % 4)[:, None].astype(np.int8))
        engine.accept(accept_all)
    np.testing.assert_allclose(engine._phi(engine._u), tiny.penultimate(engine.states), atol=1e-4)
    for stored, fresh in zip(engine._stored, engine._levels(engine.states)):
        np.testing.assert_allclose(stored, fresh, rtol=1e-6, atol=1e-6)
    engine._resync()
    np.testing.assert_allclose(engine._phi(engine._u), engine.evaluate(engine.states), rtol=1e-6, atol=1e-6)
    assert (engine.states != start).any()


def _lstm_model():
    keras.utils.set_random_seed(0)
    inputs = keras.Input((12, 4))
    x = keras.layers.Conv1D(4, 3, activation="relu")(inputs)
    x = keras.layers.LSTM(3, return_sequences=True, name="recurrent")(x)
    x = keras.layers.Flatten()(x)
    return keras.Model(inputs, keras.layers.Dense(2)(keras.layers.Dense(5)(x)))


def _strided_model():
    keras.utils.set_random_seed(0)
    inputs = keras.Input((12, 4))
    x = keras.layers.Conv1D(4, 3, strides=2, name="strided")(inputs)
    x = keras.layers.Flatten()(x)
    return keras.Model(inputs, keras.layers.Dense(2)(keras.layers.Dense(5)(x)))


@pytest.mark.parametrize("build, layer", [(_lstm_model, "'recurrent' (LSTM"), (_strided_model, "'strided' (Conv1D")])
def test_unsupported_models_fall_back_or_fail_clearly(build, layer):
    resolved = resolve_model(build())
    with pytest.raises(UnsupportedModel, match=re.escape(f"layer {layer}")):
        WindowedEngine(resolved.network.sub_model, resolved.encoder)
    with pytest.raises(ValueError, match=f"windowed engine cannot run this model: {re.escape(f'layer {layer}')}.*--engine naive"):
        make_engine("windowed", resolved)
    engine, reason = make_engine("auto", resolved)
    assert engine.name == "naive" and f"windowed engine: layer {layer}" in reason


def test_auto_keeps_the_fused_engine_where_it_applies():
    resolved = resolve_model(tiny_keras_model(8))
    engine, reason = make_engine("auto", resolved)
    assert engine.name == "fused" and reason is None
    # the windowed engine runs it too, with the same Φ
    windowed = make_engine("windowed", resolved)[0]
    codes = np.random.default_rng(0).integers(0, 4, (5, 8)).astype(np.int8)
    np.testing.assert_allclose(windowed.evaluate(codes), resolved.penultimate(codes), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("work_space", ["whole inputs", "part of an input"])
def test_phi_does_not_depend_on_the_batch(basset_like, work_space, monkeypatch):
    """With im2col chunks of whole inputs, and with chunks so small that an input's chains
    span several (they then restart at every input)."""
    from kipoi_maxent.samplers import windowed

    if work_space == "part of an input":
        monkeypatch.setattr(windowed, "_CHUNK_FLOATS", 2000)
    engine = WindowedEngine(basset_like.network.sub_model, basset_like.encoder, resync_every=7)
    assert_phi_does_not_depend_on_the_batch(engine, basset_like.sequence_length)


def test_naive_phi_does_not_depend_on_the_batch(basset_like):
    assert_phi_does_not_depend_on_the_batch(NaiveEngine(basset_like.penultimate), basset_like.sequence_length)


def test_resync_removes_drift(basset_like):
    engine = WindowedEngine(basset_like.network.sub_model, basset_like.encoder, resync_every=25)
    assert_resync_removes_drift(engine, basset_like.sequence_length, resync_every=25)
