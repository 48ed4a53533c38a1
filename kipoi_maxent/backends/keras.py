"""Keras 3 / TensorFlow backend.

Kipoi 0.8's ``predict_activation_on_batch`` imports ``keras.engine``, which Keras 3 removed,
so the penultimate sub-model is built here from the loaded ``keras.Model``.
"""
from __future__ import annotations

import numpy as np

from kipoi_maxent.backends.base import PenultimateModel


def keras_model_of(kipoi_model):
    """The ``keras.Model`` inside a Kipoi model (``KerasModel.model``), or ``None``."""
    import keras

    if isinstance(kipoi_model, keras.Model):
        return kipoi_model
    inner = getattr(kipoi_model, "model", None)
    return inner if isinstance(inner, keras.Model) else None


def penultimate_model(model, penultimate_layer="auto") -> PenultimateModel:
    """Build Φ from a Keras model.

    Parameters
    ----------
    model : keras.Model
    penultimate_layer : str or int
        Layer name or index into ``model.layers`` whose output is Φ; ``"auto"``: the input
        of the last Dense layer. The output weights are always the last Dense layer's kernel.
    """
    import keras
    import tensorflow as tf

    dense_layers = [layer for layer in model.layers if isinstance(layer, keras.layers.Dense)]
    if not dense_layers:
        raise ValueError(
            f"model {model.name!r} has no Dense layer, so its output weights are unknown; "
            "kipoi_maxent needs a final Dense (fully connected) output layer"
        )
    output_layer = dense_layers[-1]
    if penultimate_layer == "auto":
        phi_tensor = output_layer.input
        description = f"input of {output_layer.name!r} (last Dense layer)"
    else:
        layer = _find_layer(model, penultimate_layer)
        phi_tensor = layer.output
        description = f"output of {layer.name!r}"
    kernel = np.asarray(output_layer.kernel.numpy(), dtype=np.float64)
    width = int(phi_tensor.shape[-1])
    # Dense acts on the last axis: Φ of shape (n, 1, ..., k) flattens to (n, k) exactly
    if any(size != 1 for size in phi_tensor.shape[1:-1]) or width != kernel.shape[0]:
        raise ValueError(
            f"penultimate layer {penultimate_layer!r} gives activations of shape "
            f"{tuple(phi_tensor.shape)}, but the output layer {output_layer.name!r} takes "
            f"{kernel.shape[0]} inputs; choose the layer that feeds it (or 'auto')"
        )
    sub_model = keras.Model(model.inputs, phi_tensor)
    input_shape = tuple(model.inputs[0].shape[1:])

    @tf.function(input_signature=[tf.TensorSpec((None,) + input_shape, tf.float32)], autograph=False)
    def forward(x):
        return sub_model(x, training=False)  # dropout is the identity at inference

    return PenultimateModel(
        activations=lambda x: forward(x).numpy().reshape(len(x), width),
        output_kernel=kernel,
        input_shape=input_shape,
        layer=description,
        framework=f"keras {keras.__version__} / tensorflow {tf.__version__}",
        sub_model=sub_model,
    )


def _find_layer(model, wanted):
    names = [layer.name for layer in model.layers]
    if isinstance(wanted, int) or (isinstance(wanted, str) and wanted.lstrip("-").isdigit()):
        index = int(wanted)
        if not -len(names) <= index < len(names):
            raise ValueError(f"penultimate_layer index {index} is out of range: the model has {len(names)} layers")
        return model.layers[index]
    if wanted not in names:
        raise ValueError(
            f"penultimate_layer {wanted!r} is not a layer of model {model.name!r}; "
            f"available layers: {', '.join(names)}"
        )
    return model.get_layer(wanted)
