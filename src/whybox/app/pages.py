"""Server-rendered pages. Every user-controlled string is HTML-escaped; data for the charts goes in
``<script type="application/json">`` blocks with ``<`` escaped, and the page script writes text with
``textContent`` only. Plotly's JavaScript is served from the plotly package (no CDN)."""
from __future__ import annotations

import html
import json
from typing import Any

CSS = """
body{font-family:system-ui,-apple-system,sans-serif;margin:0;color:#1f2933;background:#f7f8fa}
nav{background:#243b53;padding:.6em 1.2em;display:flex;gap:1.2em;align-items:center}
nav a{color:#fff;text-decoration:none;font-weight:600}nav .brand{font-size:1.2em;margin-right:1em}
main{max-width:1100px;margin:1.2em auto;padding:0 1em}
.card{background:#fff;border:1px solid #d9e2ec;border-radius:8px;padding:1em 1.2em;margin-bottom:1em}
.grid{display:grid;grid-template-columns:1fr 1fr;gap:1em}@media(max-width:800px){.grid{grid-template-columns:1fr}}
.big{font-size:2em;font-weight:700}.muted{color:#627d98;font-size:.9em}.ok{color:#2f8132}.bad{color:#c62828}
table{border-collapse:collapse;width:100%}td,th{border-bottom:1px solid #e4e7eb;padding:4px 6px;text-align:left;font-size:.92em}
input,select,button{font:inherit;padding:3px 6px}button{background:#334e68;color:#fff;border:0;border-radius:4px;padding:5px 12px;cursor:pointer}
.progress{background:#e4e7eb;border-radius:4px;height:14px;overflow:hidden}.progress>div{background:#3e7cb1;height:100%;width:0}
.error{background:#fde8e8;border:1px solid #f5b5b5;color:#8a1c1c;padding:.6em 1em;border-radius:6px}
.whatif{max-height:420px;overflow:auto}.whatif td input{width:8em}
"""


def esc(s: Any) -> str:
    return html.escape(str(s), quote=True)


def data_block(name: str, obj: Any) -> str:
    text = json.dumps(obj, default=str).replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
    return f"<script type='application/json' id='{esc(name)}'>{text}</script>"


def page(title: str, body: str, *, info: dict[str, Any], active: str = "", report: str | None = None,
         scripts: bool = True) -> str:
    links = [("/", "Overview", "overview"), ("/row/0", "One person", "row"), ("/fairness", "Fairness", "fairness"),
             ("/whole", "Whole model", "whole"),
             ("/docs", "API", "api")]
    under = " style='text-decoration:underline'"
    nav = "".join(f"<a href='{h}'{under if a == active else ''}>{esc(t)}</a>" for h, t, a in links)
    exp = f"<a href='{esc(report)}' id='export' style='margin-left:auto'>Export report</a>" if report else ""
    js = "<script src='/static/plotly.min.js'></script><script src='/static/app.js'></script>" if scripts else ""
    return (f"<!doctype html><html lang='en'><head><meta charset='utf-8'><title>{esc(title)} · whybox</title>"
            f"<meta name='viewport' content='width=device-width,initial-scale=1'><style>{CSS}</style></head><body>"
            f"<nav><span class='brand' style='color:#fff'>whybox</span>{nav}{exp}</nav><main>"
            f"<p class='muted'>Model: {esc(info['name'])} · {info['rows']:,} rows · explaining the score of "
            f"“{esc(info['focus'])}”</p>{body}</main>{js}</body></html>")


def error_page(message: str, info: dict[str, Any] | None, status: int) -> str:
    body = f"<div class='error' id='error'><b>Sorry:</b> {esc(message)}</div><p><a href='/'>Back to the overview</a></p>"
    if info is None:
        return f"<!doctype html><html><body>{body}</body></html>"
    return page(f"error {status}", body, info=info, scripts=False)


