"""The output directory is the user's data: a run never deletes, adopts or mixes what it did not
write (issue 15). Each test reproduces one way a run used to lose or mix data.

Most runs go through ``kipoi_maxent.cli.main`` in this process; killing, terminating and
concurrent runs use the real ``kipoi-maxent`` script.
"""
import contextlib
import io
import json
import os
import shutil
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from kipoi_maxent.cli import main
from kipoi_maxent.plugin import impl

REPO = Path(__file__).resolve().parent.parent
EXAMPLE = REPO / "example_configs"
GENOME = EXAMPLE / "data" / "ctcf_genome.fa"
MODEL_DIR = EXAMPLE / "models" / "ctcf_cnn"
BIN = Path(sys.executable).parent
ENV = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONWARNINGS": "ignore"}
#: A small run with every default writer but the JASPAR annotation (slow to load).
TINY = ["--beta", "50", "--mu", "0", "--chains", "2", "--steps", "40", "--thin", "10", "--no-annotation"]
PEAK_LINES = (EXAMPLE / "data" / "ctcf_peaks.bed").read_text().splitlines(keepends=True)


def run_cli(output, *args, model=(str(MODEL_DIR), "--source", "dir")):
    """``kipoi-maxent sample MODEL TINY ARGS -o OUTPUT`` in this process: (exit code, stderr)."""
    stderr = io.StringIO()
    with contextlib.redirect_stderr(stderr), contextlib.redirect_stdout(io.StringIO()):
        code = main(["sample", *model, *TINY, *map(str, args), "-o", str(output)])
    return code, stderr.getvalue()


def one_error_line(code, stderr):
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert code == 2 and "Traceback" not in stderr, stderr
    assert len(lines) == 1 and lines[-1].startswith("kipoi-maxent sample: error: "), stderr
    return lines[-1]


