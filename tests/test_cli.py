"""End to end through the real console scripts on the shipped CTCF example model."""
import json
import os
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pybedtools
import pyBigWig
import pytest

from kipoi_maxent.motifs import read_meme
from kipoi_maxent.outputs.hdf5 import load_samples
from kipoi_maxent.sequence import gc_count
from kipoi_maxent.statistics import nucleotide_frequencies

REPO = Path(__file__).resolve().parent.parent
EXAMPLE = REPO / "example_configs"
BIN = Path(sys.executable).parent
ENV = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "PYTHONWARNINGS": "ignore"}
FAST = ["--chains", "20", "--steps", "1000", "--thin", "5", "--quiet"]
OUTPUTS = ("summary.tsv", "motifs.bed", "motifs.meme", "consensus.meme", "consensus.png", "importance.bedGraph",
           "importance.bw", "frequencies.h5", "fourier.tsv", "report.html", "samples.h5", "run.json",
           "execution.json") + tuple(f"frequency_{b}.bw" for b in "ACGT")
#: Outputs that must not depend on batch size, chunk size or workers (execution.json records those).
DETERMINISTIC = tuple(name for name in OUTPUTS if name != "execution.json")


def run(*args, check=True):
    result = subprocess.run([str(a) for a in args], capture_output=True, text=True, env=ENV, cwd=REPO)
    if check and result.returncode != 0:
        raise AssertionError(f"{args} exited {result.returncode}:\n{result.stderr[-3000:]}")
    return result


def read_summary(path):
    lines = Path(path).read_text().splitlines()
    header = lines[0].split("\t")
    return [dict(zip(header, line.split("\t"))) for line in lines[1:]]


@pytest.fixture(scope="module")
def two_peaks(tmp_path_factory):
    """Peaks 1 and 10 of the example, with their planted sites."""
    bed = tmp_path_factory.mktemp("bed") / "peaks.bed"
    peaks = [line for line in (EXAMPLE / "data" / "ctcf_peaks.bed").read_text().splitlines()
             if line.split("\t")[3] in ("peak_1", "peak_10")]
    bed.write_text("\n".join(peaks) + "\n")
    sites = {i.name.replace("site", "peak"): i for i in pybedtools.BedTool(str(EXAMPLE / "data" / "ctcf_sites.bed"))}
    return bed, sites


@pytest.fixture(scope="module")
def kipoi_run(two_peaks, tmp_path_factory):
    bed, _ = two_peaks
    out = tmp_path_factory.mktemp("kipoi_run")
    run(BIN / "kipoi", "maxent", "sample", EXAMPLE / "models" / "ctcf_cnn", "--source", "dir",
        "--intervals", bed, "--fasta", EXAMPLE / "data" / "ctcf_genome.fa", "--beta", "50", "--mu", "0",
        *FAST, *EXTRAS, "-o", out)
    return out


#: Every optional output on, so one run checks them all.
EXTRAS = ["--features", "gc", "--dummies", "50", "--save-samples", "--frequency-tracks"]


