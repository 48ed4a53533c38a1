"""kipoi_maxent.spec (spec files, layouts, input encoder, normalisation, shipped specs) and
kipoi_maxent.api.resolve_model on real Kipoi model directories."""
import numpy as np
import pytest
from toy_models import tiny_keras_model, write_kipoi_model_dir

from kipoi_maxent.api import resolve_model
from kipoi_maxent.sequence import ALPHABET
from kipoi_maxent.spec import (
    InputEncoder,
    ModelSpec,
    Normalization,
    find_spec,
    infer_layout,
    load_spec,
    parse_layout,
    read_output_weights,
    resolve_normalization,
    spec_from_dict,
)

LAYOUTS = [("L", 4), (4, "L"), (1, "L", 4), (4, 1, "L")]

FULL_SPEC = """\
models: [my_model, other/name]
description: a full spec
penultimate_layer: hidden
output_units: [1, 0]
sequence_length: 101
input:
  alphabet: GCAT
  layout: (4, 1, L)
  normalization: {center: [0.1, 0.2, 0.3, 0.4], scale: [1, 2, 3, 4]}
"""


def write(tmp_path, text, name="spec.yaml"):
    path = tmp_path / name
    path.write_text(text)
    return path


# --------------------------------------------------------------------------- load_spec

def test_load_full_spec(tmp_path):
    spec = load_spec(write(tmp_path, FULL_SPEC))
    assert spec.models == ("my_model", "other/name")
    assert spec.penultimate_layer == "hidden"
    assert spec.output_units == (1, 0)
    assert spec.sequence_length == 101
    assert spec.alphabet == "GCAT"
    assert spec.layout == (4, 1, "L")
    assert spec.normalization == Normalization(center=(0.1, 0.2, 0.3, 0.4), scale=(1, 2, 3, 4))
    assert spec.source == str(tmp_path / "spec.yaml")


def test_load_spec_auto_and_bernoulli(tmp_path):
    spec = load_spec(write(tmp_path, "penultimate_layer: 3\noutput_units: auto\nsequence_length: auto\n"
                                     "input: {layout: auto, normalization: bernoulli}\n"))
    assert spec.penultimate_layer == 3
    assert spec.output_units is None and spec.sequence_length is None and spec.layout is None
    assert spec.normalization == Normalization(bernoulli=True)
    assert spec.alphabet == ALPHABET
    assert load_spec(write(tmp_path, "", "empty.yaml")) == ModelSpec(source=str(tmp_path / "empty.yaml"))


@pytest.mark.parametrize("text, field, detail", [
    ("input: {alphabet: ACGX}\n", "input.alphabet", "permutation"),
    ("input: {alphabet: AACG}\n", "input.alphabet", "permutation"),
    ("output_units: [1, 2, 3]\n", "output_units", r"\[a, b\]"),
    ("output_units: [1, 1]\n", "output_units", "two different units"),
    ("output_units: [-1]\n", "output_units", ""),
    ("penultimte_layer: dense\n", "penultimte_layer", ("allowed fields: description, input, models, "
                                                       "output_units, output_weights, penultimate_layer, "
                                                       "sequence_length")),
    ("output_weights: w.txt\n", "output_weights", r"a \.npy file .* relative to the spec file"),
    ("output_weights: 3\n", "output_weights", r"a \.npy file"),
    ("input: {alphabet: ACGT, channels: 4}\n", "channels", "allowed fields: alphabet, layout, normalization"),
    ("input: {layout: '(L, 5)'}\n", "input.layout", "not a valid layout"),
    ("input: {layout: '(L, 4, 4)'}\n", "input.layout", "not a valid layout"),
    ("input: {normalization: {center: [0, 0, 0], scale: [1, 1, 1, 1]}}\n", "input.normalization", "4 numbers"),
    ("input: {normalization: {center: [0, 0, 0, 0], scale: [1, 0, 1, 1]}}\n", "input.normalization", "positive"),
    ("input: {normalization: {center: [0, 0, 0, 0], scale: [1, -2, 1, 1]}}\n", "input.normalization", "positive"),
    ("input: {normalization: zscore}\n", "input.normalization", "bernoulli"),
    ("sequence_length: 0\n", "sequence_length", "positive integer"),
    ("sequence_length: many\n", "sequence_length", "positive integer"),
    ("penultimate_layer: ''\n", "penultimate_layer", ""),
])
def test_invalid_field_is_named(tmp_path, text, field, detail):
    with pytest.raises(ValueError, match=field) as error:
        load_spec(write(tmp_path, text))
    assert re_search(detail, str(error.value)), str(error.value)


