"""Bad input, one test per case (issue 6 §4, §6): each is a one-line error naming the problem and
the fix, exit code 2, no traceback, and no half-written output.

Most cases run ``kipoi_maxent.cli.main`` in this process (TensorFlow is imported once); a few
run the real ``kipoi-maxent`` script, or run as an unprivileged user (root reads any file).
"""
import ast
import contextlib
import gzip
import io
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import NamedTuple

import h5py
import numpy as np
import pytest
from test_inputs import NOBODY, unprivileged
from toy_models import write_fasta, write_kipoi_model_dir

from kipoi_maxent._validation import read_yaml
from kipoi_maxent.cli import main

REPO = Path(__file__).resolve().parent.parent
EXAMPLE = REPO / "example_configs"
GENOME = EXAMPLE / "data" / "ctcf_genome.fa"
MODEL = [str(EXAMPLE / "models" / "ctcf_cnn"), "--source", "dir"]
#: A tiny run: every case that gets as far as sampling stays fast.
RUN = ["--beta", "50", "--chains", "2", "--steps", "20", "--thin", "10", "--no-annotation", "--writers", "summary"]
#: Two example peaks (286 and 60 bp: both are resized to the model's 101 bp).
PEAKS = "".join((EXAMPLE / "data" / "ctcf_peaks.bed").read_text().splitlines(keepends=True)[:2])


class Run(NamedTuple):
    code: int
    stderr: str
    output: Path


def sample(output: Path, *args, quiet: bool = True, model=MODEL) -> Run:
    """``kipoi-maxent sample MODEL RUN ARGS -o OUTPUT`` in this process."""
    stderr = io.StringIO()
    with contextlib.redirect_stderr(stderr), contextlib.redirect_stdout(io.StringIO()):
        code = main(["sample", *model, *RUN, *(["--quiet"] if quiet else []), *map(str, args), "-o", str(output)])
    return Run(code, stderr.getvalue(), Path(output))


def error_line(run: Run) -> str:
    """The run's error: exit code 2, one line on stderr (besides TensorFlow's), no traceback."""
    lines = [line for line in run.stderr.splitlines() if line.strip()]
    assert run.code == 2, run.stderr
    assert "Traceback" not in run.stderr
    assert len(lines) == 1 and lines[0].startswith("kipoi-maxent sample: error: "), run.stderr
    return lines[0]


def final_outputs(output: Path) -> list[str]:
    """Files of the output directory other than ``.parts/`` (finished chunks of a run that failed midway) and
    the run lock."""
    if not output.exists():
        return []
    return sorted(p.name for p in output.iterdir() if p.name not in (".parts", ".kipoi_maxent.lock"))


