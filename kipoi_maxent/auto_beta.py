"""``--beta auto``: β for a network by the paper's distance rule, from a short pilot.

β is network-specific: it must match the scale of the network's penultimate distances. The
paper's rule (METHOD §8) puts the distance from Φ(x0) to the nearest *other* input 2–3
standard deviations beyond the mean distance of x0's samples. The pilot

1. takes :attr:`RunOptions.pilot_inputs` inputs spread evenly over the input set, and a
   reference set to find each one's nearest other element in: the other inputs (up to
   :data:`MAX_REFERENCES`, spread evenly), or, with fewer than :data:`MIN_OTHER_INPUTS`
   inputs, background sequences (windows drawn from the genome FASTA, else dinucleotide
   shuffles of the inputs);
2. samples the pilot inputs briefly (:data:`PILOT_CHAINS` chains × :data:`PILOT_STEPS`
   steps, first half discarded) at β values that bracket median z = 2.5 — starting at
   10 / (median nearest distance), stepping ×4 — then at the log-interpolated crossing;
3. applies :func:`kipoi_maxent.calibration.auto_beta`: the distance rule, within two guards
   (median acceptance ≥ 0.15: chains that do not freeze; median largest KL ≥ 0.3 bit: a
   constraint that constrains something).

The choice is cached in the user cache directory per (model files, spec, output units, μ,
sampler), so a second run on the same model costs nothing.
"""
from __future__ import annotations

import hashlib
import json
import logging
import math
import time
from pathlib import Path
from typing import NamedTuple

import numpy as np

from kipoi_maxent.cache import user_cache_dir, write_json_atomic
from kipoi_maxent.calibration import auto_beta, calibration_row, summarise

logger = logging.getLogger("kipoi_maxent")

#: Bump when the pilot or the rule changes: older cached choices are then not used.
ALGORITHM_VERSION = 2
#: Inputs of the pilot, by default (spread evenly over the run's inputs).
PILOT_INPUTS = 8
#: Pilot chains per input and their length: few long chains, as the main run's; the first half is
#: discarded. Short chains underestimate the spread of the distances (they have not left x0's
#: neighbourhood), which biases the rule towards small β: 8 × 2000 steps gave β ≈ 21 on the
#: CTCF example, 4 × 16 000 ≈ 26 (25.5 and 26.3 measured, μ 0 and auto), long converged runs ≈ 31.
PILOT_CHAINS = 4
PILOT_STEPS = 16_000
PILOT_THIN = 40
#: With fewer inputs than this, the nearest "other" element is sought among background sequences.
MIN_OTHER_INPUTS = 10
#: Background sequences drawn when the inputs are too few.
BACKGROUND_SEQUENCES = 200
#: Other inputs the nearest one is sought among, at most (spread evenly over the input set).
MAX_REFERENCES = 2000
#: β values sampled at most.
MAX_EVALUATIONS = 8
#: Factor between successive β while bracketing.
STEP_FACTOR = 4.0


class BetaChoice(NamedTuple):
    """β of a run and how it was chosen.

    Attributes
    ----------
    beta : float
    source : str
        ``"auto"`` (a pilot ran) or ``"cached"``.
    record : dict
        For run.json: the rule that decided and why, the pilot's table (per β: the
        :class:`~kipoi_maxent.calibration.BetaSummary` fields), its inputs, reference set and time.
    """

    beta: float
    source: str
    record: dict


def cache_key(prepared, options) -> str:
    """What a cached β is valid for: the model's files and name, the spec, μ, the sampler, the
    pilot's size and seed, and the inputs by content.

    The inputs belong in the key because the pilot's distance rule measures each pilot input
    against its nearest *other input*: the same model on another input set may rightly get
    another β, and without them a run's β would depend on which input set ran first on this
    machine (the same command, different results). Paths are left out: the same files moved
    or copied elsewhere share the cached β.
    """
    from kipoi_maxent import __version__

    spec = prepared.spec
    inputs = {key: value for key, value in prepared.fingerprint.items() if key != "model_files"}
    identity = {
        "algorithm": ALGORITHM_VERSION, "kipoi_maxent": __version__,
        "model": prepared.model if prepared.source != "dir" else None, "source": prepared.source,
        "model_files": prepared.fingerprint.get("model_files"),
        "spec": None if spec is None else spec.to_dict(), "spec_file": prepared.spec_text,
        "mu": round(float(prepared.mu), 9), "sampler": options.sampler,
        "pilot": [options.pilot_inputs, PILOT_CHAINS, PILOT_STEPS, PILOT_THIN, options.seed],
        "inputs": _without_paths(inputs),
    }
    return hashlib.sha256(json.dumps(identity, sort_keys=True, default=str).encode()).hexdigest()


def _without_paths(record):
    """A fingerprint record with every file's ``path`` left out (its ``sha256`` stays)."""
    if isinstance(record, dict):
        return {key: _without_paths(value) for key, value in record.items() if key != "path"}
    return record


def _cache_path(key: str) -> Path:
    return Path(user_cache_dir()) / "beta" / f"{key}.json"


