"""Engines × samplers on three architectures: proposals/s, ESS/s, peak memory, forward ceiling.

One process, three Keras 3 networks with random (seeded) weights:

- ``ctcf``: the paper's CTCF net, (101, 4) → Conv1D(64, 24, relu) → Flatten → Dense(100, relu)
  → Dropout(0.1) → Dense(2, softmax); μ = 0;
- ``ctcf_trained``: the same architecture with the shipped example's trained weights
  (``example_configs/models/ctcf_cnn``), the network the demo runs;
- ``nucleosome``: the paper's nucleosome net, (201, 4) with Bernoulli-normalised one-hot input
  (S. cerevisiae base frequencies, 38.3 % GC) → Conv1D(30, 6, sigmoid) → Flatten →
  Dense(400, sigmoid) → Dense(2, softmax); μ = −0.49 as in the paper;
- ``basset``: a modest Basset-like net, (600, 4) → 3 × [Conv1D(128, 19/11/7, relu) →
  MaxPooling1D(3/4/4)] → Flatten → Dense(256, relu) → Dense(256, relu) → Dense(2); μ = 0.
  The fused and incremental engines do not support it, so ``auto`` takes the windowed engine.

For every engine (``naive``, the one ``auto`` picks — fused, else incremental, else windowed,
else naive — and those named with ``--engines``, by default the incremental one) × sampler
(``metropolis``, ``gibbs``) it measures

- proposals/s of a fixed-length run with 100 chains per input (a Gibbs proposal = one
  position update of one chain, which evaluates 3 alternatives: evaluations/s = 3 × that);
- ESS/s: ArviZ bulk ESS of the distance trace and of the GC-count trace of each input
  (its chains pooled as ``(chains, draws)``), summed over the inputs of the run and divided
  by the run's wall time (burn-in included), from a separate thin=1 run;
- peak memory: peak process RSS during the timed run minus the RSS just before it (Linux
  ``VmHWM`` after resetting it through ``/proc/self/clear_refs``; else ``ru_maxrss``);
- whether the faster engines' samples equal the naive engine's (same seed; the ESS run, or the
  throughput run's final states where there is no ESS run).

and, per network, the raw batched forward throughput of the penultimate sub-model (the naive
engine's ceiling), the naive engine's overhead relative to it, and two rooflines of the fast
engines: the dense update over every row of the mutated window (the incremental engine's
product) and over only the rows whose activation changed in each chain (the fused engine's
sparse update, counted on stationary states). On the trained CTCF net it also times the demo's
small batch (:data:`SMALL_BATCH`: 12 inputs × 20 chains), naive against ``auto``'s engine.
β is calibrated per
network so that the Metropolis acceptance rate is about 0.45 (after burn-in; for the
Basset-like net, over a short run from x0). Ratios are against the reference = naive engine
+ metropolis sampler of the same network. Run sizes are in :data:`SIZES` (fewer inputs and
no ESS run for the Basset-like net: its naive forward pass is ~2,100 rows/s on 2 cores).
Finally it runs ``bench_genome_composition.py`` and prints its MB/s line.

Needs ArviZ (``pip install arviz``; 0.x and 1.x APIs both handled) and threadpoolctl
(optional, for the BLAS description). Results: ``benchmarks/README.md``.

Usage::

    python benchmarks/bench_engines.py            # ~5 min on 2 idle cores
    python benchmarks/bench_engines.py --quick    # ~1.7 min
    python benchmarks/bench_engines.py --networks ctcf --no-genome --blas-threads 1
    python benchmarks/bench_engines.py --networks basset --engines windowed --no-genome
"""
from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import argparse  # noqa: E402
import functools  # noqa: E402
import platform  # noqa: E402
import resource  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
import warnings  # noqa: E402
from dataclasses import dataclass, field  # noqa: E402

import numpy as np  # noqa: E402

from kipoi_maxent.diagnostics import arviz_description, bulk_ess  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
CHAINS = 100
#: The demo's shape (inputs, chains per input), timed on the trained CTCF net.
SMALL_BATCH = (12, 20)
TARGET_ACCEPTANCE = 0.45
ACCEPTANCE_TOLERANCE = 0.07
#: S. cerevisiae A, C, G, T frequencies (38.3 % GC; METHOD §2) for the nucleosome input normalisation.
YEAST_FREQUENCIES = (0.3085, 0.1915, 0.1915, 0.3085)


# ---------------------------------------------------------------------------------------------
# Run sizes
# ---------------------------------------------------------------------------------------------
@dataclass
class Sizes:
    """How much work one network gets.

    ``inputs``/``steps``: the throughput run (thin = steps: one kept draw, so the memory
    figure is the engine's and the sampler's, not the sample store's). ``ess_*``: the thin=1
    ESS run. ``calibration_*``: the short Metropolis runs of the β search.
    """

    inputs: int
    steps: int
    ess_inputs: int
    ess_steps: int
    ess_burnin: int
    calibration_inputs: int
    calibration_steps: int
    calibration_burnin: int
    calibration_trials: int = 8


SIZES = {
    "default": {
        "ctcf": Sizes(20, 200, 2, 2000, 500, 1, 600, 300),
        "ctcf_trained": Sizes(20, 200, 2, 2000, 500, 1, 600, 300),
        "nucleosome": Sizes(10, 150, 2, 1000, 250, 1, 600, 300),
        # 48 steps: the chains' start (one full forward pass, as long as a naive step) stays a
        # small part of the windowed engine's run
        "basset": Sizes(5, 48, 0, 0, 0, 1, 8, 0, calibration_trials=4),
    },
    "quick": {
        "ctcf": Sizes(20, 40, 1, 400, 100, 1, 300, 150),
        "ctcf_trained": Sizes(20, 40, 1, 400, 100, 1, 300, 150),
        "nucleosome": Sizes(5, 40, 1, 300, 75, 1, 300, 150),
        "basset": Sizes(2, 6, 0, 0, 0, 1, 3, 0, calibration_trials=3),
    },
}


# ---------------------------------------------------------------------------------------------
# Networks
# ---------------------------------------------------------------------------------------------
def build_ctcf():
    import keras
    from keras import layers

    inputs = keras.Input((101, 4))
    x = layers.Conv1D(64, 24, activation="relu")(inputs)
    x = layers.Flatten()(x)
    x = layers.Dense(100, activation="relu")(x)
    x = layers.Dropout(0.1)(x)
    return keras.Model(inputs, layers.Dense(2, activation="softmax")(x), name="ctcf")


