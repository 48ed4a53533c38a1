"""Per-base genome-browser tracks (bedGraph, bigWig), streamed.

Inputs may overlap (tiled peaks, duplicates): a base covered by several inputs gets the
**largest** value among them, so a base important in any input stays visible. Unknown bases
(NaN) are left out. Memory is bounded by the longest run of a single input, not by the
number of inputs or the chromosome length.
"""
from __future__ import annotations

from pathlib import Path
from typing import Iterable, Iterator

import numpy as np

from kipoi_maxent.fileio import atomic_name, atomic_path


def merged_blocks(tracks: Iterable[tuple[str, int, np.ndarray]]) -> Iterator[tuple[str, int, np.ndarray]]:
    """Merge per-input tracks into non-overlapping blocks (maximum where inputs overlap).

    Parameters
    ----------
    tracks : iterable of (chrom, start, values (L,))
        Sorted by chromosome (all of a chromosome's inputs together) and start.

    Yields
    ------
    (chrom, start, values (m,) float64)
        Consecutive, non-overlapping, sorted blocks; NaN where no input has a known base.
    """
    chrom, start, buffer = None, 0, np.zeros(0)
    for next_chrom, next_start, values in tracks:
        values = np.asarray(values, dtype=np.float64)
        if next_chrom != chrom or next_start >= start + len(buffer):
            if len(buffer):
                yield chrom, start, buffer
            chrom, start, buffer = next_chrom, next_start, values.copy()
            continue
        if next_start < start:
            raise ValueError(f"tracks must be sorted by start: {next_chrom}:{next_start} after {chrom}:{start}")
        # positions before next_start are final: emit them, keep the overlapping tail
        if next_start > start:
            yield chrom, start, buffer[: next_start - start]
            buffer, start = buffer[next_start - start:], next_start
        end = max(len(buffer), len(values))
        merged = np.full(end, np.nan)
        merged[: len(buffer)] = buffer
        merged[: len(values)] = np.fmax(merged[: len(values)], values)
        buffer = merged
    if len(buffer):
        yield chrom, start, buffer


def _known_runs(values: np.ndarray) -> Iterator[tuple[int, int]]:
    """``[a, b)`` runs of non-NaN values."""
    known = np.concatenate([[False], ~np.isnan(values), [False]])
    edges = np.flatnonzero(np.diff(known.astype(np.int8)))
    return zip(edges[::2].tolist(), edges[1::2].tolist())


def track_line(kind: str, name: str, description: str, color: str = "0,0,0", **extra) -> str:
    """A UCSC ``track`` line; ``name``/``description`` are quoted and stripped of quotes."""
    def clean(text):
        return " ".join(str(text).replace('"', "'").split())

    fields = [f"track type={kind}" if kind else "track", f'name="{clean(name)}"',
              f'description="{clean(description)}"', f"color={color}"]
    fields += [f"{key}={value}" for key, value in extra.items()]
    return " ".join(fields) + "\n"


class TrackWriter:
    """Writes the same merged track as bedGraph and/or bigWig in one pass.

    Parameters
    ----------
    chrom_sizes : dict of str -> int
        Every chromosome that may appear, with its length (bigWig header), in the order the
        blocks arrive.
    bedgraph, bigwig : Path, optional
    header : str
        The bedGraph ``track`` line.
    """

    def __init__(self, chrom_sizes: dict[str, int], bedgraph: Path | None = None, bigwig: Path | None = None,
                 header: str = ""):
        import contextlib

        self._stack = contextlib.ExitStack()
        self._bedgraph = self._bigwig = None
        if bedgraph is not None:
            self._bedgraph = self._stack.enter_context(atomic_path(bedgraph))
            self._bedgraph.write(header)
        if bigwig is not None:
            import pyBigWig

            self._bigwig_path = self._stack.enter_context(atomic_name(bigwig))
            self._bigwig = pyBigWig.open(str(self._bigwig_path), "w")
            if self._bigwig is None:
                raise ValueError(f"cannot write bigWig {bigwig}")
            self._bigwig.addHeader([(c, int(s)) for c, s in chrom_sizes.items()], maxZooms=10)
        self._sizes = chrom_sizes

    def add(self, chrom: str, start: int, values: np.ndarray) -> None:
        """One merged block (NaN = no value)."""
        if chrom not in self._sizes:
            raise ValueError(f"chromosome {chrom!r} is not in the track's chromosome sizes")
        for a, b in _known_runs(values):
            run = values[a:b]
            if self._bedgraph is not None:
                positions = range(start + a, start + b)
                self._bedgraph.writelines(f"{chrom}\t{p}\t{p + 1}\t{v:.6g}\n" for p, v in zip(positions, run.tolist()))
            if self._bigwig is not None:
                self._bigwig.addEntries(chrom, start + a, values=run.astype(np.float64).tolist(), span=1, step=1)

    def __enter__(self):
        return self

    def __exit__(self, kind, error, traceback):
        if self._bigwig is not None:
            self._bigwig.close()
        self._stack.__exit__(kind, error, traceback)
        return False
