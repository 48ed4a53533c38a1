"""Peak memory of a run against the number of intervals (issue: bounded memory).

Runs ``kipoi maxent sample`` in a fresh process per size on the shipped CTCF example model with
N random 101-bp intervals of the example genome (overlapping freely), tiny chains (the point is
the bookkeeping, not the sampling), every default writer on, and prints each run's peak RSS
(``ru_maxrss`` of that process) and wall time. Memory should stay flat as N grows: inputs are
read lazily, at most one chunk is in memory, parts stream to disk, and the writers stream over
the parts (only small per-input sort keys are held).

    python benchmarks/bench_memory.py                 # N = 1e3, 1e4, 1e5 (about 40 min)
    python benchmarks/bench_memory.py --sizes 1000,10000
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
EXAMPLE = REPO / "example_configs"


def write_bed(path: Path, n: int, seed: int = 0) -> None:
    import numpy as np

    sizes = dict(line.split("\t")[:2] for line in (EXAMPLE / "data" / "ctcf_genome.fa.fai").read_text().splitlines())
    rng = np.random.default_rng(seed)
    chroms = sorted(sizes)
    picks = rng.integers(0, len(chroms), n)
    with open(path, "w") as stream:
        for i, c in enumerate(picks):
            start = int(rng.integers(0, int(sizes[chroms[c]]) - 101))
            stream.write(f"{chroms[c]}\t{start}\t{start + 101}\tr{i}\n")


def child(n: int, outdir: str) -> None:
    """One run in this process; prints a JSON line with its peak RSS."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    from kipoi_maxent import cli

    bed = Path(outdir) / "intervals.bed"
    write_bed(bed, n)
    started = time.time()
    code = cli.main(["sample", str(EXAMPLE / "models" / "ctcf_cnn"), "--source", "dir", "--intervals", str(bed),
                     "--fasta", str(EXAMPLE / "data" / "ctcf_genome.fa"), "--beta", "50", "--mu", "0",
                     "--chains", "2", "--steps", "20", "--thin", "10", "--burnin", "0", "--chunk-size", "256", "--no-annotation",
                     "--quiet", "-o", str(Path(outdir) / "out")])
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"n": n, "exit": code, "peak_rss_mb": round(peak_mb, 1),
                      "seconds": round(time.time() - started, 1)}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="1000,10000,100000")
    parser.add_argument("--child", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--outdir", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.outdir)
        return
    print("intervals  peak RSS (MB)  wall (s)   [CTCF example model, 2 chains x 20 steps, all default writers]")
    for n in (int(s) for s in args.sizes.split(",")):
        with tempfile.TemporaryDirectory() as tmp:
            output = subprocess.run([sys.executable, __file__, "--child", str(n), "--outdir", tmp],
                                    capture_output=True, text=True, check=True).stdout
            result = json.loads(output.strip().splitlines()[-1])
        print(f"{n:>9d}  {result['peak_rss_mb']:>13.0f}  {result['seconds']:>8.0f}", flush=True)


if __name__ == "__main__":
    main()