def write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def write_bytes(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def read_summary(path: Path) -> list[dict]:
    lines = path.read_text().splitlines()
    return [dict(zip(lines[0].split("\t"), line.split("\t"))) for line in lines[1:]]


@pytest.fixture(scope="module")
def peaks_bed(tmp_path_factory) -> Path:
    return write(tmp_path_factory.mktemp("bed") / "peaks.bed", PEAKS)


@pytest.fixture(scope="module")
def baseline(tmp_path_factory, peaks_bed) -> Run:
    """A good run on the two peaks (not quiet: its log is checked too)."""
    run = sample(tmp_path_factory.mktemp("baseline") / "out", "--intervals", peaks_bed, "--fasta", GENOME, quiet=False)
    assert run.code == 0, run.stderr
    return run


# --------------------------------------------------------------------------------------------
# 1-4, 9, 10: the BED file


@pytest.mark.parametrize("line, message", [
    ("chrA\tabc\t3000\tx", "line 3: malformed BED line: start 'abc' is not an integer"),
    ("chrA\t3000\t2900\tx", "line 3: malformed BED line: end 2900 is before start 3000; swap them"),
    ("chrA\t-5\t90\tx", "line 3: malformed BED line: start -5 is negative"),
    ("chrA 3000 3100 x", "line 3: malformed BED line: 1 tab-separated field(s)"),
])
def test_malformed_bed_line_names_its_line(tmp_path, line, message):
    bed = write(tmp_path / "bad.bed", PEAKS + line + "\n")
    run = sample(tmp_path / "out", "--intervals", bed, "--fasta", GENOME)
    assert f"{bed}, {message}" in error_line(run)
    assert final_outputs(run.output) == []


def test_errors_through_the_console_script(tmp_path):
    """The real script: exit code 2, one line, no traceback."""
    bed = write(tmp_path / "bad.bed", PEAKS + "chrA\tabc\t3000\tx\n")
    result = subprocess.run(
        [Path(sys.executable).parent / "kipoi-maxent", "sample", *MODEL, "--intervals", bed, "--fasta", GENOME,
         *RUN, "--quiet", "-o", tmp_path / "out"],
        capture_output=True, text=True, env=os.environ)
    assert "line 3: malformed BED line: start 'abc' is not an integer" in error_line(
        Run(result.returncode, result.stderr, tmp_path / "out"))
    assert final_outputs(tmp_path / "out") == []


def test_input_errors_leave_nothing_and_a_fixed_rerun_needs_no_overwrite(tmp_path):
    bed = write(tmp_path / "peaks.bed", PEAKS + "chrA\tabc\t3000\tx\n")
    failed = sample(tmp_path / "out", "--intervals", bed, "--fasta", GENOME)
    assert failed.code == 2 and not failed.output.exists()  # not even .parts/ with a stale manifest
    empty = sample(tmp_path / "empty_out", "--intervals", write(tmp_path / "e.bed", "# nothing\n"), "--fasta", GENOME)
    assert "holds no intervals" in error_line(empty) and not empty.output.exists()
    write(bed, PEAKS)
    fixed = sample(tmp_path / "out", "--intervals", bed, "--fasta", GENOME)
    assert fixed.code == 0, fixed.stderr
    assert len(read_summary(fixed.output / "summary.tsv")) == 2


@pytest.mark.parametrize("chrom, hint", [
    ("chr1", "it has chrA, chrB, chrC; check that BED and FASTA use the same genome and chromosome names"),
    ("A", "it has chrA, chrB, chrC; the FASTA calls it 'chrA': rename the BED's chromosomes to match"),
])
def test_unknown_chromosome(tmp_path, chrom, hint):
    bed = write(tmp_path / "c.bed", PEAKS + f"{chrom}\t3000\t3100\tx\n")
    message = error_line(sample(tmp_path / "out", "--intervals", bed, "--fasta", GENOME))
    assert f"line 3: chromosome '{chrom}' (interval 'x') is not in FASTA {GENOME}: {hint}" in message


def test_interval_off_the_chromosome_after_resizing(tmp_path):
    """chrA is 20000 bp: a 10-bp interval at its end is 101 bp once resized, and runs off."""
    bed = write(tmp_path / "e.bed", "chrA\t19990\t20000\tedge\n")
    message = error_line(sample(tmp_path / "out", "--intervals", bed, "--fasta", GENOME))
    assert "line 1: interval 'edge', chrA:19945-20046 at the model's length 101 bp, runs off chrA (length 20000)" \
        in message and "drop it, or move its centre at least 51 bp from the chromosome's ends" in message
    assert final_outputs(tmp_path / "out") == []


@pytest.mark.parametrize("text", ["", "track name=peaks\n# a comment\nbrowser position chrA:1-100\n\n"])
def test_bed_without_intervals(tmp_path, text):
    bed = write(tmp_path / "empty.bed", text)
    run = sample(tmp_path / "out", "--intervals", bed, "--fasta", GENOME)
    assert re.search("empty|holds no intervals", error_line(run))
    assert final_outputs(run.output) == []


def test_wrong_length_intervals_are_resized_and_said_once(baseline):
    rows = read_summary(baseline.output / "summary.tsv")
    peaks = [line.split("\t") for line in PEAKS.splitlines()]
    for row, (chrom, start, end, name) in zip(rows, peaks):
        centre = (int(start) + int(end)) // 2
        assert (row["name"], row["chrom"], int(row["start"]), int(row["end"])) == (name, chrom, centre - 50, centre + 51)
    assert baseline.stderr.count("resized") == 1
    assert "resized 2 interval(s) around their centre to the model length 101 bp" in baseline.stderr


@pytest.mark.parametrize("lines, message", [
    ("chrA\t2970\t3256\tpeak_1\nchrB\t2056\t2350\tpeak_1\n",
     "line 2: interval name 'peak_1' is already used on line 1; names key summary.tsv"),
    ("chrA\t2970\t3256\nchrA\t2970\t3256\n", "line 2: interval chrA:2970-3256 repeats line 1; remove the duplicate"),
])
def test_duplicate_interval_names(tmp_path, lines, message):
    bed = write(tmp_path / "dup.bed", lines)
    run = sample(tmp_path / "out", "--intervals", bed, "--fasta", GENOME)
    assert message in error_line(run)
    assert final_outputs(run.output) == []


# --------------------------------------------------------------------------------------------
# 5-8: the FASTA file


def _ragged(path: Path) -> Path:
    """A FASTA whose record has a short line in the middle (no consistent index possible)."""
    return write(path, ">chrA\n" + "ACGT" * 15 + "\nAC\n" + "ACGT" * 40 + "\n")


@pytest.mark.parametrize("make, message", [
    (lambda d: d / "none.fa", "FASTA file not found: {path}"),
    (lambda d: d, "{path} is a directory, not a FASTA file"),
    (lambda d: write_bytes(d / "x.fa", bytes(range(256)) * 8), "{path} is not a FASTA file"),
    (lambda d: _ragged(d / "x.fa"), "cannot read FASTA {path}: Line length of fasta file is not consistent!"),
    (lambda d: write_bytes(d / "x.fa.gz", gzip.compress(GENOME.read_bytes())),
     "cannot read FASTA {path}: Compressed FASTA is only supported in BGZF format"),
])
def test_bad_fasta(tmp_path, peaks_bed, make, message):
    (tmp_path / "fa").mkdir()
    path = make(tmp_path / "fa")
    run = sample(tmp_path / "out", "--intervals", peaks_bed, "--fasta", path)
    assert message.format(path=path) in error_line(run)
    assert final_outputs(run.output) == []


def test_unreadable_fasta_and_read_only_genome_directory(baseline, peaks_bed):
    """Run as an unprivileged user (as root every file is readable and every directory writable):
    a FASTA without read permission is a clear error; a FASTA without index in a read-only
    directory works, its index built in the user cache, with the same results."""
    drop = unprivileged()
    with tempfile.TemporaryDirectory() as work:  # tmp_path is private to root
        work = Path(work)
        os.chmod(work, 0o777)
        shutil.copy(GENOME, work / "locked.fa")
        os.chmod(work / "locked.fa", 0o000)
        (work / "genome").mkdir()
        shutil.copy(GENOME, work / "genome" / "genome.fa")  # no .fai beside it
        os.chmod(work / "genome", 0o555)
        shutil.copy(peaks_bed, work / "peaks.bed")
        os.chmod(work / "peaks.bed", 0o644)
        if os.geteuid() == 0:
            os.chown(work, NOBODY, NOBODY)
        script = (
            "import contextlib, io, json, sys\n"
            "from kipoi_maxent.cli import main\n"
            "results = {}\n"
            "for fasta in ('locked.fa', 'genome/genome.fa'):\n"
            "    stderr = io.StringIO()\n"
            "    with contextlib.redirect_stderr(stderr):\n"
            f"        code = main(['sample', *{MODEL!r}, *{RUN!r}, '--quiet', '--intervals', 'peaks.bed',\n"
            "                     '--fasta', fasta, '-o', 'out_' + fasta.replace('/', '_')])\n"
            "    results[fasta] = [code, stderr.getvalue()]\n"
            "print(json.dumps(results))\n")
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(work), "XDG_CACHE_HOME": str(work / "cache"),
               "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONWARNINGS": "ignore", "CUDA_VISIBLE_DEVICES": ""}
        result = subprocess.run([*drop, sys.executable, "-c", script], capture_output=True, text=True, cwd=work, env=env)
        assert result.returncode == 0, result.stderr[-3000:]
        results = json.loads(result.stdout.splitlines()[-1])

        code, stderr = results["locked.fa"]
        assert f"cannot read FASTA file {work / 'locked.fa'}: permission denied; make it readable" in error_line(
            Run(code, stderr, work / "out_locked.fa"))
        assert final_outputs(work / "out_locked.fa") == []

        code, stderr = results["genome/genome.fa"]
        assert code == 0, stderr
        assert not (work / "genome" / "genome.fa.fai").exists()
        assert len(list((work / "cache" / "kipoi_maxent").glob("*.fai"))) == 1
        assert read_summary(work / "out_genome_genome.fa" / "summary.tsv") == read_summary(baseline.output / "summary.tsv")


