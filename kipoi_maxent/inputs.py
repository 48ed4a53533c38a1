"""Where the interpreted sequences come from: BED + FASTA, a FASTA of plain sequences, or the
model's own Kipoi dataloader. Thin edges over pyfaidx and Kipoi; BED lines are parsed here
(pybedtools' parser cannot say which line is wrong, nor what is wrong with it).

Coordinates are 0-based half-open throughout; sequences are read from the + strand.

Bad input is reported before any work where the caller wants it: :func:`read_bed` and
:func:`read_sequences` check a whole file and return its :class:`Interval` list, and
:func:`interval_inputs` then reads the sequences lazily. :func:`bed_inputs` and
:func:`fasta_inputs` do both in one lazy pass. Every problem is a one-line ``ValueError``
naming the file, the line or record, and the fix.

Policies
--------
- Intervals of another length are resized around their centre to the model's length (one
  log line says how many).
- Names must be unique (they key ``summary.tsv``, ``frequencies.h5``, ``samples.h5``): a
  repeated name is an error.
- Unknown bases (``N``, IUPAC codes) stay fixed in every sample and are left out of every
  statistic; an input of only unknown bases has nothing to sample and is skipped with a warning.
- Soft-masked (lowercase) bases are read as their uppercase base.
- A FASTA without a valid up-to-date index is indexed beside it, or, when its directory is not
  writable, in the user cache directory (as the genome composition cache); an index is checked
  before it is trusted and written atomically (:mod:`kipoi_maxent.fasta_index`).
"""
from __future__ import annotations

import gzip
import logging
from pathlib import Path
from typing import Iterable, Iterator, NamedTuple

import numpy as np

from kipoi_maxent.fasta_index import fasta_index_paths
from kipoi_maxent.sequence import encode

logger = logging.getLogger(__name__)

#: Lines of a BED file that hold no interval (as pybedtools and the UCSC browser skip them).
BED_HEADER_PREFIXES = ("#", "track", "browser")
#: Chromosome names listed when a BED names one the FASTA lacks.
_NAMES_SHOWN = 5


class SequenceInput(NamedTuple):
    """One interpreted input.

    ``chrom``/``start``/``end`` are genome coordinates (0-based, half-open) of the sequence
    after resizing; for plain sequences ``chrom`` is the sequence id and ``start`` is 0.
    """

    name: str
    chrom: str
    start: int
    end: int
    codes: np.ndarray  # (L,) int8


class Interval(NamedTuple):
    """Where one input is read: ``chrom[start:end]`` of a FASTA (0-based, half-open, after
    resizing); for a FASTA of plain sequences ``chrom`` is the record and ``start`` 0."""

    name: str
    chrom: str
    start: int
    end: int


# ---------------------------------------------------------------------------------------------
# FASTA


def _is_gzip(path: Path) -> bool:
    with open(path, "rb") as stream:
        return stream.read(2) == b"\x1f\x8b"


def _open_fasta(path):
    """``pyfaidx.Fasta`` of ``path`` (raw uppercase strings), through a checked index, built if
    needed (see :func:`kipoi_maxent.fasta_index.fasta_index_paths`)."""
    import pyfaidx

    path = Path(path)
    if path.is_dir():
        raise ValueError(f"{path} is a directory, not a FASTA file; pass the path of the .fa/.fa.gz file")
    if not path.is_file():
        raise ValueError(f"FASTA file {path} does not exist; give the path of a genome FASTA")
    try:
        index, compressed_index = fasta_index_paths(path)
        # pyfaidx must not rebuild the checked index itself (it would write it in place)
        return pyfaidx.Fasta(str(path), indexname=index, gzi_indexname=compressed_index, as_raw=True,
                             sequence_always_upper=True, build_index=False, rebuild=False)
    except pyfaidx.UnsupportedCompressionFormat as error:
        raise ValueError(f"cannot read FASTA {path}: {error}") from None
    except pyfaidx.FastaIndexingError as error:
        raise ValueError(
            f"cannot read FASTA {path}: {error} It must be a FASTA file (plain or bgzip) whose records "
            "each have lines of one width: re-wrap it, e.g. `seqkit seq -w 60`") from None
    except ValueError as error:  # pyfaidx: 'Duplicate key "name"'
        if "Duplicate key" not in str(error):
            raise
        raise ValueError(f"cannot read FASTA {path}: {error}: two records have this name; "
                         "record names must be unique, rename one") from None
    except OSError as error:
        raise ValueError(f"cannot read FASTA {path}: {error.strerror or error}") from None