def re_search(pattern, text):
    import re

    return re.search(pattern, text) is not None


def test_not_yaml(tmp_path):
    with pytest.raises(ValueError, match="not valid YAML"):
        load_spec(write(tmp_path, "models: [ctcf\ninput: {layout: (L, 4)\n"))
    with pytest.raises(ValueError, match="expected a mapping"):
        load_spec(write(tmp_path, "just some words\n", "words.yaml"))


def test_missing_file(tmp_path):
    with pytest.raises(ValueError, match=r"cannot read spec file .*nope\.yaml"):
        load_spec(tmp_path / "nope.yaml")


# --------------------------------------------------------------------------- output_weights

def test_output_weights_path_is_relative_to_the_spec_file(tmp_path, monkeypatch):
    (tmp_path / "specs" / "weights").mkdir(parents=True)
    np.save(tmp_path / "specs" / "weights" / "w.npy", np.ones((3, 2)))
    monkeypatch.chdir(tmp_path)  # not where the spec is
    spec = load_spec(write(tmp_path / "specs", "output_weights: weights/w.npy\n"))
    assert spec.output_weights == str(tmp_path / "specs" / "weights" / "w.npy")
    assert spec.to_dict()["output_weights"] == spec.output_weights
    assert load_spec(write(tmp_path, "models: [m]\n")).output_weights is None
    # a mapping: relative to base_dir, default the working directory
    assert spec_from_dict({"output_weights": "specs/weights/w.npy"}).output_weights == spec.output_weights
    assert spec_from_dict({"output_weights": "w.npy"}, base_dir=tmp_path / "specs" / "weights").output_weights \
        == spec.output_weights


def test_output_weights_file_must_exist(tmp_path):
    with pytest.raises(ValueError, match=r"output_weights: file .*missing\.npy does not exist"):
        load_spec(write(tmp_path, "output_weights: missing.npy\n"))


def test_read_output_weights(tmp_path):
    weights = np.random.default_rng(0).normal(size=(5, 3)).astype(np.float32)
    np.save(tmp_path / "w.npy", weights)
    read = read_output_weights(tmp_path / "w.npy")
    assert read.dtype == np.float64 and read.shape == (5, 3)
    np.testing.assert_array_equal(read, weights)
    np.save(tmp_path / "one.npy", np.arange(4.0))
    np.testing.assert_array_equal(read_output_weights(tmp_path / "one.npy"), np.arange(4.0)[:, None])


@pytest.mark.parametrize("content, message", [
    (np.zeros((2, 3, 4)), r"shape \(2, 3, 4\); expected numbers of shape \(k, n_outputs\)"),
    (np.zeros((0, 2)), r"shape \(0, 2\)"),
    (np.array([["a", "b"]]), r"<U1 array"),
    (np.array([[1.0, np.nan]]), "non-finite"),
    (np.array([{"a": 1}], dtype=object), "cannot read"),
    (b"not an npy file", "cannot read"),
])
def test_read_output_weights_rejects(tmp_path, content, message):
    path = tmp_path / "w.npy"
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        np.save(path, content, allow_pickle=True)
    with pytest.raises(ValueError, match=message):
        read_output_weights(path)


# --------------------------------------------------------------------------- layouts

@pytest.mark.parametrize("text, layout", [
    ("(L, 4)", ("L", 4)), ("(4, L)", (4, "L")), ("(1, L, 4)", (1, "L", 4)), ("(4, 1, L)", (4, 1, "L")),
    ("[l,4]", ("L", 4)), ("L, 1, 4", ("L", 1, 4)),
])
def test_parse_layout(text, layout):
    assert parse_layout(text) == layout


@pytest.mark.parametrize("text", ["(L, 5)", "(4, 4)", "(L, L, 4)", "(L, 2, 4)", "(L)", "()"])
def test_parse_layout_rejects(text):
    with pytest.raises(ValueError, match="input.layout"):
        parse_layout(text)


