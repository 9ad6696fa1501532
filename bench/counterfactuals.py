"""Counterfactuals: whybox vs DiCE (dice-ml) side by side in one run.

    .venv/bin/python bench/counterfactuals.py            # 50 test points per dataset, writes bench/results/counterfactuals.md
    .venv/bin/python bench/counterfactuals.py --quick    # 5 points
    .venv/bin/python bench/counterfactuals.py --jobs 2   # adult and german in two processes

DiCE kdtree and genetic take 30 s to 4 min per point here, so they run on the first --kdtree-n /
--genetic-n points of each dataset only (one number, or one per dataset).

OpenXAI adult and german (../shared/data/openxai; features min-max scaled as OpenXAI's models expect)
with OpenXAI's pretrained ANN (softmax over 2 classes), wrapped as a scikit-learn-style classifier for
both libraries. For each of the first N test rows: k = 4 counterfactuals of the opposite class; the
features "sex"/"race" (adult) and "personal-status-sex"/"foreign-worker" (german) may not change.
Binary columns are categorical for DiCE; german's one-hot blocks are groups for whybox (DiCE has no
notion of them: its counterfactuals may switch on two categories of one block, counted below).

Every metric is computed by the same code on both outputs (whybox.counterfactuals.metrics):
validity (re-queried), proximity (MAD-scaled L1 over numeric features + 1 per changed categorical
feature/group), sparsity (features changed), diversity (mean pairwise distance), plausibility (distance
to the nearest training row / typical nearest-neighbour distance), one-hot validity, model rows, time.
"""
from __future__ import annotations

import argparse
import sys
import time
import warnings
from importlib.metadata import version
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import machine, markdown, stamp  # noqa: E402

from whybox.counterfactuals import CounterfactualExplainer  # noqa: E402
from whybox.counterfactuals import tabular as T  # noqa: E402
from whybox.datasets import load_openxai, openxai_model  # noqa: E402

IMMUTABLE = {"adult": ["sex_Male", "race_White"], "german": ["personal-status-sex", "foreign-worker"]}


class Classifier:
    """OpenXAI's torch ANN as a scikit-learn-style classifier, counting rows."""

    def __init__(self, net, columns):
        import torch
        self.torch, self.net, self.columns = torch, net, list(columns)
        self.classes_ = np.array([0, 1])
        self.rows = 0

    def fit(self, *a):  # noqa: D401 - sklearn protocol only
        return self

    def predict_proba(self, X):
        A = X[self.columns].to_numpy(dtype=float) if isinstance(X, pd.DataFrame) else np.asarray(X, float)
        self.rows += len(A)
        with self.torch.no_grad():
            return self.net(self.torch.as_tensor(A, dtype=self.torch.float32)).numpy().astype(float)

    def predict(self, X):
        return self.predict_proba(X).argmax(axis=1)


def score(P: T.Problem, V: np.ndarray, model: Classifier, groups: dict) -> dict[str, float]:
    """whybox's own counterfactual metrics (whybox.counterfactuals.metrics.scores) for any method's rows,
    plus whether every one-hot block has exactly one category on."""
    if len(V) == 0:
        return {"found": 0, "validity": 0.0}
    from whybox.counterfactuals.metrics import scores
    d = {"found": len(V), **scores(P, V, model.predict_proba(pd.DataFrame(V, columns=model.columns)))}
    cols = model.columns
    okh = np.ones(len(V), bool)
    for g in groups.values():
        idx = [cols.index(c) for c in g]
        okh &= np.isclose(V[:, idx].astype(float).sum(axis=1), 1.0)
    d["one-hot valid"] = float(okh.mean())
    return d


