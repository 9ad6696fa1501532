"""The nine local-function-approximation recipes (Han et al., NeurIPS 2022, Table 1).

Each recipe = a neighbourhood (how x is perturbed and the perturbations weighted) x a surrogate/loss
(how g is fitted to f there). Recipes are thin: they draw a design, ask the context for the model's
outputs on it, and apply a linear surrogate. ``cost`` says up front how many model rows a recipe will
spend, so budgets fail before any query is made.

| method                | neighbourhood                                  | surrogate                     |
|-----------------------|------------------------------------------------|-------------------------------|
| lime                  | z ~ Bernoulli(0.5), weight exp(-|1-z|^2/2w^2)  | weighted ridge on z           |
| kernelshap            | Shapley-kernel coalitions, paired              | WLS with efficiency constraint|
| shapley               | all 2^d coalitions                             | closed-form Shapley map       |
| occlusion             | 1 - e_i                                        | f(x) - v(1 - e_i)             |
| clime                 | x + eps, eps ~ N(0, sigma^2 s^2)               | least squares on eps          |
| gradient              | x +- h e_j (or autograd)                       | slope                         |
| gradxinput            | as gradient                                    | x * slope                     |
| smoothgrad            | x + eps, eps ~ N(0, sigma^2 s^2)               | mean gradient (Stein if black box) |
| integrated_gradients  | b + alpha (x - b), Gauss-Legendre alpha        | (x - b) * mean path gradient  |
"""
from __future__ import annotations

import inspect
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Callable

import numpy as np

from whybox import engine
from whybox.errors import InputError, MethodError
from whybox.explainers.context import TabularContext
from whybox.neighbourhoods import continuous, masks
from whybox.params import check_all
from whybox.surrogates import linear


@dataclass
class Result:
    values: np.ndarray
    base_values: np.ndarray
    stderr: np.ndarray | None = None
    info: dict[str, Any] | None = None


@dataclass(frozen=True)
class Recipe:
    name: str
    family: str            # "masking" or "gradient"
    neighbourhood: str
    surrogate: str
    run: Callable[..., Result]
    cost: Callable[..., int]
    # the masks the recipe's run will evaluate, known before any output (no randomness): they can ride on
    # the first model call with the rows and the background (TabularContext.prefetch_design)
    fixed_design: Callable[..., np.ndarray] | None = None

    def defaults(self) -> dict[str, Any]:
        return dict(_run_defaults(self.run))

    def check_params(self, params: dict[str, Any]) -> dict[str, Any]:
        allowed = self.defaults()
        unknown = sorted(set(params) - set(allowed))
        if unknown:
            raise MethodError(f"method {self.name!r} got unknown parameter(s) {unknown}; "
                              f"it accepts {sorted(allowed)}")
        return {**allowed, **check_all(params)}


@lru_cache(maxsize=None)
def _run_defaults(run: Callable[..., Result]) -> tuple[tuple[str, Any], ...]:
    """A recipe's parameters and their defaults, read from its run's signature once (inspect is slow)."""
    sig = inspect.signature(run)
    return tuple((k, v.default) for k, v in list(sig.parameters.items())[1:])


# --------------------------------------------------------------------------------------- masking
def _positive_int(name: str, v: Any) -> int:
    if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1:
        raise InputError(f"{name} must be a positive integer, got {v!r}")
    return int(v)


def _lime_design(ctx: TabularContext, n_samples: int, kernel_width: float | None):
    n_samples = _positive_int("n_samples", n_samples)
    if n_samples < 2:
        raise InputError("lime needs n_samples >= 2")
    Z = masks.bernoulli(ctx.d, n_samples, ctx.rng)
    width = kernel_width if kernel_width is not None else 0.75 * np.sqrt(ctx.d)
    return Z, masks.lime_kernel(Z, width), width


def run_lime(ctx: TabularContext, n_samples: int = 1000, kernel_width: float | None = None,
             alpha: float = 1.0) -> Result:
    Z, w, width = _lime_design(ctx, n_samples, kernel_width)
    V = ctx.evaluate_masks(Z)
    beta, c = linear.weighted_ridge(Z, w, V, alpha=alpha)
    return Result(beta, c, info={"kernel_width": float(width)})


def cost_lime(ctx: TabularContext, n_samples: int = 1000, kernel_width=None, alpha: float = 1.0) -> int:
    state = ctx.rng.bit_generator.state
    Z, _, _ = _lime_design(ctx, n_samples, kernel_width)
    ctx.rng.bit_generator.state = state  # cost estimation must not consume randomness
    return ctx.mask_cost(Z)


