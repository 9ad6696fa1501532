"""Predictive faithfulness: does the model's output move the way the explanation says it should?

All functions take ``(model, X, explanation)`` plus options, and return one score per row.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from whybox import engine
from whybox.core.explanation import Explanation
from whybox.errors import InputError
from whybox.metrics._common import Setup, check_k, setup, skips_failed_rows, top_k_mask
from whybox.metrics.neighbourhood import Removal, parse_neighbourhood


# ------------------------------------------------------------------------------------ perturbations
def openxai_perturb(S: Setup, allowed: np.ndarray, n_perturb: int, *, std: float, flip_p: float,
                    rngs: list[np.random.Generator]) -> np.ndarray:
    """OpenXAI's perturbations of each row, restricted to ``allowed`` features (n, d) -> (n, P, p).

    Continuous columns get N(0, std^2) noise; binary columns flip with probability ``flip_p``; a one-hot
    group moves as a whole: with probability ``flip_p`` its 1 moves to another of its columns chosen
    uniformly (OpenXAI's NewDiscrete_NormalPerturbation). Row i draws from ``rngs[i]`` only."""
    from whybox.params import check, check_memory

    check("n_perturb", n_perturb)
    check("std", std)
    check("flip_p", flip_p)
    engine.check_numeric(S.X, "PGI/PGU and stability perturbations")
    X = S.X.astype(float)
    n, p = X.shape
    check_memory(f"{n_perturb:,} perturbations of {n:,} row(s) x {p} column(s)", 3.0 * n * n_perturb * p)
    spec = S.spec
    out = np.repeat(X[:, None, :], n_perturb, axis=1)
    col_allowed = allowed[:, spec.group_of_column]                  # (n, p)
    kinds = np.array(spec.kinds)
    single = np.array([len(spec.groups[g]) == 1 for g in spec.group_of_column])
    cont = (kinds == "continuous") & single
    noise = np.stack([g.normal(0.0, std, size=(n_perturb, p)) for g in rngs])
    flips = np.stack([g.random((n_perturb, p)) for g in rngs]) < flip_p
    out += noise * (cont & col_allowed)[:, None, :]
    binc = (kinds == "binary") & single & col_allowed.any(axis=0)
    if binc.any():
        sel = flips & (binc[None, :] & col_allowed)[:, None, :]
        out[sel] = 1.0 - out[sel]
    for g, cols in enumerate(spec.groups):
        if len(cols) == 1 or not allowed[:, g].any():
            continue
        block = X[:, cols]
        onehot = np.isin(block, (0.0, 1.0)).all(axis=1) & (block.sum(axis=1) == 1)
        rows = np.flatnonzero(allowed[:, g])
        for i in rows:
            rng = rngs[i]
            if onehot[i]:
                hot = int(np.argmax(block[i]))
                move = rng.random(n_perturb) < flip_p
                others = [c for c in range(len(cols)) if c != hot]
                new = np.asarray(others)[rng.integers(0, len(others), n_perturb)]
                blk = np.zeros((n_perturb, len(cols)))
                blk[np.arange(n_perturb), np.where(move, new, hot)] = 1.0
                out[i][:, cols] = blk
            else:  # not one-hot: perturb its columns one by one
                for c in cols:
                    if spec.kinds[c] == "binary":
                        f = rng.random(n_perturb) < flip_p
                        out[i, f, c] = 1.0 - out[i, f, c]
                    else:
                        out[i, :, c] += rng.normal(0.0, std, n_perturb)
    return out


def _eval_points(S: Setup, P: np.ndarray, chunk_rows: int = engine.DEFAULT_CHUNK_ROWS) -> np.ndarray:
    """f_target at points P (n, m, p) -> (n, m), chunked."""
    n, m, p = P.shape
    out = engine.chunked_outputs(S.model, P.reshape(-1, p), chunk_rows=chunk_rows)
    return engine._select(out, np.repeat(S.targets, m)).reshape(n, m)


def _fx(S: Setup) -> np.ndarray:
    return engine._select(S.model(S.X), S.targets)


def _prediction_gap(S: Setup, ks: list[int], *, invert: bool, n_perturb: int, std: float, flip_p: float) -> np.ndarray:
    fx = _fx(S)
    out = np.empty((len(ks), S.X.shape[0]))
    for a, k in enumerate(ks):
        allowed = top_k_mask(S.values, k)       # the same per-row random numbers for every k
        if invert:
            allowed = ~allowed
        P = openxai_perturb(S, allowed, n_perturb, std=std, flip_p=flip_p, rngs=S.row_rngs())
        out[a] = np.abs(_eval_points(S, P) - fx[:, None]).mean(axis=1)
    return out


@skips_failed_rows
def pgi(model: Any, X: Any, explanation: Explanation | np.ndarray, *, k: int | None = None, n_perturb: int = 100,
        std: float = 0.1, flip_p: float = 0.08, seed: Any = 0, **kw: Any) -> np.ndarray:
    """Prediction Gap on Important features (OpenXAI; Agarwal et al. 2022).

    PGI(x) = E_{x'} |f(x) - f(x')| where x' perturbs only the k features with the largest |attribution|
    (continuous: N(0, std^2) noise; binary: flip w.p. flip_p; one-hot groups move together).
    Defaults are OpenXAI's: k = ceil(0.25 d), std 0.1, flip_p 0.08, 100 perturbations. Higher is better.
    """
    S = setup(model, X, explanation, seed=seed, **kw)
    return _prediction_gap(S, [check_k(k, S.spec.n_features)], invert=False, n_perturb=n_perturb,
                           std=std, flip_p=flip_p)[0]


@skips_failed_rows
def pgu(model: Any, X: Any, explanation: Explanation | np.ndarray, *, k: int | None = None, n_perturb: int = 100,
        std: float = 0.1, flip_p: float = 0.08, seed: Any = 0, **kw: Any) -> np.ndarray:
    """Prediction Gap on Unimportant features: as :func:`pgi` but perturbing every feature *outside*
    the top k. Lower is better."""
    S = setup(model, X, explanation, seed=seed, **kw)
    return _prediction_gap(S, [check_k(k, S.spec.n_features)], invert=True, n_perturb=n_perturb,
                           std=std, flip_p=flip_p)[0]


@skips_failed_rows
def pgi_auc(model: Any, X: Any, explanation, *, K: int | None = None, invert: bool = False, n_perturb: int = 100,
            std: float = 0.1, flip_p: float = 0.08, seed: Any = 0, summary: str = "mean", **kw: Any) -> np.ndarray:
    """PGI summarised over k = 1..K (PGU with ``invert=True``), the same perturbations for every k.

    summary "mean" (default): the mean of PGI(k) over k = 1..K with K = d — the area under the whole
    curve normalised by its length, so one number covers every k and is comparable across data sets.
    summary "openxai": OpenXAI's figure — the trapezoid area (``sklearn.metrics.auc``) of PGI(k) over
    x = (k - 1)/(K - 1), k = 1..K with K = ceil(0.25 d) by default (PGI(1) when K = 1)."""
    from whybox.params import Choice, check

    check("summary", summary, decl=Choice(("mean", "openxai")))
    S = setup(model, X, explanation, seed=seed, **kw)
    d = S.spec.n_features
    default_K = d if summary == "mean" else int(np.ceil(0.25 * d))
    K = default_K if K is None else check_k(K, d, "K")
    ks = list(range(1, K + 1))
    if invert:
        ks = [k for k in ks if k < d] or [d]
    curve = _prediction_gap(S, ks, invert=invert, n_perturb=n_perturb, std=std, flip_p=flip_p)
    return curve.mean(axis=0) if summary == "mean" else _openxai_auc(curve)


def _openxai_auc(curve: np.ndarray) -> np.ndarray:
    """Trapezoid area of a (K, n) curve over x = 0, 1/(K-1), ..., 1 (the value itself when K = 1)."""
    K = curve.shape[0]
    if K == 1:
        return curve[0]
    x = np.arange(K) / (K - 1)
    return np.trapezoid(curve, x, axis=0) if hasattr(np, "trapezoid") else np.trapz(curve, x, axis=0)


def pgu_auc(model: Any, X: Any, explanation, **kw: Any) -> np.ndarray:
    """PGU averaged over k = 1..K (see :func:`pgi_auc`)."""
    return pgi_auc(model, X, explanation, invert=True, **kw)


# ------------------------------------------------------------------------- deletion / insertion
def _order(values: np.ndarray, by: str) -> np.ndarray:
    if by == "value":
        return np.argsort(-values, axis=1, kind="stable")
    if by == "abs":
        return np.argsort(-np.abs(values), axis=1, kind="stable")
    raise InputError(f"order must be 'value' or 'abs', got {by!r}")


def _curve(S: Setup, *, insertion: bool, by: str) -> tuple[np.ndarray, np.ndarray]:
    n, d = S.values.shape
    order = _order(S.values, by)
    rank = np.empty_like(order)
    np.put_along_axis(rank, order, np.arange(d)[None, :].repeat(n, 0), axis=1)
    steps = np.arange(d + 1)
    touched = rank[:, None, :] < steps[None, :, None]              # (n, d+1, d): first t features
    Z = touched if insertion else ~touched
    Zcols = Z[:, :, S.spec.group_of_column]
    V = engine.masked_outputs(S.model, S.X, Zcols, S.background, S.targets)
    auc = np.trapezoid(V, dx=1.0 / d, axis=1) if hasattr(np, "trapezoid") else np.trapz(V, dx=1.0 / d, axis=1)
    return V, auc


@skips_failed_rows
def deletion_curve(model: Any, X: Any, explanation, *, background: Any = None, order: str = "value",
                   seed: Any = 0, **kw: Any) -> tuple[np.ndarray, np.ndarray]:
    """Deletion curve (Petsiuk et al. 2018): the output as features are removed toward the background,
    most important first (``order="value"``: largest attribution first; ``"abs"``: largest |value|).

    Returns (curves (n, d+1), AUC (n,)) with the AUC taken over the fraction of features removed.
    Lower AUC is better: a faithful ranking makes the output fall fast."""
    S = setup(model, X, explanation, background=background, seed=seed, **kw)
    return _curve(S, insertion=False, by=order)


@skips_failed_rows
def insertion_curve(model: Any, X: Any, explanation, *, background: Any = None, order: str = "value",
                    seed: Any = 0, **kw: Any) -> tuple[np.ndarray, np.ndarray]:
    """Insertion curve: start from the background and add features, most important first.
    Higher AUC is better."""
    S = setup(model, X, explanation, background=background, seed=seed, **kw)
    return _curve(S, insertion=True, by=order)


# --------------------------------------------------------------------- fidelity and infidelity
def _removal_deltas(S: Setup, p: float, n_samples: int) -> tuple[np.ndarray, np.ndarray]:
    """True and predicted output drops for random removals: (n, m) each."""
    from whybox.params import PARAMS, check

    check("n_samples", n_samples, decl=PARAMS["metric_samples"])
    n, d = S.values.shape
    keep = np.stack([g.random((n_samples, d)) for g in S.row_rngs()]) >= p
    V = engine.masked_outputs(S.model, S.X, keep[:, :, S.spec.group_of_column], S.background, S.targets)
    true = _fx(S)[:, None] - V
    pred = np.einsum("nmd,nd->nm", (~keep).astype(float), S.values)
    return true, pred


def _gaussian_deltas(S: Setup, sigma: float, n_samples: int, scale: str = "relative") -> tuple[np.ndarray, np.ndarray]:
    if any(len(g) > 1 for g in S.spec.groups):
        raise InputError("a Gaussian neighbourhood needs one column per feature; features made of several "
                         "columns (groups) can only be measured with a removal neighbourhood")
    engine.check_numeric(S.X, "Gaussian-neighbourhood metrics")
    from whybox.params import PARAMS, check

    check("n_samples", n_samples, decl=PARAMS["metric_samples"])
    check("sigma", sigma)
    X = S.X.astype(float)
    n, p = X.shape
    s = S.background.scale() if scale == "relative" else np.ones(p)
    E = np.stack([g.standard_normal((n_samples, p)) for g in S.row_rngs()]) * (sigma * s)
    true = _eval_points(S, X[:, None, :] + E) - _fx(S)[:, None]
    order = np.array([g[0] for g in S.spec.groups])
    pred = np.einsum("nmp,np->nm", E[:, :, order], S.values)
    return true, pred


def _score(true: np.ndarray, pred: np.ndarray, metric: str) -> np.ndarray:
    err = ((true - pred) ** 2).mean(axis=1)
    if metric == "mse":
        return err
    if metric == "nmse":
        return err / np.maximum((true ** 2).mean(axis=1), 1e-300)
    if metric == "r2":
        sst = ((true - true.mean(axis=1, keepdims=True)) ** 2).mean(axis=1)
        return 1 - err / np.maximum(sst, 1e-300)
    raise InputError(f"metric must be 'mse', 'nmse' or 'r2', got {metric!r}")


@skips_failed_rows
def local_fidelity(model: Any, X: Any, explanation, *, neighbourhood: Any = "removal", n_samples: int = 200,
                   metric: str = "mse", background: Any = None, seed: Any = 0, **kw: Any) -> np.ndarray:
    """How well the explanation, read as a linear model g, predicts f in a neighbourhood of x
    (Han et al. 2022's local function approximation loss).

    * ``removal(p)``: features removed toward the background independently with probability p;
      g predicts f(x) - v_x(z) = sum of the removed features' attributions.
    * ``gaussian(sigma)``: x + eps with eps ~ N(0, sigma^2 s^2) (s: background std per column);
      g predicts f(x + eps) - f(x) = phi . eps.

    metric: "mse" (lower is better), "nmse" (mse / mean squared true change) or "r2" (higher is better).
    """
    S = setup(model, X, explanation, background=background, seed=seed, **kw)
    nb = parse_neighbourhood(neighbourhood)
    if isinstance(nb, Removal):
        true, pred = _removal_deltas(S, nb.p, n_samples)
    else:
        true, pred = _gaussian_deltas(S, nb.sigma, n_samples, nb.scale)
    return _score(true, pred, metric)


@skips_failed_rows
def infidelity(model: Any, X: Any, explanation, *, perturbation: str = "gaussian", sigma: float = 0.1,
               p: float = 0.5, n_perturb: int = 100, normalize: bool = False, background: Any = None,
               seed: Any = 0, scale: str = "relative", **kw: Any) -> np.ndarray:
    """Infidelity (Yeh et al., NeurIPS 2019): E_I[(I . phi - (f(x) - f(x - I)))^2].

    ``perturbation="gaussian"``: I ~ N(0, sigma^2 s^2) per column; ``"removal"``: I = x - b on a random
    subset of features (each with probability p), i.e. Yeh et al.'s baseline-removal perturbation
    with the interventional background. ``normalize=True`` first rescales phi by the optimal scalar
    beta (as Captum's ``normalize``), making the score scale-free. Lower is better."""
    from whybox.params import check

    check("p", p)
    check("sigma", sigma)
    check("n_perturb", n_perturb)
    S = setup(model, X, explanation, background=background, seed=seed, **kw)
    if perturbation == "gaussian":
        from whybox.metrics.neighbourhood import SCALES
        if scale not in SCALES:
            raise InputError(f"scale must be one of {SCALES}, got {scale!r}")
        true, pred = _gaussian_deltas(S, sigma, n_perturb, scale)
        true = -true    # f(x) - f(x - I) with I = -eps has the same distribution
        pred = -pred
    elif perturbation == "removal":
        true, pred = _removal_deltas(S, p, n_perturb)
    else:
        raise InputError(f"perturbation must be 'gaussian' or 'removal', got {perturbation!r}")
    if normalize:
        beta = (pred * true).sum(axis=1) / np.maximum((pred ** 2).sum(axis=1), 1e-300)
        pred = pred * beta[:, None]
    return ((pred - true) ** 2).mean(axis=1)