def run(name: str, n_points: int, k: int, methods: list[str], limits: dict[str, int]) -> list[dict]:
    import dice_ml
    from dice_ml import Dice

    tr, te = load_openxai(name, "train"), load_openxai(name, "test")
    net = openxai_model(name, "ann")
    Xtr, Xte = tr.X, te.X
    clf = Classifier(net, Xtr.columns)
    groups = tr.groups or {}
    feat_groups = dict(groups)
    immutable = IMMUTABLE[name]
    imm_cols = sum([groups.get(f, [f]) for f in immutable], [])
    binary = [c for c, kd in tr.kinds.items() if kd == "binary"]
    cont = [c for c in Xtr.columns if c not in binary]
    data_df = Xtr.copy()
    for c in binary:
        data_df[c] = data_df[c].astype(int).astype(str)
    data_df["y"] = tr.y
    dice_data = dice_ml.Data(dataframe=data_df, continuous_features=cont, outcome_name="y")

    class DiceModel(Classifier):
        def predict_proba(self, X):
            X = X.copy()
            for c in binary:
                if c in X.columns:
                    X[c] = X[c].astype(float)
            return super().predict_proba(X)

    dmodel = DiceModel(net, Xtr.columns)
    setup, explainers = {}, {}
    for m in methods:
        t0 = time.perf_counter()
        explainers[m] = Dice(dice_data, dice_ml.Model(model=dmodel, backend="sklearn"), method=m)
        setup[f"DiCE {m}"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    clf.rows = 0
    wb = CounterfactualExplainer(clf, Xtr, groups=feat_groups or None).precompute()   # queries the training rows once
    setup["whybox"] = time.perf_counter() - t0
    vary = [c for c in Xtr.columns if c not in imm_cols]
    results = {"whybox": [], **{f"DiCE {m}": [] for m in methods}}
    times = {key: 0.0 for key in results}
    rows = {key: 0 for key in results}
    once_rows = {key: 0 for key in results}
    once_rows["whybox"] = clf.rows
    for i in range(n_points):
        x = Xte.iloc[[i]]
        clf.rows = 0
        t0 = time.perf_counter()
        cs = wb.explain(x, k=k, immutable=immutable, seed=i)
        times["whybox"] += time.perf_counter() - t0
        rows["whybox"] += cs.n_model_rows
        P = cs._problem
        V = cs.counterfactuals.to_numpy(dtype=float) if len(cs) else np.empty((0, Xtr.shape[1]))
        results["whybox"].append(score(P, V, clf, groups))
        xq = x.copy()
        for c in binary:
            xq[c] = xq[c].astype(int).astype(str)
        for m, ex in explainers.items():
            if i >= limits.get(m, n_points):
                continue
            dmodel.rows = 0
            t0 = time.perf_counter()
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    r = ex.generate_counterfactuals(xq, total_CFs=k, desired_class="opposite", features_to_vary=vary,
                                                    verbose=False)
                df = r.cf_examples_list[0].final_cfs_df
                W = np.empty((0, Xtr.shape[1])) if df is None or len(df) == 0 else \
                    df[list(Xtr.columns)].astype(float).to_numpy()
            except Exception as exc:  # noqa: BLE001 - DiCE raises when it finds nothing
                W = np.empty((0, Xtr.shape[1]))
                if "No counterfactuals found" not in str(exc):
                    print(f"DiCE {m} row {i}: {type(exc).__name__}: {exc}", flush=True)
            times[f"DiCE {m}"] += time.perf_counter() - t0
            rows[f"DiCE {m}"] += dmodel.rows
            results[f"DiCE {m}"].append(score(P, W, clf, groups))
        print(name, i, {key: (v[-1].get("validity"), round(times[key] / len(v), 2)) for key, v in results.items()
                        if v}, flush=True)
    table = []
    for key, res in results.items():
        found = [r for r in res if r["found"]]
        npts = len(res)
        agg = {"dataset": name, "method": key, "points with ≥1 CF": f"{len(found)}/{npts}",
               "CFs per point": np.mean([r["found"] for r in res]),
               "validity": np.mean([r["validity"] for r in res if r["found"]]) if found else 0.0}
        for mkey in ("sparsity", "proximity", "diversity", "one-hot valid", "plausibility"):
            agg[mkey] = np.mean([r[mkey] for r in found]) if found else np.nan
        agg["s / point"] = times[key] / npts
        agg["model rows / point"] = rows[key] / npts
        agg["one-time s"] = setup.get(key, 0.0)
        agg["one-time model rows"] = once_rows[key]
        table.append(agg)
    return table


def _one_thread() -> None:
    import torch
    torch.set_num_threads(1)


def _run_star(arg: tuple) -> list[dict]:
    return run(*arg)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, default=50)
    ap.add_argument("--k", type=int, default=4)
    ap.add_argument("--methods", default="random,kdtree,genetic", help="DiCE methods")
    ap.add_argument("--genetic-n", default="5,2", help="points for DiCE genetic, one number or one per dataset "
                    "(30 s to 4 min per point here)")
    ap.add_argument("--kdtree-n", default="10,3", help="points for DiCE kdtree, one number or one per dataset "
                    "(about 40 s per point on adult, 65 s on german)")
    ap.add_argument("--datasets", default="adult,german")
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--out", default="bench/results/counterfactuals.md")
    ap.add_argument("--jobs", type=int, default=1, help="datasets run in parallel processes (one torch thread each)")
    a = ap.parse_args()
    if a.quick:
        a.n = 5
    names = a.datasets.split(",")
    def per_dataset(v: str) -> list[int]:
        vals = [int(t) for t in str(v).split(",")]
        return vals * len(names) if len(vals) == 1 else vals

    gen, kdt = per_dataset(a.genetic_n), per_dataset(a.kdtree_n)
    if len(gen) != len(names) or len(kdt) != len(names):
        ap.error("--genetic-n/--kdtree-n: one number, or one per dataset")
    args = [(name, a.n, a.k, a.methods.split(","), {"genetic": g, "kdtree": t}) for name, g, t in zip(names, gen, kdt)]
    if a.jobs > 1:
        from concurrent.futures import ProcessPoolExecutor
        with ProcessPoolExecutor(min(a.jobs, len(names)), initializer=_one_thread) as pool:
            tables = list(pool.map(_run_star, args))
    else:
        tables = [run(*arg) for arg in args]
    df = pd.DataFrame(sum(tables, []))
    text = "\n".join([
        "# Counterfactuals: whybox vs DiCE", "",
        f"{stamp()}; {machine()}; dice-ml {version('dice-ml')}. Command: `.venv/bin/python bench/counterfactuals.py "
        f"--n {a.n} --kdtree-n {a.kdtree_n} --genetic-n {a.genetic_n} --methods {a.methods} --datasets {a.datasets} "
        f"--jobs {a.jobs}`.", "",
        f"OpenXAI {' and '.join(names)}, pretrained ANN, first {a.n} test rows (DiCE kdtree: the first {a.kdtree_n}, "
        f"genetic: the first {a.genetic_n}, per dataset; they take 30 s to 4 min per point here), k = {a.k} counterfactuals of the "
        "opposite "
        "class; sex/race (adult) and personal-status-sex/foreign-worker (german) immutable. Validity over the "
        "counterfactuals returned; sparsity = features changed (lower is sparser); proximity = MAD-scaled L1 + 1 per "
        "changed categorical feature/group (lower is closer); diversity = mean pairwise distance (higher is more "
        "diverse); plausibility = distance to the nearest training row (of at most 2,000, a seeded sample) / the "
        "typical nearest-neighbour distance between training rows (lower is closer to real data); one-hot valid = share of counterfactuals whose one-hot "
        "blocks have exactly one category (german). Same metric code for every method. s / point and model rows / "
        "point are per explained row; one-time = work done once per dataset and shared by every row (whybox: "
        "building the CounterfactualExplainer and querying the model on the training rows, the donors; DiCE: "
        "building its explainer).", "",
        markdown(df), ""])
    Path(a.out).parent.mkdir(parents=True, exist_ok=True)
    Path(a.out).write_text(text)
    print(text)


if __name__ == "__main__":
    main()
