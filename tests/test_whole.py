"""Global surrogates (whybox.global_surrogate) and data-free extraction (whybox.extract)."""
import importlib.util
import json

import numpy as np
import pandas as pd
import pytest
from sklearn.tree import DecisionTreeClassifier

import whybox
from whybox.errors import InputError, ModelError
from whybox.whole import InputSpec, extract, global_surrogate
from whybox.whole.fidelity import r2, r2_interval, wilson


@pytest.fixture(scope="module")
def depth3_tree():
    rng = np.random.default_rng(0)
    X = rng.uniform(0, 1, (20000, 4))
    y = ((X[:, 0] > 0.5) & (X[:, 1] < 0.3)) | (X[:, 2] > 0.8)
    return DecisionTreeClassifier(max_depth=3, random_state=0).fit(X, y), X[:1000]


# ------------------------------------------------------------------------------------------ surrogates
def test_tree_surrogate_recovers_a_depth3_tree(depth3_tree):
    bb, X = depth3_tree
    for seed in (0, 1):
        s = global_surrogate(bb, X, kind="tree", max_depth=3, budget=4000, seed=seed)
        assert s.fidelity["perturbed"].value == 1.0 and s.fidelity["perturbed"].n == 800
        assert s.fidelity["data"].value == 1.0
        # the same function: on 200,000 fresh uniform points the surrogate and the tree differ on < 0.05%
        Z = np.random.default_rng(9).uniform(0, 1, (200_000, 4))
        assert (s.predict(Z) == bb.predict(Z)).mean() > 0.9995
        assert s.n_queries == 4000 == sum(s.queries.values())
    text = s.text()
    assert "agrees with the model on 100.0%" in text and "x2 > 0.8" in text


def test_wilson_and_bootstrap_intervals_cover_the_truth():
    rng = np.random.default_rng(1)
    # a surrogate that disagrees on a known share of inputs: agreement p_true
    bb = lambda Z: (Z[:, 0] + 0.3 * Z[:, 1] > 0.6).astype(int)    # noqa: E731
    sur = lambda Z: (Z[:, 0] > 0.5).astype(int)                  # noqa: E731
    big = rng.uniform(0, 1, (400_000, 2))
    p_true = float((bb(big) == sur(big)).mean())
    cover = 0
    for _ in range(300):
        Z = rng.uniform(0, 1, (300, 2))
        lo, hi = wilson(float((bb(Z) == sur(Z)).sum()), 300)
        cover += lo <= p_true <= hi
    assert 0.91 <= cover / 300 <= 0.99
    # R² of a regression surrogate: percentile bootstrap
    f = lambda Z: np.sin(3 * Z[:, 0]) + Z[:, 1]                  # noqa: E731
    g = lambda Z: 0.9 * Z[:, 0] + Z[:, 1]                        # noqa: E731
    r2_true = r2(f(big), g(big))
    cover = 0
    for i in range(100):
        Z = rng.uniform(0, 1, (300, 2))
        lo, hi = r2_interval(f(Z), g(Z), n_boot=500, seed=i)
        cover += lo <= r2_true <= hi
    assert cover >= 85


def test_rule_list_on_mixed_data_reads_categories():
    rng = np.random.default_rng(2)
    n = 1500
    df = pd.DataFrame({"x0": rng.uniform(0, 1, n), "colour": rng.choice(["a", "b", "c"], n),
                       "x2": rng.integers(0, 10, n)})

    def bb(X):
        X = pd.DataFrame(X, columns=df.columns)
        return ((X["x0"].astype(float) > 0.5) & (X["colour"] == "a")).astype(int).to_numpy()

    s = global_surrogate(bb, df, kind="rules", task="classification", budget=5000, seed=0)
    assert s.fidelity["perturbed"].value >= 0.97
    assert any("colour is a" in t for t in s.rule_texts())
    pred = s.estimator.predict(df.iloc[:200])                     # the exported Pipeline takes the inputs as they are
    assert (pred == bb(df.iloc[:200].to_numpy(dtype=object))).mean() >= 0.97
    assert s.rule_texts()[-1].startswith("Otherwise")
    json.dumps(s.to_dict())


def test_sparse_linear_surrogate_picks_the_features_the_model_uses():
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(3)
    X = rng.normal(size=(3000, 10))
    w = np.zeros(10)
    w[[1, 4, 7]] = [2.0, -3.0, 1.5]
    y = (X @ w + 0.2 * rng.normal(size=3000) > 0).astype(int)
    bb = LogisticRegression().fit(X, y)
    s = global_surrogate(bb, X, kind="linear", max_features=3, budget=4000, seed=0)
    co = s.coefficients
    assert set(co[co != 0].index) == {"x1", "x4", "x7"}
    assert np.sign(co["x4"]) == -1 and s.fidelity["perturbed"].value >= 0.95
    assert "log-odds of '1'" in s.text()


