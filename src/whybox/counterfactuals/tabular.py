"""Model-agnostic counterfactuals for tabular models, with constraints.

"What would have to change for a different answer?" For one row x and a desired outcome (a class, or
a range of a regression output), the search returns up to k counterfactuals that are

* valid: the model gives the desired outcome (checked with real model queries);
* sparse and close: few features changed, by little (distance per feature scaled by the MAD of the
  data, or the range; 1 for a changed categorical/one-hot feature);
* plausible: values come from real rows (donor rows the model already gives the desired outcome,
  nearest first), continuous changes are then shrunk toward x by bisection;
* diverse: chosen greedily to be far from each other;
* constrained: only ``features_to_vary`` change, never ``immutable`` ones, within ``permitted_range``,
  in the ``monotone`` direction ("increase"/"decrease"), categorical values and one-hot groups stay
  valid categories (whole blocks are copied), integer features stay integers.

Search (all candidates of a step go to the model in one batched call):
1. donors: data rows with the desired outcome that satisfy the constraints on the features that may change;
2. candidates: x with a random subset of mutable features copied from a donor (nearest donors more
   often; subset sizes grow until enough candidates are valid), plus random values inside permitted
   ranges for continuous features;
3. sparsify: greedily revert changed features to x's values while the candidate stays valid;
4. shrink: bisection of each changed continuous feature toward x's value, keeping validity;
5. select k by greedy max-min diversity with a proximity penalty;
6. fewer than k distinct? search again with the features most chosen ones change held fixed (<= 2 passes).
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import pandas as pd


MONOTONE = ("increase", "decrease")


@dataclass
class Problem:
    """Everything the search needs, validated."""

    model: Any                  # whybox Model (batched, counted)
    x: np.ndarray               # (p,) the row, object or float
    data: np.ndarray            # (N, p) reference rows
    spec: Any                   # FeatureSpec (groups = interpretable features)
    mutable: np.ndarray         # (d,) bool
    lo: np.ndarray              # (p,) permitted lower bound per continuous column (or -inf)
    hi: np.ndarray
    monotone: np.ndarray        # (p,) +1 increase only, -1 decrease only, 0 free
    integer: np.ndarray         # (p,) bool
    numeric: np.ndarray         # (p,) bool: continuous numeric column (distance scaled, bisection)
    scale: np.ndarray           # (p,) distance scale for numeric columns
    allowed_values: dict[int, list[Any]] = field(default_factory=dict)  # categorical column -> permitted values
    is_valid: Any = None        # outputs (m, k) -> bool (m,)
    desired: Any = None
    # data-level results that do not depend on x (the model's outputs on data, the typical
    # nearest-neighbour distance): shared by every Problem of one CounterfactualExplainer
    shared: dict[str, Any] = field(default_factory=dict)


def data_outputs(P: Any) -> np.ndarray:
    """The model's outputs on the reference data, queried once per shared cache (``P``: a Problem or a
    CounterfactualExplainer: anything with ``model``, ``data`` and ``shared``)."""
    if "data_out" not in P.shared:
        P.shared["data_out"] = P.model(P.data)
    return P.shared["data_out"]


def _mad(col: np.ndarray) -> float:
    med = np.median(col)
    mad = float(np.median(np.abs(col - med)))
    if mad > 0:
        return mad
    sd = float(np.std(col))
    return sd if sd > 0 else 1.0


def feature_distance(P: Problem, A: np.ndarray) -> np.ndarray:
    """Distance of each row of A to x: sum over interpretable features of |a - x| / scale for continuous
    numeric features and 1 for a changed categorical feature or group."""
    return _per_feature(P, A).sum(axis=1)


def _per_feature(P: Problem, A: np.ndarray) -> np.ndarray:
    """(m, d) per-feature distance to x."""
    m, d = A.shape[0], P.spec.n_features
    out = np.zeros((m, d))
    for f, cols in enumerate(P.spec.groups):
        if len(cols) == 1 and P.numeric[cols[0]]:
            c = cols[0]
            out[:, f] = np.abs(A[:, c].astype(float) - float(P.x[c])) / P.scale[c]
        else:
            out[:, f] = (A[:, cols] != P.x[cols]).any(axis=1)
    return out


def pairwise_distance(P: Any, A: np.ndarray, B: np.ndarray) -> np.ndarray:
    """(len(A), len(B)) counterfactual distances: |a - b| / scale summed over numeric features, plus 1 per
    categorical feature or group that differs. ``P`` needs ``spec``, ``numeric`` and ``scale``."""
    D = np.zeros((len(A), len(B)))
    for cols in P.spec.groups:
        if len(cols) == 1 and P.numeric[cols[0]]:
            c = cols[0]
            D += np.abs((A[:, c].astype(float) / P.scale[c])[:, None] - (B[:, c].astype(float) / P.scale[c])[None, :])
        else:
            D += (A[:, None, cols] != B[None, :, cols]).any(axis=2)
    return D


def feature_changes(P: Problem, A: np.ndarray) -> np.ndarray:
    """(m, d) bool: which interpretable features differ from x."""
    m, d = A.shape[0], P.spec.n_features
    out = np.zeros((m, d), bool)
    for f, cols in enumerate(P.spec.groups):
        if len(cols) == 1 and P.numeric[cols[0]]:
            out[:, f] = ~np.isclose(A[:, cols[0]].astype(float), float(P.x[cols[0]]), rtol=0, atol=1e-12)
        else:
            out[:, f] = (A[:, cols] != P.x[cols]).any(axis=1)
    return out


def respects(P: Problem, A: np.ndarray) -> np.ndarray:
    """(m,) bool: every constraint holds (the feature-level checks the tests also make)."""
    ch = feature_changes(P, A)
    ok = ~(ch & ~P.mutable[None, :]).any(axis=1)
    for c in range(A.shape[1]):
        if P.numeric[c]:
            v = A[:, c].astype(float)
            moved = ~np.isclose(v, float(P.x[c]), rtol=0, atol=1e-12)
            ok &= ~moved | ((v >= P.lo[c] - 1e-9) & (v <= P.hi[c] + 1e-9))
            if P.monotone[c] > 0:
                ok &= v >= float(P.x[c]) - 1e-9
            elif P.monotone[c] < 0:
                ok &= v <= float(P.x[c]) + 1e-9
            if P.integer[c]:
                ok &= np.isclose(v, np.round(v))
        elif c in P.allowed_values:
            vals = P.allowed_values[c]
            ok &= np.array([(a == P.x[c]) or (a in vals) for a in A[:, c]])
    return ok


def _evaluate(P: Problem, A: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    out = P.model(A)
    return out, P.is_valid(out)


def _candidates(P: Problem, donors: np.ndarray, donor_d: np.ndarray, n: int, size_max: int,
                rng: np.random.Generator) -> np.ndarray:
    mut = np.flatnonzero(P.mutable)
    # nearest donors more often (rank-based weights)
    w = 1.0 / (1.0 + np.argsort(np.argsort(donor_d)))
    w /= w.sum()
    pick = rng.choice(len(donors), size=n, p=w)
    sizes = rng.integers(1, max(1, min(size_max, len(mut))) + 1, size=n)
    # a random subset of `sizes[i]` mutable features per candidate: the first ones of a random order
    ranks = np.argsort(np.argsort(rng.random((n, len(mut))), axis=1), axis=1)
    chosen = ranks < sizes[:, None]                                   # (n, |mut|)
    member = np.zeros((len(mut), P.x.shape[0]), bool)                 # feature -> its columns
    for j, f in enumerate(mut):
        member[j, P.spec.groups[f]] = True
    take = (chosen.astype(np.int32) @ member.astype(np.int32)) > 0    # (n, p) columns copied from the donor
    A = np.where(take, donors[pick], P.x[None, :])
    # a share of the candidates also get uniform values inside the permitted range of continuous features
    cont = [P.spec.groups[f][0] for f in mut if len(P.spec.groups[f]) == 1 and P.numeric[P.spec.groups[f][0]]]
    if cont:
        rows = rng.choice(n, size=n // 4, replace=False)
        cols = np.asarray(cont)[rng.integers(0, len(cont), size=len(rows))]
        bounds = np.array([_range(P, c) for c in cont])
        where = {c: j for j, c in enumerate(cont)}
        lo, hi = bounds[[where[c] for c in cols]].T
        u = rng.uniform(size=len(rows))
        ok = hi > lo
        v = lo + u * (hi - lo)
        v = np.where(P.integer[cols], np.round(v), v)
        A[rows[ok], cols[ok]] = v[ok]
    return A


def _data_range(P: Problem, c: int) -> tuple[float, float]:
    """min and max of data column c (cached: they do not depend on x)."""
    key = ("range", c)
    if key not in P.shared:
        col = P.data[:, c].astype(float)
        P.shared[key] = (float(col.min()), float(col.max()))
    return P.shared[key]


def _range(P: Problem, c: int) -> tuple[float, float]:
    dmin, dmax = _data_range(P, c)
    lo = max(P.lo[c], dmin)
    hi = min(P.hi[c], dmax)
    x = float(P.x[c])
    if P.monotone[c] > 0:
        lo = max(lo, x)
    elif P.monotone[c] < 0:
        hi = min(hi, x)
    return lo, hi


def _sparsify(P: Problem, A: np.ndarray) -> np.ndarray:
    """Greedily revert changed features to x while every candidate stays valid (batched)."""
    A = A.copy()
    active = np.ones(len(A), bool)
    while active.any():
        ch = feature_changes(P, A)
        rows, feats = np.nonzero(ch & active[:, None])
        if len(rows) == 0:
            break
        B = A[rows].copy()
        for r, (i, f) in enumerate(zip(rows, feats)):
            B[r, P.spec.groups[f]] = P.x[P.spec.groups[f]]
        _, ok = _evaluate(P, B)
        gain = _per_feature(P, A[rows])[np.arange(len(rows)), feats]
        best = {}
        for r in np.flatnonzero(ok):
            i = rows[r]
            if i not in best or gain[r] > gain[best[i]]:
                best[i] = r
        active[:] = False
        for i, r in best.items():
            A[i] = B[r]
            active[i] = True
    return A


def _shrink(P: Problem, A: np.ndarray, steps: int = 6) -> np.ndarray:
    """Bisection of each changed continuous feature toward x's value, keeping validity."""
    A = A.copy()
    cont = [f for f in range(P.spec.n_features) if P.mutable[f] and len(P.spec.groups[f]) == 1
            and P.numeric[P.spec.groups[f][0]]]
    for f in cont:
        c = P.spec.groups[f][0]
        x = float(P.x[c])
        far = A[:, c].astype(float)
        rows = np.flatnonzero(~np.isclose(far, x, rtol=0, atol=1e-12))
        if len(rows) == 0:
            continue
        lo_t, hi_t = np.zeros(len(rows)), np.ones(len(rows))      # t=1: the current (valid) value
        target = far[rows]
        for _ in range(steps):
            mid = (lo_t + hi_t) / 2
            v = x + mid * (target - x)
            if P.integer[c]:
                v = np.where(target > x, np.ceil(v), np.floor(v))
            B = A[rows].copy()
            B[:, c] = v
            _, ok = _evaluate(P, B)
            hi_t = np.where(ok, mid, hi_t)
            lo_t = np.where(ok, lo_t, mid)
        v = x + hi_t * (target - x)
        if P.integer[c]:
            v = np.where(target > x, np.ceil(v), np.floor(v))
        A[rows, c] = v
    return A


