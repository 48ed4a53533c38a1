"""Model spec files: which layer is penultimate, which output units weight the distance, and
how integer-coded DNA becomes the model's input tensor.

A spec is YAML (see ``model_specs/``)::

    models: [ctcf_cnn]           # model names this spec applies to (used for look-up)
    penultimate_layer: auto      # layer name, layer index, or auto (= input of the last Dense)
    output_units: [1, 0]         # [o] or [a, b]; auto: [0] for 1 output, [1, 0] for 2
    output_weights: w.npy        # optional (k, n_outputs) array, path relative to this file;
                                 # default: read from the model's output layer
    sequence_length: 101         # or auto (from the model's input shape)
    input:
      alphabet: ACGT             # channel order of the one-hot input
      layout: (L, 4)             # model input without the batch axis; or auto
      normalization: null        # null | bernoulli | {center: [4 floats], scale: [4 floats]}

Every field may be ``auto`` (or left out) and is then inferred from the model, and the run
says what it inferred.
"""
from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import jsonschema
import numpy as np

from kipoi_maxent._validation import read_yaml
from kipoi_maxent.sequence import ALPHABET, one_hot

AUTO = "auto"

SPEC_SCHEMA = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "models": {"type": "array", "items": {"type": "string"}},
        "description": {"type": "string"},
        "penultimate_layer": {"oneOf": [{"type": "string", "minLength": 1}, {"type": "integer"}]},
        "output_units": {
            "oneOf": [
                {"const": AUTO},
                {"type": "array", "items": {"type": "integer", "minimum": 0}, "minItems": 1, "maxItems": 2},
            ]
        },
        "sequence_length": {"oneOf": [{"const": AUTO}, {"type": "integer", "minimum": 1}]},
        "output_weights": {"type": "string", "pattern": "\\.npy$"},
        "input": {
            "type": "object",
            "additionalProperties": False,
            "properties": {
                "alphabet": {"type": "string", "pattern": "^(?!.*(.).*\\1)[ACGT]{4}$"},
                "layout": {"type": "string"},
                "normalization": {
                    "oneOf": [
                        {"type": "null"},
                        {"const": "bernoulli"},
                        {
                            "type": "object",
                            "additionalProperties": False,
                            "required": ["center", "scale"],
                            "properties": {
                                "center": {"type": "array", "items": {"type": "number"}, "minItems": 4, "maxItems": 4},
                                "scale": {
                                    "type": "array",
                                    "items": {"type": "number", "exclusiveMinimum": 0},
                                    "minItems": 4,
                                    "maxItems": 4,
                                },
                            },
                        },
                    ]
                },
            },
        },
    },
}

_FIELD_HINTS = {
    "alphabet": "a permutation of the four letters ACGT, e.g. ACGT or GCAT",
    "output_units": "[o] (weights into unit o) or [a, b] (unit a minus unit b), or auto",
    "penultimate_layer": "a layer name, a layer index, or auto",
    "normalization": "null, bernoulli, or {center: [4 numbers], scale: [4 positive numbers]}",
    "sequence_length": "a positive integer or auto",
    "output_weights": "the path of a .npy file holding a (k, n_outputs) array, relative to the spec file",
}


@dataclass(frozen=True)
class Normalization:
    """Per-channel affine map ``(x − center) / scale`` of the one-hot input (spec alphabet order).

    ``bernoulli`` (centre p, scale sqrt(p(1−p)) from the genome's base frequencies, as the
    paper's nucleosome net) is resolved to explicit numbers by :func:`resolve_normalization`.
    """

    center: tuple[float, float, float, float] | None = None
    scale: tuple[float, float, float, float] | None = None
    bernoulli: bool = False


