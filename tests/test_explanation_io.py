"""Explanation: frames, JSON and Parquet round trips, plots, shap export."""
import json

import numpy as np
import pandas as pd
import pytest

import whybox
from whybox import Explanation


@pytest.fixture(scope="module")
def exp():
    rng = np.random.default_rng(0)
    X = pd.DataFrame(rng.normal(size=(6, 4)), columns=["age", "income", "debt", "score"])
    f = lambda Z: np.column_stack([np.tanh(Z @ np.arange(1, 5)), 1 - np.tanh(Z @ np.arange(1, 5))])
    return whybox.explain(f, X, method="kernelshap", background=rng.normal(size=(5, 4)), n_samples=10, seed=2)


def test_frame(exp):
    df = exp.to_frame()
    assert list(df.columns[:4]) == ["age", "income", "debt", "score"]
    assert {"base_value", "prediction", "target", "stderr:age"} <= set(df.columns)
    assert len(df) == 6


def test_json_round_trip(exp, tmp_path):
    path = tmp_path / "e.json"
    exp.to_json(path)
    back = Explanation.from_json(path)
    np.testing.assert_array_equal(back.values, exp.values)
    np.testing.assert_array_equal(back.stderr, exp.stderr)
    assert back.method == "kernelshap" and back.seed == 2 and back.params["n_samples"] == 10
    assert back.n_model_rows == exp.n_model_rows
    assert json.loads(exp.to_json())["feature_names"] == exp.feature_names
    with pytest.raises(whybox.InputError, match="not a whybox explanation"):
        Explanation.from_json('{"a": 1}')


def test_parquet_round_trip(exp, tmp_path):
    path = tmp_path / "e.parquet"
    exp.save(path)
    back = Explanation.from_parquet(path)
    np.testing.assert_array_equal(back.values, exp.values)
    np.testing.assert_array_equal(back.base_values, exp.base_values)
    np.testing.assert_array_equal(back.target, exp.target)
    assert back.params == json.loads(json.dumps(exp.params))
    assert list(tmp_path.iterdir()) == [path]  # no temporary file left behind


def test_numeric_data_stays_numeric_through_json_and_parquet(exp, tmp_path):
    """Numeric rows are shown as float64 (no Python object per value, as shap keeps them), and stay so
    after a JSON or Parquet round trip; strings or mixed values stay an object array as given."""
    assert exp.data.dtype == np.float64 and exp.data.shape == (6, 4)
    exp.save(tmp_path / "d.parquet")
    for back in (Explanation.from_json(exp.to_json()), Explanation.from_parquet(tmp_path / "d.parquet")):
        assert back.data.dtype == np.float64
        np.testing.assert_array_equal(back.data, exp.data)
    mixed = Explanation(values=np.zeros((1, 3)), base_values=0.0, predictions=0.0, feature_names=["a", "b", "c"],
                        target=0, method="x", data=np.array([["red", 2, None]], dtype=object))
    assert mixed.data.dtype == object and mixed.data[0, 1] == 2
    flags = Explanation(values=np.zeros((1, 2)), base_values=0.0, predictions=0.0, feature_names=["a", "b"],
                        target=0, method="x", data=np.array([[True, 1.5]], dtype=object))
    assert flags.data.dtype == object and flags.data[0, 0] is True


def test_nan_base_values_survive_json(tmp_path):
    e = whybox.explain(lambda Z: Z.sum(1), np.ones((2, 3)), method="gradient")
    assert np.isnan(e.base_values).all()
    back = Explanation.from_json(e.to_json())
    assert np.isnan(back.base_values).all()


@pytest.mark.parametrize("kind", ["bar", "waterfall", "beeswarm", "decision", "heatmap", "force", "global_bar"])
def test_plots_write_png(exp, tmp_path, kind):
    p = tmp_path / f"{kind}.png"
    exp.plot(kind, row=1, path=str(p))
    assert p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with pytest.raises(whybox.InputError):
        exp.plot("pie")


def test_html_report_is_self_contained(exp, tmp_path):
    p = tmp_path / "r.html"
    exp.save(p)
    text = p.read_text()
    assert "data:image/png;base64," in text and "http" not in text.replace("http-equiv", "")


def test_row_selection(exp):
    sub = exp[2:4]
    assert len(sub) == 2 and sub.row_ids.tolist() == [2, 3]
    np.testing.assert_array_equal(sub.values, exp.values[2:4])


def test_to_shap(exp):
    shap = pytest.importorskip("shap")
    s = exp.to_shap()
    assert isinstance(s, shap.Explanation)
    np.testing.assert_array_equal(s.values, exp.values)
    assert list(s.feature_names) == exp.feature_names


