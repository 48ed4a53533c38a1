"""kipoi_maxent.inputs: BED + FASTA and plain FASTA inputs, checked before any work."""
import gzip
import json
import logging
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pytest
from toy_models import write_fasta

from kipoi_maxent.inputs import (
    Interval,
    bed_inputs,
    dataloader_inputs,
    fasta_inputs,
    interval_inputs,
    read_bed,
    read_sequences,
)
from kipoi_maxent.sequence import decode, encode
from kipoi_maxent.spec import InputEncoder

NOBODY = 65534

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


@pytest.mark.parametrize("line, message", [
    ("chr1\tabc\t10", "start 'abc' is not an integer"),
    ("chr1\t3\t9.5", "end '9.5' is not an integer"),
    ("chr1\t10\t5", "end 5 is before start 10; swap them"),
    ("chr1\t-1\t5", "start -1 is negative"),
    ("\t3\t9", "empty chromosome name"),
    ("chr1\t10", "2 tab-separated field(s) in 'chr1\\t10'"),
    ("chr1 3 9", "1 tab-separated field(s) in 'chr1 3 9'"),
])
def test_bed_malformed_line_names_the_line(tmp_path, genome, line, message):
    bed = write_bed(tmp_path, "# header\ntrack name=x\nchr1\t3\t9\tok\n\n" + line + "\n")
    expected = f"{bed}, line 5: malformed BED line: {message}"
    for read in (read_bed, lambda *a: list(bed_inputs(*a))):
        with pytest.raises(ValueError) as error:
            read(bed, genome, 6)
        assert str(error.value).startswith(expected), str(error.value)


def test_read_bed_checks_the_whole_file_first(tmp_path, genome, caplog):
    """read_bed finds an error on the last line before anything is read; bed_inputs yields the
    good lines first. Both give the same intervals and say "resized" once."""
    bed = write_bed(tmp_path, BED)
    with caplog.at_level(logging.INFO, logger="kipoi_maxent.inputs"):
        intervals = read_bed(bed, genome, 6)
    assert caplog.text.count("resized 4 interval(s) around their centre to the model length 6 bp") == 1
    assert all(isinstance(i, Interval) for i in intervals)
    assert [tuple(i) for i in intervals] == [(r.name, r.chrom, r.start, r.end) for r in bed_inputs(bed, genome, 6)]
    records = list(interval_inputs(intervals, genome))
    np.testing.assert_array_equal([r.codes for r in records], [r.codes for r in bed_inputs(bed, genome, 6)])

    bad = write_bed(tmp_path, BED + "chr1\t3\tx\n")
    with pytest.raises(ValueError, match="line 6: malformed BED line: end 'x'"):
        read_bed(bad, genome, 6)
    lazy = bed_inputs(bad, genome, 6)
    assert [next(lazy).name for _ in range(5)] == [i.name for i in intervals]
    with pytest.raises(ValueError, match="line 6"):
        next(lazy)


@pytest.mark.parametrize("text", ["", "\n\n", "# only\ntrack name=x\nbrowser hide all\n"])
def test_bed_without_intervals(tmp_path, genome, text):
    bed = write_bed(tmp_path, text)
    with pytest.raises(ValueError, match=r"holds no intervals \(only blank, comment, track or browser lines\)"):
        read_bed(bed, genome, 6)
    assert list(bed_inputs(bed, genome, 6)) == []  # the lazy reader leaves "no input" to its caller


@pytest.mark.parametrize("text, message", [
    ("chr1\t3\t9\ta\nchr2\t3\t9\tb\nchr1\t10\t16\ta\n", "line 3: interval name 'a' is already used on line 1"),
    ("chr1\t3\t9\nchr1\t3\t9\tchr1:3-9\n", "line 2: interval name 'chr1:3-9' is already used on line 1"),
    ("chr1\t3\t9\n#\nchr1\t3\t9\t.\n", "line 3: interval chr1:3-9 repeats line 1; remove the duplicate line"),
])
def test_duplicate_names(tmp_path, genome, text, message):
    with pytest.raises(ValueError, match=message):
        read_bed(write_bed(tmp_path, text), genome, 6)