@dataclass(frozen=True)
class ModelSpec:
    """A validated spec; ``None`` fields are inferred from the model (``auto``).

    Attributes
    ----------
    penultimate_layer : str or int
        Layer whose output is Φ, by name or index; ``"auto"``: the input of the last Dense layer.
    output_units : tuple of int or None
    sequence_length : int or None
    alphabet : str
        One-hot channel order of the model input.
    layout : tuple or None
        Model input shape without the batch axis, as symbols: ``("L", 4)``, ``(4, 1, "L")``…
    normalization : Normalization or None
    output_weights : str or None
        Absolute path of a ``.npy`` file with the output weights ``(k, n_outputs)`` (see
        :func:`read_output_weights`); ``None``: the backend reads them from the model's output
        layer. Needed when the model has no recognisable output layer (e.g. the generic Kipoi
        backend).
    source : str
        Where the spec came from (file path, ``inferred``), for the run record.
    """

    penultimate_layer: str | int = AUTO
    output_units: tuple[int, ...] | None = None
    sequence_length: int | None = None
    alphabet: str = ALPHABET
    layout: tuple | None = None
    normalization: Normalization | None = None
    output_weights: str | None = None
    models: tuple[str, ...] = ()
    source: str = "inferred"

    def to_dict(self) -> dict:
        """Plain-data form (for ``run.json``)."""
        record = dataclasses.asdict(self)
        record["layout"] = format_layout(self.layout) if self.layout else AUTO
        return record


def parse_layout(text: str) -> tuple:
    """``"(L, 4)"`` -> ``("L", 4)``: exactly one ``L``, one ``4``, other axes 1."""
    tokens = [t.strip() for t in re.sub(r"[()\[\]]", "", str(text)).split(",") if t.strip()]
    layout = tuple("L" if t.upper() == "L" else int(t) if t.isdigit() else t for t in tokens)
    if layout.count("L") != 1 or layout.count(4) != 1 or any(a not in ("L", 4, 1) for a in layout):
        raise ValueError(
            f"input.layout {text!r} is not a valid layout: use the model input's shape without the "
            "batch axis, with exactly one L (sequence axis), one 4 (alphabet axis), other axes 1, "
            "e.g. (L, 4), (4, L), (1, L, 4), (4, 1, L)"
        )
    return layout


def format_layout(layout: Sequence) -> str:
    return "(" + ", ".join(str(a) for a in layout) + ")"


def spec_from_dict(data: dict, source: str = "<dict>", base_dir: str | Path = ".") -> ModelSpec:
    """Validate a spec mapping against :data:`SPEC_SCHEMA`; raise ``ValueError`` per bad field.

    ``base_dir`` (default: the working directory) is where a relative ``output_weights``
    path starts; :func:`load_spec` passes the spec file's directory.
    """
    if not isinstance(data, dict):
        raise ValueError(f"spec {source}: expected a mapping of fields, got {type(data).__name__}")
    errors = sorted(jsonschema.Draft7Validator(SPEC_SCHEMA).iter_errors(data), key=lambda e: list(e.path))
    if errors:
        messages = []
        for error in errors:
            field = ".".join(str(p) for p in error.path) or "(top level)"
            last = str(error.path[-1]) if error.path else ""
            hint = _FIELD_HINTS.get(last) or _FIELD_HINTS.get(field.split(".")[0], "")
            if error.validator == "additionalProperties":
                allowed = sorted(error.schema.get("properties", {}))
                detail = f"{error.message}; allowed fields: {', '.join(allowed)}"
            else:
                detail = f"invalid value {error.instance!r}" + (f"; expected {hint}" if hint else f" ({error.message})")
            messages.append(f"{field}: {detail}")
        raise ValueError(f"spec {source}: " + "; ".join(messages))

    inputs = data.get("input") or {}
    layout = inputs.get("layout", AUTO)
    units = data.get("output_units", AUTO)
    if units != AUTO and len(units) == 2 and units[0] == units[1]:
        raise ValueError(f"spec {source}: output_units: [a, b] needs two different units, got {units}")
    length = data.get("sequence_length", AUTO)
    weights_path = data.get("output_weights")
    if weights_path is not None:
        weights_path = Path(base_dir, weights_path).resolve()
        if not weights_path.is_file():
            raise ValueError(
                f"spec {source}: output_weights: file {weights_path} does not exist; give the path of "
                "a .npy file relative to the spec file"
            )
    return ModelSpec(
        penultimate_layer=data.get("penultimate_layer", AUTO),
        output_units=None if units == AUTO else tuple(int(u) for u in units),
        sequence_length=None if length == AUTO else int(length),
        alphabet=inputs.get("alphabet", ALPHABET),
        layout=None if layout == AUTO else parse_layout(layout),
        normalization=_normalization_from_yaml(inputs.get("normalization")),
        output_weights=None if weights_path is None else str(weights_path),
        models=tuple(data.get("models", ())),
        source=source,
    )


