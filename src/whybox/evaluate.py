"""``whybox.evaluate``: score explanations with any set of metrics, one table."""
from __future__ import annotations

from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd

from whybox.core.explanation import Explanation
from whybox.errors import InputError
from whybox.explainers.recipes import get_recipe
from importlib import import_module
from whybox.metrics import faithfulness as fa
from whybox.metrics import stability as st
from whybox.metrics._common import mean_ci

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
            return fa.infidelity(model, X, exp, perturbation="gaussian", sigma=nb.sigma, n_perturb=n_perturb,
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
            truth = agr.ground_truth(model, exp.target, X=X, groups=groups, feature_names=feature_names)
        fn = agr.AGREEMENT[name]
        return fn(truth, exp.values, k) if name in ("FA", "RA", "SA", "SRA") else fn(truth, exp.values)
    raise InputError(f"unknown metric {name!r}; choose from {list(METRICS)}")


def evaluate(model: Any, X: Any, explanations: Explanation | Sequence | Mapping[str, Any] | str, *,
             metrics: Sequence[str] = ("pgi", "pgu", "fidelity"), neighbourhood: Any = "removal",
             background: Any = None, k: int | None = None, seed: Any = 0, n_perturb: int = 100,
             n_samples: int = 200, groups: Any = None, feature_names=None, kinds=None, target: Any = None,
             **explain_kwargs: Any) -> pd.DataFrame:
    """Score explanations of ``model`` on rows ``X``: a table with one row per explanation and, per
    metric, the mean over rows and a 95% confidence interval (``<metric>_lo``, ``<metric>_hi``).

    ``explanations``: an Explanation, a list of them, a {name: Explanation} mapping, or method names
    (explained here with ``background``/``seed``/``explain_kwargs``). Metrics: pgi, pgu, pgi_auc,
    pgu_auc, fidelity (local MSE in ``neighbourhood``), nmse, r2, deletion, insertion, infidelity, ris,
    ros, rrs, sensitivity, and the ground-truth agreements FA, RA, SA, SRA, RC, PRA (linear models).
    """
    from whybox.api import explain

    if isinstance(explanations, (Explanation, str)):
        explanations = [explanations]
    items: list[tuple[str, Explanation]] = []
    pairs = explanations.items() if isinstance(explanations, Mapping) else ((None, e) for e in explanations)
    for name, e in pairs:
        if isinstance(e, str):
            e = explain(model, X, method=e, background=background, seed=seed, groups=groups,
                        feature_names=feature_names, kinds=kinds, target=target, **explain_kwargs)
        if not isinstance(e, Explanation):
            raise InputError(f"explanations must be Explanation objects or method names, got {type(e).__name__}")
        items.append((name or e.method, e))
    names = [n for n, _ in items]
    if len(set(names)) != len(names):
        raise InputError(f"explanation names must be unique, got {names}; pass a dict to name them")
    unknown = [m for m in metrics if m not in HIGHER_IS_BETTER]
    if unknown:
        raise InputError(f"unknown metric(s) {unknown}; choose from {list(METRICS)}")
    truth = None
    rows = []
    for name, e in items:
        row: dict[str, Any] = {"explanation": name, "method": e.method, "explain_rows": e.n_model_rows,
                               "explain_seconds": e.seconds}
        for m in metrics:
            if m in agr.AGREEMENT and truth is None:
                truth = agr.ground_truth(model, e.target, X=X, groups=groups, feature_names=feature_names)
            s = metric_scores(m, model, X, e, neighbourhood=neighbourhood, background=background, k=k,
                              seed=seed, n_perturb=n_perturb, n_samples=n_samples, groups=groups,
                              feature_names=feature_names, kinds=kinds, truth=truth)
            mu, lo, hi = mean_ci(s)
            row[m], row[f"{m}_lo"], row[f"{m}_hi"] = mu, lo, hi
        rows.append(row)
    return pd.DataFrame(rows).set_index("explanation")
