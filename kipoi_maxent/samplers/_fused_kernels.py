"""numba kernels of the fused engine: whole MCMC steps of Conv1D → Flatten → Dense networks.

One compiled call runs a block of steps of every chain (:func:`run_block`): chains are handled
in *groups* (consecutive chains of one input, which share the mutated position), one group per
``prange`` iteration, steps inner. Per step and group:

1. **window pass**, per chain (and alternative): the convolution outputs covering the position,
   ``zn = z + D[current, new]`` (``D``: filter-difference table, input normalisation folded
   in), ``Δa = act(zn) − act(z)``;
2. **dense change** ``ΔU = Σ_i Δa[i] · W[i]`` over the window's rows ``i`` in increasing order,
   by a register-tiled kernel (:func:`_dense_tile`, up to 4 rows of ``Δa`` × 64 hidden units
   held in vector registers): each row of ``W`` is loaded once per tile instead of once per
   chain. Rows where no chain of the tile changed are skipped (ReLU: most of them);
3. ``Φ' = act(U + ΔU)``, ``d' = sqrt(Σ_h (w_h (Φ'_h − Φ0_h))²)``, the Metropolis or heat-bath
   decision exactly as :func:`~kipoi_maxent.samplers.mcmc.run_block_stepwise` writes it, and
   on a move the update of the state, ``z``, ``act(z)`` (cached for sigmoid/tanh) and ``U``;
4. every ``resync_every`` steps a full recomputation of each chain's sums, and the recorded
   states and distances.

Batch invariance by construction: each chain's arithmetic is a fixed sequence of operations
on its own rows — the tile computes every row's sum with the same fused multiply-adds in the
same order whatever the other rows of the tile are (a row that did not change adds
``0 · W = 0``) — so it does not depend on the batch, the groups or the thread count.

Precision: ``z``, ``act(z)``, ``Δa``, the dense kernel and ``ΔU`` are float32 (the network's own
precision); ``U``, ``Φ`` and distances float64. Activations with ``exp`` use a vectorisable
polynomial ``exp`` (:func:`_exp32`, :func:`_exp64`; this numba has no SVML). Every kernel is
compiled with ``error_model="numpy"``: numba's default checks each float division for a zero
divisor and raises, a branch that kept the sigmoid/tanh loops scalar (the sigmoid net's step
ran 2.7× slower); no division here can meet a zero (``1 + exp(·) ≥ 1``).

Activation codes as in :mod:`~kipoi_maxent.samplers._kernels` (0 linear, 1 relu, 2 sigmoid,
3 tanh).
"""
from __future__ import annotations

import numba
import numpy as np
from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic

# imported for its side effect too: the workqueue threading-layer default of the fast engines
from kipoi_maxent.samplers._kernels import ACTIVATION_CODES  # noqa: F401

#: float32 lanes of one register of the dense tiles (one AVX-512 register; LLVM splits it elsewhere).
LANES = 16
#: Rows of ``Δa`` (chains, or chain × alternative) one dense tile accumulates at once.
TILE_ROWS = 4
#: Hidden units (vectors of :data:`LANES`) one dense tile holds in registers.
TILE_VECTORS = 4
#: Chains of one input handled together (one ``prange`` iteration of :func:`run_block`).
GROUP = 8
#: Only the dense tile and the distance's sum may be reordered/contracted by LLVM; decisions
#: (``log u < log ratio``, the heat-bath CDF) are compiled without fast-math flags.
FAST = {"contract"}
REDUCE = {"reassoc", "contract"}
#: Options of every kernel: cached, and numpy's error model (see the module docstring).
COMPILED = {"cache": True, "error_model": "numpy"}


