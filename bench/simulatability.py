"""Which explanation helps a simulator predict the model? Forward and counterfactual simulatability
(Hase & Bansal 2020) of LIME, anchors, prototypes, decision boundaries, their composite and random
"explanations" (a control), with learned simulators.

    .venv/bin/python bench/simulatability.py            # writes bench/results/simulatability.md
    .venv/bin/python bench/simulatability.py --quick    # smaller

Tasks: OpenXAI's pretrained adult ANN on the adult test split (shared data), and rt-polarity with the
MiniLM classifier (frozen all-MiniLM-L6-v2 + a logistic head trained on 2,000 training sentences;
prototypes in MiniLM's embedding space). For each seed, k training inputs are explained and n test
inputs held out (disjoint); gains are paired by test input with bootstrap 95% intervals; NSG =
gain / (1 - baseline accuracy); counterfactual precision / generality after Chen et al. (2024).
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import machine, markdown, stamp  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--out", default=str(Path(__file__).resolve().parent / "results" / "simulatability.md"))
    a = ap.parse_args()
    from whybox.datasets import load_openxai, load_rt_polarity, openxai_model
    from whybox.simulate import simulatability, simulatability_text

    seeds = [0] if a.quick else [0, 1]
    parts, timing = [], {}
    # ------------------------------------------------------------- tabular: adult ANN
    te = load_openxai("adult", "test")
    net = openxai_model("adult", "ann")
    data = te.X.iloc[:3000].to_numpy(dtype=float)
    k_tab, n_tab = (16, 60) if a.quick else (32, 120)
    t0 = time.perf_counter()
    for s in seeds:
        r = simulatability(net, data, k=k_tab, n_test=n_tab, seed=s, lime_samples=300, anchor_budget=2000)
        parts.append(r.table.assign(task="adult ANN (tabular)", seed=s))
        print(r.text(), flush=True)
    timing["adult"] = time.perf_counter() - t0
    # ------------------------------------------------------------- text: rt-polarity, MiniLM
    from whybox.models.minilm import embed, load_minilm, train_minilm_classifier
    tr_texts, tr_y = load_rt_polarity("train", n=2000)
    enc, tok = load_minilm()
    clf = train_minilm_classifier(tr_texts, tr_y, encoder_and_tokenizer=(enc, tok))
    dev_texts, _ = load_rt_polarity("dev")
    pool = list(dev_texts)
    k_txt, n_txt = (16, 30) if a.quick else (24, 40)
    t0 = time.perf_counter()
    for s in seeds[:1]:
        r = simulatability_text(clf, pool, embed=lambda t: embed(enc, tok, t), k=k_txt, n_test=n_txt, seed=s,
                                lime_samples=200, anchor_budget=1500)
        parts.append(r.table.assign(task="rt-polarity MiniLM (text)", seed=s))
        print(r.text(), flush=True)
    timing["text"] = time.perf_counter() - t0
    df = pd.concat(parts, ignore_index=True)
    g = df.groupby(["task", "test", "method"], sort=False)
    summ = g.agg(baseline=("baseline", "mean"), explained=("explained", "mean"), gain=("gain", "mean"),
                 gain_low=("gain_low", "mean"), gain_high=("gain_high", "mean"), nsg=("nsg", "mean"),
                 precision=("precision", "mean"), generality=("generality", "mean"), seeds=("seed", "count")).reset_index()
    lines = [f"# Simulatability of explanations ({stamp()})", "", f"Machine: {machine()}.",
             f"Command: `.venv/bin/python bench/simulatability.py{' --quick' if a.quick else ''}`; adult "
             f"{timing['adult']:.0f} s, text {timing['text']:.0f} s.", "",
             f"Adult: k = {k_tab} explained training rows, {n_tab} test rows, seeds {seeds}. rt-polarity: k = {k_txt} "
             f"explained dev sentences, {n_txt} test sentences, seed {seeds[0]}. Learned simulators "
             "(whybox.simulate): gain = explanation-phase minus baseline-phase accuracy, paired by test input; the "
             "interval columns are the per-seed bootstrap 95% bounds (mean over seeds). 'random' is the control: "
             "LIME-shaped weights drawn at random.", "", markdown(summ), "",
             "## Per seed", "", markdown(df[["task", "seed", "test", "method", "baseline", "explained", "gain", "gain_low",
                                             "gain_high", "nsg", "precision", "generality"]]), ""]
    Path(a.out).write_text("\n".join(lines))
    print("\n".join(lines[:12]))


if __name__ == "__main__":
    main()
