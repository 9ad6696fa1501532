"""Fairness remedies and their price, on the synthetic census demo and on real data (OpenXAI adult).

    .venv/bin/python bench/fairness.py            # about 5 minutes on 2 cores
    .venv/bin/python bench/fairness.py --quick    # a smoke run

For each data set and model: the group gap (demographic parity, equal opportunity) and accuracy of
the model, the flip test (sex only, and sex with the proxies found), the proxies, and every remedy
of ``whybox.fairness.remedies`` on the test rows (refits on the training rows), as mean +- std over
seeds (the seeds move the randomised remedies, the search and, for census, the data). Side by side,
Fairlearn used directly on the same model and rows (ThresholdOptimizer, ExponentiatedGradient): the
numbers must agree with whybox's (same algorithm, same seed) and the time ratio shows whybox's
overhead. Writes bench/results/fairness.md.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import machine, markdown, stamp  # noqa: E402

import whybox  # noqa: E402
from whybox.fairness import find_proxies, flip_test, remedies  # noqa: E402
from whybox.fairness.groups import Decisions, Scorer, group_rates, groups_of  # noqa: E402


def adult(kind: str):
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from whybox.datasets import shared_data_dir

    root = shared_data_dir()
    if root is None:
        return None
    folder = root / "openxai" / "data" / "Adult"
    tr, te = pd.read_csv(folder / "adult-train.csv"), pd.read_csv(folder / "adult-test.csv")
    ytr, yte = tr.pop("income").to_numpy(), te.pop("income").to_numpy()
    model = (make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000)) if kind == "lr"
             else HistGradientBoostingClassifier(random_state=0))
    return model.fit(tr, ytr), tr, ytr, te, yte


def census_case(seed: int):
    from sklearn.model_selection import train_test_split

    from whybox.datasets import census, census_model

    d = census(4000, seed=seed)
    Xtr, Xte, ytr, yte = train_test_split(d.X, d.y, test_size=0.25, random_state=seed, stratify=d.y)
    return census_model().fit(Xtr, ytr), Xtr, ytr, Xte, yte


def fairlearn_direct(model, Xtr, ytr, Xte, yte, attr, positive, seed, constraint):
    """Fairlearn on its own, the way its user guide does it, on the same model and rows."""
    from fairlearn.postprocessing import ThresholdOptimizer

    out = {}
    pos = lambda y: (np.asarray(y).astype(str) == str(positive)).astype(int)  # noqa: E731
    t0 = time.perf_counter()
    to = ThresholdOptimizer(estimator=model, constraints="demographic_parity" if constraint == "demographic_parity"
                            else "true_positive_rate_parity", prefit=True, predict_method="predict_proba")
    to.fit(Xtr, pos(ytr), sensitive_features=Xtr[attr].astype(str).to_numpy())
    dec = np.asarray(to.predict(Xte, sensitive_features=Xte[attr].astype(str).to_numpy(), random_state=seed)).astype(bool)
    out["thresholds"] = (dec, time.perf_counter() - t0)
    return out


def run_case(name, model, Xtr, ytr, Xte, yte, attr, seed, max_fits, n_explain):
    rows = []
    sc = Scorer(model, Xte)
    labels, g = groups_of(Xte[attr])
    y_pos = sc.y_positive(yte)
    t0 = time.perf_counter()
    e = whybox.explain(model, Xte.iloc[:n_explain], method="kernelshap", n_samples=128, seed=seed,
                       background=whybox.sample(Xtr, 10, seed=seed), target_index=sc.pos, data=Xtr)
    prox = find_proxies(Xte, attr, explanation=e)
    t_prox = time.perf_counter() - t0
    found = list(prox.loc[prox["proxy"], "feature"])
    t0 = time.perf_counter()
    ft = flip_test(model, Xte, attr)
    t_flip = time.perf_counter() - t0
    ftp = flip_test(model, Xte, attr, proxies=found, reference=Xtr) if found else ft
    t0 = time.perf_counter()
    rep = remedies(model, Xte, yte, attr, X_train=Xtr, y_train=ytr, proxies=found, seed=seed, max_fits=max_fits,
                   time_limit=300)
    t_rem = time.perf_counter() - t0
    for r in rep.remedies:
        rows.append({"case": name, "seed": seed, "remedy": r.name, "dp_gap": r.gaps["demographic_parity_difference"],
                     "eo_gap": r.gaps["equal_opportunity_difference"], "accuracy": r.gaps["accuracy"],
                     "decisions_changed": r.n_changed, "uses_attribute": r.uses_attribute})
    direct = fairlearn_direct(model, Xtr, ytr, Xte, yte, attr, sc.positive, seed, "demographic_parity")
    dec, t_direct = direct["thresholds"]
    _, gaps = group_rates(Decisions(np.zeros(len(dec)), dec, sc.positive), g, labels, y_pos)
    ours = rep.remedies[[r.name for r in rep.remedies].index("thresholds")]
    t0 = time.perf_counter()
    remedies(model, Xte, yte, attr, X_train=Xtr, y_train=ytr, which=["thresholds"], seed=seed)
    t_ours = time.perf_counter() - t0
    facts = {"case": name, "seed": seed, "proxies": ", ".join(found) or "none",
             "top_association": float(prox["association"].max()),
             "flip_share": float(ft.changed_rows.size / len(Xte)),
             "flip_share_with_proxies": float(ftp.changed_rows.size / len(Xte)),
             "fairlearn_same_decisions": bool((dec == ours.decided).all()),
             "fairlearn_dp_gap": gaps["demographic_parity_difference"],
             "whybox_thresholds_s": t_ours, "fairlearn_thresholds_s": t_direct,
             "remedies_s": t_rem, "flip_s": t_flip, "proxies_s": t_prox, "fits": rep.n_fits,
             "skipped": "; ".join(f"{k}: {v}" for k, v in rep.skipped.items())}
    return rows, facts


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="one seed, small search, census only")
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "results" / "fairness.md")
    a = ap.parse_args()
    seeds = range(1 if a.quick else a.seeds)
    max_fits = 8 if a.quick else 50
    all_rows, facts = [], []
    for s in seeds:
        print(f"census seed {s}", flush=True)
        r, f = run_case("census (synthetic) LR", *census_case(s), "sex", s, max_fits, 200)
        all_rows += r
        facts.append(f)
    if not a.quick:
        for kind in ("lr", "hgb"):
            case = adult(kind)
            if case is None:
                print("shared data absent: adult skipped")
                break
            for s in seeds:
                print(f"adult {kind} seed {s}", flush=True)
                r, f = run_case(f"OpenXAI adult (real) {kind.upper()}", *case, "sex_Male", s, max_fits, 200)
                all_rows += r
                facts.append(f)
    df = pd.DataFrame(all_rows)
    agg = df.groupby(["case", "remedy"], sort=False).agg(
        dp_gap=("dp_gap", "mean"), dp_gap_sd=("dp_gap", "std"), eo_gap=("eo_gap", "mean"),
        accuracy=("accuracy", "mean"), accuracy_sd=("accuracy", "std"),
        decisions_changed=("decisions_changed", "mean"), uses_attribute=("uses_attribute", "mean")).reset_index()
    fa = pd.DataFrame(facts)
    fa["fairlearn_time_ratio"] = fa["whybox_thresholds_s"] / fa["fairlearn_thresholds_s"]
    closed = []
    for case, sub in agg.groupby("case", sort=False):
        o = sub[sub.remedy == "original"].iloc[0]
        for r in sub.itertuples():
            closed.append({"case": case, "remedy": r.remedy, "gap_closed": 1 - r.dp_gap / o.dp_gap if o.dp_gap else np.nan,
                           "accuracy_cost_points": 100 * (o.accuracy - r.accuracy)})
    cl = pd.DataFrame(closed)
    print(markdown(agg))
    print(markdown(fa.drop(columns=["skipped"])))
    checks = []
    for case, sub in cl.groupby("case", sort=False):
        get = lambda k: sub.loc[sub.remedy == k, "gap_closed"]  # noqa: E731
        if "synthetic" in case and len(get("without_proxies")):      # the planted proxy: the target
            checks.append((f"{case}: dropping sex and its planted proxy closes most of the gap (> 50%)",
                           float(get("without_proxies").iloc[0]) > 0.5))
        if len(get("thresholds")):
            checks.append((f"{case}: group thresholds close most of the gap (> 70%)", float(get("thresholds").iloc[0]) > 0.7))
        if len(get("reduction")):
            checks.append((f"{case}: the constrained refit closes most of the gap (> 70%) without using sex to decide",
                           float(get("reduction").iloc[0]) > 0.7))
    checks.append(("whybox's thresholds give Fairlearn's own decisions (same seed) on every run",
                   bool(fa["fairlearn_same_decisions"].all())))
    lines = [f"# Fairness remedies and their price\n\n{stamp()} · {machine()} · "
             f"`{' '.join(['bench/fairness.py'] + sys.argv[1:])}` · seeds {list(seeds)}\n",
             "Each remedy is evaluated on the test rows; refits use the training rows (census: 3,000 train / 1,000 "
             "test, a new synthetic sample per seed; adult: OpenXAI's train (36,177) / test (9,045) split, protected "
             "attribute `sex_Male`). Gaps are largest minus smallest group rate (demographic parity: selection "
             "rate; equal opportunity: true-positive rate); `uses_attribute` is the share of seeds in which "
             "flipping the attribute changes at least one decision. Constraint: demographic parity.\n",
             "## Remedies (mean over seeds; _sd = standard deviation)\n", markdown(agg),
             "\n## Gap closed and accuracy cost, relative to the model as it is\n", markdown(cl),
             "\n## Flip test, proxies, and Fairlearn side by side\n",
             "`flip_share`: share of test rows whose decision changes when only the attribute changes; "
             "`fairlearn_same_decisions`: Fairlearn's ThresholdOptimizer used directly on the same model, rows and "
             "seed gives the same decisions as whybox's threshold remedy; `fairlearn_time_ratio` = whybox / Fairlearn "
             "time for that remedy (whybox adds its counted, batched model queries).\n",
             markdown(fa.drop(columns=["skipped"]), floatfmt=".3f"),
             "\nSkipped remedies: " + ("; ".join(sorted(set(x for x in fa["skipped"] if x))) or "none") + "\n",
             "\n## Checks\n"] + [f"- {'PASS' if ok else 'FAIL'}: {what}" for what, ok in checks]
    a.out.write_text("\n".join(lines) + "\n")
    print("\n".join(f"{'PASS' if ok else 'FAIL'}: {w}" for w, ok in checks))
    print(f"wrote {a.out}")


if __name__ == "__main__":
    main()
