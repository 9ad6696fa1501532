"""Agreement between two explanations, or between an explanation and the ground truth (OpenXAI
definitions; Krishna et al. 2022, "The Disagreement Problem in Explainable Machine Learning").

Ranks are dense ranks of |attribution| (1 = largest), so ties share a rank. Each function takes two
(n, d) arrays (or Explanations) and returns one score per row in [0, 1] (RC in [-1, 1]). A row that
is NaN in either (an explainer that failed on it, e.g. an unreadable LLM reply) scores NaN: it is left
out, never compared as all-zero attributions. SA and SRA compare signs, so they refuse explanations
made from rankings (``params["from_ranking"]``, e.g. LLM explainers), which have none.
"""
from __future__ import annotations

from typing import Any

import numpy as np
from scipy.stats import rankdata

from whybox.core.explanation import Explanation
from whybox.errors import InputError
from whybox.metrics._common import check_k


def _nan_rows(fn):
    """Score NaN for rows that are NaN in either explanation (computed on zeros, then masked)."""
    import functools

    @functools.wraps(fn)
    def wrapper(a, b, *args, **kw):
        out = fn(a, b, *args, **kw)
        A, B = _pair(a, b, clean=False)
        bad = ~(np.isfinite(A).all(axis=1) & np.isfinite(B).all(axis=1))
        if bad.any():
            out = np.array(out, dtype=float)
            out[bad] = np.nan
        return out
    return wrapper


def _no_rankings(what: str, *es: Any) -> None:
    for e in es:
        if isinstance(e, Explanation) and e.params.get("from_ranking"):
            raise InputError(f"{what} compares signs, but the {e.method!r} explanation comes from a ranking, which has "
                             "no signs: use FA, RA, RC or PRA")


def _pair(a: Any, b: Any, clean: bool = True) -> tuple[np.ndarray, np.ndarray]:
    A = a.values if isinstance(a, Explanation) else np.asarray(a, dtype=float)
    B = b.values if isinstance(b, Explanation) else np.asarray(b, dtype=float)
    A, B = np.atleast_2d(A), np.atleast_2d(B)
    if A.shape[0] == 1 and B.shape[0] > 1:
        A = np.repeat(A, B.shape[0], axis=0)
    if B.shape[0] == 1 and A.shape[0] > 1:
        B = np.repeat(B, A.shape[0], axis=0)
    if A.shape != B.shape:
        raise InputError(f"explanations have different shapes {A.shape} and {B.shape}")
    if isinstance(a, Explanation) and isinstance(b, Explanation) and a.feature_names != b.feature_names:
        raise InputError("explanations are over different features: "
                         f"{a.feature_names} vs {b.feature_names}")
    if clean:
        bad = ~(np.isfinite(A).all(axis=1) & np.isfinite(B).all(axis=1))
        if bad.any():
            A, B = np.where(bad[:, None], 0.0, A), np.where(bad[:, None], 0.0, B)
    return A, B


def _ranks(A: np.ndarray) -> np.ndarray:
    return rankdata(-np.abs(A), method="dense", axis=1)


def _topk(A: np.ndarray, k: int) -> np.ndarray:
    return np.argsort(-np.abs(A), axis=1, kind="stable")[:, :k]


@_nan_rows
def feature_agreement(a, b, k: int | None = None) -> np.ndarray:
    """FA: fraction of the top-k features (by |value|) the two explanations share."""
    A, B = _pair(a, b)
    k = check_k(k, A.shape[1])
    ta, tb = _topk(A, k), _topk(B, k)
    return (ta[:, :, None] == tb[:, None, :]).any(axis=2).sum(axis=1) / k


def _same_position(A: np.ndarray, B: np.ndarray, k: int, *, sign: bool) -> np.ndarray:
    """(n, k) bool: top-k position holds the same feature with the same dense rank (and sign)."""
    ta, tb = _topk(A, k), _topk(B, k)
    same = (ta == tb) & (np.take_along_axis(_ranks(A), ta, axis=1) == np.take_along_axis(_ranks(B), tb, axis=1))
    if sign:
        same &= np.sign(np.take_along_axis(A, ta, axis=1)) == np.sign(np.take_along_axis(B, tb, axis=1))
    return same


@_nan_rows
def rank_agreement(a, b, k: int | None = None) -> np.ndarray:
    """RA: fraction of top-k positions holding the same feature with the same (dense) rank."""
    A, B = _pair(a, b)
    k = check_k(k, A.shape[1])
    return _same_position(A, B, k, sign=False).sum(axis=1) / k


