"""Exact Shapley values of tree ensembles, leaf by leaf, vectorised over rows.

A leaf L is reached through constraints on a few features P (an interval per feature: the
conjunction of every split on it along the path, compared as scikit-learn does, float32(x) <= t).

* **Interventional** (with a background; Lundberg et al. 2020's interventional TreeSHAP): for a row
  x and a background row z, the single-tree game v(S) = T(x_S, z_rest) takes the leaf's value iff
  every feature of P in S lets x through and every one outside S lets z through. With
  A = {j: only x passes}, B = {j: only z passes} (and none where neither does), the leaf is a
  unanimity-like game whose Shapley values are
  +v_L (|A|-1)! |B|! / (|A|+|B|)! for j in A and -v_L |A|! (|B|-1)! / (|A|+|B|)! for j in B;
  summed over leaves, trees and the weighted background this is exact, equal to brute-force
  enumeration, and efficient: sum_j phi_j = f(x) - E_z f(z).
* **Path-dependent** (no background; TreeSHAP, Lundberg et al. 2020, Algorithm 2): the game
  integrates the features outside S by the trees' training cover; the leaf's game is
  v_L prod_{j in P} (o_j if j in S else z_j) (o_j: x passes, z_j: the cover fraction of its splits), so
  phi_i = v_L (o_i - z_i) sum_m e_m m! (k-1-m)! / k!, with e_m the coefficients of
  prod_{j != i} (z_j + o_j t) (polynomial products, one per leaf for all rows).
"""
from __future__ import annotations

from functools import lru_cache
from math import factorial

import numpy as np

from whybox.errors import MethodError
from whybox.trees.model import Ensemble, Tree


def leaf_paths(tree: Tree) -> list[tuple[int, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]]:
    """(leaf, features, lo, hi, cover fraction, NaN passes) per leaf: x reaches it iff, for each feature
    j on its path, lo_j < float32(x_j) <= hi_j, or x_j is NaN and every split on j sends NaN the path's
    way; the cover fraction multiplies cover(child)/cover(node) over j's splits."""
    out = []
    stack = [(0, {})]
    while stack:
        node, cons = stack.pop()
        if tree.left[node] < 0:
            feats = np.array(sorted(cons), dtype=np.int64)
            lo, hi, frac, nan = (np.array([cons[f][j] for f in feats]) for j in range(4))
            out.append((node, feats, lo, hi, frac, nan.astype(bool)))
            continue
        f, t = int(tree.feature[node]), float(tree.threshold[node])
        lo, hi, fr, nan = cons.get(f, (-np.inf, np.inf, 1.0, True))
        c = tree.cover[node]
        ml = bool(tree.missing_left[node])
        for child, new in ((tree.left[node], (lo, min(hi, t), ml)), (tree.right[node], (max(lo, t), hi, not ml))):
            d = dict(cons)
            d[f] = (new[0], new[1], fr * (tree.cover[child] / c if c > 0 else 0.0), nan and new[2])
            stack.append((int(child), d))
    return out


def leaf_table(ens: Ensemble, out: int) -> dict[int, tuple[np.ndarray, ...]]:
    """Every leaf of output ``out``'s trees grouped by its number k of distinct path features:
    {k: (features (L, k), lo (L, k), hi (L, k), cover fractions (L, k), values (L,), cover share (L,),
    NaN passes (L, k))}, so that leaves of one k are handled together (cached on the ensemble)."""
    cache = ens.cache
    if out in cache:
        return cache[out]
    groups: dict[int, list] = {}
    for tree in ens.trees[out]:
        root = tree.cover[0]
        for leaf, feats, lo, hi, frac, nan in leaf_paths(tree):
            share = tree.cover[leaf] / root if root > 0 else 0.0
            groups.setdefault(len(feats), []).append((feats, lo, hi, frac, tree.value[leaf], share, nan))
    table = {}
    for k, items in groups.items():
        table[k] = tuple(np.array([it[j] for it in items]).reshape(len(items), k) if j in (0, 1, 2, 3, 6) else
                         np.array([it[j] for it in items], float) for j in range(7))
    cache[out] = table
    return table


def _passes_many(X32: np.ndarray, feats: np.ndarray, lo: np.ndarray, hi: np.ndarray,
                 nan: np.ndarray) -> np.ndarray:
    """(n, L, k): does row x pass leaf l's constraint on its j-th path feature."""
    v = X32[:, feats]                                          # (n, L, k)
    ok = (v > lo[None]) & (v <= hi[None])
    return ok | (np.isnan(v) & nan[None]) if nan.any() else ok


def _codes(X32: np.ndarray, feats: np.ndarray, lo: np.ndarray, hi: np.ndarray, nan: np.ndarray) -> np.ndarray:
    """(n, L): which of leaf l's path constraints row x passes, as a bitmask (bit j: its j-th feature)."""
    bits = np.int64(1) << np.arange(feats.shape[1], dtype=np.int64)
    return _passes_many(X32, feats, lo, hi, nan).astype(np.int64) @ bits