# -- vector primitives -----------------------------------------------------------------------
@intrinsic(prefer_literal=True)
def _dense_tile(typingctx, da, da_row, rows, count, w, w_row, h0, du, chains, vectors):
    """``du[da_row + g, h0 : h0 + 16·vectors] = Σ_k da[da_row + g, rows[k]] · w[w_row + rows[k], h0 : …]``
    for ``g < chains``, as one fused multiply-add per ``k`` in increasing ``k`` (float32, in
    registers), stored over ``du``. ``chains`` and ``vectors`` are literal ints."""
    if not (isinstance(chains, types.IntegerLiteral) and isinstance(vectors, types.IntegerLiteral)):
        return None
    n_rows, n_vectors = chains.literal_value, vectors.literal_value
    sig = types.void(da, types.intp, rows, types.intp, w, types.intp, types.intp, du, chains, vectors)

    def codegen(context, builder, signature, args):
        da_v, da_row_v, rows_v, count_v, w_v, w_row_v, h0_v, du_v = args[:8]
        intp = context.get_value_type(types.intp)
        vec = ir.VectorType(ir.FloatType(), LANES)
        fma = cgutils.get_or_insert_function(builder.module, ir.FunctionType(vec, [vec, vec, vec]),
                                             f"llvm.fma.v{LANES}f32")
        da_a, rows_a, w_a, du_a = (context.make_array(signature.args[i])(context, builder, v)
                                   for i, v in ((0, da_v), (2, rows_v), (4, w_v), (7, du_v)))

        def row_stride(array):  # elements per row of a C-contiguous float32 matrix
            return builder.sdiv(cgutils.unpack_tuple(builder, array.strides)[0], ir.Constant(intp, 4))

        da_stride, w_stride, du_stride = row_stride(da_a), row_stride(w_a), row_stride(du_a)
        zero = ir.Constant(vec, [0.0] * LANES)
        accumulators = [[cgutils.alloca_once_value(builder, zero) for _ in range(n_vectors)] for _ in range(n_rows)]
        da_rows = [builder.gep(da_a.data, [builder.mul(builder.add(da_row_v, ir.Constant(intp, g)), da_stride)])
                   for g in range(n_rows)]
        undefined = ir.Constant(vec, ir.Undefined)
        broadcast = ir.Constant(ir.VectorType(ir.IntType(32), LANES), [0] * LANES)
        with cgutils.for_range(builder, count_v) as loop:
            i = builder.load(builder.gep(rows_a.data, [loop.index]))
            w_first = builder.gep(w_a.data, [builder.add(builder.mul(builder.add(w_row_v, i), w_stride), h0_v)])
            w_vectors = [builder.load(builder.bitcast(builder.gep(w_first, [ir.Constant(intp, LANES * v)]),
                                                      vec.as_pointer()), align=4) for v in range(n_vectors)]
            for g in range(n_rows):
                x = builder.load(builder.gep(da_rows[g], [i]))
                x = builder.shuffle_vector(builder.insert_element(undefined, x, ir.Constant(ir.IntType(32), 0)),
                                           undefined, broadcast)
                for v in range(n_vectors):
                    builder.store(builder.call(fma, [x, w_vectors[v], builder.load(accumulators[g][v])]),
                                  accumulators[g][v])
        for g in range(n_rows):
            out = builder.gep(du_a.data, [builder.add(builder.mul(builder.add(da_row_v, ir.Constant(intp, g)),
                                                                  du_stride), h0_v)])
            for v in range(n_vectors):
                builder.store(builder.load(accumulators[g][v]),
                              builder.bitcast(builder.gep(out, [ir.Constant(intp, LANES * v)]), vec.as_pointer()),
                              align=4)
        return context.get_dummy_value()

    return sig, codegen


@intrinsic
def _float64_from_bits(typingctx, bits):
    """The float64 whose bit pattern is the int64 ``bits``."""
    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], ir.DoubleType())

    return types.float64(types.int64), codegen


@intrinsic
def _float32_from_bits(typingctx, bits):
    """The float32 whose bit pattern is the low 32 bits of ``bits``."""
    def codegen(context, builder, signature, args):
        return builder.bitcast(builder.trunc(args[0], ir.IntType(32)), ir.FloatType())

    return types.float32(types.int64), codegen


