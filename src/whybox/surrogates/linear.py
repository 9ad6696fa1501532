"""Linear surrogates: weighted ridge (LIME, C-LIME), constrained weighted least squares (KernelSHAP),
the closed-form Shapley map (exact enumeration) and differences (occlusion)."""
from __future__ import annotations

from bisect import bisect_right, insort
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
    """A^-1 for a symmetric positive semi-definite A (or a stack (L, d, d) of them), the pseudo-inverse
    when A is rank-deficient. A Cholesky factorisation and a 1-norm condition number below 1e12 vouch
    for the inverse (a few tens of microseconds at d = 30); otherwise the rank is counted from the
    singular values (numpy's matrix_rank) and a deficient A gets the pseudo-inverse."""
    if A.ndim == 3:
        good = np.zeros(len(A), bool)
        try:
            np.linalg.cholesky(A)
            out = np.linalg.inv(A)
            good = np.abs(A).sum(axis=1).max(axis=1) * np.abs(out).sum(axis=1).max(axis=1) < 1e12
        except np.linalg.LinAlgError:
            out = np.empty_like(A)
        for j in np.flatnonzero(~good):
            out[j] = _inverse(A[j])
        return out
    try:
        np.linalg.cholesky(A)
        Ainv = np.linalg.inv(A)
        if np.abs(A).sum(axis=0).max() * np.abs(Ainv).sum(axis=0).max() < 1e12:
            return Ainv
    except np.linalg.LinAlgError:
        pass
    return np.linalg.pinv(A) if np.linalg.matrix_rank(A) < A.shape[0] else np.linalg.inv(A)