def _normalization_from_yaml(value) -> Normalization | None:
    if value is None:
        return None
    if value == "bernoulli":
        return Normalization(bernoulli=True)
    return Normalization(center=tuple(value["center"]), scale=tuple(value["scale"]))


def load_spec(path: str | Path) -> ModelSpec:
    """Read and validate a spec YAML file (safe loading)."""
    path = Path(path)
    data = read_yaml(path, "spec file") or {}
    return spec_from_dict(data, source=str(path), base_dir=path.parent)


def read_output_weights(path: str | Path) -> np.ndarray:
    """The output weights of a spec's ``output_weights`` file.

    Parameters
    ----------
    path : str or Path
        A ``.npy`` file (no pickles) holding a finite array of shape ``(k, n_outputs)``, or
        ``(k,)`` for a single output unit.

    Returns
    -------
    np.ndarray, shape (k, n_outputs), float64
    """
    try:
        weights = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as error:
        raise ValueError(f"output_weights: cannot read {path} as a .npy array: {error}") from None
    if weights.ndim == 1:
        weights = weights[:, None]
    if weights.ndim != 2 or weights.size == 0 or not np.issubdtype(weights.dtype, np.number):
        raise ValueError(
            f"output_weights: {path} holds a {weights.dtype} array of shape {weights.shape}; expected "
            "numbers of shape (k, n_outputs): one row per penultimate unit, one column per output unit"
        )
    if not np.all(np.isfinite(weights)):
        raise ValueError(f"output_weights: {path} holds non-finite values (NaN or inf)")
    return weights.astype(np.float64)


def spec_directories() -> list[Path]:
    """Where shipped specs live: inside the installed package, or ``model_specs/`` of a checkout."""
    package = Path(__file__).resolve().parent
    return [d for d in (package / "model_specs", package.parent / "model_specs") if d.is_dir()]


def find_spec(model_name: str) -> ModelSpec | None:
    """The shipped spec whose ``models`` list (or file name) matches ``model_name``, if any.

    A local model directory is matched by its base name; zoo names by their full name
    (``Basset``, ``DeepSEA/predict``).
    """
    candidates = {model_name.rstrip("/"), Path(model_name.rstrip("/")).name}
    for directory in spec_directories():
        for path in sorted(directory.glob("*.yaml")):
            spec = load_spec(path)
            if candidates & (set(spec.models) | {path.stem}):
                return spec
    return None


def infer_layout(input_shape: Sequence[int | None]) -> tuple:
    """Guess the layout from a model input shape without the batch axis.

    The last axis of size 4 is the alphabet, the longest other axis the sequence.
    """
    shape = list(input_shape)
    if 4 not in shape:
        raise ValueError(
            f"cannot infer the input layout of a model with input shape {tuple(shape)}: no axis of "
            "size 4 (the alphabet); set input.layout in the spec"
        )
    alphabet_axis = len(shape) - 1 - shape[::-1].index(4)
    others = [(size or 0, axis) for axis, size in enumerate(shape) if axis != alphabet_axis]
    if not others:
        raise ValueError(f"model input shape {tuple(shape)} has no sequence axis")
    sequence_axis = max(others, key=lambda pair: (pair[0] != 1, pair[0]))[1]
    layout = tuple(4 if a == alphabet_axis else "L" if a == sequence_axis else shape[a] for a in range(len(shape)))
    return parse_layout(format_layout(layout))


