"""A graph neural network as a batched, counted ``f(masked graphs) -> scores``.

:class:`GraphModel` wraps a PyTorch Geometric model (``model(x, edge_index[, batch])``) or any
callable taking a ``torch_geometric.data.Data``/``Batch``. Its one expensive operation is
:meth:`GraphModel.masked`: the model's outputs on m variants of one graph (edges kept or removed,
node features replaced), sent as one disjoint-union batch per chunk, one model call per chunk.

Two ways to remove an edge:

* ``removal="mask"`` (PyG models): every ``MessagePassing`` layer multiplies the edge's messages by
  its mask value (0 removes it), PyG's own ``set_masks`` hook, exactly as
  ``torch_geometric.explain.Explainer.get_masked_prediction`` does; degree normalisation still sees
  the edge. This is the removal PyG's explainers and metrics use.
* ``removal="delete"``: the edge is dropped from ``edge_index`` (any callable; GCN's normalisation
  then changes with the degrees).

torch and torch_geometric are imported lazily (``pip install 'whybox[graph]'``).
"""
from __future__ import annotations

import inspect
from typing import Any, Sequence

import numpy as np

from whybox.errors import BudgetError, InputError, MethodError, ModelError

TASKS = ("node", "graph")
OUTPUTS = ("probability", "raw")
RETURN_TYPES = ("raw", "log_probs", "probs")
REMOVALS = ("auto", "mask", "delete")
CALLS = ("auto", "xe", "data")
NODES_PER_CALL = 200_000          # default size of one batched call, in nodes


def need_graph() -> tuple[Any, Any]:
    """(torch, torch_geometric), or an error that names the extra to install."""
    try:
        import torch
        import torch_geometric
    except ImportError:
        raise InputError("graph explanations need torch and torch-geometric: pip install 'whybox[graph]'") from None
    return torch, torch_geometric


def _has_message_passing(model: Any) -> bool:
    torch, _ = need_graph()
    from torch_geometric.nn.conv import MessagePassing

    return isinstance(model, torch.nn.Module) and any(isinstance(m, MessagePassing) for m in model.modules())


def n_message_passing_layers(model: Any) -> int | None:
    """How many MessagePassing layers the model has (its receptive field in hops), None if unknown."""
    torch, _ = need_graph()
    if not isinstance(model, torch.nn.Module):
        return None
    from torch_geometric.nn.conv import MessagePassing

    n = sum(isinstance(m, MessagePassing) for m in model.modules())
    return n or None


