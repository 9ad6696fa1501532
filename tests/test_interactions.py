"""Exact Shapley interactions: the Möbius-based indices equal their direct definitions, known games
give known values, and the model-level call agrees with exact Shapley values."""
import itertools
from math import comb, factorial

import numpy as np
import pandas as pd
import pytest

from whybox.errors import InputError, MethodError
from whybox.interactions import interactions, moebius
from whybox.interactions.exact import fsii_least_squares, interactions as game_interactions


def _game(n, seed):
    return np.random.default_rng(seed).normal(size=2 ** n)


def _mask(S):
    return sum(1 << i for i in S)


def _delta(v, S, T):
    """Discrete derivative of v at T in the direction of S."""
    return sum((-1) ** (len(S) - len(L)) * v[_mask(set(T) | set(L))] for r in range(len(S) + 1)
               for L in itertools.combinations(S, r))


def _rest(n, S):
    others = [i for i in range(n) if i not in S]
    return [T for r in range(len(others) + 1) for T in itertools.combinations(others, r)]


@pytest.mark.parametrize("n,seed", [(4, 0), (5, 1), (6, 2)])
def test_sii_and_stii_equal_their_direct_definitions(n, seed):
    v = _game(n, seed)
    for k in (2, 3):
        sii = game_interactions(v, index="SII", order=k)
        stii = game_interactions(v, index="STII", order=k)
        for S in (S for r in range(1, k + 1) for S in itertools.combinations(range(n), r)):
            s = len(S)
            direct = sum(factorial(n - len(T) - s) * factorial(len(T)) / factorial(n - s + 1) * _delta(v, S, T)
                         for T in _rest(n, S))
            assert sii[S] == pytest.approx(direct, abs=1e-12)
            want = _delta(v, S, ()) if s < k else \
                k / n * sum(_delta(v, S, T) / comb(n - 1, len(T)) for T in _rest(n, S))
            assert stii[S] == pytest.approx(want, abs=1e-12)


@pytest.mark.parametrize("n,seed", [(4, 3), (5, 4)])
def test_fsii_equals_the_faith_shap_least_squares_and_k_sii_is_efficient(n, seed):
    v = _game(n, seed)
    shapley = game_interactions(v, index="SII", order=1)
    for k in (1, 2, 3):
        f = game_interactions(v, index="FSII", order=k)
        for T, b in fsii_least_squares(v, order=k).items():
            assert f[T] == pytest.approx(b, abs=1e-9)
        ks = game_interactions(v, index="k-SII", order=k)
        assert sum(ks.values()) == pytest.approx(v[-1], abs=1e-10)         # efficiency (with v(empty))
        assert sum(f.values()) == pytest.approx(v[-1], abs=1e-10)
        top = game_interactions(v, index="SII", order=k)
        assert all(ks[S] == pytest.approx(top[S], abs=1e-12) for S in ks if len(S) == k)
    for i in range(n):                                                       # order 1 = Shapley value
        for idx in ("k-SII", "FSII"):
            assert game_interactions(v, index=idx, order=1)[(i,)] == pytest.approx(shapley[(i,)], abs=1e-12)


def test_a_pairwise_game_gives_its_own_coefficients():
    n = 5
    rng = np.random.default_rng(7)
    a, B = rng.normal(size=n), np.triu(rng.normal(size=(n, n)), 1)
    v = np.array([a[[i for i in range(n) if m >> i & 1]].sum()
                  + sum(B[i, j] for i in range(n) for j in range(i + 1, n) if m >> i & 1 and m >> j & 1)
                  for m in range(2 ** n)])
    for idx in ("k-SII", "STII", "FSII", "SII"):
        r = game_interactions(v, index=idx, order=2)
        for i, j in itertools.combinations(range(n), 2):
            assert r[(i, j)] == pytest.approx(B[i, j], abs=1e-12)
        for i in range(n):
            want = a[i] + (0.5 * (B[i].sum() + B[:, i].sum()) if idx == "SII" else 0.0)
            assert r[(i,)] == pytest.approx(want, abs=1e-12)
    np.testing.assert_allclose(moebius(v)[[_mask((0, 1)), _mask((0, 1, 2))]], [B[0, 1], 0.0], atol=1e-12)
    with pytest.raises(InputError, match="index"):
        game_interactions(v, index="SHAP-IQ")
    with pytest.raises(InputError, match="order"):
        game_interactions(v, index="SII", order=6)
    with pytest.raises(InputError, match="2\\^n"):
        game_interactions(v[:-1])


