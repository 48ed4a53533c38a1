"""Tiny seeded networks for tests (small enough to enumerate all 4**L inputs), Keras and
PyTorch, and the files they need: Kipoi model directories, FASTA files."""
from __future__ import annotations

import json
import os
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np
import torch
from torch import nn


def tiny_keras_model(length: int = 5, n_outputs: int = 2, seed: int = 0, input_shape=None, scale: float = 1.0):
    """Conv1D(3 × 2, relu) → Flatten → Dense(4, relu) → Dropout → Dense(n_outputs).

    ``input_shape`` overrides the (L, 4) input (a Reshape makes it (L, 4) inside).
    ``scale`` multiplies every weight (a larger distance scale).
    """
    import keras

    keras.utils.set_random_seed(seed)
    shape = input_shape or (length, 4)
    inputs = keras.Input(shape, name="seq")
    x = inputs
    if tuple(shape) != (length, 4):
        if shape.index(4) < shape.index(length):  # channels first: move the alphabet last
            x = keras.layers.Reshape((4, length))(x)
            x = keras.layers.Permute((2, 1))(x)
        else:
            x = keras.layers.Reshape((length, 4))(x)
    x = keras.layers.Conv1D(3, 2, activation="relu", name="conv")(x)
    x = keras.layers.Flatten(name="flatten")(x)
    x = keras.layers.Dense(4, activation="relu", name="hidden")(x)
    x = keras.layers.Dropout(0.5, name="dropout")(x)
    outputs = keras.layers.Dense(n_outputs, activation="softmax" if n_outputs > 1 else "sigmoid", name="output")(x)
    model = keras.Model(inputs, outputs, name="tiny")
    rng = np.random.default_rng(seed)
    model.set_weights([scale * rng.normal(size=w.shape).astype(np.float32) for w in model.get_weights()])
    return model


def conv_dense_keras_model(length: int, padding: str, activation: str, seed: int = 0, pool: bool = False,
                           filters: int = 6, width: int = 4, hidden: int = 8):
    """Conv1D(filters × width, padding, activation) → [MaxPooling1D(2)] → Flatten →
    Dense(hidden, activation) → Dense(2, softmax), Keras's own initialisation: the layer
    options the incremental and fused engines support (the pooling: one they refuse)."""
    import keras

    keras.utils.set_random_seed(seed)
    inputs = keras.Input((length, 4))
    x = keras.layers.Conv1D(filters, width, padding=padding, activation=activation)(inputs)
    if pool:
        x = keras.layers.MaxPooling1D(2)(x)
    x = keras.layers.Flatten()(x)
    x = keras.layers.Dense(hidden, activation=activation)(x)
    return keras.Model(inputs, keras.layers.Dense(2, activation="softmax")(x))


def tiny_pooled_keras_model(length: int = 6, n_outputs: int = 2, seed: int = 0):
    """Conv1D(3 × 2, same, relu) → MaxPooling1D(2) → Conv1D(3 × 2, relu) → Flatten →
    Dense(4, relu) → Dropout → Dense(n_outputs): the smallest net the windowed engine needs
    (two blocks, a pooling, a padded convolution), small enough to enumerate 4**L inputs."""
    import keras

    keras.utils.set_random_seed(seed)
    inputs = keras.Input((length, 4), name="seq")
    x = keras.layers.Conv1D(3, 2, padding="same", activation="relu", name="conv_1")(inputs)
    x = keras.layers.MaxPooling1D(2, name="pool_1")(x)
    x = keras.layers.Conv1D(3, 2, activation="relu", name="conv_2")(x)
    x = keras.layers.Flatten(name="flatten")(x)
    x = keras.layers.Dense(4, activation="relu", name="hidden")(x)
    x = keras.layers.Dropout(0.5, name="dropout")(x)
    outputs = keras.layers.Dense(n_outputs, activation="softmax" if n_outputs > 1 else "sigmoid", name="output")(x)
    model = keras.Model(inputs, outputs, name="tiny_pooled")
    rng = np.random.default_rng(seed)
    model.set_weights([rng.normal(size=w.shape).astype(np.float32) for w in model.get_weights()])
    return model


def write_fasta(path: Path, records: dict[str, str], width: int = 7) -> Path:
    """A FASTA file with lines wrapped at ``width`` (exercises the index's line arithmetic)."""
    lines = []
    for name, sequence in records.items():
        lines.append(f">{name}")
        lines.extend(sequence[i:i + width] for i in range(0, len(sequence), width))
    Path(path).write_text("\n".join(lines) + "\n")
    return Path(path)


