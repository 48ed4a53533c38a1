"""Motifs of the motif calls (METHOD §4): PWMs, MEME files, JASPAR annotation, consensus.

Every motif is a ``(w, 4)`` float64 array of base probabilities in :data:`ALPHABET` order
(A, C, G, T), one row per position, rows summing to 1.

- :func:`call_matrix`: the PWM of a motif call, from the sample frequencies of its window;
- :func:`write_meme` / :func:`read_meme`: MEME minimal format (version 4);
- :func:`load_jaspar` / :func:`annotate`: best JASPAR match of each motif by TOMTOM p-value
  (memelite's numba TOMTOM, all queries in one call);
- :func:`consensus`: reverse-complement-aware alignment and average of many calls (the paper
  aligned its 19-bp CTCF calls with MUSCLE).

memelite (numba) and pyjaspar (Biopython) take about a second to import, so they are imported
only by the functions that use them.
"""
from __future__ import annotations

import functools
import math
from collections.abc import Iterable, Sequence
from typing import IO, NamedTuple

import numpy as np

from kipoi_maxent._validation import check_number
from kipoi_maxent.outputs import one_field
from kipoi_maxent.sequence import ALPHABET, background_probabilities
from kipoi_maxent.statistics import MotifCall, kl_divergence

#: Printed decimals of probabilities in MEME files: a round trip is exact to 5e-7.
MEME_DECIMALS = 6
#: How far rows of a probability matrix may sum from 1 (files printed with few decimals).
_ROW_SUM_TOLERANCE = 0.01


class MotifDatabase(NamedTuple):
    """Motifs of one JASPAR selection (:func:`load_jaspar`); ``matrices[i]`` is ``(w_i, 4)``
    float64, read-only, base probabilities in A, C, G, T order."""

    release: str
    collection: str
    tax_group: str | None
    ids: tuple[str, ...]
    names: tuple[str, ...]
    matrices: tuple[np.ndarray, ...]


class MotifMatch(NamedTuple):
    """Best database match of one query motif (:func:`annotate`).

    ``orientation`` is ``"+"`` when the query matches the target as stored and ``"-"`` when it
    matches the target's reverse complement. ``offset``: the column of the target (of its
    reverse complement for ``"-"``) aligned with the query's first column; negative when the
    query overhangs the target's start. No match: ``id == ""``, ``name == ""``,
    ``pvalue`` NaN, ``orientation == ""``, ``offset == 0``.
    """

    id: str
    name: str
    pvalue: float
    orientation: str
    offset: int


_NO_MATCH = MotifMatch("", "", math.nan, "", 0)


class Consensus(NamedTuple):
    """Alignment and average of many motif calls (:func:`consensus`).

    ``matrix``: ``(W, 4)`` float64 consensus (``W`` may be 0 if no column is informative).
    ``orientations``: ``(n,)`` int8, ``+1`` if call ``i`` is used as given, ``-1`` if its
    reverse complement is. ``offsets``: ``(n,)`` int64, the consensus column of the first
    column of the oriented call (may be negative or run past ``W`` after trimming).
    ``n_aligned``: how many calls the matrix averages (at most ``max_matrices``).
    """

    matrix: np.ndarray
    orientations: np.ndarray
    offsets: np.ndarray
    n_aligned: int


def reverse_complement_matrix(matrix: np.ndarray) -> np.ndarray:
    """Reverse complement of probability matrices: ``(..., w, 4)`` -> ``(..., w, 4)`` (a view).

    Positions are reversed and, because the alphabet is A, C, G, T, reversing the columns
    swaps A with T and C with G.
    """
    return np.asarray(matrix)[..., ::-1, ::-1]


