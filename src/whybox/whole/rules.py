"""Rules a person can read: conditions on features, the tree's leaves as rules, and an ordered rule
list (a decision list) learnt by sequential covering.

Rules live in the encoded space of :mod:`whybox.whole.sampling` (categorical columns as integer
codes); :meth:`Condition.text` turns a code test back into the categories it selects.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin

from whybox.core.validation import as_python
from whybox.errors import InputError


@dataclass(frozen=True)
class Condition:
    """``feature op value`` on an encoded column: op is "<=", ">" or "in" (a set of category codes)."""

    column: int
    op: str
    value: Any

    def holds(self, E: np.ndarray) -> np.ndarray:
        col = E[:, self.column]
        if self.op == "<=":
            return col <= self.value
        if self.op == ">":
            return col > self.value
        return np.isin(col, list(self.value))

    def text(self, names: Sequence[str], categories: Sequence[Any] | None = None, binary: Sequence[bool] | None = None) -> str:
        name = names[self.column]
        cats = categories[self.column] if categories is not None else None
        if cats is not None:
            codes = (sorted(self.value) if self.op == "in" else
                     [i for i in range(len(cats)) if (i <= self.value if self.op == "<=" else i > self.value)])
            chosen = [str(cats[int(i)]) for i in codes if 0 <= int(i) < len(cats)]
            return f"{name} is {chosen[0]}" if len(chosen) == 1 else f"{name} is one of {', '.join(chosen)}"
        if binary is not None and binary[self.column] and self.op in ("<=", ">") and 0 <= self.value < 1:
            return f"{name} = {0 if self.op == '<=' else 1}"
        return f"{name} {self.op} {_num(self.value)}"


@dataclass
class Rule:
    """If every condition holds, the surrogate predicts ``prediction``. ``support``: share of the
    samples it was fitted on that reach the rule; ``n``: how many."""

    conditions: list[Condition]
    prediction: Any
    support: float = 0.0
    n: int = 0
    extra: dict = field(default_factory=dict)

    def holds(self, E: np.ndarray) -> np.ndarray:
        ok = np.ones(E.shape[0], dtype=bool)
        for c in self.conditions:
            ok &= c.holds(E)
        return ok

    def text(self, names: Sequence[str], categories: Sequence[Any] | None = None,
             binary: Sequence[bool] | None = None, *, outcome: str = "the model says") -> str:
        conds = " and ".join(c.text(names, categories, binary) for c in _merge(self.conditions))
        pred = self.prediction if isinstance(self.prediction, str) else _num(self.prediction)
        head = f"If {conds}" if conds else "Otherwise"
        if isinstance(self.prediction, str):
            return f"{head}, {outcome} '{pred}'"
        return f"{head}, {outcome} {pred}"


def _num(v: Any) -> str:
    v = float(v)
    return f"{v:.4g}" if abs(v) < 1e5 else f"{v:,.0f}"


def _merge(conds: Sequence[Condition]) -> list[Condition]:
    """Conditions on one column merged: the tightest "<=" and ">" bound, category sets intersected."""
    out: dict[tuple[int, str], Condition] = {}
    for c in conds:
        key = (c.column, c.op)
        old = out.get(key)
        if old is None:
            out[key] = c
        elif c.op == "<=":
            out[key] = Condition(c.column, "<=", min(old.value, c.value))
        elif c.op == ">":
            out[key] = Condition(c.column, ">", max(old.value, c.value))
        else:
            out[key] = Condition(c.column, "in", frozenset(old.value) & frozenset(c.value))
    return sorted(out.values(), key=lambda c: (c.column, c.op))


def tree_rules(tree: Any, labels: Sequence[Any] | None, n_total: int | None = None) -> list[Rule]:
    """One rule per leaf of a fitted scikit-learn decision tree (classifier: majority class; regressor:
    leaf mean), largest leaves first."""
    t = tree.tree_
    total = float(t.weighted_n_node_samples[0])
    rules: list[Rule] = []

    def walk(node: int, conds: list[Condition]) -> None:
        if t.children_left[node] == -1:
            v = t.value[node]
            if labels is not None:
                pred = labels[int(np.argmax(v[0]))]
                purity = float(np.max(v[0]) / max(v[0].sum(), 1e-300))
            else:
                pred, purity = float(v[0][0]), None
            w = float(t.weighted_n_node_samples[node])
            rules.append(Rule(list(conds), pred, support=w / total, n=int(t.n_node_samples[node]),
                              extra={"purity": purity, "node": node}))
            return
        f, thr = int(t.feature[node]), float(t.threshold[node])
        walk(int(t.children_left[node]), conds + [Condition(f, "<=", thr)])
        walk(int(t.children_right[node]), conds + [Condition(f, ">", thr)])

    walk(0, [])
    return sorted(rules, key=lambda r: -r.support)


class RuleListClassifier(ClassifierMixin, BaseEstimator):
    """An ordered rule list (decision list) learnt by sequential covering.

    Each rule is the conjunction of at most ``max_conditions`` predicates (``x_j <= t`` / ``x_j > t``
    at the ``n_thresholds`` quantiles of a numeric column, ``x_j in {code}`` for a categorical one),
    found by beam search (``beam_width``) maximising the m-estimate of its best class's precision,
    (n_c + m p_c) / (n + m) with p_c the class's share among the rows not covered by earlier rules
    (Cestnik 1990; it favours rules that are both precise and not tiny, where Laplace's
    (n_c + 1) / (n + K) favours small pure ones), with at least ``min_support`` rows. Rules are added while they beat the default rule's accuracy on what is
    left, up to ``max_rules``; the last rule is the default (the majority class of what is left).
    Prediction: the first rule that holds.
    """

    def __init__(self, max_rules: int = 8, max_conditions: int = 3, min_support: float = 0.02,
                 n_thresholds: int = 10, beam_width: int = 5, m: float = 10.0,
                 categorical: Sequence[bool] | None = None):
        self.max_rules = max_rules
        self.max_conditions = max_conditions
        self.min_support = min_support
        self.n_thresholds = n_thresholds
        self.beam_width = beam_width
        self.m = m
        self.categorical = categorical

    def _predicates(self, E: np.ndarray) -> list[Condition]:
        preds: list[Condition] = []
        cat = list(self.categorical) if self.categorical is not None else [False] * E.shape[1]
        for j in range(E.shape[1]):
            col = E[:, j]
            vals = np.unique(col)
            if cat[j]:
                preds += [Condition(j, "in", frozenset([float(v)])) for v in vals]
                continue
            if len(vals) <= 1:
                continue
            if len(vals) <= self.n_thresholds + 1:
                cuts = (vals[:-1] + vals[1:]) / 2
            else:
                cuts = np.unique(np.quantile(col, np.linspace(0, 1, self.n_thresholds + 2)[1:-1]))
                cuts = cuts[(cuts >= vals[0]) & (cuts < vals[-1])]
            for t in cuts:
                preds += [Condition(j, "<=", float(t)), Condition(j, ">", float(t))]
        return preds

    def fit(self, X: Any, y: Any, sample_weight: Any = None) -> "RuleListClassifier":
        E = np.asarray(X, dtype=float)
        y = np.asarray(y)
        if E.ndim != 2 or len(E) != len(y) or len(E) == 0:
            raise InputError(f"X (2-D) and y need the same number of rows, got {E.shape} and {y.shape}")
        for name, v, lo in (("max_rules", self.max_rules, 1), ("max_conditions", self.max_conditions, 1),
                            ("n_thresholds", self.n_thresholds, 1), ("beam_width", self.beam_width, 1)):
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < lo:
                raise InputError(f"{name} must be an integer >= {lo}, got {v!r}")
        self.classes_, yi = np.unique(y, return_inverse=True)
        K = len(self.classes_)
        Y = np.eye(K)[yi]
        w = np.ones(len(E)) if sample_weight is None else np.asarray(sample_weight, dtype=float)
        Yw = Y * w[:, None]
        preds = self._predicates(E)
        P = np.column_stack([p.holds(E) for p in preds]) if preds else np.zeros((len(E), 0), bool)
        left = np.ones(len(E), dtype=bool)
        min_n = max(1.0, float(self.min_support) * w.sum()) if self.min_support < 1 else float(self.min_support)
        self.rules_: list[Rule] = []
        while left.any() and len(self.rules_) < self.max_rules - 1:
            best = self._best_rule(P, Yw, left, min_n, K)
            if best is None:
                break
            idx, cls, score = best
            covered = left & P[:, idx].all(axis=1)
            counts = Yw[left].sum(axis=0)
            default_acc = counts.max() / max(counts.sum(), 1e-300)
            prec = Yw[covered, cls].sum() / max(w[covered].sum(), 1e-300)
            if prec <= default_acc + 1e-12:
                break
            self.rules_.append(Rule([preds[i] for i in idx], as_python(self.classes_[cls]), support=float(w[covered].sum() / w.sum()),
                                    n=int(covered.sum()), extra={"precision": float(prec)}))
            left &= ~covered
        counts = Yw[left].sum(axis=0) if left.any() else Yw.sum(axis=0)
        d = int(np.argmax(counts))
        dflt = as_python(self.classes_[d])
        self.rules_.append(Rule([], dflt, support=float(w[left].sum() / w.sum()), n=int(left.sum()),
                                extra={"precision": float(counts[d] / max(counts.sum(), 1e-300))}))
        self.n_features_in_ = E.shape[1]
        return self

    def _best_rule(self, P: np.ndarray, Yw: np.ndarray, left: np.ndarray, min_n: float, K: int):
        if P.shape[1] == 0:
            return None
        beam: list[tuple[tuple[int, ...], np.ndarray]] = [((), left)]
        best = None
        m = float(self.m)
        prior = Yw[left].sum(axis=0) / max(float(Yw[left].sum()), 1e-300)
        for _ in range(int(self.max_conditions)):
            cand: list[tuple[float, tuple[int, ...], int]] = []
            for idx, cov in beam:
                C = (P & cov[:, None]).T.astype(float) @ Yw            # (m, K) weighted class counts
                n = C.sum(axis=1)
                est = (C + m * prior) / (n[:, None] + m)                 # m-estimates of each class's precision
                score = est.max(axis=1)
                score[n < min_n] = -1
                score[list(idx)] = -1
                for j in np.argsort(-score, kind="stable")[: self.beam_width]:
                    if score[j] > 0:
                        cand.append((float(score[j]), tuple(sorted(idx + (int(j),))), int(np.argmax(est[j]))))
            if not cand:
                break
            cand.sort(key=lambda c: -c[0])
            seen, beam = set(), []
            for score, idx, cls in cand:
                if idx in seen:
                    continue
                seen.add(idx)
                if best is None or score > best[2] + 1e-12:
                    best = (list(idx), cls, score)
                cov = left & P[:, list(idx)].all(axis=1)
                beam.append((idx, cov))
                if len(beam) >= self.beam_width:
                    break
        return best

    def predict(self, X: Any) -> np.ndarray:
        E = np.asarray(X, dtype=float)
        out = np.empty(len(E), dtype=object)
        done = np.zeros(len(E), dtype=bool)
        for r in self.rules_:
            hit = ~done & r.holds(E)
            out[hit] = r.prediction
            done |= hit
        return out.astype(self.classes_.dtype) if self.classes_.dtype != object else out