def chromosome_sizes(fasta_path) -> dict[str, int]:
    """Length of every record of a FASTA (from its index), e.g. for a bigWig header."""
    fasta = _open_fasta(fasta_path)
    try:
        return {name: len(fasta[name]) for name in fasta.keys()}
    finally:
        fasta.close()


def _chromosome_hint(chrom: str, fasta) -> str:
    """The FASTA's first few sequence names, and the likely fix for a BED chromosome it lacks."""
    names = list(fasta.keys())
    shown = ", ".join(names[:_NAMES_SHOWN]) + (f", ... ({len(names)} in all)" if len(names) > _NAMES_SHOWN else "")
    alternative = chrom[3:] if chrom.startswith("chr") else f"chr{chrom}"
    if alternative in fasta:
        return f"it has {shown}; the FASTA calls it {alternative!r}: rename the BED's chromosomes to match"
    return f"it has {shown}; check that BED and FASTA use the same genome and chromosome names"


# ---------------------------------------------------------------------------------------------
# BED


def _open_text(path: Path):
    """A plain or gzip-compressed text file (undecodable bytes replaced, so a binary file fails
    as a malformed line rather than as a decoding error)."""
    try:
        opener = gzip.open if _is_gzip(path) else open
        return opener(path, "rt", encoding="utf-8", errors="replace")
    except OSError as error:
        raise ValueError(f"cannot read {path}: {error.strerror or error}") from None


def _lines(stream, path: Path) -> Iterator[str]:
    """The lines of ``stream``; a corrupt or truncated gzip file is a ``ValueError``."""
    try:
        yield from stream
    except (OSError, EOFError) as error:
        raise ValueError(f"cannot read {path}: {error}; check that it is a complete plain or gzip text file") from None


def _parse_bed_line(line: str, where: str) -> tuple[str, int, int, str | None]:
    """``(chrom, start, end, name or None)`` of one BED line, or a ``ValueError`` saying what is wrong."""
    fields = line.rstrip("\r\n").split("\t")
    need = "BED lines need tab-separated chrom, start, end (0-based integers)"
    if len(fields) < 3:
        raise ValueError(f"{where}: malformed BED line: {len(fields)} tab-separated field(s) in "
                         f"{line.strip()[:60]!r}; {need}")
    chrom, coordinates = fields[0], {}
    for column, text in (("start", fields[1]), ("end", fields[2])):
        try:
            coordinates[column] = int(text)
        except ValueError:
            raise ValueError(f"{where}: malformed BED line: {column} {text!r} is not an integer; {need}") from None
    start, end = coordinates["start"], coordinates["end"]
    if not chrom:
        raise ValueError(f"{where}: malformed BED line: empty chromosome name; {need}")
    if start < 0:
        raise ValueError(f"{where}: malformed BED line: start {start} is negative; {need}")
    if end < start:
        raise ValueError(f"{where}: malformed BED line: end {end} is before start {start}; swap them")
    name = fields[3] if len(fields) > 3 and fields[3] not in ("", ".") else None
    return chrom, start, end, name