def _auto_samples(d: int, n_samples: Any) -> int:
    if n_samples in (None, "auto"):
        return 2 * d + 2048
    return _positive_int("n_samples", n_samples)


KERNELSHAP_STRATEGIES = ("stratified", "shared")


KERNELSHAP_ALLOCATIONS = ("neyman", "equal")


def run_kernelshap(ctx: TabularContext, n_samples: int | str = "auto", strategy: str = "stratified",
                   stderr_strata: int = 8, allocation: str = "neyman", control_variate: str = "cubic") -> Result:
    """KernelSHAP (interventional Shapley values over the weighted background).

    The budget is ``n_samples`` coalitions on the whole background: n_samples x B model rows per
    explained row, as shap counts them. Shapley values are linear in the game, so
    phi = sum_b w_b phi(v_b) where v_b(z) = f(z*x + (1-z)*b) is the baseline game of background row b.

    * ``strategy="stratified"`` (default): every background row gets its *own* n_samples coalitions
      (antithetic pairs, extreme sizes enumerated; the base design with the features randomly
      permuted per row) and its own constrained regression, exact on additive games and with
      sum(phi_b) = f(x) - f(b); the same budget covers B times more distinct coalitions than the
      shared design. Standard errors are estimated from ``stderr_strata`` random strata (all when
      B is smaller), scaled to all B.
    * ``strategy="shared"``: the classic estimator (shap's KernelExplainer): one design, each
      coalition's value averaged over the whole background before one regression.

    ``allocation`` (stratified only) says how the budget's sampled pairs are shared among the strata:
    ``"equal"`` gives every stratum the same design; ``"neyman"`` (default) spends a quarter of them
    as a pilot, the same in every stratum, then gives each stratum pairs in proportion to w_b times
    the standard deviation its pilot regression shows (Neyman's allocation; between the pilot and four
    times an equal share), so that nearly flat baseline games (a saturated probability) get few and
    the rest get more, within the same total (:func:`_kernelshap_neyman`). When the pilot would hold
    fewer pairs than there are features, its variances are too rough to allocate by and the
    allocation is equal.

    ``control_variate="cubic"`` (default) adds one regressor with closed-form Shapley values, the cube
    of the fit's own index (:func:`~whybox.surrogates.linear.cubic_control`): consistent, exact on
    additive games, efficient, and it removes the third-order single-index part of the error that a
    smooth link of nearly additive effects leaves (no extra model rows); ``"none"``: the plain regression.
    """
    if strategy not in KERNELSHAP_STRATEGIES:
        raise InputError(f"strategy must be one of {KERNELSHAP_STRATEGIES}, got {strategy!r}")
    if allocation not in KERNELSHAP_ALLOCATIONS:
        raise InputError(f"allocation must be one of {KERNELSHAP_ALLOCATIONS}, got {allocation!r}")
    if control_variate not in linear.CONTROL_VARIATES:
        raise InputError(f"control_variate must be one of {linear.CONTROL_VARIATES}, got {control_variate!r}")
    control = control_variate == "cubic"
    m = _auto_samples(ctx.d, n_samples)
    stderr_strata = _positive_int("stderr_strata", stderr_strata)
    if ctx.d == 1:
        return Result((ctx.fx - ctx.base_value())[:, None], ctx.base_value(), np.zeros((ctx.n, 1)))
    B = ctx.background.n_rows
    n_pairs = masks.sampled_pairs(ctx.d, m)
    neyman = strategy == "stratified" and allocation == "neyman" and B > 1
    if neyman and n_pairs // 4 >= max(NEYMAN_MIN_PILOT, ctx.d):
        return _kernelshap_neyman(ctx, m, n_pairs, stderr_strata, control)
    design = masks.shapley_kernel(ctx.d, m, ctx.rng)
    mz = len(design.Z)
    # the design is drawn once for every row; the coalition outputs are kept and fitted one block of
    # rows at a time (at most chunk_rows kept values per block), so memory does not grow with the rows
    if strategy == "shared" or B == 1 or design.exact:
        parts = []
        for sub in ctx.row_blocks(mz):
            phi, se = linear.kernelshap_wls(design.Z, design.w, sub.evaluate_masks(design.Z), sub.base_value(),
                                            sub.fx, design.pair_id, control=control and not design.exact)
            parts.append((phi, np.zeros_like(phi) if se is None else se))
        info = {"n_coalitions": int(mz), "exact": bool(design.exact),
                "n_enumerated": int(design.n_enumerated), "design": "shared" if not design.exact else "exact"}
        return Result(np.concatenate([p for p, _ in parts]), ctx.base_value(),
                      np.concatenate([s for _, s in parts]), info=info)
    perms = np.argsort(ctx.rng.random((B, ctx.d)), axis=1)        # one feature permutation per stratum
    strata = np.arange(B) if B <= stderr_strata else np.sort(ctx.rng.choice(B, stderr_strata, replace=False))
    parts = []
    for sub in ctx.row_blocks(B * mz):
        V = sub.evaluate_strata(design.Z, perms)           # (rows, B, m): stratum b sees Z[:, perms[b]]
        fb = sub.evaluate_background_rows()                 # (rows, B): f_target(b) per row
        phi, se = linear.kernelshap_stratified(design.Z, design.w, design.pair_id, perms, V, fb, sub.fx,
                                               ctx.background.weights, stderr_strata=strata, control=control)
        parts.append((phi, np.zeros_like(phi) if se is None else se))
        del V
    phi, se = np.concatenate([p for p, _ in parts]), np.concatenate([s for _, s in parts])
    return Result(phi, ctx.base_value(), se,
                  info={"n_coalitions": int(B * mz), "exact": False, "design": "stratified",
                        "n_enumerated": int(B * design.n_enumerated), "stderr_strata": int(len(strata))})