def test_unknown_chromosome_lists_the_fasta_names(tmp_path):
    fasta = write_fasta(tmp_path / "g.fa", {f"chr{i}": "ACGTACGTAC" for i in range(1, 8)})
    with pytest.raises(ValueError, match=r"line 1: chromosome 'chrX' \(interval 'x'\) is not in FASTA .*g\.fa: it has "
                                         r"chr1, chr2, chr3, chr4, chr5, \.\.\. \(7 in all\); check that BED and FASTA"):
        read_bed(write_bed(tmp_path, "chrX\t0\t6\tx\n"), fasta, 6)
    with pytest.raises(ValueError, match="the FASTA calls it 'chr3': rename the BED's chromosomes to match"):
        read_bed(write_bed(tmp_path, "3\t0\t6\tx\n"), fasta, 6)


def test_gzip_bed(tmp_path, genome):
    path = tmp_path / "regions.bed.gz"
    path.write_bytes(gzip.compress(BED.encode()))
    assert read_bed(path, genome, 6) == read_bed(write_bed(tmp_path, BED), genome, 6)
    path.write_bytes(gzip.compress(BED.encode())[:-12])  # truncated
    with pytest.raises(ValueError, match="cannot read .*regions.bed.gz: .*complete plain or gzip"):
        read_bed(path, genome, 6)


def test_only_n_inputs_are_skipped_with_a_warning(tmp_path, caplog):
    fasta = write_fasta(tmp_path / "g.fa", {"chr1": "ACGTNNNNNNNNACGT", "s2": "NNNNNN", "s3": "ACNNNN"})
    bed = write_bed(tmp_path, "chr1\t0\t6\tpartly\nchr1\t5\t11\tgap\nchr1\t10\t16\tend\n")
    with caplog.at_level(logging.WARNING, logger="kipoi_maxent.inputs"):
        names = [r.name for r in bed_inputs(bed, fasta, 6)]
    assert names == ["partly", "end"]
    assert "skipping input 'gap' (chr1:5-11): it has only unknown bases (N), nothing to sample" in caplog.text
    sequences = write_fasta(tmp_path / "s.fa", {"s2": "NNNNNN", "s3": "ACNNNN"})
    assert [r.name for r in fasta_inputs(sequences, 6)] == ["s3"]
    assert [r.name for r in interval_inputs(read_sequences(sequences, 6), sequences)] == ["s3"]


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
    with pytest.raises(ValueError, match=r"'short_one' has 7 bp, the model takes 10"):
        read_sequences(path, 10)


def test_read_sequences(tmp_path):
    path = write_fasta(tmp_path / "seqs.fa", {"s1": "ACGTNacgta", "s2": "GGGGCCCCAA"})
    assert read_sequences(path, 10) == [Interval("s1", "s1", 0, 10), Interval("s2", "s2", 0, 10)]
    twice = tmp_path / "twice.fa"
    twice.write_text(">s1\nACGTACGTAC\n>s1\nGGGGCCCCAA\n")
    with pytest.raises(ValueError, match=r'cannot read FASTA .*twice\.fa: Duplicate key "s1": two records have this '
                                         r'name; record names must be unique'):
        read_sequences(twice, 10)
    empty = tmp_path / "empty.fa"
    empty.write_text("")
    with pytest.raises(ValueError, match=r"cannot read FASTA .*empty\.fa: .*does not contain a valid sequence"):
        read_sequences(empty, 10)


def test_fasta_problems(tmp_path):
    with pytest.raises(ValueError, match="is a directory, not a FASTA file"):
        read_sequences(tmp_path, 10)
    ragged = tmp_path / "ragged.fa"
    ragged.write_text(">s\nACGTACG\nAC\nACGTACG\n")
    with pytest.raises(ValueError, match="Line length of fasta file is not consistent.*re-wrap it"):
        read_sequences(ragged, 16)
    compressed = tmp_path / "s.fa.gz"
    compressed.write_bytes(gzip.compress(b">s\nACGTACGTAC\n"))
    with pytest.raises(ValueError, match="only supported in BGZF format"):
        read_sequences(compressed, 10)