def _constrained(A: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For the normal matrix A of a KernelSHAP design (or a stack of them): the projected inverse C and
    the direction a of the efficiency constraint, phi = C b + (y1 - y0) a."""
    Ainv = _inverse(A)
    a1 = Ainv.sum(axis=-1)
    denom = a1.sum(axis=-1)[..., None]
    return Ainv - a1[..., :, None] * a1[..., None, :] / denom[..., None], a1 / denom


def _consecutive_pairs(ids: np.ndarray) -> bool:
    """Pair ids 0, 0, 1, 1, 2, 2, ...: every pair stored as two consecutive rows."""
    k = len(ids) // 2
    return len(ids) == 2 * k and (ids[0::2] == np.arange(k)).all() and (ids[1::2] == ids[0::2]).all()


def _cubic_blocks(Z: np.ndarray, w: np.ndarray, WZ: np.ndarray, Yc: np.ndarray, pair_id: np.ndarray | None
                  ) -> list:
    """A KernelSHAP design as :class:`CubicBlock` parts: [enumerated; sampled pairs] when the pairs
    follow the enumeration two rows each (z, 1 - z, one weight for all); else one general block."""
    if pair_id is not None:
        e = int((pair_id < 0).sum())
        if (len(pair_id) > e and (pair_id[:e] < 0).all() and _consecutive_pairs(pair_id[e:])
                and (Z[e::2] + Z[e + 1::2] == 1).all() and (w[e:] == w[e]).all()):
            blocks = [CubicBlock(Z[e:], w[e:], Yc[:, e:], paired=True)]
            if e:
                blocks.insert(0, CubicBlock(Z[:e], w[:e], Yc[:, :e], WZ=WZ[:e]))
            return blocks
    return [CubicBlock(Z, w, Yc, WZ=WZ)]


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
    if control:
        cf = cubic_control(_cubic_blocks(Z, w, WZ, Yc, pair_id), A, C, a, b, phi)
        phi = cf.phi
    if pair_id is None or (pair_id < 0).all():
        return phi, None
    sampled = pair_id >= 0
    ids = pair_id[sampled]
    n_pairs = int(ids.max()) + 1
    if n_pairs < 2:
        return phi, None
    Ys, fit, cv = cf.sampled_residual_data(sampled) if control else (Yc[:, sampled], phi, None)
    var = _sandwich_variance(Z[sampled], w[sampled], ids, Ys, fit, C, block=block, control=cv)
    return phi, np.sqrt(np.maximum(var, 0.0))


def _pair_sum(U: np.ndarray, ids: np.ndarray) -> np.ndarray:
    """Sum the terms of each antithetic pair along axis -2 (pairs stored consecutively, or any order)."""
    k = int(ids.max()) + 1
    if len(ids) == 2 * k and _consecutive_pairs(ids):
        return U[..., 0::2, :] + U[..., 1::2, :]
    out = np.zeros(U.shape[:-2] + (k, U.shape[-1]))
    np.add.at(out, (slice(None),) * (U.ndim - 2) + (ids,), U)
    return out


def _sandwich_variance(Zs: np.ndarray, ws: np.ndarray, ids: np.ndarray, Yc: np.ndarray, phi: np.ndarray,
                       C: np.ndarray, *, block: int = 64, CZ: np.ndarray | None = None,
                       control: tuple[np.ndarray, np.ndarray] | None = None) -> np.ndarray:
    """Sandwich variance of constrained WLS with sampled pairs as independent units.

    Zs (ms, d) sampled coalitions, ws (ms,) weights, ids (ms,) pair ids, Yc (n, ms) centred outputs
    (Y - y0), phi (n, d) estimates, C (d, d) the projected inverse; ``CZ`` (ms, d), each coalition's
    weighted influence direction (C z_i) w_i, when the caller has it. Returns var (n, d): the sample
    variance over pairs of G_k = sum_{i in pair k} r_i C z_i w_i, times the number of pairs.

    When each pair is stored as two consecutive rows (the designs of
    :func:`~whybox.neighbourhoods.masks.shapley_kernel`), G_k = a_k u_k + b_k v_k with residuals
    (a_k, b_k) and directions (u_k, v_k), so sum_k G_k and sum_k G_k^2 are five matrix products:
    no (rows x pairs x d) array.

    ``control`` (delta (n, d), h~ (n, ms)), for the cubic control variate's adjusted fit
    (:meth:`CubicFit.sampled_residual_data`): its coefficient gamma is estimated from the same pairs, and
    the estimate moves by delta <r, r_h>_w for a change of the residual products, so each coalition's
    influence is r_i w_i (C z_i + delta h~_i) — without that term the variance treats gamma as fixed and
    understates it where few pairs estimate it (one stratum's game, a small budget)."""
    n_pairs = int(ids.max()) + 1
    Zf = np.asarray(Zs, dtype=float)
    consecutive = len(ids) == 2 * n_pairs and _consecutive_pairs(ids)
    if CZ is None and consecutive and Yc.shape[0] <= 2 and control is None:
        if ((ws[0::2] == ws[1::2]).all() and np.abs(C.sum(axis=1)).max() <= 1e-12 * np.abs(C).max()
                and (Zf[0::2] + Zf[1::2] == 1.0).all()):
            return _sandwich_gram_complements(Zf[0::2], ws[0::2], Yc, phi, C, n_pairs)
        return _sandwich_gram(Zf, ws, Yc, phi, C, n_pairs)
    if CZ is None:
        CZ = (Zf @ C.T) * ws[:, None]      # each coalition's influence direction C z_i, weighted
    scale = n_pairs / (n_pairs - 1)
    if consecutive:
        R = Yc - phi @ Zf.T                                          # residuals (n, ms)
        a, b, u, v = R[:, 0::2], R[:, 1::2], CZ[0::2], CZ[1::2]
        s1 = a @ u + b @ v                                           # sum_k G_k (n, d)
        s2 = (a * a) @ (u * u) + 2.0 * ((a * b) @ (u * v)) + (b * b) @ (v * v)
        if control is not None:                                      # G_k += delta q_k, q_k = sum_pair r w h~
            delta, Ht = control
            q = a * (ws[0::2] * Ht[:, 0::2]) + b * (ws[1::2] * Ht[:, 1::2])
            s1 += delta * q.sum(axis=1)[:, None]
            s2 += 2.0 * delta * ((a * q) @ u + (b * q) @ v) + delta * delta * (q * q).sum(axis=1)[:, None]
        return (s2 - s1 * s1 / n_pairs) * scale
    var = np.empty_like(phi)
    for s in range(0, Yc.shape[0], block):
        R = Yc[s:s + block] - phi[s:s + block] @ Zf.T                 # residuals (nb, ms)
        G = _pair_sum(R[:, :, None] * CZ[None], ids)                # C u_k per pair (nb, n_pairs, d)
        if control is not None:
            q = _pair_sum((R * ws * control[1][s:s + block])[:, :, None], ids)      # (nb, n_pairs, 1)
            G += q * control[0][s:s + block, None, :]
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


def _sandwich_gram_complements(Z1: np.ndarray, w1: np.ndarray, Yc: np.ndarray, phi: np.ndarray, C: np.ndarray,
                               n_pairs: int) -> np.ndarray:
    """:func:`_sandwich_gram` when pair k is (z_k, 1 - z_k) with one weight w_k and C 1 = 0 (the
    constrained projected inverse): G_k = C (a_k w_k z_k + b_k w_k (1 - z_k)) = w_k (a_k - b_k) C z_k,
    and a_k - b_k = (y(z_k) - y(1 - z_k)) - (2 z_k - 1).phi. So the Gram runs over the first coalition
    of each pair, weighted by w_k (a_k - b_k): half the rows and no second residual. Z1 (pairs, d) the
    first coalitions, w1 (pairs,) their weights."""
    out = np.empty_like(phi)
    for i in range(Yc.shape[0]):
        q = Yc[i, 0::2] - Yc[i, 1::2]
        q -= 2.0 * (Z1 @ phi[i]) - phi[i].sum()                     # a_k - b_k
        q *= w1
        g = Z1 * q[:, None]                                         # (pairs, d)
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
    cf = None
    if control:
        cf = cubic_control(_cubic_blocks(Zf, w, WZ, Yc.reshape(n * B, m), pair_id), A, C, a,
                           T.reshape(n * B, d), Phi_p.reshape(n * B, d))
        Phi_p = cf.phi.reshape(n, B, d)
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
    if cf is not None:                          # the adjusted fit's residuals (see cubic_control)
        Ys, fit, cv = cf.sampled_residual_data(sampled, (np.arange(n)[:, None] * B + strata[None]).reshape(-1))
    else:
        Ys, fit, cv = Yc[:, strata][:, :, sampled].reshape(n * S, -1), Phi_p[:, strata].reshape(n * S, d), None
    vb = _sandwich_variance(Zs, ws, ids, Ys, fit, C, block=block, CZ=CZ, control=cv).reshape(n, S, d)
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


class CubicBlock:
    """One part of a design for :func:`cubic_control`: coalitions Z (m, d) with weights w (m,) and the
    outputs minus f(b), Yc (r, m). ``paired``: rows 2k and 2k + 1 are z and 1 - z with equal weights
    (the sampled pairs, all of one weight), so h there is t^3 - h(0) and -t^3 - h(0) and only the first
    of each pair is computed; WZ = Z * w when the caller has it."""

    def __init__(self, Z: np.ndarray, w: np.ndarray, Yc: np.ndarray, *, paired: bool = False,
                 WZ: np.ndarray | None = None):
        if paired and len(w) and not (w == w[0]).all():
            raise InputError("a paired block's coalitions must share one weight")
        self.Z, self.w, self.Yc, self.paired = Z, w, Yc, paired
        self.WZ = Z * w[:, None] if WZ is None and not paired else WZ
        self._U: np.ndarray | None = None

    def first_centred(self) -> np.ndarray:
        """z - 1/2 for the first coalition of each pair (contiguous; computed once)."""
        if self._U is None:
            self._U = np.ascontiguousarray(self.Z[0::2], dtype=float) - 0.5
        return self._U


class CubicFit:
    """The result of :func:`cubic_control`: ``phi`` the adjusted estimate, ``gamma`` (r,) the control's
    coefficient, ``KH`` (r, d) the plain estimator's fit of h; :meth:`sampled_residual_data` gives what
    the sandwich variance needs."""

    def __init__(self, phi, gamma, KH, plain, h0, blocks, t3, delta):
        self.phi, self.gamma, self.KH, self.delta = phi, gamma, KH, delta
        self._plain, self._h0, self._blocks, self._t3 = plain, h0, blocks, t3

    def sampled_residual_data(self, sampled: np.ndarray | None = None, rows: np.ndarray | slice = slice(None)
                              ) -> tuple[np.ndarray, np.ndarray, tuple[np.ndarray, np.ndarray]]:
        """(Yc - gamma h, phi_plain - gamma KS(h), (delta, h~)) on ``rows`` and the sampled coalitions:
        the adjusted fit's residuals there are the first minus the second times z, and the control's
        share of each coalition's influence is delta w r h~ (see :func:`_sandwich_variance`), with
        h~ = h - h(0) - z.KS(h) h's residual on the plain fit and delta = (phi(h) - KS(h)) / <r_h, r_h>_w.
        With a paired last block (the sampled pairs) its columns are the sampled ones; else ``sampled``
        picks them from the one block."""
        g, h0 = self.gamma[rows][:, None], self._h0[rows][:, None]
        block, t3 = self._blocks[-1], self._t3[-1][rows]
        if block.paired:
            H = np.empty((t3.shape[0], 2 * t3.shape[1]))
            np.subtract(t3, h0, out=H[:, 0::2])
            np.subtract(-t3, h0, out=H[:, 1::2])
            Ys = block.Yc[rows] - g * H
            Zs = block.Z
        else:
            H = (t3 - h0)[:, sampled]
            Ys = block.Yc[rows][:, sampled] - g * H
            Zs = block.Z[sampled]
        KH = self.KH[rows]
        Ht = H - KH @ np.asarray(Zs, dtype=float).T
        return Ys, self._plain[rows] - g * KH, (self.delta[rows], Ht)


def cubic_control(blocks: list[CubicBlock], A: np.ndarray, C: np.ndarray, a: np.ndarray, b: np.ndarray,
                  phi: np.ndarray) -> CubicFit:
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

    ``blocks``: the parts of the design (:class:`CubicBlock`); A the design's normal matrix
    sum_i w_i z_i z_i', (C, a) its constrained algebra, b (r, d) = sum_k Yc_k @ WZ_k and phi (r, d) the
    plain estimate. The residual products come from the normal matrix, not from the (r, m) residuals:
    <r_v, r_h> = <y, h> - KS(h).b - phi.b_h + phi' A KS(h), and h on a pair (z, 1 - z) is +-t^3 - h(0)
    with t = alpha.(z - 1/2), so a paired block needs t on the first of each pair only."""
    scale = np.abs(phi).sum(axis=1)
    alpha = phi / np.where(scale > 0, scale, 1.0)[:, None]
    S1 = alpha.sum(axis=1)
    h0 = -S1 ** 3 / 8.0                                        # h at the empty coalition
    bH = np.zeros_like(phi)
    yh = np.zeros(len(phi))
    hh = np.zeros(len(phi))
    t3s = []
    for blk in blocks:
        Z, w, Yc = blk.Z, blk.w, blk.Yc
        if blk.paired:
            U = blk.first_centred()
            t = alpha @ U.T
        else:
            t = alpha @ Z.T
            t -= S1[:, None] / 2.0
        t3 = t * t                                              # (not ** 3: numpy's power is 30x slower)
        t3 *= t
        t3s.append(t3)
        if blk.paired:
            # pair k: h = t3 - h0 on z, -t3 - h0 on 1 - z, every coalition weighted wp; so
            # sum_pair h z = 2 t3 u - h0, sum_pair y h = t3 (y_z - y_1-z) - h0 (y_z + y_1-z)
            wp, npair = float(w[0]), U.shape[0]
            bH += (2.0 * wp) * (t3 @ U)
            bH -= (h0 * wp * npair)[:, None]
            np.subtract(Yc[:, 0::2], Yc[:, 1::2], out=t)         # t's buffer reused
            yh += wp * (np.einsum("ij,ij->i", t3, t) - h0 * Yc.sum(axis=1))
            hh += 2.0 * wp * (np.einsum("ij,ij->i", t3, t3) + h0 * h0 * npair)
        else:
            H = t3 - h0[:, None]
            bH += H @ blk.WZ
            yh += np.multiply(Yc, H, out=t) @ w
            hh += np.multiply(H, H, out=t) @ w
    KH = bH @ C.T + np.outer(S1 ** 3 / 4.0, a)                  # h(1) - h(0) = S1^3 / 4
    out, gamma, delta = _control_coefficient(phi, alpha, b, bH, yh, hh, KH, KH @ A)
    return CubicFit(out, gamma, KH, phi, h0, blocks, t3s, delta)


def _control_coefficient(phi, alpha, b, bH, yh, hh, KH, AK):
    """The control's coefficient from the normal-matrix products (see :func:`cubic_control`): phi (r, d)
    the plain estimate, b = sum w (y - y0) z, bH = sum w h z, yh = <y - y0, h>_w, hh = <h, h>_w, KH the
    plain fit of h and AK = KH A. Returns the adjusted estimate phi + gamma (phi(h) - KH), gamma, and
    delta = (phi(h) - KH) / <r_h, r_h>_w, the estimate's move per unit of <r, r_h>_w (the sandwich's
    term for gamma's estimation)."""
    num = yh - (KH * b).sum(1) - (phi * bH).sum(1) + (phi * AK).sum(1)      # <r_v, r_h>_w
    den = hh - 2.0 * (KH * bH).sum(1) + (KH * AK).sum(1)                    # <r_h, r_h>_w
    ok = den > 1e-9 * hh                     # h (nearly) additive: d = 2, or one dominant feature
    safe = np.where(ok, den, 1.0)
    gamma = np.where(ok, num / safe, 0.0)
    gap = cubic_index_shapley(alpha) - KH
    return phi + gamma[:, None] * gap, gamma, np.where(ok, 1.0 / safe, 0.0)[:, None] * gap


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
    enumerated ones (z_k, then 1 - z_k); w_enum (e,) the enumerated coalitions' weights (the
    Shapley-kernel mass of each)."""

    def __init__(self, Z: np.ndarray, w_enum: np.ndarray):
        Z = np.asarray(Z)
        self.e = e = len(w_enum)
        self.d = d = Z.shape[1]
        if (len(Z) - e) % 2 or not np.logical_xor(Z[e::2], Z[e + 1::2]).all():
            raise InputError("the sampled pairs must be stored as z, then 1 - z")
        self.we = np.asarray(w_enum, dtype=float)
        self.rest = max(0.0, 1.0 - float(self.we.sum()))            # the sampled pairs' kernel mass
        self.Ze = np.asarray(Z[:e], dtype=float)                    # the enumerated block
        self.WZe = self.Ze * self.we[:, None]
        self.Ge = self.Ze.T @ self.WZe
        self.Z1e = np.empty((len(Z[e::2]), d + 1))                  # [z_k, 1]: D z and sum D in one product
        self.Z1e[:, d] = 1.0
        self.Z1e[:, :d] = Z[e::2]
        self.Z1 = self.Z1e[:, :d]                                   # each pair's first coalition z_k
        self.U = self.Z1 - 0.5                                      # and z_k - 1/2
        self._S = {0: np.zeros((d + 1, d + 1), np.float32)}        # [z, 1]'s Gram over each prefix (exact)
        self._known = [0]                                            # its prefixes, ascending
        self._alg: dict[int, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}    # C, a and the normal matrix

    def pair_weight(self, n: int) -> float:
        return self.rest / (2 * n)

    def algebras(self, ns: np.ndarray) -> tuple[list, list, list]:
        """Lists of C (d, d), a (d,) and A (d, d) of the designs with ns[j] pairs. A pair's Gram is
        z z' + (1 - z)(1 - z)' = 2 z z' - z 1' - 1 z' + 1 1', so a prefix needs sum_k z_k z_k' and sum_k z_k
        over the pairs' first coalitions only: the Gram of [z_k, 1], grown from the longest prefix
        already known, in float32 (sums of 0/1 products: integers, exact below 2^24 pairs); the new
        normal matrices are assembled and inverted in one batch."""
        new = sorted({int(n) for n in ns} - set(self._alg))
        if new:
            if len(self.Z1) >= 1 << 24:
                raise InputError(f"at most 2^24 sampled pairs, got {len(self.Z1)}")
            d = self.d
            S = np.empty((len(new), d + 1, d + 1))
            for j, n in enumerate(new):
                below = self._known[bisect_right(self._known, n) - 1]
                P = self.Z1e[below:n].astype(np.float32)
                self._S[n] = S[j] = self._S[below] + P.T @ P if n > below else self._S[below]
                insort(self._known, n)
            nn = np.asarray(new, dtype=float)
            c = S[:, :d, d]                                                         # sum_k z_k
            gram = 2.0 * S[:, :d, :d] - c[:, :, None] - c[:, None, :] + nn[:, None, None]   # both coalitions of n pairs
            A = self.Ge + (self.rest / (2.0 * nn))[:, None, None] * gram
            C, a = _constrained(A)
            for j, n in enumerate(new):
                self._alg[n] = (C[j], a[j], A[j])
        parts = [self._alg[int(n)] for n in ns]
        return [p[0] for p in parts], [p[1] for p in parts], [p[2] for p in parts]

    def solve_levels(self, ns: np.ndarray, Ye: np.ndarray, D: np.ndarray, E: np.ndarray, y0: np.ndarray,
                     y1: np.ndarray, variance: np.ndarray, control: bool = False,
                     variance_pairs: int | None = None) -> tuple[np.ndarray, np.ndarray | None]:
        """Constrained WLS for G (row, stratum) units, each on the design with its own number of pairs.

        ns (G,) each unit's pairs; Ye (G, e) its outputs on the enumerated coalitions; D (G, >= max ns):
        row g holds unit g's pair differences y(z_k) - y(1 - z_k) in its first ns[g] columns (the rest is
        not read); E (G,) each unit's sum of its 2 n outputs on the pairs; y0 (G,) = f(b), y1 (G,) = f(x);
        variance (G,) bool: the units whose sandwich variance is wanted; ``control``: with the
        cubic-index control variate (:func:`cubic_control`); ``variance_pairs``: the sandwich sums
        over each unit's last min(n, variance_pairs) pairs, scaled to its n (None: all of them). Returns
        phi (G, d) in base coordinates and the variances (G, d), NaN on the units not asked for (None
        when none is). Units given in ascending ns are used in place; others are sorted first (a copy
        of D).

        A pair's outputs enter only through D and the pairs' sum: with y0 = f(b), sum over the pair of
        (y - y0) z = D_k z_k + (y(1 - z_k) - y0) 1, so b = Yce WZe + w_n (D Z1 + (odd sum) 1); the
        control's products are those of :func:`cubic_control` on the paired block (h = +-t^3 - h(0)), and
        with C 1 = 0 (the constrained projected inverse) a pair's influence is w_n q_k C z_k with q_k the
        residual's difference over the pair (:func:`_sandwich_gram_complements`).

        The designs are prefixes of one list, so with the units in ascending n the pairs between two
        consecutive levels (a segment) are used by a suffix of the units: every sum over pairs runs
        segment by segment, one matrix product over all the units that use it, each segment of the
        list read once; what depends on a unit's own design (C, a) runs level by level."""
        ns = np.asarray(ns, dtype=np.int64)
        G, d = len(ns), self.d
        D = np.asarray(D, dtype=float)
        if D.ndim != 2 or D.shape[0] != G or (G and D.shape[1] < ns.max()):
            raise InputError(f"D must be ({G}, >= {int(ns.max()) if G else 0}), got {D.shape}")
        if G and (ns.min() < 1 or ns.max() > len(self.Z1)):
            raise InputError(f"ns must lie in [1, {len(self.Z1)}]")
        if G == 0:
            return np.empty((0, d)), None
        if (np.diff(ns) < 0).any():
            order = np.argsort(ns, kind="stable")
            phi, var = self.solve_levels(ns[order], Ye[order], D[order], E[order], y0[order], y1[order],
                                         np.asarray(variance, bool)[order], control, variance_pairs)
            out = np.empty_like(phi)
            out[order] = phi
            if var is not None:
                v = np.empty_like(var)
                v[order] = var
                var = v
            return out, var
        levels, first = np.unique(ns, return_index=True)
        bounds = np.append(first, G)                          # level j: units bounds[j]:bounds[j + 1]
        Cs, As, Ms = self.algebras(levels)
        Yce = Ye - y0[:, None]
        P = D[:, :levels[0]] @ self.Z1e[:levels[0]]           # [D Z1, sum D] per unit: the first segment
        for j in range(1, len(levels)):                       # is every unit's, then a suffix of them each
            a, lo, n = bounds[j], levels[j - 1], levels[j]
            P[a:] += D[a:, lo:n] @ self.Z1e[lo:n]
        wp = self.rest / (2.0 * ns)
        odd = 0.5 * (E - P[:, d]) - ns * y0                  # sum_k (y(1 - z_k) - y0)
        b = Yce @ self.WZe + wp[:, None] * (P[:, :d] + odd[:, None])
        dy = y1 - y0
        phi = np.empty((G, d))
        for j in range(len(levels)):                            # C, a per level: no (G, d, d) stack
            s0, s1 = bounds[j], bounds[j + 1]
            phi[s0:s1] = b[s0:s1] @ Cs[j].T + dy[s0:s1, None] * As[j]
        fit, gamma, index = phi, None, None
        wi = np.flatnonzero(np.asarray(variance, bool))
        if control:
            phi, fit, gamma, index = self._control(levels, bounds, ns, D, Yce, E, y0, b, phi, Cs, As, Ms)
        if not len(wi):
            return phi, None
        alpha, t3_all, KH, delta = index if control else (None, None, None, None)
        var = np.full((G, d), np.nan)
        for j, n in enumerate(levels):
            k0, k1 = np.searchsorted(wi, bounds[j:j + 2])
            if n < 2 or k0 == k1:
                continue
            sel = wi[k0:k1]
            lo = 0 if variance_pairs is None else max(0, int(n) - max(2, int(variance_pairs)))
            U = self.U[lo:n]
            Q = D[sel, lo:n] - 2.0 * (fit[sel] @ U.T)                    # the residuals' pair differences
            if control:                                                  # less 2 gamma t^3, t = alpha.u_k
                if t3_all is not None:                                   # one level: the control's own t^3
                    t3 = t3_all[sel, lo:]
                else:
                    t = alpha[sel] @ U.T
                    t3 = t * t
                    t3 *= t
                Q -= (2.0 * gamma[sel])[:, None] * t3
            Q *= self.pair_weight(int(n))
            CZ = self.Z1[lo:n] @ Cs[j].T                                 # C z_k, (n - lo, d)
            g1 = Q @ CZ                                                  # sum_k G_k
            Q2 = Q * Q
            g2 = Q2 @ (CZ * CZ)                                          # sum_k G_k^2
            if control:              # gamma's share: G_k += delta Q_k h~(z_k), h~(z_k) = t^3 - u_k.KS(h)
                s_k = t3 - KH[sel] @ U.T                                 # h~ is odd over the pair
                dl = delta[sel]
                g1 += dl * np.einsum("ij,ij->i", Q, s_k)[:, None]
                g2 += 2.0 * dl * ((Q2 * s_k) @ CZ) + dl * dl * np.einsum("ij,ij->i", Q2, s_k * s_k)[:, None]
            k = n - lo                                                   # n times their sample variance
            var[sel] = (g2 - g1 * g1 / k) * (n / (k - 1))
        return phi, var

    def _control(self, levels, bounds, ns, D, Yce, E, y0, b, phi, Cs, As, Ms):
        """:func:`cubic_control` on the units of :meth:`solve_levels` (ascending n): the enumerated block
        for all units at once, the paired block segment by segment on the first of each pair. Returns
        the adjusted phi, the adjusted fit (phi - gamma KS(h)), gamma, and (alpha, t^3 on every unit and
        pair when there is one level, else None). A segment's t and t^3 live in two buffers reused from
        segment to segment."""
        G, d = phi.shape
        scale = np.abs(phi).sum(axis=1)
        alpha = phi / np.where(scale > 0, scale, 1.0)[:, None]
        S1 = alpha.sum(axis=1)
        h0 = -S1 ** 3 / 8.0                                        # h at the empty coalition
        bH, yh, hh = np.zeros((G, d)), np.zeros(G), np.zeros(G)
        if self.e:
            t = alpha @ self.Ze.T
            t -= S1[:, None] / 2.0
            H = t * t
            H *= t
            H -= h0[:, None]
            bH += H @ self.WZe
            yh += np.multiply(Yce, H, out=t) @ self.we
            hh += np.multiply(H, H, out=t) @ self.we
        tu, ty, tt = np.zeros((G, d)), np.zeros(G), np.zeros(G)      # sum_k t^3 u_k, t^3 D_k, t^6
        size = int(((G - bounds[:-1]) * np.diff(levels, prepend=0)).max())
        tbuf, t3buf = np.empty(size), np.empty(size)                # one segment's t and t^3 (reused)
        lo = 0
        for j, n in enumerate(levels):
            a = bounds[j]
            U = self.U[lo:n]
            shape = (G - a, n - lo)
            t = np.matmul(alpha[a:], U.T, out=tbuf[:shape[0] * shape[1]].reshape(shape))
            t3 = np.multiply(t, t, out=t3buf[:t.size].reshape(shape))
            t3 *= t                                                # t^3 (not **: numpy's power is slow)
            tu[a:] += t3 @ U
            ty[a:] += np.einsum("ij,ij->i", t3, D[a:, lo:n])
            tt[a:] += np.einsum("ij,ij->i", t3, t3)
            lo = n
        wp = self.rest / (2.0 * ns)
        # pair k: h = t3 - h0 on z, -t3 - h0 on 1 - z: sum_pair h z = 2 t3 u - h0 and
        # sum_pair (y - y0) h = t3 D_k - h0 (pair sum - 2 y0)
        bH += (2.0 * wp)[:, None] * tu - (h0 * wp * ns)[:, None]
        yh += wp * (ty - h0 * (E - 2 * ns * y0))
        hh += (2.0 * wp) * (tt + h0 * h0 * ns)
        KH, AK = np.empty((G, d)), np.empty((G, d))
        for j in range(len(levels)):
            s0, s1 = bounds[j], bounds[j + 1]
            KH[s0:s1] = bH[s0:s1] @ Cs[j].T + (S1[s0:s1] ** 3 / 4.0)[:, None] * As[j]   # h(1) - h(0) = S1^3 / 4
            AK[s0:s1] = KH[s0:s1] @ Ms[j]
        out, gamma, delta = _control_coefficient(phi, alpha, b, bH, yh, hh, KH, AK)
        return out, phi - gamma[:, None] * KH, gamma, (alpha, t3 if len(levels) == 1 else None, KH, delta)


