"""Graph neural networks on the engine: masking and gradient recipes, PyG's explainers, the graph
metrics (equal to torch_geometric.explain.metric), GraphXAIN narratives (verified), GVEX-style views,
drawings and the CLI. Data is generated in code (PyG's ExplainerDataset); the GNNs train in seconds."""
import json
import sys
from itertools import combinations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("torch_geometric")
nx = pytest.importorskip("networkx")

import whybox  # noqa: E402
import whybox.graph as wg  # noqa: E402
from whybox.errors import BudgetError, InputError, MethodError  # noqa: E402
from whybox.graph import views as V  # noqa: E402

MOTIF_NODES = [300, 301, 302, 303, 304, 306, 312, 318]


@pytest.fixture(scope="module")
def shapes():
    data = wg.ba_shapes()
    gnn, acc = wg.train_node_classifier(data)
    assert acc["test_acc"] > 0.9
    return data, gnn


@pytest.fixture(scope="module")
def motifs():
    graphs = wg.ba_motifs(n_graphs=160)
    gnn, acc = wg.train_graph_classifier(graphs, epochs=60)
    assert acc["test_acc"] > 0.85
    return graphs, gnn


@pytest.fixture(scope="module")
def small_graph(motifs):
    """A BA-2Motifs graph small enough for exact Shapley over its edges (12 undirected edges)."""
    g = wg.ba_motifs(n_graphs=2, num_nodes=6, seed=3)[0]
    return g, motifs[1]


def _auc(exps, data):
    return float(np.mean([wg.motif_auroc(e, data) for e in exps]))


# ------------------------------------------------------------------------------------ explaining
def test_masking_recipes_put_the_motif_first(shapes):
    data, gnn = shapes
    for method, kw, floor in (("kernelshap", {"n_samples": 600}, 0.85), ("occlusion", {}, 0.85)):
        exps = wg.explain_graph(gnn, data, index=MOTIF_NODES[:4], method=method, **kw)
        assert _auc(exps, data) > floor, method
        e = exps[0]
        assert e.params["representation"] == "graph" and e.params["subgraph"] is True
        assert len(e.feature_names) == len(e.params["unit_edges"]) == e.values.shape[1]
    e = wg.explain_graph(gnn, data, index=300, method="kernelshap", n_samples=600)
    assert e.values.sum() + e.base_values[0] == pytest.approx(e.predictions[0], abs=1e-6)    # efficiency


def test_gradient_recipes(shapes):
    data, gnn = shapes
    sal = wg.explain_graph(gnn, data, index=MOTIF_NODES[:4], method="saliency")
    assert _auc(sal, data) > 0.85 and all((e.values >= 0).all() for e in sal)
    ig = wg.explain_graph(gnn, data, index=300, method="ig", steps=64)
    gap = ig.params["completeness_gap"]
    assert abs(gap) < 1e-2 * abs(ig.predictions[0] - ig.base_values[0])
    # IG's base value is the output with every unit edge off, the masking recipes' empty coalition
    ks = wg.explain_graph(gnn, data, index=300, method="occlusion")
    assert ig.base_values[0] == pytest.approx(ks.base_values[0], abs=1e-5)
    feat = wg.explain_graph(gnn, data, index=300, method="integrated_gradients", units="feature")
    assert feat.values.shape == (1, 10) and feat.feature_names[0] == "x0"


def test_kernelshap_converges_to_exact_shapley_on_a_small_graph(small_graph):
    g, gnn = small_graph
    exact = wg.explain_graph(gnn, g, method="shapley")
    d = exact.values.shape[1]
    assert 10 <= d <= 14
    phi = exact.values[0]
    assert phi.sum() + exact.base_values[0] == pytest.approx(exact.predictions[0], abs=1e-6)
    full = wg.explain_graph(gnn, g, method="kernelshap", n_samples=2 ** d)          # every coalition
    # the same game, but the GNN computes in float32 and its batches differ between the two runs: a
    # coalition's output can differ by float32 rounding (about 1e-8 on these values on some CPUs)
    np.testing.assert_allclose(full.values, exact.values, atol=1e-6)
    errs = [np.linalg.norm(wg.explain_graph(gnn, g, method="kernelshap", n_samples=m, seed=s).values[0] - phi)
            for m in (64, 1024) for s in range(3)]
    assert np.mean(errs[3:]) < 0.5 * np.mean(errs[:3])
    assert np.mean(errs[3:]) < 0.1 * np.linalg.norm(phi)


