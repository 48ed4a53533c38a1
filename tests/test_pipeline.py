"""kipoi_maxent.pipeline: part files, resuming a killed run, Dask workers — outputs identical
byte for byte whatever the chunking, the workers or interruptions."""
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from kipoi_maxent.denovo import SamplePCA
from kipoi_maxent.pipeline import ChunkResult, PartStore, pending_chunks, read_part, write_part
from kipoi_maxent.records import IntervalRecord

REPO = Path(__file__).resolve().parent.parent
EXAMPLE = REPO / "example_configs"
BIN = Path(sys.executable).parent
ENV = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "PYTHONWARNINGS": "ignore"}
#: Six peaks, small chains: every output except execution.json is compared byte for byte.
COMMAND = [str(BIN / "kipoi-maxent"), "sample", str(EXAMPLE / "models" / "ctcf_cnn"), "--source", "dir",
           "--fasta", str(EXAMPLE / "data" / "ctcf_genome.fa"), "--beta", "50", "--mu", "0", "--chains", "4",
           "--steps", "300", "--thin", "10", "--features", "gc", "--dummies", "20", "--quiet"]


def record(index, length=8, with_extras=True, draws=5):
    rng = np.random.default_rng(index)
    frequencies = rng.dirichlet(np.ones(4), size=length).astype(np.float32)
    pca = SamplePCA(mean=rng.normal(size=length), components=rng.normal(size=(2, length)),
                    variances=rng.random(2), spectrum=rng.random(length), control_sd=rng.random(2),
                    n_samples=np.int64(40)) if with_extras else None
    return IntervalRecord(index, {"name": f"r{index}", "score": float(index) / 3, "flag": True, "label": "x y"},
                          frequencies, frequencies[:, 0], rng.random((2, 4)).astype(np.float32),
                          rng.integers(-1, 4, length).astype(np.int8), pca,
                          rng.integers(0, 4, (2, draws, length)).astype(np.int8) if with_extras else None)


@pytest.mark.parametrize("with_extras", [True, False])
def test_part_round_trip(tmp_path, with_extras):
    records = [record(i, with_extras=with_extras, draws=3 + i) for i in (4, 5, 6)]  # inputs differ in draws
    digest = write_part(tmp_path / "part.npz", ChunkResult(4, records, "here", 1))
    assert len(digest) == 64
    for original, loaded in zip(records, read_part(tmp_path / "part.npz")):
        assert loaded.index == original.index and loaded.row == original.row
        for field in ("frequencies", "importance", "fourier", "reference"):
            np.testing.assert_array_equal(getattr(loaded, field), getattr(original, field))
        if with_extras:
            np.testing.assert_array_equal(loaded.samples, original.samples)
            for name, value in original.pca._asdict().items():
                np.testing.assert_array_equal(getattr(loaded.pca, name), value)
        else:
            assert loaded.pca is None and loaded.samples is None
    assert all(r.samples is None for r in read_part(tmp_path / "part.npz", samples=False))


def store_with_parts(tmp_path, firsts=(4, 0, 2)):
    store = PartStore(tmp_path)
    store.create({"a": 1}, {"beta": 50.0, "source": "given", "record": None})
    for first in firsts:  # written out of order, as workers finish
        store.add(ChunkResult(first, [record(first), record(first + 1)], "w", 1))
    return store


def test_part_store_reads_records_in_order_and_by_index(tmp_path):
    store = store_with_parts(tmp_path)
    assert [r.index for r in store.records()] == list(range(6))
    assert all(r.samples is None for r in store.records())          # samples only when asked
    assert all(r.samples.shape == (2, 5, 8) for r in store.records(samples=True))
    assert store.record(5).row["name"] == "r5" and store.record(0).row["name"] == "r0"
    assert store.done() == set(range(6))
    assert store.manifest() == {"a": 1} and store.beta_choice()["beta"] == 50.0


def test_part_store_trusts_only_journaled_parts_whose_content_matches(tmp_path):
    store = store_with_parts(tmp_path)
    parts = sorted(store.directory.glob("part_*.npz"))
    parts[1].write_bytes(parts[1].read_bytes()[:100])             # cut short by a crash
    (store.directory / "part_0000000099_000001.npz").write_bytes(parts[0].read_bytes())  # not in the journal
    with open(store.directory / "journal", "a") as journal:        # a torn last line
        journal.write("8\t2\tpart_00")
    reopened = PartStore(tmp_path)
    assert reopened.load() == 4
    assert reopened.done() == {0, 1, 4, 5}
    assert sorted(p.name for p in reopened.directory.glob("part_*.npz")) == [parts[0].name, parts[2].name]
    assert [r.index for r in reopened.records()] == [0, 1, 4, 5]


