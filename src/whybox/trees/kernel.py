"""Compiled tree-by-tree TreeSHAP kernels (numba, the optional ``speed`` extra).

The same values as the numpy leaf-table code of :mod:`whybox.trees.shap`, computed by walking each
tree once per (row, background row) pair (interventional) or once per row (path-dependent),
which prunes every branch neither row can take:

* **interventional** (Lundberg et al. 2020): walk the tree with a row x and a background row z.
  Where both take the same branch, follow it; where they part on a feature not yet seen on the
  path, follow x's branch with the feature in A (only x passes) and z's branch with it in B; a
  feature already in A (B) follows x's (z's) branch only. At a leaf with |A| = a, |B| = b the leaf
  value v adds v (a-1)! b! / (a+b)! to every feature of A and subtracts v a! (b-1)! / (a+b)! from
  every one of B — the Shapley values of the leaf's game.
* **path-dependent** (Lundberg et al. 2018, Algorithm 2): EXTEND / UNWIND of the path's
  permutation weights, the cold branch weighted by the node cover.

A NaN goes the way the split sends missing values (``missing_left``). Comparisons are made in the
precision the library uses: the rows are cast to it before they reach the kernel.
"""
from __future__ import annotations

import numpy as np

from whybox import _numba
from whybox._numba import HAVE_NUMBA, njit

available = _numba.available


