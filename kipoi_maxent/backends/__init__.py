"""Framework backends: from a loaded Kipoi model to its penultimate activations.

A backend is a function ``(kipoi_model, spec) -> PenultimateModel | None``: it returns
``None`` when the model is not its kind, so :func:`penultimate_model` can ask each in turn.
The built-in ones (Keras, PyTorch, then the generic Kipoi one) are registered as plugins
(:mod:`kipoi_maxent.plugin.builtin`) like any third-party backend. The rest of the package never
touches the deep-learning framework.
"""
from __future__ import annotations

import sys
from dataclasses import dataclass, replace
from typing import Callable

import numpy as np

from kipoi_maxent.spec import ModelSpec, read_output_weights


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


def spec_output_kernel(spec: ModelSpec, width: int, layer: str) -> np.ndarray | None:
    """The spec's ``output_weights`` ``(k, n_outputs)`` float64, checked against Φ's width ``k``.

    ``None`` when the spec gives none. ``layer`` describes Φ for the error message.
    """
    if spec.output_weights is None:
        return None
    kernel = read_output_weights(spec.output_weights)
    if kernel.shape[0] != width:
        raise ValueError(
            f"spec {spec.source}: output_weights {spec.output_weights} has {kernel.shape[0]} rows, but the "
            f"penultimate layer ({layer}) has {width} units; it needs one row per penultimate unit"
        )
    return kernel


def schema_input_shape(kipoi_model) -> tuple:
    """The model input shape without the batch axis, from the Kipoi model's ``schema.inputs``.

    Variable-length axes are ``None``. Raises ``ValueError`` for models with several inputs.
    """
    inputs = kipoi_model.schema.inputs
    if isinstance(inputs, (list, tuple, dict)):
        names = list(inputs) if isinstance(inputs, dict) else [getattr(i, "name", "?") for i in inputs]
        raise ValueError(
            f"the Kipoi model has {len(names)} inputs ({', '.join(map(str, names))}); kipoi_maxent "
            "needs a model with a single one-hot DNA input"
        )
    return tuple(None if size is None else int(size) for size in inputs.shape)


def fixed_input_shape(input_shape: tuple, spec: ModelSpec) -> tuple:
    """``input_shape`` with a variable-length (``None``) axis set to the spec's sequence length.

    For backends that run the model once at construction (a probe) to check it.
    """
    if None not in input_shape:
        return input_shape
    if spec.sequence_length is None:
        raise ValueError(
            f"the model's input shape {input_shape} has a variable-length axis; set sequence_length in the spec"
        )
    return tuple(spec.sequence_length if size is None else size for size in input_shape)


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


def penultimate_model(kipoi_model, spec: ModelSpec | str | int = "auto") -> PenultimateModel:
    """Ask the backends (plugins implementing ``kipoi_maxent_backend``: third-party ones first,
    then Keras, PyTorch, and the generic Kipoi fallback last) for ``kipoi_model``'s
    :class:`PenultimateModel`; the first answer wins.

    Parameters
    ----------
    kipoi_model : Kipoi model (or a bare ``keras.Model``)
    spec : ModelSpec, or str or int
        The model spec; a bare layer name or index stands for ``ModelSpec(penultimate_layer=...)``
        (no ``output_weights``). Default: ``"auto"``.
    """
    from kipoi_maxent.plugin.manager import plugin_manager

    if not isinstance(spec, ModelSpec):
        spec = ModelSpec(penultimate_layer=spec)
    network = plugin_manager().hook.kipoi_maxent_backend(kipoi_model=kipoi_model, spec=spec)
    if network is not None:
        return network
    raise ValueError(
        f"no backend for Kipoi model type {type(kipoi_model).__name__}: kipoi_maxent supports Keras 3 / "
        "TensorFlow models, PyTorch models (a torch.nn.Module in the Kipoi model's .model attribute), and "
        "any Kipoi model with predict_activation_on_batch(x, layer) given output_weights in the spec; "
        "other frameworks can be added by a plugin (kipoi_maxent_backend hook)"
    )