@pytest.mark.parametrize("shape, layout", [
    ((101, 4), ("L", 4)), ((4, 101), (4, "L")), ((1, 101, 4), (1, "L", 4)), ((4, 1, 101), (4, 1, "L")),
    ((None, 4), ("L", 4)), ((1, None, 4), (1, "L", 4)),
])
def test_infer_layout(shape, layout):
    assert infer_layout(shape) == layout


def test_infer_layout_without_alphabet_axis():
    with pytest.raises(ValueError, match="input.layout"):
        infer_layout((101, 5))


# --------------------------------------------------------------------------- InputEncoder

def reference_encode(codes, alphabet, layout, center=None, scale=None):
    """Independent one-hot in ``alphabet`` channel order, laid out per ``layout``."""
    codes = np.asarray(codes)
    x = np.stack([(codes == ALPHABET.index(b)).astype(np.float64) for b in alphabet], axis=-1)  # (n, L, 4)
    if center is not None:
        x = (x - np.asarray(center)) / np.asarray(scale)
    n, length = codes.shape
    out = np.empty((n,) + tuple(length if a == "L" else a for a in layout))
    for i in range(n):
        for pos in range(length):
            for channel in range(4):
                index = tuple(pos if a == "L" else channel if a == 4 else 0 for a in layout)
                out[(i,) + index] = x[i, pos, channel]
    return out


CODES = np.array([[0, 1, 2, 3, -1, 2, 2], [3, 3, 1, 0, 0, -1, 1]], dtype=np.int8)


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("alphabet", ["ACGT", "GCAT"])
@pytest.mark.parametrize("normalization", [None, ((0.3, 0.2, 0.2, 0.3), (0.45, 0.4, 0.4, 0.45))])
def test_encoder_round_trip(layout, alphabet, normalization):
    center, scale = normalization or (None, None)
    encoder = InputEncoder(alphabet, layout, center, scale)
    x = encoder.encode(CODES)
    assert x.dtype == np.float32
    np.testing.assert_allclose(x, reference_encode(CODES, alphabet, layout, center, scale), rtol=1e-6, atol=1e-7)
    np.testing.assert_array_equal(encoder.decode(x), CODES)


def test_encoder_puts_the_right_channel_hot():
    encoder = InputEncoder("GCAT", ("L", 4))
    x = encoder.encode(np.array([[2, 1, 0, 3]], dtype=np.int8))  # G, C, A, T
    np.testing.assert_array_equal(x[0], np.eye(4))
    x = InputEncoder("GCAT", (4, "L")).encode(np.array([[2, 2, 3]], dtype=np.int8))  # G G T
    np.testing.assert_array_equal(x[0], [[1, 1, 0], [0, 0, 0], [0, 0, 0], [0, 0, 1]])


def test_encoder_decode_marks_non_one_hot_rows_unknown():
    encoder = InputEncoder("ACGT", ("L", 4))
    x = np.array([[[1, 0, 0, 0], [0.5, 0.5, 0, 0], [1, 1, 0, 0], [0, 0, 0, 0]]], dtype=np.float32)
    np.testing.assert_array_equal(encoder.decode(x), [[0, -1, -1, -1]])


# --------------------------------------------------------------------------- normalisation

def test_resolve_bernoulli_in_alphabet_order():
    frequencies = np.array([0.31, 0.19, 0.19, 0.31])  # A, C, G, T
    center, scale = resolve_normalization(Normalization(bernoulli=True), frequencies, "ACGT")
    np.testing.assert_allclose(center, frequencies)
    np.testing.assert_allclose(scale, np.sqrt(frequencies * (1 - frequencies)))
    skewed = np.array([0.1, 0.2, 0.3, 0.4])
    center, scale = resolve_normalization(Normalization(bernoulli=True), skewed, "GCAT")
    np.testing.assert_allclose(center, [0.3, 0.2, 0.1, 0.4])
    np.testing.assert_allclose(scale, np.sqrt(np.array([0.3, 0.2, 0.1, 0.4]) * [0.7, 0.8, 0.9, 0.6]))


