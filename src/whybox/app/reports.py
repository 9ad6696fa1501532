"""Self-contained HTML exports of the dashboard's pages (PNG charts embedded, no scripts, no links out)."""
from __future__ import annotations

import base64
import html
import io

import numpy as np

from whybox.app.state import AppState
from whybox.errors import InputError

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
            f"the model says {html.escape(str(p['predicted_class']))}; method {html.escape(p['method'])}. "
            f"How far this explanation can be trusted: {html.escape(p['trust'])} (local R² {p['fidelity_r2']:.2f}).</p><h2>In plain words</h2><p>{html.escape(n.text)}</p>"
            f"<p class='muted'>{n.supported} claims supported, {n.contradicted} contradicted.</p>{_png(fig)}"
            f"<table><tr><th>feature</th><th>value</th><th>attribution</th></tr>{rows}</table>")
    return _doc(f"whybox: row {row}", body)


def fairness_report_html(st: AppState, attribute: str, constraint: str = "demographic_parity") -> str:
    """The fairness page as a file: the gap, the groups, the stand-ins, the flip test and (for a
    classifier with labels) the remedies with their price and the fairness-vs-accuracy chart, once
    they have been computed on the page (a report never starts the refits)."""
    import matplotlib.pyplot as plt

    from whybox.app.fairness import fairness_report, flip_payload, remedies_payload

    r = fairness_report(st, attribute)
    g = r["groups"]
    clf = r["task"] == "classification"
    fig, ax = plt.subplots(figsize=(7, 3))
    x = np.arange(len(g))
    keys = [("selection_rate", "selection rate"), ("true_positive_rate", "TPR"), ("accuracy", "accuracy")] if clf \
        else [("mean_prediction", "average prediction")]
    for i, (key, lab) in enumerate(keys):
        ax.bar(x + (i - (len(keys) - 1) / 2) * 0.27, [d.get(key) or 0 for d in g], 0.27, label=lab)
    ax.set_xticks(x, [d["group"] for d in g])
    ax.legend()
    cols = ["group", "n"] + (["selection_rate", "true_positive_rate", "accuracy"] if clf else
                             ["mean_prediction", "mean_absolute_error"]) + ["faithfulness"]
    e = html.escape
    body = (f"<p>{e(r['summary'])}</p>{_png(fig)}" + _table(cols, [[d.get(c) for c in cols] for d in g]))
    if clf:
        body += (f"<p>Demographic parity difference {r['demographic_parity_difference']:.3f}; equal-opportunity "
                 f"difference {_f(r.get('equal_opportunity_difference'))}.</p>")
    body += f"<h2>Stand-ins for {e(attribute)}</h2><p>{e(r['proxy_words'])}</p>" + _table(
        ["feature", "association", "gap share", "proxy"],
        [[p["feature"], p["association"], p["gap_share"], "yes" if p["proxy"] else ""] for p in r["proxies"]])
    body += f"<h2>Would the decision change if only {e(attribute)} were different?</h2>"
    for px in ([], "auto"):
        try:
            f = flip_payload(st, attribute, px)
        except InputError as exc:       # e.g. a numeric attribute: there is no other value to flip to
            body += f"<p class='muted'>{e(str(exc))}</p>"
            break
        body += "".join(f"<p>{e(t)}</p>" for t in f["sentences"])
    rem = remedies_payload(st, attribute, constraint, compute=False) if clf and r["has_labels"] else None
    if clf and r["has_labels"] and rem is None:
        body += ("<h2>Remedies</h2><p class='muted'>Not computed yet: press “Try remedies” on the fairness page, then "
                 "export again to include them with their price.</p>")
    if rem is not None:
        rep = rem["_report"]
        body += (f"<h2>Remedies and their price ({e(rem['constraint_words'])})</h2>{_png(rep.chart())}"
                 + _table(["remedy", "gap", "accuracy", "decisions changed", "uses the attribute"],
                          [[t.what, t.gap, t.accuracy, t.decisions_changed, "yes" if t.uses_attribute else "no"]
                           for t in rep.table().itertuples()])
                 + "<ul>" + "".join(f"<li>{e(t)}</li>" for t in rem["sentences"]) + "</ul>")
    return _doc(f"whybox fairness: {attribute}", body)


def _table(head: list[str], rows: list[list]) -> str:
    th = "".join(f"<th>{html.escape(str(c).replace('_', ' '))}</th>" for c in head)
    trs = "".join("<tr>" + "".join(f"<td>{html.escape(_f(v))}</td>" for v in r) + "</tr>" for r in rows)
    return f"<table><tr>{th}</tr>{trs}</table>"


def _f(v) -> str:
    if v is None or (isinstance(v, float) and v != v):
        return "–"
    return f"{v:.3f}" if isinstance(v, (float, np.floating)) else str(v)
