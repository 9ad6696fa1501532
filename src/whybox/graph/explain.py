"""Explaining graph neural networks with the same engine and the same Explanation type.

* Masking recipes (lime, kernelshap, shapley, occlusion) are the tabular recipes unchanged: a
  :class:`GraphContext` answers ``evaluate_masks`` by building the masked variants of the graph
  (:class:`whybox.graph.units.GraphUnits`) and sending them to the model as one disjoint-union batch
  per chunk, each distinct mask once.
* Gradient recipes on PyG models: ``saliency`` = |d f / d m_u| for a unit's mask m_u (edges: the
  message mask shared by the unit's directions; nodes/features: summed |d f / d x| over the unit's
  entries), ``integrated_gradients`` = the path integral from all units off (edge masks 0, or the
  baseline features) to the graph, so the values sum to f(graph) - f(all units off) up to quadrature.
* PyG's own explainers (``gnnexplainer``, ``pgexplainer``) through ``torch_geometric.explain``; their
  soft masks (in [0, 1]) become the unit values (the mean over a unit's directed edges / entries).
"""
from __future__ import annotations

import time
import warnings
from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np

from whybox.background import Background
from whybox.core.explanation import Explanation
from whybox.errors import InputError, MethodError
from whybox.explainers import recipes
from whybox.explainers.recipes import Result, _positive_int
from whybox.graph.model import GraphModel, as_graph_model
from whybox.graph.units import GraphUnits, build_units
from whybox.neighbourhoods import continuous

MASKING_METHODS = ("lime", "kernelshap", "shapley", "occlusion")
GRADIENT_METHODS = ("saliency", "integrated_gradients")
PYG_METHODS = ("gnnexplainer", "pgexplainer")
GRAPH_METHODS = MASKING_METHODS + GRADIENT_METHODS + PYG_METHODS
ALIASES = {"ig": "integrated_gradients", "gradient": "saliency", "shap": "kernelshap", "kernel_shap": "kernelshap",
           "exact": "shapley", "gnn_explainer": "gnnexplainer", "pg_explainer": "pgexplainer"}


