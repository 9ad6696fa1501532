"""The counterfactual fairness test: change only the protected attribute (and, optionally, its
proxies) of each row, ask the model again, and count whose decision changes.

Flipping a proxy means giving it the value the row would plausibly have in the other group:
* a numeric proxy (0/1 codes included) is mapped by quantiles (the row keeps its rank: the q-th
  quantile of its own group, ties at their mid-rank, becomes the q-th quantile of the other group, an
  observed value; the one-dimensional optimal transport map, as FlipTest (Black, Yeom & Fredrikson
  2020) uses);
* a categorical proxy keeps its value when the other group has it too (at least 1% of that group);
  a value the other group (almost) never has ("husband" for women) becomes the value the other group
  has most in excess over this one ("wife").

The change in the favourable class's score between the row and its flipped twin is attributed to
the flipped features by exact Shapley values (every subset of them flipped: 2^k queries per row and
target group, k <= 8), so the attribution adds up to the change. Queries: one probe row, each row once
as it is, and once per non-empty subset of the flipped features and other group.
"""
from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np
import pandas as pd

from whybox.core.validation import as_python
from whybox.errors import InputError
from whybox.fairness.groups import Scorer, check_attribute, groups_of

MIN_SHARE = 0.01        # a category the other group has less often than this is "never" theirs
MAX_FLIPPED = 8


def flipped_values(X: pd.DataFrame, column: str, gidx: np.ndarray, src: int, dst: int,
                   reference: pd.DataFrame | None = None, ref_gidx: np.ndarray | None = None) -> np.ndarray:
    """The values ``column`` takes for the rows of group ``src`` when they move to group ``dst``
    (quantile map for numbers, the excess rule for categories), estimated on ``reference``."""
    ref = X if reference is None else reference
    rg = gidx if ref_gidx is None else ref_gidx
    a, b = ref[column][rg == src].dropna(), ref[column][rg == dst].dropna()
    rows = X[column][gidx == src]
    if len(a) == 0 or len(b) == 0:
        raise InputError(f"cannot map {column!r} between groups: one of them has no values")
    if pd.api.types.is_numeric_dtype(ref[column]):         # numbers (0/1 codes too) keep their rank
        av = np.sort(a.to_numpy(float))
        lo = np.searchsorted(av, rows.to_numpy(float), side="left")
        hi = np.searchsorted(av, rows.to_numpy(float), side="right")
        q = np.clip((lo + hi) / (2 * len(av)), 1e-12, 1 - 1e-12)            # mid-rank in its own group
        return np.quantile(b.to_numpy(float), q, method="inverted_cdf")
    pa = a.astype(str).value_counts(normalize=True)
    pb = b.astype(str).value_counts(normalize=True)
    excess = pb.sub(pa, fill_value=0).sort_values(ascending=False, kind="stable")
    target = excess.index[0]
    keep = {v for v, p in pb.items() if p >= MIN_SHARE}
    raw = {str(v): v for v in b.unique()}
    return np.array([v if str(v) in keep else raw.get(target, target) for v in rows], dtype=object)


def _attr_value(X: pd.DataFrame, attribute: str, label: str) -> Any:
    for v in X[attribute].dropna().unique():
        if str(v) == label:
            return v
    raise InputError(f"no row has {attribute} = {label!r}")


@dataclass
class FlipTest:
    """Rows whose decision changes when only ``attribute`` (and ``proxies``) are different."""

    attribute: str
    proxies: list[str]
    positive: str | None
    rows: pd.DataFrame            # one line per (row, other group): before, after, changed, attribution
    by_group: pd.DataFrame        # per group: n, changed, share, gained, lost
    n_queries: int
    is_classifier: bool = True
    words: list[str] = field(default_factory=list)

    @property
    def changed_rows(self) -> np.ndarray:
        """Indices (positions in X) of the rows whose decision changes for at least one other group."""
        r = self.rows
        return np.unique(r.loc[r["changed"], "row"].to_numpy(int))

    def text(self) -> str:
        return " ".join(self.words)

    def to_dict(self) -> dict[str, Any]:
        changed = self.rows[self.rows["changed"]]
        return {"attribute": self.attribute, "proxies": self.proxies, "positive": self.positive,
                "classifier": self.is_classifier, "n_queries": self.n_queries, "text": self.text(),
                "sentences": self.words, "by_group": self.by_group.to_dict(orient="records"),
                "n_changed": int(len(self.changed_rows)),
                "changed": _records(changed.head(200))}


