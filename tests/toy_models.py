"""Tiny seeded networks for tests (small enough to enumerate all 4**L inputs) and the files
they need: Kipoi model directories, FASTA files."""
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
