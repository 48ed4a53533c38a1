"""Output writers: each turns a finished run (:class:`RunOutputs`) into some files. The
built-in ones are registered as plugins (:mod:`kipoi_maxent.plugin.builtin`); third-party
writers implement the ``kipoi_maxent_writers`` hook the same way.

Writers stream over the run's records (one chunk in memory at a time); only small per-input
keys (coordinates, scores) are held for sorting.
"""
from __future__ import annotations

import functools
import heapq
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Protocol

import numpy as np

from kipoi_maxent.fileio import atomic_path
from kipoi_maxent.outputs import write_summary
from kipoi_maxent.records import AnalysisConfig, IntervalRecord, RecordSource
from kipoi_maxent.sequence import ALPHABET, background_probabilities


@dataclass(frozen=True)
class OutputOptions:
    """User choices about outputs.

    Attributes
    ----------
    report_top : int
        Intervals shown in ``report.html`` (top by motif score).
    frequency_tracks : bool
        Also write per-base frequency bigWigs ``frequency_A.bw`` … ``frequency_T.bw``.
    consensus_max : int
        Motif calls (top by score) aligned into the consensus.
    """

    report_top: int = 20
    frequency_tracks: bool = False
    consensus_max: int = 1000


class RunOutputs:
    """A finished run as writers see it.

    Attributes
    ----------
    outdir : Path
    run : dict
        The run record (``run.json``): parameters, μ, model, spec.
    options : OutputOptions
    n_intervals : int
    analysis : AnalysisConfig
        What was computed per input (features, PCA and its control directions).
    genome : str, optional
        The genome FASTA the inputs lie on (for :attr:`chrom_sizes`).
    """

    def __init__(self, outdir: Path, run: dict, store: RecordSource, options: OutputOptions, n_intervals: int,
                 analysis: AnalysisConfig, genome: str | None = None):
        self.outdir = Path(outdir)
        self.run = run
        self.analysis = analysis
        self.genome = genome
        self.options = options
        self.n_intervals = n_intervals
        self._store = store
        self._keys: list | None = None

    @functools.cached_property
    def chrom_sizes(self) -> dict[str, int]:
        """Lengths of the chromosomes the inputs lie on, sorted by name (bigWig header): from
        the genome's FASTA index, else the inputs' extent."""
        sizes: dict[str, int] = {}
        for row in self.rows():
            sizes[row["chrom"]] = max(sizes.get(row["chrom"], 0), int(row["end"]))
        if self.genome:
            from kipoi_maxent.inputs import chromosome_sizes

            genome = chromosome_sizes(self.genome)
            sizes = {name: max(end, genome.get(name, 0)) for name, end in sizes.items()}
        return dict(sorted(sizes.items()))

    def records(self, samples: bool = False) -> Iterator[IntervalRecord]:
        """Every input's record, in input order; with its samples (when kept) if ``samples``."""
        return self._store.records(samples=samples)

    def rows(self) -> Iterator[dict]:
        """``summary.tsv`` rows in input order."""
        return (record.row for record in self.records())

    def columns(self) -> list[str]:
        """Summary columns (those of the first row; every row has the same)."""
        return list(next(self.rows()).keys())

    def _sort_keys(self) -> list:
        if self._keys is None:
            self._keys = sorted((r.row["chrom"], r.row["start"], r.index) for r in self.records())
        return self._keys

    def genome_order(self) -> Iterator[IntervalRecord]:
        """Records sorted by chromosome name, then start (ties: input order)."""
        return (self._store.record(index) for _, _, index in self._sort_keys())

    def top(self, count: int, column: str = "motif_score") -> list[IntervalRecord]:
        """The ``count`` records with the largest ``column`` (ties: input order)."""
        best = heapq.nlargest(count, ((r.row[column], -r.index) for r in self.records()))
        return [self._store.record(-negative) for _, negative in best]

    @property
    def background(self) -> np.ndarray:
        return background_probabilities(self.run["mu"])


class Writer(Protocol):
    """What the ``kipoi_maxent_writers`` hook returns."""

    name: str
    description: str

    def write(self, run: RunOutputs) -> list[str]:
        """Write files under ``run.outdir``; return their names."""


