"""Anchors (Ribeiro, Singh & Guestrin, AAAI 2018): "if these predicates hold, the model says y", with
precision >= ``threshold`` and the largest coverage, found by beam search with KL-LUCB.

The search is the same for every representation; a representation gives the candidate predicates
for one input, draws samples conditioned on a set of predicates (``sample``), and measures the share
of its distribution a set covers (``coverage``):

* tabular (:mod:`whybox.anchors.tabular`): one predicate per interpretable feature (a one-hot group
  is one feature): a numeric feature's quartile bin of the explained row, a categorical or binary
  feature's value; samples are training rows that satisfy the anchor (jointly), coverage is the share
  of training rows that do;
* text (:mod:`whybox.anchors.text`): one predicate per word of the text ("the word is present");
  samples keep the anchored words and each other word with probability 1/2 (others deleted or
  masked); coverage is the share of those perturbations in which the anchor holds, 2^-|A|.

Search, for anchor sizes 1, 2, ... up to ``max_size``: the candidates are the beam's anchors extended
by one predicate, minus those that cannot beat the coverage of the best valid anchor so far; each is
sampled ``batch_size`` times, KL-LUCB picks the ``beam_size`` most precise (to within ``epsilon``,
confidence 1 - ``delta``), and each of those is sampled until its precision's KL confidence interval
(at level log(1/delta)) lies on one side of the threshold. An anchor is **valid** when its estimate
and the interval's lower end are both >= ``threshold``; the result is the valid anchor with the
largest coverage. When none is valid within the budget or the sizes, the most precise anchor found is
returned with ``valid=False`` and says so (it is never presented as meeting the threshold).
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from whybox.anchors.bandit import Arms, kl_lower, kl_upper, lucb
from whybox.core.validation import as_python
from whybox.errors import BudgetError, InputError
from whybox.params import Float, Int, check

PARAMS = {
    "threshold": Float(0, 1, low_open=True),
    "delta": Float(0, 1, low_open=True, high_open=True),
    "epsilon": Float(0, 1, low_open=True),
    "beam_size": Int(1, 100),
    "max_size": Int(1, 100, none=True),
    "anchor_batch": Int(1, 100_000),
    "budget": Int(1, 10**9),
    "max_validation": Int(1, 10**7),
}


@dataclass
class Anchor:
    """An anchor rule and how far it holds.

    predicates : the rule's conditions in words; features : the features (or words) they are on.
    prediction : the model's answer for the explained input, which the rule is about.
    precision : estimated P(model says ``prediction`` | rule holds), from ``n_samples`` samples;
        precision_low / precision_high : its KL confidence interval at 1 - delta.
    coverage : the share of the sampling distribution (tabular: training rows) where the rule holds.
    valid : precision and its lower bound reach ``threshold``; reason : why not, when not.
    n_queries : model rows spent.
    """

    predicates: list[str]
    features: list[Any]
    prediction: Any
    precision: float
    precision_low: float
    precision_high: float
    coverage: float
    valid: bool
    threshold: float
    n_samples: int
    n_queries: int
    seconds: float
    reason: str = ""
    params: dict = field(default_factory=dict)
    indices: tuple = ()

    def text(self) -> str:
        rule = " AND ".join(self.predicates) if self.predicates else "(always)"
        head = f"IF {rule} THEN the model says '{self.prediction}'"
        stats = (f"precision {self.precision:.3f} (lower bound {self.precision_low:.3f}, {self.n_samples:,} samples), "
                 f"coverage {self.coverage:.3f}; {self.n_queries:,} model queries")
        if self.valid:
            return f"{head}. Holds: {stats}, threshold {self.threshold:g}."
        return (f"No anchor reached precision {self.threshold:g}: {self.reason}. Best found (NOT valid): {head}; "
                f"{stats}.")

    def to_dict(self) -> dict[str, Any]:
        return {"predicates": self.predicates, "features": [str(f) for f in self.features],
                "prediction": self.prediction if isinstance(self.prediction, (str, int, float)) else str(self.prediction),
                "precision": self.precision, "precision_low": self.precision_low, "precision_high": self.precision_high,
                "coverage": self.coverage, "valid": self.valid, "threshold": self.threshold,
                "n_samples": self.n_samples, "n_queries": self.n_queries, "seconds": self.seconds,
                "reason": self.reason, "params": self.params, "text": self.text()}


def check_params(threshold, delta, epsilon, beam_size, max_size, batch_size, budget, max_validation) -> None:
    for name, v, key in (("threshold", threshold, "threshold"), ("delta", delta, "delta"),
                         ("epsilon", epsilon, "epsilon"), ("beam_size", beam_size, "beam_size"),
                         ("max_size", max_size, "max_size"), ("batch_size", batch_size, "anchor_batch"),
                         ("budget", budget, "budget"), ("max_validation", max_validation, "max_validation")):
        check(name, v, decl=PARAMS[key])


def search(rep: Any, model: Any, *, labels: Callable[[Any], np.ndarray], target: int, target_name: Any,
           threshold: float, delta: float, epsilon: float, beam_size: int, max_size: int | None, batch_size: int,
           max_validation: int, seed: int, t0: float) -> Anchor:
    """The beam search over ``rep``'s predicates (see the module docstring). ``model`` is the counted
    Model whose ``remaining`` budget bounds the sampling; ``labels(inputs)`` its class indices (through
    ``model``); ``target`` the explained input's class and ``target_name`` its label."""
    rng = np.random.default_rng(seed)
    n_pred = rep.n_predicates
    if n_pred == 0:
        raise InputError("the input has no feature (or word) to anchor on")
    max_size = n_pred if max_size is None else min(int(max_size), n_pred)
    first = n_pred * batch_size
    if model.remaining < first:
        raise InputError(f"budget={int(model.budget):,} is too small for the bandit: the first round samples each of "
                         f"the {n_pred} candidate predicates {batch_size} times ({first:,} model rows)")
    # every sample is kept with the predicates it satisfies and whether the model kept its answer: a
    # sample drawn for anchor A that satisfies predicate p is a draw conditioned on A + p, so an
    # extension starts from its parent's samples that satisfy it (as alibi does)
    store = {"sat": np.zeros((0, n_pred), bool), "hit": np.zeros(0, bool)}
    ids: dict[tuple, np.ndarray] = {}

    def draw(anchor: tuple, n: int) -> int:
        inputs, sat = rep.sample(anchor, n, rng)
        hit = labels(inputs) == target
        start = len(store["hit"])
        store["sat"] = np.vstack([store["sat"], np.asarray(sat, bool)])
        store["hit"] = np.concatenate([store["hit"], hit])
        ids[anchor] = np.concatenate([ids.get(anchor, np.zeros(0, np.int64)), np.arange(start, start + n)])
        return int(hit.sum())

    def inherit(c: tuple, parent: tuple) -> None:
        if c in ids or parent not in ids:
            return
        par = ids[parent]
        ids[c] = par[store["sat"][par][:, list(c)].all(axis=1)]

    def stats(c: tuple) -> tuple[float, float]:
        """(samples where the model kept its answer, samples) of anchor ``c``."""
        i = ids.get(c, np.zeros(0, np.int64))
        return float(store["hit"][i].sum()), float(len(i))

    def can(n: int) -> bool:
        return model.remaining >= n

    level = math.log(1.0 / delta)
    best_valid: tuple | None = None
    best_cov = -1.0
    best_any: tuple | None = None
    reason = ""
    beam: list[tuple] = [()]
    try:
        if can(first + 2 * batch_size):
            draw((), 2 * batch_size)            # unconditional samples seed every first-round candidate
        for size in range(1, max_size + 1):
            parents: dict[tuple, tuple] = {}
            for a in beam:
                for p in range(n_pred):
                    if p not in a and rep.compatible(a, p):
                        parents.setdefault(tuple(sorted(a + (p,))), a)
            cands = [c for c in sorted(parents) if rep.coverage(c) > best_cov]
            for c in cands:
                inherit(c, parents[c])
            if not cands:
                break
            arms = Arms(len(cands), lambda i, n: draw(cands[i], n))
            for i, c in enumerate(cands):
                arms.pos[i], arms.n[i] = stats(c)
                if arms.n[i] < batch_size:
                    need = batch_size - int(arms.n[i])
                    if not can(need):
                        raise _Out()
                    arms.pull(i, need)
            top = lucb(arms, min(beam_size, len(cands)), delta=delta, epsilon=epsilon, batch=batch_size,
                       max_rounds=10_000, can_pull=can)
            for i in top:
                c = cands[i]
                while True:
                    hits, n = stats(c)
                    p = hits / n
                    lo, hi = kl_lower(p, level / n), kl_upper(p, level / n)
                    undecided = (p >= threshold and lo < threshold) or (p < threshold and hi >= threshold)
                    if not undecided or n >= max_validation or not can(batch_size):
                        break
                    draw(c, batch_size)
                hits, n = stats(c)
                p = hits / n
                lo = kl_lower(p, level / n)
                if best_any is None or p > stats(best_any)[0] / stats(best_any)[1]:
                    best_any = c
                if p >= threshold and lo >= threshold and rep.coverage(c) > best_cov:
                    best_valid, best_cov = c, rep.coverage(c)
            beam = [cands[i] for i in top]
        if best_valid is None:
            reason = (f"no rule of at most {max_size} predicates was precise enough" if model.remaining >= batch_size
                      else "the budget ran out")
    except (_Out, BudgetError):
        reason = "the budget ran out"
    chosen = best_valid if best_valid is not None else best_any
    if chosen is None:
        raise InputError("the budget ran out before any anchor could be measured; raise the budget")
    hits, n = stats(chosen)
    p = hits / n
    return Anchor(predicates=[rep.predicate_text(i) for i in chosen], features=[rep.feature_of(i) for i in chosen],
                  prediction=as_python(target_name), precision=p, precision_low=kl_lower(p, level / n),
                  precision_high=kl_upper(p, level / n), coverage=rep.coverage(chosen),
                  valid=best_valid is not None, threshold=threshold, n_samples=int(n), n_queries=int(model.n_rows),
                  seconds=time.perf_counter() - t0, reason="" if best_valid is not None else reason,
                  params={"threshold": threshold, "delta": delta, "epsilon": epsilon, "beam_size": beam_size,
                          "max_size": max_size, "batch_size": batch_size, "seed": seed},
                  indices=tuple(chosen))


class _Out(Exception):
    """The budget cannot pay for the next batch."""

