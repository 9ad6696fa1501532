"""Property-based fuzzing of the public API (hypothesis).

Every case puts one wild value (None, booleans, huge and negative integers, NaN, inf, +-1e308, empty
and odd strings, lists, dicts) into one parameter of a public call on a tiny real problem. The call
must either return finite numbers or raise a :class:`whybox.WhyboxError` whose message names the
parameter (or the budget). Zero other exceptions, zero hangs: each case has a hard 5 s alarm, since
hypothesis's own deadline does not stop a hang.

Profiles: CI runs the fixed-seed one (``derandomize=True``, 1,270 cases in all); set
``WHYBOX_FUZZ=explore`` (as ``bench/fuzz.sh`` does) for an unseeded, longer run, and add what it finds
to ``SEEDED`` below.
"""
import math
import os
import re
import signal
from contextlib import contextmanager

import numpy as np
import pandas as pd
import pytest

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

import whybox  # noqa: E402
from whybox import BudgetError, WhyboxError  # noqa: E402
from whybox.core.explanation import Explanation  # noqa: E402

EXPLORE = os.environ.get("WHYBOX_FUZZ") == "explore"


def profile(n: int):
    return settings(max_examples=n * (5 if EXPLORE else 1), derandomize=not EXPLORE, deadline=None, database=None,
                    suppress_health_check=list(HealthCheck), print_blob=True)


WILD = st.one_of(
    st.none(), st.booleans(), st.integers(-10**13, 10**13), st.integers(-3, 40),
    st.floats(allow_nan=True, allow_infinity=True), st.floats(-2, 2),
    st.sampled_from([0, 1, -1, 2, 3, 0.0, 0.5, 1.5, 1e308, -1e308, 1e-320, math.inf, -math.inf, math.nan,
                     "", "auto", "x", "all", "predicted", "0", "1", [], [1], ["x"], {}, {"a": 1}, (1, 2), b"\x00"]),
    st.text(max_size=4), st.lists(st.integers(-2, 5), max_size=3),
)

# values found by unseeded runs, replayed every time
SEEDED = [
    ("explain", "kernel_width", 0), ("explain", "n_samples", math.inf), ("explain", "steps", math.inf),
    ("choose", "budget", math.inf), ("pgi", "n_perturb", 0), ("pgi", "n_perturb", 10**12), ("explain", "seed", -1),
    ("counterfactuals", "monotone", ["age"]), ("counterfactuals", "permitted_range", ["age"]),
    ("evaluate", "explanations", []), ("narrate", "row", 1.5), ("explain", "fd_step", 0),
    ("evaluate", "n_samples", 0), ("explain", "target", 7), ("explain", "target_index", -1),
    ("narrate", "max_features", 1.0), ("evaluate", "n_samples", 1.0), ("explain", "max_features", 1),
]


@contextmanager
def alarm(seconds: int = 5):
    def boom(signum, frame):
        raise TimeoutError(f"a fuzz case ran longer than {seconds} s")
    old = signal.signal(signal.SIGALRM, boom)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)


@pytest.fixture(scope="module")
def prob():
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(0)
    X = pd.DataFrame({"age": rng.uniform(18, 80, 60), "income": rng.normal(50, 10, 60),
                      "owner": rng.integers(0, 2, 60).astype(float)})
    y = ((X.income > 50) ^ (X.owner > 0.5)).astype(int)
    lr = LogisticRegression(max_iter=500).fit(X, y)
    return lr, X, whybox.Explainer(lr, data=X, background=X.iloc[:4], budget=None)


def finite(out) -> bool:
    if isinstance(out, Explanation):
        return bool(np.isfinite(out.values).all())
    if isinstance(out, pd.DataFrame):
        num = out.select_dtypes("number")
        return bool(np.isfinite(num.to_numpy(dtype=float)).all())
    if isinstance(out, tuple):
        return all(finite(o) for o in out)
    if isinstance(out, np.ndarray) and out.dtype.kind in "fiu":
        return bool(np.isfinite(out).all())
    return True


# a parameter whose values are method names is named by "method" in the error
ALSO = {"explanations": ("method",), "candidates": ("method",)}


def check(name: str, call):
    with alarm():
        try:
            out = call()
        except WhyboxError as exc:
            msg = str(exc)
            named = name in msg or any(a in msg for a in ALSO.get(name, ()))
            assert named or (isinstance(exc, BudgetError) and "budget" in msg), \
                f"{type(exc).__name__} for {name!r} does not name it: {msg}"
            return
    assert finite(out), f"non-finite result for {name!r}"


EXPLAIN_PARAMS = {
    "n_samples": "lime", "kernel_width": "lime", "alpha": "lime", "sigma": "clime", "steps": "integrated_gradients",
    "fd_step": "gradient", "stderr_strata": "kernelshap", "max_features": "shapley", "strategy": "kernelshap",
    "allocation": "kernelshap",
    "baseline": "integrated_gradients", "rule": "integrated_gradients", "seed": "lime", "target": "occlusion",
    "target_index": "occlusion", "chunk_rows": "occlusion", "method": None,
}


