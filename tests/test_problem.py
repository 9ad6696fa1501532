"""The prepared problem (whybox.Explainer): built once, immutable, kinds only from data= or kinds=,
rows scored independently of their neighbours, labels vs indices, one tie rule in choose, column
order, and every parameter validated with an error that names it."""
import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LinearRegression, LogisticRegression

import whybox
from whybox import Background, InputError, ModelError
from whybox import metrics as M
from whybox.explainers.run import CostWarning
from whybox.problem import ColumnOrderWarning, KindsWarning


@pytest.fixture(scope="module")
def credit():
    """Min-max scaled columns, one truly binary; some explained rows happen to be all 0/1."""
    rng = np.random.default_rng(0)
    n = 400
    X = pd.DataFrame({"income": rng.random(n), "debt": rng.random(n), "owner": rng.integers(0, 2, n).astype(float)})
    y = (X.income - X.debt + 0.3 * X.owner > 0.2).astype(int)
    return LogisticRegression().fit(X, y), X


def test_explainer_is_built_once_and_immutable(credit):
    lr, X = credit
    wb = whybox.Explainer(lr, data=X)
    assert wb.spec.kinds == ["continuous", "continuous", "binary"] and wb.output_names == [0, 1]
    assert wb.background.n_rows == 100 and wb.model.n_rows == 0
    with pytest.raises(AttributeError, match="immutable"):
        wb.spec = None
    e = wb.explain(X.iloc[:3], method="kernelshap", n_samples=64)
    t = wb.evaluate(X.iloc[:3], [e], metrics=["pgi"])
    assert t.loc["kernelshap", "pgi_n"] == 3
    assert wb.choose(X.iloc[:3], candidates=["occlusion", "kernelshap"]).winner in ("occlusion", "kernelshap")
    assert wb.narrate(e).ok
    cs = wb.counterfactuals(X.iloc[[0]], k=2)
    assert cs.metrics["validity"] == 1.0
    assert "Explainer(" in repr(wb)


def test_kinds_never_come_from_the_rows_explained(credit):
    lr, X = credit
    zero_one = pd.DataFrame({"income": [0.0, 1.0], "debt": [1.0, 0.0], "owner": [1.0, 0.0]})
    wb = whybox.Explainer(lr, data=X)
    e = wb.explain(zero_one, method="occlusion")
    assert wb.spec.kinds == ["continuous", "continuous", "binary"]         # unchanged by the rows
    a = M.pgi(wb, zero_one, e, k=3, seed=1)
    b = M.pgi(lr, zero_one, e, k=3, seed=1, data=X)
    np.testing.assert_array_equal(a, b)
    with pytest.warns(KindsWarning, match="kinds="):
        c = M.pgi(lr, zero_one, e, k=3, seed=1, background=X.iloc[:50])   # no data: continuous, with a warning
    assert not np.array_equal(a, c)


def _rowwise_score(X):
    """A model whose arithmetic is elementwise (+, -, *, / are exactly rounded): a row's output cannot
    depend on the other rows of its call, so the metrics' own row independence is checked bit for bit."""
    X = np.asarray(X, float)
    z = 2.0 * X[:, 0] - 1.5 * X[:, 1] + 0.3 * X[:, 2]
    return z / (1.0 + np.abs(z))


def test_a_row_scores_the_same_alone_and_in_a_batch(credit):
    lr, X = credit
    for model, exact in ((_rowwise_score, True), (lr, False)):
        wb = whybox.Explainer(model, data=X)
        rows = X.iloc[:12]
        e = wb.explain(rows, method="occlusion")
        for metric in (M.pgi, M.pgu, M.local_fidelity, M.infidelity):
            batch = metric(wb, rows, e, seed=3)
            for i in (0, 5, 11):
                alone = metric(wb, rows.iloc[[i]], e[i], seed=3)
                if exact:
                    assert alone[0] == batch[i], (metric.__name__, i)                # bitwise
                else:
                    # a BLAS model (scikit-learn's LogisticRegression) may round a row's last bit
                    # differently alone than in a batch (a dot product against a matrix product: on
                    # some CPUs a quarter of the rows differ in the last bit)
                    np.testing.assert_allclose(alone[0], batch[i], rtol=1e-12, atol=0, err_msg=metric.__name__)
            # the random numbers follow the row, not its position (a metric's own matrix products may
            # round the last bit differently when a row's points sit at another offset of a batch)
            shuffled = metric(wb, rows.iloc[::-1], e[::-1], seed=3)
            np.testing.assert_allclose(shuffled[::-1], batch, rtol=1e-12, atol=0)


