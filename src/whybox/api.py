"""The public entry points (scikit-learn spirit: one call, keyword-only options, named errors)."""
from __future__ import annotations

import time
from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd

from whybox.background import Background, make_background
from whybox.core.explanation import Explanation
from whybox.core.features import FeatureSpec
from whybox.core.validation import check_random_state, to_matrix
from whybox.engine import DEFAULT_CHUNK_ROWS
from whybox.errors import InputError
from whybox.explainers.context import TabularContext
from whybox.explainers.recipes import get_recipe
from whybox.models.adapters import Model, as_model


def prepare(model: Any, X: Any, *, background: Any = None, budget: int | None = None,
            feature_names: Sequence[str] | None = None, groups: Any = None, kinds: Any = None,
            output: str = "auto", batch_size: int | None = None) -> tuple[Model, np.ndarray, FeatureSpec, Background]:
    """Validate inputs and build the Model, the data matrix, the FeatureSpec and the Background."""
    m = as_model(model, output=output, batch_size=batch_size, budget=budget)
    dtypes = None
    if isinstance(X, pd.Series):
        X = X.to_frame().T
    if isinstance(X, pd.DataFrame):
        cols = [str(c) for c in X.columns]
        if m.columns is not None:
            missing = [c for c in m.columns if c not in cols]
            if missing:
                raise InputError(f"X is missing column(s) {missing} that model {m.name!r} was fitted on")
            X = X[list(m.columns)]
            cols = list(m.columns)
        dtypes = X.dtypes.to_dict()
        names = cols
    else:
        names = list(m.columns) if m.columns is not None else None
    if feature_names is not None:
        names = [str(f) for f in feature_names]
    arr = to_matrix(X, name="X", n_columns=len(names) if names is not None else None)
    if m.columns is not None:
        if len(m.columns) != arr.shape[1]:
            raise InputError(f"X has {arr.shape[1]} columns but model {m.name!r} was fitted on {len(m.columns)}")
        m.with_frame(m.columns, dtypes)
    spec = FeatureSpec.build(arr, columns=names, groups=groups, kinds=kinds)
    if background is None and arr.dtype == object:
        raise InputError("X has non-numeric columns, so the default all-zeros baseline is meaningless: "
                         "pass background= (e.g. a sample of training rows)")
    bg = make_background(background, n_columns=arr.shape[1],
                         columns=spec.columns if isinstance(background, pd.DataFrame) else None)
    if bg.data.dtype != arr.dtype:
        if arr.dtype == object:
            bg = Background(bg.data.astype(object), bg.weights)
        else:
            try:
                bg = Background(bg.data.astype(float), bg.weights)
            except (TypeError, ValueError):
                raise InputError("background has non-numeric values but X is numeric") from None
    return m, arr, spec, bg


def resolve_targets(target: Any, outputs: np.ndarray, output_names: list | None) -> np.ndarray:
    """Per-row output indices: None -> the single output, or the predicted (argmax) output;
    an int index or an output label; or one such entry per row."""
    n, k = outputs.shape
    if target is None:
        return np.zeros(n, dtype=np.intp) if k == 1 else outputs.argmax(axis=1).astype(np.intp)

    def one(t: Any) -> int:
        if output_names is not None and t in output_names and not isinstance(t, bool):
            return output_names.index(t)
        if isinstance(t, (int, np.integer)) and not isinstance(t, bool) and 0 <= int(t) < k:
            return int(t)
        raise InputError(f"unknown target {t!r}: the model has {k} output(s)"
                         + (f" named {output_names}" if output_names else f" (indices 0..{k - 1})"))

    if isinstance(target, (list, tuple, np.ndarray, pd.Series)):
        t = list(target)
        if len(t) != n:
            raise InputError(f"target has {len(t)} entries for {n} rows")
        return np.array([one(x) for x in t], dtype=np.intp)
    return np.full(n, one(target), dtype=np.intp)