def _records(df: pd.DataFrame) -> list[dict[str, Any]]:
    return [{k: as_python(v) for k, v in rec.items()} for rec in df.to_dict(orient="records")]


def flip_test(model: Any, X: pd.DataFrame, attribute: str, *, proxies: Sequence[str] = (), positive: Any = None,
              reference: pd.DataFrame | None = None, class_names: list[str] | None = None,
              tolerance: float = 1e-9) -> FlipTest:
    """The counterfactual fairness test of ``model`` on the rows ``X``.

    attribute : the protected column (at most 12 distinct values; each row is moved to every other value).
    proxies : columns moved with it (see the module docstring for how), e.g. from :func:`find_proxies`.
    positive : the favourable class (default: the model's last class). For a regressor, "changed"
        means the prediction moves by more than ``tolerance`` times the spread of its predictions.
    reference : rows the proxy maps are estimated on (default: ``X``).
    """
    attribute = check_attribute(X, attribute)
    if isinstance(proxies, str) or not isinstance(proxies, (list, tuple)):
        raise InputError(f"proxies must be a list of column names, got {proxies!r}")
    proxies = [check_attribute(X, p, "proxy") for p in proxies]
    if attribute in proxies or len(set(proxies)) != len(proxies):
        raise InputError("proxies must be distinct columns other than the attribute")
    if len(proxies) + 1 > MAX_FLIPPED:
        raise InputError(f"at most {MAX_FLIPPED - 1} proxies, got {len(proxies)}")
    if not (isinstance(tolerance, (int, float)) and math.isfinite(tolerance) and tolerance >= 0):
        raise InputError(f"tolerance must be a finite number >= 0, got {tolerance!r}")
    X = X.reset_index(drop=True)
    vals = X[attribute].dropna().unique()
    if len(vals) > 12 or len(vals) < 2:
        raise InputError(f"the flip test needs an attribute with 2 to 12 values; {attribute!r} has {len(vals)}")
    labels, gidx = groups_of(X[attribute])
    ref = X if reference is None else check_reference(reference, X)
    if reference is None:
        ref_g = gidx
    else:                   # the reference rows in X's groups (a value X does not have: left out)
        pos = {lab: i for i, lab in enumerate(labels)}
        ref_g = np.array([pos.get(str(v), -1) if pd.notna(v) else -1 for v in ref[attribute]], dtype=int)
    sc = Scorer(model, X, positive, class_names=class_names)
    before = sc(X)
    flipped = [attribute] + proxies
    k = len(flipped)
    subsets = [s for r in range(1, k + 1) for s in itertools.combinations(range(k), r)]   # () is the row itself
    weights = _shapley_weights(k)
    parts, frames = [], []
    for src, dst in itertools.permutations(range(len(labels)), 2):
        members = np.where(gidx == src)[0]
        if not len(members):
            continue
        twin = {attribute: [_attr_value(X, attribute, labels[dst])] * len(members)}
        for p in proxies:
            twin[p] = flipped_values(X, p, gidx, src, dst, ref, ref_g)
        for c in flipped:       # the column's own dtype where it is numeric (0/1 codes stay numbers)
            twin[c] = np.asarray(twin[c], dtype=X[c].dtype if pd.api.types.is_numeric_dtype(X[c]) else object)
        for s in subsets:
            Z = X.iloc[members].copy()
            for j in s:
                Z[flipped[j]] = twin[flipped[j]]
            frames.append(Z)
        parts.append((src, dst, members, twin))
    outs = sc(pd.concat(frames, ignore_index=True)) if frames else None
    spread = float(np.ptp(before.score)) if not sc.is_classifier else 0.0
    lines, pos = [], 0
    for src, dst, members, twin in parts:
        n = len(members)
        v = np.stack([before.score[members]] + [outs.score[pos + i * n: pos + (i + 1) * n]
                                                for i in range(len(subsets))])   # (1 + subsets, n)
        dec_full = outs.decided[pos + (len(subsets) - 1) * n: pos + len(subsets) * n] if sc.is_classifier else None
        pos += len(subsets) * n
        phi = np.zeros((k, n))
        index = {s: i for i, s in enumerate([()] + subsets)}
        for j in range(k):
            for s in [()] + subsets:
                if j in s:
                    continue
                w = weights[len(s)]
                phi[j] += w * (v[index[tuple(sorted(s + (j,)))]] - v[index[s]])
        after = v[-1]
        b = before.score[members]
        rec = {"row": members, "group": labels[src], "as_group": labels[dst], "score_before": b,
               "score_after": after}
        if sc.is_classifier:
            d0, d1 = before.decided[members], dec_full
            rec.update({"decision_before": d0, "decision_after": d1, "changed": d0 != d1,
                        "direction": np.where(d0 == d1, "", np.where(d1, "gains", "loses"))})
        else:
            rec.update({"changed": np.abs(after - b) > tolerance * max(spread, 1e-300)})
        for j, col in enumerate(flipped):
            rec[f"attribution:{col}"] = phi[j]
            if j:
                rec[f"{col} →"] = twin[col]
        lines.append(pd.DataFrame(rec))
    rows = pd.concat(lines, ignore_index=True)
    by = []
    for g, lab in enumerate(labels):
        sub = rows[rows["group"] == lab]
        n = int((gidx == g).sum())
        ch = sub.groupby("row")["changed"].any()
        r = {"group": lab, "n": n, "changed": int(ch.sum()), "share": float(ch.mean()) if n else 0.0}
        if sc.is_classifier:
            r["gained"] = int(sub[sub["direction"] == "gains"]["row"].nunique())
            r["lost"] = int(sub[sub["direction"] == "loses"]["row"].nunique())
        else:
            r["mean_change"] = float((sub["score_after"] - sub["score_before"]).mean()) if len(sub) else 0.0
        by.append(r)
    by_group = pd.DataFrame(by)
    ft = FlipTest(attribute, proxies, sc.positive, rows, by_group, sc.n_queries, sc.is_classifier)
    ft.words = _words(ft, labels)
    return ft


