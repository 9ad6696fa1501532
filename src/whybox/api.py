"""The public entry points (scikit-learn spirit: one call, keyword-only options, named errors)."""
from __future__ import annotations

import time
from typing import Any, Mapping, Sequence

import pandas as pd

from whybox.core.explanation import Explanation
from whybox.engine import DEFAULT_CHUNK_ROWS
from whybox.errors import InputError
from whybox.trees.model import reads_trees
from whybox.explainers.run import explain_rows
from whybox.params import check
from whybox.problem import Problem, prepare, resolve_targets

__all__ = ["Explainer", "explain", "prepare", "resolve_targets"]


class Explainer:
    """A prepared problem: a model and its reference data, ready for every question.

    ``wb = whybox.Explainer(model, data=X_train)`` validates the model and the data once and
    freezes the features (names, kinds, groups, ranges) and the background; then
    ``wb.explain(X)``, ``wb.evaluate(X, ["kernelshap", "lime"])``, ``wb.choose(X)``,
    ``wb.counterfactuals(x)`` and ``wb.narrate(e)`` all reuse it — the way shap's
    ``Explainer(model, masker)`` and DiCE's ``Data`` + ``Model`` work.

    Parameters
    ----------
    model : scikit-learn estimator or Pipeline, torch ``nn.Module``, ``whybox.Model``, or any callable.
    data : reference rows (training data): feature kinds, column order, ranges and scales come from
        them, and the default background is a seeded sample of 100 of them. Without data, kinds
        come from ``kinds=`` or the dtypes (numeric = continuous, never "binary").
    background : rows removed features are drawn from (overrides the sample of ``data``), one
        baseline row, or a :class:`whybox.Background`.
    kinds, groups, feature_names : feature metadata (``groups`` makes a set of columns, e.g. a one-hot
        block, one interpretable feature).
    output : for scikit-learn estimators: "auto", "predict_proba", "decision_function", "predict" or "raw"
        (the margin: decision_function, or XGBoost's / LightGBM's raw score).
    target : the default target of every call (None: the only output; a binary classifier's positive
        class; every output of a multiclass or multi-output model).
    budget, batch_size : model-row budget and rows per model call.
    allow_nan : "auto" (default: scikit-learn's ``allow_nan`` tag, Pipeline-aware; True for XGBoost
        and LightGBM), True or False. When allowed, NaN in the data passes through masking methods to
        the model; noise and gradient methods refuse NaN columns, naming them.
    """

    def __init__(self, model: Any, data: Any = None, *, background: Any = None, kinds: Any = None,
                 groups: Any = None, feature_names: Sequence[str] | None = None, output: str = "auto",
                 target: Any = None, budget: int | None = None, batch_size: int | None = None,
                 allow_nan: Any = "auto"):
        check("budget", budget)
        check("batch_size", batch_size)
        self._problem = Problem.build(model, data, background=background, kinds=kinds, groups=groups,
                                      feature_names=feature_names, output=output, batch_size=batch_size,
                                      budget=budget, allow_nan=allow_nan)
        self._estimator = model
        self._target = target

    # the prepared problem, read-only
    @property
    def problem(self) -> Problem:
        return self._problem

    @property
    def model(self):
        return self._problem.model

    @property
    def spec(self):
        return self._problem.spec

    @property
    def background(self):
        return self._problem.background

    @property
    def output_names(self) -> list | None:
        return self._problem.output_names

    def __setattr__(self, name: str, value: Any) -> None:
        if name in ("_problem", "_estimator", "_target") and name not in self.__dict__:
            object.__setattr__(self, name, value)
            return
        raise AttributeError(f"an Explainer is immutable once built; make a new one to change {name!r}")

    def __repr__(self) -> str:
        return (f"Explainer(model={self.model.name!r}, features={self.spec.n_features}, "
                f"background_rows={self.background.n_rows}, outputs={self.output_names})")

    # the questions
    def explain(self, X: Any, *, method: str = "kernelshap", seed: Any = 0, target: Any = None,
                target_index: Any = None, chunk_rows: int = DEFAULT_CHUNK_ROWS, progress: bool = False,
                **method_params: Any) -> Explanation:
        """Explain rows ``X`` with ``method`` (see :func:`whybox.explain` for the methods and options)."""
        check("seed", seed)
        target = self._target if target is None and target_index is None else target
        if isinstance(method, str) and method.lower() == "auto":
            if reads_trees(self._problem) and not CHOOSE_KEYS & set(method_params):
                method = "tree"
            else:
                return self.choose(X, seed=seed, target=target, progress=progress, **method_params).explanation
        return explain_rows(self._problem, X, method=method, seed=seed, target=target, target_index=target_index,
                            chunk_rows=chunk_rows, progress=progress, **method_params)

    def evaluate(self, X: Any, explanations: Any, **kw: Any):
        """Score explanations (or method names) on rows ``X``: see :func:`whybox.evaluate`."""
        from whybox.evaluate import evaluate_problem
        kw.setdefault("target", self._target)
        return evaluate_problem(self._problem, X, explanations, **kw)

    def choose(self, X: Any, **kw: Any):
        """The most faithful method in a neighbourhood: see :func:`whybox.choose`."""
        from whybox.choose import choose_problem
        kw.setdefault("target", self._target)
        return choose_problem(self._problem, X, **kw)

    def counterfactuals(self, x: Any, **kw: Any):
        """Counterfactuals for row(s) ``x`` against the reference data (needs ``data=``)."""
        if self._problem.reference is None:
            raise InputError("counterfactuals search the reference data for donors: build the Explainer with data=")
        from whybox.counterfactuals import CounterfactualExplainer
        cf = CounterfactualExplainer(self._problem.model, self._reference_frame(), groups=self.spec.named_groups(),
                                     kinds=list(self.spec.kinds))
        return cf.explain(x, **kw)

    def narrate(self, explanation: Explanation, **kw: Any):
        """A verified plain-language narrative of one row: see :func:`whybox.narrate`."""
        from whybox.narrative import narrate
        return narrate(explanation, **kw)

    def _reference_frame(self) -> Any:
        ref = self._problem.reference
        if self._problem.frame_columns is None:
            return ref
        df = pd.DataFrame(ref, columns=self._problem.frame_columns)
        if self._problem.dtypes:
            try:
                df = df.astype(self._problem.dtypes)
            except (TypeError, ValueError):
                pass
        return df


