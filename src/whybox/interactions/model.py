"""Shapley interactions of a model's prediction on each row: the game of a row is the model output
when the features of a coalition come from the row and the others from the background (the same
removal game as ``method="shapley"``), evaluated through the prepared problem's counted Model: on
all 2^d coalitions (exact, d <= 10; :mod:`whybox.interactions.exact`) or on a sampled design with
standard errors (:mod:`whybox.interactions.sampling`)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from whybox.errors import InputError, MethodError
from whybox.interactions.exact import INDICES, interactions as game_interactions

MAX_EXACT = 10
METHODS = ("auto", "tree", "exact", "sampling")


@dataclass
class Interactions:
    """``values[r, j]``: the ``index`` value of coalition ``coalitions[j]`` (a tuple of feature
    positions, sizes 0..order) on row r; ``base_values`` v(empty), ``predictions`` v(all features)."""

    values: np.ndarray
    coalitions: list[tuple[int, ...]]
    feature_names: list[str]
    index: str
    order: int
    base_values: np.ndarray
    predictions: np.ndarray
    target: np.ndarray
    n_model_rows: int
    stderr: np.ndarray | None = None      # (rows, coalitions): the sampling estimator's; None when exact
    method: str = "exact"

    def names(self) -> list[str]:
        return [" x ".join(self.feature_names[i] for i in c) if c else "(empty set)" for c in self.coalitions]

    def to_frame(self, row: int = 0) -> pd.DataFrame:
        """One row's values, largest |value| first."""
        df = pd.DataFrame({"coalition": self.names(), "size": [len(c) for c in self.coalitions],
                           "value": self.values[row]})
        if self.stderr is not None:
            df["stderr"] = self.stderr[row]
        return df.reindex(df["value"].abs().sort_values(ascending=False, kind="stable").index).reset_index(drop=True)

    def plot(self, row: int = 0, *, path: str | None = None, ax=None):
        """Heatmap of one row's pairwise values (matplotlib Figure; a PNG when ``path`` is given)."""
        from whybox.io.plots import interaction_heatmap

        return interaction_heatmap(self, row=row, path=path, ax=ax)

    def matrix(self, row: int = 0) -> np.ndarray:
        """The pairwise values of one row as a symmetric (d, d) matrix, first-order values on the diagonal."""
        d = len(self.feature_names)
        M = np.zeros((d, d))
        for c, v in zip(self.coalitions, self.values[row]):
            if len(c) == 1:
                M[c[0], c[0]] = v
            elif len(c) == 2:
                M[c[0], c[1]] = M[c[1], c[0]] = v
        return M


def removal_games(model: Any, X: Any, data: Any = None, *, target: Any = None, max_features: int = MAX_EXACT,
                  **problem_kw: Any):
    """The removal game of every row of ``X`` on all 2^d coalitions (bitmask order: feature i is bit
    i; features outside a coalition come from the background of ``data``), evaluated through the
    prepared problem's counted Model: ``(V (rows, 2^d), problem, targets, model rows spent)``."""
    from whybox.explainers.context import TabularContext
    from whybox.neighbourhoods.masks import all_coalitions
    from whybox.problem import Problem

    if isinstance(max_features, bool) or not isinstance(max_features, int) or not 1 <= max_features <= MAX_EXACT:
        raise InputError(f"max_features must be an integer in [1, {MAX_EXACT}], got {max_features!r}")
    problem = model if isinstance(model, Problem) else Problem.build(model, data, rows=X, **problem_kw)
    m, spec, bg = problem.model, problem.spec, problem.background
    arr = problem.matrix(X)
    d = spec.n_features
    if d > max_features:
        raise MethodError(f"exact interactions need all 2^d coalitions: d={d} is above max_features={max_features}; "
                          "group features (groups=...) to reduce d")
    ctx = TabularContext(model=m, X=arr, spec=spec, background=bg, targets=np.zeros(len(arr), np.intp),
                         fx=np.zeros(len(arr)), rng=np.random.default_rng(0))
    Z = all_coalitions(d)
    m.require(ctx.mask_cost(Z) + len(arr), what=f"exact interactions on {len(arr)} row(s) ({2 ** d} coalitions)")
    rows0 = m.n_rows
    outputs = m(arr)
    targets = problem.targets(target, outputs, target_index=None)
    ctx.targets, ctx.fx = targets, outputs[np.arange(len(arr)), targets]
    return ctx.evaluate_masks(Z), problem, targets, m.n_rows - rows0