def test_model_interactions_agree_with_exact_shapley_and_are_efficient():
    from sklearn.datasets import load_diabetes
    from sklearn.ensemble import GradientBoostingRegressor

    import whybox

    X, y = load_diabetes(return_X_y=True, as_frame=True)
    X = X.iloc[:, :6]
    gbr = GradientBoostingRegressor(n_estimators=30, random_state=0).fit(X, y)
    bg = X.iloc[:12]
    k = interactions(gbr, X.iloc[:3], bg, index="k-SII", order=2, method="exact")   # through the model
    assert k.method == "exact"
    np.testing.assert_allclose(k.values.sum(1), k.predictions, atol=1e-8)
    np.testing.assert_allclose(k.predictions, gbr.predict(X.iloc[:3]), atol=1e-8)
    assert 3 * (2 ** 6 - 2) <= k.n_model_rows <= 3 + 3 * 2 ** 6 * 12      # counted, at most rows x 2^d x background
    sv = interactions(gbr, X.iloc[:3], bg, index="SII", order=1, method="exact")
    e = whybox.explain(gbr, X.iloc[:3], background=bg, method="shapley")
    np.testing.assert_allclose(sv.values[:, 1:], e.values, atol=1e-10)
    M = k.matrix(0)
    assert np.allclose(M, M.T) and k.to_frame(0)["value"].abs().is_monotonic_decreasing
    with pytest.raises(MethodError, match="2\\^d"):
        interactions(gbr, X.iloc[:1], bg, max_features=4, method="exact")
    f = lambda Z: gbr.predict(pd.DataFrame(np.asarray(Z, float), columns=X.columns))   # noqa: E731  (no trees to read)
    assert interactions(f, X.iloc[:1], bg, max_features=4, n_samples=200).method == "sampling"   # auto
    with pytest.raises(InputError, match="index"):
        interactions(gbr, X.iloc[:1], bg, index="shap")


def test_sampling_coefficients_reproduce_the_exact_indices():
    """Every index is sum_U v(U) g(|S|, |U & S|, |U - S|): the table gives the exact values on random games."""
    from whybox.interactions.exact import interactions as exact
    from whybox.interactions.sampling import coefficient_table, terms
    rng = np.random.default_rng(0)
    n = 6
    v = rng.normal(size=1 << n)
    U = (np.arange(1 << n)[:, None] >> np.arange(n)) & 1
    for index in ("SII", "k-SII", "STII", "FSII"):
        for k in (1, 2, 3):
            G = coefficient_table(index, n, k)
            ex = exact(v, index=index, order=k)
            for S in terms(n, k):
                a = U[:, list(S)].sum(1)
                val = float(v @ G[len(S), a, U.sum(1) - a])
                assert val == pytest.approx(ex[S], abs=1e-10), (index, k, S)


def test_sampling_estimator_is_exact_when_everything_fits_and_calibrated_when_not():
    from whybox.interactions.exact import interactions as exact
    from whybox.interactions.sampling import sample_interactions
    rng = np.random.default_rng(1)
    n = 12
    W, P = rng.normal(size=n), 0.3 * rng.normal(size=(n, n))

    def game(Z):
        Z = Z.astype(float)
        return np.tanh(Z @ W) + 0.5 * np.einsum("mi,ij,mj->m", Z, P, Z)
    v = game(((np.arange(1 << n)[:, None] >> np.arange(n)) & 1).astype(bool))
    for index in ("SII", "k-SII", "STII", "FSII"):
        ex = exact(v, index=index, order=2)
        full, se0 = sample_interactions(game, n, index=index, order=2, n_samples=1 << n)
        assert max(abs(full[S] - ex[S]) for S in ex) < 1e-10 and max(se0.values()) == 0
        zs = []
        for seed in range(4):
            est, se = sample_interactions(game, n, index=index, order=2, n_samples=1500, seed=seed)
            zs += [(est[S] - ex[S]) / se[S] for S in ex if se[S] > 0]
        zs = np.abs(zs)
        assert 0.6 < zs.mean() < 1.0 and (zs < 2).mean() > 0.9, (index, zs.mean())     # |N(0,1)|: mean 0.80
        again, _ = sample_interactions(game, n, index=index, order=2, n_samples=1500, seed=3)
        assert again == est                                                           # seeded
    with pytest.raises(InputError, match="n_samples"):
        sample_interactions(game, n, index="STII", order=3, n_samples=50)


