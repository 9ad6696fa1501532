"""Tabular counterfactuals: validity, every constraint (property test over random constraints),
metrics, bad input."""
import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import whybox
from whybox import InputError
from whybox.counterfactuals import counterfactuals


@pytest.fixture(scope="module")
def mixed():
    """A DataFrame with an integer, two continuous and a string categorical column, in a pipeline."""
    from sklearn.compose import ColumnTransformer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler
    rng = np.random.default_rng(0)
    n = 600
    X = pd.DataFrame({"age": rng.integers(18, 70, n), "income": rng.normal(40, 12, n).round(2),
                      "debt": rng.gamma(2, 5, n).round(2), "job": rng.choice(["clerk", "nurse", "owner", "none"], n)})
    z = 0.05 * (X["age"] - 40) + 0.12 * (X["income"] - 40) - 0.15 * (X["debt"] - 10) + X["job"].map(
        {"clerk": 0, "nurse": 0.5, "owner": 1.5, "none": -2})
    y = (z + rng.normal(0, 0.5, n) > 0).astype(int)
    pre = ColumnTransformer([("num", StandardScaler(), ["age", "income", "debt"]),
                             ("cat", OneHotEncoder(handle_unknown="ignore"), ["job"])])
    model = make_pipeline(pre, LogisticRegression()).fit(X, y)
    return model, X


@pytest.fixture(scope="module")
def onehot():
    """A numeric array whose last three columns are one one-hot feature (a group)."""
    from sklearn.ensemble import RandomForestClassifier
    rng = np.random.default_rng(1)
    n = 500
    cat = rng.integers(0, 3, n)
    X = np.column_stack([rng.normal(size=n), rng.integers(0, 10, n).astype(float), np.eye(3)[cat]])
    y = ((X[:, 0] + 0.3 * X[:, 1] - 1.5 + 1.2 * (cat == 2)) > 0).astype(int)
    model = RandomForestClassifier(n_estimators=40, random_state=0).fit(X, y)
    return model, X


def _check(cs, model, X, x, *, vary=None, immutable=(), ranges=None, mono=None, groups=None):
    """Independent checks of validity and of every constraint."""
    P = cs._problem
    if len(cs) == 0:
        return
    out = whybox.as_model(model)(cs.counterfactuals if isinstance(X, pd.DataFrame) else cs.counterfactuals.to_numpy())
    assert P.is_valid(out).all()                                       # every counterfactual is valid
    for i in range(len(cs)):
        row = cs.counterfactuals.iloc[i]
        changed = set(cs.changes[i])
        assert changed                                                 # something changed
        if vary is not None:
            assert changed <= set(vary)
        assert not changed & set(immutable)
        for f, (lo, hi) in (ranges or {}).items():
            if f in changed:
                assert lo - 1e-9 <= float(row[f]) <= hi + 1e-9
        for f, d in (mono or {}).items():
            if d == "increase":
                assert float(row[f]) >= float(x[f]) - 1e-9
            else:
                assert float(row[f]) <= float(x[f]) + 1e-9
        if isinstance(X, pd.DataFrame):
            assert row["job"] in set(X["job"])
            assert float(row["age"]) == round(float(row["age"]))      # integer stays integer
        else:
            block = row.to_numpy()[2:5].astype(float)
            assert sorted(block) == [0.0, 0.0, 1.0]                     # a valid one-hot block
            assert float(row.iloc[1]) == round(float(row.iloc[1]))


def test_basic_mixed_and_metrics(mixed):
    model, X = mixed
    x = X.iloc[[3]]
    cs = counterfactuals(model, x, data=X, k=4, seed=0)
    assert len(cs) == 4 and cs.metrics["validity"] == 1.0
    assert 1 <= cs.metrics["sparsity"] <= 2.5 and cs.metrics["diversity"] > 0 and cs.metrics["plausibility"] < 5
    _check(cs, model, X, x.iloc[0])
    assert cs.to_frame().shape[0] == 4 and all(s.startswith("Change ") for s in cs.describe())
    assert cs.to_dict()["desired"].startswith("class")
    again = counterfactuals(model, x, data=X, k=4, seed=0)
    pd.testing.assert_frame_equal(cs.counterfactuals, again.counterfactuals)


