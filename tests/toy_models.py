"""Tiny seeded networks for tests: small enough to enumerate all 4**L inputs."""
from __future__ import annotations

import os
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np


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


def write_kipoi_model_dir(directory: Path, model, with_dataloader: bool = True) -> Path:
    """A real Kipoi model directory (model.yaml + model.keras) for ``kipoi.get_model(.., source="dir")``."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    model.save(directory / "model.keras")
    shape = tuple(model.inputs[0].shape[1:])
    length = max(s for s in shape if s != 4) if any(s != 4 for s in shape) else 4
    n_outputs = int(model.outputs[0].shape[-1])
    dataloader = (
        "default_dataloader:\n"
        "  defined_as: kipoiseq.dataloaders.SeqIntervalDl\n"
        f"  default_args: {{auto_resize_len: {length}, ignore_targets: true}}\n"
    ) if with_dataloader else ""
    (directory / "model.yaml").write_text(
        "type: keras\n"
        "args:\n  weights: model.keras\n"
        "info:\n  authors:\n    - name: kipoi_maxent tests\n  doc: toy model for tests\n"
        "  contributors:\n    - name: kipoi_maxent tests\n  license: MIT\n"
        + dataloader +
        "schema:\n  inputs:\n    name: seq\n"
        f"    shape: [{', '.join(str(s) for s in shape)}]\n    doc: one-hot DNA\n"
        f"  targets:\n    shape: [{n_outputs}]\n    doc: class probabilities\n"
    )
    return directory
