"""kipoi_maxent.motifs: call PWMs, MEME files, JASPAR annotation (TOMTOM), consensus."""
import io

import numpy as np
import pytest

from kipoi_maxent.motifs import (
    MEME_DECIMALS,
    annotate,
    call_matrix,
    consensus,
    informative_span,
    load_jaspar,
    read_meme,
    reverse_complement_matrix,
    write_meme,
)
from kipoi_maxent.sequence import background_probabilities
from kipoi_maxent.statistics import MotifCall

CTCF_ID = "MA0139.2"  # JASPAR2024 CTCF, 15 bp


@pytest.fixture(scope="module")
def jaspar():
    return load_jaspar()  # JASPAR2024 CORE vertebrates


@pytest.fixture(scope="module")
def ctcf(jaspar):
    return np.array(jaspar.matrices[jaspar.ids.index(CTCF_ID)])


def test_reverse_complement_matrix_swaps_a_t_and_c_g_and_reverses():
    m = np.array([[1.0, 0, 0, 0],    # A
                  [0, 0.7, 0.3, 0]])  # mostly C
    np.testing.assert_array_equal(reverse_complement_matrix(m), [[0, 0.3, 0.7, 0],  # mostly G
                                                                  [0, 0, 0, 1.0]])  # T
    batch = np.random.default_rng(0).dirichlet(np.ones(4), size=(3, 5))
    np.testing.assert_array_equal(reverse_complement_matrix(reverse_complement_matrix(batch)), batch)
    np.testing.assert_array_equal(reverse_complement_matrix(batch)[1], reverse_complement_matrix(batch[1]))


def test_call_matrix_takes_the_window_and_smooths_it():
    frequencies = np.array([
        [1.0, 0, 0, 0],
        [0, 0.5, 0.5, 0],
        [0, 0, 0, 0],       # unknown base in the input
        [0.25, 0.25, 0.25, 0.25],
    ])
    np.testing.assert_array_equal(call_matrix(frequencies, MotifCall(0, 2, 1.0), pseudocount=0),
                                  frequencies[:2])
    smoothed = call_matrix(frequencies, MotifCall(1, 4, 1.0), pseudocount=0.01)
    assert smoothed.shape == (3, 4)
    np.testing.assert_allclose(smoothed.sum(axis=1), 1.0)
    np.testing.assert_allclose(smoothed[0], np.array([0.01, 0.51, 0.51, 0.01]) / 1.04)
    np.testing.assert_allclose(smoothed[1], 0.25)  # unknown -> uniform
    with pytest.raises(ValueError, match="pseudocount > 0"):
        call_matrix(frequencies, MotifCall(1, 4, 1.0), pseudocount=0)
    with pytest.raises(ValueError, match="motif call end"):
        call_matrix(frequencies, MotifCall(2, 5, 1.0))
    with pytest.raises(ValueError, match="shape"):
        call_matrix(frequencies[:, :3], MotifCall(0, 2, 1.0))


def test_informative_span_drops_only_flanks():
    m = np.full((7, 4), 0.25)
    m[[1, 4]] = [0.97, 0.01, 0.01, 0.01]  # 1.76 bits each; columns 2, 3 stay uninformative
    assert informative_span(m) == (1, 5)
    assert informative_span(m, min_information=1.9) == (0, 0)
    gc_rich = background_probabilities(np.log(0.7 / 0.3))
    assert informative_span(np.tile(gc_rich, (3, 1)), background=gc_rich) == (0, 0)
    assert informative_span(np.tile(gc_rich, (3, 1)), min_information=0.1) == (0, 3)  # 0.12 bits
    assert informative_span(np.tile(gc_rich, (3, 1)), min_information=0.2) == (0, 0)


def _two_motifs():
    rng = np.random.default_rng(1)
    return [("call_1", "chr1:100-201", rng.dirichlet(np.full(4, 0.7), size=19), 30000),
            ("call_2", "", rng.dirichlet(np.full(4, 0.7), size=7), 12)]


def test_meme_round_trip_is_exact_to_the_printed_precision(tmp_path):
    q = background_probabilities(np.log(0.38 / 0.62))
    motifs = _two_motifs()
    path = tmp_path / "motifs_round_trip.meme"
    with open(path, "w") as stream:
        write_meme(stream, motifs, q)
    text = path.read_text()
    assert text.startswith("MEME version 4\n\nALPHABET= ACGT\n\nstrands: + -\n\n")
    assert "A 0.310000 C 0.190000 G 0.190000 T 0.310000\n" in text
    assert "MOTIF call_1 chr1:100-201\nletter-probability matrix: alength= 4 w= 19 nsites= 30000 E= 0\n" in text
    assert "MOTIF call_2\n" in text  # empty name: id only

    read = read_meme(path)
    assert list(read) == ["call_1", "call_2"]
    for motif_id, _, matrix, _ in motifs:
        printed = np.vectorize(lambda p: float(f"{p:.{MEME_DECIMALS}f}"))(matrix)
        np.testing.assert_array_equal(read[motif_id], printed)
        np.testing.assert_allclose(read[motif_id], matrix, rtol=0, atol=0.5 * 10.0 ** -MEME_DECIMALS)