def test_mask_and_delete_agree_on_sum_aggregation_and_batches_match_single_calls(motifs):
    graphs, gnn = motifs
    g = graphs[0]
    a = wg.explain_graph(wg.GraphModel(gnn, task="graph", removal="mask"), g, method="occlusion")
    b = wg.explain_graph(wg.GraphModel(gnn, task="graph", removal="delete"), g, method="occlusion")
    np.testing.assert_allclose(a.values, b.values, atol=1e-5)      # GIN sums messages: mask 0 = no edge
    gm = wg.GraphModel(gnn, task="graph", nodes_per_call=10 ** 6)
    one = wg.GraphModel(gnn, task="graph", nodes_per_call=1)          # one variant per call
    rng = np.random.default_rng(0)
    keep = rng.random((7, g.edge_index.shape[1])) < 0.5
    np.testing.assert_allclose(gm.masked(g.x, g.edge_index, keep, None), one.masked(g.x, g.edge_index, keep, None),
                               atol=1e-5)
    assert gm.n_calls == 1 and one.n_calls == 7 and gm.n_rows == one.n_rows == 7


def test_rows_are_independent_and_seeded(shapes):
    data, gnn = shapes
    both = wg.explain_graph(gnn, data, index=[301, 300], method="kernelshap", n_samples=300, seed=5)
    alone = wg.explain_graph(gnn, data, index=[301], method="kernelshap", n_samples=300, seed=5)
    np.testing.assert_array_equal(both[0].values, alone[0].values)
    again = wg.explain_graph(gnn, data, index=[301, 300], method="kernelshap", n_samples=300, seed=5)
    np.testing.assert_array_equal(both[1].values, again[1].values)


def test_node_units_and_black_box_callables(shapes, motifs):
    data, gnn = shapes
    e = wg.explain_graph(gnn, data, index=300, method="occlusion", units="node")
    assert 300 in e.params["unit_nodes"] and wg.motif_auroc(e, data) > 0.7
    graphs, ggnn = motifs

    def f(batch):                       # a plain callable taking a Batch-like Data
        with torch.no_grad():
            return ggnn(batch.x, batch.edge_index, batch.batch).numpy()

    bb = wg.GraphModel(f, task="graph")
    assert bb.removal == "delete" and not bb.has_gradient
    e = wg.explain_graph(bb, graphs[0], method="kernelshap", n_samples=256)
    ref = wg.explain_graph(wg.GraphModel(ggnn, task="graph", removal="delete"), graphs[0], method="kernelshap",
                           n_samples=256)
    np.testing.assert_allclose(e.values, ref.values, atol=1e-5)
    with pytest.raises(MethodError, match="black box"):
        wg.explain_graph(bb, graphs[0], method="saliency")
    with pytest.raises(InputError, match="hops"):
        wg.explain_graph(wg.GraphModel(lambda b: ggnn(b.x, b.edge_index, b.batch), task="node"), data, index=3)


def test_pyg_explainers_as_recipes(shapes):
    data, gnn = shapes
    gx = wg.explain_graph(gnn, data, index=MOTIF_NODES[:3], method="gnnexplainer", epochs=100)
    assert _auc(gx, data) > 0.8
    assert all(((e.values >= 0) & (e.values <= 1)).all() for e in gx)
    assert gx[0].n_model_rows >= 100                # its optimisation calls the model once per epoch
    pg = wg.explain_graph(gnn, data, index=MOTIF_NODES[:3], method="pgexplainer", epochs=5, train_on=8)
    assert pg[0].params["trained_on"] == 8 and pg[0].params["training_rows"] >= 8 * 5
    assert pg[0].values.shape == gx[0].values.shape
    # trained on seeded nodes, not on the explained ones: a node's values do not depend on the others
    alone = wg.explain_graph(gnn, data, index=[MOTIF_NODES[1]], method="pgexplainer", epochs=5, train_on=8)
    np.testing.assert_array_equal(alone[0].values, pg[1].values)
    with pytest.raises(MethodError, match="edges only"):
        wg.explain_graph(gnn, data, index=300, method="pgexplainer", units="node")


