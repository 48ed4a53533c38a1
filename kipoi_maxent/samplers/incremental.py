"""Incremental engine: Φ of single-base mutations without a full forward pass.

For networks of the shape ``Conv1D → Flatten → Dense (= Φ, optionally followed by Dropout)``
on a ``(L, 4)`` one-hot input — the paper's CTCF and nucleosome architectures — a mutation at
position ``i`` changes only the ``K`` convolution outputs whose window covers ``i``. The engine
keeps each chain's convolution pre-activations ``Z`` ``(P, F)`` and dense pre-activations
``U`` ``(H,)``; a proposal costs

- ``ΔZ`` of the ``K`` covered outputs: a difference of two filter columns (no multiply);
- ``ΔU = Δact(Z) · W_dense[rows of those K outputs]``: one ``(chains·m, K·F) × (K·F, H)``
  matrix product per input, because all chains of an input share the proposed position;
- ``Φ = act(U + ΔU)``.

Batch invariance: every product has a fixed shape per input (one per input, or per sequence
for full passes), so an input's Φ does not depend on which other inputs share the batch
(BLAS rounds a row differently at another position or matrix size).

Rounding drift of the running sums is bounded by a full recomputation every
``resync_every`` steps. Given the framework's forward pass, the engine checks its own against
it on random sequences at construction (fastISM-style) and refuses the model on a mismatch.
Any model it does not support raises :class:`UnsupportedModel` naming the reason, and the
naive engine is used instead.
"""
from __future__ import annotations

import numpy as np

from kipoi_maxent.samplers._kernels import (
    ACTIVATION_CODES,
    apply_window_change,
    window_activation_deltas,
)
from kipoi_maxent.samplers.layers import (
    ACTIVATIONS,
    INFERENCE_IDENTITY,
    UnsupportedModel,
    activation_name,
    chains_per_input_of,
    per_input_window_products,
)
from kipoi_maxent.sequence import ALPHABET

