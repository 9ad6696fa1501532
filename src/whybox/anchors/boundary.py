"""Decision-boundary explanations: the nearest input on the other side of the model's decision, and
the smallest change that takes it there — "the model would say y' if ...".

* tabular: the closest valid counterfactual of whybox's counterfactual search (k = 1, the runner-up
  class of a multiclass model), with its constraints;
* text: a search over the text's words: greedy deletions (each step removes the word whose removal
  lowers the predicted class's score most, all candidates in one batched call), optionally
  substitutions from a ``vocabulary``, until the decision flips; then each change is undone again
  while the decision stays flipped, so the edit is minimal for its words.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np

from whybox.core.validation import as_python
from whybox.errors import InputError
from whybox.params import Int, check


@dataclass
class Boundary:
    """``original`` -> ``crossed``: what changed, the answer before and after, and the model rows spent."""

    original: Any
    crossed: Any                      # the input on the other side (None when none was found)
    changes: list[str]
    before: Any
    after: Any
    n_queries: int
    seconds: float
    found: bool
    reason: str = ""
    detail: dict = field(default_factory=dict)

    def text(self) -> str:
        if not self.found:
            return f"No change within the limits makes the model leave '{self.before}': {self.reason}."
        return f"The model would say '{self.after}' instead of '{self.before}' if " + "; ".join(self.changes) + "."

    def to_dict(self) -> dict[str, Any]:
        return {"changes": self.changes, "before": as_python(self.before), "after": as_python(self.after),
                "found": self.found, "n_queries": self.n_queries, "seconds": self.seconds, "reason": self.reason,
                "crossed": self.crossed if isinstance(self.crossed, (str, type(None))) else
                self.crossed.to_dict(orient="records")[0] if hasattr(self.crossed, "to_dict") else str(self.crossed),
                "text": self.text()}


def boundary(model: Any, x: Any, data: Any, *, desired_class: Any = None, seed: int = 0, budget: int | None = None,
             **constraints: Any) -> Boundary:
    """The nearest tabular input across the decision boundary (see the module docstring);
    ``constraints`` go to :func:`whybox.counterfactuals.counterfactuals` (``immutable``, ``monotone``...)."""
    from whybox.counterfactuals import counterfactuals
    from whybox.problem import Problem

    t0 = time.perf_counter()
    if desired_class is None:                  # binary: the other class; multiclass: the runner-up
        pr = Problem.build(model, data)
        out = pr.model(pr.matrix(x, name="x"))[0]
        desired_class = "opposite" if len(out) <= 2 else int(np.argsort(-out, kind="stable")[1])
    cs = counterfactuals(model, x, data=data, k=1, desired_class=desired_class, seed=seed, budget=budget, **constraints)
    names = cs.output_names

    def lab(out: np.ndarray) -> Any:
        if len(out) > 1:
            j = int(np.argmax(out))
            return names[j] if names is not None else j
        return int(out[0] > 0.5)
    before = lab(cs.original_output)
    if len(cs) == 0:
        return Boundary(cs.original, None, [], before, None, cs.n_model_rows, time.perf_counter() - t0, False,
                        cs.reason or "no counterfactual found")
    ch = [f"{f} were {_fmt(b)} instead of {_fmt(a)}" for f, (a, b) in cs.changes[0].items()]
    return Boundary(cs.original, cs.counterfactuals.iloc[[0]], ch, before, lab(cs.outputs[0]), cs.n_model_rows,
                    time.perf_counter() - t0, True, detail={"metrics": cs.metrics})


def _fmt(v: Any) -> str:
    try:
        return f"{float(v):.4g}"
    except (TypeError, ValueError):
        return str(v)


def boundary_text(model: Any, text: str, *, vocabulary: Sequence[str] | None = None, max_changes: int = 10,
                  removal: str = "delete", budget: int | None = 20_000) -> Boundary:
    """The smallest word edit of ``text`` that flips the classifier's decision (see the module docstring)."""
    from whybox.models.text import as_text_model
    from whybox.representations.text import TextUnits

    t0 = time.perf_counter()
    check("max_changes", max_changes, decl=Int(1, 10_000))
    check("budget", budget)
    if not isinstance(text, str) or not text.strip():
        raise InputError(f"text must be a non-empty string, got {text!r}")
    vocab = [str(v) for v in (vocabulary or [])]
    m = as_text_model(model).child(budget=budget)      # its own counters and budget; never the caller's
    m.cache = True
    units = TextUnits.build(text, units="word", removal=removal)
    words = list(units.units)
    out0 = m([text])[0]
    if len(out0) < 2:
        raise InputError("a decision boundary needs a classifier; this text model returns one score per text")
    names = m.output_names
    pred = int(np.argmax(out0))
    name = (lambda j: names[j] if names is not None else j)

    def render(state: list[str | None]) -> str:
        keep = np.array([s is not None for s in state], dtype=float)
        if all(s is None or s == w for s, w in zip(state, words)):
            return units.texts(keep[None])[0]
        pieces, last = [], 0
        for (a, b), s in zip(units.spans, state):
            pieces.append(text[last:a])
            pieces.append("" if s is None else s)
            last = b
        pieces.append(text[last:])
        return " ".join("".join(pieces).split())

    state: list[str | None] = list(words)
    flipped = False
    try:
        for _ in range(max_changes):
            cands, moves = [], []
            for i, w in enumerate(words):
                if state[i] != w:
                    continue
                s = list(state)
                s[i] = None
                cands.append(render(s))
                moves.append((i, None))
                for v in vocab:
                    if v != w:
                        s = list(state)
                        s[i] = v
                        cands.append(render(s))
                        moves.append((i, v))
            if not cands:
                break
            outs = m([c if c.strip() else "." for c in cands])
            score = outs[:, pred]
            flips = np.flatnonzero(outs.argmax(axis=1) != pred)
            j = int(flips[np.argmin(score[flips])]) if len(flips) else int(np.argmin(score))
            i, v = moves[j]
            state[i] = v
            if len(flips):
                flipped = True
                break
        if flipped:                                     # undo changes that are not needed
            for i in range(len(words)):
                if state[i] != words[i]:
                    s = list(state)
                    s[i] = words[i]
                    if int(np.argmax(m([render(s) or "."])[0])) != pred:
                        state = s
    except Exception as exc:  # noqa: BLE001 - the budget ran out: report what was found
        from whybox.errors import BudgetError
        if not isinstance(exc, BudgetError):
            raise
        return Boundary(text, None, [], name(pred), None, int(m.n_rows), time.perf_counter() - t0, False,
                        "the budget ran out")
    if not flipped:
        return Boundary(text, None, [], name(pred), None, int(m.n_rows), time.perf_counter() - t0, False,
                        f"no edit of at most {max_changes} words flips the decision")
    new = render(state)
    after = int(np.argmax(m([new])[0]))
    changes = [f"'{w}' were removed" if s is None else f"'{w}' were '{s}'" for w, s in zip(words, state) if s != w]
    return Boundary(text, new, changes, as_python(name(pred)), as_python(name(after)), int(m.n_rows),
                    time.perf_counter() - t0, True)