MIN_SEPARATION = 0.1     # two counterfactuals closer than this (in distance units) count as the same


def _select(P: Problem, A: np.ndarray, k: int, diversity_weight: float) -> np.ndarray:
    if len(A) == 0:
        return np.zeros(0, dtype=np.intp)
    dist = feature_distance(P, A)
    chosen = [int(np.argmin(dist))]
    dmin = pairwise_distance(P, A, A[chosen])[:, 0]          # distance to the nearest chosen one
    while len(chosen) < min(k, len(A)):
        score = diversity_weight * dmin - dist
        score[chosen] = -np.inf
        score[dmin < MIN_SEPARATION] = -np.inf             # no (near-)duplicates
        j = int(np.argmax(score))
        if not np.isfinite(score[j]):
            break
        chosen.append(j)
        dmin = np.minimum(dmin, pairwise_distance(P, A, A[[j]])[:, 0])
    return np.array(chosen, dtype=np.intp)


def _distinct(A: np.ndarray) -> np.ndarray:
    """(len(A),) bool: the first occurrence of each distinct row."""
    return ~pd.DataFrame(A).duplicated().to_numpy() if len(A) else np.ones(0, bool)


def _dedup(A: np.ndarray) -> np.ndarray:
    return A[_distinct(A)]


def search(P: Problem, *, k: int, n_candidates: int, rounds: int, diversity_weight: float,
           rng: np.random.Generator, max_changes: int | None) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
    """Up to k valid, sparse, diverse counterfactuals and the model's outputs on them. Sparsification sends many candidates to the same
    few minimal changes; while fewer than k distinct ones are found, the search runs again with the
    features that most of the chosen ones change held fixed, so that alternatives use other features
    (at most 2 extra passes)."""
    t0 = time.perf_counter()
    fresh = "data_out" not in P.shared
    info: dict[str, Any] = {"data_rows_queried": len(P.data) if fresh else 0}
    V, O = _find(P, P.mutable, n_candidates=n_candidates, rounds=rounds, k=k, rng=rng, max_changes=max_changes,
                 info=info)
    sel = _select(P, V, k, diversity_weight)
    info["alternative_passes"] = 0
    mutable = P.mutable.copy()
    while 0 < len(sel) < k and info["alternative_passes"] < 2:
        used = feature_changes(P, V[sel]).sum(axis=0)
        mutable &= used < used.max()              # hold fixed the features most chosen ones change
        if not mutable.any():
            break
        info["alternative_passes"] += 1
        W, WO = _find(P, mutable, n_candidates=n_candidates, rounds=rounds, k=k - len(sel), rng=rng,
                      max_changes=max_changes, info={})
        if not len(W):
            break
        V, O = np.concatenate([V[sel], W]), np.concatenate([O[sel], WO])
        sel = _select(P, V, k, diversity_weight)
    info["seconds"] = time.perf_counter() - t0
    return V[sel], O[sel], info