def spread_indices(count: int, total: int) -> np.ndarray:
    """``count`` indices spread evenly over ``0 … total − 1`` (all when ``count >= total``)."""
    if count >= total:
        return np.arange(total)
    return np.unique(np.round(np.linspace(0, total - 1, count)).astype(np.int64))


def background_sequences(genome: str | None, length: int, codes: np.ndarray, seed: int) -> tuple[np.ndarray, str]:
    """Background sequences for the nearest-other distance of a small input set: windows of the
    genome (without unknown bases), else dinucleotide shuffles of the inputs."""
    from kipoi_maxent.sequence import dinucleotide_shuffle

    rng = np.random.default_rng(np.random.SeedSequence([seed, 0xBE7A]))
    if genome:
        from kipoi_maxent.inputs import Interval, chromosome_sizes, interval_inputs

        sizes = {name: size for name, size in chromosome_sizes(genome).items() if size >= length}
        if sizes:
            names = sorted(sizes)
            weights = np.array([sizes[n] - length + 1 for n in names], dtype=float)
            windows = []
            for attempt in range(20 * BACKGROUND_SEQUENCES):
                if len(windows) == BACKGROUND_SEQUENCES:
                    break
                chrom = names[rng.choice(len(names), p=weights / weights.sum())]
                start = int(rng.integers(0, sizes[chrom] - length + 1))
                windows.append(Interval(f"background_{attempt}", chrom, start, start + length))
            found = [item.codes for item in interval_inputs(windows, genome) if (item.codes >= 0).all()]
            if found:
                return np.stack(found), f"{len(found)} windows drawn from {genome}"
    shuffles = [dinucleotide_shuffle(codes[i % len(codes)], rng) for i in range(BACKGROUND_SEQUENCES)]
    return np.stack(shuffles), f"{BACKGROUND_SEQUENCES} dinucleotide shuffles of the inputs"


def pilot_inputs(prepared, options) -> tuple[list, np.ndarray]:
    """``(pilot inputs, reference codes (n, L))``: :attr:`~kipoi_maxent.runner.RunOptions.pilot_inputs`
    inputs spread evenly over the run's inputs, and up to :data:`MAX_REFERENCES` inputs spread
    the same way (the set a pilot input's nearest other input is sought in). A dataloader's
    first :data:`MAX_REFERENCES` inputs stand for its whole set (its length is unknown)."""
    import itertools

    total = prepared.n_inputs
    if total is None:
        candidates = list(itertools.islice(prepared.items(), MAX_REFERENCES))
        return ([candidates[i] for i in spread_indices(options.pilot_inputs, len(candidates))],
                np.stack([item.codes for item in candidates]))
    wanted_pilots = set(spread_indices(options.pilot_inputs, total).tolist())
    wanted_references = set(spread_indices(MAX_REFERENCES, total).tolist())
    last = max(wanted_pilots | wanted_references)
    pilots, references = [], []
    for index, item in enumerate(itertools.islice(prepared.items(), last + 1)):
        if index in wanted_pilots:
            pilots.append(item)
        if index in wanted_references:
            references.append(item.codes)
    return pilots, np.stack(references)


def choose_beta(prepared, options, resolved, engine) -> BetaChoice:
    """β for this run by :mod:`kipoi_maxent.auto_beta`'s pilot (or its cached result)."""
    key = cache_key(prepared, options)
    path = _cache_path(key)
    try:
        cached = json.loads(path.read_text())
        if isinstance(cached, dict) and isinstance(cached.get("beta"), (int, float)):
            logger.info("beta = %.4g (cached: %s; %s)", cached["beta"], cached["record"].get("explanation", ""), path)
            return BetaChoice(float(cached["beta"]), "cached", {**cached["record"], "cache": str(path)})
    except (OSError, ValueError, KeyError, AttributeError):
        pass
    started = time.time()
    pilots, reference_codes = pilot_inputs(prepared, options)
    logger.info("beta auto: pilot of %d inputs x %d chains x %s steps per beta value (up to %d values), %s engine",
                len(pilots), PILOT_CHAINS, f"{PILOT_STEPS:,}", MAX_EVALUATIONS, engine.name)
    record = pilot_beta(resolved, engine, pilots, reference_codes, mu=prepared.mu, sampler=options.sampler,
                        seed=options.seed, genome=prepared.genome)
    try:
        write_json_atomic(path, {"beta": record["beta"], "record": record})
    except OSError as error:
        logger.warning("could not cache the chosen beta in %s (%s)", path, error)
    logger.info("beta = %.4g (auto: %s; pilot of %d inputs x %d beta values, %.0f s)", record["beta"],
                record["explanation"], len(pilots), len(record["table"]), time.time() - started)
    return BetaChoice(record["beta"], "auto", record)