def _probability_matrices(value, name: str, ndim: int) -> np.ndarray:
    """``value`` as a float64 array of ``ndim`` dimensions, last axis A, C, G, T, rows summing to 1."""
    shape = "(n, w, 4)" if ndim == 3 else "(w, 4)" if ndim == 2 else "(4,)"
    try:
        array = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a numeric array of shape {shape}") from None
    if array.ndim != ndim or array.shape[-1] != 4:
        raise ValueError(f"{name} must have shape {shape} (columns A, C, G, T), got {array.shape}")
    if not np.isfinite(array).all() or (array < 0).any():
        raise ValueError(f"{name} must hold finite, non-negative probabilities")
    if array.size and np.abs(array.sum(axis=-1) - 1).max() > _ROW_SUM_TOLERANCE:
        raise ValueError(f"{name} must be probabilities whose rows sum to 1 (not counts or "
                         f"log-odds); divide each row by its sum")
    return array


def call_matrix(frequencies: np.ndarray, call: MotifCall, *, pseudocount: float = 1e-3) -> np.ndarray:
    """The PWM of a motif call: the sample frequencies of its window, smoothed.

    Parameters
    ----------
    frequencies : np.ndarray, shape (L, 4), float
        Per-position base frequencies of one input
        (:func:`kipoi_maxent.statistics.nucleotide_frequencies`); rows sum to 1, or to 0 at
        unknown bases.
    call : MotifCall
        The window ``[start, end)`` (:func:`kipoi_maxent.statistics.motif_window`).
    pseudocount : float, default 1e-3
        Probability added to every base before renormalising, so that no base has
        probability 0 (log-odds scanners such as FIMO need that); a position unknown in the
        input (a row of zeros) becomes uniform. ``0`` keeps the frequencies as they are.

    Returns
    -------
    np.ndarray, shape (end - start, 4), float64
        Rows sum to 1.
    """
    frequencies = np.asarray(frequencies, dtype=np.float64)
    if frequencies.ndim != 2 or frequencies.shape[1] != 4:
        raise ValueError(f"frequencies must have shape (L, 4), got {frequencies.shape}")
    pseudocount = check_number(pseudocount, "pseudocount", minimum=0)
    start = check_number(call.start, "motif call start", integer=True, minimum=0,
                         maximum=len(frequencies) - 1, hint="the call must lie inside the input")
    check_number(call.end, "motif call end", integer=True, minimum=start + 1,
                 maximum=len(frequencies), hint="the call must lie inside the input")
    window = frequencies[start:call.end] + pseudocount
    totals = window.sum(axis=1, keepdims=True)
    if (totals == 0).any():
        raise ValueError("the motif call covers an unknown base (a row of zero frequencies); "
                         "use pseudocount > 0")
    return window / totals


def write_meme(stream: IO[str], motifs: Iterable[tuple[str, str, np.ndarray, int]],
               background: np.ndarray) -> None:
    """Write motifs in MEME minimal format (version 4, alphabet ACGT, both strands).

    Probabilities are printed with :data:`MEME_DECIMALS` decimals.

    Parameters
    ----------
    stream : text stream
        Open for writing; the caller opens it (e.g. with
        :func:`kipoi_maxent.outputs.atomic_path`) and may stream any number of motifs.
    motifs : iterable of (id, name, matrix (w, 4), nsites)
        ``id``: unique, non-empty; ``name``: free text (e.g. an interval name), may be
        empty. Whitespace in either becomes ``_`` (:func:`kipoi_maxent.outputs.one_field`). ``matrix``: base
        probabilities, A, C, G, T columns. ``nsites``: number of sequences behind the
        matrix (e.g. MCMC samples), an integer >= 1.
    background : np.ndarray, shape (4,)
        The run's background q (:func:`kipoi_maxent.sequence.background_probabilities`).

    Raises
    ------
    ValueError
        For an empty or repeated id (after replacing whitespace), or an invalid matrix,
        background or nsites; motifs before the bad one are already written.
    """
    background = _probability_matrices(background, "background", 1)
    stream.write(f"MEME version 4\n\nALPHABET= {ALPHABET}\n\nstrands: + -\n\n"
                 "Background letter frequencies\n"
                 + " ".join(f"{base} {p:.{MEME_DECIMALS}f}" for base, p in zip(ALPHABET, background))
                 + "\n\n")
    seen: set[str] = set()
    for motif_id, name, matrix, nsites in motifs:
        safe_id = one_field(motif_id)
        if not safe_id:
            raise ValueError(f"motif id {motif_id!r} is empty; give every motif an id")
        if safe_id in seen:
            raise ValueError(f"motif id {safe_id!r} is repeated (ids must be unique after "
                             f"replacing whitespace with '_')")
        seen.add(safe_id)
        matrix = _probability_matrices(matrix, f"matrix of motif {safe_id}", 2)
        nsites = check_number(nsites, f"nsites of motif {safe_id}", integer=True, minimum=1)
        title = " ".join(field for field in (safe_id, one_field(name)) if field)
        stream.write(f"MOTIF {title}\nletter-probability matrix: alength= 4 w= {len(matrix)} "
                     f"nsites= {nsites} E= 0\n")
        stream.writelines(" ".join(f"{p:.{MEME_DECIMALS}f}" for p in row) + "\n" for row in matrix)
        stream.write("\n")