class IncrementalEngine:
    """Same interface as :class:`~kipoi_maxent.samplers.engines.NaiveEngine`.

    Parameters
    ----------
    sub_model : keras.Model
        Input → Φ, as built by the Keras backend.
    encoder : kipoi_maxent.spec.InputEncoder
        The model's input encoding (channel order, normalisation); layout must be ``(L, 4)``.
    reference : callable, optional
        The framework's forward pass (model input -> Φ) to check against at construction.
    resync_every : int
        Steps between full recomputations of the running sums.
    check : bool
        Compare the engine's full forward pass with the framework's at construction.
    """

    name = "incremental"

    def __init__(self, sub_model, encoder, reference=None, resync_every: int = 1000):
        if tuple(encoder.layout) != ("L", 4):
            raise UnsupportedModel(f"input layout {encoder.layout} (the incremental engine needs (L, 4))")
        layers = [layer for layer in sub_model.layers if type(layer).__name__ != "InputLayer"]
        kinds = [type(layer).__name__ for layer in layers]
        while kinds and kinds[-1] in INFERENCE_IDENTITY:
            kinds.pop()
            layers.pop()
        if kinds != ["Conv1D", "Flatten", "Dense"]:
            raise UnsupportedModel(
                f"layers {' → '.join(kinds) or '(none)'} (the incremental engine supports "
                "Conv1D → Flatten → Dense [→ Dropout] up to the penultimate layer)")
        conv, _, dense = layers
        if tuple(conv.strides) != (1,) or tuple(conv.dilation_rate) != (1,) or getattr(conv, "groups", 1) != 1:
            raise UnsupportedModel(f"Conv1D {conv.name!r} with strides/dilation/groups other than 1")
        if conv.padding not in ("valid", "same"):
            raise UnsupportedModel(f"Conv1D {conv.name!r} with padding {conv.padding!r}")
        if conv.data_format != "channels_last":
            raise UnsupportedModel(f"Conv1D {conv.name!r} with data_format {conv.data_format!r}")
        self._conv_activation = ACTIVATIONS[activation_name(conv)]
        self._activation_code = ACTIVATION_CODES[activation_name(conv)]
        self._dense_activation = ACTIVATIONS[activation_name(dense)]

        kernel = np.asarray(conv.kernel.numpy(), dtype=np.float32)  # (K, 4 channels, F)
        self._conv_bias = np.asarray(conv.bias.numpy(), dtype=np.float32) if conv.use_bias else 0.0
        self.width, _, self.filters = kernel.shape
        length = int(sub_model.inputs[0].shape[1])
        self.left_pad = (self.width - 1) // 2 if conv.padding == "same" else 0
        self.right_pad = self.width - 1 - self.left_pad if conv.padding == "same" else 0
        self.outputs = length if conv.padding == "same" else length - self.width + 1
        self._encoder = encoder
        self._kernel = kernel

        # Filter columns per base code, input normalisation folded in: writing base b at a
        # position adds e_b / scale_b to the normalised input (the centre cancels in a change).
        channel = [encoder.alphabet.index(base) for base in ALPHABET]
        scale = np.ones(4, np.float32) if encoder.scale is None else encoder.scale.astype(np.float32)
        by_code = kernel[:, channel, :] / scale[channel][None, :, None]  # (K, 4 codes, F)
        # window row j (0..K-1, left to right) sees the mutated base at kernel tap K-1-j
        self._taps = np.ascontiguousarray(by_code[::-1].transpose(1, 0, 2))  # (4 codes, K, F)

        dense_kernel = np.asarray(dense.kernel.numpy(), dtype=np.float32)  # (P·F, H)
        self.hidden = dense_kernel.shape[1]
        if dense_kernel.shape[0] != self.outputs * self.filters:
            raise UnsupportedModel(f"Dense {dense.name!r} does not read the flattened convolution output")
        padded = np.zeros((self.outputs + 2 * (self.width - 1), self.filters, self.hidden), np.float32)
        padded[self.width - 1: self.width - 1 + self.outputs] = dense_kernel.reshape(self.outputs, self.filters, -1)
        self._dense_rows = padded  # zero rows for convolution outputs off either end
        self._dense_bias = np.asarray(dense.bias.numpy(), dtype=np.float64) if dense.use_bias else 0.0
        self.resync_every = resync_every
        self.states = None
        self._delta_a = np.empty((0, 0, 0), np.float32)
        if reference is not None:
            self._check_against(reference, length)

    # -- full forward pass in numpy ------------------------------------------------------
    def _conv_preactivations(self, codes: np.ndarray) -> np.ndarray:
        """``(n, L)`` codes -> ``Z`` ``(n, P + 2(K−1), F)`` float32, zero-padded by K−1 rows."""
        x = self._encoder.encode(codes)  # (n, L, 4)
        x = np.pad(x, ((0, 0), (self.left_pad, self.right_pad), (0, 0)))
        windows = np.lib.stride_tricks.sliding_window_view(x, self.width, axis=1)  # (n, P, 4, K)
        windows = windows.transpose(0, 1, 3, 2).reshape(len(x), self.outputs, -1)
        z = np.matmul(windows, self._kernel.reshape(-1, self.filters)) + self._conv_bias  # one product per sequence
        padded = np.zeros((len(x), self.outputs + 2 * (self.width - 1), self.filters), np.float32)
        padded[:, self.width - 1: self.width - 1 + self.outputs] = z
        return padded

    def _dense_preactivations(self, z_padded: np.ndarray) -> np.ndarray:
        inner = z_padded[:, self.width - 1: self.width - 1 + self.outputs]
        activated = self._conv_activation(inner).reshape(len(z_padded), -1)
        core = self._dense_rows[self.width - 1: self.width - 1 + self.outputs].reshape(-1, self.hidden)
        return np.matmul(activated[:, None], core)[:, 0].astype(np.float64) + self._dense_bias  # per sequence

    def evaluate(self, codes: np.ndarray) -> np.ndarray:
        """Φ of arbitrary sequences, ``(n, L)`` -> ``(n, H)`` float64 (numpy forward pass)."""
        codes = np.asarray(codes, dtype=np.int8)
        return self._dense_activation(self._dense_preactivations(self._conv_preactivations(codes)))

    def _check_against(self, reference, length: int,
                       what: str = "numpy forward pass (unsupported layer option)") -> None:
        """Refuse the model unless :meth:`evaluate` agrees with the framework's forward pass
        ``reference`` on 8 random sequences (one with unknown bases)."""
        codes = np.random.default_rng(0).integers(0, 4, (8, length)).astype(np.int8)
        codes[0, :3] = -1
        ours = self.evaluate(codes)
        theirs = np.asarray(reference(self._encoder.encode(codes)), dtype=np.float64)
        tolerance = 1e-4 * max(1.0, float(np.abs(theirs).max()))
        if ours.shape != theirs.shape or np.abs(ours - theirs).max() > tolerance:
            raise UnsupportedModel(f"its {what} disagrees with the framework's")

    # -- the engine interface ------------------------------------------------------------
    def start(self, states: np.ndarray, chains_per_input: int | None = None) -> np.ndarray:
        self.states = np.array(states, dtype=np.int8, copy=True)
        self._chains_per_input = chains_per_input_of(len(self.states), chains_per_input)
        self._steps = 0
        return self._resync()

    def _resync(self) -> np.ndarray:
        self._z = self._conv_preactivations(self.states)
        self._u = self._dense_preactivations(self._z)
        return self._dense_activation(self._u)

    def propose(self, positions: np.ndarray, bases: np.ndarray) -> np.ndarray:
        n, m = bases.shape
        size = self.width * self.filters
        window = positions + self.left_pad  # first padded Z row covering the position
        current = self.states[np.arange(n), positions]
        if self._delta_a.shape != (n, m, size):  # reused: a fresh array each step costs page faults
            self._delta_a = np.empty((n, m, size), np.float32)
        window_activation_deltas(self._z, self._taps, window, current, bases, self._activation_code, self._delta_a)
        delta_u = np.empty((n, m, self.hidden), np.float32)
        per_input_window_products(self._delta_a, self._dense_rows, window, self._chains_per_input, delta_u)
        u_new = self._u[:, None] + delta_u
        self._pending = (window, current, u_new, positions, bases)
        return self._dense_activation(u_new)

    def accept(self, choice: np.ndarray) -> None:
        window, current, u_new, positions, bases = self._pending
        moved = np.flatnonzero(choice >= 0)
        new = bases[moved, choice[moved]]
        apply_window_change(self._z, self._taps, window, current[moved], new, moved)
        self._u[moved] = u_new[moved, choice[moved]]
        self.states[moved, positions[moved]] = new
        self._steps += 1
        if self._steps % self.resync_every == 0:
            self._resync()

    def keep(self, rows: np.ndarray) -> None:
        self.states, self._z, self._u = self.states[rows], self._z[rows], self._u[rows]

