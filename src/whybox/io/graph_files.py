"""Reading graphs and GNNs from files for the command line, safely by default.

* a graph file (``.pt``) holding a dict of tensors (``x``, ``edge_index``, optional ``y``,
  ``edge_mask``, ``node_mask``) loads with ``torch.load(weights_only=True)``: no code runs;
* a pickled ``Data`` object or a whole saved model (``torch.save(model)``) runs code when loaded and
  needs ``trust_pickle=True`` (the CLI's ``--trust-pickle``).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from whybox.errors import InputError

BUILTIN_GRAPHS = ("ba-shapes", "ba-motifs")


def load_graph(spec: str, *, trust_pickle: bool = False, seed: int = 0) -> tuple[Any, str]:
    """(graph or list of graphs, task) from a built-in name or a .pt file."""
    from whybox.graph import ba_motifs, ba_shapes
    from whybox.graph.model import need_graph

    if spec == "ba-shapes":
        return ba_shapes(seed=seed), "node"
    if spec == "ba-motifs":
        return ba_motifs(seed=seed), "graph"
    torch, _ = need_graph()
    from torch_geometric.data import Data

    path = Path(spec)
    if not path.is_file():
        raise InputError(f"graph not found: {spec} (use a .pt file or one of {list(BUILTIN_GRAPHS)})")
    try:
        obj = torch.load(path, weights_only=True, map_location="cpu")
    except Exception as exc:  # noqa: BLE001 - torch raises UnpicklingError/RuntimeError on pickled objects
        if not trust_pickle:
            raise InputError(f"{path} is not a plain dict of tensors; loading it would run code from the file. "
                             "Save {'x': ..., 'edge_index': ...} instead, or pass --trust-pickle if you trust it") from exc
        obj = torch.load(path, weights_only=False, map_location="cpu")
    if isinstance(obj, dict):
        if "x" not in obj or "edge_index" not in obj:
            raise InputError(f"{path} must hold 'x' and 'edge_index' tensors, got keys {sorted(obj)}")
        obj = Data(**{k: v for k, v in obj.items() if k in ("x", "edge_index", "y", "edge_mask", "node_mask")})
    if isinstance(obj, (list, tuple)):
        return list(obj), "graph"
    if not hasattr(obj, "edge_index"):
        raise InputError(f"{path} holds a {type(obj).__name__}, not a graph")
    return obj, "node"


def load_gnn(path: str | Path, *, trust_pickle: bool = False) -> Any:
    """A whole torch module saved with ``torch.save(model)`` (pickle: only with trust_pickle)."""
    from whybox.graph.model import need_graph

    torch, _ = need_graph()
    path = Path(path)
    if not path.is_file():
        raise InputError(f"model not found: {path}")
    if not trust_pickle:
        raise InputError(f"{path} is a pickled torch model: loading it runs code from the file. Pass --trust-pickle "
                         "if you trust it, or leave --model out to train the built-in GNN on the data")
    model = torch.load(path, weights_only=False, map_location="cpu")
    if not isinstance(model, torch.nn.Module):
        raise InputError(f"{path} holds a {type(model).__name__}, not a torch module")
    return model.eval()
