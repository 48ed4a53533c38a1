"""kipoi_maxent.outputs.tracks: streaming merge of overlapping inputs, bedGraph and bigWig
written together and read back (pyBigWig, pybedtools)."""
import numpy as np
import pybedtools
import pyBigWig
import pytest

from kipoi_maxent.outputs.tracks import TrackWriter, merged_blocks, track_line

NAN = np.nan
SIZES = {"chr1": 1000, "chr10": 50, "chr2": 40}


def tracks():
    """Per-input tracks in genome order (chromosome name, start), overlapping on purpose."""
    return [
        ("chr1", 100, np.array([0.1, 0.9, 0.3])),       # chr1:100-103
        ("chr1", 101, np.array([0.2, 0.8, NAN])),       # overlaps chr1 101, 102
        ("chr1", 101, np.array([0.0, 0.85, 0.5, 0.6])),  # same start again, longer
        ("chr1", 200, np.array([NAN, NAN])),            # unknown bases only
        ("chr10", 0, np.array([NAN, 1.5])),
        ("chr2", 10, np.array([0.5, 1.0, NAN, 0.2])),   # chr2:10-14
        ("chr2", 12, np.array([0.4, 0.7, 0.1, NAN])),   # chr2:12-16, overlaps 12, 13
        ("chr2", 16, np.array([0.3])),                  # adjacent, no overlap
    ]


def expected():
    best = {}
    for chrom, start, values in tracks():
        for offset, value in enumerate(values):
            if not np.isnan(value):
                key = (chrom, start + offset)
                best[key] = max(best.get(key, -np.inf), value)
    return best


def merged_values(blocks):
    got = {}
    previous = None
    for chrom, start, values in blocks:
        if previous is not None and previous[0] == chrom:
            assert start >= previous[1], "blocks must not overlap"
        previous = (chrom, start + len(values))
        got.update({(chrom, start + i): float(v) for i, v in enumerate(values) if not np.isnan(v)})
    return got


def test_merged_blocks_take_the_maximum_and_drop_unknown():
    got = merged_values(merged_blocks(tracks()))
    assert got == expected()
    assert got[("chr2", 12)] == 0.4          # NaN in the first input, 0.4 in the second
    assert got[("chr1", 102)] == 0.85
    assert ("chr10", 0) not in got and ("chr1", 200) not in got


def test_merged_blocks_memory_is_bounded_by_one_input():
    """A chain of overlapping tiles along a chromosome is emitted as it goes."""
    tiles = [("chr1", start, np.full(100, start, dtype=float)) for start in range(0, 100_000, 50)]
    longest = max(len(values) for _, _, values in merged_blocks(tiles))
    assert longest <= 100
    got = merged_values(merged_blocks(tiles))
    assert got[("chr1", 120)] == 100.0        # covered by tiles 50 and 100: the larger


def test_merged_blocks_reject_unsorted():
    with pytest.raises(ValueError, match="sorted"):
        list(merged_blocks([("chr1", 10, np.ones(5)), ("chr1", 8, np.ones(5))]))


def test_bedgraph_and_bigwig_agree(tmp_path):
    bedgraph, bigwig = tmp_path / "t.bedGraph", tmp_path / "t.bw"
    header = track_line("bedGraph", 'imp "x"', "per-base\timportance", color="1,2,3", visibility="full")
    with TrackWriter(SIZES, bedgraph, bigwig, header=header) as writer:
        for block in merged_blocks(tracks()):
            writer.add(*block)
    lines = bedgraph.read_text().splitlines()
    assert lines[0] == "track type=bedGraph name=\"imp 'x'\" description=\"per-base importance\" color=1,2,3 visibility=full"
    rows = [line.split("\t") for line in lines[1:]]
    keys = [(r[0], int(r[1])) for r in rows]
    assert keys == sorted(keys) and len(set(keys)) == len(keys)
    assert all(int(r[2]) == int(r[1]) + 1 for r in rows)
    assert {k: float(r[3]) for k, r in zip(keys, rows)} == pytest.approx(expected())
    assert len(list(pybedtools.BedTool(str(bedgraph)))) == len(rows)

    with pyBigWig.open(str(bigwig)) as bw:
        assert bw.isBigWig() and bw.chroms() == SIZES
        for (chrom, position), value in expected().items():
            assert bw.values(chrom, position, position + 1)[0] == pytest.approx(value, rel=1e-6)
        assert np.isnan(bw.values("chr1", 200, 201)[0])       # unknown bases: no value
        intervals = bw.intervals("chr2")
        assert [(s, e) for s, e, _ in intervals] == [(p, p + 1) for c, p in sorted(expected()) if c == "chr2"]


def test_track_writer_refuses_unknown_chromosome_and_leaves_nothing(tmp_path):
    with pytest.raises(ValueError, match="chrX"):
        with TrackWriter(SIZES, tmp_path / "t.bedGraph", tmp_path / "t.bw") as writer:
            writer.add("chrX", 0, np.ones(3))
    assert list(tmp_path.iterdir()) == []
