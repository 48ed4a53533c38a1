"""Generic Kipoi backend: any model implementing Kipoi's ``predict_activation_on_batch``.

The fallback when no framework backend claims a model (e.g. a Kipoi ``custom`` model). Kipoi
gives the activations of a named layer but no standard way to find the output layer's weights,
so the spec must name the layer (``penultimate_layer``) and give the weights
(``output_weights``).
"""
from __future__ import annotations

import numpy as np

from kipoi_maxent.backends.base import PenultimateModel, fixed_input_shape, schema_input_shape, spec_output_kernel
from kipoi_maxent.spec import AUTO, ModelSpec


def penultimate_model(kipoi_model, spec: ModelSpec) -> PenultimateModel | None:
    """Build Φ from ``kipoi_model.predict_activation_on_batch(x, layer)``; ``None`` if it has none.

    Parameters
    ----------
    kipoi_model : Kipoi model
        Implements ``predict_activation_on_batch(x, layer)`` (Kipoi's ``LayerActivationMixin``)
        and has a single input in ``schema.inputs``.
    spec : ModelSpec
        ``penultimate_layer`` (passed to Kipoi as given) and ``output_weights`` are required.

    Returns
    -------
    PenultimateModel
        ``activations``: ``(n, *input_shape)`` float32 -> ``(n, k)`` float32, the layer's
        output flattened per input.
    """
    predict = getattr(kipoi_model, "predict_activation_on_batch", None)
    if not callable(predict):
        return None
    kind = type(kipoi_model).__name__
    if spec.penultimate_layer == AUTO:
        raise ValueError(
            f"Kipoi model type {kind} has no framework backend, so the penultimate layer cannot be "
            "inferred: name it (as predict_activation_on_batch takes it) in the spec's penultimate_layer"
        )
    if spec.output_weights is None:
        raise ValueError(
            f"Kipoi model type {kind} has no framework backend, so its output weights are unknown: give "
            "output_weights (a .npy file, shape (k, n_outputs)) in the spec"
        )
    layer = spec.penultimate_layer
    input_shape = schema_input_shape(kipoi_model)

    def activations(x: np.ndarray) -> np.ndarray:
        values = _single_array(predict(np.asarray(x, dtype=np.float32), layer), layer)
        if values.ndim == 0 or values.shape[0] != len(x):
            raise ValueError(
                f"predict_activation_on_batch(x, {layer!r}) returned shape {values.shape} for {len(x)} "
                "inputs; expected one row per input"
            )
        return values.reshape(len(x), -1).astype(np.float32)

    description = f"output of {layer!r} (Kipoi predict_activation_on_batch)"
    width = activations(np.zeros((1,) + fixed_input_shape(input_shape, spec), dtype=np.float32)).shape[1]
    return PenultimateModel(
        activations=activations,
        output_kernel=spec_output_kernel(spec, width, description),
        input_shape=input_shape,
        layer=description,
        framework=f"kipoi {kind}",
    )


def _single_array(result, layer) -> np.ndarray:
    """Kipoi returns an array, or nested lists of them (per layer, per call): unwrap a single one."""
    while isinstance(result, (list, tuple)):
        if len(result) != 1:
            raise ValueError(
                f"predict_activation_on_batch(x, {layer!r}) returned {len(result)} arrays; kipoi_maxent "
                "needs one: a layer that runs once per forward pass"
            )
        result = result[0]
    return np.asarray(result)