def reach_pairs(cx: np.ndarray, cz: np.ndarray, k: int) -> tuple[np.ndarray, ...]:
    """Every (row, background row, leaf) whose hybrid reaches the leaf, from their constraint codes
    ``cx`` (n, L) and ``cz`` (B, L) on paths of k features: (ix, iz, il, A, B, |A|, |B|), with A the
    constraints only the row passes and B those only the background row passes."""
    ix, iz, il = np.nonzero((cx[:, None, :] | cz[None, :, :]) == np.int64((1 << k) - 1))
    A = cx[ix, il] & ~cz[iz, il]
    Bm = cz[iz, il] & ~cx[ix, il]
    return ix, iz, il, A, Bm, _popcount(A), _popcount(Bm)


def _popcount(a: np.ndarray) -> np.ndarray:
    bc = getattr(np, "bitwise_count", None)
    if bc is not None:
        return bc(a).astype(np.int64)
    out = np.zeros(a.shape, np.int64)
    a = a.copy()
    while (a != 0).any():
        out += a & 1
        a >>= 1
    return out


def _weights(maxk: int) -> tuple[np.ndarray, np.ndarray]:
    WA = np.zeros((maxk + 1, maxk + 1))
    WB = np.zeros((maxk + 1, maxk + 1))
    for a in range(maxk + 1):
        for b in range(maxk + 1 - a):
            if a:
                WA[a, b] = factorial(a - 1) * factorial(b) / factorial(a + b)
            if b:
                WB[a, b] = factorial(a) * factorial(b - 1) / factorial(a + b)
    return WA, WB


MAX_PATH = 62
_WA, _WB = _weights(MAX_PATH)


TABLE_MAX_K = 7      # paths on at most 7 features: per-pattern tables (2^k patterns of which splits a row passes)


def _bitmat(k: int) -> np.ndarray:
    """(2^k, k): bit j of every pattern."""
    return ((np.arange(1 << k)[:, None] >> np.arange(k)) & 1).astype(bool)


@lru_cache(maxsize=16)
def _pair_table(k: int) -> np.ndarray:
    """C[cx, cz, j]: the Shapley value of path position j in the unanimity-like game of a leaf that x
    passes on the positions cx and z on cz (0 where the leaf cannot be reached or a + b = 0)."""
    P = 1 << k
    cx, cz = np.meshgrid(np.arange(P), np.arange(P), indexing="ij")
    full = P - 1
    A, Bm = cx & ~cz, cz & ~cx
    a, b = _popcount(A), _popcount(Bm)
    ok = ((cx | cz) == full) & ((a + b) > 0)
    sh = np.arange(k)
    inA = ((A[..., None] >> sh) & 1).astype(float)
    inB = ((Bm[..., None] >> sh) & 1).astype(float)
    C = inA * _WA[a, b][..., None] - inB * _WB[a, b][..., None]
    return np.where(ok[..., None], C, 0.0)


def _gather(phi: np.ndarray, codes: np.ndarray, T: np.ndarray, feats: np.ndarray, p: int) -> None:
    """phi[i, feats[l, j]] += T[l, codes[i, l], j] for every row i and leaf l."""
    n, L = codes.shape
    vals = T[np.arange(L)[None, :], codes]                     # (n, L, k)
    idx = np.arange(n)[:, None, None] * p + feats[None, :, :]
    phi += np.bincount(idx.ravel(), weights=vals.ravel(), minlength=n * p)


