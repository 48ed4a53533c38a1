"""MCMC samplers of eq. (9) and the engines that evaluate Φ for them.

An *engine* holds the chains' current sequences and evaluates the penultimate activations of
single-base proposals; a *sampler* turns those into exact draws of eq. (9). Layers, bottom
up: :mod:`~kipoi_maxent.samplers.layers` (what the engines share) and
:mod:`~kipoi_maxent.samplers._kernels` (numba loops); the engines
(:mod:`~kipoi_maxent.samplers.naive`, :mod:`~kipoi_maxent.samplers.incremental`,
:mod:`~kipoi_maxent.samplers.windowed`); engine selection
(:mod:`~kipoi_maxent.samplers.engines`); the chain loop (:mod:`~kipoi_maxent.samplers.mcmc`).
"""
from kipoi_maxent.samplers.engines import ENGINES, make_engine
from kipoi_maxent.samplers.mcmc import SAMPLERS, ChainSamples, SamplerConfig, run_chains
from kipoi_maxent.samplers.naive import NaiveEngine

__all__ = ["ENGINES", "SAMPLERS", "ChainSamples", "NaiveEngine", "SamplerConfig", "make_engine", "run_chains"]
