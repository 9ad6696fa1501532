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


def _inverse(A: np.ndarray) -> np.ndarray:
    """A^-1 for a symmetric positive semi-definite A, the pseudo-inverse when A is rank-deficient.
    A Cholesky factorisation and a 1-norm condition number below 1e12 vouch for the inverse (a few
    tens of microseconds at d = 30); otherwise the rank is counted from the singular values
    (numpy's matrix_rank) and a deficient A gets the pseudo-inverse."""
    try:
        np.linalg.cholesky(A)
        Ainv = np.linalg.inv(A)
        if np.abs(A).sum(axis=0).max() * np.abs(Ainv).sum(axis=0).max() < 1e12:
            return Ainv
    except np.linalg.LinAlgError:
        pass
    return np.linalg.pinv(A) if np.linalg.matrix_rank(A) < A.shape[0] else np.linalg.inv(A)


def _constrained(A: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For the normal matrix A of a KernelSHAP design: the projected inverse C and the direction a of
    the efficiency constraint, phi = C b + (y1 - y0) a."""
    Ainv = _inverse(A)
    a1 = Ainv.sum(axis=1)
    denom = a1.sum()
    return Ainv - np.outer(a1, a1) / denom, a1 / denom


def kernelshap_wls(Z: np.ndarray, w: np.ndarray, Y: np.ndarray, y0: np.ndarray, y1: np.ndarray,
                   pair_id: np.ndarray | None = None, *, block: int = 256, control: bool = False
                   ) -> tuple[np.ndarray, np.ndarray | None]:
    """KernelSHAP's constrained weighted least squares for every row of Y.

    minimise sum_i w_i (Y_i - y0 - z_i . phi)^2 subject to sum(phi) = y1 - y0.

    Standard errors come from the sandwich (influence-function) variance of the constrained WLS
    estimator, with each sampled antithetic pair as one independent unit (``pair_id`` >= 0);
    enumerated coalitions (``pair_id`` = -1) carry no sampling variance. Returns phi (n, d) and
    stderr (n, d) or None when nothing was sampled.
    """
    Z = np.asarray(Z, dtype=float)
    WZ = Z * w[:, None]
    A = Z.T @ WZ
    C, a = _constrained(A)                     # projected inverse, constraint direction
    Yc = Y - y0[:, None]
    b = Yc @ WZ                                # (n, d)
    phi = b @ C.T + np.outer(y1 - y0, a)
    fit = phi                                  # the fit whose residuals the sandwich takes
    if control:
        phi, g, (H,), KH = cubic_control([(Z, WZ, w, Yc)], A, C, a, b, phi)
        Yc, fit = Yc - g[:, None] * H, fit - g[:, None] * KH
    if pair_id is None or (pair_id < 0).all():
        return phi, None
    sampled = pair_id >= 0
    ids = pair_id[sampled]
    n_pairs = int(ids.max()) + 1
    if n_pairs < 2:
        return phi, None
    var = _sandwich_variance(Z[sampled], w[sampled], ids, Yc[:, sampled], fit, C, block=block)
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
    weighted influence direction (C z_i) w_i, when the caller has it. Returns var (n, d): the sample
    variance over pairs of G_k = sum_{i in pair k} r_i C z_i w_i, times the number of pairs.

    When each pair is stored as two consecutive rows (the designs of
    :func:`~whybox.neighbourhoods.masks.shapley_kernel`), G_k = a_k u_k + b_k v_k with residuals
    (a_k, b_k) and directions (u_k, v_k), so sum_k G_k and sum_k G_k^2 are five matrix products:
    no (rows x pairs x d) array."""
    n_pairs = int(ids.max()) + 1
    Zf = np.asarray(Zs, dtype=float)
    consecutive = (len(ids) == 2 * n_pairs and (ids[0::2] == np.arange(n_pairs)).all()
                   and (ids[1::2] == ids[0::2]).all())
    if CZ is None and consecutive and Yc.shape[0] <= 2:
        return _sandwich_gram(Zf, ws, Yc, phi, C, n_pairs)
    if CZ is None:
        CZ = (Zf @ C.T) * ws[:, None]      # each coalition's influence direction C z_i, weighted
    scale = n_pairs / (n_pairs - 1)
    if consecutive:
        R = Yc - phi @ Zf.T                                          # residuals (n, ms)
        a, b, u, v = R[:, 0::2], R[:, 1::2], CZ[0::2], CZ[1::2]
        s1 = a @ u + b @ v                                           # sum_k G_k (n, d)
        s2 = (a * a) @ (u * u) + 2.0 * ((a * b) @ (u * v)) + (b * b) @ (v * v)
        return (s2 - s1 * s1 / n_pairs) * scale
    var = np.empty_like(phi)
    for s in range(0, Yc.shape[0], block):
        R = Yc[s:s + block] - phi[s:s + block] @ Zf.T                 # residuals (nb, ms)
        G = _pair_sum(R[:, :, None] * CZ[None], ids)                # C u_k per pair (nb, n_pairs, d)
        G -= G.mean(axis=1, keepdims=True)
        var[s:s + block] = np.einsum("bkd,bkd->bd", G, G) * scale
    return var


def _sandwich_gram(Zf: np.ndarray, ws: np.ndarray, Yc: np.ndarray, phi: np.ndarray, C: np.ndarray,
                   n_pairs: int) -> np.ndarray:
    """:func:`_sandwich_variance` for a few rows on consecutive pairs, without the (pairs, d) influence
    directions: G_k = C g_k with g_k = a_k w_2k z_2k + b_k w_2k+1 z_2k+1, so sum_k G_k = C sum_k g_k
    and sum_k G_k^2 = diag(C S C') with S = sum_k g_k g_k' — one (pairs x d) pass and one d x d Gram
    per row instead of a (pairs x d) x (d x d) product shared by the rows."""
    out = np.empty_like(phi)
    WZ = Zf * ws[:, None]
    for i in range(Yc.shape[0]):
        r = Yc[i] - Zf @ phi[i]                                      # residuals (ms,)
        g = WZ[0::2] * r[0::2, None] + WZ[1::2] * r[1::2, None]      # (pairs, d)
        S = g.T @ g
        s1 = C @ g.sum(axis=0)
        s2 = ((C @ S) * C).sum(axis=1)                              # diag(C S C')
        out[i] = (s2 - s1 * s1 / n_pairs) * (n_pairs / (n_pairs - 1))
    return out


def kernelshap_stratified(Z: np.ndarray, w: np.ndarray, pair_id: np.ndarray, perms: np.ndarray,
                          V: np.ndarray, y0: np.ndarray, y1: np.ndarray, weights: np.ndarray, *,
                          stderr_strata: np.ndarray | None = None, block: int = 16, control: bool = False
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
    C, a = _constrained(A)
    Yc = V - y0[:, :, None]                                      # (n, B, m)
    T = Yc @ WZ                                                  # (n, B, d) in permuted coordinates
    Phi_p = T @ C.T + (y1[:, None] - y0)[:, :, None] * a[None, None, :]
    adjust = None
    if control:
        out, g, (H,), KH = cubic_control([(Zf, WZ, w, Yc.reshape(n * B, m))], A, C, a, T.reshape(n * B, d),
                                         Phi_p.reshape(n * B, d))
        adjust = (Phi_p, g.reshape(n, B, 1), H.reshape(n, B, m), KH.reshape(n, B, d))
        Phi_p = out.reshape(n, B, d)
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
    S = len(strata)                                             # every stratum's rows in one call
    Ys, fit = Yc[:, strata][:, :, sampled], Phi_p[:, strata]
    if adjust is not None:                      # the adjusted fit's residuals (see cubic_control)
        plain, g, H, KH = adjust
        g = g[:, strata]
        Ys, fit = Ys - g * H[:, strata][:, :, sampled], plain[:, strata] - g * KH[:, strata]
    vb = _sandwich_variance(Zs, ws, ids, Ys.reshape(n * S, -1), fit.reshape(n * S, d), C, block=block,
                            CZ=CZ).reshape(n, S, d)
    vb = np.take_along_axis(vb, np.broadcast_to(perms[strata][None], vb.shape), axis=2)   # feature coordinates
    var = np.einsum("nsd,s->nd", vb, weights[strata] ** 2) * (B / S)
    return phi, np.sqrt(np.maximum(var, 0.0))


# ------------------------------------------------------------ the cubic-index control variate
CONTROL_VARIATES = ("cubic", "none")


def cubic_index_shapley(A: np.ndarray) -> np.ndarray:
    """Shapley values of the coalition game h(z) = (sum_j A_j (z_j - 1/2))^3, for each row of A (..., d).

    With u_j = z_j - 1/2 = +-1/2, u_j^2 = 1/4, so h is multilinear: h = sum_j c_j u_j + 6 sum_{i<j<k}
    A_i A_j A_k u_i u_j u_k with c_j = A_j (3 S2 - 2 A_j^2) / 4 (S2 = sum A^2). A linear term goes to its
    own player; u_i u_j u_k moves from -1/8 to 1/8 and, symmetric in its three players, gives each a
    third: phi_j = c_j + (A_j / 2) e2(A without j), e2 the second elementary symmetric polynomial."""
    A = np.asarray(A, dtype=float)
    S1 = A.sum(axis=-1, keepdims=True)
    S2 = (A * A).sum(axis=-1, keepdims=True)
    s1, s2 = S1 - A, S2 - A * A
    return A * (3.0 * S2 - 2.0 * A * A) / 4.0 + A * (s1 * s1 - s2) / 4.0


def cubic_control(blocks: list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]], A: np.ndarray,
                  C: np.ndarray, a: np.ndarray, b: np.ndarray, phi: np.ndarray
                  ) -> tuple[np.ndarray, np.ndarray, list[np.ndarray], np.ndarray]:
    """KernelSHAP with one more regressor whose Shapley values are known: the cubic of the fit's own
    index, h(z) = (sum_j alpha_j (z_j - 1/2))^3 with alpha = phi / ||phi||_1.

    The constrained WLS of the outputs on [z, h] has, by Frisch-Waugh, the estimate
    phi + gamma (phi(h) - KS(h)), where KS(h) is the plain estimate's own fit of h, phi(h) h's exact
    Shapley values (:func:`cubic_index_shapley`) and gamma the weighted regression of the plain fit's
    residuals on h's residuals. Its Shapley values are the surrogate's, phi(v^) = phi + gamma phi(h),
    and since the kernel-weighted additive projection of that surrogate is the outputs' own, the
    estimator is consistent for the Shapley values, exact on additive games (zero residuals: gamma = 0),
    keeps sum(phi) = f(x) - f(b) (KS(h) and phi(h) both sum to h(1) - h(0)) and is unchanged on games
    that are even about the centre of the cube (h's residuals are odd, their weighted product over a
    paired design vanishes). It removes the third-order, single-index part of the residual, what a
    smooth link of nearly additive effects (a probability, a saturating score) leaves.

    ``blocks``: (Z (m_k, d), WZ = Z * w, w (m_k,), Yc (r, m_k) outputs minus f(b)) for each part of the
    design; A the design's normal matrix sum_i w_i z_i z_i', (C, a) its constrained algebra, b (r, d) =
    sum_k Yc_k @ WZ_k and phi (r, d) the plain estimate. Returns the adjusted estimate, gamma (r,),
    h - h(0) on each block and KS(h): the residuals of the adjusted fit are
    (Yc - gamma H) - (phi - gamma KS(h)) z (for the sandwich variance). The residual products come
    from the normal matrix, not from the (r, m) residuals themselves."""
    scale = np.abs(phi).sum(axis=1)
    alpha = phi / np.where(scale > 0, scale, 1.0)[:, None]
    S1 = alpha.sum(axis=1)
    h0 = -S1 ** 3 / 8.0                                        # h at the empty coalition
    Hs, bH = [], np.zeros_like(phi)
    yh = hh = 0.0
    for Z, WZ, w, Yc in blocks:
        t = alpha @ Z.T
        t -= S1[:, None] / 2.0
        H = t * t                                               # (not ** 3: numpy's power is 30x slower)
        H *= t
        H -= h0[:, None]
        Hs.append(H)
        bH += H @ WZ
        yh = yh + np.multiply(Yc, H, out=t) @ w                 # t's buffer reused: no page faults
        hh = hh + np.multiply(H, H, out=t) @ w
    KH = bH @ C.T + np.outer(S1 ** 3 / 4.0, a)                  # h(1) - h(0) = S1^3 / 4
    AK = KH @ A
    num = yh - (KH * b).sum(1) - (phi * bH).sum(1) + (phi * AK).sum(1)      # <r_v, r_h>_w
    den = hh - 2.0 * (KH * bH).sum(1) + (KH * AK).sum(1)                    # <r_h, r_h>_w
    ok = den > 1e-9 * hh                     # h (nearly) additive: d = 2, or one dominant feature
    gamma = np.where(ok, num / np.where(ok, den, 1.0), 0.0)
    out = phi + gamma[:, None] * (cubic_index_shapley(alpha) - KH)
    return out, gamma, Hs, KH


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


