"""Drawings of graph explanations: the explanatory subgraph as a PNG (networkx + matplotlib) and an
HTML page with the drawing, the verified narrative and the unit table (self-contained: the PNG is
inlined, nothing is fetched)."""
from __future__ import annotations

import base64
import html
import io
from pathlib import Path
from typing import Any

import numpy as np

from whybox.errors import InputError


def _nx():
    try:
        import networkx as nx
    except ImportError:
        raise InputError("drawing graphs needs networkx: pip install 'whybox[graph]'") from None
    return nx


def draw_explanation(exp: Any, graph: Any, *, top_k: int = 6, ax: Any = None, seed: int = 0) -> Any:
    """Draw the explained units' neighbourhood: every unit edge (or node), the ``top_k`` largest
    |values| highlighted (red raises, blue lowers; grey for unsigned masks), the explained node
    outlined. Returns the matplotlib Figure."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    from whybox.graph.metrics import _check_graph_exp

    nx = _nx()
    p = _check_graph_exp(exp)
    v = np.asarray(exp.values[0], float)
    order = np.argsort(-np.abs(v), kind="stable")
    top = set(order[:top_k].tolist())
    signed = exp.method in ("kernelshap", "shapley", "lime", "occlusion", "integrated_gradients")
    vmax = float(np.abs(v).max()) or 1.0
    G = nx.Graph()
    if p["units"] == "edge":
        for j, (a, b) in enumerate(p["unit_edges"]):
            G.add_edge(int(a), int(b), j=j)
    elif p["units"] == "node":
        src, dst = graph.edge_index.cpu().numpy()
        nodes = set(int(n) for n in p["unit_nodes"])
        G.add_nodes_from(nodes)
        G.add_edges_from((int(a), int(b)) for a, b in zip(src, dst) if int(a) in nodes and int(b) in nodes)
    else:
        raise InputError("feature explanations are drawn as bar charts: exp.plot('bar')")
    if ax is None:
        fig, ax = plt.subplots(figsize=(6, 5))
    else:
        fig = ax.figure
    pos = nx.spring_layout(G, seed=seed)

    def colour(val: float) -> str:
        if not signed:
            return "#444444"
        return "#d62728" if val > 0 else "#1f77b4"

    if p["units"] == "edge":
        edges = list(G.edges(data=True))
        nx.draw_networkx_edges(G, pos, ax=ax, edgelist=[(a, b) for a, b, d in edges if d["j"] not in top],
                               edge_color="#cccccc", width=1.0)
        hi = [(a, b, d["j"]) for a, b, d in edges if d["j"] in top]
        nx.draw_networkx_edges(G, pos, ax=ax, edgelist=[(a, b) for a, b, _ in hi],
                               edge_color=[colour(v[j]) for _, _, j in hi],
                               width=[1.5 + 4.5 * abs(v[j]) / vmax for _, _, j in hi])
        nx.draw_networkx_nodes(G, pos, ax=ax, node_size=120, node_color="#eeeeee", edgecolors="#666666")
    else:
        ids = [int(n) for n in p["unit_nodes"]]
        val = {n: v[j] for j, n in enumerate(ids)}
        nx.draw_networkx_edges(G, pos, ax=ax, edge_color="#cccccc")
        nx.draw_networkx_nodes(G, pos, ax=ax, node_size=[80 + 400 * abs(val.get(n, 0)) / vmax for n in G.nodes()],
                               node_color=[colour(val.get(n, 0)) if ids.index(n) in top else "#eeeeee"
                                           for n in G.nodes()], edgecolors="#666666")
    if p.get("index") is not None and p["index"] in G:
        nx.draw_networkx_nodes(G, pos, ax=ax, nodelist=[p["index"]], node_size=260, node_color="none",
                               edgecolors="#000000", linewidths=2.5)
    nx.draw_networkx_labels(G, pos, ax=ax, font_size=7)
    item = f"node {p['index']}" if p.get("index") is not None else "graph"
    ax.set_title(f"{exp.method}: {item}, class {exp.target_names()[0]}")
    ax.set_axis_off()
    return fig


def save_png(fig: Any, path: str | Path) -> None:
    from whybox.core.explanation import atomic_write_bytes

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    atomic_write_bytes(path, buf.getvalue())


def graph_html(exp: Any, graph: Any, *, narrative: Any = None, top_k: int = 6) -> str:
    """A self-contained HTML page: the drawing, the narrative (flagged when a claim failed) and the
    units by |value|."""
    import matplotlib.pyplot as plt

    fig = draw_explanation(exp, graph, top_k=top_k)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    img = base64.b64encode(buf.getvalue()).decode("ascii")
    v = np.asarray(exp.values[0], float)
    order = np.argsort(-np.abs(v), kind="stable")
    rows = "".join(f"<tr><td>{r}</td><td>{html.escape(exp.feature_names[j])}</td><td>{v[j]:+.4g}</td></tr>"
                   for r, j in enumerate(order[:20], start=1))
    story = ""
    if narrative is not None:
        flag = "" if narrative.ok else ('<p class="flag">This narrative has claims the explanation does not support; '
                                        'read it with care.</p>')
        story = f'<section><h2>In words</h2><p>{html.escape(narrative.text)}</p>{flag}</section>'
    item = f"node {exp.params.get('index')}" if exp.params.get("index") is not None else "the graph"
    return ("<!doctype html><html><head><meta charset='utf-8'>"
            "<meta http-equiv='Content-Security-Policy' content=\"default-src 'none'; img-src data:; style-src 'unsafe-inline'\">"
            f"<title>whybox: why {html.escape(item)}</title><style>body{{font-family:sans-serif;max-width:52em;margin:2em auto}}"
            "td{padding:2px 8px}.flag{color:#b00}</style></head><body>"
            f"<h1>Why the model classified {html.escape(item)} as {html.escape(str(exp.target_names()[0]))}</h1>"
            f"<img alt='explanatory subgraph' src='data:image/png;base64,{img}'>{story}"
            f"<section><h2>Units by importance ({html.escape(exp.method)})</h2><table><tr><th>#</th><th>unit</th>"
            f"<th>value</th></tr>{rows}</table></section></body></html>")
