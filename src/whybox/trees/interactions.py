"""Exact interventional Shapley interactions of a tree ensemble (SII, k-SII, STII, FSII), read from
its leaves — no model queries.

For a row x, a background row z and a leaf L, the single-leaf game is v_L [A in S][B and S disjoint]
(A: the path features where only x passes, B: only z passes; every other feature is a null player,
:mod:`whybox.trees.shap`). Its Möbius transform is m(T) = v_L (-1)^{|T & B|} for A <= T <= A | B,
so for a coalition K inside A | B with |K| = s and |K & B| = s_B every index that is a fixed linear
map of the Möbius transform, I(K) = sum_{T >= K} m(T) phi(s, |T|) (:mod:`whybox.interactions.sampling`'s
weights phi), is

    I(K) = v_L sum_{c = s_B}^{b} C(b - s_B, c - s_B) (-1)^c phi(s, a + c)

(computed in exact rationals), and 0 for K outside A | B. Summed over leaves, trees and the weighted
background, with the ensemble's constant on the empty set, this equals the interactions of the
removal game through the model (:func:`whybox.interactions.interactions` with ``method="exact"``).
k-SII is the Bernoulli combination of the SII values; as shapiq reports them, k-SII(empty) and
order-1 SII(empty) are v(empty).
"""
from __future__ import annotations

import itertools
from fractions import Fraction
from functools import lru_cache
from math import comb

import numpy as np

from whybox.interactions.exact import _bernoulli
from whybox.trees.model import Ensemble
from whybox.trees.shap import _codes, _popcount, leaf_table, reach_pairs


@lru_cache(maxsize=256)
def _q(index: str, order: int, s: int, sb: int, a: int, b: int) -> float:
    from whybox.interactions.sampling import _phi

    tot = Fraction(0)
    for c in range(sb, b + 1):
        tot += comb(b - sb, c - sb) * (-1) ** c * _phi(index, order, s, a + c)
    return float(tot)


def _table(index: str, order: int, k: int) -> np.ndarray:
    """Q[s, s_B, a, b] for s <= order, a + b <= k."""
    Q = np.zeros((order + 1, order + 1, k + 1, k + 1))
    for s in range(order + 1):
        for sb in range(s + 1):
            for a in range(k + 1):
                for b in range(k + 1 - a):
                    if s - sb <= a and sb <= b:
                        Q[s, sb, a, b] = _q(index, order, s, sb, a, b)
    return Q


def coalitions(d: int, order: int) -> list[tuple[int, ...]]:
    return [c for r in range(order + 1) for c in itertools.combinations(range(d), r)]


def _moebius_index(ens: Ensemble, X: np.ndarray, bg: np.ndarray, weights: np.ndarray, out: int, index: str,
                   order: int, terms: list[tuple[int, ...]], block: int = 2_000_000) -> np.ndarray:
    X32, B32 = np.asarray(X, ens.dtype), np.asarray(bg, ens.dtype)
    n, p = X32.shape
    nb = B32.shape[0]
    key_of = {c: j for j, c in enumerate(terms)}
    radix = np.int64(p) ** np.arange(order, dtype=np.int64)[::-1]
    by_size = {}                                               # size r: (sorted codes, their columns)
    for r in range(order + 1):
        cj = [(int(np.dot(c, radix[order - r:])) if r else 0, j) for j, c in enumerate(terms) if len(c) == r]
        cj.sort()
        by_size[r] = (np.array([c for c, _ in cj], np.int64), np.array([j for _, j in cj], np.int64))
    vals_out = np.zeros((n, len(terms)))
    w = np.asarray(weights, float)
    # contributions are gathered and summed in one bincount once they outnumber the output cells, so
    # a bincount's cost (the n x terms output) is paid once per that many contributions, not per subset
    pend_i: list[np.ndarray] = []
    pend_v: list[np.ndarray] = []
    pending = 0

    def flush():
        nonlocal pending
        if pend_i:
            vals_out[:] += np.bincount(np.concatenate(pend_i), weights=np.concatenate(pend_v),
                                       minlength=n * len(terms)).reshape(n, len(terms))
            pend_i.clear()
            pend_v.clear()
        pending = 0

    vals_out[:, key_of[()]] += float(ens.constant[out])        # a constant game: m(empty) = the constant
    for k, (feats, lo, hi, _, vals, _, nan) in leaf_table(ens, out).items():
        Q = _table(index, order, k)
        subsets = [P for r in range(min(order, k) + 1) for P in itertools.combinations(range(k), r)]
        step = max(1, block // max(1, n * nb))
        for s0 in range(0, len(vals), step):
            sl = slice(s0, s0 + step)
            F = feats[sl]
            ix, iz, il, A, Bm, a, b = reach_pairs(_codes(X32, F, lo[sl], hi[sl], nan[sl]),
                                                  _codes(B32, F, lo[sl], hi[sl], nan[sl]), k)
            if not len(ix):
                continue
            scale = vals[sl][il] * w[iz]
            AB = A | Bm
            for P in subsets:
                pm = np.int64(sum(1 << i for i in P))
                ok = (AB & pm) == pm
                if not ok.any():
                    continue
                sb = _popcount(Bm[ok] & pm)
                contrib = scale[ok] * Q[len(P), sb, a[ok], b[ok]]
                # the coalition's column for each pair: its features are feats[leaf][P] (sorted)
                codes, cols = by_size[len(P)]
                code = F[:, list(P)] @ radix[order - len(P):] if P else np.zeros(len(F), np.int64)
                col = cols[np.searchsorted(codes, code)][il[ok]]
                pend_i.append(ix[ok] * len(terms) + col)
                pend_v.append(contrib)
                pending += len(contrib)
                if pending >= max(n * len(terms), 1 << 20):
                    flush()
    flush()
    return vals_out


def interventional_interactions(ens: Ensemble, X: np.ndarray, bg: np.ndarray, weights: np.ndarray, out: int,
                                index: str, order: int) -> tuple[list[tuple[int, ...]], np.ndarray, np.ndarray]:
    """(coalitions of sizes 0..order, values (n, coalitions), v(empty) (n,)) of output ``out``."""
    n, p = np.asarray(X).shape
    terms = coalitions(p, order)
    v0 = float(np.asarray(weights, float) @ ens.predict(np.asarray(bg))[:, out])
    if index == "k-SII":
        sii = _moebius_index(ens, X, bg, weights, out, "SII", order, terms)
        B = _bernoulli(order)
        key_of = {c: j for j, c in enumerate(terms)}
        values = np.zeros_like(sii)
        for j, S in enumerate(terms):
            if not S:
                continue
            rest = [f for f in range(p) if f not in S]
            for q in range(order - len(S) + 1):
                for Qs in itertools.combinations(rest, q):
                    values[:, j] += B[q] * sii[:, key_of[tuple(sorted(S + Qs))]]
        values[:, key_of[()]] = v0
        return terms, values, np.full(n, v0)
    values = _moebius_index(ens, X, bg, weights, out, index, order, terms)
    if index == "SII" and order == 1:
        values[:, 0] = v0
    return terms, values, np.full(n, v0)
