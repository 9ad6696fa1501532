"""Stability: how much does an explanation change when the input barely changes?"""
from __future__ import annotations

from typing import Any, Callable

import numpy as np

from whybox.core.explanation import Explanation
from whybox.errors import InputError
from whybox.explainers.run import explain_rows
from whybox.metrics._common import setup
from whybox.problem import Problem


def _rel(a: np.ndarray, b: np.ndarray, eps: float, ord: float) -> np.ndarray:
    """|| (a - b) / max(|a|, eps) ||_ord along the last axis (relative change)."""
    return np.linalg.norm((a - b) / np.maximum(np.abs(a), eps), ord=ord, axis=-1)


def _representation_fn(model: Any, representation: Callable | None) -> Callable:
    if representation is not None:
        return representation
    if hasattr(model, "representation") and callable(model.representation):
        import torch

        def rep(X: np.ndarray) -> np.ndarray:
            p = next(model.parameters())
            with torch.no_grad():
                return model.representation(torch.as_tensor(X, dtype=p.dtype)).cpu().numpy()
        return rep
    raise InputError("RRS needs the model's internal representation: pass representation=callable or use a "
                     "torch module with a .representation(x) method")


def relative_stability(model: Any, X: Any, *, method: str, kind: str = "input", explanation: Explanation | None = None,
                       n_perturb: int = 50, std: float = 1e-5, flip_p: float = 0.0, eps: float = 1e-3,
                       ord: float = 2, representation: Callable | None = None, seed: Any = 0,
                       background: Any = None, groups: Any = None, feature_names=None, kinds=None,
                       **explain_kwargs: Any) -> np.ndarray:
    """Relative stability (Agarwal et al. 2022; OpenXAI RIS / ROS / RRS).

    For perturbations x' of x (continuous features + N(0, std^2), binary flipped w.p. flip_p) that keep
    the predicted class, re-explain x' with the same method and seed, and return per row

        max_{x'} ||(e_x - e_x') / e_x||_ord / D(x, x'),

    where D is the relative change of the input (kind="input", RIS), of the model output ("output",
    ROS) or of an internal representation ("representation", RRS). Relative changes divide by
    max(|.|, eps) (OpenXAI clips the denominator from below at eps, which also turns negative
    attributions into eps; whybox uses the magnitude). Lower is better; NaN for a row with no
    same-class perturbation.
    """
    from whybox.metrics.faithfulness import openxai_perturb

    if kind not in ("input", "output", "representation"):
        raise InputError(f"kind must be 'input', 'output' or 'representation', got {kind!r}")
    kw = dict(background=background, groups=groups, feature_names=feature_names, kinds=kinds)
    if explanation is None:
        explanation = explain_rows(Problem.build(model, rows=X, **kw), X, method=method, seed=seed, one_output=True,
                                   **explain_kwargs)
    S = setup(model, X, explanation, seed=seed, **kw)
    n, p = S.X.shape
    allowed = np.ones((n, S.spec.n_features), dtype=bool)
    P = openxai_perturb(S, allowed, n_perturb, std=std, flip_p=flip_p, rngs=S.row_rngs())   # (n, P, p)
    flat = P.reshape(-1, p)
    out_x = S.model(S.X.astype(float))
    out_p = S.model(flat).reshape(n, n_perturb, -1)
    same = out_p.argmax(axis=2) == out_x.argmax(axis=1)[:, None]
    ii, jj = np.nonzero(same)
    scores = np.full(n, np.nan)
    if len(ii) == 0:
        return scores
    pts = P[ii, jj]
    e2 = explain_rows(S.problem, pts, method=method, seed=seed, target_index=S.targets[ii], **explain_kwargs).values
    num = _rel(S.values[ii], e2, eps, ord)
    if kind == "input":
        den = _rel(S.X[ii].astype(float), pts, eps, ord)
    elif kind == "output":
        den = _rel(out_x[ii], out_p[ii, jj], eps, ord)
    else:
        rep = _representation_fn(model, representation)
        den = _rel(np.asarray(rep(S.X[ii].astype(float))), np.asarray(rep(pts)), eps, ord)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(den > 0, num / np.where(den > 0, den, 1), np.nan)
    for i in np.unique(ii):
        r = ratio[ii == i]
        r = r[np.isfinite(r)]
        if len(r):
            scores[i] = r.max()
    return scores


def max_sensitivity(model: Any, X: Any, *, method: str, explanation: Explanation | None = None, radius: float = 0.02,
                    n_perturb: int = 10, seed: Any = 0, background: Any = None, groups: Any = None,
                    feature_names=None, kinds=None, **explain_kwargs: Any) -> np.ndarray:
    """Max-sensitivity (Yeh et al., NeurIPS 2019): max over x' uniform in the L-infinity ball of radius
    ``radius`` * s (s: background std per column) of ||e(x') - e(x)||_2, re-explaining with the same
    method and seed. Lower is better."""
    kw = dict(background=background, groups=groups, feature_names=feature_names, kinds=kinds)
    if explanation is None:
        explanation = explain_rows(Problem.build(model, rows=X, **kw), X, method=method, seed=seed, one_output=True,
                                   **explain_kwargs)
    S = setup(model, X, explanation, seed=seed, **kw)
    n, p = S.X.shape
    U = np.stack([g.uniform(-1, 1, size=(n_perturb, p)) for g in S.row_rngs()]) * radius * S.background.scale()
    pts = (S.X.astype(float)[:, None, :] + U).reshape(-1, p)
    e2 = explain_rows(S.problem, pts, method=method, seed=seed, target_index=np.repeat(S.targets, n_perturb),
                      **explain_kwargs).values.reshape(n, n_perturb, -1)
    return np.linalg.norm(e2 - S.values[:, None, :], axis=2).max(axis=1)
