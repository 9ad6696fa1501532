"""Anchors for tabular models: predicates on quartile bins and categories (see
:mod:`whybox.anchors.search` for the search)."""
from __future__ import annotations

import time
from typing import Any

import numpy as np

from whybox.core.validation import converts_to_float
from whybox.anchors.search import Anchor, check_params, search
from whybox.errors import InputError
from whybox.params import check
from whybox.problem import Problem


class TabularAnchors:
    """The candidate predicates of one row: for a numeric feature with more than 4 values, "f > e" or
    "f <= e" at each of the training data's quartile edges e (the side the row is on; alibi's
    ``AnchorTabular`` uses the same quartiles); for a categorical or binary feature or a one-hot group
    (as a whole), its value."""

    def __init__(self, problem: Problem, x: np.ndarray, reference: np.ndarray):
        self.problem = problem
        self.ref = reference
        self.x = x
        spec = problem.spec
        self.features = list(spec.names)
        self.groups = [list(g) for g in spec.groups]
        self.texts: list[str] = []
        self.keys: list[tuple] = []          # per predicate: (feature, direction)
        self.tests: list[tuple] = []         # per predicate: (column(s), op, value)
        self.pred_feature: list[int] = []    # per predicate: index of its interpretable feature
        for f, (name, cols) in enumerate(zip(self.features, self.groups)):
            if len(cols) == 1 and spec.kinds[cols[0]] == "continuous" and converts_to_float(reference[:, cols[0]]) \
                    and len(np.unique(reference[:, cols[0]].astype(float))) > 4:
                j = cols[0]
                q = np.unique(np.quantile(reference[:, j].astype(float), [0.25, 0.5, 0.75]))
                v = float(x[j])
                # one-sided predicates at every quartile edge on either side of the row's value (as in
                # Ribeiro et al.'s code): two of them on one feature make an interval
                for e in q:
                    op = ">" if v > e else "<="
                    self._add(f, f"{name} {op} {_num(e)}", (name, op), (j, op, float(e)))
            else:
                if len(cols) == 1:
                    txt = f"{name} = {_show(x[cols[0]])}"
                else:
                    on = [spec.columns[j] for j in cols if _truthy(x[j])]
                    txt = f"{name} = {on[0] if len(on) == 1 else [_show(x[j]) for j in cols]}"
                self._add(f, txt, (name, "="), (tuple(cols), "=", tuple(x[j] for j in cols)))
        self.M = self.satisfied(reference)   # (reference rows, predicates)

    def _add(self, feature: int, text: str, key: tuple, test: tuple) -> None:
        self.pred_feature.append(feature)
        self.texts.append(text)
        self.keys.append(key)
        self.tests.append(test)

    def satisfied(self, Z: np.ndarray) -> np.ndarray:
        """(rows, predicates): which predicates each row of Z satisfies."""
        out = np.empty((len(Z), len(self.tests)), dtype=bool)
        for i, (where, op, v) in enumerate(self.tests):
            if op == ">":
                out[:, i] = Z[:, where].astype(float) > v
            elif op == "<=":
                out[:, i] = Z[:, where].astype(float) <= v
            else:
                ok = np.ones(len(Z), dtype=bool)
                for j, val in zip(where, v):
                    ok &= _equal(Z[:, j], val)
                out[:, i] = ok
        return out

    @property
    def n_predicates(self) -> int:
        return len(self.tests)

    def compatible(self, anchor: tuple, p: int) -> bool:
        """At most one predicate per feature and direction (a lower and an upper edge make an interval)."""
        return all(self.keys[a] != self.keys[p] for a in anchor)

    def predicate_text(self, i: int) -> str:
        return self.texts[i]

    def feature_of(self, i: int) -> Any:
        return self.features[self.pred_feature[i]]

    def holds(self, anchor: tuple) -> np.ndarray:
        return self.M[:, list(anchor)].all(axis=1) if anchor else np.ones(len(self.ref), bool)

    def coverage(self, anchor: tuple) -> float:
        return float(self.holds(anchor).mean())

    def sample(self, anchor: tuple, n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """``n`` training rows that satisfy the anchor (drawn with replacement), and the predicates each
        satisfies; when fewer than 10 rows do, the anchored features are copied from rows satisfying
        each predicate on its own."""
        ok = np.flatnonzero(self.holds(anchor))
        if len(ok) >= 10 or not anchor:
            pool = ok if anchor else np.arange(len(self.ref))
            idx = pool[rng.integers(0, len(pool), n)]
            return self.ref[idx].copy(), self.M[idx]
        Z = self.ref[rng.integers(0, len(self.ref), n)].copy()
        for p in anchor:
            rows = np.flatnonzero(self.M[:, p])
            cols = self.groups[self.pred_feature[p]]
            if len(rows) == 0:
                Z[:, cols] = self.x[cols]
            else:
                Z[:, cols] = self.ref[rows[rng.integers(0, len(rows), n)]][:, cols]
        return Z, self.satisfied(Z)


def anchor(model: Any, x: Any, data: Any = None, *, threshold: float = 0.95, delta: float = 0.05,
           epsilon: float = 0.1, beam_size: int = 2, max_size: int | None = None, batch_size: int = 100,
           budget: int = 20_000, max_validation: int = 5_000, seed: int = 0, kinds: Any = None,
           groups: Any = None) -> Anchor:
    """The anchor of one row ``x`` of a tabular classifier (see :mod:`whybox.anchors.search`).

    model : anything :class:`whybox.Explainer` accepts, or an Explainer (its data is the default).
    data : training rows: the quartile bins, the conditional samples and the coverage come from them.
    threshold : the precision an anchor must reach (in (0, 1]); delta : 1 - the confidence of its bounds;
    epsilon : KL-LUCB's tolerance; beam_size, max_size : the beam and the most predicates;
    batch_size : samples per bandit pull; budget : model rows in all; max_validation : most samples
    spent deciding one candidate.
    """
    t0 = time.perf_counter()
    check_params(threshold, delta, epsilon, beam_size, max_size, batch_size, budget, max_validation)
    check("seed", seed)
    prepared = isinstance(model, Problem) or isinstance(getattr(model, "problem", None), Problem)
    if data is None and not prepared:
        raise InputError("anchor needs data: training rows to sample from and to measure coverage on")
    problem = Problem.build(model, data, kinds=kinds, groups=groups)
    ref = problem.reference if problem.reference is not None else problem.matrix(data, name="data")
    xm = problem.matrix(x, name="x")
    if xm.shape[0] != 1:
        raise InputError(f"x must be one row, got {xm.shape[0]}")
    # samples are training rows, drawn again and again: each distinct row is asked once (cached), so
    # the candidates of the search share their rows' answers and only new rows cost queries
    m = problem.model.child(budget=budget)
    m.cache = True
    out0 = m(xm)
    if out0.shape[1] < 2 and not m.is_classifier:
        raise InputError("anchors explain a classifier's decision; this model returns one score per row")
    names = m.output_names

    def labels(Z: np.ndarray) -> np.ndarray:
        return _classes(m(Z))

    target = int(_classes(out0)[0])
    name = names[target] if names is not None and out0.shape[1] > 1 else target
    return search(TabularAnchors(problem, xm[0], ref), m, labels=labels, target=target, target_name=name,
                  threshold=threshold, delta=delta, epsilon=epsilon, beam_size=beam_size, max_size=max_size,
                  batch_size=batch_size, max_validation=max_validation, seed=seed, t0=t0)


def _classes(out: np.ndarray) -> np.ndarray:
    """Class indices: the arg-max of the scores, or the labels a one-column classifier returns."""
    return np.rint(out[:, 0]).astype(int) if out.shape[1] == 1 else out.argmax(axis=1)



def _equal(col: np.ndarray, v: Any) -> np.ndarray:
    if converts_to_float(col) and converts_to_float(np.asarray([v])):
        return np.isclose(col.astype(float), float(v))
    return np.asarray([c == v for c in col])


def _truthy(v: Any) -> bool:
    try:
        return float(v) > 0.5
    except (TypeError, ValueError):
        return bool(v)


def _show(v: Any) -> str:
    try:
        f = float(v)
        return f"{f:g}"
    except (TypeError, ValueError):
        return str(v)


def _num(v: float) -> str:
    return f"{float(v):.4g}"
