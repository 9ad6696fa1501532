"""The simulatability harness: does seeing an explanation let a simulator predict the model better?

After Hase & Bansal (ACL 2020), with automated simulators (Chen et al., ICML 2024):

* **forward test**: the simulator learns from ``k`` training inputs with the model's outputs
  (baseline phase), then from the same inputs with their explanations (explanation phase), and
  predicts the model's output on held-out inputs. It never sees the model's output on a test input
  nor an explanation of one (the harness only ever explains the ``k`` training inputs).
* **counterfactual test**: the simulator sees an input x, the model's output on it and (explanation
  phase) x's explanation, and predicts the model's output on an edited input x'. It never sees an
  explanation of x'. The simulator learns how to combine its cues from ``k`` training pairs.

Learned simulators (binary classifiers; class 1 is "positive"): the baseline is a logistic
regression on the inputs (and, in the counterfactual test, on the model's output for x); each
explanation type turns its content into one more cue, a probability for the test input:

| type | cue |
|---|---|
| lime | local linear extrapolations from the explained inputs, kernel-weighted by distance (counterfactual: from x) |
| anchor | the anchor of a training input (counterfactual: of x) whose rule holds: its precision; else 1/2 |
| prototype | a 3-nearest-neighbour vote among the explained inputs' local prototypes (and the inputs) |
| boundary | a 3-nearest-neighbour vote among the inputs and their boundary crossings |
| composite | the anchor's cue where a rule holds, else LIME's |
| random | LIME's extrapolation with random weights of the same scale (a control: it should not help) |

and the simulator learns from the training inputs alone how far to trust the cue: in the forward
test it uses the baseline, the cue, or both averaged (in logits), whichever predicts the training
inputs best out of sample (leave-one-out cues, 3-fold baseline; ties go to the baseline), and in the
counterfactual test a logistic regression on the baseline, x's output and the cue, fitted on the
training pairs — so an explanation that carries no information is ignored rather than followed.

Metrics, per explanation type: the simulation accuracy in each phase, the gain with a paired
bootstrap 95% interval over the test inputs, the normalised simulatability gain NSG = gain / (1 -
baseline accuracy), and for the counterfactual test Chen et al.'s precision (accuracy of the cue
alone on the edits where the explanation makes a prediction) and generality (1 - the mean pairwise
similarity of those edits).
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

import numpy as np
import pandas as pd

from whybox.errors import InputError
from whybox.params import Int, check

KINDS = ("lime", "anchor", "prototype", "boundary", "composite", "random")
TESTS = ("forward", "counterfactual")


def paired_gain(base: np.ndarray, expl: np.ndarray, *, n_boot: int = 2000, seed: int = 0) -> tuple[float, float, float]:
    """Mean of expl - base and its percentile bootstrap 95% interval, resampling test inputs (paired)."""
    d = np.asarray(expl, float) - np.asarray(base, float)
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, len(d), (n_boot, len(d)))
    boots = d[idx].mean(axis=1)
    return float(d.mean()), float(np.quantile(boots, 0.025)), float(np.quantile(boots, 0.975))


def nsg(base_acc: float, gain: float) -> float:
    room = 1.0 - base_acc
    return float(gain / room) if room > 1e-12 else 0.0


def _logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(np.asarray(p, float), 0.02, 0.98)
    return np.log(p / (1 - p))


class Baseline:
    """The baseline-phase simulator: a logistic regression on ``features(inputs)`` (inverse
    regularisation ``C``); when the training answers are all one class, that class (logit +-4)."""

    def __init__(self, features: Callable[[Any], Any], X: Any, y: np.ndarray, *, C: float = 1.0):
        from sklearn.linear_model import LogisticRegression
        self.features = features
        self.const = None if len(np.unique(y)) > 1 else (4.0 if y[0] == 1 else -4.0)
        if self.const is None:
            self.lr = LogisticRegression(C=C, max_iter=1000).fit(features(X), y)

    def logit(self, X: Any) -> np.ndarray:
        if self.const is not None:
            return np.full(len(X), self.const)
        return self.lr.decision_function(self.features(X))


class _Combiner:
    """Logistic regression on cue columns; a constant when the training labels have one class."""

    def fit(self, F: np.ndarray, y: np.ndarray) -> "_Combiner":
        from sklearn.linear_model import LogisticRegression
        self.const = None
        if len(np.unique(y)) < 2:
            self.const = int(y[0])
            return self
        self.lr = LogisticRegression(C=1.0, max_iter=1000).fit(F, y)
        return self

    def predict(self, F: np.ndarray) -> np.ndarray:
        if self.const is not None:
            return np.full(len(F), self.const)
        return self.lr.predict(F)


@dataclass
class Simulatability:
    """The harness's table (one row per test and explanation type) and what was explained."""

    table: pd.DataFrame
    explained: int                    # inputs explained (training inputs, and x of counterfactual pairs)
    seconds: float
    params: dict = field(default_factory=dict)

    def text(self) -> str:
        lines = []
        for _, r in self.table.iterrows():
            lines.append(f"{r['test']:<14} {r['method']:<10} baseline {r['baseline']:.3f} -> {r['explained']:.3f}: gain "
                         f"{r['gain']:+.3f} (95% CI {r['gain_low']:+.3f}..{r['gain_high']:+.3f}), NSG {r['nsg']:+.3f}")
        return "\n".join(lines)


