"""Fused engine: whole blocks of MCMC steps in one compiled call, for the incremental engine's nets.

For the networks :class:`~kipoi_maxent.samplers.incremental.IncrementalEngine` runs —
``Conv1D → Flatten → Dense`` (then layers that are the identity at inference) on an
``(L, 4)`` input, valid or same padding, linear/relu/sigmoid/tanh, input normalisation folded
in — :meth:`FusedEngine.run_block` does a block of steps of the sampler (Metropolis or heat
bath, exactly as :func:`~kipoi_maxent.samplers.mcmc.run_block_stepwise`) in ONE numba call:
no numpy temporaries, no BLAS, no Python inside. Chains are handled in groups of consecutive
chains of one input (one ``prange`` iteration each, steps inner); the kernels are in
:mod:`~kipoi_maxent.samplers._fused_kernels`, whose docstring has the step.

The engine is an :class:`IncrementalEngine` (its construction validates the model and checks
the numpy forward pass against the framework's), with its own running sums: per chain the
convolution pre-activations ``z`` and, for sigmoid/tanh convolutions, ``act(z)`` (float32),
and the dense pre-activations ``U`` (float64, ``_u``). Its compiled full forward pass is checked
against the framework's too. ``propose``/``accept`` (the per-step interface) do per chain the
same arithmetic as the block kernel, one call per step.

Batch invariance holds by construction (every chain's operations are a fixed sequence on its
own rows, whatever the batch, the groups or the threads). Rounding drift of the float32
window sums and the float64 ``U`` is bounded by a full recomputation every ``resync_every``
steps, done per chain inside the block kernel.
"""
from __future__ import annotations

import numba
import numpy as np

import kipoi_maxent.samplers._fused_kernels as kernels
from kipoi_maxent.samplers.incremental import IncrementalEngine
from kipoi_maxent.samplers.layers import (
    INFERENCE_IDENTITY,
    activation_name,
    chains_per_input_of,
)

_IS_GC = np.array([0.0, 1.0, 1.0, 0.0])  # A C G T
_CODES = {"linear": 0, "relu": 1, "sigmoid": 2, "tanh": 3}