def test_regression_surrogate_reports_r2_with_an_interval():
    from sklearn.datasets import load_diabetes
    from sklearn.ensemble import GradientBoostingRegressor

    X, y = load_diabetes(return_X_y=True, as_frame=True)
    bb = GradientBoostingRegressor(random_state=0, n_estimators=50).fit(X, y)
    s = global_surrogate(bb, X, kind="tree", max_depth=4, budget=3000, seed=0)
    f = s.fidelity["perturbed"]
    assert s.task == "regression" and f.metric == "r2" and f.low <= f.value <= f.high and 0.3 < f.value < 1
    assert "the model's output is about" in s.rule_texts()[0]
    assert s.predict(X.iloc[:5]).shape == (5,)


def test_surrogate_is_deterministic_and_counts_queries(depth3_tree):
    bb, X = depth3_tree
    m = whybox.as_model(bb)
    a = global_surrogate(m, X, kind="rules", budget=2500, seed=5)
    b = global_surrogate(bb, X, kind="rules", budget=2500, seed=5)
    assert a.rule_texts() == b.rule_texts() and a.fidelity["perturbed"].value == b.fidelity["perturbed"].value
    assert a.n_queries <= 2500
    ex = whybox.Explainer(bb, X)
    c = global_surrogate(ex, kind="rules", budget=2500, seed=5)       # an Explainer brings its data
    assert c.rule_texts() == a.rule_texts()


def test_surrogate_bad_input_is_named(depth3_tree):
    bb, X = depth3_tree
    with pytest.raises(InputError, match="budget=500 is too small"):
        global_surrogate(bb, X, budget=500)
    with pytest.raises(InputError, match="kind must be one of"):
        global_surrogate(bb, X, kind="forest")
    with pytest.raises(InputError, match="max_depth"):
        global_surrogate(bb, X, max_depth=0)
    with pytest.raises(InputError, match="needs data"):
        global_surrogate(bb)
    with pytest.raises(InputError, match="rules' summarises classifiers"):
        global_surrogate(lambda Z: Z[:, 0] * 2.5, X, kind="rules", budget=3000)
    if importlib.util.find_spec("interpret") is None:
        with pytest.raises(InputError, match=r"whybox\[gam\]"):
            global_surrogate(bb, X, kind="gam", budget=3000)


def test_gam_surrogate(depth3_tree):
    pytest.importorskip("interpret", reason="the gam surrogate needs interpret-core (whybox[gam])")
    bb, X = depth3_tree
    s = global_surrogate(bb, X[:400], kind="gam", budget=1500, rounds=1, seed=0)
    assert s.kind == "gam" and s.rules is None and s.fidelity["perturbed"].value > 0.8
    assert "additive model (EBM)" in s.text() and s.predict(X[:5]).shape == (5,)


# ------------------------------------------------------------------------------------------ extraction
@pytest.fixture(scope="module")
def voronoi():
    """A 10-class victim whose classes all have room in the input box (labels of the nearest centre)."""
    rng = np.random.default_rng(0)
    C = rng.uniform(0, 1, (10, 6))

    def victim(X):
        return np.argmin(((X[:, None, :] - C[None]) ** 2).sum(axis=2), axis=1)

    def proba(X):
        d = -((X[:, None, :] - C[None]) ** 2).sum(axis=2) * 20
        e = np.exp(d - d.max(axis=1, keepdims=True))
        return e / e.sum(axis=1, keepdims=True)
    test = rng.uniform(0, 1, (500, 6))
    return victim, proba, test


SMALL = dict(batch_size=128, clone_steps=10, hidden=(64,), n_generators=2, oversample=2)


@pytest.mark.parametrize("method", ["cabage", "dfme", "random"])
def test_extraction_counts_every_query_and_learns(voronoi, method):
    _, proba, test = voronoi
    m = whybox.Model(proba)
    e = extract(m, {"shape": [6], "low": 0, "high": 1}, method=method, budget=8000, test_data=test,
                checkpoints=[2000, 8000], seed=0, **SMALL)
    assert m.n_rows == e.n_queries + e.evaluation_queries and e.n_queries <= 8000 and e.evaluation_queries == 500
    assert e.n_classes == 10 and e.response == "probabilities"
    assert list(e.curve["queries"]) == sorted(e.curve["queries"]) and e.curve["queries"].iloc[-1] <= 8000
    assert e.agreement > 0.5                                       # learns: far above chance (0.1) after 8k queries
    if method == "dfme":
        assert "forward differences" in e.gradient
    pred = e.predict(test[:20])
    assert pred.shape == (20,) and e.predict_proba(test[:20]).shape == (20, 10)


