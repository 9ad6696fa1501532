"""Linear surrogates: weighted ridge (LIME, C-LIME), constrained weighted least squares (KernelSHAP),
the closed-form Shapley map (exact enumeration) and differences (occlusion)."""
from __future__ import annotations

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
    Zs, ws = Z[sampled], w[sampled]
    # pair-membership matrix: sums each pair's two terms
    P = np.zeros((n_pairs, len(ids)))
    P[ids, np.arange(len(ids))] = 1.0
    var = np.empty_like(phi)
    for s in range(0, Y.shape[0], block):
        R = Y[s:s + block][:, sampled] - y0[s:s + block, None] - phi[s:s + block] @ Zs.T  # residuals (nb, ms)
        U = np.einsum("km,bm,md->bkd", P, R * ws, Zs)   # per-pair influence terms (nb, n_pairs, d)
        U -= U.mean(axis=1, keepdims=True)
        G = U @ C.T
        var[s:s + block] = (G ** 2).sum(axis=1) * n_pairs / (n_pairs - 1)
    return phi, np.sqrt(np.maximum(var, 0.0))


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
    return L