def test_n_bases_stay_fixed_and_an_all_n_interval_is_skipped(tmp_path):
    """Positions of N have no importance (NaN in frequencies.h5, no bedGraph value); an
    interval of only N has nothing to sample: it is skipped with a warning naming it."""
    sequence = GENOME.read_text().split(">chrB")[0].split("\n", 1)[1].replace("\n", "")  # chrA
    partly, only_n = (3000, 3101), (6000, 6101)
    with_n = sequence[:3040] + "N" * 10 + sequence[3050:6000] + "N" * 101 + sequence[6101:]
    fasta = write_fasta(tmp_path / "genome.fa", {"chrA": with_n}, width=60)
    bed = write(tmp_path / "n.bed", f"chrA\t{partly[0]}\t{partly[1]}\tpartly_n\nchrA\t{only_n[0]}\t{only_n[1]}\tonly_n\n"
                                    "chrA\t8000\t8101\tno_n\n")
    run = sample(tmp_path / "out", "--intervals", bed, "--fasta", fasta, "--writers", "summary,frequencies,importance")
    assert run.code == 0, run.stderr
    assert "skipping input 'only_n' (chrA:6000-6101): it has only unknown bases (N), nothing to sample" in run.stderr
    assert [row["name"] for row in read_summary(run.output / "summary.tsv")] == ["partly_n", "no_n"]
    with h5py.File(run.output / "frequencies.h5") as h5:
        importance = h5["importance"][0]
    unknown = np.zeros(101, bool)
    unknown[40:50] = True
    assert np.isnan(importance[unknown]).all() and np.isfinite(importance[~unknown]).all()
    graph = [line.split("\t") for line in (run.output / "importance.bedGraph").read_text().splitlines()[1:]]
    covered = {p for _, s, e, _ in graph for p in range(int(s), int(e))}
    assert covered.isdisjoint(range(3040, 3050)) and {3039, 3050} <= covered