def overview(info: dict[str, Any], upload_limit_mb: float) -> str:
    acc = "unknown (no labels)" if info["accuracy"] is None else f"{100 * info['accuracy']:.1f}%"
    body = (
        f"<div class='grid'><div class='card'><h2>The model</h2><p>{esc(info['description'] or info['name'])}</p>"
        f"<p>Accuracy on these rows: <b id='accuracy'>{esc(acc)}</b></p><p class='muted'>{len(info['features'])} features; "
        f"outputs {esc(', '.join(map(str, info['outputs'])))}; explanations by {esc(info['method'])}.</p></div>"
        "<div class='card'><h2>What drives the model overall</h2><p class='muted' id='job-status'>Explaining rows…</p>"
        "<div class='progress'><div id='job-bar'></div></div></div></div>"
        "<div class='card'><h3>Average importance (mean |attribution|)</h3><div id='importance' style='height:420px'></div></div>"
        "<div class='card'><h3>Every explained row (colour: the feature's value, low blue → high red)</h3>"
        "<div id='beeswarm' style='height:460px'></div></div>"
        "<div class='card'><h3>Use your own model and data</h3><form id='upload' enctype='multipart/form-data'>"
        "Model (.skops): <input type='file' name='model' id='up-model'> Data (.csv/.parquet): "
        "<input type='file' name='data' id='up-data'> Label column (optional): <input name='label' id='up-label' size='10'> "
        f"<button type='submit'>Load</button></form><p class='muted'>Files up to {upload_limit_mb:g} MB; they stay on this machine.</p>"
        "<div id='upload-msg'></div></div><script>document.addEventListener('DOMContentLoaded',()=>whybox.overview())</script>")
    return page("Overview", body, info=info, active="overview", report="/report/overview")


def _r2_hover(r2: float) -> str:
    return (f"local R² {r2:.2f}: how well the attributions, read as a linear model, reproduce the model's answers "
            "when features are hidden (1 = perfectly, 0 or less = no better than the average)")


def row_page(info: dict[str, Any], row: int, payload: dict[str, Any], rows_table: list[dict[str, Any]]) -> str:
    clf = info.get("task", "classification") == "classification"
    opts = "".join(f"<tr data-row='{r['row']}' data-search='{esc(r['search'])}'><td><a href='/row/{r['row']}'>row {r['row']}</a></td>"
                   f"<td>{r['score']:.3f}</td><td>{esc(r['predicted'])}</td></tr>" for r in rows_table)
    feats = "".join(f"<tr><td>{esc(f['name'])}</td><td><input data-feature='{esc(f['name'])}' value='{esc(f['value'])}'></td></tr>"
                    for f in sorted(payload["features"], key=lambda f: info["features"].index(f["name"])))
    methods = "".join(f"<option{' selected' if m == payload['method'] else ''}>{esc(m)}</option>" for m in info["methods"])
    cf = ("<div class='card' id='cf-card'><h3>What would need to change</h3><button id='cf-btn'>Find changes</button>"
          "<div id='counterfactuals'></div></div>" if info["capabilities"].get("counterfactuals") and clf else "")
    body = (
        "<div class='grid'><div class='card'><h2>Pick a person / row</h2>"
        "<input id='search' placeholder='filter rows: number, class…' style='width:90%'>"
        f"<div style='max-height:260px;overflow:auto'><table id='rows'><tr><th>row</th><th>score</th><th>predicted</th></tr>{opts}</table></div></div>"
        f"<div class='card'><h2 id='row-title'>Row {row}</h2><p>{'Score of “' + esc(info['focus']) + '”' if clf else 'Predicted value'}: "
        f"<span class='big' id='prediction'>{payload['prediction']:.3f}</span> <span class='muted'>(average "
        f"<span id='base'>{payload['base_value']:.3f}</span>)</span></p><p>{'Predicted class' if clf else 'The model says'}: "
        f"<b id='predicted'>{esc(payload['predicted_class'])}</b></p><p>Method <select id='method'>{methods}</select></p>"
        f"<p>How far this explanation can be trusted: <b id='trust' title='{esc(_r2_hover(payload['fidelity_r2']))}'>"
        f"{esc(payload['trust'])}</b></p><p id='better' style='display:none'><button id='better-btn'>Find the most "
        "faithful method for this row</button> <span id='better-msg'></span> <button id='better-use' "
        "style='display:none'>Use it</button></p></div></div>"
        "<div class='card'><h3>Why: each feature's push on the score</h3><div id='chart' style='height:420px'></div></div>"
        "<div class='card'><h3>In plain words</h3><p id='narrative'></p><p class='muted' id='verified'></p></div>"
        + cf + ("<div class='card' id='rule-card'><h3>A rule, and people like this one</h3><p class='muted'>A simple rule "
                "under which the model keeps its answer, and rows of the data it treats the same way.</p><button "
                "id='rule-btn'>Show</button><p id='rule'></p><div id='examples'></div></div>" if clf else "")
        + f"<div class='card'><h3>What if?</h3><p class='muted'>Change values and press Update to see the new "
        f"prediction and explanation.</p><div class='whatif'><table id='whatif'>{feats}</table></div>"
        "<button id='update'>Update</button> <button id='reset'>Reset</button><div id='whatif-msg'></div></div>"
        + data_block("payload", payload) + data_block("rowinfo", {"row": row})
        + "<script>document.addEventListener('DOMContentLoaded',()=>whybox.rowPage())</script>")
    return page(f"Row {row}", body, info=info, active="row", report=f"/report/row/{row}")


