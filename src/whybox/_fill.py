"""Compiled fills of masked inputs (numba, the optional ``speed`` extra), used by :mod:`whybox.engine`.

Each writes where(z, x, b) for many coalitions z in one pass, as b ^ ((x ^ b) & -z) on the float64
words: exactly x's or b's bits (NaN and signed zeros included), the same bits as the engine's numpy
path (a gather of the masks, then two vectorised passes), at about the cost of one copy of the output.
All arrays arrive as unsigned views: float64 data as uint64, boolean masks as uint8.
"""
from __future__ import annotations

import numpy as np

from whybox import _numba
from whybox._numba import HAVE_NUMBA, njit

available = _numba.available


if HAVE_NUMBA:
    @njit(cache=True, nogil=True)
    def _load_stratum(x, b, cols, bj, dx, cj):
        """One stratum's constants for the fills: bj = b, dx = x ^ b and cj = its column map."""
        for j in range(bj.shape[0]):
            bj[j] = b[j]
            dx[j] = x[j] ^ b[j]
            cj[j] = cols[j]

    @njit(cache=True, nogil=True)
    def strata(out, Z, col_index, x, bg, which, start, count):
        """Pieces one after another in out (L, p): piece q is stratum b = which[q], masks
        Z[start[q]:start[q] + count[q]] (rows of base features, uint8) driving column j through
        base feature col_index[b, j], filled from bg[b]; x (p,), bg (B, p)."""
        p = out.shape[1]
        dx = np.empty(p, np.uint64)
        bj = np.empty(p, np.uint64)
        cj = np.empty(p, np.int64)
        o = 0
        for q in range(which.shape[0]):
            _load_stratum(x, bg[which[q]], col_index[which[q]], bj, dx, cj)
            for k in range(start[q], start[q] + count[q]):
                for j in range(p):
                    out[o, j] = bj[j] ^ (dx[j] & (np.uint64(0) - np.uint64(Z[k, cj[j]])))
                o += 1

    @njit(cache=True, nogil=True)
    def pack_rows(Z):
        """Each mask row (uint8, at most 64 columns) as one word: bit c of the result's k-th entry is Z[k, c]."""
        m, q = Z.shape
        out = np.zeros(m, np.uint64)
        for k in range(m):
            w = np.uint64(0)
            for c in range(q):
                w |= np.uint64(Z[k, c] != 0) << np.uint64(c)
            out[k] = w
        return out

    @njit(cache=True, nogil=True)
    def strata_bits(out, Zb, col_index, x, bg, which, start, count):
        """:func:`strata` with each mask row packed into one word (at most 64 base features: bit c of
        Zb[k] is Z[k, c]). Column j's word mask is bit c = col_index[b, j] moved to the sign by a
        variable left shift and spread by an arithmetic right shift, (z << (63 - c)) >> 63: that
        inner loop vectorises to about the cost of a copy (1.2x at 30 columns), where the unsigned
        0 - ((z >> c) & 1) measured 3x and the byte gather more."""
        p = out.shape[1]
        dx = np.empty(p, np.uint64)
        bj = np.empty(p, np.uint64)
        sh = np.empty(p, np.int64)
        top = np.int64(63)
        o = 0
        for q in range(which.shape[0]):
            _load_stratum(x, bg[which[q]], col_index[which[q]], bj, dx, sh)
            for j in range(p):
                sh[j] = top - sh[j]                                    # bit c to the sign: shift by 63 - c
            for k in range(start[q], start[q] + count[q]):
                zk = np.int64(Zb[k])
                ok = out[o]
                for j in range(p):
                    ok[j] = bj[j] ^ (dx[j] & np.uint64((zk << sh[j]) >> top))
                o += 1

    @njit(cache=True, nogil=True)
    def grid(out, Z, x, bg):
        """out (n, k, r, p) = where(Z[k], x[i], bg[r]) for every row i, mask k and background row r;
        Z (k, p) uint8 column masks."""
        n, k, r, p = out.shape
        for i in range(n):
            for c in range(k):
                for s in range(r):
                    for j in range(p):
                        b = bg[s, j]
                        out[i, c, s, j] = b ^ ((x[i, j] ^ b) & (np.uint64(0) - np.uint64(Z[c, j])))