def test_outputs_exist_and_parse(kipoi_run, two_peaks):
    _, sites = two_peaks
    assert all((kipoi_run / name).is_file() for name in OUTPUTS)
    rows = read_summary(kipoi_run / "summary.tsv")
    assert [r["name"] for r in rows] == ["peak_1", "peak_10"]  # input order
    for row in rows:
        assert int(row["end"]) - int(row["start"]) == 101
        assert int(row["n_samples"]) == 20 * 100  # 1000 steps, the first half discarded, thin 5
        assert float(row["beta"]) == 50 and float(row["mu"]) == 0
        assert 0.05 < float(row["acceptance_rate"]) < 1
        # the motif call lands on the planted CTCF site (15 bp inside the 19-bp window)
        site = sites[row["name"]]
        overlap = min(int(row["motif_end"]), site.end) - max(int(row["motif_start"]), site.start)
        assert overlap >= 12, (row, site)

    motifs = pybedtools.BedTool(str(kipoi_run / "motifs.bed"))
    calls = {i.name.split("|")[0]: i for i in motifs}
    assert set(calls) == {"peak_1", "peak_10"}
    # calls are named <interval>|<best JASPAR match>, the match as in summary.tsv
    assert {i.name for i in motifs} == {f"{r['name']}|{r['motif_match_name']}" for r in rows}
    for row in rows:
        call = calls[row["name"]]
        assert (call.chrom, call.start, call.end) == (row["chrom"], int(row["motif_start"]), int(row["motif_end"]))
        assert 0 <= int(call.score) <= 1000
    assert (kipoi_run / "motifs.bed").read_text().startswith("track name=")

    lines = (kipoi_run / "importance.bedGraph").read_text().splitlines()
    assert lines[0].startswith("track type=bedGraph")
    graph = [line.split("\t") for line in lines[1:]]
    assert len(graph) == 2 * 101  # the two peaks do not overlap
    keys = [(c, int(s)) for c, s, _, _ in graph]
    assert keys == sorted(keys) and all(int(e) - int(s) == 1 for _, s, e, _ in graph)

    with h5py.File(kipoi_run / "frequencies.h5") as h5:
        frequencies, importance = h5["frequencies"][:], h5["importance"][:]
        assert [n.decode() for n in h5["names"][:]] == ["peak_1", "peak_10"] and h5.attrs["alphabet"] == "ACGT"
    assert frequencies.shape == (2, 101, 4)
    np.testing.assert_allclose(frequencies.sum(axis=2), 1, atol=1e-5)
    # the bedGraph and the bigWig hold the same per-base importance as frequencies.h5
    first = {int(s): float(v) for c, s, _, v in graph if c == rows[0]["chrom"]}
    start = int(rows[0]["start"])
    np.testing.assert_allclose([first[start + i] for i in range(101)], importance[0], rtol=1e-4, atol=1e-6)
    with pyBigWig.open(str(kipoi_run / "importance.bw")) as bw:
        for row, values in zip(rows, importance):
            np.testing.assert_allclose(bw.values(row["chrom"], int(row["start"]), int(row["end"])), values, rtol=1e-6)
            # the motif score is the mean importance over the call
            assert bw.stats(row["chrom"], int(row["motif_start"]), int(row["motif_end"]), exact=True)[0] == \
                pytest.approx(float(row["motif_score"]), rel=1e-4)
    with pyBigWig.open(str(kipoi_run / "frequency_G.bw")) as bw:
        np.testing.assert_allclose(bw.values(rows[1]["chrom"], int(rows[1]["start"]), int(rows[1]["end"])),
                                   frequencies[1, :, 2], rtol=1e-6)

    samples = load_samples(kipoi_run / "samples.h5")
    assert samples.names == ["peak_1", "peak_10"] and [s.shape for s in samples.samples] == [(20, 100, 101)] * 2
    np.testing.assert_allclose(nucleotide_frequencies(samples.samples[1]), frequencies[1], atol=1e-6)
    assert samples.attributes["beta"] == 50 and samples.attributes["alphabet"] == "ACGT"

    # diagnostics and the scored feature, recomputed from the saved samples
    from kipoi_maxent.diagnostics import MAX_RHAT, MIN_ESS, bulk_ess, rank_rhat, tail_ess
    from kipoi_maxent.features import builtin_features, dummy_sets, feature_importance

    gc = builtin_features(101)["gc"]
    for row, reference, kept in zip(rows, samples.reference, samples.samples):
        trace = gc_count(kept).astype(float)
        assert float(row["rhat_gc"]) == pytest.approx(rank_rhat(trace), rel=1e-5)
        assert float(row["ess_gc"]) == pytest.approx(bulk_ess(trace), rel=1e-5)
        assert float(row["ess_tail_gc"]) == pytest.approx(tail_ess(trace), rel=1e-5)
        passes = all(float(row[f"rhat_{t}"]) <= MAX_RHAT and float(row[f"ess_{t}"]) >= MIN_ESS
                     and float(row[f"ess_tail_{t}"]) >= MIN_ESS for t in ("distance", "gc"))
        assert row["converged"] == str(passes)
        importance = feature_importance(kept, reference, [gc], 0.0, dummies=dummy_sets([gc], 50, seed=0))[0]
        assert float(row["gc_delta"]) == pytest.approx(importance.delta, rel=1e-5)
        assert float(row["gc_percentile"]) == pytest.approx(importance.percentile, abs=1e-4)
        assert row["gc_normality"] == ("normal" if importance.normal else "non-normal")
        assert float(row["gc_input_value"]) == gc_count(reference)
    fourier = (kipoi_run / "fourier.tsv").read_text().splitlines()
    assert fourier[0] == "name\tperiod\tmean_signal_amplitude\tsample_amplitude" and len(fourier) == 1 + 2 * 50
    meme = read_meme(kipoi_run / "motifs.meme")
    assert len(meme) == 2 and all(m.shape == (19, 4) for m in meme.values())
    assert "<html" in (kipoi_run / "report.html").read_text()[:500].lower()

    # the consensus of the calls is JASPAR's CTCF (TOMTOM against JASPAR2024 vertebrates)
    consensus = json.loads((kipoi_run / "run.json").read_text())["consensus"]
    assert consensus["jaspar_name"] == "CTCF" and consensus["pvalue"] < 1e-8, consensus
    assert "CTCF" in (kipoi_run / "consensus.meme").read_text()

    record = json.loads((kipoi_run / "run.json").read_text())
    assert record["sampler"]["beta"] == 50 and record["mu"] == 0 and record["mu_source"] == "--mu"
    assert record["sampler"]["seed"] == 0 and record["versions"]["kipoi"]
    assert record["spec"]["penultimate_layer"] == "dense_hidden"
    assert record["gc_fraction"] == pytest.approx(0.5008, abs=1e-3)


