"""Anchors (Ribeiro et al. 2018): planted rules are recovered, every valid anchor holds on fresh
samples, the threshold is never claimed when not reached, and bad input is named."""
import numpy as np
import pandas as pd
import pytest

from whybox.anchors import anchor, anchor_text
from whybox.anchors.bandit import kl_lower, kl_upper
from whybox.errors import InputError
from whybox.whole.fidelity import wilson


def _planted(seed=0, n=3000):
    rng = np.random.default_rng(seed)
    df = pd.DataFrame({"x0": rng.uniform(0, 1, n), "x1": rng.normal(size=n), "x2": rng.uniform(0, 1, n),
                       "x3": rng.choice(["a", "b", "c", "d"], n)})

    def model(X):
        X = pd.DataFrame(X, columns=df.columns)
        p = ((X["x0"].astype(float) > 0.5) & (X["x3"] == "a")).astype(float).to_numpy()
        return np.column_stack([1 - p, p])
    return df, model


def test_kl_bounds_bracket_the_mean():
    for p, lv in [(0.9, 0.01), (1.0, 0.05), (0.0, 0.05), (0.5, 1.0)]:
        assert kl_lower(p, lv) <= p <= kl_upper(p, lv)
    assert kl_lower(1.0, np.log(20) / 300) > 0.98


def test_tabular_anchor_recovers_a_planted_rule():
    df, model = _planted()
    x = pd.DataFrame({"x0": [0.9], "x1": [0.0], "x2": [0.5], "x3": ["a"]})
    a = anchor(model, x, df, threshold=0.95, seed=0, budget=20_000)
    assert a.valid and a.prediction == 1
    assert set(a.features) == {"x0", "x3"} and "x3 = a" in a.predicates
    assert any(p.startswith("x0 >") for p in a.predicates)
    assert a.precision_low >= 0.95 and 0.05 < a.coverage < 0.2 and a.n_queries <= 20_000
    assert "IF" in a.text() and "THEN the model says '1'" in a.text()


@pytest.mark.parametrize("seed", range(6))
def test_every_valid_anchor_holds_on_fresh_samples(seed):
    """Property: over random models and rows, a returned valid anchor's precision on 10,000 fresh
    conditional samples is not significantly below the threshold (Wilson upper bound >= threshold)."""
    rng = np.random.default_rng(100 + seed)
    n, d = 2000, 4
    X = rng.normal(size=(n, d))
    w = rng.normal(size=d)
    b = rng.normal() * 0.5

    def model(Z):
        s = np.tanh(3 * (Z @ w + b)) + 0.5 * np.sin(2 * Z[:, 0])
        p = 1 / (1 + np.exp(-4 * s))
        return np.column_stack([1 - p, p])
    x = X[rng.integers(0, n)][None]
    a = anchor(model, x, X, threshold=0.9, seed=seed, budget=15_000)
    if not a.valid:
        assert "NOT valid" in a.text() and a.reason
        return
    from whybox.anchors.tabular import TabularAnchors
    from whybox.problem import Problem
    pr = Problem.build(model, X)
    rep = TabularAnchors(pr, x[0], X)
    Z, _ = rep.sample(a.indices, 10_000, np.random.default_rng(999))
    hits = float((model(Z).argmax(1) == model(x).argmax(1)[0]).sum())
    assert wilson(hits, 10_000)[1] >= 0.9, (a.text(), hits / 10_000)


def test_threshold_not_reached_is_said_plainly():
    rng = np.random.default_rng(1)
    X = rng.uniform(0, 1, (1000, 3))

    def coin(Z):                                   # an answer no rule can anchor: depends on noise
        p = (np.random.default_rng(int(1e6 * Z[:, 0].sum()) % 2**32).random(len(Z)) > 0.5).astype(float)
        return np.column_stack([1 - p, p])
    a = anchor(coin, X[:1], X, threshold=0.99, budget=3000, seed=0)
    assert not a.valid and "No anchor reached precision 0.99" in a.text() and a.reason
    assert a.n_queries <= 3000


