"""``whybox.choose``: pick the most faithful explanation method for the user's notion of "nearby".

No method is the most faithful in every neighbourhood (Han et al., NeurIPS 2022): perturbation methods
win when features are removed, gradient methods under small Gaussian noise. So whybox measures each
candidate in the neighbourhood the user cares about and reports a ranking with confidence intervals.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd

from whybox.core.explanation import Explanation
from whybox.errors import BudgetError, InputError, MethodError
from whybox.evaluate import HIGHER_IS_BETTER, metric_scores
from whybox.explainers.run import explain_rows
from whybox.metrics._common import mean_ci
from whybox.metrics.neighbourhood import Gaussian, parse_neighbourhood
from whybox.params import PARAMS, check
from whybox.problem import Problem
from whybox.trees.model import reads_trees

DEFAULT_CANDIDATES = ("kernelshap", "lime", "occlusion", "clime", "gradient", "gradxinput", "smoothgrad",
                      "integrated_gradients")
GRADIENT_FAMILY = {"clime", "gradient", "gradxinput", "smoothgrad", "integrated_gradients"}


@dataclass
class Choice:
    """The result of :func:`choose`: ``ranking`` (best first), the winner's name and Explanation, and
    every candidate's Explanation."""

    ranking: pd.DataFrame
    winner: str
    explanation: Explanation
    explanations: dict[str, Explanation] = field(default_factory=dict)
    neighbourhood: str = ""
    metric: str = ""

    def __repr__(self) -> str:
        return f"Choice(winner={self.winner!r}, neighbourhood={self.neighbourhood}, metric={self.metric})\n{self.ranking}"


def choose(model: Any, X: Any, *, neighbourhood: Any = "removal", candidates: Sequence[str] | None = None,
           metric: str = "fidelity", budget: int | None = None, seed: Any = 0, background: Any = None,
           n_samples: int = 200, params: Mapping[str, Mapping[str, Any]] | None = None, target: Any = None,
           feature_names=None, groups: Any = None, kinds: Any = None, output: str = "auto",
           batch_size: int | None = None, data: Any = None, progress: bool = False, **common_params: Any) -> Choice:
    """Explain ``X`` with every candidate method, score each in ``neighbourhood`` with ``metric``, rank.

    neighbourhood : "removal" / "removal(p)" (features removed toward the background) or
        "gaussian(sigma)" (small noise), or a :class:`~whybox.metrics.Removal`/:class:`~whybox.metrics.Gaussian`.
    candidates : method names (default: all nine, exact Shapley only when d <= 10, the gradient family
        only on numeric data, and "tree" first for a tree ensemble it reads).
    metric : "fidelity" (local MSE of the explanation read as a linear model in the neighbourhood;
        default), "nmse", "r2", "infidelity", "pgi", "pgu", "deletion" or "insertion".
    budget : total model rows; each candidate gets an equal share for explaining and scoring, and a
        candidate that needs more is reported as skipped.
    params : per-method parameters, e.g. {"lime": {"n_samples": 2000}}.

    Evaluation uses the same random perturbations for every candidate (paired comparison); ties
    (scores within 1e-9 relative, or 1e-12 absolute, of the best) go to the candidate that spent fewer
    model rows, in the table's order as in the winner. ``progress``: a bar of the model rows
    (interactive sessions only).
    """
    pb = Problem.build(model, data, rows=X, background=background, feature_names=feature_names,
                       groups=groups, kinds=kinds, output=output, batch_size=batch_size)
    return choose_problem(pb, X, neighbourhood=neighbourhood, candidates=candidates, metric=metric, budget=budget,
                          seed=seed, n_samples=n_samples, params=params, target=target, progress=progress,
                          **common_params)


def choose_problem(problem: Problem, X: Any, *, neighbourhood: Any = "removal", candidates: Sequence[str] | None = None,
                   metric: str = "fidelity", budget: int | None = None, seed: Any = 0, n_samples: int = 200,
                   params: Mapping[str, Mapping[str, Any]] | None = None, target: Any = None,
                   progress: bool = False, **common_params: Any) -> Choice:
    """:func:`choose` on a prepared problem."""
    from whybox.core.progress import check_progress, watching

    check_progress(progress)
    with watching(problem.model, None, "choose", progress):
        return _choose_problem(problem, X, neighbourhood=neighbourhood, candidates=candidates, metric=metric,
                               budget=budget, seed=seed, n_samples=n_samples, params=params, target=target,
                               **common_params)


