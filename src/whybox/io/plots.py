"""Matplotlib plots of an Explanation, in the look shap users know: bar, waterfall, beeswarm (one
panel per output when there are several), dependence (with interaction colouring), decision,
heatmap, global bar (stacked per output); the heatmap of pairwise Shapley interactions; the
fairness-vs-accuracy chart of remedies. The force plot is in :mod:`whybox.io.force`."""
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


KINDS = ("bar", "waterfall", "beeswarm", "dependence", "decision", "heatmap", "global_bar")


def plot(exp, *, kind: str = "bar", row: int = 0, max_features: int = 10, path: str | None = None, ax=None,
         feature=None, color="auto"):
    if kind not in KINDS:
        raise InputError(f"unknown plot kind {kind!r}; use one of {KINDS}")
    if kind == "dependence":
        return _finish(_dependence(exp, feature, color, ax), path)
    if kind in ("bar", "waterfall") and not 0 <= row < len(exp):
        raise InputError(f"row {row} out of range: the explanation has {len(exp)} rows")
    plt = _mpl()
    d = len(exp.feature_names)
    k = min(max_features, d)
    height = 0.4 * k + 1.4
    if kind == "beeswarm" and exp.all_outputs:
        return _finish(_beeswarm_per_output(exp, k, height), path)
    fig = None
    if ax is None:
        fig, ax = plt.subplots(figsize=(7.5, height))
    else:
        fig = ax.figure
    if kind == "bar":
        _bar(exp, row, k, ax)
    elif kind == "waterfall":
        _waterfall(exp, row, k, ax)
    elif kind == "decision":
        _decision(exp, k, ax)
    elif kind == "heatmap":
        _heatmap(exp, k, ax)
    elif kind == "global_bar":
        _global_bar(exp, k, ax)
    else:
        _beeswarm(exp, k, ax)
    return _finish(fig, path)


def _finish(fig, path):
    fig.tight_layout()
    if path is not None:
        fig.savefig(path, dpi=110)
        _mpl().close(fig)
    return fig


def _column(exp, feature, what: str) -> int:
    names = list(exp.feature_names)
    if isinstance(feature, (int, np.integer)) and not isinstance(feature, bool) and 0 <= int(feature) < len(names):
        return int(feature)
    if isinstance(feature, str) and feature in names:
        return names.index(feature)
    raise InputError(f"{what} must be one of the explanation's features ({names[:6]}{'...' if len(names) > 6 else ''}) "
                     f"or its index, got {feature!r}")


def _numeric(col) -> tuple[np.ndarray, list | None]:
    """Values of a data column as floats; categories as codes (and their labels)."""
    try:
        return np.asarray(col, dtype=float), None
    except (TypeError, ValueError):
        cats = sorted({str(v) for v in col})
        return np.array([cats.index(str(v)) for v in col], dtype=float), cats


def interaction_partner(exp, j: int) -> int | None:
    """The feature whose values best explain what feature j's value alone does not: the largest
    |correlation| with the attribution of j after removing its mean within deciles of j's value (the
    idea of shap's approximate_interactions)."""
    x, _ = _numeric(exp.data[:, j])
    y = exp.values[:, j]
    edges = np.unique(np.quantile(x, np.linspace(0, 1, 11)))
    b = np.clip(np.searchsorted(edges, x, side="right") - 1, 0, max(len(edges) - 2, 0))
    means = np.bincount(b, weights=y) / np.maximum(np.bincount(b), 1)
    resid = y - means[b]
    best, score = None, 0.0
    for k in range(exp.values.shape[1]):
        if k == j:
            continue
        z, _ = _numeric(exp.data[:, k])
        if np.std(z) == 0 or np.std(resid) == 0:
            continue
        c = abs(float(np.corrcoef(z, resid)[0, 1]))
        if np.isfinite(c) and c > score:
            best, score = k, c
    return best