def run(task: Any, *, kinds: Sequence[str] = KINDS, tests: Sequence[str] = TESTS, k: int = 32, n_test: int = 100,
        seed: int = 0, n_boot: int = 2000, simulator: Any = "learned") -> Simulatability:
    """Both tests on a task (see :mod:`whybox.simulate.tabular` / :mod:`whybox.simulate.text`)."""
    t0 = time.perf_counter()
    check("k", k, decl=Int(4, 10_000))
    check("n_test", n_test, decl=Int(2, 1_000_000))
    check("seed", seed)
    kinds = list(kinds)
    bad = [c for c in kinds if c not in KINDS]
    if bad or not kinds:
        raise InputError(f"kinds must be a non-empty list of {list(KINDS)}, got {kinds!r}")
    bad = [t for t in tests if t not in TESTS]
    if bad or not tests:
        raise InputError(f"tests must be a non-empty list of {list(TESTS)}, got {list(tests)!r}")
    n = task.n_pool
    if k + n_test > n:
        raise InputError(f"k + n_test = {k + n_test} is more than the {n} inputs in the data")
    rng = np.random.default_rng(seed)
    order = rng.permutation(n)
    train, test = order[:k], order[k:k + n_test]
    rows = []
    if "forward" in tests:
        rows += _forward(task, kinds, train, test, n_boot, seed, simulator)
    if "counterfactual" in tests:
        rows += _counterfactual(task, kinds, train, test, rng, n_boot, seed, simulator)
    return Simulatability(pd.DataFrame(rows), task.n_explained, time.perf_counter() - t0,
                          {"k": k, "n_test": n_test, "seed": seed, "kinds": kinds, "tests": list(tests),
                           "simulator": simulator if isinstance(simulator, str) else type(simulator).__name__})


def _forward(task, kinds, train, test, n_boot, seed, simulator) -> list[dict]:
    Xtr, Xte = task.inputs(train), task.inputs(test)
    ytr = task.labels(Xtr)
    yte = task.labels(Xte)                         # for scoring only: no simulator sees them
    rows = []
    if simulator != "learned":
        return _forward_llm(task, kinds, Xtr, ytr, Xte, yte, n_boot, seed, simulator)
    base_te = task.baseline(Xtr, ytr).logit(Xte)
    base_acc = ((base_te > 0).astype(int) == yte).astype(float)
    base_cv = _cv_logits(task, Xtr, ytr)
    for kind in kinds:
        E = [task.explain(kind, _take(Xtr, [i])) for i in range(len(ytr))]
        cue_loo = np.array([task.forward_cue(kind, _drop(Xtr, i), np.delete(ytr, i), E[:i] + E[i + 1:],
                                             _take(Xtr, [i]))[0] for i in range(len(ytr))])
        cue_te = task.forward_cue(kind, Xtr, ytr, E, Xte)
        how = _choose(base_cv, _logit(cue_loo), ytr)
        acc = ((_mix(how, base_te, _logit(cue_te)) > 0).astype(int) == yte).astype(float)
        g, lo, hi = paired_gain(base_acc, acc, n_boot=n_boot, seed=seed)
        rows.append({"test": "forward", "method": kind, "baseline": base_acc.mean(), "explained": acc.mean(),
                     "gain": g, "gain_low": lo, "gain_high": hi, "nsg": nsg(base_acc.mean(), g),
                     "precision": np.nan, "generality": np.nan, "n_train": len(ytr), "n_test": len(yte),
                     "uses": how})
    return rows


def _cv_logits(task, X, y, folds: int = 3, at: Any = None) -> np.ndarray:
    """Out-of-fold baseline logits at X (or at ``at``, one input per row of X), 3-fold: leave-one-out
    biases small balanced samples against each held-out label."""
    at = X if at is None else at
    out = np.zeros(len(y))
    parts = np.array_split(np.arange(len(y)), folds)
    for part in parts:
        keep = np.setdiff1d(np.arange(len(y)), part)
        out[part] = task.baseline(_take(X, list(keep)), y[keep]).logit(_take(at, list(part)))
    return out


def _mix(how: str, base: np.ndarray, cue: np.ndarray) -> np.ndarray:
    return base if how == "baseline" else cue if how == "explanation" else (np.clip(base, -4, 4) + cue) / 2


