"""Shared plumbing for metrics: validated model/data/explanation triples and top-k selection."""
from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

from whybox.background import Background
from whybox.core.explanation import Explanation
from whybox.core.features import FeatureSpec
from whybox.core.validation import check_random_state
from whybox.errors import InputError
from whybox.models.adapters import Model
from whybox.problem import Problem, resolve_targets


@dataclass
class Setup:
    model: Model
    X: np.ndarray
    spec: FeatureSpec
    background: Background
    values: np.ndarray      # (n, d)
    targets: np.ndarray     # (n,)
    rng: np.random.Generator
    problem: Problem
    seed: Any = 0

    def row_rngs(self) -> list[np.random.Generator]:
        """One generator per row, keyed by the seed and the row's own values: a row's metric never
        depends on which other rows are scored with it, or where it sits."""
        return row_generators(self.seed, self.X)


def setup(model: Any, X: Any, explanation: Explanation | np.ndarray, *, background: Any = None,
          groups: Any = None, feature_names: Any = None, kinds: Any = None, target: Any = None,
          seed: Any = 0, budget: int | None = None, data: Any = None) -> Setup:
    """Validate a (model, rows, explanation) triple; targets default to the explanation's.

    ``model`` may be a prepared :class:`~whybox.problem.Problem` or :class:`whybox.Explainer` (its
    features, kinds and background are used as they are), or anything :func:`whybox.as_model`
    takes, with ``data=`` (reference rows for the kinds) or ``kinds=``."""
    from whybox.params import check

    check("seed", seed)
    pb = Problem.build(model, data, rows=X, background=background, budget=budget, feature_names=feature_names,
                       groups=groups, kinds=kinds, warn_kinds=True)
    m, spec, bg = pb.model, pb.spec, pb.background
    arr = pb.matrix(X)
    values = explanation.values if isinstance(explanation, Explanation) else np.asarray(explanation, float)
    if values.ndim == 3:
        raise InputError("metrics score one output per row: pass e[:, :, <label>] (this explanation covers every "
                         "output)")
    if values.ndim == 1:
        values = values[None, :]
    missing = failed_rows(values)
    if missing.all():
        raise InputError("every row of the explanation is NaN (e.g. LLM replies that could not be read): "
                         "there is nothing to score")
    values = np.where(missing[:, None], 0.0, values)    # failed rows are scored NaN by skips_failed_rows
    if values.shape != (arr.shape[0], spec.n_features):
        raise InputError(f"explanation has shape {values.shape} but X has {arr.shape[0]} row(s) and "
                         f"{spec.n_features} interpretable feature(s)")
    if isinstance(explanation, Explanation) and explanation.feature_names != spec.names:
        raise InputError(f"explanation features {explanation.feature_names} do not match the data's "
                         f"interpretable features {spec.names} (pass the same groups=)")
    if target is None and isinstance(explanation, Explanation):
        targets = np.asarray(explanation.target, dtype=np.intp)
    else:
        targets = resolve_targets(target, m(arr), m.output_names)
    return Setup(m, arr, spec, bg, values, targets, check_random_state(seed), pb, seed)


def row_generators(seed: Any, X: np.ndarray) -> list[np.random.Generator]:
    """A generator per row of X from (seed, a hash of the row's bytes)."""
    import hashlib

    if isinstance(seed, np.random.Generator):
        base = int(seed.integers(2**63))
    elif seed is None:
        base = int(np.random.SeedSequence().entropy) & (2**63 - 1)
    else:
        base = int(seed)
    out = []
    for row in X:
        raw = row.tobytes() if row.dtype != object else repr(row.tolist()).encode()
        words = np.frombuffer(hashlib.blake2b(raw, digest_size=16).digest(), dtype=np.uint32)
        out.append(np.random.default_rng(np.random.SeedSequence([base & 0xFFFFFFFF, base >> 32, *words.tolist()])))
    return out


def failed_rows(values: np.ndarray) -> np.ndarray:
    """(n,) bool: rows with a non-finite attribution, i.e. rows an explainer could not explain (an LLM
    reply that could not be read). Metrics leave them out: their score is NaN."""
    v = np.atleast_2d(np.asarray(values, dtype=float))
    return ~np.isfinite(v).all(axis=1)


def skips_failed_rows(fn: Callable) -> Callable:
    """Decorate a metric ``fn(model, X, explanation, ...)`` returning per-row scores (rows on axis 0,
    or a tuple of such arrays): rows whose explanation is NaN score NaN, never as zero attributions."""
    @functools.wraps(fn)
    def wrapper(model: Any, X: Any, explanation: Any, *args: Any, **kw: Any) -> Any:
        out = fn(model, X, explanation, *args, **kw)
        vals = explanation.values if isinstance(explanation, Explanation) else explanation
        missing = failed_rows(vals)
        if not missing.any():
            return out

        def mask(a: Any) -> Any:
            a = np.array(a, dtype=float)
            if a.ndim and a.shape[0] == len(missing):
                a[missing] = np.nan
            return a
        return tuple(mask(a) for a in out) if isinstance(out, tuple) else mask(out)
    return wrapper


def check_k(k: int | None, d: int, name: str = "k") -> int:
    if k is None:
        return int(np.ceil(0.25 * d))
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or not 1 <= k <= d:
        raise InputError(f"{name} must be an integer between 1 and the number of features ({d}), got {k!r}")
    return int(k)


def top_k_mask(values: np.ndarray, k: int) -> np.ndarray:
    """(n, d) bool: the k features of largest |value| per row (ties broken by feature order)."""
    order = np.argsort(-np.abs(values), axis=1, kind="stable")[:, :k]
    mask = np.zeros(values.shape, dtype=bool)
    np.put_along_axis(mask, order, True, axis=1)
    return mask


def mean_ci(scores: np.ndarray, level: float = 0.95) -> tuple[float, float, float]:
    """Mean and a normal-approximation confidence interval of per-row scores (NaNs ignored)."""
    from scipy.stats import norm

    s = np.asarray(scores, dtype=float)
    s = s[np.isfinite(s)]
    if len(s) == 0:
        return float("nan"), float("nan"), float("nan")
    mu = float(s.mean())
    if len(s) < 2:
        return mu, mu, mu
    half = float(norm.ppf(0.5 + level / 2) * s.std(ddof=1) / np.sqrt(len(s)))
    return mu, mu - half, mu + half
