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
from typing import Callable, NamedTuple, Sequence

import numpy as np
from kipoi_maxent._validation import check_number
from kipoi_maxent.energy import weighted_distance
from kipoi_maxent.sequence import GC_CODES

#: Steps whose random numbers are drawn at once; fixed so streams never depend on batching.
RANDOM_BLOCK_STEPS = 128
SAMPLERS = ("metropolis", "gibbs")
#: ``steps`` of a run that goes on until each input converges.
AUTO = "auto"
#: First convergence check of an ``auto`` run, in steps; later checks come every ~25 % more.
FIRST_CHECK_STEPS = 8 * RANDOM_BLOCK_STEPS
_IS_GC = np.isin(np.arange(4), GC_CODES)


@dataclass(frozen=True)
class SamplerConfig:
    """Parameters of one sampling run.

    Attributes
    ----------
    beta : float
        Strength β > 0 of the penultimate-distance constraint.
    mu : float
        GC chemical potential μ (0: the plain distribution, eq. 3).
    chains : int
        Chains per input, each started at x0.
    steps : int or "auto"
        Proposals per chain; ``"auto"`` (default): each input runs until its chains pass the
        convergence rule given to :func:`run_chains`, checked at :func:`checkpoints`, or until
        ``max_steps``; the first half of the steps run so far is discarded and at most
        ``max_draws`` states per chain are kept (thinning doubles as the run grows).
    max_steps : int
        Limit of an ``auto`` run, proposals per chain.
    thin : int, optional
        Keep every ``thin``-th state after burn-in (fixed ``steps`` only; default 100, or less so
        that at least 100 states per chain are kept).
    burnin : int, optional
        Proposals per chain discarded before keeping states (fixed ``steps`` only; default: half
        of them; 0 for the paper's exact protocol).
    seed : int
        Fixes every random draw: positions come from ``SeedSequence(seed)``, input ``i``'s
        bases and acceptance draws from its child ``SeedSequence(seed, spawn_key=(i,))``.
    sampler : str
        ``metropolis`` (the paper's) or ``gibbs`` (heat bath at the chosen position).
    max_draws : int
        ``auto`` runs: states kept per chain, at most (from the second half of the run).
    """

    beta: float = 50.0
    mu: float = 0.0
    chains: int = 4
    steps: int | str = AUTO
    max_steps: int = 5_000_000
    thin: int | None = None
    burnin: int | None = None
    seed: int = 0
    sampler: str = "metropolis"
    max_draws: int = 500

    def __post_init__(self):
        if self.sampler not in SAMPLERS:
            raise ValueError(f"sampler must be one of {', '.join(SAMPLERS)}, got {self.sampler!r}")
        check_number(self.beta, "beta", minimum=0, exclusive=True,
                     hint="β sets how tightly samples keep x0's penultimate activations")
        check_number(self.mu, "mu")
        check_number(self.chains, "chains", integer=True, minimum=1)
        check_number(self.seed, "seed", integer=True, minimum=0)
        check_number(self.max_draws, "max_draws", integer=True, minimum=4)
        if self.steps == AUTO:
            check_number(self.max_steps, "max_steps", integer=True, minimum=FIRST_CHECK_STEPS,
                         hint="the first convergence check comes after that many steps")
            given = [f"--{name}" for name in ("thin", "burnin") if getattr(self, name) is not None]
            if given:
                raise ValueError(f"{' and '.join(given)} apply to a fixed number of --steps; with --steps auto the "
                                 "first half of the run is discarded and thinning follows the run's length")
            return
        check_number(self.steps, "steps", integer=True, minimum=1, hint="or 'auto': until converged")
        check_number(self.thin if self.thin is not None else 100, "thin", integer=True, minimum=1)
        check_number(self.burnin_steps, "burnin", integer=True, minimum=0)
        if self.burnin_steps + self.thin_steps > self.steps:
            raise ValueError(
                f"no sample would be kept: burnin ({self.burnin_steps}) + thin ({self.thin_steps}) exceeds "
                f"steps ({self.steps}); raise --steps or lower --thin/--burnin"
            )

    @property
    def auto(self) -> bool:
        """Whether each input runs until it converges."""
        return self.steps == AUTO

    @property
    def thin_steps(self) -> int:
        """Thinning of a fixed-steps run: 100 (the paper's) unless given, less when that would keep
        fewer than 100 states per chain."""
        if self.thin is not None:
            return int(self.thin)
        return max(1, min(100, (self.steps - self.burnin_steps) // 100))

    @property
    def burnin_steps(self) -> int:
        """Burn-in of a fixed-steps run: the first half unless given (every chain starts at x0,
        and all share the proposed positions: statistics and ESS of the transient mislead)."""
        return self.steps // 2 if self.burnin is None else int(self.burnin)

    @property
    def draws_per_chain(self) -> int | None:
        """States kept per chain in a fixed-steps run (after steps ``burnin + thin, burnin + 2 thin,
        …``); None for an ``auto`` run (it depends on when each input converges)."""
        return None if self.auto else (self.steps - self.burnin_steps) // self.thin_steps


def checkpoints(max_steps: int) -> list[int]:
    """Steps at which an ``auto`` run checks convergence: :data:`FIRST_CHECK_STEPS`, then ~25 %
    more each time (whole blocks of :data:`RANDOM_BLOCK_STEPS`), and ``max_steps`` last."""
    points = [min(FIRST_CHECK_STEPS, max_steps)]
    while points[-1] < max_steps:
        grown = -(-int(points[-1] * 1.25) // RANDOM_BLOCK_STEPS) * RANDOM_BLOCK_STEPS
        points.append(min(grown, max_steps))
    return points


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
    steps : int
        Proposals per chain run for this input.
    converged : bool or None
        Whether the convergence rule passed (``auto`` runs); None for a fixed number of steps.
    """

    samples: np.ndarray
    distances: np.ndarray
    acceptance_rate: float
    reference_activations: np.ndarray
    steps: int
    converged: bool | None = None


def input_stream(seed: int, input_index: int) -> np.random.Generator:
    """The random stream of input ``input_index`` of a run seeded with ``seed`` (bases, acceptance)."""
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence(seed, spawn_key=(input_index,))))


def position_stream(seed: int) -> np.random.Generator:
    """The stream of the positions every input of a run seeded with ``seed`` mutates."""
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence(seed)))


class _Draws:
    """The states kept of the active chains: every ``thin``-th step (after ``start``), at most
    ``capacity`` per chain; a full buffer keeps every other draw and doubles ``thin``."""

    def __init__(self, rows: int, length: int, capacity: int, thin: int, start: int, grows: bool):
        self.states = np.empty((rows, capacity, length), dtype=np.int8)
        self.distances = np.empty((rows, capacity))
        self.thin, self.start, self.grows = thin, start, grows
        self.count = 0
        self.steps = np.empty(capacity, dtype=np.int64)  # the step each draw was taken after

    def due(self, step: int) -> bool:
        return step > self.start and (step - self.start) % self.thin == 0

    def candidates(self, first: int, count: int) -> np.ndarray:
        """Whether each of the steps ``first + 1 … first + count`` may be kept (a thinning that
        doubles within them keeps a subset of these)."""
        steps = np.arange(first + 1, first + count + 1)
        return (steps > self.start) & ((steps - self.start) % self.thin == 0)

    def add(self, step: int, states: np.ndarray, distances: np.ndarray) -> None:
        """Keep the states after ``step`` if it is due (the buffer halves, thinning doubles, when full)."""
        if not self.due(step):
            return
        if self.count == len(self.steps):
            if not self.grows:
                return
            keep = np.arange(1, self.count, 2)  # the draws at multiples of 2·thin
            half = len(keep)
            self.states[:, :half] = self.states[:, keep]
            self.distances[:, :half] = self.distances[:, keep]
            self.steps[:half] = self.steps[keep]
            self.count, self.thin = half, 2 * self.thin
            if not self.due(step):
                return
        self.states[:, self.count] = states
        self.distances[:, self.count] = distances
        self.steps[self.count] = step
        self.count += 1

    def after(self, step: int) -> np.ndarray:
        """Indices of the draws taken after ``step``."""
        return np.flatnonzero(self.steps[: self.count] > step)

    def keep_rows(self, rows: np.ndarray) -> None:
        self.states, self.distances = self.states[rows], self.distances[rows]


def run_chains(
    engine,
    weights: np.ndarray,
    references: np.ndarray,
    config: SamplerConfig,
    input_indices: Sequence[int] | None = None,
    *,
    converged: Callable[[np.ndarray, np.ndarray], bool] | None = None,
    progress: Callable[..., None] | None = None,
) -> list[ChainSamples]:
    """Sample eq. (9) for a batch of inputs, ``config.chains`` chains each.

    Parameters
    ----------
    engine : engine
        Evaluates Φ (:class:`~kipoi_maxent.samplers.naive.NaiveEngine` or a faster one); its
        arithmetic for one input must not depend on the others (every engine here is built so).
    weights : np.ndarray, shape (k,)
        Output-layer weights of the distance.
    references : np.ndarray, shape (m, L), int8
        The inputs x0. Positions with unknown bases (-1) are never mutated.
    config : SamplerConfig
    input_indices : sequence of int, optional
        Index of each input in the whole run (selects its random stream); default ``0..m-1``.
    converged : callable, optional
        ``(distances (chains, draws), samples (chains, draws, L)) -> bool``: the convergence
        rule of an ``auto`` run (required then), applied to each input's draws from the second
        half of the run at every :func:`checkpoints` step. It sees one input's chains only, so
        when an input stops does not depend on the other inputs of the batch.
    progress : callable, optional
        Called as ``progress(proposals=n, running=m)`` every :data:`RANDOM_BLOCK_STEPS` steps,
        and as ``progress(done=n, converged=c)`` when inputs stop (``c`` of them converged).

    Returns
    -------
    list of ChainSamples, one per input, in input order.
    """
    references = np.asarray(references, dtype=np.int8)
    n_inputs, length = references.shape
    indices = range(n_inputs) if input_indices is None else list(input_indices)
    chains = config.chains
    variable = [np.flatnonzero(row >= 0) for row in references]
    for index, positions in zip(indices, variable):
        if len(positions) == 0:
            raise ValueError(f"input {index} has no A/C/G/T base to sample")
    if config.auto and converged is None:
        raise ValueError("an auto-steps run needs a convergence rule (converged=...)")
    streams = [input_stream(config.seed, index) for index in indices]
    positions_stream = position_stream(config.seed)
    gibbs = config.sampler == "gibbs"

    reference_phi = engine.evaluate(references)
    if not np.all(np.isfinite(reference_phi)):
        raise ValueError("the network produced non-finite penultimate activations (NaN or inf); check the input "
                         "normalisation in the spec and the model weights")
    chain_reference = np.repeat(reference_phi, chains, axis=0)
    phi = engine.start(np.repeat(references, chains, axis=0), chains_per_input=chains)
    distance = weighted_distance(chain_reference, phi, weights)
    run_block = getattr(engine, "run_block", None) or (lambda *args, **kw: run_block_stepwise(engine, *args, **kw))

    if config.auto:
        stops = checkpoints(config.max_steps)
        draws = _Draws(n_inputs * chains, length, 2 * config.max_draws, thin=1, start=0, grows=True)
    else:
        stops = [config.steps]
        draws = _Draws(n_inputs * chains, length, config.draws_per_chain, thin=config.thin_steps,
                       start=config.burnin_steps, grows=False)
    changed_total = np.zeros(n_inputs * chains, dtype=np.int64)
    active = np.arange(n_inputs)  # inputs still running, in order; their chains are the engine's rows
    results: list[ChainSamples | None] = [None] * n_inputs
    step = reported = 0

    def report():
        nonlocal reported
        if progress is not None and step > reported:
            progress(proposals=(step - reported) * len(active) * chains, running=len(active))
        reported = step

    def rows_of(position: int) -> slice:
        return slice(position * chains, (position + 1) * chains)

    for stop in stops:
        while step < stop:
            offset = step % RANDOM_BLOCK_STEPS
            if offset == 0:
                report()
                position_block, base_block, uniform_block = _draw_block(positions_stream, streams, variable, chains,
                                                                        active)
            count = min(RANDOM_BLOCK_STEPS - offset, stop - step)
            window = slice(offset, offset + count)
            record = draws.candidates(step, count)
            states_out = np.empty((int(record.sum()), len(distance), length), dtype=np.int8)
            distances_out = np.empty((len(states_out), len(distance)))
            run_block(np.repeat(position_block[:, window], chains, axis=0).T,
                      base_block[:, window].transpose(1, 0, 2).reshape(count, -1),
                      uniform_block[:, window].transpose(1, 0, 2).reshape(count, -1),
                      beta=config.beta, mu=config.mu, gibbs=gibbs, reference=chain_reference, weights=weights,
                      distance=distance, moved=changed_total, record=record, states_out=states_out,
                      distances_out=distances_out)
            for kept_step, states, distances in zip(step + 1 + np.flatnonzero(record), states_out, distances_out):
                draws.add(int(kept_step), states, distances)
            step += count
        report()

        # which inputs stop here: all at the last stop, else those whose chains converged
        kept = draws.after(step // 2) if config.auto else np.arange(draws.count)
        passed = [bool(converged(draws.distances[rows_of(p)][:, kept], draws.states[rows_of(p)][:, kept]))
                  for p in range(len(active))] if config.auto else [None] * len(active)
        last = stop == stops[-1]
        stopping = [p for p in range(len(active)) if last or passed[p]]
        for p in stopping:
            results[active[p]] = ChainSamples(
                samples=draws.states[rows_of(p)][:, kept], distances=draws.distances[rows_of(p)][:, kept],
                acceptance_rate=float(changed_total[rows_of(p)].sum()) / (chains * step),
                reference_activations=reference_phi[active[p]], steps=step, converged=passed[p])
        if progress is not None and stopping:  # as they stop: a batch's early finishers are not "still sampling"
            progress(done=len(stopping), converged=sum(bool(passed[p]) for p in stopping))
        staying = np.array([p for p in range(len(active)) if p not in stopping], dtype=np.int64)
        if len(staying) == 0:
            break
        if len(stopping):  # the stopped inputs' chains leave the engine; the others' arithmetic is unchanged
            chain_rows = (staying[:, None] * chains + np.arange(chains)).ravel()
            engine.keep(chain_rows)
            draws.keep_rows(chain_rows)
            chain_reference, distance = chain_reference[chain_rows], distance[chain_rows]
            changed_total = changed_total[chain_rows]
            active = active[staying]
    return results


def run_block_stepwise(engine, positions, offsets, uniforms, *, beta, mu, gibbs, reference, weights, distance, moved,
                       record, states_out, distances_out) -> None:
    """Steps of eq. (9)'s sampler through an engine's ``propose``/``accept``, one step at a time:
    the reference implementation of the block interface (engines with a compiled ``run_block``
    of the same signature do the whole block in one call).

    Parameters
    ----------
    positions : np.ndarray, shape (S, n), int
        The position each chain mutates at each of the S steps.
    offsets : np.ndarray, shape (S, n), int8
        Metropolis: the proposed base is ``(current + offset) % 4`` (offsets 1..3; unused by Gibbs).
    uniforms : np.ndarray, shape (S, n), float64
        The accept (Metropolis) or choice (Gibbs) draws.
    beta, mu : float
    gibbs : bool
        Heat bath over the four bases instead of Metropolis.
    reference : np.ndarray, shape (n, k)
        Φ(x0) of each chain.
    weights : np.ndarray, shape (k,)
    distance : np.ndarray, shape (n,), float64, in/out
        Each chain's current distance.
    moved : np.ndarray, shape (n,), int64, in/out
        Accepted moves, counted up.
    record : np.ndarray, shape (S,), bool
        After which steps to keep the states.
    states_out : np.ndarray, shape (R, n, L), int8, out
    distances_out : np.ndarray, shape (R, n), float64, out
        The states and distances after the R recorded steps.
    """
    alternatives = np.arange(1, 4, dtype=np.int8)
    rows = np.arange(len(distance))
    kept = 0
    for step in range(len(positions)):
        at = positions[step]
        current = engine.states[rows, at]
        bases = (current[:, None] + alternatives) % 4 if gibbs else ((current + offsets[step]) % 4)[:, None]
        proposed = weighted_distance(reference[:, None], engine.propose(at, bases), weights)
        log_ratio = -beta * (proposed - distance[:, None]) + mu * (
            _IS_GC[bases].astype(np.float64) - _IS_GC[current][:, None])
        if gibbs:
            choice = _heat_bath_choice(log_ratio, uniforms[step])
        else:
            choice = np.where(np.log(uniforms[step]) < log_ratio[:, 0], 0, -1)
        engine.accept(choice)
        accepted = choice >= 0
        distance[accepted] = proposed[accepted, choice[accepted]]
        moved += accepted
        if record[step]:
            states_out[kept] = engine.states
            distances_out[kept] = distance
            kept += 1


def _heat_bath_choice(log_ratio: np.ndarray, uniform: np.ndarray) -> np.ndarray:
    """Draw among [current, alternative 0, 1, 2] from ``exp(log_ratio)`` (current: 0).

    Inverse CDF over that fixed order; returns -1 for the current base, else the alternative.
    """
    log_weights = np.concatenate([np.zeros((len(log_ratio), 1)), log_ratio], axis=1)
    weights = np.exp(log_weights - log_weights.max(axis=1, keepdims=True))
    cumulative = np.cumsum(weights, axis=1)
    picked = (cumulative < uniform[:, None] * cumulative[:, -1:]).sum(axis=1)
    return np.minimum(picked, 3) - 1


def _draw_block(positions_stream, streams, variable, chains, active):
    """Random numbers of the next :data:`RANDOM_BLOCK_STEPS` steps of the ``active`` inputs.

    One uniform per step from ``positions_stream`` picks the position of every input: the
    same rank among its variable positions ``variable[i]`` (the same position for inputs
    without unknown bases). An input that has stopped draws nothing more from its stream.

    Returns positions (m, block), base offsets 1..3 (m, block, chains) and uniforms in [0, 1)
    (m, block, chains), for the m active inputs.
    """
    rank_fraction = positions_stream.random(RANDOM_BLOCK_STEPS)
    positions, offsets, uniforms = [], [], []
    for input_index in active:
        stream, allowed = streams[input_index], variable[input_index]
        ranks = np.minimum((rank_fraction * len(allowed)).astype(np.int64), len(allowed) - 1)
        positions.append(allowed[ranks])
        offsets.append(stream.integers(1, 4, size=(RANDOM_BLOCK_STEPS, chains), dtype=np.int8))
        uniforms.append(stream.random(size=(RANDOM_BLOCK_STEPS, chains)))
    return np.stack(positions), np.stack(offsets), np.stack(uniforms)