# -- activations ------------------------------------------------------------------------------
_LOG2E = 1.4426950408889634
_LN2_HI, _LN2_LO = 6.93147180369123816490e-01, 1.90821492927058770002e-10  # Cody-Waite split of ln 2
_F32 = np.float32


@numba.njit(fastmath=FAST, **COMPILED)
def _exp64(x):
    """exp(x), float64, to ~2 ulp for |x| ≤ 708 (clamped beyond): vectorisable (no libm call)."""
    x = min(max(x, -708.0), 708.0)
    n = np.floor(x * _LOG2E + 0.5)
    r = (x - n * _LN2_HI) - n * _LN2_LO
    p = 1.0 / 479001600.0  # Taylor to r^12: |r| ≤ ln2/2 gives a remainder < 2e-16
    p = p * r + 1.0 / 39916800.0
    p = p * r + 1.0 / 3628800.0
    p = p * r + 1.0 / 362880.0
    p = p * r + 1.0 / 40320.0
    p = p * r + 1.0 / 5040.0
    p = p * r + 1.0 / 720.0
    p = p * r + 1.0 / 120.0
    p = p * r + 1.0 / 24.0
    p = p * r + 1.0 / 6.0
    p = p * r + 0.5
    p = p * r + 1.0
    p = p * r + 1.0
    return p * _float64_from_bits((np.int64(n) + 1023) << 52)


@numba.njit(fastmath=FAST, **COMPILED)
def _exp32(x):
    """exp(x), float32, to ~1 ulp for |x| ≤ 87 (clamped beyond): vectorisable."""
    x = min(max(x, _F32(-87.0)), _F32(87.0))
    n = np.floor(x * _F32(_LOG2E) + _F32(0.5))
    r = (x - n * _F32(0.693359375)) - n * _F32(-2.12194440e-4)  # Cephes' split of ln 2
    p = _F32(1.0 / 5040.0)  # Taylor to r^7: remainder < 6e-9
    p = p * r + _F32(1.0 / 720.0)
    p = p * r + _F32(1.0 / 120.0)
    p = p * r + _F32(1.0 / 24.0)
    p = p * r + _F32(1.0 / 6.0)
    p = p * r + _F32(0.5)
    p = p * r + _F32(1.0)
    p = p * r + _F32(1.0)
    return p * _float32_from_bits((np.int64(n) + 127) << 23)


@numba.njit(fastmath=FAST, **COMPILED)
def _sigmoid32(x):
    return _F32(1.0) / (_F32(1.0) + _exp32(-x))


@numba.njit(fastmath=FAST, **COMPILED)
def _tanh32(x):
    e = _exp32(_F32(-2.0) * abs(x))
    t = (_F32(1.0) - e) / (_F32(1.0) + e)
    return t if x >= _F32(0.0) else -t


@numba.njit(fastmath=FAST, **COMPILED)
def _sigmoid64(x):
    return 1.0 / (1.0 + _exp64(-x))


@numba.njit(fastmath=FAST, **COMPILED)
def _tanh64(x):
    e = _exp64(-2.0 * abs(x))
    t = (1.0 - e) / (1.0 + e)
    return t if x >= 0.0 else -t


@numba.njit(fastmath=FAST, **COMPILED)
def _activate64(x, kind):
    """Activation ``kind`` of a float64 (dense pre-activations → Φ), outside the step's loops.
    Loops that should vectorise branch on ``kind`` outside and call the activation itself:
    LLVM does not unswitch this dispatch."""
    if kind == 1:
        return x if x > 0.0 else 0.0
    if kind == 2:
        return _sigmoid64(x)
    if kind == 3:
        return _tanh64(x)
    return x


@numba.njit(parallel=True, fastmath=FAST, **COMPILED)
def activate_rows(u, kind, out):
    """``out = act(u)`` for float64 ``(n, H)`` arrays (Φ from the dense pre-activations)."""
    for row in numba.prange(u.shape[0]):
        for h in range(u.shape[1]):
            out[row, h] = _activate64(u[row, h], kind)