class InputEncoder:
    """Integer codes ``(n, L)`` <-> the model's input tensor, per a resolved spec.

    Parameters
    ----------
    alphabet : str
        Channel order of the model's one-hot axis.
    layout : tuple
        e.g. ``("L", 4)``.
    center, scale : np.ndarray, shape (4,), optional
        Per-channel normalisation in ``alphabet`` order.
    """

    def __init__(self, alphabet: str, layout: tuple, center=None, scale=None):
        self.alphabet = alphabet
        self.layout = layout
        # channel c of the model input holds internal code _channel_codes[c]
        self._channel_codes = np.array([ALPHABET.index(b) for b in alphabet])
        self.center = None if center is None else np.asarray(center, dtype=np.float32)
        self.scale = None if scale is None else np.asarray(scale, dtype=np.float32)
        # from (n, L, 4) to the layout: insert unit axes, then order (L, 4) as the layout says
        squeezed = [a for a in layout if a != 1]
        self._transpose = (0,) + tuple(1 + ("L", 4).index(a) for a in squeezed)
        self._shape_tail = tuple(-1 if a == "L" else a for a in layout)
        # the encoded (normalised) channel row of each code 0..3 and of unknown bases (-1, last),
        # so encoding is one gather, not arithmetic per base
        rows = one_hot(np.array([0, 1, 2, 3, -1]))[:, self._channel_codes]
        self._rows = rows if self.center is None else (rows - self.center) / self.scale

    def encode(self, codes: np.ndarray) -> np.ndarray:
        """``(n, L)`` int8 codes -> model input ``(n, *layout)`` float32.

        Unknown bases (-1) are all-zero one-hot rows before normalisation.
        """
        x = np.take(self._rows, codes, axis=0, mode="wrap")  # code -1 wraps to the last row
        x = np.transpose(x, self._transpose)
        return np.ascontiguousarray(x.reshape((len(x),) + self._shape_tail), dtype=np.float32)

    def decode(self, inputs: np.ndarray) -> np.ndarray:
        """Model input ``(n, *layout)`` -> ``(n, L)`` codes; rows not one-hot -> -1."""
        x = np.asarray(inputs, dtype=np.float64)
        squeezed = [a for a in self.layout if a != 1]
        x = x.reshape((len(x),) + tuple(-1 if a == "L" else 4 for a in squeezed))
        if squeezed[0] == 4:
            x = np.swapaxes(x, 1, 2)
        if self.center is not None:
            x = x * self.scale + self.center
        hot = np.isclose(x, 1.0)
        valid = hot.sum(axis=-1) == 1
        channel = np.argmax(hot, axis=-1)
        return np.where(valid, self._channel_codes[channel], -1).astype(np.int8)


def resolve_normalization(normalization: Normalization | None, base_frequencies=None, alphabet=ALPHABET):
    """Explicit ``(center, scale)`` arrays in ``alphabet`` order, or ``(None, None)``.

    ``base_frequencies`` (A, C, G, T order) are required for ``bernoulli``.
    """
    if normalization is None:
        return None, None
    if normalization.bernoulli:
        if base_frequencies is None:
            raise ValueError(
                "input.normalization: bernoulli needs the genome's base frequencies: give --fasta "
                "(a genome FASTA) or set explicit center/scale in the spec"
            )
        p = np.asarray(base_frequencies, dtype=np.float64)[[ALPHABET.index(b) for b in alphabet]]
        return p, np.sqrt(p * (1 - p))
    return np.asarray(normalization.center), np.asarray(normalization.scale)