def test_extraction_is_deterministic(voronoi):
    _, proba, test = voronoi
    a = extract(proba, {"shape": [6], "low": 0, "high": 1}, budget=1000, test_data=test, seed=3, **SMALL)
    b = extract(proba, {"shape": [6], "low": 0, "high": 1}, budget=1000, test_data=test, seed=3, **SMALL)
    assert a.curve["agreement"].tolist() == b.curve["agreement"].tolist()
    assert np.array_equal(a.predict_proba(test), b.predict_proba(test))


def test_labels_only_discovers_the_classes(voronoi, tmp_path):
    victim, _, test = voronoi
    e = extract(victim, InputSpec.make((6,), 0, 1), method="cabage", budget=2000, response="labels",
                n_classes=None, test_data=test, test_labels=victim(test), seed=0, **SMALL)
    assert sorted(e.classes) == list(range(10)) and e.response == "labels"
    assert e.curve["n_classes"].iloc[-1] == 10
    d = extract(victim, {"shape": [6], "low": 0, "high": 1}, method="dfme", budget=2000, test_data=test, seed=0, **SMALL)
    assert "labels only" in d.gradient
    e.save(tmp_path / "clone.pt")
    import torch
    saved = torch.load(tmp_path / "clone.pt", weights_only=True)
    assert saved["classes"] == e.classes and saved["spec"]["shape"] == [6]


def test_extraction_bad_input(voronoi, tmp_path):
    victim, proba, _ = voronoi
    with pytest.raises(InputError, match="budget=100 is too small for one cabage round"):
        extract(proba, {"shape": [6], "low": 0, "high": 1}, budget=100, batch_size=256)
    with pytest.raises(InputError, match="input ranges"):
        extract(proba, {"shape": [6]}, budget=1000)
    with pytest.raises(InputError, match="high .* must be greater than low"):
        InputSpec.make((2,), [0, 1], [1, 1])
    p = tmp_path / "spec.json"
    p.write_text(json.dumps({"features": [{"name": "a", "low": 0}]}))
    with pytest.raises(InputError, match="lack 'low'/'high'"):
        InputSpec.load(p)
    calls = {"n": 0}

    def fickle(X):
        calls["n"] += 1
        return proba(X)[:, : (10 if calls["n"] < 3 else 9)]
    with pytest.raises(ModelError, match="returned 9 outputs, earlier calls returned 10"):
        extract(fickle, {"shape": [6], "low": 0, "high": 1}, budget=2000, seed=0, **SMALL)
    with pytest.raises(ModelError, match="beyond the n_classes=3"):
        extract(victim, {"shape": [6], "low": 0, "high": 1}, budget=2000, response="labels", n_classes=3, **SMALL)
    with pytest.raises(InputError, match="method must be one of"):
        extract(proba, {"shape": [6], "low": 0, "high": 1}, method="maze")


@pytest.mark.parametrize("name, bad", [("max_depth", 0), ("max_depth", 2.0), ("max_rules", 1), ("max_features", 0),
                                       ("budget", -5), ("budget", None), ("rounds", -1), ("holdout", 1.0),
                                       ("confidence", 0), ("task", "ranking"), ("seed", -1), ("batch_size", 0)])
def test_every_surrogate_parameter_is_validated_by_name(depth3_tree, name, bad):
    bb, X = depth3_tree
    with pytest.raises(InputError, match=name):
        global_surrogate(bb, X[:100], **{name: bad})


@pytest.mark.parametrize("name, bad", [("budget", 0), ("batch_size", 4), ("n_generators", 0), ("oversample", 0.5),
                                       ("clone_steps", 0), ("zo_directions", 0), ("n_classes", 1), ("lr", 0),
                                       ("gen_lr", 2.0), ("balance", -1), ("response", "logits"), ("seed", "x"),
                                       ("uniform_member", 1), ("hidden", ())])
def test_every_extraction_parameter_is_validated_by_name(voronoi, name, bad):
    _, proba, _ = voronoi
    with pytest.raises(InputError, match=name):
        extract(proba, {"shape": [6], "low": 0, "high": 1}, **{name: bad})
