"""Regenerate ``docs/replication.md``: the paper's analyses on the shipped example models, at the
paper's scale or as close as one 2-core machine allows in well under two hours (82 min here).

``bash run.sh replicate`` runs this file. Stages (each one's command and wall time go to
``replication_output/steps.json``; a stage already recorded there with the same command is not
run again, so an interrupted regeneration resumes):

1. **data** (``replication_output/data/``, seeded): a synthetic CTCF genome with
   ``--ctcf-peaks`` planted JASPAR MA0139.2 sites (``benchmarks/bench_defaults.py``'s generator,
   i.e. ``example_configs/data/make_ctcf_genome.py`` widened); and the real yeast chromosomes III
   and X (the nucleosome model's held-out test chromosomes) with the nucleosome-like signal of
   ``example_configs/data/make_nucleosome_data.py`` planted in half of a set of non-overlapping
   201-bp windows. Exemplar windows are those the network classifies correctly (the paper's
   choice); test windows are taken as they come.
2. **runs**, through the ``kipoi-maxent`` command a user types, with the defaults (β auto,
   steps auto, 4 chains), each recorded with its command line:
   CTCF planted peaks (``sample``), the authors' ten CTCF-bound sequences (``sample``), a β sweep
   around the automatic β (fixed steps, as a β grid), nucleosomal and control exemplars
   (``denovo``; the controls at the positives' β and the same μ, as the paper), and the k-NN
   check (``knn``) on the held-out test windows.
3. **analysis**: numbers (``replication_output/numbers.json``), figures (PNG, copied to
   ``docs/replication/``) and the document, rendered from ``docs/replication.template.md``; every
   number in it comes from this run.

Usage::

    python docs/replicate.py                 # the full regeneration (~80 min on 2 cores; 50 without the β = 40 comparison runs)
    python docs/replicate.py --quick         # a smoke run at toy scale; document in the output
"""
from __future__ import annotations

import argparse
import functools
import importlib.util
import json
import math
import os
import platform
import shlex
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import NamedTuple

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

REPO = Path(__file__).resolve().parent.parent
TEMPLATE = REPO / "docs" / "replication.template.md"
CTCF_CONFIG = Path("example_configs") / "ctcf.yaml"
CTCF_BOUND_CONFIG = Path("example_configs") / "ctcf_bound_10.yaml"
NUCLEOSOME_CONFIG = Path("example_configs") / "nucleosome.yaml"
NUCLEOSOME_MODEL = REPO / "example_configs" / "models" / "nucleosome_cnn"
CTCF_MODEL = REPO / "example_configs" / "models" / "ctcf_cnn"
CTCF_SPEC = REPO / "model_specs" / "ctcf_cnn.yaml"
CTCF_BOUND = REPO / "example_configs" / "data" / "ctcf_bound_10.fa"
NUCLEOSOME_SPEC = REPO / "model_specs" / "nucleosome_cnn.yaml"
CTCF_MATRIX = "MA0139.2"
#: β values of the sweep, as multiples of the automatic β; and the paper's CTCF β.
SWEEP_FACTORS = (0.25, 0.5, 1.0, 2.0, 4.0)
PAPER_CTCF_BETA = 400.0
#: The paper's nucleosome β (§3.5).
PAPER_NUCLEOSOME_BETA = 40.0
#: Slot width of the nucleosome windows (≥ 49 bp between two windows).
SLOT = 250
#: Candidates drawn per window wanted (exemplars must be classified correctly).
OVERDRAW = 1.25
#: A motif call of smaller mean KL (bits) marks an input its samples do not constrain.
CONSTRAINED_BITS = 0.1
#: Below this a principal-component variance is zero (round-off of an exactly frozen position).
FROZEN_VARIANCE = 1e-9
#: Alternative neighbour counts and component counts of the k-NN ablation.
ABLATION_NEIGHBORS = (1, 5, 10, 20, 50)
ABLATION_COMPONENTS = (1, 2, 3, 5)


@dataclass(frozen=True)
class Scale:
    """Sizes of one regeneration."""

    ctcf_peaks: int
    exemplars: int  # per class
    test: int  # per class
    sweep_steps: int
    nucleosome_max_steps: int | None  # None: the default cap
    seed: int = 2017


#: 600 + 600 nucleosome exemplars at the cap then default (750 000 steps per chain) took a projected ~4 h
#: here (β auto is ~118 at this input count, and chains mix slowly); 100 000 fits the hour.
#: The fields that change the data (the others only change runs).
DATA_FIELDS = ("ctcf_peaks", "exemplars", "test", "seed")
FULL = Scale(ctcf_peaks=100, exemplars=600, test=1000, sweep_steps=50_000, nucleosome_max_steps=100_000)
QUICK = Scale(ctcf_peaks=8, exemplars=24, test=100, sweep_steps=4000, nucleosome_max_steps=20_000)


def log(message: str) -> None:
    print(f"replicate: {message}", file=sys.stderr, flush=True)


def load_module(path: Path, name: str):
    """A script of this repository (not a package) as a module."""
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


@functools.cache
def nucleosome_maker():
    """``example_configs/data/make_nucleosome_data.py``: the yeast genome and the planting code."""
    return load_module(REPO / "example_configs" / "data" / "make_nucleosome_data.py", "make_nucleosome_data")


# ---------------------------------------------------------------------------------------------
# Stages and their record
# ---------------------------------------------------------------------------------------------
class Steps:
    """``steps.json``: per stage, the command (as a user would type it) and its wall time."""

    def __init__(self, path: Path):
        self.path = path
        self.record = json.loads(path.read_text()) if path.is_file() else {}

    def done(self, label: str, command: str) -> bool:
        return self.record.get(label, {}).get("command") == command

    def save(self, label: str, command: str, seconds: float, **extra) -> None:
        self.record[label] = {"command": command, "seconds": round(seconds, 1), **extra}
        self.path.write_text(json.dumps(self.record, indent=1) + "\n")

    def seconds(self, label: str) -> float:
        return self.record[label]["seconds"]

    def command(self, label: str) -> str:
        return self.record[label]["command"]


