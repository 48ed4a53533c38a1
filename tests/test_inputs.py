"""kipoi_maxent.inputs: BED + FASTA and plain FASTA inputs."""
import numpy as np
import pytest
from toy_models import write_fasta

from kipoi_maxent.inputs import bed_inputs, fasta_inputs
from kipoi_maxent.sequence import decode, encode

GENOME = {
    "chr1": "ACGTTGCAacgtNNGGCCATATcgcgTTAAGGCCAACGTAGCTAGCTAGGATCC",   # 54 bp, soft-masked + N
    "chr2": "GGGGCCCCAAAATTTTgggg",                                     # 20 bp
}


@pytest.fixture
def genome(tmp_path):
    return write_fasta(tmp_path / "genome.fa", GENOME)


def write_bed(tmp_path, text):
    path = tmp_path / "regions.bed"
    path.write_text(text)
    return path


def kipoiseq_resize(start, end, length):
    """kipoiseq's resize_interval(anchor="center") in plain integers."""
    center = int((start + end) / 2)
    new_start = center - length // 2
    return new_start, new_start + length


BED = (
    "chr1\t3\t8\tpeak_a\n"        # 5 bp -> centre 5
    "chr1\t10\t14\n"              # 4 bp, BED3: name chrom:start-end
    "chr2\t4\t16\tpeak_c\t0\t+\n" # 12 bp, BED6
    "chr1\t20\t26\t.\n"           # already 6 bp; name "." -> coordinates
    "chr1\t40\t41\tpoint\n"       # 1 bp
)


@pytest.mark.parametrize("length", [6, 7])
def test_bed_inputs_resize_names_and_sequence(tmp_path, genome, length):
    records = list(bed_inputs(write_bed(tmp_path, BED), genome, length))
    originals = [line.split("\t") for line in BED.splitlines()]
    assert len(records) == len(originals)
    for record, fields in zip(records, originals):
        chrom, start, end = fields[0], int(fields[1]), int(fields[2])
        expected_name = fields[3] if len(fields) > 3 and fields[3] != "." else f"{chrom}:{start}-{end}"
        expected_start, expected_end = kipoiseq_resize(start, end, length)
        assert (record.name, record.chrom, record.start, record.end) == (expected_name, chrom, expected_start, expected_end)
        genome_slice = GENOME[chrom][expected_start:expected_end]
        assert record.codes.dtype == np.int8 and record.codes.shape == (length,)
        np.testing.assert_array_equal(record.codes, encode([genome_slice.upper()])[0])
        assert decode(record.codes[None])[0] == genome_slice.upper()
    # the soft-masked / N stretch really is in there
    assert -1 in records[1].codes


def test_bed_inputs_unknown_chromosome(tmp_path, genome):
    bed = write_bed(tmp_path, "chr1\t3\t9\tok\nchrUn_x\t3\t9\tlost\n")
    with pytest.raises(ValueError, match="'chrUn_x'.*not in"):
        list(bed_inputs(bed, genome, 6))


def test_bed_inputs_running_off_the_end(tmp_path, genome):
    bed = write_bed(tmp_path, "chr2\t16\t19\tedge\n")  # resized to 10 bp: 12..22 > 20
    with pytest.raises(ValueError, match=r"'edge'.*runs off chr2 \(length 20\)"):
        list(bed_inputs(bed, genome, 10))


def test_bed_inputs_running_off_the_start(tmp_path, genome):
    """Resizing chr1:0-2 to 10 bp gives start -4: must be an error, not a wrapped-around
    unsigned start (4294967292) with an empty sequence."""
    bed = write_bed(tmp_path, "chr1\t0\t2\tnear_start\n")
    with pytest.raises(ValueError, match="'near_start'.*runs off"):
        list(bed_inputs(bed, genome, 10))


@pytest.mark.parametrize("line", [
    "chr1\tabc\t10\n",          # start not a number
    "chr1\t10\t5\n",            # start > end
    "chr1\t10\n",               # two fields
    "chr1 3 9\n",               # space-separated, not a BED line
])
def test_bed_inputs_malformed_line(tmp_path, genome, line):
    with pytest.raises(ValueError, match="malformed BED line"):
        list(bed_inputs(write_bed(tmp_path, line), genome, 6))


def test_bed_inputs_missing_files(tmp_path, genome):
    with pytest.raises(ValueError, match="BED file .* does not exist"):
        list(bed_inputs(tmp_path / "none.bed", genome, 6))
    with pytest.raises(ValueError, match="FASTA file .* does not exist"):
        list(bed_inputs(write_bed(tmp_path, "chr1\t3\t9\n"), tmp_path / "none.fa", 6))


def test_fasta_inputs(tmp_path):
    path = write_fasta(tmp_path / "seqs.fa", {"s1": "ACGTNacgta", "s2": "GGGGCCCCAA"})
    records = list(fasta_inputs(path, 10))
    assert [(r.name, r.chrom, r.start, r.end) for r in records] == [("s1", "s1", 0, 10), ("s2", "s2", 0, 10)]
    np.testing.assert_array_equal(records[0].codes, [0, 1, 2, 3, -1, 0, 1, 2, 3, 0])
    assert decode(records[1].codes[None]) == ["GGGGCCCCAA"]


def test_fasta_inputs_wrong_length_names_record(tmp_path):
    path = write_fasta(tmp_path / "seqs.fa", {"good": "ACGTACGTAC", "short_one": "ACGTACG"})
    with pytest.raises(ValueError, match=r"'short_one' has 7 bp, the model takes 10"):
        list(fasta_inputs(path, 10))
