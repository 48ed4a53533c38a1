"""Time to a converged result: kipoi_maxent's defaults against the paper's protocol, on CTCF peaks.

One process, one run of each, on the shipped example CTCF model
(``example_configs/models/ctcf_cnn``) and a synthetic genome made for the benchmark with
``--peaks`` planted CTCF sites (default 20), by ``example_configs/data/make_ctcf_genome.py``
(imported, with its layout widened: chromosomes of 4 sites each, so the count is rounded up to
a multiple of 4; seeded; FASTA, peaks BED and sites BED written as the example's):

1. **defaults**: ``kipoi_maxent.run(model, source="dir", intervals=peaks, fasta=genome)`` with
   nothing else but ``writers`` (``summary.tsv`` and ``frequencies.h5``, what the comparison
   reads): β auto (its pilot included in the time), steps auto (each input until converged),
   the default chains and engine. ``--max-steps`` caps its steps, for smoke runs only.
2. **paper protocol**: the same β, ``chains=100, steps=30000, burnin=0, thin=100`` and the naive
   engine (one full forward pass per proposal, as the paper did); ``--paper-chains``,
   ``--paper-steps`` and ``--paper-engine`` change them.

Before the timed runs, a tiny warm-up run per engine (one peak, fixed β) pays the one-time costs
(TensorFlow import, JIT compilation, JASPAR loading), so neither timed run carries them; its time
is reported. The user cache (``XDG_CACHE_HOME``) points into the work directory, so the β
pilot always runs instead of reading a cached choice.

Measured and printed (markdown): wall time and CPU time of each ``run()`` call and their ratio;
β, its source and the pilot's time (``run.json``); proposals (chain-steps, pilot included);
per input, the motif call of each run (``summary.tsv``: ``motif_start``, ``motif_end``),
whether the two agree (starts within ±2 bp) and whether each overlaps the planted site;
the Pearson correlation of per-base importance (KL, ``frequencies.h5``) between the runs
(median, min, fraction ≥ 0.95); steps run and the ``converged`` flag of each input; the load
average before and after each run (others are measuring on this machine).

Usage::

    python benchmarks/bench_defaults.py                 # the full comparison (idle machine)
    python benchmarks/bench_defaults.py --quick         # paper protocol cut to 2000 steps
    python benchmarks/bench_defaults.py --paper-steps 1000 --paper-chains 10 --max-steps 20000  # smoke
    python benchmarks/bench_defaults.py --peaks 40 --workdir /tmp/bench_defaults   # keeps the outputs
"""
from __future__ import annotations

import argparse
import contextlib
import importlib.util
import io
import logging
import math
import os
import platform
import string
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")  # TensorFlow is imported later, by the runs

REPO = Path(__file__).resolve().parent.parent
MODEL = REPO / "example_configs" / "models" / "ctcf_cnn"
GENOME_MAKER = REPO / "example_configs" / "data" / "make_ctcf_genome.py"
#: What the comparison reads: motif calls, steps and convergence; per-base importance.
WRITERS = ("summary", "frequencies")
#: The paper's protocol (Finnegan & Song 2017, CTCF application).
PAPER_CHAINS = 100
PAPER_STEPS = 30_000
PAPER_THIN = 100
PAPER_BURNIN = 0
#: ``--quick``: the paper protocol's steps.
QUICK_PAPER_STEPS = 2000
#: Two motif calls agree when their starts differ by at most this (bp).
AGREEMENT_BP = 2
#: Importance profiles "match" at this Pearson correlation or above.
MATCHING_R = 0.95
#: The warm-up run: one peak, a fixed β (any positive value: only the code paths matter).
WARMUP = {"beta": 30.0, "chains": 2, "steps": 200, "thin": 10}
#: Packages whose versions the report prints.
VERSIONS = ("kipoi_maxent", "numpy", "tensorflow", "keras", "numba")


def log(message: str = "") -> None:
    """Print one line of the report, flushed (the runs take long)."""
    print(message, flush=True)


def load_average() -> str:
    """The 1, 5 and 15 minute load averages, as printed in the report."""
    return " ".join(f"{value:.2f}" for value in os.getloadavg())


# ---------------------------------------------------------------------------------------------
# The synthetic genome
# ---------------------------------------------------------------------------------------------
@dataclass
class Genome:
    """The benchmark's genome and its planted sites.

    Attributes
    ----------
    fasta, peaks_bed : Path
        Files written by ``make_ctcf_genome.main()`` (it also writes ``ctcf_sites.bed``).
    sites : dict of str to (str, int, int)
        Planted site (chrom, start, end) of each peak, by peak name.
    description : str
        One line: chromosomes, sites, seed, and ``main()``'s own line (JASPAR matrix,
        soft-masked stretches, N run).
    """

    fasta: Path
    peaks_bed: Path
    sites: dict
    description: str


