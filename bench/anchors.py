"""Anchors: whybox vs alibi's AnchorTabular, side by side on the same model and rows.

    .venv/bin/python bench/anchors.py            # 50 adult test rows; writes bench/results/anchors.md
    .venv/bin/python bench/anchors.py --rows 10  # quicker

alibi 0.9.6 (its last release) needs numpy<2, pandas<3 and transformers<5, so it cannot share
whybox's environment: this script builds a venv for it once (``--alibi-venv``, default
``~/.cache/whybox/alibi-venv``; ``pip install alibi==0.9.6``) and runs AnchorTabular there in a
subprocess. Model: OpenXAI's pretrained adult ANN (shared data), saved as its weights (``.npz``) and
evaluated by the same numpy code in both processes (a ``.skops`` file would need the same
scikit-learn on both sides, which the two environments cannot have), on the same rows (``.npy``).
Both libraries use quartile bins of the training data (alibi's ``disc_perc=(25, 50, 75)``); the 7
binary columns are categorical for both. Threshold 0.95, every other setting at each library's default.

Precision is measured independently of either library's own estimate: (1) on held-out test rows
that satisfy the anchor (at least 100, else n/a), (2) on 10,000 draws from one shared conditional
sampler (training rows satisfying all of the anchor's conditions, drawn with replacement). Coverage is
the share of test rows where the anchor holds. Model queries are counted by a wrapper in each process.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import machine, markdown, stamp  # noqa: E402

ALIBI_SCRIPT = r'''
import json, sys, time
import numpy as np
from alibi.explainers import AnchorTabular
d = np.load(sys.argv[1]); rows = np.load(sys.argv[2]); train = np.load(sys.argv[3])
names = json.loads(open(sys.argv[4]).read()); binary = json.loads(open(sys.argv[5]).read())
W1, b1, W2, b2 = d["W1"], d["b1"], d["W2"], d["b2"]
count = {"n": 0}
def predict(X):
    X = np.asarray(X, dtype=np.float64)
    count["n"] += len(X)
    h = np.maximum(X @ W1.T + b1, 0)
    z = h @ W2.T + b2
    return z.argmax(axis=1)
cat = {j: ["0", "1"] for j in binary}
ex = AnchorTabular(predict, feature_names=names, categorical_names=cat, seed=0)
ex.fit(train, disc_perc=(25, 50, 75))
out = []
for x in rows:
    count["n"] = 0
    t = time.perf_counter()
    e = ex.explain(x, threshold=0.95)
    out.append({"anchor": list(e.anchor), "precision": float(np.atleast_1d(e.precision)[0]),
                "coverage": float(e.coverage), "queries": count["n"], "seconds": time.perf_counter() - t})
print(json.dumps(out))
'''


def ann_weights(name: str = "adult") -> dict:
    import torch
    from whybox.datasets import openxai_model
    net = openxai_model(name, "ann")
    sd = {k: v.detach().numpy().astype(np.float64) for k, v in net.state_dict().items()}
    return {"W1": sd["input1.weight"], "b1": sd["input1.bias"], "W2": sd["input2.weight"], "b2": sd["input2.bias"],
            "_torch": torch.__version__}


def make_predict(w: dict):
    count = {"n": 0}

    def proba(X):
        X = np.asarray(X, dtype=np.float64)
        count["n"] += len(X)
        h = np.maximum(X @ w["W1"].T + w["b1"], 0)
        z = h @ w["W2"].T + w["b2"]
        z = z - z.max(axis=1, keepdims=True)
        e = np.exp(z)
        return e / e.sum(axis=1, keepdims=True)
    return proba, count


def alibi_python(venv: Path) -> Path:
    py = venv / "bin" / "python"
    if not py.exists():
        print(f"building a venv for alibi in {venv} (once)...", flush=True)
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        subprocess.run([str(py), "-m", "pip", "install", "-q", "--disable-pip-version-check", "alibi==0.9.6",
                        "click"], check=True)    # spacy (an alibi dependency) imports click without requiring it
    return py


COND = [(re.compile(r"^(-?[\d.e+-]+) < (.+) <= (-?[\d.e+-]+)$"), "between"),
        (re.compile(r"^(.+) <= (-?[\d.e+-]+)$"), "le"), (re.compile(r"^(.+) > (-?[\d.e+-]+)$"), "gt"),
        (re.compile(r"^(.+) = (.+)$"), "eq")]


def holds(conds: list[str], X: pd.DataFrame) -> np.ndarray:
    """Rows of X where every condition (alibi's or whybox's text form) holds."""
    ok = np.ones(len(X), dtype=bool)
    for c in conds:
        c = c.strip()
        for rx, kind in COND:
            m = rx.match(c)
            if not m:
                continue
            if kind == "between":
                lo, f, hi = float(m.group(1)), m.group(2), float(m.group(3))
                ok &= (X[f] > lo).to_numpy() & (X[f] <= hi).to_numpy()
            elif kind == "le":
                ok &= (X[m.group(1)] <= float(m.group(2))).to_numpy()
            elif kind == "gt":
                ok &= (X[m.group(1)] > float(m.group(2))).to_numpy()
            else:
                ok &= np.isclose(X[m.group(1)].to_numpy(float), float(m.group(2)))
            break
        else:
            raise ValueError(f"cannot read the condition {c!r}")
    return ok


def fresh_precision(conds, x_label, proba, train: pd.DataFrame, test_rest: pd.DataFrame, rng) -> tuple:
    m = holds(conds, test_rest)
    held = float((proba(test_rest[m].to_numpy()).argmax(1) == x_label).mean()) if m.sum() >= 100 else np.nan
    ok = np.flatnonzero(holds(conds, train))
    if len(ok) == 0:
        return held, np.nan
    Z = train.to_numpy()[ok[rng.integers(0, len(ok), 10_000)]]
    return held, float((proba(Z).argmax(1) == x_label).mean())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rows", type=int, default=50)
    ap.add_argument("--alibi-venv", default=str(Path(os.environ.get("WHYBOX_CACHE", Path.home() / ".cache" / "whybox"))
                                              / "alibi-venv"))
    ap.add_argument("--out", default=str(Path(__file__).resolve().parent / "results" / "anchors.md"))
    a = ap.parse_args()
    import tempfile

    import whybox
    from whybox.datasets import load_openxai

    tr, te = load_openxai("adult", "train"), load_openxai("adult", "test")
    names = list(tr.X.columns)
    binary = [j for j, c in enumerate(names) if tr.kinds[c] == "binary"]
    w = ann_weights()
    rows = te.X.iloc[: a.rows]
    rest = te.X.iloc[a.rows:]
    train = tr.X
    proba, count = make_predict(w)
    rng = np.random.default_rng(0)
    kinds = {c: ("categorical" if tr.kinds[c] == "binary" else "continuous") for c in names}

    # ---------------------------------------------------------------- whybox
    res = []
    for i in range(len(rows)):
        x = rows.iloc[[i]]
        count["n"] = 0
        t = time.perf_counter()
        an = whybox.anchor(proba, x, train, threshold=0.95, seed=0, kinds=kinds, delta=0.1, epsilon=0.15, beam_size=1,
                           batch_size=100)         # alibi's defaults
        secs = time.perf_counter() - t
        lab = int(proba(x.to_numpy()).argmax(1)[0])
        count_q = an.n_queries
        held, samp = fresh_precision(an.predicates, lab, proba, train, rest, rng)
        res.append({"library": "whybox", "row": i, "anchor": " AND ".join(an.predicates), "valid": an.valid,
                    "own precision": an.precision, "held-out precision": held, "sampler precision": samp,
                    "coverage": float(holds(an.predicates, te.X).mean()), "queries": count_q, "seconds": secs})

    # ---------------------------------------------------------------- alibi (own venv, subprocess)
    py = alibi_python(Path(a.alibi_venv))
    with tempfile.TemporaryDirectory() as tmp:
        t = Path(tmp)
        np.savez(t / "w.npz", W1=w["W1"], b1=w["b1"], W2=w["W2"], b2=w["b2"])
        np.save(t / "rows.npy", rows.to_numpy())
        np.save(t / "train.npy", train.to_numpy())
        (t / "names.json").write_text(json.dumps(names))
        (t / "binary.json").write_text(json.dumps(binary))
        (t / "run.py").write_text(ALIBI_SCRIPT)
        t0 = time.perf_counter()
        p = subprocess.run([str(py), str(t / "run.py"), str(t / "w.npz"), str(t / "rows.npy"), str(t / "train.npy"),
                            str(t / "names.json"), str(t / "binary.json")], capture_output=True, text=True)
        if p.returncode != 0:
            raise SystemExit("alibi failed:\n" + p.stderr[-3000:])
        alibi_out = json.loads(p.stdout.strip().splitlines()[-1])
        alibi_wall = time.perf_counter() - t0
    version = subprocess.run([str(py), "-c", "import alibi, numpy; print(alibi.__version__, numpy.__version__)"],
                             capture_output=True, text=True).stdout.strip()
    for i, r in enumerate(alibi_out):
        x = rows.iloc[[i]]
        lab = int(proba(x.to_numpy()).argmax(1)[0])
        conds = r["anchor"]
        held, samp = fresh_precision(conds, lab, proba, train, rest, rng)
        res.append({"library": "alibi", "row": i, "anchor": " AND ".join(conds), "valid": r["precision"] >= 0.95,
                    "own precision": r["precision"], "held-out precision": held, "sampler precision": samp,
                    "coverage": float(holds(conds, te.X).mean()), "queries": r["queries"], "seconds": r["seconds"]})
    df = pd.DataFrame(res)
    summ = []
    for lib, g in df.groupby("library", sort=False):
        summ.append({"library": lib, "rows": len(g), "anchors claimed valid": int(g["valid"].sum()),
                     "sampler precision >= 0.95": int((g["sampler precision"] >= 0.95).sum()),
                     "held-out precision >= 0.95 (of rows with >= 100)": f"{int((g['held-out precision'] >= 0.95).sum())} of "
                                                                        f"{int(g['held-out precision'].notna().sum())}",
                     "mean sampler precision": g["sampler precision"].mean(), "mean coverage": g["coverage"].mean(),
                     "mean queries": g["queries"].mean(), "median queries": g["queries"].median(),
                     "mean seconds": g["seconds"].mean()})
    s = pd.DataFrame(summ)
    w_, a_ = s.iloc[0], s.iloc[1]
    verdict = (w_["mean queries"] <= a_["mean queries"] and w_["sampler precision >= 0.95"] >= a_["sampler precision >= 0.95"]
               and w_["mean coverage"] > a_["mean coverage"])
    lines = [f"# Anchors: whybox vs alibi AnchorTabular ({stamp()})", "", f"Machine: {machine()}.",
             f"Command: `.venv/bin/python bench/anchors.py --rows {a.rows}`; alibi {version.split()[0] if version else '?'} "
             f"(numpy {version.split()[1] if version else '?'}) in its own venv, {alibi_wall:.0f} s in its subprocess.", "",
             "OpenXAI adult ANN (the same weights evaluated by the same numpy code in both processes), the first "
             f"{a.rows} test rows, threshold 0.95, quartile bins, binary columns categorical. Precision measured apart "
             "from the libraries: on held-out test rows satisfying the anchor (n/a below 100 rows) and on 10,000 "
             "draws from one shared conditional sampler (training rows satisfying the anchor).", "",
             markdown(s), "",
             f"Goal (equal or fewer queries, at least as many rows with precision >= 0.95 on fresh samples, higher mean "
             f"coverage): {'PASS' if verdict else 'FAIL'}.", "", "## Per row", "",
             markdown(df[["library", "row", "anchor", "own precision", "sampler precision", "held-out precision",
                          "coverage", "queries"]]), ""]
    Path(a.out).write_text("\n".join(lines))
    print("\n".join(lines[:14]))


if __name__ == "__main__":
    main()
