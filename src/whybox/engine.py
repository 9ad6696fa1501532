"""The engine: evaluate a model on a neighbourhood of many rows, in memory-bounded chunks.

Every method in whybox is ``surrogate.fit(neighbourhood(x), f(neighbourhood(x)))`` (Han et al.,
NeurIPS 2022). This module does the expensive middle part for all of them:

* :func:`masked_outputs` — the value of coalitions z for each row, v_x(z) = sum_b w_b f(z*x + (1-z)*b),
  for a design Z shared by all rows (LIME, KernelSHAP, exact Shapley, occlusion);
* :func:`shifted_outputs` — f(x + eps_j) for shared offsets eps (C-LIME, black-box SmoothGrad);
* :func:`gradients` — d f_target / dx at arbitrary points, by autograd when the model has it and by
  central differences (a local linear fit on x +- h e_j) otherwise.

Each builds the perturbed inputs for a block of (row, sample) pairs with one vectorised numpy
expression and calls the model once per block of at most ``chunk_rows`` rows.
"""
from __future__ import annotations

import threading
from contextlib import contextmanager, nullcontext

import numpy as np

from whybox.background import Background
from whybox.errors import InputError
from whybox.models.adapters import Model

DEFAULT_CHUNK_ROWS = 32768

_FILL = None        # whybox._fill when numba is installed (whybox[speed]), False without; loaded on first use


SCRATCH_KEEP_BYTES = 32 << 20      # model-input buffers up to this size are kept between calls (per thread)


class _Scratch(threading.local):
    buf: np.ndarray | None = None
    busy: bool = False


_SCRATCH = _Scratch()


@contextmanager
def input_buffer(shape: tuple[int, ...]):
    """A float64 array of ``shape`` to build model inputs in, valid inside the ``with`` block only.

    One buffer per thread is kept between calls (when it is at most ``SCRATCH_KEEP_BYTES``), so that
    explaining row after row does not hand the model's inputs fresh memory every call: a freed buffer
    of megabytes lets the C allocator return the top of its heap to the system, and the model's own
    temporaries (a scaler's copy of its input, say) then fault their pages in again on every call,
    which made a cheap model run 1.6-1.75x slower inside an explain call than on the same rows in a
    loop. A model sees the buffer only during its call and must not keep a reference to its input
    (whybox already refills one buffer chunk after chunk within a call). Nested use (a model that
    itself explains) gets a fresh array."""
    size = int(np.prod(shape, dtype=np.int64))
    s = _SCRATCH
    if s.busy or size * 8 > SCRATCH_KEEP_BYTES:
        yield np.empty(shape)
        return
    if s.buf is None or s.buf.size < size:
        s.buf = None                                          # the old one freed before the new one
        s.buf = np.empty(size)
    s.busy = True
    try:
        yield s.buf[:size].reshape(shape)
    finally:
        s.busy = False


def release_input_buffer() -> None:
    """Free this thread's kept input buffer (see :func:`input_buffer`) and its kept workspace (see
    :func:`workspace`); the next call keeps new ones."""
    _SCRATCH.buf = None
    _WORK.slots = None


class _Work(threading.local):
    slots: dict | None = None
    busy: bool = False


_WORK = _Work()


class Arena:
    """The working arrays of one block, each in a named slot of this thread's kept workspace (see
    :func:`workspace`): valid until the workspace that made them ends. A slot that is too small is
    freed and made a quarter larger than asked (the next blocks of a call ask about as much, some a
    little more) before the array is handed out, so a block never holds an old and a new copy of one
    slot; what would take the slots past ``SCRATCH_KEEP_BYTES``, a name asked for twice in one block,
    and everything without a workspace (``slots`` None) are fresh arrays."""

    def __init__(self, slots: dict | None):
        self._slots = slots
        self._used: set[str] = set()

    def empty(self, name: str, shape, dtype=float) -> np.ndarray:
        dt = np.dtype(dtype)
        shape = (int(shape),) if np.ndim(shape) == 0 else tuple(int(s) for s in shape)
        nbytes = int(np.prod(shape, dtype=np.int64)) * dt.itemsize
        slots = self._slots
        if slots is None or name in self._used:
            return np.empty(shape, dt)
        self._used.add(name)
        buf = slots.get(name)
        if buf is None or buf.nbytes < nbytes:
            slots.pop(name, None)                                     # the old one freed before the new one
            size = nbytes * 5 // 4 + 64
            if sum(b.nbytes for b in slots.values()) + size > SCRATCH_KEEP_BYTES:
                return np.empty(shape, dt)
            buf = slots[name] = np.empty(size, np.uint8)
        return buf[:nbytes].view(dt).reshape(shape)