def _dependence(exp, feature, color, ax):
    if exp.data is None:
        raise InputError("the dependence plot needs the explained rows' feature values (Explanation.data)")
    if feature is None:
        raise InputError("the dependence plot needs feature=<a feature name or index>")
    j = _column(exp, feature, "feature")
    plt = _mpl()
    fig = ax.figure if ax is not None else plt.subplots(figsize=(6.5, 4.2))[0]
    ax = ax if ax is not None else fig.axes[0]
    x, cats = _numeric(exp.data[:, j])
    c = interaction_partner(exp, j) if color == "auto" else (None if color is None else _column(exp, color, "color"))
    if c is None:
        ax.scatter(x, exp.values[:, j], s=14, color="#1f77b4", alpha=0.8, linewidths=0)
    else:
        z, zc = _numeric(exp.data[:, c])
        sc = ax.scatter(x, exp.values[:, j], s=14, c=z, cmap="coolwarm", alpha=0.85, linewidths=0)
        bar = fig.colorbar(sc, ax=ax)
        bar.set_label(exp.feature_names[c])
        if zc is not None:
            bar.set_ticks(range(len(zc)), labels=zc)
    if cats is not None:
        ax.set_xticks(range(len(cats)), cats, rotation=30)
    ax.axhline(0, color="#444", lw=0.8)
    ax.set_xlabel(exp.feature_names[j])
    ax.set_ylabel(f"{exp.method} attribution of {exp.feature_names[j]}")
    ax.set_title(f"{len(exp)} rows" + ("" if c is None else f"; colour: {exp.feature_names[c]}"), fontsize=10)
    return fig


def interaction_heatmap(iv, *, row: int = 0, path: str | None = None, ax=None):
    """The pairwise values of one row of :class:`whybox.interactions.Interactions` as a heatmap
    (first-order values on the diagonal), red positive, blue negative, symmetric colour scale."""
    if not 0 <= row < len(iv.values):
        raise InputError(f"row {row} out of range: there are {len(iv.values)} rows")
    plt = _mpl()
    M = iv.matrix(row)
    d = len(M)
    fig = ax.figure if ax is not None else plt.subplots(figsize=(0.45 * d + 3, 0.45 * d + 2))[0]
    ax = ax if ax is not None else fig.axes[0]
    vmax = float(np.abs(M).max()) or 1.0
    im = ax.imshow(M, cmap="RdBu_r", vmin=-vmax, vmax=vmax)
    ax.set_xticks(range(d), iv.feature_names, rotation=45, ha="right")
    ax.set_yticks(range(d), iv.feature_names)
    fig.colorbar(im, ax=ax).set_label(f"{iv.index} (order {iv.order})")
    ax.set_title(f"row {row}: pairwise interactions (diagonal: single features)", fontsize=10)
    return _finish(fig, path)


def remedy_chart(report, *, ax=None, path: str | None = None):
    """A :class:`whybox.fairness.RemedyReport` as a fairness-vs-accuracy chart: the gap the remedies
    aim at (x, percentage points) against accuracy (y); the original in black, remedies that use the
    attribute to decide in red, the others green."""
    plt = _mpl()
    fig = ax.figure if ax is not None else plt.subplots(figsize=(7, 4.2))[0]
    ax = ax if ax is not None else fig.axes[0]
    for r in report.remedies:
        g = r.gap(report.constraint)
        if g is None:
            continue
        orig = r.name == "original"
        x, y = 100 * g, 100 * r.gaps["accuracy"]
        ax.scatter([x], [y], s=70 if orig else 45, c="black" if orig else ("#c62828" if r.uses_attribute else "#2f8132"),
                   zorder=3)
        ax.annotate(r.title, (x, y), textcoords="offset points", xytext=(6, 4), fontsize=8)
    words = "equal selection rates" if report.constraint == "demographic_parity" else "equal true-positive rates"
    ax.set_xlabel(f"gap between groups (percentage points; {words} = 0)")
    ax.set_ylabel("accuracy (%)")
    ax.set_title("Fairer is further left; more accurate is higher (red: uses the attribute to decide)", fontsize=9)
    ax.grid(alpha=0.3)
    return _finish(fig, path)


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
    gap = exp.predictions[row] - start
    note = "" if abs(gap) <= 1e-6 * max(1.0, abs(start)) else \
        f"; f(x) = {exp.predictions[row]:.4g}: the attributions miss it by {gap:+.3g}"
    ax.set_xlabel(f"base {base:.4g} -> output {start:.4g} ({exp.method}{note})")
    ax.set_title(f"row {exp.row_ids[row]}: how each feature moves the output", fontsize=10)


