"""Output files of a run. Names and columns are a contract other tools read (the writers
that produce them are in :mod:`kipoi_maxent.outputs.writers`):

- ``summary.tsv``: one row per input, in input order (:data:`SUMMARY_COLUMNS` first);
- ``motifs.bed``: BED6 + track line, one motif call per input, sorted;
- ``importance.bedGraph``/``importance.bw``: per-base KL importance, sorted, non-overlapping;
- ``frequencies.h5``: per-input ``(L, 4)`` base frequencies and importance;
- ``run.json``: every parameter, μ and its source, versions, model, spec.

Every file is written to a temporary name and renamed into place, so a killed run never
leaves a half-written output.
"""
from __future__ import annotations

import contextlib
import json
import os
import secrets
from pathlib import Path
from typing import Callable, Iterable, Sequence

import numpy as np

SUMMARY_COLUMNS = (
    "name", "chrom", "start", "end", "beta", "mu", "n_samples", "acceptance_rate",
    "mean_distance", "sd_distance", "motif_start", "motif_end", "motif_score",
)
#: Maximum KL divergence from a uniform background, in bits: scales BED scores to 0..1000.
_MAX_KL_BITS = 2.0


@contextlib.contextmanager
def atomic_name(path: Path):
    """A temporary name beside ``path``, renamed to ``path`` only on success (for libraries
    that open files by name, like pyBigWig and h5py)."""
    path = Path(path)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    try:
        yield temporary
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
        raise


@contextlib.contextmanager
def atomic_path(path: Path, mode: str = "w"):
    """Open a temporary file beside ``path``; rename it to ``path`` only on success.

    The file gets the usual permissions (umask), unlike ``tempfile.mkstemp``'s 0600.
    """
    with atomic_name(path) as temporary, open(temporary, mode.replace("w", "x")) as stream:
        yield stream


def format_value(value) -> str:
    if isinstance(value, (float, np.floating)):
        return f"{value:.6g}"
    return str(value)


def summary_row(result, beta: float, mu: float) -> dict:
    """The ``summary.tsv`` fields of one :class:`~kipoi_maxent.api.IntervalResult`."""
    return {
        "name": result.name, "chrom": result.chrom, "start": result.start, "end": result.end,
        "beta": beta, "mu": mu, "n_samples": int(result.distances.size),
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


def write_json(record: dict, path: Path) -> None:
    with atomic_path(path) as stream:
        json.dump(record, stream, indent=2, sort_keys=True, default=str)
        stream.write("\n")
