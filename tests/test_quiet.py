"""What a user sees on stderr (issue 13): only the product's own lines, through every entry point;
bad input is one line, exit code 2, before any deep-learning framework is imported."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
EXAMPLE = REPO / "example_configs"
GENOME = EXAMPLE / "data" / "ctcf_genome.fa"
MODEL = [str(EXAMPLE / "models" / "ctcf_cnn"), "--source", "dir"]
BIN = Path(sys.executable).parent
#: The environment of a user's shell: nothing set to quieten TensorFlow or Python.
ENV = {key: value for key, value in os.environ.items()
       if key not in ("TF_CPP_MIN_LOG_LEVEL", "PYTHONWARNINGS", "KIPOI_MAXENT_VERBOSE")}
SMALL = ["--beta", "50", "--mu", "0", "--chains", "4", "--steps", "400", "--thin", "10", "--no-annotation"]


@pytest.fixture(scope="module")
def two_peaks(tmp_path_factory) -> Path:
    bed = tmp_path_factory.mktemp("peaks") / "peaks.bed"
    bed.write_text("".join((EXAMPLE / "data" / "ctcf_peaks.bed").read_text().splitlines(True)[:2]))
    return bed


def run(*args, env=ENV):
    return subprocess.run([str(a) for a in args], capture_output=True, text=True, env=env, cwd=REPO)


@pytest.mark.parametrize("entry", [["kipoi", "maxent"], ["kipoi", "postproc", "maxent"], ["kipoi-maxent"]])
def test_a_run_prints_only_its_own_lines(entry, two_peaks, tmp_path):
    result = run(BIN / entry[0], *entry[1:], "sample", *MODEL, "--intervals", two_peaks, "--fasta", GENOME, *SMALL,
                 "-o", tmp_path / "out")
    assert result.returncode == 0, result.stderr
    lines = result.stderr.splitlines()
    assert lines and all(line.startswith("kipoi-maxent: ") for line in lines), result.stderr
    assert "\r" not in result.stderr and "\x1b" not in result.stderr  # not a terminal: plain lines
    assert result.stdout == ""  # Kipoi logs to stdout: nothing of it either
    said = "\n".join(lines)
    for expected in ("model ", "beta = 50", "wrote summary.tsv"):
        assert expected in said, said


def test_verbose_shows_the_frameworks_and_quiet_only_warnings(two_peaks, tmp_path):
    verbose = run(BIN / "kipoi-maxent", "sample", *MODEL, "--intervals", two_peaks, "--fasta", GENOME, *SMALL,
                  "--verbose", "-o", tmp_path / "verbose")
    assert verbose.returncode == 0
    assert any(not line.startswith("kipoi-maxent: ") for line in verbose.stderr.splitlines()), verbose.stderr
    quiet = run(BIN / "kipoi-maxent", "sample", *MODEL, "--intervals", two_peaks, "--fasta", GENOME, *SMALL,
                "--quiet", "-o", tmp_path / "quiet")
    assert quiet.returncode == 0
    assert all(line.startswith("kipoi-maxent: ") and "did not converge" in line
               for line in quiet.stderr.splitlines()), quiet.stderr


#: Python that runs the command line in-process, then says which frameworks it imported.
PROBE = ("import sys; from kipoi_maxent.cli import main; code = main(sys.argv[1:]); "
         "print(sorted(m for m in ('tensorflow', 'keras', 'torch') if m in sys.modules)); sys.exit(code)")


def bad_cases(tmp_path: Path, peaks: Path) -> dict:
    """The README's bad-input cases that need no unprivileged user: name -> extra arguments."""
    bad_bed = tmp_path / "bad.bed"
    bad_bed.write_text(peaks.read_text() + "chrA\tabc\t3000\tx\n")
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "thesis.tex").write_text("mine\n")
    spec = tmp_path / "spec.yaml"
    spec.write_text("penultimate_layer: [unclosed\n")
    good = ["--intervals", str(peaks), "--fasta", str(GENOME)]
    return {
        "malformed BED": ["--intervals", str(bad_bed), "--fasta", str(GENOME)],
        "chromosome not in the FASTA": ["--intervals", str(peaks), "--fasta", str(EXAMPLE / "data" /
                                                                                   "yeast_genome.fa")],
        "FASTA missing": ["--intervals", str(peaks), "--fasta", str(tmp_path / "none.fa")],
        "beta <= 0": [*good, "--beta", "100,-1"],
        "thin > steps": [*good, "--steps", "20", "--thin", "50"],
        "GC fraction out of range": [*good, "--gc-fraction", "1.5"],
        "spec not YAML": [*good, "--spec", str(spec)],
        "foreign output directory": [*good, "-o", str(foreign)],
    }


def test_bad_input_is_one_line_and_imports_no_framework(two_peaks, tmp_path):
    for case, args in bad_cases(tmp_path, two_peaks).items():
        output = [] if "-o" in args else ["-o", str(tmp_path / "out")]
        result = run(sys.executable, "-c", PROBE, "sample", *MODEL, *args, *output)
        assert result.returncode == 2, (case, result.stderr)
        lines = result.stderr.splitlines()
        assert len(lines) == 1 and lines[0].startswith("kipoi-maxent sample: error: "), (case, result.stderr)
        assert json.loads(result.stdout.replace("'", '"')) == [], (case, result.stdout)
        assert not (tmp_path / "out").exists(), case


def test_bad_input_through_kipoi_is_one_line(two_peaks, tmp_path):
    bad = tmp_path / "bad.bed"
    bad.write_text(two_peaks.read_text() + "chrA\tabc\t3000\tx\n")
    result = run(BIN / "kipoi", "maxent", "sample", *MODEL, "--intervals", bad, "--fasta", GENOME,
                 "-o", tmp_path / "out")
    assert result.returncode == 2
    assert result.stderr.splitlines() == [
        f"kipoi maxent sample: error: {bad}, line 3: malformed BED line: start 'abc' is not an integer; BED lines "
        "need tab-separated chrom, start, end (0-based integers)"]
    assert result.stdout == ""
