"""Loading models and data files for the CLI and the dashboard, safely."""
from __future__ import annotations

import os
from typing import Any

import pandas as pd

from whybox.errors import InputError

PICKLE_EXT = (".joblib", ".pkl", ".pickle")


TRUSTED_PREFIXES = ("sklearn.", "numpy.", "scipy.", "builtins.", "collections.")


def load_model(path: str | os.PathLike, *, trust_pickle: bool = False, trusted: list[str] | None = None) -> Any:
    """Load a model file: skops (.skops) with trusted types only, or joblib/pickle when
    ``trust_pickle`` (loading a pickle runs arbitrary code).

    For skops files, types from scikit-learn, numpy and scipy are trusted, plus any listed in
    ``trusted``; a file that needs any other type is refused with the list of those types."""
    p = os.fspath(path)
    if not os.path.exists(p):
        raise InputError(f"model file not found: {p}")
    if p.endswith(".skops"):
        try:
            import skops.io as sio
        except ImportError:
            raise InputError("loading .skops files needs skops: pip install skops") from None
        try:
            needed = sio.get_untrusted_types(file=p)
        except Exception as exc:
            raise InputError(f"{p} is not a readable skops file: {exc}") from None
        extra = set(trusted or [])
        bad = [t for t in needed if not t.startswith(TRUSTED_PREFIXES) and t not in extra]
        if bad:
            raise InputError(f"{p} needs types that whybox does not trust: {bad}. Inspect the file; "
                             "pass them as trusted types only if you trust its origin.")
        return sio.load(p, trusted=list(needed))
    if p.endswith(PICKLE_EXT):
        if not trust_pickle:
            raise InputError(f"{p} is a pickle: loading it runs code from the file. Pass --trust-pickle "
                             "(trust_pickle=True) if you trust its origin, or save the model with skops.")
        import joblib
        return joblib.load(p)
    raise InputError(f"unknown model file type {p!r}: use .skops (preferred) or .joblib/.pkl with --trust-pickle")


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
