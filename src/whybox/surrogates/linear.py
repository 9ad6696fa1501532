"""Linear surrogates: weighted ridge (LIME, C-LIME), constrained weighted least squares (KernelSHAP),
the closed-form Shapley map (exact enumeration) and differences (occlusion)."""
from __future__ import annotations

from functools import lru_cache
from math import factorial

import numpy as np

from whybox.errors import InputError


def weighted_ridge(Z: np.ndarray, w: np.ndarray, Y: np.ndarray, *, alpha: float = 0.0,
                   intercept: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Fit y ~ c + Z beta by weighted ridge for every row of Y at once.

    Z (m, q) shared design, w (m,) weights, Y (n, m) targets. The intercept is not penalised (data
    centred with the weighted means, as scikit-learn's Ridge does). Returns beta (n, q), c (n,).
    """
    Z = np.asarray(Z, dtype=float)
    w = np.asarray(w, dtype=float)
    sw = w.sum()
    if intercept:
        zbar = (w @ Z) / sw
        Zc = Z - zbar
    else:
        zbar = np.zeros(Z.shape[1])
        Zc = Z
    A = (Zc * w[:, None]).T @ Zc + alpha * np.eye(Z.shape[1])
    try:
        L = np.linalg.solve(A, (Zc * w[:, None]).T)  # (q, m)
    except np.linalg.LinAlgError:
        L = np.linalg.pinv(A) @ (Zc * w[:, None]).T
    if np.linalg.matrix_rank(A) < A.shape[0]:
        L = np.linalg.pinv(A) @ (Zc * w[:, None]).T
    beta = Y @ L.T
    if intercept:
        ybar = (Y @ w) / sw
        c = ybar - beta @ zbar
    else:
        c = np.zeros(Y.shape[0])
    return beta, c


def kernelshap_wls(Z: np.ndarray, w: np.ndarray, Y: np.ndarray, y0: np.ndarray, y1: np.ndarray,
                   pair_id: np.ndarray | None = None, *, block: int = 256) -> tuple[np.ndarray, np.ndarray | None]:
    """KernelSHAP's constrained weighted least squares for every row of Y.

    minimise sum_i w_i (Y_i - y0 - z_i . phi)^2 subject to sum(phi) = y1 - y0.

    Standard errors come from the sandwich (influence-function) variance of the constrained WLS
    estimator, with each sampled antithetic pair as one independent unit (``pair_id`` >= 0);
    enumerated coalitions (``pair_id`` = -1) carry no sampling variance. Returns phi (n, d) and
    stderr (n, d) or None when nothing was sampled.
    """
    Z = np.asarray(Z, dtype=float)
    d = Z.shape[1]
    WZ = Z * w[:, None]
    A = Z.T @ WZ
    Ainv = np.linalg.pinv(A) if np.linalg.matrix_rank(A) < d else np.linalg.inv(A)
    one = np.ones(d)
    a1 = Ainv @ one
    denom = one @ a1
    C = Ainv - np.outer(a1, a1) / denom        # projected inverse
    delta = y1 - y0                            # (n,)
    b = (Y - y0[:, None]) @ WZ                 # (n, d)
    phi = b @ C.T + np.outer(delta, a1 / denom)
    if pair_id is None or (pair_id < 0).all():
        return phi, None
    sampled = pair_id >= 0
    ids = pair_id[sampled]
    n_pairs = int(ids.max()) + 1
    if n_pairs < 2:
        return phi, None
    var = _sandwich_variance(Z[sampled], w[sampled], ids, Y[:, sampled] - y0[:, None], phi, C, block=block)
    return phi, np.sqrt(np.maximum(var, 0.0))


def _pair_sum(U: np.ndarray, ids: np.ndarray) -> np.ndarray:
    """Sum the terms of each antithetic pair along axis -2 (pairs stored consecutively, or any order)."""
    k = int(ids.max()) + 1
    if len(ids) == 2 * k and (ids[0::2] == np.arange(k)).all() and (ids[1::2] == np.arange(k)).all():
        return U[..., 0::2, :] + U[..., 1::2, :]
    out = np.zeros(U.shape[:-2] + (k, U.shape[-1]))
    np.add.at(out, (slice(None),) * (U.ndim - 2) + (ids,), U)
    return out


def _sandwich_variance(Zs: np.ndarray, ws: np.ndarray, ids: np.ndarray, Yc: np.ndarray, phi: np.ndarray,
                       C: np.ndarray, *, block: int = 64, CZ: np.ndarray | None = None) -> np.ndarray:
    """Sandwich variance of constrained WLS with sampled pairs as independent units.

    Zs (ms, d) sampled coalitions, ws (ms,) weights, ids (ms,) pair ids, Yc (n, ms) centred outputs
    (Y - y0), phi (n, d) estimates, C (d, d) the projected inverse; ``CZ`` (ms, d), each coalition's
    weighted influence direction (C z_i) w_i, when the caller has it. Returns var (n, d)."""
    n_pairs = int(ids.max()) + 1
    var = np.empty_like(phi)
    Zf = np.asarray(Zs, dtype=float)
    if CZ is None:
        CZ = (Zf @ C.T) * ws[:, None]      # each coalition's influence direction C z_i, weighted
    for s in range(0, Yc.shape[0], block):
        R = Yc[s:s + block] - phi[s:s + block] @ Zf.T                 # residuals (nb, ms)
        G = _pair_sum(R[:, :, None] * CZ[None], ids)                # C u_k per pair (nb, n_pairs, d)
        G -= G.mean(axis=1, keepdims=True)
        var[s:s + block] = np.einsum("bkd,bkd->bd", G, G) * n_pairs / (n_pairs - 1)
    return var


def kernelshap_stratified(Z: np.ndarray, w: np.ndarray, pair_id: np.ndarray, perms: np.ndarray,
                          V: np.ndarray, y0: np.ndarray, y1: np.ndarray, weights: np.ndarray, *,
                          stderr_strata: np.ndarray | None = None, block: int = 16
                          ) -> tuple[np.ndarray, np.ndarray | None]:
    """Stratified KernelSHAP: one constrained WLS per background row b, averaged with its weight.

    Stratum b uses the base design with its features permuted, Z_b = Z[:, perms[b]], so each
    stratum sees its own coalitions while the regression algebra is computed once:
    A_b^-1 and the constraint projector are the base ones permuted. V (n, B, m) are the outputs of
    stratum b's coalitions on background row b, y0 (n, B) = f(b), y1 (n,) = f(x).
    Standard errors: sandwich variance per stratum (pairs as units), summed as
    Var(phi) = sum_b w_b^2 Var(phi_b); when ``stderr_strata`` lists a subset S of strata the sum is
    estimated as (B/|S|) sum_{b in S} w_b^2 Var(phi_b) (unbiased for a uniform random S).
    """
    Zf = np.asarray(Z, dtype=float)
    n, B, m = V.shape
    d = Zf.shape[1]
    WZ = Zf * w[:, None]
    A = Zf.T @ WZ
    Ainv = np.linalg.pinv(A) if np.linalg.matrix_rank(A) < d else np.linalg.inv(A)
    a1 = Ainv.sum(axis=1)
    denom = a1.sum()
    C = Ainv - np.outer(a1, a1) / denom
    Yc = V - y0[:, :, None]                                      # (n, B, m)
    T = Yc @ WZ                                                  # (n, B, d) in permuted coordinates
    Phi_p = T @ C.T + (y1[:, None] - y0)[:, :, None] * (a1 / denom)[None, None, :]
    # back to feature coordinates: feature j of stratum b is base column perms[b, j]
    Phi = np.take_along_axis(Phi_p, np.broadcast_to(perms[None], (n, B, d)), axis=2)
    phi = np.einsum("nbd,b->nd", Phi, weights)
    sampled = pair_id >= 0
    if not sampled.any() or int(pair_id.max()) < 1:
        return phi, None
    strata = np.arange(B) if stderr_strata is None else np.asarray(stderr_strata)
    ids = pair_id[sampled]
    Zs, ws = Zf[sampled], w[sampled]
    CZ = (Zs @ C.T) * ws[:, None]                               # the same for every stratum
    var = np.zeros((n, d))
    for b in strata:
        vb = _sandwich_variance(Zs, ws, ids, Yc[:, b, sampled], Phi_p[:, b], C, block=block, CZ=CZ)
        var += weights[b] ** 2 * np.take_along_axis(vb, np.broadcast_to(perms[b], vb.shape), axis=1)
    var *= B / len(strata)
    return phi, np.sqrt(np.maximum(var, 0.0))


@lru_cache(maxsize=8)
def shapley_matrix(d: int) -> np.ndarray:
    """The linear map L (d, 2^d) with phi = L @ v for a game v given on all coalitions (row c of
    :func:`~whybox.neighbourhoods.masks.all_coalitions`): phi_j = sum_{S not containing j}
    |S|!(d-|S|-1)!/d! (v(S+j) - v(S))."""
    if d > 20:
        raise InputError(f"exact Shapley over {d} features would need 2^{d} coalitions")
    codes = np.arange(2 ** d, dtype=np.int64)
    bits = (codes[:, None] >> np.arange(d)) & 1
    size = bits.sum(axis=1)
    wt = np.array([factorial(s) * factorial(d - s - 1) / factorial(d) for s in range(d)] + [0.0])
    # coalition contains j: + w(|c|-1); does not contain j: - w(|c|)
    L = np.where(bits.T == 1, wt[np.maximum(size - 1, 0)][None, :], -wt[size][None, :])
    L.setflags(write=False)   # cached: shared by every call with this d
    return L
