"""Group fairness of a model and of its explanations (FairLay-ML's lay view; OpenXAI's fairness
analysis of explanation quality by group)."""
from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from whybox.errors import InputError


def groups_of(col: pd.Series, max_levels: int = 12) -> tuple[list[str], np.ndarray]:
    """Group labels and the group index of every row: each value for a column with few values,
    else below/above the median."""
    vals = col.dropna().unique()
    if len(vals) <= max_levels:
        labels = sorted(map(str, vals))
        idx = np.array([labels.index(str(v)) if pd.notna(v) else -1 for v in col])
        return labels, idx
    if not pd.api.types.is_numeric_dtype(col):
        raise InputError(f"{col.name!r} has {len(vals)} distinct non-numeric values: pick a column with at most {max_levels}")
    med = float(col.median())
    return [f"≤ {med:.4g}", f"> {med:.4g}"], np.where(col <= med, 0, 1)


def fairness_report(state: Any, attribute: str, *, n_explain: int = 30, k: int = 3) -> dict[str, Any]:
    """Group metrics of the model (selection rate, true-positive rate, accuracy; demographic parity
    and equal-opportunity differences) and of its explanations (faithfulness (PGI, top-k) and the top
    features per group), with a plain-language summary of the largest gap."""
    from whybox.metrics import local_fidelity, pgi

    if attribute not in state.X.columns:
        raise InputError(f"unknown attribute {attribute!r}; choose one of {list(state.X.columns)}")
    labels, gidx = groups_of(state.X[attribute])
    pos = state.focus
    sel = state.classes == pos
    yi = state.y_index()
    rng = np.random.default_rng(state.seed)
    rows = []
    imps = {}
    for g, lab in enumerate(labels):
        members = np.where(gidx == g)[0]
        if len(members) == 0:
            continue
        r: dict[str, Any] = {"group": lab, "n": int(len(members)), "selection_rate": float(sel[members].mean())}
        if yi is not None:
            r["accuracy"] = float((state.classes[members] == yi[members]).mean())
            actual = members[yi[members] == pos]
            r["true_positive_rate"] = float(sel[actual].mean()) if len(actual) else None
        pick = np.sort(rng.choice(members, size=min(n_explain, len(members)), replace=False))
        e = state.explain(state.X.iloc[pick])
        kk = min(k, e.values.shape[1])
        if state.numeric:       # OpenXAI's PGI needs numeric inputs (noise and flips)
            fa = pgi(state.model, state.X.iloc[pick], e, k=kk, background=state.background, n_perturb=30, seed=state.seed)
        else:                   # categorical columns: fidelity where features are removed (background values)
            fa = local_fidelity(state.model, state.X.iloc[pick], e, background=state.background, metric="r2",
                                n_samples=100, seed=state.seed)
        r["faithfulness"] = float(np.mean(fa))
        imp = pd.Series(np.abs(e.values).mean(axis=0), index=e.feature_names)
        signed = pd.Series(e.values.mean(axis=0), index=e.feature_names)
        imps[lab] = signed
        r["top_features"] = [{"feature": f, "mean_abs": float(imp[f]), "mean": float(signed[f])}
                             for f in imp.sort_values(ascending=False).index[:5]]
        r["explained_rows"] = int(len(pick))
        rows.append(r)
    if len(rows) < 2:
        raise InputError(f"{attribute!r} splits the data into fewer than two groups")
    sr = [r["selection_rate"] for r in rows]
    out: dict[str, Any] = {"attribute": attribute, "class": state.output_names[pos], "groups": rows,
                           "faithfulness_metric": "PGI (top-k)" if state.numeric else "local R² (features removed)",
                           "demographic_parity_difference": float(max(sr) - min(sr))}
    tprs = [r.get("true_positive_rate") for r in rows if r.get("true_positive_rate") is not None]
    out["equal_opportunity_difference"] = float(max(tprs) - min(tprs)) if len(tprs) >= 2 else None
    hi = max(rows, key=lambda r: r["selection_rate"])
    lo = min(rows, key=lambda r: r["selection_rate"])
    diff = (imps[hi["group"]] - imps[lo["group"]])
    driver = diff.abs().sort_values(ascending=False).index[0]
    out["driver"] = {"feature": driver, "high_group_mean": float(imps[hi["group"]][driver]),
                     "low_group_mean": float(imps[lo["group"]][driver])}
    out["summary"] = _summary(out, hi, lo, attribute, state.output_names[pos])
    return out


def _summary(out: dict, hi: dict, lo: dict, attribute: str, cls: Any) -> str:
    pct = lambda v: f"{100 * v:.0f}%"  # noqa: E731
    s = (f"By {attribute}, the model gives “{cls}” to {pct(hi['selection_rate'])} of the group {hi['group']} but "
         f"to {pct(lo['selection_rate'])} of the group {lo['group']}: a gap of "
         f"{100 * out['demographic_parity_difference']:.0f} percentage points.")
    if out.get("equal_opportunity_difference") is not None:
        s += (f" Among people who truly are “{cls}”, the share recognised differs by "
              f"{100 * out['equal_opportunity_difference']:.0f} points between groups.")
    d = out["driver"]
    more = "pushes towards" if d["high_group_mean"] > d["low_group_mean"] else "pushes away from"
    s += (f" The feature whose effect differs most between these two groups is {d['feature']}: on average it "
          f"{more} “{cls}” more for the group {hi['group']} ({d['high_group_mean']:+.3g}) than for the group "
          f"{lo['group']} ({d['low_group_mean']:+.3g}).")
    return s