def kipoi_maxent(steps: Steps, label: str, arguments: list) -> None:
    """Run ``kipoi-maxent ARGUMENTS`` from the repository root (stderr passes through)."""
    arguments = [str(a) for a in arguments]
    command = shlex.join(["kipoi-maxent", *arguments])
    if steps.done(label, command):
        log(f"{label}: done before ({steps.seconds(label):.0f} s), not run again")
        return
    log(f"{label}: {command}")
    started = time.perf_counter()
    # a private user cache: every β auto below runs its pilot (its cost is part of the figures)
    environment = {**os.environ, "XDG_CACHE_HOME": str(steps.path.parent / "cache")}
    subprocess.run([sys.executable, "-m", "kipoi_maxent", *arguments], cwd=REPO, check=True, env=environment)
    steps.save(label, command, time.perf_counter() - started)


def relative(path: Path) -> Path:
    """``path`` relative to the repository root when inside it (commands stay short)."""
    try:
        return path.resolve().relative_to(REPO)
    except ValueError:
        return path


# ---------------------------------------------------------------------------------------------
# Data
# ---------------------------------------------------------------------------------------------
def make_ctcf_data(directory: Path, scale: Scale) -> dict:
    """Synthetic genome with planted CTCF sites; returns ``{"fasta", "peaks", "sites", "description"}``."""
    bench = load_module(REPO / "benchmarks" / "bench_defaults.py", "bench_defaults")
    directory.mkdir(parents=True, exist_ok=True)
    genome = bench.make_genome(directory, scale.ctcf_peaks, scale.seed)
    strands = {}
    for line in (directory / "ctcf_sites.bed").read_text().splitlines():
        chrom, start, end, name, _, strand = line.split("\t")
        strands[(chrom, int(start))] = strand
    sites = {peak: [chrom, start, end, strands[(chrom, start)]] for peak, (chrom, start, end) in genome.sites.items()}
    return {"fasta": str(relative(genome.fasta)), "peaks": str(relative(genome.peaks_bed)), "sites": sites,
            "description": genome.description}


def network_probability(model: Path, spec: Path, codes: np.ndarray) -> np.ndarray:
    """P(positive class) of a shipped Keras example network for ``(n, L)`` int8 codes, with the
    input encoding its spec declares (unit 1 of the softmax)."""
    from kipoi_maxent._quiet import framework_output_hidden
    from kipoi_maxent.spec import InputEncoder, load_spec, resolve_normalization

    declared = load_spec(spec)
    center, scale = resolve_normalization(declared.normalization)
    encoder = InputEncoder(declared.alphabet, declared.layout, center, scale)
    with framework_output_hidden():  # TensorFlow's C++ start-up lines
        import keras

        network = keras.models.load_model(model / "model.keras", compile=False)
        return np.asarray(network.predict(encoder.encode(codes), batch_size=1000, verbose=0))[:, 1]


def make_nucleosome_data(directory: Path, scale: Scale) -> dict:
    """Yeast chrIII + chrX with the signal planted in half of a set of non-overlapping windows.

    Candidate windows sit in distinct 250-bp slots, in a seeded random order, alternately
    planted (positives) and left as they are (negatives). Exemplars: the first ``exemplars``
    candidates of each class that the network classifies correctly (P > 0.5 for positives,
    < 0.5 for negatives), as the paper chose them; test windows: the next ``test`` candidates of
    each class, whatever the network says. μ is computed from the chromosomes *before* planting
    (planting raises their GC content), the same rule as ``--mu auto``.
    """
    maker = nucleosome_maker()
    from kipoi_maxent.sequence import GC_CODES, decode

    directory.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(scale.seed)
    genome = maker.read_yeast_genome(maker.SHIPPED_CHROMOSOMES)
    codes = np.concatenate(list(genome.values()))
    gc = float(np.isin(codes, GC_CODES).mean())
    slots = [(chrom, start) for chrom in maker.SHIPPED_CHROMOSOMES
             for start in range(0, len(genome[chrom]) - maker.WINDOW, SLOT)]
    per_class = math.ceil(OVERDRAW * (scale.exemplars + scale.test))
    if 2 * per_class > len(slots):
        raise ValueError(f"{2 * per_class} windows do not fit in {len(slots)} slots")
    chosen = [slots[i] for i in rng.permutation(len(slots))[:2 * per_class]]
    positives, negatives = chosen[0::2], chosen[1::2]
    for chrom, start in positives:
        window = genome[chrom][start:start + maker.WINDOW]
        genome[chrom][start:start + maker.WINDOW] = maker.plant_nucleosome_signal(window[None], rng)[0]

    fasta = directory / "yeast_planted.fa"
    with open(fasta, "w") as handle:
        for chrom in maker.SHIPPED_CHROMOSOMES:
            sequence = decode(genome[chrom])[0]
            handle.write(f">{chrom}\n")
            handle.writelines(sequence[k:k + 60] + "\n" for k in range(0, len(sequence), 60))

    summary = {"fasta": str(relative(fasta)), "gc_fraction": gc, "mu": math.log(gc / (1 - gc)),
               "slots": len(slots)}
    for label, windows, prefix, wanted in (("positives", positives, "nuc", 1), ("negatives", negatives, "bg", 0)):
        p = network_probability(NUCLEOSOME_MODEL, NUCLEOSOME_SPEC,
                                np.stack([genome[c][s:s + maker.WINDOW] for c, s in windows]))
        correct = (p > 0.5) == bool(wanted)
        exemplars = [i for i in range(len(windows)) if correct[i]][:scale.exemplars]
        if len(exemplars) < scale.exemplars:
            raise ValueError(f"only {len(exemplars)} correctly classified {label}; raise OVERDRAW")
        rest = [i for i in range(len(windows)) if i > exemplars[-1]][:scale.test]
        if len(rest) < scale.test:
            raise ValueError(f"only {len(rest)} test {label} left; raise OVERDRAW")
        for kind, indices in (("exemplar", exemplars), ("test", rest)):
            path = directory / f"{kind}_{label}.bed"
            path.write_text("".join(f"{windows[i][0]}\t{windows[i][1]}\t{windows[i][1] + maker.WINDOW}\t"
                                    f"{prefix}_{i + 1}\n" for i in indices))
            summary[f"{kind}_{label}"] = str(relative(path))
        summary[f"{label}_skipped"] = int(exemplars[-1] + 1 - len(exemplars))
        summary[f"test_{label}_network_accuracy"] = float(correct[rest].mean())
    return summary


# ---------------------------------------------------------------------------------------------
# Statistics
# ---------------------------------------------------------------------------------------------
def percent(x: float) -> str:
    return f"{100 * x:.1f} %"


