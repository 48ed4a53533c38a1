"""Shared helpers for the CTCF example: JASPAR motif sampling, random DNA,
dinucleotide shuffling and one-hot encoding.

Used by ``example_configs/models/ctcf_cnn/train.py`` (training data) and
``example_configs/data/make_ctcf_genome.py`` (synthetic genome), so both draw
motif instances the same way. Only numpy (and pyjaspar, for the matrix) is
needed. Import it by path, e.g.::

    spec = importlib.util.spec_from_file_location("ctcf_motif", path)
    ctcf_motif = importlib.util.module_from_spec(spec); spec.loader.exec_module(ctcf_motif)
"""
from collections import Counter

import numpy as np

ALPHABET = "ACGT"
JASPAR_RELEASE = "JASPAR2024"
CTCF_MATRIX_ID = "MA0139"
PSEUDOCOUNT = 1.0  # added to every cell of the count matrix (columns sum to ~913)

_COMPLEMENT = str.maketrans("ACGTNacgtn", "TGCANtgcan")


def load_ctcf_counts(release=JASPAR_RELEASE, matrix_id=CTCF_MATRIX_ID):
    """Return ``(counts, versioned_id)``; ``counts`` has shape (L, 4), columns A, C, G, T."""
    from pyjaspar import jaspardb

    motif = jaspardb(release=release).fetch_motif_by_id(matrix_id)
    counts = np.array([list(motif.counts[b]) for b in ALPHABET], dtype=float).T
    return counts, motif.matrix_id


def column_probabilities(counts, pseudocount=PSEUDOCOUNT):
    """Per-position base probabilities (L, 4) from a count matrix plus a pseudocount."""
    c = np.asarray(counts, dtype=float) + pseudocount
    return c / c.sum(axis=1, keepdims=True)


def reverse_complement(seq):
    return seq.translate(_COMPLEMENT)[::-1]


def sample_instance(probs, rng):
    """One motif instance (forward strand), each position drawn from its column."""
    u = rng.random(len(probs))
    idx = (u[:, None] > np.cumsum(probs, axis=1)).sum(axis=1)
    idx = np.minimum(idx, 3)
    return "".join(ALPHABET[i] for i in idx)


def random_sequence(length, rng):
    """i.i.d. uniform ACGT (50 % GC)."""
    return "".join(ALPHABET[i] for i in rng.integers(0, 4, size=length))


def dinucleotide_shuffle(seq, rng):
    """Altschul-Erickson dinucleotide shuffle (random Eulerian path).

    Returns a uniformly random sequence with exactly the same first letter,
    last letter and dinucleotide (overlapping 2-mer) counts as ``seq``.
    """
    n = len(seq)
    if n <= 2:
        return seq
    first, last = seq[0], seq[-1]
    # out-edges of every letter, in sequence order
    edges = {}
    for a, b in zip(seq[:-1], seq[1:]):
        edges.setdefault(a, []).append(b)
    vertices = sorted(edges)

    # 1. pick a random "last exit" edge for each vertex != last so that the
    #    last-exit edges form a spanning arborescence rooted at `last`
    while True:
        last_exit = {}
        for v in vertices:
            if v != last:
                last_exit[v] = edges[v][rng.integers(len(edges[v]))]
        ok = True
        for v in last_exit:
            seen = {v}
            u = v
            while u != last:
                u = last_exit[u]
                if u in seen:
                    ok = False
                    break
                seen.add(u)
            if not ok:
                break
        if ok:
            break

    # 2. shuffle the remaining edges of every vertex; the last-exit edge goes last
    order = {}
    for v in vertices:
        e = list(edges[v])
        if v in last_exit:
            e.remove(last_exit[v])
            perm = rng.permutation(len(e))
            order[v] = [e[i] for i in perm] + [last_exit[v]]
        else:
            perm = rng.permutation(len(e))
            order[v] = [e[i] for i in perm]

    # 3. walk the Eulerian path from the first letter
    pos = {v: 0 for v in vertices}
    out = [first]
    u = first
    for _ in range(n - 1):
        nxt = order[u][pos[u]]
        pos[u] += 1
        out.append(nxt)
        u = nxt
    return "".join(out)


def dinucleotide_counts(seq):
    return Counter(seq[i:i + 2] for i in range(len(seq) - 1))


def one_hot(seqs, alphabet=ALPHABET, dtype=np.float32):
    """(n, L, 4) one-hot of equal-length sequences; letters outside alphabet -> zeros."""
    seqs = [s.upper() for s in seqs]
    lut = np.full(256, -1, dtype=np.int64)
    for i, b in enumerate(alphabet):
        lut[ord(b)] = i
    codes = np.array([np.frombuffer(s.encode("ascii"), dtype=np.uint8) for s in seqs])
    idx = lut[codes]
    out = np.zeros(idx.shape + (len(alphabet),), dtype=dtype)
    mask = idx >= 0
    out[mask, idx[mask]] = 1
    return out
