"""Self-contained HTML exports of the dashboard's pages (PNG charts embedded, no scripts, no links out)."""
from __future__ import annotations

import base64
import html
import io

import numpy as np

from whybox.app.state import AppState

STYLE = ("body{font-family:system-ui,sans-serif;max-width:980px;margin:2em auto;color:#222}table{border-collapse:collapse}"
         "td,th{border:1px solid #ccc;padding:3px 8px;font-size:13px}img{max-width:100%}.muted{color:#666}")


def _doc(title: str, body: str) -> str:
    return (f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
            f"<style>{STYLE}</style></head><body><h1>{html.escape(title)}</h1>{body}</body></html>")


def _png(fig) -> str:
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100, bbox_inches="tight")
    plt.close(fig)
    return f"<img alt='chart' src='data:image/png;base64,{base64.b64encode(buf.getvalue()).decode()}'>"


def overview_report_html(st: AppState) -> str:
    import matplotlib.pyplot as plt

    job = st.global_view()
    job_done = job.status == "done"
    acc = st.accuracy()
    body = (f"<p>{html.escape(st.description or st.name)}</p><p>{st.n_rows:,} rows; accuracy "
            f"{'unknown' if acc is None else f'{100 * acc:.1f}%'}; explaining the score of "
            f"“{html.escape(str(st.output_names[st.focus]))}” with {html.escape(st.method)}.</p>")
    if not job_done:
        body += "<p class='muted'>The overview explanations are still being computed: export again in a moment.</p>"
        return _doc("whybox overview", body)
    g = st.global_summary()
    imp = g["importance"][:15]
    fig, ax = plt.subplots(figsize=(7, 0.35 * len(imp) + 1))
    ax.barh([d["feature"] for d in imp][::-1], [d["mean_abs"] for d in imp][::-1], color="#3e7cb1")
    ax.set_xlabel("mean |attribution|")
    rows = "".join(f"<tr><td>{html.escape(d['feature'])}</td><td>{d['mean_abs']:.4g}</td></tr>" for d in g["importance"])
    body += (f"<h2>Average importance over {g['rows']} rows</h2>{_png(fig)}"
             f"<table><tr><th>feature</th><th>mean |attribution|</th></tr>{rows}</table>")
    return _doc("whybox overview", body)


def row_report_html(st: AppState, row: int) -> str:
    import whybox

    p = st.explain_row(row)
    e = st.explain(st.frame_from(row))
    n = whybox.narrate(e)
    rows = "".join(f"<tr><td>{html.escape(f['name'])}</td><td>{html.escape(str(f['value']))}</td>"
                   f"<td>{f['attribution']:+.4g}</td></tr>" for f in p["features"])
    fig = e.plot("bar", row=0)
    body = (f"<p>Score of “{html.escape(str(p['class']))}”: <b>{p['prediction']:.3f}</b> (average {p['base_value']:.3f}); "
            f"predicted class {html.escape(str(p['predicted_class']))}; method {html.escape(p['method'])}; "
            f"faithfulness (local R²) {p['fidelity_r2']:.2f}.</p><h2>In plain words</h2><p>{html.escape(n.text)}</p>"
            f"<p class='muted'>{n.supported} claims supported, {n.contradicted} contradicted.</p>{_png(fig)}"
            f"<table><tr><th>feature</th><th>value</th><th>attribution</th></tr>{rows}</table>")
    return _doc(f"whybox: row {row}", body)


def fairness_report_html(st: AppState, attribute: str) -> str:
    import matplotlib.pyplot as plt

    from whybox.app.fairness import fairness_report

    r = fairness_report(st, attribute)
    g = r["groups"]
    fig, ax = plt.subplots(figsize=(7, 3))
    x = np.arange(len(g))
    for i, (key, lab) in enumerate([("selection_rate", "selection rate"), ("true_positive_rate", "TPR"), ("accuracy", "accuracy")]):
        ax.bar(x + (i - 1) * 0.27, [d.get(key) or 0 for d in g], 0.27, label=lab)
    ax.set_xticks(x, [d["group"] for d in g])
    ax.legend()
    cols = ["group", "n", "selection_rate", "true_positive_rate", "accuracy", "faithfulness"]
    head = "".join(f"<th>{c.replace('_', ' ')}</th>" for c in cols)
    trs = "".join("<tr>" + "".join(f"<td>{html.escape(_f(d.get(c)))}</td>" for c in cols) + "</tr>" for d in g)
    body = (f"<p>{html.escape(r['summary'])}</p>{_png(fig)}<table><tr>{head}</tr>{trs}</table>"
            f"<p>Demographic parity difference {r['demographic_parity_difference']:.3f}; equal-opportunity difference "
            f"{_f(r.get('equal_opportunity_difference'))}.</p>")
    return _doc(f"whybox fairness: {attribute}", body)


def _f(v) -> str:
    return "–" if v is None else (f"{v:.3f}" if isinstance(v, float) else str(v))