def load_genome_maker():
    """``example_configs/data/make_ctcf_genome.py`` as a module (it is not a package)."""
    spec = importlib.util.spec_from_file_location("make_ctcf_genome", GENOME_MAKER)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def make_genome(directory: Path, peaks: int, seed: int) -> Genome:
    """Write a synthetic genome with at least ``peaks`` planted CTCF sites into ``directory``.

    ``make_ctcf_genome.main()`` takes no arguments: it writes into its module's ``HERE`` the
    genome its module constants describe. They are set before calling it: ``HERE``, ``SEED``,
    ``SITES_PER_CHROM`` (4, the example's; more when 26 chromosomes would not hold ``peaks``)
    and ``CHROMS``: ``chrA``, ``chrB``, … of 5 kb per site (the example's bin width), at least 3
    of them (it soft-masks on ``chrA`` and puts a run of N on ``chrC``).

    Parameters
    ----------
    directory : Path
        Where ``ctcf_genome.fa`` (+ ``.fai``), ``ctcf_peaks.bed`` and ``ctcf_sites.bed`` go.
    peaks : int
        Planted sites wanted; rounded up to whole chromosomes.
    seed : int
        Seed of the generator (``numpy.random.default_rng``).

    Returns
    -------
    Genome
    """
    maker = load_genome_maker()
    bin_width = maker.CHROMS["chrA"] // maker.SITES_PER_CHROM
    per_chromosome = max(maker.SITES_PER_CHROM, math.ceil(peaks / len(string.ascii_uppercase)))
    chromosomes = max(3, math.ceil(peaks / per_chromosome))
    maker.HERE = directory
    maker.SEED = seed
    maker.SITES_PER_CHROM = per_chromosome
    maker.CHROMS = {f"chr{letter}": per_chromosome * bin_width for letter in string.ascii_uppercase[:chromosomes]}
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):  # its first line describes the genome, then a table of the sites
        table, _, _ = maker.main()
    sites = {peak: (chrom, start, start + len(instance))
             for _, chrom, start, _, instance, peak, *_ in table}
    description = (f"{chromosomes} chromosomes x {per_chromosome * bin_width:,} bp, {len(sites)} planted sites, "
                   f"seed {seed}; {printed.getvalue().splitlines()[0]}")
    return Genome(directory / "ctcf_genome.fa", directory / "ctcf_peaks.bed", sites, description)


# ---------------------------------------------------------------------------------------------
# Runs
# ---------------------------------------------------------------------------------------------
@dataclass
class TimedRun:
    """One ``kipoi_maxent.run()`` call and what the comparison reads from its outputs.

    Attributes
    ----------
    label : str
    result : kipoi_maxent.RunResult
    wall, cpu : float
        Seconds of wall-clock time and of this process's CPU time (all threads).
    load_before, load_after : str
        Load averages around the call.
    summary : pandas.DataFrame
        ``summary.tsv``, indexed by input name.
    importance : dict of str to np.ndarray
        Per-base KL (bits; NaN at unknown bases) of each input, from ``frequencies.h5``.
    """

    label: str
    result: object
    wall: float
    cpu: float
    load_before: str
    load_after: str
    summary: object
    importance: dict

    @property
    def sampler(self) -> dict:
        """The ``sampler`` record of ``run.json`` (β, its source, chains, steps, engine, …)."""
        return self.result.record["sampler"]

    @property
    def pilot(self) -> dict | None:
        """The β pilot's record (``run.json`` ``beta_choice``) when a pilot ran, else None."""
        choice = self.result.record.get("beta_choice") or {}
        return choice if choice.get("pilot") else None

    def proposals(self) -> int:
        """Chain-steps of the run, the β pilot's included."""
        total = int(self.summary["steps"].sum()) * int(self.sampler["chains"])
        if self.pilot:
            pilot = self.pilot["pilot"]
            total += len(pilot["inputs"]) * pilot["chains"] * pilot["steps"] * len(self.pilot["table"])
        return total


