"""GVEX-style explanation views: a few graph patterns that say which parts of the graphs make a GNN
assign a class label (after Chen et al. 2024, "View-based Explanations for Graph Neural Networks").

For a class c and the graphs the GNN assigns to c:

1. every graph's *explanation subgraph* is its ``top_k`` edges by |value| in a whybox edge explanation;
2. *patterns* are mined exactly: every connected edge subset of an explanation subgraph with at most
   ``max_edges`` (<= 5) edges is enumerated; candidates are grouped by their Weisfeiler-Lehman hash
   and confirmed isomorphic by VF2 (networkx), so a pattern is an isomorphism class and its
   occurrences are the enumerated subsets;
3. each (pattern P, graph G) gets an *explainability* e(P, G) in [0, 1], the best over P's
   occurrences O in G of the mean of the two fidelities in probability form:
   sufficiency min(1, p_c(G_O) / p_c(G)) (fid-: the occurrence's edges alone) and necessity
   max(0, (p_c(G) - p_c(G minus O)) / p_c(G)) (fid+: the graph without them); 0 when P does not
   occur in G. Sufficiency alone is not enough: a GNN may keep its label on a nearly empty graph.
   All occurrences of one graph are evaluated in one batched model call;
4. the view is the set S of at most ``budget`` patterns maximising

       F(S) = lam * (1/n) sum_G max_{P in S} e(P, G) + (1 - lam) * |cover(S)| / m,

   n = the number of graphs; cover(S) = the explanation-subgraph edges that lie in the best
   occurrence (largest e) of some P in S in their graph, m = the number of such edges over all
   graphs (GVEX covers the explanation subgraphs' nodes; edges here). Counting covered graphs
   instead would reward a single edge, which occurs everywhere.

F is monotone and submodular (the first term is a facility-location function, the second a
coverage function: each pattern covers a fixed set of items; a non-negative sum of such functions is monotone submodular), so the greedy
choice reaches F(S) >= (1 - 1/e) max_{|S*| <= budget} F(S*) (Nemhauser, Wolsey & Fisher 1978). The
tests check diminishing returns on random sets and the bound against brute force.

The paper's own objective and its streaming algorithm differ (GVEX weighs explainability by
fidelity over node-induced subgraphs and streams with a swap rule, 1/4-approximate); this is
"GVEX-style". :class:`StreamingView` takes graphs in batches and after each batch reports the
greedy view of everything seen so far, whose (1 - 1/e) guarantee holds at every point (anytime).
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from itertools import combinations
from typing import Any, Sequence

import numpy as np

from whybox.errors import InputError

MAX_PATTERN_EDGES = 5


def _nx():
    try:
        import networkx as nx
    except ImportError:
        raise InputError("explanation views need networkx: pip install 'whybox[graph]'") from None
    return nx


@dataclass
class Pattern:
    id: int
    graph: Any                                   # networkx.Graph of the pattern
    occurrences: dict[int, list[tuple]] = field(default_factory=dict)   # graph id -> edge sets

    @property
    def n_edges(self) -> int:
        return self.graph.number_of_edges()

    @property
    def support(self) -> list[int]:
        return sorted(self.occurrences)

    def describe(self) -> str:
        return f"pattern {self.id}: {self.graph.number_of_nodes()} nodes, {self.n_edges} edges"


def connected_edge_subsets(edges: Sequence[tuple[int, int]], max_edges: int) -> list[tuple]:
    """Every connected subset of ``edges`` with 1..max_edges edges, each once (sorted tuples)."""
    edges = sorted({tuple(sorted(e)) for e in edges})
    adj: dict[int, set[int]] = {}
    for i, (a, b) in enumerate(edges):
        adj.setdefault(a, set()).add(i)
        adj.setdefault(b, set()).add(i)
    out: set[tuple] = set()
    frontier = {(i,) for i in range(len(edges))}
    for _ in range(max_edges):
        out |= frontier
        nxt = set()
        for s in frontier:
            if len(s) == max_edges:
                continue
            nodes = {n for i in s for n in edges[i]}
            for n in nodes:
                for j in adj[n]:
                    if j not in s:
                        nxt.add(tuple(sorted(s + (j,))))
        frontier = nxt
    return [tuple(edges[i] for i in s) for s in sorted(out)]


def mine_patterns(subgraphs: dict[int, Sequence[tuple[int, int]]], *, max_edges: int = 4) -> list[Pattern]:
    """Patterns (isomorphism classes of connected edge subsets, <= max_edges edges) of the subgraphs."""
    nx = _nx()
    if isinstance(max_edges, bool) or not isinstance(max_edges, int) or not 1 <= max_edges <= MAX_PATTERN_EDGES:
        raise InputError(f"max_edges must be an integer in 1..{MAX_PATTERN_EDGES}, got {max_edges!r}")
    buckets: dict[tuple, list[Pattern]] = {}
    patterns: list[Pattern] = []
    with warnings.catch_warnings():           # networkx >= 3.5 notes its hashes changed; ours are per call
        warnings.simplefilter("ignore", UserWarning)
        _mine(nx, subgraphs, max_edges, buckets, patterns)
    return patterns


def _mine(nx: Any, subgraphs: dict, max_edges: int, buckets: dict, patterns: list) -> None:
    for gid in sorted(subgraphs):
        for occ in connected_edge_subsets(subgraphs[gid], max_edges):
            h = nx.Graph(list(occ))
            key = (len(occ), nx.weisfeiler_lehman_graph_hash(h, iterations=3))
            for p in buckets.setdefault(key, []):
                if nx.is_isomorphic(p.graph, h):
                    p.occurrences.setdefault(gid, []).append(occ)
                    break
            else:
                p = Pattern(len(patterns), h, {gid: [occ]})
                buckets[key].append(p)
                patterns.append(p)


def objective(E: np.ndarray, C: np.ndarray, S: Sequence[int], lam: float) -> float:
    """F(S) for the (patterns x graphs) explainability E and the (patterns x items) coverage C, an
    item being one edge of one graph's explanation subgraph (module docstring)."""
    if len(S) == 0 or E.shape[1] == 0:
        return 0.0
    S = list(S)
    return float(lam * E[S].max(axis=0).mean() + (1 - lam) * C[S].any(axis=0).mean())


