"""Windowed engine: Φ of single-base mutations of deeper convolutional networks (fastISM-like).

For a Keras network that is a chain of *blocks* — ``Conv1D`` followed by any pointwise layers
(``Activation``, ``ReLU``, ``BatchNormalization`` at inference) and non-overlapping poolings
(``MaxPooling1D`` / ``AveragePooling1D`` with pool = stride, valid padding) — then
``Flatten → Dense …`` up to Φ, a mutation at position ``p`` changes only a window of each
block's output. The engine keeps every chain's block outputs (float32) and the first Dense
layer's pre-activation ``U`` (float64); a proposal

- propagates the changed range block by block (convolution: ``[a + pad − (K − 1), b + pad]``;
  poolings of total stride ``S``: ``[a // S, b // S]``), as a window of a fixed number of rows
  per block, shifted inwards at the sequence ends;
- recomputes only those rows, from the block's stored input with the previous block's new rows
  overlaid: one im2col matrix product per block and input (over its chains and alternatives);
- adds the change of the flattened rows to ``U`` (one matrix product per input, whose chains
  share the window) and runs the remaining dense layers in full.

Batch invariance: every matrix product has a fixed shape per chain, input or sequence, so an
input's Φ does not depend on which other inputs share the batch (BLAS rounds a row
differently at another position or matrix size).

Proposals leave the state untouched; ``accept`` copies the chosen alternative's windows in.
Block outputs are stored in float32, the framework's own precision: they are recomputed from
their inputs, never accumulated, so their rounding does not grow with the steps. Only ``U`` is
a running sum (float64, of float32 changes; measured drift 1.5e-5 after 10^5 accepted
mutations), recomputed from the stored last block every ``resync_every`` steps.

At construction the engine checks its numpy forward pass against the framework's on random
sequences, and its windowed proposals against its full forward pass (at both sequence ends
and the middle); on a mismatch, or a layer it does not support (:data:`SUPPORTED_LAYERS`), it
raises :class:`~kipoi_maxent.samplers.layers.UnsupportedModel` naming the layer.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

import numba
import numpy as np

from kipoi_maxent._validation import check_number
from kipoi_maxent.samplers.layers import (
    ACTIVATIONS,
    INFERENCE_IDENTITY,
    UnsupportedModel,
    activation_name,
    chains_per_input_of,
    per_input_window_products,
)

#: Layers that may follow a ``Conv1D`` inside a block: pointwise ones act row by row, so a
#: window keeps its rows; poolings (pool = stride, valid padding) divide the rows by the pool.
_POINTWISE = ("Activation", "ReLU", "BatchNormalization")
_POOLINGS = {"MaxPooling1D": np.max, "AveragePooling1D": np.mean}
#: Every layer type the windowed engine runs, by Keras class name.
SUPPORTED_LAYERS = frozenset({"Conv1D", "Flatten", "Dense", *_POINTWISE, *_POOLINGS, *INFERENCE_IDENTITY})
#: Floats of one im2col matrix (4 MB) and of one chunk of the full forward pass's stored
#: activations: larger batches are done in chunks, which bounds the work space.
_CHUNK_FLOATS = 1 << 20

Step = Callable[[np.ndarray], np.ndarray]


@dataclass(frozen=True)
class _Block:
    """``Conv1D`` → pointwise layers and poolings, as the engine runs it.

    ``kernel`` is ``(K·C, F)`` float32, rows ordered tap-major (the im2col column order);
    ``steps`` act on ``(..., rows, F)`` arrays along the rows axis. Lengths are in rows:
    ``outputs`` of the block, ``window`` recomputed per proposal (of its output), ``stride``
    the product of the pool sizes (block output row ``q`` reads convolution rows
    ``q·S … q·S + S − 1``).
    """

    name: str
    kernel: np.ndarray
    bias: np.ndarray
    width: int
    pad_left: int
    pad_right: int
    steps: tuple
    stride: int
    inputs: int
    outputs: int
    window: int

    def window_start(self, changed_start: np.ndarray) -> np.ndarray:
        """First output row of each chain's window, given the first changed input row ``(n,)``."""
        first = (changed_start + self.pad_left - self.width + 1) // self.stride
        return np.minimum(np.maximum(first, 0), self.outputs - self.window)


