"""How closely a global surrogate follows the black box, on samples it was not fitted on.

* classifiers: **agreement**, the share of samples where the surrogate predicts the black box's
  class, with a Wilson score interval (exact enough at every n and never outside [0, 1]); per class
  of the black box (how often the surrogate recovers that class) with its own interval;
* regressors: **R²** of the surrogate's output against the black box's, with a percentile
  bootstrap interval (paired resampling of the samples, seeded);
* **where** it disagrees: a depth-``depth`` decision tree fitted to the disagreement indicator
  (classifiers) or to "the error is in the top quarter" (regressors) on the same samples; leaves whose
  rate is at least twice the overall one (and 5 points above it), with at least ``min_leaf`` samples,
  are reported as rules.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np
import pandas as pd
from scipy import stats

from whybox.whole.rules import Rule, _merge, tree_rules


def wilson(k: float, n: float, confidence: float = 0.95) -> tuple[float, float]:
    """Wilson score interval for k successes in n trials."""
    if n <= 0:
        return float("nan"), float("nan")
    z = stats.norm.ppf(0.5 + confidence / 2)
    p = k / n
    den = 1 + z * z / n
    mid = (p + z * z / (2 * n)) / den
    half = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / den
    return float(max(0.0, mid - half)), float(min(1.0, mid + half))


def r2(y: np.ndarray, yhat: np.ndarray) -> float:
    ss = float(((y - y.mean()) ** 2).sum())
    res = float(((y - yhat) ** 2).sum())
    return 1.0 - res / ss if ss > 0 else (1.0 if res == 0 else 0.0)


def r2_interval(y: np.ndarray, yhat: np.ndarray, *, confidence: float = 0.95, n_boot: int = 1000,
                seed: int = 0) -> tuple[float, float]:
    rng = np.random.default_rng(seed)
    n = len(y)
    idx = rng.integers(0, n, (n_boot, n))
    yb, hb = y[idx], yhat[idx]
    ss = ((yb - yb.mean(axis=1, keepdims=True)) ** 2).sum(axis=1)
    res = ((yb - hb) ** 2).sum(axis=1)
    vals = 1.0 - res / np.where(ss > 0, ss, np.inf)
    a = (1 - confidence) / 2
    return float(np.quantile(vals, a)), float(np.quantile(vals, 1 - a))


@dataclass
class Fidelity:
    """Fidelity of a surrogate on ``n`` held-out samples (``where``: the rules describing where it
    disagrees most; ``per_class``: agreement by the black box's class)."""

    metric: str                       # "agreement" or "r2"
    value: float
    low: float
    high: float
    n: int
    confidence: float
    sample: str                       # which held-out samples
    per_class: pd.DataFrame | None = None
    where: list[dict] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"metric": self.metric, "value": self.value, "low": self.low, "high": self.high, "n": self.n,
                "confidence": self.confidence, "sample": self.sample,
                "per_class": None if self.per_class is None else self.per_class.to_dict(orient="records"),
                "where": self.where}

    def text(self) -> str:
        what = "agrees with the model on" if self.metric == "agreement" else "explains (R²)"
        v = f"{100 * self.value:.1f}%" if self.metric == "agreement" else f"{self.value:.3f}"
        lo = f"{100 * self.low:.1f}%" if self.metric == "agreement" else f"{self.low:.3f}"
        hi = f"{100 * self.high:.1f}%" if self.metric == "agreement" else f"{self.high:.3f}"
        tail = " of the model's outputs" if self.metric == "r2" else ""
        return (f"The surrogate {what} {v}{tail} ({100 * self.confidence:.0f}% CI {lo}–{hi}) on {self.n:,} "
                f"{self.sample} it was not fitted on.")


def fidelity(bb: np.ndarray, sur: np.ndarray, *, task: str, E: np.ndarray, sample: str, confidence: float = 0.95,
             labels: Sequence[Any] | None = None, seed: int = 0, depth: int = 3,
             min_leaf: int = 20) -> Fidelity:
    """Fidelity of surrogate predictions ``sur`` against black-box predictions ``bb`` on encoded
    samples ``E`` (see the module docstring)."""
    n = len(bb)
    if task == "classification":
        hit = np.asarray(bb == sur)
        k = float(hit.sum())
        lo, hi = wilson(k, n, confidence)
        rows = []
        for c in (labels if labels is not None else np.unique(bb)):
            m = np.asarray(bb == c)
            if m.any():
                a, b = wilson(float(hit[m].sum()), float(m.sum()), confidence)
                rows.append({"class": c, "n": int(m.sum()), "agreement": float(hit[m].mean()), "low": a, "high": b})
        f = Fidelity("agreement", k / n, lo, hi, n, confidence, sample, pd.DataFrame(rows))
        bad = ~hit
    else:
        bb_, sur_ = np.asarray(bb, float), np.asarray(sur, float)
        lo, hi = r2_interval(bb_, sur_, confidence=confidence, seed=seed)
        f = Fidelity("r2", r2(bb_, sur_), lo, hi, n, confidence, sample)
        err = np.abs(bb_ - sur_)
        bad = err > np.quantile(err, 0.75) if n >= 4 and err.max() > 0 else np.zeros(n, bool)
    f.where = disagreement_regions(E, bad, depth=depth, min_leaf=min_leaf, seed=seed)
    return f


def disagreement_regions(E: np.ndarray, bad: np.ndarray, *, depth: int = 3, min_leaf: int = 20,
                         seed: int = 0) -> list[dict]:
    """Leaves of a shallow tree on ``bad`` whose rate is >= 2x the overall rate (and >= 5 points above)."""
    bad = np.asarray(bad, dtype=bool)
    overall = float(bad.mean()) if len(bad) else 0.0
    if overall == 0.0 or overall == 1.0 or len(bad) < 2 * min_leaf:
        return []
    from sklearn.tree import DecisionTreeClassifier

    t = DecisionTreeClassifier(max_depth=depth, min_samples_leaf=min_leaf, random_state=seed).fit(E, bad)
    out = []
    for r in tree_rules(t, [False, True]):
        m = r.holds(E)
        rate = float(bad[m].mean()) if m.any() else 0.0
        if m.sum() >= min_leaf and rate >= max(2 * overall, overall + 0.05):
            out.append({"rule": r, "n": int(m.sum()), "rate": rate, "overall": overall})
    return sorted(out, key=lambda d: -d["rate"] * d["n"])


def describe_regions(regions: list[dict], names: Sequence[str], categories: Any = None, binary: Any = None) -> list[str]:
    out = []
    for d in regions:
        r: Rule = d["rule"]
        conds = " and ".join(c.text(names, categories, binary) for c in _merge(r.conditions)) or "everywhere"
        out.append(f"where {conds}: disagrees on {100 * d['rate']:.0f}% of {d['n']} samples "
                   f"(overall {100 * d['overall']:.1f}%)")
    return out