def test_memelite_reads_our_meme_file(tmp_path):
    from memelite.io import read_meme as memelite_read_meme

    path = tmp_path / "motifs_memelite.meme"
    with open(path, "w") as stream:
        write_meme(stream, _two_motifs(), background_probabilities(0.0))
    by_title = memelite_read_meme(str(path))
    assert list(by_title) == ["call_1 chr1:100-201", "call_2"]
    assert by_title["call_1 chr1:100-201"].shape == (4, 19)
    np.testing.assert_allclose(by_title["call_2"].T, _two_motifs()[1][2], atol=1e-6)


def test_meme_ids_and_names_are_sanitised():
    matrix = np.full((3, 4), 0.25)
    stream = io.StringIO()
    write_meme(stream, [("my motif\t1", "chr1 interval\nname", matrix, 1)], background_probabilities(0.0))
    assert "MOTIF my_motif_1 chr1_interval_name\n" in stream.getvalue()
    assert sum(line.startswith("MOTIF") for line in stream.getvalue().splitlines()) == 1
    with pytest.raises(ValueError, match="empty"):
        write_meme(io.StringIO(), [(" ", "x", matrix, 1)], background_probabilities(0.0))
    with pytest.raises(ValueError, match="repeated"):
        write_meme(io.StringIO(), [("a b", "", matrix, 1), ("a_b", "", matrix, 1)],
                   background_probabilities(0.0))
    with pytest.raises(ValueError, match="rows sum to 1"):
        write_meme(io.StringIO(), [("counts", "", matrix * 100, 1)], background_probabilities(0.0))
    with pytest.raises(ValueError, match="nsites"):
        write_meme(io.StringIO(), [("m", "", matrix, 0)], background_probabilities(0.0))


def test_load_jaspar_selection_and_cache(jaspar, ctcf):
    assert jaspar.release == "JASPAR2024" and jaspar.tax_group == "vertebrates"
    assert len(jaspar.ids) == len(jaspar.names) == len(jaspar.matrices) > 800
    assert jaspar.names[jaspar.ids.index(CTCF_ID)] == "CTCF"
    assert ctcf.shape == (15, 4)
    for matrix in jaspar.matrices:
        np.testing.assert_allclose(matrix.sum(axis=1), 1.0)
        assert not matrix.flags.writeable
    assert load_jaspar("JASPAR2024", "core", "Vertebrates") is jaspar  # normalised, cached


def test_load_jaspar_unknown_taxon_release_collection_raise():
    with pytest.raises(ValueError, match="tax_group 'mammals'.*vertebrates"):
        load_jaspar(tax_group="mammals")
    with pytest.raises(ValueError, match="release 'JASPAR1999'.*JASPAR2024"):
        load_jaspar(release="JASPAR1999")
    with pytest.raises(ValueError, match="collection 'NOPE'.*CORE"):
        load_jaspar(collection="NOPE")


def test_annotate_finds_ctcf_on_both_strands(jaspar, ctcf):
    rc = reverse_complement_matrix(ctcf)
    uniform = np.full((12, 4), 0.25)
    padded = np.concatenate([uniform[:3], ctcf, uniform[:2]])
    forward, reverse, core, core_rc, flanked, empty, nothing = annotate(
        [ctcf, rc, ctcf[3:13], rc[2:12], padded, np.zeros((0, 4)), uniform], jaspar)
    assert forward.id == CTCF_ID and forward.name == "CTCF"
    assert (forward.orientation, forward.offset) == ("+", 0) and forward.pvalue < 1e-20
    assert reverse.id == CTCF_ID and reverse.orientation == "-" and reverse.pvalue < 1e-20
    # a 10-column slice aligns at its position in the target (in the target's orientation)
    assert (core.id, core.orientation, core.offset) == (CTCF_ID, "+", 3)
    assert (core_rc.id, core_rc.orientation, core_rc.offset) == (CTCF_ID, "-", 2)
    # uninformative flanks are trimmed; the offset still counts in the query as given
    assert (flanked.id, flanked.orientation, flanked.offset) == (CTCF_ID, "+", -3)
    assert flanked.pvalue == forward.pvalue
    for no_match in (empty, nothing):  # nothing informative to match
        assert no_match.id == "" and np.isnan(no_match.pvalue) and no_match.orientation == ""