@_nan_rows
def sign_agreement(a, b, k: int | None = None) -> np.ndarray:
    """SA: fraction of the top-k features shared with the same sign."""
    _no_rankings("sign agreement (SA)", a, b)
    A, B = _pair(a, b)
    k = check_k(k, A.shape[1])
    ta, tb = _topk(A, k), _topk(B, k)
    sa = np.sign(np.take_along_axis(A, ta, axis=1))
    sb = np.sign(np.take_along_axis(B, tb, axis=1))
    same = (ta[:, :, None] == tb[:, None, :]) & (sa[:, :, None] == sb[:, None, :])
    return same.any(axis=2).sum(axis=1) / k


@_nan_rows
def signed_rank_agreement(a, b, k: int | None = None) -> np.ndarray:
    """SRA: fraction of top-k positions with the same feature, the same rank and the same sign."""
    _no_rankings("signed rank agreement (SRA)", a, b)
    A, B = _pair(a, b)
    k = check_k(k, A.shape[1])
    return _same_position(A, B, k, sign=True).sum(axis=1) / k


@_nan_rows
def rank_correlation(a, b) -> np.ndarray:
    """RC: Pearson correlation of the dense ranks of |attribution| over all features (Spearman-like).
    A row where one explanation ranks every feature equal scores 1 if both do, else 0."""
    A, B = _pair(a, b)
    ra, rb = _ranks(A).astype(float), _ranks(B).astype(float)
    ra -= ra.mean(axis=1, keepdims=True)
    rb -= rb.mean(axis=1, keepdims=True)
    den = np.sqrt((ra ** 2).sum(axis=1) * (rb ** 2).sum(axis=1))
    both_flat = ((ra == 0).all(axis=1)) & ((rb == 0).all(axis=1))
    with np.errstate(invalid="ignore", divide="ignore"):
        rc = np.where(den > 0, (ra * rb).sum(axis=1) / np.where(den > 0, den, 1), 0.0)
    return np.where(both_flat, 1.0, rc)


@_nan_rows
def pairwise_rank_agreement(a, b) -> np.ndarray:
    """PRA: fraction of feature pairs (i < j) whose relative order (rank_i < rank_j) is the same."""
    A, B = _pair(a, b)
    d = A.shape[1]
    if d < 2:
        raise InputError("pairwise rank agreement needs at least 2 features")
    ra, rb = _ranks(A), _ranks(B)
    iu = np.triu_indices(d, 1)
    la = ra[:, iu[0]] < ra[:, iu[1]]
    lb = rb[:, iu[0]] < rb[:, iu[1]]
    return (la == lb).mean(axis=1)


def agreement_auc(a, b, metric: str = "FA", *, K: int | None = None, summary: str = "mean") -> np.ndarray:
    """A top-k agreement (FA, RA, SA or SRA) summarised over k = 1..K, per row, as :func:`pgi_auc`
    summarises PGI: ``summary="mean"`` (default) the mean over k = 1..d; ``"openxai"`` OpenXAI's
    trapezoid area over x = (k - 1)/(K - 1) with K = ceil(d/4) by default."""
    if metric not in ("FA", "RA", "SA", "SRA"):
        raise InputError(f"metric must be one of FA, RA, SA, SRA, got {metric!r}")
    if summary not in ("mean", "openxai"):
        raise InputError(f"summary must be one of ['mean', 'openxai'], got {summary!r}")
    d = _pair(a, b)[0].shape[1]
    K = (d if summary == "mean" else int(np.ceil(0.25 * d))) if K is None else check_k(K, d, "K")
    fn = {"FA": feature_agreement, "RA": rank_agreement, "SA": sign_agreement, "SRA": signed_rank_agreement}[metric]
    curve = np.stack([fn(a, b, k) for k in range(1, K + 1)])
    if summary == "mean" or K == 1:
        return curve.mean(axis=0) if summary == "mean" else curve[0]
    x = np.arange(K) / (K - 1)
    return np.trapezoid(curve, x, axis=0) if hasattr(np, "trapezoid") else np.trapz(curve, x, axis=0)


AGREEMENT = {"FA": feature_agreement, "RA": rank_agreement, "SA": sign_agreement,
             "SRA": signed_rank_agreement, "RC": rank_correlation, "PRA": pairwise_rank_agreement}


def agreement(a, b, k: int | None = None, metrics=None) -> dict[str, np.ndarray]:
    """Every requested agreement metric between ``a`` and ``b`` (per row). Default: all six, less SA
    and SRA when either explanation comes from a ranking (asking for them explicitly then raises)."""
    if metrics is None:
        ranked = any(isinstance(e, Explanation) and e.params.get("from_ranking") for e in (a, b))
        metrics = ("FA", "RA", "RC", "PRA") if ranked else ("FA", "RA", "SA", "SRA", "RC", "PRA")
    out = {}
    for m in metrics:
        if m not in AGREEMENT:
            raise InputError(f"unknown agreement metric {m!r}; choose from {sorted(AGREEMENT)}")
        fn = AGREEMENT[m]
        out[m] = fn(a, b, k) if m in ("FA", "RA", "SA", "SRA") else fn(a, b)
    return out