def run_explain(prob, name, value):
    lr, X, wb = prob
    method = EXPLAIN_PARAMS[name]
    kw = {"method": value} if method is None else {"method": method, name: value}
    budget = whybox.Explainer(lr, data=X, background=X.iloc[:4], budget=200_000)
    return lambda: budget.explain(X.iloc[:2], **kw)


@given(name=st.sampled_from(sorted(EXPLAIN_PARAMS)), value=WILD)
@profile(450)
def test_fuzz_explain(prob, name, value):
    check(name, run_explain(prob, name, value))


METRIC_CALLS = {
    "k": lambda m, wb, X, e, v: m.pgi(wb, X, e, k=v, n_perturb=20),
    "n_perturb": lambda m, wb, X, e, v: m.pgu(wb, X, e, n_perturb=v),
    "std": lambda m, wb, X, e, v: m.pgi(wb, X, e, std=v, n_perturb=20),
    "flip_p": lambda m, wb, X, e, v: m.pgi(wb, X, e, flip_p=v, n_perturb=20),
    "seed": lambda m, wb, X, e, v: m.pgi(wb, X, e, seed=v, n_perturb=20),
    "n_samples": lambda m, wb, X, e, v: m.local_fidelity(wb, X, e, n_samples=v),
    "neighbourhood": lambda m, wb, X, e, v: m.local_fidelity(wb, X, e, neighbourhood=v, n_samples=20),
    "metric": lambda m, wb, X, e, v: m.local_fidelity(wb, X, e, metric=v, n_samples=20),
    "sigma": lambda m, wb, X, e, v: m.infidelity(wb, X, e, sigma=v, n_perturb=20),
    "p": lambda m, wb, X, e, v: m.infidelity(wb, X, e, perturbation="removal", p=v, n_perturb=20),
    "perturbation": lambda m, wb, X, e, v: m.infidelity(wb, X, e, perturbation=v, n_perturb=20),
    "order": lambda m, wb, X, e, v: m.deletion_curve(wb, X, e, order=v),
    "K": lambda m, wb, X, e, v: m.pgi_auc(wb, X, e, K=v, n_perturb=10),
}


@given(name=st.sampled_from(sorted(METRIC_CALLS)), value=WILD)
@profile(260)
def test_fuzz_metrics(prob, name, value):
    from whybox import metrics as M

    lr, X, wb = prob
    e = wb.explain(X.iloc[:2], method="occlusion")
    check(name, lambda: METRIC_CALLS[name](M, wb, X.iloc[:2], e, value))


OTHER = {
    ("evaluate", "metrics"): lambda wb, X, v: wb.evaluate(X, ["occlusion"], metrics=v, n_perturb=10, n_samples=20),
    ("evaluate", "explanations"): lambda wb, X, v: wb.evaluate(X, v, metrics=["pgi"], n_perturb=10),
    ("evaluate", "k"): lambda wb, X, v: wb.evaluate(X, ["occlusion"], metrics=["pgi"], k=v, n_perturb=10),
    ("evaluate", "n_samples"): lambda wb, X, v: wb.evaluate(X, ["occlusion"], metrics=["fidelity"], n_samples=v),
    ("choose", "budget"): lambda wb, X, v: wb.choose(X, candidates=["occlusion", "lime"], budget=v, n_samples=20),
    ("choose", "metric"): lambda wb, X, v: wb.choose(X, candidates=["occlusion"], metric=v, n_samples=20),
    ("choose", "neighbourhood"): lambda wb, X, v: wb.choose(X, candidates=["occlusion"], neighbourhood=v, n_samples=20),
    ("choose", "candidates"): lambda wb, X, v: wb.choose(X, candidates=v, n_samples=20),
    ("counterfactuals", "k"): lambda wb, X, v: wb.counterfactuals(X.iloc[[0]], k=v, n_candidates=100),
    ("counterfactuals", "desired_class"): lambda wb, X, v: wb.counterfactuals(X.iloc[[0]], desired_class=v, n_candidates=100),
    ("counterfactuals", "immutable"): lambda wb, X, v: wb.counterfactuals(X.iloc[[0]], immutable=v, n_candidates=100),
    ("counterfactuals", "permitted_range"): lambda wb, X, v: wb.counterfactuals(X.iloc[[0]], permitted_range=v, n_candidates=100),
    ("counterfactuals", "monotone"): lambda wb, X, v: wb.counterfactuals(X.iloc[[0]], monotone=v, n_candidates=100),
    ("counterfactuals", "max_changes"): lambda wb, X, v: wb.counterfactuals(X.iloc[[0]], max_changes=v, n_candidates=100),
    ("counterfactuals", "n_candidates"): lambda wb, X, v: wb.counterfactuals(X.iloc[[0]], n_candidates=v),
    ("narrate", "row"): lambda wb, X, v: wb.narrate(wb.explain(X, method="occlusion"), row=v),
    ("narrate", "audience"): lambda wb, X, v: wb.narrate(wb.explain(X, method="occlusion"), audience=v),
    ("narrate", "max_features"): lambda wb, X, v: wb.narrate(wb.explain(X, method="occlusion"), max_features=v),
    ("Explainer", "budget"): lambda wb, X, v: whybox.Explainer(wb.problem.estimator, data=X, budget=v).explain(X, method="occlusion"),
    ("Explainer", "batch_size"): lambda wb, X, v: whybox.Explainer(wb.problem.estimator, data=X, batch_size=v).explain(X, method="occlusion"),
    ("Explainer", "kinds"): lambda wb, X, v: whybox.Explainer(wb.problem.estimator, data=X, kinds=v).explain(X, method="occlusion"),
    ("Explainer", "groups"): lambda wb, X, v: whybox.Explainer(wb.problem.estimator, data=X, groups=v).explain(X, method="occlusion"),
    ("Explainer", "background"): lambda wb, X, v: whybox.Explainer(wb.problem.estimator, data=X, background=v).explain(X, method="occlusion"),
    ("Explainer", "output"): lambda wb, X, v: whybox.Explainer(wb.problem.estimator, data=X, output=v).explain(X, method="occlusion"),
}


