"""The dashboard's fairness panels (FairLay-ML's lay view): group gaps of the decisions and of the
explanations (OpenXAI's fairness analysis of explanation quality by group), proxies, the
counterfactual flip test and remedies. The numbers come from :mod:`whybox.fairness`; this module
picks the rows, caches per setting and words the results."""
from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from whybox.errors import InputError
from whybox.fairness.groups import Decisions, check_attribute, group_rates, groups_of

__all__ = ["fairness_report", "flip_payload", "groups_of", "remedies_payload"]


def fairness_report(state: Any, attribute: str, *, n_explain: int = 30, k: int = 3) -> dict[str, Any]:
    """Group metrics of the model (classifier: selection rate, true-positive rate, accuracy and the
    demographic-parity and equal-opportunity differences; regressor: mean prediction) and of its
    explanations (faithfulness, the top features per group), the proxies of the attribute, and a
    plain-language summary of the largest gap."""
    check_attribute(state.X, attribute)
    return state.remember(("report", attribute, int(n_explain), int(k)),
                          lambda: _report(state, attribute, n_explain, k))


def _report(state: Any, attribute: str, n_explain: int, k: int) -> dict[str, Any]:
    from whybox.batch import concat
    from whybox.fairness.proxies import find_proxies, proxy_words
    from whybox.metrics import local_fidelity, pgi

    labels, gidx = groups_of(state.X[attribute])
    score = state.outputs[:, state.focus]
    decided = (state.classes == state.focus) if state.is_classifier else None
    yi = state.y_index()
    y_pos = None if yi is None else (yi == state.focus)
    y_val = None
    if not state.is_classifier and state.y is not None:
        try:
            y_val = np.asarray(state.y, float)
        except (TypeError, ValueError):
            y_val = None
    rows, gaps = group_rates(Decisions(score, decided, state.output_names[state.focus] if state.is_classifier else None),
                             gidx, labels, y_pos, y_val)
    if len(rows) < 2:
        raise InputError(f"{attribute!r} splits the data into fewer than two groups")
    rng = np.random.default_rng(state.seed)
    imps, parts = {}, []
    for r in rows:
        g = labels.index(r["group"])
        members = np.where(gidx == g)[0]
        pick = np.sort(rng.choice(members, size=min(n_explain, len(members)), replace=False))
        e = state.explain(state.X.iloc[pick])
        e.row_ids = pick
        parts.append(e)
        kk = min(k, e.values.shape[1])
        if state.numeric:       # OpenXAI's PGI needs numeric inputs (noise and flips)
            fa = pgi(state.model, state.X.iloc[pick], e, k=kk, background=state.background, n_perturb=30, seed=state.seed,
                     data=state.X)
        else:                   # categorical columns: fidelity where features are removed (background values)
            fa = local_fidelity(state.model, state.X.iloc[pick], e, background=state.background, metric="r2",
                                n_samples=100, seed=state.seed, data=state.X)
        r["faithfulness"] = float(np.mean(fa))
        imp = pd.Series(np.abs(e.values).mean(axis=0), index=e.feature_names)
        signed = pd.Series(e.values.mean(axis=0), index=e.feature_names)
        imps[r["group"]] = signed
        r["top_features"] = [{"feature": f, "mean_abs": float(imp[f]), "mean": float(signed[f])}
                             for f in imp.sort_values(ascending=False).index[:5]]
        r["explained_rows"] = int(len(pick))
    cls = state.output_names[state.focus]
    key = "selection_rate" if state.is_classifier else "mean_prediction"
    hi = max(rows, key=lambda r: r[key])
    lo = min(rows, key=lambda r: r[key])
    diff = imps[hi["group"]] - imps[lo["group"]]
    driver = diff.abs().sort_values(ascending=False).index[0]
    proxies = find_proxies(state.X, attribute, explanation=concat(parts), score=score)
    out: dict[str, Any] = {"attribute": attribute, "class": cls, "task": state.task, "groups": rows, **gaps,
                           "faithfulness_metric": "PGI (top-k)" if state.numeric else "local R² (features removed)",
                           "driver": {"feature": driver, "high_group_mean": float(imps[hi["group"]][driver]),
                                      "low_group_mean": float(imps[lo["group"]][driver])},
                           "proxies": proxies.astype(object).where(proxies.notna(), None).to_dict(orient="records"),
                           "proxy_words": proxy_words(proxies, attribute),
                           "can_refit": state.X_train is not None, "has_labels": y_pos is not None}
    out["summary"] = _summary(out, hi, lo, attribute, cls, state.is_classifier)
    return out