def test_model_interactions_beyond_ten_features_by_sampling():
    from sklearn.ensemble import GradientBoostingRegressor
    from sklearn.datasets import make_friedman1
    X, y = make_friedman1(n_samples=300, n_features=14, random_state=0)
    gbr = GradientBoostingRegressor(n_estimators=40, max_depth=3, random_state=0).fit(X, y)
    bg = X[:6]
    iv = interactions(gbr, X[:3], bg, index="k-SII", order=2, n_samples=3000, seed=0, method="sampling")
    assert iv.method == "sampling" and iv.stderr.shape == iv.values.shape == (3, 1 + 14 + 91)
    np.testing.assert_allclose(iv.predictions, gbr.predict(X[:3]), atol=1e-8)
    assert (iv.stderr >= 0).all() and "stderr" in iv.to_frame(0).columns
    assert iv.n_model_rows <= 3 + 3 * 3001 * 6
    # friedman1's only interaction is x0 * x1: the largest pair, far beyond its standard error
    pairs = [(j, c) for j, c in enumerate(iv.coalitions) if len(c) == 2]
    j, c = max(pairs, key=lambda p: abs(iv.values[0, p[0]]))
    assert c == (0, 1) and abs(iv.values[0, j]) > 4 * iv.stderr[0, j]
    sv = interactions(gbr, X[:3], bg, index="k-SII", order=2, n_samples=3000, seed=0, method="sampling")
    np.testing.assert_array_equal(sv.values, iv.values)


def test_tree_interactions_equal_enumeration_through_the_model():
    """method='tree': every index and order from the leaves equals the 2^d enumeration through the model
    (GBR, a random forest at default depth, a forest classifier's probability, HistGradientBoosting
    with missing values), with no model rows beyond the explained rows; auto picks it for trees."""
    from sklearn.datasets import load_diabetes, load_iris
    from sklearn.ensemble import (GradientBoostingRegressor, HistGradientBoostingRegressor,
                                  RandomForestClassifier, RandomForestRegressor)

    X, y = load_diabetes(return_X_y=True, as_frame=True)
    X = X.iloc[:, :6]
    Xn = X.mask(np.random.default_rng(0).random(X.shape) < 0.1)
    Xi, yi = load_iris(return_X_y=True, as_frame=True)
    cases = [(GradientBoostingRegressor(n_estimators=20, random_state=0).fit(X, y), X, None),
             (RandomForestRegressor(n_estimators=4, random_state=0).fit(X, y), X, None),
             (RandomForestClassifier(n_estimators=4, random_state=0).fit(Xi, yi), Xi, 2),
             (HistGradientBoostingRegressor(max_iter=15, random_state=0).fit(Xn, y), Xn, None)]
    for model, data, target in cases:
        rows, bg = data.iloc[[3, 70]], data.iloc[::30]
        for index in ("SII", "k-SII", "STII", "FSII"):
            for order in (1, 2, 3):
                t = interactions(model, rows, bg, index=index, order=order, target=target, method="tree")
                e = interactions(model, rows, bg, index=index, order=order, target=target, method="exact")
                assert t.coalitions == e.coalitions and t.method == "tree" and t.n_model_rows == 2
                np.testing.assert_allclose(t.values, e.values, atol=1e-9, err_msg=f"{type(model).__name__} {index} {order}")
        assert interactions(model, rows, bg, target=target).method == "tree"                  # auto
    with pytest.raises(MethodError, match="nonlinear"):
        from sklearn.ensemble import GradientBoostingClassifier
        clf = GradientBoostingClassifier(n_estimators=5, random_state=0).fit(Xi, yi)
        interactions(clf, Xi.iloc[:1], Xi.iloc[::30], method="tree")


