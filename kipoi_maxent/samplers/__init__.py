"""MCMC samplers of eq. (9) and the engines that evaluate Φ for them.

An *engine* holds the chains' current sequences and evaluates the penultimate activations of
single-base proposals; a *sampler* turns those into exact draws of eq. (9).
"""
from kipoi_maxent.samplers.engines import ENGINES, NaiveEngine, make_engine
from kipoi_maxent.samplers.mcmc import SAMPLERS, ChainSamples, SamplerConfig, run_chains

__all__ = ["ENGINES", "SAMPLERS", "ChainSamples", "NaiveEngine", "SamplerConfig", "make_engine", "run_chains"]
