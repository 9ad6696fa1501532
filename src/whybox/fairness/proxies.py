"""Proxies of a protected attribute: features that predict it, and that carry the group gap.

* **association**: the uncertainty coefficient U(A | F) = I(A; F) / H(A), the share of the
  attribute's entropy a feature reveals (0: nothing, 1: the feature determines it); numbers with
  more than 12 values are cut into 10 quantile bins first;
* **gap share** (with attributions of the rows): how much of the difference in the favourable
  class's mean score between the most and the least favoured group runs through the feature,
  (mean attribution in the favoured group - in the other) / (the same summed over features); with
  additive attributions (Shapley values) the sum is the score gap itself.

A feature is flagged as a proxy when its association is at least ``min_association`` and (when
attributions are given) its gap share is at least ``min_gap_share``.
"""
from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from whybox.errors import InputError
from whybox.fairness.groups import check_attribute, groups_of


def _codes(col: pd.Series) -> np.ndarray:
    if pd.api.types.is_numeric_dtype(col) and col.nunique() > 12:
        ranks = col.rank(method="average", pct=True).to_numpy()
        return np.where(np.isnan(ranks), -1, np.minimum((ranks * 10).astype(int), 9))
    return pd.factorize(col.astype(str).where(col.notna(), None))[0]


def _entropy(p: np.ndarray) -> float:
    p = p[p > 0]
    return float(-(p * np.log(p)).sum())


def uncertainty_coefficient(a: np.ndarray, f: np.ndarray) -> float:
    """U(A | F) = (H(A) - H(A | F)) / H(A) for integer codes (rows where either is < 0 are left out)."""
    keep = (a >= 0) & (f >= 0)
    a, f = a[keep], f[keep]
    if len(a) == 0:
        return 0.0
    ha = _entropy(np.bincount(a) / len(a))
    if ha == 0:
        return 0.0
    joint = pd.crosstab(f, a).to_numpy(float)
    pf = joint.sum(axis=1) / joint.sum()
    h_cond = sum(pf[i] * _entropy(joint[i] / joint[i].sum()) for i in range(len(pf)))
    return float(max(0.0, min(1.0, (ha - h_cond) / ha)))


def find_proxies(X: pd.DataFrame, attribute: str, *, explanation: Any = None, score: Any = None,
                 min_association: float = 0.1, min_gap_share: float = 0.1) -> pd.DataFrame:
    """One line per feature other than ``attribute``: association, gap share (when ``explanation``,
    an Explanation of rows of ``X`` — its ``row_ids`` say which — is given), proxy flag; sorted with
    proxies first, then by association.

    score : the favourable class's score per row of ``X`` (ranks the groups; default: the
        explanation's predictions)."""
    attribute = check_attribute(X, attribute)
    for name, v in (("min_association", min_association), ("min_gap_share", min_gap_share)):
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not 0 <= v <= 1:
            raise InputError(f"{name} must be a number in [0, 1], got {v!r}")
    X = X.reset_index(drop=True)
    labels, gidx = groups_of(X[attribute])
    a = gidx
    feats = [c for c in X.columns if c != attribute]
    assoc = {c: uncertainty_coefficient(a, _codes(X[c])) for c in feats}
    share = {c: np.nan for c in feats}
    if explanation is not None:
        e = explanation
        rows = np.arange(len(e)) if getattr(e, "row_ids", None) is None else np.asarray(e.row_ids, int)
        if len(rows) != e.values.shape[0] or (rows < 0).any() or (rows >= len(X)).any():
            raise InputError("the explanation's rows (row_ids) must be rows of X")
        g = gidx[rows]
        s = np.asarray(e.predictions if score is None else np.asarray(score)[rows], float)
        means = [(k, s[g == k].mean()) for k in range(len(labels)) if (g == k).any()]
        if len(means) < 2:
            raise InputError(f"the explained rows cover fewer than two groups of {attribute!r}")
        hi = max(means, key=lambda t: t[1])[0]
        lo = min(means, key=lambda t: t[1])[0]
        vals = np.asarray(e.values, float)
        if vals.ndim == 3:
            raise InputError("explain one output (target=...) for proxy detection")
        diff = pd.Series(vals[g == hi].mean(axis=0) - vals[g == lo].mean(axis=0), index=e.feature_names)
        total = float(diff.sum())
        for c in feats:
            if c in diff.index:
                share[c] = float(diff[c] / total) if total != 0 else 0.0
    out = pd.DataFrame({"feature": feats, "association": [assoc[c] for c in feats],
                        "gap_share": [share[c] for c in feats]})
    ok = out["association"] >= min_association
    if explanation is not None:
        ok &= out["gap_share"].fillna(0) >= min_gap_share
    out["proxy"] = ok
    return out.sort_values(["proxy", "association"], ascending=[False, False], kind="stable").reset_index(drop=True)


def proxy_words(table: pd.DataFrame, attribute: str) -> str:
    """The proxy table in a sentence for a lay reader."""
    found = table[table["proxy"]]
    if not len(found):
        top = table.iloc[0] if len(table) else None
        return (f"No feature stands in for “{attribute}”" + (f": the closest, “{top['feature']}”, reveals only "
                f"{100 * top['association']:.0f}% of it." if top is not None else "."))
    parts = []
    for r in found.itertuples():
        s = f"“{r.feature}” reveals {100 * r.association:.0f}% of “{attribute}”"
        if not np.isnan(r.gap_share):
            s += f" and carries {100 * r.gap_share:.0f}% of the gap between the groups"
        parts.append(s)
    return ("Stand-ins (proxies) for “" + attribute + "”: " + "; ".join(parts) + ". Removing only “" + attribute
            + "” leaves them free to carry its effect.")