def snapshot(directory: Path) -> dict:
    """Every file under ``directory`` (relative path -> bytes)."""
    return {str(p.relative_to(directory)): p.read_bytes() for p in sorted(directory.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def peaks(tmp_path_factory) -> Path:
    bed = tmp_path_factory.mktemp("peaks") / "peaks.bed"
    bed.write_text("".join(PEAK_LINES[:3]))
    return bed


@pytest.fixture(scope="module")
def ten_peaks(tmp_path_factory) -> Path:
    bed = tmp_path_factory.mktemp("peaks10") / "peaks.bed"
    bed.write_text("".join(PEAK_LINES[:10]))
    return bed


@pytest.fixture(scope="module")
def finished(tmp_path_factory, peaks) -> Path:
    """A finished run on three peaks."""
    output = tmp_path_factory.mktemp("finished") / "out"
    code, stderr = run_cli(output, "--intervals", peaks, "--fasta", GENOME)
    assert code == 0, stderr
    return output


def copy_run(source: Path, target: Path) -> Path:
    shutil.copytree(source, target, symlinks=True)
    return target


# --------------------------------------------------------------------------------------------
# ownership: a directory is ours only if it holds our run marker


def test_a_hand_made_run_json_is_not_ours_and_nothing_is_deleted(tmp_path, peaks):
    output = tmp_path / "out"
    output.mkdir()
    (output / "thesis.tex").write_text("my thesis\n")
    (output / "run.json").write_text(json.dumps({"outputs": ["thesis.tex"], "manifest": {}}))
    before = snapshot(output)
    for extra in ([], ["--overwrite"]):
        line = one_error_line(*run_cli(output, "--intervals", peaks, "--fasta", GENOME, *extra))
        assert "not a kipoi_maxent output directory" in line
        assert snapshot(output) == before


def test_a_run_json_that_is_not_an_object_is_a_clear_error(tmp_path, peaks):
    output = tmp_path / "out"
    output.mkdir()
    (output / "run.json").write_text("[1, 2, 3]\n")
    line = one_error_line(*run_cli(output, "--intervals", peaks, "--fasta", GENOME, "--overwrite"))
    assert "not a kipoi_maxent output directory" in line
    assert (output / "run.json").read_text() == "[1, 2, 3]\n"


def test_a_foreign_non_empty_directory_is_refused_even_with_overwrite(tmp_path, peaks):
    output = tmp_path / "home"
    (output / ".parts").mkdir(parents=True)
    (output / "summary.tsv").write_text("my own table\n")
    (output / "report.html").write_text("<html>mine</html>\n")
    (output / ".parts" / "notes.txt").write_text("mine too\n")
    (output / ".bashrc").write_text("export X=1\n")
    before = snapshot(output)
    for extra in ([], ["--overwrite"]):
        line = one_error_line(*run_cli(output, "--intervals", peaks, "--fasta", GENOME, *extra))
        assert f"{output} is not empty and is not a kipoi_maxent output directory" in line
        assert snapshot(output) == before


def test_an_empty_existing_directory_is_used(tmp_path, peaks):
    output = tmp_path / "empty"
    output.mkdir()
    code, stderr = run_cli(output, "--intervals", peaks, "--fasta", GENOME, "--writers", "summary")
    assert code == 0, stderr and (output / "summary.tsv").is_file()


def test_overwrite_deletes_only_files_the_previous_run_wrote(tmp_path, finished, peaks):
    """Even in our own directory, a name listed in run.json goes only if it is the file we wrote."""
    output = copy_run(finished, tmp_path / "out")
    (output / "thesis.tex").write_text("my thesis\n")
    (tmp_path / "outside.txt").write_text("outside\n")
    record = json.loads((output / "run.json").read_text())
    listed = record["outputs"]
    forged = ["thesis.tex", "../outside.txt", "/etc/hostname", ".", ".."]
    if isinstance(listed, dict):
        listed.update({name: dict(next(iter(listed.values()))) for name in forged})
    else:
        listed += forged
    (output / "run.json").write_text(json.dumps(record))
    code, stderr = run_cli(output, "--intervals", peaks, "--fasta", GENOME, "--seed", "3", "--overwrite")
    assert code == 0, stderr
    assert (output / "thesis.tex").read_text() == "my thesis\n"
    assert (tmp_path / "outside.txt").read_text() == "outside\n"


def test_a_different_run_is_refused_without_overwrite(tmp_path, finished, peaks):
    output = copy_run(finished, tmp_path / "out")
    before = snapshot(output)
    line = one_error_line(*run_cli(output, "--intervals", peaks, "--fasta", GENOME, "--seed", "1"))
    assert "holds the results of a different run" in line and "seed" in line and "--overwrite" in line
    assert snapshot(output) == before


# --------------------------------------------------------------------------------------------
# the manifest: everything that changes results is compared on resume


def manifest(output: Path) -> dict:
    return json.loads((output / "run.json").read_text())["manifest"]


def test_the_manifest_holds_the_spec_found_by_name_and_the_versions(finished):
    recorded = manifest(finished)
    text = json.dumps(recorded)
    assert recorded["spec"] is not None and "dense_hidden" in text and "output_units" in text
    for package in ("numpy", "tensorflow", "keras", "numba", "arviz", "memelite", "pyjaspar"):
        assert package in recorded["versions"], package


def test_a_model_file_changed_in_place_is_a_different_run(tmp_path, peaks):
    model = tmp_path / "ctcf_cnn"
    shutil.copytree(MODEL_DIR, model)  # copy2: sizes and times kept, as cp -p
    output = tmp_path / "out"
    args = ("--intervals", peaks, "--fasta", GENOME, "--writers", "summary")
    assert run_cli(output, *args, model=(str(model), "--source", "dir"))[0] == 0
    description = model / "model.yaml"
    stat_before = description.stat()
    text = description.read_text()
    description.write_text(text.replace("Example CTCF", "EXAMPLE CTCF"))  # same size
    os.utime(description, ns=(stat_before.st_atime_ns, stat_before.st_mtime_ns))
    assert description.stat().st_size == stat_before.st_size
    line = one_error_line(*run_cli(output, *args, model=(str(model), "--source", "dir")))
    assert "different run" in line and "model" in line


def test_a_file_named_in_dataloader_args_is_compared(tmp_path, peaks):
    bed = tmp_path / "peaks.bed"
    shutil.copy(peaks, bed)
    dataloader_args = json.dumps({"intervals_file": str(bed), "fasta_file": str(GENOME)})
    output = tmp_path / "out"
    assert run_cli(output, "--dataloader_args", dataloader_args, "--writers", "summary")[0] == 0
    bed.write_text("".join(PEAK_LINES[3:6]))
    line = one_error_line(*run_cli(output, "--dataloader_args", dataloader_args, "--writers", "summary"))
    assert "different run" in line


def test_a_large_fasta_changed_with_the_same_size_and_time_is_compared(tmp_path, peaks):
    """Genomes over 64 MB used to be compared by size and modification time only."""
    genome = tmp_path / "genome.fa"
    filler = ("ACGTTGCA" * 8 + "\n") * (66 * (1 << 20) // 65)
    genome.write_text(GENOME.read_text() + ">chrZ\n" + filler)
    assert genome.stat().st_size > 64 << 20
    output = tmp_path / "out"
    args = ("--intervals", peaks, "--fasta", genome, "--writers", "summary")
    assert run_cli(output, *args)[0] == 0
    stat_before = genome.stat()
    position = 6 + (3100 // 60) * 61 + 3100 % 60  # chrA:3100, inside the first peak (60 bases a line)
    with open(genome, "r+b") as stream:
        stream.seek(position)
        base = stream.read(1)
        assert base in b"ACGT"
        stream.seek(position)
        stream.write(b"T" if base != b"T" else b"G")
    os.utime(genome, ns=(stat_before.st_atime_ns, stat_before.st_mtime_ns))
    line = one_error_line(*run_cli(output, *args))
    assert "different run" in line


# --------------------------------------------------------------------------------------------
# resuming, regenerating, doing nothing


def test_rerunning_a_finished_run_does_nothing(tmp_path, finished, peaks):
    output = copy_run(finished, tmp_path / "out")

    def files():  # the lock file records who holds the directory: it changes
        return {str(p.relative_to(output)): (p.stat().st_ino, p.stat().st_mtime_ns) for p in output.rglob("*")
                if p.is_file() and p.name != ".kipoi_maxent.lock"}

    before = files()
    code, stderr = run_cli(output, "--intervals", peaks, "--fasta", GENOME)
    assert code == 0 and "nothing to do" in stderr, stderr
    assert files() == before


def test_other_writer_options_regenerate_outputs_from_the_parts(tmp_path, peaks):
    output = tmp_path / "out"
    base = ("--intervals", peaks, "--fasta", GENOME)
    assert run_cli(output, *base, "--writers", "summary")[0] == 0
    summary = (output / "summary.tsv").read_bytes()
    assert not (output / "motifs.bed").exists()
    code, stderr = run_cli(output, *base, "--writers", "summary,motifs")
    assert code == 0, stderr
    assert (output / "motifs.bed").is_file() and (output / "summary.tsv").read_bytes() == summary
    assert json.loads((output / "execution.json").read_text())["chunks_run"] == 0  # no resampling
    code, stderr = run_cli(output, *base, "--frequency-tracks")
    assert code == 0, stderr
    assert all((output / f"frequency_{b}.bw").is_file() for b in "ACGT")
    assert json.loads((output / "execution.json").read_text())["chunks_run"] == 0
    code, stderr = run_cli(output, *base, "--writers", "summary")  # files no longer asked for go
    assert code == 0 and not (output / "motifs.bed").exists() and not (output / "frequency_A.bw").exists()
    assert (output / "summary.tsv").read_bytes() == summary


class FailingWriter:
    """A writer that fails after the others have written (a crash while writing outputs)."""

    name = "boom"
    description = "fails"

    def write(self, run):
        raise RuntimeError("disk on fire")


class FailingPlugin:
    @impl
    def kipoi_maxent_writers(self):
        return [FailingWriter()]


def test_outputs_of_a_crashed_run_do_not_survive_overwrite(tmp_path, peaks):
    from kipoi_maxent.plugin.manager import register, unregister

    output = tmp_path / "out"
    register(FailingPlugin(), name="boom")
    try:
        with pytest.raises(RuntimeError, match="disk on fire"):
            main(["sample", str(MODEL_DIR), "--source", "dir", *TINY, "--intervals", str(peaks), "--fasta",
                  str(GENOME), "--writers", "summary,motifs,importance,boom", "--quiet", "-o", str(output)])
    finally:
        unregister("boom")
    code, stderr = run_cli(output, "--intervals", peaks, "--fasta", GENOME, "--beta", "20", "--overwrite",
                           "--writers", "summary,report")
    assert code == 0, stderr
    left = {p.name for p in output.iterdir()}
    assert not left & {"motifs.bed", "motifs.meme", "consensus.meme", "consensus.png", "importance.bw",
                       "importance.bedGraph"}, left
    assert "consensus" not in (output / "report.html").read_text().lower()
    assert json.loads((output / "run.json").read_text())["sampler"]["beta"] == 20


def test_resuming_with_another_chunk_size_reuses_parts_correctly(tmp_path, ten_peaks):
    reference = tmp_path / "reference"
    args = ["--intervals", str(ten_peaks), "--fasta", str(GENOME), "--steps", "400", "--chains", "4",
            "--writers", "summary,motifs,frequencies"]
    assert run_cli(reference, *args, "--chunk-size", "10")[0] == 0
    output = tmp_path / "out"
    kill_after_first_part(output, [*args, "--chunk-size", "4"])
    code, stderr = run_cli(output, *args, "--chunk-size", "8")
    assert code == 0, stderr
    rows = (output / "summary.tsv").read_text().splitlines()
    assert len(rows) == 11
    for name in ("summary.tsv", "motifs.bed", "motifs.meme", "frequencies.h5"):
        assert (output / name).read_bytes() == (reference / name).read_bytes(), name


def script(output, args):
    return [str(BIN / "kipoi-maxent"), "sample", str(MODEL_DIR), "--source", "dir", *TINY, *map(str, args),
            "--quiet", "-o", str(output)]


def parts_of(output: Path) -> list[Path]:
    return sorted((output / ".parts").glob("part_*.npz")) if (output / ".parts").is_dir() else []


def kill_after_first_part(output: Path, args) -> int:
    """Start a run and SIGKILL it as soon as its first part is on disk; the number of parts."""
    process = subprocess.Popen(script(output, args), env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.time() + 300
    while time.time() < deadline and not parts_of(output) and process.poll() is None:
        time.sleep(0.02)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert parts_of(output) and not (output / "summary.tsv").exists(), "killed too late or too early"
    return len(parts_of(output))


def test_a_corrupt_part_is_not_trusted(tmp_path, ten_peaks):
    args = ["--intervals", ten_peaks, "--fasta", GENOME, "--steps", "400", "--chains", "4", "--chunk-size", "2",
            "--writers", "summary,frequencies"]
    reference = tmp_path / "reference"
    assert run_cli(reference, *args)[0] == 0
    output = tmp_path / "out"
    kill_after_first_part(output, args)
    part = parts_of(output)[0]
    part.write_bytes(part.read_bytes()[: part.stat().st_size // 2])  # a part cut short by a crash
    code, stderr = run_cli(output, *args)
    assert code == 0, stderr
    for name in ("summary.tsv", "frequencies.h5"):
        assert (output / name).read_bytes() == (reference / name).read_bytes(), name


def test_a_second_run_on_the_same_directory_is_refused_naming_the_first(tmp_path, ten_peaks):
    """While a run holds OUTDIR (here: busy in a slow writer, whatever the sampler's speed), a
    second one is refused naming its PID, and the first finishes unharmed."""
    output = tmp_path / "out"
    args = ["--intervals", ten_peaks, "--fasta", GENOME, "--writers", "summary,slow"]
    command = [sys.executable, "-c", SLOW_WRITER, *script(output, args)[1:]]
    env = {**ENV, "SLOW_WRITER_SECONDS": "15"}
    first = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.time() + 300
        while time.time() < deadline and not list(output.rglob(".slow.txt.*.tmp")) and first.poll() is None:
            time.sleep(0.05)
        second = subprocess.run(command, env=env, capture_output=True, text=True)
        line = one_error_line(second.returncode, second.stderr)
        assert f"PID {first.pid}" in line and "in use" in line
    finally:
        first.wait(timeout=600)
    assert first.returncode == 0, first.stderr.read()
    assert len((output / "summary.tsv").read_text().splitlines()) == 11


SLOW_WRITER = """
import os, sys, time
from kipoi_maxent.outputs import atomic_path
from kipoi_maxent.plugin import impl
from kipoi_maxent.plugin.manager import register

class Slow:
    name = "slow"
    description = "writes slowly"
    def write(self, run):
        with atomic_path(run.outdir / "slow.txt") as stream:
            stream.write("half")
            stream.flush()
            time.sleep(float(os.environ.get("SLOW_WRITER_SECONDS", "120")))
        return ["slow.txt"]

class Plugin:
    @impl
    def kipoi_maxent_writers(self):
        return [Slow()]

register(Plugin(), name="slow")
from kipoi_maxent.cli import main
from kipoi_maxent.plugin import impl
sys.exit(main(sys.argv[1:]))
"""


def test_sigterm_leaves_no_temporary_file_and_the_next_run_cleans_up(tmp_path, peaks):
    output = tmp_path / "out"
    command = [sys.executable, "-c", SLOW_WRITER, *script(output, ["--intervals", peaks, "--fasta", GENOME,
                                                                   "--writers", "summary,slow"])[1:]]
    process = subprocess.Popen(command, env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)

    def temporaries():
        return [p for p in output.rglob("*.tmp")] if output.exists() else []

    deadline = time.time() + 300
    while time.time() < deadline and not temporaries() and process.poll() is None:
        time.sleep(0.05)
    assert temporaries(), process.stderr.read() if process.poll() is not None else "no temporary file seen"
    process.send_signal(signal.SIGTERM)
    process.wait(timeout=60)
    assert process.returncode != 0
    assert temporaries() == []

    # a temporary left by a harder kill goes with the next run
    stale = output / ".summary.tsv.99999.deadbeef.tmp"
    stale.write_text("stale")
    code, stderr = run_cli(output, "--intervals", peaks, "--fasta", GENOME, "--writers", "summary")
    assert code == 0, stderr
    assert not stale.exists() and temporaries() == []


# --------------------------------------------------------------------------------------------
# files


def test_pca_npz_follows_the_umask(tmp_path):
    from kipoi_maxent.denovo import SamplePCA, save_pca

    pca = SamplePCA(mean=np.zeros(5), components=np.eye(2, 5), variances=np.ones(2), spectrum=np.ones(5),
                    control_sd=np.ones(2), n_samples=np.int64(10))
    previous = os.umask(0o022)
    try:
        save_pca(tmp_path / "pca.npz", ["a"], [pca], np.eye(2, 5))
    finally:
        os.umask(previous)
    assert stat.S_IMODE((tmp_path / "pca.npz").stat().st_mode) == 0o644


def test_calibration_png_is_replaced_atomically(tmp_path, monkeypatch):
    from matplotlib.figure import Figure

    from kipoi_maxent.calibration import BetaSummary, plot_calibration

    summaries = [BetaSummary(b, 3, 1.0 / b, 0.1, 0.5, z, 0.5, f, 0.081, 0.5, 1.0)
                 for b, z, f in ((5, 1.0, 1.0), (50, 2.5, 0.9), (500, 9.0, 0.0))]
    path = tmp_path / "calibration.png"
    plot_calibration(summaries, path)
    good = path.read_bytes()

    def broken_savefig(self, target, **options):
        (target.write if hasattr(target, "write") else open(target, "wb").write)(b"\x89PNG half")
        raise OSError("disk full")

    monkeypatch.setattr(Figure, "savefig", broken_savefig)
    with pytest.raises(OSError, match="disk full"):
        plot_calibration(summaries, path)
    assert path.read_bytes() == good and list(tmp_path.iterdir()) == [path]


def test_names_stay_unique_after_sanitising(tmp_path):
    bed = tmp_path / "peaks.bed"
    fields = [line.rstrip("\n").split("\t") for line in PEAK_LINES[:2]]
    bed.write_text("".join("\t".join(f[:3] + [name]) + "\n" for f, name in zip(fields, ("a b", "a_b"))))
    output = tmp_path / "out"
    code, stderr = run_cli(output, "--intervals", bed, "--fasta", GENOME, "--writers", "summary,motifs")
    assert code == 0, stderr
    names = [line.split("\t")[3] for line in (output / "motifs.bed").read_text().splitlines()[1:]]
    assert len(set(names)) == 2, names
    titles = [line.split()[2] for line in (output / "motifs.meme").read_text().splitlines()
              if line.startswith("MOTIF")]
    assert len(set(titles)) == 2, titles