COLUMN_WORDS = {"selection_rate": ("share given “{c}”", "selection rate"),
                "true_positive_rate": ("share of true “{c}” recognised", "true-positive rate"),
                "accuracy": ("accuracy", "accuracy"), "mean_prediction": ("average prediction", "mean prediction"),
                "mean_absolute_error": ("average error", "mean absolute error"),
                "faithfulness": ("how faithful the explanations are", "{m}")}


def fairness_page(info: dict[str, Any], attributes: list[str], attribute: str | None, report: dict[str, Any] | None) -> str:
    protected = set(info.get("protected") or [])
    opts = "".join(f"<option value='{esc(a)}'{' selected' if a == attribute else ''}>{esc(a)}"
                   f"{' (protected)' if a in protected else ''}</option>" for a in attributes)
    body = ("<div class='card'><h2>Fairness</h2><form method='get' action='/fairness'>Protected attribute: "
            f"<select name='attribute' id='attribute'>{opts}</select> <button type='submit' id='show'>Show</button></form>"
            "<p class='muted'>Columns with few values are used as they are; others are split at the median.</p></div>")
    if report is not None:
        clf = report.get("task", "classification") == "classification"
        c = report["class"]
        body += f"<div class='card'><h3>Summary</h3><p id='fair-summary'>{esc(report['summary'])}</p></div>"
        cols = ["group", "n"] + (["selection_rate", "true_positive_rate", "accuracy"] if clf else
                                 ["mean_prediction", "mean_absolute_error"]) + ["faithfulness"]
        head = ""
        for col in cols:
            words, tech = COLUMN_WORDS.get(col, (col, col))
            head += (f"<th title='{esc(tech.format(m=report['faithfulness_metric']))}'>"
                     f"{esc(words.format(c=c))}</th>")
        head += "<th>features that matter most</th>"
        trs = ""
        for g in report["groups"]:
            cells = "".join(f"<td>{_fmt(g.get(col))}</td>" for col in cols)
            tops = ", ".join(f"{esc(t['feature'])}" for t in g["top_features"][:3])
            trs += f"<tr>{cells}<td>{tops}</td></tr>"
        if clf:
            dp, eo = report["demographic_parity_difference"], report.get("equal_opportunity_difference")
            gap = (f"<p>Gap in the share given “{esc(c)}”: <b id='dp' title='demographic parity difference'>{dp:.3f}</b> · "
                   f"gap in the share of true “{esc(c)}” recognised: <b id='eo' title='equal-opportunity difference'>"
                   f"{_fmt(eo)}</b></p>")
        else:
            gap = (f"<p>Difference in the average prediction: <b id='dp'>{report['mean_prediction_difference']:.4g}</b></p>")
        body += (f"<div class='card'><h3>By group</h3><table id='groups'><tr>{head}</tr>{trs}</table>{gap}"
                 "<div id='fair-chart' style='height:360px'></div></div>")
        prox = "".join(f"<tr><td>{esc(p['feature'])}</td><td>{_pct(p['association'])}</td><td>{_pct(p['gap_share'])}</td>"
                       f"<td>{'yes' if p['proxy'] else ''}</td></tr>" for p in report["proxies"][:8])
        body += (f"<div class='card'><h3>Stand-ins for {esc(attribute)}</h3><p id='proxy-words'>{esc(report['proxy_words'])}</p>"
                 "<table id='proxies'><tr><th>feature</th><th title='uncertainty coefficient U(attribute | feature)'>reveals of the "
                 f"attribute</th><th title='share of the difference in mean attribution between the most and least favoured group'>"
                 f"share of the gap it carries</th><th>stand-in?</th></tr>{prox}</table></div>")
        body += ("<div class='card' id='flip-card'><h3>Would the decision change if only "
                 f"{esc(attribute)} were different?</h3><p class='muted'>Every row is asked again with a different "
                 f"{esc(attribute)}, everything else kept.</p><label><input type='checkbox' id='flip-proxies'> also "
                 "change its stand-ins</label> <button id='flip-btn'>Run the test</button><div id='flip-text'></div>"
                 "<table id='flip-table'></table></div>")
        if clf:
            body += ("<div class='card' id='remedy-card'><h3>What could be done, and at what price</h3><p class='muted'>"
                     "Each remedy is tried and checked on the same rows: how large the gap would be, how accurate the "
                     "model would be, and how many people's decisions would change.</p>Aim for <select id='constraint'>"
                     "<option value='demographic_parity'>equal shares given “" + esc(c) + "” (demographic parity)</option>"
                     "<option value='equal_opportunity'>equal shares of true “" + esc(c) + "” recognised (equal opportunity)"
                     "</option></select> <button id='remedy-btn'>Try remedies</button><div id='remedy-msg' class='muted'></div>"
                     "<div id='remedy-chart' style='height:380px'></div><table id='remedy-table'></table>"
                     "<ul id='remedy-text'></ul></div>")
        body += (data_block("fairness", {k: v for k, v in report.items()})
                 + "<script>document.addEventListener('DOMContentLoaded',()=>whybox.fairness())</script>")
    rep = f"/report/fairness?attribute={esc(attribute)}" if attribute else None
    return page("Fairness", body, info=info, active="fairness", report=rep)


