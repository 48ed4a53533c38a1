"""The paper's Metropolis sampler of eq. (9) (METHOD §3), batched over chains and inputs.

Each proposal picks a position uniformly among the input's variable positions and a new
base uniformly among the three others; it is accepted with probability
``min(1, exp(−β Δd + μ ΔN))``. The proposal is symmetric, so this is exact for eq. (9).

Determinism: every input draws its proposals from its own random stream, seeded by
``(seed, input index)``, in fixed blocks of steps, so the samples of an input do not depend
on which other inputs share its batch.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple, Sequence

import numpy as np
from kipoi_maxent._progress import progress_bar
from kipoi_maxent._validation import check_number
from kipoi_maxent.energy import weighted_distance
from kipoi_maxent.sequence import GC_CODES
from kipoi_maxent.samplers.engines import NaiveEngine

#: Steps whose random numbers are drawn at once; fixed so streams never depend on batching.
RANDOM_BLOCK_STEPS = 128
_IS_GC = np.isin(np.arange(4), GC_CODES)


@dataclass(frozen=True)
class SamplerConfig:
    """Parameters of one sampling run (defaults: the paper's CTCF application, METHOD §3).

    Attributes
    ----------
    beta : float
        Strength β > 0 of the penultimate-distance constraint.
    mu : float
        GC chemical potential μ (0: the plain distribution, eq. 3).
    chains : int
        Chains per input, each started at x0.
    steps : int
        Proposals per chain.
    thin : int
        Keep every ``thin``-th state (after burn-in).
    burnin : int
        Proposals per chain discarded before keeping states.
    seed : int
        Fixes every random draw; input ``i`` uses the stream ``SeedSequence(seed, spawn_key=(i,))``.
    """

    beta: float = 400.0
    mu: float = 0.0
    chains: int = 100
    steps: int = 30000
    thin: int = 100
    burnin: int = 0
    seed: int = 0

    def __post_init__(self):
        check_number(self.beta, "beta", minimum=0, exclusive=True,
                     hint="β sets how tightly samples keep x0's penultimate activations")
        check_number(self.mu, "mu")
        check_number(self.chains, "chains", integer=True, minimum=1)
        check_number(self.steps, "steps", integer=True, minimum=1)
        check_number(self.thin, "thin", integer=True, minimum=1)
        check_number(self.burnin, "burnin", integer=True, minimum=0)
        check_number(self.seed, "seed", integer=True, minimum=0)
        if self.burnin + self.thin > self.steps:
            raise ValueError(
                f"no sample would be kept: burnin ({self.burnin}) + thin ({self.thin}) exceeds "
                f"steps ({self.steps}); raise --steps or lower --thin/--burnin"
            )

    @property
    def draws_per_chain(self) -> int:
        """States kept per chain: after steps ``burnin + thin, burnin + 2 thin, …``."""
        return (self.steps - self.burnin) // self.thin


class ChainSamples(NamedTuple):
    """The samples of one input.

    Attributes
    ----------
    samples : np.ndarray, shape (chains, draws, L), int8
        Kept states as codes 0..3 (A, C, G, T); unknown bases of x0 stay -1.
    distances : np.ndarray, shape (chains, draws), float64
        d(Φ(x0), Φ(x)) of each kept state.
    acceptance_rate : float
        Accepted / proposed, over all chains and steps (burn-in included).
    reference_activations : np.ndarray, shape (k,), float64
        Φ(x0).
    """

    samples: np.ndarray
    distances: np.ndarray
    acceptance_rate: float
    reference_activations: np.ndarray


def input_stream(seed: int, input_index: int) -> np.random.Generator:
    """The random stream of input ``input_index`` of a run seeded with ``seed``."""
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence(seed, spawn_key=(input_index,))))


def run_chains(
    engine: NaiveEngine,
    weights: np.ndarray,
    references: np.ndarray,
    config: SamplerConfig,
    input_indices: Sequence[int] | None = None,
    progress: bool = False,
) -> list[ChainSamples]:
    """Sample eq. (9) for a batch of inputs, ``config.chains`` chains each.

    Parameters
    ----------
    engine : engine
        Evaluates Φ (see :class:`~kipoi_maxent.samplers.engines.NaiveEngine`).
    weights : np.ndarray, shape (k,)
        Output-layer weights of the distance.
    references : np.ndarray, shape (m, L), int8
        The inputs x0. Positions with unknown bases (-1) are never mutated.
    config : SamplerConfig
    input_indices : sequence of int, optional
        Index of each input in the whole run (selects its random stream); default ``0..m-1``.
    progress : bool
        Show a tqdm bar on stderr.

    Returns
    -------
    list of ChainSamples, one per input.
    """
    references = np.asarray(references, dtype=np.int8)
    n_inputs, length = references.shape
    indices = range(n_inputs) if input_indices is None else list(input_indices)
    chains = config.chains
    variable = [np.flatnonzero(row >= 0) for row in references]
    for index, positions in zip(indices, variable):
        if len(positions) == 0:
            raise ValueError(f"input {index} has no A/C/G/T base to sample")
    streams = [input_stream(config.seed, index) for index in indices]

    reference_phi = engine.evaluate(references)
    phi = engine.start(np.repeat(references, chains, axis=0))
    distance = weighted_distance(np.repeat(reference_phi, chains, axis=0), phi, weights)
    chain_reference = np.repeat(reference_phi, chains, axis=0)
    rows = np.arange(n_inputs * chains)

    draws = config.draws_per_chain
    kept_samples = np.empty((n_inputs * chains, draws, length), dtype=np.int8)
    kept_distances = np.empty((n_inputs * chains, draws))
    accepted_total = np.zeros(n_inputs * chains, dtype=np.int64)

    block_start = 0
    bar = progress_bar(total=config.steps, desc=f"MCMC, {n_inputs} input(s) x {chains} chains", unit="step",
                       enabled=progress, leave=False)
    for step in range(config.steps):
        offset = step - block_start
        if step % RANDOM_BLOCK_STEPS == 0:
            block_start, offset = step, 0
            position_block, base_block, log_u_block = _draw_block(streams, variable, chains)
        positions = position_block[:, offset].ravel()
        current = engine.states[rows, positions]
        proposed = (current + base_block[:, offset].ravel()) % 4  # uniform among the 3 others
        proposed_phi = engine.propose(positions, proposed)
        proposed_distance = weighted_distance(chain_reference, proposed_phi, weights)
        log_ratio = -config.beta * (proposed_distance - distance) + config.mu * (
            _IS_GC[proposed].astype(np.float64) - _IS_GC[current]
        )
        accepted = log_u_block[:, offset].ravel() < log_ratio
        engine.accept(accepted)
        distance = np.where(accepted, proposed_distance, distance)
        accepted_total += accepted

        kept = step + 1 - config.burnin
        if kept > 0 and kept % config.thin == 0 and kept // config.thin <= draws:
            kept_samples[:, kept // config.thin - 1] = engine.states
            kept_distances[:, kept // config.thin - 1] = distance
        bar.update()
    bar.close()

    results = []
    for i in range(n_inputs):
        block = slice(i * chains, (i + 1) * chains)
        results.append(
            ChainSamples(
                samples=kept_samples[block],
                distances=kept_distances[block],
                acceptance_rate=float(accepted_total[block].sum()) / (chains * config.steps),
                reference_activations=reference_phi[i],
            )
        )
    return results


def _draw_block(streams, variable, chains):
    """Random numbers of the next :data:`RANDOM_BLOCK_STEPS` steps of every input.

    Returns positions, base offsets (1..3) and log-uniforms, each (m, block, chains).
    """
    positions, offsets, log_u = [], [], []
    shape = (RANDOM_BLOCK_STEPS, chains)
    for stream, allowed in zip(streams, variable):
        positions.append(allowed[stream.integers(0, len(allowed), size=shape)])
        offsets.append(stream.integers(1, 4, size=shape, dtype=np.int8))
        log_u.append(np.log(stream.random(size=shape)))
    return np.stack(positions), np.stack(offsets), np.stack(log_u)