def _bed_intervals(bed_path, fasta, fasta_path, length: int) -> Iterator[Interval]:
    """Check and resize the intervals of a BED file one line at a time (see :func:`read_bed`)."""
    bed_path = Path(bed_path)
    if not bed_path.is_file():
        raise ValueError(f"BED file {bed_path} does not exist" + (" (it is a directory)" if bed_path.is_dir() else ""))
    first_line_of: dict[str, int] = {}
    resized = 0
    with _open_text(bed_path) as stream:
        for number, line in enumerate(_lines(stream, bed_path), start=1):
            if not line.strip() or line.startswith(BED_HEADER_PREFIXES):
                continue
            where = f"{bed_path}, line {number}"
            chrom, start, end, name = _parse_bed_line(line, where)
            if name is None:
                name = f"{chrom}:{start}-{end}"
                if name in first_line_of:
                    raise ValueError(f"{where}: interval {name} repeats line {first_line_of[name]}; "
                                     "remove the duplicate line")
            elif name in first_line_of:
                raise ValueError(
                    f"{where}: interval name {name!r} is already used on line {first_line_of[name]}; names key "
                    "summary.tsv, frequencies.h5 and samples.h5, so they must be unique: rename one, or drop the "
                    "name column (e.g. cut -f1-3) to name intervals by their coordinates")
            first_line_of[name] = number
            if chrom not in fasta:
                raise ValueError(f"{where}: chromosome {chrom!r} (interval {name!r}) is not in FASTA {fasta_path}: "
                                 + _chromosome_hint(chrom, fasta))
            if end - start != length:  # around the centre, as kipoiseq's resize_interval
                resized += 1
                start = (start + end) // 2 - length // 2
                end = start + length
            size = len(fasta[chrom])
            if start < 0 or end > size:
                raise ValueError(
                    f"{where}: interval {name!r}, {chrom}:{start}-{end} at the model's length {length} bp, runs off "
                    f"{chrom} (length {size}); drop it, or move its centre at least {length - length // 2} bp from "
                    "the chromosome's ends")
            yield Interval(name, chrom, start, end)
    if resized:
        logger.info("resized %d interval(s) around their centre to the model length %d bp", resized, length)


def read_bed(bed_path, fasta_path, length: int) -> list[Interval]:
    """Check every line of a BED file against a genome FASTA, before any work.

    Parameters
    ----------
    bed_path : str or Path
        BED file (plain or gzip), tab-separated ``chrom, start, end[, name, ...]``, 0-based;
        blank, ``#``, ``track`` and ``browser`` lines are skipped.
    fasta_path : str or Path
        Genome FASTA (plain or bgzip) the intervals refer to.
    length : int
        The model's input length; intervals of another length are resized around their centre.

    Returns
    -------
    list of Interval
        In file order; names from the name column, else ``chrom:start-end`` (the original
        interval).

    Raises
    ------
    ValueError
        One line naming the file, the line and the fix, for: a missing or unreadable file, a
        malformed line (too few fields, a non-integer or negative start, end before start), a
        chromosome not in the FASTA, an interval off its chromosome after resizing, a repeated
        name, or a file without intervals.
    """
    with _open_fasta(fasta_path) as fasta:
        intervals = list(_bed_intervals(bed_path, fasta, fasta_path, length))
    if not intervals:
        raise ValueError(f"BED file {bed_path} holds no intervals (only blank, comment, track or browser "
                         "lines); give at least one tab-separated chrom, start, end line")
    return intervals


def read_sequences(fasta_path, length: int) -> list[Interval]:
    """Check a FASTA of plain sequences (one input per record, no coordinates), before any work.

    Parameters
    ----------
    fasta_path : str or Path
        FASTA file (plain or bgzip); record names must be unique.
    length : int
        The model's input length; every record must have it.

    Returns
    -------
    list of Interval
        ``(record, record, 0, length)`` per record, in file order.

    Raises
    ------
    ValueError
        A missing or unreadable file, a file without records, two records of one name, or a
        record of another length.
    """
    with _open_fasta(fasta_path) as fasta:
        return list(_sequence_intervals(fasta, fasta_path, length))


def _sequence_intervals(fasta, fasta_path, length: int) -> Iterator[Interval]:
    for record in fasta.keys():
        size = len(fasta[record])  # from the index: nothing is read
        if size != length:
            raise ValueError(
                f"{fasta_path}: sequence {record!r} has {size} bp, the model takes {length}; trim or pad it, "
                "or give intervals with --intervals and --fasta (they are resized)")
        yield Interval(record, record, 0, length)


