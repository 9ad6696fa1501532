"""The :class:`Model` type: a batched, counted, validated ``f(X) -> scores`` (adapters in
:mod:`whybox.models.adapters` turn estimators, torch modules and callables into one)."""
from __future__ import annotations

from typing import Any, Callable, Sequence

import numpy as np
import pandas as pd

from whybox.errors import BudgetError, InputError, ModelError

OUTPUT_CHOICES = ("auto", "predict_proba", "decision_function", "predict", "raw")


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
        self._parent: "Model | None" = None
        self._meters: list = []          # progress bars watching the rows (whybox.core.progress)
        self.reads: dict = {}            # what recipes read from the model itself (its trees), kept with it
        # (dtypes it was computed for, the one numeric dtype of every column or None): _uniform_dtype
        self._uniform: tuple[Any, np.dtype | None] = (object(), None)

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
        """A copy that calls the same model with its own counters and budget (and no cache). Its rows
        are counted on this Model too (and within this Model's budget), so a user's meter sees every row."""
        import copy

        c = copy.copy(self)
        c.n_rows = c.n_calls = 0
        c.budget = int(budget) if budget is not None else None
        c._cache = {}
        c._parent = self
        c._meters = []
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
        node: Model | None = self
        while node is not None:
            if node.budget is not None and node.n_rows + n > node.budget:
                raise BudgetError(
                    f"model query budget exhausted: {node.n_rows:,} rows used, {n:,} more requested, "
                    f"budget is {node.budget:,}")
            node = node._parent
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
        uniform = self._uniform_dtype()
        if uniform is not None:             # one dtype for every column: convert the array, not the frame
            if X.dtype != uniform:
                try:
                    X = X.astype(uniform)
                except (TypeError, ValueError) as exc:
                    raise InputError(f"could not restore the column dtypes expected by {self.name}: {exc}") from None
            return pd.DataFrame(X, columns=self.columns, copy=False)
        frame = pd.DataFrame(X, columns=self.columns, copy=False)
        if self.dtypes is not None:
            try:
                frame = frame.astype(self.dtypes)
            except (TypeError, ValueError) as exc:
                raise InputError(f"could not restore the column dtypes expected by {self.name}: {exc}") from None
        return frame

    def _uniform_dtype(self) -> np.dtype | None:
        """The numpy dtype shared by every expected column (None: no dtypes, or mixed/extension dtypes)."""
        d = self.dtypes
        if self._uniform[0] is not d:
            uniform = None
            try:
                vals = list(d.values()) if isinstance(d, dict) else list(pd.Series(d))
                types = {np.dtype(v) for v in vals} if vals else set()
            except TypeError:               # categorical or other extension dtypes
                types = set()
            if len(types) == 1:
                (t,) = types
                if t.kind in "biuf":
                    uniform = t
            self._uniform = (d, uniform)
        return self._uniform[1]

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
        node: Model | None = self
        while node is not None:
            node.n_calls += 1
            node.n_rows += n
            for meter in getattr(node, "_meters", ()):
                meter.add(n)
            node = node._parent
        arr = self._validate(out, n)
        # outputs that are a view of the input (lambda X: X[:, :2]) would change when whybox refills
        # its reused input buffer: own them
        return arr.copy() if np.may_share_memory(arr, X) else arr

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
        if arr.shape[1] == 0:
            raise ModelError(f"model {self.name!r} returned no outputs (shape {arr.shape})")
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