def interactions(model: Any, X: Any, data: Any = None, *, index: str = "k-SII", order: int = 2,
                 target: Any = None, max_features: int = MAX_EXACT, method: str = "auto",
                 n_samples: int | None = None, seed: Any = 0, **problem_kw: Any) -> Interactions:
    """``index`` ("SII", "k-SII", "STII", "FSII", named as shapiq names them) of every row of ``X``
    up to ``order``, with the background from ``data`` (as :func:`whybox.explain`).

    method : "tree" (exact from the leaves of a tree ensemble whose output is a sum of trees, any d,
        no model rows beyond the explained rows: :mod:`whybox.trees.interactions`), "exact" (all
        2^d coalitions x background rows per row; d <= ``max_features``, at most 10), "sampling"
        (the stratified estimator of :mod:`whybox.interactions.sampling` on ``n_samples``
        coalitions, the same for every row, with standard errors in ``.stderr``), or "auto": tree
        when the model's trees can be read (and a background is given), else exact when
        d <= ``max_features``, else sampling.
    n_samples : coalitions for the sampling estimator (default: 4 x the number of coalitions of
        size <= order, at least 2,048); every one costs a background's worth of model rows.
    """
    if index not in INDICES:
        raise InputError(f"index must be one of {INDICES}, got {index!r}")
    if method not in METHODS:
        raise InputError(f"method must be one of {METHODS}, got {method!r}")
    from whybox.problem import Problem
    from whybox.trees.model import reads_trees

    problem = model if isinstance(model, Problem) else Problem.build(model, data, rows=X, **problem_kw)
    d = problem.spec.n_features
    if isinstance(order, bool) or not isinstance(order, int) or not 1 <= order <= d:
        raise InputError(f"order must be an integer in [1, {d}] (the number of features), got {order!r}")
    if method == "tree" or (method == "auto" and not problem.background.implicit and reads_trees(problem)):
        return _from_trees(problem, X, index=index, order=order, target=target)
    if method == "sampling" or (method == "auto" and d > max_features):
        return _sampled(problem, X, index=index, order=order, target=target, n_samples=n_samples, seed=seed)
    V, problem, targets, spent = removal_games(problem, X, target=target, max_features=max_features)
    per_row = [game_interactions(v, index=index, order=order) for v in V]
    coalitions = sorted(per_row[0], key=lambda c: (len(c), c))
    values = np.array([[r[c] for c in coalitions] for r in per_row])
    return Interactions(values, coalitions, list(problem.spec.names), index, order, V[:, 0], V[:, -1], targets, spent)


def _from_trees(problem: Any, X: Any, *, index: str, order: int, target: Any) -> Interactions:
    from whybox.explainers.context import TabularContext
    from whybox.explainers.recipes import _tree_model, reproducing_trees
    from whybox.trees.interactions import interventional_interactions
    from whybox.trees.model import NotASumOfTrees

    m, spec, bg = problem.model, problem.spec, problem.background
    if bg.implicit:
        raise MethodError("tree interactions are interventional: give a background (data=...)")
    arr = problem.matrix(X)
    ctx = TabularContext(model=m, X=arr, spec=spec, background=bg, targets=np.zeros(len(arr), np.intp),
                         fx=np.zeros(len(arr)), rng=np.random.default_rng(0))
    try:
        ens = _tree_model(ctx)
    except NotASumOfTrees as exc:
        raise MethodError(f"{exc}; for its interactions use method='exact' (d <= {MAX_EXACT}) or 'sampling'") from None
    rows0 = m.n_rows
    outputs = m(arr)
    targets = problem.targets(target, outputs, target_index=None)
    Xf, B = arr.astype(float), bg.data.astype(float)
    fx = outputs[np.arange(len(arr)), targets]
    # the trees must reproduce the model (read again once if it was refitted in place) before the
    # interactions are computed from them
    ens, _ = reproducing_trees(ctx, ens, fx, lambda e: (None, e.predict(Xf)[np.arange(len(arr)), targets]),
                               instead="method='exact' or 'sampling'")
    terms = None
    values = np.zeros((len(arr), 0))
    v0 = np.zeros(len(arr))
    for t in np.unique(targets):
        rows = np.where(targets == t)[0]
        terms, vals, base = interventional_interactions(ens, Xf[rows], B, bg.weights, int(t), index, order)
        if values.shape[1] == 0:
            values = np.zeros((len(arr), len(terms)))
        values[rows], v0[rows] = vals, base
    return Interactions(values, list(terms), list(spec.names), index, order, v0, fx, targets, m.n_rows - rows0,
                        method="tree")


def _sampled(problem: Any, X: Any, *, index: str, order: int, target: Any, n_samples: int | None,
             seed: Any) -> Interactions:
    from math import comb

    from whybox.core.validation import check_random_state
    from whybox.explainers.context import TabularContext
    from whybox.interactions.sampling import design, estimate
    from whybox.params import Int, check

    m, spec, bg = problem.model, problem.spec, problem.background
    d = spec.n_features
    n_terms = sum(comb(d, j) for j in range(order + 1))
    n_samples = max(4 * n_terms, 2048) if n_samples is None else check("n_samples", n_samples, decl=Int(8, 10**7))
    arr = problem.matrix(X)
    U, size, scale = design(d, order, int(n_samples), check_random_state(seed))
    ctx = TabularContext(model=m, X=arr, spec=spec, background=bg, targets=np.zeros(len(arr), np.intp),
                         fx=np.zeros(len(arr)), rng=np.random.default_rng(0))
    full = np.ones((1, d), bool)
    Z = np.vstack([U, full])
    m.require(ctx.mask_cost(Z) + len(arr), what=f"sampled interactions on {len(arr)} row(s) ({len(Z)} coalitions)")
    rows0 = m.n_rows
    outputs = m(arr)
    targets = problem.targets(target, outputs, target_index=None)
    ctx.targets, ctx.fx = targets, outputs[np.arange(len(arr)), targets]
    V = ctx.evaluate_masks(Z)
    tl, values, se = estimate(V[:, :-1], U, size, scale, index=index, order=order)
    return Interactions(values, tl, list(spec.names), index, order, V[:, np.where(~U.any(axis=1))[0][0]], V[:, -1],
                        targets, m.n_rows - rows0, stderr=se, method="sampling")
