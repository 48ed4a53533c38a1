"""kipoi_maxent: maximum-entropy interpretation of Kipoi DNA models (Finnegan & Song).

Importing the package is cheap (the Kipoi start-up hook imports it in every Python process
that imports Kipoi); the API is loaded on first use.
"""
__version__ = "0.1.0"

__all__ = [
    "ModelSpec", "RunOptions", "RunResult", "SamplerConfig", "calibrate", "gc_chemical_potential", "iter_sample",
    "knn", "load_samples", "load_spec", "resolve_model", "run", "sample",
]

_LAZY = {
    "run": "kipoi_maxent.runner",
    "calibrate": "kipoi_maxent.runner",
    "knn": "kipoi_maxent.runner",
    "RunOptions": "kipoi_maxent.runner",
    "RunResult": "kipoi_maxent.runner",
    "sample": "kipoi_maxent.api",
    "iter_sample": "kipoi_maxent.api",
    "resolve_model": "kipoi_maxent.api",
    "load_spec": "kipoi_maxent.spec",
    "load_samples": "kipoi_maxent.outputs.hdf5",
    "ModelSpec": "kipoi_maxent.spec",
    "SamplerConfig": "kipoi_maxent.samplers",
    "gc_chemical_potential": "kipoi_maxent.genome_composition",
    "cli_main": "kipoi_maxent.cli",  # Kipoi's plugin entry point
}


def __getattr__(name):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'kipoi_maxent' has no attribute {name!r}")
