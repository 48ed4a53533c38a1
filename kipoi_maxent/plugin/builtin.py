"""The built-in backends, feature and writers, registered as plugins like any other
(:func:`kipoi_maxent.plugin.manager.plugin_manager` registers :data:`PLUGINS` first, so
third-party plugins are asked before them)."""
from __future__ import annotations

from kipoi_maxent.plugin import impl


class KerasBackend:
    """Keras 3 / TensorFlow models."""

    @impl
    def kipoi_maxent_backend(self, kipoi_model, spec):
        from kipoi_maxent.backends import keras_backend

        return keras_backend(kipoi_model, spec)


class PyTorchBackend:
    """PyTorch models (penultimate module by its ``named_modules`` path)."""

    @impl
    def kipoi_maxent_backend(self, kipoi_model, spec):
        from kipoi_maxent.backends import pytorch_backend

        return pytorch_backend(kipoi_model, spec)


class GenericKipoiBackend:
    """Any Kipoi model with ``predict_activation_on_batch``; asked last."""

    @impl(trylast=True)
    def kipoi_maxent_backend(self, kipoi_model, spec):
        from kipoi_maxent.backends import generic_backend

        return generic_backend(kipoi_model, spec)


class BuiltinFeatures:
    """``gc``: the GC count over the whole input."""

    @impl
    def kipoi_maxent_features(self, length):
        from kipoi_maxent.features import builtin_features

        return list(builtin_features(length).values())


class BuiltinWriters:
    """summary.tsv, motifs, importance tracks, frequencies, Fourier, PCA, samples, report."""

    @impl
    def kipoi_maxent_writers(self):
        from kipoi_maxent.outputs.writers import BUILTIN_WRITERS

        return list(BUILTIN_WRITERS)


#: ``(name, plugin)`` in registration order (the generic backend is ``trylast`` anyway).
PLUGINS = (
    ("generic_backend", GenericKipoiBackend()),
    ("pytorch_backend", PyTorchBackend()),
    ("keras_backend", KerasBackend()),
    ("features", BuiltinFeatures()),
    ("writers", BuiltinWriters()),
)