class WindowedEngine:
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
        Steps between recomputations of the running first-Dense pre-activations (default 1000).
    """

    name = "windowed"

    def __init__(self, sub_model, encoder, reference=None, resync_every: int = 1000):
        if tuple(encoder.layout) != ("L", 4):
            raise UnsupportedModel(f"input layout {encoder.layout} (the windowed engine needs (L, 4))")
        self.resync_every = check_number(resync_every, "resync_every", integer=True, minimum=1)
        self.length = sub_model.inputs[0].shape[1]
        if self.length is None:
            raise UnsupportedModel("the model's input length is not fixed")
        self._encoder = encoder
        # the model input row of each base code, normalisation included
        self._encoded_bases = encoder.encode(np.arange(4, dtype=np.int8)[None])[0]  # (4, 4)
        self.blocks, dense, self._tail = _parse(sub_model, self.length)
        last_rows, last_filters = (self.blocks[-1].outputs, self.blocks[-1].kernel.shape[1]) if self.blocks \
            else (self.length, 4)
        kernel = np.asarray(dense.kernel.numpy(), dtype=np.float32)
        if kernel.shape[0] != last_rows * last_filters:
            raise UnsupportedModel(f"Dense {dense.name!r} does not read the flattened output of the last block")
        self._dense_rows = kernel.reshape(last_rows, last_filters, -1)  # (P, F, H)
        self._dense_bias = np.asarray(dense.bias.numpy(), np.float64) if dense.use_bias else 0.0
        self.states = None
        self._workspace = {}  # im2col and product buffers of each block, reused across steps
        if reference is not None:
            self._check_against(reference)
        self._check_windows()

    # -- full forward pass in numpy ------------------------------------------------------
    def _padding(self, level: int) -> tuple[int, int]:
        """Zero rows before and after the stored input of block ``level`` (none after the last)."""
        if level == len(self.blocks):
            return 0, 0
        return self.blocks[level].pad_left, self.blocks[level].pad_right

    def _levels(self, codes: np.ndarray) -> list[np.ndarray]:
        """The padded input of every block and the last block's output, ``(n, rows, channels)`` float32."""
        x = self._encoder.encode(codes)
        levels = [np.pad(x, ((0, 0), self._padding(0), (0, 0)))]
        no_overlay = np.zeros((len(codes), 1, 0, x.shape[2]), np.float32)
        starts = np.zeros(len(codes), np.int64)
        for level, block in enumerate(self.blocks):
            whole = replace(block, window=block.outputs)
            out = _block_window(whole, levels[level], starts, no_overlay, starts, {})[:, 0]
            levels.append(np.pad(out, ((0, 0), self._padding(level + 1), (0, 0))))
            no_overlay = np.zeros((len(codes), 1, 0, out.shape[2]), np.float32)
        return levels

    def _dense_preactivations(self, last: np.ndarray) -> np.ndarray:
        """``U`` ``(n, H)`` float64 from the last block's output ``(n, P, F)``."""
        flat = last.reshape(len(last), 1, -1)  # one product per sequence: batch-invariant rounding
        return np.matmul(flat, self._dense_rows.reshape(flat.shape[2], -1))[:, 0].astype(np.float64) + self._dense_bias

    def _phi(self, u: np.ndarray) -> np.ndarray:
        for step in self._tail:
            u = step(u)
        return np.asarray(u, dtype=np.float64)

    def _chunk(self) -> int:
        """Sequences per chunk of the full forward pass (bounds its stored activations' memory)."""
        floats = sum((b.inputs + b.pad_left + b.pad_right) * b.kernel.shape[0] // b.width for b in self.blocks)
        return max(1, _CHUNK_FLOATS // max(floats, 1))

    def evaluate(self, codes: np.ndarray) -> np.ndarray:
        """Φ of arbitrary sequences, ``(n, L)`` -> ``(n, k)`` float64 (numpy forward pass)."""
        codes = np.asarray(codes, dtype=np.int8)
        chunk = self._chunk()
        return np.concatenate([self._phi(self._dense_preactivations(self._levels(codes[i:i + chunk])[-1]))
                               for i in range(0, max(len(codes), 1), chunk)])

    def _check_against(self, reference) -> None:
        codes = np.random.default_rng(0).integers(0, 4, (8, self.length)).astype(np.int8)
        ours = self.evaluate(codes)
        theirs = np.asarray(reference(self._encoder.encode(codes)), dtype=np.float64)
        tolerance = 1e-4 * max(1.0, float(np.abs(theirs).max()))
        if ours.shape != theirs.shape or np.abs(ours - theirs).max() > tolerance:
            raise UnsupportedModel("its numpy forward pass disagrees with the framework's (unsupported layer option)")

    def _check_windows(self) -> None:
        """Windowed proposals (all 3 alternatives, both ends and the middle) vs the full pass."""
        positions = np.array([0, self.length // 2, self.length - 1])
        self.start(np.random.default_rng(1).integers(0, 4, (len(positions), self.length)).astype(np.int8))
        for _ in range(2):  # the second round starts from accepted states: checks accept too
            states = self.states.copy()
            bases = (states[np.arange(len(positions)), positions][:, None] + np.arange(1, 4)) % 4
            mutants = np.repeat(states[:, None], 3, axis=1)
            mutants[np.arange(len(positions)), :, positions] = bases
            proposed = self.propose(positions, bases.astype(np.int8))
            full = self.evaluate(mutants.reshape(-1, self.length)).reshape(proposed.shape)
            if np.abs(proposed - full).max() > 1e-4 * max(1.0, float(np.abs(full).max())):
                raise UnsupportedModel("its windowed proposals disagree with its full forward pass")
            self.accept(np.arange(len(positions)) % 3)
            positions = positions[::-1].copy()
        self.states = None

    # -- the engine interface ------------------------------------------------------------
    def start(self, states: np.ndarray, chains_per_input: int | None = None) -> np.ndarray:
        self.states = np.array(states, dtype=np.int8, copy=True)
        self._chains_per_input = chains_per_input_of(len(self.states), chains_per_input)
        self._steps = 0
        chunk = self._chunk()
        parts = [self._levels(self.states[i:i + chunk]) for i in range(0, len(self.states), chunk)]
        self._stored = [np.concatenate(level) for level in zip(*parts)]
        self._resync()
        return self._phi(self._u)

    def _resync(self) -> None:
        self._u = self._dense_preactivations(self._stored[-1])

    def propose(self, positions: np.ndarray, bases: np.ndarray) -> np.ndarray:
        n, m = bases.shape
        positions = np.asarray(positions, dtype=np.int64)
        changed_start, changed = positions, self._encoded_bases[bases][:, :, None, :]  # (n, m, 1, 4)
        windows = []
        for level, block in enumerate(self.blocks):
            start = block.window_start(changed_start)
            changed = _block_window(block, self._stored[level], start * block.stride, changed,
                                    changed_start + block.pad_left, self._workspace, self._chains_per_input)
            windows.append((start, changed))
            changed_start = start
        rows = changed.shape[2]
        chains = np.arange(n)
        old = self._stored[-1][chains[:, None], changed_start[:, None] + np.arange(rows)]  # (n, rows, F)
        delta = (changed - old[:, None]).reshape(n, m, -1)
        delta_u = np.empty((n, m, self._dense_rows.shape[2]), np.float32)
        per_input_window_products(delta, self._dense_rows, changed_start, self._chains_per_input, delta_u)
        u_new = self._u[:, None] + delta_u
        self._pending = (positions, bases, windows, u_new)
        return self._phi(u_new.reshape(n * m, -1)).reshape(n, m, -1)

    def accept(self, choice: np.ndarray) -> None:
        positions, bases, windows, u_new = self._pending
        moved = np.flatnonzero(choice >= 0)
        picked = choice[moved]
        new_bases = bases[moved, picked]
        self._stored[0][moved, positions[moved] + self._padding(0)[0]] = self._encoded_bases[new_bases]
        for level, (start, rows) in enumerate(windows, start=1):
            offset = start[moved, None] + self._padding(level)[0] + np.arange(rows.shape[2])
            self._stored[level][moved[:, None], offset] = rows[moved, picked]
        self._u[moved] = u_new[moved, picked]
        self.states[moved, positions[moved]] = new_bases
        self._steps += 1
        if self._steps % self.resync_every == 0:
            self._resync()

    def keep(self, rows: np.ndarray) -> None:
        self.states, self._u = self.states[rows], self._u[rows]
        self._stored = [level[rows] for level in self._stored]


def _block_window(block: _Block, stored, input_start, overlay, overlay_start, workspace: dict,
                  group: int = 1) -> np.ndarray:
    """Output rows ``[s, s + window)`` of ``block`` for each chain and alternative.

    Parameters
    ----------
    stored : (n, R, C) float32
        The block's padded input.
    input_start : (n,) int
        First padded input row read, ``s·S``.
    overlay : (n, m, W, C) float32
        The alternatives' new input rows, at padded rows ``overlay_start`` ``(n,)`` onwards.
    workspace : dict
        Buffers by block name, kept for the next call (pass ``{}`` for one-off calls).
    group : int
        Chains ``i·group … (i+1)·group − 1`` (an input's) get products whose shapes depend on
        ``group`` alone, so their rounding does not depend on the other chains (batch
        invariance): one product per group when the work space holds whole groups, else
        products over fixed runs of chains that restart at every group.

    Returns
    -------
    np.ndarray, shape (n, m, window, F), float32
    """
    n, m = overlay.shape[:2]
    rows = block.window * block.stride
    taps, filters = block.kernel.shape
    fit = max(1, _CHUNK_FLOATS // (m * rows * taps))  # chains per im2col matrix
    per_product = min(group, fit)
    chains = per_product * max(1, fit // per_product)
    # chunks of whole groups, or, when a product covers only part of a group, chunks that
    # restart at every group
    span = n if per_product == group else group
    bounds = [(first, min(first + chains, start + span, n))
              for start in range(0, n, span) for first in range(start, min(start + span, n), chains)]
    needed = min(n, chains) * m * rows
    if block.name not in workspace or len(workspace[block.name][0]) < needed:
        workspace[block.name] = (np.empty((needed, taps), np.float32), np.empty((needed, filters), np.float32))
    input_start, overlay_start = np.asarray(input_start, np.int64), np.asarray(overlay_start, np.int64)
    out = np.empty((n, m, block.window, filters), np.float32)
    for first, last in bounds:
        columns, z = (buffer[: (last - first) * m * rows] for buffer in workspace[block.name])
        _window_columns(stored[first:last], input_start[first:last], overlay[first:last],
                        overlay_start[first:last], block.width, rows, columns)
        products = -(-(last - first) // per_product)  # a group's last partial product counts one
        np.matmul(columns.reshape(products, -1, taps), block.kernel, out=z.reshape(products, -1, filters))
        z += block.bias
        part = z.reshape(last - first, m, rows, filters)
        for step in block.steps:
            part = step(part)
        out[first:last] = part
    return out


@numba.njit(cache=True)
def _window_columns(stored, starts, overlay, overlay_starts, width, rows, columns):
    """im2col of each (chain, alternative)'s convolution input, its new rows overlaid.

    Parameters
    ----------
    stored : (n, R, C) float32
        Padded block inputs of the chains.
    starts : (n,) int64
        First padded input row of each chain's window.
    overlay : (n, m, W, C) float32
        New input rows of each alternative, at padded rows ``overlay_starts[c] + 0 … W − 1``.
    overlay_starts : (n,) int64
    width : int
        Kernel width K.
    rows : int
        Convolution output rows per window.
    columns : (n·m·rows, K·C) float32, out
        Row ``(c·m + a)·rows + r`` holds input rows ``starts[c] + r … + K − 1``, tap-major.

    One thread: OpenBLAS's workers spin for a while after each product, and a parallel region
    here competed with them for the cores (measured on the Basset-like net, 2 cores: 6.4–9.4k
    proposals/s with numba threads, 8.7–9.9k without).
    """
    m, span, channels = overlay.shape[1], overlay.shape[2], overlay.shape[3]
    for chain in range(stored.shape[0]):
        for alt in range(m):
            for r in range(rows):
                out = (chain * m + alt) * rows + r
                for tap in range(width):
                    source = starts[chain] + r + tap
                    j = source - overlay_starts[chain]
                    column = tap * channels
                    if 0 <= j < span:
                        for c in range(channels):
                            columns[out, column + c] = overlay[chain, alt, j, c]
                    else:
                        for c in range(channels):
                            columns[out, column + c] = stored[chain, source, c]


# -- reading the Keras model ---------------------------------------------------------------
def _unsupported(layer, why: str = "") -> UnsupportedModel:
    kind = type(layer).__name__
    return UnsupportedModel(
        f"layer {layer.name!r} ({kind}{', ' + why if why else ''}) is not supported by the windowed engine, which "
        "runs Conv1D (stride 1, no dilation, valid/same padding) → Activation/ReLU/BatchNormalization/"
        "MaxPooling1D/AveragePooling1D (pool = stride, valid) … → Flatten → Dense … [Dropout-like layers anywhere]")


def _pointwise(layer, channel_axis: int) -> Step:
    """The function of an Activation, ReLU or BatchNormalization (inference) layer."""
    kind = type(layer).__name__
    if kind == "Activation":
        return ACTIVATIONS[activation_name(layer)]
    if kind == "ReLU":
        if layer.max_value is not None or float(layer.negative_slope) != 0 or float(layer.threshold) != 0:
            raise _unsupported(layer, "max_value/negative_slope/threshold set")
        return ACTIVATIONS["relu"]
    if layer.axis not in (-1, channel_axis):
        raise _unsupported(layer, f"axis {layer.axis}")
    # inference: a per-channel affine map with the moving statistics
    scale = 1.0 / np.sqrt(np.asarray(layer.moving_variance.numpy(), np.float64) + layer.epsilon)
    if layer.scale:
        scale = scale * layer.gamma.numpy()
    shift = -np.asarray(layer.moving_mean.numpy(), np.float64) * scale
    if layer.center:
        shift = shift + layer.beta.numpy()
    scale, shift = scale.astype(np.float32), shift.astype(np.float32)
    return lambda x: x * scale + shift


def _pool(layer) -> int:
    size, stride = layer.pool_size[0], layer.strides[0]
    if size != stride or layer.padding != "valid" or layer.data_format != "channels_last":
        raise _unsupported(layer, f"pool {size}, strides {stride}, padding {layer.padding!r}")
    return size


def _pool_step(reduce, size: int) -> Step:
    def pool(x):
        rows = x.shape[-2] // size
        return reduce(x[..., : rows * size, :].reshape(*x.shape[:-2], rows, size, x.shape[-1]), axis=-2)

    return pool


def _dense_step(layer) -> Step:
    kernel = np.asarray(layer.kernel.numpy(), np.float32)
    bias = np.asarray(layer.bias.numpy(), np.float32) if layer.use_bias else np.float32(0)
    activation = ACTIVATIONS[activation_name(layer)]
    # one product per row (a vector-matrix product): rounding independent of the batch
    return lambda x: activation(np.matmul(np.asarray(x, np.float32)[..., None, :], kernel)[..., 0, :] + bias)


def _parse(sub_model, length: int):
    """``(blocks, first Dense layer, tail steps U -> Φ)`` of a supported model, else raise."""
    convs, steps, strides, dense, tail = [], [], [], None, []
    flattened = False
    for layer in sub_model.layers:
        kind = type(layer).__name__
        if kind == "InputLayer" or kind in INFERENCE_IDENTITY:
            continue
        if kind not in SUPPORTED_LAYERS:
            raise _unsupported(layer)
        if not flattened:
            if kind == "Conv1D":
                if tuple(layer.strides) != (1,) or tuple(layer.dilation_rate) != (1,) or layer.groups != 1:
                    raise _unsupported(layer, f"strides {layer.strides}, dilation {layer.dilation_rate}")
                if layer.padding not in ("valid", "same") or layer.data_format != "channels_last":
                    raise _unsupported(layer, f"padding {layer.padding!r}")
                activation = activation_name(layer)
                convs.append(layer)
                steps.append([] if activation == "linear" else [ACTIVATIONS[activation]])
                strides.append(1)
            elif kind == "Flatten":
                if layer.data_format != "channels_last":
                    raise _unsupported(layer, f"data_format {layer.data_format!r}")
                flattened = True
            elif convs and kind in _POOLINGS:
                size = _pool(layer)
                steps[-1].append(_pool_step(_POOLINGS[kind], size))
                strides[-1] *= size
            elif convs and kind in _POINTWISE:
                steps[-1].append(_pointwise(layer, channel_axis=2))
            else:
                raise _unsupported(layer, "before any Conv1D" if not convs else "before Flatten")
        elif dense is None and kind == "Dense":
            dense = layer
            tail.append(ACTIVATIONS[activation_name(layer)])
        elif dense is not None and kind == "Dense":
            tail.append(_dense_step(layer))
        elif dense is not None and kind in _POINTWISE:
            tail.append(_pointwise(layer, channel_axis=1))
        else:
            raise _unsupported(layer, "after Flatten" if dense is None else "")
    if dense is None:
        raise UnsupportedModel("no Flatten → Dense between the convolutions and Φ (the windowed engine needs one)")

    blocks, rows, window = [], length, 1  # input rows, and rows a mutation changes
    for conv, block_steps, stride in zip(convs, steps, strides):
        kernel = np.asarray(conv.kernel.numpy(), np.float32)  # (K, C, F)
        width = kernel.shape[0]
        pad_left = (width - 1) // 2 if conv.padding == "same" else 0
        pad_right = width - 1 - pad_left if conv.padding == "same" else 0
        outputs = (rows + pad_left + pad_right - width + 1) // stride
        if outputs < 1:
            raise _unsupported(conv, f"no output row left from {rows} input rows")
        # the changed input rows reach window + K − 1 convolution rows, spread over ≤ this many pooled rows
        window = min(outputs, (window + width - 1 + stride - 2) // stride + 1)
        bias = np.asarray(conv.bias.numpy(), np.float32) if conv.use_bias else np.zeros(kernel.shape[2], np.float32)
        blocks.append(_Block(conv.name, kernel.reshape(-1, kernel.shape[2]), bias, width, pad_left, pad_right,
                             tuple(block_steps), stride, rows, outputs, window))
        rows = outputs
    return blocks, dense, tail