def read_meme(path) -> dict[str, np.ndarray]:
    """Motifs of a MEME file (memelite's reader), keyed by motif id.

    Returns
    -------
    dict id -> np.ndarray, shape (w, 4), float64
        In file order; columns A, C, G, T.
    """
    from memelite.io import read_meme as memelite_read_meme

    try:
        by_title = memelite_read_meme(str(path))
    except (ValueError, IndexError, AttributeError) as error:
        raise ValueError(f"{path} is not a MEME file of ACGT motifs ({error})") from None
    motifs: dict[str, np.ndarray] = {}
    for title, matrix in by_title.items():
        motif_id = title.split()[0]
        if motif_id in motifs:
            raise ValueError(f"{path}: motif id {motif_id!r} is repeated")
        motifs[motif_id] = np.ascontiguousarray(matrix.T, dtype=np.float64)
    return motifs


def _jaspar_values(connection, sql: str) -> list[str]:
    """Sorted distinct values of one column of the JASPAR SQLite database pyjaspar ships
    (pyjaspar has no call that lists taxa or collections)."""
    return sorted(row[0] for row in connection.execute(sql) if row[0])


def load_jaspar(release: str = "JASPAR2024", collection: str = "CORE",
                tax_group: str | None = "vertebrates") -> MotifDatabase:
    """The latest version of every JASPAR matrix of a selection, from pyjaspar's bundled
    database (offline); cached per process.

    Parameters
    ----------
    release : str, default "JASPAR2024"
        A release pyjaspar ships (``JASPAR2014`` .. ``JASPAR2026`` for pyjaspar 4).
    collection : str, default "CORE"
    tax_group : str or None, default "vertebrates"
        Taxonomic supergroup (case-insensitive); ``None`` for all taxa.

    Returns
    -------
    MotifDatabase
        Matrices are the JASPAR counts divided by their column sums (no pseudocount, as in
        JASPAR's own MEME files).

    Raises
    ------
    ValueError
        For an unknown release, collection or taxon; the message lists the available ones.
    """
    from pyjaspar import jaspardb

    releases = jaspardb().get_releases()
    if release not in releases:
        raise ValueError(f"unknown JASPAR release {release!r}; available: {', '.join(releases)}")
    connection = jaspardb(release=release).conn
    collections = _jaspar_values(connection, "SELECT DISTINCT COLLECTION FROM MATRIX")
    if str(collection).upper() not in collections:
        raise ValueError(f"unknown JASPAR collection {collection!r} in {release}; available: "
                         f"{', '.join(collections)}")
    if tax_group is not None:
        taxa = _jaspar_values(connection, "SELECT DISTINCT VAL FROM MATRIX_ANNOTATION "
                                          "WHERE TAG = 'tax_group'")
        if str(tax_group).lower() not in taxa:
            raise ValueError(f"unknown JASPAR tax_group {tax_group!r} in {release}; available: "
                             f"{', '.join(taxa)}, or None for all taxa")
        tax_group = str(tax_group).lower()
    return _load_jaspar(release, str(collection).upper(), tax_group)