def test_text_anchor_names_the_words_that_carry_the_prediction():
    from whybox.datasets import tfidf_classifier
    rng = np.random.default_rng(0)
    pos = ["great", "wonderful", "superb"]
    neg = ["awful", "boring", "dull"]
    filler = ["the", "film", "was", "a", "plot", "and", "story", "it", "actors", "scene"]
    texts, labels = [], []
    for i in range(600):
        lab = i % 2
        words = list(rng.choice(filler, 6)) + [rng.choice(pos if lab else neg)]
        rng.shuffle(words)
        texts.append(" ".join(words))
        labels.append(lab)
    clf = tfidf_classifier(texts, np.array(labels))
    a = anchor_text(clf, "the plot was superb and the actors", threshold=0.95, seed=0, budget=5000)
    assert a.valid and a.features == ["superb"] and a.predicates == ["'superb' is present"]
    assert a.coverage == 0.5


def test_bad_input_is_named():
    df, model = _planted()
    x = df.iloc[[0]]
    for kw, msg in [({"threshold": 0}, "threshold"), ({"threshold": 1.5}, "threshold"), ({"delta": 1}, "delta"),
                    ({"beam_size": 0}, "beam_size"), ({"batch_size": 0}, "batch_size"),
                    ({"budget": 50}, "budget=50 is too small for the bandit")]:
        with pytest.raises(InputError, match=msg):
            anchor(model, x, df, **kw)
    with pytest.raises(InputError, match="needs data"):
        anchor(model, x)
    with pytest.raises(InputError, match="one row"):
        anchor(model, df.iloc[:2], df)
    with pytest.raises(InputError, match="classifier"):
        anchor(lambda Z: np.asarray(Z[:, 0], float), df[["x0", "x1"]].iloc[[0]], df[["x0", "x1"]])
    with pytest.raises(InputError, match="non-empty string"):
        anchor_text(lambda t: np.ones((len(t), 2)) / 2, "  ")


# ------------------------------------------------------------------------------------------ prototypes
def _clusters():
    rng = np.random.default_rng(0)
    centres = np.array([[0, 0], [10, 0], [0, 10]], float)
    planted = np.array([[10, 10], [-8, -8], [18, -6]], float)
    X = np.vstack([c + rng.normal(size=(100, 2)) for c in centres] + [o + 0.1 * rng.normal(size=(8, 2)) for o in planted])
    return X, centres


