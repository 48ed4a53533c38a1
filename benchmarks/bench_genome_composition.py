"""Throughput of :func:`kipoi_maxent.genome_composition.count_bases` on a large FASTA.

Writes a random FASTA of ``--size-mb`` megabytes (60-character lines, a few records, some
soft-masked lowercase and N runs) to a temporary directory, times ``count_bases`` (best of
``--repeats``; the file is in the page cache after writing, so this measures the CPU cost)
and prints MB/s (1 MB = 10**6 bytes of file).

Usage::

    python benchmarks/bench_genome_composition.py [--size-mb 100] [--repeats 3] [--gzip]
"""
from __future__ import annotations

import argparse
import gzip
import os
import sys
import tempfile
import time

import numpy as np

try:
    from kipoi_maxent.genome_composition import CHUNK_BYTES, count_bases
except ModuleNotFoundError:  # run from a checkout without installing the package
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    from kipoi_maxent.genome_composition import CHUNK_BYTES, count_bases

LINE_WIDTH = 60
TARGET_MB_S = 300.0


def write_random_fasta(path: str, size_bytes: int, n_records: int = 5, seed: int = 0) -> None:
    """Write a random FASTA of about ``size_bytes`` bytes.

    Parameters
    ----------
    path : str
        Output file.
    size_bytes : int
        Approximate file size, headers and newlines included.
    n_records : int
        Number of records of equal length.
    seed : int
        Random seed.
    """
    rng = np.random.default_rng(seed)
    alphabet = np.frombuffer(b"ACGT", dtype=np.uint8)
    per_record = size_bytes // n_records
    rows = per_record // (LINE_WIDTH + 1)
    with open(path, "wb") as fh:
        for r in range(n_records):
            fh.write(f">chr{r + 1} random benchmark record {r + 1} of {n_records}\n".encode())
            # AT-rich like yeast, so the printed GC fraction is a visible sanity check.
            seq = alphabet[rng.choice(4, size=rows * LINE_WIDTH, p=[0.31, 0.19, 0.19, 0.31])]
            # Soft-mask ~10 % and add N runs, in long stretches like a real assembly.
            for start in rng.integers(0, seq.size - 5000, size=200):
                seq[start : start + 5000] |= 0x20
            for start in rng.integers(0, seq.size - 1000, size=20):
                seq[start : start + 1000] = ord("N")
            lines = np.empty((rows, LINE_WIDTH + 1), dtype=np.uint8)
            lines[:, :LINE_WIDTH] = seq.reshape(rows, LINE_WIDTH)
            lines[:, LINE_WIDTH] = ord("\n")
            fh.write(lines.tobytes())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mb", type=float, default=100.0)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--gzip", action="store_true", help="also time a gzip copy (level 1)")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="bench_gc_") as tmp:
        path = os.path.join(tmp, "random.fa")
        t0 = time.perf_counter()
        write_random_fasta(path, int(args.size_mb * 1e6))
        size = os.path.getsize(path)
        print(f"wrote {size / 1e6:.1f} MB FASTA in {time.perf_counter() - t0:.1f} s "
              f"(chunk size {CHUNK_BYTES} bytes, {os.cpu_count()} CPUs)")

        files = [("plain", path)]
        if args.gzip:
            gz_path = path + ".gz"
            with open(path, "rb") as src, gzip.open(gz_path, "wb", compresslevel=1) as dst:
                while block := src.read(1 << 24):
                    dst.write(block)
            files.append(("gzip", gz_path))

        for label, fasta in files:
            times = []
            for _ in range(args.repeats):
                start = time.perf_counter()
                counts = count_bases(fasta)
                times.append(time.perf_counter() - start)
            best = min(times)
            rate = size / best / 1e6
            verdict = "OK" if rate >= TARGET_MB_S else f"BELOW {TARGET_MB_S:.0f} MB/s target"
            print(f"{label}: best of {args.repeats}: {best:.3f} s = {rate:.0f} MB/s "
                  f"(uncompressed bytes) [{verdict}]")
            print(f"  {counts}  GC fraction {counts.gc_fraction:.5f}")


if __name__ == "__main__":
    main()