def _choose_problem(problem: Problem, X: Any, *, neighbourhood: Any, candidates: Sequence[str] | None, metric: str,
                    budget: int | None, seed: Any, n_samples: int, params: Mapping[str, Mapping[str, Any]] | None,
                    target: Any, **common_params: Any) -> Choice:
    if metric not in ("fidelity", "nmse", "r2", "infidelity", "pgi", "pgu", "deletion", "insertion"):
        raise InputError(f"unknown metric {metric!r} for choose")
    check("budget", budget)
    check("seed", seed)
    check("n_samples", n_samples, decl=PARAMS["metric_samples"])
    nb = parse_neighbourhood(neighbourhood)
    base, spec = problem.model, problem.spec
    arr = problem.matrix(X)
    numeric = arr.dtype != object
    if candidates is None:
        cands = [c for c in DEFAULT_CANDIDATES if numeric or c not in GRADIENT_FAMILY]
        if spec.n_features <= 10:
            cands.insert(1, "shapley")
        if numeric and reads_trees(problem):
            cands.insert(0, "tree")            # exact for a tree ensemble, and no model rows
        if isinstance(nb, Gaussian) and any(len(g) > 1 for g in spec.groups):
            raise InputError("a Gaussian neighbourhood cannot score features made of several columns (groups)")
    else:
        if isinstance(candidates, str) or not isinstance(candidates, (list, tuple)) or \
                not all(isinstance(c, str) for c in candidates):
            raise InputError(f"candidates must be a list of method names, got {candidates!r}")
        cands = list(candidates)
        if not cands:
            raise InputError("candidates is empty")
    params = dict(params or {})
    share = None if budget is None else int(budget) // len(cands)
    higher = HIGHER_IS_BETTER[metric]
    rows, exps = [], {}
    for c in cands:
        m = base.child(share)
        pc = problem.with_model(m)
        t0 = time.perf_counter()
        try:
            e = explain_rows(pc, X, method=c, seed=seed, target=target, one_output=True,
                             **{**common_params, **params.get(c, {})})
            used = m.n_rows
            scores = metric_scores(metric, pc, X, e, neighbourhood=nb, seed=_eval_seed(seed), n_samples=n_samples)
        except (BudgetError, MethodError) as exc:
            rows.append({"method": c, "status": f"skipped: {exc}", "score": np.nan, "lo": np.nan, "hi": np.nan,
                         "explain_rows": np.nan, "eval_rows": np.nan, "seconds": time.perf_counter() - t0})
            continue
        mu, lo, hi = mean_ci(scores)
        exps[c] = e
        rows.append({"method": c, "status": "ok", "score": mu, "lo": lo, "hi": hi, "explain_rows": used,
                     "eval_rows": m.n_rows - used, "seconds": time.perf_counter() - t0})
    table = pd.DataFrame(rows)
    ok = table[table.status == "ok"]
    if ok.empty:
        raise BudgetError(f"no candidate could run within the budget ({budget} rows, {share} per candidate)"
                          if budget is not None else "no candidate could run: " + "; ".join(table.status))
    # one rule for the table and the winner: scores within 1e-9 (relative, at least 1e-12) of the best
    # tie, and ties go to the candidate that spent fewer model rows
    tol = max(1e-9 * float(np.nanmax(np.abs(ok.score))), 1e-12)
    key = np.where(table.status == "ok", (-table.score if higher else table.score), np.inf).astype(float)
    best = float(np.min(key))
    key = np.where(key <= best + tol, best, key)
    ordered = table.assign(_k=key, _rows=table.explain_rows.fillna(np.inf))
    ordered = ordered.sort_values(["_k", "_rows"], kind="stable").drop(columns=["_k", "_rows"]).reset_index(drop=True)
    ordered.insert(0, "rank", np.arange(1, len(ordered) + 1))
    winner = str(ordered.iloc[0].method)
    winner_exp = exps[winner]
    chosen = {"neighbourhood": str(nb), "metric": metric, "candidates": cands}
    if isinstance(nb, Gaussian):
        chosen["gaussian_scale"] = nb.scale     # relative to the background's spread, or absolute
    winner_exp.params = {**winner_exp.params, "chosen_by": chosen}
    return Choice(ordered, winner, winner_exp, exps, str(nb), metric)


def _eval_seed(seed: Any) -> Any:
    return (seed + 7919) if isinstance(seed, (int, np.integer)) else seed
