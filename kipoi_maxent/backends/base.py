"""What every backend returns (:class:`PenultimateModel`) and the helpers backends share."""
from __future__ import annotations

from dataclasses import dataclass
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
