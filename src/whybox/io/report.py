"""Self-contained HTML reports (plots embedded as base64 PNG, no external resources)."""
from __future__ import annotations

import base64
import html
import io
import os
from typing import Any, Sequence


from whybox.core.explanation import Explanation, atomic_write_text


def _png(exp: Explanation, kind: str, row: int = 0) -> str:
    import matplotlib.pyplot as plt

    fig = exp.plot(kind, row=row)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    plt.close(fig)
    return base64.b64encode(buf.getvalue()).decode()


def _table(exp: Explanation, row: int, k: int = 8) -> str:
    rows = []
    for name, val in exp.top_features(row, k):
        j = exp.feature_names.index(name)
        shown = "" if exp.data is None else exp.data[row, j]
        se = "" if exp.stderr is None else f"{exp.stderr[row, j]:.3g}"
        rows.append(f"<tr><td>{html.escape(name)}</td><td>{html.escape(str(shown))}</td>"
                    f"<td class='{'pos' if val > 0 else 'neg'}'>{val:+.4g}</td><td>{se}</td></tr>")
    return ("<table><tr><th>feature</th><th>value</th><th>attribution</th><th>stderr</th></tr>"
            + "".join(rows) + "</table>")


def render_html(explanations: Sequence[Explanation], *, title: str = "whybox report", max_rows: int = 5,
                intro: str = "") -> str:
    parts = [f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>",
             "<style>body{font-family:system-ui,sans-serif;max-width:980px;margin:2em auto;color:#222}"
             "table{border-collapse:collapse;margin:.5em 0}td,th{border:1px solid #ccc;padding:3px 8px;"
             "font-size:13px}.pos{color:#c62828}.neg{color:#1565c0}img{max-width:100%}"
             "h2{border-bottom:1px solid #ddd}.meta{color:#666;font-size:12px}</style></head><body>",
             f"<h1>{html.escape(title)}</h1>"]
    if intro:
        parts.append(f"<p>{html.escape(intro)}</p>")
    for exp in explanations:
        tg = exp.target_names()
        parts.append(f"<h2>{html.escape(exp.method)}</h2><p class='meta'>{len(exp)} row(s), "
                     f"{exp.n_model_rows:,} model rows in {exp.n_model_calls} call(s), {exp.seconds:.3f} s; "
                     f"parameters: {html.escape(str(exp.params))}</p>")
        for r in range(min(len(exp), max_rows)):
            parts.append(f"<h3>row {html.escape(str(exp.row_ids[r]))}: output {html.escape(str(tg[r]))} = "
                         f"{exp.predictions[r]:.4g} (base {exp.base_values[r]:.4g})</h3>")
            parts.append(_table(exp, r))
            parts.append(f"<img alt='bar chart' src='data:image/png;base64,{_png(exp, 'bar', r)}'>")
        if len(exp) > 1:
            parts.append(f"<img alt='beeswarm' src='data:image/png;base64,{_png(exp, 'beeswarm')}'>")
    parts.append("</body></html>")
    return "".join(parts)


def write_html(explanations: Sequence[Explanation], path: str | os.PathLike, **kw) -> None:
    atomic_write_text(path, render_html(explanations, **kw))


