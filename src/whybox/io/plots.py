"""Matplotlib plots of an Explanation, in the look shap users know: bar, waterfall, beeswarm."""
from __future__ import annotations

import numpy as np

from whybox.errors import InputError

POS, NEG = "#d62728", "#1f77b4"


def _mpl():
    import matplotlib
    if matplotlib.get_backend().lower() not in ("agg", "module://matplotlib_inline.backend_inline"):
        try:
            matplotlib.use("Agg")
        except Exception:  # pragma: no cover
            pass
    import matplotlib.pyplot as plt
    return plt


def _fmt(v) -> str:
    if isinstance(v, (float, np.floating)):
        return f"{v:.4g}"
    return str(v)


def plot(exp, *, kind: str = "bar", row: int = 0, max_features: int = 10, path: str | None = None, ax=None):
    if kind not in ("bar", "waterfall", "beeswarm"):
        raise InputError(f"unknown plot kind {kind!r}; use 'bar', 'waterfall' or 'beeswarm'")
    if kind != "beeswarm" and not 0 <= row < len(exp):
        raise InputError(f"row {row} out of range: the explanation has {len(exp)} rows")
    plt = _mpl()
    d = len(exp.feature_names)
    k = min(max_features, d)
    height = 0.4 * k + 1.4
    fig = None
    if ax is None:
        fig, ax = plt.subplots(figsize=(7.5, height))
    else:
        fig = ax.figure
    if kind == "bar":
        _bar(exp, row, k, ax)
    elif kind == "waterfall":
        _waterfall(exp, row, k, ax)
    else:
        _beeswarm(exp, k, ax)
    fig.tight_layout()
    if path is not None:
        fig.savefig(path, dpi=110)
        plt.close(fig)
    return fig


def _labels(exp, row, order):
    if exp.data is None:
        return [exp.feature_names[j] for j in order]
    return [f"{exp.feature_names[j]} = {_fmt(exp.data[row, j])}" for j in order]


def _bar(exp, row, k, ax):
    v = exp.values[row]
    order = np.argsort(-np.abs(v), kind="stable")[:k][::-1]
    ax.barh(range(len(order)), v[order], color=[POS if x > 0 else NEG for x in v[order]])
    ax.set_yticks(range(len(order)), _labels(exp, row, order))
    ax.axvline(0, color="#444", lw=0.8)
    tgt = exp.target_names()[row]
    ax.set_xlabel(f"{exp.method} attribution (output {tgt})")
    ax.set_title(f"row {exp.row_ids[row]}: prediction {exp.predictions[row]:.4g}", fontsize=10)


def _waterfall(exp, row, k, ax):
    v = exp.values[row]
    base = exp.base_values[row]
    if not np.isfinite(base):
        base = exp.predictions[row] - v.sum()
    order = np.argsort(-np.abs(v), kind="stable")
    top, rest = order[:k - 1] if len(order) > k else order, order[k - 1:] if len(order) > k else []
    steps = [(lbl, v[j]) for lbl, j in zip(_labels(exp, row, top), top)]
    if len(rest):
        steps.append((f"{len(rest)} other features", v[rest].sum()))
    steps = steps[::-1]
    start = base + sum(s for _, s in steps)
    # draw from bottom (base) upwards in order of the list reversed
    cur = base
    ys = []
    for i, (lbl, s) in enumerate(steps):
        ax.barh(i, s, left=cur, color=POS if s > 0 else NEG)
        ax.text(cur + s, i, f" {s:+.3g}", va="center", ha="left" if s > 0 else "right", fontsize=8)
        cur += s
        ys.append(lbl)
    ax.set_yticks(range(len(steps)), ys)
    ax.axvline(base, color="#888", ls="--", lw=0.8)
    ax.axvline(start, color="#222", ls=":", lw=0.8)
    ax.set_xlabel(f"base {base:.4g} -> output {start:.4g} ({exp.method})")
    ax.set_title(f"row {exp.row_ids[row]}: how each feature moves the output", fontsize=10)


def _beeswarm(exp, k, ax):
    imp = np.abs(exp.values).mean(axis=0)
    order = np.argsort(-imp, kind="stable")[:k][::-1]
    rng = np.random.default_rng(0)
    cmap = _mpl().get_cmap("coolwarm")
    for pos, j in enumerate(order):
        vals = exp.values[:, j]
        colour = "#777"
        if exp.data is not None:
            try:
                raw = exp.data[:, j].astype(float)
                lo, hi = np.nanmin(raw), np.nanmax(raw)
                colour = cmap((raw - lo) / (hi - lo) if hi > lo else np.full(len(raw), 0.5))
            except (TypeError, ValueError):
                pass
        jitter = rng.uniform(-0.3, 0.3, size=len(vals))
        ax.scatter(vals, pos + jitter, s=10, c=colour, alpha=0.8, linewidths=0)
    ax.set_yticks(range(len(order)), [exp.feature_names[j] for j in order])
    ax.axvline(0, color="#444", lw=0.8)
    ax.set_xlabel(f"{exp.method} attribution (colour: feature value, low blue / high red)")
    ax.set_title(f"{len(exp)} rows", fontsize=10)