def test_parameters_are_validated(shapes):
    data, gnn = shapes
    with pytest.raises(InputError, match="units"):
        wg.explain_graph(gnn, data, index=300, units="faces")
    with pytest.raises(MethodError, match="unknown graph method"):
        wg.explain_graph(gnn, data, index=300, method="magic")
    with pytest.raises(InputError, match="index is required"):
        wg.explain_graph(wg.GraphModel(gnn, task="node"), data)
    with pytest.raises(InputError, match="index must be a node id"):
        wg.explain_graph(gnn, data, index=10_000)
    with pytest.raises(MethodError, match="unknown parameter"):
        wg.explain_graph(gnn, data, index=300, method="occlusion", n_samples=3)
    with pytest.raises(InputError, match="task"):
        wg.GraphModel(gnn, task="edge")
    gm = wg.GraphModel(gnn, task="node", budget=50)
    with pytest.raises(BudgetError):
        wg.explain_graph(gm, data, index=300, method="kernelshap", n_samples=500)
    assert gm.n_rows <= 2                 # the whole-graph call and the subgraph check, no more
    gm = wg.GraphModel(gnn, task="node", budget=50)
    with pytest.raises(BudgetError):      # PyG's explainers are budgeted up front too
        wg.explain_graph(gm, data, index=300, method="gnnexplainer", epochs=100)
    assert gm.n_rows <= 2


def test_explanation_round_trips_through_json(shapes, tmp_path):
    data, gnn = shapes
    e = wg.explain_graph(gnn, data, index=300, method="occlusion")
    back = whybox.Explanation.from_json(e.to_json())
    np.testing.assert_array_equal(back.values, e.values)
    assert back.params["unit_edges"] == e.params["unit_edges"]
    em, _ = wg.explanation_masks(back, data)
    assert em.shape == (data.edge_index.shape[1],) and em.max() == 1.0


# ------------------------------------------------------------------------------------ metrics
def _pyg(model, task, node_type=None, edge_type="object"):
    from torch_geometric.explain import Explainer, GNNExplainer

    return Explainer(model, GNNExplainer(epochs=1), explanation_type="model", edge_mask_type=edge_type,
                     node_mask_type=node_type,
                     model_config=dict(mode="multiclass_classification", task_level=task, return_type="raw"))


def _pyg_exp(data, model, index=None, batch=None, **masks):
    from torch_geometric.explain import Explanation

    kw = {} if batch is None else {"batch": batch}
    with torch.no_grad():
        pred = model(data.x, data.edge_index, *([batch] if batch is not None else []))
    e = Explanation(x=data.x, edge_index=data.edge_index, prediction=pred, target=pred.argmax(-1),
                    **({} if index is None else {"index": index}), **kw,
                    **{k: torch.as_tensor(v, dtype=torch.float) for k, v in masks.items()})
    e._model_args = list(kw)
    return e


def test_metrics_equal_torch_geometric(shapes, motifs):
    from torch_geometric.explain import metric as PM

    data, gnn = shapes
    gm = wg.GraphModel(gnn, task="node")
    for index in (300, [300, 301, 305]):
        e = wg.explain_graph(gnn, data, index=int(np.ravel(index)[0]), method="kernelshap", n_samples=300)
        for top_k in (None, 6):
            em, _ = wg.explanation_masks(e, data, top_k=top_k)
            pe = _pyg_exp(data, gnn, index=torch.tensor(index) if isinstance(index, list) else index, edge_mask=em)
            ex = _pyg(gnn, "node")
            ours = wg.fidelity(gm, data, edge_mask=em, index=index)
            assert ours == pytest.approx(PM.fidelity(ex, pe), abs=1e-6)
            assert wg.unfaithfulness(gm, data, edge_mask=em, index=index) == pytest.approx(
                PM.unfaithfulness(ex, pe), abs=1e-6)
            cs = PM.characterization_score(torch.tensor(ours[0]), torch.tensor(ours[1]))
            assert wg.characterization_score(*ours) == pytest.approx(float(cs), abs=1e-6)
            ref = PM.groundtruth_metrics(torch.tensor(em, dtype=torch.float), data.edge_mask)
            assert wg.groundtruth_metrics(em, data.edge_mask) == pytest.approx(ref, abs=1e-6)
    # node-feature masks with top_k, a phenomenon explanation, soft random masks
    rng = np.random.default_rng(0)
    nm = rng.random(tuple(data.x.shape))
    em = rng.random(data.edge_index.shape[1])
    pe = _pyg_exp(data, gnn, index=300, node_mask=nm, edge_mask=em)
    ex = _pyg(gnn, "node", node_type="attributes")
    assert wg.unfaithfulness(gm, data, edge_mask=em, node_mask=nm, index=300, top_k=3) == pytest.approx(
        PM.unfaithfulness(ex, pe, top_k=3), abs=1e-6)
    from torch_geometric.explain import Explainer, GNNExplainer

    exph = Explainer(gnn, GNNExplainer(epochs=1), explanation_type="phenomenon", edge_mask_type="object",
                     node_mask_type="attributes", model_config=dict(mode="multiclass_classification",
                                                                    task_level="node", return_type="raw"))
    pe.target = data.y
    assert wg.fidelity(gm, data, edge_mask=em, node_mask=nm, index=300, kind="phenomenon", target=data.y) == \
        pytest.approx(PM.fidelity(exph, pe), abs=1e-6)
    # a graph-level model
    graphs, ggnn = motifs
    g = graphs[1]
    ggm = wg.GraphModel(ggnn, task="graph")
    e = wg.explain_graph(ggm, g, method="occlusion")
    for top_k in (None, 6):
        em, _ = wg.explanation_masks(e, g, top_k=top_k)
        pe = _pyg_exp(g, ggnn, batch=torch.zeros(g.x.shape[0], dtype=torch.long), edge_mask=em)
        ex = _pyg(ggnn, "graph")
        assert wg.fidelity(ggm, g, edge_mask=em) == pytest.approx(PM.fidelity(ex, pe), abs=1e-6)
        assert wg.unfaithfulness(ggm, g, edge_mask=em) == pytest.approx(PM.unfaithfulness(ex, pe), abs=1e-6)
    assert wg.characterization_score(0.0, 0.3) == 0.0
    with pytest.raises(InputError, match="sum to 1"):
        wg.characterization_score(0.5, 0.5, 0.7, 0.7)
    with pytest.raises(InputError, match="both"):
        wg.auroc([0.1, 0.2], [True, True])


