"""method='tree': exact Shapley values read from scikit-learn trees — equal to brute-force enumeration
(interventional, against the background), to shap's path-dependent TreeSHAP (no background), efficient on
every row, comparing float32 as scikit-learn does, and refusing what does not decompose tree by tree."""
import numpy as np
import pytest
from sklearn.datasets import load_diabetes, load_iris
from sklearn.ensemble import (ExtraTreesRegressor, GradientBoostingClassifier, GradientBoostingRegressor,
                              RandomForestClassifier, RandomForestRegressor)
from sklearn.linear_model import LogisticRegression
from sklearn.tree import DecisionTreeClassifier, DecisionTreeRegressor

import whybox
from whybox.errors import MethodError
from whybox.trees.model import tree_ensemble


@pytest.fixture(scope="module")
def diabetes():
    X, y = load_diabetes(return_X_y=True, as_frame=True)
    return X.iloc[:, :7], y


@pytest.fixture(scope="module")
def iris():
    X, y = load_iris(return_X_y=True, as_frame=True)
    return X, y


def _models(diabetes, iris):
    (Xd, yd), (Xi, yi) = diabetes, iris
    yield "decision tree regressor", DecisionTreeRegressor(random_state=0).fit(Xd, yd), Xd, "auto"
    yield "random forest regressor (default depth)", RandomForestRegressor(n_estimators=8, random_state=0).fit(Xd, yd), Xd, "auto"
    yield "extra trees regressor", ExtraTreesRegressor(n_estimators=5, random_state=0).fit(Xd, yd), Xd, "auto"
    yield "gradient boosting regressor", GradientBoostingRegressor(n_estimators=30, random_state=0).fit(Xd, yd), Xd, "auto"
    yield "decision tree classifier", DecisionTreeClassifier(max_depth=6, random_state=0).fit(Xi, yi), Xi, "auto"
    yield "random forest classifier", RandomForestClassifier(n_estimators=8, random_state=0).fit(Xi, yi), Xi, "auto"
    yield "gradient boosting margin (3 classes)", GradientBoostingClassifier(n_estimators=10, random_state=0).fit(Xi, yi), \
        Xi, "decision_function"


def _kernels():
    from whybox.trees.kernel import available
    return ["numpy"] + (["numba"] if available() else [])


@pytest.mark.parametrize("kernel", _kernels())
def test_interventional_equals_brute_force_and_is_efficient(diabetes, iris, kernel):
    for name, model, X, output in _models(diabetes, iris):
        rows, bg = X.iloc[200:203] if len(X) > 200 else X.iloc[[10, 60, 120]], X.iloc[::37]
        e = whybox.explain(model, rows, method="tree", background=bg, output=output, target="all", kernel=kernel)
        assert e.params["kernel"] == kernel
        exact = whybox.explain(model, rows, method="shapley", background=bg, output=output, target="all")
        np.testing.assert_allclose(e.values, exact.values, atol=1e-9, err_msg=name)            # 2^d enumeration
        np.testing.assert_allclose(e.values.sum(1) + e.base_values, e.predictions, atol=1e-9, err_msg=name)
        assert e.params["feature_perturbation"] == "interventional" and e.n_model_rows == len(rows), name


@pytest.mark.parametrize("kernel", _kernels())
def test_deep_forest_on_ten_features_equals_brute_force(kernel):
    """Paths on more than 7 features (the numpy kernel's pairwise branch), d = 10."""
    X, y = load_diabetes(return_X_y=True, as_frame=True)
    rf = RandomForestRegressor(n_estimators=3, random_state=0).fit(X, y)
    rows, bg = X.iloc[[5, 99]], X.iloc[::60]
    e = whybox.explain(rf, rows, method="tree", background=bg, kernel=kernel)
    exact = whybox.explain(rf, rows, method="shapley", background=bg)
    np.testing.assert_allclose(e.values, exact.values, atol=1e-9)


@pytest.mark.parametrize("kernel", _kernels())
def test_path_dependent_matches_shap_without_a_background(diabetes, kernel):
    shap = pytest.importorskip("shap")
    from sklearn.ensemble import HistGradientBoostingRegressor
    X, y = diabetes
    for model in (RandomForestRegressor(n_estimators=10, random_state=0).fit(X, y),
                  GradientBoostingRegressor(n_estimators=40, random_state=0).fit(X, y),
                  HistGradientBoostingRegressor(max_iter=30, random_state=0).fit(X, y)):
        e = whybox.explain(model, X.iloc[:40], method="tree", kernel=kernel)
        te = shap.TreeExplainer(model, feature_perturbation="tree_path_dependent")
        sv = te.shap_values(X.iloc[:40])
        ok = np.abs(sv.sum(1) + np.ravel(te.expected_value)[0] - model.predict(X.iloc[:40])) < 1e-6   # shap additive
        assert ok.sum() >= 30
        np.testing.assert_allclose(e.values[ok], sv[ok], atol=1e-6)
        assert e.params["feature_perturbation"] == "tree_path_dependent"
        np.testing.assert_allclose(e.values.sum(1) + e.base_values, e.predictions, atol=1e-8)


