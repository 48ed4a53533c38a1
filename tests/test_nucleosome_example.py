"""The shipped nucleosome example (example_configs/models/nucleosome_cnn), its spec and data."""
import importlib.util
from pathlib import Path

import numpy as np
import pytest

from kipoi_maxent import api
from kipoi_maxent.genome_composition import count_bases, gc_chemical_potential
from kipoi_maxent.inputs import bed_inputs
from kipoi_maxent.samplers import SamplerConfig, make_engine
from kipoi_maxent.sequence import GC_CODES
from kipoi_maxent.spec import load_spec

REPO = Path(__file__).resolve().parent.parent
MODEL_DIR = REPO / "example_configs" / "models" / "nucleosome_cnn"
DATA = REPO / "example_configs" / "data"
SPEC = REPO / "model_specs" / "nucleosome_cnn.yaml"
FASTA = DATA / "yeast_genome.fa"
NUCLEOSOMES = DATA / "yeast_nucleosomes.bed"
BACKGROUND = DATA / "yeast_background.bed"
LENGTH = 201


def _load(name, path):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def nucleosome_data():
    return _load("make_nucleosome_data", DATA / "make_nucleosome_data.py")


@pytest.fixture(scope="module")
def kipoi_model():
    import kipoi

    return kipoi.get_model(str(MODEL_DIR), source="dir")


@pytest.fixture(scope="module")
def resolved(kipoi_model):
    return api.resolve_model(kipoi_model, load_spec(SPEC))


def _read_bed(path):
    return [line.rstrip("\n").split("\t") for line in open(path) if line.strip()]


def _codes(bed):
    return np.stack([item.codes for item in bed_inputs(bed, FASTA, LENGTH)])


def test_schema(kipoi_model):
    assert tuple(kipoi_model.schema.inputs.shape) == (LENGTH, 4)
    assert tuple(kipoi_model.model.input_shape) == (None, LENGTH, 4)
    assert tuple(kipoi_model.model.output_shape) == (None, 2)
    layers = {layer.name: layer for layer in kipoi_model.model.layers}
    assert layers["conv"].filters == 30 and tuple(layers["conv"].kernel_size) == (6,)
    assert layers["dense_hidden"].units == 400
    assert layers["conv"].activation.__name__ == layers["dense_hidden"].activation.__name__ == "sigmoid"
    # Kipoi wraps the class to set the default arguments of model.yaml
    assert "BernoulliSeqIntervalDl" in [cls.__name__ for cls in kipoi_model.default_dataloader.__mro__]


def test_spec_resolves_with_the_fused_engine(resolved):
    assert resolved.spec.sequence_length == LENGTH
    assert resolved.spec.output_units == (1, 0)
    assert resolved.network.layer.endswith("'dense_hidden'")
    assert resolved.weights.shape == (400,)
    engine, fallback = make_engine("auto", resolved)
    assert (engine.name, fallback) == ("fused", None)


def test_normalization_is_the_whole_genome_bernoulli(nucleosome_data):
    normalization = load_spec(SPEC).normalization
    frequencies = nucleosome_data.base_frequencies(nucleosome_data.read_yeast_genome())
    np.testing.assert_allclose(normalization.center, frequencies, atol=5e-7)
    np.testing.assert_allclose(normalization.scale, np.sqrt(frequencies * (1 - frequencies)), atol=5e-7)
    gc = frequencies[list(GC_CODES)].sum()
    assert abs(gc - 0.38297) < 5e-6 and abs(gc_chemical_potential(gc) - (-0.4770)) < 1e-4
    dataloader = _load("nucleosome_dataloader", MODEL_DIR / "nucleosome_dataloader.py")
    np.testing.assert_allclose(dataloader.GENOME_BASE_FREQUENCIES, normalization.center)
    np.testing.assert_allclose(dataloader.BERNOULLI_SCALE, normalization.scale)


