"""Graph data sets generated in code (nothing downloads), with their ground-truth motifs.

* :func:`ba_shapes`: node classification, PyG's ``ExplainerDataset`` (a Barabási-Albert graph with
  house motifs attached; label 0 = base node, 1-3 = the house's top, middle and bottom nodes), as in
  GNNExplainer's BA-Shapes; constant node features.
* :func:`ba_motifs`: graph classification (BA-2Motifs, as in PGExplainer): small BA trees, each with
  one motif attached: a house (class 1) or a 5-cycle (class 0).
* :func:`infection`: PyG's ``InfectionDataset`` (node classification: the shortest-path length to an
  infected node; the explanation is that path).

Every graph carries ``edge_mask`` / ``node_mask`` (1 on the motif) for ground-truth metrics. Same
seed, same graphs (torch's generator is seeded inside, the caller's is left as it was).
"""
from __future__ import annotations

from contextlib import contextmanager
from typing import Any

import numpy as np

from whybox.errors import InputError
from whybox.graph.model import need_graph


@contextmanager
def _seeded_rngs(seed: int):
    """torch's and numpy's global generators (PyG's generators draw from both) seeded for the block,
    then put back as they were."""
    torch, _ = need_graph()
    state = np.random.get_state()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        np.random.seed(seed % 2 ** 32)
        try:
            yield
        finally:
            np.random.set_state(state)


def _seeded(seed: int):
    from whybox.params import check

    seed = check("seed", seed)
    if seed is None or isinstance(seed, np.random.Generator):
        raise InputError("seed must be an integer for generated graph data (same seed, same graphs)")
    return _seeded_rngs(int(seed)), int(seed)


def ba_shapes(*, num_nodes: int = 300, num_motifs: int = 80, num_edges: int = 5, n_features: int = 10,
              seed: int = 0) -> Any:
    """BA-Shapes: one ``Data`` with x (constant features), edge_index, y, edge_mask, node_mask."""
    torch, _ = need_graph()
    from torch_geometric.data import Data
    from torch_geometric.datasets import ExplainerDataset
    from torch_geometric.datasets.graph_generator import BAGraph

    for name, v, lo in (("num_nodes", num_nodes, 5), ("num_motifs", num_motifs, 1), ("num_edges", num_edges, 1),
                        ("n_features", n_features, 1)):
        if isinstance(v, bool) or not isinstance(v, int) or v < lo:
            raise InputError(f"{name} must be an integer >= {lo}, got {v!r}")
    ctx, seed = _seeded(seed)
    with ctx:
        g = ExplainerDataset(graph_generator=BAGraph(num_nodes=num_nodes, num_edges=num_edges),
                             motif_generator="house", num_motifs=num_motifs)[0]
    N = int(g.y.shape[0])
    return Data(x=torch.ones(N, n_features), edge_index=g.edge_index, y=g.y, edge_mask=g.edge_mask.float(),
                node_mask=g.node_mask.float())


def ba_motifs(*, n_graphs: int = 200, num_nodes: int = 20, n_features: int = 10, seed: int = 0) -> list[Any]:
    """BA-2Motifs: ``n_graphs`` graphs (half houses, label 1; half 5-cycles, label 0), shuffled."""
    torch, _ = need_graph()
    from torch_geometric.data import Data
    from torch_geometric.datasets import ExplainerDataset
    from torch_geometric.datasets.graph_generator import BAGraph
    from torch_geometric.datasets.motif_generator import CycleMotif, HouseMotif

    if isinstance(n_graphs, bool) or not isinstance(n_graphs, int) or n_graphs < 2:
        raise InputError(f"n_graphs must be an integer >= 2, got {n_graphs!r}")
    ctx, seed = _seeded(seed)
    out = []
    with ctx:
        half = n_graphs // 2
        for label, motif, n in ((1, HouseMotif(), half), (0, CycleMotif(5), n_graphs - half)):
            ds = ExplainerDataset(graph_generator=BAGraph(num_nodes=num_nodes, num_edges=1), motif_generator=motif,
                                  num_motifs=1, num_graphs=n)
            for g in ds:
                N = int(g.node_mask.shape[0])
                out.append(Data(x=torch.ones(N, n_features), edge_index=g.edge_index, y=torch.tensor([label]),
                                edge_mask=g.edge_mask.float(), node_mask=g.node_mask.float()))
        order = torch.randperm(len(out)).tolist()
    return [out[i] for i in order]


def infection(*, num_nodes: int = 300, max_path_length: int = 3, num_infected_nodes: int = 50, seed: int = 0) -> Any:
    """PyG's InfectionDataset on an Erdős-Rényi graph: one ``Data`` (x: infected flag, y: path length)."""
    torch, _ = need_graph()
    from torch_geometric.datasets import InfectionDataset
    from torch_geometric.datasets.graph_generator import ERGraph

    ctx, seed = _seeded(seed)
    with ctx:
        g = InfectionDataset(graph_generator=ERGraph(num_nodes=num_nodes, edge_prob=0.004),
                             num_infected_nodes=num_infected_nodes, max_path_length=max_path_length)[0]
    g.edge_mask = g.edge_mask.float()
    return g
