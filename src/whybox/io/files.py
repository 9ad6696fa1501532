"""Loading models and data files for the CLI and the dashboard, safely."""
from __future__ import annotations

import os
from typing import Any

import pandas as pd

from whybox.errors import InputError

PICKLE_EXT = (".joblib", ".pkl", ".pickle")


# Packages whose *classes* may be trusted after import (never their functions). Nothing outside them is
# imported to decide: an unknown module name is simply untrusted.
_CLASS_PACKAGES = ("sklearn", "numpy", "scipy")

# Data-holding classes that fitted estimators contain but that are not estimators (tree structures,
# boosting predictors, optimiser state, neighbour trees, GP kernels). Classes only: they run no user code
# when rebuilt. Subclasses of these bases are trusted too (checked on the imported class).
SKLEARN_DATA_CLASSES = frozenset({
    "sklearn.tree._tree.Tree",
    "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor",
    "sklearn.ensemble._hist_gradient_boosting.binning._BinMapper",
    "sklearn.neighbors._kd_tree.KDTree",
    "sklearn.neighbors._ball_tree.BallTree",
    "sklearn.utils._bunch.Bunch",
    "numpy.dtype",
})
_SKLEARN_DATA_BASES = (
    "sklearn.base.BaseEstimator",
    "sklearn.neural_network._stochastic_optimizers.BaseOptimizer",
    "sklearn.gaussian_process.kernels.Kernel",
    "sklearn.metrics._dist_metrics.DistanceMetric",
)


def _resolve(name: str) -> Any:
    """The object a skops type name refers to, or None. Only modules of ``_CLASS_PACKAGES`` are imported."""
    import importlib

    if name.split(".", 1)[0] not in _CLASS_PACKAGES:
        return None
    parts = name.split(".")
    for cut in range(len(parts) - 1, 0, -1):
        try:
            obj: Any = importlib.import_module(".".join(parts[:cut]))
        except ImportError:
            continue
        try:
            for attr in parts[cut:]:
                obj = getattr(obj, attr)
        except AttributeError:
            return None
        return obj
    return None


def is_trusted_type(name: str) -> bool:
    """Whether a type a skops file names may be loaded without the user naming it: a *class* that
    subclasses scikit-learn's ``BaseEstimator`` (checked on the imported class, not by name), or one of
    scikit-learn's data-holding classes (trees, optimiser state, kernels, distance metrics). Functions,
    methods and builtins are never trusted here."""
    import inspect

    obj = _resolve(name)
    if not inspect.isclass(obj):
        return False
    if name in SKLEARN_DATA_CLASSES:
        return True
    bases = [b for b in map(_resolve, _SKLEARN_DATA_BASES) if inspect.isclass(b)]
    return any(issubclass(obj, b) for b in bases)


def load_model(path: str | os.PathLike, *, trust_pickle: bool = False, trusted: list[str] | None = None) -> Any:
    """Load a model file: skops (.skops) with trusted types only, or joblib/pickle when
    ``trust_pickle`` (loading a pickle runs arbitrary code).

    A skops file may use what skops trusts by default, scikit-learn estimator classes (subclasses of
    ``BaseEstimator``, checked after import) and scikit-learn's tree data classes. Any function or
    other type (``numpy.full_like``, ``builtins.eval``, ``posix.system``, ...) must be named in
    ``trusted`` (CLI ``--trusted``); otherwise the file is refused with the list of untrusted types,
    as ``skops.io.get_untrusted_types`` reports them."""
    p = os.fspath(path)
    if not os.path.exists(p):
        raise InputError(f"model file not found: {p}")
    if p.endswith(".skops"):
        try:
            import skops.io as sio
        except ImportError:
            raise InputError("loading .skops files needs skops: pip install 'whybox[skops]'") from None
        try:
            needed = sio.get_untrusted_types(file=p)
        except Exception as exc:  # noqa: BLE001 - any failure to read the archive
            raise InputError(f"{p} is not a readable skops file: {_one_line(exc)}") from None
        extra = set(trusted or [])
        bad = [t for t in needed if t not in extra and not is_trusted_type(t)]
        if bad:
            raise InputError(f"{p} needs types that whybox does not trust: {bad}. Functions and non-estimator "
                             "types can run code when the model is used; inspect the file, and only if you trust "
                             "its origin name each one with --trusted NAME (trusted=[...]).")
        try:
            return sio.load(p, trusted=list(needed))
        except Exception as exc:  # noqa: BLE001 - a damaged archive
            raise InputError(f"could not load {p}: {_one_line(exc)}") from None
    if p.endswith(PICKLE_EXT):
        if not trust_pickle:
            raise InputError(f"{p} is a pickle: loading it runs code from the file. Pass --trust-pickle "
                             "(trust_pickle=True) if you trust its origin, or save the model with skops.")
        import joblib
        try:
            return joblib.load(p)
        except Exception as exc:  # noqa: BLE001 - garbage or truncated pickles raise anything
            raise InputError(f"could not load {p} as a joblib/pickle file: {_one_line(exc)}") from None
    raise InputError(f"unknown model file type {p!r}: use .skops (preferred) or .joblib/.pkl with --trust-pickle")


def _one_line(exc: BaseException, n: int = 200) -> str:
    s = " ".join(f"{type(exc).__name__}: {exc}".split())
    return s if len(s) <= n else s[:n] + "..."


def load_table(path: str | os.PathLike) -> pd.DataFrame:
    """Read a CSV or Parquet file into a DataFrame, with errors that name the file."""
    p = os.fspath(path)
    if not os.path.exists(p):
        raise InputError(f"data file not found: {p}")
    try:
        if p.endswith(".parquet"):
            return pd.read_parquet(p)
        if p.endswith((".csv", ".txt", ".csv.gz")):
            return pd.read_csv(p)
    except Exception as exc:
        raise InputError(f"could not read {p}: {exc}") from None
    raise InputError(f"unknown data file type {p!r}: use .csv or .parquet")


def parse_rows(spec: str | None, n: int) -> list[int]:
    """'0:10', '3', '1,5,7' or None (all rows) -> row indices, checked against n."""
    if spec is None or spec in ("", "all", ":"):
        return list(range(n))
    out: list[int] = []
    try:
        for part in spec.split(","):
            if ":" in part:
                a, b = part.split(":", 1)
                out.extend(range(int(a or 0), min(int(b) if b else n, n)))
            else:
                out.append(int(part))
    except ValueError:
        raise InputError(f"cannot parse rows {spec!r}: use e.g. 0:10, 5 or 1,4,9") from None
    bad = [r for r in out if not 0 <= r < n]
    if bad:
        raise InputError(f"row(s) {bad[:5]} out of range: the data has {n} rows (0..{n - 1})")
    if not out:
        raise InputError(f"rows {spec!r} selects no row (the data has {n} rows)")
    return out
