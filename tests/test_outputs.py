"""kipoi_maxent.outputs: importance merging, bedGraph and BED writers, atomic writes."""
import os

import numpy as np
import pybedtools
import pytest

from kipoi_maxent.outputs import atomic_path, merge_importance, write_importance_bedgraph, write_motifs_bed

NAN = np.nan


def tracks():
    return [
        ("chr2", 10, np.array([0.5, 1.0, NAN, 0.2])),   # chr2:10-14
        ("chr1", 100, np.array([0.1, 0.9, 0.3])),       # chr1:100-103
        ("chr2", 12, np.array([0.4, 0.7, 0.1, NAN])),   # chr2:12-16, overlaps 12, 13
        ("chr10", 0, np.array([NAN, 1.5])),
        ("chr1", 101, np.array([0.2, 0.8, NAN])),       # overlaps chr1 101, 102
    ]


def expected_merge():
    best = {}
    for chrom, start, values in tracks():
        for offset, value in enumerate(values):
            if not np.isnan(value):
                key = (chrom, start + offset)
                best[key] = max(best.get(key, -np.inf), value)
    return best


def test_merge_importance_takes_maximum_and_drops_nan():
    merged = merge_importance(tracks())
    assert set(merged) == {"chr1", "chr2", "chr10"}
    got = {}
    for chrom, (positions, values) in merged.items():
        assert np.all(np.diff(positions) > 0)
        assert not np.any(np.isnan(values))
        got.update({(chrom, int(p)): float(v) for p, v in zip(positions, values)})
    assert got == expected_merge()
    assert got[("chr2", 12)] == 0.4           # NaN in the first track, 0.4 in the second
    assert ("chr10", 0) not in got            # NaN everywhere


def test_bedgraph_sorted_non_overlapping_one_bp(tmp_path):
    path = tmp_path / "importance.bedGraph"
    write_importance_bedgraph(tracks(), path, track_name="imp")
    lines = path.read_text().splitlines()
    assert lines[0].startswith("track type=bedGraph") and 'name="imp"' in lines[0]
    rows = [line.split("\t") for line in lines[1:]]
    assert all(len(r) == 4 for r in rows)
    keys = [(r[0], int(r[1])) for r in rows]
    assert keys == sorted(keys)                                  # chrom (lexicographic), then start
    assert all(int(r[2]) == int(r[1]) + 1 for r in rows)        # 1 bp, so no overlaps when unique
    assert len(set(keys)) == len(keys)
    assert {k: float(r[3]) for k, r in zip(keys, rows)} == pytest.approx(expected_merge())

    intervals = list(pybedtools.BedTool(str(path)))
    assert len(intervals) == len(rows)
    assert [(i.chrom, i.start, i.end, float(i.fields[3])) for i in intervals] == [
        (r[0], int(r[1]), int(r[2]), float(r[3])) for r in rows]


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