# ------------------------------------------------------------------------------- ground truth
def _linear_weights(model: Any) -> np.ndarray:
    """Weights (k, p) of a linear/logistic model — or given directly: a (k, p) array, or a torch
    state dict with one 2-D weight (e.g. OpenXAI's LR ``linear.weight``) — else InputError."""
    from whybox.models.adapters import _is_torch_module

    if isinstance(model, np.ndarray) or (isinstance(model, (list, tuple)) and len(model) and
                                         isinstance(model[0], (list, tuple, np.ndarray))):
        W = np.atleast_2d(np.asarray(model, dtype=float))
        if W.ndim != 2 or not np.isfinite(W).all():
            raise InputError(f"ground-truth weights must be a finite (k, d) array, got shape {W.shape}")
        return W
    if isinstance(model, dict):
        mats = {k: v for k, v in model.items() if getattr(v, "ndim", None) == 2}
        if len(mats) != 1:
            raise InputError(f"a state dict gives ground-truth weights only for a linear model (one 2-D weight); "
                             f"this one has {sorted(mats)}")
        W = next(iter(mats.values()))
        W = W.detach().cpu().numpy() if hasattr(W, "detach") else np.asarray(W)
        return np.asarray(W, dtype=float)

    if _is_torch_module(model):
        from torch import nn
        params = list(model.parameters())
        linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
        if len(linears) == 1 and sum(p.numel() for p in params) == sum(p.numel() for p in linears[0].parameters()):
            return linears[0].weight.detach().cpu().numpy().astype(float)
        raise InputError(f"ground truth attributions exist only for linear/logistic models; the torch module "
                         f"{type(model).__name__} has {len(linears)} linear layer(s) or other parameters")
    try:
        from sklearn.linear_model._base import LinearClassifierMixin, LinearModel
    except ImportError:  # pragma: no cover
        LinearClassifierMixin = LinearModel = ()
    if isinstance(model, (LinearModel, LinearClassifierMixin)) and hasattr(model, "coef_"):
        return np.atleast_2d(np.asarray(model.coef_, dtype=float))
    raise InputError(f"ground truth attributions exist only for linear/logistic models; "
                     f"{type(model).__name__} is not one (a Pipeline is not linear in its raw inputs)")


def ground_truth(model: Any, targets: Any, *, X: Any = None, groups: Any = None, feature_names=None) -> np.ndarray:
    """Ground-truth attribution of a linear/logistic model for each row's target (n, d).

    For two softmax/logit outputs (OpenXAI's LR) the truth for target t is w[t] - w[1-t] (w[1] - w[0]
    flipped toward the predicted class); for a single output (regression, binary scikit-learn
    classifier) w for target 1 and -w for target 0; otherwise w[t]. A multi-column group (one-hot
    block) takes the weight of its active column (sum of w_c x_c over its columns), so ``X`` is needed
    when groups are given. Beware: the weights of a one-hot block are identifiable only up to a shift
    per block (it can move into the bias), so agreement over groups depends on the encoding; prefer
    column-level agreement for such models."""
    W = _linear_weights(model)
    t = np.atleast_1d(np.asarray(targets, dtype=np.intp))
    k = W.shape[0]
    if k == 1:
        sign = np.where(t == 0, -1.0, 1.0) if _is_binary_classifier(model) else np.ones(len(t))
        G = sign[:, None] * W[0][None, :]
    elif k == 2:
        G = W[t] - W[1 - t]
    else:
        G = W[t]
    if groups is None:
        return G
    if X is None:
        raise InputError("ground_truth with groups needs X (a group's truth is its active column's weight)")
    from whybox.core.features import FeatureSpec
    from whybox.core.validation import to_matrix
    arr = to_matrix(X, name="X").astype(float)
    spec = FeatureSpec.build(arr, columns=feature_names if feature_names is not None else (
        list(X.columns) if hasattr(X, "columns") else None), groups=groups)
    out = np.empty((len(t), spec.n_features))
    for g, cols in enumerate(spec.groups):
        out[:, g] = G[:, cols[0]] if len(cols) == 1 else (G[:, cols] * arr[:, cols]).sum(axis=1)
    return out


def _is_binary_classifier(model: Any) -> bool:
    classes = getattr(model, "classes_", None)
    return classes is not None and len(classes) == 2