def check_reference(reference: Any, X: pd.DataFrame) -> pd.DataFrame:
    if not isinstance(reference, pd.DataFrame) or reference.empty:
        raise InputError("reference must be a non-empty DataFrame with the same columns as X")
    missing = [c for c in X.columns if c not in reference.columns]
    if missing:
        raise InputError(f"reference is missing column(s) {missing}")
    return reference.reset_index(drop=True)


def _shapley_weights(k: int) -> list[float]:
    return [math.factorial(s) * math.factorial(k - s - 1) / math.factorial(k) for s in range(k)]


def _pct(v: float) -> str:
    p = 100 * v
    return "no one" if v == 0 else (f"{p:.0f}%" if p >= 1 else f"{p:.1f}%")


def _words(ft: FlipTest, labels: list[str]) -> list[str]:
    what = f"only “{ft.attribute}”" if not ft.proxies else \
        f"“{ft.attribute}” and its stand-in{'s' if len(ft.proxies) > 1 else ''} " + ", ".join(f"“{p}”" for p in ft.proxies)
    out = []
    for r in ft.by_group.to_dict(orient="records"):
        others = [lab for lab in labels if lab != r["group"]]
        if ft.is_classifier:
            s = (f"For {_pct(r['share'])} of the group {r['group']} ({r['changed']} of {r['n']}) the decision would "
                 f"change if {what} were different ({'to ' + others[0] if len(others) == 1 else 'to any other value'})")
            parts = []
            if r["gained"]:
                parts.append(f"{r['gained']} would be given “{ft.positive}”")
            if r["lost"]:
                parts.append(f"{r['lost']} would lose it")
            s += (": " + " and ".join(parts) + ".") if parts else "."
        else:
            s = (f"For {_pct(r['share'])} of the group {r['group']} the predicted value would change if {what} were "
                 f"different (by {r['mean_change']:+.3g} on average).")
        out.append(s)
    if ft.proxies and len(ft.rows):
        cols = [c for c in ft.rows.columns if c.startswith("attribution:")]
        ch = ft.rows[ft.rows["changed"]]
        if len(ch):
            share = ch[cols].abs().mean()
            top = share.idxmax().split(":", 1)[1]
            out.append(f"Of the change in score for those people, “{top}” accounts for the largest part "
                       f"({100 * share.max() / share.sum():.0f}%).")
    return out
