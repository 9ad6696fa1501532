"""AsC-Viz: the code coloured by the model's confidence per syntax node, with a collapsible tree view
(HTML, self-contained, no JavaScript, every piece of code escaped), and the same in the terminal.

Each leaf node (keyword, identifier, literal, punctuation, comment) is coloured by its confidence,
the aggregate probability of its tokens: red (unsure, p near 0) through yellow to green (sure, p
near 1). A leaf without a token of its own (its characters sit in a token shared with a neighbour)
takes the colour of the smallest node above it that has tokens. Hover shows the node type, the
confidence and the path of node types above it.
"""
from __future__ import annotations

import html
import os
from typing import Any

import numpy as np

from whybox.code.asc import AscFile
from whybox.core.explanation import atomic_write_text

CSS = ("body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;color:#222}"
       "pre.code{font:14px/1.5 ui-monospace,Menlo,Consolas,monospace;border:1px solid #ddd;border-radius:6px;"
       "padding:.8em;overflow-x:auto;background:#fff}pre.code span{border-radius:2px}"
       ".tree{font:13px/1.45 ui-monospace,Menlo,Consolas,monospace}.tree details{margin-left:1.2em}"
       ".tree summary{cursor:pointer}.tree .leaf{margin-left:2.4em}.tree code{background:#f4f4f4;padding:0 3px}"
       ".sw{display:inline-block;width:.8em;height:.8em;border-radius:2px;margin-right:.3em;vertical-align:-1px}"
       ".meta{color:#666;font-size:13px}table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:2px 8px;"
       "font-size:13px}.err{color:#a00}")


def colour(p: float) -> str:
    """Red (0) - yellow (0.5) - green (1), as an rgba background."""
    if not np.isfinite(p):
        return "transparent"
    p = float(min(1.0, max(0.0, p)))
    r, g = (230, int(60 + 340 * p)) if p < 0.5 else (int(230 - 380 * (p - 0.5)), 200)
    return f"rgba({max(r, 0)},{min(g, 230)},70,0.55)"


def _leaf_conf(asc: AscFile) -> dict[int, float]:
    """Confidence shown for each leaf: its own, else its nearest ancestor's that has one."""
    t, c = asc.tree, asc.confidence
    out = {}
    for n in t.leaves():
        i = n.index
        while not np.isfinite(c[i]) and t.nodes[i].parent is not None:
            i = t.nodes[i].parent
        out[n.index] = c[i]
    return out


def _path(asc: AscFile, i: int) -> str:
    t, names = asc.tree, []
    while i is not None and i != 0:
        names.append(t.nodes[i].type)
        i = t.nodes[i].parent
    return " < ".join(names)


def _pieces(asc: AscFile):
    """The text in order as ``(piece, leaf node or None, its shown confidence)``: leaves, and the
    text between them (None)."""
    t = asc.tree
    conf = _leaf_conf(asc)
    pos = 0
    for n in sorted(t.leaves(), key=lambda n: n.start):
        if n.start < pos:
            continue
        yield t.text[pos:n.start], None, np.nan
        yield t.text[n.start:n.end], n, conf[n.index]
        pos = n.end
    yield t.text[pos:], None, np.nan


def code_fragment(asc: AscFile) -> str:
    """The coloured code as a ``<pre>`` element."""
    parts = []
    for piece, n, p in _pieces(asc):
        if n is None:
            parts.append(html.escape(piece))
            continue
        tip = f"{n.type} ({n.category}) p={p:.3f}  |  {_path(asc, n.index)}" if np.isfinite(p) else n.type
        parts.append(f"<span style='background:{colour(p)}' title='{html.escape(tip, quote=True)}'>"
                     f"{html.escape(piece)}</span>")
    return "<pre class='code'>" + "".join(parts) + "</pre>"


