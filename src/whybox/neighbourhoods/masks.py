"""Binary (coalition) neighbourhoods: LIME, KernelSHAP, exact Shapley, occlusion."""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from math import comb

import numpy as np

from whybox.errors import InputError


def bernoulli(d: int, m: int, rng: np.random.Generator, *, p_on: float = 0.5) -> np.ndarray:
    """LIME's neighbourhood: the all-ones mask then m-1 masks with entries ~ Bernoulli(p_on)."""
    Z = rng.random((m, d)) < p_on
    Z[0] = True
    return Z


def lime_kernel(Z: np.ndarray, width: float) -> np.ndarray:
    """LIME's exponential kernel on the distance to the original, D = ||1 - z||_2:
    pi(z) = sqrt(exp(-D^2 / width^2)) (the form lime's LimeTabularExplainer uses)."""
    D2 = (~Z).sum(axis=1).astype(float)
    return np.sqrt(np.exp(-D2 / width ** 2))


@lru_cache(maxsize=8)
def all_coalitions(d: int) -> np.ndarray:
    """Every coalition, row c = the bits of integer c (2^d, d); cached and read-only."""
    codes = np.arange(2 ** d, dtype=np.int64)
    Z = ((codes[:, None] >> np.arange(d)) & 1).astype(bool)
    Z.setflags(write=False)
    return Z


def occlusion(d: int) -> np.ndarray:
    """One feature removed at a time: row i = 1 - e_i."""
    return ~np.eye(d, dtype=bool)


def shapley_size_mass(d: int) -> np.ndarray:
    """Total Shapley-kernel mass of each coalition size s = 1..d-1, proportional to (d-1)/(s(d-s))."""
    s = np.arange(1, d)
    q = (d - 1) / (s * (d - s))
    return q / q.sum()


@dataclass
class ShapleyDesign:
    """Coalitions and weights for KernelSHAP.

    Z (m, d), w (m,) — regression weights (they sum to one); ``pair_id`` (m,) labels the sampled
    antithetic pairs (z and 1-z share an id; -1 for enumerated coalitions, which carry no sampling
    variance); ``exact`` is True when every coalition was enumerated.
    """

    Z: np.ndarray
    w: np.ndarray
    pair_id: np.ndarray
    exact: bool
    n_enumerated: int