def timed_run(label: str, output: Path, genome: Genome, **options) -> TimedRun:
    """``kipoi_maxent.run()`` on the genome's peaks with ``options`` (and :data:`WRITERS`), timed.

    Returns
    -------
    TimedRun
    """
    import h5py

    import kipoi_maxent

    load_before = load_average()
    log(f"=== {label}: run({', '.join(f'{k}={v!r}' for k, v in options.items()) or 'defaults'}); "
        f"load average {load_before}")
    wall_start, cpu_start = time.perf_counter(), time.process_time()
    result = kipoi_maxent.run(str(MODEL), source="dir", intervals=str(genome.peaks_bed), fasta=str(genome.fasta),
                              output=str(output), writers=WRITERS, **options)
    wall, cpu = time.perf_counter() - wall_start, time.process_time() - cpu_start
    load_after = load_average()
    log(f"    {wall:.1f} s wall, {cpu:.1f} s CPU; load average {load_after}")
    with h5py.File(result.files["frequencies.h5"], "r") as h5:
        importance = dict(zip(h5["names"].asstr()[:], h5["importance"][:]))
    return TimedRun(label, result, wall, cpu, load_before, load_after, result.summary().set_index("name"),
                    importance)


def warm_up(directory: Path, genome: Genome, engines: list[str]) -> float:
    """Run each engine once on the first peak with :data:`WARMUP` settings; return the seconds.

    Pays the process's one-time costs (framework import, JIT compilation, JASPAR loading) before
    the timed runs, so that neither of them carries them.
    """
    import kipoi_maxent

    directory.mkdir()
    one_peak = directory / "peak.bed"
    one_peak.write_text(genome.peaks_bed.read_text().splitlines(keepends=True)[0])
    started = time.perf_counter()
    for engine in engines:
        kipoi_maxent.run(str(MODEL), source="dir", intervals=str(one_peak), fasta=str(genome.fasta),
                         output=str(directory / engine), writers=WRITERS, engine=engine, **WARMUP)
    return time.perf_counter() - started


# ---------------------------------------------------------------------------------------------
# Comparison and report
# ---------------------------------------------------------------------------------------------
@dataclass
class InputComparison:
    """One input in both runs."""

    name: str
    site: tuple
    defaults_call: tuple
    paper_call: tuple
    correlation: float
    defaults_steps: int
    defaults_converged: bool
    paper_converged: bool

    @property
    def start_difference(self) -> int:
        return self.paper_call[0] - self.defaults_call[0]

    @property
    def calls_agree(self) -> bool:
        return abs(self.start_difference) <= AGREEMENT_BP

    def on_site(self, call: tuple) -> bool:
        """Whether a motif call (start, end) overlaps the planted site."""
        return call[0] < self.site[2] and self.site[1] < call[1]


def pearson(a: np.ndarray, b: np.ndarray) -> float:
    """Pearson correlation over the positions known in both (NaN when either is constant)."""
    known = np.isfinite(a) & np.isfinite(b)
    a, b = a[known], b[known]
    if a.size < 2 or a.std() == 0 or b.std() == 0:
        return math.nan
    return float(np.corrcoef(a, b)[0, 1])


def compare(defaults: TimedRun, paper: TimedRun, genome: Genome) -> list[InputComparison]:
    """Per input, in the defaults run's order: motif calls, importance correlation, steps."""
    rows = []
    for name, row in defaults.summary.iterrows():
        other = paper.summary.loc[name]
        rows.append(InputComparison(
            name, genome.sites[name], (int(row["motif_start"]), int(row["motif_end"])),
            (int(other["motif_start"]), int(other["motif_end"])),
            pearson(defaults.importance[name], paper.importance[name]), int(row["steps"]),
            bool(row["converged"]), bool(other["converged"])))
    return rows


def steps_description(steps: np.ndarray) -> str:
    """Steps per chain of a run's inputs: the value when all are equal, else median and range."""
    if steps.min() == steps.max():
        return f"{int(steps[0]):,}"
    return f"median {int(np.median(steps)):,} ({int(steps.min()):,}-{int(steps.max()):,})"