def test_part_store_is_removed_only_when_it_is_ours(tmp_path):
    (tmp_path / ".parts").mkdir()
    (tmp_path / ".parts" / "notes.txt").write_text("mine")
    PartStore(tmp_path).remove()
    assert (tmp_path / ".parts" / "notes.txt").read_text() == "mine"
    store_with_parts(tmp_path / "ours").remove()
    assert not (tmp_path / "ours" / ".parts").exists()


def test_pending_chunks_skip_done_inputs_and_number_inputs_globally():
    assert [(first, len(chunk)) for first, chunk in pending_chunks(range(7), 3, set())] == [(0, 3), (3, 3), (6, 1)]
    # parts of an earlier session with chunk size 2 (inputs 0-1 and 4-5) under chunk size 4
    assert [(first, chunk) for first, chunk in pending_chunks(range(10), 4, {0, 1, 4, 5})] == [
        (2, [2, 3]), (6, [6, 7]), (8, [8, 9])]


@pytest.fixture(scope="module")
def peaks(tmp_path_factory):
    bed = tmp_path_factory.mktemp("bed") / "peaks.bed"
    bed.write_text("".join((EXAMPLE / "data" / "ctcf_peaks.bed").read_text().splitlines(True)[:6]))
    return bed


@pytest.fixture(scope="module")
def reference_run(peaks, tmp_path_factory):
    out = tmp_path_factory.mktemp("reference")
    subprocess.run([*COMMAND, "--intervals", str(peaks), "-o", str(out)], check=True, env=ENV, capture_output=True)
    return out


def assert_same_outputs(a: Path, b: Path):
    names = sorted(p.name for p in a.iterdir() if p.is_file() and p.name not in ("execution.json", ".kipoi_maxent.lock"))
    assert names == sorted(p.name for p in b.iterdir() if p.is_file() and p.name not in ("execution.json",
                                                                                      ".kipoi_maxent.lock"))
    assert "summary.tsv" in names and "importance.bw" in names and not (b / ".parts" / "staging").exists()
    for name in names:
        assert (a / name).read_bytes() == (b / name).read_bytes(), name


def test_killed_run_resumes_to_identical_outputs(peaks, reference_run, tmp_path):
    command = [*COMMAND, "--intervals", str(peaks), "-o", str(tmp_path), "--chunk-size", "1"]
    process = subprocess.Popen(command, env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    journal = tmp_path / ".parts" / "journal"

    def journaled() -> int:
        """Parts the run recorded as complete (a part file the kill caught before its journal line
        is not trusted, and goes on resume)."""
        return len(journal.read_text().splitlines()) if journal.is_file() else 0

    # poll often: with the fused engine the six small chunks once all finished between two
    # polls 0.2 s apart
    deadline = time.time() + 300
    while time.time() < deadline and journaled() < 2:
        time.sleep(0.002)
    process.send_signal(signal.SIGKILL)
    process.wait()
    done = journaled()
    assert 2 <= done < 6, "the run should be killed mid-way"
    assert not (tmp_path / "summary.tsv").exists()

    # other parameters: refused, nothing lost
    refused = subprocess.run([*command, "--seed", "1"], env=ENV, capture_output=True, text=True)
    assert refused.returncode == 2 and "--overwrite" in refused.stderr and "Traceback" not in refused.stderr
    assert journaled() == done

    subprocess.run(command, check=True, env=ENV, capture_output=True)
    execution = json.loads((tmp_path / "execution.json").read_text())
    assert execution["inputs_resumed"] == done and execution["chunks_run"] == 6 - done
    assert_same_outputs(reference_run, tmp_path)


def test_dask_workers_give_identical_outputs(peaks, reference_run, tmp_path):
    subprocess.run([*COMMAND, "--intervals", str(peaks), "-o", str(tmp_path), "--workers", "2", "--chunk-size", "2"],
                   check=True, env=ENV, capture_output=True)
    assert_same_outputs(reference_run, tmp_path)
    loads = json.loads((tmp_path / "execution.json").read_text())["model_loads_per_worker"]
    assert len(loads) == 2 and set(loads.values()) == {1}  # each worker loaded the model once, for 3 chunks


def test_existing_dask_scheduler(peaks, reference_run, tmp_path):
    """--scheduler: chunks go to a cluster started elsewhere (here: in this test process)."""
    from dask.distributed import LocalCluster

    with LocalCluster(n_workers=1, threads_per_worker=1, processes=True, dashboard_address=None) as cluster:
        subprocess.run([*COMMAND, "--intervals", str(peaks), "-o", str(tmp_path), "--scheduler",
                        cluster.scheduler_address, "--chunk-size", "4"], check=True, env=ENV, capture_output=True)
    assert_same_outputs(reference_run, tmp_path)
    assert json.loads((tmp_path / "execution.json").read_text())["scheduler"].startswith("tcp://")