@functools.cache
def _load_jaspar(release: str, collection: str, tax_group: str | None) -> MotifDatabase:
    from pyjaspar import jaspardb

    records = jaspardb(release=release).fetch_motifs(collection=collection, tax_group=tax_group)
    matrices = []
    for record in records:
        counts = np.array([record.counts[base] for base in ALPHABET], dtype=np.float64).T
        matrix = counts / counts.sum(axis=1, keepdims=True)
        matrix.flags.writeable = False  # shared by every caller of the cache
        matrices.append(matrix)
    return MotifDatabase(release, collection, tax_group, tuple(r.matrix_id for r in records),
                         tuple(r.name for r in records), tuple(matrices))


def informative_span(matrix: np.ndarray, *, background: np.ndarray | None = None,
                     min_information: float = 0.25) -> tuple[int, int]:
    """Columns ``[first, last)`` of a motif without its uninformative flanks.

    Parameters
    ----------
    matrix : np.ndarray, shape (w, 4), float
        Base probabilities, A, C, G, T.
    background : np.ndarray, shape (4,), optional
        The background q; default uniform.
    min_information : float, default 0.25
        Flank columns with less KL divergence from the background (bits) are dropped;
        columns inside the span are kept whatever their information.

    Returns
    -------
    (first, last) : tuple of int
        ``(0, 0)`` if no column reaches ``min_information``.
    """
    matrix = _probability_matrices(matrix, "motif", 2)
    background = background_probabilities(0.0) if background is None else \
        _probability_matrices(background, "background", 1)
    min_information = check_number(min_information, "min_information", minimum=0)
    informative = np.flatnonzero(kl_divergence(matrix, background) >= min_information)
    return (int(informative[0]), int(informative[-1]) + 1) if len(informative) else (0, 0)


def annotate(matrices: Sequence[np.ndarray], database: MotifDatabase, *,
             max_pvalue: float = 1e-4, background: np.ndarray | None = None,
             min_information: float = 0.25, min_total_information: float = 8.0) -> list[MotifMatch]:
    """Best database match of each query motif by TOMTOM p-value (both strands).

    Uninformative flanks of each query are trimmed first (:func:`informative_span`):
    TOMTOM scores columns by Euclidean distance, so near-background columns match the
    near-uniform spacer columns of some JASPAR motifs (e.g. the CTCF spacers of MA1929 and
    MA1930) with tiny p-values: an untrimmed all-uniform 12-column query "matches" MA1930.2
    with p = 4e-16. All queries go to one :func:`memelite.tomtom` call (numba; thousands of
    queries against the ~900 JASPAR vertebrate motifs take about a second once compiled;
    the first call in a fresh environment compiles for about a minute and caches it).

    Parameters
    ----------
    matrices : sequence of np.ndarray, each shape (w_i, 4), float
        Query motifs, base probabilities (A, C, G, T); widths may differ. A query with no
        informative column gets no match.
    database : MotifDatabase
        Targets (:func:`load_jaspar`); TOMTOM's p-values use the target columns as their
        background, so use a full database (memelite warns below 25 targets).
    max_pvalue : float, default 1e-4
        A best match with a larger p-value counts as no match. The p-value is per target:
        against the 879 JASPAR2024 CORE vertebrate motifs, 1e-4 is an E-value of about 0.09
        for well-calibrated p-values (low-information queries get smaller p-values than
        they deserve, see above).
    background : np.ndarray, shape (4,), optional
        The background q for trimming; default uniform.
    min_information : float, default 0.25
        Flank columns below this KL from the background (bits) are trimmed; 0 keeps all.
    min_total_information : float, default 8.0
        Queries whose trimmed span carries less KL in total (bits; ≈ 4 fully fixed bases)
        get no match: weakly constrained calls (e.g. the diffuse signal of a nucleosome
        network) otherwise "match" long JASPAR motifs with tiny p-values.

    Returns
    -------
    list of MotifMatch, one per query, in query order
        Offsets count in the untrimmed query. Ties in p-value go to the first target in
        database order.
    """
    max_pvalue = check_number(max_pvalue, "max_pvalue", minimum=0, maximum=1)
    queries = [_probability_matrices(m, f"query motif {i}", 2) for i, m in enumerate(matrices)]
    spans = [informative_span(query, background=background, min_information=min_information)
             for query in queries]
    matches = [_NO_MATCH] * len(queries)
    min_total_information = check_number(min_total_information, "min_total_information", minimum=0)
    background_q = background_probabilities(0.0) if background is None else background
    searched = [i for i, (first, last) in enumerate(spans) if last > first
                and kl_divergence(queries[i][first:last], background_q).sum() >= min_total_information]
    if not searched or not database.matrices:
        return matches
    from memelite import tomtom

    # memelite takes (4, w) motifs; n_nearest=1 keeps only the best target per query.
    trimmed = [queries[i][slice(*spans[i])].T for i in searched]
    pvalues, _, offsets, _, strands, targets = tomtom(
        trimmed, [m.T for m in database.matrices], n_nearest=1)
    for row, i in enumerate(searched):
        pvalue = float(pvalues[row, 0])
        if pvalue <= max_pvalue:
            target = int(targets[row, 0])
            matches[i] = MotifMatch(database.ids[target], database.names[target], pvalue,
                                    "-" if strands[row, 0] else "+",
                                    int(offsets[row, 0]) - spans[i][0])
    return matches