def test_sampled_sizes_are_drawn_without_replacement_and_stay_calibrated_when_dense():
    """A sampled size holds distinct coalitions (none evaluated twice), within the budget; at a budget
    of half the coalitions (sizes sampled densely) the finite-population correction keeps the standard
    errors honest."""
    from whybox.interactions.exact import interactions as exact
    from whybox.interactions.sampling import _distinct_subsets, design, sample_interactions

    rng = np.random.default_rng(0)
    for n, m in ((12, 600), (30, 5000)):
        U, size, scale = design(n, 2, m, rng)
        assert len(U) <= m and len({z.tobytes() for z in U}) == len(U)
        assert (scale >= 1).all() and (U.sum(axis=1) == size).all()
    Z = _distinct_subsets(10, 5, 200, rng)                    # dense: 200 of the 252
    assert len({z.tobytes() for z in Z}) == 200 and (Z.sum(axis=1) == 5).all()
    n = 12
    r = np.random.default_rng(4)
    W, P = r.normal(size=n), 0.3 * r.normal(size=(n, n))

    def game(Z):
        Z = Z.astype(float)
        return np.tanh(Z @ W) + 0.5 * np.einsum("mi,ij,mj->m", Z, P, Z)
    ex = exact(game(((np.arange(1 << n)[:, None] >> np.arange(n)) & 1).astype(bool)), index="k-SII", order=2)
    zs = []
    for seed in range(6):
        est, se = sample_interactions(game, n, index="k-SII", order=2, n_samples=2048, seed=seed)
        zs += [(est[S] - ex[S]) / se[S] for S in ex if se[S] > 0]
    zs = np.abs(zs)
    assert 0.6 < zs.mean() < 1.0 and (zs < 2).mean() > 0.9, zs.mean()


def test_a_game_with_triples_is_carried_by_the_richer_surrogate(monkeypatch):
    """A 3-additive game (pairs and triples only): the order-3 surrogate fits it (up to its tiny ridge),
    so the order-2 estimate is nearly exact at a budget far below 2^n, with standard errors to match;
    an order-2 surrogate alone leaves the triples to the sampling."""
    from whybox.interactions import sampling
    from whybox.interactions.exact import interactions as exact

    n = 12
    rng = np.random.default_rng(8)
    P = np.triu(rng.normal(size=(n, n)), 1)
    triples = [(0, 1, 2), (3, 4, 5), (2, 7, 9)]

    def game(Z):
        Z = Z.astype(float)
        return np.einsum("mi,ij,mj->m", Z, P, Z) + sum(1.5 * Z[:, a] * Z[:, b] * Z[:, c] for a, b, c in triples)
    ex = exact(game(((np.arange(1 << n)[:, None] >> np.arange(n)) & 1).astype(bool)), index="k-SII", order=2)

    def worst():
        est, se = sampling.sample_interactions(game, n, index="k-SII", order=2, n_samples=1500, seed=0)
        return max(abs(est[S] - ex[S]) for S in ex), max(se.values())
    rich, rich_se = worst()
    monkeypatch.setattr(sampling, "MAX_SURROGATE_TERMS", 0)        # the order-2 surrogate only
    plain, plain_se = worst()
    assert rich < 1e-4 and rich_se < 1e-4 and rich < 0.01 * plain, (rich, plain)


def test_the_surrogate_index_map_equals_its_definition():
    """The surrogate's exact index as one linear map (per fold a matrix product) equals the sum over
    the surrogate's Moebius terms of the index weights, term by term, for every index and order."""
    from whybox.interactions import sampling as S

    rng = np.random.default_rng(0)
    for n, order in ((8, 2), (8, 3), (6, 1)):
        tl = S.terms(n, order)
        for index in ("SII", "k-SII", "STII", "FSII"):
            for so in (order, order + 1):
                tK = [c for c in S.terms(n, so) if c]
                beta, v0 = rng.normal(size=(3, len(tK))), rng.normal(size=3)
                L, c0 = S._surrogate_map(tK, tl, n, index, order)
                np.testing.assert_allclose(v0[:, None] * c0 + beta @ L.T,
                                           S._surrogate_index(beta, v0, tK, tl, n, index, order), atol=1e-12)