def motif_label(row: dict) -> str:
    """``<interval>|<best JASPAR match>`` (just the interval without a match)."""
    match = row.get("motif_match_name") or ""
    return f"{row['name']}|{match}" if match else row["name"]


class SummaryWriter:
    name = "summary"
    description = "summary.tsv: one row per input (statistics, diagnostics, features, motif call)"

    def write(self, run: RunOutputs) -> list[str]:
        write_summary(run.rows(), run.outdir / "summary.tsv", run.columns())
        return ["summary.tsv"]


class MotifWriter:
    name = "motifs"
    description = ("motifs.bed (calls, named <interval>|<JASPAR match>), motifs.meme (one PWM per call), "
                   "consensus.meme and consensus.png (calls aligned, reverse-complement aware)")

    def write(self, run: RunOutputs) -> list[str]:
        from kipoi_maxent.motifs import call_matrix, consensus, write_meme
        from kipoi_maxent.outputs import unique_fields, write_motifs_bed

        # names stay distinct after whitespace is replaced ("a b" and "a_b")
        names = [row["name"] for row in run.rows()]
        labels = dict(zip(names, unique_fields(motif_label(row) for row in run.rows())))
        write_motifs_bed(run.rows(), run.outdir / "motifs.bed", name=lambda row: labels[row["name"]])
        titles = unique_fields(names)
        with atomic_path(run.outdir / "motifs.meme") as stream:
            write_meme(stream, ((f"call_{r.index}", titles[position], call_matrix(r.frequencies, r.motif_call),
                                 r.row["n_samples"]) for position, r in enumerate(run.records())), run.background)
        written = ["motifs.bed", "motifs.meme"]
        top = run.top(run.options.consensus_max)
        aligned = consensus(np.stack([call_matrix(r.frequencies, r.motif_call) for r in top]),
                            np.array([r.row["motif_score"] for r in top])) if len(top) >= 2 else None
        if aligned is not None and len(aligned.matrix):  # empty: no column informative enough
            label = f"consensus of {aligned.n_aligned} calls"
            match = _consensus_match(aligned.matrix, run.run)
            if match:
                label += f"; best JASPAR match {match}"
            with atomic_path(run.outdir / "consensus.meme") as stream:
                write_meme(stream, [("consensus", label, aligned.matrix, aligned.n_aligned)], run.background)
            from kipoi_maxent.report import logo_plot

            with atomic_path(run.outdir / "consensus.png", "wb") as stream:
                stream.write(logo_plot(aligned.matrix, background=run.background))
            run.run.setdefault("consensus", {})["label"] = label
            written += ["consensus.meme", "consensus.png"]
        return written


def _consensus_match(matrix: np.ndarray, run: dict) -> str:
    """``"MA0139.2 CTCF (p = 1e-9, +)"`` for the consensus, or "" without annotation."""
    jaspar = run["analysis"].get("jaspar")
    if not jaspar:
        return ""
    from kipoi_maxent.motifs import annotate, load_jaspar

    match = annotate([matrix], load_jaspar(**jaspar))[0]
    if not match.id:
        return ""
    run.setdefault("consensus", {}).update(
        {"jaspar_id": match.id, "jaspar_name": match.name, "pvalue": match.pvalue, "orientation": match.orientation})
    return f"{match.id} {match.name} (p = {match.pvalue:.2g}, {match.orientation})"


