"""The hooks a plugin can implement (pluggy hook specifications)."""
from __future__ import annotations

from typing import TYPE_CHECKING, Iterable

import pluggy

from kipoi_maxent.plugin import NAME

if TYPE_CHECKING:
    from kipoi_maxent.backends import PenultimateModel
    from kipoi_maxent.features import Feature
    from kipoi_maxent.outputs.writers import Writer
    from kipoi_maxent.spec import ModelSpec

_spec = pluggy.HookspecMarker(NAME)


@_spec(firstresult=True)
def kipoi_maxent_backend(kipoi_model: object, spec: ModelSpec) -> PenultimateModel | None:
    """Give the penultimate activations and output weights of a loaded Kipoi model.

    Called for every model until one plugin answers (first result wins; plugins registered
    later, i.e. third-party ones, are asked before the built-ins, and the generic Kipoi
    fallback is asked last).

    Parameters
    ----------
    kipoi_model : kipoi.model.BaseModel
        The model as ``kipoi.get_model`` returned it.
    spec : ModelSpec
        The spec (``penultimate_layer`` may be ``"auto"``; ``output_weights`` may be given).

    Returns
    -------
    PenultimateModel, or None when this backend does not handle the model.
    """


@_spec
def kipoi_maxent_features(length: int) -> Iterable[Feature]:
    """Global features (for δ, ``--features NAME``) this plugin provides.

    Parameters
    ----------
    length : int
        The model's input length L; every feature's coefficients are ``(L, 4)``.

    Returns
    -------
    iterable of Feature, with names unique across plugins (a name declared in the run's
    config overrides a plugin's).
    """


@_spec
def kipoi_maxent_writers() -> Iterable[Writer]:
    """Output writers this plugin provides.

    Returns
    -------
    iterable of Writer: objects with ``name`` (unique, for ``--writers``), ``description`` and
    ``write(run: RunOutputs) -> list[str]`` (file names written under ``run.outdir``).
    Every registered writer runs unless ``--writers`` selects a subset.
    """
