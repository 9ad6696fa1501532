"""Faithfulness of text explanations, over the explanation's own units and removal strategy.

* comprehensiveness (ERASER, DeYoung et al. 2020): f(x)[t] - f(x without its top-k units)[t];
  higher is better: removing what the explanation calls important should hurt;
* sufficiency: f(x)[t] - f(only the top-k units)[t]; lower is better;
* both aggregated as AOPC, the mean over k = ceil(q d) for the fractions q (as ferret does,
  q = 0.1, ..., 0.9 by default);
* deletion/insertion curves over units (most important first) with their AUC over the fraction of
  units removed/inserted (lower deletion AUC, higher insertion AUC is better).

Units are ranked by attribution value, largest first (``order="value"``), or by |value|
(``order="abs"``). All perturbed texts of all explanations go to the model in one batched pass.
"""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from whybox.core.explanation import Explanation
from whybox.errors import InputError
from whybox.models.text import as_text_model
from whybox.representations.text import TextUnits

DEFAULT_FRACTIONS = tuple(np.round(np.arange(0.1, 1.0, 0.1), 1))


def units_of(exp: Explanation) -> TextUnits:
    """The text representation an explanation was computed on (from its params)."""
    p = exp.params
    if p.get("representation") != "text" or "text" not in p or "spans" not in p:
        raise InputError("this is not a text explanation (it has no text and unit spans in params); "
                         "use whybox.explain_text")
    return TextUnits(p["text"], tuple(tuple(s) for s in p["spans"]), p.get("removal", "delete"),
                     p.get("mask_token", "[MASK]"), p.get("replacement"), p.get("units", "word"))


def _as_list(explanations: Any) -> list[Explanation]:
    if isinstance(explanations, Explanation):
        return [explanations]
    items = list(explanations)
    if not items or not all(isinstance(e, Explanation) for e in items):
        raise InputError("pass a text Explanation or a non-empty list of them")
    return items


def _rank(values: np.ndarray, order: str) -> np.ndarray:
    if order == "value":
        return np.argsort(-values, kind="stable")
    if order == "abs":
        return np.argsort(-np.abs(values), kind="stable")
    raise InputError(f"order must be 'value' or 'abs', got {order!r}")


def _evaluate(model: Any, exps: list[Explanation], designs: list[np.ndarray], output: str) -> list[np.ndarray]:
    """f(texts of design i)[target of i] for every explanation i, in one batched model pass.

    The original texts go first: if the model does not reproduce an explanation's prediction, the
    metric would score another model (or another output), so that is an error."""
    m = as_text_model(model, output=output)
    texts, bounds = [e.params.get("text") for e in exps], []
    for e, Z in zip(exps, designs):
        t = units_of(e).texts(Z)
        bounds.append((len(texts), len(texts) + len(t)))
        texts += t
    out = m(texts)
    for i, e in enumerate(exps):
        got, want = out[i, int(e.target[0])], e.predictions[0]
        if not np.isclose(got, want, rtol=1e-5, atol=1e-6):
            raise InputError(f"explanation {i}: the model gives {got:.6g} on its text but the explanation says "
                             f"{want:.6g}; score it with the model (and output=...) it explains")
    return [out[a:b, int(e.target[0])] for (a, b), e in zip(bounds, exps)]


def _top_k_masks(d: int, order_idx: np.ndarray, ks: Sequence[int], keep_top: bool) -> np.ndarray:
    Z = np.zeros((len(ks) + 1, d), dtype=bool)        # row 0: the full text
    Z[0] = True
    for r, k in enumerate(ks, start=1):
        top = np.zeros(d, bool)
        top[order_idx[:k]] = True
        Z[r] = top if keep_top else ~top
    return Z


def _aopc(model: Any, explanations: Any, fractions: Sequence[float], order: str, keep_top: bool,
          output: str) -> np.ndarray:
    exps = _as_list(explanations)
    fr = np.asarray(fractions, dtype=float)
    if fr.ndim != 1 or len(fr) == 0 or (fr <= 0).any() or (fr > 1).any():
        raise InputError(f"fractions must be a non-empty list of numbers in (0, 1], got {list(fractions)}")
    designs = []
    for e in exps:
        d = e.values.shape[1]
        ks = [max(1, int(np.ceil(q * d - 1e-9))) for q in fr]
        designs.append(_top_k_masks(d, _rank(e.values[0], order), ks, keep_top))
    outs = _evaluate(model, exps, designs, output)
    return np.array([v[0] - v[1:].mean() for v in outs])


def comprehensiveness(model: Any, explanations: Any, *, fractions: Sequence[float] = DEFAULT_FRACTIONS,
                      order: str = "value", output: str = "auto") -> np.ndarray:
    """AOPC comprehensiveness per text: mean over q of f(x) - f(x without the top ceil(q d) units).
    ``output`` picks a scikit-learn model's scores as in :func:`whybox.explain_text`."""
    return _aopc(model, explanations, fractions, order, keep_top=False, output=output)


def sufficiency(model: Any, explanations: Any, *, fractions: Sequence[float] = DEFAULT_FRACTIONS,
                order: str = "value", output: str = "auto") -> np.ndarray:
    """AOPC sufficiency per text: mean over q of f(x) - f(only the top ceil(q d) units)."""
    return _aopc(model, explanations, fractions, order, keep_top=True, output=output)


def _curves(model: Any, explanations: Any, order: str, insertion: bool, output: str) -> tuple[list[np.ndarray], np.ndarray]:
    exps = _as_list(explanations)
    designs = []
    for e in exps:
        d = e.values.shape[1]
        rank = np.empty(d, dtype=np.intp)
        rank[_rank(e.values[0], order)] = np.arange(d)
        touched = rank[None, :] < np.arange(d + 1)[:, None]          # (d+1, d): first t units
        designs.append(touched if insertion else ~touched)
    curves = _evaluate(model, exps, designs, output)
    trap = getattr(np, "trapezoid", None) or np.trapz
    auc = np.array([trap(c, dx=1.0 / (len(c) - 1)) for c in curves])
    return curves, auc


def word_deletion_curve(model: Any, explanations: Any, *, order: str = "value",
                        output: str = "auto") -> tuple[list[np.ndarray], np.ndarray]:
    """Output as units are removed most-important first: (curves, one of length d+1 per text; AUC per
    text over the fraction removed). Lower AUC is better."""
    return _curves(model, explanations, order, insertion=False, output=output)


def word_insertion_curve(model: Any, explanations: Any, *, order: str = "value",
                         output: str = "auto") -> tuple[list[np.ndarray], np.ndarray]:
    """Output as units are inserted into the fully removed text most-important first. Higher AUC is better."""
    return _curves(model, explanations, order, insertion=True, output=output)