def test_graph_scores_report_the_motif(shapes):
    data, gnn = shapes
    gm = wg.GraphModel(gnn, task="node")
    e = wg.explain_graph(gm, data, index=300, method="occlusion")
    s = wg.graph_scores(gm, data, e, top_k=6)
    assert set(s) == {"fid_plus", "fid_minus", "characterization", "unfaithfulness", "auroc"}
    assert all(np.isfinite(v) for v in s.values()) and s["auroc"] > 0.8


# ------------------------------------------------------------------------------------ narratives
def test_every_template_narrative_verifies(shapes, motifs):
    data, gnn = shapes
    exps = []
    for m in ("kernelshap", "occlusion", "saliency"):
        exps += [(e, data) for e in wg.explain_graph(gnn, data, index=[300, 302, 306, 312, 318, 324], method=m,
                                                      **({"n_samples": 200} if m == "kernelshap" else {}))]
    exps += [(wg.explain_graph(gnn, data, index=301, method="occlusion", units="node"), data)]
    graphs, ggnn = motifs
    exps += [(e, g) for e, g in zip(wg.explain_graph(ggnn, graphs[:6], method="occlusion"), graphs[:6])]
    feats = wg.explain_graph(gnn, data, index=300, method="integrated_gradients", units="feature")
    checked = 0
    for e, g in exps:
        for audience in ("lay", "expert"):
            n = wg.narrate_graph(e, g, audience=audience,
                                 features=feats if e.params.get("index") == 300 else None)
            assert n.ok, (n.text, [c.to_dict() for c in n.claims if c.status != "supported"])
            assert n.supported >= 3
            checked += 1
    assert checked >= 40


def test_verification_catches_planted_wrong_claims(shapes):
    data, gnn = shapes
    e = wg.explain_graph(gnn, data, index=300, method="occlusion")
    n = wg.narrate_graph(e, data)
    assert n.ok
    f = wg.narrative.graph_facts(e, data)
    first = f.units[0]
    outside = next(v for v in range(data.x.shape[0]) if v not in f.nodes and v != 300)
    real_edge_outside = next((int(a), int(b)) for a, b in data.edge_index.t().tolist()
                             if (a, b) not in {tuple(u) for u in f.units} and (b, a) not in {tuple(u) for u in f.units})
    wrong_sign = "lowers" if f.values[0] > 0 else "raises"
    plants = {
        "node": f"The decision also depends on node {outside}.",
        "missing edge": "The edge between node 0 and node 699 matters most.",
        "edge not in subgraph": f"The edge between node {real_edge_outside[0]} and node {real_edge_outside[1]} matters.",
        "rank": f"The third most important is the edge between node {first[0]} and node {first[1]}.",
        "direction": f"The edge between node {first[0]} and node {first[1]} {wrong_sign} the score.",
        "class": f"The model assigns node 300 to class {int(e.target[0]) + 1}.",
        "score": "The model assigns node 300 to its class with a score of 123.4.",
    }
    for what, sentence in plants.items():
        v = wg.verify_graph_narrative(n.text + " " + sentence, e, data)
        assert v.contradicted >= 1 and not v.ok, what


