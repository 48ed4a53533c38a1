"""DNA sequences as small integer codes: the one place for the alphabet and the GC set.

Internally every sequence is an ``int8`` array of codes ``0..3`` meaning ``A, C, G, T``
(:data:`ALPHABET`). Model-specific channel orders, layouts and normalisations are applied
at the edge by :mod:`kipoi_maxent.spec`.
"""
from __future__ import annotations

from typing import Iterable

import numpy as np

#: Internal alphabet; the code of a base is its index here.
ALPHABET = "ACGT"
#: Codes of the strong (G or C) bases: the set counted by N(x) in eq. (9).
GC_CODES = (1, 2)

_CODE_OF_BYTE = np.full(256, -1, dtype=np.int8)
for _code, _base in enumerate(ALPHABET):
    _CODE_OF_BYTE[ord(_base)] = _code
    _CODE_OF_BYTE[ord(_base.lower())] = _code


def encode(sequences: Iterable[str]) -> np.ndarray:
    """Integer-code equal-length DNA strings.

    Parameters
    ----------
    sequences : iterable of str
        ``n`` sequences of one length ``L``; lowercase (soft-masked) bases are accepted.

    Returns
    -------
    np.ndarray, shape (n, L), int8
        Codes ``0..3`` for ``A, C, G, T``; ``-1`` for anything else (``N``, IUPAC codes).
    """
    sequences = list(sequences)
    if not sequences:
        return np.zeros((0, 0), dtype=np.int8)
    lengths = {len(s) for s in sequences}
    if len(lengths) != 1:
        raise ValueError(f"sequences must all have one length, got lengths {sorted(lengths)}")
    raw = np.frombuffer("".join(sequences).encode("ascii", "replace"), dtype=np.uint8)
    return _CODE_OF_BYTE[raw].reshape(len(sequences), lengths.pop())


def decode(codes: np.ndarray) -> list[str]:
    """Inverse of :func:`encode`: ``(n, L)`` codes to ``n`` strings (``N`` for ``-1``)."""
    letters = np.frombuffer((ALPHABET + "N").encode(), dtype=np.uint8)
    codes = np.asarray(codes)
    chars = letters[np.where(codes < 0, 4, codes)]
    return [row.tobytes().decode() for row in np.atleast_2d(chars)]


def one_hot(codes: np.ndarray, dtype=np.float32) -> np.ndarray:
    """One-hot encode codes: ``(..., L)`` int -> ``(..., L, 4)`` in :data:`ALPHABET` order.

    Unknown bases (code ``-1``) become all-zero rows.
    """
    codes = np.asarray(codes)
    eye = np.vstack([np.eye(4, dtype=dtype), np.zeros((1, 4), dtype=dtype)])
    return eye[np.where(codes < 0, 4, codes)]


def gc_count(codes: np.ndarray) -> np.ndarray:
    """N(x): number of G or C bases per sequence, ``(..., L)`` -> ``(...)`` int32."""
    return np.isin(codes, GC_CODES).sum(axis=-1, dtype=np.int32)


def background_probabilities(mu: float) -> np.ndarray:
    """Single-site marginal of the unconstrained distribution q (METHOD §4).

    With chemical potential ``mu``: ``P(G) = P(C) = e^mu / (2 (1 + e^mu))`` and
    ``P(A) = P(T) = 1 / (2 (1 + e^mu))``; uniform when ``mu == 0``.

    Returns
    -------
    np.ndarray, shape (4,), float64, in :data:`ALPHABET` order.
    """
    gc = float(np.exp(-np.logaddexp(0.0, -float(mu))))  # e^mu / (1 + e^mu), overflow-free
    return np.array([(1 - gc) / 2, gc / 2, gc / 2, (1 - gc) / 2])



def dinucleotide_shuffle(codes: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A random sequence with the same dinucleotide counts as ``codes`` (Altschul & Erickson
    1985: a random Eulerian walk of its transitions, first and last base kept).

    Parameters
    ----------
    codes : np.ndarray, shape (L,), int
        Codes 0..3 (unknown bases, -1, stay where they are and split the walk).
    rng : np.random.Generator

    Returns
    -------
    np.ndarray, shape (L,), int8
    """
    codes = np.asarray(codes, dtype=np.int8)
    shuffled = codes.copy()
    known = np.flatnonzero(codes >= 0)
    if len(known) == 0:
        return shuffled
    # runs of consecutive known bases are shuffled separately
    for run in np.split(known, np.flatnonzero(np.diff(known) > 1) + 1):
        if len(run) > 2:
            shuffled[run] = _eulerian_shuffle(codes[run], rng)
    return shuffled


def _eulerian_shuffle(run: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    first, last = int(run[0]), int(run[-1])
    edges = {v: [int(b) for a, b in zip(run[:-1], run[1:]) if a == v] for v in range(4)}
    vertices = [v for v in range(4) if edges[v]]
    while True:  # random last edges forming a tree towards the final base (few tries at 4 vertices)
        last_edge = {v: int(rng.choice(edges[v])) for v in vertices if v != last}
        ok = True
        for v in last_edge:
            seen, at = set(), v
            while at != last and at not in seen:
                seen.add(at)
                at = last_edge.get(at, last)
            ok &= at == last
        if ok:
            break
    order = {}
    for v in vertices:
        rest = list(edges[v])
        if v in last_edge:
            rest.remove(last_edge[v])
        rng.shuffle(rest)
        order[v] = rest + ([last_edge[v]] if v in last_edge else [])
    walk, at = [first], first
    for _ in range(len(run) - 1):
        at = order[at].pop(0)
        walk.append(at)
    return np.array(walk, dtype=np.int8)
