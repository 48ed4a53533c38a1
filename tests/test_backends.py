"""The PyTorch and generic Kipoi backends, the backend dispatch, and the PyTorch CTCF example
(example_configs/models/ctcf_torch) end to end through the CLI."""
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pybedtools
import pytest
import torch
from sampling_checks import assert_samples_match_enumeration, beta_for_x0_probability
from torch import nn
from toy_models import (
    TinyTorchNet,
    codes_for,
    manual_phi,
    seeded,
    write_torch_model_dir,
)

from kipoi_maxent.api import resolve_model
from kipoi_maxent.api import penultimate_model
from kipoi_maxent.backends import kipoi_generic
from kipoi_maxent.samplers import make_engine
from kipoi_maxent.spec import ModelSpec, load_spec

REPO = Path(__file__).resolve().parent.parent
EXAMPLE = REPO / "example_configs"
TORCH_MODEL = EXAMPLE / "models" / "ctcf_torch"
TORCH_SPEC = REPO / "model_specs" / "ctcf_torch.yaml"
LENGTH = 5


# One intra-op thread: these networks are tiny, and on a shared 2-core machine torch's thread
# pool spins (a 256-row forward of the tiny net: 0.1 ms on one thread, 0.7 ms or far worse on two).
# Outputs do not depend on it.
@pytest.fixture(scope="module", autouse=True)
def one_torch_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


# --------------------------------------------------------------------------- helpers

def identities() -> nn.Sequential:
    """40 identity modules, then Flatten and a Linear: more module names than an error lists."""
    return nn.Sequential(*[nn.Identity() for _ in range(40)], nn.Flatten(), nn.Linear(4 * LENGTH, 2))


class CentreOverBatch(nn.Module):
    """Subtracts the batch mean: an input's output depends on the other inputs of its batch."""

    def forward(self, x):
        return x - x.mean(dim=0, keepdim=True)


def batch_centred() -> nn.Sequential:
    return nn.Sequential(nn.Flatten(), CentreOverBatch(), nn.Linear(4 * LENGTH, 2))


def tiny_torch_kipoi_model(directory: Path, seed: int, n_outputs: int = 2, scale: float = 1.0):
    import kipoi

    network = seeded(TinyTorchNet(LENGTH, n_outputs), seed, scale)
    write_torch_model_dir(directory, network, "toy_models:TinyTorchNet", (4, LENGTH), n_outputs,
                          {"length": LENGTH, "n_outputs": n_outputs})
    return kipoi.get_model(str(directory), source="dir")


# --------------------------------------------------------------------------- the CTCF example

@pytest.fixture(scope="module")
def ctcf_torch():
    import kipoi

    return kipoi.get_model(str(TORCH_MODEL), source="dir")


def test_example_schema_and_predictions(ctcf_torch):
    assert tuple(ctcf_torch.schema.inputs.shape) == (4, 101)
    dl = ctcf_torch.default_dataloader(intervals_file=str(EXAMPLE / "data" / "ctcf_peaks.bed"),
                                       fasta_file=str(EXAMPLE / "data" / "ctcf_genome.fa"))
    x = dl.load_all()["inputs"]
    assert x.shape == (12, 4, 101) and x.dtype == np.float32
    p = ctcf_torch.predict_on_batch(x)
    np.testing.assert_allclose(p.sum(axis=1), 1, atol=1e-5)
    assert (p[:, 1] > 0.5).sum() >= 10  # the planted peaks score high
    report = json.loads((TORCH_MODEL / "training_report.json").read_text())
    assert report["test_auc"] > 0.95


def test_example_phi_matches_manual_forward(ctcf_torch):
    resolved = resolve_model(ctcf_torch, load_spec(TORCH_SPEC))
    assert resolved.spec.layout == (4, "L") and resolved.sequence_length == 101
    assert resolved.network.layer == "output of 'hidden_relu' (ReLU)"
    kernel = ctcf_torch.model.output.weight.detach().numpy().T
    np.testing.assert_allclose(resolved.network.output_kernel, kernel)
    np.testing.assert_allclose(resolved.weights, kernel[:, 1] - kernel[:, 0])
    codes = codes_for(101, 7, seed=1)
    phi = resolved.penultimate(codes)
    assert phi.shape == (7, 100) and phi.dtype == np.float64
    expected = manual_phi(ctcf_torch.model, "hidden_relu", resolved.encoder.encode(codes))
    np.testing.assert_allclose(phi, expected, rtol=1e-5, atol=1e-6)
    # auto: the input of the last Linear, i.e. the same activations after the identity Dropout
    auto = resolve_model(ctcf_torch, ModelSpec(output_units=(1, 0)))
    assert auto.network.layer == "input of 'output' (last nn.Linear)"
    assert auto.spec.layout == (4, "L")
    np.testing.assert_array_equal(auto.penultimate(codes), phi)


