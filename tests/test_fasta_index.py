"""kipoi_maxent.fasta_index: a FASTA's .fai (and .gzi) index is checked before it is trusted, and
(re)built atomically.

Every case reads the bases back through kipoi_maxent.inputs (real pyfaidx, real files): an index
that is newer than its FASTA but wrong (half-written, a line lost, a wrong field) must be rebuilt,
not believed.
"""
import json
import logging
import os
import random
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from Bio import bgzf
from test_inputs import unprivileged

from kipoi_maxent.inputs import Interval, chromosome_sizes, interval_inputs
from kipoi_maxent.sequence import decode

_random = random.Random(7)
#: One record shorter than a line, one a multiple of the line width (10 and 60), one not.
RECORDS = {name: "".join(_random.choice("ACGT") for _ in range(size))
           for name, size in (("chrC", 6), ("chrA", 60), ("chrB", 127))}
#: For the bgzip genome: a record spanning several 64 KiB BGZF blocks before the last one.
BGZIP_RECORDS = {"chrC": RECORDS["chrC"], "chrA": RECORDS["chrA"],
                 "chrL": "".join(_random.choice("ACGT") for _ in range(100_003)), "chrB": RECORDS["chrB"]}

#: The empty block that ends every BGZF file (SAM specification, 4.1.2).
BGZF_EOF = bytes.fromhex("1f8b08040000000000ff0600424302001b0003000000000000000000")


def fasta_text(records: dict[str, str], width: int = 10, newline: str = "\n", *, preamble: str = "",
               descriptions: bool = False, blank_lines: bool = False, final_newline: bool = True) -> str:
    """A FASTA file's text, lines wrapped at ``width``."""
    blocks = []
    for name, sequence in records.items():
        lines = [f">{name}" + (f" {name} description, with spaces" if descriptions else "")]
        lines += [sequence[i:i + width] for i in range(0, len(sequence), width)]
        blocks.append(newline.join(lines) + newline + (newline if blank_lines else ""))
    text = preamble + "".join(blocks)
    return text if final_newline else text.rstrip("\r\n")


def write_plain(path: Path, records=RECORDS, **layout) -> Path:
    path.write_bytes(fasta_text(records, **layout).encode())
    return path


def write_bgzip(path: Path, records=BGZIP_RECORDS, *, eof_marker: bool = True) -> Path:
    with bgzf.BgzfWriter(str(path), "wb") as writer:
        writer.write(fasta_text(records, width=60).encode())
    if not eof_marker:  # as if the copy was cut short
        data = path.read_bytes()
        assert data.endswith(BGZF_EOF)
        path.write_bytes(data[:-len(BGZF_EOF)])
    return path


def read_genome(path: Path) -> dict[str, str]:
    """Every record of the FASTA, read base by base through kipoi_maxent.inputs."""
    sizes = chromosome_sizes(path)
    inputs = interval_inputs([Interval(name, name, 0, size) for name, size in sizes.items()], path)
    return {item.name: decode(item.codes[None])[0] for item in inputs}


def make_newer(index: Path, fasta: Path) -> None:
    """Date the index after its FASTA (a stale index is rebuilt anyway: these must be caught by content)."""
    later = fasta.stat().st_mtime_ns + 10**9
    os.utime(index, ns=(later, later))


def edit_lines(index: Path, fasta: Path, edit) -> None:
    """Rewrite the index with ``edit(lines)`` (lists of tab-separated fields), newer than the FASTA."""
    lines = [line.split("\t") for line in index.read_text().splitlines()]
    index.write_text("".join("\t".join(fields) + "\n" for fields in edit(lines)))
    make_newer(index, fasta)


def stamp(path: Path) -> tuple[int, int]:
    st = path.stat()
    return st.st_ino, st.st_mtime_ns


def files_in(directory: Path) -> set[str]:
    return {p.name for p in directory.iterdir()}


@pytest.fixture
def genome(tmp_path):
    """A plain FASTA (line width 10) with its pristine index built: ``(fasta, fai, fai text)``."""
    fasta = write_plain(tmp_path / "genome.fa")
    assert read_genome(fasta) == RECORDS
    fai = Path(f"{fasta}.fai")
    return fasta, fai, fai.read_text()