def test_resolve_bernoulli_needs_frequencies():
    with pytest.raises(ValueError, match="bernoulli needs the genome's base frequencies"):
        resolve_normalization(Normalization(bernoulli=True), None)


def test_resolve_explicit_and_none():
    center, scale = resolve_normalization(Normalization(center=(0, 1, 2, 3), scale=(1, 1, 2, 2)))
    np.testing.assert_array_equal(center, [0, 1, 2, 3])
    np.testing.assert_array_equal(scale, [1, 1, 2, 2])
    assert resolve_normalization(None) == (None, None)


# --------------------------------------------------------------------------- shipped specs

@pytest.mark.parametrize("name", ["example_configs/models/ctcf_cnn", "ctcf_cnn", "example_configs/models/ctcf_cnn/"])
def test_find_shipped_ctcf_spec(name):
    spec = find_spec(name)
    assert spec is not None
    assert spec.source.endswith("model_specs/ctcf_cnn.yaml")
    assert spec.penultimate_layer == "dense_hidden" and spec.output_units == (1, 0)
    assert spec.sequence_length == 101 and spec.layout == ("L", 4)


def test_find_spec_unknown_model():
    assert find_spec("no_such_model_xyz") is None
    assert find_spec("Basset/other") is None


# --------------------------------------------------------------------------- resolve_model

LENGTH = 6
SHAPES = {("L", 4): (LENGTH, 4), (4, "L"): (4, LENGTH), (1, "L", 4): (1, LENGTH, 4), (4, 1, "L"): (4, 1, LENGTH)}


@pytest.fixture(scope="module")
def kipoi_models(tmp_path_factory):
    """A loaded Kipoi model per input layout (toy Keras models written as model directories)."""
    import kipoi

    models = {}
    for i, (layout, shape) in enumerate(SHAPES.items()):
        directory = tmp_path_factory.mktemp(f"model_{i}")
        write_kipoi_model_dir(directory, tiny_keras_model(LENGTH, 2, seed=7, input_shape=shape))
        models[layout] = kipoi.get_model(str(directory), source="dir")
    return models


@pytest.fixture(scope="module")
def model_three_outputs(tmp_path_factory):
    import kipoi

    directory = write_kipoi_model_dir(tmp_path_factory.mktemp("three"), tiny_keras_model(LENGTH, 3, seed=2))
    return kipoi.get_model(str(directory), source="dir")


def keras_phi(kipoi_model, x):
    import keras

    sub = keras.Model(kipoi_model.model.input, kipoi_model.model.get_layer("hidden").output)
    return np.asarray(sub(x.astype(np.float32), training=False), dtype=np.float64)


def all_codes():
    rng = np.random.default_rng(3)
    codes = rng.integers(0, 4, size=(40, LENGTH)).astype(np.int8)
    codes[0, 2] = -1  # an unknown base: all-zero one-hot row
    return codes


@pytest.mark.parametrize("layout", LAYOUTS)
def test_resolve_infers_layout_and_phi_matches_keras(kipoi_models, layout):
    km = kipoi_models[layout]
    resolved = resolve_model(km)
    assert resolved.spec.layout == layout
    assert resolved.sequence_length == LENGTH and resolved.spec.output_units == (1, 0)
    kernel = km.model.get_layer("output").kernel.numpy()
    np.testing.assert_allclose(resolved.weights, kernel[:, 1] - kernel[:, 0], rtol=1e-6)

    codes = all_codes()
    expected = keras_phi(km, reference_encode(codes, "ACGT", layout))
    phi = resolved.penultimate(codes)
    assert phi.shape == (len(codes), 4)
    np.testing.assert_allclose(phi, expected, rtol=1e-5, atol=1e-6)
    assert np.ptp(phi, axis=0).max() > 0.1, "Φ must vary with the sequence for this test to mean anything"
    if layout.index(4) < layout.index("L"):  # channels first: a naive reshape of (L, 4) data differs
        naive = reference_encode(codes, "ACGT", ("L", 4)).reshape((len(codes),) + SHAPES[layout])
        assert not np.allclose(keras_phi(km, naive), expected, atol=1e-3)