def test_float32_comparisons_as_scikit_learn_makes_them(diabetes):
    X, y = diabetes
    tree = DecisionTreeRegressor(max_depth=3, random_state=0).fit(X, y)
    t = tree.tree_
    ens = tree_ensemble(tree, "predict")
    # a value equal to a split threshold: float64 says "<=" (left), float32 rounds it up where the
    # threshold's float32 neighbour above is the nearer one, and scikit-learn goes right
    nodes = [i for i in range(t.node_count) if t.children_left[i] >= 0 and np.float32(t.threshold[i]) > t.threshold[i]]
    assert nodes
    probe = X.iloc[:60].copy()
    for i in nodes:
        probe.iloc[:, int(t.feature[i])] = float(t.threshold[i])
    v64 = probe.to_numpy()
    float64_tree = np.array([_predict64(t, r) for r in v64])
    assert (float64_tree != tree.predict(probe)).any()                # the comparison matters on these rows
    np.testing.assert_array_equal(ens.predict(v64)[:, 0], tree.predict(probe))
    e = whybox.explain(tree, probe, method="tree", background=X.iloc[:10])   # the recipe checks it reproduces f
    np.testing.assert_allclose(e.values.sum(1) + e.base_values, tree.predict(probe), atol=1e-9)


def _predict64(t, row):
    node = 0
    while t.children_left[node] >= 0:
        node = t.children_left[node] if row[t.feature[node]] <= t.threshold[node] else t.children_right[node]
    return t.value[node, 0, 0]


def test_refuses_what_does_not_decompose(iris):
    X, y = iris
    gbc = GradientBoostingClassifier(n_estimators=5, random_state=0).fit(X, y)
    with pytest.raises(MethodError, match="nonlinear transform of a sum of trees"):
        whybox.explain(gbc, X.iloc[:2], method="tree")                 # path-dependent: needs the trees' output
    with pytest.raises(MethodError, match="scikit-learn decision trees"):
        whybox.explain(LogisticRegression(max_iter=300).fit(X, y), X.iloc[:2], method="tree", background=X.iloc[:5])
    with pytest.raises(MethodError, match="wrapped function"):
        whybox.explain(lambda Z: Z.sum(1), X.iloc[:2].to_numpy(), method="tree")
    with pytest.raises(whybox.InputError, match="feature_perturbation"):
        whybox.explain(gbc, X.iloc[:2], method="tree", output="decision_function", feature_perturbation="x")


def _boosters(diabetes, iris):
    xgboost = pytest.importorskip("xgboost")
    lightgbm = pytest.importorskip("lightgbm")
    (Xd, yd), (Xi, yi) = diabetes, iris
    yb = (yd > 140).astype(int)
    yield "xgboost regressor", xgboost.XGBRegressor(n_estimators=20, max_depth=4).fit(Xd, yd), Xd, "predict", None
    yield "xgboost binary margin", xgboost.XGBClassifier(n_estimators=10, max_depth=3).fit(Xd, yb), Xd, "raw", None
    yield "xgboost 3-class margin", xgboost.XGBClassifier(n_estimators=8, max_depth=3).fit(Xi, yi), Xi, "raw", "all"
    yield "lightgbm regressor", lightgbm.LGBMRegressor(n_estimators=20, verbose=-1).fit(Xd, yd), Xd, "predict", None
    yield "lightgbm binary margin", lightgbm.LGBMClassifier(n_estimators=10, verbose=-1).fit(Xd, yb), Xd, "raw", None
    yield "lightgbm 3-class margin", lightgbm.LGBMClassifier(n_estimators=8, verbose=-1).fit(Xi, yi), Xi, "raw", "all"


def test_xgboost_and_lightgbm_margins_equal_brute_force(diabetes, iris):
    for name, model, X, output, target in _boosters(diabetes, iris):
        rows, bg = X.iloc[[3, 50, 100]], X.iloc[::31]
        e = whybox.explain(model, rows, method="tree", background=bg, output=output, target=target)
        exact = whybox.explain(model, rows, method="shapley", background=bg, output=output, target=target)
        # XGBoost sums its leaves in float32: agreement to float32 precision of the output's scale
        tol = 1e-6 * max(1.0, float(np.abs(e.predictions).max())) if name.startswith("xgboost") else 1e-9
        np.testing.assert_allclose(e.values, exact.values, atol=tol, err_msg=name)
        np.testing.assert_allclose(e.values.sum(1) + e.base_values, e.predictions, atol=tol, err_msg=name)