if HAVE_NUMBA:
    @njit(cache=True, nogil=True)
    def _goes_left(x, thr, mleft):
        if x != x:                       # NaN
            return mleft
        return x <= thr

    @njit(cache=True, nogil=True)
    def _interventional(feature, thr, left, right, value, mleft, roots, X, Z, w, WA, WB, phi, r0, r1):
        p = X.shape[1]
        nb = Z.shape[0]
        max_nodes = feature.shape[0]
        side = np.zeros(p, np.int8)                   # 0 unseen, 1 in A (x's branch), 2 in B (z's)
        log_f = np.empty(p, np.int64)                 # features assigned on the current path, in order
        st_node = np.empty(max_nodes + 1, np.int64)   # DFS stack: node, log length before it, new feature, side
        st_len = np.empty(max_nodes + 1, np.int64)
        st_f = np.empty(max_nodes + 1, np.int64)
        st_s = np.empty(max_nodes + 1, np.int8)
        for i in range(r0, r1):
            for b in range(nb):
                wb = w[b]
                if wb == 0.0:
                    continue
                for t in range(roots.shape[0]):
                    st_node[0] = roots[t]
                    st_len[0] = 0
                    st_f[0] = -1
                    st_s[0] = 0
                    top = 1
                    ln = 0
                    na = 0
                    nbb = 0
                    while top > 0:
                        top -= 1
                        node = st_node[top]
                        while ln > st_len[top]:           # undo the assignments of the subtree just left
                            ln -= 1
                            f0 = log_f[ln]
                            if side[f0] == 1:
                                na -= 1
                            else:
                                nbb -= 1
                            side[f0] = 0
                        if st_f[top] >= 0:
                            f0 = st_f[top]
                            side[f0] = st_s[top]
                            log_f[ln] = f0
                            ln += 1
                            if st_s[top] == 1:
                                na += 1
                            else:
                                nbb += 1
                        f = feature[node]
                        if f < 0:                           # a leaf
                            if na + nbb == 0:
                                continue
                            v = value[node] * wb
                            ca = v * WA[na, nbb]
                            cb = v * WB[na, nbb]
                            for j in range(ln):
                                f0 = log_f[j]
                                if side[f0] == 1:
                                    phi[i, f0] += ca
                                else:
                                    phi[i, f0] -= cb
                            continue
                        xl = _goes_left(X[i, f], thr[node], mleft[node])
                        s = side[f]
                        zl = xl if s == 1 else _goes_left(Z[b, f], thr[node], mleft[node])
                        if s != 0 or xl == zl:              # one branch: the feature's own row's, or both's
                            go = zl if s == 2 else xl
                            st_node[top] = left[node] if go else right[node]
                            st_len[top] = ln
                            st_f[top] = -1
                            top += 1
                            continue
                        st_node[top] = left[node] if xl else right[node]
                        st_len[top] = ln
                        st_f[top] = f
                        st_s[top] = 1
                        top += 1
                        st_node[top] = left[node] if zl else right[node]
                        st_len[top] = ln
                        st_f[top] = f
                        st_s[top] = 2
                        top += 1
                    while ln > 0:                           # clean state for the next tree
                        ln -= 1
                        side[log_f[ln]] = 0
        return phi

    @njit(cache=True, nogil=True, inline="always")
    def _extend(PD, PZ, PO, PW, o, ud, zf, of, fi, R):
        PD[o + ud] = fi
        PZ[o + ud] = zf
        PO[o + ud] = of
        PW[o + ud] = 1.0 if ud == 0 else 0.0
        inv = R[ud + 1]
        for i in range(ud - 1, -1, -1):
            PW[o + i + 1] += of * PW[o + i] * ((i + 1) * inv)
            PW[o + i] = zf * PW[o + i] * ((ud - i) * inv)

    @njit(cache=True, nogil=True, inline="always")
    def _unwind(PD, PZ, PO, PW, o, ud, k):
        of = PO[o + k]
        zf = PZ[o + k]
        nxt = PW[o + ud]
        u1 = ud + 1.0
        inv = 1.0 / u1
        for i in range(ud - 1, -1, -1):
            if of != 0.0:
                tmp = PW[o + i]
                PW[o + i] = nxt * u1 / ((i + 1) * of)
                nxt = tmp - PW[o + i] * zf * ((ud - i) * inv)
            else:
                PW[o + i] = PW[o + i] * u1 / (zf * (ud - i))
        for i in range(k, ud):
            PD[o + i] = PD[o + i + 1]
            PZ[o + i] = PZ[o + i + 1]
            PO[o + i] = PO[o + i + 1]

    @njit(cache=True, nogil=True, inline="always")
    def _leaf(PD, PZ, PO, PW, o, ud, v, phi, row, c1, c2, R):
        # every path element's unwound weight sum (shap's unwound_path_sum). A one fraction is 0 or 1: for
        # the elements with o = 0 the sum is sum_i w_i (ud+1) / (z (ud-i)), one pass serving them all; for
        # o = 1 the recurrence runs on multiplications only (c1, c2 precomputed off its critical path)
        u1 = ud + 1.0
        inv = R[ud + 1]
        s0 = 0.0
        for i in range(ud):
            c1[i] = u1 * R[i + 1]
            c2[i] = (ud - i) * inv
            s0 += PW[o + i] * u1 * R[ud - i]
        for k in range(1, ud + 1):
            zf = PZ[o + k]
            if PO[o + k] == 0.0:
                if zf != 0.0:
                    phi[row, PD[o + k]] -= s0 * v        # (o - z) * (s0 / z) with o = 0
                continue
            nxt = PW[o + ud]
            total = 0.0
            for i in range(ud - 1, -1, -1):
                tmp = nxt * c1[i]
                total += tmp
                nxt = PW[o + i] - tmp * zf * c2[i]
            phi[row, PD[o + k]] += total * (1.0 - zf) * v

    @njit(cache=True, nogil=True)
    def _path_dependent(feature, thr, left, right, value, cover, mleft, roots, depth, X, phi, r0, r1):
        # depth-first with an explicit stack; a node's path lives in row `level` of the buffers (its
        # parent's first ud entries, extended): nodes popped between a parent and its second child are
        # all below the first child, so the parent's row is intact when the second child copies it
        m = depth + 2
        PD = np.zeros(m * m, np.int64)
        PZ = np.zeros(m * m)
        PO = np.zeros(m * m)
        PW = np.zeros(m * m)
        s_node = np.empty(2 * m + 2, np.int64)
        s_level = np.empty(2 * m + 2, np.int64)
        s_ud = np.empty(2 * m + 2, np.int64)
        s_fi = np.empty(2 * m + 2, np.int64)
        s_zf = np.empty(2 * m + 2)
        s_of = np.empty(2 * m + 2)
        c1 = np.empty(m)
        c2 = np.empty(m)
        R = np.zeros(m + 2)                     # reciprocals 1/j
        for j in range(1, m + 2):
            R[j] = 1.0 / j
        for i in range(r0, r1):
            for t in range(roots.shape[0]):
                s_node[0] = roots[t]
                s_level[0] = 0
                s_ud[0] = 0
                s_fi[0] = -1
                s_zf[0] = 1.0
                s_of[0] = 1.0
                top = 1
                while top > 0:
                    top -= 1
                    node = s_node[top]
                    level = s_level[top]
                    ud = s_ud[top]
                    o = level * m
                    if level > 0:
                        q = o - m
                        for j in range(ud):
                            PD[o + j] = PD[q + j]
                            PZ[o + j] = PZ[q + j]
                            PO[o + j] = PO[q + j]
                            PW[o + j] = PW[q + j]
                    _extend(PD, PZ, PO, PW, o, ud, s_zf[top], s_of[top], s_fi[top], R)
                    f = feature[node]
                    if f < 0:
                        _leaf(PD, PZ, PO, PW, o, ud, value[node], phi, i, c1, c2, R)
                        continue
                    xl = _goes_left(X[i, f], thr[node], mleft[node])
                    hot = left[node] if xl else right[node]
                    cold = right[node] if xl else left[node]
                    iz = 1.0
                    io = 1.0
                    k = 1
                    while k <= ud:
                        if PD[o + k] == f:
                            break
                        k += 1
                    if k <= ud:
                        iz = PZ[o + k]
                        io = PO[o + k]
                        _unwind(PD, PZ, PO, PW, o, ud, k)
                        ud -= 1
                    c = cover[node]
                    cz = iz * cover[cold] / c if c > 0 else 0.0
                    if cz > 0.0:                 # a zero-weight branch adds nothing (and cannot be unwound)
                        s_node[top] = cold
                        s_level[top] = level + 1
                        s_ud[top] = ud + 1
                        s_fi[top] = f
                        s_zf[top] = cz
                        s_of[top] = 0.0
                        top += 1
                    s_node[top] = hot
                    s_level[top] = level + 1
                    s_ud[top] = ud + 1
                    s_fi[top] = f
                    s_zf[top] = iz * cover[hot] / c if c > 0 else 0.0
                    s_of[top] = io
                    top += 1
        return phi


