"""Output files of a run. Names and columns are a contract other tools read (the writers
that produce them are in :mod:`kipoi_maxent.outputs.writers`):

- ``summary.tsv``: one row per input, in input order (:data:`SUMMARY_COLUMNS` first);
- ``motifs.bed``: BED6 + track line, one motif call per input, sorted;
- ``importance.bedGraph``/``importance.bw``: per-base KL importance, sorted, non-overlapping;
- ``frequencies.h5``: per-input ``(L, 4)`` base frequencies and importance;
- ``run.json``: every parameter, μ and its source, versions, model, spec.

Every file is written through :mod:`kipoi_maxent.fileio` (temporary name, flushed, renamed), so
a killed run never leaves a half-written output.
"""
from __future__ import annotations

from pathlib import Path
from typing import Callable, Iterable, Sequence

import numpy as np

from kipoi_maxent.fileio import atomic_path, write_json

__all__ = ["SUMMARY_COLUMNS", "atomic_path", "bed_name", "format_value", "one_field", "summary_row",
           "unique_fields", "write_json", "write_motifs_bed", "write_summary"]

SUMMARY_COLUMNS = (
    "name", "chrom", "start", "end", "beta", "beta_source", "mu", "steps", "n_samples", "acceptance_rate",
    "mean_distance", "sd_distance", "motif_start", "motif_end", "motif_score",
)
#: Maximum KL divergence from a uniform background, in bits: scales BED scores to 0..1000.
_MAX_KL_BITS = 2.0


def format_value(value) -> str:
    if isinstance(value, (float, np.floating)):
        return f"{value:.6g}"
    return str(value)


def summary_row(result, beta: float, mu: float, beta_source: str = "given") -> dict:
    """The ``summary.tsv`` fields of one :class:`~kipoi_maxent.api.IntervalResult`
    (``beta_source``: ``given``, ``auto`` or ``cached``)."""
    return {
        "name": result.name, "chrom": result.chrom, "start": result.start, "end": result.end,
        "beta": beta, "beta_source": beta_source, "mu": mu, "steps": int(result.steps),
        "n_samples": int(result.distances.size),
        "acceptance_rate": result.acceptance_rate, "mean_distance": result.mean_distance,
        "sd_distance": result.sd_distance, "motif_start": result.start + result.motif.start,
        "motif_end": result.start + result.motif.end, "motif_score": result.motif.score,
    }


def write_summary(rows: Iterable[dict], path: Path, columns: Sequence[str] = SUMMARY_COLUMNS) -> None:
    """Tab-separated, header line, one row per input in the given order."""
    with atomic_path(path) as stream:
        stream.write("\t".join(columns) + "\n")
        for row in rows:
            stream.write("\t".join(format_value(row[c]) for c in columns) + "\n")


def one_field(text) -> str:
    """``text`` as one field of a whitespace-separated format (BED, MEME): whitespace runs
    become ``_``."""
    return "_".join(str(text).split())


def unique_fields(texts: Iterable[str]) -> list[str]:
    """:func:`one_field` of each text (empty: ``.``), made unique in order: a field already
    taken (``a b`` and ``a_b`` both give ``a_b``) gets ``_2``, ``_3``, … appended."""
    taken: set[str] = set()
    fields = []
    for text in texts:
        field = one_field(text) or "."
        candidate, suffix = field, 2
        while candidate in taken:
            candidate, suffix = f"{field}_{suffix}", suffix + 1
        taken.add(candidate)
        fields.append(candidate)
    return fields


def bed_name(name: str) -> str:
    """A BED name field: no whitespace (it separates fields in browsers)."""
    return one_field(name) or "."


def write_motifs_bed(rows: Iterable[dict], path: Path, track_name: str = "maxent_motifs",
                     name: Callable[[dict], str] | None = None) -> None:
    """BED6 of motif calls, sorted by chrom and start; score = 1000 × mean KL / 2 bits.

    ``name(row)`` gives the BED name (default: the input's name; whitespace is replaced). Only
    the BED fields of each row are held for sorting.
    """
    name = name or (lambda row: row["name"])
    lines = sorted(
        (row["chrom"], row["motif_start"], row["motif_end"], bed_name(name(row)),
         int(round(min(max(row["motif_score"] / _MAX_KL_BITS, 0.0), 1.0) * 1000)))
        for row in rows
    )
    with atomic_path(path) as stream:
        stream.write(
            f'track name="{track_name}" description="kipoi_maxent motif calls (window of largest '
            f'mean KL)" useScore=1 itemRgb=Off color=191,63,31\n'
        )
        stream.writelines(f"{chrom}\t{start}\t{end}\t{label}\t{score}\t.\n" for chrom, start, end, label, score in lines)