def shapley_kernel(d: int, m: float, rng: np.random.Generator, *, sample_cost: float = 1.0,
                   n_pairs: int | None = None) -> ShapleyDesign:
    """KernelSHAP's neighbourhood within a budget of ``m`` coalition-equivalents.

    A coalition evaluated on the whole background costs 1; a sampled coalition costs
    ``sample_cost`` (r/B when it is evaluated on r of the B background rows). Coalition sizes are
    visited in pairs (s, d-s) from the outside in; a pair of sizes is enumerated (on the whole
    background) when that costs no more than the share of the remaining budget that sampling would
    spend on those sizes (shap's rule when sample_cost = 1). The remaining budget is spent on
    antithetic pairs (z, 1-z) with sizes drawn in proportion to the kernel mass, each sampled
    coalition weighted equally so that the sampled part carries the remaining kernel mass. With
    m >= 2^d - 2 every coalition is enumerated and the result is exact. ``n_pairs`` draws that many
    sampled pairs instead of what the budget leaves (the enumeration is still the budget's): a longer
    list whose prefixes are designs of their own (see the Neyman allocation of KernelSHAP).
    """
    if d < 2:
        raise InputError("KernelSHAP needs at least 2 features (with one feature the value is f(x) - f(b))")
    total = 2 ** d - 2
    if m >= total:
        Z = all_coalitions(d)[1:-1]
        sizes = Z.sum(axis=1)
        w = (d - 1) / (np.array([comb(d, int(s)) for s in sizes]) * sizes * (d - sizes))
        return ShapleyDesign(Z, w / w.sum(), np.full(len(Z), -1), True, len(Z))
    q = shapley_size_mass(d)  # index s-1
    sizes_enum, remaining, remaining_mass = _enumerated(d, m)
    blocks, weights = [], []
    done = np.zeros(d + 1, dtype=bool)
    for size in sizes_enum:
        Zs = _all_of_size(d, size)
        blocks.append(Zs)
        weights.append(np.full(len(Zs), q[size - 1] / comb(d, size)))
        done[size] = True
    n_enum = sum(len(b) for b in blocks)
    pair_ids = [np.full(n_enum, -1)]
    n_pairs = int(remaining // (2 * sample_cost)) if n_pairs is None else int(n_pairs)
    if n_pairs > 0 and remaining_mass > 1e-12:
        free = np.array([s for s in range(1, d) if not done[s]])
        p = q[free - 1] / q[free - 1].sum()
        sizes = rng.choice(free, size=n_pairs, p=p)
        # a random subset of each size: the columns holding the `size` smallest of d random keys, found
        # as the keys at or below the size-th smallest (a sort of the keys, no argsort or scatter)
        Zp = _smallest(rng.random((n_pairs, d)), sizes)
        Zs = np.empty((2 * n_pairs, d), dtype=bool)
        Zs[0::2], Zs[1::2] = Zp, ~Zp
        blocks.append(Zs)
        weights.append(np.full(2 * n_pairs, remaining_mass / (2 * n_pairs)))
        pair_ids.append(np.repeat(np.arange(n_pairs), 2))
    if not blocks:
        raise InputError(f"KernelSHAP needs at least 2 coalitions, got n_samples={m}")
    Z = np.concatenate(blocks)
    w = np.concatenate(weights)
    return ShapleyDesign(Z, w / w.sum(), np.concatenate(pair_ids), False, n_enum)


def _smallest(keys: np.ndarray, sizes: np.ndarray) -> np.ndarray:
    """Boolean (n, d): row i marks the sizes[i] smallest of keys[i] (1 <= sizes[i] <= d). A row whose
    keys tie at its threshold (possible, if unlikely, for random doubles) is ranked instead, so every
    row marks exactly sizes[i] columns."""
    n = len(keys)
    thr = np.sort(keys, axis=1)[np.arange(n), sizes - 1]
    Z = keys <= thr[:, None]
    bad = np.flatnonzero(Z.sum(axis=1) != sizes)
    if len(bad):
        order = np.argsort(keys[bad], axis=1, kind="stable")
        fix = np.zeros((len(bad), keys.shape[1]), dtype=bool)
        np.put_along_axis(fix, order, np.arange(keys.shape[1])[None, :] < sizes[bad, None], axis=1)
        Z[bad] = fix
    return Z


def _enumerated(d: int, m: float) -> tuple[list[int], float, float]:
    """The sizes :func:`shapley_kernel` enumerates within a budget of m, in order, and the budget and
    kernel mass they leave to sampling."""
    q = shapley_size_mass(d)
    remaining_mass, remaining = 1.0, float(m)
    sizes: list[int] = []
    for s in range(1, d // 2 + 1):
        partner = d - s
        count = comb(d, s) * (1 if s == partner else 2)
        mass = q[s - 1] + (0.0 if s == partner else q[partner - 1])
        if remaining_mass <= 0 or remaining * mass / remaining_mass < count - 1e-9:
            break
        sizes += list({s, partner})                 # the order shapley_kernel has always used
        remaining -= count
        remaining_mass -= mass
    return sizes, remaining, remaining_mass


def sampled_pairs(d: int, m: float) -> int:
    """How many antithetic pairs :func:`shapley_kernel` samples within a budget of m (0 when it
    enumerates everything)."""
    if m >= 2 ** d - 2:
        return 0
    _, remaining, remaining_mass = _enumerated(d, m)
    return int(remaining // 2) if remaining_mass > 1e-12 else 0


def _all_of_size(d: int, s: int) -> np.ndarray:
    from itertools import combinations

    out = np.zeros((comb(d, s), d), dtype=bool)
    for r, idx in enumerate(combinations(range(d), s)):
        out[r, list(idx)] = True
    return out