def _summary(out: dict, hi: dict, lo: dict, attribute: str, cls: Any, classifier: bool) -> str:
    pct = lambda v: f"{100 * v:.0f}%"  # noqa: E731
    if classifier:
        s = (f"By {attribute}, the model gives “{cls}” to {pct(hi['selection_rate'])} of the group {hi['group']} but "
             f"to {pct(lo['selection_rate'])} of the group {lo['group']}: a gap of "
             f"{100 * out['demographic_parity_difference']:.0f} percentage points.")
        if out.get("equal_opportunity_difference") is not None:
            s += (f" Among people who truly are “{cls}”, the share recognised differs by "
                  f"{100 * out['equal_opportunity_difference']:.0f} points between groups.")
    else:
        s = (f"By {attribute}, the model's predicted value averages {hi['mean_prediction']:.4g} for the group "
             f"{hi['group']} and {lo['mean_prediction']:.4g} for the group {lo['group']}: a difference of "
             f"{out['mean_prediction_difference']:.4g}.")
    d = out["driver"]
    more = "pushes towards" if d["high_group_mean"] > d["low_group_mean"] else "pushes away from"
    target = f"“{cls}”" if classifier else "a higher value"
    s += (f" The feature whose effect differs most between these two groups is {d['feature']}: on average it "
          f"{more} {target} more for the group {hi['group']} ({d['high_group_mean']:+.3g}) than for the group "
          f"{lo['group']} ({d['low_group_mean']:+.3g}).")
    return s


def _proxies_of(state: Any, attribute: str, proxies: Any) -> list[str]:
    if proxies == "auto":
        rep = fairness_report(state, attribute)
        return [p["feature"] for p in rep["proxies"] if p["proxy"]]
    if not isinstance(proxies, (list, tuple)):
        raise InputError(f"proxies must be a list of columns or 'auto', got {proxies!r}")
    for p in proxies:
        check_attribute(state.X, p)
    return list(proxies)


def flip_payload(state: Any, attribute: str, proxies: Any = ()) -> dict[str, Any]:
    """The counterfactual fairness test on every loaded row (proxies: a list, or "auto" = those found)."""
    from whybox.fairness.flip import flip_test

    check_attribute(state.X, attribute)
    px = _proxies_of(state, attribute, proxies)

    def run() -> dict[str, Any]:
        ft = flip_test(state.model, state.X, attribute, proxies=px, reference=state.X_train,
                       **_classes(state))
        d = ft.to_dict()
        d["changed"] = d["changed"][:50]
        return d
    return state.remember(("flip", attribute, tuple(px)), run)


MAX_FITS, TIME_LIMIT = 30, 120.0      # the dashboard's search: a person is waiting


def remedies_payload(state: Any, attribute: str, constraint: str = "demographic_parity", *,
                     compute: bool = True) -> dict[str, Any] | None:
    """Every remedy that applies, evaluated on the loaded rows (cached per attribute and constraint;
    ``compute=False``: only a cached result, else None)."""
    from whybox.fairness.remedy import remedies

    check_attribute(state.X, attribute)
    if not state.is_classifier:
        raise InputError("remedies for decisions need a classifier; this model predicts a number")
    if state.y is None:
        raise InputError("remedies need the true labels of the rows (load the data with its label column)")
    if not compute:
        return state.peek(("remedies", attribute, constraint))
    px = _proxies_of(state, attribute, "auto")

    def run() -> dict[str, Any]:
        rep = remedies(state.model, state.X, state.y, attribute, X_train=state.X_train, y_train=state.y_train,
                       train=state.train, proxies=px, constraint=constraint, seed=state.seed,
                       max_fits=MAX_FITS, time_limit=TIME_LIMIT, **_classes(state))
        d = rep.to_dict()
        d["_report"] = rep
        return d
    return state.remember(("remedies", attribute, constraint), run)


def _classes(state: Any) -> dict[str, Any]:
    if not state.is_classifier:
        return {}
    return {"class_names": list(state.output_names), "positive": state.output_names[state.focus]}


def public(d: dict[str, Any]) -> dict[str, Any]:
    """A cached payload without its private objects (for JSON)."""
    return {k: v for k, v in d.items() if not k.startswith("_")}