CHOOSE_KEYS = {"neighbourhood", "metric", "candidates"}    # asked for a choice in a neighbourhood: choose


def explain(model: Any, X: Any, *, method: str = "kernelshap", background: Any = None,
            budget: int | None = None, seed: int | None = 0, target: Any = None,
            feature_names: Sequence[str] | None = None, groups: Mapping[str, Sequence] | Sequence | None = None,
            kinds: Any = None, output: str = "auto", batch_size: int | None = None,
            chunk_rows: int = DEFAULT_CHUNK_ROWS, executor: str | None = None, scheduler: str | None = None,
            rows_per_task: int = 256, data: Any = None, target_index: Any = None, allow_nan: Any = "auto",
            progress: bool = False, **method_params: Any) -> Explanation:
    """Explain the predictions of ``model`` on the rows of ``X``.

    Parameters
    ----------
    model : scikit-learn estimator (or Pipeline fed a DataFrame), torch ``nn.Module``, ``whybox.Model``,
        or any callable ``f(X) -> scores``.
    X : rows to explain, (n, p) array or DataFrame (mixed dtypes allowed for masking methods).
    method : "kernelshap" (default), "lime", "shapley", "occlusion", "clime", "gradient",
        "gradxinput", "smoothgrad", "integrated_gradients", "tree" (exact, for tree ensembles), or "auto":
        "tree" for a tree ensemble it reads (scikit-learn, XGBoost, LightGBM) unless a neighbourhood,
        metric or candidates are given, else the method :func:`whybox.choose` finds most faithful there.
    background : rows that removed features are drawn from (interventional), a single baseline row,
        or a :class:`whybox.Background` (e.g. ``whybox.kmeans(train, 20)``). None: an all-zeros baseline.
    budget : maximum number of model rows to spend; the method fails up front if it needs more.
    seed : every random choice derives from it; same seed, same numbers.
    target : output to explain: None (predicted class, or the only output), an output label (labels
        win: with classes [1, 2, 3], ``target=1`` is class 1), an index when the model has no labels,
        or one per row. ``target_index``: explicit output indices instead.
    data : reference (training) rows: feature kinds and column order come from them (see
        :class:`whybox.Explainer`, which prepares them once for many calls).
    feature_names, groups, kinds : feature metadata; ``groups`` ({name: [columns]}) makes a set of
        columns (e.g. a one-hot block) one interpretable feature.
    output : for scikit-learn estimators: "auto", "predict_proba", "decision_function", "predict" or "raw"
        (the margin: decision_function, or XGBoost's / LightGBM's raw score).
    batch_size : largest batch passed to the model in one call; chunk_rows: memory bound of one chunk.
    executor : None/"local" (this process) or "dask": rows are split into tasks of ``rows_per_task``
        rows on a dask.distributed cluster (``scheduler`` address, or a LocalCluster); the result
        equals the local one with the same seed.
    progress : show a progress bar of the model rows (in a terminal or a notebook; silent in
        non-interactive runs; it changes no number).
    **method_params : the method's own parameters (e.g. ``n_samples``, ``sigma``, ``steps``).
    """
    from whybox.core.progress import check_progress

    t0 = time.perf_counter()
    check("seed", seed)
    check_progress(progress)
    check("rows_per_task", rows_per_task)
    if executor not in (None, "local"):
        from whybox.batch import concat, run_chunks
        res = run_chunks(model, X, chunk_size=rows_per_task, executor=executor, scheduler=scheduler, method=method,
                         background=background, budget=budget, seed=seed, target=target, feature_names=feature_names,
                         groups=groups, kinds=kinds, output=output, batch_size=batch_size, chunk_rows=chunk_rows,
                         data=data, target_index=target_index, allow_nan=allow_nan, **method_params)
        out = concat(res[i] for i in sorted(res))
        out.seconds = time.perf_counter() - t0
        return out
    pb = Problem.build(model, data, rows=X, background=background, kinds=kinds, groups=groups,
                       feature_names=feature_names, output=output, batch_size=check("batch_size", batch_size),
                       budget=check("budget", budget), allow_nan=allow_nan)
    if isinstance(method, str) and method.lower() == "auto":
        if reads_trees(pb) and not CHOOSE_KEYS & set(method_params):
            method = "tree"                      # exact, and no model rows: nothing to choose
        else:
            from whybox.choose import choose_problem
            return choose_problem(pb, X, seed=seed, target=target, budget=budget, progress=progress,
                                  **method_params).explanation
    return explain_rows(pb, X, method=method, seed=seed, target=target, target_index=target_index,
                        chunk_rows=chunk_rows, progress=progress, **method_params)