class GraphModel:
    """A graph model that counts the graphs it is asked about.

    model : a torch module called ``model(x, edge_index)`` (node task) / ``model(x, edge_index, batch)``
        (graph task), or any callable taking a ``Data``/``Batch`` (``call="data"``).
    task : "node" (one output row per node; the explained node's row is read) or "graph".
    return_type : what the model returns, in PyG's words: "raw" (logits), "log_probs" or "probs".
    output : what is explained: "raw" (the model's own output, e.g. logits; default) or "probability"
        (softmax of logits, exp of log-probabilities; a saturated probability hides what a logit shows).
    removal : "auto" ("mask" for PyG message-passing models, else "delete"), "mask" or "delete".
    budget : most graphs evaluated in all (``BudgetError`` before any call that would exceed it).
    """

    def __init__(self, model: Any, *, task: str = "node", return_type: str = "raw", output: str = "raw",
                 removal: str = "auto", call: str = "auto", output_names: Sequence[str] | None = None,
                 budget: int | None = None, nodes_per_call: int = NODES_PER_CALL) -> None:
        torch, _ = need_graph()
        for name, v, allowed in (("task", task, TASKS), ("return_type", return_type, RETURN_TYPES),
                                 ("output", output, OUTPUTS), ("removal", removal, REMOVALS), ("call", call, CALLS)):
            if v not in allowed:
                raise InputError(f"{name} must be one of {list(allowed)}, got {v!r}")
        if not callable(model):
            raise InputError(f"model must be a torch module or a callable taking a graph, got {type(model).__name__}")
        from whybox.params import check

        self.budget = check("budget", budget)
        self.nodes_per_call = check("chunk_rows", nodes_per_call)
        self.model, self.task, self.return_type, self.output = model, task, return_type, output
        self.is_pyg = _has_message_passing(model)
        if removal == "auto":
            removal = "mask" if self.is_pyg else "delete"
        if removal == "mask" and not self.is_pyg:
            raise MethodError("removal='mask' needs a PyTorch Geometric model with MessagePassing layers "
                              "(its messages are masked); use removal='delete' for other callables")
        self.removal = removal
        if call == "auto":
            call = "xe" if isinstance(model, torch.nn.Module) and _takes_edge_index(model) else "data"
        self.call = call
        self.output_names = list(output_names) if output_names is not None else None
        self.hops = n_message_passing_layers(model)
        self.model_out_dim: int | None = None      # the raw output's width, known after the first call
        self.n_rows = 0          # graphs evaluated
        self.n_calls = 0
        self.torch = torch

    @property
    def name(self) -> str:
        return type(self.model).__name__

    @property
    def has_gradient(self) -> bool:
        return self.is_pyg and self.call == "xe"

    def require(self, n: int, *, what: str) -> None:
        if self.budget is not None and self.n_rows + n > self.budget:
            raise BudgetError(f"{what} needs {n:,} model rows (graphs); the budget allows "
                              f"{self.budget - self.n_rows:,} more (budget={self.budget:,})")

    # ----------------------------------------------------------------------------------- calls
    def forward(self, x: Any, edge_index: Any, batch: Any, n_graphs: int, edge_mask: Any = None) -> Any:
        """One model call on a (batched) graph, the mask hook set for its duration; raw torch output."""
        torch = self.torch
        if edge_mask is not None:
            from torch_geometric.explain.algorithm.utils import clear_masks, set_masks

            set_masks(self.model, edge_mask, edge_index, apply_sigmoid=False)
        try:
            if self.call == "xe":
                out = self.model(x, edge_index) if self.task == "node" else self.model(x, edge_index, batch)
            else:
                from torch_geometric.data import Data

                out = self.model(Data(x=x, edge_index=edge_index, batch=batch, num_graphs=n_graphs))
        except (TypeError, RuntimeError, ValueError, IndexError) as exc:
            raise ModelError(f"the graph model raised {type(exc).__name__}: {exc}") from exc
        finally:
            if edge_mask is not None:
                clear_masks(self.model)
        if not isinstance(out, torch.Tensor):
            out = torch.as_tensor(np.asarray(out, dtype=float))
        if out.dim() == 1:
            out = out[:, None]
        self.n_calls += 1
        self.n_rows += n_graphs
        return out

    def transform(self, out: Any) -> Any:
        """The explained output from the model's own (torch, differentiable)."""
        return out if self.output == "raw" else self.probabilities(out)

    def probabilities(self, out: Any) -> Any:
        """Class probabilities from the model's own output (per ``return_type``)."""
        if self.return_type == "probs":
            return out
        if out.shape[-1] == 1:
            p = out.sigmoid() if self.return_type == "raw" else out.exp()
            return self.torch.cat([1 - p, p], dim=-1)
        return out.softmax(dim=-1) if self.return_type == "raw" else out.exp()

    def predict(self, x: Any, edge_index: Any, index: int | None = None) -> np.ndarray:
        """The explained outputs on one graph: (k,) for the node ``index`` or the graph."""
        return self.masked(x, edge_index, None, None, index=index)[0]

    def masked(self, x: Any, edge_index: Any, keep: np.ndarray | None, X: np.ndarray | None, *,
               index: int | None = None, check: bool = True, raw: bool = False) -> np.ndarray:
        """Outputs on m variants of one graph: (m, k).

        keep : (m, E) edge mask values (bool or in [0, 1]) or None (every edge kept);
        X : (m, N, F) node features per variant or None (the graph's own); ``index`` the explained node.
        Variants go to the model as a disjoint union, one call per chunk of ``nodes_per_call`` nodes;
        ``raw``: the model's own outputs instead of the explained ones."""
        torch = self.torch
        N, E = int(x.shape[0]), int(edge_index.shape[1])
        m = 1 if keep is None and X is None else len(keep if keep is not None else X)
        per_call = max(1, self.nodes_per_call // max(N, 1))
        outs = []
        with torch.no_grad():
            for s in range(0, m, per_call):
                c = min(per_call, m - s)
                xb = (x.repeat(c, 1) if X is None else
                      torch.as_tensor(np.asarray(X[s:s + c]), dtype=x.dtype).reshape(c * N, -1))
                offs = (torch.arange(c) * N).repeat_interleave(E)
                eib = edge_index.repeat(1, c) + offs
                mask = None
                if keep is not None:
                    k = np.asarray(keep[s:s + c]).reshape(-1)
                    if self.removal == "mask":
                        mask = torch.as_tensor(k, dtype=x.dtype)
                    else:
                        eib = eib[:, torch.as_tensor(k.astype(bool))]
                batch = torch.arange(c).repeat_interleave(N)
                out = self.forward(xb, eib, batch, c, edge_mask=mask)
                if not raw:
                    out = self.transform(out)
                if self.task == "node":
                    if index is None:
                        raise InputError("a node-level model needs the index of the explained node")
                    out = out[torch.arange(c) * N + int(index)]
                elif out.shape[0] != c:
                    raise ModelError(f"the graph model returned {out.shape[0]} rows for a batch of {c} graphs; "
                                     "a graph-level model must pool per graph (use the batch vector)")
                outs.append(out.detach().double().cpu().numpy())
        V = np.concatenate(outs)
        if check and not np.isfinite(V).all():
            raise ModelError("the graph model returned NaN or inf")
        return V


def _takes_edge_index(model: Any) -> bool:
    try:
        return "edge_index" in inspect.signature(model.forward).parameters
    except (TypeError, ValueError):
        return False


def as_graph_model(model: Any, **kwargs: Any) -> GraphModel:
    if isinstance(model, GraphModel):
        bad = [k for k, v in kwargs.items() if v is not None and getattr(model, k, v) != v]
        if bad:
            raise InputError(f"the model is already a GraphModel; set {bad} when you build it, not here")
        return model
    return GraphModel(model, **{k: v for k, v in kwargs.items() if v is not None})