def surrogate_html(summary: dict, *, title: str = "whybox: the whole model") -> str:
    """A self-contained page for a global surrogate (``GlobalSurrogate.to_dict()``): how far it can be
    trusted, then its rules or weights, then where it disagrees with the model. Everything escaped."""
    e = html.escape
    parts = [f"<!doctype html><html><head><meta charset='utf-8'><title>{e(title)}</title>",
             "<style>body{font-family:system-ui,sans-serif;max-width:980px;margin:2em auto;color:#222}"
             "li{margin:.3em 0}.muted{color:#667}table{border-collapse:collapse}td,th{border:1px solid #ccc;"
             "padding:3px 8px}</style></head><body>", f"<h1>{e(title)}</h1>"]
    lines = summary["text"].split("\n")
    parts.append(f"<p>{e(lines[0])}</p>")
    parts.append("<h2>How far it can be trusted</h2><ul>")
    for name, f in summary["fidelity"].items():
        what = "agreement" if f["metric"] == "agreement" else "R²"
        parts.append(f"<li><b>{e(what)} {f['value']:.3f}</b> ({100 * f['confidence']:.0f}% CI {f['low']:.3f}–{f['high']:.3f}) "
                     f"on {f['n']:,} {e(f['sample'])}")
        if f.get("where"):
            parts.append("<ul>" + "".join(f"<li class='muted'>{e(w)}</li>" for w in f["where"][:5]) + "</ul>")
        parts.append("</li>")
    parts.append("</ul>")
    if summary.get("rules"):
        ordered = summary["kind"] == "rules"
        parts.append("<h2>What it says</h2>" + ("<p class='muted'>The first rule that applies decides.</p><ol>"
                                               if ordered else "<ul>"))
        for r in summary["rules"]:
            how = ""
            if r.get("fidelity") is not None and r.get("n_fresh"):
                how = f" — matches the model on {100 * r['fidelity']:.0f}% of {r['n_fresh']} fresh samples here" \
                    if summary["task"] == "classification" else f" — R² {r['fidelity']:.2f} on {r['n_fresh']} fresh samples here"
            parts.append(f"<li>{e(r['text'])} <span class='muted'>({100 * r['support']:.0f}% of samples{e(how)})</span></li>")
        parts.append("</ol>" if ordered else "</ul>")
    elif summary.get("coefficients"):
        co = summary["coefficients"]
        parts.append("<h2>Weights (per unit of each feature)</h2><table><tr><th>feature</th><th>weight</th></tr>")
        flat = co if all(isinstance(v, (int, float)) for v in co.values()) else None
        if flat is not None:
            for k, v in flat.items():
                if v:
                    parts.append(f"<tr><td>{e(str(k))}</td><td>{v:+.4g}</td></tr>")
        else:
            for cls, ws in co.items():
                for k, v in ws.items():
                    if v:
                        parts.append(f"<tr><td>{e(str(cls))}: {e(str(k))}</td><td>{v:+.4g}</td></tr>")
        parts.append("</table>")
    parts.append(f"<p class='muted'>{summary['n_queries']:,} model queries ({e(str(summary['queries']))}).</p>")
    parts.append("</body></html>")
    return "".join(parts)


def composite_html(summary: dict, *, title: str = "whybox: four explanations of one row", rows: Any = None) -> str:
    """A self-contained page for a composite explanation (``Composite.to_dict()``): LIME's weights,
    the anchor, the decision boundary and the prototypes, side by side. Everything escaped."""
    e = html.escape
    parts = [f"<!doctype html><html><head><meta charset='utf-8'><title>{e(title)}</title>",
             "<style>body{font-family:system-ui,sans-serif;max-width:980px;margin:2em auto;color:#222}"
             ".grid{display:grid;grid-template-columns:1fr 1fr;gap:1em}.card{border:1px solid #ccc;border-radius:6px;"
             "padding:.6em 1em}td,th{border-bottom:1px solid #ddd;padding:2px 8px}.pos{color:#b71c1c}.neg{color:#1f4e9c}"
             "</style></head><body>", f"<h1>{e(title)}</h1><div class='grid'>"]
    lime = "".join(f"<tr><td>{e(str(w['feature']))}</td><td class='{'pos' if w['weight'] > 0 else 'neg'}'>"
                   f"{w['weight']:+.4g}</td></tr>" for w in summary["lime"])
    parts.append(f"<div class='card'><h2>LIME: what pushes the score</h2><table>{lime}</table></div>")
    parts.append(f"<div class='card'><h2>Anchor: a rule that holds</h2><p>{e(summary['anchor']['text'])}</p></div>")
    parts.append(f"<div class='card'><h2>Decision boundary</h2><p>{e(summary['boundary']['text'])}</p></div>")
    p = summary.get("prototypes")
    if p:
        items = ""
        if rows is not None:
            for cls, idx in p["prototypes"].items():
                for i in idx:
                    items += f"<li>{e(str(cls))}: {e(str(rows[i] if isinstance(rows, list) else rows.iloc[i].to_dict()))}</li>"
        else:
            items = "".join(f"<li>class {e(str(c))}: rows {e(str(v))}</li>" for c, v in p["prototypes"].items())
        parts.append(f"<div class='card'><h2>Prototypes: cases the model treats the same way</h2><ul>{items}</ul></div>")
    parts.append("</div></body></html>")
    return "".join(parts)