@pytest.mark.parametrize("damage", ["field_removed", "half_written"])
def test_an_index_whose_last_line_lost_its_last_field_is_rebuilt(genome, damage, caplog):
    """A killed indexer leaves a .fai cut short; the old code read the wrong bases from it (or failed)."""
    fasta, fai, pristine = genome
    text = pristine.rstrip("\n")
    cut = text[:text.rindex("\t")] if damage == "field_removed" else text[:-1]  # "...\t10\t11" -> "...\t10\t1"
    fai.write_text(cut)
    make_newer(fai, fasta)
    with caplog.at_level(logging.INFO, logger="kipoi_maxent"):
        assert read_genome(fasta) == RECORDS
    assert fai.read_text() == pristine
    assert any(str(fai) in r.getMessage() and "rebuild" in r.getMessage() for r in caplog.records), caplog.text


def test_an_index_missing_its_last_chromosome_is_rebuilt(genome):
    fasta, fai, pristine = genome
    edit_lines(fai, fasta, lambda lines: lines[:-1])
    assert chromosome_sizes(fasta) == {name: len(sequence) for name, sequence in RECORDS.items()}
    assert fai.read_text() == pristine


@pytest.mark.parametrize("record, field, change", [
    ("chrA", 2, +1),   # offset one byte late
    ("chrB", 2, -11),  # offset one line early
    ("chrA", 4, +1),   # line width (bytes per line) too large
    ("chrB", 3, -1),   # bases per line too small
    ("chrA", 1, -1),   # length one base short
    ("chrC", 1, +1),   # length one base long
])
def test_an_index_with_a_wrong_field_is_rebuilt(genome, record, field, change):
    fasta, fai, pristine = genome

    def edit(lines):
        for fields in lines:
            if fields[0] == record:
                fields[field] = str(int(fields[field]) + change)
        return lines

    edit_lines(fai, fasta, edit)
    assert fai.read_text() != pristine
    assert read_genome(fasta) == RECORDS
    assert fai.read_text() == pristine


def test_a_rebuilt_index_replaces_the_old_file_atomically(genome, tmp_path):
    """The new index is written under another name and renamed over the old one: a reader of the old
    file (here a hard link to it) never sees it rewritten in place, nothing is appended to it, no
    temporary file is left, and its permissions follow the umask."""
    fasta, fai, pristine = genome
    invalid = pristine.replace("\t10\t11\n", "\t10\t12\n", 1)
    fai.write_text(invalid)
    make_newer(fai, fasta)
    link = tmp_path / "old_index_link"
    os.link(fai, link)
    umask = os.umask(0o022)
    try:
        assert read_genome(fasta) == RECORDS
    finally:
        os.umask(umask)
    assert fai.read_text() == pristine
    assert fai.stat().st_ino != link.stat().st_ino
    assert link.read_text() == invalid
    assert fai.stat().st_mode & 0o777 == 0o644
    assert files_in(tmp_path) == {"genome.fa", "genome.fa.fai", "old_index_link"}


def test_a_failed_build_leaves_no_files_beside_the_fasta(tmp_path):
    """pyfaidx refuses a FASTA of ragged lines, and a bgzip file without its end-of-file block (after
    it has written the .fai, so the old code left a .fai without .gzi): neither leaves a file behind."""
    ragged = tmp_path / "ragged"
    ragged.mkdir()
    (ragged / "r.fa").write_text(">chrA\n" + "ACGT" * 5 + "\nAC\n" + "ACGT" * 5 + "\n")
    with pytest.raises(ValueError, match="Line length of fasta file is not consistent"):
        chromosome_sizes(ragged / "r.fa")
    assert files_in(ragged) == {"r.fa"}

    cut = tmp_path / "cut"
    cut.mkdir()
    write_bgzip(cut / "g.fa.gz", eof_marker=False)
    with pytest.raises(ValueError, match="cannot read FASTA .*g.fa.gz"):
        chromosome_sizes(cut / "g.fa.gz")
    assert files_in(cut) == {"g.fa.gz"}


@pytest.mark.parametrize("layout", [
    {},
    {"newline": "\r\n"},
    {"preamble": ";a comment line\n\n", "descriptions": True, "blank_lines": True},
    {"final_newline": False},
    {"width": 60, "final_newline": False},  # the last record is one line (linewidth == linebases)
    "bgzip",
])
def test_a_valid_index_is_reused_untouched_and_the_same_index_one_base_short_is_not(tmp_path, layout):
    """Layouts pyfaidx indexes (CRLF, comments, descriptions, blank lines between records, no final
    newline, bgzip) keep their index from one run to the next (same file, same mtime); the same index
    with the last record one base short is rebuilt."""
    if layout == "bgzip":
        fasta, records = write_bgzip(tmp_path / "genome.fa.gz"), BGZIP_RECORDS
    else:
        fasta, records = write_plain(tmp_path / "genome.fa", **layout), RECORDS
    assert read_genome(fasta) == records
    fai = Path(f"{fasta}.fai")
    pristine, before = fai.read_text(), stamp(fai)
    indexes = files_in(tmp_path)
    assert read_genome(fasta) == records
    assert stamp(fai) == before and files_in(tmp_path) == indexes

    def one_base_short(lines):
        lines[-1][1] = str(int(lines[-1][1]) - 1)
        return lines

    edit_lines(fai, fasta, one_base_short)
    assert read_genome(fasta) == records
    assert fai.read_text() == pristine and files_in(tmp_path) == indexes


