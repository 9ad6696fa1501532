"""Causal concept effects on CEBaB: matching trained as Gat et al. train it (InfoNCE, per concept) vs
CEBaB's baselines (zero effect, CONEXP, Approx, S-Learner), for three models, on every ICaCE pair
of a split.

    .venv/bin/python bench/cebab.py                       # dev split; about 60 min on 2 cores the first time
    .venv/bin/python bench/cebab.py --split test          # needs the test split (not in the shared data)
    .venv/bin/python bench/cebab.py --split path/to/split.json --cache-dir /tmp/whybox-cache
    .venv/bin/python bench/cebab.py --quick               # 40 review groups per split, short training

Models explained (trained on train_inclusive, 5-class review rating): all-MiniLM-L6-v2 fine-tuned end
to end (max length 128, 2 epochs or the time cap, cached), TF-IDF + logistic regression, and frozen
MiniLM + a logistic head (the cheaper rows). train_exclusive is split 50/50 (seeded): the encoder half
gives InfoNCE's weak positives, the candidate half is the matching pool. The baselines use all of
train_exclusive, as CEBaB's do. Estimators:

* zero effect (the reference every estimator is compared with), CONEXP (difference of means),
  Approx (a training text with C = v' and the same other aspect labels; CONEXP where none exists,
  counted), S-Learner (predicted aspect labels, logistic outcome model);
* matching, Top-K over the candidate half: plain MiniLM embeddings, and the per-concept InfoNCE
  encoder (top 2 layers + projection; positives = human edits changing only C, weak positives =
  reviews with identical other labels, hard negatives = edits of another concept). K = 10 is the
  headline (fixed before looking at any split); the other K are reported too.

Errors (CEBaB): L2, cosine distance, norm difference between true ICaCE = f(x_cf) - f(x_base) and the
estimate, per pair, averaged. 95% CIs: bootstrap over review groups (the base text's original review),
1,000 resamples; paired differences for matching vs Approx, S-Learner and zero. Seeds change the
InfoNCE encoders' training (--infonce-seeds, default 1: each seed costs 4 x --infonce-minutes at most;
--infonce-steps fixes the steps instead, so the encoders do not depend on the machine's load); the
tables give mean +- std over the seeds run.
Writes bench/results/cebab.md (or --out).
"""
from __future__ import annotations

import argparse
import hashlib
import os
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import machine, markdown, stamp  # noqa: E402

from whybox.counterfactuals.baselines import Approx, SLearner, conexp_effect, zero_effect  # noqa: E402
from whybox.counterfactuals.cebab import CONCEPTS, icace_pair_errors, load_cebab, pairs  # noqa: E402
from whybox.counterfactuals.text import topk_effects  # noqa: E402

HEADLINE_K = 10


