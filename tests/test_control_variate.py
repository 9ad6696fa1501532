"""KernelSHAP's cubic-index control variate: its closed form, the Frisch-Waugh identity it rests on,
exactness where the plain estimator is exact, and the error it removes from a probability's games."""
import numpy as np
import pytest

import whybox
from whybox.errors import WhyboxError
from whybox.neighbourhoods import masks
from whybox.surrogates import linear


def test_cubic_index_shapley_equals_the_exact_shapley_map():
    rng = np.random.default_rng(0)
    d = 7
    Z = masks.all_coalitions(d).astype(float)
    L = linear.shapley_matrix(d)
    for _ in range(4):
        A = rng.normal(size=(3, d))
        h = ((Z - 0.5) @ A.T) ** 3                     # (2^d, 3)
        np.testing.assert_allclose(linear.cubic_index_shapley(A), (L @ h).T, atol=1e-12)
        np.testing.assert_allclose(linear.cubic_index_shapley(A).sum(1), A.sum(1) ** 3 / 4, atol=1e-12)


def test_the_control_is_the_augmented_constrained_regression():
    """phi + gamma (phi(h) - KS(h)) from the normal-matrix products equals the constrained WLS on [z, h]
    solved directly (its KKT system), with the augmented surrogate's Shapley values beta + gamma phi(h)."""
    rng = np.random.default_rng(1)
    d = 8
    des = masks.shapley_kernel(d, 120, rng)
    Z, w = des.Z.astype(float), des.w
    WZ = Z * w[:, None]
    A = Z.T @ WZ
    C, a = linear._constrained(A)
    Yc = np.tanh(Z @ rng.normal(size=(d, 3))).T + 0.1 * rng.normal(size=(3, len(Z)))
    dY = rng.normal(size=3)
    b = Yc @ WZ
    phi = b @ C.T + np.outer(dY, a)
    one = linear.CubicBlock(Z, w, Yc)
    general = linear.cubic_control([one], A, C, a, b, phi)
    blocks = linear._cubic_blocks(Z, w, WZ, Yc, des.pair_id)         # [enumerated; pairs, first of each]
    assert len(blocks) == 2 and blocks[1].paired and not blocks[0].paired
    split = linear.cubic_control(blocks, A, C, a, b, phi)
    np.testing.assert_allclose(split.phi, general.phi, atol=1e-12)
    np.testing.assert_allclose(split.gamma, general.gamma, rtol=1e-9)
    # the adjusted residual data on the pairs, rebuilt from the first of each pair, equal the general
    Yg, fg, (dg, Hg) = general.sampled_residual_data(des.pair_id >= 0)
    Ys, fs, (ds, Hs) = split.sampled_residual_data(rows=np.array([True, False, True]))
    np.testing.assert_allclose(Ys, Yg[[0, 2]], atol=1e-12)
    np.testing.assert_allclose(fs, fg[[0, 2]], atol=1e-12)
    np.testing.assert_allclose(ds, dg[[0, 2]], rtol=1e-9, atol=1e-15)
    np.testing.assert_allclose(Hs, Hg[[0, 2]], atol=1e-12)
    out, gamma = split.phi, split.gamma
    _, se = linear.kernelshap_wls(Z, w, Yc, np.zeros(3), dY, des.pair_id, control=True)
    sampled = des.pair_id >= 0
    # the pairs in any order (the general, non-consecutive path) give the same variance
    order = rng.permutation(int(sampled.sum()))
    shuffled = linear._sandwich_variance(Z[sampled][order], w[sampled][order], des.pair_id[sampled][order],
                                         Yg[:, order], fg, C, control=(dg, Hg[:, order]))
    np.testing.assert_allclose(shuffled, se ** 2, rtol=1e-9)
    for r in range(3):
        alpha = phi[r] / np.abs(phi[r]).sum()
        h = ((Z - 0.5) @ alpha) ** 3
        h0 = (-alpha.sum() / 2) ** 3
        X = np.column_stack([Z, h - h0])
        cvec = np.append(np.ones(d), (alpha.sum() / 2) ** 3 - h0)
        K = np.block([[X.T @ (X * w[:, None]), cvec[:, None]], [cvec[None], np.zeros((1, 1))]])
        theta = np.linalg.solve(K, np.append(X.T @ (w * Yc[r]), dY[r]))
        want = theta[:d] + theta[d] * linear.cubic_index_shapley(alpha)
        np.testing.assert_allclose(gamma[r], theta[d], rtol=1e-8)
        np.testing.assert_allclose(out[r], want, atol=1e-10)
        np.testing.assert_allclose(out[r].sum(), dY[r], atol=1e-12)       # efficiency kept
        # the sandwich of the augmented regression (alpha held fixed): pair k's influence on
        # beta + gamma phi(h) is [I, phi(h)] M x_i w_i r_i summed over the pair, M the KKT inverse's block
        M = np.linalg.inv(K)[:d + 1, :d + 1]
        L = np.hstack([np.eye(d), linear.cubic_index_shapley(alpha)[:, None]]) @ M
        infl = (X[sampled] * (w * (Yc[r] - X @ theta[:d + 1]))[sampled][:, None]) @ L.T
        ids = des.pair_id[sampled]
        G = np.zeros((ids.max() + 1, d))
        np.add.at(G, ids, infl)
        k = len(G)
        np.testing.assert_allclose(se[r] ** 2, ((G - G.mean(axis=0)) ** 2).sum(axis=0) * k / (k - 1), rtol=1e-8)