def test_boosters_path_dependent_match_their_own_treeshap(diabetes):
    xgboost = pytest.importorskip("xgboost")
    lightgbm = pytest.importorskip("lightgbm")
    X, y = diabetes
    xgb = xgboost.XGBRegressor(n_estimators=30, max_depth=4).fit(X, y)
    c = xgb.get_booster().predict(xgboost.DMatrix(X.iloc[:30]), pred_contribs=True)
    np.testing.assert_allclose(whybox.explain(xgb, X.iloc[:30], method="tree").values, c[:, :-1], atol=1e-4)
    lgb = lightgbm.LGBMRegressor(n_estimators=30, verbose=-1).fit(X, y)
    c = lgb.predict(X.iloc[:30], pred_contrib=True)
    np.testing.assert_allclose(whybox.explain(lgb, X.iloc[:30], method="tree").values, c[:, :-1], atol=1e-9)
    # raw Boosters, and LightGBM fitted on column names with spaces (it stores underscores)
    e = whybox.explain(xgb.get_booster(), X.iloc[:2], method="tree", background=X.iloc[:5], output="raw")
    assert e.values.shape == (2, 7)
    Xs = X.rename(columns=lambda col: col + " level")
    lgs = lightgbm.LGBMRegressor(n_estimators=10, verbose=-1).fit(Xs, y)
    es = whybox.explain(lgs, Xs.iloc[:2], method="tree", background=Xs.iloc[:5])
    assert es.feature_names[0] == "age level"
    np.testing.assert_allclose(es.values.sum(1) + es.base_values, lgs.predict(Xs.iloc[:2]), atol=1e-9)
    eb = whybox.explain(lgs.booster_, Xs.iloc[:2], method="tree", background=Xs.iloc[:5], output="raw")
    np.testing.assert_allclose(eb.values, es.values, atol=1e-9)
    xgc = xgboost.XGBClassifier(n_estimators=3).fit(X, (y > 140).astype(int))
    with pytest.raises(MethodError, match="output='raw'"):                 # probabilities, no background
        whybox.explain(xgc, X.iloc[:2], method="tree")
    p = whybox.explain(xgc, X.iloc[:2], method="tree", background=X.iloc[:5])   # with one: exact by enumeration
    assert p.params["exact"] is True and p.values.shape == (2, 7)


def test_auto_picks_the_tree_recipe_for_tree_ensembles(diabetes, iris):
    X, y = diabetes
    rf = RandomForestRegressor(n_estimators=5, random_state=0).fit(X, y)
    e = whybox.explain(rf, X.iloc[:3], method="auto", background=X.iloc[:10])
    assert e.method == "tree" and e.n_model_rows == 3
    assert whybox.Explainer(rf, data=X, background=X.iloc[:10]).explain(X.iloc[:2], method="auto").method == "tree"
    Xi, yi = iris
    gbc = GradientBoostingClassifier(n_estimators=5, random_state=0).fit(Xi, yi)   # probabilities: not by trees
    assert whybox.explain(gbc, Xi.iloc[:2], method="auto", background=Xi.iloc[:5]).method != "tree"
    # a neighbourhood asks for the most faithful method there: choose decides, even for trees
    rf_c = whybox.explain(rf, X.iloc[:2], method="auto", background=X.iloc[:10], neighbourhood="gaussian(0.05)")
    assert "chosen_by" in rf_c.params


def test_boosted_probabilities_exact_by_enumeration_and_labelled_approx_beyond(iris):
    from sklearn.datasets import make_classification
    X, y = iris
    gbc = GradientBoostingClassifier(n_estimators=10, random_state=0).fit(X, y)
    e = whybox.explain(gbc, X.iloc[:3], method="tree", background=X.iloc[::30], target="all")
    exact = whybox.explain(gbc, X.iloc[:3], method="shapley", background=X.iloc[::30], target="all")
    np.testing.assert_allclose(e.values, exact.values, atol=1e-12)
    assert e.params["exact"] is True and "enumeration" in e.params["estimator"]
    Xw, yw = make_classification(n_samples=200, n_features=16, random_state=0)
    wide = GradientBoostingClassifier(n_estimators=10, random_state=0).fit(Xw, yw)
    a = whybox.explain(wide, Xw[:2], method="tree", background=Xw[:4])
    assert a.params["exact"] is False and a.params["approx"] is True and a.stderr is not None   # never claimed exact