if HAVE_NUMBA:
    @njit(cache=True, nogil=True)
    def _predict(feature, thr, left, right, value, mleft, roots, X, out):
        for i in range(X.shape[0]):
            tot = 0.0
            for t in range(roots.shape[0]):
                node = roots[t]
                while feature[node] >= 0:
                    node = left[node] if _goes_left(X[i, feature[node]], thr[node], mleft[node]) else right[node]
                tot += value[node]
            out[i] = tot
        return out


if HAVE_NUMBA:
    @njit(cache=True, nogil=True)
    def _max_depth(left, right, roots):
        best = 0
        stack = np.empty((left.shape[0] + 1, 2), np.int64)
        for t in range(roots.shape[0]):
            stack[0, 0] = roots[t]
            stack[0, 1] = 0
            top = 1
            while top > 0:
                top -= 1
                node, d = stack[top, 0], stack[top, 1]
                if left[node] < 0:
                    best = max(best, d)
                else:
                    stack[top, 0], stack[top, 1] = left[node], d + 1
                    stack[top + 1, 0], stack[top + 1, 1] = right[node], d + 1
                    top += 2
        return best


def _rows(ens, X: np.ndarray) -> np.ndarray:
    """Rows in the precision the library compares in, handed to the kernels as contiguous float64."""
    return np.ascontiguousarray(np.asarray(X, ens.dtype), dtype=np.float64)


def predict(ens, X: np.ndarray, out: int) -> np.ndarray:
    """Output ``out`` of the trees (constant included) on the rows ``X``."""
    feature, thr, left, right, value, _, mleft, roots, _ = flat(ens, out)
    X64 = _rows(ens, X)
    return float(ens.constant[out]) + _predict(feature, thr, left, right, value, mleft, roots, X64, np.zeros(len(X64)))