def build_ctcf_trained():
    """The shipped example CTCF model (paper architecture, trained on planted JASPAR sites)."""
    import keras

    return keras.models.load_model(os.path.join(REPO, "example_configs", "models", "ctcf_cnn", "model.keras"))


def build_nucleosome():
    import keras
    from keras import layers

    inputs = keras.Input((201, 4))
    x = layers.Conv1D(30, 6, activation="sigmoid")(inputs)
    x = layers.Flatten()(x)
    x = layers.Dense(400, activation="sigmoid")(x)
    return keras.Model(inputs, layers.Dense(2, activation="softmax")(x), name="nucleosome")


def build_basset():
    import keras
    from keras import layers

    inputs = keras.Input((600, 4))
    x = inputs
    for filters, width, pool in ((128, 19, 3), (128, 11, 4), (128, 7, 4)):
        x = layers.Conv1D(filters, width, activation="relu")(x)
        x = layers.MaxPooling1D(pool)(x)
    x = layers.Flatten()(x)
    x = layers.Dense(256, activation="relu")(x)
    x = layers.Dense(256, activation="relu")(x)
    return keras.Model(inputs, layers.Dense(2)(x), name="basset_like")


@dataclass
class Network:
    name: str
    build: object
    mu: float
    gc_fraction: float  # of the random inputs
    bernoulli: bool = False
    description: str = ""


NETWORKS = [
    Network("ctcf", build_ctcf, 0.0, 0.5,
            description="(101,4) Conv1D(64,24,relu) Flatten Dense(100,relu) Dropout(0.1) Dense(2,softmax)"),
    Network("ctcf_trained", build_ctcf_trained, 0.0, 0.5,
            description="the same architecture, trained: example_configs/models/ctcf_cnn"),
    Network("nucleosome", build_nucleosome, -0.49, 0.383, bernoulli=True,
            description="(201,4) Bernoulli-normalised; Conv1D(30,6,sigmoid) Flatten Dense(400,sigmoid) "
                        "Dense(2,softmax)"),
    Network("basset", build_basset, 0.0, 0.5,
            description="(600,4) 3x[Conv1D(128,19/11/7,relu) MaxPool(3/4/4)] Flatten Dense(256,relu) "
                        "Dense(256,relu) Dense(2)"),
]


