"""Remedies for an unfair gap, each re-evaluated on the same rows with its price.

=================== =========================================================================================
``thresholds``      a decision threshold per group (Fairlearn's ``ThresholdOptimizer``, post-processing; its
                    decisions are randomised between two thresholds where needed, seeded): uses the
                    attribute when deciding
``without``         refitted with the protected attribute held at one value (its information removed while
                    the model keeps its inputs)
``without_proxies`` refitted with the attribute and its proxies held at one value
``reweighing``      refitted without the attribute, rows weighted so that group and label are independent
                    (Kamiran & Calders 2012: w = P(A) P(Y) / P(A, Y))
``reduction``       a fairness-constrained refit without the attribute (Fairlearn's
                    ``ExponentiatedGradient``, the attribute used only in training; randomised, seeded)
``search``          a small random search over the model's hyperparameters for the fairest model whose
                    accuracy is within 1 percentage point of the original (Parfait-ML's idea), at most
                    ``max_fits`` fits (<= 50) and ``time_limit`` seconds (<= 300)
=================== =========================================================================================

Every remedy reports per group selection rate, true-positive rate and accuracy, the gaps, overall
accuracy, how many decisions differ from the original model's, and whether the attribute is used at
decision time (for refitted models: measured, by flipping it on every row).
"""
from __future__ import annotations

import time
import warnings
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

import numpy as np
import pandas as pd

from whybox.core.validation import as_python
from whybox.errors import InputError
from whybox.fairness.groups import Decisions, Scorer, check_attribute, group_rates, groups_of

ALL = ("thresholds", "without", "without_proxies", "reweighing", "reduction", "search")
CONSTRAINTS = {"demographic_parity": "equal selection rates", "equal_opportunity": "equal true-positive rates"}
ACCURACY_SLACK = 0.01
TITLES = {"original": "The model as it is", "thresholds": "A different threshold per group",
          "without": "Retrained without {a}", "without_proxies": "Retrained without {a} and its stand-ins",
          "reweighing": "Retrained with reweighed examples", "reduction": "Retrained under a fairness constraint",
          "search": "The fairest of {n} model settings"}


NEEDS_FAIRLEARN = ("thresholds", "reduction")


def _fairlearn_missing() -> str | None:
    """Why the Fairlearn remedies cannot run here (None: they can)."""
    import importlib.util

    return None if importlib.util.find_spec("fairlearn") else "this remedy needs fairlearn: pip install 'whybox[fairness]'"


@dataclass
class Remedy:
    name: str
    title: str
    how: str
    groups: list[dict[str, Any]]
    gaps: dict[str, Any]
    n_changed: int
    uses_attribute: bool
    note: str = ""
    fitted_on: str = ""
    params: dict[str, Any] = field(default_factory=dict)
    decided: np.ndarray | None = field(default=None, repr=False)

    def gap(self, constraint: str) -> float | None:
        return self.gaps["demographic_parity_difference" if constraint == "demographic_parity"
                         else "equal_opportunity_difference"]

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "title": self.title, "how": self.how, "groups": self.groups, **self.gaps,
                "n_changed": self.n_changed, "uses_attribute": self.uses_attribute, "note": self.note,
                "fitted_on": self.fitted_on, "params": {k: _plain(v) for k, v in self.params.items()}}


def _plain(v: Any) -> Any:
    """A hyperparameter as JSON takes it: numpy scalars as Python ones, anything else not plain as text."""
    v = as_python(v)
    return v if isinstance(v, (int, float, str, bool, type(None))) else str(v)


