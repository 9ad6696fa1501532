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

from math import factorial

import numpy as np

from whybox.errors import MethodError
from whybox.trees.model import Ensemble, Tree


def leaf_paths(tree: Tree) -> list[tuple[int, np.ndarray, np.ndarray, np.ndarray, np.ndarray]]:
    """(leaf, features, lo, hi, cover fraction) per leaf: x reaches it iff lo_j < float32(x_j) <= hi_j for
    each feature j on its path; the cover fraction multiplies cover(child)/cover(node) over j's splits."""
    out = []
    stack = [(0, {})]
    while stack:
        node, cons = stack.pop()
        if tree.left[node] < 0:
            feats = np.array(sorted(cons), dtype=np.int64)
            lo = np.array([cons[f][0] for f in feats])
            hi = np.array([cons[f][1] for f in feats])
            frac = np.array([cons[f][2] for f in feats])
            out.append((node, feats, lo, hi, frac))
            continue
        f, t = int(tree.feature[node]), float(tree.threshold[node])
        lo, hi, fr = cons.get(f, (-np.inf, np.inf, 1.0))
        c = tree.cover[node]
        for child, new in ((tree.left[node], (lo, min(hi, t))), (tree.right[node], (max(lo, t), hi))):
            d = dict(cons)
            d[f] = (new[0], new[1], fr * (tree.cover[child] / c if c > 0 else 0.0))
            stack.append((int(child), d))
    return out


def leaf_table(ens: Ensemble, out: int) -> dict[int, tuple[np.ndarray, ...]]:
    """Every leaf of output ``out``'s trees grouped by its number k of distinct path features:
    {k: (features (L, k), lo (L, k), hi (L, k), cover fractions (L, k), values (L,), cover share (L,))},
    so that leaves of one k are handled together (cached on the ensemble)."""
    cache = ens.leaves
    if out in cache:
        return cache[out]
    groups: dict[int, list] = {}
    for tree in ens.trees[out]:
        root = tree.cover[0]
        for leaf, feats, lo, hi, frac in leaf_paths(tree):
            share = tree.cover[leaf] / root if root > 0 else 0.0
            groups.setdefault(len(feats), []).append((feats, lo, hi, frac, tree.value[leaf], share))
    table = {}
    for k, items in groups.items():
        table[k] = tuple(np.array([it[j] for it in items]).reshape(len(items), k) if j < 4 else
                         np.array([it[j] for it in items], float) for j in range(6))
    cache[out] = table
    return table


def _passes_many(X32: np.ndarray, feats: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """(n, L, k): does row x pass leaf l's constraint on its j-th path feature."""
    v = X32[:, feats]                                          # (n, L, k)
    return (v > lo[None]) & (v <= hi[None])


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


def interventional(ens: Ensemble, X: np.ndarray, bg: np.ndarray, weights: np.ndarray, out: int,
                   block: int = 2_000_000) -> np.ndarray:
    """phi (n, p) of output ``out`` against the weighted background rows ``bg``."""
    X32, B32 = np.asarray(X, ens.dtype), np.asarray(bg, ens.dtype)
    n, p = X32.shape
    nb = B32.shape[0]
    phi = np.zeros(n * p)
    w = np.asarray(weights, float)
    for k, (feats, lo, hi, _, vals, _) in leaf_table(ens, out).items():
        if k == 0:
            continue
        if k > MAX_PATH:
            raise MethodError(f"a path splits on {k} distinct features; at most {MAX_PATH} are supported")
        bits = np.int64(1) << np.arange(k, dtype=np.int64)
        full = np.int64((1 << k) - 1)
        step = max(1, block // max(1, n * nb))
        for s0 in range(0, len(vals), step):                    # leaves in blocks: (n, B, leaves) at most `block`
            sl = slice(s0, s0 + step)
            cx = _passes_many(X32, feats[sl], lo[sl], hi[sl]).astype(np.int64) @ bits      # (n, L)
            cz = _passes_many(B32, feats[sl], lo[sl], hi[sl]).astype(np.int64) @ bits      # (B, L)
            reach = (cx[:, None, :] | cz[None, :, :]) == full                              # (n, B, L)
            ix, iz, il = np.nonzero(reach)
            if not len(ix):
                continue
            A = cx[ix, il] & ~cz[iz, il]
            Bm = cz[iz, il] & ~cx[ix, il]
            a, b = _popcount(A), _popcount(Bm)
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


def path_dependent(ens: Ensemble, X: np.ndarray, out: int, block: int = 4_000_000) -> tuple[np.ndarray, float]:
    """phi (n, p) of output ``out`` by path-dependent TreeSHAP, and the expected value it starts from."""
    X32 = np.asarray(X, ens.dtype)
    n, p = X32.shape
    phi = np.zeros(n * p)
    expected = float(ens.constant[out])
    for k, (feats, lo, hi, frac, vals, share) in leaf_table(ens, out).items():
        expected += float(vals @ share)
        if k == 0:
            continue
        W = np.array([factorial(m) * factorial(k - 1 - m) / factorial(k) for m in range(k)])
        step = max(1, block // max(1, n * (k + 1)))
        for s0 in range(0, len(vals), step):
            sl = slice(s0, s0 + step)
            o = _passes_many(X32, feats[sl], lo[sl], hi[sl]).astype(float)     # (n, L, k)
            z = frac[sl]                                                      # (L, k)
            L = z.shape[0]
            c = np.zeros((n, L, k + 1))
            c[:, :, 0] = 1.0
            for j in range(k):                                                # prod_j (z_j + o_j t)
                c[:, :, 1:] = z[None, :, j:j + 1] * c[:, :, 1:] + o[:, :, j:j + 1] * c[:, :, :-1]
                c[:, :, 0] *= z[None, :, j]
            for i in range(k):
                zi, oi = z[:, i][None, :], o[:, :, i]                         # (1, L), (n, L)
                q1 = np.zeros((n, L, k))                                      # / (t + z_i) where o_i = 1
                q1[:, :, k - 1] = c[:, :, k]
                for m in range(k - 1, 0, -1):
                    q1[:, :, m - 1] = c[:, :, m] - zi * q1[:, :, m]
                safe = np.where(zi > 0, zi, 1.0)
                q0 = np.where((zi > 0)[..., None], c[:, :, :k] / safe[..., None], 0.0)   # / z_i where o_i = 0
                q = np.where(oi[..., None] > 0, q1, q0)
                contrib = vals[sl][None, :] * (oi - zi) * (q @ W)             # (n, L)
                idx = (np.arange(n)[:, None] * p + feats[sl][None, :, i]).ravel()
                phi += np.bincount(idx, weights=contrib.ravel(), minlength=n * p)
    return phi.reshape(n, p), expected