def _decision(exp, k, ax):
    """shap's decision plot: each row a line from its base value (bottom) through the k most important
    features (by mean |value|, most important on top; the others summed first) to its output."""
    imp = np.abs(exp.values).mean(axis=0)
    order = np.argsort(-imp, kind="stable")[:k][::-1]          # bottom .. top
    rest = np.setdiff1d(np.arange(exp.values.shape[1]), order)
    base = np.where(np.isfinite(exp.base_values), exp.base_values, exp.predictions - exp.values.sum(1))
    steps = ([exp.values[:, rest].sum(1)] if len(rest) else []) + [exp.values[:, j] for j in order]
    labels = ([f"{len(rest)} other features"] if len(rest) else []) + [exp.feature_names[j] for j in order]
    path = np.cumsum(np.column_stack([base] + steps), axis=1)   # (rows, 1 + steps)
    ys = np.arange(path.shape[1]) - 0.5
    cmap = _mpl().get_cmap("coolwarm")
    lo, hi = float(path[:, -1].min()), float(path[:, -1].max())
    for r in range(len(path)):
        ax.plot(path[r], ys, color=cmap((path[r, -1] - lo) / (hi - lo) if hi > lo else 0.5), lw=1, alpha=0.8)
    ax.set_yticks(range(len(labels)), labels)
    ax.set_ylim(-0.5, len(labels) - 0.5)
    ax.set_xlabel(f"output ({exp.method}); lines start at each row's base value")
    ax.set_title(f"{len(exp)} rows: from base value to output", fontsize=10)


def _heatmap(exp, k, ax):
    """shap's heatmap: rows (sorted by output) x the k most important features, values coloured."""
    imp = np.abs(exp.values).mean(axis=0)
    order = np.argsort(-imp, kind="stable")[:k]
    rows = np.argsort(exp.predictions, kind="stable")
    M = exp.values[np.ix_(rows, order)].T
    vmax = float(np.abs(M).max()) or 1.0
    im = ax.imshow(M, aspect="auto", cmap="RdBu_r", vmin=-vmax, vmax=vmax, interpolation="nearest")
    ax.set_yticks(range(len(order)), [exp.feature_names[j] for j in order])
    ax.set_xlabel(f"rows, sorted by output ({len(exp)})")
    ax.figure.colorbar(im, ax=ax).set_label(f"{exp.method} attribution")
    ax.set_title("attributions of the most important features", fontsize=10)


def _output_names(exp) -> list[str]:
    k = exp.values.shape[2]
    return [str(n) for n in exp.output_names] if exp.output_names is not None else [str(i) for i in range(k)]


def _global_bar(exp, k, ax):
    """Mean |attribution| per feature, largest on top; with every output, one stacked colour per output
    (shap's multi-output bar), features ordered by the sum over outputs."""
    if exp.all_outputs:
        imp = np.abs(exp.values).mean(axis=0)                      # (d, outputs)
        order = np.argsort(-imp.sum(axis=1), kind="stable")[:k][::-1]
        left = np.zeros(len(order))
        colours = _mpl().get_cmap("tab10")
        for t, name in enumerate(_output_names(exp)):
            ax.barh(range(len(order)), imp[order, t], left=left, color=colours(t % 10), label=name)
            left += imp[order, t]
        ax.legend(fontsize=8, title="output", title_fontsize=8, loc="lower right")
        ax.set_xlabel(f"mean |{exp.method} attribution| (stacked over outputs)")
    else:
        imp = np.abs(exp.values).mean(axis=0)
        order = np.argsort(-imp, kind="stable")[:k][::-1]
        ax.barh(range(len(order)), imp[order], color="#3e7cb1")
        for i, j in enumerate(order):
            ax.text(imp[j], i, f" {imp[j]:.3g}", va="center", fontsize=8)
        ax.set_xlabel(f"mean |{exp.method} attribution| (output {exp.target_names()[0]})")
    ax.set_yticks(range(len(order)), [exp.feature_names[j] for j in order])
    ax.set_title(f"{len(exp)} rows: average importance", fontsize=10)


def _beeswarm_per_output(exp, k, height):
    """One beeswarm per output, side by side, each sorted by its own mean |value|."""
    names = _output_names(exp)
    fig, axes = _mpl().subplots(1, len(names), figsize=(5.2 * len(names), height), squeeze=False)
    for t, (ax, name) in enumerate(zip(axes[0], names)):
        _beeswarm(exp.output(t), k, ax)
        ax.set_title(f"output {name} · {len(exp)} rows", fontsize=10)
    return fig


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
