"""Generate the small synthetic CTCF example genome and its BED files (seeded, reproducible).

Writes, next to this script:

* ``ctcf_genome.fa`` (+ ``ctcf_genome.fa.fai`` via pyfaidx): chrA, chrB, chrC of
  i.i.d. uniform random sequence with 12 CTCF instances planted (4 per chromosome,
  6 per strand), each sampled from JASPAR2024 MA0139.2 column probabilities
  (+1 pseudocount; same code as the model's training data, ``../ctcf_motif.py``).
  Three lowercase (soft-masked) stretches, one of them covering site_6 and its
  whole peak window, and one 150-bp run of N on chrC, >= 2 kb from any site.
* ``ctcf_sites.bed``: BED6 of the planted instances (exact 15-bp motif
  coordinates, 0-based half-open; strand = strand of the motif).
* ``ctcf_peaks.bed``: BED4, one "peak" per site, lengths 60-300 bp, centre offset
  from the site centre by -30..+30 bp, so that after kipoiseq's centre resize to
  101 bp the motif sits at different positions, always fully inside the window.

Run:  python example_configs/data/make_ctcf_genome.py
"""
import importlib.util
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
SEED = 1139
CHROMS = {"chrA": 20000, "chrB": 21000, "chrC": 19000}
SITES_PER_CHROM = 4
WINDOW = 101
N_RUN = ("chrC", 150)  # chromosome, length
LINE_WIDTH = 60


def _load_ctcf_motif():
    path = HERE.parent / "ctcf_motif.py"
    spec = importlib.util.spec_from_file_location("ctcf_motif", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


cm = _load_ctcf_motif()


def resized_window(start, end, width=WINDOW):
    """kipoiseq.transforms.functional.resize_interval(..., anchor='center')."""
    center = int((start + end) / 2)
    return center - width // 2, center + width // 2 + width % 2


def main():
    rng = np.random.default_rng(SEED)
    counts, matrix_id = cm.load_ctcf_counts(cm.JASPAR_RELEASE, cm.CTCF_MATRIX_ID)
    probs = cm.column_probabilities(counts, cm.PSEUDOCOUNT)
    L = len(probs)

    seqs = {c: list(cm.random_sequence(n, rng)) for c, n in CHROMS.items()}

    # site positions: one per equal-width bin of each chromosome, away from the bin edges
    sites = []
    for c, n in CHROMS.items():
        bin_w = n // SITES_PER_CHROM
        for b in range(SITES_PER_CHROM):
            sites.append((c, b * bin_w + int(rng.integers(1000, bin_w - 1000))))
    n_sites = len(sites)
    strands = rng.permutation(["+"] * (n_sites // 2) + ["-"] * (n_sites - n_sites // 2))
    offsets = rng.permutation(np.round(np.linspace(-30, 30, n_sites)).astype(int))
    lengths = rng.integers(60, 301, size=n_sites)

    site_rows, peak_rows, table = [], [], []
    for i, ((c, s), strand, d, plen) in enumerate(zip(sites, strands, offsets, lengths), 1):
        inst = cm.sample_instance(probs, rng)
        planted = inst if strand == "+" else cm.reverse_complement(inst)
        seqs[c][s:s + L] = planted
        site_rows.append((c, s, s + L, f"site_{i}", 0, strand))
        # peak centre = site centre + d
        p_start = int(round(s + L / 2 + d - plen / 2))
        p_end = p_start + int(plen)
        w0, w1 = resized_window(p_start, p_end)
        assert w0 <= s and s + L <= w1, (i, w0, w1, s)
        peak_rows.append((c, p_start, p_end, f"peak_{i}"))
        table.append((f"site_{i}", c, s, strand, inst, f"peak_{i}", int(plen), int(d), s - w0))

    # soft-masked stretches (lowercase): one covering site_6's peak window, two elsewhere
    c6, s6 = sites[5]
    w0, w1 = resized_window(*peak_rows[5][1:3])
    masks = [(c6, min(w0, peak_rows[5][1]) - 120, max(w1, peak_rows[5][2]) + 80)]
    for c in ("chrA", "chrC"):
        site_pos = [s for cc, s in sites if cc == c]
        while True:
            a = int(rng.integers(500, CHROMS[c] - 1500))
            b = a + int(rng.integers(300, 900))
            if all(b + 500 < s or a > s + L + 500 for s in site_pos):
                break
        masks.append((c, a, b))
    for c, a, b in masks:
        seqs[c][a:b] = [x.lower() for x in seqs[c][a:b]]

    # a run of N on chrC, >= 2 kb from every site and from the soft-masked stretches
    c, n_len = N_RUN
    busy = [(s, s + L) for cc, s in sites if cc == c] + [(a, b) for cc, a, b in masks if cc == c]
    for a in range(1000, CHROMS[c] - 1000 - n_len, 50):
        if all(a + n_len + 2000 <= lo or a >= hi + 2000 for lo, hi in busy):
            break
    else:
        raise RuntimeError("no room for the N run")
    seqs[c][a:a + n_len] = ["N"] * n_len
    n_run = (c, a, a + n_len)

    fa = HERE / "ctcf_genome.fa"
    with open(fa, "w") as fh:
        for c, s in seqs.items():
            s = "".join(s)
            fh.write(f">{c}\n")
            for k in range(0, len(s), LINE_WIDTH):
                fh.write(s[k:k + LINE_WIDTH] + "\n")
    fai = Path(str(fa) + ".fai")
    if fai.exists():
        fai.unlink()
    import pyfaidx

    pyfaidx.Fasta(str(fa)).close()  # writes the .fai

    def write_bed(path, rows):
        rows = sorted(rows, key=lambda r: (r[0], r[1], r[2]))
        with open(path, "w") as fh:
            for r in rows:
                fh.write("\t".join(str(x) for x in r) + "\n")

    write_bed(HERE / "ctcf_sites.bed", site_rows)
    write_bed(HERE / "ctcf_peaks.bed", peak_rows)

    print(f"matrix {matrix_id}; soft-masked {masks}; N run {n_run}")
    print("site\tchrom\tstart\tstrand\tinstance(+ of motif)\tpeak\tlen\toffset\tmotif_pos_in_101bp")
    for row in table:
        print("\t".join(str(x) for x in row))
    return table, masks, n_run


if __name__ == "__main__":
    main()
