"""Graph explanation metrics, defined exactly as ``torch_geometric.explain.metric`` defines them.

* :func:`fidelity` (GraphFramEx, Amara et al. 2022): fid+ = how often the prediction changes when the
  explanation is removed (the complement mask 1 - m is applied), fid- = how often it changes when
  only the explanation is kept (mask m); "model" explanations compare with the model's prediction,
  "phenomenon" explanations with the true label.
* :func:`characterization_score`: the weighted harmonic mean of fid+ and 1 - fid-.
* :func:`unfaithfulness` (GEF, Agarwal et al. 2023): 1 - exp(-KL) between the prediction's class
  probabilities on the graph and on the masked graph (PyG computes
  ``kl_div(p_graph.log(), p_masked, reduction="batchmean")``; the same here).
* :func:`groundtruth_metrics`: accuracy, recall, precision, F1 and AUROC of an explanation mask
  against the known motif, as torchmetrics' binary metrics compute them (a mask with values
  outside [0, 1] is passed through a sigmoid first; thresholded with ``> threshold``).

Masks are applied as PyG applies them: node features multiplied by the node mask, edge messages
multiplied by the edge mask (``removal="mask"``); for a black box (``removal="delete"``) edge
masks must be 0/1 and an edge with mask 0 is deleted.

:func:`explanation_masks` turns a whybox graph Explanation into such masks over the whole graph:
signed attributions are ranked by magnitude (an edge the decision depends on, in either direction),
soft masks are |value| / max |value|, ``top_k`` keeps the k largest units as 1.
"""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from whybox.core.explanation import Explanation
from whybox.errors import InputError, MethodError
from whybox.graph.model import GraphModel

KINDS = ("model", "phenomenon")
GT_METRICS = ("accuracy", "recall", "precision", "f1_score", "auroc")


def _np(a: Any) -> np.ndarray | None:
    if a is None:
        return None
    if hasattr(a, "detach"):
        a = a.detach().cpu().numpy()
    return np.asarray(a, dtype=np.float64)


def _masked_raw(model: GraphModel, graph: Any, edge_mask: np.ndarray | None, node_mask: np.ndarray | None,
                index: Any) -> np.ndarray:
    """The model's own outputs with the masks applied: (len(index), k) for nodes, (1, k) for a graph."""
    from whybox.graph.units import _graph_tensors

    x, ei = _graph_tensors(graph)
    X = None
    if node_mask is not None:
        X = (x.detach().double().numpy() * node_mask)[None]
    keep = None
    if edge_mask is not None:
        if edge_mask.shape != (ei.shape[1],):
            raise InputError(f"edge_mask must have one value per edge ({ei.shape[1]}), got shape {edge_mask.shape}")
        if model.removal == "delete" and not np.isin(edge_mask, (0.0, 1.0)).all():
            raise MethodError("removal='delete' can apply hard (0/1) edge masks only; pass top_k= or use a "
                              "PyG model (removal='mask')")
        keep = edge_mask[None]
    if model.task == "graph":
        return model.masked(x, ei, keep, X, raw=True)
    idx = _indices(index)
    return np.concatenate([model.masked(x, ei, keep, X, index=i, raw=True) for i in idx])


def _indices(index: Any) -> list[int]:
    if index is None:
        raise InputError("index is required for a node-level model: the explained node(s)")
    return [int(i) for i in np.asarray(index).reshape(-1)]


def _labels(model: GraphModel, out: np.ndarray) -> np.ndarray:
    """PyG's Explainer.get_target: argmax, or (for one output) > 0 on raw / > 0.5 on probabilities."""
    if out.shape[-1] == 1:
        if model.return_type == "raw":
            return (out[:, 0] > 0).astype(int)
        if model.return_type == "probs":
            return (out[:, 0] > 0.5).astype(int)
        raise InputError("a single log-probability output has no binary decision rule (PyG raises too)")
    return out.argmax(axis=-1)


def fidelity(model: GraphModel, graph: Any, *, edge_mask: Any = None, node_mask: Any = None, index: Any = None,
             target: Any = None, kind: str = "model") -> tuple[float, float]:
    """(fid+, fid-) of an explanation given as masks over the whole graph (PyG's ``fidelity``)."""
    if kind not in KINDS:
        raise InputError(f"kind must be one of {list(KINDS)}, got {kind!r}")
    em, nm = _np(edge_mask), _np(node_mask)
    y_hat = _labels(model, _masked_raw(model, graph, None, None, index))
    exp_hat = _labels(model, _masked_raw(model, graph, em, nm, index))
    comp_hat = _labels(model, _masked_raw(model, graph, None if em is None else 1.0 - em,
                                          None if nm is None else 1.0 - nm, index))
    if kind == "model":
        return float(1.0 - np.mean(comp_hat == y_hat)), float(1.0 - np.mean(exp_hat == y_hat))
    if target is None:
        raise InputError("kind='phenomenon' compares with the true labels: pass target=")
    y = np.asarray(_np(target)).reshape(-1).astype(int)
    if model.task == "node" and len(y) != len(y_hat):
        y = y[_indices(index)]
    return (float(np.mean(np.abs((y_hat == y).astype(float) - (comp_hat == y)))),
            float(np.mean(np.abs((y_hat == y).astype(float) - (exp_hat == y)))))