@dataclass
class RemedyReport:
    attribute: str
    positive: str
    constraint: str
    remedies: list[Remedy]
    skipped: dict[str, str]
    n_fits: int
    seconds: float

    @property
    def original(self) -> Remedy:
        return self.remedies[0]

    def table(self) -> pd.DataFrame:
        rows = []
        for r in self.remedies:
            rows.append({"remedy": r.name, "what": r.title, "gap": r.gap(self.constraint),
                         "demographic_parity_difference": r.gaps["demographic_parity_difference"],
                         "equal_opportunity_difference": r.gaps["equal_opportunity_difference"],
                         "accuracy": r.gaps["accuracy"], "decisions_changed": r.n_changed,
                         "uses_attribute": r.uses_attribute})
        return pd.DataFrame(rows)

    def sentences(self) -> list[str]:
        o = self.original
        g0, a0 = o.gap(self.constraint), o.gaps["accuracy"]
        what = "selection rates" if self.constraint == "demographic_parity" else "true-positive rates"
        out = [f"Today the {what} of the groups of “{self.attribute}” differ by {100 * g0:.0f} percentage points, "
               f"with {100 * a0:.1f}% accuracy."]
        for r in self.remedies[1:]:
            g, a = r.gap(self.constraint), r.gaps["accuracy"]
            if g is None:
                continue
            s = (f"{r.title}: the gap would be {100 * g:.0f} points and accuracy {100 * a:.1f}% "
                 f"({_points(a - a0)}); {r.n_changed} decision{'s' if r.n_changed != 1 else ''} would change.")
            if r.uses_attribute:
                s += f" It uses each person's “{self.attribute}” when deciding."
            out.append(s + (" " + r.note if r.note else ""))
        for k, why in self.skipped.items():
            out.append(f"Not tried: {_lower(TITLES.get(k, k).format(a='“' + self.attribute + '”', n='several'))} ({why}).")
        return out

    def text(self) -> str:
        return " ".join(self.sentences())

    def to_dict(self) -> dict[str, Any]:
        return {"attribute": self.attribute, "positive": self.positive, "constraint": self.constraint,
                "constraint_words": CONSTRAINTS[self.constraint], "remedies": [r.to_dict() for r in self.remedies],
                "skipped": self.skipped, "n_fits": self.n_fits, "seconds": round(self.seconds, 2),
                "sentences": self.sentences()}

    def chart(self, ax: Any = None, path: str | None = None):
        """Gap (x) against accuracy (y), one labelled point per remedy; the original in black, remedies
        that use the attribute to decide in red (drawn by :func:`whybox.io.plots.remedy_chart`)."""
        from whybox.io.plots import remedy_chart

        return remedy_chart(self, ax=ax, path=path)


def _lower(s: str) -> str:
    return s[:1].lower() + s[1:]


def _points(d: float) -> str:
    p = 100 * d
    if abs(p) < 0.05:
        return "no change"
    return f"{abs(p):.1f} points {'lower' if p < 0 else 'higher'}"


# --------------------------------------------------------------------------------------- fitting
def _fit_function(model: Any, train: Callable | None) -> Callable | None:
    """``fit(X, y, sample_weight=None) -> fitted model`` from a user routine or a clonable estimator."""
    if train is not None:
        if not callable(train):
            raise InputError(f"train must be a function train(X, y, sample_weight=None) -> fitted model, got {train!r}")

        def fit_user(X, y, sample_weight=None, params=None):
            if params:
                raise InputError("a user training routine cannot take searched hyperparameters")
            return train(X, y, sample_weight=sample_weight)
        return fit_user
    if not (hasattr(model, "fit") and hasattr(model, "get_params")):
        return None
    from sklearn.base import clone
    from sklearn.pipeline import Pipeline

    def fit_clone(X, y, sample_weight=None, params=None):
        m = clone(model)
        if params:
            m.set_params(**params)
        kw = {}
        if sample_weight is not None:
            kw = {f"{m.steps[-1][0]}__sample_weight": sample_weight} if isinstance(m, Pipeline) else \
                {"sample_weight": sample_weight}
        return m.fit(X, y, **kw)
    return fit_clone


