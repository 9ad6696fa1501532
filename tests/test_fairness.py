"""Fairness of decisions (whybox.fairness): the flip test, proxies, remedies, on a hand-built model and on
the synthetic census demo with its planted proxy and bias."""
import numpy as np
import pandas as pd
import pytest

import whybox
from whybox.datasets import census, census_demo
from whybox.errors import InputError
from whybox.fairness import find_proxies, flip_test, remedies
from whybox.fairness.flip import flipped_values
from whybox.fairness.groups import groups_of


def _hand_model(A):
    """Income above 50 gets the favourable class; between 45 and 50 only men (sex = 1) get it."""
    A = np.asarray(A, float)
    income, sex = A[:, 0], A[:, 1]
    p = np.where((income > 50) | ((income > 45) & (sex == 1)), 0.9, 0.1)
    return np.column_stack([1 - p, p])


@pytest.fixture(scope="module")
def hand():
    rng = np.random.default_rng(0)
    X = pd.DataFrame({"income": rng.uniform(30, 70, 400).round(1), "sex": rng.integers(0, 2, 400),
                      "age": rng.integers(18, 70, 400).astype(float)})
    return X


@pytest.fixture(scope="module")
def demo():
    return census_demo()


def test_flip_test_finds_exactly_the_rows_whose_decision_depends_on_the_attribute(hand):
    ft = flip_test(_hand_model, hand, "sex")
    window = np.where((hand["income"] > 45) & (hand["income"] <= 50))[0]
    assert ft.changed_rows.tolist() == window.tolist() and len(window) > 10
    rows = ft.rows.set_index("row")
    women = [i for i in window if hand["sex"][i] == 0]
    assert (rows.loc[women, "direction"] == "gains").all()
    assert (rows.loc[[i for i in window if i not in women], "direction"] == "loses").all()
    by = ft.by_group.set_index("group")
    assert by.loc["0", "changed"] == len(women) and by.loc["0", "gained"] == len(women) and by.loc["0", "lost"] == 0
    assert by.loc["0", "share"] == pytest.approx(len(women) / (hand["sex"] == 0).sum())
    # the attribution of the change is the whole change, on the attribute
    assert np.allclose(ft.rows["attribution:sex"], ft.rows["score_after"] - ft.rows["score_before"])
    assert ft.words[0].startswith("For ") and "if only “sex” were different" in ft.words[0]
    assert ft.n_queries == 1 + 2 * len(hand)           # a probe row, each row as it is and flipped


def test_flip_with_proxies_maps_them_and_attributes_the_change(demo):
    X = demo.X_test
    labels, g = groups_of(X["sex"])
    f, m = labels.index("female"), labels.index("male")
    rel = flipped_values(X, "relationship", g, m, f)
    men = X["relationship"][g == m].to_numpy()
    assert set(rel[men == "husband"]) == {"wife"}              # a category women never have
    assert (rel[men != "husband"] == men[men != "husband"]).all()   # shared categories stay
    hours = flipped_values(X, "hours_per_week", g, m, f)
    h_men = X["hours_per_week"][g == m].to_numpy()
    order = np.argsort(h_men, kind="stable")
    assert (np.diff(hours[order]) >= 0).all()                    # ranks kept (quantile map)
    assert set(hours) <= set(X["hours_per_week"][g == f])        # values the other group has
    ft = flip_test(demo.model, X, "sex", proxies=["relationship"])
    att = ft.rows[["attribution:sex", "attribution:relationship"]].sum(axis=1)
    assert np.allclose(att, ft.rows["score_after"] - ft.rows["score_before"], atol=1e-12)   # Shapley: adds up
    alone = flip_test(demo.model, X, "sex")
    assert ft.by_group["changed"].sum() > alone.by_group["changed"].sum() > 0
    assert "stand-in “relationship”" in ft.text()
    with pytest.raises(InputError, match="proxies"):
        flip_test(demo.model, X, "sex", proxies=["sex"])
    with pytest.raises(InputError, match="unknown attribute"):
        flip_test(demo.model, X, "gender")
    with pytest.raises(InputError, match="2 to 12 values"):
        flip_test(demo.model, X, "age")


def test_proxy_is_detected_and_dropping_it_closes_most_of_the_gap(demo):
    X = demo.X_test.iloc[:200]
    e = whybox.explain(demo.model, X, method="kernelshap", background=whybox.sample(demo.X_train, 10, seed=0),
                       n_samples=128, target_index=1, seed=0)
    table = find_proxies(X, "sex", explanation=e).set_index("feature")
    assert table.loc["relationship", "proxy"] and table.loc["relationship", "association"] > 0.3
    assert table["proxy"].sum() == 1 and table.loc["race", "association"] < 0.02
    g = (X["sex"] == "male").to_numpy()
    d = e.values[g].mean(axis=0) - e.values[~g].mean(axis=0)       # men are the favoured group here
    j = e.feature_names.index("relationship")
    assert table.loc["relationship", "gap_share"] == pytest.approx(d[j] / d.sum())
    assert d.sum() == pytest.approx(e.predictions[g].mean() - e.predictions[~g].mean(), rel=1e-6)  # efficiency
    rep = remedies(demo.model, demo.X_test, demo.y_test, "sex", X_train=demo.X_train, y_train=demo.y_train,
                   proxies=["relationship"], which=["without", "without_proxies"])
    t = rep.table().set_index("remedy")
    before = t.loc["original", "gap"]
    assert before > 0.2                                             # the planted bias shows
    assert t.loc["without_proxies", "gap"] < 0.4 * before           # most of the gap closed ...
    assert t.loc["without", "gap"] > t.loc["without_proxies", "gap"]   # ... which dropping sex alone does not
    assert not t.loc["without_proxies", "uses_attribute"] and t.loc["original", "uses_attribute"]
    print(t[["gap", "accuracy", "decisions_changed"]])