def test_resolve_from_directory_string(tmp_path):
    directory = write_kipoi_model_dir(tmp_path / "m", tiny_keras_model(LENGTH, 1, seed=4, input_shape=(4, LENGTH)))
    resolved = resolve_model(str(directory), source="dir")
    assert resolved.spec.layout == (4, "L") and resolved.spec.output_units == (0,)
    codes = all_codes()[:5]
    import kipoi

    expected = keras_phi(kipoi.get_model(str(directory), source="dir"), reference_encode(codes, "ACGT", (4, "L")))
    np.testing.assert_allclose(resolved.penultimate(codes), expected, rtol=1e-5, atol=1e-6)


def test_resolve_spec_alphabet_and_normalisation(kipoi_models):
    km = kipoi_models[(4, 1, "L")]
    center, scale = (0.3, 0.2, 0.2, 0.3), (0.5, 0.4, 0.4, 0.5)
    spec = ModelSpec(alphabet="GCAT", layout=(4, 1, "L"), sequence_length=LENGTH, penultimate_layer="hidden",
                     normalization=Normalization(center=center, scale=scale))
    resolved = resolve_model(km, spec)
    codes = all_codes()
    expected = keras_phi(km, reference_encode(codes, "GCAT", (4, 1, "L"), center, scale))
    np.testing.assert_allclose(resolved.penultimate(codes), expected, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("spec, message", [
    (ModelSpec(penultimate_layer="nope"), r"penultimate_layer 'nope' is not a layer.*available layers: .*conv.*hidden"),
    (ModelSpec(penultimate_layer=99), "index 99 is out of range"),
    (ModelSpec(penultimate_layer="flatten"), r"'flatten'.*output layer 'output' takes 4 inputs"),
    (ModelSpec(penultimate_layer="conv"), r"'conv'.*takes 4 inputs"),
    (ModelSpec(output_units=(2,)), r"output unit 2 is out of range.*valid: 0\.\.1"),
    (ModelSpec(output_units=(0, 5)), r"output unit 5 is out of range"),
    (ModelSpec(layout=(4, "L")), r"input.layout .* does not match the model's input shape \(6, 4\)"),
    (ModelSpec(layout=(1, "L", 4)), r"input.layout .* does not match the model's input shape"),
    (ModelSpec(sequence_length=7), r"sequence_length 7 does not match the model's input shape \(6, 4\)"),
])
def test_resolve_errors(kipoi_models, spec, message):
    with pytest.raises(ValueError, match=message):
        resolve_model(kipoi_models[("L", 4)], spec)


def test_resolve_spec_layout_with_more_axes_than_the_model(kipoi_models):
    """A 3-axis layout on a 2-axis model input must be a clear layout error (not IndexError)."""
    with pytest.raises(ValueError, match="input.layout"):
        resolve_model(kipoi_models[("L", 4)], ModelSpec(layout=(4, 1, "L")))


def test_resolve_spec_layout_mismatch_channels_first_model(kipoi_models):
    with pytest.raises(ValueError, match=r"input.layout .* does not match the model's input shape \(4, 1, 6\)"):
        resolve_model(kipoi_models[(4, 1, "L")], ModelSpec(layout=(1, "L", 4)))


def test_resolve_three_outputs_needs_output_units(model_three_outputs):
    with pytest.raises(ValueError, match="3 output units.*output_units"):
        resolve_model(model_three_outputs)
    resolved = resolve_model(model_three_outputs, ModelSpec(output_units=(2,)))
    np.testing.assert_allclose(resolved.weights, model_three_outputs.model.get_layer("output").kernel.numpy()[:, 2])


def test_float_output_units_from_yaml(kipoi_models, tmp_path):
    """YAML ``[1.0, 0.0]`` passes the schema (JSON Schema counts 1.0 as an integer); the spec must
    then work as units 1, 0 or be rejected naming output_units, not crash with numpy's IndexError."""
    try:
        spec = load_spec(write(tmp_path, "output_units: [1.0, 0.0]\n"))
        resolved = resolve_model(kipoi_models[("L", 4)], spec)
    except ValueError as error:
        assert "output_units" in str(error)
        return
    kernel = kipoi_models[("L", 4)].model.get_layer("output").kernel.numpy()
    np.testing.assert_allclose(resolved.weights, kernel[:, 1] - kernel[:, 0], rtol=1e-6)
    assert resolved.spec.output_units == (1, 0)