def greedy(E: np.ndarray, C: np.ndarray, budget: int, lam: float) -> tuple[list[int], list[float]]:
    """The greedy choice of at most ``budget`` patterns: (chosen rows, F after each choice)."""
    chosen: list[int] = []
    trace = []
    best = np.zeros(E.shape[1])
    n, n_items = max(E.shape[1], 1), max(C.shape[1], 1)
    covered = np.zeros(C.shape[1], bool)
    for _ in range(min(budget, E.shape[0])):
        gain = lam * (np.maximum(E, best).sum(axis=1) - best.sum()) / n \
            + (1 - lam) * (C & ~covered).sum(axis=1) / n_items
        gain[chosen] = -np.inf
        j = int(np.argmax(gain))                 # ties: the lowest id (stable, deterministic)
        if gain[j] <= 0:
            break
        chosen.append(j)
        best = np.maximum(best, E[j])
        covered |= C[j]
        trace.append(objective(E, C, chosen, lam))
    return chosen, trace


@dataclass
class ExplanationView:
    """The view: chosen patterns, their support and coverage, and each covered graph's subgraph."""

    label: Any
    patterns: list[Pattern]                      # the chosen ones, in greedy order
    graph_ids: list[int]                         # the graphs the view describes
    E: np.ndarray                                # explainability, chosen patterns x graphs
    O: np.ndarray                                # occurs, chosen patterns x graphs
    C: np.ndarray                                # covers, chosen patterns x explanation-subgraph edges
    score: float
    trace: list[float]
    lam: float
    candidates: int
    best_occurrence: dict[tuple[int, int], tuple] = field(default_factory=dict, repr=False)

    def graphs_with(self, pattern: int) -> list[int]:
        """Which graphs contain chosen pattern ``pattern`` (its position in the view)."""
        return self.patterns[pattern].support

    def patterns_of(self, graph_id: int) -> list[int]:
        """Which chosen patterns explain graph ``graph_id`` (positions in the view)."""
        if graph_id not in self.graph_ids:
            raise InputError(f"graph {graph_id} is not among the view's graphs")
        col = self.graph_ids.index(graph_id)
        return [i for i in range(len(self.patterns)) if self.O[i, col]]

    def subgraph(self, pattern: int, graph_id: int) -> list[tuple]:
        """The occurrence of pattern ``pattern`` in graph ``graph_id`` with the best explainability."""
        occ = self.patterns[pattern].occurrences.get(graph_id)
        if not occ:
            raise InputError(f"pattern {pattern} does not occur in graph {graph_id}")
        return list(self.best_occurrence[(pattern, graph_id)])

    @property
    def coverage(self) -> float:
        """The share of the explanation subgraphs' edges that the view's subgraphs cover."""
        return float(self.C.any(axis=0).mean()) if self.C.size else 0.0

    @property
    def graph_coverage(self) -> float:
        """The share of the graphs in which some pattern of the view occurs."""
        return float(self.O.any(axis=0).mean()) if self.O.size else 0.0

    def summary(self) -> list[dict[str, Any]]:
        n = len(self.graph_ids)
        return [{"pattern": i, "nodes": p.graph.number_of_nodes(), "edges": sorted(map(list, p.graph.edges())),
                 "support": len(p.support), "graph_coverage": len(p.support) / n if n else 0.0,
                 "edge_coverage": float(self.C[i].mean()) if self.C.size else 0.0,
                 "mean_explainability": float(self.E[i].mean()) if n else 0.0} for i, p in enumerate(self.patterns)]


