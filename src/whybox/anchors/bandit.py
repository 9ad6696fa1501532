"""Bernoulli KL confidence bounds and the KL-LUCB best-arm identification used by the anchor search
(Kaufmann & Kalyanakrishnan 2013, as in Ribeiro et al. 2018)."""
from __future__ import annotations

import math
from typing import Callable

import numpy as np


def kl_bernoulli(p: float, q: float) -> float:
    p = min(max(p, 1e-12), 1 - 1e-12)
    q = min(max(q, 1e-12), 1 - 1e-12)
    return p * math.log(p / q) + (1 - p) * math.log((1 - p) / (1 - q))


def kl_upper(p: float, level: float) -> float:
    """Largest q >= p with KL(p, q) <= level (bisection)."""
    return _kl_bound(p, level, upper=True)


def kl_lower(p: float, level: float) -> float:
    """Smallest q <= p with KL(p, q) <= level (bisection)."""
    return _kl_bound(p, level, upper=False)


def _kl_bound(p: float, level: float, *, upper: bool) -> float:
    inside, outside = p, (1.0 if upper else 0.0)          # KL(p, inside) <= level < KL(p, outside)
    for _ in range(40):
        mid = (inside + outside) / 2
        if kl_bernoulli(p, mid) > level:
            outside = mid
        else:
            inside = mid
    return inside


def beta(n_arms: int, t: int, delta: float) -> float:
    """The exploration rate of KL-LUCB (the constants of the anchor reference implementation)."""
    alpha, k = 1.1, 405.5
    temp = math.log(k * max(n_arms, 1) * (max(t, 1) ** alpha) / delta)
    return temp + math.log(max(temp, 1.0))


class Arms:
    """Positives and draws per candidate, with batched sampling through ``draw(i, n) -> hits``."""

    def __init__(self, n: int, draw: Callable[[int, int], int]):
        self.pos = np.zeros(n)
        self.n = np.zeros(n)
        self.draw = draw

    def pull(self, i: int, n: int) -> None:
        self.pos[i] += self.draw(i, n)
        self.n[i] += n

    def mean(self, i: int) -> float:
        return float(self.pos[i] / self.n[i]) if self.n[i] else 0.0

    def bounds(self, i: int, level_total: float) -> tuple[float, float]:
        if self.n[i] == 0:
            return 0.0, 1.0
        p, lv = self.mean(i), level_total / self.n[i]
        return kl_lower(p, lv), kl_upper(p, lv)


def lucb(arms: Arms, top: int, *, delta: float, epsilon: float, batch: int, max_rounds: int,
         can_pull: Callable[[int], bool]) -> list[int]:
    """Indices of ``top`` arms with (approximately, within ``epsilon``) the highest means."""
    n_arms = len(arms.n)
    if n_arms <= top:
        return list(range(n_arms))
    t = 1
    while t <= max_rounds:
        means = np.array([arms.mean(i) for i in range(n_arms)])
        order = np.argsort(-means, kind="stable")
        best, rest = order[:top], order[top:]
        lv = beta(n_arms, t, delta)
        lb = {i: arms.bounds(i, lv)[0] for i in best}
        ub = {i: arms.bounds(i, lv)[1] for i in rest}
        lt = min(lb, key=lb.get)
        ut = max(ub, key=ub.get)
        if ub[ut] - lb[lt] <= epsilon:
            break
        if not (can_pull(batch * 2)):
            break
        arms.pull(int(ut), batch)
        arms.pull(int(lt), batch)
        t += 1
    means = np.array([arms.mean(i) for i in range(n_arms)])
    return list(np.argsort(-means, kind="stable")[:top])
