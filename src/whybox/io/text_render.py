"""Text explanations as a self-contained HTML token heatmap and as a rich terminal rendering.

Colours follow shap's convention: red pushes the explained output up, blue pushes it down; the
intensity is |value| / max |value| of that text. Hovering a unit shows its value (HTML ``title``
and a CSS tooltip, no JavaScript). Text between units (spaces, punctuation) is shown uncoloured.
"""
from __future__ import annotations

import html
import os
from typing import Any, Iterator, Sequence

import numpy as np

from whybox.core.explanation import Explanation, atomic_write_text
from whybox.errors import InputError

CSS = ("body{font-family:system-ui,sans-serif;max-width:980px;margin:2em auto;color:#222}"
       ".txt{font-size:18px;line-height:2.1;border:1px solid #ddd;border-radius:6px;padding:.6em .8em}"
       ".u{position:relative;padding:2px 1px;border-radius:3px}"
       ".u:hover::after{content:attr(data-v);position:absolute;left:0;top:-1.9em;background:#222;color:#fff;"
       "font-size:12px;padding:1px 5px;border-radius:3px;white-space:nowrap;z-index:2}"
       ".meta{color:#666;font-size:12px}.legend span{padding:2px 8px;margin-right:4px;border-radius:3px}"
       "table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:2px 8px;font-size:13px}")


def _pieces(exp: Explanation, row: int = 0) -> Iterator[tuple[str, float | None]]:
    """(piece of text, value or None for context) in text order."""
    p = exp.params
    if p.get("representation") != "text":
        raise InputError("not a text explanation: render tabular explanations with whybox.io.report")
    text, spans = p["text"], p["spans"]
    last = 0
    for j, (s, e) in enumerate(spans):
        if s > last:
            yield text[last:s], None
        yield text[s:e], float(exp.values[row, j])
        last = e
    if last < len(text):
        yield text[last:], None


def _rgba(v: float, vmax: float) -> str:
    a = 0.0 if vmax <= 0 else min(1.0, abs(v) / vmax) * 0.85
    return f"rgba(214,39,40,{a:.3f})" if v > 0 else f"rgba(31,119,180,{a:.3f})"


def heatmap_fragment(exp: Explanation, row: int = 0) -> str:
    """One text as coloured HTML spans (escaped), for embedding in a page."""
    vmax = float(np.max(np.abs(exp.values[row]))) if exp.values.size else 0.0
    out = []
    for piece, v in _pieces(exp, row):
        if v is None:
            out.append(html.escape(piece))
        else:
            tip = html.escape(f"{piece}: {v:+.4g}", quote=True)
            out.append(f"<span class='u' style='background:{_rgba(v, vmax)}' title='{tip}' data-v='{tip}'>"
                       f"{html.escape(piece)}</span>")
    return "".join(out)


def render_text_html(explanations: Explanation | Sequence[Explanation], *, title: str = "whybox text explanations",
                     top: int = 5) -> str:
    """A self-contained HTML page: for each text, the prediction, the heatmap and the top units."""
    exps = [explanations] if isinstance(explanations, Explanation) else list(explanations)
    parts = [f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
             f"<style>{CSS}</style></head><body><h1>{html.escape(title)}</h1>",
             "<p class='legend'><span style='background:rgba(214,39,40,.7)'>raises the output</span>"
             "<span style='background:rgba(31,119,180,.7)'>lowers the output</span> hover a word for its value</p>"]
    for i, e in enumerate(exps):
        tg = e.target_names()[0]
        base = "" if np.isnan(e.base_values[0]) else f", base {e.base_values[0]:.4g}"
        parts.append(f"<h2>text {i + 1}: output {html.escape(str(tg))} = {e.predictions[0]:.4g}{base}</h2>"
                     f"<p class='meta'>method {html.escape(e.method)}, units {html.escape(str(e.params.get('units')))}, "
                     f"removal {html.escape(str(e.params.get('removal')))}; {e.n_model_rows:,} model rows in "
                     f"{e.n_model_calls} call(s), {e.seconds:.3f} s</p>")
        parts.append(f"<div class='txt'>{heatmap_fragment(e)}</div>")
        rows = "".join(f"<tr><td>{html.escape(n)}</td><td>{v:+.4g}</td></tr>" for n, v in e.top_features(0, top))
        parts.append(f"<table><tr><th>unit</th><th>value</th></tr>{rows}</table>")
    parts.append("</body></html>")
    return "".join(parts)


def write_text_html(explanations: Any, path: str | os.PathLike, **kw: Any) -> None:
    atomic_write_text(path, render_text_html(explanations, **kw))


def render_text_rich(exp: Explanation, row: int = 0):
    """A ``rich.text.Text`` with each unit on a red (up) or blue (down) background."""
    from rich.text import Text

    vmax = float(np.max(np.abs(exp.values[row]))) if exp.values.size else 0.0
    t = Text()
    for piece, v in _pieces(exp, row):
        if v is None:
            t.append(piece)
            continue
        a = 0.0 if vmax <= 0 else min(1.0, abs(v) / vmax)
        lo = int(255 - 200 * a)
        colour = f"rgb(255,{lo},{lo})" if v > 0 else f"rgb({lo},{lo},255)"
        t.append(piece, style=f"black on {colour}")
    return t
