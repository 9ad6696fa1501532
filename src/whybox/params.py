"""Every public parameter declared once: its type, range and allowed strings (in the spirit of
scikit-learn's ``_param_validation``). Entry points call :func:`check` (or :func:`check_all`) and get
the value back, or an :class:`~whybox.errors.InputError` that names the parameter and what it accepts.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Mapping

import numpy as np

from whybox.errors import InputError

MAX_ROWS = 10**12          # no budget, sample count or row count beyond this is meaningful


@dataclass(frozen=True)
class Int:
    low: int | None = None
    high: int | None = None
    strings: tuple[str, ...] = ()
    none: bool = False

    def describe(self) -> str:
        rng = (f">= {self.low}" if self.high is None else f"in [{self.low}, {self.high:,}]") if self.low is not None \
            else "an integer"
        extra = [repr(s) for s in self.strings] + (["None"] if self.none else [])
        return f"an integer {rng}" + (f" or {', '.join(extra)}" if extra else "")

    def __call__(self, name: str, v: Any) -> Any:
        if v is None and self.none:
            return None
        if isinstance(v, str) and v in self.strings:
            return v
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)):      # 1.0 is not an integer here
            raise InputError(f"{name} must be {self.describe()}, got {v!r}")
        v = int(v)
        if (self.low is not None and v < self.low) or (self.high is not None and v > self.high):
            raise InputError(f"{name} must be {self.describe()}, got {v!r}")
        return v


@dataclass(frozen=True)
class Float:
    low: float | None = None
    high: float | None = None
    low_open: bool = False
    high_open: bool = False
    none: bool = False
    strings: tuple[str, ...] = ()

    def describe(self) -> str:
        parts = []
        if self.low is not None:
            parts.append(f"{'>' if self.low_open else '>='} {self.low:g}")
        if self.high is not None:
            parts.append(f"{'<' if self.high_open else '<='} {self.high:g}")
        extra = [repr(s) for s in self.strings] + (["None"] if self.none else [])
        return "a finite number" + (f" {' and '.join(parts)}" if parts else "") + (f" or {', '.join(extra)}" if extra else "")

    def __call__(self, name: str, v: Any) -> Any:
        if v is None and self.none:
            return None
        if isinstance(v, str) and v in self.strings:
            return v
        if isinstance(v, bool) or not isinstance(v, (int, float, np.integer, np.floating)) or not math.isfinite(float(v)):
            raise InputError(f"{name} must be {self.describe()}, got {v!r}")
        v = float(v)
        bad = (self.low is not None and (v <= self.low if self.low_open else v < self.low)) or \
              (self.high is not None and (v >= self.high if self.high_open else v > self.high))
        if bad:
            raise InputError(f"{name} must be {self.describe()}, got {v!r}")
        return v


@dataclass(frozen=True)
class Choice:
    options: tuple[Any, ...]
    none: bool = False

    def __call__(self, name: str, v: Any) -> Any:
        if v is None and self.none:
            return None
        if isinstance(v, str) and v in self.options:
            return v
        raise InputError(f"{name} must be one of {list(self.options)}" + (" or None" if self.none else "") + f", got {v!r}")


@dataclass(frozen=True)
class Seed:
    def __call__(self, name: str, v: Any) -> Any:
        if v is None or isinstance(v, np.random.Generator):
            return v
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or not 0 <= int(v) < 2**63:
            raise InputError(f"{name} must be a non-negative integer, None or a numpy Generator, got {v!r}")
        return int(v)


# ------------------------------------------------------------------------------ the declarations
PARAMS: dict[str, Any] = {
    # shared
    "seed": Seed(),
    "budget": Int(1, MAX_ROWS, none=True),
    "batch_size": Int(1, MAX_ROWS, none=True),
    # code (whybox.code)
    "agg": Choice(("mean", "median", "min")),
    "on_error": Choice(("mark", "raise")),
    "n_boot": Int(100, 1_000_000),
    "chunk_rows": Int(1, 10**9),
    "rows_per_task": Int(1, 10**9),
    "k": Int(1, None, none=True),
    "row": Int(0, None),
    # recipes
    "n_samples": Int(1, 10**7, strings=("auto",), none=True),
    "kernel_width": Float(1e-6, 1e6, none=True),     # beyond: the kernel's weights under/overflow
    "alpha": Float(0, 1e12),
    "sigma": Float(1e-12, 1e6),
    "steps": Int(1, 100_000),
    "fd_step": Float(0, 1, low_open=True),
    "stderr_strata": Int(1, 10_000),
    "max_features": Int(1, 20),
    "strategy": Choice(("stratified", "shared")),
    "allocation": Choice(("neyman", "equal")),
    "control_variate": Choice(("cubic", "none")),
    "baseline": Choice(("auto", "mean", "expected", "zeros"), none=True),
    "rule": Choice(("gausslegendre", "riemann_middle", "riemann_right")),
    # metrics
    "metric_samples": Int(1, 1_000_000),           # n_samples of a metric (no "auto")
    "n_perturb": Int(1, 1_000_000),
    "std": Float(1e-12, 1e6),
    "flip_p": Float(0, 1),
    "p": Float(0, 1, low_open=True, high_open=True),
    "K": Int(1, None, none=True),
    "radius": Float(1e-12, 1e6),
    "eps": Float(0, None, low_open=True),
    "audience": Choice(("lay", "expert")),
    # counterfactuals
    "n_candidates": Int(1, 50_000),
    "rounds": Int(1, 100),
    "max_changes": Int(1, None, none=True),
    "diversity_weight": Float(0, 1e6),
    "cf_k": Int(1, 100),
    "max_features_narrated": Int(1, 1000),
}


def check(name: str, value: Any, *, decl: Any = None) -> Any:
    """``value`` validated against the declaration of ``name`` (or ``decl``)."""
    d = decl if decl is not None else PARAMS.get(name)
    return value if d is None else d(name, value)


def check_all(params: Mapping[str, Any]) -> dict[str, Any]:
    """Every declared parameter of ``params`` validated (undeclared ones pass through)."""
    return {k: check(k, v) for k, v in params.items()}


def check_chunk_rows(v: Any) -> int:
    return check("chunk_rows", v)


def check_memory(what: str, n_values: float, *, limit_gb: float = 4.0) -> None:
    """Refuse, before allocating, an array of ``n_values`` float64 larger than ``limit_gb``."""
    gb = float(n_values) * 8 / 2**30
    if gb > limit_gb:
        raise InputError(f"{what} would allocate {gb:,.1f} GiB (limit {limit_gb:g} GiB): use fewer rows or a smaller "
                         "sample count")
