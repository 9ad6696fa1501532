"""``whybox.evaluate``: score explanations with any set of metrics, one table."""
from __future__ import annotations

from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd

from importlib import import_module

from whybox.core.explanation import Explanation
from whybox.errors import InputError
from whybox.explainers.recipes import get_recipe
from whybox.explainers.run import explain_rows
from whybox.metrics import faithfulness as fa
from whybox.metrics import stability as st
from whybox.metrics._common import mean_ci
from whybox.params import PARAMS, check
from whybox.problem import Problem

agr = import_module("whybox.metrics.agreement")  # the module (whybox.metrics.agreement is also a function name)

HIGHER_IS_BETTER = {"pgi": True, "pgu": False, "pgi_auc": True, "pgu_auc": False, "fidelity": False,
                    "nmse": False, "r2": True, "deletion": False, "insertion": True, "infidelity": False,
                    "ris": False, "ros": False, "rrs": False, "sensitivity": False,
                    "FA": True, "RA": True, "SA": True, "SRA": True, "RC": True, "PRA": True}
METRICS = tuple(HIGHER_IS_BETTER)


def _recipe_params(exp: Explanation) -> dict[str, Any]:
    keys = get_recipe(exp.method).defaults()
    return {k: v for k, v in exp.params.items() if k in keys}


def metric_scores(name: str, model: Any, X: Any, exp: Explanation, *, neighbourhood: Any = "removal",
                  background: Any = None, k: int | None = None, seed: Any = 0, n_perturb: int = 100,
                  n_samples: int = 200, groups: Any = None, feature_names=None, kinds=None,
                  truth: np.ndarray | None = None, **extra: Any) -> np.ndarray:
    """Per-row scores of one metric for one explanation."""
    common = dict(seed=seed, groups=groups, feature_names=feature_names, kinds=kinds)
    if name == "pgi":
        return fa.pgi(model, X, exp, k=k, n_perturb=n_perturb, background=background, **common, **extra)
    if name == "pgu":
        return fa.pgu(model, X, exp, k=k, n_perturb=n_perturb, background=background, **common, **extra)
    if name == "pgi_auc":
        return fa.pgi_auc(model, X, exp, n_perturb=n_perturb, background=background, **common, **extra)
    if name == "pgu_auc":
        return fa.pgu_auc(model, X, exp, n_perturb=n_perturb, background=background, **common, **extra)
    if name in ("fidelity", "nmse", "r2"):
        return fa.local_fidelity(model, X, exp, neighbourhood=neighbourhood, n_samples=n_samples,
                                 metric={"fidelity": "mse"}.get(name, name), background=background, **common)
    if name == "deletion":
        return fa.deletion_curve(model, X, exp, background=background, **common)[1]
    if name == "insertion":
        return fa.insertion_curve(model, X, exp, background=background, **common)[1]
    if name == "infidelity":
        from whybox.metrics.neighbourhood import Gaussian, parse_neighbourhood
        nb = parse_neighbourhood(neighbourhood)
        if isinstance(nb, Gaussian):
            return fa.infidelity(model, X, exp, perturbation="gaussian", sigma=nb.sigma, scale=nb.scale, n_perturb=n_perturb,
                                 background=background, **common)
        return fa.infidelity(model, X, exp, perturbation="removal", p=nb.p, n_perturb=n_perturb,
                             background=background, **common)
    if name in ("ris", "ros", "rrs"):
        kind = {"ris": "input", "ros": "output", "rrs": "representation"}[name]
        return st.relative_stability(model, X, method=exp.method, kind=kind, explanation=exp,
                                     background=background, **common, **_recipe_params(exp), **extra)
    if name == "sensitivity":
        return st.max_sensitivity(model, X, method=exp.method, explanation=exp, background=background,
                                  **common, **_recipe_params(exp))
    if name in agr.AGREEMENT:
        if truth is None:
            truth = agr.ground_truth(_estimator(model), exp.target, X=X, groups=groups, feature_names=feature_names)
        fn = agr.AGREEMENT[name]
        return fn(truth, exp.values, k) if name in ("FA", "RA", "SA", "SRA") else fn(truth, exp.values)
    raise InputError(f"unknown metric {name!r}; choose from {list(METRICS)}")


def _estimator(model: Any) -> Any:
    return model.estimator if isinstance(model, Problem) else model


