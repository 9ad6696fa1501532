"""Small GNNs to explain, trained offline in seconds: a GraphConv node classifier (BA-Shapes) and a GIN
graph classifier (BA-2Motifs). Same data, sizes and seed: the same weights (CPU)."""
from __future__ import annotations

from typing import Any, Sequence

from whybox.errors import InputError
from whybox.graph.model import need_graph


def _modules():
    torch, _ = need_graph()
    from torch_geometric.nn import GINConv, GraphConv, global_add_pool

    class GNNNode(torch.nn.Module):
        """``layers`` GraphConv layers (sum aggregation, ReLU) and a linear head on the concatenated
        layer outputs (the GNNExplainer paper's BA-Shapes architecture, with GraphConv for GCNConv:
        with constant features sum aggregation sees degrees); returns logits per node."""

        def __init__(self, n_features: int, n_classes: int, hidden: int = 20, layers: int = 3) -> None:
            super().__init__()
            self.convs = torch.nn.ModuleList(
                [GraphConv(n_features if i == 0 else hidden, hidden) for i in range(layers)])
            self.head = torch.nn.Linear(hidden * layers, n_classes)

        def forward(self, x, edge_index):
            hs = []
            for conv in self.convs:
                x = torch.relu(conv(x, edge_index))
                hs.append(x)
            return self.head(torch.cat(hs, dim=-1))

    class GINGraph(torch.nn.Module):
        """GIN layers (sum aggregation, two-layer MLPs), the sum over nodes of every layer's output
        (GIN's readout), a two-layer head; returns logits per graph."""

        def __init__(self, n_features: int, n_classes: int, hidden: int = 20, layers: int = 3) -> None:
            super().__init__()

            def mlp(i: int, o: int):
                return torch.nn.Sequential(torch.nn.Linear(i, o), torch.nn.ReLU(), torch.nn.Linear(o, o))

            self.convs = torch.nn.ModuleList(
                [GINConv(mlp(n_features if i == 0 else hidden, hidden)) for i in range(layers)])
            self.head = torch.nn.Sequential(torch.nn.Linear(hidden * layers, hidden), torch.nn.ReLU(),
                                            torch.nn.Linear(hidden, n_classes))

        def forward(self, x, edge_index, batch=None):
            if batch is None:
                batch = torch.zeros(x.shape[0], dtype=torch.long, device=x.device)
            hs = []
            for conv in self.convs:
                x = torch.relu(conv(x, edge_index))
                hs.append(global_add_pool(x, batch))
            return self.head(torch.cat(hs, dim=-1))

    return torch, GNNNode, GINGraph


def _epochs(v: Any) -> int:
    if isinstance(v, bool) or not isinstance(v, int) or v < 1:
        raise InputError(f"epochs must be a positive integer, got {v!r}")
    return v


def train_node_classifier(data: Any, *, hidden: int = 20, layers: int = 3, epochs: int = 300, lr: float = 0.005,
                          train_fraction: float = 0.8, seed: int = 0) -> tuple[Any, dict[str, float]]:
    """A GraphConv GNN trained on ``data.y`` (full batch, Adam): (model in eval mode, {"train_acc", "test_acc"})."""
    torch, GNNNode, _ = _modules()
    epochs = _epochs(epochs)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        n_classes = int(data.y.max()) + 1
        model = GNNNode(data.x.shape[1], n_classes, hidden, layers)
        N = data.y.shape[0]
        perm = torch.randperm(N)
        tr = perm[: int(train_fraction * N)]
        te = perm[int(train_fraction * N):]
        opt = torch.optim.Adam(model.parameters(), lr=lr)
        for _ in range(epochs):
            model.train()
            opt.zero_grad()
            loss = torch.nn.functional.cross_entropy(model(data.x, data.edge_index)[tr], data.y[tr])
            loss.backward()
            opt.step()
    model.eval()
    with torch.no_grad():
        pred = model(data.x, data.edge_index).argmax(-1)
    return model, {"train_acc": float((pred[tr] == data.y[tr]).float().mean()),
                   "test_acc": float((pred[te] == data.y[te]).float().mean())}


def train_graph_classifier(graphs: Sequence[Any], *, hidden: int = 20, layers: int = 3, epochs: int = 80,
                           lr: float = 0.005, batch_size: int = 32, train_fraction: float = 0.8,
                           seed: int = 0) -> tuple[Any, dict[str, float]]:
    """A GIN graph classifier trained on each graph's ``y``: (model in eval mode, accuracies)."""
    torch, _, GINGraph = _modules()
    from torch_geometric.data import Batch

    epochs = _epochs(epochs)
    graphs = list(graphs)
    n_tr = int(train_fraction * len(graphs))
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        n_classes = int(max(int(g.y.max()) for g in graphs)) + 1
        model = GINGraph(graphs[0].x.shape[1], n_classes, hidden, layers)
        opt = torch.optim.Adam(model.parameters(), lr=lr)
        for _ in range(epochs):
            model.train()
            for s in torch.randperm(n_tr).split(batch_size):
                b = Batch.from_data_list([graphs[i] for i in s.tolist()])
                opt.zero_grad()
                loss = torch.nn.functional.cross_entropy(model(b.x, b.edge_index, b.batch), b.y)
                loss.backward()
                opt.step()
    model.eval()

    def acc(part):
        if not part:
            return float("nan")
        b = Batch.from_data_list(part)
        with torch.no_grad():
            return float((model(b.x, b.edge_index, b.batch).argmax(-1) == b.y).float().mean())

    return model, {"train_acc": acc(graphs[:n_tr]), "test_acc": acc(graphs[n_tr:])}