def test_llm_narrator_regenerates_then_flags(shapes):
    from whybox.llm import LLMClient
    from whybox.llm.testing import ScriptedLLMServer

    data, gnn = shapes
    e = wg.explain_graph(gnn, data, index=300, method="occlusion")
    f = wg.narrative.graph_facts(e, data)
    a, b = f.units[0]
    good = f"Node 300 is placed in class {e.target_names()[0]} mainly because of the edge between node {a} and node {b}."
    bad = "Node 300 is placed here because of the edge between node 0 and node 699."
    with ScriptedLLMServer([bad, good]) as srv:
        n = wg.narrate_graph(e, data, narrator=wg.GraphLLMNarrator(LLMClient(srv.base_url, "scripted", cache=False)))
        assert n.ok and n.attempts == 2
        assert "0 and node 699" in srv.requests[1]["messages"][-1]["content"] or \
            "0-699" in srv.requests[1]["messages"][-1]["content"]
        assert "node 300" in srv.requests[0]["messages"][1]["content"]
    with ScriptedLLMServer([bad]) as srv:
        n = wg.narrate_graph(e, data, narrator=wg.GraphLLMNarrator(LLMClient(srv.base_url, "scripted", cache=False),
                                                                   retries=1))
        assert n.flagged and n.attempts == 2


# ------------------------------------------------------------------------------------ views
def test_connected_edge_subsets_are_exact():
    G = nx.Graph([(0, 1), (1, 2), (2, 0), (2, 3), (3, 4), (1, 5)])
    edges = list(G.edges())
    got = set(V.connected_edge_subsets(edges, 4))
    want = set()
    for k in range(1, 5):
        for S in combinations(sorted(tuple(sorted(e)) for e in edges), k):
            if nx.is_connected(nx.Graph(list(S))):
                want.add(tuple(S))
    assert got == want
    pats = V.mine_patterns({0: edges, 1: [(7, 8), (8, 9), (9, 7)]}, max_edges=3)
    tri = [p for p in pats if p.n_edges == 3 and len(nx.cycle_basis(p.graph)) == 1]
    assert len(tri) == 1 and tri[0].support == [0, 1]          # the triangle, found in both graphs
    for p, q in combinations(pats, 2):
        assert not (p.n_edges == q.n_edges and nx.is_isomorphic(p.graph, q.graph))


def test_view_objective_is_submodular_and_greedy_meets_its_bound():
    rng = np.random.default_rng(1)
    for trial in range(30):
        E = rng.random((7, 9)) * (rng.random((7, 9)) < 0.5)
        C = rng.random((7, 20)) < 0.3          # patterns x covered items
        lam = float(rng.random())
        A = [i for i in range(7) if rng.random() < 0.3]
        B = sorted(set(A) | {i for i in range(7) if rng.random() < 0.3})
        x = int(rng.integers(7))
        if x in B:
            continue
        gA = V.objective(E, C, A + [x], lam) - V.objective(E, C, A, lam)
        gB = V.objective(E, C, B + [x], lam) - V.objective(E, C, B, lam)
        assert gA >= gB - 1e-12 and gB >= -1e-12
        S, trace = V.greedy(E, C, 3, lam)
        assert trace == sorted(trace)
        assert V.objective(E, C, S, lam) >= (1 - 1 / np.e) * V.brute_force_best(E, C, 3, lam) - 1e-12


