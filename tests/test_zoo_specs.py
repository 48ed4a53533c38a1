"""The shipped specs of Kipoi zoo models (model_specs/{basset,deepsea_predict,deepsea_beluga,scbasset}.yaml)
against stand-ins with the zoo architectures (same module names and shapes, random weights),
saved as real Kipoi model directories. The zoo's own weights are not downloaded."""
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn
from toy_models import codes_for, manual_phi, write_torch_model_dir

from kipoi_maxent.api import resolve_model
from kipoi_maxent.sequence import decode
from kipoi_maxent.spec import InputEncoder, find_spec, load_spec

SPECS = Path(__file__).resolve().parent.parent / "model_specs"

#: Zoo name -> (spec file, schema input shape, default-dataloader one-hot arguments), from
#: kipoi/models: Basset/model.yaml, DeepSEA/predict/model.yaml, DeepSEA/beluga/model.yaml,
#: scbasset/model.yaml.
ZOO = {
    "Basset": ("basset.yaml", (4, 600, 1), {"alphabet_axis": 0, "dummy_axis": 2}),
    "DeepSEA/predict": ("deepsea_predict.yaml", (4, 1, 1000), {"alphabet_axis": 0, "dummy_axis": 1}),
    "DeepSEA/beluga": ("deepsea_beluga.yaml", (4, 1, 2000), {"alphabet": "AGCT", "alphabet_axis": 0, "dummy_axis": 1}),
    "scbasset": ("scbasset.yaml", (1344, 4), {"alphabet_axis": 1}),
}


# --------------------------------------------------------------------------- stand-in architectures
# Written from the zoo's published layer lists. The zoo wraps each Linear as Sequential(Lambda
# reshape, Linear) and flattens with a Lambda; parameter-free nn.Identity / nn.Flatten take those
# places, so module paths and state_dict keys match the zoo's.

def _linear(n_in: int, n_out: int) -> nn.Sequential:
    return nn.Sequential(nn.Identity(), nn.Linear(n_in, n_out))


def basset() -> nn.Sequential:
    """Basset/pretrained_model_reloaded_th.py: input (4, 600, 1), 164 sigmoid outputs."""
    return nn.Sequential(
        nn.Conv2d(4, 300, (19, 1)), nn.BatchNorm2d(300), nn.ReLU(), nn.MaxPool2d((3, 1), (3, 1)),
        nn.Conv2d(300, 200, (11, 1)), nn.BatchNorm2d(200), nn.ReLU(), nn.MaxPool2d((4, 1), (4, 1)),
        nn.Conv2d(200, 200, (7, 1)), nn.BatchNorm2d(200), nn.ReLU(), nn.MaxPool2d((4, 1), (4, 1)),
        nn.Flatten(),
        _linear(2000, 1000), nn.BatchNorm1d(1000), nn.ReLU(), nn.Dropout(0.3),
        _linear(1000, 1000), nn.BatchNorm1d(1000), nn.ReLU(), nn.Dropout(0.3),
        _linear(1000, 164), nn.Sigmoid(),
    )


class AcgtToAgct(nn.Module):
    """DeepSEA's ReCodeAlphabet: the network was trained on A, G, C, T channels."""

    def forward(self, x):
        return x[:, [0, 2, 1, 3]]


class WithReverseComplement(nn.Module):
    """DeepSEA's ConcatenateRC: the batch, then its reverse complements (channels and positions flipped)."""

    def forward(self, x):
        return torch.cat([x, x.flip(1, 3)])


class AverageStrands(nn.Module):
    """DeepSEA's AverageRC: mean of the two halves of the batch."""

    def forward(self, x):
        half = len(x) // 2
        return x[:half] / 2 + x[half:] / 2


def deepsea_predict() -> nn.Sequential:
    """DeepSEA/model_architecture.py predict_model: input (4, 1, 1000), 919 sigmoid outputs."""
    network = nn.Sequential(
        nn.Conv2d(4, 320, (1, 8)), nn.Threshold(0, 1e-06), nn.MaxPool2d((1, 4), (1, 4)), nn.Dropout(0.2),
        nn.Conv2d(320, 480, (1, 8)), nn.Threshold(0, 1e-06), nn.MaxPool2d((1, 4), (1, 4)), nn.Dropout(0.2),
        nn.Conv2d(480, 960, (1, 8)), nn.Threshold(0, 1e-06), nn.Dropout(0.5),
        nn.Flatten(), _linear(50880, 925), nn.Threshold(0, 1e-06), _linear(925, 919), nn.Sigmoid(),
    )
    return nn.Sequential(AcgtToAgct(), WithReverseComplement(), network, AverageStrands())