def test_atomic_writes_use_normal_permissions(exp, tmp_path):
    import os
    import stat
    mask = os.umask(0)
    os.umask(mask)
    for name in ("e.json", "e.parquet", "e.html"):
        exp.save(tmp_path / name)
        assert stat.S_IMODE((tmp_path / name).stat().st_mode) == 0o666 & ~mask


def test_repr_html_for_notebooks_is_compact_and_escaped(exp):
    h = exp._repr_html_(max_rows=2, k=3)
    assert "method <code>kernelshap</code>" in h and "6 row(s)" in h and "and 4 more row(s)" in h
    assert h.count("<b>row ") == 2 and h.count("height:9px") == 6          # k bars per shown row
    top = exp.top_features(0, 1)[0][0]
    assert top in h and "<script" not in h
    e = Explanation(values=np.array([[1.0, -2.0]]), base_values=np.array([0.0]), predictions=np.array([-1.0]),
                    feature_names=["<b>x</b>", "y"], target=np.array([0]), method="m<i>",
                    data=np.array([["<img src=x>", "2"]], dtype=object))
    h = e._repr_html_()
    assert "<b>x</b>" not in h and "&lt;b&gt;x&lt;/b&gt;" in h and "&lt;img" in h and "m&lt;i&gt;" in h
    assert h.index("8px'>y = 2") < h.index("8px'>&lt;b&gt;x")               # largest |value| first


def test_dependence_plot_shows_attribution_against_value_coloured_by_the_interacting_feature():
    import matplotlib
    matplotlib.use("Agg")
    rng = np.random.default_rng(1)
    X = pd.DataFrame(rng.normal(size=(120, 3)), columns=["a", "b", "c"])
    f = lambda Z: (Z[:, 0] * Z[:, 2] + 0.5 * Z[:, 1])[:, None]     # a's effect depends on c
    e = whybox.explain(f, X, method="shapley", background=np.zeros((1, 3)))
    fig = e.plot("dependence", feature="a")
    pts = fig.axes[0].collections[0].get_offsets()
    np.testing.assert_allclose(pts[:, 0], X["a"].to_numpy())
    np.testing.assert_allclose(pts[:, 1], e.values[:, 0])
    assert fig.axes[1].get_ylabel() == "c"                          # the colour bar: the interacting feature
    fig2 = e.plot("dependence", feature=1, color=None)
    assert len(fig2.axes) == 1
    with pytest.raises(whybox.InputError, match="feature must be one of"):
        e.plot("dependence", feature="zz")
    with pytest.raises(whybox.InputError, match="needs feature="):
        e.plot("dependence")


def test_interaction_heatmap_draws_the_pairwise_matrix(tmp_path):
    import matplotlib
    matplotlib.use("Agg")
    from whybox.interactions import interactions
    rng = np.random.default_rng(2)
    X = pd.DataFrame(rng.normal(size=(3, 4)), columns=list("pqrs"))
    f = lambda Z: (Z[:, 0] * Z[:, 1] - Z[:, 2])[:, None]
    iv = interactions(f, X, rng.normal(size=(6, 4)), index="k-SII", order=2)
    fig = iv.plot(0, path=tmp_path / "h.png")
    np.testing.assert_allclose(fig.axes[0].images[0].get_array(), iv.matrix(0))
    assert (tmp_path / "h.png").stat().st_size > 1000
    assert abs(iv.matrix(0)[0, 2]) < 1e-12 and abs(iv.matrix(0)[0, 1]) > 1e-3   # p x r do not interact; p x q do


def test_waterfall_beeswarm_and_decision_read_back_what_they_claim():
    import re
    import matplotlib
    matplotlib.use("Agg")
    rng = np.random.default_rng(3)
    X = pd.DataFrame(rng.normal(size=(30, 6)), columns=list("abcdef"))
    w = np.array([3.0, -2.0, 1.0, 0.5, -0.25, 0.1])
    f = lambda Z: (Z @ w + 0.3 * Z[:, 0] * Z[:, 1])[:, None]
    bg = rng.normal(size=(8, 6))
    e = whybox.explain(f, X, method="shapley", background=bg)
    label = e.plot("waterfall", row=2).axes[0].get_xlabel()
    base, out = map(float, re.findall(r"base (\S+) -> output (\S+) ", label)[0])
    assert base == pytest.approx(f(bg).mean(), rel=1e-3) and out == pytest.approx(f(X.iloc[[2]].to_numpy())[0, 0], rel=1e-3)
    assert "miss" not in label
    lime = whybox.explain(f, X.iloc[:3], method="lime", background=bg, n_samples=200)
    assert "miss it by" in lime.plot("waterfall", row=0).axes[0].get_xlabel()     # not efficient: said so
    ticks = [t.get_text() for t in e.plot("beeswarm", max_features=4).axes[0].get_yticklabels()]
    imp = np.abs(e.values).mean(0)
    assert ticks == [e.feature_names[j] for j in np.argsort(-imp)[:4][::-1]]      # max_display, by mean |value|
    lines = e.plot("decision", max_features=3).axes[0].get_lines()
    ends = np.array([ln.get_xdata()[[0, -1]] for ln in lines])
    np.testing.assert_allclose(ends[:, 0], e.base_values, atol=1e-9)
    np.testing.assert_allclose(ends[:, 1], e.predictions, atol=1e-9)