@given(key=st.sampled_from(sorted(OTHER)), value=WILD)
@profile(300)
def test_fuzz_evaluate_choose_counterfactuals_narrate_explainer(prob, key, value):
    lr, X, wb = prob
    check(key[1], lambda: OTHER[key](wb, X.iloc[:2], value))


TEXT_PARAMS = {"units": "kernelshap", "removal": "kernelshap", "n_samples": "kernelshap", "target": "occlusion",
               "target_index": "occlusion", "seed": "lime", "budget": "kernelshap", "method": None,
               "texts": "occlusion", "mask_token": "occlusion", "chunk_rows": "occlusion"}


@pytest.fixture(scope="module")
def text_model():
    from whybox.datasets import tfidf_classifier
    texts = ["a great and moving film", "dull , flat and boring", "great acting , dull plot", "moving and great",
             "flat , dull", "boring but great"] * 4
    labels = ["pos", "neg", "neg", "pos", "neg", "pos"] * 4
    return tfidf_classifier(texts, labels)


@given(name=st.sampled_from(sorted(TEXT_PARAMS)), value=WILD)
@profile(200)
def test_fuzz_explain_text(text_model, name, value):
    method = TEXT_PARAMS[name]
    if name == "method":
        kw, text = {"method": value}, "a great film"
    elif name == "texts":
        kw, text = {"method": method}, value
    else:
        kw, text = {"method": method, name: value}, "a great but dull film"
    if name != "budget":
        kw["budget"] = 100_000
    check(name, lambda: whybox.explain_text(text_model, text, **kw))


BAD_MODELS = {
    "no outputs": lambda A: np.zeros((len(A), 0)),
    "nan": lambda A: np.full((len(A), 2), np.nan),
    "inf": lambda A: np.full((len(A), 1), np.inf),
    "wrong rows": lambda A: np.zeros((len(A) + 1, 1)),
    "strings": lambda A: np.array([["a"]] * len(A)),
    "raises": lambda A: 1 / 0,
    "3-d": lambda A: np.zeros((len(A), 2, 2)),
    "huge": lambda A: np.where(np.asarray(A, float)[:, :1] > 50, 1e308, -1e308),
}


@given(kind=st.sampled_from(sorted(BAD_MODELS)), method=st.sampled_from(["occlusion", "lime", "kernelshap", "gradient"]))
@profile(60)
def test_fuzz_bad_models(prob, kind, method):
    lr, X, _ = prob
    kw = {"n_samples": 50} if method in ("lime", "kernelshap") else {}
    with alarm():
        try:
            e = whybox.explain(BAD_MODELS[kind], X.iloc[:2], method=method, background=X.iloc[:3], **kw)
        except WhyboxError as exc:
            assert re.search("model|non-finite", str(exc)), str(exc)
            return
    assert kind == "huge" and np.isfinite(e.values).all()     # +-1e308 may still difference finitely


@pytest.mark.parametrize("where, name, value", SEEDED)
def test_fuzz_seeded_corpus(prob, where, name, value):
    lr, X, wb = prob
    if where == "explain":
        call = run_explain(prob, name, value)
    elif where == "pgi":
        from whybox import metrics as M
        e = wb.explain(X.iloc[:2], method="occlusion")
        call = lambda: M.pgi(wb, X.iloc[:2], e, n_perturb=value)  # noqa: E731
    else:
        call = lambda: OTHER[(where, name)](wb, X.iloc[:2], value)  # noqa: E731
    with pytest.raises(WhyboxError):
        with alarm():
            call()
    check(name, call)
