"""Bad input gets a clear error that names the problem, never a traceback from deep inside."""
import numpy as np
import pandas as pd
import pytest

import whybox
from whybox import BudgetError, InputError, MethodError, ModelError


def f(X):
    return np.asarray(X, dtype=float).sum(1)


X = np.arange(12, dtype=float).reshape(3, 4)


def test_wrong_number_of_columns():
    with pytest.raises(InputError, match="has 5 columns"):
        whybox.explain(f, X, background=np.zeros((2, 5)))
    with pytest.raises(InputError, match="feature_names has 3 names but X has 4 columns|X has 4 columns but"):
        whybox.explain(f, X, feature_names=["a", "b", "c"])


def test_sklearn_model_wrong_columns():
    from sklearn.linear_model import LinearRegression
    df = pd.DataFrame(X, columns=list("abcd"))
    lr = LinearRegression().fit(df, [1, 2, 3])
    with pytest.raises(InputError, match=r"missing column\(s\) \['d'\]"):
        whybox.explain(lr, df[["a", "b", "c"]])
    with pytest.raises(InputError, match="X has 3 columns but the model/feature names expect 4"):
        whybox.explain(lr, X[:, :3])


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_nan_or_inf_in_X(bad):
    Xb = X.copy()
    Xb[1, 2] = bad
    with pytest.raises(InputError, match="NaN/inf value.*row 1, column 2"):
        whybox.explain(f, Xb)


def test_nan_in_dataframe_and_background():
    df = pd.DataFrame({"a": [1.0, None], "b": ["x", "y"]})
    with pytest.raises(InputError, match="NaN/inf"):
        whybox.explain(f, df, background=df)
    with pytest.raises(InputError, match="background contains"):
        whybox.explain(f, X, background=np.full((1, 4), np.nan))


def test_unknown_feature_or_group_names():
    with pytest.raises(InputError, match="unknown feature 'zz'"):
        whybox.explain(f, X, feature_names=list("abcd"), groups={"g": ["a", "zz"]})
    with pytest.raises(InputError, match="in two groups"):
        whybox.explain(f, X, feature_names=list("abcd"), groups={"g": ["a", "b"], "h": ["b", "c"]})
    with pytest.raises(InputError, match="duplicates"):
        whybox.explain(f, X, feature_names=list("abca"))
    with pytest.raises(InputError, match="column index 9 out of range"):
        whybox.explain(f, X, groups=[[0, 9]])


def test_model_that_raises_is_wrapped_and_named():
    def broken(X):
        raise RuntimeError("GPU on fire")
    broken.__name__ = "my_model"
    with pytest.raises(ModelError, match="model 'my_model' raised RuntimeError.*GPU on fire"):
        whybox.explain(broken, X)


@pytest.mark.parametrize("out,msg", [
    (lambda X: np.ones(len(X) + 1), r"returned (\d+) rows for (?!\1)\d+ input rows"),
    (lambda X: np.full(len(X), np.nan), "NaN/inf"),
    (lambda X: np.ones((len(X), 2, 2)), "shape"),
    (lambda X: ["a"] * len(X), "non-numeric"),
])
def test_model_returning_garbage(out, msg):
    with pytest.raises(ModelError, match=msg):
        whybox.explain(out, X)


def test_budget_too_small_fails_before_any_query():
    calls = []
    def counted(Z):
        calls.append(len(Z))
        return f(Z)
    with pytest.raises(BudgetError, match=r"needs [\d,]+ model rows but the budget has 100 left"):
        whybox.explain(counted, X, method="kernelshap", budget=100, background=np.zeros((10, 4)))
    assert calls == []
    e = whybox.explain(counted, X, method="occlusion", budget=100)
    assert e.n_model_rows <= 100


def test_exact_shapley_with_too_many_features():
    wide = np.zeros((1, 20))
    with pytest.raises(MethodError, match=r"d=20 .*1,048,576 coalitions.*kernelshap"):
        whybox.explain(lambda Z: Z.sum(1), wide, method="shapley")


def test_unknown_method_and_parameter():
    with pytest.raises(MethodError, match="unknown method 'deeplift'"):
        whybox.explain(f, X, method="deeplift")
    with pytest.raises(MethodError, match=r"unknown parameter\(s\) \['nsamples'\]"):
        whybox.explain(f, X, method="lime", nsamples=10)
    with pytest.raises(InputError, match="n_samples must be an integer in"):
        whybox.explain(f, X, method="lime", n_samples=-3)


def test_not_a_model():
    with pytest.raises(InputError, match="cannot use an object of type int"):
        whybox.explain(42, X)


def test_bad_shapes():
    with pytest.raises(InputError, match="must be 2-D"):
        whybox.explain(f, np.zeros((2, 2, 2)))
    with pytest.raises(InputError, match="no rows"):
        whybox.explain(f, np.zeros((0, 3)))
    with pytest.raises(InputError, match="target has 2 entries for 3 rows"):
        whybox.explain(f, X, target=[0, 0])


def test_kernelshap_options_are_checked():
    with pytest.raises(InputError, match="strategy must be one of"):
        whybox.explain(f, X, method="kernelshap", strategy="fancy", background=np.zeros((3, 4)))
    with pytest.raises(InputError, match="stderr_strata must be an integer in"):
        whybox.explain(f, X, method="kernelshap", stderr_strata=0, background=np.zeros((3, 4)))
