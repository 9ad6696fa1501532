"""The interpretable units of a graph: its edges, its nodes or its node features.

For node classification the units live in the explained node's computation subgraph (its ``hops``-hop
neighbourhood, ``hops`` = the model's number of message-passing layers); the model is evaluated on
the (hops + 1)-hop induced subgraph, which gives the same output for such a model (checked once per
node: when the outputs differ the whole graph is used). A unit that is switched off is removed:

* edge: the edge (both directions of an undirected edge are one unit) is masked or deleted;
* node: its features are replaced by the baseline and its edges removed;
* feature: the feature column is replaced by the baseline on every node.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np

from whybox.errors import InputError

UNIT_KINDS = ("edge", "node", "feature")


@dataclass
class GraphUnits:
    kind: str
    x: Any                      # torch (N, F): the graph the model sees
    edge_index: Any             # torch (2, E)
    index: int | None           # explained node, in this graph's numbering (None: graph task)
    nodes: np.ndarray           # (N,) original node ids
    edge_ids: np.ndarray        # (E,) positions in the original edge_index
    unit_of: np.ndarray         # edge units: (E,) unit per edge, -1 for edges that are never removed;
                                # node units: (N,) unit per node (-1: never removed); features: (F,)
    labels: list[str]
    baseline: np.ndarray        # (F,) feature values of a removed node / feature
    unit_edges: list[list[int]] = field(default_factory=list)   # edge units: [u, v] in original ids
    unit_nodes: list[int] = field(default_factory=list)         # node units: original ids
    subgraph: bool = False
    undirected: bool = False

    @property
    def d(self) -> int:
        return len(self.labels)

    @property
    def n_nodes(self) -> int:
        return int(self.x.shape[0])

    def members(self) -> np.ndarray:
        """(d, E) for edges, (d, N) for nodes, (d, F) for features: 1 where the item is in the unit."""
        A = np.zeros((self.d, len(self.unit_of)))
        on = self.unit_of >= 0
        A[self.unit_of[on], np.flatnonzero(on)] = 1.0
        return A

    def variants(self, Z: np.ndarray) -> tuple[np.ndarray | None, np.ndarray | None]:
        """Masks Z (m, d) -> (edge keep (m, E) or None, node features (m, N, F) or None)."""
        Z = np.asarray(Z, bool)
        m = len(Z)
        on = np.concatenate([Z, np.ones((m, 1), bool)], axis=1)     # unit -1 -> the always-on column
        if self.kind == "edge":
            return on[:, self.unit_of], None
        x = self.x.detach().cpu().numpy().astype(np.float64)
        if self.kind == "node":
            node_on = on[:, self.unit_of]                                       # (m, N)
            ei = self.edge_index.cpu().numpy()
            keep = node_on[:, ei[0]] & node_on[:, ei[1]]
            X = np.where(node_on[:, :, None], x[None], self.baseline[None, None, :])
            return keep, X
        col_on = on[:, self.unit_of]                                            # (m, F)
        X = np.where(col_on[:, None, :], x[None], self.baseline[None, None, :])
        return None, X


def _is_undirected(ei: np.ndarray) -> bool:
    fwd = set(zip(ei[0].tolist(), ei[1].tolist()))
    return all((v, u) in fwd for u, v in fwd)


def _baseline(x: np.ndarray, baseline: Any) -> np.ndarray:
    F = x.shape[1]
    if baseline in (None, "zeros"):
        return np.zeros(F)
    if baseline == "mean":
        return x.mean(axis=0)
    b = np.asarray(baseline, dtype=float).reshape(-1)
    if b.shape != (F,) or not np.isfinite(b).all():
        raise InputError(f"baseline must be 'zeros', 'mean' or {F} finite feature values, got shape {b.shape}")
    return b


def build_units(graph: Any, *, kind: str, index: int | None, hops: int | None, undirected: Any = "auto",
                baseline: Any = "zeros", feature_names: Sequence[str] | None = None,
                model: Any = None, full_output: np.ndarray | None = None) -> GraphUnits:
    """The units of ``graph`` (a ``Data`` with ``x`` and ``edge_index``) around node ``index``
    (node task) or of the whole graph (``index=None``). ``full_output``: the model's outputs for the
    node on the whole graph, to check the subgraph against (computed when not given)."""
    if kind not in UNIT_KINDS:
        raise InputError(f"units must be one of {list(UNIT_KINDS)}, got {kind!r}")
    x, ei = _graph_tensors(graph)
    N, F = int(x.shape[0]), int(x.shape[1])
    ei_np = ei.cpu().numpy()
    if undirected == "auto":
        undirected = _is_undirected(ei_np)
    elif not isinstance(undirected, bool):
        raise InputError(f"undirected must be 'auto', True or False, got {undirected!r}")
    nodes = np.arange(N)
    edge_ids = np.arange(ei.shape[1])
    sub = False
    inner = np.ones(N, bool)               # nodes whose units exist (within `hops` of the explained node)
    if index is not None:
        from torch_geometric.utils import k_hop_subgraph

        if isinstance(index, bool) or not isinstance(index, (int, np.integer)) or not 0 <= int(index) < N:
            raise InputError(f"index must be a node id in 0..{N - 1}, got {index!r}")
        if hops is None:
            raise InputError("hops is unknown for this model (no MessagePassing layers found): pass hops=, the "
                             "number of message-passing steps, so the explained node's computation subgraph is known")
        index = int(index)
        near, _, _, _ = k_hop_subgraph(index, hops, ei, num_nodes=N)
        subset, sub_ei, mapping, emask = k_hop_subgraph(index, hops + 1, ei, relabel_nodes=True, num_nodes=N)
        if model is not None and full_output is None:
            full_output = model.predict(x, ei, index=index)
        if model is not None and np.allclose(model.predict(x[subset], sub_ei, index=int(mapping[0])), full_output,
                                             rtol=1e-5, atol=1e-6):
            nodes = subset.cpu().numpy()
            edge_ids = np.flatnonzero(emask.cpu().numpy())
            x, ei, index = x[subset], sub_ei, int(mapping[0])
            ei_np = ei.cpu().numpy()
            sub = True
        elif model is not None:
            warnings.warn("the model's output on the explained node's (hops+1)-hop subgraph differs from its output "
                          "on the whole graph (is hops right?); the whole graph is evaluated", stacklevel=4)
        near_set = np.isin(nodes, near.cpu().numpy())
        inner = near_set
    base = _baseline(x.detach().cpu().numpy().astype(float), baseline)
    if kind == "edge":
        src, dst = ei_np
        ok = inner[src] & inner[dst]
        keys = np.where(undirected, np.minimum(src, dst) * (N + 1) + np.maximum(src, dst), src * (N + 1) + dst)
        uniq, unit = np.unique(keys[ok], return_inverse=True)
        unit_of = np.full(len(src), -1)
        unit_of[ok] = unit
        pairs = [[int(nodes[k // (N + 1)]), int(nodes[k % (N + 1)])] for k in uniq]
        sep = "-" if undirected else "->"
        labels = [f"{u}{sep}{v}" for u, v in pairs]
        return GraphUnits(kind, x, ei, index, nodes, edge_ids, unit_of, labels, base, unit_edges=pairs, subgraph=sub,
                          undirected=bool(undirected))
    if kind == "node":
        unit_of = np.full(len(nodes), -1)
        unit_of[inner] = np.arange(int(inner.sum()))
        ids = [int(v) for v in nodes[inner]]
        return GraphUnits(kind, x, ei, index, nodes, edge_ids, unit_of, [f"node {v}" for v in ids], base,
                          unit_nodes=ids, subgraph=sub)
    names = list(feature_names) if feature_names is not None else [f"x{j}" for j in range(F)]
    if len(names) != F:
        raise InputError(f"feature_names has {len(names)} names for {F} node features")
    return GraphUnits(kind, x, ei, index, nodes, edge_ids, np.arange(F), [str(n) for n in names], base, subgraph=sub)


def _graph_tensors(graph: Any) -> tuple[Any, Any]:
    import torch

    x = getattr(graph, "x", None)
    ei = getattr(graph, "edge_index", None)
    if x is None or ei is None:
        raise InputError("graph must be a torch_geometric Data with x (node features) and edge_index")
    x = torch.as_tensor(x)
    if not torch.is_floating_point(x):
        x = x.float()
    ei = torch.as_tensor(ei, dtype=torch.long)
    if x.dim() != 2 or ei.dim() != 2 or ei.shape[0] != 2:
        raise InputError(f"graph.x must be (nodes, features) and edge_index (2, edges); got {tuple(x.shape)} and "
                         f"{tuple(ei.shape)}")
    if ei.numel() and (int(ei.min()) < 0 or int(ei.max()) >= x.shape[0]):
        raise InputError("graph.edge_index refers to nodes that graph.x does not have")
    if not torch.isfinite(x).all():
        raise InputError("graph.x has NaN or inf node features")
    return x, ei