def test_a_stale_index_is_rebuilt(tmp_path):
    """An index older than its FASTA (the FASTA re-wrapped or replaced) would give other bases."""
    path = write_fasta(tmp_path / "g.fa", {"chr1": "AAAAAAAACCCCCCCC"}, width=4)
    assert decode(list(interval_inputs([Interval("x", "chr1", 6, 10)], path))[0].codes[None]) == ["AACC"]
    write_fasta(path, {"chr1": "GGGGTTTTGGGGTTTT"}, width=16)
    index = Path(f"{path}.fai")
    os.utime(index, (path.stat().st_mtime - 10,) * 2)
    assert decode(list(interval_inputs([Interval("x", "chr1", 6, 10)], path))[0].codes[None]) == ["TTGG"]


def unprivileged() -> list[str]:
    """Command prefix that runs as an unprivileged user (root reads and writes everywhere)."""
    if os.geteuid() != 0:
        return []
    if not shutil.which("setpriv"):
        pytest.skip("running as root without setpriv: cannot drop privileges")
    return ["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups"]


def test_fasta_in_a_read_only_directory():
    """No index beside a FASTA in a read-only directory: it is indexed in the user cache; with no
    writable cache either, the error says what to do."""
    drop = unprivileged()
    with tempfile.TemporaryDirectory() as work:  # pytest's tmp_path is private to its user
        work = Path(work)
        os.chmod(work, 0o777)
        genome = work / "genome"
        genome.mkdir()
        write_fasta(genome / "g.fa", GENOME)
        os.chmod(genome, 0o555)
        bed = write_bed(work, BED)
        for cache, mode in (("cache", 0o777), ("locked", 0o555)):
            (work / cache).mkdir()
            os.chmod(work / cache, mode)  # not mkdir(mode=...): the umask would narrow it
        script = (
            "import json, sys\n"
            "from kipoi_maxent.inputs import bed_inputs\n"
            "try:\n"
            f"    print(json.dumps([[r.name, r.codes.tolist()] for r in bed_inputs({str(bed)!r}, {str(genome / 'g.fa')!r}, 6)]))\n"
            "except ValueError as error:\n"
            "    print(json.dumps(str(error)))\n")
        outputs = []
        for cache in ("cache", "locked"):
            env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(work), "XDG_CACHE_HOME": str(work / cache)}
            result = subprocess.run([*drop, sys.executable, "-c", script], capture_output=True, text=True, env=env)
            assert result.returncode == 0, result.stderr
            outputs.append(json.loads(result.stdout))
        assert not (genome / "g.fa.fai").exists()
        assert len(list((work / "cache" / "kipoi_maxent").glob("*.fai"))) == 1
        if not drop and os.access(genome, os.W_OK):
            pytest.skip("this user can write to read-only directories")
    expected = [[r.name, r.codes.tolist()] for r in bed_inputs(write_bed(Path(tempfile.mkdtemp()), BED),
                                                                write_fasta(Path(tempfile.mkdtemp()) / "g.fa", GENOME), 6)]
    assert outputs[0] == expected
    assert outputs[1].startswith(f"cannot index FASTA {genome / 'g.fa'}: neither its directory nor the cache directory")
    assert "run `samtools faidx` on a copy in a writable directory, or set XDG_CACHE_HOME" in outputs[1]


def test_dataloader_inputs(tmp_path, genome):
    """The model's Kipoi dataloader (kipoiseq's SeqIntervalDl): all-N inputs skipped, a repeated
    interval refused."""
    from kipoiseq.dataloaders import SeqIntervalDl

    bed = write_bed(tmp_path, "chr1\t0\t6\nchr1\t10\t14\nchr2\t2\t8\n")
    write_fasta(tmp_path / "n.fa", {"chr1": "ACGTACGTNNNNNNNNACGT", "chr2": "GGGGCCCCAA"})
    arguments = {"intervals_file": str(bed), "fasta_file": str(tmp_path / "n.fa"), "auto_resize_len": 6,
                 "ignore_targets": True}
    records = list(dataloader_inputs(SeqIntervalDl, arguments, InputEncoder("ACGT", ("L", 4))))
    assert [(r.name, decode(r.codes[None])[0]) for r in records] == [("chr1:0-6", "ACGTAC"), ("chr2:2-8", "GGCCCC")]
    write_bed(tmp_path, "chr1\t0\t6\nchr1\t0\t6\n")
    with pytest.raises(ValueError, match="the dataloader yields interval chr1:0-6 twice"):
        list(dataloader_inputs(SeqIntervalDl, arguments, InputEncoder("ACGT", ("L", 4))))