def interval_inputs(intervals: Iterable[Interval], fasta_path) -> Iterator[SequenceInput]:
    """The sequences of checked intervals (:func:`read_bed`, :func:`read_sequences`), read lazily.

    Inputs of only unknown bases are skipped with a warning (nothing to sample).
    """
    with _open_fasta(fasta_path) as fasta:
        yield from _sampleable(_sequences(intervals, fasta))


def bed_inputs(bed_path, fasta_path, length: int) -> Iterator[SequenceInput]:
    """:func:`read_bed` and :func:`interval_inputs` in one lazy pass: each line is checked as it
    is reached (bounded memory, but an error may come after earlier inputs were yielded)."""
    with _open_fasta(fasta_path) as fasta:
        yield from _sampleable(_sequences(_bed_intervals(bed_path, fasta, fasta_path, length), fasta))


def fasta_inputs(fasta_path, length: int) -> Iterator[SequenceInput]:
    """Plain sequences of a FASTA file (no coordinates), checked as in :func:`read_sequences`
    and read lazily; each must be ``length`` bp."""
    with _open_fasta(fasta_path) as fasta:
        yield from _sampleable(_sequences(_sequence_intervals(fasta, fasta_path, length), fasta))


def _sequences(intervals: Iterable[Interval], fasta) -> Iterator[SequenceInput]:
    for i in intervals:
        yield SequenceInput(i.name, i.chrom, i.start, i.end, encode([fasta[i.chrom][i.start:i.end]])[0])


def _sampleable(inputs: Iterable[SequenceInput]) -> Iterator[SequenceInput]:
    """``inputs`` without those of only unknown bases, each skipped with a warning: every
    position of such an input is fixed, so there is nothing to sample or score."""
    for item in inputs:
        if (item.codes >= 0).any():
            yield item
        else:
            logger.warning("skipping input %r (%s:%d-%d): it has only unknown bases (N), nothing to sample",
                           item.name, item.chrom, item.start, item.end)


def dataloader_inputs(dataloader_factory, dataloader_args: dict, encoder, batch_size: int = 256) -> Iterator[SequenceInput]:
    """Inputs from a Kipoi dataloader (e.g. ``model.default_dataloader``), decoded back to base
    codes with the model's input ``encoder``. ``metadata.ranges`` give coordinates when present.
    Inputs of only unknown bases are skipped with a warning; a repeated interval is an error.
    """
    try:
        dataloader = dataloader_factory(**dataloader_args)
    except TypeError as error:
        raise ValueError(f"bad --dataloader_args {dataloader_args}: {error}") from None
    yield from _sampleable(_unique_names(_dataloader_records(dataloader, encoder, batch_size)))


def _dataloader_records(dataloader, encoder, batch_size: int) -> Iterator[SequenceInput]:
    index = 0
    for batch in dataloader.batch_iter(batch_size=batch_size):
        inputs = batch["inputs"]
        if isinstance(inputs, dict):
            if len(inputs) != 1:
                raise ValueError(f"the dataloader yields {len(inputs)} inputs; kipoi_maxent needs one DNA input")
            inputs = next(iter(inputs.values()))
        elif isinstance(inputs, (list, tuple)):
            inputs = inputs[0]
        codes = encoder.decode(np.asarray(inputs))
        ranges = (batch.get("metadata") or {}).get("ranges") or {}
        for row in range(len(codes)):
            if ranges:
                chrom, start, end = str(ranges["chr"][row]), int(ranges["start"][row]), int(ranges["end"][row])
                name = f"{chrom}:{start}-{end}"
            else:
                chrom, start, end, name = f"input_{index}", 0, codes.shape[1], f"input_{index}"
            yield SequenceInput(name, chrom, start, end, codes[row])
            index += 1


def _unique_names(inputs: Iterable[SequenceInput]) -> Iterator[SequenceInput]:
    """``inputs``, raising at the first repeated name (names key every output)."""
    seen = set()
    for item in inputs:
        if item.name in seen:
            raise ValueError(f"the dataloader yields interval {item.name} twice; names key summary.tsv, "
                             "frequencies.h5 and samples.h5: remove the duplicate from its intervals file")
        seen.add(item.name)
        yield item
