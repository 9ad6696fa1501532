"""Neighbourhoods in which an explanation's faithfulness is measured (what the user means by "nearby").

* :class:`Removal` — features removed toward the background (each independently with probability p):
  the explanation read as g(z) = base + sum_j z_j phi_j predicts f(x) - v_x(z) = sum_{removed} phi_j.
* :class:`Gaussian` — small noise x + eps, eps ~ N(0, sigma^2 s^2): the explanation read as a gradient
  predicts f(x + eps) - f(x) = phi . eps.

Han et al. (2022) show that no method is most faithful in every neighbourhood; :func:`whybox.choose`
measures each candidate in the one given here.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from whybox.errors import InputError


@dataclass(frozen=True)
class Removal:
    p: float = 0.5

    def __post_init__(self) -> None:
        if not 0 < self.p <= 1:
            raise InputError(f"Removal probability p must be in (0, 1], got {self.p}")

    def __str__(self) -> str:
        return f"removal({self.p:g})"


SCALES = ("relative", "absolute")


@dataclass(frozen=True)
class Gaussian:
    """x + eps, eps ~ N(0, sigma^2 s^2). ``scale="relative"`` (default): s is each column's standard
    deviation in the background, so one sigma means the same for columns in dollars and in years;
    note a k-means summary has a smaller spread than the data. ``scale="absolute"``: s = 1, the noise
    is sigma in the columns' own units (OpenXAI's convention: std 0.1 on min-max scaled data)."""
    sigma: float = 0.1
    scale: str = "relative"

    def __post_init__(self) -> None:
        import math
        if not (isinstance(self.sigma, (int, float)) and math.isfinite(self.sigma) and self.sigma > 0):
            raise InputError(f"Gaussian sigma must be a positive finite number, got {self.sigma}")
        if self.scale not in SCALES:
            raise InputError(f"Gaussian scale must be one of {SCALES}, got {self.scale!r}")

    def __str__(self) -> str:
        return f"gaussian({self.sigma:g})" if self.scale == "relative" else f"gaussian({self.sigma:g}, absolute)"


def parse_neighbourhood(spec) -> Removal | Gaussian:
    """Accept a Removal/Gaussian object or a string: "removal", "removal(0.3)", "gaussian",
    "gaussian(0.05)", "gaussian(0.1, absolute)" or "gaussian:0.05"."""
    if isinstance(spec, (Removal, Gaussian)):
        return spec
    if not isinstance(spec, str):
        raise InputError(f"neighbourhood must be a string such as 'removal' or 'gaussian(0.05)', got {spec!r}")
    m = re.fullmatch(r"\s*gaussian\s*\(\s*([0-9.eE+-]+)\s*,\s*(relative|absolute)\s*\)\s*", spec.lower())
    if m:
        try:
            return Gaussian(float(m.group(1)), m.group(2))
        except ValueError:
            raise InputError(f"cannot parse the parameter of neighbourhood {spec!r}") from None
    m = re.fullmatch(r"\s*(removal|gaussian)\s*(?:[(:]\s*([0-9.eE+-]+)\s*\)?)?\s*", str(spec).lower())
    if not m:
        raise InputError(f"unknown neighbourhood {spec!r}: use 'removal', 'removal(p)', 'gaussian' or 'gaussian(sigma)'")
    kind, arg = m.groups()
    try:
        val = float(arg) if arg is not None else None
    except ValueError:
        raise InputError(f"cannot parse the parameter of neighbourhood {spec!r}") from None
    if kind == "removal":
        return Removal() if val is None else Removal(val)
    return Gaussian() if val is None else Gaussian(val)