class ImportanceWriter:
    name = "importance"
    description = ("importance.bedGraph and importance.bw: per-base KL importance (bits), overlaps merged by "
                   "maximum; with --frequency-tracks also frequency_<base>.bw")

    def write(self, run: RunOutputs) -> list[str]:
        from kipoi_maxent.outputs.tracks import TrackWriter, merged_blocks, track_line

        header = track_line("bedGraph", "maxent_importance", "kipoi_maxent per-base KL importance (bits); "
                            "overlaps: maximum", color="31,95,191", visibility="full", autoScale="on")
        with TrackWriter(run.chrom_sizes, run.outdir / "importance.bedGraph", run.outdir / "importance.bw",
                         header=header) as writer:
            for block in merged_blocks((r.row["chrom"], r.row["start"], r.importance) for r in run.genome_order()):
                writer.add(*block)
        written = ["importance.bedGraph", "importance.bw"]
        if run.options.frequency_tracks:
            for code, base in enumerate(ALPHABET):
                name = f"frequency_{base}.bw"
                with TrackWriter(run.chrom_sizes, bigwig=run.outdir / name) as writer:
                    for block in merged_blocks((r.row["chrom"], r.row["start"], _known(r, code))
                                               for r in run.genome_order()):
                        writer.add(*block)
                written.append(name)
        return written


def _known(record: IntervalRecord, code: int) -> np.ndarray:
    """Frequency of base ``code`` per position, NaN where the input's base is unknown."""
    return np.where(np.isnan(record.importance), np.nan, record.frequencies[:, code])


class FrequencyWriter:
    name = "frequencies"
    description = "frequencies.h5: per-input (L, 4) base frequencies and (L,) importance"

    def write(self, run: RunOutputs) -> list[str]:
        from kipoi_maxent.outputs.hdf5 import AppendingFile

        attributes = {"alphabet": ALPHABET, "importance": "KL divergence from the background, bits; NaN = unknown base"}
        with AppendingFile(run.outdir / "frequencies.h5", attributes) as h5:
            for r in run.records():
                h5.append(**_identity(r), frequencies=r.frequencies, importance=r.importance)
        return ["frequencies.h5"]


def _identity(record: IntervalRecord) -> dict:
    """The per-input identity datasets of the HDF5 outputs."""
    row = record.row
    return {"names": row["name"], "chrom": row["chrom"], "start": np.int64(row["start"]), "end": np.int64(row["end"])}


class FourierWriter:
    name = "fourier"
    description = "fourier.tsv: per input and period, normalised amplitude of the sample-mean signal and mean over samples"

    def write(self, run: RunOutputs) -> list[str]:
        from kipoi_maxent.periodicity import fourier_periods

        periods = fourier_periods(run.run["spec"]["sequence_length"])
        with atomic_path(run.outdir / "fourier.tsv") as stream:
            stream.write("name\tperiod\tmean_signal_amplitude\tsample_amplitude\n")
            for r in run.records():
                name = r.row["name"]
                stream.writelines(f"{name}\t{p:.6g}\t{a:.6g}\t{b:.6g}\n"
                                  for p, a, b in zip(periods.tolist(), *r.fourier.tolist()))
        return ["fourier.tsv"]


class PCAWriter:
    name = "pca"
    description = "pca.npz (denovo): per input the lowest-variance principal components of the ±1-encoded samples"

    def write(self, run: RunOutputs) -> list[str]:
        if not run.analysis.pca_components:
            return []
        from kipoi_maxent.denovo import save_pca

        records = list(run.records())  # pca.npz is one array per field: it needs all inputs at once
        save_pca(run.outdir / "pca.npz", [r.row["name"] for r in records], [r.pca for r in records],
                 run.analysis.pca_control)
        return ["pca.npz"]


class SamplesWriter:
    name = "samples"
    description = "samples.h5 (--save-samples): integer-coded samples per input; kipoi_maxent.load_samples() reads it"

    def write(self, run: RunOutputs) -> list[str]:
        if not run.analysis.keep_samples:
            return []
        from kipoi_maxent.outputs.hdf5 import AppendingFile, samples_attributes

        with AppendingFile(run.outdir / "samples.h5", samples_attributes(run.run)) as h5:
            for r in run.records(samples=True):
                h5.append(**_identity(r), reference=r.reference, draw_offset=np.int64(h5.size("samples")),
                          draws=np.int64(r.samples.shape[1]))
                h5.extend("samples", r.samples.transpose(1, 0, 2))  # (draws, chains, L): inputs may differ in draws
        return ["samples.h5"]


