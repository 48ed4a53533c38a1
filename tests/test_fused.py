"""The fused engine against the naive reference and against itself: same samples, the block
kernel equal to the per-step path, invariance to batch, groups and threads, bounded drift."""
import numba
import numpy as np
import pytest
from sampling_checks import assert_phi_does_not_depend_on_the_batch, assert_resync_removes_drift, assert_same_chains
from toy_models import conv_dense_keras_model

from kipoi_maxent.api import resolve_model
from kipoi_maxent.samplers import SamplerConfig, make_engine, run_chains
from kipoi_maxent.samplers.fused import FusedEngine
from kipoi_maxent.samplers.mcmc import run_block_stepwise, weighted_distance
from kipoi_maxent.spec import ModelSpec, Normalization

@pytest.mark.parametrize("sampler", ["metropolis", "gibbs"])
def test_same_samples_as_naive_on_the_ctcf_model(ctcf_model, sampler):
    references = np.random.default_rng(0).integers(0, 4, (3, 101)).astype(np.int8)
    references[1, :4] = -1  # an input with unknown bases: its positions differ from the others'
    config = SamplerConfig(beta=50, chains=10, steps=300, thin=10, seed=2, sampler=sampler)
    naive = run_chains(make_engine("naive", ctcf_model)[0], ctcf_model.weights, references, config)
    engine, fallback = make_engine("auto", ctcf_model)
    assert fallback is None and isinstance(engine, FusedEngine)
    assert_same_chains(naive, run_chains(engine, ctcf_model.weights, references, config))


@pytest.mark.parametrize("padding, activation, normalization", [
    ("same", "sigmoid", Normalization(center=(0.3, 0.2, 0.2, 0.3), scale=(0.46, 0.4, 0.4, 0.46))),
    ("valid", "tanh", None),
    ("same", "linear", None),
])
@pytest.mark.parametrize("sampler", ["metropolis", "gibbs"])
def test_same_samples_for_other_layer_options(padding, activation, normalization, sampler):
    resolved = resolve_model(conv_dense_keras_model(12, padding, activation, seed=5),
                             ModelSpec(normalization=normalization, alphabet="GCAT"))
    references = np.random.default_rng(1).integers(0, 4, (2, 12)).astype(np.int8)
    config = SamplerConfig(beta=20, mu=0.3, chains=6, steps=300, thin=10, seed=3, sampler=sampler)
    naive = run_chains(make_engine("naive", resolved)[0], resolved.weights, references, config)
    assert_same_chains(naive, run_chains(make_engine("fused", resolved)[0], resolved.weights, references, config))


def _block_arguments(engine, weights, references, chains, steps, seed):
    """Random draws of ``steps`` steps for ``references`` × ``chains`` chains, shaped as
    :func:`run_chains` hands them to ``run_block``, and the chains' start (distances under
    ``weights``); records every third step."""
    rng = np.random.default_rng(seed)
    n = len(references) * chains
    phi = engine.start(np.repeat(references, chains, axis=0), chains_per_input=chains)
    reference = np.repeat(engine.evaluate(references), chains, axis=0)
    record = np.arange(steps) % 3 == 2
    return dict(positions=np.repeat(rng.integers(0, references.shape[1], (steps, len(references))), chains, axis=1),
                offsets=rng.integers(1, 4, (steps, n)).astype(np.int8), uniforms=rng.random((steps, n)),
                reference=reference, distance=weighted_distance(reference, phi, weights),
                moved=np.zeros(n, np.int64), record=record,
                states_out=np.zeros((record.sum(), n, references.shape[1]), np.int8),
                distances_out=np.zeros((record.sum(), n)))


@pytest.mark.parametrize("sampler", ["metropolis", "gibbs"])
def test_block_kernel_equals_the_per_step_path(ctcf_model, sampler):
    """``run_block`` (one compiled call) and ``run_block_stepwise`` over the same engine's
    ``propose``/``accept`` give bit-identical states and move counts, across re-syncs inside the
    block and chain groups split within an input (10 chains > one group); the distances equal
    to the last bit but one (the stepwise path sums them with numpy, in another order)."""
    references = np.random.default_rng(7).integers(0, 4, (2, 101)).astype(np.int8)
    outputs = []
    for run in (lambda engine, **kw: engine.run_block(**kw), lambda engine, **kw: run_block_stepwise(engine, **kw)):
        engine = make_engine("fused", ctcf_model, resync_every=40)[0]
        arguments = _block_arguments(engine, ctcf_model.weights, references, chains=10, steps=150, seed=1)
        run(engine, beta=50.0, mu=-0.2, gibbs=sampler == "gibbs", weights=ctcf_model.weights, **arguments)
        outputs.append(arguments | {"states": engine.states})
    block, stepwise = outputs
    for key in ("states", "moved", "states_out"):
        np.testing.assert_array_equal(block[key], stepwise[key], err_msg=key)
    for key in ("distance", "distances_out"):
        np.testing.assert_allclose(block[key], stepwise[key], rtol=1e-14, err_msg=key)
    assert 0 < block["moved"].sum() < 150 * 20  # some moves, not all


