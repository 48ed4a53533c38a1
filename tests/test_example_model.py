"""The shipped CTCF example model (example_configs/models/ctcf_cnn) and its example data."""
import importlib.util
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parent.parent
MODEL_DIR = REPO / "example_configs" / "models" / "ctcf_cnn"
DATA = REPO / "example_configs" / "data"


def _load_ctcf_motif():
    spec = importlib.util.spec_from_file_location(
        "ctcf_motif", REPO / "example_configs" / "ctcf_motif.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture(scope="module")
def ctcf_motif():
    return _load_ctcf_motif()


@pytest.fixture(scope="module")
def kipoi_model():
    import kipoi

    return kipoi.get_model(str(MODEL_DIR), source="dir")


def _read_bed(path):
    return [line.rstrip("\n").split("\t") for line in open(path) if line.strip()]


def test_schema(kipoi_model):
    assert tuple(kipoi_model.schema.inputs.shape) == (101, 4)
    assert kipoi_model.schema.inputs.name == "seq"
    assert tuple(kipoi_model.schema.targets.shape) == (2,)
    assert tuple(kipoi_model.model.input_shape) == (None, 101, 4)
    assert tuple(kipoi_model.model.output_shape) == (None, 2)
    names = [layer.name for layer in kipoi_model.model.layers]
    for name in ("conv", "flatten", "dense_hidden", "dropout", "output"):
        assert name in names


def test_planted_peaks_score_high(kipoi_model):
    peaks = _read_bed(DATA / "ctcf_peaks.bed")
    sites = _read_bed(DATA / "ctcf_sites.bed")
    dl = kipoi_model.default_dataloader(intervals_file=str(DATA / "ctcf_peaks.bed"),
                                        fasta_file=str(DATA / "ctcf_genome.fa"))
    batch = dl.load_all()
    x = batch["inputs"]
    assert x.shape == (len(peaks), 101, 4)
    np.testing.assert_allclose(x.sum(axis=-1), 1.0)  # soft-masked bases are upper-cased
    ranges = batch["metadata"]["ranges"]
    for i, site in enumerate(sites):
        assert ranges["chr"][i] == site[0]
        assert ranges["end"][i] - ranges["start"][i] == 101
        assert ranges["start"][i] <= int(site[1]) and int(site[2]) <= ranges["end"][i]
    p = np.asarray(kipoi_model.predict_on_batch(x))
    assert p.shape == (len(peaks), 2)
    np.testing.assert_allclose(p.sum(axis=1), 1.0, atol=1e-5)
    assert p[:, 1].mean() > 0.5
    assert (p[:, 1] > 0.5).sum() >= len(peaks) // 2


def test_real_ctcf_bound_sequences(kipoi_model, ctcf_motif):
    seqs = [line.strip() for line in open(DATA / "ctcf_bound_10.fa") if not line.startswith(">")]
    x = ctcf_motif.one_hot(seqs)
    assert x.shape == (10, 101, 4)
    p = np.asarray(kipoi_model.predict_on_batch(x))[:, 1]
    assert p.mean() > 0.5


def test_dinucleotide_shuffle_preserves_counts(ctcf_motif):
    rng = np.random.default_rng(0)
    changed = 0
    for i in range(300):
        n = int(rng.integers(2, 150))
        alphabet = list("ACGT") if i % 3 else list("AAACGN")  # skewed, with a 5th letter
        s = "".join(rng.choice(alphabet, size=n))
        t = ctcf_motif.dinucleotide_shuffle(s, rng)
        assert len(t) == len(s)
        assert t[0] == s[0] and t[-1] == s[-1]
        assert ctcf_motif.dinucleotide_counts(t) == ctcf_motif.dinucleotide_counts(s)
        changed += t != s
    assert changed > 250


def test_dinucleotide_shuffle_is_uniform(ctcf_motif):
    # "AACAGTGCAT" has exactly 18 sequences with its first letter and dinucleotide counts
    rng = np.random.default_rng(1)
    from collections import Counter

    c = Counter(ctcf_motif.dinucleotide_shuffle("AACAGTGCAT", rng) for _ in range(3600))
    assert len(c) == 18
    assert min(c.values()) > 120 and max(c.values()) < 280