def test_choose_considers_the_tree_recipe(diabetes):
    X, y = diabetes
    rf = RandomForestRegressor(n_estimators=5, random_state=0).fit(X, y)
    c = whybox.choose(rf, X.iloc[:3], background=X.iloc[:10], candidates=None, n_samples=50)
    assert "tree" in set(c.ranking["method"]) and c.ranking.loc[c.ranking["method"] == "tree", "explain_rows"].iloc[0] == 3


@pytest.mark.parametrize("kernel", _kernels())
def test_missing_values_follow_the_trees_missing_branches(diabetes, kernel):
    """NaN in the rows and the background goes down each split's missing branch, as the model sends it:
    equal to enumeration through the model (which sees the NaN) for scikit-learn's HistGradientBoosting
    and random forest, XGBoost and LightGBM; path-dependent values equal the boosters' own TreeSHAP."""
    from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor
    X, y = diabetes
    Xn = X.mask(np.random.default_rng(1).random(X.shape) < 0.15)
    models = [HistGradientBoostingRegressor(max_iter=25, random_state=0).fit(Xn, y),
              RandomForestRegressor(n_estimators=4, random_state=0).fit(Xn, y)]
    try:
        import lightgbm
        import xgboost
        models += [xgboost.XGBRegressor(n_estimators=15, max_depth=4).fit(Xn, y),
                   lightgbm.LGBMRegressor(n_estimators=15, verbose=-1, min_child_samples=5).fit(Xn, y)]
    except ImportError:
        pass
    rows, bg = Xn.iloc[[1, 5, 7, 9]], Xn.iloc[::40]
    assert rows.isna().any().any() and bg.isna().any().any()
    for model in models:
        name = type(model).__name__
        e = whybox.explain(model, rows, method="tree", background=bg, kernel=kernel)
        exact = whybox.explain(model, rows, method="shapley", background=bg)
        tol = 1e-6 * max(1.0, float(np.abs(e.predictions).max())) if name.startswith("XGB") else 1e-9
        np.testing.assert_allclose(e.values, exact.values, atol=tol, err_msg=name)
        p = whybox.explain(model, rows, method="tree", kernel=kernel)
        np.testing.assert_allclose(p.values.sum(1) + p.base_values, p.predictions, atol=tol, err_msg=name)
        if name.startswith("XGB"):
            c = model.get_booster().predict(xgboost.DMatrix(rows), pred_contribs=True)
            np.testing.assert_allclose(p.values, c[:, :-1], atol=1e-4)
        if name.startswith("LGBM"):
            np.testing.assert_allclose(p.values, model.predict(rows, pred_contrib=True)[:, :-1], atol=1e-9)
    yb = (y > 140).astype(int)
    hgc = HistGradientBoostingClassifier(max_iter=10, random_state=0).fit(Xn, yb)
    m = whybox.explain(hgc, rows, method="tree", background=bg, output="decision_function", kernel=kernel)
    np.testing.assert_allclose(m.values.sum(1) + m.base_values, hgc.decision_function(rows), atol=1e-9)
    with pytest.raises(MethodError, match="nonlinear"):                 # probabilities: not by trees
        whybox.explain(hgc, rows, method="tree", kernel=kernel)


def test_kernel_is_validated_and_a_refitted_model_is_read_again(diabetes):
    X, y = diabetes
    rf = RandomForestRegressor(n_estimators=4, random_state=0).fit(X, y)
    with pytest.raises(whybox.InputError, match="kernel"):
        whybox.explain(rf, X.iloc[:2], method="tree", kernel="cuda")
    ex = whybox.Explainer(rf, data=X, background=X.iloc[:10])
    before = ex.explain(X.iloc[:3], method="tree")
    rf.fit(X, -2.0 * y)                                                 # the same object, other trees
    after = ex.explain(X.iloc[:3], method="tree")
    fresh = whybox.explain(rf, X.iloc[:3], method="tree", background=X.iloc[:10])
    np.testing.assert_allclose(after.values, fresh.values, atol=1e-9)
    assert not np.allclose(after.values, before.values)
    from whybox.interactions import interactions                        # tree interactions read again too
    inter = interactions(ex.problem, X.iloc[:2], method="tree", order=2)
    rf.fit(X, y)
    again = interactions(ex.problem, X.iloc[:2], method="tree", order=2)
    np.testing.assert_allclose(again.values, interactions(rf, X.iloc[:2], X.iloc[:10], method="tree", order=2).values,
                               atol=1e-9)
    assert not np.allclose(again.values, inter.values)
