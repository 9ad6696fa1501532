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

from typing import Any, Callable, Sequence

import numpy as np
import pandas as pd

from whybox.errors import BudgetError, InputError, ModelError

OUTPUT_CHOICES = ("auto", "predict_proba", "decision_function", "predict")


class Model:
    """A batched, counted, validated ``f(X) -> ndarray (n, k)``.

    Parameters
    ----------
    fn : callable taking a 2-D array (or a DataFrame when ``columns`` is given) and returning
        scores with one row per input row.
    name : shown in error messages.
    output_names : names of the k outputs (e.g. class labels).
    batch_size : at most this many rows per call of ``fn`` (None: everything at once).
    budget : maximum number of rows this Model may evaluate; exceeding it raises BudgetError.
    columns, dtypes : when given, inputs are passed to ``fn`` as a DataFrame with these columns and
        dtypes (for pipelines fitted on DataFrames).
    cache : remember outputs per distinct row.
    """

    def __init__(self, fn: Callable[[Any], Any], *, name: str | None = None,
                 output_names: Sequence[Any] | None = None, batch_size: int | None = None,
                 budget: int | None = None, columns: Sequence[str] | None = None,
                 dtypes: Any = None, cache: bool = False, is_classifier: bool | None = None):
        if not callable(fn):
            raise InputError(f"model must be callable or an estimator, got {type(fn).__name__}")
        if batch_size is not None and int(batch_size) < 1:
            raise InputError(f"batch_size must be a positive integer, got {batch_size}")
        if budget is not None and int(budget) < 1:
            raise InputError(f"budget must be a positive number of model rows, got {budget}")
        self.fn = fn
        self.name = name or getattr(fn, "__name__", type(fn).__name__)
        self.output_names = list(output_names) if output_names is not None else None
        self.batch_size = int(batch_size) if batch_size else None
        self.budget = int(budget) if budget is not None else None
        self.columns = list(columns) if columns is not None else None
        self.dtypes = dtypes
        self.cache = bool(cache)
        self._cache: dict[bytes, np.ndarray] = {}
        self.is_classifier = is_classifier
        self.n_outputs: int | None = len(self.output_names) if self.output_names else None
        self.n_rows = 0
        self.n_calls = 0

    # ----------------------------------------------------------------- accounting
    def reset_counts(self) -> None:
        self.n_rows = 0
        self.n_calls = 0

    @property
    def remaining(self) -> float:
        return float("inf") if self.budget is None else self.budget - self.n_rows

    def require(self, n_rows: int, *, what: str) -> None:
        """Raise BudgetError up front when ``what`` needs more rows than the budget has left."""
        if self.budget is not None and n_rows > self.remaining:
            raise BudgetError(
                f"{what} needs {n_rows:,} model rows but the budget has {int(self.remaining):,} left "
                f"(budget={self.budget:,}). Raise the budget or lower the method's sample count.")

    @property
    def has_gradient(self) -> bool:
        return False

    def child(self, budget: int | None = None) -> "Model":
        """A copy that calls the same model with its own counters and budget (and no cache)."""
        import copy

        c = copy.copy(self)
        c.n_rows = c.n_calls = 0
        c.budget = int(budget) if budget is not None else None
        c._cache = {}
        return c

    def with_frame(self, columns: Sequence[str] | None, dtypes: Any) -> "Model":
        self.columns = list(columns) if columns is not None else None
        self.dtypes = dtypes
        return self

    # ----------------------------------------------------------------- evaluation
    def __call__(self, X: np.ndarray) -> np.ndarray:
        X = np.asarray(X)
        if X.ndim != 2:
            raise InputError(f"model input must be 2-D, got shape {X.shape}")
        n = X.shape[0]
        if n == 0:
            return np.empty((0, self.n_outputs or 0))
        if self.cache and X.dtype != object:
            return self._call_cached(X)
        return self._call_batched(X)

    def _call_batched(self, X: np.ndarray) -> np.ndarray:
        n = X.shape[0]
        if self.budget is not None and self.n_rows + n > self.budget:
            raise BudgetError(
                f"model query budget exhausted: {self.n_rows:,} rows used, {n:,} more requested, "
                f"budget is {self.budget:,}")
        bs = self.batch_size or n
        if bs >= n:
            return self._call_once(X)
        return np.concatenate([self._call_once(X[s:s + bs]) for s in range(0, n, bs)], axis=0)

    def _call_cached(self, X: np.ndarray) -> np.ndarray:
        Xc = np.ascontiguousarray(X)
        keys = [Xc[i].tobytes() for i in range(Xc.shape[0])]
        missing = {}
        for i, k in enumerate(keys):
            if k not in self._cache and k not in missing:
                missing[k] = i
        if missing:
            idx = np.fromiter(missing.values(), dtype=np.intp)
            out = self._call_batched(Xc[idx])
            for k, row in zip(missing.keys(), out):
                self._cache[k] = row
        return np.stack([self._cache[k] for k in keys])

    def _to_input(self, X: np.ndarray) -> Any:
        if self.columns is None:
            return X
        frame = pd.DataFrame(X, columns=self.columns, copy=False)
        if self.dtypes is not None:
            try:
                frame = frame.astype(self.dtypes)
            except (TypeError, ValueError) as exc:
                raise InputError(f"could not restore the column dtypes expected by {self.name}: {exc}") from None
        return frame

    def _raw(self, inp: Any) -> Any:
        return self.fn(inp)

    def _call_once(self, X: np.ndarray) -> np.ndarray:
        n = X.shape[0]
        try:
            out = self._raw(self._to_input(X))
        except (BudgetError, ModelError):
            raise
        except Exception as exc:
            raise ModelError(f"model {self.name!r} raised {type(exc).__name__} on a batch of {n} rows: {exc}") from exc
        self.n_calls += 1
        self.n_rows += n
        return self._validate(out, n)

    def _validate(self, out: Any, n: int) -> np.ndarray:
        try:
            arr = np.asarray(_to_numpy(out), dtype=np.float64)
        except (TypeError, ValueError) as exc:
            raise ModelError(f"model {self.name!r} returned non-numeric output ({type(out).__name__}): {exc}") from None
        if arr.ndim == 1:
            arr = arr.reshape(-1, 1)
        if arr.ndim != 2:
            raise ModelError(f"model {self.name!r} returned an array of shape {arr.shape}; expected (n_rows,) or (n_rows, n_outputs)")
        if arr.shape[0] != n:
            raise ModelError(f"model {self.name!r} returned {arr.shape[0]} rows for {n} input rows")
        if self.n_outputs is None:
            self.n_outputs = arr.shape[1]
        elif arr.shape[1] != self.n_outputs:
            raise ModelError(f"model {self.name!r} returned {arr.shape[1]} outputs, earlier calls returned {self.n_outputs}")
        if not np.isfinite(arr).all():
            bad = int((~np.isfinite(arr)).any(axis=1).sum())
            raise ModelError(f"model {self.name!r} returned NaN/inf for {bad} of {n} rows")
        return arr

    def gradient(self, X: np.ndarray, targets: np.ndarray) -> np.ndarray:  # pragma: no cover - overridden
        raise ModelError(f"model {self.name!r} has no autograd; gradients are estimated from queries")

    def __repr__(self) -> str:
        return f"Model({self.name!r}, n_outputs={self.n_outputs}, rows={self.n_rows}, calls={self.n_calls})"