def report(defaults: TimedRun, paper: TimedRun, rows: list[InputComparison], warmup_seconds: float) -> None:
    """Print the per-run and per-input markdown tables and the summary lines."""
    n = len(rows)
    pilot = defaults.pilot  # always run: the user cache is the work directory's, fresh
    log("\n=== Runs")
    log("| run | β (source) | chains | steps per chain | engine | wall s | CPU s | proposals | calls on site "
        "| converged | load before → after |")
    log("|---|---|---|---|---|---:|---:|---:|---:|---:|---|")
    for run, call in ((defaults, "defaults_call"), (paper, "paper_call")):
        sampler = run.sampler
        steps = steps_description(run.summary["steps"].to_numpy())
        if sampler["steps"] == "auto":
            steps = f"auto (≤ {sampler['max_steps']:,}): {steps}"
        on_site = sum(row.on_site(getattr(row, call)) for row in rows)
        log(f"| {run.label} | {sampler['beta']:.4g} ({sampler['beta_source']}) | {sampler['chains']} | {steps} "
            f"| {sampler['engine']} | {run.wall:.1f} | {run.cpu:.1f} | {run.proposals():,} | {on_site}/{n} "
            f"| {int(run.summary['converged'].sum())}/{n} | {run.load_before} → {run.load_after} |")
    log(f"\nβ of the defaults: {defaults.sampler['beta']:.4g} ({defaults.sampler['beta_source']}; pilot "
        f"{pilot['pilot']['seconds']:.0f} s, {len(pilot['table'])} β values x {len(pilot['pilot']['inputs'])} inputs "
        f"x {pilot['pilot']['chains']} chains x {pilot['pilot']['steps']:,} steps; {pilot['explanation']})")

    log("\n=== Per input (calls: genome coordinates, 0-based half-open; Δ = paper start − defaults start)")
    log("| input | planted site | defaults call | paper call | Δ bp | agree | on site (d/p) | r(KL) "
        "| defaults steps | converged (d/p) |")
    log("|---|---|---|---|---:|---|---|---:|---:|---|")

    def yes(flag: bool) -> str:
        return "yes" if flag else "no"

    for row in rows:
        chrom, start, end = row.site
        log(f"| {row.name} | {chrom}:{start}-{end} | {row.defaults_call[0]}-{row.defaults_call[1]} "
            f"| {row.paper_call[0]}-{row.paper_call[1]} | {row.start_difference:+d} | {yes(row.calls_agree)} "
            f"| {yes(row.on_site(row.defaults_call))}/{yes(row.on_site(row.paper_call))} | {row.correlation:.3f} "
            f"| {row.defaults_steps:,} | {yes(row.defaults_converged)}/{yes(row.paper_converged)} |")

    correlations = np.array([row.correlation for row in rows])
    known = correlations[np.isfinite(correlations)]
    correlation_text = (f"median {np.median(known):.3f}, min {known.min():.3f}, ≥ {MATCHING_R} on "
                        f"{int((known >= MATCHING_R).sum())}/{n}" if known.size else "undefined (constant profiles)")
    if known.size < n:
        correlation_text += f" ({n - known.size} undefined: a constant profile)"
    log("\n=== Summary")
    log(f"warm-up (imports, JIT, JASPAR; excluded from both): {warmup_seconds:.1f} s")
    log(f"defaults {defaults.wall:.1f} s (β pilot {pilot['pilot']['seconds']:.0f} s of it) vs paper protocol {paper.wall:.1f} s "
        f"({paper.sampler['chains']} chains x {paper.sampler['steps']:,} steps, {paper.sampler['engine']}): "
        f"paper / defaults = {paper.wall / defaults.wall:.2f}x; "
        f"motif calls agree (±{AGREEMENT_BP} bp) on {sum(row.calls_agree for row in rows)}/{n}; "
        f"on the planted site: defaults {sum(row.on_site(row.defaults_call) for row in rows)}/{n}, "
        f"paper {sum(row.on_site(row.paper_call) for row in rows)}/{n}; per-base KL r: {correlation_text}; "
        f"defaults converged {sum(row.defaults_converged for row in rows)}/{n}, steps per chain "
        f"{steps_description(defaults.summary['steps'].to_numpy())}.")
    for run in (defaults, paper):
        for warning in run.result.record.get("warnings", []):
            log(f"  {run.label} warning: {warning}")