def test_soft_masked_fasta_gives_the_uppercase_results(tmp_path, baseline, peaks_bed):
    lower = write(tmp_path / "lower.fa", "".join(line if line.startswith(">") else line.lower()
                                                 for line in GENOME.read_text().splitlines(keepends=True)))
    run = sample(tmp_path / "out", "--intervals", peaks_bed, "--fasta", lower)
    assert run.code == 0, run.stderr
    assert read_summary(run.output / "summary.tsv") == read_summary(baseline.output / "summary.tsv")


# --------------------------------------------------------------------------------------------
# 11: the model spec


def spec_file(tmp_path: Path, old: str, new: str) -> Path:
    text = (REPO / "model_specs" / "ctcf_cnn.yaml").read_text()
    assert old in text
    return write(tmp_path / "spec.yaml", text.replace(old, new))


def test_spec_unknown_layer_lists_the_layers(tmp_path, peaks_bed):
    spec = spec_file(tmp_path, "penultimate_layer: dense_hidden", "penultimate_layer: dense_hiden")
    message = error_line(sample(tmp_path / "out", "--intervals", peaks_bed, "--fasta", GENOME, "--spec", spec))
    assert "penultimate_layer 'dense_hiden' is not a layer of model" in message
    assert "available layers: seq, conv, flatten, dense_hidden, dropout, output" in message


def test_spec_output_unit_out_of_range(tmp_path, peaks_bed):
    spec = spec_file(tmp_path, "output_units: [1, 0]", "output_units: [2, 0]")
    message = error_line(sample(tmp_path / "out", "--intervals", peaks_bed, "--fasta", GENOME, "--spec", spec))
    assert "output unit 2 is out of range: the output layer has 2 unit(s) (valid: 0..1)" in message


