"""Graph neural networks on whybox's engine (``pip install 'whybox[graph]'``).

    from whybox.graph import GraphModel, explain_graph, ba_shapes, train_node_classifier
    data = ba_shapes()
    gnn, acc = train_node_classifier(data)
    e = explain_graph(gnn, data, index=305, method="kernelshap")     # one Explanation, one value per edge
    graph_scores(GraphModel(gnn, task="node"), data, e, top_k=6)      # fid+, fid-, characterization, GEF, AUROC
    narrate_graph(e, data).text                                        # GraphXAIN narrative, verified

torch and torch_geometric are imported only when a function needs them.
"""
from whybox.graph.datasets import ba_motifs, ba_shapes, infection
from whybox.graph.explain import GRAPH_METHODS, explain_graph, train_pgexplainer
from whybox.graph.metrics import (auroc, characterization_score, explanation_masks, fidelity, graph_scores,
                                  groundtruth_metrics, motif_auroc, unfaithfulness)
from whybox.graph.model import GraphModel
from whybox.graph.narrative import GraphLLMNarrator, narrate_graph, verify_graph_narrative
from whybox.graph.train import train_graph_classifier, train_node_classifier
from whybox.graph.views import ExplanationView, StreamingView, explanation_view, mine_patterns

__all__ = ["GraphModel", "explain_graph", "GRAPH_METHODS", "train_pgexplainer", "ba_shapes", "ba_motifs", "infection",
           "fidelity", "characterization_score", "unfaithfulness", "groundtruth_metrics", "auroc", "motif_auroc",
           "explanation_masks", "graph_scores", "narrate_graph", "verify_graph_narrative", "GraphLLMNarrator",
           "explanation_view", "StreamingView", "ExplanationView", "mine_patterns", "train_node_classifier",
           "train_graph_classifier"]
