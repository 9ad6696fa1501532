"""shap's force plot: how the features push one row's output away from the base value.

Features that raise the output are red segments ending at the output (largest nearest to it); those
that lower it are blue segments starting there. The segments are laid out from the attributions, so
the red and blue blocks meet at base + sum(attributions); when that is not f(x) (LIME, occlusion)
the plot says by how much it misses.

* :func:`force_plot` draws it with matplotlib (a static figure);
* :func:`force_html` writes a self-contained HTML page of inline SVGs, one per row: no script, no
  stylesheet or font from anywhere, every label escaped, a tooltip (``<title>``) on every segment,
  so it opens with the network blocked.
"""
from __future__ import annotations

import html
from dataclasses import dataclass
from typing import Any

import numpy as np

from whybox.errors import InputError
from whybox.io.plots import _finish, _fmt, _mpl

POS, NEG = "#d62728", "#1f77b4"


@dataclass
class Segment:
    feature: str
    shown: str              # "name = value"
    value: float            # the attribution
    start: float            # on the output axis
    end: float


@dataclass
class ForceLayout:
    base: float
    output: float           # base + sum of attributions: where red and blue meet
    prediction: float       # f(x)
    segments: list[Segment]

    @property
    def lo(self) -> float:
        return min([self.base, self.output, self.prediction] + [s.start for s in self.segments])

    @property
    def hi(self) -> float:
        return max([self.base, self.output, self.prediction] + [s.end for s in self.segments])

    @property
    def gap(self) -> float:
        return float(self.prediction - self.output)


def force_layout(exp, row: int = 0) -> ForceLayout:
    """The segments of one row's force plot (zero attributions left out)."""
    if exp.all_outputs:
        raise InputError("the force plot shows one output: e[:, :, <label>]")
    if not 0 <= row < len(exp):
        raise InputError(f"row {row} out of range: the explanation has {len(exp)} rows")
    v = np.asarray(exp.values[row], float)
    fx = float(exp.predictions[row])
    base = float(exp.base_values[row])
    if not np.isfinite(base):
        base = fx - float(v.sum())
    out = base + float(v.sum())
    names = list(exp.feature_names)
    shown = [f"{n} = {_fmt(exp.data[row, j])}" if exp.data is not None else n for j, n in enumerate(names)]
    segs = []
    cur = out
    for j in sorted(np.where(v > 0)[0], key=lambda j: -v[j]):       # red: leftwards from the meeting point
        segs.append(Segment(names[j], shown[j], float(v[j]), cur - v[j], cur))
        cur -= v[j]
    cur = out
    for j in sorted(np.where(v < 0)[0], key=lambda j: v[j]):        # blue: rightwards from it
        segs.append(Segment(names[j], shown[j], float(v[j]), cur, cur - v[j]))
        cur -= v[j]
    return ForceLayout(base, out, fx, segs)


def _note(lay: ForceLayout) -> str:
    if abs(lay.gap) <= 1e-6 * max(1.0, abs(lay.output)):
        return ""
    return f"f(x) = {lay.prediction:.4g}: the attributions miss it by {lay.gap:+.3g}"


def force_plot(exp, row: int = 0, *, ax=None, path: str | None = None, min_label: float = 0.05):
    """The force plot of one row as a matplotlib figure; segments wider than ``min_label`` of the
    axis get a label below."""
    from matplotlib.patches import Polygon

    lay = force_layout(exp, row)
    plt = _mpl()
    fig = ax.figure if ax is not None else plt.subplots(figsize=(10, 2.6))[0]
    ax = ax if ax is not None else fig.axes[0]
    span = (lay.hi - lay.lo) or 1.0
    tip = 0.012 * span
    labelled = 0
    for s in lay.segments:
        red = s.value > 0
        a, b = s.start, s.end
        t = min(tip, (b - a) / 2)
        # a chevron pointing the way the feature pushes
        pts = ([(a, 0), (b - t, 0), (b, 0.5), (b - t, 1), (a, 1), (a + t, 0.5)] if red else
               [(b, 0), (a + t, 0), (a, 0.5), (a + t, 1), (b, 1), (b - t, 0.5)])
        ax.add_patch(Polygon(pts, closed=True, facecolor=POS if red else NEG, edgecolor="white", lw=0.8,
                             label=s.feature))
        if (b - a) >= min_label * span:
            ax.text((a + b) / 2, -0.15 - 0.35 * (labelled % 2), s.shown, ha="center", va="top", fontsize=7,
                    color=POS if red else NEG)
            labelled += 1
    ax.axvline(lay.base, color="#888", ls="--", lw=0.8)
    ax.text(lay.base, 1.25, f"base value {lay.base:.4g}", ha="center", fontsize=8, color="#555")
    ax.text(lay.output, 1.55, f"{lay.output:.4g}", ha="center", fontsize=11, fontweight="bold")
    note = _note(lay)
    ax.set_xlim(lay.lo - 0.03 * span, lay.hi + 0.03 * span)
    ax.set_ylim(-1.0, 2.0)
    ax.set_yticks([])
    for side in ("left", "right", "top"):
        ax.spines[side].set_visible(False)
    ax.set_xlabel(f"{exp.method}: red raises the output, blue lowers it" + (f" ({note})" if note else ""))
    ax.set_title(f"row {exp.row_ids[row]}", fontsize=10)
    return _finish(fig, path)