class FusedEngine(IncrementalEngine):
    """Same interface as :class:`~kipoi_maxent.samplers.engines.NaiveEngine`, plus :meth:`run_block`.

    Parameters
    ----------
    sub_model : keras.Model
        Input → Φ, as built by the Keras backend.
    encoder : kipoi_maxent.spec.InputEncoder
        The model's input encoding; layout must be ``(L, 4)``.
    reference : callable, optional
        The framework's forward pass (model input -> Φ) to check against at construction.
    resync_every : int
        Steps between full recomputations of each chain's running sums.
    """

    name = "fused"

    def __init__(self, sub_model, encoder, reference=None, resync_every: int = 1000):
        # the incremental engine refuses unsupported models; its forward pass is numpy, ours is
        # compiled: ours is the one checked against the framework's (below)
        super().__init__(sub_model, encoder, reference=None, resync_every=resync_every)
        layers = [layer for layer in sub_model.layers if type(layer).__name__ not in ("InputLayer",) + INFERENCE_IDENTITY]
        conv, dense = layers[0], layers[-1]
        self.length = int(sub_model.inputs[0].shape[1])
        self._conv_kind = _CODES[activation_name(conv)]
        self._dense_kind = _CODES[activation_name(dense)]
        self._cache = self._conv_kind in (2, 3)  # keep act(z): the window pass then needs one exp, not two

        # taps[k, t, f]: convolution input of code k (4: unknown base) at tap t, normalisation
        # folded in (float64 products of the float32 network); diff[old, new]: change of the
        # window's flat (row j = tap K-1-j, filter) entries, float32
        rows = encoder.encode(np.array([[0, 1, 2, 3, -1]], np.int8))[0].astype(np.float64)  # (5, 4)
        kernel = np.asarray(conv.kernel.numpy(), np.float64)  # (K, 4 channels, F)
        self._taps64 = np.ascontiguousarray(np.einsum("kc,tcf->ktf", rows, kernel))
        flipped = self._taps64[:4, ::-1]  # (4 codes, K window rows, F)
        self._diff = np.ascontiguousarray((flipped[None] - flipped[:, None]).reshape(4, 4, -1).astype(np.float32))
        bias = np.asarray(conv.bias.numpy(), np.float32) if conv.use_bias else np.zeros(self.filters, np.float32)
        self._conv_bias64 = bias.astype(np.float64)
        dense_kernel = np.asarray(dense.kernel.numpy(), np.float32)  # (P·F, H)
        self._padded_hidden = -(-self.hidden // kernels.LANES) * kernels.LANES
        self._w = np.zeros((dense_kernel.shape[0], self._padded_hidden), np.float32)
        self._w[:, : self.hidden] = dense_kernel
        self._w_t = np.ascontiguousarray(dense_kernel.T)  # (H, P·F): the full pass's dot products
        dense_bias = np.asarray(dense.bias.numpy(), np.float32) if dense.use_bias else np.zeros(self.hidden, np.float32)
        self._dense_bias64 = dense_bias.astype(np.float64)
        self._window_size = self.width * self.filters
        self._all_rows = np.arange(self._window_size, dtype=np.int64)
        threads = numba.config.NUMBA_NUM_THREADS
        rows_per_group = 3 * kernels.GROUP
        self._s_da = np.zeros((threads, rows_per_group, self._window_size), np.float32)
        self._s_an = np.zeros((threads, rows_per_group, self._window_size if self._cache else 0), np.float32)
        self._s_du = np.zeros((threads, rows_per_group, self._padded_hidden), np.float32)
        self._s_rows = np.zeros((threads, self._window_size), np.int64)
        self._s_z = np.zeros((threads, self.outputs * self.filters), np.float32)
        if reference is not None:
            self._check_against(reference, self.length, what="compiled forward pass")
        self.states = None

    # -- full forward pass (compiled) ---------------------------------------------------------
    def _forward_u(self, codes: np.ndarray) -> np.ndarray:
        codes = np.ascontiguousarray(codes, dtype=np.int8)
        u = np.empty((len(codes), self.hidden))
        kernels.forward_rows(codes, self._taps64, self._conv_bias64, self.left_pad, self.outputs, self._conv_kind,
                             self._w_t, self._dense_bias64, self._s_z, u)
        return u

    def _phi(self, u: np.ndarray) -> np.ndarray:
        out = np.empty_like(u)
        kernels.activate_rows(np.ascontiguousarray(u), self._dense_kind, out)
        return out

    def evaluate(self, codes: np.ndarray) -> np.ndarray:
        """Φ of arbitrary sequences, ``(n, L)`` -> ``(n, H)`` float64 (compiled forward pass, per row)."""
        return self._phi(self._forward_u(codes))

    # -- the engine interface ---------------------------------------------------------------------
    def start(self, states: np.ndarray, chains_per_input: int | None = None) -> np.ndarray:
        self.states = np.array(states, dtype=np.int8, copy=True, order="C")
        self._chains_per_input = chains_per_input_of(len(self.states), chains_per_input)
        self._steps = 0
        self._groups()
        return self._resync(equal_to_first=True)

    def _resync(self, equal_to_first: bool = False) -> np.ndarray:
        """Recompute every chain's running sums; ``equal_to_first``: the chains whose state equals
        their input's first chain's (at the start, all: they start at x0) copy its sums, which is
        what they would compute (the pass is a fixed function of the state)."""
        n, size = len(self.states), self.outputs * self.filters
        source = np.arange(n)
        if equal_to_first:
            first = source - source % self._chains_per_input
            source = np.where((self.states == self.states[first]).all(axis=1), first, source)
        self._z = np.empty((n, size), np.float32)
        self._a = np.empty((n, size if self._cache else 0), np.float32)
        self._u = np.empty((n, self.hidden))
        kernels.forward_chains(self.states, source, self._taps64, self._conv_bias64, self.left_pad, self.outputs,
                               self._conv_kind, self._w_t, self._dense_bias64, self._z, self._a, self._cache,
                               self._u)
        return self._phi(self._u)

    def _groups(self) -> None:
        """Consecutive chains of one input, at most ``GROUP`` (the block kernel's work items);
        smaller when there are fewer inputs than threads, so that the last inputs of a run
        still use every core (a chain's arithmetic does not depend on its group)."""
        per_input, inputs = self._chains_per_input, len(self.states) // self._chains_per_input
        splits = max(1, -(-numba.get_num_threads() // max(inputs, 1)))
        size = max(1, min(kernels.GROUP, -(-per_input // splits)))
        within = np.arange(0, per_input, size)
        first = (np.arange(inputs)[:, None] * per_input + within).ravel()
        self._group_first = first.astype(np.int64)
        self._group_count = np.minimum(size, per_input - np.tile(within, inputs))

    def propose(self, positions: np.ndarray, bases: np.ndarray) -> np.ndarray:
        positions = np.ascontiguousarray(positions, dtype=np.int64)
        bases = np.ascontiguousarray(bases, dtype=np.int8)
        n, m = bases.shape
        self._u = np.ascontiguousarray(self._u, dtype=np.float64)
        an = np.empty((n, m, self._window_size if self._cache else 0), np.float32)
        du = np.empty((n, m, self._padded_hidden), np.float32)
        phi = np.empty((n, m, self.hidden))
        da = np.empty((numba.config.NUMBA_NUM_THREADS, m, self._window_size), np.float32)
        kernels.propose(positions, bases, self.states, self._z, self._a, self._u, self._diff, self._w,
                        self._all_rows, self.left_pad, self.width, self.filters, self.outputs, self._conv_kind,
                        self._dense_kind, self._cache, an, da, du, self._s_rows, phi)
        self._pending = (positions, bases, an, du)
        return phi

    def accept(self, choice: np.ndarray) -> None:
        positions, bases, an, du = self._pending
        kernels.accept(np.ascontiguousarray(choice, dtype=np.int64), positions, bases, self.states, self._z, self._a,
                       self._u, self._diff, an, du, self.left_pad, self.width, self.filters, self.outputs, self._cache)
        self._pending = None
        self._steps += 1
        if self._steps % self.resync_every == 0:
            self._resync()

    def keep(self, rows: np.ndarray) -> None:
        self.states, self._z, self._a, self._u = (np.ascontiguousarray(x[rows]) for x in
                                                  (self.states, self._z, self._a, self._u))
        self._groups()

    def run_block(self, positions, offsets, uniforms, *, beta, mu, gibbs, reference, weights, distance, moved,
                  record, states_out, distances_out) -> None:
        """The steps of :func:`~kipoi_maxent.samplers.mcmc.run_block_stepwise` (same signature and
        semantics), in one compiled call."""
        steps = len(positions)
        if steps == 0:
            return
        done = self._steps + np.arange(1, steps + 1)
        record = np.asarray(record, dtype=bool)
        slots = np.where(record, np.cumsum(record) - 1, -1).astype(np.int64)
        self._u = np.ascontiguousarray(self._u, dtype=np.float64)
        distance_work = _in_out(distance, np.float64)
        moved_work = _in_out(moved, np.int64)
        kernels.run_block(bool(gibbs), self._group_first, self._group_count,
                          np.ascontiguousarray(positions, dtype=np.int64), np.ascontiguousarray(offsets, dtype=np.int8),
                          np.ascontiguousarray(uniforms, dtype=np.float64), self.states, self._z, self._a, self._u,
                          self._diff, self._w, self._all_rows, float(beta), float(mu),
                          np.ascontiguousarray(reference, dtype=np.float64),
                          np.ascontiguousarray(weights, dtype=np.float64), distance_work, moved_work,
                          done % self.resync_every == 0, slots, states_out, distances_out, self._taps64,
                          self._conv_bias64, self._w_t, self._dense_bias64, self.left_pad, self.width, self.filters,
                          self.outputs, self._conv_kind, self._dense_kind, self._cache, _IS_GC, self._s_da, self._s_an,
                          self._s_du, self._s_rows)
        if distance_work is not distance:
            distance[...] = distance_work
        if moved_work is not moved:
            moved[...] = moved_work
        self._steps += steps


def _in_out(array: np.ndarray, dtype) -> np.ndarray:
    """``array`` itself when the kernel can write it in place, else a contiguous copy."""
    if isinstance(array, np.ndarray) and array.dtype == dtype and array.flags.c_contiguous:
        return array
    return np.ascontiguousarray(array, dtype=dtype)