# ------------------------------------------------------------ KernelSHAP with Neyman allocation
class PrefixDesigns:
    """The designs [enumerated block; the first n sampled pairs of one long list]: each a KernelSHAP
    design of its own (its pairs weighted equally, together carrying the
    kernel mass the enumeration leaves), with its regression algebra computed once per n.

    Z (e + 2 n_max, d) base coalitions in base-feature coordinates, pairs consecutive after the
    enumerated ones; w_enum (e,) the enumerated coalitions' weights (the Shapley-kernel mass of each)."""

    def __init__(self, Z: np.ndarray, w_enum: np.ndarray):
        self.Zf = np.asarray(Z, dtype=float)
        self.e = e = len(w_enum)
        self.we = np.asarray(w_enum, dtype=float)
        self.rest = max(0.0, 1.0 - float(self.we.sum()))            # the sampled pairs' kernel mass
        self.WZe = self.Zf[:e] * self.we[:, None]
        self.Ge = self.Zf[:e].T @ self.WZe
        self._gram = {0: np.zeros_like(self.Ge)}                     # pairs' Gram matrix of each prefix
        self._alg: dict[int, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}    # C, a and the normal matrix

    def pair_weight(self, n: int) -> float:
        return self.rest / (2 * n)

    def algebra(self, n: int) -> tuple[np.ndarray, np.ndarray]:
        """(C, a) of the design with n pairs."""
        if n not in self._alg:
            below = max(k for k in self._gram if k <= n)
            P = self.Zf[self.e + 2 * below:self.e + 2 * n]
            self._gram[n] = self._gram[below] + P.T @ P
            A = self.Ge + self.pair_weight(n) * self._gram[n]
            self._alg[n] = (*_constrained(A), A)
        C, a, _ = self._alg[n]
        return C, a

    def solve(self, n: int, Ye: np.ndarray, Yp: np.ndarray, y0: np.ndarray, y1: np.ndarray,
              variance: bool | np.ndarray, control: bool = False) -> tuple[np.ndarray, np.ndarray | None]:
        """Strata with n pairs each: Ye (r, e) and Yp (r, 2n) the outputs of r (row, stratum) pairs, y0
        (r,) = f(b), y1 (r,) = f(x) -> phi (r, d) in base coordinates and the sandwich variance of the
        rows ``variance`` selects (True: all; a boolean mask (r,): those), or None; ``control``: with
        the cubic-index control variate (:func:`cubic_control`)."""
        C, a = self.algebra(n)
        P = self.Zf[self.e:self.e + 2 * n]
        wp = self.pair_weight(n)
        Yce, Ycp = Ye - y0[:, None], Yp - y0[:, None]
        b = Yce @ self.WZe + wp * (Ycp @ P)
        phi = b @ C.T + np.outer(y1 - y0, a)
        fit = phi
        if control:
            wpv = np.full(2 * n, wp)
            phi, g, (_, Hp), KH = cubic_control([(self.Zf[:self.e], self.WZe, self.we, Yce), (P, wp * P, wpv, Ycp)],
                                                self._alg[n][2], C, a, b, phi)
        sel = np.full(len(phi), bool(variance)) if np.ndim(variance) == 0 else np.asarray(variance, bool)
        if n < 2 or not sel.any():
            return phi, None
        ids = np.repeat(np.arange(n), 2)
        if control:                              # the adjusted fit's residuals, on the rows asked for
            return phi, _sandwich_variance(P, wpv, ids, Ycp[sel] - g[sel, None] * Hp[sel],
                                           fit[sel] - g[sel, None] * KH[sel], C)
        return phi, _sandwich_variance(P, np.full(2 * n, wp), ids, Ycp[sel], fit[sel], C)


