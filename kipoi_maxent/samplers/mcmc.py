"""MCMC samplers of eq. (9) (METHOD §3), batched over chains and inputs.

Each step picks one position per input, uniformly among its variable positions, shared by
all the input's chains (valid: the position is drawn independently of the states; METHOD §3
allows it), then

- ``metropolis`` (the paper's): proposes a base uniformly among the three others and accepts
  it with probability ``min(1, exp(−β Δd + μ ΔN))``;
- ``gibbs`` (heat bath): evaluates all four bases and draws from their conditional,
  ``∝ exp(−β d + μ N)``.

Both leave eq. (9) invariant. Determinism: positions come from one stream of the seed, shared
by every input (inputs without unknown bases mutate the same position at a step, so the fast
engines' updates of the whole batch read the same rows of the dense kernel); bases and
acceptance draws come from each input's own stream, seeded by ``(seed, input index)``. Both
are drawn in fixed blocks of steps, so an input's samples do not depend on which other inputs
share its batch, nor on the engine. Any position distribution drawn independently of the
states keeps eq. (9) invariant; sharing one across inputs couples which sites they visit,
never their statistics.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple, Sequence

import numpy as np
from kipoi_maxent._progress import progress_bar
from kipoi_maxent._validation import check_number
from kipoi_maxent.energy import weighted_distance
from kipoi_maxent.sequence import GC_CODES

#: Steps whose random numbers are drawn at once; fixed so streams never depend on batching.
RANDOM_BLOCK_STEPS = 128
SAMPLERS = ("metropolis", "gibbs")
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
        Fixes every random draw: positions come from ``SeedSequence(seed)``, input ``i``'s
        bases and acceptance draws from its child ``SeedSequence(seed, spawn_key=(i,))``.
    sampler : str
        ``metropolis`` (the paper's) or ``gibbs`` (heat bath at the chosen position).
    """

    beta: float = 400.0
    mu: float = 0.0
    chains: int = 100
    steps: int = 30000
    thin: int = 100
    burnin: int = 0
    seed: int = 0
    sampler: str = "metropolis"

    def __post_init__(self):
        if self.sampler not in SAMPLERS:
            raise ValueError(f"sampler must be one of {', '.join(SAMPLERS)}, got {self.sampler!r}")
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
        Fraction of steps that changed the state, over all chains and steps (burn-in included).
    reference_activations : np.ndarray, shape (k,), float64
        Φ(x0).
    """

    samples: np.ndarray
    distances: np.ndarray
    acceptance_rate: float
    reference_activations: np.ndarray


def input_stream(seed: int, input_index: int) -> np.random.Generator:
    """The random stream of input ``input_index`` of a run seeded with ``seed`` (bases, acceptance)."""
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence(seed, spawn_key=(input_index,))))


def position_stream(seed: int) -> np.random.Generator:
    """The stream of the positions every input of a run seeded with ``seed`` mutates."""
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence(seed)))


def run_chains(
    engine,
    weights: np.ndarray,
    references: np.ndarray,
    config: SamplerConfig,
    input_indices: Sequence[int] | None = None,
    progress: bool = False,
    penultimate=None,
) -> list[ChainSamples]:
    """Sample eq. (9) for a batch of inputs, ``config.chains`` chains each.

    Parameters
    ----------
    engine : engine
        Evaluates Φ (:class:`~kipoi_maxent.samplers.engines.NaiveEngine` or a faster one).
    weights : np.ndarray, shape (k,)
        Output-layer weights of the distance.
    references : np.ndarray, shape (m, L), int8
        The inputs x0. Positions with unknown bases (-1) are never mutated.
    config : SamplerConfig
    input_indices : sequence of int, optional
        Index of each input in the whole run (selects its random stream); default ``0..m-1``.
    progress : bool
        Show a tqdm bar on stderr.
    penultimate : callable, optional
        ``(n, L) codes -> (n, k)`` Φ that gives each row the same value whatever else is in
        the call (e.g. :meth:`~kipoi_maxent.api.ResolvedModel.penultimate`). Φ(x0) and the
        distances of kept states are computed with it, so they (and statistics of them such as
        rank R-hat, which is sensitive to ties) do not depend on the batch or the engine.
        Default: ``engine.evaluate``.

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
    positions_stream = position_stream(config.seed)
    gibbs = config.sampler == "gibbs"

    if penultimate is not None and getattr(engine, "penultimate", None) == penultimate:
        penultimate = None  # the engine's own Φ is that function already: no second forward pass
    # the dynamics use the engine's own Φ(x0), consistent with its proposals' Φ
    chain_reference = np.repeat(engine.evaluate(references), chains, axis=0)
    reference_phi = chain_reference[::chains] if penultimate is None else np.asarray(penultimate(references), np.float64)
    kept_reference = np.repeat(reference_phi, chains, axis=0)
    phi = engine.start(np.repeat(references, chains, axis=0), chains_per_input=chains)
    distance = weighted_distance(chain_reference, phi, weights)
    rows = np.arange(n_inputs * chains)
    alternatives = np.arange(1, 4, dtype=np.int8)  # base offsets: the three other bases

    draws = config.draws_per_chain
    kept_samples = np.empty((n_inputs * chains, draws, length), dtype=np.int8)
    kept_distances = np.empty((n_inputs * chains, draws))
    changed_total = np.zeros(n_inputs * chains, dtype=np.int64)

    bar = progress_bar(total=config.steps, desc=f"MCMC, {n_inputs} input(s) x {chains} chains", unit="step",
                       enabled=progress, leave=False)
    for step in range(config.steps):
        offset = step % RANDOM_BLOCK_STEPS
        if offset == 0:
            position_block, base_block, uniform_block = _draw_block(positions_stream, streams, variable, chains)
        positions = np.repeat(position_block[:, offset], chains)
        current = engine.states[rows, positions]
        if gibbs:
            bases = (current[:, None] + alternatives) % 4
        else:
            bases = ((current + base_block[:, offset].ravel()) % 4)[:, None]
        proposed_distance = weighted_distance(chain_reference[:, None], engine.propose(positions, bases), weights)
        log_ratio = -config.beta * (proposed_distance - distance[:, None]) + config.mu * (
            _IS_GC[bases].astype(np.float64) - _IS_GC[current][:, None]
        )
        uniform = uniform_block[:, offset].ravel()
        if gibbs:
            choice = _heat_bath_choice(log_ratio, uniform)
        else:
            choice = np.where(np.log(uniform) < log_ratio[:, 0], 0, -1)
        engine.accept(choice)
        moved = choice >= 0
        distance[moved] = proposed_distance[moved, choice[moved]]
        changed_total += moved

        kept = step + 1 - config.burnin
        if kept > 0 and kept % config.thin == 0 and kept // config.thin <= draws:
            kept_samples[:, kept // config.thin - 1] = engine.states
            kept_distances[:, kept // config.thin - 1] = (
                distance if penultimate is None
                else weighted_distance(kept_reference, np.asarray(penultimate(engine.states), np.float64), weights))
        bar.update()
    bar.close()

    results = []
    for i in range(n_inputs):
        block = slice(i * chains, (i + 1) * chains)
        results.append(
            ChainSamples(
                samples=kept_samples[block],
                distances=kept_distances[block],
                acceptance_rate=float(changed_total[block].sum()) / (chains * config.steps),
                reference_activations=reference_phi[i],
            )
        )
    return results


def _heat_bath_choice(log_ratio: np.ndarray, uniform: np.ndarray) -> np.ndarray:
    """Draw among [current, alternative 0, 1, 2] from ``exp(log_ratio)`` (current: 0).

    Inverse CDF over that fixed order; returns -1 for the current base, else the alternative.
    """
    log_weights = np.concatenate([np.zeros((len(log_ratio), 1)), log_ratio], axis=1)
    weights = np.exp(log_weights - log_weights.max(axis=1, keepdims=True))
    cumulative = np.cumsum(weights, axis=1)
    picked = (cumulative < uniform[:, None] * cumulative[:, -1:]).sum(axis=1)
    return np.minimum(picked, 3) - 1


def _draw_block(positions_stream, streams, variable, chains):
    """Random numbers of the next :data:`RANDOM_BLOCK_STEPS` steps of every input.

    One uniform per step from ``positions_stream`` picks the position of every input: the
    same rank among its variable positions ``variable[i]`` (the same position for inputs
    without unknown bases).

    Returns positions (m, block), base offsets 1..3 (m, block, chains) and uniforms in [0, 1)
    (m, block, chains).
    """
    rank_fraction = positions_stream.random(RANDOM_BLOCK_STEPS)
    positions, offsets, uniforms = [], [], []
    for stream, allowed in zip(streams, variable):
        ranks = np.minimum((rank_fraction * len(allowed)).astype(np.int64), len(allowed) - 1)
        positions.append(allowed[ranks])
        offsets.append(stream.integers(1, 4, size=(RANDOM_BLOCK_STEPS, chains), dtype=np.int8))
        uniforms.append(stream.random(size=(RANDOM_BLOCK_STEPS, chains)))
    return np.stack(positions), np.stack(offsets), np.stack(uniforms)