def _align(oriented: np.ndarray, profile: np.ndarray, candidates: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Best (orientation index, frame start) of each call against a centred profile.

    ``oriented``: (2, m, w, 4) centred calls as given and reverse complemented;
    ``profile``: (F, 4) centred; ``candidates``: (2 * (F - w + 1), 2) (orientation, start)
    pairs in order of preference for ties. Score: sum over the call's columns of the dot
    product with the profile column under it (a covariance-like column similarity, ~0 for
    background columns).
    """
    width = oriented.shape[2]
    windows = np.lib.stride_tricks.sliding_window_view(profile, (width, 4))[:, 0]
    scores = np.einsum("sjb,onjb->nos", windows, oriented)
    best = np.argmax(scores[:, candidates[:, 0], candidates[:, 1]], axis=1)
    return candidates[best, 0], candidates[best, 1]


def _profile(oriented: np.ndarray, weights: np.ndarray, orientation: np.ndarray,
             start: np.ndarray, frame: int) -> np.ndarray:
    """Weighted mean of the centred oriented calls placed at their frame starts, ``(frame, 4)``;
    a call adds nothing (the background) where it does not reach."""
    width = oriented.shape[2]
    sums = np.zeros((frame, 4))
    placed = oriented[orientation, np.arange(len(start))] * weights[:, None, None]
    np.add.at(sums, start[:, None] + np.arange(width), placed)
    return sums / weights.sum()


def consensus(matrices: np.ndarray, weights: np.ndarray | None = None, *,
              background: np.ndarray | None = None, max_matrices: int = 1000,
              min_information: float = 0.25, max_rounds: int = 10) -> Consensus:
    """Align motif calls on either strand and average them into one consensus motif.

    The calls with the largest weights (at most ``max_matrices``) are aligned in a frame of
    ``3w - 2`` columns: the most informative call (largest summed KL from the background)
    seeds it at the centre; every call is then placed, as given or reverse complemented, at
    the frame start whose columns best match the current profile (score: sum over the
    call's columns of the dot product of call and profile columns, both minus the
    background); the profile is rebuilt as the weighted mean of the placed calls (a call
    counts as background where it does not reach), and the placement repeats until no call
    moves (or ``max_rounds``). Ties go to the shift nearest the centre, then to the call as
    given. Flanking columns with less than ``min_information`` bits of KL from the
    background are trimmed. Calls beyond ``max_matrices`` do not enter the average but are
    placed against the final profile. The consensus is then turned so that the larger
    weight of calls is used as given. Deterministic.

    Parameters
    ----------
    matrices : np.ndarray, shape (n, w, 4), float
        Motif calls (e.g. :func:`call_matrix` of each input), base probabilities A, C, G, T.
    weights : np.ndarray, shape (n,), float, optional
        Non-negative weights (e.g. the calls' motif scores); default: all 1.
    background : np.ndarray, shape (4,), optional
        The background q (strand-symmetric, as q always is); default uniform.
    max_matrices : int, default 1000
        At most this many calls, the heaviest (ties: the most informative, then the first),
        enter the average; bounds the cost at O(max_matrices * w^2) per round.
    min_information : float, default 0.25
        Flank columns below this KL from the background (bits) are trimmed.
    max_rounds : int, default 10
        At most this many placement rounds, the first against the seed alone; on the
        synthetic CTCF calls of the tests no call moves after the first.

    Returns
    -------
    Consensus
    """
    calls = _probability_matrices(matrices, "matrices", 3)
    n, width = calls.shape[:2]
    if n == 0 or width == 0:
        raise ValueError(f"consensus needs at least one call of width >= 1, got shape {calls.shape}")
    if weights is None:
        weights = np.ones(n)
    weights = np.asarray(weights, dtype=np.float64)
    if weights.shape != (n,) or not np.isfinite(weights).all() or (weights < 0).any() or weights.sum() == 0:
        raise ValueError(f"weights must be {n} finite, non-negative numbers, not all 0 "
                         f"(one per call), got shape {weights.shape}")
    background = background_probabilities(0.0) if background is None else \
        _probability_matrices(background, "background", 1)
    max_matrices = check_number(max_matrices, "max_matrices", integer=True, minimum=1)
    min_information = check_number(min_information, "min_information", minimum=0)
    max_rounds = check_number(max_rounds, "max_rounds", integer=True, minimum=1)

    information = kl_divergence(calls.reshape(-1, 4), background).reshape(n, width).sum(axis=1)
    ranked = np.lexsort((-information, -weights))  # last key first: weight, then information
    selected = ranked[:max_matrices]
    oriented = np.stack([calls, reverse_complement_matrix(calls)]) - background
    frame, centre = 3 * width - 2, width - 1
    starts = np.arange(2 * width - 1)
    order = np.lexsort((np.repeat([0, 1], len(starts)), np.tile(np.abs(starts - centre), 2)))
    candidates = np.stack([np.repeat([0, 1], len(starts)), np.tile(starts, 2)], axis=1)[order]

    used = oriented[:, selected]
    used_weights = weights[selected]
    seed = int(np.argmax(information[selected]))
    profile = _profile(used[:, seed:seed + 1], np.ones(1), np.zeros(1, int), np.array([centre]), frame)
    orientation = start = None
    for _ in range(max_rounds):
        new_orientation, new_start = _align(used, profile, candidates)
        moved = orientation is None or (new_orientation != orientation).any() or (new_start != start).any()
        orientation, start = new_orientation, new_start
        profile = _profile(used, used_weights, orientation, start, frame)
        if not moved:
            break

    all_orientation, all_start = _align(oriented, profile, candidates)
    all_orientation[selected], all_start[selected] = orientation, start
    matrix = profile + background
    first, last = informative_span(matrix, background=background, min_information=min_information)
    matrix = matrix[first:last]
    offsets = all_start - first
    signs = np.where(all_orientation == 0, 1, -1).astype(np.int8)
    # Turned by the averaged calls only, so calls beyond max_matrices cannot flip the matrix.
    if used_weights[orientation == 1].sum() > used_weights[orientation == 0].sum():
        matrix = reverse_complement_matrix(matrix)
        signs = -signs
        offsets = len(matrix) - (offsets + width)
    return Consensus(np.ascontiguousarray(matrix), signs, offsets.astype(np.int64),
                     int((used_weights > 0).sum()))