class ReportWriter:
    name = "report"
    description = "report.html: self-contained report (frequency plots and logos of the top inputs, aggregate plots)"

    def write(self, run: RunOutputs) -> list[str]:
        from kipoi_maxent.report import ReportData, ReportInterval, write_report

        shown = []
        for r in run.top(run.options.report_top):
            row = r.row
            shown.append(ReportInterval(
                row["name"], row["chrom"], row["start"], row["end"], r.frequencies, r.importance,
                row["motif_start"] - row["start"], row["motif_end"] - row["start"], row["motif_score"],
                row["acceptance_rate"], annotation=_annotation(row),
                extra={k: row[k] for k in ("converged", "rhat_distance", "ess_distance") if k in row},
            ))
        percentiles, fourier_sum, spectra = {}, None, []
        features = run.run.get("analysis", {}).get("features", [])
        for r in run.records():
            for name in features:
                percentiles.setdefault(name, []).append(r.row.get(f"{name}_percentile", np.nan))
            fourier_sum = r.fourier.astype(np.float64) if fourier_sum is None else fourier_sum + r.fourier
            if r.pca is not None and len(spectra) < 5000:
                spectra.append(r.pca.spectrum)
        from kipoi_maxent.periodicity import fourier_periods

        periods = fourier_periods(run.run["spec"]["sequence_length"])
        consensus = None
        if (run.outdir / "consensus.meme").is_file():
            from kipoi_maxent.motifs import read_meme

            consensus = (next(iter(read_meme(run.outdir / "consensus.meme").values())),
                         run.run.get("consensus", {}).get("label", "consensus"))
        data = ReportData(
            title=f"kipoi_maxent: {run.run['model']}",
            parameters=_report_parameters(run.run),
            intervals=shown,
            n_intervals=run.n_intervals,
            feature_percentiles={k: np.array(v, dtype=float) for k, v in percentiles.items()},
            fourier=(periods, *(fourier_sum / run.n_intervals)) if fourier_sum is not None else None,
            pca_spectra=np.stack(spectra) if spectra else None,
            consensus=consensus,
            warnings=list(run.run.get("warnings", [])),
        )
        write_report(run.outdir / "report.html", data)
        return ["report.html"]


def _annotation(row: dict) -> str:
    if not row.get("motif_match_id"):
        return ""
    return (f"{row['motif_match_id']} {row['motif_match_name']} (p = {row['motif_match_pvalue']:.2g}, "
            f"{row['motif_match_orientation']})")


def _report_parameters(run: dict) -> dict:
    sampler = run["sampler"]
    return {
        "model": run["model"], "penultimate layer": run.get("penultimate_layer"),
        "inputs": run["inputs"].get("intervals") or run["inputs"].get("sequences") or "dataloader",
        "genome FASTA": run["inputs"].get("fasta") or "-",
        "beta": sampler["beta"], "mu": f"{run['mu']:.4f} ({run['mu_source']})",
        "chains x steps": (f"{sampler['chains']} x auto (until converged, at most {sampler['max_steps']})"
                           if sampler["steps"] == "auto" else
                           f"{sampler['chains']} x {sampler['steps']} (thin {sampler['thin']}, burn-in {sampler['burnin']})"),
        "beta source": sampler.get("beta_source", "given"),
        "sampler / engine": f"{sampler['sampler']} / {sampler.get('engine', '')}", "seed": sampler["seed"],
        "kipoi_maxent": run["kipoi_maxent_version"],
    }


class CalibrationWriter:
    name = "calibration"
    description = "calibration.tsv (--beta auto): the β pilot's table, per β: median z, acceptance, largest KL"

    def write(self, run: RunOutputs) -> list[str]:
        choice = run.run.get("beta_choice") or {}
        if not choice.get("table"):
            return []
        from kipoi_maxent.calibration import BetaSummary, write_calibration_tables

        write_calibration_tables([BetaSummary(**row) for row in choice["table"]], run.outdir / "calibration.tsv")
        return ["calibration.tsv"]


BUILTIN_WRITERS = (SummaryWriter(), MotifWriter(), ImportanceWriter(), FrequencyWriter(), FourierWriter(),
                   PCAWriter(), SamplesWriter(), CalibrationWriter(), ReportWriter())