@contextmanager
def workspace():
    """An :class:`Arena` over this thread's kept workspace, for the working arrays of one block of a
    call (the outputs of its model calls, their pair differences): valid inside the ``with`` block
    only, and none of them may leave it.

    The slots are kept between calls (together at most ``SCRATCH_KEEP_BYTES``), for the reason
    :func:`input_buffer` is kept: megabytes of working arrays freed at the end of every block or call
    let the C allocator return the top of its heap to the system, and the next call's arrays, and the
    model's own temporaries, then fault their pages in again (about 3 us per 4 KiB page on a VM:
    2,800 faults, 4-10% of a cheap model's KernelSHAP call). Nested use (a model that itself
    explains) gets fresh arrays."""
    s = _WORK
    if s.busy:
        yield Arena(None)
        return
    if s.slots is None:
        s.slots = {}
    s.busy = True
    try:
        yield Arena(s.slots)
    finally:
        s.busy = False


def _compiled():
    """The compiled fills of :mod:`whybox._fill`, or None without numba. They write the same bits as
    the numpy path (a gather of masks, then :func:`_select_into`) in one pass, so which one runs
    changes the speed only."""
    global _FILL
    if _FILL is None:
        from whybox import _fill
        _FILL = _fill if _fill.available() else False
    return _FILL or None


def _select(out: np.ndarray, targets: np.ndarray | None) -> np.ndarray:
    """out (..., k) and integer targets of shape out.shape[:-1] (or broadcasting to it) -> out[..., targets];
    targets None keeps every output (the "all outputs" mode: a trailing axis of k)."""
    if targets is None:
        return out
    t = np.asarray(targets)
    if t.size and (t == t.flat[0]).all():             # one output for all: an index, 10x a gather's speed
        return np.ascontiguousarray(out[..., int(t.flat[0])])
    return np.take_along_axis(out, t[..., None], axis=-1)[..., 0]


def _tail(model: Model, targets: np.ndarray | None) -> tuple[int, ...]:
    """() for one output per row, (k,) when every output is kept."""
    return () if targets is not None else (int(model.n_outputs),)


def chunked_outputs(model: Model, A: np.ndarray, *, chunk_rows: int = DEFAULT_CHUNK_ROWS) -> np.ndarray:
    """f(A) for the rows of A, at most ``chunk_rows`` rows per model call: (N, k)."""
    return np.concatenate([model(A[s:s + chunk_rows]) for s in range(0, len(A), chunk_rows)])


def background_value(model: Model, bg: Background, *, chunk_rows: int = DEFAULT_CHUNK_ROWS) -> np.ndarray:
    """E_b f(b) over the weighted background: (k,)."""
    return bg.weights @ chunked_outputs(model, bg.data, chunk_rows=chunk_rows)