def neyman_pairs(sd: np.ndarray, weights: np.ndarray, n0: int, total: int, cap: int, step: int) -> np.ndarray:
    """Pairs per stratum minimising sum_b w_b^2 sd_b^2 / n_b subject to sum_b n_b <= total, n0 <= n_b <=
    cap, n_b a multiple of step: Neyman's allocation n_b proportional to w_b sd_b (Neyman, 1934),
    clipped, rounded down to the step, and the steps that rounding leaves given one each to the strata
    where one more step lowers the variance most."""
    s = np.asarray(weights, float) * np.asarray(sd, float)
    B = len(s)
    if total <= n0 * B or not (s > 0).any():
        return np.full(B, n0, dtype=np.int64)
    lo, hi = 0.0, cap / s[s > 0].min()
    for _ in range(100):
        lam = (lo + hi) / 2
        if np.clip(lam * s, n0, cap).sum() > total:
            hi = lam
        else:
            lo = lam
    n = np.maximum(n0, (np.clip(lo * s, n0, cap) // step * step).astype(np.int64))
    left = (total - int(n.sum())) // step
    if left > 0:
        gain = np.where(n + step <= cap, s ** 2 / (n * (n + step)), -1.0)
        top = np.argsort(-gain, kind="stable")[:left]
        n[top[gain[top] > 0]] += step
    return n
