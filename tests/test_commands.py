"""The other commands on the shipped CTCF example: a β grid in one run, calibrate, denovo + knn.
In process (kipoi_maxent.cli.main): the console scripts are covered by test_cli."""
import json
from pathlib import Path

import numpy as np
import pytest

from kipoi_maxent import cli
from kipoi_maxent.denovo import accuracy_interval, load_pca

EXAMPLE = Path(__file__).resolve().parent.parent / "example_configs"
MODEL = [str(EXAMPLE / "models" / "ctcf_cnn"), "--source", "dir", "--mu", "0", "--quiet"]
GENOME = ["--fasta", str(EXAMPLE / "data" / "ctcf_genome.fa")]


def bed(path: Path, lines: list[str]) -> str:
    path.write_text("".join(f"{line}\n" for line in lines))
    return str(path)


def peaks(tmp_path, names):
    kept = [line for line in (EXAMPLE / "data" / "ctcf_peaks.bed").read_text().splitlines()
            if line.split("\t")[3] in names]
    return bed(tmp_path / f"peaks_{len(names)}.bed", kept)


def background(tmp_path, n):
    """Intervals of the example genome away from every planted site (class: no CTCF)."""
    return bed(tmp_path / f"background_{n}.bed", [f"chrC\t{1000 + 1500 * i}\t{1101 + 1500 * i}\tbg_{i}" for i in range(n)])


def read_tsv(path):
    lines = Path(path).read_text().splitlines()
    return [dict(zip(lines[0].split("\t"), line.split("\t"))) for line in lines[1:]]


def test_beta_grid_writes_one_directory_per_beta(tmp_path):
    intervals = peaks(tmp_path, {"peak_1", "peak_2"})
    code = cli.main(["sample", *MODEL, *GENOME, "--intervals", intervals, "--beta", "20,200", "--chains", "4",
                     "--steps", "200", "--thin", "10", "--writers", "summary", "-o", str(tmp_path / "out")])
    assert code == 0
    for beta in ("20", "200"):
        rows = read_tsv(tmp_path / "out" / f"beta_{beta}" / "summary.tsv")
        assert [r["beta"] for r in rows] == [beta, beta]
    low, high = (read_tsv(tmp_path / "out" / f"beta_{b}" / "summary.tsv") for b in ("20", "200"))
    assert np.mean([float(r["mean_distance"]) for r in high]) < np.mean([float(r["mean_distance"]) for r in low])