def whole_page(info: dict[str, Any]) -> str:
    body = ("<div class='card'><h2>The whole model in a few rules</h2><p>A simple model is learnt to copy this model "
            "from questions asked around the data; then it is checked on new cases it never saw. It tells you "
            "roughly how the model decides, and how far that summary can be trusted.</p>"
            "<p>Summary as <select id='w-kind'><option value='tree'>a small decision tree</option>"
            "<option value='rules'>a list of rules</option><option value='linear'>weights per feature</option></select> "
            "depth <select id='w-depth'><option>2</option><option selected>3</option><option>4</option></select> "
            "<button id='w-go'>Summarise the model</button></p><div id='w-msg' class='muted'></div></div>"
            "<div class='card' id='w-result' style='display:none'><h3>How far it can be trusted</h3>"
            "<p id='w-trust' class='big' style='font-size:1.2em'></p><p id='w-fidelity' class='muted'></p>"
            "<ul id='w-where' class='muted'></ul><h3>What it says</h3><ol id='w-rules'></ol>"
            "<p class='muted' id='w-queries'></p></div>"
            "<script>document.addEventListener('DOMContentLoaded',()=>whybox.whole())</script>")
    return page("Whole model", body, info=info, active="whole")


def _pct(v: Any) -> str:
    return "–" if v is None or v != v else f"{round(100 * v) + 0:.0f}%"