def test_explainer_queries_the_data_once(mixed):
    """Many rows against one explainer: the donor outputs are queried once and the results equal the
    one-shot function's; the caller's frame is not modified."""
    from whybox.counterfactuals import CounterfactualExplainer
    model, X = mixed
    calls = []

    class Counted:                          # the pipeline, with every batch size recorded
        classes_, feature_names_in_ = model.classes_, model.feature_names_in_

        def fit(self):
            return self

        def predict_proba(self, df):
            calls.append(len(df))
            return model.predict_proba(df)
    f = Counted()
    ex = CounterfactualExplainer(f, X)
    cols_before = list(X.columns)
    first = ex.explain(X.iloc[[3]], k=3, seed=0)
    assert first.info["data_rows_queried"] == len(X) and len(X) in calls
    assert first.n_model_rows == sum(calls) and first.metrics["queries"] == sum(calls)
    n_after_first = len(calls)
    for row in (3, 7, 11):
        cs = ex.explain(X.iloc[[row]], k=3, seed=0)
        assert cs.info["data_rows_queried"] == 0
        one_shot = counterfactuals(f, X.iloc[[row]], data=X, k=3, seed=0)
        assert one_shot.n_model_rows == cs.n_model_rows + len(X)
        pd.testing.assert_frame_equal(cs.counterfactuals, one_shot.counterfactuals)
        assert cs.metrics["plausibility"] == pytest.approx(one_shot.metrics["plausibility"])
    assert calls[n_after_first:].count(len(X)) == 3            # only the three one-shot calls re-query it
    assert list(X.columns) == cols_before
    with pytest.raises(InputError, match="missing column"):
        ex.explain(X.iloc[[0]].drop(columns=["debt"]))
    with pytest.raises(InputError, match="one row"):
        ex.explain(X.iloc[:2])


def test_precompute_with_known_outputs(mixed):
    """Outputs the caller already has replace the donor query; a wrong shape is refused by name."""
    from whybox.counterfactuals import CounterfactualExplainer
    model, X = mixed
    ex = CounterfactualExplainer(model, X).precompute(model.predict_proba(X))
    cs = ex.explain(X.iloc[[3]], k=3, seed=0)
    assert cs.info["data_rows_queried"] == 0 and ex.model.n_rows == cs.n_model_rows
    pd.testing.assert_frame_equal(cs.counterfactuals, counterfactuals(model, X.iloc[[3]], data=X, k=3, seed=0).counterfactuals)
    with pytest.raises(InputError, match=r"outputs must be \(n_rows of data = 600, n_outputs\), got shape \(599, 2\)"):
        CounterfactualExplainer(model, X).precompute(model.predict_proba(X)[1:])


def test_alternatives_when_one_feature_dominates():
    """When one feature flips the outcome on its own, sparsification sends every candidate to that one
    change; the alternative passes hold it fixed and still return k distinct, valid counterfactuals."""
    class Dominant:
        classes_ = np.array([0, 1])

        def fit(self):
            return self

        def predict_proba(self, X):
            X = np.asarray(X, float)
            p = 1 / (1 + np.exp(-8 * (4 * X[:, 0] + X[:, 1:].sum(axis=1) - 2.2)))
            return np.column_stack([1 - p, p])
    X = pd.DataFrame(np.random.default_rng(0).uniform(size=(400, 4)), columns=list("abcd"))
    x = pd.DataFrame([[0.1] * 4], columns=list("abcd"))
    for seed in range(3):
        cs = counterfactuals(Dominant(), x, data=X, k=4, seed=seed)
        assert len(cs) == 4 and cs.info["alternative_passes"] >= 1
        assert {"a"} in [set(c) for c in cs.changes]                  # the one-feature change is kept
        assert sum("a" not in c for c in cs.changes) >= 2             # and alternatives without it
        assert len({frozenset(c) for c in cs.changes}) >= 3
        assert cs.metrics["validity"] == 1.0
        assert (Dominant().predict_proba(cs.counterfactuals)[:, 1] > 0.5).all()     # x itself is class 0


def test_onehot_groups_and_regression(onehot):
    model, X = onehot
    groups = {"x0": [0], "count": [1], "colour": [2, 3, 4]}
    x = X[np.argmax(model.predict_proba(X)[:, 1] < 0.3)]
    cs = counterfactuals(model, x, data=X, k=3, groups=groups, seed=1)
    assert len(cs) >= 1
    _check(cs, model, X, pd.Series(x, index=cs.counterfactuals.columns))
    from sklearn.linear_model import Ridge
    reg = Ridge().fit(X, X[:, 0] * 2 + X[:, 1])
    cs = counterfactuals(reg, X[0], data=X, desired_range=(5.0, 6.0), k=2, groups=groups)
    out = reg.predict(cs.counterfactuals.to_numpy())
    assert len(cs) >= 1 and ((out >= 5) & (out <= 6)).all()