def _linear_case():
    rng = np.random.default_rng(3)
    X = pd.DataFrame(rng.normal(size=(30, 6)), columns=list("abcdef"))
    w = np.array([3.0, -2.0, 1.0, 0.5, -0.25, 0.1])
    f = lambda Z: (Z @ w + 0.3 * Z[:, 0] * Z[:, 1])[:, None]  # noqa: E731
    bg = rng.normal(size=(8, 6))
    return f, X, bg


def test_force_plot_segments_add_up_and_meet_at_the_output():
    import matplotlib
    matplotlib.use("Agg")
    from matplotlib.patches import Polygon

    from whybox.io.force import force_layout
    f, X, bg = _linear_case()
    e = whybox.explain(f, X, method="shapley", background=bg)
    lay = force_layout(e, 4)
    v = e.values[4]
    red = [s for s in lay.segments if s.value > 0]
    blue = [s for s in lay.segments if s.value < 0]
    assert lay.output == pytest.approx(e.predictions[4]) and lay.base == pytest.approx(e.base_values[4])
    assert max(s.end for s in red) == pytest.approx(lay.output) and min(s.start for s in blue) == pytest.approx(lay.output)
    assert min(s.start for s in red) == pytest.approx(lay.output - v[v > 0].sum())       # red block: the positives
    assert max(s.end for s in blue) == pytest.approx(lay.output - v[v < 0].sum())
    assert [s.value for s in red] == sorted(v[v > 0], reverse=True)                       # largest nearest the output
    fig = e.plot("force", row=4)
    polys = [p for p in fig.axes[0].patches if isinstance(p, Polygon)]
    assert len(polys) == int((v != 0).sum())
    texts = [t.get_text() for t in fig.axes[0].texts]
    assert f"{lay.output:.4g}" in texts and f"base value {lay.base:.4g}" in texts
    lime = whybox.explain(f, X.iloc[:2], method="lime", background=bg, n_samples=200)
    assert "miss it by" in lime.plot("force", row=0).axes[0].get_xlabel()
    with pytest.raises(whybox.InputError, match="out of range"):
        e.plot("force", row=99)


def test_global_bar_and_beeswarm_per_output():
    import matplotlib
    matplotlib.use("Agg")
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression
    X, y = load_iris(return_X_y=True, as_frame=True)
    m = LogisticRegression(max_iter=500).fit(X, y)
    e = whybox.explain(m, X.iloc[::10], method="shapley", background=X.iloc[::30], target="all")
    fig = e.plot("global_bar")
    ax = fig.axes[0]
    imp = np.abs(e.values).mean(axis=0)                                   # (features, outputs)
    widths = np.array([p.get_width() for p in ax.patches]).reshape(3, 4)  # outputs x features (bottom .. top)
    order = np.argsort(-imp.sum(axis=1), kind="stable")[::-1]
    np.testing.assert_allclose(widths, imp[order].T)
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["0", "1", "2"]
    bees = e.plot("beeswarm", max_features=3)
    assert len(bees.axes) == 3 and [a.get_title().split(" ·")[0] for a in bees.axes] == ["output 0", "output 1", "output 2"]
    one = e.output(2).plot("global_bar")
    assert [t.get_text() for t in one.axes[0].get_yticklabels()][-1] == X.columns[int(np.argmax(imp[:, 2]))]
    with pytest.raises(whybox.InputError, match="one output"):
        e.plot("force")


def test_force_html_is_self_contained_and_escaped(tmp_path):
    import re
    f, X, bg = _linear_case()
    X = X.rename(columns={"a": "<b>a</b>"})
    e = whybox.explain(f, X, method="kernelshap", background=bg, n_samples=64)
    page = e.force_html(rows=[0, 3], path=tmp_path / "force.html")
    assert (tmp_path / "force.html").read_text() == page and list(tmp_path.iterdir()) == [tmp_path / "force.html"]
    assert "<script" not in page and "http" not in page.replace("http://www.w3.org/2000/svg", "")
    assert "<b>a</b>" not in page and "&lt;b&gt;a&lt;/b&gt;" in page
    assert page.count("<svg") == 2
    vals = [float(v) for v in re.findall(r"class='seg [a-z]+'[^>]*data-value='([^']+)'", page)]
    assert sum(vals) == pytest.approx(e.values[0].sum() + e.values[3].sum())
    with pytest.raises(whybox.InputError, match="out of range"):
        e.force_html(rows=[30])