def test_spec_layout_not_matching_the_model(tmp_path, peaks_bed):
    spec = spec_file(tmp_path, "layout: (L, 4)", "layout: (4, L)")
    message = error_line(sample(tmp_path / "out", "--intervals", peaks_bed, "--fasta", GENOME, "--spec", spec))
    assert "input.layout (4, L) does not match the model's input shape (101, 4)" in message


# --------------------------------------------------------------------------------------------
# 12: sampler options (all checked before the model is loaded)


@pytest.mark.parametrize("args, message", [
    (["--beta", "0"], "beta must be > 0, got '0'"),
    (["--beta", "-2"], "beta must be > 0, got '-2'"),
    (["--beta", "100,-1"], "beta must be > 0, got '-1'"),
    (["--gc-fraction", "0"], "gc_fraction must be strictly between 0 and 1, got 0"),
    (["--gc-fraction", "1"], "gc_fraction must be strictly between 0 and 1, got 1"),
    (["--gc-fraction", "1.5"], "gc_fraction must be strictly between 0 and 1, got 1.5"),
    (["--steps", "20", "--thin", "50"], "no sample would be kept: burnin (10) + thin (50) exceeds steps (20); "
                                        "raise --steps or lower --thin/--burnin"),
])
def test_sampler_options(tmp_path, peaks_bed, args, message):
    run = sample(tmp_path / "out", "--intervals", peaks_bed, "--fasta", GENOME, *args)
    assert message in error_line(run)
    assert not run.output.exists()


# --------------------------------------------------------------------------------------------
# 13: non-finite activations


LENGTH = 5


def nan_model_dir(directory: Path, layer: str) -> Path:
    """Flatten -> Dense(3, linear, 'hidden') -> Dense(2, softmax, 'output'), with NaN weights in ``layer``."""
    import keras

    keras.utils.set_random_seed(0)
    inputs = keras.Input((LENGTH, 4), name="seq")
    hidden = keras.layers.Dense(3, name="hidden")(keras.layers.Flatten(name="flatten")(inputs))
    model = keras.Model(inputs, keras.layers.Dense(2, activation="softmax", name="output")(hidden))
    kernel, bias = model.get_layer(layer).get_weights()
    model.get_layer(layer).set_weights([np.full_like(kernel, np.nan), bias])
    return write_kipoi_model_dir(directory, model)


def run_toy(tmp_path: Path, model_dir: Path) -> Run:
    sequences = write_fasta(tmp_path / "seqs.fa", {"s1": "ACGTA", "s2": "GGCCA"})
    return sample(tmp_path / "out", "--sequences", sequences, "--motif-width", "3", "--beta", "1", "--mu", "0",
                  model=[str(model_dir), "--source", "dir"])


def test_nan_activations(tmp_path):
    run = run_toy(tmp_path, nan_model_dir(tmp_path / "model", "hidden"))
    assert "the network produced non-finite penultimate activations (NaN or inf); check the input normalisation " \
           "in the spec and the model weights" in error_line(run)
    assert final_outputs(run.output) == []


def test_nan_output_weights(tmp_path):
    """Finite activations but NaN distance weights: every proposal is rejected, silently, today."""
    run = run_toy(tmp_path, nan_model_dir(tmp_path / "model", "output"))
    assert "output layer's weights" in error_line(run)
    assert final_outputs(run.output) == []


# --------------------------------------------------------------------------------------------
# 14, 15: the output directory


def test_output_directory_under_a_file(tmp_path, peaks_bed):
    blocker = write(tmp_path / "somefile", "keep me\n")
    run = sample(blocker / "out", "--intervals", peaks_bed, "--fasta", GENOME)
    assert f"cannot write to output directory {blocker / 'out'}: Not a directory; choose another -o" in error_line(run)
    assert blocker.read_text() == "keep me\n"


def test_output_directory_of_a_different_run(tmp_path, baseline, peaks_bed):
    output = tmp_path / "out"
    shutil.copytree(baseline.output, output)
    refused = sample(output, "--intervals", peaks_bed, "--fasta", GENOME, "--seed", "1")
    assert f"{output} holds the results of a different run (differing: sampler.seed); choose another output " \
        "directory or pass --overwrite" in error_line(refused)
    assert (output / "summary.tsv").read_bytes() == (baseline.output / "summary.tsv").read_bytes()
    replaced = sample(output, "--intervals", peaks_bed, "--fasta", GENOME, "--seed", "1", "--overwrite")
    assert replaced.code == 0, replaced.stderr
    assert json.loads((output / "run.json").read_text())["sampler"]["seed"] == 1


