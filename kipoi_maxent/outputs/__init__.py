"""Output files of a run. Names and columns are a contract other tools read:

- ``summary.tsv``: one row per input, in input order (:data:`SUMMARY_COLUMNS`);
- ``motifs.bed``: BED6 + track line, one motif call per input, sorted;
- ``importance.bedGraph``: per-base KL importance, sorted, non-overlapping;
- ``frequencies.npz``: per-input ``(L, 4)`` base frequencies and importance;
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
from typing import Iterable, Sequence

import numpy as np

from kipoi_maxent.sequence import ALPHABET

SUMMARY_COLUMNS = (
    "name", "chrom", "start", "end", "beta", "mu", "n_samples", "acceptance_rate",
    "mean_distance", "sd_distance", "motif_start", "motif_end", "motif_score",
)
#: Maximum KL divergence from a uniform background, in bits: scales BED scores to 0..1000.
_MAX_KL_BITS = 2.0


@contextlib.contextmanager
def atomic_path(path: Path, mode: str = "w"):
    """Open a temporary file beside ``path``; rename it to ``path`` only on success.

    The file gets the usual permissions (umask), unlike ``tempfile.mkstemp``'s 0600.
    """
    path = Path(path)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    try:
        with open(temporary, mode.replace("w", "x")) as stream:
            yield stream
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
        raise


def _format(value) -> str:
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
            stream.write("\t".join(_format(row[c]) for c in columns) + "\n")


def _sorted(rows: Iterable[dict]) -> list[dict]:
    return sorted(rows, key=lambda r: (r["chrom"], r["motif_start"], r["motif_end"], r["name"]))


def bed_name(name: str) -> str:
    """A BED name field: no whitespace (it separates fields in browsers)."""
    return "_".join(str(name).split()) or "."


def write_motifs_bed(rows: Iterable[dict], path: Path, track_name: str = "maxent_motifs") -> None:
    """BED6 of motif calls, sorted by chrom and start; score = 1000 × mean KL / 2 bits."""
    with atomic_path(path) as stream:
        stream.write(
            f'track name="{track_name}" description="kipoi_maxent motif calls (window of largest '
            f'mean KL)" useScore=1\n'
        )
        for row in _sorted(rows):
            score = int(round(min(max(row["motif_score"] / _MAX_KL_BITS, 0.0), 1.0) * 1000))
            stream.write(f"{row['chrom']}\t{row['motif_start']}\t{row['motif_end']}\t{bed_name(row['name'])}\t{score}\t.\n")


def merge_importance(tracks: Iterable[tuple[str, int, np.ndarray]]) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Per-base importance of possibly overlapping inputs, merged per chromosome.

    Where inputs overlap, a base gets the **largest** importance among them (a base important
    in any input stays visible). Unknown bases (NaN) are left out.

    Parameters
    ----------
    tracks : iterable of (chrom, start, importance (L,))

    Returns
    -------
    dict chrom -> (positions (m,) int64 sorted, values (m,) float64)
    """
    by_chrom: dict[str, list[tuple[np.ndarray, np.ndarray]]] = {}
    for chrom, start, values in tracks:
        values = np.asarray(values, dtype=np.float64)
        known = ~np.isnan(values)
        by_chrom.setdefault(chrom, []).append((start + np.flatnonzero(known), values[known]))
    merged = {}
    for chrom, parts in by_chrom.items():
        positions = np.concatenate([p for p, _ in parts])
        values = np.concatenate([v for _, v in parts])
        unique, inverse = np.unique(positions, return_inverse=True)
        best = np.full(len(unique), -np.inf)
        np.maximum.at(best, inverse, values)
        merged[chrom] = (unique, best)
    return merged


def write_importance_bedgraph(tracks: Iterable[tuple[str, int, np.ndarray]], path: Path,
                              track_name: str = "maxent_importance") -> None:
    """bedGraph of per-base KL importance (bits), one line per base, sorted, non-overlapping."""
    merged = merge_importance(tracks)
    with atomic_path(path) as stream:
        stream.write(
            f'track type=bedGraph name="{track_name}" description="kipoi_maxent per-base KL '
            f'importance (bits); overlaps: maximum" visibility=full autoScale=on\n'
        )
        for chrom in sorted(merged):
            positions, values = merged[chrom]
            stream.writelines(f"{chrom}\t{p}\t{p + 1}\t{v:.6g}\n" for p, v in zip(positions.tolist(), values.tolist()))


def write_frequencies(results: Sequence, path: Path) -> None:
    """``frequencies.npz``: ``frequencies`` (n, L, 4) and ``importance`` (n, L) float32,
    ``names``, ``chrom``, ``start``, ``end`` (n,), ``alphabet`` (the column order, ``ACGT``)."""
    with atomic_path(path, "wb") as stream:
        np.savez_compressed(
            stream,
            frequencies=np.stack([r.frequencies for r in results]).astype(np.float32),
            importance=np.stack([r.importance for r in results]).astype(np.float32),
            names=np.array([r.name for r in results]),
            chrom=np.array([r.chrom for r in results]),
            start=np.array([r.start for r in results], dtype=np.int64),
            end=np.array([r.end for r in results], dtype=np.int64),
            alphabet=np.array(ALPHABET),
        )


def write_json(record: dict, path: Path) -> None:
    with atomic_path(path) as stream:
        json.dump(record, stream, indent=2, sort_keys=True, default=str)
        stream.write("\n")