def test_shipped_fasta_and_beds_agree():
    import pyfaidx

    fasta = pyfaidx.Fasta(str(FASTA), rebuild=False)
    sizes = {name: len(record) for name, record in fasta.items()}
    assert sizes == {"chrIII": 316620, "chrX": 745751}
    nucleosomes, background = _read_bed(NUCLEOSOMES), _read_bed(BACKGROUND)
    assert len(nucleosomes) == len(background) == 20
    for chrom, start, end, _ in nucleosomes + background:
        assert chrom in sizes and 0 <= int(start) and int(end) <= sizes[chrom]
        assert int(end) - int(start) == LENGTH
    assert len({row[3] for row in nucleosomes + background}) == 40
    for chrom, start, end, _ in background:  # controls lie away from every planted window
        assert all(c != chrom or int(end) + 1000 <= int(s) or int(e) + 1000 <= int(start)
                   for c, s, e, _ in nucleosomes)
    fasta.close()
    counts = count_bases(FASTA)
    assert counts.n_other == 0
    assert abs(gc_chemical_potential(counts.gc_fraction) - (-0.4770)) < 0.02  # what --mu auto gives


def test_planted_signal(nucleosome_data):
    nd = nucleosome_data
    rng = np.random.default_rng(0)
    _, _, plain = nd.random_windows(nd.read_yeast_genome(("chrIII",)), ("chrIII",), 3000, rng)
    planted = nd.plant_nucleosome_signal(plain, rng)
    touched = slice(nd.AA_TT_STARTS[0] - nd.MAX_SHIFT, nd.GC_STARTS[-1] + nd.MAX_SHIFT + 2)
    np.testing.assert_array_equal(np.delete(planted, np.s_[touched], axis=1),
                                  np.delete(plain, np.s_[touched], axis=1))
    core = slice(nd.CORE_START, nd.CORE_START + nd.CORE)
    raised = nd.raise_gc(plain, rng)
    gain = np.isin(raised[:, core], GC_CODES).mean() - np.isin(plain[:, core], GC_CODES).mean()
    assert abs(gain - nd.GC_RAISE * (1 - 0.38)) < 0.01

    def gc_dinucleotides_at_sites(codes):  # "GC" starting at a site, any frame shift
        starts = (nd.GC_STARTS[:, None] + np.arange(-nd.MAX_SHIFT, nd.MAX_SHIFT + 1)).ravel()
        return ((codes[:, starts] == 2) & (codes[:, starts + 1] == 1)).sum(axis=1).mean()

    extra = gc_dinucleotides_at_sites(planted) - gc_dinucleotides_at_sites(plain)
    expected = len(nd.GC_STARTS) * nd.P_DINUCLEOTIDE  # 4.5 planted per window, minus overwrites
    assert expected - 1 < extra < expected + 0.5


def test_predictions(kipoi_model, resolved):
    dl = kipoi_model.default_dataloader(intervals_file=str(NUCLEOSOMES), fasta_file=str(FASTA))
    batch = dl.load_all()
    x = batch["inputs"]
    codes = _codes(NUCLEOSOMES)
    # the default dataloader normalises exactly as the spec's encoder
    np.testing.assert_allclose(x, resolved.encoder.encode(codes), atol=1e-6)
    np.testing.assert_array_equal(resolved.encoder.decode(x), codes)
    p_nucleosome = np.asarray(kipoi_model.predict_on_batch(x))[:, 1]
    p_background = np.asarray(kipoi_model.predict_on_batch(resolved.encoder.encode(_codes(BACKGROUND))))[:, 1]
    assert (p_nucleosome > 0.5).sum() >= 15
    assert (p_background < 0.5).sum() >= 15
    assert p_nucleosome.mean() > p_background.mean() + 0.3


def test_short_sampling_run(resolved):
    codes = _codes(NUCLEOSOMES)[:2]
    results = list(api.iter_sample(resolved, api.as_inputs(codes, LENGTH),
                                   SamplerConfig(beta=40, mu=-0.477, chains=4, steps=300, thin=10, seed=0),
                                   ))
    assert len(results) == 2
    for result, x0 in zip(results, codes):
        assert result.samples.shape == (4, 15, LENGTH)  # 300 steps, the first half discarded, thin 10
        np.testing.assert_allclose(result.frequencies.sum(axis=1), 1.0)
        assert 0.05 < result.acceptance_rate < 1
        assert (result.samples != x0).any()
        assert np.all(np.isfinite(result.importance))