@pytest.mark.parametrize("kw", [dict(allocation="neyman"), dict(allocation="equal"), dict(strategy="shared")])
def test_exact_on_additive_games_and_unchanged_on_games_even_about_the_centre(kw):
    rng = np.random.default_rng(2)
    d = 12
    w = rng.normal(size=d)
    X, bg = rng.normal(size=(3, d)), rng.normal(size=(9, d))
    add = lambda Z: Z @ w + 0.5
    e = whybox.explain(add, X, method="kernelshap", background=bg, n_samples=300, seed=0, **kw)
    np.testing.assert_allclose(e.values, w * (X - bg.mean(0)), atol=1e-10)
    # a pairwise game: paired regressions are exact on it, and h's residuals are odd about the centre of
    # the cube, so the control's coefficient is zero and nothing changes
    I, J = rng.integers(0, d, 20), rng.integers(0, d, 20)
    pair = lambda Z: Z @ w + (Z[:, I] * Z[:, J]) @ np.linspace(-1, 1, 20)
    on = whybox.explain(pair, X, method="kernelshap", background=bg, n_samples=300, seed=0, **kw)
    off = whybox.explain(pair, X, method="kernelshap", background=bg, n_samples=300, seed=0,
                         control_variate="none", **kw)
    np.testing.assert_allclose(on.values, off.values, atol=1e-9)
    np.testing.assert_allclose(on.values.sum(1) + on.base_values, pair(X), atol=1e-9)


def test_the_control_lowers_the_error_on_a_probability_and_its_stderr_stays_calibrated():
    """The games of a logistic model are a sigmoid of an additive index: the control variate removes
    their third-order part. Against exact Shapley values (d = 12) the error falls below 0.65x the
    plain estimator's at the same model rows, for each allocation (measured 0.48x and 0.43x), with
    z-scores of rms about 1 (1.21 and 1.14: the sandwich treats the control's index and coefficient as
    fixed, and over 30 seeds it understates the spread by about 10%)."""
    from sklearn.linear_model import LogisticRegression
    rng = np.random.default_rng(0)
    d = 12
    Xall = rng.normal(size=(400, d))
    y = (Xall[:, :6] @ rng.normal(size=6) * 2 + rng.normal(size=400) > 0).astype(int)
    lr = LogisticRegression(C=1.0, max_iter=2000).fit(Xall, y)
    f = lambda Z: lr.predict_proba(Z)[:, 1]
    X, bg = Xall[:4], Xall[100:120]
    exact = whybox.explain(f, X, method="shapley", background=bg).values
    for alloc in ("equal", "neyman"):
        err, rows, z = {}, {}, []
        for cv in ("none", "cubic"):
            errs = []
            for seed in range(5):
                e = whybox.explain(f, X, method="kernelshap", background=bg, n_samples=600, seed=seed,
                                   allocation=alloc, control_variate=cv)
                errs.append(np.linalg.norm(e.values - exact) / np.linalg.norm(exact))
                rows[cv] = e.n_model_rows
                if cv == "cubic":
                    z.append((e.values - exact) / e.stderr)
            err[cv] = np.mean(errs)
        assert err["cubic"] < 0.65 * err["none"], (alloc, err)
        assert rows["cubic"] == rows["none"]
        assert 0.6 < np.sqrt(np.mean(np.square(z))) < 1.5, alloc


def test_control_variate_is_validated_by_name():
    X = np.random.default_rng(0).normal(size=(2, 4))
    with pytest.raises(WhyboxError, match="control_variate"):
        whybox.explain(lambda Z: Z.sum(1), X, method="kernelshap", background=X, control_variate="quartic")