def test_example_phi_does_not_depend_on_batching(ctcf_torch):
    """Φ of a sequence is bit-identical alone, in a small batch, and across the 256-row blocks."""
    resolved = resolve_model(ctcf_torch, load_spec(TORCH_SPEC))
    codes = codes_for(101, 300, seed=2)
    together = resolved.penultimate(codes)
    for i in (0, 5, 255, 256, 299):
        np.testing.assert_array_equal(resolved.penultimate(codes[i:i + 1]), together[i:i + 1])
    np.testing.assert_array_equal(resolved.penultimate(codes[250:262]), together[250:262])


@pytest.mark.parametrize("layer, message", [
    ("nope", (r"'nope' is not a module of the PyTorch model CtcfCnn.*available modules \(8\): conv, conv_relu, "
              r"flatten, hidden, hidden_relu, dropout, output, softmax$")),
    ("hidden", (r"output of module 'hidden' is not what the final nn.Linear 'output' receives \(modules in "
                r"between: hidden_relu \(ReLU\), dropout \(Dropout\)\).*or give output_weights")),
    ("conv", (r"output of module 'conv' is not what .* receives \(modules in between: conv_relu \(ReLU\), "
              r"flatten \(Flatten\), hidden \(Linear\), hidden_relu \(ReLU\), dropout \(Dropout\)\)")),
    ("softmax", r"output of module 'softmax' is not .* \(it comes after that Linear\)"),
    (3, r"'3' is not a module"),
])
def test_example_layer_errors(ctcf_torch, layer, message):
    with pytest.raises(ValueError, match=message):
        penultimate_model(ctcf_torch, ModelSpec(penultimate_layer=layer))


def test_unknown_module_list_is_cut(tmp_path):
    import kipoi

    write_torch_model_dir(tmp_path, identities(), "test_backends:identities", (4, LENGTH), 2)
    model = kipoi.get_model(str(tmp_path), source="dir")
    with pytest.raises(ValueError, match=r"available modules \(42\): 0, 1, 2, .*, 29, …$"):
        penultimate_model(model, ModelSpec(penultimate_layer="40.1"))
    assert penultimate_model(model, ModelSpec(penultimate_layer="40")).output_kernel.shape == (4 * LENGTH, 2)


def test_batch_dependent_activations_are_refused(tmp_path):
    import kipoi

    write_torch_model_dir(tmp_path, batch_centred(), "test_backends:batch_centred", (4, LENGTH), 2)
    with pytest.raises(ValueError, match=r"activations of input of '2' .* depend on the other inputs of its batch"):
        penultimate_model(kipoi.get_model(str(tmp_path), source="dir"), ModelSpec())


def test_spec_output_weights_replace_the_linear(ctcf_torch, tmp_path):
    """With output_weights, any module may be penultimate (here the pre-ReLU Linear output)."""
    weights = np.random.default_rng(0).normal(size=(100, 3))
    np.save(tmp_path / "w.npy", weights)
    spec = ModelSpec(penultimate_layer="hidden", output_weights=str(tmp_path / "w.npy"))
    network = penultimate_model(ctcf_torch, spec)
    np.testing.assert_array_equal(network.output_kernel, weights)
    x = np.random.default_rng(1).random((3, 4, 101)).astype(np.float32)
    np.testing.assert_allclose(network.activations(x), manual_phi(ctcf_torch.model, "hidden", x), rtol=1e-6)
    np.save(tmp_path / "w.npy", weights[:50])
    with pytest.raises(ValueError, match=r"has 50 rows, but the penultimate layer .* has 100 units"):
        penultimate_model(ctcf_torch, spec)