def characterization_score(pos_fidelity: float, neg_fidelity: float, pos_weight: float = 0.5,
                           neg_weight: float = 0.5) -> float:
    """GraphFramEx's characterization: 1 / (w+ / fid+ + w- / (1 - fid-))."""
    if pos_weight + neg_weight != 1.0:
        raise InputError(f"pos_weight and neg_weight must sum to 1, got {pos_weight} and {neg_weight}")
    if pos_fidelity <= 0 or neg_fidelity >= 1:
        return 0.0            # the harmonic mean's limit (PyG divides by zero: inf denominator -> 0)
    return float(1.0 / (pos_weight / pos_fidelity + neg_weight / (1.0 - neg_fidelity)))


def unfaithfulness(model: GraphModel, graph: Any, *, edge_mask: Any = None, node_mask: Any = None,
                   index: Any = None, top_k: int | None = None, convention: str = "pyg") -> float:
    """GEF = 1 - exp(-KL) between class probabilities on the graph and on the masked graph.

    ``convention="pyg"`` (default) is PyG's number: ``kl_div(..., reduction="batchmean")`` divides by
    the first dimension, which for one node given as an int index is the number of classes (the
    prediction is then a 1-D vector); ``"paper"`` is GEF's own KL per explained item, averaged."""
    if convention not in ("pyg", "paper"):
        raise InputError(f"convention must be 'pyg' or 'paper', got {convention!r}")
    em, nm = _np(edge_mask), _np(node_mask)
    if nm is not None and top_k is not None:
        if isinstance(top_k, bool) or not isinstance(top_k, (int, np.integer)) or top_k < 1:
            raise InputError(f"top_k must be a positive integer or None, got {top_k!r}")
        imp = nm.sum(axis=0)
        keep = np.argsort(-imp, kind="stable")[:top_k]
        nm = np.zeros_like(nm)
        nm[..., keep] = 1.0
    torch = model.torch
    y = model.probabilities(torch.as_tensor(_masked_raw(model, graph, None, None, index))).numpy()
    y_hat = model.probabilities(torch.as_tensor(_masked_raw(model, graph, em, nm, index))).numpy()
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(y_hat > 0, y_hat * (np.log(y_hat) - np.log(y)), 0.0)
    one_node = model.task == "node" and np.ndim(index) == 0
    kl = float(terms.sum() / (y.shape[-1] if convention == "pyg" and one_node else len(y)))
    return float(1.0 - np.exp(-kl))


def _sigmoid_if_logits(p: np.ndarray) -> np.ndarray:
    if ((p < 0) | (p > 1)).any():
        return 1.0 / (1.0 + np.exp(-p))
    return p


def groundtruth_metrics(pred_mask: Any, target_mask: Any, metrics: str | Sequence[str] | None = None,
                        threshold: float = 0.5) -> float | tuple[float, ...]:
    """The explanation mask against the ground-truth mask (PyG's ``groundtruth_metrics``)."""
    p = np.asarray(_np(pred_mask)).reshape(-1)
    t = (np.asarray(_np(target_mask)).reshape(-1) >= threshold)
    if p.shape != t.shape:
        raise InputError(f"pred_mask has {p.size} values, target_mask {t.size}")
    if metrics is None:
        metrics = list(GT_METRICS)
    if isinstance(metrics, str):
        metrics = [metrics]
    bad = [m for m in metrics if m not in GT_METRICS]
    if bad:
        raise InputError(f"unknown metric(s) {bad}; choose from {list(GT_METRICS)}")
    p = _sigmoid_if_logits(p)
    hard = p > threshold
    tp, fp = float((hard & t).sum()), float((hard & ~t).sum())
    fn, tn = float((~hard & t).sum()), float((~hard & ~t).sum())
    out = []
    for m in metrics:
        if m == "accuracy":
            out.append((tp + tn) / max(len(t), 1))
        elif m == "recall":
            out.append(tp / (tp + fn) if tp + fn else 0.0)
        elif m == "precision":
            out.append(tp / (tp + fp) if tp + fp else 0.0)
        elif m == "f1_score":
            out.append(2 * tp / (2 * tp + fp + fn) if tp else 0.0)
        else:
            out.append(auroc(p, t))
    return tuple(out) if len(out) > 1 else out[0]


