"""Wall time of the README's bad-input cases through the real `kipoi-maxent` and `kipoi` scripts.

Every check of inputs, options and the output directory runs before TensorFlow or PyTorch is
imported, so a bad input should fail within a second or two (target: < 2 s each on a 2-core
machine). Each case is run ``--repeats`` times; the median wall time is printed, with the exit
code and the one line of stderr.

    python benchmarks/bench_bad_input.py [--repeats 3]
"""
from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
EXAMPLE = REPO / "example_configs"
GENOME = EXAMPLE / "data" / "ctcf_genome.fa"
BIN = Path(sys.executable).parent
MODEL = [str(EXAMPLE / "models" / "ctcf_cnn"), "--source", "dir"]


def cases(directory: Path) -> dict[str, list[str]]:
    peaks = directory / "peaks.bed"
    peaks.write_text("".join((EXAMPLE / "data" / "ctcf_peaks.bed").read_text().splitlines(True)[:2]))
    bad_bed = directory / "bad.bed"
    bad_bed.write_text(peaks.read_text() + "chrA\tabc\t3000\tx\n")
    off = directory / "edge.bed"
    off.write_text("chrA\t19950\t20000\tedge\n")
    foreign = directory / "foreign"
    foreign.mkdir(exist_ok=True)
    (foreign / "thesis.tex").write_text("mine\n")
    spec = directory / "spec.yaml"
    spec.write_text("penultimate_layer: [unclosed\n")
    good = ["--intervals", str(peaks), "--fasta", str(GENOME)]
    out = ["-o", str(directory / "out")]
    return {
        "BED line that is not an interval": ["--intervals", str(bad_bed), "--fasta", str(GENOME), *out],
        "interval off its chromosome": ["--intervals", str(off), "--fasta", str(GENOME), *out],
        "chromosome not in the FASTA": ["--intervals", str(peaks), "--fasta",
                                        str(EXAMPLE / "data" / "yeast_genome.fa"), *out],
        "FASTA missing": ["--intervals", str(peaks), "--fasta", str(directory / "none.fa"), *out],
        "beta <= 0": [*good, "--beta", "100,-1", *out],
        "--thin larger than --steps": [*good, "--steps", "20", "--thin", "50", *out],
        "GC fraction outside (0, 1)": [*good, "--gc-fraction", "1.5", *out],
        "spec that is not YAML": [*good, "--spec", str(spec), *out],
        "output directory not ours": [*good, "-o", str(foreign)],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    environment = {k: v for k, v in os.environ.items() if k not in ("TF_CPP_MIN_LOG_LEVEL", "PYTHONWARNINGS")}
    with tempfile.TemporaryDirectory() as temporary:
        print(f"{'case':36s} {'script':14s} {'median s':>9s}  exit  stderr")
        for case, arguments in cases(Path(temporary)).items():
            for script in (["kipoi-maxent"], ["kipoi", "maxent"]):
                times, result = [], None
                for _ in range(args.repeats):
                    started = time.perf_counter()
                    result = subprocess.run([str(BIN / script[0]), *script[1:], "sample", *MODEL, *arguments],
                                            capture_output=True, text=True, env=environment)
                    times.append(time.perf_counter() - started)
                lines = result.stderr.splitlines()
                shown = lines[0][:90] + ("…" if len(lines[0]) > 90 else "") if len(lines) == 1 else f"{len(lines)} lines!"
                print(f"{case:36s} {' '.join(script):14s} {statistics.median(times):9.2f}  {result.returncode:4d}  {shown}")


if __name__ == "__main__":
    main()