# --------------------------------------------------------------------------------------------
# 16: YAML safety, and no shell


TAG = "!!python/object/apply:os.system"


def test_config_with_a_python_tag_is_refused_not_run(tmp_path, peaks_bed):
    marker = tmp_path / "executed"
    config = write(tmp_path / "config.yaml", f"beta: {TAG} ['touch {marker}']\n")
    run = sample(tmp_path / "out", "--config", config, "--intervals", peaks_bed, "--fasta", GENOME)
    assert run.code == 2 and "Traceback" not in run.stderr
    assert f"config {config}" in run.stderr and "python/object/apply:os.system" in run.stderr
    assert not marker.exists() and not run.output.exists()


def test_spec_with_a_python_tag_is_refused_not_run(tmp_path, peaks_bed):
    marker = tmp_path / "executed"
    spec = write(tmp_path / "spec.yaml", f"penultimate_layer: {TAG} ['touch {marker}']\n")
    run = sample(tmp_path / "out", "--spec", spec, "--intervals", peaks_bed, "--fasta", GENOME)
    assert run.code == 2 and "Traceback" not in run.stderr and "python/object/apply:os.system" in run.stderr
    assert not marker.exists() and not run.output.exists()


@pytest.mark.parametrize("option, key", [("--config", "beta"), ("--spec", "penultimate_layer")])
def test_yaml_errors_are_one_line(tmp_path, peaks_bed, option, key):
    path = write(tmp_path / "file.yaml", f"{key}: {TAG} ['true']\n")
    message = error_line(sample(tmp_path / "out", option, path, "--intervals", peaks_bed, "--fasta", GENOME))
    assert "is not valid YAML: line 1, column" in message and "Python tags are never run" in message


def test_read_yaml(tmp_path):
    marker = tmp_path / "executed"
    with pytest.raises(ValueError, match=r"^config .*c\.yaml is not valid YAML: line 2, column 4: could not determine "
                                         r"a constructor for the tag '.*python/object/apply:os\.system' \(Python tags "
                                         r"are never run: remove the tag and give a plain value\)$"):
        read_yaml(write(tmp_path / "c.yaml", f"a: 1\nb: {TAG} ['touch {marker}']\n"), "config")
    assert not marker.exists()
    with pytest.raises(ValueError, match=r"^spec .*s\.yaml is not valid YAML: line 2, column 1: expected ',' or ']'"):
        read_yaml(write(tmp_path / "s.yaml", "a: [1, 2\n"), "spec")
    with pytest.raises(ValueError, match=r"^cannot read spec .*none\.yaml: No such file or directory$"):
        read_yaml(tmp_path / "none.yaml", "spec")
    (tmp_path / "b.yaml").write_bytes(b"\xff\xfe\x00binary")
    with pytest.raises(ValueError, match=r"is not a text \(UTF-8\) file"):
        read_yaml(tmp_path / "b.yaml", "config")
    assert read_yaml(write(tmp_path / "ok.yaml", "beta: [10, 40]\n"), "config") == {"beta": [10, 40]}


def test_no_shell_with_user_strings():
    """Nothing in the package runs a command, so no path or option can become one: no
    subprocess or pty, os.system/popen/exec*/spawn*, shell=..., eval or exec."""
    found = []
    for path in sorted((REPO / "kipoi_maxent").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                modules = [alias.name for alias in node.names] + [getattr(node, "module", None) or ""]
                bad = any(name.split(".")[0] in ("subprocess", "pty") for name in modules)
            elif isinstance(node, ast.Call):
                call = ast.unparse(node.func)
                bad = call in ("os.system", "os.popen", "eval", "exec") or call.startswith(
                    ("os.exec", "os.spawn", "os.posix_spawn", "subprocess.")) or any(k.arg == "shell" for k in node.keywords)
            else:
                continue
            if bad:
                found.append(f"{path.relative_to(REPO)}:{node.lineno}: {ast.unparse(node)}")
    assert found == []