@pytest.fixture(scope="module")
def ctcf_torch_cli(tmp_path_factory):
    out = tmp_path_factory.mktemp("ctcf_torch_run")
    result = subprocess.run(
        [str(Path(sys.executable).parent / "kipoi-maxent"), "sample", str(TORCH_MODEL), "--source", "dir",
         "--spec", str(TORCH_SPEC), "--intervals", str(EXAMPLE / "data" / "ctcf_peaks.bed"),
         "--fasta", str(EXAMPLE / "data" / "ctcf_genome.fa"), "-o", str(out), "--beta", "50",
         "--chains", "4", "--steps", "300", "--thin", "10", "--quiet"],
        capture_output=True, text=True, cwd=REPO, check=False,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "PYTHONWARNINGS": "ignore", "OMP_NUM_THREADS": "1"})
    assert result.returncode == 0, result.stderr[-3000:]
    return out


def test_cli_end_to_end(ctcf_torch_cli):
    out = ctcf_torch_cli
    for name in ("summary.tsv", "motifs.bed", "importance.bedGraph", "run.json"):
        assert (out / name).is_file(), name
    lines = (out / "summary.tsv").read_text().splitlines()
    header = lines[0].split("\t")
    rows = [dict(zip(header, line.split("\t"))) for line in lines[1:]]
    assert [r["name"] for r in rows] == [f"peak_{i}" for i in range(1, 13)]
    sites = {i.name.replace("site", "peak"): i for i in pybedtools.BedTool(str(EXAMPLE / "data" / "ctcf_sites.bed"))}
    overlaps = []
    for row in rows:
        assert int(row["n_samples"]) == 4 * 15 and 0.05 < float(row["acceptance_rate"]) < 1  # second half, thin 10
        site = sites[row["name"]]
        overlaps.append(min(int(row["motif_end"]), site.end) - max(int(row["motif_start"]), site.start))
    # the 19-bp motif call covers most of the 15-bp planted site on most peaks
    assert sum(overlap >= 12 for overlap in overlaps) >= 10, overlaps
    record = json.loads((out / "run.json").read_text())
    assert record["framework"].startswith("pytorch ")
    assert record["spec"]["penultimate_layer"] == "hidden_relu" and record["spec"]["layout"] == "(4, L)"


# --------------------------------------------------------------------------- sampler exactness

@pytest.fixture(scope="module")
def tiny_torch(tmp_path_factory):
    return tiny_torch_kipoi_model(tmp_path_factory.mktemp("tiny_torch"), seed=3)


@pytest.mark.parametrize("sampler, output_units, mu", [("metropolis", (1, 0), -0.8), ("gibbs", (0,), 0.6)])
def test_sampler_matches_enumeration(tiny_torch, sampler, output_units, mu):
    resolved = resolve_model(tiny_torch, ModelSpec(output_units=output_units))
    assert resolved.network.framework.startswith("pytorch") and resolved.spec.layout == (4, "L")
    x0 = np.array([2, 0, 3, 1, 2], dtype=np.int8)
    beta = beta_for_x0_probability(resolved, x0, mu, 0.005)
    engine, _ = make_engine("auto", resolved)  # no layer graph from PyTorch: the naive engine
    assert_samples_match_enumeration(resolved, engine, x0, beta, mu, sampler)


# --------------------------------------------------------------------------- generic Kipoi backend

NUMPY_MODEL = '''\
import numpy as np
from kipoi.model import BaseModel, LayerActivationMixin


class NumpyNet(BaseModel, LayerActivationMixin):
    """Flatten -> Dense(3, ReLU) "hidden" -> Dense(2) on (L, 4) inputs; weights in weights.npz."""

    def __init__(self):
        weights = np.load("weights.npz")  # Kipoi builds models inside their directory
        self.w1, self.w2 = weights["w1"], weights["w2"]

    def predict_activation_on_batch(self, x, layer, pre_nonlinearity=False):
        if layer != "hidden":
            raise ValueError(f"unknown layer {layer}")
        return [np.maximum(x.reshape(len(x), -1) @ self.w1, 0)]

    def predict_on_batch(self, x):
        return self.predict_activation_on_batch(x, "hidden")[0] @ self.w2
'''