def pilot_beta(resolved, engine, pilots, others: np.ndarray, *, mu: float, sampler: str = "metropolis", seed: int = 0,
               genome: str | None = None) -> dict:
    """Run the pilot (see the module docstring) and apply the rule.

    Parameters
    ----------
    resolved : kipoi_maxent.api.ResolvedModel
    engine : engine
    pilots : list of SequenceInput
        The inputs sampled.
    others : np.ndarray, shape (n, L), int8
        The data set a pilot input's nearest *other* element is sought in (the pilot inputs
        themselves are skipped in it); with fewer than :data:`MIN_OTHER_INPUTS`, background
        sequences are used instead (:func:`background_sequences`).
    mu, sampler, seed :
        As the run's.
    genome : str, optional
        FASTA to draw the background windows from (else dinucleotide shuffles of ``others``).

    Returns
    -------
    dict
        ``beta``, ``rule``, ``explanation``, ``table`` (one :class:`BetaSummary` dict per β
        sampled) and ``pilot`` (inputs, chains, steps, reference set, seconds).

    Raises
    ------
    ValueError
        When no β within the searched range satisfies the rule and its guards.
    """
    started = time.time()
    pilot_codes = np.stack([item.codes for item in pilots])
    if len(others) >= MIN_OTHER_INPUTS:
        pool, reference_set = others, f"{len(others)} inputs of the run"
    else:
        pool, reference_set = background_sequences(genome, resolved.sequence_length, others, seed)
    nearest = _nearest_distances(resolved, pilot_codes, pool)
    rows_by_beta: dict[float, list] = {}
    beta = 10.0 / max(float(np.median(nearest)), 1e-12)
    decision = None
    for _ in range(MAX_EVALUATIONS):
        beta = float(f"{beta:.4g}")
        if beta not in rows_by_beta:
            rows_by_beta[beta] = _pilot_rows(resolved, engine, pilots, nearest, beta, mu, sampler, seed)
        decision = auto_beta([summarise(rows)[0] for rows in rows_by_beta.values()])
        if decision.beta is None:
            betas = sorted(rows_by_beta)
            beta = betas[-1] * STEP_FACTOR if decision.direction == "up" else betas[0] / STEP_FACTOR
            continue
        # refine: sample at the interpolated β itself, unless it was sampled (nearly) already
        if min(abs(math.log(decision.beta / b)) for b in rows_by_beta) < math.log(1.15):
            break
        beta = decision.beta
    if decision is None or decision.beta is None:
        betas = sorted(rows_by_beta)
        raise ValueError(
            f"--beta auto found no β in [{betas[0]:.3g}, {betas[-1]:.3g}] ({decision.explanation if decision else ''}); "
            "run `kipoi maxent calibrate` on these inputs and give --beta")
    summaries = sorted((summarise(rows)[0] for rows in rows_by_beta.values()), key=lambda s: s.beta)
    return {
        "beta": decision.beta, "rule": decision.rule, "explanation": decision.explanation,
        "table": [s._asdict() for s in summaries],
        "pilot": {"inputs": [item.name for item in pilots], "chains": PILOT_CHAINS, "steps": PILOT_STEPS,
                  "burnin": PILOT_STEPS // 2, "reference_set": reference_set,
                  "median_nearest_distance": float(np.median(nearest)), "seconds": round(time.time() - started, 1)},
    }


def _nearest_distances(resolved, pilot_codes: np.ndarray, pool: np.ndarray) -> np.ndarray:
    """Weighted distance from each pilot input's Φ to the nearest element of ``pool``'s, leaving
    out the elements equal to the input (the input itself among the run's inputs; a shuffle or
    window that happens to equal it, in short sequences, among background ones)."""
    from kipoi_maxent.energy import weighted_distance

    pilot_phi = resolved.penultimate(pilot_codes)
    pool_phi = resolved.penultimate(pool)
    nearest = np.empty(len(pilot_codes))
    for i, phi in enumerate(pilot_phi):
        distances = weighted_distance(phi[None], pool_phi, resolved.weights)
        distances[(pool == pilot_codes[i]).all(axis=1)] = np.inf
        nearest[i] = distances.min()
    return nearest


def _pilot_rows(resolved, engine, pilots, nearest, beta: float, mu: float, sampler: str, seed: int) -> list:
    from kipoi_maxent.samplers import SamplerConfig, run_chains
    from kipoi_maxent.sequence import background_probabilities
    from kipoi_maxent.statistics import kl_divergence, nucleotide_frequencies

    config = SamplerConfig(beta=beta, mu=mu, chains=PILOT_CHAINS, steps=PILOT_STEPS, thin=PILOT_THIN,
                           burnin=PILOT_STEPS // 2, seed=seed, sampler=sampler)
    results = run_chains(engine, resolved.weights, np.stack([item.codes for item in pilots]), config)
    rows = []
    background = background_probabilities(mu)
    for item, result, distance in zip(pilots, results, nearest):
        frequencies = nucleotide_frequencies(result.samples)
        rows.append(calibration_row(beta, item.name, mean_distance=float(result.distances.mean()),
                                    sd_distance=float(result.distances.std()), nearest_distance=float(distance),
                                    frequencies=frequencies, acceptance_rate=result.acceptance_rate,
                                    max_kl=float(np.nanmax(kl_divergence(frequencies, background)))))
    return rows


