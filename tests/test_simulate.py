"""The simulatability harness: it can succeed (explanations of a linear model help), it can fail
(random explanations do not), nothing leaks, and an LLM simulator is parsed strictly."""
import json

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression

from whybox.errors import InputError
from whybox.simulate import LLMSimulator, TabularTask, parse_predictions, simulatability
from whybox.simulate.harness import paired_gain, run


@pytest.fixture(scope="module")
def linear():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(1500, 20))
    w = rng.normal(size=20)
    return LogisticRegression(C=100).fit(X, (X @ w > 0).astype(int)), X


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_lime_explanations_of_a_linear_model_help_and_random_ones_do_not(linear, seed):
    m, X = linear
    r = simulatability(m, X, kinds=["lime", "random"], tests=["forward"], k=16, n_test=300, seed=seed, lime_samples=300)
    t = r.table.set_index("method")
    assert t.loc["lime", "gain"] > 0.05 and t.loc["lime", "gain_low"] > 0          # the harness can succeed
    assert t.loc["random", "gain_low"] <= 0 <= t.loc["random", "gain_high"]        # ... and fail
    assert t.loc["lime", "nsg"] == pytest.approx(t.loc["lime", "gain"] / (1 - t.loc["lime", "baseline"]))


class Recording(TabularTask):
    def __init__(self, *a, **kw):
        super().__init__(*a, **kw)
        self.seen = []

    def explain(self, kind, z):
        self.seen.append(np.asarray(z, float)[0].tobytes())
        return super().explain(kind, z)


def test_nothing_leaks_and_every_type_runs(linear):
    m, X = linear
    X = X[:400, :5]
    m = LogisticRegression().fit(X, (X[:, 0] - X[:, 1] > 0).astype(int))
    task = Recording(m, X, seed=0, lime_samples=200, anchor_budget=1500)
    order = np.random.default_rng(3).permutation(len(X))
    train, test = set(order[:12]), set(order[12:42])
    r = run(task, k=12, n_test=30, seed=3, n_boot=200, tests=["forward"])
    rows = {X[i].tobytes(): i for i in range(len(X))}
    explained = {rows[b] for b in task.seen if b in rows}
    assert explained <= train and not explained & test            # forward: only the k training inputs
    assert set(r.table.method) == {"lime", "anchor", "prototype", "boundary", "composite", "random"}
    task.seen.clear()
    r = run(task, k=12, n_test=30, seed=3, n_boot=200, tests=["counterfactual"],
            kinds=["lime", "anchor", "boundary"])
    explained = [rows.get(b) for b in task.seen]
    assert None not in explained                                   # never an edited input, only real rows x
    t = r.table.set_index("method")
    assert 0 <= t.loc["anchor", "precision"] <= 1 and 0 <= t.loc["lime", "generality"] <= 1


def test_paired_gain_interval():
    g, lo, hi = paired_gain(np.zeros(100), np.r_[np.ones(30), np.zeros(70)], seed=0)
    assert g == pytest.approx(0.3) and lo < 0.3 < hi and lo > 0.2


def test_llm_simulator_is_parsed_strictly(linear):
    from whybox.llm.client import LLMClient
    from whybox.llm.testing import ScriptedLLMServer
    m, X = linear
    X = X[:300, :4]
    m = LogisticRegression().fit(X, (X[:, 0] > 0).astype(int))

    def reply(body):
        data = json.loads(body["messages"][-1]["content"].split("```json\n")[1].split("\n```")[0])
        assert all("model_answer" in e for e in data["examples"])
        assert all("model_answer" not in str(x) for x in data["new_inputs"])   # no test answers in the prompt
        return json.dumps([int(float(s.split(",")[0].split("=")[1]) > 0) for s in data["new_inputs"]])
    with ScriptedLLMServer(reply) as srv:
        sim = LLMSimulator(LLMClient(srv.base_url, "scripted", cache=False))
        r = simulatability(m, X, kinds=["lime"], tests=["forward"], k=10, n_test=20, seed=0, simulator=sim,
                           lime_samples=100)
    assert r.table.iloc[0]["explained"] == 1.0
    assert list(parse_predictions("```json\n[0, 1]\n```", 2)) == [0, 1]
    for bad, msg in [("yes, 1 and 0", "not a JSON list"), ("[0, 1, 1]", "list of 2 predictions"),
                     ("[0, 2]", "must be 0 or 1")]:
        with pytest.raises(InputError, match=msg):
            parse_predictions(bad, 2)


def test_bad_input(linear):
    m, X = linear
    with pytest.raises(InputError, match="k \\+ n_test"):
        simulatability(m, X[:30], k=20, n_test=20)
    with pytest.raises(InputError, match="kinds"):
        simulatability(m, X, kinds=["shap"])
    three = LogisticRegression().fit(X[:300], np.arange(300) % 3)
    with pytest.raises(InputError, match="binary classifiers"):
        simulatability(three, X[:300])


def test_text_harness_runs_on_a_tfidf_pipeline():
    from whybox.datasets import tfidf_classifier
    from whybox.simulate import simulatability_text
    rng = np.random.default_rng(0)
    filler = ["the", "film", "was", "a", "plot", "and", "story", "it"]
    texts = [" ".join(list(rng.choice(filler, 4)) + [["dull", "superb", "boring", "great"][i % 4]]) for i in range(200)]
    clf = tfidf_classifier(texts, np.arange(200) % 2)
    r = simulatability_text(clf, texts, kinds=["lime", "anchor", "random"], k=12, n_test=20, seed=0, lime_samples=100,
                            anchor_budget=600, n_boot=200)
    assert len(r.table) == 6 and r.table["explained"].between(0, 1).all()
