"""Turn a scikit-learn estimator, a torch module or any callable into a :class:`Model`.

A Model is the only way the rest of whybox talks to a model. It

* takes a 2-D array (float64, or object for mixed data) and returns float64 scores ``(n, k)``;
* splits large inputs into batches of ``batch_size`` rows (one model call per batch);
* counts rows and calls (``n_rows``, ``n_calls``) and enforces an optional query ``budget``;
* optionally caches outputs per row (``cache=True``), so repeated rows cost nothing;
* validates what the model returns (row count, a consistent number of outputs, finite values) and
  wraps any exception the model raises in a :class:`~whybox.errors.ModelError` that names it.
"""
from __future__ import annotations

from typing import Any, Callable

from whybox.core.validation import as_python
from whybox.errors import InputError
from whybox.models.base import OUTPUT_CHOICES, Model  # noqa: F401  (Model is re-exported)


def _is_torch_module(obj: Any) -> bool:
    return any(c.__module__.startswith("torch.nn") and c.__name__ == "Module" for c in type(obj).__mro__)


def as_model(model: Any, *, output: str = "auto", batch_size: int | None = None,
             budget: int | None = None, cache: bool = False, name: str | None = None) -> Model:
    """Wrap ``model`` in a :class:`Model`.

    * a Model is returned as is; with ``budget``/``batch_size``, a child that has them (its rows are
      counted on the given Model too, and within that Model's own budget), the given Model unchanged;
    * a torch ``nn.Module`` gets autograd gradients (:class:`whybox.models.torch.TorchModel`);
    * a scikit-learn estimator uses ``predict_proba``, else ``decision_function``, else ``predict``
      (``output`` forces one); a model fitted on a DataFrame is fed DataFrames;
    * any other callable is called on 2-D arrays.
    """
    if output not in OUTPUT_CHOICES:
        raise InputError(f"output must be one of {OUTPUT_CHOICES}, got {output!r}")
    if isinstance(model, Model):
        if batch_size is None and budget is None:
            return model
        # the caller's Model is never changed: a child with this call's budget and batch size, whose
        # rows are still counted on (and within the budget of) the caller's Model, sharing its cache
        c = model.child(budget=budget)
        if batch_size is not None:
            c.batch_size = int(batch_size)
        c._cache = model._cache
        return c
    if _is_torch_module(model):
        from whybox.models.torch import TorchModel
        return TorchModel(model, batch_size=batch_size, budget=budget, name=name, cache=cache)
    if type(model).__name__ == "Booster" and _library(model) in ("xgboost", "lightgbm"):
        return booster_model(model, output=output, batch_size=batch_size, budget=budget, cache=cache, name=name)
    if hasattr(model, "fit") and any(hasattr(model, m) for m in OUTPUT_CHOICES[1:4]):
        return _sklearn_model(model, output=output, batch_size=batch_size, budget=budget,
                              cache=cache, name=name)
    if callable(model):
        return Model(model, name=name, batch_size=batch_size, budget=budget, cache=cache)
    raise InputError(
        f"cannot use an object of type {type(model).__name__} as a model: pass a scikit-learn "
        "estimator, a torch nn.Module, a whybox.Model or a callable f(X) -> scores")


def _library(obj: Any) -> str:
    return type(obj).__module__.split(".")[0]


def raw_output(est: Any) -> Callable | None:
    """The margin (raw score) of an XGBoost or LightGBM model, or a scikit-learn model's
    decision_function (a regressor's predict): ``output="raw"``."""
    lib = _library(est)
    if lib == "xgboost":
        return lambda X: est.predict(X, output_margin=True)
    if lib == "lightgbm":
        return lambda X: est.predict(X, raw_score=True)
    if hasattr(est, "decision_function"):
        return est.decision_function
    if hasattr(est, "predict") and not hasattr(est, "predict_proba"):
        return est.predict
    return None


def booster_model(booster: Any, *, output: str, **kw: Any) -> Model:
    """A raw XGBoost or LightGBM ``Booster``: its predictions (``output="raw"``: its margin)."""
    lib = _library(booster)
    raw = output == "raw"
    if output not in ("auto", "predict", "raw"):
        raise InputError(f"a {lib} Booster has outputs 'predict' or 'raw' (its margin), not {output!r}")
    if lib == "xgboost":
        import xgboost

        names = booster.feature_names
        fn = lambda X: booster.predict(xgboost.DMatrix(X, feature_names=names), output_margin=raw)  # noqa: E731
        cols = list(names) if names else None
    else:
        names = booster.feature_name()
        fn = lambda X: booster.predict(X, raw_score=raw)  # noqa: E731
        cols = list(names) if names and not all(n.startswith("Column_") for n in names) else None
    m = Model(fn, name=kw.pop("name", None) or f"{lib}.Booster.{'raw' if raw else 'predict'}", columns=cols,
              is_classifier=False, **kw)
    m.method = "raw" if raw else "predict"
    m.source = booster
    return m


def sklearn_output(est: Any, output: str) -> tuple[Callable, str, list | None]:
    """The scoring method of a fitted estimator (predict_proba, else decision_function, else predict;
    ``output`` forces one; "raw" is the margin), its name, and the output names (class labels) when
    they are known."""
    if output == "raw":
        fn = raw_output(est)
        if fn is None:
            raise InputError(f"estimator {type(est).__name__} has no raw score (margin); use 'predict_proba'")
        classes = getattr(est, "classes_", None)
        names = [as_python(c) for c in classes] if classes is not None and len(classes) > 2 else None
        return fn, "raw", names
    methods = [output] if output != "auto" else ["predict_proba", "decision_function", "predict"]
    fn = None
    for m in methods:
        if hasattr(est, m):
            try:
                fn = getattr(est, m)
            except AttributeError:  # e.g. SVC(probability=False).predict_proba
                continue
            chosen = m
            break
    if fn is None:
        raise InputError(f"estimator {type(est).__name__} has no method {output!r}")
    classes = getattr(est, "classes_", None)
    output_names = None
    if classes is not None and (chosen == "predict_proba" or (chosen == "decision_function" and len(classes) > 2)):
        output_names = [as_python(c) for c in classes]
    return fn, chosen, output_names


def _sklearn_model(est: Any, *, output: str, **kw: Any) -> Model:
    fn, chosen, output_names = sklearn_output(est, output)
    classes = getattr(est, "classes_", None)
    columns = getattr(est, "feature_names_in_", None)
    name = kw.pop("name", None) or f"{type(est).__name__}.{chosen}"
    m = Model(fn, name=name, output_names=output_names, columns=list(columns) if columns is not None else None,
              is_classifier=chosen not in ("predict", "raw") or classes is not None, **kw)
    m.method = chosen
    m.source = est
    return m