def auroc(scores: Any, truth: Any) -> float:
    """Area under the ROC curve (ties count one half), or an error when one class is missing."""
    s = np.asarray(_np(scores)).reshape(-1)
    t = np.asarray(truth).reshape(-1).astype(bool)
    n_pos, n_neg = int(t.sum()), int((~t).sum())
    if n_pos == 0 or n_neg == 0:
        raise InputError("AUROC needs both motif and non-motif items among the explained units")
    from scipy.stats import rankdata

    r = rankdata(s)
    return float((r[t].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


# --------------------------------------------------------------------------- whybox explanations
def _check_graph_exp(exp: Explanation) -> dict[str, Any]:
    if not isinstance(exp, Explanation) or exp.params.get("representation") != "graph":
        raise InputError("expected a whybox graph Explanation (from whybox.explain_graph)")
    if len(exp) != 1:
        raise InputError("a graph Explanation covers one node or one graph")
    return exp.params


def unit_importance(exp: Explanation) -> np.ndarray:
    """|value| per unit: how much the decision depends on the unit, in either direction."""
    _check_graph_exp(exp)
    v = np.abs(np.asarray(exp.values[0], float))
    return v


def explanation_masks(exp: Explanation, graph: Any, *, top_k: int | None = None) -> tuple[np.ndarray | None,
                                                                                        np.ndarray | None]:
    """(edge_mask (E,), node_mask (N, F)) over the whole graph from a graph Explanation.

    Soft (``top_k=None``): |value| / max |value| per unit; ``top_k``: the k largest units 1, the
    rest 0. Edges and nodes that are not units get 0 (outside a node's computation subgraph they do
    not reach it). Feature units give a node mask of shape (N, F) with one value per column."""
    from whybox.graph.units import _graph_tensors

    p = _check_graph_exp(exp)
    imp = unit_importance(exp)
    if top_k is not None:
        if isinstance(top_k, bool) or not isinstance(top_k, (int, np.integer)) or top_k < 1:
            raise InputError(f"top_k must be a positive integer or None, got {top_k!r}")
        m = np.zeros_like(imp)
        m[np.argsort(-imp, kind="stable")[:top_k]] = 1.0
    else:
        mx = imp.max()
        m = imp / mx if mx > 0 else np.zeros_like(imp)
    x, ei = _graph_tensors(graph)
    N, F = int(x.shape[0]), int(x.shape[1])
    if p["units"] == "edge":
        src, dst = ei.cpu().numpy()
        lookup = {}
        for j, (u, v) in enumerate(p["unit_edges"]):
            lookup[(u, v)] = j
            if p.get("undirected"):
                lookup[(v, u)] = j
        em = np.array([m[lookup[(a, b)]] if (a, b) in lookup else 0.0 for a, b in zip(src.tolist(), dst.tolist())])
        return em, None
    if p["units"] == "node":
        nm = np.zeros((N, 1))
        nm[np.asarray(p["unit_nodes"], int), 0] = m
        return None, nm
    return None, np.broadcast_to(m[None, :], (N, F)).copy()


def motif_auroc(exp: Explanation, graph: Any) -> float:
    """AUROC of the units' |values| against the graph's ground-truth ``edge_mask`` / ``node_mask``
    (a unit is in the motif when any of its edges is), over the explained units."""
    p = _check_graph_exp(exp)
    imp = unit_importance(exp)
    if p["units"] == "edge":
        gt_mask = getattr(graph, "edge_mask", None)
        if gt_mask is None:
            raise InputError("the graph has no ground-truth edge_mask")
        gt = np.asarray(_np(gt_mask)) > 0
        src, dst = graph.edge_index.cpu().numpy()
        on = {(int(a), int(b)) for a, b, g in zip(src, dst, gt) if g}
        truth = np.array([(u, v) in on or (v, u) in on for u, v in p["unit_edges"]])
    elif p["units"] == "node":
        gt_mask = getattr(graph, "node_mask", None)
        if gt_mask is None:
            raise InputError("the graph has no ground-truth node_mask")
        truth = (np.asarray(_np(gt_mask)).reshape(-1) > 0)[np.asarray(p["unit_nodes"], int)]
    else:
        raise InputError("feature units have no motif ground truth")
    return auroc(imp, truth)


def graph_scores(model: GraphModel, graph: Any, exp: Explanation, *, top_k: int | None = None,
                 kind: str = "model") -> dict[str, float]:
    """fid+, fid-, characterization, unfaithfulness (and the motif AUROC when the graph has one) of
    one explanation, its masks from :func:`explanation_masks`."""
    p = _check_graph_exp(exp)
    em, nm = explanation_masks(exp, graph, top_k=top_k)
    index = p.get("index")
    fp, fm = fidelity(model, graph, edge_mask=em, node_mask=nm, index=index, kind=kind,
                      target=getattr(graph, "y", None) if kind == "phenomenon" else None)
    out = {"fid_plus": fp, "fid_minus": fm, "characterization": characterization_score(fp, fm),
           "unfaithfulness": unfaithfulness(model, graph, edge_mask=em, node_mask=nm, index=index)}
    if p["units"] in ("edge", "node") and getattr(graph, f"{p['units']}_mask", None) is not None:
        try:
            out["auroc"] = motif_auroc(exp, graph)
        except InputError:
            pass
    return out