# -- one chain's full forward pass --------------------------------------------------------------
@numba.njit(fastmath=REDUCE, **COMPILED)
def _forward(codes, taps, conv_bias, left_pad, outputs, conv_kind, w_t, dense_bias, z_row, a_row, u_row):
    """``z`` (flat ``P·F``, float32), ``act(z)`` (sigmoid/tanh only, into ``a_row``, which may be
    ``z_row`` itself when ``z`` is not kept) and ``U`` (float64) of one sequence.

    ``taps`` ``(5, K, F)`` float64: the convolution input of code 0..3 (4: unknown base) at each
    tap, normalisation folded in; padding rows contribute nothing. ``U_h = bias_h + Σ_e act(z_e)
    W[e, h]`` as one float64 dot product per unit over the transposed kernel ``w_t`` ``(H, P·F)``
    (vectorised; its order is fixed by the code, so the same for any batch).
    """
    length = codes.shape[0]
    width, filters = taps.shape[1], taps.shape[2]
    size = outputs * filters
    for p in range(outputs):
        for f in range(filters):
            total = conv_bias[f]
            for t in range(width):
                s = p + t - left_pad
                if 0 <= s < length:
                    code = codes[s]
                    total += taps[code if code >= 0 else 4, t, f]
            z_row[p * filters + f] = np.float32(total)
    if conv_kind == 2:
        for e in range(size):
            a_row[e] = _sigmoid32(z_row[e])
    elif conv_kind == 3:
        for e in range(size):
            a_row[e] = _tanh32(z_row[e])
    for h in range(u_row.shape[0]):
        total = 0.0
        if conv_kind == 1:
            for e in range(size):
                value = z_row[e]
                total += np.float64(value if value > _F32(0.0) else _F32(0.0)) * np.float64(w_t[h, e])
        elif conv_kind == 0:
            for e in range(size):
                total += np.float64(z_row[e]) * np.float64(w_t[h, e])
        else:
            for e in range(size):
                total += np.float64(a_row[e]) * np.float64(w_t[h, e])
        u_row[h] = dense_bias[h] + total


@numba.njit(parallel=True, **COMPILED)
def forward_rows(codes, taps, conv_bias, left_pad, outputs, conv_kind, w_t, dense_bias, z_scratch, u):
    """``U`` ``(m, H)`` of arbitrary sequences ``codes`` ``(m, L)`` (one row per ``prange`` step)."""
    for row in numba.prange(codes.shape[0]):
        z_row = z_scratch[numba.get_thread_id()]
        _forward(codes[row], taps, conv_bias, left_pad, outputs, conv_kind, w_t, dense_bias, z_row, z_row, u[row])


@numba.njit(parallel=True, **COMPILED)
def forward_chains(states, source, taps, conv_bias, left_pad, outputs, conv_kind, w_t, dense_bias, z, a, cache, u):
    """The chains' running sums ``z``, ``a`` and ``u`` computed from their states; chain ``c``
    with ``source[c] != c`` copies chain ``source[c]``'s (whose own source must be itself)."""
    for c in numba.prange(states.shape[0]):
        if source[c] == c:
            _forward(states[c], taps, conv_bias, left_pad, outputs, conv_kind, w_t, dense_bias, z[c],
                     a[c] if cache else z[c], u[c])
    for c in numba.prange(states.shape[0]):
        s = source[c]
        if s != c:
            z[c] = z[s]
            if cache:
                a[c] = a[s]
            u[c] = u[s]


# -- pieces of a step ---------------------------------------------------------------------------
@numba.njit(**COMPILED)
def _window(position, left_pad, width, filters, outputs):
    """Flat range ``[start, stop)`` of the convolution outputs covering ``position`` (clipped at
    the ends), and the offset of its first entry in the difference table (window-row order)."""
    s = position + left_pad
    first = s - width + 1
    low = max(first, 0)
    high = min(s, outputs - 1)
    return low * filters, (high + 1) * filters, (low - first) * filters