def evaluate(model: Any, X: Any, explanations: Explanation | Sequence | Mapping[str, Any] | str, *,
             metrics: Sequence[str] = ("pgi", "pgu", "fidelity"), neighbourhood: Any = "removal",
             background: Any = None, k: int | None = None, seed: Any = 0, n_perturb: int = 100,
             n_samples: int = 200, groups: Any = None, feature_names=None, kinds=None, target: Any = None,
             data: Any = None, progress: bool = False, **explain_kwargs: Any) -> pd.DataFrame:
    """Score explanations of ``model`` on rows ``X``: a table with one row per explanation and, per
    metric, the mean over rows and a 95% confidence interval (``<metric>_lo``, ``<metric>_hi``).

    ``model`` may be a :class:`whybox.Explainer` (its prepared features and background are used) or
    anything :func:`whybox.explain` takes (with ``data=`` for the feature kinds).
    ``explanations``: an Explanation, a list of them, a {name: Explanation} mapping, or method names
    (explained here with ``background``/``seed``/``explain_kwargs``). Metrics: pgi, pgu, pgi_auc,
    pgu_auc, fidelity (local MSE in ``neighbourhood``), nmse, r2, deletion, insertion, infidelity, ris,
    ros, rrs, sensitivity, and the ground-truth agreements FA, RA, SA, SRA, RC, PRA (linear models).
    Rows an explanation could not explain (NaN) are left out of its means; ``<metric>_n`` counts the
    rows scored. ``progress``: a bar of the model rows (interactive sessions only).
    """
    pb = Problem.build(model, data, rows=X, background=background, groups=groups, feature_names=feature_names,
                       kinds=kinds, warn_kinds=True)
    return evaluate_problem(pb, X, explanations, metrics=metrics, neighbourhood=neighbourhood, k=k, seed=seed,
                            n_perturb=n_perturb, n_samples=n_samples, target=target, progress=progress, **explain_kwargs)


def evaluate_problem(problem: Problem, X: Any, explanations: Any, *, metrics: Sequence[str] = ("pgi", "pgu", "fidelity"),
                     neighbourhood: Any = "removal", k: int | None = None, seed: Any = 0, n_perturb: int = 100,
                     n_samples: int = 200, target: Any = None, progress: bool = False,
                     **explain_kwargs: Any) -> pd.DataFrame:
    """:func:`evaluate` on a prepared problem."""
    from whybox.core.progress import check_progress, watching

    check_progress(progress)
    with watching(problem.model, None, "evaluate", progress):
        return _evaluate_problem(problem, X, explanations, metrics=metrics, neighbourhood=neighbourhood, k=k,
                                 seed=seed, n_perturb=n_perturb, n_samples=n_samples, target=target, **explain_kwargs)


def _evaluate_problem(problem: Problem, X: Any, explanations: Any, *, metrics: Sequence[str], neighbourhood: Any,
                      k: int | None, seed: Any, n_perturb: int, n_samples: int, target: Any,
                      **explain_kwargs: Any) -> pd.DataFrame:
    check("seed", seed)
    check("k", k)
    check("n_perturb", n_perturb)
    check("n_samples", n_samples, decl=PARAMS["metric_samples"])
    if isinstance(metrics, str) or not isinstance(metrics, Sequence) or not len(metrics):
        raise InputError(f"metrics must be a non-empty list of metric names from {list(METRICS)}, got {metrics!r}")
    if isinstance(explanations, (Explanation, str)):
        explanations = [explanations]
    if not isinstance(explanations, (Mapping, Sequence)) or not len(explanations):
        raise InputError("explanations must be an Explanation, method name(s) or a {name: Explanation} mapping, "
                         f"and not empty; got {explanations!r}")
    items: list[tuple[str, Explanation]] = []
    pairs = explanations.items() if isinstance(explanations, Mapping) else ((None, e) for e in explanations)
    for name, e in pairs:
        if isinstance(e, str):
            e = explain_rows(problem, X, method=e, seed=seed, target=target, one_output=True, **explain_kwargs)
        if not isinstance(e, Explanation):
            raise InputError(f"explanations must be Explanation objects or method names, got {type(e).__name__}")
        items.append((name or e.method, e))
    names = [n for n, _ in items]
    if len(set(names)) != len(names):
        raise InputError(f"explanation names must be unique, got {names}; pass a dict to name them")
    unknown = [m for m in metrics if not isinstance(m, str) or m not in HIGHER_IS_BETTER]
    if unknown:
        raise InputError(f"metrics: unknown metric(s) {unknown}; choose from {list(METRICS)}")
    truth = None
    rows = []
    for name, e in items:
        row: dict[str, Any] = {"explanation": name, "method": e.method, "explain_rows": e.n_model_rows,
                               "explain_seconds": e.seconds}
        for m in metrics:
            if m in agr.AGREEMENT and truth is None:
                truth = agr.ground_truth(problem.estimator, e.target, X=X, groups=problem.spec.named_groups(),
                                         feature_names=problem.spec.columns)
            s = metric_scores(m, problem, X, e, neighbourhood=neighbourhood, k=k, seed=seed, n_perturb=n_perturb,
                              n_samples=n_samples, truth=truth)
            mu, lo, hi = mean_ci(s)
            row[m], row[f"{m}_lo"], row[f"{m}_hi"] = mu, lo, hi
            row[f"{m}_n"] = int(np.isfinite(np.asarray(s, dtype=float)).sum())
        rows.append(row)
    return pd.DataFrame(rows).set_index("explanation")