def test_samples_do_not_depend_on_batch_or_threads(ctcf_model):
    """Through ``run_chains``: each input's samples are bit-identical run in a batch, alone,
    and on one thread instead of all."""
    references = np.random.default_rng(3).integers(0, 4, (3, 101)).astype(np.int8)
    references[2, 50:53] = -1
    config = SamplerConfig(beta=50, chains=10, steps=400, thin=20, seed=5)
    engine = make_engine("fused", ctcf_model)[0]
    together = run_chains(engine, ctcf_model.weights, references, config)
    threads = numba.get_num_threads()
    numba.set_num_threads(1)
    try:
        one_thread = run_chains(engine, ctcf_model.weights, references, config)
    finally:
        numba.set_num_threads(threads)
    for index, result in enumerate(together):
        alone = run_chains(engine, ctcf_model.weights, references[index:index + 1], config, input_indices=[index])[0]
        for other in (alone, one_thread[index]):
            np.testing.assert_array_equal(result.samples, other.samples)
            np.testing.assert_array_equal(result.distances, other.distances)


def test_the_last_inputs_of_a_run_use_every_thread(ctcf_model):
    """Fewer inputs than threads: an input's chains are split into smaller groups (one per
    thread), which changes no sample (``test_samples_do_not_depend_on_batch_or_threads``)."""
    engine = make_engine("fused", ctcf_model)[0]
    references = np.random.default_rng(2).integers(0, 4, (3, 101)).astype(np.int8)
    engine.start(np.repeat(references[:1], 4, axis=0), chains_per_input=4)
    assert len(engine._group_first) == min(numba.get_num_threads(), 4)
    engine.start(np.repeat(references, 8, axis=0), chains_per_input=8)
    assert len(engine._group_first) == 3  # enough inputs: one group of GROUP = 8 chains each


def test_phi_does_not_depend_on_the_batch():
    """The per-step path, on a net large enough for the dense tiles to matter."""
    resolved = resolve_model(conv_dense_keras_model(40, "valid", "relu", seed=5, filters=32, width=12, hidden=70))
    engine = FusedEngine(resolved.network.sub_model, resolved.encoder, resync_every=7)
    assert_phi_does_not_depend_on_the_batch(engine, 40)


def test_start_copies_the_sums_of_chains_equal_to_their_first(ctcf_model):
    """Chains starting equal to their input's first chain copy its running sums instead of
    recomputing them: the copies are bit-identical to what each chain would compute."""
    references = np.random.default_rng(9).integers(0, 4, (3, 101)).astype(np.int8)
    states = np.repeat(references, 4, axis=0)
    states[5, 40] = (states[5, 40] + 1) % 4  # input 1: one chain differs from the others
    states[8:12] = np.random.default_rng(10).integers(0, 4, (4, 101))  # input 2: all differ
    engine = make_engine("fused", ctcf_model)[0]
    phi = engine.start(states, chains_per_input=4)
    copied = (engine._z.copy(), engine._u.copy())
    np.testing.assert_array_equal(phi, engine.evaluate(states))
    engine._resync()  # every chain computed from its own state
    np.testing.assert_array_equal(copied[0], engine._z)
    np.testing.assert_array_equal(copied[1], engine._u)


def test_phi_stays_exact_over_1e5_steps(ctcf_model):
    """Running sums vs a full forward pass after 10^5 steps of the block kernel, without re-syncing."""
    engine = make_engine("fused", ctcf_model, resync_every=10**9)[0]
    reference = np.random.default_rng(4).integers(0, 4, (1, 101)).astype(np.int8)
    config = SamplerConfig(beta=50, chains=2, steps=100_000, thin=50_000, seed=1)
    run_chains(engine, ctcf_model.weights, reference, config)
    np.testing.assert_allclose(engine._phi(engine._u), ctcf_model.penultimate(engine.states), atol=1e-4)
    assert (engine.states != reference).any()


def test_resync_removes_drift(ctcf_model):
    assert_resync_removes_drift(make_engine("fused", ctcf_model, resync_every=25)[0], 101, resync_every=25)


def test_block_kernel_resync_removes_drift(ctcf_model):
    """A drift planted in the dense sums shows in the tracked Φ after a block shorter than
    ``resync_every`` and is gone after a block that crosses a re-sync."""
    references = np.random.default_rng(8).integers(0, 4, (2, 101)).astype(np.int8)
    engine = make_engine("fused", ctcf_model, resync_every=30)[0]
    arguments = _block_arguments(engine, ctcf_model.weights, references, chains=3, steps=60, seed=2)
    engine._u = engine._u + np.random.default_rng(0).normal(0, 1e-2, engine._u.shape)

    def drift(steps):
        block = {key: value[:steps] if key in ("positions", "offsets", "uniforms", "record") else value
                 for key, value in arguments.items()}
        block["states_out"] = np.zeros((block["record"].sum(), *arguments["states_out"].shape[1:]), np.int8)
        block["distances_out"] = np.zeros((block["record"].sum(), len(arguments["distance"])))
        engine.run_block(beta=50.0, mu=0.0, gibbs=False, weights=ctcf_model.weights, **block)
        return np.abs(engine._phi(engine._u) - engine.evaluate(engine.states)).max()

    assert drift(20) > 1e-3  # steps 1..20: before the re-sync at step 30
    assert drift(20) < 1e-5  # steps 21..40 cross it


def test_unsupported_models_fall_back_with_one_reason():
    resolved = resolve_model(conv_dense_keras_model(12, "valid", "relu", pool=True))
    engine, reason = make_engine("auto", resolved)
    assert engine.name == "windowed" and reason.startswith("fused and incremental engines:") and "MaxPooling1D" in reason
    with pytest.raises(ValueError, match="fused engine cannot run this model.*MaxPooling1D"):
        make_engine("fused", resolved)