def interventional(ens: Ensemble, X: np.ndarray, bg: np.ndarray, weights: np.ndarray, out: int,
                   block: int = 2_000_000) -> np.ndarray:
    """phi (n, p) of output ``out`` against the weighted background rows ``bg``. Leaves with paths on
    k <= 7 features go through per-pattern tables (the background's weight per pattern of passed
    splits, times the game's Shapley values per pattern pair: one matrix product per leaf block, then a
    lookup per row); longer paths pair every row with every background row that can reach the leaf."""
    X32, B32 = np.asarray(X, ens.dtype), np.asarray(bg, ens.dtype)
    n, p = X32.shape
    nb = B32.shape[0]
    phi = np.zeros(n * p)
    w = np.asarray(weights, float)
    for k, (feats, lo, hi, _, vals, _, nan) in leaf_table(ens, out).items():
        if k == 0:
            continue
        if k > MAX_PATH:
            raise MethodError(f"a path splits on {k} distinct features; at most {MAX_PATH} are supported")
        if k <= TABLE_MAX_K:
            P = 1 << k
            M = _pair_table(k).transpose(1, 0, 2).reshape(P, P * k)      # M[cz, (cx, j)]
            step = max(1, block // max(1, P * k + n * k))
            for s0 in range(0, len(vals), step):
                sl = slice(s0, s0 + step)
                cx = _codes(X32, feats[sl], lo[sl], hi[sl], nan[sl])                               # (n, L)
                cz = _codes(B32, feats[sl], lo[sl], hi[sl], nan[sl])                               # (B, L)
                L = cx.shape[1]
                Wz = np.bincount((np.arange(L)[None, :] * P + cz).ravel(), weights=np.repeat(w, L),
                                 minlength=L * P).reshape(L, P)                                    # weight per pattern
                T = (Wz @ M).reshape(L, P, k)                                                      # T[l, cx, j]
                _gather(phi, cx, T * vals[sl][:, None, None], feats[sl], p)
            continue
        step = max(1, block // max(1, n * nb))
        for s0 in range(0, len(vals), step):                    # leaves in blocks: (n, B, leaves) at most `block`
            sl = slice(s0, s0 + step)
            ix, iz, il, A, Bm, a, b = reach_pairs(_codes(X32, feats[sl], lo[sl], hi[sl], nan[sl]),
                                                  _codes(B32, feats[sl], lo[sl], hi[sl], nan[sl]), k)
            keep = (a + b) > 0
            ix, iz, il, A, Bm, a, b = ix[keep], iz[keep], il[keep], A[keep], Bm[keep], a[keep], b[keep]
            if not len(ix):
                continue
            scale = vals[sl][il] * w[iz]
            sh = np.arange(k)
            inA = ((A[:, None] >> sh) & 1).astype(float)
            inB = ((Bm[:, None] >> sh) & 1).astype(float)
            contrib = scale[:, None] * (inA * _WA[a, b][:, None] - inB * _WB[a, b][:, None])     # (pairs, k)
            idx = (ix[:, None] * p + feats[sl][il]).ravel()
            phi += np.bincount(idx, weights=contrib.ravel(), minlength=n * p)
    return phi.reshape(n, p)


def _pd_contribs(o: np.ndarray, z: np.ndarray, vals: np.ndarray) -> np.ndarray:
    """(N, L, k) path-dependent contributions of each leaf's path positions, for N patterns of passed
    splits ``o`` (N, L, k) and the leaves' cover fractions ``z`` (L, k)."""
    N, L, k = o.shape
    W = np.array([factorial(m) * factorial(k - 1 - m) / factorial(k) for m in range(k)])
    c = np.zeros((N, L, k + 1))
    c[:, :, 0] = 1.0
    for j in range(k):                                                # prod_j (z_j + o_j t)
        c[:, :, 1:] = z[None, :, j:j + 1] * c[:, :, 1:] + o[:, :, j:j + 1] * c[:, :, :-1]
        c[:, :, 0] *= z[None, :, j]
    out = np.zeros((N, L, k))
    for i in range(k):
        zi, oi = z[:, i][None, :], o[:, :, i]                         # (1, L), (N, L)
        q1 = np.zeros((N, L, k))                                      # / (t + z_i) where o_i = 1
        q1[:, :, k - 1] = c[:, :, k]
        for m in range(k - 1, 0, -1):
            q1[:, :, m - 1] = c[:, :, m] - zi * q1[:, :, m]
        safe = np.where(zi > 0, zi, 1.0)
        q0 = np.where((zi > 0)[..., None], c[:, :, :k] / safe[..., None], 0.0)   # / z_i where o_i = 0
        q = np.where(oi[..., None] > 0, q1, q0)
        out[:, :, i] = vals[None, :] * (oi - zi) * (q @ W)
    return out


def path_dependent(ens: Ensemble, X: np.ndarray, out: int, block: int = 4_000_000) -> tuple[np.ndarray, float]:
    """phi (n, p) of output ``out`` by path-dependent TreeSHAP, and the expected value it starts from.
    A leaf's contributions depend on the row only through which of its splits the row passes: for
    paths on k <= 7 features they are computed once per pattern (2^k) and looked up per row."""
    X32 = np.asarray(X, ens.dtype)
    n, p = X32.shape
    phi = np.zeros(n * p)
    expected = float(ens.constant[out])
    for k, (feats, lo, hi, frac, vals, share, nan) in leaf_table(ens, out).items():
        expected += float(vals @ share)
        if k == 0:
            continue
        bits = np.int64(1) << np.arange(k, dtype=np.int64)
        patterns = k <= TABLE_MAX_K and (1 << k) < n
        N = (1 << k) if patterns else n
        step = max(1, block // max(1, (N + n) * (k + 1)))
        for s0 in range(0, len(vals), step):
            sl = slice(s0, s0 + step)
            passes = _passes_many(X32, feats[sl], lo[sl], hi[sl], nan[sl])                     # (n, L, k)
            if patterns:
                L = passes.shape[1]
                o = np.broadcast_to(_bitmat(k)[:, None, :], (N, L, k)).astype(float)
                T = _pd_contribs(o, frac[sl], vals[sl]).transpose(1, 0, 2)                    # (L, 2^k, k)
                _gather(phi, passes.astype(np.int64) @ bits, T, feats[sl], p)
            else:
                contrib = _pd_contribs(passes.astype(float), frac[sl], vals[sl])             # (n, L, k)
                idx = np.arange(n)[:, None, None] * p + feats[sl][None, :, :]
                phi += np.bincount(idx.ravel(), weights=contrib.ravel(), minlength=n * p)
    return phi.reshape(n, p), expected
