"""Feature groups, model adapters (sklearn pipelines on raw DataFrames, torch, callables), counting."""
import numpy as np
import pandas as pd
import pytest

import whybox
from whybox import Model


def onehot_data(n=200, seed=0):
    rng = np.random.default_rng(seed)
    colour = rng.integers(0, 3, size=n)
    df = pd.DataFrame({
        "age": rng.normal(40, 10, n),
        "c_red": (colour == 0).astype(float), "c_green": (colour == 1).astype(float),
        "c_blue": (colour == 2).astype(float), "income": rng.normal(3, 1, n)})
    return df


def onehot_model(X):
    X = np.asarray(X, dtype=float)
    return (0.05 * X[:, 0] + 2 * X[:, 1] - 1 * X[:, 3] + 0.5 * X[:, 4] * X[:, 2]).reshape(-1, 1)


def test_onehot_group_is_one_feature_and_column_order_is_irrelevant():
    df = onehot_data()
    groups = {"colour": ["c_red", "c_green", "c_blue"]}
    X, bg = df.iloc[:5], df.iloc[50:80]
    e = whybox.explain(onehot_model, X, method="shapley", background=bg, groups=groups)
    assert e.feature_names == ["age", "colour", "income"]
    assert e.values.shape == (5, 3)
    np.testing.assert_allclose(e.values.sum(1) + e.base_values, e.predictions, atol=1e-10)
    assert set(e.data[:, 1]) <= {"c_red", "c_green", "c_blue"}
    # the same model fed its columns in another order
    order = ["income", "c_blue", "age", "c_green", "c_red"]
    perm = [df.columns.get_loc(c) for c in order]
    inv = np.argsort(perm)
    def permuted_model(Z):
        return onehot_model(np.asarray(Z)[:, inv])
    e2 = whybox.explain(permuted_model, X[order], method="shapley", background=bg[order], groups=groups)
    vals2 = dict(zip(e2.feature_names, e2.values.T))
    for j, name in enumerate(e.feature_names):
        np.testing.assert_allclose(e.values[:, j], vals2[name], atol=1e-12)
    # kernelshap on the same grouping: same seed, same numbers in both column orders
    k1 = whybox.explain(onehot_model, X, method="kernelshap", background=bg, groups=groups, seed=3)
    k2 = whybox.explain(permuted_model, X[order], method="kernelshap", background=bg[order], groups=groups, seed=3)
    k2v = dict(zip(k2.feature_names, k2.values.T))
    for j, name in enumerate(k1.feature_names):
        np.testing.assert_allclose(k1.values[:, j], k2v[name], atol=1e-10)


def test_groups_in_gradient_methods_sum_columns():
    df = onehot_data()
    X = df.iloc[:3]
    plain = whybox.explain(onehot_model, X, method="gradxinput")
    grouped = whybox.explain(onehot_model, X, method="gradxinput", groups={"colour": ["c_red", "c_green", "c_blue"]})
    np.testing.assert_allclose(grouped.values[:, 1], plain.values[:, 1:4].sum(1), atol=1e-8)


def test_sklearn_pipeline_on_raw_dataframe_with_strings():
    from sklearn.compose import ColumnTransformer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    rng = np.random.default_rng(0)
    n = 300
    df = pd.DataFrame({"age": rng.normal(40, 10, n), "city": rng.choice(["paris", "rome", "oslo"], n),
                       "hours": rng.integers(10, 60, n)})
    y = ((df.age > 40) ^ (df.city == "rome")).astype(int)
    pipe = make_pipeline(ColumnTransformer([("num", StandardScaler(), ["age", "hours"]),
                                            ("cat", OneHotEncoder(), ["city"])]), LogisticRegression())
    pipe.fit(df, y)
    X = df.iloc[:4]
    e = whybox.explain(pipe, X, method="kernelshap", background=df.iloc[100:130], seed=0)
    assert e.feature_names == ["age", "city", "hours"]
    assert e.output_names == [0, 1]
    np.testing.assert_allclose(e.predictions, pipe.predict_proba(X)[np.arange(4), e.target], atol=1e-12)
    np.testing.assert_allclose(e.values.sum(1) + e.base_values, e.predictions, atol=1e-10)
    assert e.data[0, 1] == X.city.iloc[0]
    # columns given in another order are reordered to what the pipeline was fitted on
    e2 = whybox.explain(pipe, X[["hours", "city", "age"]], method="kernelshap", background=df.iloc[100:130], seed=0)
    np.testing.assert_allclose(e2.values, e.values)
    with pytest.raises(whybox.InputError, match="default all-zeros baseline"):
        whybox.explain(pipe, X, method="kernelshap")
    with pytest.raises(whybox.InputError, match="non-numeric"):
        whybox.explain(pipe, X, method="gradient", background=df.iloc[100:130])