def _choose(base: np.ndarray, cue: np.ndarray, y: np.ndarray) -> str:
    """The explanation-phase simulator: the baseline, the explanation's cue, or both averaged,
    whichever predicts the training inputs best out of sample (ties: the baseline, then both)."""
    hits = {h: int(((_mix(h, base, cue) > 0).astype(int) == y).sum()) for h in ("baseline", "both", "explanation")}
    margin = max(1, int(round(0.1 * len(y))))              # switch only when clearly better (10% of k)
    best = max(hits["both"], hits["explanation"])
    if best < hits["baseline"] + margin:
        return "baseline"
    return "both" if hits["both"] >= best else "explanation"


def _counterfactual(task, kinds, train, test, rng, n_boot, seed, simulator) -> list[dict]:
    Xtr, Xte = task.inputs(train), task.inputs(test)
    ytr, yte = task.labels(Xtr), task.labels(Xte)
    Etr_x = task.edits(Xtr, rng)
    Ete_x = task.edits(Xte, rng)
    y_edit_tr = task.labels(Etr_x)                 # training pairs: the simulator may learn from them
    y_edit_te = task.labels(Ete_x)                 # for scoring only
    base = task.baseline(Xtr, ytr)
    # out-of-fold baseline logits on the training edits: an edit is close to its own source input,
    # which an in-sample baseline has memorised
    Ftr = np.column_stack([_cv_logits(task, Xtr, ytr, at=Etr_x), 2.0 * ytr - 1])
    Fte = np.column_stack([base.logit(Ete_x), 2.0 * yte - 1])
    base_acc = (_Combiner().fit(Ftr, y_edit_tr).predict(Fte) == y_edit_te).astype(float)
    rows = []
    for kind in kinds:
        cue_tr = np.empty(len(ytr))
        cue_te = np.empty(len(yte))
        applies = np.zeros(len(yte), bool)
        for i in range(len(ytr)):
            e = task.explain(kind, _take(Xtr, [i]))
            cue_tr[i] = task.cf_cue(kind, e, _take(Xtr, [i]), ytr[i], _take(Etr_x, [i]))[0]
        for i in range(len(yte)):
            e = task.explain(kind, _take(Xte, [i]))              # x's explanation, never x''s
            c, ok = task.cf_cue(kind, e, _take(Xte, [i]), yte[i], _take(Ete_x, [i]))
            cue_te[i], applies[i] = c, ok
        comb = _Combiner().fit(np.column_stack([Ftr, _logit(cue_tr)]), y_edit_tr)
        acc = (comb.predict(np.column_stack([Fte, _logit(cue_te)])) == y_edit_te).astype(float)
        g, lo, hi = paired_gain(base_acc, acc, n_boot=n_boot, seed=seed)
        prec = float(((cue_te[applies] > 0.5).astype(int) == y_edit_te[applies]).mean()) if applies.any() else np.nan
        gen = task.generality(_take(Ete_x, list(np.flatnonzero(applies)))) if applies.sum() > 1 else np.nan
        rows.append({"test": "counterfactual", "method": kind, "baseline": base_acc.mean(), "explained": acc.mean(),
                     "gain": g, "gain_low": lo, "gain_high": hi, "nsg": nsg(base_acc.mean(), g),
                     "precision": prec, "generality": gen, "n_train": len(ytr), "n_test": len(yte)})
    return rows


def _forward_llm(task, kinds, Xtr, ytr, Xte, yte, n_boot, seed, sim) -> list[dict]:
    base_pred = sim.predict(task.describe(Xtr), ytr, None, task.describe(Xte))
    base_acc = (np.asarray(base_pred) == yte).astype(float)
    rows = []
    for kind in kinds:
        E = [task.explain(kind, _take(Xtr, [i])) for i in range(len(ytr))]
        pred = sim.predict(task.describe(Xtr), ytr, [task.explanation_text(kind, e) for e in E], task.describe(Xte))
        acc = (np.asarray(pred) == yte).astype(float)
        g, lo, hi = paired_gain(base_acc, acc, n_boot=n_boot, seed=seed)
        rows.append({"test": "forward", "method": kind, "baseline": base_acc.mean(), "explained": acc.mean(),
                     "gain": g, "gain_low": lo, "gain_high": hi, "nsg": nsg(base_acc.mean(), g),
                     "precision": np.nan, "generality": np.nan, "n_train": len(ytr), "n_test": len(yte)})
    return rows


def _take(X: Any, idx: Sequence[int]) -> Any:
    if isinstance(X, list):
        return [X[i] for i in idx]
    return np.asarray(X)[list(idx)]


def _drop(X: Any, i: int) -> Any:
    if isinstance(X, list):
        return X[:i] + X[i + 1:]
    return np.delete(np.asarray(X), i, axis=0)