def _find(P: Problem, mutable: np.ndarray, *, n_candidates: int, rounds: int, k: int, rng: np.random.Generator,
          max_changes: int | None, info: dict[str, Any]) -> tuple[np.ndarray, np.ndarray]:
    """Valid, sparsified and shrunk candidates that change only ``mutable`` features (distinct rows), and
    the model's outputs on them (from the final check)."""
    if mutable is not P.mutable:
        P = replace(P, mutable=mutable)
    data_out = data_outputs(P)
    good = P.is_valid(data_out)
    donors = P.data[good]
    info.setdefault("donors", int(good.sum()))
    if len(donors):
        # donors must satisfy the constraints on what they would bring in
        Dfull = np.repeat(P.x[None, :], len(donors), axis=0)
        mut_cols = np.concatenate([P.spec.groups[f] for f in np.flatnonzero(P.mutable)])
        Dfull[:, mut_cols] = donors[:, mut_cols]
        keep = respects(P, Dfull)
        donors = Dfull[keep]
    info.setdefault("usable_donors", int(len(donors)))
    pool = []
    n_mut = int(P.mutable.sum())
    size_max = 1
    limit = n_mut if max_changes is None else min(n_mut, max_changes)
    # no donor: candidates come from x itself (only the uniform values inside permitted ranges move)
    source = donors if len(donors) else P.x[None, :]
    dd = feature_distance(P, source)
    for r in range(rounds):
        A = _candidates(P, source, dd, n_candidates, size_max, rng)
        A = A[respects(P, A)]
        if len(A):
            A = np.unique(A, axis=0) if A.dtype != object else _dedup(A)
            _, ok = _evaluate(P, A)
            pool.append(A[ok])
        n_valid = sum(len(p) for p in pool)
        if n_valid >= 4 * k and size_max >= min(2, limit):
            break
        size_max = min(limit, size_max * 2 + 1)
    info.setdefault("rounds", r + 1)
    if not pool or sum(len(p) for p in pool) == 0:
        return np.empty((0, P.x.shape[0]), dtype=P.x.dtype), np.empty((0, data_out.shape[1]))
    V = np.concatenate(pool)
    V = V[np.argsort(feature_distance(P, V), kind="stable")[: max(8 * k, 32)]]
    V = _dedup(_sparsify(P, V))
    V = _shrink(P, V)
    out, ok = _evaluate(P, V)                     # final check with real queries
    keep = ok & respects(P, V)
    V, out = V[keep], out[keep]
    first = _distinct(V)
    return V[first], out[first]