def test_explanation_view_and_streaming(motifs):
    graphs, gnn = motifs
    gm = wg.GraphModel(gnn, task="graph")
    part = graphs[:30]
    exps = wg.explain_graph(gm, part, method="occlusion")
    view = wg.explanation_view(gm, part, exps, label=0, budget=3, top_k=6, max_edges=5)
    assert 1 <= len(view.patterns) <= 3 and view.coverage > 0.5 and view.graph_coverage > 0.5 and 0 < view.score <= 1
    assert view.trace == sorted(view.trace)
    for i, p in enumerate(view.patterns):
        assert 1 <= p.n_edges <= 5 and nx.is_connected(p.graph)
        for g in view.graphs_with(i):
            assert i in view.patterns_of(g)
            sub = view.subgraph(i, g)
            assert nx.is_isomorphic(nx.Graph(sub), p.graph)
    for g in view.graph_ids:
        assert int(wg.explain_graph(gm, part[g], method="occlusion").target[0]) == 0
    summary = view.summary()
    assert json.dumps(summary) and summary[0]["support"] == len(view.graphs_with(0))
    stream = wg.StreamingView(gm, label=0, budget=3, top_k=6, max_edges=5)
    for s in range(0, 30, 10):
        stream.add(part[s:s + 10], exps[s:s + 10])
    assert [h["graphs_seen"] for h in stream.history] == [10, 20, 30]
    assert stream.view.score == pytest.approx(view.score)
    with pytest.raises(InputError, match="budget"):
        wg.explanation_view(gm, part, exps, label=0, budget=0)


# ------------------------------------------------------------------------------------ faces
def test_drawing_and_html_are_offline(shapes, tmp_path):
    from whybox.io.graph_view import draw_explanation, graph_html, save_png

    data, gnn = shapes
    e = wg.explain_graph(gnn, data, index=300, method="occlusion")
    fig = draw_explanation(e, data)
    save_png(fig, tmp_path / "g.png")
    assert (tmp_path / "g.png").read_bytes()[:4] == b"\x89PNG"
    page = graph_html(e, data, narrative=wg.narrate_graph(e, data))
    assert "data:image/png;base64," in page and "edge between node" in page
    assert "http://" not in page and "https://" not in page


def _cli(args, capsys):
    from whybox.cli import main

    with pytest.raises(SystemExit) as ex:
        main(list(map(str, args)))
        sys.exit(0)
    out = capsys.readouterr()
    return ex.value.code or 0, out.out, out.err


def test_cli_explain_graph(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "200")
    out = tmp_path / "g"
    rc, stdout, stderr = _cli(["explain-graph", "--method", "occlusion", "--out", out], capsys)
    assert rc == 0, stdout + stderr
    assert "fid_plus" in stdout and "0 contradicted" in stdout
    e = whybox.Explanation.from_json((out / "explanation.json").read_text())
    assert e.params["index"] == 300
    assert (out / "subgraph.png").stat().st_size > 1000 and "<img" in (out / "report.html").read_text()
    # a pickled model or graph never loads without --trust-pickle
    torch.save(torch.nn.Linear(2, 2), tmp_path / "m.pt")
    rc, _, stderr = _cli(["explain-graph", "--model", tmp_path / "m.pt"], capsys)
    assert rc == 2 and "--trust-pickle" in stderr and "Traceback" not in stderr
    torch.save(wg.ba_shapes(num_nodes=20, num_motifs=2), tmp_path / "d.pt")
    rc, _, stderr = _cli(["explain-graph", tmp_path / "d.pt"], capsys)
    assert rc == 2 and "--trust-pickle" in stderr
    # a plain dict of tensors loads safely
    d = wg.ba_shapes(num_nodes=30, num_motifs=3)
    torch.save({"x": d.x, "edge_index": d.edge_index, "y": d.y}, tmp_path / "plain.pt")
    rc, stdout, stderr = _cli(["explain-graph", tmp_path / "plain.pt", "--index", 30, "--method", "occlusion"], capsys)
    assert rc == 0, stdout + stderr
    assert "node 30" in stdout


def test_generated_data_is_seeded_and_leaves_global_generators_alone():
    state = np.random.get_state()[1].copy()
    t = torch.random.get_rng_state().clone()
    a, b = wg.infection(seed=4), wg.infection(seed=4)
    assert torch.equal(a.edge_index, b.edge_index) and torch.equal(a.y, b.y) and a.edge_mask.shape[0] == a.edge_index.shape[1]
    assert not torch.equal(wg.ba_shapes(seed=1).edge_index, wg.ba_shapes(seed=2).edge_index)
    np.testing.assert_array_equal(np.random.get_state()[1], state)
    assert torch.equal(torch.random.get_rng_state(), t)
    g = wg.ba_motifs(n_graphs=6)
    assert sorted(int(x.y) for x in g) == [0, 0, 0, 1, 1, 1] and all(x.edge_mask.sum() >= 10 for x in g)
