"""Where the interpreted sequences come from: BED + FASTA, a FASTA of plain sequences, or the
model's own Kipoi dataloader. Thin edges over pybedtools, kipoiseq and pyfaidx.

Coordinates are 0-based half-open throughout; sequences are read from the + strand.
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Iterator, NamedTuple

import numpy as np

from kipoi_maxent.sequence import encode

logger = logging.getLogger(__name__)


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


def _open_fasta(path):
    import pyfaidx

    path = Path(path)
    if not path.is_file():
        raise ValueError(f"FASTA file {path} does not exist; give the path of a genome FASTA")
    try:
        return pyfaidx.Fasta(str(path), as_raw=True, sequence_always_upper=True, rebuild=False)
    except (OSError, pyfaidx.FastaIndexingError) as error:
        raise ValueError(f"cannot read FASTA {path}: {error}") from None


def bed_inputs(bed_path, fasta_path, length: int) -> Iterator[SequenceInput]:
    """Intervals of a BED file, resized around their centre to ``length``, from a genome FASTA.

    Names come from the BED name column, else ``chrom:start-end`` (the original interval).
    """
    import pybedtools

    bed_path = Path(bed_path)
    if not bed_path.is_file():
        raise ValueError(f"BED file {bed_path} does not exist")
    fasta = _open_fasta(fasta_path)
    resized = 0
    try:
        for interval in pybedtools.BedTool(str(bed_path)):
            name = interval.name if len(interval.fields) > 3 and interval.name not in ("", ".") else (
                f"{interval.chrom}:{interval.start}-{interval.end}")
            chrom, start, end = interval.chrom, interval.start, interval.end
            if end - start != length:  # around the centre, as kipoiseq's resize_interval
                resized += 1          # (in plain ints: pybedtools' unsigned start would wrap)
                start = (start + end) // 2 - length // 2
                end = start + length
            if chrom not in fasta:
                raise ValueError(
                    f"{bed_path}: interval {name!r} is on chromosome {chrom!r}, which is not in "
                    f"{fasta_path}; check that BED and FASTA use the same genome and naming"
                )
            if start < 0 or end > len(fasta[chrom]):
                raise ValueError(
                    f"{bed_path}: interval {name!r} resized to {chrom}:{start}-{end} runs off "
                    f"{chrom} (length {len(fasta[chrom])}); drop or move it"
                )
            yield SequenceInput(name, chrom, start, end, encode([fasta[chrom][start:end]])[0])
    except (pybedtools.MalformedBedLineError, IndexError) as error:
        raise ValueError(f"{bed_path}: malformed BED line (need tab-separated chrom, start, end): {error}") from None
    finally:
        fasta.close()
    if resized:
        logger.info("resized %d interval(s) around their centre to the model length %d bp", resized, length)


def fasta_inputs(fasta_path, length: int) -> Iterator[SequenceInput]:
    """Plain sequences of a FASTA file (no coordinates): each must be ``length`` bp."""
    fasta = _open_fasta(fasta_path)
    try:
        for record in fasta.keys():
            sequence = fasta[record][:]
            if len(sequence) != length:
                raise ValueError(
                    f"{fasta_path}: sequence {record!r} has {len(sequence)} bp, the model takes "
                    f"{length}; trim or pad it, or give intervals with --intervals and --fasta"
                )
            yield SequenceInput(record, record, 0, length, encode([sequence])[0])
    finally:
        fasta.close()


def dataloader_inputs(dataloader_factory, dataloader_args: dict, encoder, batch_size: int = 256) -> Iterator[SequenceInput]:
    """Inputs from a Kipoi dataloader (e.g. ``model.default_dataloader``), decoded back to base
    codes with the model's input ``encoder``. ``metadata.ranges`` give coordinates when present.
    """
    try:
        dataloader = dataloader_factory(**dataloader_args)
    except TypeError as error:
        raise ValueError(f"bad --dataloader_args {dataloader_args}: {error}") from None
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