def test_labels_win_over_indices():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(300, 3))
    y = np.array([1, 2, 3])[(X[:, 0] > 0).astype(int) + (X[:, 1] > 0).astype(int)]
    lr = LogisticRegression(max_iter=500).fit(X, y)
    e1 = whybox.explain(lr, X[:2], method="occlusion", target=1)
    assert e1.target.tolist() == [0, 0] and e1.target_names() == [1, 1]
    assert whybox.explain(lr, X[:2], method="occlusion", target=3).target.tolist() == [2, 2]
    with pytest.raises(InputError, match="target_index="):
        whybox.explain(lr, X[:2], method="occlusion", target=0)
    e0 = whybox.explain(lr, X[:2], method="occlusion", target_index=0)
    np.testing.assert_array_equal(e0.values, e1.values)
    with pytest.raises(InputError, match="target_index must be integers in 0..2"):
        whybox.explain(lr, X[:2], method="occlusion", target_index=3)
    with pytest.raises(InputError, match="not both"):
        whybox.explain(lr, X[:2], method="occlusion", target=1, target_index=0)


def test_choose_ranks_its_table_with_the_winner_rule():
    rng = np.random.default_rng(1)
    X = rng.normal(size=(100, 4))
    lin = LinearRegression().fit(X, X @ np.array([1.0, -2.0, 0.5, 0.0]))
    # on a linear model occlusion, exact Shapley and exact KernelSHAP all score fidelity 0 (a tie)
    c = whybox.choose(lin, X[:5], candidates=["shapley", "kernelshap", "occlusion"], background=X[:10])
    assert c.ranking.iloc[0].method == c.winner
    tied = c.ranking[c.ranking.score <= c.ranking.score.min() + 1e-12]
    assert c.winner == tied.sort_values("explain_rows").iloc[0].method


def test_column_order_is_taken_by_name(credit):
    lr, X = credit
    f = lambda A: lr.predict_proba(pd.DataFrame(np.asarray(A, float), columns=X.columns))  # noqa: E731  numpy model
    wb = whybox.Explainer(f, data=X)
    right = wb.explain(X.iloc[:3], method="occlusion")
    with pytest.warns(ColumnOrderWarning, match="reordered by name"):
        swapped = wb.explain(X.iloc[:3][["owner", "income", "debt"]], method="occlusion")
    np.testing.assert_array_equal(swapped.values, right.values)


def test_cost_warnings_give_the_figures(credit):
    lr, X = credit
    wide = pd.DataFrame(np.random.default_rng(0).random((300, 12)), columns=[f"c{i}" for i in range(12)])
    f = lambda A: np.asarray(A)[:, :1]  # noqa: E731
    with pytest.warns(CostWarning, match="n_samples=8 for d=12"):
        whybox.explain(f, wide.iloc[:1], method="kernelshap", n_samples=8, background=wide.iloc[:5])
    from whybox.explainers.run import _warn_costs         # the background check, without spending the rows

    class Ctx:
        d, n = 12, 20
        background = Background(wide.to_numpy(), np.full(300, 1 / 300))
    with pytest.warns(CostWarning, match="background has 300 rows.*12,289,220 model rows"):
        _warn_costs("kernelshap", {"n_samples": 2048}, Ctx(), 12_289_220)