FEATURES = ["age", "income", "debt", "job"]


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(row=st.integers(0, 599), vary=st.sets(st.sampled_from(FEATURES), min_size=1),
       immutable=st.sets(st.sampled_from(FEATURES), max_size=2),
       qlo=st.floats(0, 0.5), qhi=st.floats(0.5, 1.0), ranged=st.sampled_from(["income", "debt", None]),
       mono=st.dictionaries(st.sampled_from(["age", "income", "debt"]), st.sampled_from(["increase", "decrease"]),
                            max_size=2),
       jobs=st.sets(st.sampled_from(["clerk", "nurse", "owner", "none"]), min_size=1))
def test_property_every_constraint_holds(mixed, row, vary, immutable, qlo, qhi, ranged, mono, jobs):
    model, X = mixed
    x = X.iloc[[row]]
    ranges = {ranged: (float(X[ranged].quantile(qlo)), float(X[ranged].quantile(qhi)))} if ranged else {}
    permitted = {**ranges, "job": sorted(jobs)}
    try:
        cs = counterfactuals(model, x, data=X, k=3, features_to_vary=sorted(vary), immutable=sorted(immutable),
                             permitted_range=permitted, monotone=mono, n_candidates=300, rounds=3, seed=row)
    except InputError as exc:
        assert "impossible constraints" in str(exc)
        return
    _check(cs, model, X, x.iloc[0], vary=vary, immutable=immutable, ranges=ranges, mono=mono)
    for i in range(len(cs)):
        if "job" in cs.changes[i]:
            assert cs.counterfactuals.iloc[i]["job"] in jobs
    if len(cs) == 0:
        assert cs.reason and "relax the constraints" in cs.reason


def test_bad_input(mixed):
    model, X = mixed
    x = X.iloc[[0]]
    with pytest.raises(InputError, match="no feature may change"):
        counterfactuals(model, x, data=X, features_to_vary=["age"], immutable=["age"])
    with pytest.raises(InputError, match=r"permitted_range\['income'\] = \(50.0, 10.0\) is empty"):
        counterfactuals(model, x, data=X, permitted_range={"income": (50, 10)})
    with pytest.raises(InputError, match=r"permitted_range\['income'\] must be \(low, high\) numbers"):
        counterfactuals(model, x, data=X, permitted_range={"income": ("low", 3)})
    with pytest.raises(InputError, match=r"desired_range = \(5.0, 1.0\) is empty"):
        counterfactuals(model, x, data=X, desired_range=(5, 1))
    with pytest.raises(InputError, match="unknown feature 'salary'"):
        counterfactuals(model, x, data=X, immutable=["salary"])
    with pytest.raises(InputError, match="never seen in data"):
        counterfactuals(model, x, data=X, permitted_range={"job": ["astronaut"]})
    with pytest.raises(InputError, match="only numeric features can be monotone"):
        counterfactuals(model, x, data=X, monotone={"job": "increase"})
    with pytest.raises(InputError, match="have no permitted value other than x"):
        v = float(x["age"].iloc[0])
        counterfactuals(model, x, data=X, features_to_vary=["age"], permitted_range={"age": (v, v)})
    with pytest.raises(InputError, match="unknown desired_class"):
        counterfactuals(model, x, data=X, desired_class="maybe")
    with pytest.raises(InputError, match="missing column"):
        counterfactuals(model, x, data=X.drop(columns=["debt"]))
    with pytest.raises(InputError, match="one row"):
        counterfactuals(model, X.iloc[:2], data=X)


def test_cli_counterfactual(mixed, tmp_path):
    import json
    import subprocess
    import sys

    import skops.io as sio
    model, X = mixed
    sio.dump(model, tmp_path / "m.skops")
    X.to_csv(tmp_path / "d.csv", index=False)
    run = lambda *a: subprocess.run([sys.executable, "-m", "whybox.cli", "counterfactual", *map(str, a)],  # noqa: E731
                                    capture_output=True, text=True, timeout=300)
    p = run(tmp_path / "m.skops", tmp_path / "d.csv", "--row", "5", "--k", "3", "--immutable", "age",
            "--range", "job=owner|nurse", "--monotone", "debt=decrease", "--out", tmp_path / "cf.json")
    assert p.returncode == 0, p.stderr
    d = json.loads((tmp_path / "cf.json").read_text())
    assert d["metrics"]["validity"] == 1.0 and "Change " in p.stdout
    for c in d["changes"]:
        assert "age" not in c
    p = run(tmp_path / "m.skops", tmp_path / "d.csv", "--row", "5", "--vary", "age", "--immutable", "age")
    assert p.returncode == 2 and "impossible constraints" in p.stderr
    p = run(tmp_path / "m.skops", tmp_path / "d.csv", "--row", "999")
    assert p.returncode == 2 and "out of range" in p.stderr