def _explanation_subgraph(exp: Any, top_k: int) -> list[tuple[int, int]]:
    from whybox.graph.metrics import _check_graph_exp

    p = _check_graph_exp(exp)
    if p["units"] != "edge":
        raise InputError("explanation views need edge explanations (units='edge')")
    v = np.abs(np.asarray(exp.values[0], float))
    order = [j for j in np.argsort(-v, kind="stable")[:top_k] if v[j] > 0]
    return [tuple(p["unit_edges"][j]) for j in order]


def _explainability(model: Any, graphs: dict[int, Any], patterns: list[Pattern], label: int,
                    subs: dict[int, Sequence[tuple[int, int]]]
                    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, dict[tuple[int, int], tuple]]:
    """For every pattern and graph: e(P, G), "P occurs in G", and P's best occurrence in G; and the
    coverage matrix (patterns x items, an item = an edge of a graph's explanation subgraph) of the
    best occurrences. All occurrences of one graph are evaluated in one batched model call."""
    from whybox.graph.units import _graph_tensors

    gids = sorted(graphs)
    E = np.zeros((len(patterns), len(gids)))
    O = np.zeros((len(patterns), len(gids)), bool)
    best: dict[tuple[int, int], tuple] = {}
    for c, g in enumerate(gids):
        occs = [(p.id, o) for p in patterns for o in p.occurrences.get(g, [])]
        if not occs:
            continue
        x, ei = _graph_tensors(graphs[g])
        src, dst = ei.cpu().numpy()
        pairs = [tuple(sorted((int(a), int(b)))) for a, b in zip(src, dst)]
        occ_sets = [set(o) for _, o in occs]
        keep = np.array([[pr in o for pr in pairs] for o in occ_sets])
        V = model.masked(x, ei, np.vstack([np.ones((1, len(pairs)), bool), keep, ~keep]), None, raw=True)
        P = model.probabilities(model.torch.as_tensor(V)).numpy()[:, label]
        p0, m = max(P[0], 1e-12), len(occs)
        suff = np.clip(P[1:1 + m] / p0, 0.0, 1.0)              # the occurrence alone keeps this share
        nec = np.clip((P[0] - P[1 + m:]) / p0, 0.0, 1.0)        # removing it loses this share
        for (pid, o), sh in zip(occs, 0.5 * (suff + nec)):
            if not O[pid, c] or sh > E[pid, c]:
                E[pid, c] = sh
                best[(pid, g)] = o
            O[pid, c] = True
    items = [(g, tuple(sorted(e))) for g in gids for e in subs[g]]
    where = {it: i for i, it in enumerate(items)}
    C = np.zeros((len(patterns), len(items)), bool)
    for (pid, g), o in best.items():
        for e in o:
            C[pid, where[(g, tuple(sorted(e)))]] = True
    return E, O, C, best