# ------------------------------------------------------------------------ parameters, one place
F = lambda A: np.asarray(A, float) @ np.array([1.0, 2.0, 3.0])  # noqa: E731
X3 = np.random.default_rng(0).normal(size=(5, 3))


@pytest.mark.parametrize("call, pattern", [
    (lambda: whybox.explain(F, X3, method="lime", kernel_width=0), "kernel_width must be a finite number >= 1e-06"),
    (lambda: whybox.explain(F, X3, method="lime", n_samples=float("inf")), "n_samples must be an integer"),
    (lambda: whybox.explain(F, X3, method="integrated_gradients", steps=float("inf")), "steps must be an integer"),
    (lambda: whybox.choose(F, X3, budget=float("inf")), "budget must be an integer"),
    (lambda: M.pgi(F, X3, np.ones((5, 3)), n_perturb=0), "n_perturb must be an integer in"),
    (lambda: M.pgi(F, np.zeros((5000, 3)), np.ones((5000, 3)), n_perturb=10**6), r"would allocate [\d,.]+ GiB"),
    (lambda: whybox.explain(F, X3, seed=-1), "seed must be a non-negative integer"),
    (lambda: whybox.evaluate(F, X3, []), "explanations must be"),
    (lambda: whybox.evaluate(F, X3, ["occlusion"], n_samples=0), "n_samples must be an integer in"),
    (lambda: whybox.narrate(whybox.explain(F, X3[:2], method="occlusion"), row=1.5), "row must be an integer"),
    (lambda: whybox.narrate(whybox.explain(F, X3[:2], method="occlusion"), row=2), r"row must be an integer in 0\.\.1"),
    (lambda: whybox.explain(lambda A: np.zeros((len(A), 0)), X3), "returned no outputs"),
    (lambda: whybox.explain(F, X3, method="gradient", fd_step=0), "fd_step must be a finite number > 0"),
    (lambda: whybox.explain(lambda A: np.where(np.asarray(A)[:, :1] > 0, 1e308, -1e308), np.array([[1.0, 0, 0]]),
                            method="occlusion", background=np.array([[-1.0, 0, 0]])), "non-finite"),
])
def test_bad_parameters_are_named(call, pattern):
    with pytest.raises((InputError, ModelError), match=pattern):
        call()


@pytest.mark.parametrize("w, pattern", [([0.0, 0.0], "all zero"), ([1.5, -0.5], "non-negative"),
                                        ([np.nan, 1.0], "finite"), ([1.0, 1.0], "sum to 1, they sum to 2")])
def test_background_weights_are_checked(w, pattern):
    with pytest.raises(InputError, match=pattern):
        Background(np.zeros((2, 3)), np.asarray(w))


def test_counterfactual_constraints_must_be_mappings(credit):
    lr, X = credit
    from whybox.counterfactuals import counterfactuals

    for arg in ("monotone", "permitted_range"):
        with pytest.raises(InputError, match=f"{arg} must be a mapping"):
            counterfactuals(lr, X.iloc[[0]], data=X, **{arg: ["income"]})


# ------------------------------------------------------------------------ the output axis
@pytest.fixture(scope="module")
def three_class():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(300, 4))
    y = np.array(["low", "mid", "high"])[(X[:, 0] > 0).astype(int) + (X[:, 1] > 0).astype(int)]
    return LogisticRegression(max_iter=500).fit(X, y), X


@pytest.mark.parametrize("method", ["kernelshap", "shapley", "occlusion", "lime", "clime", "gradient",
                                    "smoothgrad", "integrated_gradients"])