@pytest.fixture(scope="module")
def numpy_kipoi_model(tmp_path_factory):
    """A Kipoi ``custom`` model with predict_activation_on_batch, no deep-learning framework."""
    import kipoi

    directory = tmp_path_factory.mktemp("numpy_model")
    rng = np.random.default_rng(5)
    w1, w2 = rng.normal(size=(4 * LENGTH, 3)), rng.normal(size=(3, 2))
    np.savez(directory / "weights.npz", w1=w1, w2=w2)
    np.save(directory / "output_weights.npy", w2)
    (directory / "numpy_net.py").write_text(NUMPY_MODEL)
    (directory / "model.yaml").write_text(
        "type: custom\nargs:\n  file: numpy_net.py\n  object: NumpyNet\n"
        "info:\n  authors:\n    - name: kipoi_maxent tests\n  doc: numpy model\n  license: MIT\n"
        "default_dataloader:\n  defined_as: kipoiseq.dataloaders.SeqIntervalDl\n"
        f"  default_args: {{auto_resize_len: {LENGTH}, ignore_targets: true, label_dtype: str}}\n"
        f"schema:\n  inputs:\n    name: seq\n    shape: ({LENGTH}, 4)\n    doc: one-hot DNA\n"
        "  targets:\n    shape: (2,)\n    doc: scores\n")
    (directory / "spec.yaml").write_text("penultimate_layer: hidden\noutput_units: [1, 0]\n"
                                         "output_weights: output_weights.npy\n")
    return kipoi.get_model(str(directory), source="dir"), directory, w1, w2


def test_generic_backend_through_dispatch(numpy_kipoi_model):
    model, directory, w1, w2 = numpy_kipoi_model
    network = penultimate_model(model, load_spec(directory / "spec.yaml"))
    assert network.framework == "kipoi NumpyNet"
    assert network.input_shape == (LENGTH, 4)
    np.testing.assert_array_equal(network.output_kernel, w2)
    x = np.random.default_rng(0).random((6, LENGTH, 4)).astype(np.float32)
    phi = network.activations(x)
    assert phi.shape == (6, 3) and phi.dtype == np.float32
    np.testing.assert_allclose(phi, np.maximum(x.reshape(6, -1) @ w1, 0), rtol=1e-5)


@pytest.mark.parametrize("spec, message", [
    (ModelSpec(penultimate_layer="hidden"), "give output_weights"),
    (ModelSpec(), "penultimate layer cannot be inferred"),
])
def test_generic_backend_needs_layer_and_weights(numpy_kipoi_model, spec, message):
    with pytest.raises(ValueError, match=message):
        penultimate_model(numpy_kipoi_model[0], spec)


def test_generic_backend_on_kipoi_pytorch_model(ctcf_torch, tmp_path):
    """Kipoi's own PyTorchModel.predict_activation_on_batch (nested lists) gives the hook backend's Φ."""
    np.save(tmp_path / "w.npy", ctcf_torch.model.output.weight.detach().numpy().T)
    spec = ModelSpec(penultimate_layer="hidden_relu", output_weights=str(tmp_path / "w.npy"))
    generic = kipoi_generic.penultimate_model(ctcf_torch, spec)
    hooked = penultimate_model(ctcf_torch, spec)
    x = np.random.default_rng(2).random((4, 4, 101)).astype(np.float32)
    np.testing.assert_allclose(generic.activations(x), hooked.activations(x), rtol=1e-6)
    np.testing.assert_array_equal(generic.output_kernel, hooked.output_kernel)


def test_generic_backend_declines_models_without_activations():
    assert kipoi_generic.penultimate_model(object(), ModelSpec()) is None
    with pytest.raises(ValueError, match="no backend for Kipoi model type object"):
        penultimate_model(object(), ModelSpec())


def test_generic_backend_through_resolve_model(numpy_kipoi_model):
    model, directory, w1, w2 = numpy_kipoi_model
    resolved = resolve_model(model, load_spec(directory / "spec.yaml"))
    np.testing.assert_allclose(resolved.weights, w2[:, 1] - w2[:, 0])
    codes = codes_for(LENGTH, 3, seed=4)
    expected = np.maximum(resolved.encoder.encode(codes).reshape(3, -1) @ w1, 0)
    np.testing.assert_allclose(resolved.penultimate(codes), expected, rtol=1e-5)
