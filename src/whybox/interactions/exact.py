"""Exact Shapley interaction indices of a cooperative game, named as shapiq names them.

The game is given by its values on all 2^n coalitions, ``v[mask]`` with coalition ``mask`` the
bitmask of its players (player i is bit i). Everything goes through the Möbius transform
m(T) = sum_{L subset T} (-1)^{|T|-|L|} v(L) (computed in O(n 2^n)), since every index here is a
fixed linear map of it:

* ``SII`` (Grabisch & Roubens 1999): I(S) = sum_{T superset S} m(T) / (|T| - |S| + 1);
  order 1 is the Shapley value; ``I(empty)`` is the SII of the empty set for order >= 2 and v(empty)
  for order 1 (both as shapiq reports them).
* ``k-SII`` (Bordt & von Luxburg 2023): I_k(S) = sum_{T superset S, |T| <= k} B_{|T|-|S|} SII(T),
  Bernoulli numbers with B_1 = -1/2; I_k(empty) = v(empty); efficient: the values sum to v(N).
* ``STII`` (Sundararajan et al. 2020): m(S) for |S| < k; for |S| = k,
  sum_{T superset S} m(T) / C(|T|, k) (every higher-order Möbius term shared equally by its k-subsets).
* ``FSII`` (Faith-Shap, Tsai et al. 2023, Theorem 19): m(S) + (-1)^{k-|S|} |S|/(k+|S|) C(k, |S|)
  sum_{T superset S, |T| > k} C(|T|-1, k) / C(|T|+k-1, k+|S|) m(T); FSII(empty) = v(empty).

All four are returned for every coalition of size 0..k as a dict ``{tuple(players): value}``.
"""
from __future__ import annotations

from math import comb
from typing import Any

import numpy as np

from whybox.errors import InputError

INDICES = ("SII", "k-SII", "STII", "FSII")
MAX_PLAYERS = 20


def _bernoulli(m: int) -> list[float]:
    """B_0..B_m with B_1 = -1/2 (the convention of k-SII)."""
    B = [1.0]
    for j in range(1, m + 1):
        B.append(-sum(comb(j + 1, i) * B[i] for i in range(j)) / (j + 1))
    return B


def moebius(v: np.ndarray) -> np.ndarray:
    """The Möbius transform of a game given on all 2^n bitmask-indexed coalitions."""
    m = np.array(v, dtype=float)
    n = int(round(np.log2(m.shape[-1])))
    if m.shape[-1] != 1 << n:
        raise InputError(f"a game needs 2^n values, got {m.shape[-1]}")
    for i in range(n):
        bit = 1 << i
        idx = np.arange(m.shape[-1])
        has = idx[(idx & bit) != 0]
        m[..., has] -= m[..., has ^ bit]
    return m


def _sizes(n: int) -> np.ndarray:
    idx = np.arange(1 << n)
    return np.array([bin(i).count("1") for i in idx])


def _players(mask: int) -> tuple[int, ...]:
    return tuple(i for i in range(mask.bit_length()) if mask >> i & 1)


def interactions(v: Any, *, index: str = "k-SII", order: int = 2) -> dict[tuple[int, ...], float]:
    """Exact interaction values of the game ``v`` (2^n values, bitmask order) for all coalitions of
    size 0..``order``; see the module docstring for the definitions."""
    if index not in INDICES:
        raise InputError(f"index must be one of {INDICES}, got {index!r}")
    v = np.asarray(v, dtype=float)
    if v.ndim != 1 or not np.isfinite(v).all():
        raise InputError("the game must be a 1-D array of finite values, one per coalition")
    n = int(round(np.log2(len(v))))
    if len(v) != 1 << n or n > MAX_PLAYERS:
        raise InputError(f"the game needs 2^n values with n <= {MAX_PLAYERS}, got {len(v)}")
    if isinstance(order, bool) or not isinstance(order, int) or not 1 <= order <= n:
        raise InputError(f"order must be an integer in [1, {n}], got {order!r}")
    m = moebius(v)
    size = _sizes(n)
    k = order
    full = (1 << n) - 1
    masks = [s for s in range(1 << n) if size[s] <= k]

    def supersets(s: int) -> np.ndarray:
        rest = full & ~s
        out, sub = [], rest
        while True:                       # every subset of the remaining players, added to s
            out.append(s | sub)
            if sub == 0:
                break
            sub = (sub - 1) & rest
        return np.array(out)

    out: dict[tuple[int, ...], float] = {}
    if index == "SII" or index == "k-SII":
        sii = {}
        for s in masks:
            T = supersets(s)
            sii[s] = float((m[T] / (size[T] - size[s] + 1)).sum())
        if index == "SII":
            out = {_players(s): sii[s] for s in masks}
            if k == 1:
                out[()] = float(v[0])        # order 1 is the Shapley value; shapiq reports v(empty) there
            return out
        B = _bernoulli(k)
        for s in masks:
            T = [t for t in supersets(s) if size[t] <= k]
            out[_players(s)] = sum(B[size[t] - size[s]] * sii[t] for t in T)
        out[()] = float(v[0])                # as shapiq: the baseline, so that the values sum to v(N)
        return out
    if index == "STII":
        for s in masks:
            if size[s] < k:
                out[_players(s)] = float(m[s])
            else:
                T = supersets(s)
                out[_players(s)] = float((m[T] / np.array([comb(int(t), k) for t in size[T]])).sum())
        return out
    for s in masks:                       # FSII
        sz = int(size[s])
        val = float(m[s])
        if sz:
            T = [t for t in supersets(s) if size[t] > k]
            coef = (-1) ** (k - sz) * sz / (k + sz) * comb(k, sz)
            val += coef * sum(comb(int(size[t]) - 1, k) / comb(int(size[t]) + k - 1, k + sz) * m[t] for t in T)
        out[_players(s)] = val
    return out


def fsii_least_squares(v: Any, *, order: int = 2) -> dict[tuple[int, ...], float]:
    """FSII by its definition, for checking the closed form: the least-squares fit of v by terms of
    size <= ``order`` under the Shapley kernel (n-1) / (C(n,s) s (n-s)), with v(empty) and v(N) fitted
    exactly (solved through its KKT system; O(4^n) memory, small n only)."""
    import itertools

    v = np.asarray(v, dtype=float)
    n = int(round(np.log2(len(v))))
    if len(v) != 1 << n or n > 12:
        raise InputError(f"the least-squares check needs 2^n values with n <= 12, got {len(v)}")
    terms = [T for r in range(order + 1) for T in itertools.combinations(range(n), r)]
    tmask = np.array([sum(1 << i for i in T) for T in terms])
    A = ((np.arange(1 << n)[:, None] & tmask[None, :]) == tmask[None, :]).astype(float)
    sizes = _sizes(n)
    inner = (sizes > 0) & (sizes < n)
    w = np.zeros(1 << n)
    w[inner] = [(n - 1) / (comb(n, int(s)) * s * (n - s)) for s in sizes[inner]]
    C = A[~inner]
    K = np.block([[2 * A.T @ (w[:, None] * A), C.T], [C, np.zeros((len(C), len(C)))]])
    rhs = np.concatenate([2 * A.T @ (w * v), v[~inner]])
    return dict(zip(terms, (float(b) for b in np.linalg.solve(K, rhs)[:len(terms)])))
