"""Global surrogates: the whole black box distilled into a model a person can read, with its
fidelity measured on samples it was not fitted on.

    s = whybox.global_surrogate(model, X_train, kind="tree", max_depth=3, budget=4000)
    print(s.text())            # the rules, and how far they can be trusted
    s.estimator.predict(X)     # a scikit-learn Pipeline that takes the black box's inputs

What is queried (every row through the problem's counted Model, within ``budget``):

1. the user's data rows (a share ``holdout`` of them, at most 2,000, is kept back for fidelity);
2. perturbed copies of data rows (:class:`whybox.whole.sampling.Sampler`);
3. ``rounds`` active rounds: rows near the samples the current surrogate gets wrong (classifiers) or
   fits worst (regressors), and, for trees, rows that straddle each split threshold inside the gap
   the split was placed in (so thresholds converge on the black box's own, as by bisection); the
   surrogate is refitted after each round;
4. fresh perturbed rows, never used for fitting, on which fidelity is measured (and the held-out
   data rows, separately).

What the surrogate mimics: a classifier's predicted class (argmax of its scores, or the labels a
``predict``-only model returns), or a regressor's output (``task="regression"`` on a classifier
regresses the score of ``target``).
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np
import pandas as pd

from whybox.core.validation import as_python
from whybox.errors import InputError
from whybox.params import Choice, Float, Int, check
from whybox.problem import Problem, resolve_targets
from whybox.whole.fidelity import Fidelity, describe_regions, fidelity
from whybox.whole.rules import Rule, RuleListClassifier, tree_rules
from whybox.whole.sampling import Encoder, Sampler

KINDS = ("tree", "linear", "rules", "gam")
PARAMS = {
    "kind": Choice(KINDS),
    "task": Choice(("auto", "classification", "regression")),
    "max_depth": Int(1, 30),
    "max_rules": Int(2, 200),
    "max_features": Int(1, 10_000),
    "budget": Int(1, 10**9),
    "rounds": Int(0, 100),
    "holdout": Float(0, 1, low_open=True, high_open=True),
    "confidence": Float(0, 1, low_open=True, high_open=True),
}


@dataclass
class GlobalSurrogate:
    """A fitted global surrogate and its measured fidelity.

    estimator : scikit-learn Pipeline (encoder + surrogate) taking the black box's inputs.
    fidelity : {"perturbed": Fidelity on fresh perturbed samples, "data": Fidelity on held-out data
        rows (when there were enough rows)}.
    rules : for trees (one per leaf, largest first) and rule lists (in order); each rule's ``extra``
        holds ``fidelity`` (agreement or R² with the black box on the fresh samples it covers) and
        ``n_fresh``.
    coefficients : for linear surrogates, per feature in the input's own units (Series; per class
        for multiclass).
    n_queries : black-box rows spent (``queries`` breaks them down).
    """

    kind: str
    task: str
    estimator: Any
    fidelity: dict[str, Fidelity]
    feature_names: list[str]
    labels: list | None
    target: Any
    n_queries: int
    queries: dict[str, int]
    rules: list[Rule] | None = None
    coefficients: Any = None
    intercept: Any = None
    seconds: float = 0.0
    params: dict = field(default_factory=dict)
    _categories: list | None = field(default=None, repr=False)
    _binary: list | None = field(default=None, repr=False)

    # ------------------------------------------------------------------ reading
    def predict(self, X: Any) -> np.ndarray:
        return self.estimator.predict(X)

    def rule_texts(self) -> list[str]:
        if self.rules is None:
            return []
        outcome = "the model says" if self.task == "classification" else "the model's output is about"
        out = []
        for r in self.rules:
            t = r.text(self.feature_names, self._categories, self._binary, outcome=outcome)
            f = r.extra.get("fidelity")
            how = ""
            if f is not None and r.extra.get("n_fresh", 0):
                how = (f"; right for {100 * f:.0f}% of {r.extra['n_fresh']} fresh samples here" if self.task == "classification"
                       else f"; R² {f:.2f} on {r.extra['n_fresh']} fresh samples here")
            out.append(f"{t} ({100 * r.support:.0f}% of the samples{how}).")
        return out

    def text(self) -> str:
        """The surrogate for a lay reader: how far it can be trusted, then what it says."""
        head = {"tree": f"a decision tree of depth {self.params.get('max_depth')}", "rules": "an ordered list of rules",
                "linear": "a sparse linear model", "gam": "an additive model (EBM)"}[self.kind]
        lines = [f"A summary of the whole model as {head}, learnt from {self.n_queries:,} model queries."]
        for f in self.fidelity.values():
            lines.append(f.text())
            lines += ["  It is least reliable " + w + "." for w in
                      describe_regions(f.where[:3], self.feature_names, self._categories, self._binary)]
        main = self.fidelity.get("perturbed") or next(iter(self.fidelity.values()))
        if main.low < (0.9 if main.metric == "agreement" else 0.8):
            lines.append("Caution: the summary often differs from the model; read it as a rough sketch, not as the "
                         "model's logic (try a larger depth or budget).")
        if self.rules is not None:
            lines.append("What it says:" if self.kind == "tree" else "What it says (the first rule that applies decides):")
            lines += ["  " + t for t in self.rule_texts()]
        elif self.coefficients is not None:
            lines.append(self._linear_text())
        return "\n".join(lines)

    def _linear_text(self) -> str:
        co = self.coefficients
        scale = "log-odds of " if self.task == "classification" else ""
        if isinstance(co, pd.DataFrame):
            parts = []
            for cls in co.columns:
                nz = co[cls][co[cls] != 0]
                parts.append(f"  {scale}'{cls}': " + (", ".join(f"{k} {v:+.4g}" for k, v in nz.items()) or "constant"))
            return "Effect of one unit of each feature:\n" + "\n".join(parts)
        nz = co[co != 0]
        what = f"{scale}'{self.target}'" if self.task == "classification" else "the output"
        return f"Effect of one unit of each feature on {what}: " + (", ".join(f"{k} {v:+.4g}" for k, v in nz.items())
                                                                  or "none (a constant)")

    def to_dict(self) -> dict[str, Any]:
        outcome = "the model says" if self.task == "classification" else "the model's output is about"

        def rule(r: Rule) -> dict[str, Any]:
            return {"text": r.text(self.feature_names, self._categories, self._binary, outcome=outcome),
                    "prediction": _plain(r.prediction), "support": r.support, "n": r.n,
                    **{k: _plain(v) for k, v in r.extra.items() if k != "node"}}
        co = self.coefficients
        if isinstance(co, pd.DataFrame):
            co = {str(c): {k: float(v) for k, v in co[c].items()} for c in co.columns}
        elif co is not None:
            co = {k: float(v) for k, v in co.items()}
        return {"kind": self.kind, "task": self.task, "target": _plain(self.target),
                "labels": None if self.labels is None else [_plain(v) for v in self.labels],
                "features": self.feature_names, "n_queries": self.n_queries, "queries": self.queries,
                "fidelity": {k: v.to_dict() | {"where": describe_regions(v.where, self.feature_names, self._categories,
                                                                         self._binary)}
                             for k, v in self.fidelity.items()},
                "rules": None if self.rules is None else [rule(r) for r in self.rules],
                "coefficients": co, "params": self.params, "seconds": self.seconds, "text": self.text()}


def _plain(v: Any) -> Any:
    if isinstance(v, (frozenset, set)):
        return sorted(_plain(x) for x in v)
    return as_python(v)


# ---------------------------------------------------------------------------------------------- fitting
def global_surrogate(model: Any, data: Any = None, *, kind: str = "tree", max_depth: int = 3, max_rules: int = 8,
                     max_features: int = 5, budget: int = 5000, rounds: int = 3, task: str = "auto",
                     target: Any = None, holdout: float = 0.25, confidence: float = 0.95, seed: int = 0,
                     kinds: Any = None, feature_names: Sequence[str] | None = None, output: str = "auto",
                     batch_size: int | None = None) -> GlobalSurrogate:
    """Distil ``model`` into an interpretable ``kind`` of surrogate from at most ``budget`` queries.

    Parameters
    ----------
    model : anything :class:`whybox.Explainer` accepts, or an Explainer (its data is then the default).
    data : reference rows (e.g. training data): sampled around, and partly held out for fidelity.
    kind : "tree" (depth ``max_depth``), "rules" (an ordered rule list of at most ``max_rules``),
        "linear" (at most ``max_features`` features with non-zero weight: L1-penalised logistic or
        least squares) or "gam" (an Explainable Boosting Machine; needs ``interpret-core``).
    budget : black-box rows in all, fidelity samples included.
    rounds : active rounds (0: only data and perturbed rows).
    task : "auto" (classification when the model is a classifier), "classification" or "regression".
    target : with ``task="regression"``, the output (a class label or an index) to regress.
    holdout : share of the data rows kept back for fidelity (at most 2,000 rows).
    confidence : level of the fidelity intervals.
    """
    t0 = time.perf_counter()
    kind = check("kind", kind, decl=PARAMS["kind"])
    task = check("task", task, decl=PARAMS["task"])
    for name, v in (("max_depth", max_depth), ("max_rules", max_rules), ("max_features", max_features),
                    ("budget", budget), ("rounds", rounds), ("holdout", holdout), ("confidence", confidence)):
        check(name, v, decl=PARAMS[name])
    check("seed", seed)
    check("batch_size", batch_size)
    prepared = isinstance(model, Problem) or isinstance(getattr(model, "problem", None), Problem)
    if data is None and not prepared:
        raise InputError("global_surrogate needs data: reference rows (e.g. the training data) to sample around")
    problem = Problem.build(model, data, kinds=kinds, feature_names=feature_names, output=output,
                            batch_size=batch_size)
    ref = problem.reference
    if ref is None and data is not None:
        ref = problem.matrix(data, name="data")
    if ref is None:
        raise InputError("global_surrogate needs data: reference rows (e.g. the training data) to sample around")
    if len(ref) < 2:
        raise InputError(f"data needs at least 2 rows to sample around, got {len(ref)}")
    sampler = Sampler(ref, problem.spec.kinds, problem.spec.columns)
    m = problem.model.child(budget=budget)
    rng = np.random.default_rng(seed)
    fresh_rng = np.random.default_rng([seed, 1])

    # --- the budget's shares
    n = len(ref)
    perm = rng.permutation(n)
    n_hold = min(2000, int(round(holdout * n))) if n >= 20 else 0
    n_fresh = int(min(2000, max(200, budget // 5)))
    floor = n_hold + n_fresh + 100
    if budget < floor:
        raise InputError(f"budget={budget:,} is too small: fidelity needs {n_hold + n_fresh:,} held-out model rows "
                         f"and fitting at least 100 more (budget >= {floor:,})")
    hold_idx, train_idx = perm[:n_hold], perm[n_hold:]
    left = budget - n_hold - n_fresh
    train_idx = train_idx[: max(0, min(len(train_idx), left // 2))]
    left -= len(train_idx)
    n_active = left // 2 if rounds else 0
    n_perturbed = left - n_active

    def ask(E: np.ndarray) -> np.ndarray:
        return m(sampler.decode(E))

    E = np.vstack([sampler.E[train_idx], sampler.draw(n_perturbed, rng)])
    scores = ask(E)
    task_, labels, target_, read = _reading(task, target, scores, problem)
    y = read(scores)
    queries = {"data": int(len(train_idx)), "perturbed": int(n_perturbed), "active": 0, "fidelity": 0}

    n_base = len(E)
    w = np.ones(n_base)
    # an EBM is slow to fit: the active rounds look for disagreement with a depth-6 tree instead,
    # and the EBM is fitted once, on everything
    round_kind = "tree" if kind == "gam" else kind
    round_depth = 6 if kind == "gam" else max_depth
    est, fit_info = _fit(round_kind, E, y, task_, sampler, w, max_depth=round_depth, max_rules=max_rules,
                         max_features=max_features, seed=seed)
    for r in range(rounds):
        n_r = n_active // rounds + (1 if r < n_active % rounds else 0)
        if n_r <= 0:
            continue
        Enew = _active(est, round_kind, E, y, task_, sampler, n_r, rng)
        E, y = np.vstack([E, Enew]), np.concatenate([y, read(ask(Enew))])
        queries["active"] += len(Enew)
        # active rows resolve where the surrogate is unsure; weighted to at most a quarter of the
        # base rows' weight, so the fit still targets the distribution fidelity is measured on
        n_act = len(E) - n_base
        w = np.concatenate([np.ones(n_base), np.full(n_act, min(1.0, 0.25 * n_base / n_act))])
        est, fit_info = _fit(round_kind, E, y, task_, sampler, w, max_depth=round_depth, max_rules=max_rules,
                             max_features=max_features, seed=seed)
    if kind == "gam":
        est, fit_info = _fit(kind, E, y, task_, sampler, w, max_depth=max_depth, max_rules=max_rules,
                             max_features=max_features, seed=seed)

    # --- fidelity on rows never fitted on
    fid: dict[str, Fidelity] = {}
    Ef = sampler.draw(n_fresh, fresh_rng)
    yf = read(ask(Ef))
    pf = est.predict(Ef)
    fid["perturbed"] = fidelity(yf, pf, task=task_, E=Ef, sample="fresh perturbed samples",
                                confidence=confidence, labels=labels, seed=seed)
    queries["fidelity"] = n_fresh
    if n_hold:
        Eh = sampler.E[hold_idx]
        yh = read(ask(Eh))
        fid["data"] = fidelity(yh, est.predict(Eh), task=task_, E=Eh, sample="held-out data rows",
                               confidence=confidence, labels=labels, seed=seed)
        queries["fidelity"] += n_hold

    rules = fit_info.get("rules")
    if rules is not None:
        for rl in _leaf_order(rules, kind):
            hit = rl["mask"](Ef)
            rl["rule"].extra["n_fresh"] = int(hit.sum())
            if hit.any():
                rl["rule"].extra["fidelity"] = (float((pf[hit] == yf[hit]).mean()) if task_ == "classification"
                                                else _r2_or_none(yf[hit], pf[hit]))
    from sklearn.pipeline import Pipeline

    pipe = Pipeline([("encode", sampler.encoder), ("surrogate", est)])
    return GlobalSurrogate(kind=kind, task=task_, estimator=pipe, fidelity=fid,
                           feature_names=list(problem.spec.columns), labels=labels, target=target_ if target_ is not None else fit_info.get("positive"),
                           n_queries=int(m.n_rows), queries=queries, rules=rules,
                           coefficients=fit_info.get("coefficients"), intercept=fit_info.get("intercept"),
                           seconds=time.perf_counter() - t0,
                           params={"max_depth": max_depth, "max_rules": max_rules, "max_features": max_features,
                                   "budget": budget, "rounds": rounds, "holdout": holdout, "confidence": confidence,
                                   "seed": seed},
                           _categories=list(sampler.encoder.categories), _binary=list(sampler.binary))


def _r2_or_none(y: np.ndarray, p: np.ndarray) -> float | None:
    from whybox.whole.fidelity import r2
    return r2(np.asarray(y, float), np.asarray(p, float)) if len(y) > 1 else None


def _leaf_order(rules: list[Rule], kind: str) -> list[dict]:
    """Each rule with the mask of the samples *it* decides (a rule list: the first rule that holds)."""
    if kind == "tree":
        return [{"rule": r, "mask": r.holds} for r in rules]
    out = []
    for i, r in enumerate(rules):
        earlier = rules[:i]

        def mask(E: np.ndarray, r: Rule = r, earlier: list = earlier) -> np.ndarray:
            m = r.holds(E)
            for e in earlier:
                m &= ~e.holds(E)
            return m
        out.append({"rule": r, "mask": mask})
    return out


def _reading(task: str, target: Any, scores: np.ndarray, problem: Problem):
    """(task, labels, target, scores -> what the surrogate mimics)."""
    m = problem.model
    k = scores.shape[1]
    names = m.output_names
    probs = k >= 2 and bool(np.all(scores >= -1e-9) and np.all(scores <= 1 + 1e-9)
                            and np.allclose(scores.sum(axis=1), 1.0, atol=1e-6))
    is_clf = m.is_classifier if m.is_classifier is not None else probs
    if task == "auto":
        task = "classification" if is_clf else "regression"
    if task == "classification":
        if target is not None:
            raise InputError("target= applies to task='regression' (the surrogate of a classifier mimics its class)")
        if k == 1:
            vals = scores[:, 0]
            integral = bool(np.allclose(vals, np.rint(vals)))
            if not is_clf and not integral:
                raise InputError("task='classification' needs a classifier: this model returns one non-integer score "
                                 "per row; use task='regression'")
            lab = np.rint(vals).astype(int) if integral else vals
            return task, None, None, lambda s: (np.rint(s[:, 0]).astype(int) if lab.dtype.kind == "i" else s[:, 0])
        labels = list(names) if names is not None else list(range(k))
        arr = np.asarray(labels, dtype=object)
        try:
            arr = np.asarray(labels)
        except (TypeError, ValueError):
            pass
        return task, labels, None, lambda s: arr[np.argmax(s, axis=1)]
    # regression
    if k == 1:
        return task, None, (names[0] if names else 0), lambda s: s[:, 0]
    if target is None:
        if not (is_clf and k == 2):
            raise InputError(f"the model has {k} outputs: pass target= (a label or an index) to say which to regress")
        t = 1
    else:
        t = int(resolve_targets(target, scores[:1], names)[0])
    return task, None, (names[t] if names else t), lambda s, t=t: s[:, t]


def _fit(kind: str, E: np.ndarray, y: np.ndarray, task: str, sampler: Sampler, w: np.ndarray, *, max_depth: int,
         max_rules: int, max_features: int, seed: int):
    clf = task == "classification"
    if kind == "tree":
        from sklearn.tree import DecisionTreeClassifier, DecisionTreeRegressor

        est = (DecisionTreeClassifier if clf else DecisionTreeRegressor)(max_depth=max_depth, random_state=seed).fit(E, y, sample_weight=w)
        return est, {"rules": tree_rules(est, list(est.classes_) if clf else None)}
    if kind == "rules":
        if not clf:
            raise InputError("kind='rules' summarises classifiers; for a regressor use kind='tree' or 'linear'")
        est = RuleListClassifier(max_rules=max_rules, categorical=list(sampler.categorical)).fit(E, y, sample_weight=w)
        return est, {"rules": list(est.rules_)}
    if kind == "linear":
        return _fit_linear(E, y, clf, sampler, max_features, seed, w)
    try:
        from interpret.glassbox import ExplainableBoostingClassifier, ExplainableBoostingRegressor
    except ImportError:
        raise InputError("kind='gam' needs interpret-core: pip install 'whybox[gam]'") from None
    est = (ExplainableBoostingClassifier if clf else ExplainableBoostingRegressor)(random_state=seed, n_jobs=1,
                                                                                   interactions=0, outer_bags=4)
    return est.fit(E, y, sample_weight=w), {}


def _fit_linear(E, y, clf, sampler, max_features, seed, w):
    """Sparse linear surrogate by the relaxed lasso: the first ``max_features`` features to enter the
    L1 path (a one-hot block of a categorical feature counts as one) are refitted with a light L2
    penalty (classifiers: logistic; regressors: least squares)."""
    import warnings

    from sklearn.compose import ColumnTransformer
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import Lasso, LinearRegression, LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    names = sampler.columns

    def prep(cols):
        cat = [j for j in cols if sampler.categorical[j]]
        num = [j for j in cols if not sampler.categorical[j]]
        parts = []
        if cat:
            parts.append(("cat", OneHotEncoder(handle_unknown="ignore", sparse_output=False), cat))
        if num:
            parts.append(("num", StandardScaler(), num))
        return ColumnTransformer(parts)

    def l1_model(c):
        if clf:
            import inspect
            l1 = ({"l1_ratio": 1.0} if inspect.signature(LogisticRegression).parameters["penalty"].default == "deprecated"
                  else {"penalty": "l1"})
            return LogisticRegression(C=c, solver="saga" if len(np.unique(y)) > 2 else "liblinear", max_iter=2000,
                                      random_state=seed, **l1)
        return Lasso(alpha=c, max_iter=20000, random_state=seed)

    all_cols = list(range(E.shape[1]))
    grid = np.logspace(-4, 1, 30) if clf else np.logspace(1, -5, 30) * max(float(np.std(y)), 1e-12)
    order: list[int] = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        for c in grid:
            pipe = Pipeline([("prep", prep(all_cols)), ("model", l1_model(c))]).fit(E, y, model__sample_weight=w)
            coef = np.atleast_2d(pipe.named_steps["model"].coef_)
            mag = _feature_magnitudes(pipe.named_steps["prep"], coef)
            for j in sorted(mag, key=lambda j: -mag[j]):
                if mag[j] > 0 and j not in order:
                    order.append(j)
            if len(order) >= max_features:
                break
        chosen = sorted(order[:max_features])
        if not chosen:
            from sklearn.dummy import DummyClassifier, DummyRegressor
            est = (DummyClassifier(strategy="most_frequent") if clf else DummyRegressor()).fit(E, y, sample_weight=w)
            co = pd.Series(np.zeros(len(names)), index=names)
            return est, {"coefficients": co, "intercept": None}
        final = LogisticRegression(C=10.0, max_iter=3000) if clf else LinearRegression()
        pipe = Pipeline([("prep", prep(chosen)), ("model", final)]).fit(E, y, model__sample_weight=w)
    coef, icpt = _linear_coefficients(pipe, names, sampler)
    if clf:
        classes = pipe.named_steps["model"].classes_
        if coef.shape[0] == 1:
            co, ic = pd.Series(coef[0], index=names), float(icpt[0])
        else:
            co = pd.DataFrame(coef.T, index=names, columns=[_plain(c) for c in classes])
            ic = icpt
    else:
        co, ic = pd.Series(coef[0], index=names), float(icpt[0])
    return pipe, {"coefficients": co, "intercept": ic, "positive": _plain(pipe.named_steps["model"].classes_[-1])
                  if clf else None}


def _feature_magnitudes(prep, coef) -> dict[int, float]:
    out: dict[int, float] = {}
    pos = 0
    for name, tr, cols in prep.transformers_:
        if name == "cat":
            for j, cats in zip(cols, tr.categories_):
                out[j] = float(np.abs(coef[:, pos:pos + len(cats)]).max())
                pos += len(cats)
        elif name == "num":
            for j in cols:
                out[j] = float(np.abs(coef[:, pos]).max())
                pos += 1
    return out


def _linear_coefficients(pipe, names, sampler):
    """Coefficients per feature in the input's units (numeric: per unit; categorical: the largest
    absolute one-hot weight, signed), and the intercept on that scale."""
    prep, lin = pipe.named_steps["prep"], pipe.named_steps["model"]
    coef = np.atleast_2d(lin.coef_)
    icpt = np.atleast_1d(lin.intercept_).astype(float).copy()
    out = np.zeros((coef.shape[0], len(names)))
    pos = 0
    for name, tr, cols in prep.transformers_:
        if name == "cat":
            for j, cats in zip(cols, tr.categories_):
                block = coef[:, pos:pos + len(cats)]
                out[:, j] = block[np.arange(len(block)), np.argmax(np.abs(block), axis=1)]
                pos += len(cats)
        elif name == "num":
            for i, j in enumerate(cols):
                out[:, j] = coef[:, pos] / tr.scale_[i]
                icpt -= coef[:, pos] * tr.mean_[i] / tr.scale_[i]
                pos += 1
    return out, icpt


# ---------------------------------------------------------------------------------------------- active rounds
def _active(est, kind: str, E: np.ndarray, y: np.ndarray, task: str, sampler: Sampler, n: int,
            rng: np.random.Generator) -> np.ndarray:
    """``n`` new rows: half near the samples the surrogate gets most wrong, half straddling the tree's
    split thresholds (other kinds: fresh perturbed rows)."""
    pred = est.predict(E)
    if task == "classification":
        wrong = np.flatnonzero(pred != y)
    else:
        err = np.abs(np.asarray(pred, float) - y)
        wrong = np.argsort(-err)[: max(1, len(err) // 10)] if err.max() > 0 else np.array([], int)
    n_near = n // 2 if kind == "tree" else n
    parts = []
    if len(wrong):
        parts.append(sampler.around(E[wrong[rng.integers(0, len(wrong), n_near)]], rng, scale=sampler.scale / 2))
    else:
        parts.append(sampler.draw(n_near, rng))
    if kind == "tree":
        parts.append(_threshold_probes(est, E, sampler, n - n_near, rng))
    return np.vstack(parts)


def _threshold_probes(tree, E: np.ndarray, sampler: Sampler, n: int, rng: np.random.Generator) -> np.ndarray:
    """Rows that reach a split node with the split's feature moved inside the gap where the split was
    placed: between the nearest fitted values on either side of the threshold, among the rows whose
    prediction the split decides (moving the feature across the threshold changes it)."""
    if n <= 0:
        return np.empty((0, E.shape[1]))
    t = tree.tree_
    nodes = [i for i in range(t.node_count) if t.children_left[i] != -1]
    paths = tree.decision_path(E).tocsc()
    gaps = []
    for node in nodes:
        f, thr = int(t.feature[node]), float(t.threshold[node])
        if sampler.categorical[f] or sampler.binary[f]:
            continue
        rows = paths[:, node].nonzero()[0]
        # only rows whose prediction the split decides say where the black box's threshold lies
        # (scikit-learn trees compare float32 inputs: the probes are the float32 values either side)
        t32 = np.float32(thr)
        if t32 > thr:
            t32 = np.nextafter(t32, np.float32(-np.inf))
        left, right = E[rows].copy(), E[rows].copy()
        left[:, f] = float(t32)
        right[:, f] = float(np.nextafter(t32, np.float32(np.inf)))
        rows = rows[tree.predict(left) != tree.predict(right)]
        col = E[rows, f]
        below, above = col[col <= thr], col[col > thr]
        if not len(below) or not len(above):
            continue
        lo, hi = float(below.max()), float(above.min())
        if sampler.integer[f] and hi - lo <= 1:
            continue                                 # no integer lies inside the gap
        gaps.append((rows, f, lo, hi))
    if not gaps:
        return sampler.draw(n, rng)
    pick = rng.integers(0, len(gaps), n)
    out = np.empty((n, E.shape[1]))
    for i, g in enumerate(pick):
        rows, f, lo, hi = gaps[g]
        row = E[rows[rng.integers(0, len(rows))]].copy()
        v = rng.uniform(lo, hi)
        row[f] = np.rint(v) if sampler.integer[f] else v
        out[i] = row
    return out


__all__ = ["global_surrogate", "GlobalSurrogate", "Encoder", "KINDS"]