def force_svg(exp, row: int = 0, *, width: int = 900, min_label_px: float = 48.0) -> str:
    """One row's force plot as an inline SVG element (escaped text, no script)."""
    lay = force_layout(exp, row)
    e = html.escape
    m = 20.0
    span = (lay.hi - lay.lo) or 1.0
    X = lambda v: m + (v - lay.lo) / span * (width - 2 * m)  # noqa: E731
    y0, h = 44.0, 26.0
    parts = [f"<svg xmlns='http://www.w3.org/2000/svg' width='{width}' height='140' viewBox='0 0 {width} 140' "
             f"role='img' aria-label='{e(f'force plot of row {exp.row_ids[row]}')}' class='force' "
             f"data-base='{lay.base!r}' data-output='{lay.output!r}' data-prediction='{lay.prediction!r}'>"]
    labelled = 0
    for s in lay.segments:
        a, b = X(s.start), X(s.end)
        t = min(6.0, (b - a) / 2)
        red = s.value > 0
        pts = ([(a, y0), (b - t, y0), (b, y0 + h / 2), (b - t, y0 + h), (a, y0 + h), (a + t, y0 + h / 2)] if red else
               [(b, y0), (a + t, y0), (a, y0 + h / 2), (a + t, y0 + h), (b, y0 + h), (b - t, y0 + h / 2)])
        pp = " ".join(f"{x:.2f},{y:.2f}" for x, y in pts)
        parts.append(f"<polygon class='seg {'pos' if red else 'neg'}' points='{pp}' fill='{POS if red else NEG}' "
                     f"stroke='white' stroke-width='1' data-feature='{e(s.feature)}' data-value='{s.value!r}'>"
                     f"<title>{e(s.shown)}: {s.value:+.4g}</title></polygon>")
        if b - a >= min_label_px:
            yl = y0 + h + 16 + 13 * (labelled % 2)
            parts.append(f"<text x='{(a + b) / 2:.2f}' y='{yl:.2f}' text-anchor='middle' font-size='11' "
                         f"fill='{POS if red else NEG}'>{e(s.shown)}</text>")
            labelled += 1
    bx, ox = X(lay.base), X(lay.output)
    parts.append(f"<line x1='{bx:.2f}' x2='{bx:.2f}' y1='{y0 - 8}' y2='{y0 + h + 4}' stroke='#888' "
                 "stroke-dasharray='3,3'/>")
    parts.append(f"<text x='{bx:.2f}' y='{y0 - 12}' text-anchor='middle' font-size='11' fill='#555' class='base'>"
                 f"base value {lay.base:.4g}</text>")
    parts.append(f"<text x='{ox:.2f}' y='18' text-anchor='middle' font-size='15' font-weight='bold' class='out'>"
                 f"{lay.output:.4g}</text>")
    note = _note(lay)
    if note:
        parts.append(f"<text x='{m}' y='134' font-size='11' fill='#8a1c1c' class='note'>{e(note)}</text>")
    parts.append("</svg>")
    return "".join(parts)


def force_html(exp, rows: Any = None, *, path: str | None = None, max_rows: int = 50,
               title: str = "whybox force plot") -> str:
    """Force plots of ``rows`` (default: the first ``max_rows``) as one self-contained HTML page;
    written to ``path`` when given (atomically)."""
    n = len(exp)
    idx = list(range(min(n, max_rows))) if rows is None else [int(r) for r in np.atleast_1d(rows)]
    if not idx:
        raise InputError("no rows to draw")
    for r in idx:
        if not 0 <= r < n:
            raise InputError(f"row {r} out of range: the explanation has {n} rows")
    e = html.escape
    tgt = exp.target_names() if not exp.all_outputs else None
    body = []
    for r in idx:
        what = f"output {e(str(tgt[r]))}" if tgt is not None else ""
        body.append(f"<section><h2>row {e(str(exp.row_ids[r]))} <small>{what}</small></h2>{force_svg(exp, r)}</section>")
    page = ("<!doctype html><html lang='en'><head><meta charset='utf-8'>"
            f"<title>{e(title)}</title><style>body{{font-family:system-ui,sans-serif;margin:1.5em;color:#1f2933}}"
            "h2{font-size:1em;margin:.8em 0 .2em}small{color:#627d98;font-weight:normal}</style></head><body>"
            f"<h1 style='font-size:1.2em'>{e(title)}</h1><p style='color:#627d98'>{e(exp.method)}: red raises the "
            "output, blue lowers it; hover a segment for its value.</p>" + "".join(body) + "</body></html>")
    if path is not None:
        from whybox.core.explanation import atomic_write_text
        atomic_write_text(path, page)
    return page
