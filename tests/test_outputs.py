"""kipoi_maxent.outputs: the BED writer and atomic writes."""
import os

import pybedtools
import pytest

from kipoi_maxent.outputs import atomic_path, write_motifs_bed


def motif_rows():
    return [
        {"chrom": "chr2", "motif_start": 50, "motif_end": 69, "name": "peak b", "motif_score": 0.9},
        {"chrom": "chr1", "motif_start": 500, "motif_end": 519, "name": "peak\ta\n1", "motif_score": 2.7},
        {"chrom": "chr1", "motif_start": 20, "motif_end": 39, "name": "p3", "motif_score": -0.1},
        {"chrom": "chr1", "motif_start": 20, "motif_end": 39, "name": "", "motif_score": 1.0},
    ]


def test_motifs_bed(tmp_path):
    path = tmp_path / "motifs.bed"
    write_motifs_bed(motif_rows(), path)
    lines = path.read_text().splitlines()
    assert lines[0].startswith("track ") and "useScore=1" in lines[0]
    rows = [line.split("\t") for line in lines[1:]]
    assert len(rows) == 4 and all(len(r) == 6 for r in rows)
    assert [(r[0], int(r[1])) for r in rows] == [("chr1", 20), ("chr1", 20), ("chr1", 500), ("chr2", 50)]
    by_name = {r[3]: r for r in rows}
    assert set(by_name) == {".", "p3", "peak_a_1", "peak_b"}
    scores = {name: int(r[4]) for name, r in by_name.items()}
    assert scores == {".": 500, "p3": 0, "peak_a_1": 1000, "peak_b": 450}  # 1000 × KL / 2 bits, clipped
    assert all(r[5] == "." for r in rows)

    intervals = list(pybedtools.BedTool(str(path)))
    assert [(i.chrom, i.start, i.end, i.name, int(i.score), i.strand) for i in intervals] == [
        (r[0], int(r[1]), int(r[2]), r[3], int(r[4]), r[5]) for r in rows]


def test_motifs_bed_custom_names(tmp_path):
    path = tmp_path / "motifs.bed"
    write_motifs_bed(motif_rows(), path, name=lambda row: f"{row['name']}|X")
    names = sorted(i.name for i in pybedtools.BedTool(str(path)))
    assert names == sorted(["peak_b|X", "peak_a_1|X", "p3|X", "|X"])


def test_atomic_path_success_replaces(tmp_path):
    path = tmp_path / "out.txt"
    path.write_text("old\n")
    with atomic_path(path) as stream:
        stream.write("new\n")
        assert path.read_text() == "old\n"  # not visible until the body finishes
    assert path.read_text() == "new\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.txt"]
    umask = os.umask(0)
    os.umask(umask)
    assert path.stat().st_mode & 0o777 == 0o666 & ~umask  # readable like any file, not 0600


def test_atomic_path_failure_leaves_nothing(tmp_path):
    path = tmp_path / "out.txt"
    with pytest.raises(RuntimeError, match="boom"):
        with atomic_path(path) as stream:
            stream.write("partial")
            raise RuntimeError("boom")
    assert list(tmp_path.iterdir()) == []


def test_atomic_path_failure_keeps_previous_file(tmp_path):
    path = tmp_path / "out.bed"
    path.write_text("previous\n")
    with pytest.raises(KeyError):
        write_motifs_bed([{"chrom": "chr1"}], path)  # a row without motif fields fails mid-write
    assert path.read_text() == "previous\n"
    assert [p.name for p in tmp_path.iterdir()] == ["out.bed"]
