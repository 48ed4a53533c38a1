"""One place for input checks: each failure is a ``ValueError`` naming the value and the fix."""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np


def check_number(
    value,
    name: str,
    *,
    integer: bool = False,
    minimum: float | None = None,
    maximum: float | None = None,
    exclusive: bool = False,
    hint: str = "",
):
    """Return ``value`` (as int or float) if it is a finite number in range, else raise.

    ``exclusive`` makes both bounds strict.
    """
    kind = "an integer" if integer else "a number"
    try:
        number = int(value) if integer else float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be {kind}, got {value!r}") from None
    if integer and number != value and not (isinstance(value, str) and value.strip() == str(number)):
        raise ValueError(f"{name} must be {kind}, got {value!r}")
    if not math.isfinite(number):
        raise ValueError(f"{name} must be finite, got {value!r}")
    too_small = minimum is not None and (number <= minimum if exclusive else number < minimum)
    too_large = maximum is not None and (number >= maximum if exclusive else number > maximum)
    if too_small or too_large:
        low = "" if minimum is None else (f"> {minimum}" if exclusive else f">= {minimum}")
        high = "" if maximum is None else (f"< {maximum}" if exclusive else f"<= {maximum}")
        bounds = " and ".join(b for b in (low, high) if b)
        raise ValueError(f"{name} must be {bounds}, got {value!r}" + (f"; {hint}" if hint else ""))
    return number


def check_codes(codes, name: str = "sequences", length: int | None = None) -> np.ndarray:
    """Validate integer-coded sequences; return them as a 2-D ``int8`` array ``(n, L)``."""
    array = np.asarray(codes)
    if array.ndim == 1:
        array = array[None]
    if array.ndim != 2 or not np.issubdtype(array.dtype, np.integer):
        raise ValueError(f"{name} must be integer codes of shape (n, L), got {array.dtype} {array.shape}")
    if array.size and (array.min() < -1 or array.max() > 3):
        raise ValueError(f"{name} must hold codes 0..3 (A, C, G, T) or -1 (unknown base)")
    if length is not None and array.shape[1] != length:
        raise ValueError(f"{name} have length {array.shape[1]}, the model takes {length}")
    return array.astype(np.int8, copy=False)


def read_yaml(path, what: str):
    """Parse a YAML file with ``yaml.safe_load``: tags that build Python objects
    (``!!python/object/apply:os.system`` …) are refused, never run.

    Parameters
    ----------
    path : str or Path
    what : str
        What the file is, for messages (e.g. ``"config"``, ``"spec"``).

    Returns
    -------
    object
        The parsed document (``None`` for an empty file).

    Raises
    ------
    ValueError
        One line naming the file, where in it, and what is wrong: unreadable, not text, or
        not valid (safe) YAML.
    """
    import yaml

    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise ValueError(f"cannot read {what} {path}: {error.strerror or error}") from None
    except UnicodeDecodeError:
        raise ValueError(f"{what} {path} is not a text (UTF-8) file; give a YAML file") from None
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as error:
        raise ValueError(f"{what} {path} is not valid YAML: {_yaml_problem(error)}") from None


def _yaml_problem(error) -> str:
    """One line for a PyYAML error (its own message spans several lines, with a source excerpt)."""
    problem = getattr(error, "problem", None) or str(error).splitlines()[0]
    mark = getattr(error, "problem_mark", None)
    where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark is not None else ""
    if "python/" in problem:
        problem += " (Python tags are never run: remove the tag and give a plain value)"
    return where + problem