def interval_text(successes: int, n: int) -> str:
    """``"26.0 % (156/600; 95 % CI 22.6–29.7 %)"``: a fraction with its Wilson interval."""
    from kipoi_maxent.denovo import accuracy_interval

    low, high = accuracy_interval(np.arange(n) < successes)
    return f"{100 * successes / n:.1f} % ({successes}/{n}; 95 % CI {100 * low:.1f}–{100 * high:.1f} %)"


# ---------------------------------------------------------------------------------------------
# Analyses (each returns the numbers the template uses)
# ---------------------------------------------------------------------------------------------
def read_summary(directory: Path):
    import pandas as pd

    return pd.read_csv(directory / "summary.tsv", sep="\t", keep_default_na=False, na_values=[""])


def flag(summary, column: str):
    """A True/False column of ``summary.tsv`` as booleans (pandas reads them as text or bool)."""
    return summary[column].astype(str).eq("True")


def run_record(directory: Path) -> dict:
    return json.loads((directory / "run.json").read_text())


def beta_of(directory: Path) -> float:
    return float(run_record(directory)["sampler"]["beta"])


def ctcf_calls(directory: Path, sites: dict) -> dict:
    """Motif calls of a planted-peaks run against the planted sites."""
    summary = read_summary(directory)
    covers, offsets, orientation_agrees, ctcf_named = [], [], [], []
    for _, row in summary.iterrows():
        chrom, start, end, strand = sites[row["name"]]
        call = (int(row["motif_start"]), int(row["motif_end"]))
        covers.append(call[0] <= start and end <= call[1])
        offsets.append((call[0] + call[1]) / 2 - (start + end) / 2)
        ctcf_named.append(str(row.get("motif_match_name", "")).upper() == "CTCF")
        orientation_agrees.append(str(row.get("motif_match_orientation", "")) == strand)
    n = len(summary)
    constrained = (summary["motif_score"] >= CONSTRAINED_BITS).to_numpy()
    converged = flag(summary, "converged").to_numpy()
    return {"n": n, "covers": int(sum(covers)), "offsets": offsets,
            "off_site_unconstrained": int(sum(not c and not k for c, k in zip(covers, constrained))),
            "constrained": int(constrained.sum()), "converged_constrained": int((converged & constrained).sum()),
            "within_2bp": int(sum(abs(o) <= 2 for o in offsets)),
            "ctcf_named": int(sum(ctcf_named)), "orientation_agrees": int(sum(orientation_agrees)),
            "plus_calls": int(sum(str(x) == "+" for x in summary.get("motif_match_orientation", []))),
            "converged": int(flag(summary, "converged").sum()),
            "median_acceptance": float(summary["acceptance_rate"].median()),
            "median_motif_score": float(summary["motif_score"].median()),
            "median_steps": float(summary["steps"].median())}


def fimo_centres(fasta: Path) -> dict:
    """Centre of the best FIMO hit of JASPAR MA0139.2 (either strand) in each sequence, and its strand."""
    from memelite import fimo

    ctcf_motif = load_module(REPO / "example_configs" / "ctcf_motif.py", "ctcf_motif")
    counts, matrix_id = ctcf_motif.load_ctcf_counts(matrix_id=CTCF_MATRIX)
    probabilities = ctcf_motif.column_probabilities(counts, 0.01)
    hits = fimo({matrix_id: probabilities.T}, str(fasta), threshold=1e-4)[0]
    best = hits.sort_values("p-value").drop_duplicates("sequence_name")
    return {name: ((start + end) / 2, strand, float(p)) for name, start, end, strand, p in
            zip(best["sequence_name"], best["start"], best["end"], best["strand"], best["p-value"])}


class BoundReference(NamedTuple):
    """What the runs on the ten CTCF-bound sequences are compared with, computed once."""

    hits: dict  # name -> (centre, strand, p) of FIMO's best MA0139.2 hit
    probability: dict  # name -> the network's P(bound)


def bound_reference(fasta: Path) -> BoundReference:
    from kipoi_maxent import inputs as input_sources

    codes = {item.name: item.codes for item in input_sources.fasta_inputs(fasta, 101)}
    probability = network_probability(CTCF_MODEL, CTCF_SPEC, np.stack(list(codes.values())))
    return BoundReference(fimo_centres(fasta), dict(zip(codes, probability)))


def bound_calls(directory: Path, reference: BoundReference) -> dict:
    """Calls on the ten CTCF-bound sequences against FIMO's best MA0139.2 hit in each, with the
    network's P(bound) of each sequence."""
    summary = read_summary(directory)
    hits, probability = reference
    rows, offsets = [], []
    for _, row in summary.iterrows():
        centre = (int(row["motif_start"]) + int(row["motif_end"])) / 2
        hit = hits.get(row["name"])
        offset = None if hit is None else centre - hit[0]
        offsets.append(offset)
        rows.append(f"| {row['name']} | {probability[row['name']]:.2f} | {int(row['motif_start'])}–{int(row['motif_end'])} | "
                    + (f"{hit[0] - 7.5:.0f}–{hit[0] + 7.5:.0f} ({hit[1]}, p = {hit[2]:.1e})" if hit else "none")
                    + f" | {'' if offset is None else f'{offset:+.1f}'} | {row['motif_score']:.2f} | "
                      f"{match_text(row)} | {row['converged']} |")
    known = [o for o in offsets if o is not None]
    return {"n": len(summary), "table": "\n".join(rows), "with_hit": len(known), "offsets": offsets,
            "within_2bp": int(sum(abs(o) <= 2 for o in known)),
            "overlapping": int(sum(abs(o) <= 17 for o in known)),
            "converged": int(flag(summary, "converged").sum()),
            "constrained": int((summary["motif_score"] >= CONSTRAINED_BITS).sum()),
            "probable": int(sum(p > 0.5 for p in probability.values())),
            "orientations": " / ".join(f"{k}: {v}" for k, v in summary["motif_match_orientation"].astype(object)
                                       .where(summary["motif_match_orientation"].notna(), "none")
                                       .value_counts().items())}


def match_text(row) -> str:
    """``"CTCF +"``: a call's best JASPAR match and its orientation, or ``"none"``."""
    name = row.get("motif_match_name")
    return f"{name} {row.get('motif_match_orientation', '')}" if isinstance(name, str) and name else "none"


