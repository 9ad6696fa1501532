"""Continuous neighbourhoods in input space: Gaussian noise (C-LIME, SmoothGrad), straight-line
paths (Integrated Gradients), and the infinitesimal one of finite differences (vanilla gradients)."""
from __future__ import annotations

import numpy as np


def gaussian(p: int, m: int, rng: np.random.Generator, *, sigma: float, scale: np.ndarray,
             antithetic: bool = False) -> np.ndarray:
    """m noise vectors eps ~ N(0, diag((sigma * scale)^2)); with ``antithetic`` the second half is
    the negation of the first (m must then be even)."""
    if antithetic:
        half = rng.standard_normal((m // 2, p))
        E = np.concatenate([half, -half])
    else:
        E = rng.standard_normal((m, p))
    return E * (sigma * np.asarray(scale, dtype=float))


GL_PANEL = 64      # nodes per Gauss-Legendre panel: numpy's leggauss costs O(n^3), 4,000 nodes took 5 s


def path(steps: int, rule: str = "gausslegendre") -> tuple[np.ndarray, np.ndarray]:
    """Quadrature nodes alpha in (0, 1] and weights (summing to 1) for the integral over [0, 1].

    Gauss-Legendre with up to 64 nodes is one rule on [0, 1]; more nodes are split into equal panels
    of at most 64 nodes each (composite Gauss-Legendre: exactly ``steps`` nodes, same accuracy class)."""
    if rule == "gausslegendre":
        if steps <= GL_PANEL:
            x, w = np.polynomial.legendre.leggauss(steps)
            return (x + 1) / 2, w / 2
        panels = -(-steps // GL_PANEL)
        sizes = np.full(panels, steps // panels)
        sizes[: steps % panels] += 1
        rules = {int(n): np.polynomial.legendre.leggauss(int(n)) for n in np.unique(sizes)}
        nodes, weights = [], []
        for j, size in enumerate(sizes):
            x, w = rules[int(size)]
            nodes.append((j + (x + 1) / 2) / panels)
            weights.append(w / 2 / panels)
        return np.concatenate(nodes), np.concatenate(weights)
    if rule == "riemann_middle":
        return (np.arange(steps) + 0.5) / steps, np.full(steps, 1.0 / steps)
    if rule == "riemann_right":
        return (np.arange(steps) + 1.0) / steps, np.full(steps, 1.0 / steps)
    raise ValueError(f"unknown integration rule {rule!r}")
