"""Engines: the chains' current states and Φ of proposed single-base mutations.

Every engine has the same interface, so samplers never know which one runs:

- ``start(states, chains_per_input)`` sets the chains' sequences ``(n, L)`` and returns their
  Φ ``(n, k)``; rows ``i·c … (i+1)·c − 1`` (``c = chains_per_input``, default all) are the
  chains of input ``i``: an engine's arithmetic for one input must not depend on the others
  (batch invariance), and those chains always share the proposed position;
- ``propose(positions, bases)`` returns Φ ``(n, m, k)`` of each chain with ``bases[c, j]``
  written at ``positions[c]``, for ``m`` alternatives, leaving the states unchanged;
- ``accept(choice)`` commits alternative ``choice[c]`` of the last proposal (``-1``: keep);
- ``keep(rows)`` drops every chain but ``rows`` (whole inputs: an input that has converged
  leaves the batch), without changing the others' arithmetic;
- ``evaluate(codes)`` is Φ of arbitrary sequences (full forward pass).

The naive engine is the paper's algorithm — one forward pass of the penultimate sub-model
per proposal, batched over all chains — and the reference every faster engine is checked
against (:mod:`kipoi_maxent.samplers.fused`, :mod:`kipoi_maxent.samplers.incremental`,
:mod:`kipoi_maxent.samplers.windowed`). Engines may also have a compiled
``run_block(positions, offsets, uniforms, ...)`` that runs a whole block of sampler steps in one
call (the fused engine); :func:`~kipoi_maxent.samplers.mcmc.run_chains` then uses it instead of
``propose``/``accept``.

This module picks an engine for a model; the engines live in their own modules, above
:mod:`kipoi_maxent.samplers.layers` (what they share).
"""
from __future__ import annotations

from kipoi_maxent.samplers.layers import UnsupportedModel
from kipoi_maxent.samplers.naive import NaiveEngine

#: Engine names :func:`make_engine` knows, fastest first (``auto`` tries them in this order).
ENGINES = ("fused", "incremental", "windowed", "naive")


def make_engine(name: str, resolved, **options):
    """The engine ``name`` (``naive``, ``fused``, ``incremental``, ``windowed`` or ``auto``) for a resolved model.

    ``auto`` takes the fused engine when the model qualifies, else the incremental one, else
    the windowed one, else the naive one. ``options`` (e.g. ``resync_every``) go to the fused,
    incremental or windowed engine. Returns ``(engine, reason)``; ``reason`` says why ``auto``
    did not take the fused engine (and, further down, why not the next ones), else ``None``.
    """
    # the fast engines import numba: only when a model is resolved, not for checking options
    from kipoi_maxent.samplers.fused import FusedEngine
    from kipoi_maxent.samplers.incremental import IncrementalEngine
    from kipoi_maxent.samplers.windowed import WindowedEngine

    if name not in ENGINES + ("auto",):
        raise ValueError(f"engine must be {', '.join(ENGINES)} or auto, got {name!r}")
    if name == "naive":
        return NaiveEngine(resolved.penultimate), None
    if resolved.network.sub_model is None:
        reason = f"the {resolved.network.framework} backend gives no layer graph"
        if name != "auto":
            raise ValueError(f"the {name} engine cannot run this model: {reason}")
        return NaiveEngine(resolved.penultimate), reason
    reasons = []
    for kind, engine_class in (("fused", FusedEngine), ("incremental", IncrementalEngine),
                               ("windowed", WindowedEngine)):
        if name not in (kind, "auto"):
            continue
        try:
            engine = engine_class(resolved.network.sub_model, resolved.encoder,
                                  reference=resolved.network.activations, **options)
            return engine, "; ".join(reasons) or None
        except UnsupportedModel as error:
            if name == kind:
                raise ValueError(f"the {kind} engine cannot run this model: {error}; use --engine naive") from None
            if kind == "incremental" and reasons == [f"fused engine: {error}"]:
                # the fused engine is an incremental one: refused by the same check
                reasons = [f"fused and incremental engines: {error}"]
            else:
                reasons.append(f"{kind} engine: {error}" if kind != "incremental" else str(error))
    return NaiveEngine(resolved.penultimate), "; ".join(reasons)
