"""Input checks shared by every layer (scikit-learn's check_array in spirit, with named errors)."""
from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from whybox.errors import InputError


def check_random_state(seed: Any) -> np.random.Generator:
    """Turn ``seed`` (int, None, Generator) into a numpy Generator."""
    if isinstance(seed, np.random.Generator):
        return seed
    if seed is None or isinstance(seed, (int, np.integer)):
        return np.random.default_rng(seed)
    raise InputError(f"seed must be an int, None or numpy.random.Generator, got {type(seed).__name__}")


def is_numeric_dtype(arr: np.ndarray) -> bool:
    return arr.dtype.kind in "biuf"


def to_matrix(X: Any, *, name: str = "X", n_columns: int | None = None,
              allow_nan: bool = False) -> np.ndarray:
    """Return a 2-D ndarray (float64 when all numeric, object otherwise).

    Raises InputError naming ``name`` for wrong dimension, wrong column count, NaN/inf.
    """
    if isinstance(X, pd.Series):
        X = X.to_frame().T
    if isinstance(X, pd.DataFrame):
        numeric = all(pd.api.types.is_numeric_dtype(t) or pd.api.types.is_bool_dtype(t) for t in X.dtypes)
        arr = X.to_numpy(dtype=np.float64 if numeric else object)
    else:
        try:
            arr = np.asarray(X)
        except Exception as exc:  # ragged lists etc.
            raise InputError(f"{name} could not be converted to an array: {exc}") from None
        if arr.dtype.kind in "biu" or arr.dtype.kind == "f":
            arr = arr.astype(np.float64, copy=False)
        elif arr.dtype.kind in "OUS":
            arr = arr.astype(object)
        else:
            raise InputError(f"{name} has unsupported dtype {arr.dtype}")
    if arr.ndim == 1:
        arr = arr.reshape(1, -1)
    if arr.ndim != 2:
        raise InputError(f"{name} must be 2-D (rows x features), got an array with {arr.ndim} dimensions")
    if arr.shape[0] == 0:
        raise InputError(f"{name} has no rows")
    if n_columns is not None and arr.shape[1] != n_columns:
        raise InputError(f"{name} has {arr.shape[1]} columns but the model/feature names expect {n_columns}")
    cols = [str(c) for c in X.columns] if isinstance(X, pd.DataFrame) else None
    if not allow_nan:
        check_finite(arr, name=name, columns=cols)
    else:
        check_no_inf(arr, name=name, columns=cols)
    return arr


def _col(j: int, columns: list[str] | None) -> str:
    return repr(columns[j]) if columns is not None and j < len(columns) else f"{j}"


def check_no_inf(arr: np.ndarray, *, name: str, columns: list[str] | None = None) -> None:
    """NaN allowed (a model that handles missing values), infinities never."""
    if arr.dtype == object:
        bad = np.array([[isinstance(v, (float, np.floating)) and np.isinf(v) for v in row] for row in arr], dtype=bool)
    else:
        bad = np.isinf(arr)
    if bad.any():
        rows, cs = np.nonzero(bad)
        raise InputError(f"{name} contains {int(bad.sum())} infinite value(s); first at row {rows[0]}, column "
                         f"{_col(cs[0], columns)}")


def check_finite(arr: np.ndarray, *, name: str, columns: list[str] | None = None) -> None:
    if arr.dtype == object:
        bad = pd.isna(pd.DataFrame(arr)).to_numpy().copy()  # pandas may hand back a read-only view
        for j in range(arr.shape[1]):
            col = arr[:, j]
            floats = np.array([isinstance(v, (float, np.floating)) and not np.isfinite(v) for v in col])
            bad[:, j] |= floats
    else:
        bad = ~np.isfinite(arr)
    if bad.any():
        rows, cs = np.nonzero(bad)
        raise InputError(
            f"{name} contains {int(bad.sum())} NaN/inf value(s); first at row {rows[0]}, column {_col(cs[0], columns)}. "
            "Impute or drop them before explaining, or pass allow_nan=True if the model handles missing values.")


def converts_to_float(col: Any) -> bool:
    """Whether every value of ``col`` converts to a float (an object column of numbers does)."""
    try:
        np.asarray(col).astype(float)
        return True
    except (TypeError, ValueError):
        return False


def as_python(v: Any) -> Any:
    """A numpy (or torch) scalar as the Python value it holds; anything else as it is."""
    return v.item() if hasattr(v, "item") else v