def _held(X: pd.DataFrame, columns: Sequence[str], ref: pd.DataFrame) -> pd.DataFrame:
    """``X`` with ``columns`` held at one value each (the median of a number, the commonest category in ``ref``)."""
    Z = X.copy()
    for c in columns:
        col = ref[c].dropna()
        if pd.api.types.is_numeric_dtype(col):
            v = col.median()
            Z[c] = np.full(len(Z), v, dtype=X[c].dtype if np.isclose(v, round(v)) else float)
        else:
            Z[c] = col.mode(dropna=True).iloc[0]
    return Z


class _Held:
    """A fitted model that sees ``columns`` held at the same values as in its training."""

    def __init__(self, model: Any, columns: Sequence[str], ref: pd.DataFrame):
        self.model, self.columns, self.ref = model, list(columns), ref
        self.feature_names_in_ = getattr(model, "feature_names_in_", None)
        self.classes_ = getattr(model, "classes_", None)

    def fit(self, *args, **kw):          # fitted already (this also marks it as an estimator for as_model)
        raise InputError("this remedy's model is fitted already")

    def predict_proba(self, X):
        return self.model.predict_proba(_held(X, self.columns, self.ref))

    def predict(self, X):
        return self.model.predict(_held(X, self.columns, self.ref))


def _estimator_for_fairlearn(fit: Callable, held: Sequence[str], ref: pd.DataFrame, counter: list[int]):
    from sklearn.base import BaseEstimator, ClassifierMixin

    class Refit(ClassifierMixin, BaseEstimator):
        def fit(self, X, y, sample_weight=None):
            counter[0] += 1
            self.model_ = fit(_held(X, held, ref), y, sample_weight=sample_weight)
            self.classes_ = self.model_.classes_
            return self

        def predict(self, X):
            return self.model_.predict(_held(X, held, ref))

        def predict_proba(self, X):
            return self.model_.predict_proba(_held(X, held, ref))
    return Refit()


def _score_estimator(scorer: Scorer):
    """The original model as a fitted scikit-learn classifier for ThresholdOptimizer (prefit)."""
    from sklearn.base import BaseEstimator, ClassifierMixin

    class Fixed(ClassifierMixin, BaseEstimator):
        def __init__(self):
            self.fitted_ = True
            self.classes_ = np.array([0, 1])

        def fit(self, X, y, **kw):
            return self

        def predict_proba(self, X):
            s = scorer(pd.DataFrame(X, columns=scorer.columns) if not isinstance(X, pd.DataFrame) else X).score
            return np.column_stack([1 - s, s])

        def predict(self, X):
            return (self.predict_proba(X)[:, 1] >= 0.5).astype(int)
    return Fixed()


SEARCH_SPACE: dict[str, Callable[[np.random.Generator], Any]] = {
    "C": lambda r: float(10 ** r.uniform(-3, 2)),
    "alpha": lambda r: float(10 ** r.uniform(-6, 0)),
    "max_depth": lambda r: [2, 3, 4, 6, 8, 12, None][r.integers(7)],
    "min_samples_leaf": lambda r: int([1, 2, 5, 10, 20, 50][r.integers(6)]),
    "n_estimators": lambda r: int([25, 50, 100, 200][r.integers(4)]),
    "learning_rate": lambda r: float(10 ** r.uniform(-2, np.log10(0.5))),
    "l2_regularization": lambda r: float(10 ** r.uniform(-4, 1)),
    "max_leaf_nodes": lambda r: int([8, 15, 31, 63][r.integers(4)]),
    "class_weight": lambda r: [None, "balanced"][r.integers(2)],
}


def search_space(model: Any) -> dict[str, Callable]:
    """The hyperparameters whybox samples for ``model`` (a Pipeline's last step), with their names as set_params takes them."""
    from sklearn.pipeline import Pipeline

    est, prefix = (model.steps[-1][1], model.steps[-1][0] + "__") if isinstance(model, Pipeline) else (model, "")
    have = est.get_params(deep=False) if hasattr(est, "get_params") else {}
    return {prefix + k: f for k, f in SEARCH_SPACE.items() if k in have}