def full_and_empty(Zcols: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Which masks keep every column and which keep none, along the last axis of boolean ``Zcols``
    (one count per mask: numpy's ``all``/``any`` over a short last axis cost twice as much)."""
    kept = np.count_nonzero(Zcols, axis=-1)
    return kept == Zcols.shape[-1], kept == 0


def masked_outputs(model: Model, X: np.ndarray, Zcols: np.ndarray, bg: Background, targets: np.ndarray,
                   *, chunk_rows: int = DEFAULT_CHUNK_ROWS, progress=None, f_rows: np.ndarray | None = None,
                   f_bg=None, prefetched: np.ndarray | None = None) -> np.ndarray:
    """v[i, j] = sum_b w_b f_{t_i}(where(Z[j], X[i], b)) for all rows i and column masks j.

    X (n, p); Zcols (m, p) bool shared by all rows, or (n, m, p) with masks per row; targets (n,)
    -> (n, m). Masks that keep every column give f(X[i]) directly and masks that keep none the
    background value: neither is sent B times. A caller that already has them passes ``f_rows``
    (n, k), the model's outputs on X, and ``f_bg``, a callable returning the background value (k,)
    (called only when some mask keeps no column): then those masks cost no model call.

    Numeric data with shared masks takes the fast path (:func:`_masked_fast`): inputs are built in a
    reused buffer by two vectorised passes (the background, then a masked copy of x), so every value
    is exactly x's or b's (a tree compares it with a threshold: b + z * (x - b) can be one ulp off);
    mixed (object) data and per-row masks use ``np.where``. ``prefetched``: the model's outputs on the
    inner masks, already taken by :func:`prefetch_masked` (then no model call is made here).
    """
    n, p = X.shape
    per_row = Zcols.ndim == 3
    m = Zcols.shape[-2]
    tail = _tail(model, targets)
    V = np.empty((n, m) + tail)
    full, empty = full_and_empty(Zcols)
    full, empty = np.broadcast_to(full, (n, m)), np.broadcast_to(empty, (n, m))
    if full.any():
        fr = chunked_outputs(model, X, chunk_rows=chunk_rows) if f_rows is None else np.asarray(f_rows)
        fx = _select(fr, targets)
        V[full] = np.broadcast_to(fx[:, None], (n, m) + tail)[full]
    if empty.any():
        bv = background_value(model, bg, chunk_rows=chunk_rows) if f_bg is None else np.asarray(f_bg())
        base = bv[targets] if targets is not None else np.broadcast_to(bv, (n,) + tail)
        V[empty] = np.broadcast_to(base[:, None], (n, m) + tail)[empty]
    inner = ~(full | empty)
    if not inner.any():
        return V
    if not per_row and X.dtype != object and bg.data.dtype != object:
        cols = np.flatnonzero(inner[0])
        _masked_fast(model, X, Zcols[cols], cols, bg, targets, V, chunk_rows, progress, prefetched)
        return V
    if prefetched is not None:
        raise InputError("prefetched outputs serve numeric data with shared masks only")
    B = bg.n_rows
    if per_row:
        ii, jj = np.nonzero(inner)
    else:  # row-major order over (row, mask) pairs, as for per-row masks
        cols = np.flatnonzero(inner[0])
        ii = np.repeat(np.arange(n), len(cols))
        jj = np.tile(cols, n)
    total = len(ii)
    pairs_per_chunk = max(1, chunk_rows // B)
    data = bg.data
    for s in range(0, total, pairs_per_chunk):
        i, j = ii[s:s + pairs_per_chunk], jj[s:s + pairs_per_chunk]
        masks = Zcols[i, j] if per_row else Zcols[j]
        xs = X[i[0]][None, None, :] if i[0] == i[-1] else X[i][:, None, :]   # one row: no gather
        inp = np.where(masks[:, None, :], xs, data[None, :, :])  # (c, B, p)
        out = model(inp.reshape(-1, p)).reshape(len(i), B, -1)
        if targets is None:
            V[i, j] = np.einsum("cbk,b->ck", out, bg.weights)
        else:
            V[i, j] = _select(out, _target_grid(targets[i], B)) @ bg.weights
        if progress is not None:
            progress(len(i))
    return V


def prefetch_masked(model: Model, X: np.ndarray, Zcols: np.ndarray, bg: Background, lead: np.ndarray,
                    *, chunk_rows: int = DEFAULT_CHUNK_ROWS) -> tuple[np.ndarray, np.ndarray] | None:
    """One model call for ``lead`` (rows whose outputs are wanted first: the explained rows and the
    background rows) and the whole of a fixed shared design over numeric data, when both fit in one
    call of at most ``chunk_rows`` rows: (the lead's outputs (L, k), the raw outputs on the design's
    inner masks (n, m_inner, B, k)), which :func:`masked_outputs` reduces (``prefetched=``) once the
    explained outputs are known, exactly as it reduces its own calls. None when it does not fit (or the
    data are not numeric, or no mask is inner): the caller then calls the model on the lead alone. For
    small exact designs a model's fixed cost per call (input checks: a fraction of a millisecond for
    scikit-learn, a round trip for a hosted model) is then paid once instead of twice."""
    if X.dtype == object or bg.data.dtype == object or Zcols.ndim != 2:
        return None
    n, p = X.shape
    r = bg.n_rows
    L = len(lead)
    if L + n * (len(Zcols) - 2) * r > chunk_rows:        # too large even if two masks were full or empty
        return None
    full, empty = full_and_empty(Zcols)
    Zi = Zcols[~(full | empty)]
    if not len(Zi) or L + n * len(Zi) * r > chunk_rows:
        return None
    with input_buffer((L + n * len(Zi) * r, p)) as buf:
        buf[:L] = lead
        _fill_grid(buf[L:].reshape(n, len(Zi), r, p), np.ascontiguousarray(Zi, dtype=bool),
                   np.ascontiguousarray(np.asarray(X, dtype=float)).view(np.uint64),
                   np.ascontiguousarray(np.asarray(bg.data, dtype=float)).view(np.uint64), _compiled())
        out = model(buf)
    return out[:L], out[L:].reshape(n, len(Zi), r, -1)


def _fill_grid(buf: np.ndarray, Zc: np.ndarray, xb: np.ndarray, bbits: np.ndarray, fill) -> None:
    """buf (nb, k, r, p) = where(Zc[k], x[i], b[r]) bit for bit: the compiled kernel, or two numpy passes."""
    if fill is not None:
        fill.grid(buf.view(np.uint64), Zc.view(np.uint8), xb, bbits)
    else:
        _select_into(buf, Zc[None, :, None, :], (xb[:, None, :] ^ bbits[None])[:, None, :, :], bbits[None, None])


def _masked_fast(model: Model, X: np.ndarray, Z: np.ndarray, cols: np.ndarray, bg: Background,
                 targets: np.ndarray, V: np.ndarray, chunk_rows: int, progress,
                 prefetched: np.ndarray | None = None) -> None:
    """Numeric data, shared masks: fill V[:, cols] (see masked_outputs).

    The input for (row x, mask z, background row b) is where(z, x, b), selected bit for bit (see
    :func:`_select_into`): each chunk of rows costs two vectorised passes over a reused buffer.
    Exact values (b + z * (x - b) can be one ulp off x, and a tree compares it with a threshold),
    NaN included. ``prefetched`` (n, m, r, k): the model's outputs on every input, from
    :func:`prefetch_masked` (one chunk: reduced as a call's outputs are, no model call)."""
    n, p = X.shape
    m = len(Z)
    data = np.asarray(bg.data, dtype=float)
    r = bg.n_rows
    masks_per_chunk = max(1, chunk_rows // r)
    design_rows = m * r
    rows_per_call = max(1, chunk_rows // design_rows) if design_rows <= chunk_rows else 1
    if prefetched is not None and (prefetched.shape[:3] != (n, m, r) or masks_per_chunk < m or rows_per_call < n):
        raise InputError(f"prefetched outputs of shape {prefetched.shape} do not cover one chunk of "
                         f"{n} rows x {m} masks x {r} background rows")
    Xf = np.asarray(X, dtype=float)
    k_max = min(masks_per_chunk, m)
    bbits = np.ascontiguousarray(data).view(np.uint64)
    xbits = np.ascontiguousarray(Xf).view(np.uint64)
    fill = _compiled()
    with (input_buffer((min(rows_per_call, n), k_max, r, p)) if prefetched is None else nullcontext()) as inbuf:
        for s in range(0, m, masks_per_chunk):
            Zc = np.ascontiguousarray(Z[s:s + masks_per_chunk], dtype=bool)
            k = len(Zc)
            for i0 in range(0, n, rows_per_call):
                xb = xbits[i0:i0 + rows_per_call]
                nb = len(xb)
                if prefetched is not None:
                    out = prefetched
                else:
                    buf = inbuf[:nb, :k]
                    _fill_grid(buf, Zc, xb, bbits, fill)
                    out = model(buf.reshape(nb * k * r, p)).reshape(nb, k, r, -1)
                if targets is None:
                    V[i0:i0 + nb, cols[s:s + k]] = np.einsum("nmrk,r->nmk", out, bg.weights)
                else:
                    V[i0:i0 + nb, cols[s:s + k]] = _select(out, targets[i0:i0 + nb, None, None]) @ bg.weights
                if progress is not None:
                    progress(nb * k)


def stratified_outputs(model: Model, X: np.ndarray, Z: np.ndarray, col_index: np.ndarray, bg: Background,
                       targets: np.ndarray, *, chunk_rows: int = DEFAULT_CHUNK_ROWS,
                       arena: Arena | None = None, slot: str = "outputs") -> np.ndarray:
    """Outputs of a stratified design: V[i, b, k] = f_{t_i}(where(Z[k, col_index[b]], X[i], bg[b])).

    Z (m, d) is the base design over interpretable features; col_index (B, p) says which base
    feature drives column c in stratum b (a permutation per background row, composed with the
    feature groups). Every (row, stratum) is one piece of :func:`span_outputs`: within a stratum the
    fill is one background row, selected bit for bit (exact values, NaN included), and all the pieces
    share one stream of full model calls."""
    n, m, B = X.shape[0], Z.shape[0], col_index.shape[0]
    V = span_outputs(model, X, Z, col_index, bg, targets, np.repeat(np.arange(n), B), np.tile(np.arange(B), n),
                     np.zeros(n * B, np.intp), np.full(n * B, m), chunk_rows=chunk_rows, arena=arena,
                     slot=slot)
    return V.reshape((n, B, m) + _tail(model, targets))


def span_outputs(model: Model, X: np.ndarray, Z: np.ndarray, col_index: np.ndarray, bg: Background,
                 targets: np.ndarray | None, rows: np.ndarray, strata: np.ndarray, start: np.ndarray,
                 stop: np.ndarray, *, chunk_rows: int = DEFAULT_CHUNK_ROWS, arena: Arena | None = None,
                 slot: str = "outputs") -> np.ndarray:
    """Outputs of rows on a ragged stratified design: piece j is row X[rows[j]] on stratum b = strata[j],
    the base masks Z[start[j]:stop[j]] with columns driven as in :func:`stratified_outputs` (col_index
    (B, p)), filled from background row b. Returns the values concatenated piece after piece: (L,) of
    output targets[rows[j]] (targets (n,)), or (L, k) with ``targets`` None. The pieces of every row
    share one stream of model calls of ``chunk_rows`` rows each (only the last one is shorter); each
    piece's part of a call is a gather of its masks' columns and where(M, x, b) selected bit for bit
    (:func:`_select_into`), NaN included. With an ``arena`` (:func:`workspace`) the values live in its ``slot``."""
    rows = np.asarray(rows, dtype=np.intp)
    strata = np.asarray(strata, dtype=np.intp)
    start = np.asarray(start, dtype=np.intp)
    lengths = np.maximum(np.asarray(stop, dtype=np.intp) - start, 0)
    if not (len(rows) == len(strata) == len(start) == len(lengths)):
        raise InputError("rows, strata, start and stop must have one entry per piece")
    if len(rows) and (rows.min() < 0 or rows.max() >= X.shape[0]):
        raise InputError("rows must index the rows of X")
    L = int(lengths.sum())
    shape = (L,) if targets is not None else (L, int(model.n_outputs))
    out = np.empty(shape) if arena is None else arena.empty(slot, shape)
    if L == 0:
        return out
    numeric = X.dtype != object and bg.data.dtype != object
    p = X.shape[1]
    c_max = min(chunk_rows, L)
    compiled = _compiled() if numeric else None
    if numeric:
        xbits = np.ascontiguousarray(np.asarray(X, float)).view(np.uint64)
        bbits = np.ascontiguousarray(np.asarray(bg.data, float)).view(np.uint64)
        mbuf = np.empty((c_max, p), bool) if compiled is None else None
    if compiled is not None:
        Zu = np.ascontiguousarray(Z, dtype=bool).view(np.uint8)
        cidx = np.ascontiguousarray(col_index, dtype=np.int64)
        _check_compiled_reads(Zu, cidx, strata, start, start + lengths, bg.n_rows)
        fill_strata = _strata_kernel(compiled, Zu, cidx)
    # the pieces cut at the model calls' boundaries: segment s is row qi[s] on stratum qb[s], masks
    # qk[s]:qk[s] + qn[s], at stream position seg0[s]; a run is one call's consecutive segments of one row
    ends = np.cumsum(lengths)
    begins = ends - lengths
    calls = np.arange(0, L, c_max)
    seg0 = np.unique(np.concatenate([begins[lengths > 0], calls]))
    piece = np.searchsorted(ends, seg0, side="right")
    qi, qb = rows[piece], strata[piece].astype(np.int64)
    qk = np.ascontiguousarray(start[piece] + seg0 - begins[piece], dtype=np.int64)
    qn = np.diff(seg0, append=L).astype(np.int64)
    brk = np.flatnonzero((qi[1:] != qi[:-1]) | (seg0[1:] // c_max != seg0[:-1] // c_max)) + 1
    r0 = np.concatenate([[0], brk])
    r1 = np.concatenate([brk, [len(seg0)]])
    runs = list(zip(r0.tolist(), r1.tolist(), qi[r0].tolist(), seg0[r0].tolist(),
                    np.append(seg0, L)[r1].tolist()))                  # (first, last segment, row, from, to)
    by_call = np.searchsorted(seg0[r0] // c_max, np.arange(len(calls) + 1)).tolist()
    with (input_buffer((c_max, p)) if numeric else nullcontext(np.empty((c_max, p), dtype=object))) as buf:
        for c, lo in enumerate(calls.tolist()):
            filled = min(c_max, L - lo)
            mine = runs[by_call[c]:by_call[c + 1]]
            for a, z, i, p0, p1 in mine:
                if compiled is not None:                               # one compiled fill per run
                    fill_strata(buf[p0 - lo:p1 - lo].view(np.uint64), xbits[i], bbits, qb[a:z], qk[a:z], qn[a:z])
                    continue
                for b, k0, n, o in zip(qb[a:z].tolist(), qk[a:z].tolist(), qn[a:z].tolist(), seg0[a:z].tolist()):
                    piece = buf[o - lo:o - lo + n]
                    if numeric:
                        masks = mbuf[o - lo:o - lo + n]
                        np.take(Z[k0:k0 + n], col_index[b], axis=1, out=masks)
                        _select_into(piece, masks, xbits[i] ^ bbits[b], bbits[b])
                    else:
                        piece[:] = np.where(Z[k0:k0 + n][:, col_index[b]], X[i], bg.data[b])
            res = model(buf[:filled]).reshape(filled, -1)
            if targets is None:
                out[lo:lo + filled] = res
            else:
                for a, z, i, p0, p1 in mine:
                    out[p0:p1] = res[p0 - lo:p1 - lo, targets[i]]
    return out


def _strata_kernel(compiled, Z: np.ndarray, col_index: np.ndarray):
    """The compiled stratum fill for these masks (Z uint8 (m, q), col_index (B, p) int64, already
    checked), called as fill(out, x, bg, which, start, count): with at most 64 base features the mask
    rows packed one word each (the kernel vectorises), else the general byte-gather kernel."""
    if Z.shape[1] <= 64:
        Zb = compiled.pack_rows(Z)
        return lambda out, x, bg, which, start, count: compiled.strata_bits(out, Zb, col_index, x, bg, which,
                                                                            start, count)
    return lambda out, x, bg, which, start, count: compiled.strata(out, Z, col_index, x, bg, which, start, count)


def _check_compiled_reads(Z: np.ndarray, col_index: np.ndarray, strata: np.ndarray, start: np.ndarray,
                          stop: np.ndarray, n_background: int) -> None:
    """The compiled fills do not check their indices (numba reads out of bounds silently): every mask
    row, base feature and background row they will read must exist."""
    lengths = stop - start
    if ((col_index < 0) | (col_index >= Z.shape[1])).any() or len(col_index) < n_background:
        raise InputError("col_index must name base features of Z for every background row")
    if (strata < 0).any() or (strata >= n_background).any():
        raise InputError("strata must be background row indices")
    live = lengths > 0
    if (start[live] < 0).any() or (stop[live] > Z.shape[0]).any():
        raise InputError("start/stop must lie within the rows of Z")


def _select_into(buf: np.ndarray, M: np.ndarray, dx: np.ndarray, b: np.ndarray) -> None:
    """buf = where(M, x, b) bit for bit, as b ^ (M * (x ^ b)) on the float64 words: ``M`` the boolean
    masks (any shape broadcasting against ``buf``), ``dx`` = x ^ b and ``b`` as uint64 views. M * dx
    is dx where M holds and 0 elsewhere, so the result is exactly x's or b's bits (NaN and signed
    zeros included). Two vectorised passes, reading the masks as bytes: no word-mask array."""
    u = buf.view(np.uint64)
    np.multiply(M.view(np.uint8), dx, out=u)
    np.bitwise_xor(u, b, out=u)


def _target_grid(t: np.ndarray, B: int) -> np.ndarray:
    return np.broadcast_to(t[:, None], (len(t), B))


def shifted_outputs(model: Model, X: np.ndarray, E: np.ndarray, targets: np.ndarray,
                    *, chunk_rows: int = DEFAULT_CHUNK_ROWS) -> np.ndarray:
    """v[i, j] = f_{t_i}(X[i] + E[j]) for all rows i and offsets j: (n, m)."""
    check_numeric(X, "this method")
    n, p = X.shape
    m = E.shape[0]
    V = np.empty((n, m) + _tail(model, targets))
    per = max(1, chunk_rows // m) if m <= chunk_rows else 0
    if per:
        for s in range(0, n, per):
            blk = X[s:s + per]
            out = model((blk[:, None, :] + E[None, :, :]).reshape(-1, p)).reshape(len(blk), m, -1)
            V[s:s + per] = out if targets is None else _select(out, _target_grid(targets[s:s + per], m))
    else:
        for i in range(n):
            for s in range(0, m, chunk_rows):
                out = model(X[i] + E[s:s + chunk_rows])
                V[i, s:s + chunk_rows] = out if targets is None else out[:, targets[i]]
    return V


def gradients(model: Model, P: np.ndarray, targets: np.ndarray, *, step: np.ndarray,
              chunk_rows: int = DEFAULT_CHUNK_ROWS) -> np.ndarray:
    """Gradient of f_target at each point P (N, p) -> (N, p).

    Autograd when ``model.has_gradient``; otherwise central differences
    (f(x + h_j e_j) - f(x - h_j e_j)) / 2h_j, i.e. the slope of a linear fit on the 2p points
    x +- h_j e_j, costing 2p model rows per point.
    """
    check_numeric(P, "gradient methods")
    N, p = P.shape
    if targets is None and model.has_gradient:       # every output: one backward pass per output
        k = int(model.n_outputs)
        return np.stack([gradients(model, P, np.full(N, t, dtype=np.intp), step=step, chunk_rows=chunk_rows)
                         for t in range(k)], axis=-1)
    if model.has_gradient:
        return np.concatenate([model.gradient(P[s:s + chunk_rows], targets[s:s + chunk_rows])
                               for s in range(0, N, chunk_rows)]) if N else np.empty((0, p))
    step = np.broadcast_to(np.asarray(step, dtype=float), (p,))
    H = np.diag(step)
    offsets = np.concatenate([H, -H])  # (2p, p)
    G = np.empty((N, p) + _tail(model, targets))
    per = max(1, chunk_rows // (2 * p))
    for s in range(0, N, per):
        blk = P[s:s + per]
        out = model((blk[:, None, :] + offsets[None]).reshape(-1, p)).reshape(len(blk), 2 * p, -1)
        if targets is None:                          # (blk, 2p, k) -> (blk, p, k)
            G[s:s + per] = (out[:, :p] - out[:, p:]) / (2 * step)[None, :, None]
        else:
            v = _select(out, _target_grid(targets[s:s + per], 2 * p))
            G[s:s + per] = (v[:, :p] - v[:, p:]) / (2 * step)
    return G


def check_numeric(X: np.ndarray, what: str) -> None:
    if X.dtype == object:
        bad = []
        for j in range(X.shape[1]):
            try:
                X[:, j].astype(float)
            except (TypeError, ValueError):
                bad.append(j)
        if bad:
            raise InputError(
                f"{what} need numeric inputs, but column(s) {bad} hold non-numeric values; use a "
                "masking method (kernelshap, lime, shapley, occlusion) or encode them first")