def _to_numpy(out: Any) -> Any:
    if hasattr(out, "detach") and hasattr(out, "cpu"):  # torch tensor without importing torch
        return out.detach().cpu().numpy()
    if isinstance(out, (pd.DataFrame, pd.Series)):
        return out.to_numpy()
    return out


def _is_torch_module(obj: Any) -> bool:
    return any(c.__module__.startswith("torch.nn") and c.__name__ == "Module" for c in type(obj).__mro__)


def as_model(model: Any, *, output: str = "auto", batch_size: int | None = None,
             budget: int | None = None, cache: bool = False, name: str | None = None) -> Model:
    """Wrap ``model`` in a :class:`Model`.

    * a Model is returned as is (its budget/batch size updated when given);
    * a torch ``nn.Module`` gets autograd gradients (:class:`whybox.models.torch.TorchModel`);
    * a scikit-learn estimator uses ``predict_proba``, else ``decision_function``, else ``predict``
      (``output`` forces one); a model fitted on a DataFrame is fed DataFrames;
    * any other callable is called on 2-D arrays.
    """
    if output not in OUTPUT_CHOICES:
        raise InputError(f"output must be one of {OUTPUT_CHOICES}, got {output!r}")
    if isinstance(model, Model):
        if batch_size is not None:
            model.batch_size = int(batch_size)
        if budget is not None:
            model.budget = int(budget)
        return model
    if _is_torch_module(model):
        from whybox.models.torch import TorchModel
        return TorchModel(model, batch_size=batch_size, budget=budget, name=name, cache=cache)
    if hasattr(model, "fit") and any(hasattr(model, m) for m in OUTPUT_CHOICES[1:]):
        return _sklearn_model(model, output=output, batch_size=batch_size, budget=budget,
                              cache=cache, name=name)
    if callable(model):
        return Model(model, name=name, batch_size=batch_size, budget=budget, cache=cache)
    raise InputError(
        f"cannot use an object of type {type(model).__name__} as a model: pass a scikit-learn "
        "estimator, a torch nn.Module, a whybox.Model or a callable f(X) -> scores")


def sklearn_output(est: Any, output: str) -> tuple[Callable, str, list | None]:
    """The scoring method of a fitted estimator (predict_proba, else decision_function, else predict;
    ``output`` forces one), its name, and the output names (class labels) when they are known."""
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
        output_names = [c.item() if hasattr(c, "item") else c for c in classes]
    return fn, chosen, output_names


def _sklearn_model(est: Any, *, output: str, **kw: Any) -> Model:
    fn, chosen, output_names = sklearn_output(est, output)
    classes = getattr(est, "classes_", None)
    columns = getattr(est, "feature_names_in_", None)
    name = kw.pop("name", None) or f"{type(est).__name__}.{chosen}"
    m = Model(fn, name=name, output_names=output_names, columns=list(columns) if columns is not None else None,
              is_classifier=chosen != "predict" or classes is not None, **kw)
    m.method = chosen
    return m
