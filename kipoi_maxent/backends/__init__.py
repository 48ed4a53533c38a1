"""Framework backends: from a loaded Kipoi model to its penultimate activations.

A backend is a function ``(kipoi_model, spec) -> PenultimateModel | None``: it returns
``None`` when the model is not its kind, so :func:`kipoi_maxent.api.penultimate_model` can ask each
in turn.
The built-in ones (Keras, PyTorch, then the generic Kipoi one) are registered as plugins
(:mod:`kipoi_maxent.plugin.builtin`) like any third-party backend. The rest of the package never
touches the deep-learning framework.
"""
from __future__ import annotations

import sys
from dataclasses import replace

from kipoi_maxent.backends.base import PenultimateModel, spec_output_kernel
from kipoi_maxent.spec import ModelSpec

__all__ = ["PenultimateModel", "generic_backend", "keras_backend", "pytorch_backend"]


def keras_backend(kipoi_model, spec: ModelSpec) -> PenultimateModel | None:
    """Keras 3 / TensorFlow models (:mod:`kipoi_maxent.backends.keras`); ``None`` for others.

    The spec's ``output_weights``, when given, replace the last Dense layer's kernel.
    """
    if "keras" not in sys.modules:  # a loaded Keras model has imported keras: skip the slow import
        return None
    from kipoi_maxent.backends import keras as keras_module

    keras_model = keras_module.keras_model_of(kipoi_model)
    if keras_model is None:
        return None
    network = keras_module.penultimate_model(keras_model, spec.penultimate_layer)
    kernel = spec_output_kernel(spec, network.output_kernel.shape[0], network.layer)
    return network if kernel is None else replace(network, output_kernel=kernel)


def pytorch_backend(kipoi_model, spec: ModelSpec) -> PenultimateModel | None:
    """PyTorch models (:mod:`kipoi_maxent.backends.pytorch`); ``None`` for others."""
    if "torch" not in sys.modules:  # a loaded PyTorch model has imported torch
        return None
    from kipoi_maxent.backends import pytorch

    return pytorch.penultimate_model(kipoi_model, spec)


def generic_backend(kipoi_model, spec: ModelSpec) -> PenultimateModel | None:
    """Any Kipoi model with ``predict_activation_on_batch`` (:mod:`kipoi_maxent.backends.kipoi_generic`)."""
    from kipoi_maxent.backends import kipoi_generic

    return kipoi_generic.penultimate_model(kipoi_model, spec)