NEYMAN_MIN_PILOT = 4       # pilot pairs per stratum: fewer, or fewer than d, and its sandwich variances
                           # (d coefficients from n0 pairs) are too rough to allocate by: equal allocation


def _kernelshap_neyman(ctx: TabularContext, m: int, n_pairs: int, stderr_strata: int, control: bool) -> Result:
    """Stratified KernelSHAP with the pairs allocated to strata by Neyman's rule (see run_kernelshap).

    Every stratum b (background row b, features permuted by its own permutation) uses the design
    [enumerated block; the first n_b pairs of one long list of sampled pairs], so the first n0 pairs
    (the pilot) are shared by all strata and reused, not spent twice. From the pilot's sandwich
    variances sd_b, the budget of B x n_pairs pairs is reallocated per explained row
    (:func:`~whybox.surrogates.linear.neyman_pairs`); each stratum's estimate is its own constrained
    regression on its n_b pairs (sum phi_b = f(x) - f(b)), averaged with the background weights. The
    allocation depends on the pilot's outputs, so each phi_b is exact on additive games and consistent,
    and the standard errors are the strata's sandwich variances at their final sizes (estimated from
    ``stderr_strata`` random strata scaled to all B, as for the equal allocation)."""
    d, B = ctx.d, ctx.background.n_rows
    wbg = ctx.background.weights
    step = max(1, n_pairs // (16 if d <= 100 else 8))     # allocations are multiples of step: few algebras
    n0 = max(step, n_pairs // 4 // step * step)
    cap = max(n0, 4 * n_pairs // step * step)
    long = masks.shapley_kernel(d, m, ctx.rng, n_pairs=cap)
    e = long.n_enumerated
    designs = linear.PrefixDesigns(long.Z, long.w[:e])   # enumerated weights: their kernel mass
    perms = np.argsort(ctx.rng.random((B, d)), axis=1)
    strata = np.arange(B) if B <= stderr_strata else np.sort(ctx.rng.choice(B, stderr_strata, replace=False))
    in_se = np.zeros(B, bool)
    in_se[strata] = True
    pilot = e + 2 * n0
    phi_all, se_all, spent = np.zeros((ctx.n, d)), np.zeros((ctx.n, d)), 0
    at_row = 0                                                      # the block's first virtual row
    for sub in ctx.row_blocks(B * m):        # the equal allocation's blocks: the pilot's temporaries fit them
        with engine.workspace() as ws:         # the block's working arrays: kept memory, no page faults
            V1 = sub.evaluate_strata(long.Z[:pilot], perms, ws)            # (rows, B, pilot)
            fb = sub.evaluate_background_rows()                         # (rows, B)
            nv = V1.shape[0]
            nr = sub.X.shape[0]
            kk = nv // nr                                               # virtual rows per real row
            D1 = np.subtract(V1[:, :, e::2], V1[:, :, e + 1::2], out=ws.empty("D1", (nv, B, n0)))   # y(z) - y(1 - z)
            E = V1[:, :, e:].sum(axis=2)                                # each (row, stratum)'s pair sum
            G = nv * B
            Phi0, var0 = designs.solve_levels(np.full(G, n0), V1[:, :, :e].reshape(G, e), D1.reshape(G, n0),
                                              E.reshape(G), fb.reshape(G), np.repeat(sub.fx, B), np.ones(G, bool),
                                              control)
            Phi = Phi0.reshape(nv, B, d)                                # each (row, stratum)'s phi, base coordinates
            Var = var0.reshape(nv, B, d)[:, strata]                     # and the stderr strata's variances
            sd = np.sqrt(np.maximum(var0, 0).reshape(nv, B, d).sum(axis=2).reshape(nr, kk, B).sum(axis=1) * n0)
            nb = np.stack([linear.neyman_pairs(sd[i], wbg, n0, B * n_pairs, cap, step) for i in range(nr)])
            spent += int(nr * B * e + 2 * nb.sum())
            # the (row, stratum) units with more than n0 pairs, in ascending n_b (row-major within a size):
            # their virtual rows (kk per real row) are the rows of one array of pair differences, the pilot's
            # first, then the pairs beyond it
            ri, rb = np.nonzero(nb > n0)                                # row-major: the order of the pieces below
            srt = np.argsort(nb[ri, rb], kind="stable")
            ii, bb = ri[srt], rb[srt]
            pos = np.full((nr, B), -1)
            pos[ii, bb] = np.arange(len(ii))
            vv = (ii[:, None] * kk + np.arange(kk)).reshape(-1)         # virtual rows, kk per unit
            brep = np.repeat(bb, kk)
            Dp = ws.empty("Dp", (len(vv), int(nb.max())))
            Dp[:, :n0] = D1[vv, brep]
            # the pairs beyond the pilot, every (row, stratum) with more than n0 in one stream of model calls
            if len(ri):
                V2 = sub.evaluate_spans(ri, long.Z, perms, rb, np.full(len(ri), pilot),
                                        e + 2 * nb[ri, rb], ws).reshape(kk, -1)
                lens = 2 * (nb[ri, rb] - n0)
                starts = np.cumsum(lens) - lens
                E[ri[None, :] * kk + np.arange(kk)[:, None], rb[None, :]] += np.add.reduceat(V2, starts, axis=1)
                for i, b, s0, ln in zip(ri, rb, starts, lens):
                    g = pos[i, b] * kk
                    np.subtract(V2[:, s0:s0 + ln:2], V2[:, s0 + 1:s0 + ln:2], out=Dp[g:g + kk, n0:n0 + ln // 2])
                del V2
            # one regression per (row, stratum) at its allocation, the levels' data passes batched
            if len(vv):
                se_pos = np.full(B, -1)
                se_pos[strata] = np.arange(len(strata))
                want = in_se[brep]
                pb, vb = designs.solve_levels(np.repeat(nb[ii, bb], kk), V1[vv, brep, :e], Dp, E[vv, brep],
                                              fb[vv, brep], sub.fx[vv], want, control, variance_pairs=n0)
                Phi[vv, brep] = pb
                if vb is not None:
                    Var[vv[want], se_pos[brep[want]]] = vb[want]
            # back to feature coordinates (feature j of stratum b is base column perms[b, j]), weighted
            Phi = np.take_along_axis(Phi, np.broadcast_to(perms[None], Phi.shape), axis=2)
            phi_all[at_row:at_row + nv] = np.einsum("nbd,b->nd", Phi, wbg)
            Var = np.take_along_axis(Var, np.broadcast_to(perms[strata][None], Var.shape), axis=2)
            var = np.einsum("nsd,s->nd", Var, wbg[strata] ** 2) * (B / len(strata))
            se_all[at_row:at_row + nv] = np.sqrt(np.maximum(var, 0.0))
            at_row += nv
            del V1, D1, Dp, Phi0, var0, Phi, Var    # the fresh arrays freed before the next block's (the slots stay)
    return Result(phi_all, ctx.base_value(), se_all,
                  info={"n_coalitions": int(round(spent / max(1, ctx.X.shape[0]))), "exact": False,
                        "design": "stratified", "allocation": "neyman", "n_enumerated": int(B * e),
                        "pilot_pairs": int(n0), "stderr_strata": int(len(strata))})


def cost_kernelshap(ctx: TabularContext, n_samples: int | str = "auto", strategy: str = "stratified",
                    stderr_strata: int = 8, allocation: str = "neyman", control_variate: str = "cubic") -> int:
    m = _auto_samples(ctx.d, n_samples)
    m = min(m, 2 ** min(ctx.d, 62) - 2)
    return ctx.n * (m * ctx.background.n_rows + 1) + ctx.background.n_rows


def design_shapley(ctx: TabularContext, max_features: int = 16) -> np.ndarray:
    _check_exact(ctx, max_features)
    return masks.all_coalitions(ctx.d)


def run_shapley(ctx: TabularContext, max_features: int = 16) -> Result:
    Z = design_shapley(ctx, max_features)
    V = ctx.evaluate_masks(Z)
    phi = V @ linear.shapley_matrix(ctx.d).T
    return Result(phi, V[:, 0], None, info={"n_coalitions": 2 ** ctx.d})


def _check_exact(ctx: TabularContext, max_features: int) -> None:
    if max_features > 20:
        raise InputError("max_features above 20 is not supported for exact Shapley (2^20 coalitions per row)")
    if ctx.d > max_features:
        raise MethodError(
            f"exact Shapley needs all 2^d coalitions: d={ctx.d} interpretable features means "
            f"{2 ** ctx.d:,} coalitions x {ctx.background.n_rows} background rows per explained row, "
            f"above the limit of max_features={max_features}. Use method='kernelshap' (sampled), raise "
            "max_features (at most 20), or group features (groups=...) to reduce d.")


def cost_shapley(ctx: TabularContext, max_features: int = 16) -> int:
    return ctx.mask_cost(design_shapley(ctx, max_features))


def design_occlusion(ctx: TabularContext) -> np.ndarray:
    return masks.occlusion(ctx.d)


def run_occlusion(ctx: TabularContext) -> Result:
    V = ctx.evaluate_masks(design_occlusion(ctx))
    return Result(ctx.fx[:, None] - V, ctx.base_value(), None)


def cost_occlusion(ctx: TabularContext) -> int:
    return ctx.mask_cost(design_occlusion(ctx)) + ctx.n + ctx.background.n_rows


# -------------------------------------------------------------------------------------- gradient
def run_clime(ctx: TabularContext, n_samples: int = 1000, sigma: float = 0.1, alpha: float = 0.0) -> Result:
    n_samples = _positive_int("n_samples", n_samples)
    if n_samples <= ctx.p:
        raise InputError(f"clime needs n_samples > number of columns ({ctx.p}), got {n_samples}")
    E = continuous.gaussian(ctx.p, n_samples, ctx.rng, sigma=sigma, scale=ctx.scale())
    V = ctx.evaluate_shifts(E)
    beta, c = linear.weighted_ridge(E, np.ones(n_samples), V, alpha=alpha)
    return Result(ctx.spec.aggregate(beta), c)


def cost_clime(ctx: TabularContext, n_samples: int = 1000, sigma: float = 0.1, alpha: float = 0.0) -> int:
    return ctx.n * int(n_samples) + ctx.n


def run_gradient(ctx: TabularContext, fd_step: float = 1e-3) -> Result:
    G = ctx.gradients(ctx.numeric_X(), ctx.targets, fd_step=fd_step)
    return Result(ctx.spec.aggregate(G), np.full(ctx.n, np.nan),
                  info={"estimator": "autograd" if ctx.has_gradient else "central_differences"})


def cost_gradient(ctx: TabularContext, fd_step: float = 1e-3) -> int:
    return ctx.gradient_cost(ctx.n) + ctx.n


def run_gradxinput(ctx: TabularContext, fd_step: float = 1e-3) -> Result:
    X = ctx.numeric_X()
    G = ctx.gradients(X, ctx.targets, fd_step=fd_step)
    return Result(ctx.spec.aggregate(X * G), np.full(ctx.n, np.nan),
                  info={"estimator": "autograd" if ctx.has_gradient else "central_differences"})


def _smooth_samples(ctx: TabularContext, n_samples: Any) -> int:
    if n_samples in (None, "auto"):
        return 50 if ctx.has_gradient else max(100, 4 * ctx.p)
    return _positive_int("n_samples", n_samples)


def run_smoothgrad(ctx: TabularContext, n_samples: int | str = "auto", sigma: float = 0.1,
                   fd_step: float = 1e-3) -> Result:
    """Autograd: mean gradient at x + eps. Black box: Stein's identity E[grad f(x+eps)] =
    Sigma^-1 E[eps f(x+eps)], estimated with antithetic pairs and the sample covariance of eps
    (a regression of (f(x+eps)-f(x-eps))/2 on eps), which is exact for linear f."""
    m = _smooth_samples(ctx, n_samples)
    X = ctx.numeric_X()
    if ctx.has_gradient:
        E = continuous.gaussian(ctx.p, m, ctx.rng, sigma=sigma, scale=ctx.scale())
        P = (X[:, None, :] + E[None]).reshape(-1, ctx.p)
        G = ctx.gradients(P, np.repeat(ctx.targets, m), fd_step=fd_step).reshape(ctx.n, m, ctx.p).mean(axis=1)
        est = "autograd"
    else:
        if m < ctx.p:
            raise InputError(f"black-box smoothgrad needs n_samples >= number of columns ({ctx.p}), got {m}")
        E = continuous.gaussian(ctx.p, m, ctx.rng, sigma=sigma, scale=ctx.scale())
        V = ctx.evaluate_shifts(np.concatenate([E, -E]))
        delta = (V[:, :m] - V[:, m:]) / 2
        G = delta @ (E @ np.linalg.pinv(E.T @ E))
        est = "stein_antithetic"
    return Result(ctx.spec.aggregate(G), np.full(ctx.n, np.nan), info={"n_samples": m, "estimator": est})


def cost_smoothgrad(ctx: TabularContext, n_samples: int | str = "auto", sigma: float = 0.1, fd_step: float = 1e-3) -> int:
    m = _smooth_samples(ctx, n_samples)
    return ctx.n * m * (1 if ctx.has_gradient else 2) + ctx.n


def run_integrated_gradients(ctx: TabularContext, steps: int = 50, baseline: str | None = "auto",
                             rule: str = "gausslegendre", fd_step: float = 1e-3) -> Result:
    steps = _positive_int("steps", steps)
    X = ctx.numeric_X()
    bases, bw = ctx.baselines(baseline)
    alphas, aw = continuous.path(steps, rule)
    n, p = X.shape
    values = np.zeros((n, p))
    for b, wb in zip(bases, bw):
        diff = X - b
        P = (b[None, None, :] + alphas[None, :, None] * diff[:, None, :]).reshape(-1, p)
        G = ctx.gradients(P, np.repeat(ctx.targets, steps), fd_step=fd_step).reshape(n, steps, p)
        values += wb * diff * np.einsum("s,nsp->np", aw, G)
    fb = ctx.evaluate_points(np.repeat(bases, n, axis=0), np.tile(ctx.targets, len(bases))).reshape(len(bases), n)
    return Result(ctx.spec.aggregate(values), bw @ fb, info={"n_baselines": int(len(bases))})


def cost_integrated_gradients(ctx: TabularContext, steps: int = 50, baseline: str | None = "auto",
                              rule: str = "gausslegendre", fd_step: float = 1e-3) -> int:
    nb = ctx.background.n_rows if (baseline == "expected" or (baseline in (None, "auto") and ctx.background.n_rows == 1)) else 1
    return ctx.gradient_cost(ctx.n * int(steps) * nb) + ctx.n * nb + ctx.n


TREE_PERTURBATIONS = ("auto", "interventional", "tree_path_dependent")
TREE_KERNELS = ("auto", "numba", "numpy")


def _tree_model(ctx: TabularContext, fresh: bool = False):
    """The model's trees, read once per Model adapter (a prepared problem reads them once for all its
    calls; each call still checks them against the model's outputs, and reads them again if they differ)."""
    from whybox.trees.model import read_trees, tree_source

    tree_source(ctx.model)                      # a tree model at all? (its error comes first)
    if ctx.X.dtype == object:
        raise MethodError("method 'tree' needs numeric columns")
    if np.isinf(ctx.X.astype(float)).any() or np.isinf(ctx.background.data.astype(float)).any():
        raise MethodError("method 'tree' takes finite values or NaN (missing, sent down each split's missing "
                          "branch); the rows or the background hold inf")
    if any(len(g) > 1 for g in ctx.spec.groups):
        raise MethodError("method 'tree' explains single columns; grouped features (groups=) need kernelshap or shapley")
    return read_trees(ctx.model, fresh=fresh)


def reproducing_trees(ctx: TabularContext, ens, fx: np.ndarray, totals_of, *, instead: str):
    """``totals_of(ens) -> (result, totals)`` with the trees' outputs on the explained rows; they
    must equal the model's own outputs ``fx`` on every row. When they do not and the adapter keeps its
    reads, the model changed since its trees were read (refitted in place): they are read again, once.
    Still off: a MethodError that names ``instead``. Returns (trees, result)."""
    tol = 1e-6 * max(1.0, float(np.abs(fx).max()))
    res, totals = totals_of(ens)
    if np.abs(totals - fx).max() > tol and getattr(ctx.model, "reads", None) is not None:
        ens = _tree_model(ctx, fresh=True)
        res, totals = totals_of(ens)
    off = float(np.abs(totals - fx).max())
    if off > tol:
        raise MethodError(f"the trees read from the model do not reproduce its output (off by {off:.3g}); "
                          f"use {instead}")
    return ens, res


TREE_ENUMERATE_MAX = 14       # a nonlinear output of a tree sum: exact by enumeration up to 2^14 coalitions


def _tree_plan(ctx: TabularContext, feature_perturbation: str):
    """("trees", ensemble) when the output decomposes tree by tree; for a boosted model's probability
    (a nonlinear transform of a sum of trees) ("enumerate", None) — exact interventional values by
    all 2^d coalitions through the model — when d <= 14, else ("sample", None): KernelSHAP, labelled
    approximate, with standard errors."""
    from whybox.trees.model import NotASumOfTrees

    if feature_perturbation not in TREE_PERTURBATIONS:
        raise InputError(f"feature_perturbation must be one of {TREE_PERTURBATIONS}, got {feature_perturbation!r}")
    if "trees" not in ctx.memo:             # read once per call: the cost and the run both need it
        try:
            ctx.memo["trees"] = _tree_model(ctx)
        except NotASumOfTrees as exc:
            ctx.memo["trees"] = exc
    ens = ctx.memo["trees"]
    if not isinstance(ens, NotASumOfTrees):
        return "trees", ens
    if feature_perturbation == "tree_path_dependent" or ctx.background.implicit:
        raise MethodError(f"{ens}; path-dependent values need the trees' own output (give a background for "
                          "the exact interventional values of the probability)") from None
    return ("enumerate" if ctx.d <= TREE_ENUMERATE_MAX else "sample"), None


def _tree_kernel(kernel: str):
    """The (interventional, path_dependent) pair of the chosen kernel: numba's compiled tree walks
    (``whybox[speed]``) or the numpy leaf tables; "auto": numba when installed."""
    from whybox.trees import kernel as compiled
    from whybox.trees import shap as leaves

    if kernel not in TREE_KERNELS:
        raise InputError(f"kernel must be one of {TREE_KERNELS}, got {kernel!r}")
    if kernel == "numba" and not compiled.available():
        raise ImportError("kernel='numba' needs numba: pip install 'whybox[speed]'")
    if kernel == "numpy" or not compiled.available():
        return "numpy", leaves.interventional, leaves.path_dependent, lambda ens, X, t: ens.predict(X)[:, t]
    return "numba", compiled.interventional, compiled.path_dependent, compiled.predict


def run_tree(ctx: TabularContext, feature_perturbation: str = "auto", kernel: str = "auto") -> Result:
    """Exact Shapley values from the trees themselves (:mod:`whybox.trees`): interventional
    against the background, or path-dependent (the trees' training cover) when no background was
    given (``feature_perturbation="auto"``); no model rows beyond the explained rows' outputs.
    A boosted classifier's probability does not decompose tree by tree: exact by enumeration of the
    2^d coalitions through the model when d <= 14, else KernelSHAP labelled approximate.
    ``kernel``: "numba" (compiled tree walks, ``whybox[speed]``), "numpy" (leaf tables), "auto"."""
    kname, interventional, path_dependent, predict = _tree_kernel(kernel)
    plan, ens = _tree_plan(ctx, feature_perturbation)
    if plan == "enumerate":
        res = run_shapley(ctx, max_features=TREE_ENUMERATE_MAX)
        res.info = {**(res.info or {}), "feature_perturbation": "interventional", "exact": True,
                    "estimator": "enumeration of every coalition (the output is not a sum of trees)"}
        return res
    if plan == "sample":
        res = run_kernelshap(ctx)
        res.info = {**(res.info or {}), "feature_perturbation": "interventional", "exact": False, "approx": True,
                    "estimator": "kernelshap (the output is not a sum of trees and d > 14): approximate"}
        return res
    fp = feature_perturbation
    if fp == "auto":
        fp = "tree_path_dependent" if ctx.background.implicit else "interventional"
    X = ctx.numeric_X(allow_nan=True)            # one row per (virtual) row, as the targets

    def values_of(ens):
        cols, base = np.zeros((ctx.n, ctx.p)), np.zeros(ctx.n)
        for t in np.unique(ctx.targets):
            rows = np.where(ctx.targets == t)[0]
            if fp == "interventional":
                bg = ctx.background
                B = bg.data.astype(float)
                cols[rows] = interventional(ens, X[rows], B, bg.weights, int(t))
                base[rows] = float(bg.weights @ predict(ens, B, int(t)))
            else:
                cols[rows], base[rows] = path_dependent(ens, X[rows], int(t))
        return cols, base

    # the values add up to the trees' output exactly (efficiency), so this checks that the trees
    # reproduce the model's own outputs on every explained row
    def totals_of(ens):
        cols, base = values_of(ens)
        return (cols, base), cols.sum(1) + base

    _, (cols, base) = reproducing_trees(ctx, ens, ctx.fx, totals_of, instead="kernelshap")
    values = np.zeros((ctx.n, ctx.d))
    for c, g in enumerate(ctx.spec.group_of_column):
        values[:, g] += cols[:, c]
    return Result(values, base, None, info={"feature_perturbation": fp, "exact": True, "kernel": kname})


def cost_tree(ctx: TabularContext, feature_perturbation: str = "auto", kernel: str = "auto") -> int:
    _tree_kernel(kernel)                         # validates the name
    plan, _ = _tree_plan(ctx, feature_perturbation)
    if plan == "enumerate":
        return cost_shapley(ctx, max_features=TREE_ENUMERATE_MAX)
    if plan == "sample":
        return cost_kernelshap(ctx)
    return 0


METHODS: dict[str, Recipe] = {r.name: r for r in [
    Recipe("lime", "masking", "bernoulli(0.5) masks, exponential kernel", "weighted ridge", run_lime, cost_lime),
    Recipe("kernelshap", "masking", "Shapley-kernel coalitions, paired sampling", "constrained WLS",
           run_kernelshap, cost_kernelshap),
    Recipe("shapley", "masking", "all coalitions", "Shapley closed form", run_shapley, cost_shapley,
           design_shapley),
    Recipe("occlusion", "masking", "one feature removed at a time", "difference", run_occlusion, cost_occlusion,
           design_occlusion),
    Recipe("clime", "gradient", "gaussian(sigma)", "least squares", run_clime, cost_clime),
    Recipe("gradient", "gradient", "infinitesimal", "gradient matching", run_gradient, cost_gradient),
    Recipe("gradxinput", "gradient", "infinitesimal", "gradient x input", run_gradxinput, cost_gradient),
    Recipe("smoothgrad", "gradient", "gaussian(sigma)", "gradient matching", run_smoothgrad, cost_smoothgrad),
    Recipe("integrated_gradients", "gradient", "straight path from the baseline", "path gradient matching",
           run_integrated_gradients, cost_integrated_gradients),
    Recipe("tree", "tree", "the trees' paths: the background (interventional) or the training cover",
           "exact TreeSHAP", run_tree, cost_tree),
]}

ALIASES = {"ig": "integrated_gradients", "kernel_shap": "kernelshap", "shap": "kernelshap",
           "exact": "shapley", "grad": "gradient", "vanilla_gradient": "gradient",
           "gradient_x_input": "gradxinput", "c-lime": "clime", "c_lime": "clime"}


def get_recipe(method: str) -> Recipe:
    key = str(method).lower()
    key = ALIASES.get(key, key)
    if key not in METHODS:
        raise MethodError(f"unknown method {method!r}; choose one of {sorted(METHODS)}")
    return METHODS[key]


def cost_keeping_rng(recipe: Recipe, ctx: Any, params: dict[str, Any]) -> int:
    """``recipe.cost`` on a context whose random stream is left as it was (a cost estimate draws the
    design; the run must draw the same one)."""
    state = ctx.rng.bit_generator.state
    try:
        return int(recipe.cost(ctx, **params))
    finally:
        ctx.rng.bit_generator.state = state


def item_rng(seed: Any, i: int) -> np.random.Generator:
    """The random stream of item i (a text, a node, a graph): (seed, i), so an item's numbers do not
    depend on which other items are in the call; a Generator is used as given, None is fresh entropy."""
    if isinstance(seed, np.random.Generator):
        return seed
    if seed is None:
        return np.random.default_rng()
    if isinstance(seed, (int, np.integer)) and not isinstance(seed, bool):
        return np.random.default_rng([int(seed), i])
    raise InputError(f"seed must be an int, None or numpy.random.Generator, got {type(seed).__name__}")


def accepted_params(fn: Callable[..., Any], method: str, where: str, params: dict[str, Any], *,
                    skip: tuple[str, ...] = ()) -> dict[str, Any]:
    """The defaults of a run function's own parameters (after its context, less ``skip``); an unknown
    name in ``params`` is a MethodError naming what the method accepts."""
    allowed = {k: v.default for k, v in list(inspect.signature(fn).parameters.items())[1:] if k not in skip}
    unknown = sorted(set(params) - set(allowed))
    if unknown:
        raise MethodError(f"method {method!r} {where} got unknown parameter(s) {unknown}; it accepts {sorted(allowed)}")
    return allowed