def test_prototypes_one_per_cluster_and_criticisms_are_the_planted_outliers():
    from whybox.anchors.prototypes import prototypes
    X, centres = _clusters()
    same = lambda Z: np.column_stack([np.full(len(Z), 0.7), np.full(len(Z), 0.3)])     # noqa: E731
    p = prototypes(same, X, n_prototypes=3, n_criticisms=3)
    P = X[p.prototypes[0]]
    assert sorted(int(np.argmin(((centres - q) ** 2).sum(1))) for q in P) == [0, 1, 2]
    assert np.max(np.min(((P[:, None] - centres[None]) ** 2).sum(2), axis=1)) < 1.0   # near the centres
    groups = sorted((i - 300) // 8 for i in p.criticisms[0])
    assert groups == [0, 1, 2]                                     # one criticism in each planted group
    # per class, and local prototypes of one row
    split = lambda Z: (lambda q: np.column_stack([1 - q, q]))((Z[:, 0] > 5).astype(float))   # noqa: E731
    g = prototypes(split, X, n_prototypes=2, n_criticisms=1)
    assert set(g.prototypes) == {0, 1} and all(X[i, 0] > 5 for i in g.prototypes[1])
    loc = prototypes(split, X, n_prototypes=2, x=X[[5]], neighbours=50)
    assert loc.scope == "local" and all(np.linalg.norm(X[i] - X[5]) < 4 for i in loc.prototypes[0])
    with pytest.raises(InputError, match="need data"):
        prototypes(split, X[:0])


# ------------------------------------------------------------------------------------------ boundary, composite
def test_boundary_and_composite_tabular():
    from whybox.anchors.boundary import boundary
    from whybox.anchors.composite import composite
    df, model = _planted()
    x = pd.DataFrame({"x0": [0.9], "x1": [0.0], "x2": [0.5], "x3": ["a"]})
    b = boundary(model, x, df, seed=0)
    assert b.found and b.before == 1 and b.after == 0
    assert any(c.startswith("x0 ") or c.startswith("x3 ") for c in b.changes)
    assert b.text().startswith("The model would say '0' instead of '1' if ")
    c = composite(model, x, df, seed=0, lime_samples=300)
    t = c.text()
    assert "Anchor: IF" in t and "Boundary: The model would say" in t and "LIME:" in t and "Prototypes" in t
    d = c.to_dict()
    assert d["anchor"]["valid"] and d["boundary"]["found"] and d["prototypes"]["scope"] == "local"


def test_text_boundary_removes_the_word_that_carries_the_decision():
    from whybox.anchors.boundary import boundary_text
    from whybox.datasets import tfidf_classifier
    rng = np.random.default_rng(0)
    filler = ["the", "film", "was", "a", "plot", "and", "story", "it"]
    texts = [" ".join(list(rng.choice(filler, 5)) + [["dull", "superb"][i % 2]]) for i in range(400)]
    clf = tfidf_classifier(texts, np.arange(400) % 2)
    b = boundary_text(clf, "the plot was superb", vocabulary=["dull"])
    assert b.found and b.changes in (["'superb' were removed"], ["'superb' were 'dull'"])
    assert b.before == 1 and b.after == 0


def test_text_anchor_leaves_the_callers_model_alone():
    from whybox.datasets import tfidf_classifier
    from whybox.models.text import as_text_model
    rng = np.random.default_rng(1)
    texts = [" ".join(rng.choice(["a", "b", "c", "good", "bad"], 5)) for _ in range(200)]
    clf = tfidf_classifier(texts, np.array(["good" in t for t in texts], int))
    m = as_text_model(clf)
    a = anchor_text(m, "a good b c", budget=3000, seed=0)
    assert m.budget is None and m.n_rows == a.n_queries       # counted on the caller's meter, budget untouched


def test_text_prototypes_and_one_hot_groups():
    from whybox.anchors.prototypes import prototypes_text
    from whybox.datasets import tfidf_classifier
    rng = np.random.default_rng(2)
    topics = [["goal", "match", "team"], ["vote", "party", "election"], ["film", "actor", "scene"]]
    texts = [" ".join(rng.choice(topics[i % 3], 4)) for i in range(240)]
    clf = tfidf_classifier(texts, np.arange(240) % 3 == 2)               # class 1 = the film texts
    p = prototypes_text(clf, texts, n_prototypes=2, n_criticisms=1, seed=0)
    assert set(p.prototypes) == {False, True} or set(p.prototypes) == {0, 1}
    films = [t for t in p.examples(what="prototypes") if any(w in t for w in topics[2])]
    assert len(films) == 2                                            # the film class's two prototypes
    loc = prototypes_text(clf, texts, x="film actor scene film", n_prototypes=2)
    assert all(any(w in t for w in topics[2]) for t in loc.examples())
    # a one-hot block is one feature of an anchor
    n = 2000
    colour = rng.integers(0, 3, n)
    df = pd.DataFrame({"x0": rng.uniform(0, 1, n), "c_red": (colour == 0) * 1.0, "c_green": (colour == 1) * 1.0,
                       "c_blue": (colour == 2) * 1.0})

    def model(X):
        X = np.asarray(X, float)
        p1 = ((X[:, 0] > 0.5) & (X[:, 1] == 1)).astype(float)
        return np.column_stack([1 - p1, p1])
    x = pd.DataFrame({"x0": [0.8], "c_red": [1.0], "c_green": [0.0], "c_blue": [0.0]})
    a = anchor(model, x, df, groups={"colour": ["c_red", "c_green", "c_blue"]}, seed=0)
    assert a.valid and "colour" in a.features and "colour = c_red" in a.predicates


def test_prototype_indices_refer_to_the_data_passed_even_when_it_is_sampled():
    from whybox.anchors.prototypes import prototypes
    X, centres = _clusters()
    same = lambda Z: np.column_stack([np.full(len(Z), 0.7), np.full(len(Z), 0.3)])     # noqa: E731
    p = prototypes(same, X, n_prototypes=3, n_criticisms=0, max_rows=120, seed=0)
    idx = p.prototypes[0]
    assert np.array_equal(p.examples(), X[idx])
    assert np.max(np.min(((X[idx][:, None] - centres[None]) ** 2).sum(2), axis=1)) < 2.0
    loc = prototypes(same, X, x=X[[250]], n_prototypes=2, max_rows=120, neighbours=30, seed=0)
    assert all(np.linalg.norm(X[i] - X[250]) < 4 for i in loc.prototypes[0])