def test_model_counts_batches_and_budget():
    calls = []
    def f(X):
        calls.append(len(X))
        return X.sum(1)
    m = Model(f, batch_size=100, budget=1000)
    out = m(np.ones((250, 3)))
    assert out.shape == (250, 1)
    assert calls == [100, 100, 50] and m.n_rows == 250 and m.n_calls == 3
    with pytest.raises(whybox.BudgetError, match="budget exhausted"):
        m(np.ones((800, 3)))
    assert m.n_rows == 250


def test_model_cache_skips_repeated_rows():
    seen = []
    m = Model(lambda X: (seen.append(len(X)), X[:, :1] * 2)[1], cache=True)
    X = np.array([[1.0, 2.0], [1.0, 2.0], [3.0, 4.0]])
    np.testing.assert_allclose(m(X)[:, 0], [2, 2, 6])
    np.testing.assert_allclose(m(X[::-1])[:, 0], [6, 2, 2])
    assert seen == [2] and m.n_rows == 2


def test_explain_spends_exactly_what_it_counts():
    rows = []
    def f(X):
        rows.append(len(X))
        return np.tanh(X).sum(1)
    rng = np.random.default_rng(0)
    e = whybox.explain(f, rng.normal(size=(4, 5)), method="lime", background=rng.normal(size=(3, 5)), n_samples=50)
    assert e.n_model_rows == sum(rows) and e.n_model_calls == len(rows)


def test_torch_classifier_and_target_selection():
    import torch
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.Tanh(), torch.nn.Linear(8, 3), torch.nn.Softmax(-1))
    X = np.random.default_rng(0).normal(size=(5, 4))
    with torch.no_grad():
        probs = net(torch.tensor(X, dtype=torch.float32)).numpy()
    e = whybox.explain(net, X, method="integrated_gradients", steps=64, baseline="zeros", target="predicted")
    np.testing.assert_array_equal(e.target, probs.argmax(1))
    # completeness of IG: sum = f(x) - f(baseline)
    np.testing.assert_allclose(e.values.sum(1), e.predictions - e.base_values, atol=2e-4)
    # three classes: by default every output, each complete
    a = whybox.explain(net, X, method="integrated_gradients", steps=64, baseline="zeros")
    assert a.values.shape == (5, 4, 3)
    np.testing.assert_allclose(a.values.sum(1), a.predictions - a.base_values, atol=2e-4)
    e2 = whybox.explain(net, X, method="gradient", target=2)
    assert (e2.target == 2).all()
    e3 = whybox.explain(net, X, method="gradient", target=[0, 1, 2, 0, 1])
    assert e3.target.tolist() == [0, 1, 2, 0, 1]


def test_class_labels_as_targets():
    from sklearn.linear_model import LogisticRegression
    rng = np.random.default_rng(0)
    X = rng.normal(size=(90, 3))
    y = np.array(["cat", "dog", "eel"])[rng.integers(0, 3, 90)]
    lr = LogisticRegression().fit(X, y)
    e = whybox.explain(lr, X[:2], method="occlusion", target="eel")
    assert e.target_names() == ["eel", "eel"]
    with pytest.raises(whybox.InputError, match="unknown target 'fox'"):
        whybox.explain(lr, X[:2], method="occlusion", target="fox")


def test_kmeans_and_sample_backgrounds():
    df = onehot_data(400)
    bg = whybox.kmeans(df, 10, seed=0)
    assert bg.data.shape == (10, 5) and abs(bg.weights.sum() - 1) < 1e-12
    # one-hot columns stay valid 0/1 values
    assert set(np.unique(bg.data[:, 1:4])) <= {0.0, 1.0}
    s = whybox.sample(df, 30, seed=1)
    assert s.data.shape == (30, 5)
    e = whybox.explain(onehot_model, df.iloc[:2], method="kernelshap", background=bg)
    np.testing.assert_allclose(e.base_values, bg.weights @ onehot_model(bg.data)[:, 0], atol=1e-12)


def test_a_call_budget_never_changes_the_callers_model():
    import whybox
    m = whybox.Model(lambda X: X.sum(axis=1), batch_size=7)
    X = np.random.default_rng(0).normal(size=(3, 4))
    e = whybox.explain(m, X, method="occlusion", background=np.zeros((1, 4)), budget=100, batch_size=2)
    assert m.budget is None and m.batch_size == 7                    # untouched
    assert m.n_rows == e.n_model_rows > 0                             # but every row is on its meter
    capped = whybox.Model(lambda X: X.sum(axis=1), budget=5)
    with pytest.raises(whybox.BudgetError):                           # its own budget still holds
        whybox.explain(capped, X, method="occlusion", background=np.zeros((1, 4)), budget=1000)