def boot_ci(values: np.ndarray, groups: np.ndarray, rng: np.random.Generator, n_boot: int) -> tuple[float, float]:
    """95% CI of the mean of per-pair values, resampling review groups."""
    ug, inv = np.unique(groups, return_inverse=True)
    sums = np.bincount(inv, weights=values, minlength=len(ug))
    cnts = np.bincount(inv, minlength=len(ug)).astype(float)
    idx = rng.integers(len(ug), size=(n_boot, len(ug)))
    means = sums[idx].sum(axis=1) / cnts[idx].sum(axis=1)
    return float(np.quantile(means, 0.025)), float(np.quantile(means, 0.975))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--split", default="dev", help="dev, test or a CEBaB-format .json path")
    ap.add_argument("--cache-dir", default=None, help="weights and embeddings cache (default $WHYBOX_CACHE or "
                    "~/.cache/whybox)")
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--infonce-seeds", type=int, default=1)
    ap.add_argument("--finetune-minutes", type=float, default=30.0)
    ap.add_argument("--infonce-minutes", type=float, default=10.0, help="per concept and seed (a safety cap)")
    ap.add_argument("--infonce-steps", type=int, default=None,
                    help="optimiser steps per concept and seed; unlike the time cap it does not depend on the "
                         "machine's load, so a run with it is reproducible")
    ap.add_argument("--ks", default="1,5,10,20,50")
    ap.add_argument("--boot", type=int, default=1000)
    ap.add_argument("--models", default="finetuned,tfidf,head")
    ap.add_argument("--out", default=str(Path(__file__).resolve().parent / "results" / "cebab.md"))
    a = ap.parse_args()
    import torch

    from whybox.counterfactuals.matching import InfoNCEMatcher
    from whybox.datasets import tfidf_classifier
    from whybox.models.minilm import cache_root, embed, finetune_minilm_classifier, load_minilm

    torch.set_num_threads(max(1, torch.get_num_threads()))
    t0 = time.perf_counter()
    ng = 40 if a.quick else None
    cache = cache_root(a.cache_dir) / "cebab"
    cache.mkdir(parents=True, exist_ok=True)
    inc = load_cebab("train_inclusive", n_groups=ng)
    exc = load_cebab("train_exclusive", n_groups=None if not a.quick else 400)
    split_name = a.split
    ev = load_cebab(a.split, n_groups=ng)
    P = pairs(ev)
    groups = ev["original_id"].to_numpy()[P["base"].to_numpy()]
    print(f"train_inclusive {len(inc)}, train_exclusive {len(exc)}, {split_name} {len(ev)} texts, {len(P)} pairs",
          flush=True)
    perm = np.random.default_rng(0).permutation(len(exc))
    enc_half = exc.iloc[np.sort(perm[: len(exc) // 2])].reset_index(drop=True)
    cand = exc.iloc[np.sort(perm[len(exc) // 2:])].reset_index(drop=True)
    enc, tok = load_minilm()

    def cached_embed(name: str, texts: list[str]) -> np.ndarray:
        key = hashlib.sha256("\n".join(texts).encode()).hexdigest()[:16]
        f = cache / f"minilm-{name}-{key}.npy"
        if not f.exists():
            np.save(f, embed(enc, tok, texts))
        return np.load(f)

    emb = {"inc": cached_embed("inc", inc["text"].tolist()), "exc": cached_embed("exc", exc["text"].tolist()),
           "ev": cached_embed("ev", ev["text"].tolist()), "cand": cached_embed("cand", cand["text"].tolist())}
    lab = inc["label"].notna().to_numpy()
    y_inc = inc["label"][lab].astype(int).to_numpy()
    models, info = {}, {}
    wanted = a.models.split(",")
    if "finetuned" in wanted:
        t = time.perf_counter()
        ft = finetune_minilm_classifier(inc["text"][lab].tolist(), y_inc, epochs=2.0, max_length=128,
                                        max_seconds=60 * a.finetune_minutes, cache_dir=a.cache_dir,
                                        log=lambda m: print("fine-tune", m, flush=True))
        models["MiniLM fine-tuned"] = {s: ft(df["text"].tolist()) for s, df in (("exc", exc), ("ev", ev), ("cand", cand))}
        info["MiniLM fine-tuned"] = (f"fine-tuned {ft.info_['epochs_done']:.2f} epochs in {ft.info_['seconds'] / 60:.1f} "
                                     f"min{' (cached)' if ft.info_.get('cached') else ''}")
        print(info["MiniLM fine-tuned"], f"({time.perf_counter() - t:.0f} s with predictions)", flush=True)
    if "tfidf" in wanted:
        tf = tfidf_classifier(inc["text"][lab].tolist(), y_inc)
        models["TF-IDF + LR"] = {s: tf.predict_proba(df["text"].tolist()) for s, df in (("exc", exc), ("ev", ev),
                                                                                      ("cand", cand))}
    if "head" in wanted:
        from sklearn.linear_model import LogisticRegression

        head = LogisticRegression(C=10, max_iter=5000).fit(emb["inc"][lab], y_inc)
        models["MiniLM frozen + head"] = {s: head.predict_proba(emb[s]) for s in ("exc", "ev", "cand")}
    dl = ev["label"].notna().to_numpy()
    acc = {n: float((o["ev"][dl].argmax(1) + 1 == ev["label"][dl].astype(int)).mean()) for n, o in models.items()}
    print("accuracy", acc, flush=True)

    # ------------------------------------------------------------------ matching spaces (model-free)
    ks = [int(k) for k in a.ks.split(",")]
    spaces: dict[tuple[str, int, str], tuple[np.ndarray, np.ndarray]] = {}
    for c in CONCEPTS:
        spaces["plain MiniLM", 0, c] = (emb["ev"], emb["cand"])
    train_log = []
    for seed in range(a.infonce_seeds):
        for c in CONCEPTS:
            mt = InfoNCEMatcher(c, seed=seed, epochs=1.0 if not a.quick else 0.2,
                                max_seconds=60 * (a.infonce_minutes if not a.quick else 0.5),
                                max_steps=a.infonce_steps)
            key = hashlib.sha256(f"{c}|{seed}|{mt.epochs}|{mt.max_seconds}|{mt.max_steps}|{len(inc)}|{len(enc_half)}"
                                 .encode()).hexdigest()[:12]
            f = cache / f"infonce-{c}-s{seed}-{key}.pt"
            t = time.perf_counter()
            if f.exists():
                mt.load(f)
            else:
                mt.fit(inc, enc_half, log=lambda m: print(m, flush=True))
                mt.save(f)
            # the encoder's embeddings of the evaluated and candidate texts, cached beside it
            ekey = hashlib.sha256("\x00".join(ev["text"].tolist() + ["|"] + cand["text"].tolist()).encode()).hexdigest()[:12]
            fe = f.with_name(f.stem + f"-emb-{ekey}.npz")
            if fe.exists():
                z = np.load(fe)
                qe, ce = z["ev"], z["cand"]
            else:
                qe, ce = mt.embed(ev["text"].tolist()), mt.embed(cand["text"].tolist())
                tmp = fe.with_name(fe.stem + ".tmp.npz")
                np.savez(tmp, ev=qe, cand=ce)
                os.replace(tmp, fe)
            spaces["InfoNCE", seed, c] = (qe, ce)
            train_log.append({"concept": c, "seed": seed, **{k: v for k, v in mt.info_.items() if k != "cached"},
                              "cached": bool(mt.info_.get("cached"))})
            print(f"InfoNCE {c} seed {seed}: {time.perf_counter() - t:.0f} s", train_log[-1], flush=True)

    # ------------------------------------------------------------------ estimates and errors
    rows, pair_vals, concept_rows = [], {}, []
    rng = np.random.default_rng(0)
    base_df = ev.iloc[P["base"].to_numpy()].reset_index(drop=True)
    fallback = {}
    for name, out in models.items():
        true = out["ev"][P["cf"]] - out["ev"][P["base"]]
        est = {"zero effect": zero_effect(len(P), true.shape[1]),
               "CONEXP": np.array([conexp_effect(out["exc"], exc[c], v, w)
                                   for c, v, w in zip(P["concept"], P["base_value"], P["cf_value"])])}
        ax = Approx(exc, out["exc"], seed=0)
        est["Approx"] = np.zeros_like(true)
        sl = SLearner().fit(exc["text"].tolist(), exc, out["exc"])
        est["S-Learner"] = np.zeros_like(true)
        for c in CONCEPTS:
            for w in P["cf_value"].unique():
                s = np.flatnonzero(((P["concept"] == c) & (P["cf_value"] == w)).to_numpy())
                if not len(s):
                    continue
                est["Approx"][s] = ax.effects(base_df.iloc[s], c, w, out["ev"][P["base"].to_numpy()[s]])
                est["S-Learner"][s] = sl.effects(base_df["text"].iloc[s].tolist(), c, w)
        fallback[name] = ax.n_fallback
        by_space: dict[tuple[str, int], dict[int, np.ndarray]] = {}
        for (space, seed, c), (qe, ce) in spaces.items():
            per_k = by_space.setdefault((space, seed), {k: np.zeros_like(true) for k in ks})
            for w in P["cf_value"].unique():
                s = np.flatnonzero(((P["concept"] == c) & (P["cf_value"] == w)).to_numpy())
                if not len(s) or not (cand[c] == w).any():
                    continue
                b = P["base"].to_numpy()[s]
                pool = np.flatnonzero((cand[c] == w).to_numpy())
                sim = qe[b] @ ce[pool].T
                for k in ks:
                    per_k[k][s] = topk_effects(sim, out["cand"][pool], out["ev"][b], k)
        for m_name, e in est.items():
            v = icace_pair_errors(true, e)
            pair_vals[name, m_name, "", 0] = v["L2"]
            rows.append({"model": name, "method": m_name, "K": "", "seed": 0, **{k: float(x.mean()) for k, x in v.items()}})
        for (space, seed), per_k in by_space.items():
            for k, e in per_k.items():
                v = icace_pair_errors(true, e)
                pair_vals[name, f"Matching ({space})", k, seed] = v["L2"]
                rows.append({"model": name, "method": f"Matching ({space})", "K": k, "seed": seed,
                             **{kk: float(x.mean()) for kk, x in v.items()}})
        for c in CONCEPTS:
            sel = (P["concept"] == c).to_numpy()
            if not sel.any():
                continue
            r = {"model": name, "concept": c, "pairs": int(sel.sum())}
            for key, vals in pair_vals.items():
                if key[0] != name or (key[2] not in ("", HEADLINE_K)) or key[3] != 0:
                    continue
                r[key[1]] = float(vals[sel].mean())
            per_seed = [float(v[sel].mean()) for key, v in pair_vals.items()
                        if key[0] == name and key[1] == "Matching (InfoNCE)" and key[2] == HEADLINE_K]
            if len(per_seed) > 1:
                r["Matching (InfoNCE), mean over seeds"] = float(np.mean(per_seed))
                r["std over seeds"] = float(np.std(per_seed, ddof=1))
            concept_rows.append(r)
        print(name, {r["method"] + (f" K={r['K']}" if r["K"] != "" else ""): round(r["L2"], 3)
                     for r in rows if r["model"] == name and r["K"] in ("", HEADLINE_K) and r["seed"] == 0}, flush=True)

    df = pd.DataFrame(rows)
    g = df.groupby(["model", "method", "K"], sort=False)
    agg = g[["L2", "cosine", "norm_diff"]].agg(["mean", "std"]).reset_index()
    agg.columns = [" ".join(c).strip() for c in agg.columns]
    agg["seeds"] = g.size().to_numpy()
    for c in ("L2 std", "cosine std", "norm_diff std"):
        agg[c] = agg[c].fillna(0.0)
    cis = []
    for (name, meth, k, seed), vals in pair_vals.items():
        if seed != 0 or k not in ("", HEADLINE_K):
            continue
        lo, hi = boot_ci(vals, groups, rng, a.boot)
        cis.append({"model": name, "method": meth, "K": k, "L2": float(vals.mean()), "95% CI low": lo, "95% CI high": hi})
    diffs, checks, vs_zero = [], [], []
    for (name, meth, k, seed), vals in pair_vals.items():       # every estimator against the zero-effect reference
        if seed != 0 or k not in ("", HEADLINE_K) or meth == "zero effect":
            continue
        d = vals - pair_vals[name, "zero effect", "", 0]
        lo, hi = boot_ci(d, groups, rng, a.boot)
        vs_zero.append({"model": name, "estimator": meth + (f" K={k}" if k != "" else ""), "L2 - zero effect's":
                        float(d.mean()), "95% CI low": lo, "95% CI high": hi,
                        "verdict": "better than zero" if hi < 0 else ("worse than zero" if lo > 0 else "not distinguishable")})
    seeds = sorted({key[3] for key in pair_vals if key[1] == "Matching (InfoNCE)"})
    for name in models:
        for ref in ("Approx", "S-Learner", "zero effect", "CONEXP"):
            wins = []
            for seed in seeds:
                m_key = (name, "Matching (InfoNCE)", HEADLINE_K, seed)
                if m_key not in pair_vals:
                    continue
                d = pair_vals[m_key] - pair_vals[name, ref, "", 0]
                lo, hi = boot_ci(d, groups, rng, a.boot)
                diffs.append({"model": name, "difference": f"InfoNCE matching K={HEADLINE_K} - {ref}", "seed": seed,
                              "mean L2 difference": float(d.mean()), "95% CI low": lo, "95% CI high": hi,
                              "matching better, CI excludes 0": bool(hi < 0)})
                wins.append((d.mean(), lo, hi))
                if name == "MiniLM fine-tuned" and ref in ("Approx", "S-Learner"):
                    checks.append(f"{'PASS' if hi < 0 else 'FAIL'}: on the fine-tuned MiniLM ({split_name}), InfoNCE "
                                  f"matching (K={HEADLINE_K}, seed {seed}) L2 < {ref} with the paired-bootstrap 95% CI "
                                  f"of the difference excluding 0: {d.mean():+.4f} [{lo:+.4f}, {hi:+.4f}]")
            if name == "MiniLM fine-tuned" and ref in ("Approx", "S-Learner") and len(wins) > 1:
                m = np.array([w[0] for w in wins])
                ok = all(w[2] < 0 for w in wins)
                checks.append(f"{'PASS' if ok else 'FAIL'}: on every one of the {len(wins)} InfoNCE seeds, matching < "
                              f"{ref} with the CI excluding 0; difference {m.mean():+.4f} +- {m.std(ddof=1):.4f} "
                              "(mean +- std over seeds)")
    lines = [f"# CEBaB: causal concept effects (ICaCE) on the {split_name} split: matching vs CEBaB's baselines", "",
             f"{stamp()}; {machine()}; {time.perf_counter() - t0:.0f} s in all (cached weights are loaded, not "
             "retrained: see the fine-tuning and InfoNCE lines). Command: `.venv/bin/python bench/cebab.py"
             + "".join(f" {x}" for x in sys.argv[1:]) + "`.", "",
             f"{len(inc):,} train_inclusive, {len(exc):,} train_exclusive ({len(enc_half):,} encoder half, {len(cand):,} "
             f"candidate half), {len(ev):,} {split_name} texts; {len(P):,} {split_name} pairs (ordered; the validated label "
             f"of the edited concept differs). {split_name} accuracy (5 classes): "
             + ", ".join(f"{k} {v:.3f}" for k, v in acc.items()) + ". "
             + "; ".join(f"{k}: {v}" for k, v in info.items())
             + ". Approx fell back to CONEXP (no training text with the same other labels) on "
             + ", ".join(f"{k} {v:,}" for k, v in fallback.items()) + f" of {len(P):,} pairs. Lower is better for every "
             "error. Published leaderboard for orientation (fine-tuned BERT, test split, L2): Approx .81, "
             "S-Learner .74: other model, other split.", "", *checks, "",
             f"## Errors ({split_name}, all pairs; mean +- std over seeds)", "", markdown(agg), "",
             f"## 95% bootstrap CIs over review groups ({split_name}; matching at K = {HEADLINE_K}, seed 0)", "",
             markdown(pd.DataFrame(cis)), "", f"## Paired differences ({split_name})", "", markdown(pd.DataFrame(diffs)), "",
             f"## Every estimator against the zero-effect reference ({split_name}; paired, bootstrap over review groups)",
             "", markdown(pd.DataFrame(vs_zero)), "",
             f"## L2 per concept ({split_name}; matching at K = {HEADLINE_K}, seed 0)", "",
             markdown(pd.DataFrame(concept_rows)), ""]
    if train_log:
        lines += ["## InfoNCE encoders (per concept)", "", markdown(pd.DataFrame(train_log)), ""]
    Path(a.out).parent.mkdir(parents=True, exist_ok=True)
    Path(a.out).write_text("\n".join(lines) + "\n", encoding="utf-8")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