def _check_view_params(budget: int, lam: float, top_k: int) -> None:
    for name, v in (("budget", budget), ("top_k", top_k)):
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise InputError(f"{name} must be a positive integer, got {v!r}")
    if isinstance(lam, bool) or not isinstance(lam, (int, float)) or not 0 <= lam <= 1:
        raise InputError(f"lam must be a number in [0, 1], got {lam!r}")


def explanation_view(model: Any, graphs: Sequence[Any], explanations: Sequence[Any], *, label: int,
                     budget: int = 3, top_k: int = 6, max_edges: int = 4, lam: float = 0.5,
                     graph_ids: Sequence[int] | None = None) -> ExplanationView:
    """The GVEX-style view of class ``label`` over ``graphs`` (with one edge explanation each; only the
    graphs the model assigns to ``label`` are described)."""
    from whybox.graph.model import GraphModel

    if not isinstance(model, GraphModel):
        raise InputError("model must be a whybox GraphModel (the one the explanations were computed with)")
    _check_view_params(budget, lam, top_k)
    if len(graphs) != len(explanations):
        raise InputError(f"{len(graphs)} graphs but {len(explanations)} explanations")
    ids = list(graph_ids) if graph_ids is not None else list(range(len(graphs)))
    chosen_graphs = {gid: g for gid, g, e in zip(ids, graphs, explanations)
                     if int(e.target[0]) == int(label) and _predicted(model, g) == int(label)}
    subs = {gid: _explanation_subgraph(e, top_k) for gid, e in zip(ids, explanations) if gid in chosen_graphs}
    patterns = mine_patterns(subs, max_edges=max_edges)
    E, O, C, best = _explainability(model, chosen_graphs, patterns, int(label), subs)
    sel, trace = greedy(E, C, budget, float(lam))
    view = ExplanationView(label, [patterns[i] for i in sel], sorted(chosen_graphs), E[sel], O[sel], C[sel],
                           trace[-1] if trace else 0.0, trace, float(lam), len(patterns),
                           {(k, g): best[(pid, g)] for k, pid in enumerate(sel) for g in patterns[pid].occurrences})
    return view


def _predicted(model: Any, graph: Any) -> int:
    from whybox.graph.units import _graph_tensors

    from whybox.graph.metrics import _labels

    x, ei = _graph_tensors(graph)
    return int(_labels(model, model.masked(x, ei, None, None, raw=True))[0])


class StreamingView:
    """The view maintained over batches of graphs (anytime): ``add(graphs, explanations)`` after each
    batch returns the current view of everything seen so far and appends its F to ``history``."""

    def __init__(self, model: Any, *, label: int, budget: int = 3, top_k: int = 6, max_edges: int = 4,
                 lam: float = 0.5) -> None:
        _check_view_params(budget, lam, top_k)
        self.model, self.label, self.budget, self.top_k, self.max_edges, self.lam = model, label, budget, top_k, \
            max_edges, lam
        self._graphs: list[Any] = []
        self._exps: list[Any] = []
        self.history: list[dict[str, float]] = []
        self.view: ExplanationView | None = None

    def add(self, graphs: Sequence[Any], explanations: Sequence[Any]) -> ExplanationView:
        self._graphs += list(graphs)
        self._exps += list(explanations)
        self.view = explanation_view(self.model, self._graphs, self._exps, label=self.label, budget=self.budget,
                                     top_k=self.top_k, max_edges=self.max_edges, lam=self.lam)
        self.history.append({"graphs_seen": len(self._graphs), "score": self.view.score,
                             "coverage": self.view.coverage, "patterns": len(self.view.patterns)})
        return self.view


def brute_force_best(E: np.ndarray, C: np.ndarray, budget: int, lam: float) -> float:
    """max F over all sets of at most ``budget`` rows (small E only; for tests and the benchmark)."""
    best = 0.0
    for k in range(1, min(budget, E.shape[0]) + 1):
        for S in combinations(range(E.shape[0]), k):
            best = max(best, objective(E, C, S, lam))
    return best