def test_calibrate(tmp_path, capsys):
    intervals = peaks(tmp_path, {"peak_1", "peak_2", "peak_3"})
    out = tmp_path / "calibration"
    code = cli.main(["calibrate", *MODEL, *GENOME, "--intervals", intervals, "--beta", "5,50,500",
                     "--chains", "4", "--steps", "300", "--thin", "10", "-o", str(out)])
    assert code == 0
    summaries = read_tsv(out / "calibration.tsv")
    assert [float(s["beta"]) for s in summaries] == [5, 50, 500]
    distances = [float(s["median_mean_distance"]) for s in summaries]
    assert distances == sorted(distances, reverse=True)          # stronger β, closer samples
    assert len(read_tsv(out / "calibration_inputs.tsv")) == 9
    assert (out / "calibration.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    recommendation = json.loads((out / "calibration.json").read_text())["recommendation"]
    assert set(recommendation) == {"by_distance", "by_entropy", "explanation"}
    assert "distance rule" in capsys.readouterr().out


def test_denovo_and_knn(tmp_path, capsys):
    runs = {}
    for label, intervals in (("positives", peaks(tmp_path, {f"peak_{i}" for i in range(1, 7)})),
                             ("negatives", background(tmp_path, 6))):
        runs[label] = tmp_path / label
        code = cli.main(["denovo", *MODEL, *GENOME, "--intervals", intervals, "--beta", "50", "--chains", "4",
                         "--steps", "400", "--thin", "5", "--components", "3", "--writers", "summary,pca",
                         "-o", str(runs[label])])
        assert code == 0
    names, pcas, control = load_pca(runs["positives"] / "pca.npz")
    assert names == [f"peak_{i}" for i in range(1, 7)] and control.shape == (3, 101)
    assert all(p.components.shape == (3, 101) and np.all(np.diff(p.variances) >= 0) for p in pcas)

    test_positives = peaks(tmp_path, {f"peak_{i}" for i in range(7, 13)})
    test_negatives = bed(tmp_path / "test_negatives.bed", [f"chrC\t{2000 + 1500 * i}\t{2101 + 1500 * i}" for i in range(6)])
    code = cli.main(["knn", "--positives", str(runs["positives"]), "--negatives", str(runs["negatives"] / "pca.npz"),
                     "--test-positives", test_positives, "--test-negatives", test_negatives, *GENOME,
                     "--neighbors", "3", "-o", str(tmp_path / "knn")])
    assert code == 0
    result = json.loads((tmp_path / "knn" / "knn.json").read_text())
    assert result["test"] == {"positive": 6, "negative": 6} and result["neighbors"] == 3
    # the command's accuracies are the paper's k-NN on these exemplars and test windows, by brute force
    _, negative_pcas, _ = load_pca(runs["negatives"] / "pca.npz")
    test = np.concatenate([encode_bed(test_positives), encode_bed(test_negatives)])
    truth = np.array([1] * 6 + [0] * 6)
    exemplars, labels = pcas + negative_pcas, np.array([1] * 6 + [0] * 6)
    assert result["components"] == pytest.approx(brute_force_knn(
        exemplars, labels, test, truth, lambda pca: (pca.components, np.sqrt(pca.variances)), neighbors=3))
    assert result["control"] == pytest.approx(brute_force_knn(
        exemplars, labels, test, truth, lambda pca: (control, pca.control_sd), neighbors=3))
    # intervals of the same accuracies over the 12 test windows; the paired test is a probability
    for name in ("components", "control"):
        correct = np.arange(12) < round(result[name] * 12)
        assert result[f"{name}_interval"] == pytest.approx(list(accuracy_interval(correct)))
    assert 0 < result["paired_p"] <= 1
    assert f"{result['components']:.3f} (95 % CI" in capsys.readouterr().out


def encode_bed(path) -> np.ndarray:
    """±1-encoded sequences (G, C = +1; A, T = −1) of a BED's intervals resized around their centre
    to 101 bp, read with pyfaidx."""
    import pyfaidx

    genome = pyfaidx.Fasta(GENOME[1], as_raw=True)
    rows = [line.split("\t") for line in Path(path).read_text().splitlines()]
    starts = [(int(start) + int(end)) // 2 - 50 for _, start, end, *_ in rows]
    return np.array([[1.0 if base in "GC" else -1.0 for base in genome[row[0]][start:start + 101].upper()]
                     for row, start in zip(rows, starts)])


def brute_force_knn(exemplars, labels, test, truth, directions_of, neighbors):
    """METHOD §7, one test element and one exemplar at a time (SDs floored at 2/sqrt(samples))."""
    correct = 0
    for element, label in zip(test, truth):
        distances = []
        for pca in exemplars:
            directions, sd = directions_of(pca)
            sd = np.maximum(sd, 2 / np.sqrt(pca.n_samples))
            distances.append(np.linalg.norm((directions @ (element - pca.mean)) / sd))
        nearest = np.argsort(distances, kind="stable")[:neighbors]
        votes = np.bincount(labels[nearest], minlength=2)
        winner = labels[nearest[0]] if votes[0] == votes[1] else int(np.argmax(votes))
        correct += winner == label
    return correct / len(test)


def test_knn_needs_its_inputs(tmp_path, capsys):
    assert cli.main(["knn", "--positives", "x", "-o", str(tmp_path)]) == 2
    assert "knn needs --negatives" in capsys.readouterr().err


def test_output_units_override(tmp_path, capsys):
    out = tmp_path / "units"
    code = cli.main(["sample", *MODEL, "--sequences", str(EXAMPLE / "data" / "ctcf_bound_10.fa"), "--beta", "50",
                     "--chains", "2", "--steps", "20", "--thin", "10", "--output-units", "1", "--writers", "summary",
                     "-o", str(out)])
    assert code == 0
    record = json.loads((out / "run.json").read_text())
    assert record["spec"]["output_units"] == [1] and record["spec"]["penultimate_layer"] == "dense_hidden"
    assert cli.main(["sample", *MODEL, "--sequences", str(EXAMPLE / "data" / "ctcf_bound_10.fa"),
                     "--output-units", "1,x", "-o", str(tmp_path / "bad")]) == 2
    assert "--output-units must be o or a,b" in capsys.readouterr().err