def neyman_pairs(sd: np.ndarray, weights: np.ndarray, n0: int, total: int, cap: int, step: int) -> np.ndarray:
    """Pairs per stratum minimising sum_b w_b^2 sd_b^2 / n_b subject to sum_b n_b <= total, n0 <= n_b <=
    cap, n_b a multiple of step: Neyman's allocation n_b proportional to w_b sd_b (Neyman, 1934),
    clipped, rounded down to the step, and the steps that rounding leaves given one each to the strata
    where one more step lowers the variance most."""
    s = np.asarray(weights, float) * np.asarray(sd, float)
    B = len(s)
    if total <= n0 * B or not (s > 0).any():
        return np.full(B, n0, dtype=np.int64)
    pos = s > 0
    if n0 * int((~pos).sum()) + cap * int(pos.sum()) <= total:
        lo = cap / s[pos].min()                                     # every stratum at the cap
    else:
        # g(lam) = sum_b clip(lam s_b, n0, cap) is piecewise linear and increasing: find the piece between
        # two breakpoints where it reaches the total and solve it there (no bisection)
        bps = np.unique(np.concatenate([n0 / s[pos], cap / s[pos]]))
        g = np.clip(bps[:, None] * s[None], n0, cap).sum(axis=1)
        k = int(np.searchsorted(g, total, side="right"))            # g[k - 1] <= total < g[k]
        mid = (bps[k - 1] + bps[k]) / 2
        slope = s[(mid * s > n0) & (mid * s < cap)].sum()
        lo = bps[k - 1] + (total - g[k - 1]) / slope
    n = np.maximum(n0, (np.clip(lo * s, n0, cap) // step * step).astype(np.int64))
    left = (total - int(n.sum())) // step
    if left > 0:
        gain = np.where(n + step <= cap, s ** 2 / (n * (n + step)), -1.0)
        top = np.argsort(-gain, kind="stable")[:left]
        n[top[gain[top] > 0]] += step
    return n
