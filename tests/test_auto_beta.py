"""kipoi_maxent.auto_beta: the pilot that picks β, with few inputs (background sequences)."""
import numpy as np
import pytest
from toy_models import tiny_keras_model, write_fasta

from kipoi_maxent import auto_beta
from kipoi_maxent.api import as_inputs, resolve_model, sample
from kipoi_maxent.samplers import make_engine

LENGTH = 8
SEQUENCES = ["ACGTTGCA", "GGCATTAC", "TTACGGAT"]


@pytest.fixture(scope="module")
def tiny():
    resolved = resolve_model(tiny_keras_model(LENGTH, seed=3))
    return resolved, make_engine("auto", resolved)[0]


def pilot(tiny, **options):
    resolved, engine = tiny
    inputs = as_inputs(SEQUENCES, LENGTH)
    return auto_beta.pilot_beta(resolved, engine, inputs, np.stack([item.codes for item in inputs]), mu=0.0,
                                seed=1, **options)


def test_few_inputs_are_compared_with_shuffles_that_are_not_the_input(tiny):
    """Three 8-bp inputs: the nearest "other" sequence is sought among dinucleotide shuffles,
    some of which equal their input; those are left out (else the nearest distance is 0, and
    the pilot starts at an infinite β)."""
    record = pilot(tiny)
    assert record["pilot"]["reference_set"] == "200 dinucleotide shuffles of the inputs"
    assert 0 < record["pilot"]["median_nearest_distance"] < np.inf
    sampled = [row["beta"] for row in record["table"]]
    assert min(sampled) <= record["beta"] <= max(sampled)
    assert record["rule"] and record["explanation"]
    assert pilot(tiny)["beta"] == record["beta"]  # deterministic


def test_few_inputs_with_a_genome_use_its_windows(tiny, tmp_path):
    rng = np.random.default_rng(0)
    genome = write_fasta(tmp_path / "genome.fa", {"chrA": "".join(rng.choice(list("ACGT"), 400))})
    record = pilot(tiny, genome=str(genome))
    assert record["pilot"]["reference_set"] == f"200 windows drawn from {genome}"
    assert 0 < record["pilot"]["median_nearest_distance"] < np.inf


def test_sample_with_beta_auto_uses_the_pilots_beta(tiny):
    model = tiny_keras_model(LENGTH, seed=3)  # the fixture's network
    options = dict(seed=1, steps=400, chains=2, thin=10, engine="fused", motif_width=4)
    automatic = sample(model, SEQUENCES, beta="auto", **options)
    given = sample(model, SEQUENCES, beta=pilot(tiny)["beta"], **options)
    assert len(automatic) == 3 and automatic[0].samples.shape == (2, 20, LENGTH)
    for a, b in zip(automatic, given):
        np.testing.assert_array_equal(a.samples, b.samples)


def test_beta_cache_is_per_model_and_inputs_by_content(tmp_path, monkeypatch):
    """The same model and inputs (even copied elsewhere) reuse the cached β; other inputs get
    their own pilot, so a run's β never depends on what ran before it on the machine."""
    import kipoi_maxent
    from toy_models import write_kipoi_model_dir

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    model = write_kipoi_model_dir(tmp_path / "model", tiny_keras_model(LENGTH, seed=3))
    first = write_fasta(tmp_path / "first.fa", {f"s{i}": s for i, s in enumerate(SEQUENCES)})
    copy = tmp_path / "elsewhere" / "first.fa"
    copy.parent.mkdir()
    copy.write_bytes(first.read_bytes())
    other = write_fasta(tmp_path / "other.fa", {"t0": "AAAACCCC", "t1": "GGGGTTTT", "t2": "ACACACAC"})
    options = dict(source="dir", steps=200, chains=2, thin=10, writers=["summary"], seed=1, motif_width=4)

    def run(name, sequences):
        result = kipoi_maxent.run(str(model), sequences=str(sequences), output=str(tmp_path / name), **options)
        return result.record["sampler"]["beta"], result.record["sampler"]["beta_source"]

    beta, source = run("a", first)
    assert source == "auto"
    assert run("b", copy) == (beta, "cached")  # same contents, another path
    assert run("c", other)[1] == "auto"  # other inputs: their own pilot, whatever is cached
    assert run("d", first) == (beta, "cached")
