"""Self-contained HTML reports (plots embedded as base64 PNG, no external resources)."""
from __future__ import annotations

import base64
import html
import io
import os
from typing import Sequence


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