def bound_sweep(directory: Path, reference: BoundReference) -> str:
    """Rows of the ten sequences' β table: calls on FIMO's hit, constrained inputs, acceptance."""
    rows = []
    for sub in sorted(directory.glob("beta_*"), key=beta_of):
        calls = bound_calls(sub, reference)
        summary = read_summary(sub)
        rows.append(f"| {beta_of(sub):g} | {calls['within_2bp']}/{calls['with_hit']} | {calls['overlapping']}/"
                    f"{calls['with_hit']} | {calls['constrained']}/{calls['n']} | "
                    f"{summary['acceptance_rate'].median():.3f} |")
    return "\n".join(rows)


def consensus_text(directory: Path) -> str:
    """``"consensus of n calls; best JASPAR match MA0139.2 CTCF (p = …, +)"`` from ``run.json``."""
    return run_record(directory).get("consensus", {}).get("label", "no consensus")


def beta_sweep(directory: Path, sites: dict) -> list[dict]:
    rows = []
    for sub in sorted(directory.glob("beta_*"), key=beta_of):
        calls = ctcf_calls(sub, sites)
        rows.append({"beta": beta_of(sub), **{k: v for k, v in calls.items() if k != "offsets"}})
    return rows


def nucleosome_numbers(directory: Path) -> dict:
    """GC importance and period-10 numbers of one ``denovo`` run over nucleosome windows."""
    import pandas as pd

    summary = read_summary(directory)
    n = len(summary)
    important_flags = flag(summary, "gc_important")
    important = int(important_flags.sum())
    converged_flags = flag(summary, "converged")
    normal = int(summary["gc_normality"].astype(str).eq("normal").sum())
    mean_amp, sample_amp = summary["period10_mean_amplitude"], summary["period10_sample_amplitude"]
    fourier = pd.read_csv(directory / "fourier.tsv", sep="\t")
    spectrum = fourier.groupby("period")[["mean_signal_amplitude", "sample_amplitude"]].mean().sort_index()
    periods = spectrum.index.to_numpy()
    at_10 = np.argmin(np.abs(periods - 10))
    # a peak, not a level: period 10 against the median of periods 5-50 away from 10 (9.5-10.6 bp excluded)
    around = (periods >= 5) & (periods <= 50) & (np.abs(periods - 10) > 0.7)
    return {"n": n, "important": important, "important_text": interval_text(important, n),
            "important_converged": f"{int((important_flags & converged_flags).sum())}/{int(converged_flags.sum())}",
            "percentiles": summary["gc_percentile"].to_numpy(float), "normal": normal,
            "converged": int(converged_flags.sum()),
            "median_steps": float(summary["steps"].median()),
            "diagnostics": (f"median rank R-hat {summary['rhat_distance'].median():.3f} (distance) and "
                            f"{summary['rhat_gc'].median():.3f} (GC); median bulk ESS "
                            f"{summary['ess_distance'].median():.0f} and {summary['ess_gc'].median():.0f}"),
            "period10_mean": float(mean_amp.mean()), "period10_sample": float(sample_amp.mean()),
            "period10_suppressed": int((sample_amp < mean_amp).sum()),
            "spectrum": spectrum, "beta": beta_of(directory),
            "peak_mean": float(spectrum["mean_signal_amplitude"].iloc[at_10]
                               / np.median(spectrum["mean_signal_amplitude"].to_numpy()[around])),
            "peak_sample": float(spectrum["sample_amplitude"].iloc[at_10]
                                 / np.median(spectrum["sample_amplitude"].to_numpy()[around])), "mu": float(run_record(directory)["mu"])}


def phase_contrast(directory: Path, bed: Path, fasta: Path) -> dict:
    """GC at the planted signal's GC phase minus GC at its AA/TT phase, in samples and inputs.

    Positions: the dinucleotide starts of ``make_nucleosome_data`` (``GC_STARTS`` and
    ``AA_TT_STARTS``, both bases of each dinucleotide; the planting jitters the frame by ±1 bp,
    so this is the unjittered frame). Samples: the sample-mean frequency of G + C
    (``frequencies.h5``); inputs: the input's own bases. Averaged over windows.
    """
    import h5py

    from kipoi_maxent import inputs as input_sources
    from kipoi_maxent.sequence import GC_CODES

    maker = nucleosome_maker()
    gc_phase = np.r_[maker.GC_STARTS, maker.GC_STARTS + 1]
    at_phase = np.r_[maker.AA_TT_STARTS, maker.AA_TT_STARTS + 1]
    with h5py.File(directory / "frequencies.h5", "r") as h5:
        gc = h5["frequencies"][:, :, 1:3].sum(axis=2)  # alphabet ACGT: C and G
    codes = np.stack([item.codes for item in input_sources.bed_inputs(bed, fasta, gc.shape[1])])
    input_gc = np.isin(codes, GC_CODES)
    return {"samples": float((gc[:, gc_phase].mean(axis=1) - gc[:, at_phase].mean(axis=1)).mean()),
            "inputs": float((input_gc[:, gc_phase].mean(axis=1) - input_gc[:, at_phase].mean(axis=1)).mean())}


def pca_spectra(directory: Path) -> np.ndarray:
    """Each exemplar's principal-component variances, ranked ascending: ``(E, L)`` (NaN last:
    positions unknown in the input)."""
    with np.load(directory / "pca.npz") as data:
        return np.sort(np.asarray(data["spectrum"], float), axis=1)