def test_threshold_remedy_closes_the_gap_where_fitted_and_states_the_cost(demo):
    for constraint, key in (("demographic_parity", "demographic_parity_difference"),
                            ("equal_opportunity", "equal_opportunity_difference")):
        rep = remedies(demo.model, demo.X_test, demo.y_test, "sex", which=["thresholds"], constraint=constraint, seed=0)
        o, r = rep.remedies
        assert r.gaps[key] < 0.03 < o.gaps[key]
        assert r.uses_attribute and "unlawful" in r.note and r.fitted_on == "these rows"
        cost = 100 * (o.gaps["accuracy"] - r.gaps["accuracy"])
        assert f"{cost:.1f} points lower" in rep.text()
        again = remedies(demo.model, demo.X_test, demo.y_test, "sex", which=["thresholds"], constraint=constraint, seed=0)
        assert (again.remedies[1].decided == r.decided).all()      # seeded


def test_reweighing_reduction_and_search(demo):
    small = census(1200, seed=3)
    Xtr, ytr, Xte, yte = small.X.iloc[:800], small.y[:800], small.X.iloc[800:], small.y[800:]
    model = whybox.datasets.census_model().fit(Xtr, ytr)
    rep = remedies(model, Xte, yte, "sex", X_train=Xtr, y_train=ytr, which=["reweighing", "reduction", "search"],
                   max_fits=12, seed=0)
    names = [r.name for r in rep.remedies]
    assert names[0] == "original" and set(names[1:]) | set(rep.skipped) == {"reweighing", "reduction", "search"}
    t = rep.table().set_index("remedy")
    assert t.loc["reduction", "gap"] < t.loc["original", "gap"] and not t.loc["reduction", "uses_attribute"]
    assert t.loc["reweighing", "gap"] < t.loc["original", "gap"]
    if "search" in t.index:
        assert t.loc["search", "accuracy"] >= t.loc["original", "accuracy"] - 0.01
    assert rep.n_fits > 12 + 1 and rep.to_dict()["sentences"][0].startswith("Today the selection rates")
    fig = rep.chart()
    assert len(fig.axes[0].collections) == len(rep.remedies)
    with pytest.raises(InputError, match="max_fits"):
        remedies(model, Xte, yte, "sex", X_train=Xtr, y_train=ytr, which=["search"], max_fits=51)
    with pytest.raises(InputError, match="time_limit"):
        remedies(model, Xte, yte, "sex", which=["search"], time_limit=301)
    no_train = remedies(model, Xte, yte, "sex", which=["without", "thresholds"])
    assert "X_train" in no_train.skipped["without"]
    gap = Xtr.copy()
    gap.iloc[0, gap.columns.get_loc("sex")] = None
    with pytest.raises(InputError, match="no value for 'sex'"):      # never put in some group silently
        remedies(model, Xte, yte, "sex", X_train=gap, y_train=ytr, which=["thresholds"])


def test_without_fairlearn_the_remedy_names_the_extra(demo, monkeypatch):
    import whybox.fairness.remedy as R

    assert R._fairlearn_missing() is None                     # installed by the test command
    monkeypatch.setattr(R, "_fairlearn_missing", lambda: "this remedy needs fairlearn: pip install 'whybox[fairness]'")
    rep = remedies(demo.model, demo.X_test, demo.y_test, "sex", which=["thresholds", "reduction"],
                   X_train=demo.X_train, y_train=demo.y_train)
    assert "whybox[fairness]" in rep.skipped["thresholds"] and "whybox[fairness]" in rep.skipped["reduction"]
    assert "Not tried: a different threshold per group" in rep.text()


def test_regressor_is_not_treated_as_a_classifier():
    from sklearn.linear_model import LinearRegression
    rng = np.random.default_rng(1)
    X = pd.DataFrame({"x": rng.normal(size=300), "g": rng.integers(0, 2, 300)})
    y = X["x"] + 0.5 * X["g"]
    reg = LinearRegression().fit(X, y)
    ft = flip_test(reg, X, "g")
    assert not ft.is_classifier and ft.by_group["share"].tolist() == [1.0, 1.0]
    assert ft.by_group["mean_change"].round(6).tolist() == [0.5, -0.5]
    assert "predicted value would change" in ft.text()
    with pytest.raises(InputError, match="regressor"):
        remedies(reg, X, y, "g")


def test_census_data_is_synthetic_and_deterministic():
    a, b = census(300, seed=5), census(300, seed=5)
    assert a.X.equals(b.X) and (a.y == b.y).all() and "SYNTHETIC" in a.description
    numeric = [c for c in a.X.columns if pd.api.types.is_numeric_dtype(a.X[c])]
    assert numeric == ["age", "hours_per_week", "capital_gain"] and a.protected == ["sex", "race"]
    assert pd.crosstab(a.X["relationship"], a.X["sex"]).loc["husband", "female"] == 0
    with pytest.raises(InputError, match="n must be"):
        census(10)
