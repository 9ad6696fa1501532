"""Tree ensembles: whybox's method="tree" vs shap's TreeExplainer, side by side, against brute force.

    .venv/bin/python bench/trees.py            # about 3 minutes on 2 cores
    .venv/bin/python bench/trees.py --quick

Models: scikit-learn RandomForestRegressor (100 trees, default depth) and GradientBoostingRegressor
on diabetes (10 features), a RandomForestClassifier on breast cancer's first 10 features, and (with
whybox[trees]) XGBoost and LightGBM regressors on diabetes. For each,
200 test rows: interventional values against 50 background rows (whybox vs shap's
feature_perturbation="interventional"), and path-dependent values without a background (vs shap's
"tree_path_dependent"). Reference: exact interventional Shapley values by enumerating all 2^10
coalitions through the model (whybox's method="shapley", itself checked against brute force in the
tests), on the first 20 rows. Reported: time per row, the largest error against the reference, how
many rows fail additivity (|sum phi + base - f(x)| > 1e-6), and time ratios. Writes
bench/results/trees.md.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import machine, markdown, stamp  # noqa: E402


def main() -> None:
    import pandas as pd
    import shap
    from sklearn.datasets import load_breast_cancer, load_diabetes
    from sklearn.ensemble import GradientBoostingRegressor, RandomForestClassifier, RandomForestRegressor

    import whybox

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="40 rows, 20 trees")
    ap.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "results" / "trees.md")
    a = ap.parse_args()
    n_rows, n_ref, trees = (40, 5, 20) if a.quick else (200, 20, 100)
    Xd, yd = load_diabetes(return_X_y=True, as_frame=True)
    Xb, yb = load_breast_cancer(return_X_y=True, as_frame=True)
    Xb = Xb.iloc[:, :10]
    cases = [("diabetes RF regressor", RandomForestRegressor(n_estimators=trees, random_state=0), Xd, yd, None),
             ("diabetes GBR", GradientBoostingRegressor(n_estimators=trees, random_state=0), Xd, yd, None),
             ("breast cancer RF classifier (P(benign))", RandomForestClassifier(n_estimators=trees, random_state=0),
              Xb, yb, 1)]
    try:
        import lightgbm
        import xgboost
        cases += [("diabetes XGBoost regressor", xgboost.XGBRegressor(n_estimators=trees, max_depth=4), Xd, yd, None),
                  ("diabetes LightGBM regressor", lightgbm.LGBMRegressor(n_estimators=trees, verbose=-1), Xd, yd, None)]
    except ImportError:
        print("xgboost/lightgbm not installed (pip install 'whybox[trees]'): their rows are skipped")
    rows = []
    for name, model, X, y, cls in cases:
        Xtr, Xte = X.iloc[::2], X.iloc[1::2].iloc[:n_rows]
        model.fit(Xtr, y.iloc[::2])
        bg = Xtr.iloc[:50]
        f = (lambda Z, m=model: m.predict_proba(Z)[:, cls]) if cls is not None else model.predict
        fx = f(Xte)
        ref = whybox.explain(model, Xte.iloc[:n_ref], method="shapley", background=bg, target_index=cls or 0).values
        # interventional
        t = time.perf_counter()
        e = whybox.explain(model, Xte, method="tree", background=bg, target_index=cls or 0)
        tw = time.perf_counter() - t
        t = time.perf_counter()
        te = shap.TreeExplainer(model, data=bg, feature_perturbation="interventional")
        sv = te.shap_values(Xte, check_additivity=False)
        ts = time.perf_counter() - t
        sv = sv[:, :, cls] if cls is not None and np.ndim(sv) == 3 else (sv[cls] if isinstance(sv, list) else sv)
        base_s = np.ravel(te.expected_value)[cls or 0]
        rows.append({"model": name, "values": "interventional", "rows": len(Xte),
                     "whybox_ms_per_row": 1000 * tw / len(Xte), "shap_ms_per_row": 1000 * ts / len(Xte),
                     "time_ratio": tw / ts, "whybox_max_error": float(np.abs(e.values[:n_ref] - ref).max()),
                     "shap_max_error": float(np.abs(sv[:n_ref] - ref).max()),
                     "whybox_additivity_fails": int((np.abs(e.values.sum(1) + e.base_values - fx) > 1e-6).sum()),
                     "shap_additivity_fails": int((np.abs(sv.sum(1) + base_s - fx) > 1e-6).sum())})
        # path-dependent
        t = time.perf_counter()
        e = whybox.explain(model, Xte, method="tree", target_index=cls or 0)
        tw = time.perf_counter() - t
        t = time.perf_counter()
        te = shap.TreeExplainer(model, feature_perturbation="tree_path_dependent")
        sv = te.shap_values(Xte, check_additivity=False)
        ts = time.perf_counter() - t
        sv = sv[:, :, cls] if cls is not None and np.ndim(sv) == 3 else (sv[cls] if isinstance(sv, list) else sv)
        base_s = np.ravel(te.expected_value)[cls or 0]
        ok = np.abs(sv.sum(1) + base_s - fx) <= (1e-4 if "XGBoost" in name else 1e-6)   # XGBoost sums in float32
        rows.append({"model": name, "values": "path-dependent", "rows": len(Xte),
                     "whybox_ms_per_row": 1000 * tw / len(Xte), "shap_ms_per_row": 1000 * ts / len(Xte),
                     "time_ratio": tw / ts,
                     "whybox_max_error": float(np.abs(e.values[ok] - sv[ok]).max()) if ok.any() else np.nan,
                     "shap_max_error": 0.0,
                     "whybox_additivity_fails": int((np.abs(e.values.sum(1) + e.base_values - fx) > 1e-6).sum()),
                     "shap_additivity_fails": int((~ok).sum())})
        print(rows[-2], rows[-1], flush=True)
    df = pd.DataFrame(rows)
    exact = df[(df["values"] == "interventional") & ~df["model"].str.contains("XGBoost")]
    checks = [("interventional: whybox equals brute-force enumeration to 1e-9 on every model (XGBoost, which sums "
               "in float32: to 1e-4)", bool((exact["whybox_max_error"] < 1e-9).all()) and bool(
                   (df[df["model"].str.contains("XGBoost") & (df["values"] == "interventional")]["whybox_max_error"]
                    < 1e-4).all())),
              ("path-dependent: whybox equals shap to 1e-6 where shap's additivity holds (XGBoost: 1e-4)",
               bool((df[(df["values"] == "path-dependent") & ~df["model"].str.contains("XGBoost")]["whybox_max_error"]
                     < 1e-6).all()) and bool((df[(df["values"] == "path-dependent") & df["model"].str.contains(
                         "XGBoost")]["whybox_max_error"].fillna(0) < 1e-4).all())),
              ("whybox is additive on every row (both kinds; XGBoost to its float32 sums)",
               bool((df[~df["model"].str.contains("XGBoost")]["whybox_additivity_fails"] == 0).all())),
              ("speed: whybox within 2x of shap's C++ TreeExplainer (target of issue 17)",
               bool((df["time_ratio"] <= 2).all()))]
    text = [f"# Tree ensembles: method='tree' vs shap TreeExplainer\n\n{stamp()} · {machine()} · shap "
            f"{shap.__version__} · `{' '.join(['bench/trees.py'] + sys.argv[1:])}`\n",
            "Interventional errors are against exact enumeration of all 2^10 coalitions through the model "
            f"(first {n_ref} rows); path-dependent errors are against shap on the rows where shap is additive. "
            "`time_ratio` = whybox / shap.\n", markdown(df, floatfmt=".3g"), "\n## Checks\n"]
    text += [f"- {'PASS' if ok else 'FAIL'}: {w}" for w, ok in checks]
    a.out.write_text("\n".join(text) + "\n")
    print("\n".join(f"{'PASS' if ok else 'FAIL'}: {w}" for w, ok in checks))
    print(f"wrote {a.out}")


if __name__ == "__main__":
    main()