def machine_description() -> list[str]:
    """CPU, OS, versions, the repository's revision and the load average, one fact per line.

    Versions come from the installed packages' metadata: importing TensorFlow here, outside
    the runs (which hide its start-up messages), would print them.
    """
    from importlib.metadata import version

    model_name = "unknown"
    with contextlib.suppress(OSError), open("/proc/cpuinfo") as cpuinfo:
        model_name = next((line.split(":", 1)[1].strip() for line in cpuinfo if line.startswith("model name")),
                          model_name)
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    revision = subprocess.run(["git", "-C", str(REPO), "describe", "--always", "--dirty"], capture_output=True,
                              text=True, check=False).stdout.strip() or "unknown"
    return [f"CPU: {model_name}; {os.cpu_count()} logical CPUs ({usable} usable)",
            f"OS: {platform.platform()}; Python {platform.python_version()}",
            "versions: " + ", ".join(f"{package} {version(package)}" for package in VERSIONS),
            f"kipoi_maxent at {revision}",
            f"load average before the benchmark: {load_average()}"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--peaks", type=int, default=20,
                        help="planted CTCF peaks (default 20; rounded up to whole chromosomes of 4 sites)")
    parser.add_argument("--seed", type=int, default=None,
                        help="seed of the synthetic genome (default: make_ctcf_genome.py's)")
    parser.add_argument("--workdir", type=Path, default=None,
                        help="new or empty directory for the genome, the runs' outputs and the user cache; kept "
                             "(default: a temporary directory, removed at the end)")
    parser.add_argument("--paper-chains", type=int, default=PAPER_CHAINS, help=f"default {PAPER_CHAINS}")
    parser.add_argument("--paper-steps", type=int, default=None,
                        help=f"default {PAPER_STEPS:,} ({QUICK_PAPER_STEPS:,} with --quick)")
    parser.add_argument("--paper-engine", default="naive", help="default naive (the paper's algorithm)")
    parser.add_argument("--max-steps", type=int, default=None,
                        help="cap the defaults run's steps per chain (smoke runs only: the defaults run is then "
                             "not the package's defaults)")
    parser.add_argument("--quick", action="store_true",
                        help=f"paper protocol cut to {QUICK_PAPER_STEPS:,} steps (a smoke run)")
    args = parser.parse_args()
    if args.paper_steps is None:
        args.paper_steps = QUICK_PAPER_STEPS if args.quick else PAPER_STEPS
    if args.peaks < 1:
        parser.error("--peaks must be at least 1")
    if args.workdir is not None and args.workdir.exists() and any(args.workdir.iterdir()):
        parser.error(f"--workdir {args.workdir} is not empty (a finished run there would not run again)")
    import kipoi_maxent

    paper_options = {"chains": args.paper_chains, "steps": args.paper_steps, "burnin": PAPER_BURNIN,
                     "thin": PAPER_THIN, "engine": args.paper_engine}
    defaults_options = {} if args.max_steps is None else {"max_steps": args.max_steps}
    for label, options in (("paper protocol", {"beta": 1.0, **paper_options}), ("defaults run", defaults_options)):
        try:  # checked now, not after the defaults run
            kipoi_maxent.RunOptions(**options)
        except ValueError as error:
            parser.error(f"{label}: {error}")

    started = time.perf_counter()
    log("$ python " + " ".join([os.path.relpath(sys.argv[0], REPO)] + sys.argv[1:]))
    log("=== machine")
    for line in machine_description():
        log(f"  {line}")
    with contextlib.ExitStack() as stack:
        if args.workdir is None:
            workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="bench_defaults_")))
        else:
            workdir = args.workdir.resolve()
            workdir.mkdir(parents=True, exist_ok=True)
        os.environ["XDG_CACHE_HOME"] = str(workdir / "cache")  # a fresh β cache: the pilot runs
        handler = logging.StreamHandler(sys.stdout)
        handler.setFormatter(logging.Formatter("    | %(message)s"))
        logging.getLogger("kipoi_maxent").addHandler(handler)
        logging.getLogger("kipoi_maxent").setLevel(logging.INFO)

        genome_dir = workdir / "genome"
        genome_dir.mkdir()
        maker_seed = load_genome_maker().SEED if args.seed is None else args.seed
        genome = make_genome(genome_dir, args.peaks, maker_seed)
        log(f"=== genome in {workdir}: {genome.description}")
        engines = list(dict.fromkeys(["auto", args.paper_engine]))
        log(f"=== warm-up: engines {', '.join(engines)}, one peak, {WARMUP}")
        warmup_seconds = warm_up(workdir / "warmup", genome, engines)
        defaults = timed_run("defaults" if not defaults_options else "defaults (capped)", workdir / "defaults",
                             genome, **defaults_options)
        paper = timed_run("paper protocol", workdir / "paper", genome, beta=float(defaults.sampler["beta"]),
                          **paper_options)
        report(defaults, paper, compare(defaults, paper, genome), warmup_seconds)
        log(f"\nload average after the benchmark: {load_average()}; total {time.perf_counter() - started:.0f} s"
            + (f"; outputs in {workdir}" if args.workdir is not None else ""))


if __name__ == "__main__":
    main()