def test_all_outputs_in_one_pass(three_class, method):
    lr, X = three_class
    wb = whybox.Explainer(lr, data=X, background=X[:15])
    e = wb.explain(X[:3], method=method, target="all")
    k = len(lr.classes_)
    assert e.values.shape == (3, 4, k) and e.base_values.shape == (3, k) and e.all_outputs
    singles = [wb.explain(X[:3], method=method, target=c) for c in lr.classes_]
    for t, s in enumerate(singles):
        np.testing.assert_allclose(e.values[:, :, t], s.values, rtol=0, atol=1e-12)
    assert e.n_model_rows <= min(s.n_model_rows for s in singles)           # one pass over the model rows
    if method in ("kernelshap", "shapley"):                                 # efficiency for every output
        np.testing.assert_allclose(e.values.sum(axis=1) + e.base_values, e.predictions, atol=1e-9)


def test_default_targets(three_class, credit):
    lr3, X3 = three_class
    assert whybox.explain(lr3, X3[:2], method="occlusion").all_outputs            # multiclass -> all
    lr2, X2 = credit
    e = whybox.explain(lr2, X2.iloc[:4], method="occlusion", background=X2.iloc[:10])
    assert e.target.tolist() == [1, 1, 1, 1]                                      # binary -> positive class
    p = whybox.explain(lr2, X2.iloc[:4], method="occlusion", background=X2.iloc[:10], target="predicted")
    assert p.target.tolist() == lr2.predict_proba(X2.iloc[:4]).argmax(1).tolist()
    reg = LinearRegression().fit(X3, np.c_[X3[:, 0], X3[:, 1]])                   # multi-output regressor -> all
    assert whybox.explain(reg, X3[:2], method="occlusion").all_outputs


def test_slicing_and_views_that_need_one_output(three_class):
    lr, X = three_class
    e = whybox.explain(lr, X[:5], method="occlusion", target="all")
    mid = e[:, :, "mid"]
    assert mid.values.shape == (5, 4) and set(mid.target_names()) == {"mid"}
    assert list(lr.classes_) == ["high", "low", "mid"]
    np.testing.assert_array_equal(e[:, :, 2].values, mid.values)
    assert e[1:3].values.shape == (2, 4, 3) and e[1:3, :, "low"].values.shape == (2, 4)
    for view in (e.global_importance, e.to_frame, e.to_shap, lambda: e.plot("decision"), lambda: e.top_features(0)):
        with pytest.raises(InputError, match=r"e\[:, :, <label>\]"):
            view()
    with pytest.raises(InputError, match="unknown output 'top'"):
        e[:, :, "top"]
    back = whybox.Explanation.from_json(e.to_json())
    np.testing.assert_array_equal(back.values, e.values)
    mixed = whybox.explain(lr, X[:20], method="occlusion", target="predicted")
    assert len(set(mixed.target.tolist())) > 1
    with pytest.raises(InputError, match="rows explain different outputs"):
        mixed.global_importance()
    mid.global_importance()                                      # one output: fine


def test_all_outputs_travel_and_metrics_score_one(three_class, tmp_path):
    lr, X = three_class
    e = whybox.explain(lr, X[:4], method="kernelshap", n_samples=64, background=X[:8])
    e.to_parquet(tmp_path / "e.parquet")
    back = whybox.Explanation.from_parquet(tmp_path / "e.parquet")
    np.testing.assert_array_equal(back.values, e.values)
    np.testing.assert_array_equal(back.stderr, e.stderr)
    full = whybox.explain_dataset(lr, X[:10], tmp_path / "d.parquet", chunk_size=4, method="occlusion",
                                  background=X[:8])
    assert full.values.shape == (10, 4, 3)
    with pytest.raises(InputError, match=r"metrics score one output"):
        M.pgi(lr, X[:4], e, background=X[:8])
    M.pgi(lr, X[:4], e[:, :, "mid"], background=X[:8])
    t = whybox.evaluate(lr, X[:4], ["occlusion"], metrics=["pgi"], background=X[:8])   # one output per row
    assert t.loc["occlusion", "pgi_n"] == 4
    with pytest.raises(InputError, match="narrative tells one output"):
        whybox.narrate(e)
    assert whybox.narrate(e[:, :, "low"]).ok