def _fmt(v: Any) -> str:
    if v is None:
        return "–"
    if isinstance(v, float):
        return f"{v:.3f}"
    return esc(v)


APP_JS = r"""
const whybox = (() => {
  const $ = id => document.getElementById(id);
  const data = id => JSON.parse($(id).textContent);
  const post = async (url, body) => {
    const r = await fetch(url, {method: 'POST', headers: {'Content-Type': 'application/json'}, body: JSON.stringify(body)});
    const j = await r.json().catch(() => ({error: 'the server sent an unreadable reply'}));
    if (!r.ok) throw new Error(j.error || j.detail || ('HTTP ' + r.status));
    return j;
  };
  const show = (el, text, cls) => { el.textContent = text; el.className = cls || ''; };
  function bars(el, feats) {
    const f = feats.slice(0, 12).reverse();
    Plotly.react(el, [{type: 'bar', orientation: 'h', x: f.map(d => d.attribution),
      y: f.map(d => d.name + ' = ' + d.value), marker: {color: f.map(d => d.attribution > 0 ? '#d62728' : '#1f77b4')},
      hovertemplate: '%{y}: %{x:.4f}<extra></extra>'}], {margin: {l: 230, r: 20, t: 10, b: 40},
      xaxis: {title: {text: 'push on the score (red raises, blue lowers)'}}}, {displayModeBar: false, responsive: true});
  }
  function renderRow(p) {
    $('prediction').textContent = p.prediction.toFixed(3);
    $('base').textContent = p.base_value.toFixed(3);
    $('predicted').textContent = p.predicted_class;
    $('trust').textContent = p.trust;
    $('trust').title = 'local R² ' + p.fidelity_r2.toFixed(2) + ": how well the attributions, read as a linear model, " +
      "reproduce the model's answers when features are hidden (1 = perfectly, 0 or less = no better than the average)";
    $('trust').className = (p.trust_level === 'poor' || p.trust_level === 'rough') ? 'bad' : '';
    $('better').style.display = (p.trust_level === 'poor' || p.trust_level === 'rough') ? '' : 'none';
    $('better-msg').textContent = ''; $('better-use').style.display = 'none';
    bars($('chart'), p.features);
    $('narrative').textContent = p.narrative.text;
    const n = p.narrative;
    show($('verified'), (n.ok ? '✓ every claim checked against the numbers: ' : '⚠ flagged: ') + n.supported +
      ' supported, ' + n.contradicted + ' contradicted', n.ok ? 'ok' : 'bad');
  }
  function whatIf() {
    const out = {};
    document.querySelectorAll('#whatif input').forEach(i => { if (i.value !== i.defaultValue) out[i.dataset.feature] = i.value; });
    return out;
  }
  async function rowPage() {
    const row = data('rowinfo').row;
    renderRow(data('payload'));
    $('search').addEventListener('input', e => {
      const q = e.target.value.toLowerCase();
      document.querySelectorAll('#rows tr[data-row]').forEach(tr => { tr.style.display = tr.dataset.search.includes(q) ? '' : 'none'; });
    });
    const refresh = async () => {
      const msg = $('whatif-msg'); show(msg, 'working…', 'muted');
      try { renderRow(await post('/api/explain', {row: row, features: whatIf(), method: $('method').value})); show(msg, ''); }
      catch (err) { show(msg, err.message, 'error'); }
    };
    $('update').addEventListener('click', refresh);
    $('method').addEventListener('change', refresh);
    $('reset').addEventListener('click', () => { document.querySelectorAll('#whatif input').forEach(i => { i.value = i.defaultValue; }); refresh(); });
    $('better-btn').addEventListener('click', async () => {
      const msg = $('better-msg'); show(msg, 'comparing methods on this row…', 'muted');
      try {
        const r = await post('/api/choose', {row: row});
        show(msg, 'Most faithful here: ' + r.best + ' — ' + r.trust + '.');
        msg.title = r.ranking.map(x => x.method + ': local R² ' + x.r2.toFixed(2)).join('; ');
        const use = $('better-use'); use.style.display = ''; use.dataset.method = r.best;
      } catch (err) { show(msg, err.message, 'error'); }
    });
    $('better-use').addEventListener('click', e => { $('method').value = e.target.dataset.method; refresh(); });
    if ($('rule-btn')) $('rule-btn').addEventListener('click', async () => {
      const box = $('rule'); show(box, 'looking for a rule…', 'muted');
      try {
        const r = await post('/api/rule', {row: row});
        show(box, r.rule, r.valid ? '' : 'bad');
        const ex = $('examples'); ex.textContent = '';
        if (r.examples.length) {
          const t = document.createElement('table'); const h = document.createElement('tr');
          ['row', 'model says'].concat(r.columns.slice(0, 8)).forEach(c => { const th = document.createElement('th'); th.textContent = c; h.appendChild(th); });
          t.appendChild(h);
          r.examples.forEach(e => { const tr = document.createElement('tr');
            [String(e.row), e.predicted].concat(r.columns.slice(0, 8).map(c => String(e.values[c]))).forEach(v => {
              const td = document.createElement('td'); td.textContent = v; tr.appendChild(td); });
            t.appendChild(tr); });
          ex.appendChild(t);
        }
      } catch (err) { show(box, err.message, 'error'); }
    });
    if ($('cf-btn')) $('cf-btn').addEventListener('click', async () => {
      const box = $('counterfactuals'); show(box, 'searching…', 'muted');
      try {
        const r = await post('/api/counterfactuals', {row: row, features: whatIf()});
        box.textContent = '';
        r.counterfactuals.forEach(c => { const p = document.createElement('p'); p.textContent = c.text; box.appendChild(p); });
        if (!r.counterfactuals.length) box.textContent = 'No change found within the limits.';
      } catch (err) { show(box, err.message, 'error'); }
    });
  }
  async function overview() {
    $('upload').addEventListener('submit', async e => {
      e.preventDefault();
      const msg = $('upload-msg'); show(msg, 'uploading…', 'muted');
      const r = await fetch('/api/upload', {method: 'POST', body: new FormData(e.target)});
      const j = await r.json().catch(() => ({error: 'HTTP ' + r.status}));
      if (!r.ok) { show(msg, j.error || j.detail, 'error'); return; }
      show(msg, 'loaded ' + j.name + ' (' + j.rows + ' rows)', 'ok'); setTimeout(() => location.reload(), 500);
    });
    const job = await post('/api/jobs/overview', {});
    const poll = async () => {
      const r = await (await fetch('/api/jobs/' + job.id)).json();
      $('job-bar').style.width = (100 * r.progress).toFixed(0) + '%';
      $('job-status').textContent = r.status === 'done' ? 'Explained ' + r.total + ' rows.' :
        (r.status === 'error' ? 'Failed: ' + r.error : 'Explaining rows… ' + r.done + ' / ' + r.total);
      if (r.status === 'running') { setTimeout(poll, 400); return; }
      if (r.status !== 'done') return;
      const g = await (await fetch('/api/global')).json();
      const imp = g.importance.slice(0, 15).reverse();
      Plotly.react($('importance'), [{type: 'bar', orientation: 'h', x: imp.map(d => d.mean_abs), y: imp.map(d => d.feature),
        marker: {color: '#3e7cb1'}}], {margin: {l: 200, r: 20, t: 10, b: 40}}, {displayModeBar: false, responsive: true});
      const sw = g.beeswarm.slice().reverse();
      Plotly.react($('beeswarm'), sw.map((s, i) => ({type: 'scatter', mode: 'markers', name: s.feature,
        x: s.attributions, y: s.attributions.map((_, k) => i + 0.35 * Math.sin(k * 12.9898) ), showlegend: false,
        marker: {size: 5, color: s.colour, colorscale: [[0, '#1f77b4'], [1, '#d62728']], cmin: 0, cmax: 1},
        hovertemplate: s.feature + ': %{x:.4f}<extra></extra>'})),
        {margin: {l: 200, r: 20, t: 10, b: 40}, yaxis: {tickvals: sw.map((_, i) => i), ticktext: sw.map(s => s.feature)},
         xaxis: {title: {text: 'attribution'}}}, {displayModeBar: false, responsive: true});
    };
    poll();
  }
  function table(el, head, rows) {
    el.textContent = '';
    const h = document.createElement('tr');
    head.forEach(c => { const th = document.createElement('th'); th.textContent = c; h.appendChild(th); });
    el.appendChild(h);
    rows.forEach(r => { const tr = document.createElement('tr');
      r.forEach(v => { const td = document.createElement('td'); td.textContent = v; tr.appendChild(td); });
      el.appendChild(tr); });
  }
  const pct = v => (v === null || v === undefined) ? '–' : (100 * v).toFixed(1) + '%';
  const lines = (el, items) => { el.textContent = '';
    items.forEach(t => { const li = document.createElement(el.tagName === 'UL' ? 'li' : 'p'); li.textContent = t; el.appendChild(li); }); };
  function fairness() {
    const r = data('fairness');
    const g = r.groups;
    const clf = r.task === 'classification';
    Plotly.react($('fair-chart'), clf ? [
      {type: 'bar', name: 'share given “' + r['class'] + '”', x: g.map(d => d.group), y: g.map(d => d.selection_rate)},
      {type: 'bar', name: 'share of true “' + r['class'] + '” recognised', x: g.map(d => d.group), y: g.map(d => d.true_positive_rate)},
      {type: 'bar', name: 'accuracy', x: g.map(d => d.group), y: g.map(d => d.accuracy)}] :
      [{type: 'bar', name: 'average prediction', x: g.map(d => d.group), y: g.map(d => d.mean_prediction)}],
      {barmode: 'group', margin: {t: 10}, yaxis: clf ? {range: [0, 1]} : {}}, {displayModeBar: false, responsive: true});
    $('flip-btn').addEventListener('click', async () => {
      const box = $('flip-text'); show(box, 'asking the model again for every row…', 'muted');
      try {
        const f = await post('/api/fairness/flip', {attribute: r.attribute, proxies: $('flip-proxies').checked ? 'auto' : []});
        box.className = ''; lines(box, f.sentences);
        table($('flip-table'), clf ? ['group', 'people', 'decision would change', 'would gain it', 'would lose it'] :
          ['group', 'people', 'prediction would change', 'average change'],
          f.by_group.map(b => clf ? [b.group, String(b.n), pct(b.share) + ' (' + b.changed + ')', String(b.gained), String(b.lost)] :
            [b.group, String(b.n), pct(b.share), b.mean_change.toPrecision(3)]));
      } catch (err) { show(box, err.message, 'error'); }
    });
    if (!$('remedy-btn')) return;
    $('remedy-btn').addEventListener('click', async () => {
      const msg = $('remedy-msg'); show(msg, 'trying remedies (refits take a few seconds)…', 'muted');
      try {
        const cons = $('constraint').value;
        const x = await post('/api/fairness/remedies', {attribute: r.attribute, constraint: cons});
        show(msg, x.n_fits + ' model fits in ' + x.seconds.toFixed(1) + ' s.', 'muted');
        const gapKey = cons === 'demographic_parity' ? 'demographic_parity_difference' : 'equal_opportunity_difference';
        const rs = x.remedies.filter(m => m[gapKey] !== null);
        Plotly.react($('remedy-chart'), [{type: 'scatter', mode: 'markers+text', x: rs.map(m => 100 * m[gapKey]),
          y: rs.map(m => 100 * m.accuracy), text: rs.map(m => m.title), textposition: 'top right',
          marker: {size: 12, color: rs.map(m => m.name === 'original' ? '#222' : (m.uses_attribute ? '#c62828' : '#2f8132'))},
          hovertemplate: '%{text}<br>gap %{x:.1f} points<br>accuracy %{y:.1f}%<extra></extra>'}],
          {margin: {t: 10, r: 20}, xaxis: {title: {text: 'gap between groups (percentage points; 0 = ' + x.constraint_words + ')'},
           rangemode: 'tozero'}, yaxis: {title: {text: 'accuracy (%)'}}, showlegend: false}, {displayModeBar: false, responsive: true});
        const groups = x.remedies[0].groups.map(q => q.group);
        table($('remedy-table'), ['remedy'].concat(groups.map(q => 'share given “' + x.positive + '”: ' + q),
          ['gap', 'accuracy', 'decisions changed', 'uses ' + r.attribute + ' to decide']),
          x.remedies.map(m => [m.title].concat(groups.map(q => pct((m.groups.find(z => z.group === q) || {}).selection_rate)),
            [(100 * m[gapKey]).toFixed(1) + ' points', pct(m.accuracy), String(m.n_changed), m.uses_attribute ? 'yes' : 'no'])));
        lines($('remedy-text'), x.sentences);
        const ex = $('export'); if (ex) ex.href = '/report/fairness?attribute=' + encodeURIComponent(r.attribute) + '&constraint=' + cons;
      } catch (err) { show(msg, err.message, 'error'); }
    });
  }
  function whole() {
    $('w-go').addEventListener('click', async () => {
      const msg = $('w-msg'); show(msg, 'asking the model… (a few seconds)', 'muted');
      try {
        const r = await post('/api/surrogate', {kind: $('w-kind').value, max_depth: parseInt($('w-depth').value)});
        show(msg, '');
        $('w-result').style.display = '';
        const f = r.fidelity.perturbed;
        $('w-trust').textContent = 'This summary is ' + r.trust + '.';
        $('w-trust').title = f.metric + ' ' + f.value.toFixed(3) + ' (95% CI ' + f.low.toFixed(3) + '–' + f.high.toFixed(3) + ')';
        $('w-fidelity').textContent = (f.metric === 'agreement' ? 'It gives the model\'s answer on ' +
          (100 * f.value).toFixed(1) + '% of ' : 'R² ' + f.value.toFixed(3) + ' on ') + f.n + ' new cases (95% CI ' +
          (f.metric === 'agreement' ? (100 * f.low).toFixed(1) + '–' + (100 * f.high).toFixed(1) + '%' :
           f.low.toFixed(3) + '–' + f.high.toFixed(3)) + ').';
        const where = $('w-where'); where.textContent = '';
        (f.where || []).slice(0, 3).forEach(w => { const li = document.createElement('li'); li.textContent = 'Least reliable ' + w; where.appendChild(li); });
        const list = $('w-rules'); list.textContent = '';
        const add = t => { const li = document.createElement('li'); li.textContent = t; list.appendChild(li); };
        if (r.rules) r.rules.forEach(x => add(x.text + ' (' + Math.round(100 * x.support) + '% of cases' +
          (x.fidelity != null && x.n_fresh ? (r.task === 'classification' ? '; right for ' + Math.round(100 * x.fidelity) +
            '% of them' : '; R² ' + x.fidelity.toFixed(2) + ' there') : '') + ')'));
        else Object.entries(r.coefficients || {}).forEach(([k, v]) => {
          if (typeof v === 'number') { if (v) add(k + ': ' + (v > 0 ? '+' : '') + v.toPrecision(3) + ' per unit'); }
          else Object.entries(v).forEach(([f, w]) => { if (w) add(k + ' · ' + f + ': ' + (w > 0 ? '+' : '') + w.toPrecision(3) + ' per unit'); });
        });
        $('w-queries').textContent = r.n_queries + ' model queries.';
      } catch (err) { show(msg, err.message, 'error'); }
    });
  }
  return {overview, rowPage, fairness, whole};
})();
"""