if HAVE_NUMBA:
    from numba import get_num_threads, prange

    @njit(cache=True, parallel=True)
    def _interventional_par(feature, thr, left, right, value, mleft, roots, X, Z, w, WA, WB, phi, chunks):
        for c in prange(chunks.shape[0] - 1):        # rows are independent: each chunk has its own buffers
            _interventional(feature, thr, left, right, value, mleft, roots, X, Z, w, WA, WB, phi, chunks[c],
                            chunks[c + 1])
        return phi

    @njit(cache=True, parallel=True)
    def _path_dependent_par(feature, thr, left, right, value, cover, mleft, roots, depth, X, phi, chunks):
        for c in prange(chunks.shape[0] - 1):
            _path_dependent(feature, thr, left, right, value, cover, mleft, roots, depth, X, phi, chunks[c],
                            chunks[c + 1])
        return phi


def _chunks(n: int, work_per_row: int) -> np.ndarray:
    """Row boundaries: one chunk per thread when there is enough work (about 1e5 node visits), else one."""
    threads = get_num_threads() if n * work_per_row > 100_000 else 1
    return np.unique(np.linspace(0, n, min(n, threads) + 1).astype(np.int64)) if n else np.zeros(1, np.int64)


def flat(ens, out: int) -> tuple[np.ndarray, ...]:
    """Output ``out``'s trees as one set of node arrays (children offset to global node numbers), the
    roots and the largest depth: (feature, threshold, left, right, value, cover, missing_left, roots,
    depth), cached on the ensemble."""
    key = ("flat", out)
    if key in ens.cache:
        return ens.cache[key]
    trees = ens.trees[out]
    sizes = np.array([len(t.feature) for t in trees], np.int64)
    roots = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.int64) if len(trees) else np.zeros(0, np.int64)
    offs = np.repeat(roots, sizes)

    def cat(name, dtype):
        return np.concatenate([getattr(t, name) for t in trees]).astype(dtype) if trees else np.zeros(0, dtype)

    left, right = cat("left", np.int64), cat("right", np.int64)
    left = np.where(left >= 0, left + offs, -1)
    right = np.where(right >= 0, right + offs, -1)
    res = (cat("feature", np.int64), cat("threshold", np.float64), left, right, cat("value", np.float64),
           cat("cover", np.float64), cat("missing_left", np.bool_), roots, int(_max_depth(left, right, roots)))
    ens.cache[key] = res
    return res


def interventional(ens, X: np.ndarray, bg: np.ndarray, weights: np.ndarray, out: int) -> np.ndarray:
    from whybox.trees.shap import _WA, _WB

    feature, thr, left, right, value, _, mleft, roots, _ = flat(ens, out)
    X64 = _rows(ens, X)
    Z64 = _rows(ens, bg)
    phi = np.zeros(X64.shape)
    return _interventional_par(feature, thr, left, right, value, mleft, roots, X64, Z64,
                               np.ascontiguousarray(weights, dtype=np.float64), _WA, _WB, phi,
                               _chunks(len(X64), len(Z64) * len(feature)))


def path_dependent(ens, X: np.ndarray, out: int) -> tuple[np.ndarray, float]:
    feature, thr, left, right, value, cover, mleft, roots, depth = flat(ens, out)
    X64 = _rows(ens, X)
    phi = np.zeros(X64.shape)
    _path_dependent_par(feature, thr, left, right, value, cover, mleft, roots, depth, X64, phi,
                        _chunks(len(X64), len(feature)))
    return phi, float(ens.constant[out]) + expected_value(ens, out)


def expected_value(ens, out: int) -> float:
    """The trees' cover-weighted mean leaf value (the path-dependent values' starting point)."""
    feature, _, left, _, value, cover, _, roots, _ = flat(ens, out)
    sizes = np.diff(np.append(roots, len(feature)))
    root_cover = np.repeat(cover[roots], sizes)
    leaf = (left < 0) & (root_cover > 0)
    return float((value[leaf] * cover[leaf] / root_cover[leaf]).sum())