# --------------------------------------------------------------------------------------- remedies
def remedies(model: Any, X: pd.DataFrame, y: Any, attribute: str, *, X_train: pd.DataFrame | None = None,
             y_train: Any = None, train: Callable | None = None, proxies: Sequence[str] = (),
             constraint: str = "demographic_parity", which: Sequence[str] | None = None, positive: Any = None,
             class_names: list[str] | None = None, seed: int = 0, max_fits: int = 50,
             time_limit: float = 300.0) -> RemedyReport:
    """Try each remedy in ``which`` (default: all that apply) and evaluate it on ``X``, ``y``.

    X_train, y_train : the rows to refit on (refitting remedies need them; thresholds are fitted on
        them too when given, else on ``X``). train : ``train(X, y, sample_weight=None) -> fitted model``
        (default: clone and refit ``model`` when it is a scikit-learn estimator).
    proxies : columns for the ``without_proxies`` remedy (e.g. the flagged rows of :func:`find_proxies`).
    constraint : "demographic_parity" (equal selection rates) or "equal_opportunity" (equal true-positive rates).
    """
    from whybox.params import Float, Int, check

    t0 = time.perf_counter()
    attribute = check_attribute(X, attribute)
    if constraint not in CONSTRAINTS:
        raise InputError(f"constraint must be one of {list(CONSTRAINTS)}, got {constraint!r}")
    which = list(ALL if which is None else which)
    bad = [w for w in which if w not in ALL]
    if bad or isinstance(which, str):
        raise InputError(f"unknown remedy {bad or which!r}; choose from {list(ALL)}")
    if isinstance(proxies, str) or not isinstance(proxies, (list, tuple)):
        raise InputError(f"proxies must be a list of column names, got {proxies!r}")
    proxies = [check_attribute(X, p, "proxy") for p in proxies if p != attribute]
    check("seed", seed)
    max_fits = check("max_fits", max_fits, decl=Int(1, 50))
    time_limit = check("time_limit", time_limit, decl=Float(0, 300, low_open=True))
    X = X.reset_index(drop=True)
    sc = Scorer(model, X, positive, class_names=class_names)
    if not sc.is_classifier:
        raise InputError("remedies for decisions need a classifier; this model predicts a number (a regressor)")
    y_pos = sc.y_positive(y)
    if y_pos is None:
        raise InputError(f"remedies need the true labels of X (values among the model's classes {sc.names})")
    have_train = X_train is not None
    if have_train:
        check_attribute(X_train, attribute)
        X_train = X_train.reset_index(drop=True)
        ytr_pos = sc.y_positive(y_train)
        if ytr_pos is None or len(ytr_pos) != len(X_train):
            raise InputError("y_train must hold one label per row of X_train, among the model's classes")
        y_train_raw = np.asarray(y_train)
    # one grouping for both row sets (the same values, or the same median split)
    both = X[attribute] if not have_train else pd.concat([X[attribute], X_train[attribute]], ignore_index=True)
    labels, g_all = groups_of(both)
    if (g_all < 0).any():
        raise InputError(f"{int((g_all < 0).sum())} row(s) have no value for {attribute!r}: they cannot be put in a "
                         "group for the remedies; drop or fill them first")
    gidx = g_all[:len(X)]
    A = np.array(labels, dtype=object)[np.maximum(gidx, 0)]
    if have_train:
        Atr = np.array(labels, dtype=object)[np.maximum(g_all[len(X):], 0)]
    fit = _fit_function(model, train) if have_train else None
    base = sc(X)

    def evaluate(name: str, dec: np.ndarray, how: str, uses: bool, note: str = "", fitted_on: str = "",
                 params: dict | None = None, n: int = 0) -> Remedy:
        rows, gaps = group_rates(Decisions(base.score, dec, sc.positive), gidx, labels, y_pos)
        title = TITLES[name].format(a=f"“{attribute}”", n=n)
        return Remedy(name, title, how, rows, gaps, int((dec != base.decided).sum()), uses, note, fitted_on,
                      params or {}, dec)

    out = [evaluate("original", base.decided, "the model's own decisions", bool(_uses(sc, X, attribute)))]
    skipped: dict[str, str] = {}
    fits = [0]
    refit_reason = ("retraining needs the training rows (X_train, y_train)" if not have_train else
                    "retraining needs a training routine (train=) or a scikit-learn estimator that can be cloned")

    def refitted(held: Sequence[str], weights: np.ndarray | None = None, params: dict | None = None):
        fits[0] += 1
        m = fit(_held(X_train, held, X_train), y_train_raw, sample_weight=weights, params=params)
        return _Held(m, held, X_train) if held else m

    def decisions_of(m) -> tuple[np.ndarray, bool]:
        s2 = Scorer(m, X, sc.positive, class_names=class_names)
        return s2(X).decided, bool(_uses(s2, X, attribute))

    no_fairlearn = _fairlearn_missing()
    for name in which:
        if time.perf_counter() - t0 > time_limit:
            skipped[name] = f"the time limit of {time_limit:g} s was reached"
            continue
        if name in NEEDS_FAIRLEARN and no_fairlearn:
            skipped[name] = no_fairlearn
            continue
        if name == "thresholds":
            from fairlearn.postprocessing import ThresholdOptimizer
            cons = "demographic_parity" if constraint == "demographic_parity" else "true_positive_rate_parity"
            to = ThresholdOptimizer(estimator=_score_estimator(sc), constraints=cons, prefit=True,
                                    predict_method="predict_proba")
            Xf, yf, Af = (X_train, ytr_pos, Atr) if have_train else (X, y_pos, A)
            to.fit(Xf, yf.astype(int), sensitive_features=Af)
            dec = np.asarray(to.predict(X, sensitive_features=A, random_state=seed)).astype(bool)
            out.append(evaluate(name, dec, f"post-processing for {CONSTRAINTS[constraint]} (Fairlearn ThresholdOptimizer)",
                                True, f"Using “{attribute}” to decide is unlawful in some domains (credit, hiring, "
                                "housing in many countries).", "training rows" if have_train else "these rows"))
            continue
        if fit is None:
            skipped[name] = refit_reason
            continue
        if name == "without":
            m = refitted([attribute])
            dec, uses = decisions_of(m)
            out.append(evaluate(name, dec, f"refitted with “{attribute}” held at one value", uses, fitted_on="training rows"))
        elif name == "without_proxies":
            if not proxies:
                skipped[name] = "no proxies were given or found"
                continue
            m = refitted([attribute, *proxies])
            dec, uses = decisions_of(m)
            out.append(evaluate(name, dec, "refitted with " + ", ".join(f"“{c}”" for c in [attribute, *proxies])
                                + " held at one value each", uses, fitted_on="training rows"))
        elif name == "reweighing":
            w = _reweigh(Atr, ytr_pos)
            try:
                m = refitted([attribute], weights=w)
            except TypeError as exc:
                skipped[name] = f"the model cannot be fitted with sample weights ({exc})"
                continue
            dec, uses = decisions_of(m)
            out.append(evaluate(name, dec, "refitted without the attribute, rows weighted so group and label are "
                                "independent (Kamiran & Calders)", uses, fitted_on="training rows"))
        elif name == "reduction":
            from fairlearn.reductions import DemographicParity, ExponentiatedGradient, TruePositiveRateParity
            cons = DemographicParity() if constraint == "demographic_parity" else TruePositiveRateParity()
            counter = [0]
            est = _estimator_for_fairlearn(fit, [attribute], X_train, counter)
            eg = ExponentiatedGradient(est, cons, max_iter=max(2, max_fits // 2))
            try:
                with warnings.catch_warnings():     # fairlearn's own pandas deprecations, not the user's concern
                    warnings.filterwarnings("ignore", module="fairlearn")
                    eg.fit(X_train, ytr_pos.astype(int), sensitive_features=Atr)
            except TypeError as exc:
                skipped[name] = f"the model cannot be fitted with sample weights ({exc})"
                continue
            fits[0] += counter[0]
            dec = np.asarray(eg.predict(X, random_state=seed)).astype(bool)
            out.append(evaluate(name, dec, f"refitted without the attribute under a constraint of "
                                f"{CONSTRAINTS[constraint]} (Fairlearn ExponentiatedGradient, {counter[0]} fits)",
                                False, "The attribute is used only while training.", "training rows"))
        elif name == "search":
            if train is not None:
                skipped[name] = "a user training routine has no hyperparameters to search"
                continue
            space = search_space(model)
            if not space:
                skipped[name] = f"no hyperparameters whybox knows how to search for {type(model).__name__}"
                continue
            rng = np.random.default_rng(seed)
            a0 = out[0].gaps["accuracy"]
            best, tried = None, 0
            for _ in range(max_fits):
                if time.perf_counter() - t0 > time_limit:
                    break
                params = {k: f(rng) for k, f in space.items()}
                m = refitted([], params=params)
                tried += 1
                s2 = Scorer(m, X, sc.positive, class_names=class_names)
                dec = s2(X).decided
                r = evaluate(name, dec, "", True, params=params, n=tried)
                if r.gaps["accuracy"] >= a0 - ACCURACY_SLACK and (best is None or r.gap(constraint) < best[0].gap(constraint)):
                    best = (r, s2)
            if best is None or best[0].gap(constraint) >= out[0].gap(constraint):
                skipped[name] = (f"none of {tried} settings was fairer within {100 * ACCURACY_SLACK:.0f} point of the "
                                 "original accuracy")
                continue
            r, s2 = best
            r.title = TITLES[name].format(n=tried)
            r.how = ("the fairest of " + str(tried) + " random hyperparameter settings whose accuracy is within "
                     f"{100 * ACCURACY_SLACK:.0f} point of the original: "
                     + ", ".join(f"{k.split('__')[-1]}={_plain(v)}" for k, v in r.params.items()))
            r.uses_attribute = bool(_uses(s2, X, attribute))
            r.fitted_on = "training rows (chosen on these rows)"
            out.append(r)
    return RemedyReport(attribute, sc.positive, constraint, out, skipped, fits[0], time.perf_counter() - t0)


def _reweigh(a: np.ndarray, y: np.ndarray) -> np.ndarray:
    a = pd.Series(a).astype(str).to_numpy()
    w = np.ones(len(a))
    for g in np.unique(a):
        for v in (False, True):
            m = (a == g) & (y == v)
            if m.any():
                w[m] = (a == g).mean() * (y == v).mean() / m.mean()
    return w


def _uses(sc: Scorer, X: pd.DataFrame, attribute: str) -> int:
    """How many rows' decisions change when only ``attribute`` is moved to another group (0: unused)."""
    vals = list(X[attribute].dropna().unique())
    if len(vals) < 2 or len(vals) > 12:
        return 0
    base = sc(X).decided
    frames = []
    for v in vals:
        Z = X.copy()
        Z[attribute] = np.asarray([v] * len(X), dtype=X[attribute].dtype if pd.api.types.is_numeric_dtype(X[attribute])
                                  else object)
        frames.append(Z)
    d = sc(pd.concat(frames, ignore_index=True)).decided.reshape(len(vals), len(X))
    return int((d != base[None, :]).any(axis=0).sum())


__all__ = ["ALL", "CONSTRAINTS", "Remedy", "RemedyReport", "remedies", "search_space"]