def test_batch_and_chunk_size_do_not_change_outputs(kipoi_run, two_peaks, tmp_path):
    """One input per batch and per chunk reproduces the kipoi run byte for byte."""
    bed, _ = two_peaks
    run(BIN / "kipoi-maxent", "sample", EXAMPLE / "models" / "ctcf_cnn", "--source", "dir", "--intervals", bed,
        "--fasta", EXAMPLE / "data" / "ctcf_genome.fa", "--beta", "50", "--mu", "0", *FAST, *EXTRAS,
        "--batch-size", "1", "--chunk-size", "1", "-o", tmp_path)
    assert json.loads((kipoi_run / "run.json").read_text())["sampler"]["engine"] == "fused"
    assert json.loads((tmp_path / "execution.json").read_text())["chunks_run"] == 2
    for name in DETERMINISTIC:
        assert (tmp_path / name).read_bytes() == (kipoi_run / name).read_bytes(), name


def test_postproc_alias(tmp_path):
    run(BIN / "kipoi", "postproc", "maxent", "sample", "--config", EXAMPLE / "ctcf_bound_10.yaml", "--beta", "50",
        "--chains", "2", "--steps", "20", "--thin", "10", "--quiet", "-o", tmp_path)
    assert len(read_summary(tmp_path / "summary.tsv")) == 10


def test_kipoi_lists_the_plugin():
    result = run(BIN / "kipoi", "list_plugins")
    assert "kipoi_maxent" in result.stdout
    help_text = run(sys.executable, "-m", "kipoi_maxent", "sample", "--help").stdout
    for option in ("--beta", "--mu", "--chains", "--steps", "--thin", "--burnin", "--seed", "--intervals",
                   "--fasta", "--sequences", "--dataloader_args", "--spec", "--source", "--output"):
        assert option in help_text


def test_mu_auto_from_fasta(two_peaks, tmp_path):
    bed, _ = two_peaks
    run(BIN / "kipoi-maxent", "sample", EXAMPLE / "models" / "ctcf_cnn", "--source", "dir", "--intervals", bed,
        "--fasta", EXAMPLE / "data" / "ctcf_genome.fa", "--beta", "50", "--chains", "4", "--steps", "200",
        "--thin", "10", "--quiet", "-o", tmp_path)
    record = json.loads((tmp_path / "run.json").read_text())
    f = record["gc_fraction"]
    assert record["mu"] == pytest.approx(np.log(f / (1 - f)))
    assert "GC fraction of" in record["mu_source"]
    assert float(read_summary(tmp_path / "summary.tsv")[0]["mu"]) == pytest.approx(record["mu"], abs=1e-5)


def test_config_file_and_sequences(tmp_path):
    """The --sequences input (the authors' ten CTCF-bound sequences) through a config file."""
    run(BIN / "kipoi-maxent", "sample", "--config", EXAMPLE / "ctcf_bound_10.yaml", "--beta", "50",
        "--chains", "4", "--steps", "200", "--quiet", "-o", tmp_path)
    rows = read_summary(tmp_path / "summary.tsv")
    records = [line[1:].split()[0] for line in (EXAMPLE / "data" / "ctcf_bound_10.fa").read_text().splitlines()
               if line.startswith(">")]
    assert [r["name"] for r in rows] == records
    assert all(r["chrom"] == r["name"] and r["start"] == "0" and r["end"] == "101" for r in rows)


def test_dataloader_inputs(tmp_path, two_peaks):
    """The Kipoi way: the model's default dataloader with --dataloader_args."""
    bed, _ = two_peaks
    args = json.dumps({"intervals_file": str(bed), "fasta_file": str(EXAMPLE / "data" / "ctcf_genome.fa")})
    run(BIN / "kipoi", "maxent", "sample", EXAMPLE / "models" / "ctcf_cnn", "--source", "dir",
        "--dataloader_args", args, "--beta", "50", "--mu", "0", "--chains", "4", "--steps", "200",
        "--thin", "10", "--quiet", "-o", tmp_path)
    rows = read_summary(tmp_path / "summary.tsv")
    assert [(r["chrom"], int(r["end"]) - int(r["start"])) for r in rows] == [("chrA", 101), ("chrC", 101)]


@pytest.mark.parametrize("args, message", [
    (["--beta", "0"], "beta must be > 0"),
    (["--thin", "5000"], "no sample would be kept"),
    (["--gc-fraction", "1.5"], "gc"),
    (["--intervals", "missing.bed"], "does not exist"),
])
def test_errors_are_one_line(args, message, tmp_path):
    base = ["sample", EXAMPLE / "models" / "ctcf_cnn", "--source", "dir", "--fasta",
            EXAMPLE / "data" / "ctcf_genome.fa", "--steps", "100", "--quiet", "-o", tmp_path]
    if "--intervals" not in args:
        base += ["--intervals", EXAMPLE / "data" / "ctcf_peaks.bed"]
    result = run(BIN / "kipoi-maxent", *base, *args, check=False)
    assert result.returncode == 2
    last = result.stderr.strip().splitlines()[-1]
    assert "error:" in last and message.lower() in last.lower() and "Traceback" not in result.stderr