class Beluga(nn.Module):
    """DeepSEA/beluga/model.py: input (4, 1, 2000) in A, G, C, T order, 2002 sigmoid outputs."""

    def __init__(self):
        super().__init__()
        convolutions = []
        for n_in, n_out in ((4, 320), (320, 480), (480, 640)):
            convolutions += [nn.Conv2d(n_in, n_out, (1, 8)), nn.ReLU(), nn.Conv2d(n_out, n_out, (1, 8)), nn.ReLU()]
            if n_out != 640:
                convolutions += [nn.Dropout(0.2), nn.MaxPool2d((1, 4), (1, 4))]
        self.model = nn.Sequential(
            nn.Sequential(*convolutions),
            nn.Sequential(nn.Dropout(0.5), nn.Flatten(), _linear(67840, 2003), nn.ReLU(), _linear(2003, 2002)),
            nn.Sigmoid(),
        )

    def forward(self, x):
        return self.model(x)


def randomized(network: nn.Module, seed: int) -> nn.Module:
    """Fresh (seeded) weights; batch-norm statistics random too, so no layer is near the identity."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for child in network.modules():
            if isinstance(child, nn.modules.batchnorm._BatchNorm):
                for tensor in (child.weight, child.bias, child.running_mean):
                    tensor.copy_(torch.randn(tensor.shape, generator=generator))
                child.running_var.copy_(torch.rand(child.running_var.shape, generator=generator) + 0.5)
    return network.eval()


def stand_in(tmp_path_factory, builder, zoo_name, n_outputs):
    """(loaded Kipoi model, directory) of a stand-in; weights deleted at teardown (DeepSEA's are 200-550 MB)."""
    import kipoi

    torch.manual_seed(0)
    network = randomized(builder(), seed=1)
    shape, loader = ZOO[zoo_name][1], ZOO[zoo_name][2]
    directory = write_torch_model_dir(tmp_path_factory.mktemp(zoo_name.replace("/", "_")), network,
                                      f"test_zoo_specs:{builder.__name__}", shape, n_outputs, dataloader_args=loader)
    del network
    return kipoi.get_model(str(directory), source="dir"), directory


@pytest.fixture(scope="module")
def basset_model(tmp_path_factory):
    model, directory = stand_in(tmp_path_factory, basset, "Basset", 164)
    yield model, directory
    shutil.rmtree(directory)


@pytest.fixture(scope="module")
def deepsea_predict_model(tmp_path_factory):
    model, directory = stand_in(tmp_path_factory, deepsea_predict, "DeepSEA/predict", 919)
    yield model, directory
    shutil.rmtree(directory)


@pytest.fixture(scope="module")
def beluga_model(tmp_path_factory):
    model, directory = stand_in(tmp_path_factory, Beluga, "DeepSEA/beluga", 2002)
    yield model, directory
    shutil.rmtree(directory)


# --------------------------------------------------------------------------- specs vs the zoo schemas

@pytest.mark.parametrize("zoo_name", list(ZOO))
def test_spec_is_found_and_matches_the_zoo_dataloader(zoo_name):
    """The spec's alphabet and layout give exactly the zoo dataloader's one-hot tensor."""
    from kipoiseq.transforms import ReorderedOneHot

    file_name, shape, loader = ZOO[zoo_name]
    spec = find_spec(zoo_name)
    assert spec is not None and spec.source == str(SPECS / file_name) and zoo_name in spec.models
    assert spec == load_spec(SPECS / file_name)
    assert spec.output_units == (0,) and "Multi-task" in (SPECS / file_name).read_text()
    length = spec.sequence_length
    assert tuple(length if axis == "L" else axis for axis in spec.layout) == shape
    codes = np.random.default_rng(0).integers(0, 4, (2, length)).astype(np.int8)
    encoder = InputEncoder(spec.alphabet, spec.layout)
    expected = np.stack([ReorderedOneHot(dtype=np.float32, **loader)(seq) for seq in decode(codes)])
    np.testing.assert_array_equal(encoder.encode(codes), expected)


# --------------------------------------------------------------------------- PyTorch stand-ins

def check_resolved(kipoi_model, directory, zoo_name, output_path, width, copies=1):
    """resolve_model(directory, spec): Φ (n, width) equals a manual forward, kernel = the final Linear."""
    spec = load_spec(SPECS / ZOO[zoo_name][0])
    resolved = resolve_model(str(directory), spec, source="dir")
    assert resolved.spec.layout == spec.layout and resolved.sequence_length == spec.sequence_length
    linear = dict(kipoi_model.model.named_modules())[output_path]
    kernel = np.tile(linear.weight.detach().numpy().T, (copies, 1))
    assert resolved.network.output_kernel.shape == (width, linear.out_features)
    np.testing.assert_array_equal(resolved.network.output_kernel, kernel)
    np.testing.assert_array_equal(resolved.weights, kernel[:, 0])

    codes = codes_for(spec.sequence_length, 3, seed=5)
    x = resolved.encoder.encode(codes)
    phi = resolved.network.activations(x)
    assert phi.shape == (3, width) and phi.dtype == np.float32
    assert np.ptp(phi, axis=0).max() > 0, "Φ must vary with the input for the comparison to mean anything"
    return phi, x


def test_basset(basset_model):
    model, directory = basset_model
    phi, x = check_resolved(model, directory, "Basset", "21.1", 1000)
    np.testing.assert_allclose(phi, manual_phi(model.model, "19", x), rtol=1e-5, atol=1e-5)


def test_deepsea_predict_concatenates_both_strands(deepsea_predict_model):
    model, directory = deepsea_predict_model
    phi, x = check_resolved(model, directory, "DeepSEA/predict", "2.14.1", 2 * 925, copies=2)
    network = model.model[2]
    forward = x[:, [0, 2, 1, 3]]  # A, G, C, T as the network takes it
    reverse_complement = forward[:, ::-1, :, ::-1].copy()
    expected = np.concatenate([manual_phi(network, "13", strand) for strand in (forward, reverse_complement)], axis=1)
    np.testing.assert_allclose(phi, expected, rtol=1e-5, atol=1e-5)
    # the model's output is the mean of the two strands' sigmoid(Φ_strand · w + b)
    linear = network[14][1]
    logits = phi.reshape(3, 2, 925) @ linear.weight.detach().numpy().T + linear.bias.detach().numpy()
    probabilities = (1 / (1 + np.exp(-logits))).mean(axis=1)
    np.testing.assert_allclose(model.predict_on_batch(x), probabilities, rtol=1e-4, atol=1e-6)


def test_deepsea_beluga(beluga_model):
    model, directory = beluga_model
    phi, x = check_resolved(model, directory, "DeepSEA/beluga", "model.1.4.1", 2003)
    np.testing.assert_allclose(phi, manual_phi(model.model, "model.1.3", x), rtol=1e-5, atol=1e-5)


def test_unknown_module_lists_the_module_paths(beluga_model):
    from kipoi_maxent.api import penultimate_model
    from kipoi_maxent.spec import ModelSpec

    with pytest.raises(ValueError, match=r"'model.1.9' is not a module of the PyTorch model Beluga.*available "
                                         r"modules \(29\): model, model\.0, model\.0\.0, .*, model\.1\.3, "
                                         r"model\.1\.4, model\.1\.4\.0, model\.1\.4\.1, model\.2$"):
        penultimate_model(beluga_model[0], ModelSpec(penultimate_layer="model.1.9"))


# --------------------------------------------------------------------------- scBasset (Keras)

def scbasset():
    """scbasset/model.json's layers and shapes: input (1344, 4), 2034 sigmoid outputs.

    Its custom layers become built-ins: the stochastic shift / reverse complement (identity at
    inference) -> Identity, its GELU (sigmoid(1.702 x) x) -> Keras's GELU.
    """
    import keras

    x = inputs = keras.Input((1344, 4), name="sequence")
    x = keras.layers.Identity(name="stochastic_reverse_complement")(x)
    x = keras.layers.Identity(name="stochastic_shift")(x)
    for i, (filters, width, pool) in enumerate([(288, 17, 3), (288, 5, 2), (323, 5, 2), (363, 5, 2),
                                                (407, 5, 2), (456, 5, 2), (512, 5, 2), (256, 1, 1)]):
        suffix = f"_{i}" if i else ""
        x = keras.layers.Activation("gelu", name=f"gelu{suffix}")(x)
        x = keras.layers.Conv1D(filters, width, padding="same", use_bias=False, name=f"conv1d{suffix}")(x)
        x = keras.layers.BatchNormalization(momentum=0.9, epsilon=0.001, name=f"batch_normalization{suffix}")(x)
        if pool > 1:
            x = keras.layers.MaxPooling1D(pool, padding="same", name=f"max_pooling1d{suffix}")(x)
    x = keras.layers.Activation("gelu", name="gelu_8")(x)
    x = keras.layers.Reshape((1, 1792), name="reshape")(x)
    x = keras.layers.Dense(32, use_bias=False, name="dense")(x)
    x = keras.layers.BatchNormalization(momentum=0.9, epsilon=0.001, name="batch_normalization_8")(x)
    x = keras.layers.Dropout(0.2, name="dropout")(x)
    x = keras.layers.Activation("gelu", name="gelu_9")(x)
    x = keras.layers.Dense(2034, activation="sigmoid", name="dense_1")(x)
    x = keras.layers.Identity(name="switch_reverse")(x)
    return keras.Model(inputs, keras.layers.Flatten(name="flatten")(x), name="model")


def test_scbasset(tmp_path):
    import keras
    from toy_models import write_kipoi_model_dir

    keras.utils.set_random_seed(0)
    network = scbasset()
    assert network.get_layer("reshape").output.shape[1:] == (1, 1792)
    directory = write_kipoi_model_dir(tmp_path, network)
    spec = load_spec(SPECS / "scbasset.yaml")
    resolved = resolve_model(str(directory), spec, source="dir")
    kernel = network.get_layer("dense_1").kernel.numpy()
    np.testing.assert_array_equal(resolved.network.output_kernel, kernel)
    codes = codes_for(1344, 3, seed=5)
    x = resolved.encoder.encode(codes)
    phi = resolved.network.activations(x)
    assert phi.shape == (3, 32)
    expected = keras.Model(network.inputs, network.get_layer("gelu_9").output)(x, training=False)
    np.testing.assert_allclose(phi, np.asarray(expected).reshape(3, 32), rtol=1e-5, atol=1e-5)