def explain(model: Any, X: Any, *, method: str = "kernelshap", background: Any = None,
            budget: int | None = None, seed: int | None = 0, target: Any = None,
            feature_names: Sequence[str] | None = None, groups: Mapping[str, Sequence] | Sequence | None = None,
            kinds: Any = None, output: str = "auto", batch_size: int | None = None,
            chunk_rows: int = DEFAULT_CHUNK_ROWS, executor: str | None = None, scheduler: str | None = None,
            rows_per_task: int = 256, **method_params: Any) -> Explanation:
    """Explain the predictions of ``model`` on the rows of ``X``.

    Parameters
    ----------
    model : scikit-learn estimator (or Pipeline fed a DataFrame), torch ``nn.Module``, ``whybox.Model``,
        or any callable ``f(X) -> scores``.
    X : rows to explain, (n, p) array or DataFrame (mixed dtypes allowed for masking methods).
    method : "kernelshap" (default), "lime", "shapley", "occlusion", "clime", "gradient",
        "gradxinput", "smoothgrad", "integrated_gradients", or "auto" (see :func:`whybox.choose`).
    background : rows that removed features are drawn from (interventional), a single baseline row,
        or a :class:`whybox.Background` (e.g. ``whybox.kmeans(train, 20)``). None: an all-zeros baseline.
    budget : maximum number of model rows to spend; the method fails up front if it needs more.
    seed : every random choice derives from it; same seed, same numbers.
    target : output to explain: None (predicted class, or the only output), an index, a class label, or
        one per row.
    feature_names, groups, kinds : feature metadata; ``groups`` ({name: [columns]}) makes a set of
        columns (e.g. a one-hot block) one interpretable feature.
    output : for scikit-learn estimators: "auto", "predict_proba", "decision_function" or "predict".
    batch_size : largest batch passed to the model in one call; chunk_rows: memory bound of one chunk.
    executor : None/"local" (this process) or "dask": rows are split into tasks of ``rows_per_task``
        rows on a dask.distributed cluster (``scheduler`` address, or a LocalCluster); the result
        equals the local one with the same seed.
    **method_params : the method's own parameters (e.g. ``n_samples``, ``sigma``, ``steps``).
    """
    t0 = time.perf_counter()
    if executor not in (None, "local"):
        from whybox.batch import concat, run_chunks
        res = run_chunks(model, X, chunk_size=rows_per_task, executor=executor, scheduler=scheduler, method=method,
                         background=background, budget=budget, seed=seed, target=target, feature_names=feature_names,
                         groups=groups, kinds=kinds, output=output, batch_size=batch_size, chunk_rows=chunk_rows,
                         **method_params)
        out = concat(res[i] for i in sorted(res))
        out.seconds = time.perf_counter() - t0
        return out
    if isinstance(method, str) and method.lower() == "auto":
        from whybox.choose import choose
        res = choose(model, X, background=background, budget=budget, seed=seed, target=target,
                     feature_names=feature_names, groups=groups, kinds=kinds, output=output,
                     batch_size=batch_size, **method_params)
        return res.explanation
    recipe = get_recipe(method)
    params = recipe.check_params(method_params)
    if not isinstance(chunk_rows, (int, np.integer)) or chunk_rows < 1:
        raise InputError(f"chunk_rows must be a positive integer, got {chunk_rows!r}")
    m, arr, spec, bg = prepare(model, X, background=background, budget=budget, feature_names=feature_names,
                               groups=groups, kinds=kinds, output=output, batch_size=batch_size)
    rng = check_random_state(seed)
    rows0, calls0 = m.n_rows, m.n_calls
    ctx = TabularContext(model=m, X=arr, spec=spec, background=bg, targets=np.zeros(len(arr), np.intp),
                         fx=np.zeros(len(arr)), rng=rng, chunk_rows=int(chunk_rows))
    need = recipe.cost(ctx, **params)
    m.require(need, what=f"method {recipe.name!r} on {len(arr)} row(s) with {bg.n_rows} background row(s)")
    outputs = m(arr)
    targets = resolve_targets(target, outputs, m.output_names)
    ctx.targets = targets
    ctx.fx = outputs[np.arange(len(arr)), targets]
    res = recipe.run(ctx, **params)
    info = {"neighbourhood": recipe.neighbourhood, "surrogate": recipe.surrogate,
            "background_rows": bg.n_rows, **params, **(res.info or {})}
    return Explanation(
        values=res.values, base_values=res.base_values, predictions=ctx.fx, feature_names=spec.names,
        target=targets, method=recipe.name, params=info, seed=seed if isinstance(seed, (int, type(None))) else None,
        stderr=res.stderr, data=spec.display_values(arr), output_names=m.output_names,
        n_model_rows=m.n_rows - rows0, n_model_calls=m.n_calls - calls0, seconds=time.perf_counter() - t0)