def knn_ablation(positives: Path, negatives: Path, test_positives: Path, test_negatives: Path,
                 fasta: Path) -> dict:
    """The k-NN of ``kipoi-maxent knn`` with per-element results, and an ablation that explains it.

    Per element: correct with the lowest-variance PCs, with the random control, and with plain
    Euclidean distance to the exemplar means (no directions at all). Ablation: neighbours and
    number of components.
    """
    from kipoi_maxent import inputs as input_sources
    from kipoi_maxent.denovo import exemplar_axes, knn_classify, load_pca, paired_p_value, pm_encode

    _, positive_pcas, control = load_pca(positives / "pca.npz")
    _, negative_pcas, _ = load_pca(negatives / "pca.npz")
    pcas = positive_pcas + negative_pcas
    labels = np.r_[np.ones(len(positive_pcas), int), np.zeros(len(negative_pcas), int)]
    length = len(pcas[0].mean)

    def encoded(bed):
        return pm_encode(np.stack([item.codes for item in input_sources.bed_inputs(bed, fasta, length)]))

    test_pos, test_neg = encoded(test_positives), encoded(test_negatives)
    test = np.concatenate([test_pos, test_neg])
    truth = np.r_[np.ones(len(test_pos), int), np.zeros(len(test_neg), int)]
    by_pcs, by_control = exemplar_axes(pcas), exemplar_axes(pcas, control)
    means = by_pcs.means

    def correct(axes, components, neighbors):
        predicted = knn_classify(means, axes.directions[:, :components], axes.sd[:, :components], labels, test,
                                 neighbors)
        return predicted == truth

    neighbor_counts = [k for k in ABLATION_NEIGHBORS if k <= len(pcas)]
    distances = ((test[:, None, :] - means[None, :, :]) ** 2).sum(axis=2)
    euclidean = {}
    for neighbors in neighbor_counts:
        nearest = np.argsort(distances, axis=1, kind="stable")[:, :neighbors]
        votes = labels[nearest].mean(axis=1)
        euclidean[neighbors] = np.where(votes == 0.5, labels[nearest[:, 0]], votes > 0.5) == truth
    ablation = []
    for components in ABLATION_COMPONENTS:
        for neighbors in neighbor_counts:
            ablation.append({"components": components, "neighbors": neighbors,
                             "pcs": float(correct(by_pcs, components, neighbors).mean()),
                             "control": float(correct(by_control, components, neighbors).mean())})
    pcs = correct(by_pcs, 5, 10)
    random_directions = correct(by_control, 5, 10)
    return {"n_test": len(test), "neighbor_counts": neighbor_counts, "pcs": pcs, "control": random_directions, "euclidean": euclidean[10],
            "euclidean_by_k": {k: float(v.mean()) for k, v in euclidean.items()}, "ablation": ablation,
            "pcs_vs_control_p": paired_p_value(pcs, random_directions),
            "pcs_vs_euclidean_p": paired_p_value(pcs, euclidean[10])}


# ---------------------------------------------------------------------------------------------
# Figures
# ---------------------------------------------------------------------------------------------
def figures(directory: Path, ctcf: dict, sweep: list, positives: dict, negatives: dict,
            spectra: tuple, knn: dict) -> list[str]:
    """Write the document's PNGs into ``directory``; return their names."""
    import matplotlib

    from kipoi_maxent.denovo import accuracy_interval

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    directory.mkdir(parents=True, exist_ok=True)
    names = []

    def annotate(ax, xlabel, ylabel, title, legend=True):
        ax.set_xlabel(xlabel)
        ax.set_ylabel(ylabel)
        ax.set_title(title, fontsize=10)
        if legend:
            ax.legend(fontsize=8)

    def save(fig, name):
        fig.tight_layout()
        fig.savefig(directory / name, dpi=110)
        plt.close(fig)
        names.append(name)

    fig, ax = plt.subplots(figsize=(5, 3))
    offsets = np.asarray(ctcf["offsets"])
    ax.hist(offsets, bins=np.arange(-20.5, 21.5, 1), color="#4477aa")
    annotate(ax, "motif call centre − planted site centre (bp)", "peaks", f"CTCF, {len(offsets)} planted peaks (cf. Fig. 3C)",
          legend=False)
    save(fig, "ctcf_call_offsets.png")

    fig, ax1 = plt.subplots(figsize=(5.5, 3.2))
    betas = [row["beta"] for row in sweep]
    ax1.semilogx(betas, [row["covers"] / row["n"] for row in sweep], "o-", label="calls covering the site")
    ax1.semilogx(betas, [row["median_acceptance"] for row in sweep], "s--", label="median acceptance")
    ax1.semilogx(betas, [row["converged"] / row["n"] for row in sweep], "^:", label="converged")
    ax1.set_xticks(betas, [f"{b:g}" for b in betas])
    ax1.minorticks_off()
    ax1.set_xlabel("β")
    ax1.set_ylim(-0.02, 1.02)
    ax1.legend(fontsize=8)
    ax1.set_title("CTCF: β sensitivity", fontsize=10)
    save(fig, "ctcf_beta_sweep.png")

    fig, axes = plt.subplots(1, 2, figsize=(9, 3.2), sharey=True)
    for ax, numbers, title in ((axes[0], positives, "nucleosomal"), (axes[1], negatives, "control")):
        spectrum = numbers["spectrum"]
        scale = spectrum.to_numpy().max()
        periods = spectrum.index.to_numpy()
        keep = periods <= 50
        ax.plot(periods[keep], spectrum["mean_signal_amplitude"].to_numpy()[keep] / scale, label="sample mean")
        ax.plot(periods[keep], spectrum["sample_amplitude"].to_numpy()[keep] / scale, label="individual samples")
        ax.axvline(10, color="grey", lw=0.5)
        ax.set_xlabel("period (bp)")
        ax.set_title(f"{title}, {numbers['n']} windows (cf. Fig. 4B)", fontsize=10)
    axes[0].set_ylabel("GC Fourier amplitude (scaled)")
    axes[0].legend(fontsize=8)
    save(fig, "nucleosome_fourier.png")

    fig, ax = plt.subplots(figsize=(5, 3))
    bins = np.linspace(0, 100, 21)
    ax.hist(positives["percentiles"], bins=bins, alpha=0.7, label=f"nucleosomal ({positives['n']})")
    ax.hist(negatives["percentiles"], bins=bins, alpha=0.5, label=f"control ({negatives['n']})")
    ax.axvline(90, color="k", lw=0.8)
    annotate(ax, "percentile of δ_GC among 300 dummy features", "windows", "GC content importance (cf. Fig. 5B)")
    save(fig, "nucleosome_gc_percentiles.png")

    fig, ax = plt.subplots(figsize=(5, 3))
    for ranked, label in zip(spectra, ("nucleosomal", "control")):
        # per exemplar, the non-zero variances (a zero one is a position no sample changed)
        moving = [row[row >= FROZEN_VARIANCE] / np.nanmax(row) for row in ranked]
        shown = min(40, min(len(row) for row in moving))
        ax.semilogy(np.arange(1, shown + 1), np.median([row[:shown] for row in moving], axis=0), "o-", ms=3,
                    label=f"{label}: median of {len(ranked)}")
    annotate(ax, "principal component, lowest non-zero variance first", "variance / largest",
          "Ranked PC variances (cf. Fig. 5C)")
    save(fig, "denovo_pc_variances.png")

    fig, ax = plt.subplots(figsize=(5, 3))
    labels = ["lowest-variance PCs", "random directions", "Euclidean, no directions"]
    correct = [knn["pcs"], knn["control"], knn["euclidean"]]
    values = [c.mean() for c in correct]
    errors = np.abs(np.array([accuracy_interval(c) for c in correct]).T - values)
    ax.bar(range(3), values, yerr=errors, capsize=4, color=["#4477aa", "#bbbbbb", "#ccbb44"])
    ax.axhline(0.5, color="k", lw=0.5)
    ax.set_xticks(range(3), labels, fontsize=8)
    ax.set_ylabel("10-NN accuracy (95 % CI)")
    ax.set_ylim(0, 1)
    ax.set_title(f"De novo features: {knn['n_test']} held-out windows", fontsize=10)
    save(fig, "denovo_knn.png")
    return names


