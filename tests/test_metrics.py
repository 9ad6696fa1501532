"""Metrics against hand-computed cases, properties, choose(), and bad input."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import whybox
from whybox import metrics as M
from whybox.errors import InputError


def lin(w, c=0.0):
    w = np.asarray(w, dtype=float)
    return lambda X: np.asarray(X, dtype=float) @ w + c


# ------------------------------------------------------------------------------- PGI / PGU
def test_pgi_pgu_hand_computed_with_binary_flips():
    f = lin([2.0, 1.0])
    X = np.array([[1.0, 0.0], [0.0, 1.0]])
    expl = np.array([[5.0, 1.0], [5.0, 1.0]])      # x0 is the top-1 feature
    # flip_p = 1: the allowed binary features always flip
    b = ["binary", "binary"]                        # kinds come from data= or kinds=, never from X
    np.testing.assert_allclose(M.pgi(f, X, expl, k=1, flip_p=1.0, kinds=b), [2.0, 2.0])
    np.testing.assert_allclose(M.pgu(f, X, expl, k=1, flip_p=1.0, kinds=b), [1.0, 1.0])
    np.testing.assert_allclose(M.pgi(f, X, expl, k=1, flip_p=0.0, kinds=b), [0.0, 0.0])
    ref = np.array([[0.0, 1.0], [1.0, 0.0], [1.0, 1.0]])   # reference data: both columns binary
    np.testing.assert_allclose(M.pgi(f, X, expl, k=1, flip_p=1.0, data=ref), [2.0, 2.0])


def test_pgi_one_hot_group_moves_together():
    # a 3-category one-hot block: category weights 0, 3, 3 -> leaving category 0 always changes f by 3
    def f(X):
        X = np.asarray(X)
        assert np.allclose(X[:, :3].sum(1), 1.0)        # still one-hot after perturbation
        return X[:, 1] * 3 + X[:, 2] * 3 + 0.5 * X[:, 3]
    X = np.array([[1.0, 0.0, 0.0, 0.0]])
    groups = {"colour": [0, 1, 2]}
    expl = np.array([[4.0, 1.0]])                       # the group is the top-1 feature
    b = ["binary"] * 4
    np.testing.assert_allclose(M.pgi(f, X, expl, k=1, flip_p=1.0, groups=groups, kinds=b), [3.0])
    np.testing.assert_allclose(M.pgu(f, X, expl, k=1, flip_p=1.0, groups=groups, kinds=b), [0.5])


def test_pgi_gaussian_matches_closed_form():
    w = np.array([3.0, -4.0, 0.1])
    X = np.full((1, 3), 0.5)
    # continuous features: PGI(k=2) = E|N(0, std^2 (9 + 16))| = std * 5 * sqrt(2/pi)
    v = M.pgi(lin(w), X, w[None], k=2, std=0.1, n_perturb=40000, kinds=["continuous"] * 3)
    np.testing.assert_allclose(v, 0.1 * 5 * np.sqrt(2 / np.pi), rtol=0.02)


def test_ties_in_top_k_are_broken_by_feature_order():
    f = lin([1.0, 10.0, 0.0])
    X = np.zeros((1, 3))
    expl = np.array([[1.0, 1.0, 0.5]])  # tie between features 0 and 1: feature 0 is taken
    v = M.pgi(f, X, expl, k=1, std=0.1, n_perturb=4000, kinds=["continuous"] * 3)
    np.testing.assert_allclose(v, 0.1 * np.sqrt(2 / np.pi), rtol=0.05)


@settings(max_examples=25, deadline=None)
@given(st.lists(st.floats(0.1, 5.0), min_size=2, max_size=7), st.data())
def test_pgi_at_least_pgu_for_exact_attribution_of_additive_model(weights, data):
    w = np.asarray(weights) * np.where(np.arange(len(weights)) % 2, -1, 1)
    d = len(w)
    k = data.draw(st.integers(int(np.ceil(d / 2)), d - 1) if d > 1 else st.just(1))
    X = np.zeros((1, d))
    # the exact attribution of the additive model under Gaussian noise is its gradient w
    kinds = ["continuous"] * d
    g = M.pgi(lin(w), X, w[None], k=k, n_perturb=3000, kinds=kinds, seed=1)[0]
    u = M.pgu(lin(w), X, w[None], k=k, n_perturb=3000, kinds=kinds, seed=2)[0]
    assert g >= u - 0.05 * 0.1 * np.linalg.norm(w)


def test_pgi_auc_and_pgu_auc():
    w = np.array([3.0, 2.0, 1.0])
    X = np.zeros((2, 3))
    kinds = ["continuous"] * 3
    auc = M.pgi_auc(lin(w), X, np.tile(w, (2, 1)), n_perturb=500, kinds=kinds)
    per_k = [M.pgi(lin(w), X, np.tile(w, (2, 1)), k=k, n_perturb=500, kinds=kinds) for k in (1, 2, 3)]
    np.testing.assert_allclose(auc, np.mean(per_k, axis=0), rtol=1e-12)
    assert (M.pgu_auc(lin(w), X, np.tile(w, (2, 1)), n_perturb=500, kinds=kinds) < auc).all()


# -------------------------------------------------------------------- deletion / insertion
def test_deletion_and_insertion_curves_hand_computed():
    w = np.array([1.0, 3.0, 2.0])
    X = np.ones((1, 3))
    expl = w[None]                        # order: feature 1, 2, 0
    curve, auc = M.deletion_curve(lin(w), X, expl)        # baseline: zeros
    np.testing.assert_allclose(curve[0], [6.0, 3.0, 1.0, 0.0])
    np.testing.assert_allclose(auc[0], np.trapezoid([6, 3, 1, 0], dx=1 / 3))
    curve, auc = M.insertion_curve(lin(w), X, expl)
    np.testing.assert_allclose(curve[0], [0.0, 3.0, 5.0, 6.0])
    # a worse ranking deletes slower
    _, auc_bad = M.deletion_curve(lin(w), X, -expl)
    assert auc_bad[0] > M.deletion_curve(lin(w), X, expl)[1][0]


# -------------------------------------------------------------------- fidelity / infidelity
def test_exact_attributions_have_zero_infidelity_in_their_neighbourhood():
    rng = np.random.default_rng(0)
    w = rng.normal(size=5)
    X = rng.normal(size=(4, 5))
    bg = rng.normal(size=(6, 5))
    shap_e = whybox.explain(lin(w), X, method="shapley", background=bg)
    grad_e = whybox.explain(lin(w), X, method="gradient", background=bg)
    assert M.infidelity(lin(w), X, shap_e, perturbation="removal", background=bg).max() < 1e-20
    assert M.infidelity(lin(w), X, grad_e, perturbation="gaussian", background=bg).max() < 1e-16
    assert M.local_fidelity(lin(w), X, shap_e, neighbourhood="removal", background=bg).max() < 1e-20
    # and are unfaithful in the other one
    assert M.local_fidelity(lin(w), X, grad_e, neighbourhood="removal", background=bg).min() > 1e-3
    r2 = M.local_fidelity(lin(w), X, grad_e, neighbourhood="gaussian(0.1)", background=bg, metric="r2")
    np.testing.assert_allclose(r2, 1.0, atol=1e-12)


def test_infidelity_normalize_is_scale_free():
    w = np.array([1.0, -2.0, 0.5])
    X = np.ones((2, 3))
    a = M.infidelity(lin(w), X, np.tile(w, (2, 1)) * 7.0, normalize=True)
    assert a.max() < 1e-16
    assert M.infidelity(lin(w), X, np.tile(w, (2, 1)) * 7.0).min() > 0.1


# ------------------------------------------------------------------------------- stability
def test_relative_stability_and_sensitivity():
    w = np.array([1.0, -2.0, 0.5])
    X = np.array([[1.0, 2.0, 3.0], [0.5, -1.0, 2.0]])
    ris = M.relative_stability(lin(w), X, method="gradient", kind="input", n_perturb=10, std=1e-3)
    assert np.allclose(ris, 0.0, atol=1e-6)     # the gradient of a linear model never changes
    ris_occ = M.relative_stability(lin(w), X, method="occlusion", kind="input", n_perturb=10, std=1e-3)
    assert (ris_occ > 0.01).all() and np.isfinite(ris_occ).all()
    ros = M.relative_stability(lin(w), X, method="occlusion", kind="output", n_perturb=10, std=1e-3)
    assert np.isfinite(ros).all()
    sens = M.max_sensitivity(lin(w), X, method="occlusion", radius=0.01, n_perturb=8)
    # occlusion of a linear model with zero baseline is w*x: a change of at most |w|*0.01 per feature
    assert (sens <= np.linalg.norm(w) * 0.01 + 1e-12).all() and (sens > 0).all()
    with pytest.raises(InputError, match="representation"):
        M.relative_stability(lin(w), X, method="gradient", kind="representation", n_perturb=3)


def test_rrs_on_torch_model_with_representation(shared):
    from whybox.datasets import load_openxai, openxai_model
    data = load_openxai("compas", "test")
    net = openxai_model("compas", "ann")
    rrs = M.relative_stability(net, data.X.iloc[:3], method="gradient", kind="representation", n_perturb=10)
    assert rrs.shape == (3,) and np.isfinite(rrs).all() and (rrs >= 0).all()


# ------------------------------------------------------------------------------- agreement
def test_agreement_hand_computed():
    A = np.array([[3.0, -2.0, 1.0, 0.0]])
    B = np.array([[3.0, 1.0, -2.0, 0.0]])
    r = M.agreement(A, B, k=2)
    assert r["FA"][0] == 0.5 and r["RA"][0] == 0.5 and r["SA"][0] == 0.5 and r["SRA"][0] == 0.5
    np.testing.assert_allclose(r["RC"][0], 0.8)
    np.testing.assert_allclose(r["PRA"][0], 5 / 6)
    # same features, different signs: FA 1, SA 0
    assert M.feature_agreement(A, -A, k=2)[0] == 1.0 and M.sign_agreement(A, -A, k=2)[0] == 0.0


def test_agreement_with_ties_uses_dense_ranks():
    A = np.array([[2.0, 2.0, 1.0]])
    B = np.array([[2.0, 2.0, 1.0]])
    C = np.array([[2.0, 1.0, 2.0]])
    assert M.rank_agreement(A, B, k=2)[0] == 1.0
    assert M.pairwise_rank_agreement(A, B)[0] == 1.0
    # A: ranks (1,1,2); C: ranks (1,2,1) -> pairs (0,1): F vs T, (0,2): T vs F, (1,2): T vs F
    assert M.pairwise_rank_agreement(A, C)[0] == 0.0


@settings(max_examples=50, deadline=None)
@given(st.integers(2, 12).flatmap(lambda d: st.tuples(
    st.lists(st.floats(-10, 10, allow_nan=False), min_size=d, max_size=d), st.integers(1, d))))
def test_identical_explanations_agree_fully(case):
    vals, k = case
    A = np.array([vals])
    for fn in (M.feature_agreement, M.rank_agreement, M.sign_agreement, M.signed_rank_agreement):
        assert fn(A, A.copy(), k)[0] == 1.0
    assert M.pairwise_rank_agreement(A, A)[0] == 1.0


def test_ground_truth_for_linear_models_and_refusal_for_others():
    from sklearn.linear_model import LogisticRegression
    from sklearn.neural_network import MLPClassifier
    rng = np.random.default_rng(0)
    X = rng.normal(size=(100, 3))
    y = (X[:, 0] > 0).astype(int)
    lr = LogisticRegression().fit(X, y)
    gt = M.ground_truth(lr, [1, 0])
    np.testing.assert_allclose(gt, np.vstack([lr.coef_[0], -lr.coef_[0]]))
    with pytest.raises(InputError, match="only for linear/logistic models"):
        M.ground_truth(MLPClassifier(max_iter=5).fit(X, y), [1])
    t = whybox.evaluate(lr, X[:10], ["gradient", "occlusion"], metrics=["FA", "RC"], k=2)
    assert t.loc["gradient", "FA"] == 1.0 and t.loc["gradient", "RC"] == 1.0


def test_ground_truth_openxai_lr(shared):
    from whybox.datasets import openxai_model
    net = openxai_model("adult", "lr")
    w = net.linear.weight.detach().numpy().astype(float)
    np.testing.assert_allclose(M.ground_truth(net, [1, 0]), np.vstack([w[1] - w[0], w[0] - w[1]]))


# ---------------------------------------------------------------------------------- choose
def test_choose_picks_an_exact_method_on_a_linear_model():
    rng = np.random.default_rng(0)
    w = rng.normal(size=5)
    X = rng.normal(size=(6, 5))
    bg = rng.normal(size=(8, 5))
    removal = whybox.choose(lin(w), X, neighbourhood="removal", background=bg, n_samples=100)
    assert removal.winner in {"shapley", "kernelshap", "occlusion", "integrated_gradients"}
    assert removal.ranking.iloc[0].score < 1e-20
    np.testing.assert_allclose(removal.explanation.values, w * (X - bg.mean(0)), atol=1e-8)
    gauss = whybox.choose(lin(w), X, neighbourhood="gaussian(0.1)", background=bg, n_samples=100)
    assert gauss.winner in {"gradient", "smoothgrad", "clime"}
    np.testing.assert_allclose(gauss.explanation.values, np.tile(w, (6, 1)), atol=1e-6)
    assert {"rank", "method", "score", "lo", "hi", "explain_rows", "eval_rows"} <= set(removal.ranking.columns)


def test_choose_winner_depends_on_the_neighbourhood():
    """The no-free-lunch effect, tested on a real non-linear model rather than assumed."""
    from sklearn.datasets import make_classification
    from sklearn.neural_network import MLPClassifier
    X, y = make_classification(n_samples=600, n_features=6, n_informative=4, random_state=0)
    mlp = MLPClassifier(hidden_layer_sizes=(32,), max_iter=1500, random_state=0).fit(X, y)
    bg = whybox.kmeans(X, 10)
    rows = X[:20]
    removal = whybox.choose(mlp, rows, neighbourhood="removal", background=bg, n_samples=100,
                            params={"kernelshap": {"n_samples": 62}})
    gauss = whybox.choose(mlp, rows, neighbourhood="gaussian(0.01)", background=bg, n_samples=100)
    assert removal.winner in {"shapley", "kernelshap", "lime", "occlusion", "integrated_gradients"}
    assert gauss.winner in {"gradient", "smoothgrad", "clime"}
    assert removal.winner != gauss.winner


def test_choose_with_budget_skips_what_does_not_fit():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(2, 4))
    bg = rng.normal(size=(20, 4))
    # per candidate: scoring costs 2 rows x 10 samples x 20 background rows = 400 model rows;
    # kernelshap needs 2 x 14 coalitions x 20 more, occlusion 2 x 4 x 20, gradient 2 x 8
    c = whybox.choose(lin([1, 2, 3, 4]), X, candidates=["kernelshap", "gradient", "occlusion"],
                      budget=3 * 700, n_samples=10, background=bg)
    status = dict(zip(c.ranking.method, c.ranking.status))
    assert status["gradient"] == "ok" and status["occlusion"] == "ok"
    assert status["kernelshap"].startswith("skipped") and "budget" in status["kernelshap"]
    used = c.ranking.explain_rows.fillna(0) + c.ranking.eval_rows.fillna(0)
    assert (used <= 700).all()
    assert c.winner == "occlusion"


def test_explain_auto_uses_choose():
    rng = np.random.default_rng(1)
    X = rng.normal(size=(3, 4))
    e = whybox.explain(lin([1.0, 2.0, 3.0, 4.0]), X, method="auto", neighbourhood="gaussian(0.1)")
    assert e.method in {"gradient", "smoothgrad", "clime"}
    assert e.params["chosen_by"]["neighbourhood"] == "gaussian(0.1)"


def test_evaluate_table():
    rng = np.random.default_rng(2)
    X = rng.normal(size=(5, 4))
    f = lambda Z: np.tanh(Z @ np.array([1.0, -1.0, 0.5, 2.0]))
    t = whybox.evaluate(f, X, ["kernelshap", "gradient"], metrics=["pgi", "pgu", "fidelity", "deletion"],
                        background=rng.normal(size=(5, 4)))
    assert list(t.index) == ["kernelshap", "gradient"]
    for m in ("pgi", "pgu", "fidelity", "deletion"):
        assert (t[f"{m}_lo"] <= t[m]).all() and (t[m] <= t[f"{m}_hi"]).all()


# ------------------------------------------------------------------------------ bad input
def test_metric_bad_input():
    X = np.zeros((2, 3))
    with pytest.raises(InputError, match=r"k must be an integer between 1 and the number of features \(3\)"):
        M.pgi(lin([1, 2, 3]), X, np.ones((2, 3)), k=4)
    with pytest.raises(InputError, match="explanation has shape"):
        M.pgi(lin([1, 2, 3]), X, np.ones((2, 4)))
    with pytest.raises(InputError, match="different shapes"):
        M.feature_agreement(np.ones((2, 3)), np.ones((2, 4)))
    with pytest.raises(InputError, match="unknown neighbourhood"):
        whybox.choose(lin([1, 2, 3]), X, neighbourhood="nearby")
    with pytest.raises(InputError, match="unknown metric"):
        whybox.evaluate(lin([1, 2, 3]), X, ["gradient"], metrics=["accuracy"])
    with pytest.raises(InputError, match="only for linear"):
        whybox.evaluate(lambda Z: np.tanh(Z).sum(1), X, ["gradient"], metrics=["FA"])
    with pytest.raises(InputError, match="several columns"):
        M.local_fidelity(lin([1, 2, 3]), X, np.ones((2, 2)), neighbourhood="gaussian", groups={"g": [0, 1]})
