"""Run one recipe on rows of a prepared problem: the body of every ``explain`` call."""
from __future__ import annotations

import time
from typing import Any

import numpy as np

from whybox.core.explanation import Explanation
from whybox.core.validation import check_random_state
from whybox.engine import DEFAULT_CHUNK_ROWS
from whybox.errors import InputError
from whybox.explainers.context import TabularContext
from whybox.explainers.recipes import get_recipe
from whybox.params import check_chunk_rows
from whybox.problem import Problem, default_is_all


def explain_rows(problem: Problem, X: Any, *, method: str = "kernelshap", seed: Any = 0, target: Any = None,
                 target_index: Any = None, chunk_rows: int = DEFAULT_CHUNK_ROWS, one_output: bool = False,
                 progress: bool = False, **method_params: Any) -> Explanation:
    """Explain the rows ``X`` of ``problem`` with ``method`` (see :func:`whybox.explain`).

    ``one_output``: with the default target, explain one output per row even for a multiclass model
    (its predicted class) — what metrics score — instead of every output. ``progress``: a bar of the
    model rows (interactive sessions only; it changes no number)."""
    from whybox.core.progress import check_progress, watching

    check_progress(progress)
    with watching(problem.model, None, f"explain ({get_recipe(method).name})", progress) as meter:
        return _explain_rows(problem, X, method=method, seed=seed, target=target, target_index=target_index,
                             chunk_rows=chunk_rows, one_output=one_output, meter=meter, **method_params)


def _explain_rows(problem: Problem, X: Any, *, method: str, seed: Any, target: Any, target_index: Any,
                  chunk_rows: int, one_output: bool, meter: Any, **method_params: Any) -> Explanation:
    t0 = time.perf_counter()
    recipe = get_recipe(method)
    params = recipe.check_params(method_params)
    chunk_rows = check_chunk_rows(chunk_rows)
    m, spec, bg = problem.model, problem.spec, problem.background
    arr = problem.matrix(X)
    rng = check_random_state(seed)
    rows0, calls0 = m.n_rows, m.n_calls
    ctx = TabularContext(model=m, X=arr, spec=spec, background=bg, targets=np.zeros(len(arr), np.intp),
                         fx=np.zeros(len(arr)), rng=rng, chunk_rows=int(chunk_rows))
    need = recipe.cost(ctx, **params)
    m.require(need, what=f"method {recipe.name!r} on {len(arr)} row(s) with {bg.n_rows} background row(s)")
    _warn_costs(recipe.name, params, ctx, need)
    if meter is not None:
        meter.expect(need + len(arr))
    if recipe.family == "masking" and arr.dtype == bg.data.dtype:
        # the rows and the background rows in one call: every masking recipe needs both (f(x), and
        # f(b) for the base value and the empty coalition), and a call costs a model its fixed overhead;
        # a fixed design that fits rides on the same call
        both = None
        if recipe.fixed_design is not None:
            both = ctx.prefetch_design(recipe.fixed_design(ctx, **params))
        if both is None:
            both = m(np.concatenate([arr, bg.data]))
        outputs, ctx._fb = both[:len(arr)], both[len(arr):]
    else:
        outputs = m(arr)
    ctx.f_rows = outputs                       # full masks reuse these: no second call on the rows
    every = (isinstance(target, str) and target == "all" and target_index is None
             and not (problem.output_names and "all" in problem.output_names))
    if target is None and target_index is None and not one_output:
        every = default_is_all(outputs, m)     # multiclass / multi-output: every output by default
    if every:
        # all outputs in one pass over the model rows: the recipe sees (row, output) virtual rows
        ctx.all_outputs(outputs)
        res = recipe.run(ctx, **params)
        n, k, d = len(arr), outputs.shape[1], spec.n_features
        res.values = res.values.reshape(n, k, d).transpose(0, 2, 1)
        res.base_values = np.asarray(res.base_values, float).reshape(n, k)
        if res.stderr is not None:
            res.stderr = res.stderr.reshape(n, k, d).transpose(0, 2, 1)
        targets = np.tile(np.arange(k, dtype=np.intp), (n, 1))
        ctx.fx = outputs
    else:
        targets = problem.targets(target, outputs, target_index=target_index)
        ctx.targets = targets
        ctx.fx = outputs[np.arange(len(arr)), targets]
        res = recipe.run(ctx, **params)
    if not (np.isfinite(res.values).all() and np.isfinite(res.base_values[np.isfinite(res.base_values)]).all()):
        raise InputError(f"method {recipe.name!r} produced non-finite attributions: the model's outputs are too large "
                         "to difference in float64 (e.g. +-1e308); rescale its outputs")
    info = {"neighbourhood": recipe.neighbourhood, "surrogate": recipe.surrogate,
            "background_rows": bg.n_rows, **params, **(res.info or {})}
    return Explanation(
        values=res.values, base_values=res.base_values, predictions=ctx.fx, feature_names=spec.names,
        target=targets, method=recipe.name, params=info, seed=seed if isinstance(seed, (int, type(None))) else None,
        stderr=res.stderr, data=spec.display_values(arr), output_names=m.output_names,
        n_model_rows=m.n_rows - rows0, n_model_calls=m.n_calls - calls0, seconds=time.perf_counter() - t0)


PROBLEM_KEYS = ("background", "kinds", "groups", "feature_names", "output", "batch_size", "budget", "allow_nan")


def explain_call(model: Any, X: Any, *, data: Any = None, **kw: Any) -> Explanation:
    """One ``explain(model, X, ...)``: the problem is built from ``data`` (or X's structure) and the
    remaining keywords go to :func:`explain_rows` (whole-dataset chunks and Dask tasks use this)."""
    pk = {k: kw.pop(k) for k in PROBLEM_KEYS if k in kw}
    if str(kw.get("method", "")).lower() == "auto":
        raise InputError("method='auto' chooses on the rows it is given; for chunked or distributed runs pick the "
                         "method first (whybox.choose on a sample)")
    return explain_rows(Problem.build(model, data, rows=X, **pk), X, **kw)


class CostWarning(UserWarning):
    """A setting that silently makes a method much weaker or much more expensive than intended."""


def _warn_costs(name: str, params: dict[str, Any], ctx: TabularContext, need: int) -> None:
    import warnings

    d, B, n = ctx.d, ctx.background.n_rows, ctx.n
    ns = params.get("n_samples")
    if name in ("kernelshap", "lime") and isinstance(ns, (int, np.integer)) and d > 2:
        floor = 2 * d + 2 if name == "kernelshap" else d + 1
        if ns < floor and not (name == "kernelshap" and 2 ** d - 2 <= ns):
            warnings.warn(f"{name} with n_samples={ns} for d={d} features: fewer coalitions than the {floor} the "
                          "surrogate needs to be determined, so the attributions are mostly regularisation/noise; "
                          f"use n_samples >= {4 * floor}", CostWarning, stacklevel=4)
    if name in ("kernelshap", "lime", "shapley", "occlusion") and B > 200 and need > 5_000_000:
        warnings.warn(f"the background has {B} rows: every coalition is evaluated on each of them, so {name} on {n} "
                      f"row(s) will spend {need:,} model rows; summarise it (whybox.kmeans(data, 20)) to cut "
                      "that by ~{:.0f}x".format(B / 20), CostWarning, stacklevel=4)