# ------------------------------------------------------------------------ missing values the model handles
def test_nan_passes_through_masking_for_models_that_handle_it():
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from whybox.problem import model_allows_nan

    rng = np.random.default_rng(0)
    X = pd.DataFrame(rng.normal(size=(300, 4)), columns=list("abcd"))
    X.loc[rng.random(300) < 0.2, "b"] = np.nan
    y = ((X.a + X.b.fillna(0)) > 0).astype(int)
    hgb = HistGradientBoostingClassifier(max_iter=20, random_state=0).fit(X, y)
    assert model_allows_nan(hgb) and model_allows_nan(make_pipeline(SimpleImputer(), LogisticRegression()).fit(X, y))
    assert not model_allows_nan(make_pipeline(StandardScaler(), LogisticRegression()))   # the scaler passes NaN on
    assert not model_allows_nan(LogisticRegression())
    wb = whybox.Explainer(hgb, data=X)
    rows = X[X.b.isna()].iloc[:3]
    for method in ("kernelshap", "shapley", "occlusion"):
        e = wb.explain(rows, method=method)
        assert np.isfinite(e.values).all()
        if method != "occlusion":
            np.testing.assert_allclose(e.values.sum(1) + e.base_values, e.predictions, atol=1e-9)
    with pytest.raises(InputError, match=r"column\(s\) \['b'\] hold missing values"):
        wb.explain(rows, method="gradient")
    with pytest.raises(InputError, match="column 'b'"):                        # a model without NaN support
        whybox.explain(LogisticRegression().fit(X.fillna(0), y), rows, background=X.fillna(0).iloc[:5])
    assert np.isnan(whybox.sample(X, 300).data).any()                          # sample keeps NaN
    half = X.copy()
    half.loc[:, "b"] = np.nan
    assert np.isnan(whybox.kmeans(half, 5).data[:, 1]).all()                    # and kmeans where most is missing
    with pytest.raises(InputError, match="allow_nan must be"):
        whybox.Explainer(hgb, data=X, allow_nan="sometimes")


def test_background_summaries_keep_int_and_bool_columns():
    df = pd.DataFrame({"age": np.arange(40), "member": np.arange(40) % 2 == 0, "x": np.linspace(0, 1, 40)})
    for bg in (whybox.kmeans(df, 4), whybox.sample(df, 5)):
        types = bg.to_frame().dtypes.to_dict()
        assert str(types["age"]).startswith("int") and str(types["member"]) == "bool" and str(types["x"]) == "float64"
    with pytest.raises(InputError, match="k must be an integer"):
        whybox.kmeans(df, 2.5)


def test_integrated_gradients_with_many_steps_is_fast_and_complete():
    """Found by the unseeded fuzz run: 4,081 Gauss-Legendre nodes took 5 s (leggauss is O(n^3));
    more than 64 nodes now use 64-node panels."""
    import time

    f = lambda A: np.tanh(np.asarray(A, float) @ np.array([1.0, -2.0, 0.5]))[:, None]  # noqa: E731
    X = np.random.default_rng(0).normal(size=(2, 3))
    t0 = time.perf_counter()
    e = whybox.explain(f, X, method="integrated_gradients", steps=4081, baseline="zeros")
    assert time.perf_counter() - t0 < 2.0
    np.testing.assert_allclose(e.values.sum(1), e.predictions - e.base_values, atol=1e-6)


def test_allow_nan_reaches_whole_dataset_runs(tmp_path):
    """explain_dataset (and Dask tasks) build the problem per chunk: allow_nan must reach it."""
    rng = np.random.default_rng(1)
    X = rng.normal(size=(40, 3))
    X[::4, 1] = np.nan
    f = lambda A: np.nan_to_num(np.asarray(A, float)) @ np.array([1.0, 2.0, 3.0])  # noqa: E731
    e = whybox.explain_dataset(f, X, tmp_path / "n.parquet", chunk_size=16, method="occlusion",
                               background=np.zeros((1, 3)), allow_nan=True)
    assert e.values.shape == (40, 3) and np.isfinite(e.values).all()