@dataclass
class GraphContext:
    """One graph (or one node's computation subgraph) bound to a model: what the masking recipes call."""

    model: GraphModel
    units: GraphUnits
    target: int
    fx: np.ndarray                  # (1,)
    rng: np.random.Generator
    _seen: dict[bytes, float] = field(default_factory=dict, repr=False)

    n = 1

    def __post_init__(self) -> None:
        self.background = Background(np.zeros((1, self.units.d)), np.ones(1))
        self.targets = np.array([self.target], dtype=np.intp)

    @property
    def d(self) -> int:
        return self.units.d

    @property
    def p(self) -> int:
        return self.units.d

    def outputs(self, Z: np.ndarray) -> np.ndarray:
        """f(graph with units Z)[target] per mask, each distinct mask evaluated once: (m,)."""
        Z = np.asarray(Z, bool)
        keys = [z.tobytes() for z in np.packbits(Z, axis=1)]
        todo = {k: i for i, k in enumerate(keys) if k not in self._seen}
        if todo:
            rows = np.fromiter(todo.values(), dtype=np.intp)
            u = self.units
            per = max(1, self.model.nodes_per_call // max(u.n_nodes, 1))
            for s in range(0, len(rows), per):
                keep, X = u.variants(Z[rows[s:s + per]])
                V = self.model.masked(u.x, u.edge_index, keep, X, index=u.index)[:, self.target]
                self._seen.update(zip((keys[r] for r in rows[s:s + per]), V.tolist()))
        return np.array([self._seen[k] for k in keys], dtype=float)

    def evaluate_masks(self, Z: np.ndarray) -> np.ndarray:
        return self.outputs(Z)[None, :]

    def row_blocks(self, per_row: int):
        yield self

    def base_value(self) -> np.ndarray:
        return self.outputs(np.zeros((1, self.d), bool))

    def evaluate_background_rows(self) -> np.ndarray:
        return self.base_value()[:, None]

    def mask_cost(self, Z: np.ndarray) -> int:
        Z = np.asarray(Z, bool)
        uniq = np.unique(np.packbits(Z, axis=1), axis=0)
        return int(len(uniq) - (1 if Z.all(axis=1).any() else 0))


# ------------------------------------------------------------------------------ gradient recipes
def _need_autograd(model: GraphModel, method: str) -> None:
    if not model.has_gradient:
        raise MethodError(f"method {method!r} differentiates a PyTorch Geometric model (MessagePassing layers, "
                          f"called model(x, edge_index[, batch])); this model is a black box. Use one of "
                          f"{list(MASKING_METHODS)}")


def _unit_gradients(ctx: GraphContext, levels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Gradients of f_target at len(levels) points where every unit is at level a (0 = off, 1 = on), in
    one batched pass: (outputs (s,), gradients). Edge units: the unit masks' gradients d f / d m_u,
    (s, d) (a unit's directed edges share its mask, so their gradients add). Node and feature units:
    the node features' gradients at b + a (x - b), (s, N, F), reduced per unit by the caller."""
    torch = ctx.model.torch
    u, model = ctx.units, ctx.model
    N, E = u.n_nodes, int(u.edge_index.shape[1])
    s = len(levels)
    a = torch.as_tensor(levels, dtype=u.x.dtype)
    batch = torch.arange(s).repeat_interleave(N)
    eib = u.edge_index.repeat(1, s) + (torch.arange(s) * N).repeat_interleave(E)
    model.model.eval()
    if u.kind == "edge":
        on = torch.as_tensor(u.unit_of >= 0)
        mask = torch.ones(s, E, dtype=u.x.dtype)
        # a Parameter: PyG's set_masks re-wraps a plain tensor as a new Parameter once a module has had one
        # (after GNNExplainer ran), and the gradient would then be taken on a tensor the model never saw
        mask = torch.nn.Parameter(torch.where(on[None], a[:, None].expand(s, E), mask).reshape(-1))
        out = model.transform(model.forward(u.x.repeat(s, 1), eib, batch, s, edge_mask=mask))
        sel = out[torch.arange(s) * N + u.index] if model.task == "node" else out
        y = sel[:, ctx.target]
        (g,) = torch.autograd.grad(y.sum(), mask)
        G = g.reshape(s, E).double().numpy() @ u.members().T          # d f / d m_u: the unit's edges summed
        return y.detach().double().numpy(), G
    x = u.x.double() if u.x.dtype == torch.float64 else u.x
    b = torch.as_tensor(u.baseline, dtype=x.dtype)
    diff = x - b
    xs = (b[None, None] + a[:, None, None] * diff[None]).reshape(s * N, -1).requires_grad_(True)
    out = model.transform(model.forward(xs, eib, batch, s))
    sel = out[torch.arange(s) * N + u.index] if model.task == "node" else out
    y = sel[:, ctx.target]
    (g,) = torch.autograd.grad(y.sum(), xs)
    g = g.reshape(s, N, -1).double().numpy()
    return y.detach().double().numpy(), g


def _reduce_entries(ctx: GraphContext, per_entry: np.ndarray) -> np.ndarray:
    """(N, F) per-entry values -> (d,) per unit (nodes: summed over features; features: over nodes)."""
    u = ctx.units
    if u.kind == "node":
        return u.members() @ per_entry.sum(axis=1)
    return per_entry.sum(axis=0)


def run_saliency(ctx: GraphContext) -> Result:
    _need_autograd(ctx.model, "saliency")
    y, G = _unit_gradients(ctx, np.ones(1))
    if ctx.units.kind == "edge":
        vals = np.abs(G[0])
    else:
        vals = _reduce_entries(ctx, np.abs(G[0]))
    return Result(vals, np.full(1, np.nan), info={"estimator": "autograd", "scalar": "|gradient| per unit"})


def run_integrated_gradients(ctx: GraphContext, steps: int = 50, rule: str = "gausslegendre") -> Result:
    _need_autograd(ctx.model, "integrated_gradients")
    steps = _positive_int("steps", steps)
    alphas, w = continuous.path(steps, rule)
    y, G = _unit_gradients(ctx, np.concatenate([[0.0], alphas]))
    f0 = float(y[0])
    if ctx.units.kind == "edge":
        vals = np.einsum("s,sd->d", w, G[1:])              # (1 - 0) * mean path gradient
    else:
        diff = (ctx.units.x.double().numpy() - ctx.units.baseline[None])
        vals = _reduce_entries(ctx, diff * np.einsum("s,snf->nf", w, G[1:]))
    return Result(vals, np.array([f0]), info={"steps": steps, "rule": rule, "baseline_output": f0,
                                              "completeness_gap": float(vals.sum() - (ctx.fx[0] - f0))})


# ------------------------------------------------------------------------------ PyG's explainers
def _pyg_explainer(ctx: GraphContext, algorithm: Any):
    from torch_geometric.explain import Explainer

    m = ctx.model
    u = ctx.units
    mask_types = {"edge": ("object", None), "node": (None, "object"), "feature": (None, "common_attributes")}
    edge_type, node_type = mask_types[u.kind]
    mode = "binary_classification" if m.model_out_dim == 1 else "multiclass_classification"
    return Explainer(m.model, algorithm, explanation_type="phenomenon", edge_mask_type=edge_type,
                     node_mask_type=node_type,
                     model_config=dict(mode=mode, task_level=m.task, return_type=m.return_type))


def _pyg_call_kwargs(ctx: GraphContext) -> dict[str, Any]:
    torch = ctx.model.torch
    u = ctx.units
    if ctx.model.task == "node":
        return {"index": u.index, "target": torch.full((u.n_nodes,), ctx.target, dtype=torch.long)}
    return {"target": torch.tensor([ctx.target]), "batch": torch.zeros(u.n_nodes, dtype=torch.long)}


def _from_pyg(ctx: GraphContext, exp: Any) -> np.ndarray:
    u = ctx.units
    A = u.members()
    if u.kind == "edge":
        mask = exp.edge_mask.detach().double().numpy()
    elif u.kind == "node":
        mask = exp.node_mask.detach().double().numpy()[:, 0]
    else:
        mask = exp.node_mask.detach().double().numpy()[0]
    return (A @ mask) / np.maximum(A.sum(axis=1), 1)


class _CallCounter:
    """Counts the forward calls PyG's explainers make (each on one graph)."""

    def __init__(self, model: GraphModel) -> None:
        self.model = model
        self.handle = model.model.register_forward_hook(self._hook)

    def _hook(self, *_: Any) -> None:
        self.model.n_calls += 1
        self.model.n_rows += 1

    def close(self) -> None:
        self.handle.remove()


def run_gnnexplainer(ctx: GraphContext, epochs: int = 100, lr: float = 0.01) -> Result:
    from torch_geometric.explain.algorithm import GNNExplainer

    _need_autograd(ctx.model, "gnnexplainer")
    import torch

    exp = _pyg_explainer(ctx, GNNExplainer(epochs=_positive_int("epochs", epochs), lr=float(lr)))
    counter = _CallCounter(ctx.model)
    try:
        with torch.random.fork_rng(devices=[]):     # seeded per item, the caller's generator untouched
            torch.manual_seed(int(ctx.rng.integers(2 ** 31)))
            e = exp(ctx.units.x, ctx.units.edge_index, **_pyg_call_kwargs(ctx))
    finally:
        counter.close()
    return Result(_from_pyg(ctx, e), np.full(1, np.nan), info={"epochs": epochs, "lr": lr, "mask": "soft, in [0, 1]"})


@dataclass
class PGExplainerState:
    """A trained PGExplainer (its MLP), shared by every explanation of one call."""

    explainer: Any
    epochs: int
    trained_on: int


def train_pgexplainer(ctxs: Sequence[GraphContext], *, epochs: int = 30, lr: float = 0.003,
                      seed: int = 0) -> PGExplainerState:
    """Train PyG's PGExplainer once on the given instances (its training calls are counted on the model)."""
    from torch_geometric.explain.algorithm import PGExplainer

    import torch

    ctx0 = ctxs[0]
    _need_autograd(ctx0.model, "pgexplainer")
    if ctx0.units.kind != "edge":
        raise MethodError("pgexplainer explains edges only (units='edge')")
    exp = _pyg_explainer(ctx0, PGExplainer(epochs=_positive_int("epochs", epochs), lr=float(lr)))
    counter = _CallCounter(ctx0.model)
    try:
        with warnings.catch_warnings(), torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            exp.algorithm.reset_parameters()
            warnings.filterwarnings("ignore", message="Converting a tensor with requires_grad")   # PyG's float(loss)
            for epoch in range(epochs):
                for c in ctxs:
                    exp.algorithm.train(epoch, exp.model, c.units.x, c.units.edge_index, **_pyg_call_kwargs(c))
    finally:
        counter.close()
    return PGExplainerState(exp, epochs, len(ctxs))


def run_pgexplainer(ctx: GraphContext, epochs: int = 30, lr: float = 0.003, train_on: Any = None,
                    state: Any = None) -> Result:
    """PGExplainer with an MLP trained once per call (``state``; explain_graph trains it on ``train_on``)."""
    if not isinstance(state, PGExplainerState):
        state = train_pgexplainer([ctx], epochs=epochs, lr=lr, seed=int(ctx.rng.integers(2 ** 31)))
    counter = _CallCounter(ctx.model)
    try:
        e = state.explainer(ctx.units.x, ctx.units.edge_index, **_pyg_call_kwargs(ctx))
    finally:
        counter.close()
    return Result(_from_pyg(ctx, e), np.full(1, np.nan),
                  info={"epochs": state.epochs, "lr": lr, "trained_on": state.trained_on, "mask": "soft, in [0, 1]"})


RUNS = {"saliency": run_saliency, "integrated_gradients": run_integrated_gradients,
        "gnnexplainer": run_gnnexplainer, "pgexplainer": run_pgexplainer}
_TEXT = {
    "saliency": ("infinitesimal, on unit masks", "|gradient|"),
    "integrated_gradients": ("straight path from every unit off", "path gradient matching"),
    "gnnexplainer": ("soft masks, learned", "mutual information with the prediction (GNNExplainer)"),
    "pgexplainer": ("soft edge masks from a trained MLP", "mutual information (PGExplainer)"),
}


def _method(method: str) -> str:
    key = ALIASES.get(str(method).lower(), str(method).lower())
    if key not in GRAPH_METHODS:
        raise MethodError(f"unknown graph method {method!r}; choose one of {list(GRAPH_METHODS)}")
    return key


def explain_graph(model: Any, graph: Any, *, index: Any = None, method: str = "kernelshap", units: str = "edge",
                  task: str | None = None, target: Any = None, hops: int | None = None, undirected: Any = "auto",
                  baseline: Any = "zeros", feature_names: Sequence[str] | None = None,
                  return_type: str | None = None, output: str | None = None, removal: str | None = None,
                  budget: int | None = None, seed: int | None = 0, **method_params: Any) -> Explanation | list[Explanation]:
    """Explain a graph neural network's prediction for nodes of one graph or for whole graphs.

    Parameters
    ----------
    model : a PyTorch Geometric model, any callable taking a ``Data`` (``call="data"`` on a
        :class:`GraphModel`), or a :class:`GraphModel`.
    graph : a ``torch_geometric.data.Data`` (x, edge_index), or a list of them (graph task).
    index : node id(s) to explain (node task); None explains the graph(s).
    method : "kernelshap" (default), "lime", "shapley" (at most ``max_features`` units), "occlusion",
        "saliency", "integrated_gradients" (PyG models), "gnnexplainer", "pgexplainer".
    units : "edge" (default), "node" or "feature".
    task : "node" or "graph" (default: "node" when ``index`` is given).
    target : the class explained: None (the predicted class), an index, or one per explained item.
    hops : the model's receptive field (default: its number of MessagePassing layers).
    removal : "mask" (PyG's message masks; default for PyG models) or "delete" (drop the edges).
    seed : item i uses the random stream (seed, i).

    Returns one Explanation per explained node or graph (a single one for a single int / Data).
    Each has one feature per unit; ``params`` keep the units' edges or nodes (original ids), the
    explained node and the task for metrics, narratives, views and drawings.
    """
    from whybox.params import check

    t_all = time.perf_counter()
    key = _method(method)
    for name, v in (("seed", seed), ("budget", budget)):
        check(name, v)
    if task is None:
        task = (model.task if isinstance(model, GraphModel) else ("node" if index is not None else "graph"))
    m = as_graph_model(model, task=task, return_type=return_type, output=output, removal=removal, budget=budget)
    graphs, single = _items(graph, index, m.task)
    if hops is None:
        hops = m.hops
    elif isinstance(hops, bool) or not isinstance(hops, (int, np.integer)) or hops < 1:
        raise InputError(f"hops must be a positive integer, got {hops!r}")
    if hops is None and m.task == "node":
        raise InputError("hops is unknown for this model (no MessagePassing layers found): pass hops=, the number "
                         "of message-passing steps, so the explained node's computation subgraph is known")
    if key in MASKING_METHODS:
        recipe = recipes.get_recipe(key)
        params = recipe.check_params(method_params)
        run, neighbourhood, surrogate = recipe.run, recipe.neighbourhood, recipe.surrogate
    else:
        run = RUNS[key]
        from whybox.params import check_all

        params = {**recipes.accepted_params(run, key, "on graphs", method_params, skip=("state",)),
                  **check_all(method_params)}
        neighbourhood, surrogate = _TEXT[key]
    def contexts(items: list[tuple[Any, int | None]], tgt: Any, salt: int) -> list[GraphContext]:
        """One context per item; the model's outputs on each whole graph come from one call per graph
        (a node task reads every node's from it)."""
        out_ctx = []
        for i, (g, idx) in enumerate(items):
            if id(g) not in full:
                gx, gei = _graph_tensors(g)
                full[id(g)] = _all_outputs(m, gx, gei)
            fo = full[id(g)]
            if idx is not None and not 0 <= idx < len(fo):
                raise InputError(f"index must be a node id in 0..{len(fo) - 1}, got {idx}")
            row = fo[idx] if idx is not None else fo[0]
            u = build_units(g, kind=units, index=idx, hops=hops if idx is not None else None, undirected=undirected,
                            baseline=baseline, feature_names=feature_names, model=m, full_output=row)
            if u.d == 0:
                raise InputError(f"item {i} has no {units} units to explain (no edges near the node?)")
            out_ctx.append(GraphContext(m, u, 0, row[None, :1], recipes.item_rng(seed, salt + i)))
        fx = np.stack([full[id(g)][idx] if idx is not None else full[id(g)][0] for g, idx in items])
        for c, t, row in zip(out_ctx, resolve_targets("predicted" if tgt is None else tgt, fx, m.output_names), fx):
            c.target = int(t)
            c.targets = np.array([c.target], dtype=np.intp)
            c.fx = row[c.target:c.target + 1]
            c._seen[np.packbits(np.ones((1, c.d), bool), axis=1)[0].tobytes()] = float(c.fx[0])
        return out_ctx

    from whybox.graph.units import _graph_tensors
    from whybox.problem import resolve_targets

    full: dict[int, np.ndarray] = {}
    ctxs = contexts(graphs, target, 0)
    train_items = None
    if key in MASKING_METHODS:
        need = sum(recipes.cost_keeping_rng(recipe, c, params) for c in ctxs)
    else:
        if key == "pgexplainer":
            train_items = _training_items(graphs, params.pop("train_on"), m.task, seed)
        need = _model_cost(key, params, len(ctxs), 0 if train_items is None else len(train_items))
    m.require(need, what=f"method {key!r} on {len(ctxs)} graph item(s)")
    state = None
    if key == "pgexplainer":
        t0 = time.perf_counter()
        rows0, calls0 = m.n_rows, m.n_calls
        state = train_pgexplainer(contexts(train_items, None, 1 << 20),
                                  epochs=params["epochs"], lr=params["lr"],
                                  seed=int(seed) if isinstance(seed, (int, np.integer)) else 0)
        train_cost = (m.n_rows - rows0, m.n_calls - calls0, time.perf_counter() - t0)
    out = []
    for i, (ctx, (g, idx)) in enumerate(zip(ctxs, graphs)):
        t0 = time.perf_counter()
        rows0, calls0 = m.n_rows, m.n_calls
        res = run(ctx, **params, **({"state": state} if state is not None else {}))
        u = ctx.units
        info = {"neighbourhood": neighbourhood, "surrogate": surrogate, "representation": "graph", "units": u.kind,
                "task": m.task, "index": None if idx is None else int(idx), "removal": m.removal,
                "subgraph": u.subgraph, "graph_item": i, **{k: v for k, v in params.items()}, **(res.info or {})}
        if u.kind == "edge":
            info["unit_edges"] = u.unit_edges
            info["undirected"] = u.undirected
        elif u.kind == "node":
            info["unit_nodes"] = u.unit_nodes
        secs = time.perf_counter() - t0
        rows, calls = m.n_rows - rows0, m.n_calls - calls0
        if state is not None:                      # PGExplainer's training is shared out per explanation
            info["training_rows"], info["training_seconds"] = train_cost[0], train_cost[2]
            rows += train_cost[0] / len(ctxs)
            calls += train_cost[1] / len(ctxs)
            secs += train_cost[2] / len(ctxs)
        stderr = None if res.stderr is None else np.asarray(res.stderr).reshape(1, -1)
        out.append(Explanation(
            values=np.asarray(res.values, float).reshape(1, -1), base_values=np.asarray(res.base_values, float).reshape(1),
            predictions=ctx.fx, feature_names=list(u.labels), target=ctx.targets, method=key, params=info,
            seed=seed if isinstance(seed, (int, type(None))) else None, stderr=stderr, output_names=m.output_names,
            n_model_rows=int(round(rows)) + 1, n_model_calls=int(round(calls)) + (1 if i == 0 else 0),
            seconds=secs, row_ids=np.array([i])))
    if single:
        out[0].seconds = time.perf_counter() - t_all
        return out[0]
    return out


def _model_cost(key: str, params: dict[str, Any], n_items: int, n_train: int) -> int:
    """Graphs the gradient and PyG recipes evaluate, up front (the budget is checked before any call):
    one batched pass per item for saliency, steps + 1 for IG, one per epoch (+ the prediction) for
    GNNExplainer, two per training step (embeddings, masked prediction) and two per item for
    PGExplainer; plus each training item's subgraph check."""
    if key == "saliency":
        return n_items
    if key == "integrated_gradients":
        return n_items * (int(params["steps"]) + 1)
    if key == "gnnexplainer":
        return n_items * (int(params["epochs"]) + 2)
    return 2 * int(params["epochs"]) * n_train + 2 * n_items + 2 * n_train


def _training_items(graphs: list[tuple[Any, int | None]], train_on: Any, task: str, seed: Any
                    ) -> list[tuple[Any, int | None]]:
    """What PGExplainer trains on. Node task: ``train_on`` node ids, or an int n (default 32) of nodes
    drawn with the seed, independent of the explained nodes (so a node's values do not depend on
    which other nodes are in the call). Graph task: a list of graphs, default the explained ones
    (PGExplainer is amortised: its values then depend on that set; pass ``train_on`` to fix it)."""
    if task == "node":
        g = graphs[0][0]
        N = int(g.x.shape[0])
        if train_on is None or (isinstance(train_on, (int, np.integer)) and not isinstance(train_on, bool)):
            n = 32 if train_on is None else int(train_on)
            if n < 1:
                raise InputError(f"train_on must be a positive number of nodes or a list of node ids, got {train_on!r}")
            rng = np.random.default_rng([0 if seed is None else int(seed), 7919])
            return [(g, int(i)) for i in np.sort(rng.choice(N, size=min(n, N), replace=False))]
        ids = np.asarray(train_on).reshape(-1)
        if ids.size == 0 or not np.issubdtype(ids.dtype, np.integer):
            raise InputError(f"train_on must be a number of nodes or a list of node ids, got {train_on!r}")
        return [(g, int(i)) for i in ids]
    if train_on is None:
        return graphs
    if not isinstance(train_on, (list, tuple)) or not train_on:
        raise InputError("train_on must be a non-empty list of graphs for a graph task")
    return [(g, None) for g in train_on]


def _all_outputs(m: GraphModel, x: Any, ei: Any) -> np.ndarray:
    """Every node's outputs (node task: (N, k)) or the graph's ((1, k)) in one call."""
    torch = m.torch
    N = int(x.shape[0])
    with torch.no_grad():
        raw = m.forward(x, ei, torch.zeros(N, dtype=torch.long), 1)
        out = m.transform(raw).double().numpy()
    m.model_out_dim = int(raw.shape[-1])
    want = N if m.task == "node" else 1
    if out.shape[0] != want:
        from whybox.errors import ModelError

        raise ModelError(f"the {m.task}-level model returned {out.shape[0]} output rows for a graph of {N} nodes "
                         f"(expected {want}); is task={m.task!r} right?")
    if not np.isfinite(out).all():
        from whybox.errors import ModelError

        raise ModelError("the graph model returned NaN or inf")
    return out


def _items(graph: Any, index: Any, task: str) -> tuple[list[tuple[Any, int | None]], bool]:
    if task == "node":
        if isinstance(graph, (list, tuple)):
            raise InputError("a node task explains nodes of one graph: pass one Data and index=node id(s)")
        if index is None:
            raise InputError("index is required for a node task: the node id(s) to explain")
        if isinstance(index, (int, np.integer)) and not isinstance(index, bool):
            return [(graph, int(index))], True
        idx = np.asarray(index).reshape(-1)
        if idx.size == 0 or not np.issubdtype(idx.dtype, np.integer):
            raise InputError(f"index must be a node id or a sequence of node ids, got {index!r}")
        return [(graph, int(i)) for i in idx], False
    if index is not None:
        raise InputError("index is for node tasks; a graph task explains whole graphs (pass a list of Data)")
    if isinstance(graph, (list, tuple)):
        if not graph:
            raise InputError("graph is an empty list")
        return [(g, None) for g in graph], False
    return [(graph, None)], True