def tree_fragment(asc: AscFile, *, open_depth: int = 2, max_nodes: int = 5000) -> str:
    """Nested ``<details>``: every node with its type, confidence, token count and source excerpt."""
    t, c, al = asc.tree, asc.confidence, asc.alignment
    shown = 0

    def node_html(i: int) -> str:
        nonlocal shown
        shown += 1
        n = t.nodes[i]
        p = c[i]
        src = " ".join(t.text[n.start:n.end].split())
        src = src[:60] + ("..." if len(src) > 60 else "")
        head = (f"<span class='sw' style='background:{colour(p)}'></span><b>{html.escape(n.type)}</b> "
                + (f"p={p:.3f} " if np.isfinite(p) else "no token ")
                + f"<span class='meta'>({len(al.tokens_of(i))} tok)</span> <code>{html.escape(src)}</code>")
        if not n.children:
            return f"<div class='leaf'>{head}</div>"
        if shown > max_nodes:
            return f"<div class='leaf'>{head} <span class='meta'>(subtree not shown: over {max_nodes} nodes)</span></div>"
        inner = "".join(node_html(k) for k in n.children)
        return f"<details{' open' if n.depth < open_depth else ''}><summary>{head}</summary>{inner}</details>"

    return "<div class='tree'>" + node_html(0) + "</div>"


def render_asc_html(asc: AscFile, *, title: str | None = None, concepts: Any = None) -> str:
    """A self-contained AsC-Viz page for one file (``concepts``: an optional per-concept table, e.g.
    from :func:`whybox.code.asc_eval`, shown below)."""
    title = title or f"whybox: model confidence on {asc.name}"
    s = asc.alignment.scores
    legend = "".join(f"<span class='sw' style='background:{colour(p)}'></span>{p:.1f} " for p in (0, .25, .5, .75, 1))
    errs = "".join(f"<li class='err'>{html.escape(e)}</li>" for e in asc.tree.errors[:10])
    if len(asc.tree.errors) > 10:
        errs += f"<li class='err'>and {len(asc.tree.errors) - 10} more</li>"
    rows = [f"<tr><td>{html.escape(str(cat))}</td><td>{int(r['count'])}</td><td>{r['mean']:.3f}</td></tr>"
            for cat, r in asc.categories().iterrows()]
    parts = [f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
             f"<style>{CSS}</style></head><body><h1>{html.escape(title)}</h1>",
             f"<p class='meta'>{len(s)} tokens scored (teacher forcing; {s.n_unscored} without context left out), "
             f"{len(asc.tree.nodes)} syntax nodes ({html.escape(asc.tree.parser)}), node confidence = "
             f"{html.escape(asc.agg)} token probability; {int(asc.alignment.straddling.sum())} tokens span "
             f"several nodes and count for the smallest node containing them.</p>",
             f"<p class='meta'>confidence: {legend}</p>"]
    if errs:
        parts.append(f"<p>The code does not fully parse; what parses is shown:</p><ul>{errs}</ul>")
    parts.append(code_fragment(asc))
    parts.append("<h2>By category (leaf nodes)</h2><table><tr><th>category</th><th>nodes</th><th>mean p</th></tr>"
                 + "".join(rows) + "</table>")
    if concepts is not None:
        parts.append("<h2>By syntax concept (corpus)</h2>" + concepts.to_html(index=False, float_format="%.3f",
                                                                               escape=True))
    parts.append("<h2>Syntax tree</h2>" + tree_fragment(asc) + "</body></html>")
    return "".join(parts)


def write_asc_html(asc: AscFile, path: str | os.PathLike, **kw: Any) -> None:
    atomic_write_text(path, render_asc_html(asc, **kw))


def render_asc_rich(asc: AscFile):
    """The coloured code as a ``rich.text.Text`` (print it with a rich Console)."""
    from rich.text import Text

    out = Text()
    for piece, _, p in _pieces(asc):
        if np.isfinite(p):
            r, g = (255, int(255 * 2 * p)) if p < 0.5 else (int(255 * 2 * (1 - p)), 255)
            out.append(piece, style=f"black on rgb({r},{min(g, 255)},90)")
        else:
            out.append(piece)
    return out