def write_kipoi_model_dir(directory: Path, model) -> Path:
    """A real Kipoi model directory (model.yaml + model.keras) for ``kipoi.get_model(.., source="dir")``.

    Kipoi 0.8.6 wants schema shapes as tuple strings ``(L, 4)``, not YAML lists. The default
    dataloader is kipoiseq's SeqIntervalDl laid out like the model input.
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    model.save(directory / "model.keras")
    shape = tuple(int(s) for s in model.inputs[0].shape[1:])
    n_outputs = int(model.outputs[0].shape[-1])
    length = max(s for s in shape if s not in (1, 4)) if any(s not in (1, 4) for s in shape) else 4
    alphabet_axis = shape.index(4) if shape.count(4) == 1 else len(shape) - 1
    dummy_axis = shape.index(1) if 1 in shape else "null"
    (directory / "model.yaml").write_text(
        "type: keras\n"
        "args:\n  weights: model.keras\n"
        "info:\n  authors:\n    - name: kipoi_maxent tests\n  doc: toy model for tests\n"
        "  contributors:\n    - name: kipoi_maxent tests\n  license: MIT\n"
        "default_dataloader:\n  defined_as: kipoiseq.dataloaders.SeqIntervalDl\n"
        f"  default_args: {{auto_resize_len: {length}, alphabet_axis: {alphabet_axis}, "
        f"dummy_axis: {dummy_axis}, ignore_targets: true, label_dtype: str}}\n"
        "schema:\n  inputs:\n    name: seq\n"
        f"    shape: ({', '.join(str(s) for s in shape)}{',' if len(shape) == 1 else ''})\n"
        "    doc: one-hot DNA\n"
        f"  targets:\n    shape: ({n_outputs},)\n    doc: class probabilities\n"
    )
    return directory


# --------------------------------------------------------------------------- PyTorch


class TinyTorchNet(nn.Sequential):
    """Conv1d(3 × 2, ReLU) → Flatten → Linear(4, ReLU) → Dropout → Linear(n_outputs) → Softmax.

    Input (4, L), channels first.
    """

    def __init__(self, length: int = 5, n_outputs: int = 2):
        super().__init__()
        self.add_module("conv", nn.Conv1d(4, 3, 2))
        self.add_module("conv_relu", nn.ReLU())
        self.add_module("flatten", nn.Flatten())
        self.add_module("hidden", nn.Linear(3 * (length - 1), 4))
        self.add_module("hidden_relu", nn.ReLU())
        self.add_module("dropout", nn.Dropout(0.5))
        self.add_module("output", nn.Linear(4, n_outputs))
        self.add_module("softmax", nn.Softmax(dim=1))


def seeded(network: nn.Module, seed: int, scale: float = 1.0) -> nn.Module:
    """Every parameter and batch-norm statistic drawn from a seeded normal (variances positive)."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, tensor in network.state_dict().items():
            if tensor.is_floating_point():
                values = scale * torch.randn(tensor.shape, generator=generator)
                tensor.copy_(values.abs() + 0.5 if name.endswith("running_var") else values)
    return network.eval()


def write_torch_model_dir(directory: Path, network: nn.Module, builder: str, input_shape, n_outputs: int,
                          module_kwargs: dict | None = None, dataloader_args: dict | None = None) -> Path:
    """A real Kipoi PyTorch model directory for ``kipoi.get_model(directory, source="dir")``.

    ``builder`` is ``"test_module:name"``, a class or function (importable from tests/) that
    builds ``network``'s architecture from ``module_kwargs``; its weights go in ``weights.pth``
    as a ``state_dict``, as the Kipoi zoo ships them.
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    module, name = builder.split(":")
    (directory / "architecture.py").write_text(f"from {module} import {name}  # noqa: F401\n")
    torch.save(network.state_dict(), directory / "weights.pth")
    length = max(s for s in input_shape if s != 4)
    loader = {"auto_resize_len": length, "ignore_targets": True, "label_dtype": "str", "dtype": "np.float32",
              "alphabet_axis": list(input_shape).index(4), "dummy_axis": None, **(dataloader_args or {})}
    (directory / "model.yaml").write_text(
        "type: pytorch\n"
        f"args:\n  module_file: architecture.py\n  module_class: {name}\n  weights: weights.pth\n"
        + (f"  module_kwargs: {json.dumps(module_kwargs)}\n" if module_kwargs else "")
        + "info:\n  authors:\n    - name: kipoi_maxent tests\n  doc: stand-in model for tests\n"
        "  contributors:\n    - name: kipoi_maxent tests\n  license: MIT\n"
        "default_dataloader:\n  defined_as: kipoiseq.dataloaders.SeqIntervalDl\n"
        f"  default_args: {json.dumps(loader)}\n"
        "schema:\n  inputs:\n    name: seq\n"
        f"    shape: ({', '.join(str(s) for s in input_shape)})\n    doc: one-hot DNA\n"
        f"  targets:\n    shape: ({n_outputs},)\n    doc: outputs\n"
    )
    return directory


def forward_to(module: nn.Module, path: str, x: torch.Tensor) -> torch.Tensor:
    """The output of the module at ``path`` (a ``named_modules()`` path), computed without hooks.

    A ``Sequential`` runs its children in order until the one on the path; any other module on
    the path is taken to run just its child there (``forward(x) = self.child(x)``).
    """
    head, _, rest = path.partition(".")
    with torch.no_grad():
        if isinstance(module, nn.Sequential):
            for name, child in module.named_children():
                if name == head:
                    return forward_to(child, rest, x) if rest else child(x)
                x = child(x)
            raise KeyError(path)
        child = getattr(module, head)
        return forward_to(child, rest, x) if rest else child(x)


def manual_phi(module: nn.Module, path: str, x: np.ndarray) -> np.ndarray:
    """``forward_to`` on a numpy batch, flattened per input: ``(n, k)``."""
    return forward_to(module, path, torch.from_numpy(x)).reshape(len(x), -1).numpy()


def codes_for(length: int, n: int, seed: int) -> np.ndarray:
    codes = np.random.default_rng(seed).integers(0, 4, (n, length)).astype(np.int8)
    codes[0, 3] = -1  # an unknown base: an all-zero one-hot column
    return codes