@numba.njit(fastmath=FAST, **COMPILED)
def _window_change(kind, z_w, a_w, d_w, an, da, m):
    """``da[:m] = act(z + d) − act(z)`` (and ``an[:m] = act(z + d)`` for sigmoid/tanh, whose
    ``act(z)`` is the cache ``a_w``). One loop per activation: each vectorises."""
    zero = _F32(0.0)
    if kind == 1:
        for i in range(m):
            before = z_w[i]
            after = before + d_w[i]
            da[i] = (after if after > zero else zero) - (before if before > zero else zero)
    elif kind == 2:
        for i in range(m):
            value = _sigmoid32(z_w[i] + d_w[i])
            an[i] = value
            da[i] = value - a_w[i]
    elif kind == 3:
        for i in range(m):
            value = _tanh32(z_w[i] + d_w[i])
            an[i] = value
            da[i] = value - a_w[i]
    else:
        for i in range(m):
            before = z_w[i]
            da[i] = (before + d_w[i]) - before


@numba.njit(**COMPILED)
def _changed_rows(da, first, count, m, rows):
    """Indices ``< m`` where any of the rows ``first … first + count − 1`` of ``da`` is non-zero,
    increasing, into ``rows``; returns how many."""
    found = 0
    for i in range(m):
        changed = False
        for g in range(count):
            changed |= da[first + g, i] != 0
        rows[found] = i
        found += changed
    return found


@numba.njit(**COMPILED)
def _tile(chains, vectors, da, first, rows, count, w, w_row, h0, du):
    """:func:`_dense_tile` with its literal shape picked from ``chains`` ≤ 4 and ``vectors`` ≤ 4."""
    if chains == 4:
        if vectors == 4:
            _dense_tile(da, first, rows, count, w, w_row, h0, du, 4, 4)
        elif vectors == 3:
            _dense_tile(da, first, rows, count, w, w_row, h0, du, 4, 3)
        elif vectors == 2:
            _dense_tile(da, first, rows, count, w, w_row, h0, du, 4, 2)
        else:
            _dense_tile(da, first, rows, count, w, w_row, h0, du, 4, 1)
    elif chains == 3:
        if vectors == 4:
            _dense_tile(da, first, rows, count, w, w_row, h0, du, 3, 4)
        elif vectors == 3:
            _dense_tile(da, first, rows, count, w, w_row, h0, du, 3, 3)
        elif vectors == 2:
            _dense_tile(da, first, rows, count, w, w_row, h0, du, 3, 2)
        else:
            _dense_tile(da, first, rows, count, w, w_row, h0, du, 3, 1)
    elif chains == 2:
        if vectors == 4:
            _dense_tile(da, first, rows, count, w, w_row, h0, du, 2, 4)
        elif vectors == 3:
            _dense_tile(da, first, rows, count, w, w_row, h0, du, 2, 3)
        elif vectors == 2:
            _dense_tile(da, first, rows, count, w, w_row, h0, du, 2, 2)
        else:
            _dense_tile(da, first, rows, count, w, w_row, h0, du, 2, 1)
    else:
        if vectors == 4:
            _dense_tile(da, first, rows, count, w, w_row, h0, du, 1, 4)
        elif vectors == 3:
            _dense_tile(da, first, rows, count, w, w_row, h0, du, 1, 3)
        elif vectors == 2:
            _dense_tile(da, first, rows, count, w, w_row, h0, du, 1, 2)
        else:
            _dense_tile(da, first, rows, count, w, w_row, h0, du, 1, 1)


