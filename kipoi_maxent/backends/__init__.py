"""Framework backends: from a loaded Kipoi model to its penultimate activations.

A backend returns a :class:`PenultimateModel`; the rest of the package never touches the
deep-learning framework.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np


@dataclass(frozen=True)
class PenultimateModel:
    """What the sampler needs from a network.

    Attributes
    ----------
    activations : callable
        Model input ``(n, *input_shape)`` float32 -> Φ ``(n, k)``.
    output_kernel : np.ndarray, shape (k, n_outputs)
        Weights from the penultimate units into the output units.
    input_shape : tuple of int
        Model input shape without the batch axis.
    layer : str
        Human-readable description of the penultimate layer (for logs and run.json).
    framework : str
    sub_model : object, optional
        The framework's own model from the input to Φ (e.g. a ``keras.Model``), for engines
        that compute Φ themselves (:mod:`kipoi_maxent.samplers.incremental`).
    """

    activations: Callable[[np.ndarray], np.ndarray]
    output_kernel: np.ndarray
    input_shape: tuple
    layer: str
    framework: str
    sub_model: object = None


def penultimate_model(kipoi_model, penultimate_layer) -> PenultimateModel:
    """Pick the backend that understands ``kipoi_model`` and build its :class:`PenultimateModel`."""
    from kipoi_maxent.backends import keras as keras_backend

    keras_model = keras_backend.keras_model_of(kipoi_model)
    if keras_model is not None:
        return keras_backend.penultimate_model(keras_model, penultimate_layer)
    raise ValueError(
        f"no backend for Kipoi model type {type(kipoi_model).__name__}: kipoi_maxent supports "
        "Keras 3 / TensorFlow models (a Kipoi KerasModel or any Kipoi model holding a keras.Model "
        "in its .model attribute)"
    )