# ---------------------------------------------------------------------------------------------
# Measurement helpers
# ---------------------------------------------------------------------------------------------
def _status_kb(field_name: str) -> int | None:
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith(field_name + ":"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def _reset_peak_rss() -> bool:
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")  # Linux ≥ 4.0: reset VmHWM to the current RSS
        return True
    except OSError:
        return False


class MemoryProbe:
    """Peak RSS above the RSS at the start of a ``with`` block, in MB (10**6 bytes)."""

    method = "unknown"

    def __enter__(self):
        self.before = _status_kb("VmRSS")
        self.reset = _reset_peak_rss() and self.before is not None
        self.maxrss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        MemoryProbe.method = ("peak RSS (VmHWM, reset via /proc/self/clear_refs) minus RSS before the run"
                              if self.reset else "ru_maxrss growth during the run (a lower bound)")
        return self

    def __exit__(self, *exc):
        if self.reset:
            peak = _status_kb("VmHWM")
            self.delta_mb = (peak - self.before) * 1024 / 1e6
        else:
            after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
            self.delta_mb = max(0, after - self.maxrss_before) * 1024 / 1e6
        return False


def rows_per_second(function, argument, rows: int, min_seconds: float) -> float:
    """Best sustained rate of ``function(argument)`` (``rows`` rows per call) over ``min_seconds``."""
    function(argument)  # warm-up (tracing)
    calls, start = 0, time.perf_counter()
    while True:
        function(argument)
        calls += 1
        elapsed = time.perf_counter() - start
        if elapsed >= min_seconds and calls >= 3:
            return calls * rows / elapsed


# ---------------------------------------------------------------------------------------------
# One network
# ---------------------------------------------------------------------------------------------
def _cpu_flags() -> set[str]:
    try:
        with open("/proc/cpuinfo") as fh:
            return next((set(line.split(":", 1)[1].split()) for line in fh if line.startswith("flags")), set())
    except OSError:
        return set()


def forward_flops(sub_model) -> float:
    """FLOPs (2 x multiply-adds) of one row through the Conv1D and Dense layers of a Keras model."""
    flops = 0.0
    for layer in sub_model.layers:
        kind = type(layer).__name__
        if kind == "Conv1D":
            flops += 2.0 * layer.output.shape[1] * layer.kernel_size[0] * layer.input.shape[-1] * layer.filters
        elif kind == "Dense":
            flops += 2.0 * layer.kernel.shape[0] * layer.kernel.shape[1]
    return flops


@functools.lru_cache  # a machine figure: measured once per shape, not once per network
def sgemm_gflops(rows: int, inner: int, columns: int, min_seconds: float) -> float:
    """GFLOP/s of numpy's float32 ``(rows, inner) @ (inner, columns)`` (BLAS), best of repeats."""
    rng = np.random.default_rng(0)
    a = rng.standard_normal((rows, inner), dtype=np.float32)
    b = rng.standard_normal((inner, columns), dtype=np.float32)
    out = np.empty((rows, columns), np.float32)
    np.matmul(a, b, out=out)
    best, spent = float("inf"), 0.0
    while spent < min_seconds:
        start = time.perf_counter()
        np.matmul(a, b, out=out)
        elapsed = time.perf_counter() - start
        best, spent = min(best, elapsed), spent + elapsed
    return 2.0 * rows * inner * columns / best / 1e9


def blas_core() -> str:
    try:
        from threadpoolctl import threadpool_info

        return ", ".join(sorted({f"{i['internal_api']} {i.get('architecture', '?')}" for i in threadpool_info()
                                 if i.get("user_api") == "blas"})) or "?"
    except ImportError:
        return "?"


def changed_rows(resolved, engine, states: np.ndarray, seed: int) -> float:
    """Mean number of window rows (convolution output × filter) whose activation changes when one
    random position of a chain's state gets a random other base: the rows the fused engine's
    sparse dense update multiplies. ``states`` (n, L): stationary states of the chains."""
    import keras

    sub_model = resolved.network.sub_model
    conv = next(layer for layer in sub_model.layers if type(layer).__name__ == "Conv1D")
    conv_model = keras.Model(sub_model.inputs, conv.output)
    rng = np.random.default_rng(seed)
    mutated = states.copy()
    rows = np.arange(len(states))
    at = rng.integers(0, states.shape[1], len(states))
    mutated[rows, at] = (mutated[rows, at] + rng.integers(1, 4, len(states))) % 4
    before, after = (np.asarray(conv_model(resolved.encoder.encode(x))) for x in (states, mutated))
    return float((before != after).reshape(len(states), -1).sum(axis=1).mean())


def roofline(resolved, engines: dict, forward: dict, step_rows: int, min_seconds: float, stationary, seed) -> dict:
    """The FLOPs and rates that bound the fast engines' ratio to the naive one.

    The naive engine runs the full forward pass (``forward_flops`` per proposal) at TensorFlow's
    rate; the fast engines' dominant cost is the dense update: the incremental engine's over
    every row of the window, ``2 x window x filters x hidden`` FLOPs per proposal, the fused
    engine's over the rows whose activation changed in that chain (:func:`changed_rows` on
    ``stationary`` states, None: not counted). Both bounds take numpy's sgemm rate for a
    product of one step's size (an upper bound: the engines multiply one input's or one
    chain's rows at a time).
    """
    naive_flops = forward_flops(resolved.network.sub_model)
    out = dict(naive_flops=naive_flops, naive_gflops=naive_flops * forward["raw_block"] / 1e9,
               blas=blas_core(), big_gflops=sgemm_gflops(1024, 1024, 1024, min_seconds))
    engine = engines.get("incremental") or engines.get("fused")
    if engine is not None:
        inner = engine.width * engine.filters
        out.update(update_flops=2.0 * inner * engine.hidden, update_shape=(step_rows, inner, engine.hidden),
                   update_gflops=sgemm_gflops(step_rows, inner, engine.hidden, min_seconds))
        # naive seconds per proposal / update-product seconds per proposal
        out["ceiling"] = (1 / forward["raw_block"]) / (out["update_flops"] / (out["update_gflops"] * 1e9))
        if stationary is not None:
            out["changed_rows"] = changed_rows(resolved, engine, stationary, seed)
            out["window_rows"] = inner
            out["sparse_flops"] = 2.0 * out["changed_rows"] * engine.hidden
            out["sparse_ceiling"] = out["ceiling"] * out["update_flops"] / max(out["sparse_flops"], 1.0)
    return out


@dataclass
class Row:
    network: str
    engine: str
    sampler: str
    acceptance: float = float("nan")
    proposals_per_s: float = float("nan")
    evaluations_per_s: float = float("nan")
    ess_distance_per_s: float = float("nan")
    ess_gc_per_s: float = float("nan")
    memory_mb: float = float("nan")
    cpu_utilisation: float = float("nan")
    other_load: float = float("nan")
    ess_per_kproposal: float = float("nan")
    same_samples: str = ""
    notes: list = field(default_factory=list)
    # ESS run details
    ess_acceptance: float = float("nan")
    ess_distance: float = float("nan")  # mean per input
    ess_gc: float = float("nan")
    ess_wall: float = float("nan")
    ess_results: list | None = None
    throughput_results: list | None = None  # kept for the identity check when there is no ESS run


def random_references(n: int, length: int, gc_fraction: float, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    p = np.array([1 - gc_fraction, gc_fraction, gc_fraction, 1 - gc_fraction]) / 2
    return rng.choice(4, size=(n, length), p=p).astype(np.int8)


def _system_busy_seconds() -> float:
    """CPU seconds all processes of this (virtual) machine have used, from /proc/stat."""
    try:
        with open("/proc/stat") as fh:
            fields = [int(x) for x in fh.readline().split()[1:8]]
    except (OSError, ValueError):
        return float("nan")
    user, nice, system, _idle, _iowait, irq, softirq = fields
    return (user + nice + system + irq + softirq) / os.sysconf("SC_CLK_TCK")


@dataclass
class Timing:
    wall: float
    cpu_cores: float  # this process's CPU time / wall
    other_cores: float  # other processes' CPU time / wall (contention on a shared machine)
    memory_mb: float


def run_timed(engine, resolved, references, config):
    from kipoi_maxent.samplers import run_chains

    with MemoryProbe() as memory:
        busy0, cpu0, start = _system_busy_seconds(), time.process_time(), time.perf_counter()
        results = run_chains(engine, resolved.weights, references, config)
        wall = time.perf_counter() - start
        cpu = time.process_time() - cpu0
        others = _system_busy_seconds() - busy0 - cpu
    return results, Timing(wall, cpu / wall, max(0.0, others / wall), memory.delta_mb)


def post_burnin_acceptance(samples: np.ndarray) -> float:
    """Fraction of steps that changed the state, from thin=1 samples ``(chains, draws, L)``."""
    if samples.shape[1] < 2:
        return float("nan")
    return float(np.any(samples[:, 1:] != samples[:, :-1], axis=2).mean())


def calibrate_beta(engine, resolved, references, mu, sizes: Sizes, seed, log):
    """β with Metropolis acceptance ≈ TARGET_ACCEPTANCE.

    Acceptance is measured after ``sizes.calibration_burnin`` steps (thin=1 samples) when
    there is a burn-in, else over the whole short run from x0. Start: β0 = 1 / SD of
    d(Φ(x0), Φ(single mutant)) over (up to 256 of) the 3L single mutants of each input; then
    bracket and bisect log β (acceptance falls as β grows).
    """
    from kipoi_maxent.energy import weighted_distance
    from kipoi_maxent.samplers import SamplerConfig, run_chains

    length = references.shape[1]
    rng = np.random.default_rng(seed)
    spreads = []
    for x0 in references:
        chosen = np.sort(rng.permutation(3 * length)[:256])
        positions, offsets = chosen // 3, chosen % 3 + 1
        mutants = np.repeat(x0[None], len(chosen), axis=0)
        mutants[np.arange(len(chosen)), positions] = (x0[positions] + offsets) % 4
        phi0 = engine.evaluate(x0[None])[0]
        spreads.append(weighted_distance(phi0, engine.evaluate(mutants), resolved.weights))
    sd = float(np.std(np.concatenate(spreads)))
    beta = 1.0 / sd
    steps, burnin = sizes.calibration_steps, sizes.calibration_burnin

    def acceptance(b):
        config = SamplerConfig(beta=b, mu=mu, chains=CHAINS, steps=steps, thin=1 if burnin else steps,
                               burnin=burnin, seed=seed, sampler="metropolis")
        results = run_chains(engine, resolved.weights, references, config)
        if burnin:
            return float(np.mean([post_burnin_acceptance(r.samples) for r in results]))
        return float(np.mean([r.acceptance_rate for r in results]))

    tried = []
    low = high = None  # β with acceptance above / below the target
    for _ in range(sizes.calibration_trials):
        a = acceptance(beta)
        tried.append((beta, a))
        if abs(a - TARGET_ACCEPTANCE) <= ACCEPTANCE_TOLERANCE:
            break
        if a > TARGET_ACCEPTANCE:
            low = beta
        else:
            high = beta
        beta = np.sqrt(low * high) if low and high else beta * (4.0 if high is None else 0.25)
    best_beta, best_a = min(tried, key=lambda t: abs(t[1] - TARGET_ACCEPTANCE))
    what = f"after {burnin} burn-in steps" if burnin else "over the whole run from x0 (transient)"
    log(f"  β search: {len(tried)} Metropolis runs of {len(references)} input(s) x {CHAINS} chains x {steps} "
        f"steps ({engine.name} engine), acceptance {what}; β0 = 1/SD(single-mutant d) = {1 / sd:.4g}; tried "
        + ", ".join(f"β={b:.3g}→{acc:.2f}" for b, acc in tried))
    return best_beta, best_a, sd


def compare_samples(naive_results, other_results, naive, other, resolved, references, config):
    """``np.array_equal`` of the samples of input 0, and where and why trajectories part.

    Returns the table cell and notes: chains that diverged, the first diverging step, the
    largest |d_other − d_naive| while the states were still identical (the engines' rounding
    difference), and the decision margin at the first divergence recomputed with both
    engines' full forward passes.
    """
    from kipoi_maxent.energy import weighted_distance

    notes = []
    equal0 = np.array_equal(naive_results[0].samples, other_results[0].samples)
    equal_inputs = sum(np.array_equal(x.samples, y.samples) for x, y in zip(naive_results, other_results))
    diverged, rounding, first = 0, 0.0, None
    for index, (x, y) in enumerate(zip(naive_results, other_results)):
        same = np.all(x.samples == y.samples, axis=2)  # (chains, draws)
        still = np.cumprod(same, axis=1).astype(bool)  # identical so far
        diverged += int((~still[:, -1]).sum())
        if still.any():
            rounding = max(rounding, float(np.abs(x.distances - y.distances)[still].max()))
        for chain in np.flatnonzero(~still[:, -1]):
            draw = int(np.argmin(still[chain]))
            if first is None or draw < first[1]:
                first = (index, draw, int(chain))
    chains_total = len(naive_results) * config.chains
    cell = ("yes" if equal0 else "NO") + " (input 0)"
    if len(naive_results) > 1:
        cell += f"; {equal_inputs}/{len(naive_results)} inputs equal"
    if diverged:
        cell += f"; {diverged}/{chains_total} chains part"
    notes.append(f"samples of input 0 equal: {equal0}; {equal_inputs}/{len(naive_results)} inputs equal; "
                 f"{diverged}/{chains_total} chains diverge; max |d_{other.name} − d_naive| on identical "
                 f"states {rounding:.2e} (x β = {rounding * config.beta:.1e} in the log-weights)")
    if first is None:
        return cell, notes
    index, draw, chain = first
    step = config.burnin + (draw + 1) * config.thin - 1  # 0-based step that produced kept draw ``draw``
    naive_samples = naive_results[index].samples[chain]
    if config.thin != 1:
        notes.append(f"first divergence: input {index}, chain {chain}, at or before step {step} (thin > 1)")
        return cell, notes
    if draw == 0 and config.burnin:
        # it happened in the burn-in: rerun this input from step 0 with both engines to find it
        from dataclasses import replace

        from kipoi_maxent.samplers import run_chains

        rerun = replace(config, burnin=0, steps=step + 1)
        x, y = (run_chains(engine, resolved.weights, references[index][None], rerun, input_indices=[index])[0]
                for engine in (naive, other))
        same = np.cumprod(np.all(x.samples[chain] == y.samples[chain], axis=1)).astype(bool)
        draw = step = int(np.argmin(same))
        naive_samples = x.samples[chain]
    where = f"first divergence: input {index}, chain {chain}, step {step}"
    if draw == 0:
        notes.append(where + " (the first step: margin not recomputed)")
        return cell, notes
    try:  # the step's random numbers, as run_chains draws them (private helpers: may move)
        from kipoi_maxent.samplers import mcmc

        streams = [mcmc.input_stream(config.seed, index)]
        positions_stream = mcmc.position_stream(config.seed)
        variable = [np.flatnonzero(references[index] >= 0)]
        for _ in range(step // mcmc.RANDOM_BLOCK_STEPS + 1):
            positions, offsets, uniforms = mcmc._draw_block(positions_stream, streams, variable, config.chains, [0])
        offset = step % mcmc.RANDOM_BLOCK_STEPS
        position = int(positions[0, offset])
        u = float(uniforms[0, offset, chain])
        state = naive_samples[draw - 1]
        current = int(state[position])
        alternatives = (current + np.arange(1, 4)) % 4
        candidates = np.repeat(state[None], 4, axis=0)
        candidates[1:, position] = alternatives
        is_gc = np.isin(np.arange(4), (1, 2)).astype(float)
        margins = []
        for engine in (naive, other):
            d = weighted_distance(engine.evaluate(references[index][None])[0], engine.evaluate(candidates),
                                  resolved.weights)
            log_ratio = -config.beta * (d[1:] - d[0]) + config.mu * (is_gc[alternatives] - is_gc[current])
            if config.sampler == "gibbs":
                weights = np.exp(np.r_[0.0, log_ratio] - max(0.0, log_ratio.max()))
                cumulative = np.cumsum(weights) / weights.sum()
                margins.append(float(np.min(np.abs(cumulative[:-1] - u))))
            else:
                proposed = int(offsets[0, offset, chain]) - 1
                margins.append(float(abs(np.log(u) - log_ratio[proposed])))
        kind = "|u − cumulative boundary|" if config.sampler == "gibbs" else "|log u − log acceptance ratio|"
        notes.append(f"{where}: decision margin {kind} = {margins[0]:.1e} (naive) / {margins[1]:.1e} "
                     f"({other.name}) — a near-tie decided differently by float32 rounding")
    except Exception as error:  # diagnostics only
        notes.append(f"{where} (margin not recomputed: {type(error).__name__}: {error})")
    return cell, notes


def bench_network(net: Network, sizes: Sizes, args, log):
    import keras

    from kipoi_maxent.api import resolve_model
    from kipoi_maxent.samplers import SamplerConfig
    from kipoi_maxent.sequence import gc_count
    from kipoi_maxent.spec import ModelSpec, Normalization

    from kipoi_maxent.samplers import make_engine

    t_net = time.perf_counter()
    keras.utils.set_random_seed(args.seed)
    model = net.build()
    if net.bernoulli:
        resolved = resolve_model(model, ModelSpec(normalization=Normalization(bernoulli=True)),
                                 base_frequencies=np.array(YEAST_FREQUENCIES))
    else:
        resolved = resolve_model(model)
    length = resolved.sequence_length
    k = len(resolved.weights)
    references = random_references(max(sizes.inputs, sizes.ess_inputs, sizes.calibration_inputs), length,
                                   net.gc_fraction, args.seed + 1)
    log(f"\n=== {net.name}: {net.description}")
    log(f"  {model.count_params():,} parameters, L = {length}, Φ = {resolved.network.layer} (k = {k}), "
        f"μ = {net.mu}")

    naive, _ = make_engine("naive", resolved)
    auto, fallback = make_engine("auto", resolved)
    auto = naive if auto.name == "naive" else auto  # one naive engine
    engines = {"naive": naive, auto.name: auto}
    if fallback is not None:
        log(f"  auto engine: {auto.name} ({fallback})")
    for name in args.engines:
        if name not in engines:
            try:
                engines[name] = make_engine(name, resolved)[0]
            except ValueError as error:
                log(f"  {name} engine not measured: {error}")

    # -- forward ceiling ------------------------------------------------------------------
    min_seconds = 0.5 if args.quick else 1.5
    forward = {}
    rng = np.random.default_rng(args.seed + 2)
    from kipoi_maxent import api as api_module

    block = getattr(api_module, "FORWARD_ROWS", 256)
    codes_block = rng.integers(0, 4, (block, length)).astype(np.int8)
    x_block = resolved.encoder.encode(codes_block)
    forward["raw_block"] = rows_per_second(resolved.network.activations, x_block, block, min_seconds)
    step_rows = sizes.inputs * CHAINS  # rows of one Metropolis step of the throughput run
    codes_step = rng.integers(0, 4, (step_rows, length)).astype(np.int8)
    forward["raw_step"] = rows_per_second(resolved.network.activations, resolved.encoder.encode(codes_step),
                                          step_rows, min_seconds)
    forward["penultimate_step"] = rows_per_second(resolved.penultimate, codes_step, step_rows, min_seconds)
    padded = {s: -(-step_rows * m // block) * block / (step_rows * m) for s, m in (("metropolis", 1), ("gibbs", 3))}
    forward["padding"] = padded
    forward["block"] = block
    forward["step_rows"] = step_rows
    log(f"  forward (Keras sub-model → Φ, float32 input ready): {forward['raw_block']:,.0f} rows/s at "
        f"{block} rows/call; {forward['raw_step']:,.0f} rows/s at {step_rows} rows/call; "
        f"resolved.penultimate (codes → Φ, {block}-row blocks): {forward['penultimate_step']:,.0f} rows/s")

    # -- β --------------------------------------------------------------------------------
    calibration_engine = auto
    beta, beta_acceptance, sd = calibrate_beta(calibration_engine, resolved,
                                               references[: sizes.calibration_inputs], net.mu, sizes,
                                               args.seed, log)
    log(f"  β = {beta:.4g} (= {beta * sd:.3g} / SD of single-mutant d; calibration acceptance {beta_acceptance:.2f})")

    rows: list[Row] = []
    for engine_name, engine in engines.items():
        for sampler in ("metropolis", "gibbs"):
            row = Row(net.name, engine_name, sampler)
            # warm-up: TF tracing / numba JIT at the run's shapes
            warm = SamplerConfig(beta=beta, mu=net.mu, chains=CHAINS, steps=2, thin=2, burnin=0,
                                 seed=args.seed, sampler=sampler)
            from kipoi_maxent.samplers import run_chains

            run_chains(engine, resolved.weights, references[: sizes.inputs], warm)
            config = SamplerConfig(beta=beta, mu=net.mu, chains=CHAINS, steps=sizes.steps, thin=sizes.steps,
                                   burnin=0, seed=args.seed, sampler=sampler)
            results, timing = run_timed(engine, resolved, references[: sizes.inputs], config)
            proposals = sizes.inputs * CHAINS * sizes.steps
            row.proposals_per_s = proposals / timing.wall
            row.evaluations_per_s = row.proposals_per_s * (3 if sampler == "gibbs" else 1)
            row.acceptance = float(np.mean([r.acceptance_rate for r in results]))
            row.memory_mb = timing.memory_mb
            row.cpu_utilisation = timing.cpu_cores
            row.other_load = timing.other_cores
            row.throughput_results = None if sizes.ess_steps else results
            del results
            if sizes.ess_steps:
                config = SamplerConfig(beta=beta, mu=net.mu, chains=CHAINS, steps=sizes.ess_steps, thin=1,
                                       burnin=sizes.ess_burnin, seed=args.seed, sampler=sampler)
                results, timing = run_timed(engine, resolved, references[: sizes.ess_inputs], config)
                wall = timing.wall
                row.other_load = max(row.other_load, timing.other_cores)
                ess_d = [bulk_ess(r.distances) for r in results]
                ess_gc = [bulk_ess(gc_count(r.samples)) for r in results]
                row.ess_distance, row.ess_gc = float(np.mean(ess_d)), float(np.mean(ess_gc))
                row.ess_distance_per_s = float(np.sum(ess_d)) / wall
                row.ess_gc_per_s = float(np.sum(ess_gc)) / wall
                row.ess_acceptance = float(np.mean([post_burnin_acceptance(r.samples) for r in results]))
                row.ess_per_kproposal = 1000 * row.ess_distance / (CHAINS * sizes.ess_steps)
                row.ess_wall = wall
                row.ess_results = results
            log(f"  {engine_name:>11} + {sampler:<10}: {row.proposals_per_s:>9,.0f} proposals/s "
                f"(acc {row.acceptance:.2f}, CPU {row.cpu_utilisation:.2f} cores, others "
                f"{row.other_load:.2f} cores, +{row.memory_mb:.0f} MB)"
                + (f"; ESS run {row.ess_wall:.1f} s, acc after burn-in {row.ess_acceptance:.2f}, mean ESS/input "
                   f"d {row.ess_distance:.0f}, GC {row.ess_gc:.0f}" if sizes.ess_steps else ""))
            rows.append(row)

    # identity: faster engines vs naive samples, same seed (the ESS runs, else the throughput runs)
    by_key = {(r.engine, r.sampler): r for r in rows}
    for sampler in ("metropolis", "gibbs"):
        reference = by_key[("naive", sampler)]
        reference.same_samples = "(reference)" if sampler == "metropolis" else "-"
        for (engine_name, s), row in by_key.items():
            if s != sampler or engine_name == "naive":
                continue
            if sizes.ess_steps:
                config = SamplerConfig(beta=beta, mu=net.mu, chains=CHAINS, steps=sizes.ess_steps, thin=1,
                                       burnin=sizes.ess_burnin, seed=args.seed, sampler=sampler)
                naive_results, other_results = reference.ess_results, row.ess_results
                checked = references[: sizes.ess_inputs]
            else:  # the final states of the throughput runs (one kept draw per chain)
                config = SamplerConfig(beta=beta, mu=net.mu, chains=CHAINS, steps=sizes.steps, thin=sizes.steps,
                                       burnin=0, seed=args.seed, sampler=sampler)
                naive_results, other_results = reference.throughput_results, row.throughput_results
                checked = references[: sizes.inputs]
            row.same_samples, notes = compare_samples(naive_results, other_results, naive, engines[engine_name],
                                                      resolved, checked, config)
            for note in notes:
                log(f"  identity {engine_name} vs naive, {sampler}: {note}")
                row.notes.append(note)
    naive_ess = by_key[("naive", "metropolis")].ess_results
    stationary = None if not naive_ess else np.concatenate([r.samples[:, -1] for r in naive_ess])
    for row in rows:
        row.ess_results = row.throughput_results = None
    if auto is naive:
        for sampler in ("metropolis", "gibbs"):
            source = by_key[("naive", sampler)]
            copy = Row(**{**source.__dict__, "engine": "auto", "notes": [], "same_samples": "n/a (same engine)"})
            copy.notes.append(f"naive (no faster engine: {fallback}); figures are the naive row's, not re-run")
            rows.append(copy)

    bounds = roofline(resolved, engines, forward, step_rows, min_seconds, stationary, args.seed)
    small = small_batch(net, resolved, naive, auto, references, beta, sizes, args, log)
    log(f"  ({net.name} took {time.perf_counter() - t_net:.0f} s)")
    return dict(network=net, resolved=resolved, beta=beta, beta_acceptance=beta_acceptance, sd=sd,
                forward=forward, rows=rows, fallback=fallback, sizes=sizes, roofline=bounds, small_batch=small)


def small_batch(net, resolved, naive, auto, references, beta, sizes, args, log) -> dict | None:
    """Metropolis proposals/s of naive and ``auto``'s engine on the demo's shape
    (:data:`SMALL_BATCH`), trained CTCF net only; 5 × the throughput run's steps."""
    from kipoi_maxent.samplers import SamplerConfig, run_chains

    if net.name != "ctcf_trained" or auto is naive:
        return None
    inputs, chains = SMALL_BATCH
    batch = random_references(inputs, resolved.sequence_length, net.gc_fraction, args.seed + 3)
    steps = 5 * sizes.steps
    rates = {}
    for name, engine in (("naive", naive), (auto.name, auto)):
        run_chains(engine, resolved.weights, batch, SamplerConfig(beta=beta, mu=net.mu, chains=chains, steps=2,
                                                                  thin=2, burnin=0, seed=args.seed))
        config = SamplerConfig(beta=beta, mu=net.mu, chains=chains, steps=steps, thin=steps, burnin=0,
                               seed=args.seed)
        _, timing = run_timed(engine, resolved, batch, config)
        rates[name] = inputs * chains * steps / timing.wall
    log(f"  small batch ({inputs} inputs x {chains} chains x {steps} steps, metropolis): naive "
        f"{_fmt(rates['naive'])} prop/s, {auto.name} {_fmt(rates[auto.name])} prop/s = "
        f"{rates[auto.name] / rates['naive']:.1f}x")
    return dict(inputs=inputs, chains=chains, steps=steps, rates=rates, engine=auto.name)


# ---------------------------------------------------------------------------------------------
# Report
# ---------------------------------------------------------------------------------------------
def machine_description() -> list[str]:
    lines = []
    model_name = "unknown"
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    model_name = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    affinity = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    mem_total = _meminfo_gb()
    lines.append(f"CPU: {model_name}; {os.cpu_count()} logical CPUs ({affinity} usable); RAM {mem_total}")
    lines.append(f"OS: {platform.platform()}; Python {platform.python_version()}")
    try:
        from threadpoolctl import threadpool_info

        for pool in threadpool_info():
            lines.append(f"thread pool: {pool.get('user_api')} {pool.get('internal_api')} {pool.get('version')} "
                         f"({pool.get('architecture', '')}), {pool.get('num_threads')} threads "
                         f"[{os.path.basename(pool.get('filepath', ''))}]")
    except ImportError:
        lines.append("threadpoolctl not installed: BLAS unknown")
    import keras
    import numba
    import tensorflow as tf

    import kipoi_maxent

    versions = [f"numpy {np.__version__}", f"tensorflow {tf.__version__}", f"keras {keras.__version__}",
                f"numba {numba.__version__} (threading layer {numba.config.THREADING_LAYER}, "
                f"{numba.config.NUMBA_NUM_THREADS} threads)"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import arviz
    versions.append(f"arviz {arviz.__version__}")
    lines.append("versions: " + ", ".join(versions))
    lines.append(f"TF threads: intra-op {tf.config.threading.get_intra_op_parallelism_threads() or 'default'}, "
                 f"inter-op {tf.config.threading.get_inter_op_parallelism_threads() or 'default'}")
    lines.append(f"kipoi_maxent {kipoi_maxent.__version__} at {_git_revision()}")
    lines.append(f"load average before the run: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    return lines


def _meminfo_gb() -> str:
    kb = None
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemTotal:"):
                    kb = int(line.split()[1])
    except OSError:
        pass
    return f"{kb / 1024 ** 2:.0f} GiB" if kb else "unknown"


def _git_revision() -> str:
    try:
        head = subprocess.run(["git", "-C", REPO, "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                              check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", REPO, "status", "--porcelain", "--", "kipoi_maxent"],
                               capture_output=True, text=True, check=True).stdout.strip()
        return f"git {head}" + (" + uncommitted changes in kipoi_maxent/" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown revision"


def _fmt(value: float, digits: int = 0) -> str:
    if value is None or not np.isfinite(value):
        return "-"
    return f"{value:,.{digits}f}"


def _ratio(value: float, reference: float) -> str:
    if not (np.isfinite(value) and np.isfinite(reference)) or reference == 0:
        return "-"
    return f"{value / reference:.2f}x"


def print_report(outcomes, mode: str, log):
    header = ["network", "engine", "sampler", "acc", "acc st.", "prop/s", "eval/s", "x ref", "ESS_d/s", "x ref",
              "ESS_GC/s", "x ref", "ESS_d/kprop", "RSS +MB", "x ref", "CPU", "others", "same samples as naive"]
    table = []
    for outcome in outcomes:
        rows = outcome["rows"]
        reference = next(r for r in rows if r.engine == "naive" and r.sampler == "metropolis")
        memory_reference = reference.memory_mb if reference.memory_mb >= 5 else float("nan")
        for r in rows:
            engine = r.engine if r.engine != "auto" else "auto→naive*"
            table.append([r.network, engine, r.sampler, f"{r.acceptance:.2f}", _fmt(r.ess_acceptance, 2),
                          _fmt(r.proposals_per_s), _fmt(r.evaluations_per_s),
                          _ratio(r.proposals_per_s, reference.proposals_per_s),
                          _fmt(r.ess_distance_per_s, 1), _ratio(r.ess_distance_per_s, reference.ess_distance_per_s),
                          _fmt(r.ess_gc_per_s, 1), _ratio(r.ess_gc_per_s, reference.ess_gc_per_s),
                          _fmt(r.ess_per_kproposal, 2), _fmt(r.memory_mb, 1), _ratio(r.memory_mb, memory_reference),
                          f"{r.cpu_utilisation:.2f}", f"{r.other_load:.2f}", r.same_samples])
    widths = [max(len(str(x)) for x in column) for column in zip(header, *table)]
    right = set(range(3, 17))

    def line(cells):
        return "| " + " | ".join(str(c).rjust(w) if i in right else str(c).ljust(w)
                                 for i, (c, w) in enumerate(zip(cells, widths))) + " |"

    log(f"\n=== Results ({mode}); ratios 'x ref' against naive + metropolis of the same network")
    log(line(header))
    log("|" + "|".join(("-" * (w + 1) + ":") if i in right else ("-" * (w + 2)) for i, w in enumerate(widths)) + "|")
    for cells in table:
        log(line(cells))

    log("\nPer network:")
    for outcome in outcomes:
        net, sizes, f = outcome["network"], outcome["sizes"], outcome["forward"]
        reference = next(r for r in outcome["rows"] if r.engine == "naive" and r.sampler == "metropolis")
        gibbs = next(r for r in outcome["rows"] if r.engine == "naive" and r.sampler == "gibbs")
        ess = (f"ESS runs {sizes.ess_inputs} input(s) x {CHAINS} chains x {sizes.ess_steps} steps, thin 1, "
               f"burn-in {sizes.ess_burnin}" if sizes.ess_steps else "ESS not measured (budget: see README)")
        log(f"- {net.name}: β = {outcome['beta']:.4g}, μ = {net.mu}; throughput runs {sizes.inputs} input(s) x "
            f"{CHAINS} chains x {sizes.steps} steps; {ess}.")
        log(f"  forward ceiling: raw Keras sub-model {_fmt(f['raw_block'])} rows/s at {f['block']} rows/call "
            f"({_fmt(f['raw_step'])} rows/s at {f['step_rows']} rows/call); resolved.penultimate "
            f"{_fmt(f['penultimate_step'])} rows/s. Naive engine: metropolis {_fmt(reference.evaluations_per_s)} "
            f"eval/s = {reference.evaluations_per_s / f['raw_block']:.0%} of the raw {f['block']}-row rate "
            f"(overhead {1 - reference.evaluations_per_s / f['raw_block']:.0%}; {f['block']}-row padding "
            f"alone x{f['padding']['metropolis']:.2f} rows); gibbs {_fmt(gibbs.evaluations_per_s)} eval/s = "
            f"{gibbs.evaluations_per_s / f['raw_block']:.0%} (padding x{f['padding']['gibbs']:.2f}).")
        bounds = outcome["roofline"]
        text = (f"  roofline: naive forward {bounds['naive_flops'] / 1e6:.2f} MFLOP/row x {_fmt(f['raw_block'])} "
                f"rows/s = {bounds['naive_gflops']:.0f} GFLOP/s (TensorFlow); numpy sgemm [{bounds['blas']}] "
                f"{bounds['big_gflops']:.0f} GFLOP/s at 1024³")
        measured = {r.engine: r.proposals_per_s / reference.proposals_per_s for r in outcome["rows"]
                    if r.sampler == "metropolis" and r.engine in ("incremental", "fused")}
        if "ceiling" in bounds:
            rows, inner, hidden = bounds["update_shape"]
            text += (f", {bounds['update_gflops']:.0f} GFLOP/s for one step's window update as a single "
                     f"product ({rows} x {inner} x {hidden}); the window update is {bounds['update_flops'] / 1e3:.0f} "
                     f"kFLOP/proposal ({bounds['naive_flops'] / bounds['update_flops']:.1f}x fewer than a forward "
                     f"pass), so with every other cost at zero an engine updating the whole window would run "
                     f"{bounds['ceiling']:.1f}x the naive one")
            if "incremental" in measured:
                text += (f"; measured incremental {measured['incremental']:.2f}x (effective "
                         f"{measured['incremental'] * reference.proposals_per_s * bounds['update_flops'] / 1e9:.0f} "
                         "GFLOP/s of window update)")
        if "sparse_ceiling" in bounds:
            text += (f".\n  sparse roofline: on stationary states {bounds['changed_rows']:.0f} of the window's "
                     f"{bounds['window_rows']} rows change per proposal ({bounds['changed_rows'] / bounds['window_rows']:.1%}), "
                     f"{bounds['sparse_flops'] / 1e3:.1f} kFLOP/proposal: at the same rate the sparse update alone "
                     f"would allow {bounds['sparse_ceiling']:.0f}x the naive engine")
            if "fused" in measured:
                text += (f"; measured fused {measured['fused']:.2f}x (effective "
                         f"{measured['fused'] * reference.proposals_per_s * bounds['sparse_flops'] / 1e9:.1f} GFLOP/s "
                         "of sparse update)")
        log(text + ".")
        small = outcome.get("small_batch")
        if small:
            log(f"  small batch ({small['inputs']} inputs x {small['chains']} chains, the demo's shape): "
                f"{small['engine']} {small['rates'][small['engine']] / small['rates']['naive']:.1f}x the naive "
                f"engine ({_fmt(small['rates'][small['engine']])} vs {_fmt(small['rates']['naive'])} prop/s).")
        if "avx512f" in _cpu_flags() and "SkylakeX" not in bounds["blas"] and "Cooperlake" not in bounds["blas"]:
            log("  note: this CPU has AVX-512 (TensorFlow's oneDNN uses it) but numpy's OpenBLAS runs its "
                f"{bounds['blas']} kernels; OPENBLAS_CORETYPE=SkylakeX, set before Python starts, selects its "
                "AVX-512 ones.")
        for r in outcome["rows"]:
            for note in r.notes:
                log(f"  {r.engine} + {r.sampler}: {note}")
    log()
    if any(r.engine == "auto" for outcome in outcomes for r in outcome["rows"]):
        log("* auto→naive: the fused, incremental and windowed engines refused the model, auto ran the naive engine "
            "(same figures).")
    log("Definitions: acc = acceptance (fraction of steps that changed the state) of the throughput run, "
        "from x0 (transient); acc st. = the same after burn-in in the ESS run (≈ stationary); "
        "prop/s = chain-steps per second (a Gibbs step updates one position of one chain "
        "from 3 evaluated alternatives, so eval/s = 3 x prop/s); ESS_*/s = sum over the ESS run's inputs of "
        f"the ArviZ bulk ESS of that input's (chains, draws) trace, / the run's wall time "
        f"[{arviz_description()}]; RSS +MB = {MemoryProbe.method}, during the throughput run (one draw kept); "
        "ESS_d/kprop = mean ESS of the distance per input per 1000 proposals of one input's chains; "
        "CPU = this process's CPU time / wall time and others = CPU time of all other processes on the "
        "machine (/proc/stat) / wall time, in cores, over the timed runs (others > 0.2: contended, "
        "figures unreliable); same samples = np.array_equal of the "
        "ESS-run samples of input 0 (seeded identically; without an ESS run: of the throughput run's final "
        "states).")


def run_genome_composition(quick: bool, log):
    script = os.path.join(HERE, "bench_genome_composition.py")
    command = [sys.executable, script] + (["--size-mb", "20", "--repeats", "2"] if quick else [])
    log(f"\n=== genome composition: {' '.join(os.path.relpath(c, REPO) if c == script else c for c in command[1:])}")
    done = subprocess.run(command, capture_output=True, text=True)
    lines = [line for line in done.stdout.splitlines() if "MB/s" in line]
    if done.returncode != 0 or not lines:
        log(f"  failed (exit {done.returncode}): {done.stderr.strip().splitlines()[-1:] or done.stdout}")
    for line in lines:
        log(f"  {line}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="short runs (~2 min)")
    parser.add_argument("--networks", default="ctcf,ctcf_trained,nucleosome,basset",
                        help="comma-separated subset of ctcf, ctcf_trained, nucleosome, basset")
    parser.add_argument("--engines", default="incremental",
                        help="comma-separated engines to measure besides naive and auto's choice "
                             "(fused, incremental, windowed; default: incremental, the fused engine's predecessor)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-genome", action="store_true", help="skip bench_genome_composition.py")
    parser.add_argument("--blas-threads", type=int, default=None,
                        help="limit the numpy BLAS thread pool (threadpoolctl) for the whole run")
    args = parser.parse_args()
    args.engines = [name for name in args.engines.split(",") if name]
    from kipoi_maxent.samplers import ENGINES

    if set(args.engines) - set(ENGINES):
        parser.error(f"unknown engine(s): {', '.join(sorted(set(args.engines) - set(ENGINES)))}")
    if args.blas_threads is not None:
        from threadpoolctl import threadpool_limits

        threadpool_limits(args.blas_threads, user_api="blas")
    mode = "quick" if args.quick else "default"

    def log(message=""):
        print(message, flush=True)

    t0 = time.perf_counter()
    log("$ python " + " ".join([os.path.relpath(sys.argv[0], REPO)] + sys.argv[1:]))
    log("=== machine")
    for line in machine_description():
        log(f"  {line}")
    wanted = args.networks.split(",")
    unknown = set(wanted) - {n.name for n in NETWORKS}
    if unknown:
        parser.error(f"unknown network(s): {', '.join(sorted(unknown))}")
    outcomes = [bench_network(net, SIZES[mode][net.name], args, log) for net in NETWORKS if net.name in wanted]
    print_report(outcomes, mode, log)
    if not args.no_genome:
        run_genome_composition(args.quick, log)
    log(f"\nload average after the run: {' '.join(f'{x:.2f}' for x in os.getloadavg())}; "
        f"total {time.perf_counter() - t0:.0f} s")


if __name__ == "__main__":
    main()