@numba.njit(**COMPILED)
def _dense_change(sparse, da, count, m, all_rows, rows, w, w_row, du):
    """``du[r] = Σ_i da[r, i] · w[w_row + i]`` for the rows ``r < count`` of ``da`` (``i < m``), in
    tiles of :data:`TILE_ROWS` rows × :data:`TILE_VECTORS` vectors. ``sparse``: only the
    indices where a row of the tile changed (ReLU convolutions), else all ``m``."""
    padded = du.shape[1]
    first = 0
    while first < count:
        chains = min(TILE_ROWS, count - first)
        if sparse:
            found = _changed_rows(da, first, chains, m, rows)
            used = rows
        else:
            found = m
            used = all_rows
        h0 = 0
        while padded - h0 >= LANES * TILE_VECTORS:
            _tile(chains, TILE_VECTORS, da, first, used, found, w, w_row, h0, du)
            h0 += LANES * TILE_VECTORS
        if h0 < padded:
            _tile(chains, (padded - h0) // LANES, da, first, used, found, w, w_row, h0, du)
        first += chains


@numba.njit(fastmath=REDUCE, **COMPILED)
def _distance(kind, u_c, du_row, reference_c, weights):
    """``sqrt(Σ_h (w_h (act(U_h + ΔU_h) − Φ0_h))²)`` (float64; a fixed order of the partial sums)."""
    total = 0.0
    if kind == 1:
        for h in range(u_c.shape[0]):
            value = u_c[h] + du_row[h]
            t = ((value if value > 0.0 else 0.0) - reference_c[h]) * weights[h]
            total += t * t
    elif kind == 2:
        for h in range(u_c.shape[0]):
            t = (_sigmoid64(u_c[h] + du_row[h]) - reference_c[h]) * weights[h]
            total += t * t
    elif kind == 3:
        for h in range(u_c.shape[0]):
            t = (_tanh64(u_c[h] + du_row[h]) - reference_c[h]) * weights[h]
            total += t * t
    else:
        for h in range(u_c.shape[0]):
            t = ((u_c[h] + du_row[h]) - reference_c[h]) * weights[h]
            total += t * t
    return np.sqrt(total)


@numba.njit(**COMPILED)
def _log_ratio(beta, proposed, current, mu, gc_new, gc_old):
    """``−β (d' − d) + μ (N' − N)``, as ``run_block_stepwise`` writes it (no fast-math)."""
    return -beta * (proposed - current) + mu * (gc_new - gc_old)


@numba.njit(**COMPILED)
def _metropolis_accepts(uniform, log_ratio):
    return np.log(uniform) < log_ratio


@numba.njit(**COMPILED)
def _heat_bath_choice(l1, l2, l3, uniform):
    """``mcmc._heat_bath_choice`` for one chain: weights of [current, alternatives 1–3] =
    ``exp(l − max)``, cumulative in that order, count of ``cumulative < u · total``; ``−1``
    keeps the current base, else the alternative's index."""
    top = max(max(0.0, l1), max(l2, l3))
    c0 = np.exp(0.0 - top)
    c1 = c0 + np.exp(l1 - top)
    c2 = c1 + np.exp(l2 - top)
    c3 = c2 + np.exp(l3 - top)
    threshold = uniform * c3
    picked = int(c0 < threshold) + int(c1 < threshold) + int(c2 < threshold) + int(c3 < threshold)
    return min(picked, 3) - 1


@numba.njit(fastmath=FAST, **COMPILED)
def _apply(c, position, new, states, z_w, a_w, d_w, an_row, cache, du_row, u_c, m):
    """Commit a move of chain ``c``: state, ``z`` (the same additions as the window pass, so the
    same values), ``act(z)`` and ``U``."""
    states[c, position] = new
    for i in range(m):
        z_w[i] = z_w[i] + d_w[i]
    if cache:
        for i in range(m):
            a_w[i] = an_row[i]
    for h in range(u_c.shape[0]):
        u_c[h] = u_c[h] + du_row[h]


@numba.njit(**COMPILED)
def _step(gibbs, c0, count, s, position, offsets, uniforms, states, z, a, u, diff, w, all_rows, beta, mu,
          reference, weights, distance, moved, left_pad, width, filters, outputs, conv_kind, dense_kind, cache,
          is_gc, da, an, du, rows):
    """One step of chains ``c0 … c0 + count − 1``, which all mutate ``position``."""
    start, stop, d0 = _window(position, left_pad, width, filters, outputs)
    m = stop - start
    alternatives = 3 if gibbs else 1
    for g in range(count):
        c = c0 + g
        current = states[c, position]
        a_w = a[c, start:stop] if cache else z[c, start:stop]
        for j in range(alternatives):
            new = (current + (j + 1 if gibbs else offsets[s, c])) % 4
            r = g * alternatives + j
            _window_change(conv_kind, z[c, start:stop], a_w, diff[current, new, d0:d0 + m], an[r], da[r], m)
    _dense_change(conv_kind == 1, da, count * alternatives, m, all_rows, rows, w, start, du)
    for g in range(count):
        c = c0 + g
        current = states[c, position]
        if gibbs:
            d1 = _distance(dense_kind, u[c], du[3 * g], reference[c], weights)
            d2 = _distance(dense_kind, u[c], du[3 * g + 1], reference[c], weights)
            d3 = _distance(dense_kind, u[c], du[3 * g + 2], reference[c], weights)
            gc = is_gc[current]
            choice = _heat_bath_choice(_log_ratio(beta, d1, distance[c], mu, is_gc[(current + 1) % 4], gc),
                                       _log_ratio(beta, d2, distance[c], mu, is_gc[(current + 2) % 4], gc),
                                       _log_ratio(beta, d3, distance[c], mu, is_gc[(current + 3) % 4], gc),
                                       uniforms[s, c])
            if choice < 0:
                continue
            r = 3 * g + choice
            new = (current + choice + 1) % 4
            proposed = d1 if choice == 0 else (d2 if choice == 1 else d3)
        else:
            new = (current + offsets[s, c]) % 4
            r = g
            proposed = _distance(dense_kind, u[c], du[r], reference[c], weights)
            if not _metropolis_accepts(uniforms[s, c],
                                       _log_ratio(beta, proposed, distance[c], mu, is_gc[new], is_gc[current])):
                continue
        _apply(c, position, new, states, z[c, start:stop], a[c, start:stop] if cache else z[c, start:stop],
               diff[current, new, d0:d0 + m], an[r], cache, du[r], u[c], m)
        distance[c] = proposed
        moved[c] += 1


@numba.njit(parallel=True, **COMPILED)
def run_block(gibbs, group_first, group_count, positions, offsets, uniforms, states, z, a, u, diff, w, all_rows,
              beta, mu, reference, weights, distance, moved, resync_after, slots, states_out, distances_out, taps,
              conv_bias, w_t, dense_bias, left_pad, width, filters, outputs, conv_kind, dense_kind, cache, is_gc,
              s_da, s_an, s_du, s_rows):
    """``S = len(positions)`` steps of every chain, in one call (see the module docstring).

    Parameters
    ----------
    gibbs : bool
    group_first, group_count : (G,) int64
        The chain groups: consecutive chains of one input.
    positions : (S, n) int64; offsets : (S, n) int8; uniforms : (S, n) float64
        Each chain's position, Metropolis base offset (1..3) and uniform draw at each step.
    states : (n, L) int8; z : (n, P·F) float32; a : (n, P·F or 0) float32; u : (n, H) float64
        The chains' states and running sums, updated in place.
    diff : (4, 4, K·F) float32
        ``D[old, new]``, window-row order. ``w`` : (P·F, H') float32, zero-padded to ``H'`` (a
        multiple of :data:`LANES`). ``all_rows`` : ``arange(K·F)``.
    distance : (n,) float64, moved : (n,) int64
        In/out: current distances, accepted moves counted up.
    resync_after : (S,) bool
        Recompute every chain's sums after that step.
    slots : (S,) int64
        Record the states and distances after that step at this index of ``states_out``
        ``(R, n, L)`` / ``distances_out`` ``(R, n)`` (``-1``: not recorded).
    taps, conv_bias, w_t, dense_bias
        Of :func:`_forward`, for the resyncs.
    s_da, s_an : (threads, 3·GROUP, K·F) float32; s_du : (threads, 3·GROUP, H') float32;
    s_rows : (threads, K·F) int64
        Per-thread work space.
    """
    steps = positions.shape[0]
    for group in numba.prange(group_first.shape[0]):
        thread = numba.get_thread_id()
        da, an, du, rows = s_da[thread], s_an[thread], s_du[thread], s_rows[thread]
        c0, count = group_first[group], group_count[group]
        for s in range(steps):
            position = positions[s, c0]
            shared = True
            for g in range(1, count):
                shared &= positions[s, c0 + g] == position
            if shared:
                _step(gibbs, c0, count, s, position, offsets, uniforms, states, z, a, u, diff, w, all_rows, beta,
                      mu, reference, weights, distance, moved, left_pad, width, filters, outputs, conv_kind,
                      dense_kind, cache, is_gc, da, an, du, rows)
            else:  # chains of one input always share it; direct callers may not
                for g in range(count):
                    _step(gibbs, c0 + g, 1, s, positions[s, c0 + g], offsets, uniforms, states, z, a, u, diff, w,
                          all_rows, beta, mu, reference, weights, distance, moved, left_pad, width, filters, outputs,
                          conv_kind, dense_kind, cache, is_gc, da, an, du, rows)
            if resync_after[s]:
                for c in range(c0, c0 + count):
                    _forward(states[c], taps, conv_bias, left_pad, outputs, conv_kind, w_t, dense_bias, z[c],
                             a[c] if cache else z[c], u[c])
            slot = slots[s]
            if slot >= 0:
                for c in range(c0, c0 + count):
                    states_out[slot, c] = states[c]
                    distances_out[slot, c] = distance[c]


# -- the per-step interface (propose / accept) -------------------------------------------------
@numba.njit(parallel=True, **COMPILED)
def propose(positions, bases, states, z, a, u, diff, w, all_rows, left_pad, width, filters, outputs, conv_kind,
            dense_kind, cache, an_out, da_scratch, du_out, rows_scratch, phi_out):
    """Φ ``phi_out[c, j]`` of chain ``c`` with ``bases[c, j]`` at ``positions[c]``, the state
    unchanged; keeps ``act(z)`` of the window (``an_out``) and ``ΔU`` (``du_out``) for :func:`accept`.
    The same arithmetic per chain as :func:`run_block` (its tile holds one chain's alternatives)."""
    alternatives = bases.shape[1]
    for c in numba.prange(states.shape[0]):
        thread = numba.get_thread_id()
        da, rows = da_scratch[thread], rows_scratch[thread]
        position = positions[c]
        current = states[c, position]
        start, stop, d0 = _window(position, left_pad, width, filters, outputs)
        m = stop - start
        a_w = a[c, start:stop] if cache else z[c, start:stop]
        for j in range(alternatives):
            _window_change(conv_kind, z[c, start:stop], a_w, diff[current, bases[c, j], d0:d0 + m], an_out[c, j],
                           da[j], m)
        _dense_change(conv_kind == 1, da, alternatives, m, all_rows, rows, w, start, du_out[c])
        for j in range(alternatives):
            for h in range(u.shape[1]):
                phi_out[c, j, h] = _activate64(u[c, h] + du_out[c, j, h], dense_kind)


@numba.njit(parallel=True, **COMPILED)
def accept(choice, positions, bases, states, z, a, u, diff, an_out, du_out, left_pad, width, filters, outputs,
           cache):
    """Commit alternative ``choice[c]`` (``-1``: none) of the last :func:`propose`."""
    for c in numba.prange(states.shape[0]):
        j = choice[c]
        if j < 0:
            continue
        position = positions[c]
        current = states[c, position]
        start, stop, d0 = _window(position, left_pad, width, filters, outputs)
        m = stop - start
        new = bases[c, j]
        _apply(c, position, new, states, z[c, start:stop], a[c, start:stop] if cache else z[c, start:stop],
               diff[current, new, d0:d0 + m], an_out[c, j], cache, du_out[c, j], u[c], m)