def test_annotate_threshold_and_input_checks(jaspar, ctcf):
    (match,) = annotate([ctcf[:6]], jaspar, max_pvalue=1.0, min_total_information=0)
    assert match.id  # the best target is always reported at max_pvalue=1
    (strict,) = annotate([ctcf[:6]], jaspar, max_pvalue=min(match.pvalue / 2, 1e-300), min_total_information=0)
    assert strict.id == ""
    # a weak query (6 CTCF columns: ~5.6 bits) gets no match by default: too little information
    assert annotate([ctcf[:6]], jaspar, max_pvalue=1.0)[0].id == ""
    assert annotate([], jaspar) == []
    with pytest.raises(ValueError, match="query motif 0"):
        annotate([ctcf * 10], jaspar)


def _noisy_ctcf_calls(ctcf, n, width, rng, concentration=20.0):
    """n width-bp windows: uniform flanks and a Dirichlet-noised CTCF at a random offset,
    reverse complemented for every second window. Returns (calls (n, width, 4), reversed (n,)
    bool, motif start within each call as given (n,))."""
    motif_width = len(ctcf)
    calls = np.full((n, width, 4), 0.25)
    starts = rng.integers(0, width - motif_width + 1, size=n)
    reversed_ = np.arange(n) % 2 == 1
    for i in range(n):
        noisy = np.array([rng.dirichlet(concentration * row + 0.1) for row in ctcf])
        calls[i, starts[i]:starts[i] + motif_width] = noisy
        if reversed_[i]:
            calls[i] = reverse_complement_matrix(calls[i])
    given_starts = np.where(reversed_, width - starts - motif_width, starts)
    return calls, reversed_, given_starts


def test_consensus_of_noisy_ctcf_calls_is_ctcf(jaspar, ctcf):
    rng = np.random.default_rng(7)
    width = 19
    calls, reversed_, given_starts = _noisy_ctcf_calls(ctcf, 40, width, rng)
    result = consensus(calls, rng.uniform(0.5, 1.5, size=40))
    assert result.n_aligned == 40
    assert 15 <= len(result.matrix) <= 19
    np.testing.assert_allclose(result.matrix.sum(axis=1), 1.0)

    (match,) = annotate([result.matrix], jaspar)
    print(f"consensus width {len(result.matrix)}: best JASPAR match {match}")
    assert match.id.startswith("MA0139.") and match.pvalue < 1e-4

    truth = np.where(reversed_, -1, 1)
    agreement = max(np.mean(result.orientations == truth), np.mean(result.orientations == -truth))
    assert agreement >= 0.9
    # the motif sits at one consensus column in every correctly turned call
    oriented_starts = np.where(result.orientations > 0, given_starts, width - given_starts - len(ctcf))
    motif_columns = result.offsets + oriented_starts
    assert np.bincount(motif_columns - motif_columns.min()).max() >= 0.9 * 40


def test_consensus_is_deterministic_and_caps_the_average(ctcf):
    calls, _, _ = _noisy_ctcf_calls(ctcf, 30, 19, np.random.default_rng(3))
    weights = np.arange(30, dtype=float)
    first = consensus(calls, weights, max_matrices=12)
    second = consensus(calls, weights, max_matrices=12)
    for a, b in zip(first, second):
        np.testing.assert_array_equal(a, b)
    assert first.n_aligned == 12
    assert first.orientations.shape == first.offsets.shape == (30,)
    assert set(first.orientations.tolist()) <= {-1, 1}
    # the lightest calls do not enter the average: changing them leaves the matrix alone
    changed = calls.copy()
    changed[:18] = np.random.default_rng(4).dirichlet(np.ones(4), size=(18, 19))
    np.testing.assert_array_equal(consensus(changed, weights, max_matrices=12).matrix, first.matrix)


def test_consensus_of_one_call_trims_its_flanks():
    call = np.full((10, 4), 0.25)
    call[3:6] = np.eye(4)[[0, 2, 3]]  # A G T
    result = consensus(call[None])
    np.testing.assert_array_equal(result.matrix, call[3:6])
    assert result.orientations.tolist() == [1] and result.offsets.tolist() == [-3]
    with pytest.raises(ValueError, match="weights"):
        consensus(call[None], np.array([0.0]))
    with pytest.raises(ValueError, match=r"\(n, w, 4\)"):
        consensus(call)