@pytest.mark.parametrize("damage", ["half_written", "last_line_missing"])
def test_a_truncated_bgzip_index_is_rebuilt(tmp_path, damage):
    fasta = write_bgzip(tmp_path / "genome.fa.gz")
    assert read_genome(fasta) == BGZIP_RECORDS
    fai, gzi = Path(f"{fasta}.fai"), Path(f"{fasta}.gzi")
    assert gzi.stat().st_size > 8  # several blocks
    pristine = fai.read_text()
    fai.write_text(pristine[:-3] if damage == "half_written" else "".join(pristine.splitlines(True)[:-1]))
    make_newer(fai, fasta)
    assert read_genome(fasta) == BGZIP_RECORDS
    assert fai.read_text() == pristine
    assert files_in(tmp_path) == {"genome.fa.gz", "genome.fa.gz.fai", "genome.fa.gz.gzi"}


def test_fasta_in_a_read_only_directory_with_an_invalid_index_beside_it():
    """The invalid index beside the FASTA cannot be replaced: a valid one is built in the user cache
    (and rebuilt there when it is damaged, and reused while it is valid); the one beside is left alone."""
    drop = unprivileged()
    with tempfile.TemporaryDirectory() as work:  # pytest's tmp_path is private to its user
        work = Path(work)
        os.chmod(work, 0o777)
        genome = work / "genome"
        genome.mkdir()
        fasta = write_plain(genome / "g.fa")
        beside = Path(f"{fasta}.fai")
        beside.write_text("chrC\t6\t6\t6\t7\nchrA\t60\t19\t10\t11\n")  # chrB missing
        make_newer(beside, fasta)
        os.chmod(genome, 0o555)
        cache = work / "cache"
        cache.mkdir()
        os.chmod(cache, 0o777)
        script = (  # read_genome, without importing the tests (and what they import)
            "import json\n"
            "from kipoi_maxent.inputs import Interval, chromosome_sizes, interval_inputs\n"
            "from kipoi_maxent.sequence import decode\n"
            f"path = {str(fasta)!r}\n"
            "inputs = interval_inputs([Interval(n, n, 0, s) for n, s in chromosome_sizes(path).items()], path)\n"
            "print(json.dumps({i.name: decode(i.codes[None])[0] for i in inputs}))\n")
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(work), "XDG_CACHE_HOME": str(cache)}

        def run():
            result = subprocess.run([*drop, sys.executable, "-c", script], capture_output=True, text=True, env=env, check=False)
            assert result.returncode == 0, result.stderr
            return json.loads(result.stdout)

        assert run() == RECORDS
        assert beside.read_text() == "chrC\t6\t6\t6\t7\nchrA\t60\t19\t10\t11\n"
        [cached] = (cache / "kipoi_maxent").iterdir()
        assert cached.name.endswith(".fai")
        pristine = cached.read_text()
        edit_lines(cached, fasta, lambda lines: lines[:-1])
        assert run() == RECORDS
        assert cached.read_text() == pristine
        assert [p.name for p in (cache / "kipoi_maxent").iterdir()] == [cached.name]
        before = stamp(cached)
        assert run() == RECORDS
        assert stamp(cached) == before
        if not drop and os.access(genome, os.W_OK):
            pytest.skip("this user can write to read-only directories")


def test_fasta_index_paths_names_the_files_to_pass_to_pyfaidx(tmp_path):
    # imported here, so that the other tests also run on the code before kipoi_maxent.fasta_index
    from kipoi_maxent.fasta_index import fasta_index_paths

    fasta = write_plain(tmp_path / "g.fa")
    assert fasta_index_paths(fasta) == (f"{fasta}.fai", None)
    assert Path(f"{fasta}.fai").is_file()
    compressed = write_bgzip(tmp_path / "g.fa.gz")
    assert fasta_index_paths(compressed) == (f"{compressed}.fai", f"{compressed}.gzi")