# ---------------------------------------------------------------------------------------------
# Main
# ---------------------------------------------------------------------------------------------
def sweep_of(beta: float) -> str:
    """``--beta`` of a sweep: ``beta`` times :data:`SWEEP_FACTORS` (3 significant digits), and 400."""
    return ",".join(f"{b:g}" for b in sorted({float(f"{beta * f:.3g}") for f in SWEEP_FACTORS} | {PAPER_CTCF_BETA}))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="toy scale, to check the pipeline (minutes)")
    parser.add_argument("--output", type=Path, help="work directory (default: replication_output[_quick])")
    parser.add_argument("--document", type=Path,
                        help="where the document goes (default: docs/replication.md; --quick: in the output)")
    args = parser.parse_args(argv)
    scale = QUICK if args.quick else FULL
    out = (args.output or REPO / ("replication_output_quick" if args.quick else "replication_output")).resolve()
    document = args.document or (out / "replication.md" if args.quick else REPO / "docs" / "replication.md")
    figure_dir = document.parent / "replication"
    out.mkdir(parents=True, exist_ok=True)
    steps = Steps(out / "steps.json")
    rel = relative(out)

    data_file = out / "data" / "data.json"
    data_command = f"data at {({k: v for k, v in asdict(scale).items() if k in DATA_FIELDS})}"
    if not (steps.done("data", data_command) and data_file.is_file()):
        log("data: planted CTCF genome and yeast nucleosome windows")
        t0 = time.perf_counter()
        data = {"ctcf": make_ctcf_data(out / "data" / "ctcf", scale),
                "nucleosome": make_nucleosome_data(out / "data" / "nucleosome", scale)}
        data_file.write_text(json.dumps(data, indent=1) + "\n")
        steps.save("data", data_command, time.perf_counter() - t0)
    data = json.loads(data_file.read_text())
    ctcf_data, nuc = data["ctcf"], data["nucleosome"]

    kipoi_maxent(steps, "ctcf_planted", ["sample", "--config", CTCF_CONFIG, "--intervals", ctcf_data["peaks"],
                                         "--fasta", ctcf_data["fasta"], "-o", rel / "ctcf_planted"])
    kipoi_maxent(steps, "ctcf_bound_10", ["sample", "--config", CTCF_BOUND_CONFIG, "-o", rel / "ctcf_bound_10"])
    bound_beta = beta_of(out / "ctcf_bound_10")
    kipoi_maxent(steps, "ctcf_bound_10_beta_sweep", [
        "sample", "--config", CTCF_BOUND_CONFIG, "--beta", sweep_of(bound_beta), "--steps", scale.sweep_steps,
        "--writers", "summary,motifs", "-o", rel / "ctcf_bound_10_beta_sweep"])
    auto_beta = beta_of(out / "ctcf_planted")
    kipoi_maxent(steps, "ctcf_beta_sweep", [
        "sample", "--config", CTCF_CONFIG, "--intervals", ctcf_data["peaks"], "--fasta", ctcf_data["fasta"],
        "--beta", sweep_of(auto_beta), "--steps", scale.sweep_steps,
        "--writers", "summary,frequencies", "-o", rel / "ctcf_beta_sweep"])
    nucleosome = ["denovo", "--config", NUCLEOSOME_CONFIG, "--fasta", nuc["fasta"], "--mu", f"{nuc['mu']:.4f}"]
    if scale.nucleosome_max_steps:
        nucleosome += ["--max-steps", scale.nucleosome_max_steps]
    kipoi_maxent(steps, "nucleosome_positives", [*nucleosome, "--intervals", nuc["exemplar_positives"],
                                                 "-o", rel / "nucleosome_positives"])
    for label, bed in (("positives", "exemplar_positives"), ("controls", "exemplar_negatives")):
        kipoi_maxent(steps, f"nucleosome_{label}_paper_beta", [
            "sample", *nucleosome[1:], "--intervals", nuc[bed], "--beta", PAPER_NUCLEOSOME_BETA,
            "--writers", "summary,fourier", "-o", rel / f"nucleosome_{label}_paper_beta"])
    nucleosome_beta = beta_of(out / "nucleosome_positives")
    kipoi_maxent(steps, "nucleosome_controls", [*nucleosome, "--intervals", nuc["exemplar_negatives"],
                                                "--beta", f"{nucleosome_beta:.6g}", "-o", rel / "nucleosome_controls"])
    kipoi_maxent(steps, "knn", ["knn", "--positives", rel / "nucleosome_positives",
                                "--negatives", rel / "nucleosome_controls", "--test-positives", nuc["test_positives"],
                                "--test-negatives", nuc["test_negatives"], "--fasta", nuc["fasta"],
                                "-o", rel / "knn"])

    log("analysis and figures")
    t0 = time.perf_counter()
    ctcf = ctcf_calls(out / "ctcf_planted", ctcf_data["sites"])
    reference = bound_reference(CTCF_BOUND)
    bound = bound_calls(out / "ctcf_bound_10", reference)
    sweep = beta_sweep(out / "ctcf_beta_sweep", ctcf_data["sites"])
    positives = nucleosome_numbers(out / "nucleosome_positives")
    paper_beta = nucleosome_numbers(out / "nucleosome_positives_paper_beta")
    paper_beta_controls = nucleosome_numbers(out / "nucleosome_controls_paper_beta")
    controls = nucleosome_numbers(out / "nucleosome_controls")
    phases = [phase_contrast(out / run, REPO / nuc[bed], REPO / nuc["fasta"]) for run, bed in
              (("nucleosome_positives", "exemplar_positives"), ("nucleosome_controls", "exemplar_negatives"))]
    spectra = (pca_spectra(out / "nucleosome_positives"), pca_spectra(out / "nucleosome_controls"))
    knn = knn_ablation(out / "nucleosome_positives", out / "nucleosome_controls", REPO / nuc["test_positives"],
                       REPO / nuc["test_negatives"], REPO / nuc["fasta"])
    knn_json = json.loads((out / "knn" / "knn.json").read_text())
    names = figures(figure_dir, ctcf, sweep, positives, controls, spectra, knn)
    analysis_seconds = time.perf_counter() - t0

    # a direction with no variance at all is a position no sample changed; the drop is read on the others
    frozen = [int(np.sum(s[:, 0] < FROZEN_VARIANCE)) for s in spectra]
    drop = [np.median([row[row >= FROZEN_VARIANCE][0] / row[row >= FROZEN_VARIANCE][5] for row in s])
            for s in spectra]
    numbers = {
        "scale": "full" if not args.quick else "quick (toy scale: not for reading)",
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}",
        "date": time.strftime("%Y-%m-%d"),
        "total_minutes": f"{(sum(v['seconds'] for v in steps.record.values()) + analysis_seconds) / 60:.0f}",
        "nuc_planted": f"{math.ceil(OVERDRAW * (scale.exemplars + scale.test)):,}",
        "core_minutes": f"{(sum(v['seconds'] for k, v in steps.record.items() if 'paper_beta' not in k) + analysis_seconds) / 60:.0f}",
        "ctcf_genome": ctcf_data["description"],
        "ctcf_command": steps.command("ctcf_planted"), "ctcf_seconds": f"{steps.seconds('ctcf_planted'):.0f}",
        "ctcf_n": ctcf["n"], "ctcf_beta": f"{auto_beta:.1f}",
        "ctcf_beta_choice": run_record(out / "ctcf_planted")["beta_choice"]["explanation"],
        "ctcf_covers": interval_text(ctcf["covers"], ctcf["n"]),
        "ctcf_within_2bp": interval_text(ctcf["within_2bp"], ctcf["n"]),
        "ctcf_off_site": ctcf["n"] - ctcf["covers"], "ctcf_off_site_unconstrained": ctcf["off_site_unconstrained"],
        "ctcf_constrained": f"{ctcf['constrained']}/{ctcf['n']}",
        "ctcf_converged_constrained": f"{ctcf['converged_constrained']}/{ctcf['constrained']}",
        "ctcf_median_abs_offset": f"{np.median(np.abs(ctcf['offsets'])):.1f}",
        "ctcf_ctcf_named": f"{ctcf['ctcf_named']}/{ctcf['n']}",
        "ctcf_orientation": f"{ctcf['orientation_agrees']} of the {ctcf['ctcf_named']} calls matched to CTCF",
        "ctcf_plus_calls": f"{ctcf['plus_calls']}/{ctcf['n']}",
        "ctcf_converged": f"{ctcf['converged']}/{ctcf['n']}", "ctcf_median_steps": f"{ctcf['median_steps']:,.0f}",
        "ctcf_consensus": consensus_text(out / "ctcf_planted"),
        "bound_command": steps.command("ctcf_bound_10"), "bound_seconds": f"{steps.seconds('ctcf_bound_10'):.0f}",
        "bound_beta": f"{beta_of(out / 'ctcf_bound_10'):.1f}",
        "bound_beta_source": run_record(out / "ctcf_bound_10")["sampler"].get("beta_source", ""),
        "bound_table": bound["table"], "bound_n": bound["n"], "bound_with_hit": bound["with_hit"],
        "bound_within_2bp": bound["within_2bp"], "bound_overlapping": bound["overlapping"],
        "bound_converged": f"{bound['converged']}/{bound['n']}", "bound_orientations": bound["orientations"],
        "bound_consensus": consensus_text(out / "ctcf_bound_10"),
        "bound_constrained": f"{bound['constrained']}/{bound['n']}", "bound_probable": f"{bound['probable']}/{bound['n']}",
        "bound_sweep_command": steps.command("ctcf_bound_10_beta_sweep"),
        "bound_sweep_seconds": f"{steps.seconds('ctcf_bound_10_beta_sweep'):.0f}",
        "bound_sweep_table": bound_sweep(out / "ctcf_bound_10_beta_sweep", reference),
        "sweep_command": steps.command("ctcf_beta_sweep"), "sweep_seconds": f"{steps.seconds('ctcf_beta_sweep'):.0f}",
        "sweep_steps": f"{scale.sweep_steps:,}",
        "sweep_table": "\n".join(
            f"| {row['beta']:g}{' (auto)' if math.isclose(row['beta'], float(f'{auto_beta:.3g}')) else ''}"
            f"{' (paper)' if row['beta'] == PAPER_CTCF_BETA else ''} | {row['covers']}/{row['n']} | "
            f"{row['within_2bp']}/{row['n']} | {row['median_acceptance']:.3f} | {row['median_motif_score']:.2f} | "
            f"{row['converged']}/{row['n']} |" for row in sweep),
        "nuc_data": (f"{nuc['slots']:,} slots of {SLOT} bp on chrIII + chrX; GC {nuc['gc_fraction']:.4f} before "
                     f"planting → μ = {nuc['mu']:.4f}; positives skipped as misclassified before the "
                     f"{scale.exemplars}th exemplar: {nuc['positives_skipped']}, negatives: {nuc['negatives_skipped']}"),
        "nuc_positive_command": steps.command("nucleosome_positives"),
        "nuc_positive_seconds": f"{steps.seconds('nucleosome_positives'):.0f}",
        "nuc_control_command": steps.command("nucleosome_controls"),
        "nuc_control_seconds": f"{steps.seconds('nucleosome_controls'):.0f}",
        "nuc_beta": f"{positives['beta']:.1f}", "nuc_mu": f"{positives['mu']:.4f}",
        "nuc_beta_choice": run_record(out / "nucleosome_positives")["beta_choice"]["explanation"],
        "nuc_n": positives["n"], "ctl_n": controls["n"],
        "nuc_converged": f"{positives['converged']}/{positives['n']}",
        "ctl_converged": f"{controls['converged']}/{controls['n']}",
        "nuc_median_steps": f"{positives['median_steps']:,.0f}", "ctl_median_steps": f"{controls['median_steps']:,.0f}",
        "paper_beta_command": steps.command("nucleosome_positives_paper_beta"),
        "paper_beta_seconds": f"{steps.seconds('nucleosome_positives_paper_beta'):.0f}",
        "paper_beta_converged": f"{paper_beta['converged']}/{paper_beta['n']}",
        "paper_beta_median_steps": f"{paper_beta['median_steps']:,.0f}", "paper_beta_diagnostics": paper_beta["diagnostics"],
        "paper_beta_gc_important": paper_beta["important_text"],
        "paper_beta_gc_important_converged": paper_beta["important_converged"],
        "paper_beta_ctl_gc_important_converged": paper_beta_controls["important_converged"],
        "nuc_gc_important_converged": positives["important_converged"],
        "ctl_gc_important_converged": controls["important_converged"],
        "paper_beta_ctl_command": steps.command("nucleosome_controls_paper_beta"),
        "paper_beta_ctl_seconds": f"{steps.seconds('nucleosome_controls_paper_beta'):.0f}",
        "paper_beta_ctl_converged": f"{paper_beta_controls['converged']}/{paper_beta_controls['n']}",
        "paper_beta_ctl_gc_important": paper_beta_controls["important_text"],
        "paper_beta_ctl_peak_mean": f"{paper_beta_controls['peak_mean']:.2f}",
        "paper_beta_ctl_peak_sample": f"{paper_beta_controls['peak_sample']:.2f}",
        "paper_beta_peak_mean": f"{paper_beta['peak_mean']:.2f}", "paper_beta_peak_sample": f"{paper_beta['peak_sample']:.2f}",
        "paper_beta_p10_ratio": f"{paper_beta['period10_mean'] / paper_beta['period10_sample']:.2f}",
        "nuc_diagnostics": positives["diagnostics"], "ctl_diagnostics": controls["diagnostics"],
        "nuc_max_steps": f"{run_record(out / 'nucleosome_positives')['sampler']['max_steps']:,}",
        # the cap the CTCF runs had: the default of the code that ran them
        "default_max_steps": f"{run_record(out / 'ctcf_planted')['sampler']['max_steps']:,}".replace(",", " "),
        "nuc_gc_important": positives["important_text"], "ctl_gc_important": controls["important_text"],
        "nuc_gc_normal": f"{positives['normal']}/{positives['n']}", "ctl_gc_normal": f"{controls['normal']}/{controls['n']}",
        "nuc_p10_mean": f"{positives['period10_mean']:.3f}", "nuc_p10_sample": f"{positives['period10_sample']:.3f}",
        "nuc_p10_ratio": f"{positives['period10_mean'] / positives['period10_sample']:.2f}",
        "nuc_p10_suppressed": f"{positives['period10_suppressed']}/{positives['n']}",
        "ctl_p10_mean": f"{controls['period10_mean']:.3f}", "ctl_p10_sample": f"{controls['period10_sample']:.3f}",
        "ctl_p10_ratio": f"{controls['period10_mean'] / controls['period10_sample']:.2f}",
        "nuc_peak_mean": f"{positives['peak_mean']:.2f}", "nuc_peak_sample": f"{positives['peak_sample']:.2f}",
        "ctl_peak_mean": f"{controls['peak_mean']:.2f}", "ctl_peak_sample": f"{controls['peak_sample']:.2f}",
        "nuc_phase_samples": f"{phases[0]['samples']:+.3f}", "nuc_phase_inputs": f"{phases[0]['inputs']:+.3f}",
        "ctl_phase_samples": f"{phases[1]['samples']:+.3f}", "ctl_phase_inputs": f"{phases[1]['inputs']:+.3f}",
        "nuc_pc_drop": f"{drop[0]:.2f}", "ctl_pc_drop": f"{drop[1]:.2f}",
        "nuc_frozen": f"{frozen[0]}/{len(spectra[0])}", "ctl_frozen": f"{frozen[1]}/{len(spectra[1])}",
        "knn_command": steps.command("knn"), "knn_seconds": f"{steps.seconds('knn'):.0f}",
        "knn_exemplars": f"{knn_json['exemplars']['positive']} + {knn_json['exemplars']['negative']}",
        "knn_test": f"{knn_json['test']['positive']} + {knn_json['test']['negative']}",
        "knn_cli": (f"components {percent(knn_json['components'])} (95 % CI "
                    f"{'–'.join(percent(x) for x in knn_json['components_interval'])}), control "
                    f"{percent(knn_json['control'])} ({'–'.join(percent(x) for x in knn_json['control_interval'])}), "
                    f"paired p = {knn_json['paired_p']:.1e}"),
        "knn_pcs": interval_text(int(knn["pcs"].sum()), knn["n_test"]),
        "knn_control": interval_text(int(knn["control"].sum()), knn["n_test"]),
        "knn_euclidean": interval_text(int(knn["euclidean"].sum()), knn["n_test"]),
        "knn_pcs_vs_control_p": f"{knn['pcs_vs_control_p']:.1e}",
        "knn_pcs_vs_euclidean_p": f"{knn['pcs_vs_euclidean_p']:.1e}",
        "knn_network_accuracy": percent((nuc["test_positives_network_accuracy"] + nuc["test_negatives_network_accuracy"]) / 2),
        "knn_ablation_table": "\n".join(
            f"| {c} | " + " | ".join(
                f"{100 * row['pcs']:.1f} / {100 * row['control']:.1f}"
                for row in knn["ablation"] if row["components"] == c) + " |" for c in ABLATION_COMPONENTS),
        "knn_ablation_header": " | ".join(f"k = {k}" for k in knn["neighbor_counts"]),
        "knn_ablation_rule": "|".join("---" for _ in knn["neighbor_counts"]),
        "knn_euclidean_by_k": ", ".join(f"k = {k}: {100 * v:.1f} %" for k, v in knn["euclidean_by_k"].items()),
        "analysis_seconds": f"{analysis_seconds:.0f}",
    }
    (out / "numbers.json").write_text(json.dumps(numbers, indent=1, default=str) + "\n")
    text = TEMPLATE.read_text().format_map(numbers)
    document.parent.mkdir(parents=True, exist_ok=True)
    document.write_text(text)
    log(f"wrote {document} and {len(names)} figures in {figure_dir}; total {numbers['total_minutes']} min")


if __name__ == "__main__":
    main()
