"""Background data: the reference distribution that "removing" a feature draws from.

A :class:`Background` is a set of rows with weights. Removing feature j in row x means replacing x_j by
b_j for every background row b and averaging the model's outputs with the weights (interventional
Shapley / baseline Shapley with one row).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from whybox.core.validation import check_random_state, to_matrix
from whybox.errors import InputError


@dataclass(frozen=True)
class Background:
    """Rows (B, p) and weights (B,) summing to one; ``columns``/``dtypes`` remember a DataFrame's
    column names and dtypes (int and bool columns stay int and bool in :meth:`to_frame`)."""

    data: np.ndarray
    weights: np.ndarray
    columns: tuple | None = None
    dtypes: tuple | None = None
    implicit: bool = False          # the all-zeros row put in when no background was given

    def to_frame(self) -> pd.DataFrame:
        """The rows as a DataFrame, with the source's column names and dtypes when it had them."""
        cols = list(self.columns) if self.columns is not None else [f"x{j}" for j in range(self.data.shape[1])]
        df = pd.DataFrame(self.data, columns=cols)
        if self.dtypes is not None:
            for c, t in zip(cols, self.dtypes):
                try:
                    col = df[c]
                    if pd.api.types.is_integer_dtype(t) and col.isna().any():
                        df[c] = col.astype("Int64")          # missing values: pandas' nullable integers
                    else:
                        df[c] = col.astype(t)
                except (TypeError, ValueError):
                    pass
        return df

    def __post_init__(self) -> None:
        if self.data.ndim != 2 or len(self.weights) != len(self.data):
            raise InputError("background weights must have one entry per background row")
        w = np.asarray(self.weights, dtype=float)
        if not np.isfinite(w).all() or (w < 0).any():
            raise InputError("background weights must be finite and non-negative; got "
                             f"{int((~np.isfinite(w)).sum())} NaN/inf and {int((w < 0).sum())} negative")
        total = float(w.sum())
        if total <= 0:
            raise InputError("background weights are all zero: every row would get no weight")
        if abs(total - 1.0) > 1e-6:
            raise InputError(f"background weights must sum to 1, they sum to {total:.6g}: pass w / w.sum() "
                             "(unnormalised weights make the attributions absorb part of f(x))")

    @property
    def n_rows(self) -> int:
        return self.data.shape[0]

    def mean(self) -> np.ndarray:
        if self.data.dtype == object:
            raise InputError("the background mean is undefined for non-numeric columns")
        return self.weights @ self.data

    def scale(self) -> np.ndarray:
        """Per-column weighted standard deviation (1 where undefined or zero)."""
        if self.data.dtype == object or self.n_rows < 2:
            return np.ones(self.data.shape[1])
        mu = self.weights @ self.data
        sd = np.sqrt(self.weights @ (self.data - mu) ** 2)
        return np.where(sd > 0, sd, 1.0)


def make_background(background: Any, *, n_columns: int, columns: list[str] | None = None,
                    allow_nan: bool = False) -> Background:
    """Normalise what a user passes as ``background``.

    None -> a single all-zeros row (numeric data only); a Background -> itself; an array/DataFrame ->
    its rows with equal weights (a 1-D array is one baseline row).
    """
    if isinstance(background, Background):
        data = background.data
        if data.shape[1] != n_columns:
            raise InputError(f"background has {data.shape[1]} columns but X has {n_columns}")
        return background
    if background is None:
        return Background(np.zeros((1, n_columns)), np.ones(1), implicit=True)
    if isinstance(background, pd.DataFrame) and columns is not None:
        missing = [c for c in columns if c not in background.columns]
        if missing:
            raise InputError(f"background is missing columns {missing}")
        background = background[columns]
    data = to_matrix(background, name="background", n_columns=n_columns, allow_nan=allow_nan)
    return Background(data, np.full(data.shape[0], 1.0 / data.shape[0]))


def sample(data: Any, n: int = 100, *, seed: Any = 0) -> Background:
    """A uniform random sample of ``n`` rows (all rows when there are fewer); missing values (NaN)
    are kept, for models that handle them."""
    arr = to_matrix(data, name="data", allow_nan=True)
    meta = _frame_meta(data)
    rng = check_random_state(seed)
    if n >= arr.shape[0]:
        return Background(arr, np.full(arr.shape[0], 1.0 / arr.shape[0]), *meta)
    idx = np.sort(rng.choice(arr.shape[0], size=n, replace=False))
    return Background(arr[idx], np.full(n, 1.0 / n), *meta)


def _frame_meta(data: Any) -> tuple:
    if isinstance(data, pd.DataFrame):
        return tuple(str(c) for c in data.columns), tuple(data.dtypes)
    return None, None


def kmeans(data: Any, k: int = 20, *, seed: Any = 0) -> Background:
    """A k-means summary of ``data``: k centres weighted by cluster size.

    Each centre's values are snapped to the nearest value the column takes in the data (so binary
    and integer columns stay valid); non-numeric columns take the cluster's most frequent value and
    are ignored by the clustering itself. Missing values (NaN) are kept: the clustering fills them
    with the column mean, and a centre is NaN in a column where most of its cluster is missing.
    """
    from sklearn.cluster import KMeans

    arr = to_matrix(data, name="data", allow_nan=True)
    meta = _frame_meta(data)
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise InputError(f"k must be an integer >= 1, got {k!r}")
    if k >= arr.shape[0]:
        return Background(arr, np.full(arr.shape[0], 1.0 / arr.shape[0]), *meta)
    numeric = np.array([_is_numeric_col(arr[:, j]) for j in range(arr.shape[1])])
    num = arr[:, numeric].astype(float) if numeric.any() else np.zeros((arr.shape[0], 1))
    with np.errstate(all="ignore"):
        mu = np.nan_to_num(np.nanmean(num, axis=0)) if np.isnan(num).any() else num.mean(axis=0)
    num = np.where(np.isnan(num), mu, num)
    sd = num.std(axis=0)
    z = (num - mu) / np.where(sd > 0, sd, 1.0)
    rs = int(check_random_state(seed).integers(2**31 - 1))
    km = KMeans(n_clusters=k, n_init=4, random_state=rs).fit(z)
    labels = km.labels_
    out = np.empty((k, arr.shape[1]), dtype=arr.dtype)
    for c in range(k):
        members = arr[labels == c]
        for j in range(arr.shape[1]):
            col = arr[:, j]
            if numeric[j]:
                vals = members[:, j].astype(float)
                if np.isnan(vals).mean() > 0.5:
                    out[c, j] = np.nan
                    continue
                centre = np.nanmean(vals)
                uniq = np.unique(col.astype(float))
                uniq = uniq[~np.isnan(uniq)]
                out[c, j] = uniq[np.argmin(np.abs(uniq - centre))]
            else:
                vals, counts = np.unique(members[:, j].astype(str), return_counts=True)
                mode = vals[np.argmax(counts)]
                out[c, j] = next(v for v in members[:, j] if str(v) == mode)
    w = np.bincount(labels, minlength=k).astype(float)
    return Background(out, w / w.sum(), *meta)


def _is_numeric_col(col: np.ndarray) -> bool:
    if col.dtype != object:
        return True
    try:
        col.astype(float)
        return True
    except (TypeError, ValueError):
        return False
