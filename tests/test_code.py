"""Code models through syntax: parsing with character offsets, token-to-node alignment, AsC-Eval,
the local and endpoint LM adapters, AST-unit explanations, AsC-Viz and the CLI."""
import ast
import json
import re

import numpy as np
import pytest

pytest.importorskip("tree_sitter_python")
torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from whybox.code import (EndpointLM, HFCausalLM, TokenScores, align, asc_eval, asc_file, code_units,  # noqa: E402
                         completion_model, explain_code, parse)
from whybox.errors import BudgetError, InputError, ModelError  # noqa: E402
from whybox.llm import LLMClient, LLMError  # noqa: E402
from whybox.llm.testing import ScriptedLLMServer  # noqa: E402

SRC = ('def f(x):\n    """doc é\n    more"""\n    if x > 1:  # c\n        return \'ü\' + str(x)\n'
       '    ñame = None\n    return ñame\n')


@pytest.fixture(scope="module")
def tiny():
    from whybox.code.train import tiny_code_lm
    model, tok = tiny_code_lm(steps=60)
    return model, tok


@pytest.fixture(scope="module")
def lm(tiny):
    return HFCausalLM(*tiny)


def _regex_scores(text, logp=None):
    """Tokens = runs of whitespace + non-space, with known log-probabilities."""
    spans = [(m.start(), m.end()) for m in re.finditer(r"\s*\S+", text)]
    lp = np.log(np.linspace(0.1, 0.9, len(spans))) if logp is None else np.asarray(logp, float)
    return TokenScores(text, [text[s:e] for s, e in spans], np.array(spans), lp)


@pytest.mark.parametrize("parser", ["tree-sitter", "ast"])
def test_parse_gives_character_offsets_with_unicode_and_multiline_strings(parser):
    t = parse(SRC, parser=parser)
    assert t.root.start == 0 and t.root.end == len(SRC) and t.parser == parser
    leaves = [(n.type, t.source(n)) for n in t.leaves()]
    assert ("identifier", "ñame") in leaves and ("def", "def") in leaves and ("none", "None") in leaves
    assert ("comment", "# c") in leaves
    strings = [src for typ, src in leaves if typ in ("string", "string_content")]
    assert any("doc é\n    more" in s for s in strings) and any("ü" in s for s in strings)
    for n in t.nodes:                         # children inside parents, disjoint, in order
        last = n.start
        for c in n.children:
            k = t.nodes[c]
            assert n.start <= k.start <= k.end <= n.end and k.start >= last
            last = k.end
    cats = {t.source(n): n.category for n in t.leaves()}
    assert cats["if"] == "keyword" and cats[":"] == "punctuation" and cats["ñame"] == "identifier"
    assert cats["1"] == "literal" and cats["None"] == "literal" and cats["# c"] == "comment"


def test_code_that_does_not_parse_says_where():
    bad = "def f(x):\n    y = (1 +\n    return x\n"
    t = parse(bad)
    assert t.errors and re.match(r"line [23]:\d+", t.errors[0])
    with pytest.raises(InputError, match="does not parse: line"):
        parse(bad, on_error="raise")
    cut = parse('"""A docstring cut\nin the middle, and prose (not code) after it: x = y\n')
    inside = cut.in_error()
    outermost = [n for n in cut.nodes if n.category == "error" and not inside[n.parent]]
    assert len(cut.errors) == len(outermost) >= 1    # one per region, none for errors nested in another
    assert any(inside) and not inside[0]
    assert all(inside[n.index] for n in cut.nodes if n.parent is not None and cut.nodes[n.parent].type == "ERROR")
    with pytest.raises(InputError, match="line 2"):
        parse(bad, parser="ast")
    for empty in ("", "  \n\n"):
        with pytest.raises(InputError, match="empty"):
            parse(empty)
    with pytest.raises(InputError, match="on_error"):
        parse("x = 1", on_error="ignore")
    with pytest.raises(InputError, match="no tree-sitter grammar"):
        parse("x = 1", language="cobolish")


def test_alignment_hand_made_case():
    text = "if x:\n    y = 'é' + z\n"
    # tokens: "if", " x:", "\n   ", " y", " =", " 'é'", " + z", "\n"  (known tokenisation)
    spans = [(0, 2), (2, 5), (5, 9), (9, 11), (11, 13), (13, 17), (17, 21), (21, 22)]
    p = np.array([0.9, 0.5, 0.8, 0.2, 0.7, 0.1, 0.4, 0.6])
    ts = TokenScores(text, [text[s:e] for s, e in spans], np.array(spans), np.log(p))
    t = parse(text)
    al = align(t, ts)
    types = [t.nodes[i].type for i in al.node_of_token]
    # " x:" covers the identifier and ":" -> their smallest common node, the if statement (stated rule);
    # " + z" covers "+" and "z" -> the binary operator; whitespace-only tokens -> the node containing them
    assert types == ["if", "if_statement", "if_statement", "identifier", "=", "string", "binary_operator", "module"]
    assert al.straddling.tolist() == [False, True, False, False, False, True, True, False]
    conf = {agg: al.confidence(agg) for agg in ("mean", "median", "min")}
    stmt = next(n.index for n in t.nodes if n.type == "if_statement")
    assign = next(n.index for n in t.nodes if n.type == "assignment")
    binop = next(n.index for n in t.nodes if n.type == "binary_operator")
    assert conf["mean"][stmt] == pytest.approx(p[:7].mean(), abs=1e-12)
    assert conf["median"][assign] == pytest.approx(np.median(p[[3, 4, 5, 6]]), abs=1e-12)
    assert conf["min"][assign] == pytest.approx(0.1, abs=1e-12)
    assert conf["mean"][binop] == pytest.approx((0.1 + 0.4) / 2, abs=1e-12)
    assert conf["mean"][0] == pytest.approx(p.mean(), abs=1e-12)
    ident_z = next(n.index for n in t.nodes if t.source(n) == "z")
    assert np.isnan(conf["mean"][ident_z])       # its only token is shared with "+": no token of its own
    with pytest.raises(InputError, match="agg"):
        al.confidence("max")


def test_every_token_of_a_corpus_maps_to_exactly_one_node(lm):
    from whybox.datasets import stdlib_corpus
    files = stdlib_corpus("test", max_files=3, max_chars=3000) + [("u.py", SRC)]
    for name, code in files:
        a = asc_file(lm, code, name=name)
        t, al, s = a.tree, a.alignment, a.alignment.scores
        assert len(al.node_of_token) == len(s.tokens) > 0
        for tok, (st, en), i in zip(s.tokens, s.offsets, al.node_of_token):
            piece = code[st:en]
            lo = st + len(piece) - len(piece.lstrip()) if piece.strip() else st
            hi = en - (len(piece) - len(piece.rstrip())) if piece.strip() else max(en, st + 1)
            node = t.nodes[i]
            assert node.start <= lo and hi <= node.end or i == 0
            assert not any(t.nodes[c].start <= lo and hi <= t.nodes[c].end and t.nodes[c].end > t.nodes[c].start
                           for c in node.children)


def test_hf_scores_are_teacher_forced_logprobs_and_windows_score_each_token_once(tiny):
    model, tok = tiny
    text = SRC
    s = HFCausalLM(model, tok).score([text])[0]
    ids = [tok.bos_token_id] + tok(text, add_special_tokens=False)["input_ids"]
    assert len(ids) <= model.config.n_positions
    with torch.inference_mode():
        lp = torch.log_softmax(model(torch.tensor([ids])).logits[0, :-1].double(), -1)
    want = lp[torch.arange(len(ids) - 1), torch.tensor(ids[1:])].numpy()
    assert len(s) == len(ids) - 1 and s.n_unscored == 0
    np.testing.assert_allclose(s.logprobs, want, atol=1e-5)
    assert all(text[a:b] == t for t, (a, b) in zip(s.tokens, s.offsets))
    long = SRC * 4
    s = HFCausalLM(model, tok).score([long])[0]
    w = HFCausalLM(model, tok, max_length=32, batch_size=3).score([long, "x = 1\n"])
    assert len(w[0]) == len(s) == len(tok(long, add_special_tokens=False)["input_ids"]) > 128 and len(w[1]) > 0
    np.testing.assert_allclose(w[0].logprobs[:31], s.logprobs[:31], atol=1e-5)     # first window: same context
    assert np.isfinite(w[0].logprobs).all() and (w[0].logprobs <= 0).all()
    lm = HFCausalLM(model, tok)
    c = lm.continuation_logprob(["def f(x):\n", "x = 2\n"], "    return x\n")
    pid, cid = tok("def f(x):\n", add_special_tokens=False)["input_ids"], tok("    return x\n", add_special_tokens=False)["input_ids"]
    full = [tok.bos_token_id] + pid + cid
    with torch.inference_mode():
        lp = torch.log_softmax(model(torch.tensor([full])).logits[0, :-1].double(), -1)
    want = sum(float(lp[j - 1, full[j]]) for j in range(len(full) - len(cid), len(full)))
    assert c[0] == pytest.approx(want, abs=1e-5) and c.shape == (2,)


def test_hf_adapter_refuses_what_it_cannot_use(tiny, tmp_path):
    model, tok = tiny

    class Slow:
        is_fast = False

    with pytest.raises(InputError, match="fast tokenizer"):
        HFCausalLM(model, Slow())
    with pytest.raises(InputError, match="empty"):
        HFCausalLM(model, tok).score([""])

    class NoLogits(torch.nn.Module):
        config = model.config

        def forward(self, input_ids=None, attention_mask=None):
            return {"hidden": input_ids}

    with pytest.raises(ModelError, match="no logits"):
        HFCausalLM(NoLogits(), tok).score(["x = 1"])
    (tmp_path / "pickled").mkdir()
    (tmp_path / "pickled" / "pytorch_model.bin").write_bytes(b"not loaded")
    with pytest.raises(InputError, match="trust_pickle"):
        HFCausalLM(tmp_path / "pickled")
    with pytest.raises(InputError, match="does not exist"):
        HFCausalLM(tmp_path / "nowhere")
    with pytest.raises(BudgetError):
        HFCausalLM(model, tok, budget=1).score(["a = 1", "b = 2"])


def _legacy(body, bad=None):
    prompt = body["prompt"]
    spans = [(m.start(), m.end()) for m in re.finditer(r"\s*\S+", prompt)]
    toks = [prompt[s:e] for s, e in spans]
    lps = [None] + [-0.1 * (i + 1) for i in range(len(spans) - 1)]
    offs = [s for s, _ in spans]
    if bad == "offsets":
        offs = offs[::-1]
    if bad == "positive":
        lps[1] = 0.5
    return {"content": "", "completion_logprobs": {"tokens": toks, "token_logprobs": lps, "text_offset": offs,
                                                   "top_logprobs": None}}


def test_endpoint_lm_scores_prompts_through_the_llm_client(tmp_path):
    with ScriptedLLMServer(lambda body: _legacy(body)) as srv:
        client = LLMClient(srv.base_url, "scripted", cache=tmp_path / "c")
        lm = EndpointLM(client)
        s = lm.score(["x = 1\ny = x\n"])[0]
        assert s.tokens == [" =", " 1", "\ny", " =", " x\n"] and s.n_unscored == 1   # a token ends where the next starts
        np.testing.assert_allclose(s.logprobs, [-0.1, -0.2, -0.3, -0.4, -0.5])
        assert s.offsets[0].tolist() == [1, 3]
        body = srv.requests[0]
        assert body["echo"] is True and body["logprobs"] == 1 and body["max_tokens"] == 0
        c = lm.continuation_logprob(["x = 1\n"], "y = x\n")
        assert c[0] == pytest.approx(-0.3 - 0.4 - 0.5)     # tokens "\ny", " =", " x" end after the prompt
        n = client.n_requests
        lm.score(["x = 1\ny = x\n"])
        assert client.n_requests == n and client.n_cached >= 1          # cached
        for f in (tmp_path / "c").rglob("*.json"):                      # an entry whybox did not write: a miss
            d = json.loads(f.read_text())
            d["prompt_logprobs"][1][1] = 3.0
            f.write_text(json.dumps(d))
        lm.score(["x = 1\ny = x\n"])
        assert client.n_requests == n + 1
        a = asc_file(lm, "x = 1\ny = x\n")
        assert np.isfinite(a.confidence[0])


def test_endpoint_vllm_prompt_logprobs_and_bad_replies(tmp_path):
    def vllm(body):
        p = body["prompt"]
        toks = re.findall(r"\s*\S+|\s+$", p)
        rows = [None] + [{str(i): {"logprob": -0.5, "rank": 1, "decoded_token": t}} for i, t in enumerate(toks[1:])]
        return {"content": "", "prompt_logprobs": rows}

    def first_text(body):   # vLLM gives the first token's text through its own entry when asked
        p = body["prompt"]
        toks = re.findall(r"\s*\S+", p)
        return {"content": "", "prompt_logprobs": [{"0": {"logprob": -9.0, "decoded_token": toks[0]}}]
                + [{str(i): {"logprob": -0.5, "decoded_token": t}} for i, t in enumerate(toks[1:])]}

    with ScriptedLLMServer(first_text) as srv:
        s = EndpointLM(LLMClient(srv.base_url, "m", cache=False), mode="prompt_logprobs").score(["a = 1\nb = a"])[0]
        assert s.tokens == [" =", " 1", "\nb", " =", " a"] and (s.logprobs == -0.5).all()
        assert srv.requests[0]["prompt_logprobs"] == 0
    with ScriptedLLMServer(vllm) as srv:        # vLLM: first entry None, its text is what the others leave
        s = EndpointLM(LLMClient(srv.base_url, "m", cache=False), mode="prompt_logprobs").score(["a = 1\nb = a"])[0]
        assert s.tokens == [" =", " 1", "\nb", " =", " a"] and (s.logprobs == -0.5).all()
        assert s.offsets[:, 0].tolist() == [1, 3, 5, 7, 9]

    def bos(body):                              # a BOS first (None), then every prompt token scored
        toks = re.findall(r"\s*\S+", body["prompt"])
        return {"content": "", "prompt_logprobs": [None] + [{str(i): {"logprob": -0.25, "decoded_token": t}}
                                                            for i, t in enumerate(toks)]}

    def wrong(body):                            # decoded tokens that do not end the prompt: refused
        return {"content": "", "prompt_logprobs": [None, {"1": {"logprob": -0.5, "decoded_token": " z"}}]}

    with ScriptedLLMServer(bos) as srv:
        s = EndpointLM(LLMClient(srv.base_url, "m", cache=False), mode="prompt_logprobs").score(["a = 1"])[0]
        assert s.tokens == ["a", " =", " 1"] and (s.logprobs == -0.25).all()
    with ScriptedLLMServer(wrong) as srv:
        with pytest.raises(LLMError, match="no usable prompt log-probabilities"):
            EndpointLM(LLMClient(srv.base_url, "m", cache=False), mode="prompt_logprobs").score(["a = 1"])
    for script in (["plain text, no logprobs"], lambda b: _legacy(b, "offsets"), lambda b: _legacy(b, "positive")):
        with ScriptedLLMServer(script) as srv:
            with pytest.raises(LLMError, match="no usable prompt log-probabilities"):
                EndpointLM(LLMClient(srv.base_url, "m", cache=False)).score(["a = 1\nb = 2"])
    with pytest.raises(InputError, match="LLMClient"):
        EndpointLM("http://x")


def test_asc_eval_tables_intervals_and_skipped_files(lm):
    from whybox.datasets import stdlib_corpus
    files = stdlib_corpus("test", max_files=4, max_chars=2500) + [("empty.py", "\n\n")]
    ev = asc_eval(lm, files, n_boot=200, seed=1)
    assert [n for n, _ in ev.skipped] == ["empty.py"] and len(ev.files) == 4
    cut = '"""A docstring cut\nin the middle, and prose (not code) after it: x = y\n'
    broken = asc_eval(lm, [("b.py", cut)], n_boot=100)
    f = broken.files[0]
    inside = f.tree.in_error()
    kept = [n for n in f.tree.leaves() if not inside[n.index] and np.isfinite(f.confidence[n.index])]
    assert broken.categories["n_nodes"].sum() == len(kept) < len(f.tree.leaves())   # what is in ERROR is left out
    for tab in (ev.categories, ev.groups, ev.concepts):
        assert ((tab["ci_low"] <= tab["mean"] + 1e-12) & (tab["mean"] <= tab["ci_high"] + 1e-12)).all()
        assert tab["mean"].between(0, 1).all()
    assert set(ev.categories["category"]) >= {"keyword", "punctuation", "identifier", "literal"}
    again = asc_eval(lm, files, n_boot=200, seed=1)
    assert again.concepts.equals(ev.concepts)
    assert "| category |" in ev.to_markdown()
    with pytest.raises(InputError, match="one string"):
        asc_eval(lm, "x = 1")
    with pytest.raises(InputError, match="n_boot"):
        asc_eval(lm, files, n_boot=5)


def test_code_units_replace_syntax_aware_and_stay_code():
    prompt = ('import os\n\ndef total(items):\n    """Sum them."""\n    # start\n    acc = 0\n'
              '    for it in items:\n        acc += it  # add\n')
    t = parse(prompt)
    units = code_units(t, "statement")
    assert [(prompt[s:e], r, k) for s, e, r, k in units] == [
        ("import os", "pass", "statement"), ('"""Sum them."""', "pass", "docstring"), ("# start", "", "comment"),
        ("acc = 0", "pass", "statement"), ("acc += it", "pass", "statement"), ("# add", "", "comment")]
    idents = code_units(t, "identifier", placeholder="_x")
    assert [prompt[s:e] for s, e, _, _ in idents] == ["os", "total", "items", "acc", "it", "items", "acc", "it"]
    assert code_units(parse(prompt, parser="ast"), "statement")[:2] == units[:2]
    from whybox.representations.text import TextUnits
    for found in (units, idents, code_units(t, ["string", "integer"])):
        doc = TextUnits(prompt, tuple((s, e) for s, e, _, _ in found), "replace", replacement=tuple(r for *_, r, _ in found))
        for z in (np.zeros((1, doc.d), bool), np.eye(doc.d, dtype=bool)[:1] == 0):
            ast.parse(doc.texts(z)[0])          # still Python
    with pytest.raises(InputError, match="units"):
        code_units(t, "paragraph")


def test_explain_code_occlusion_is_exact_and_counted(lm):
    prompt = "import os\n\ndef total(items):\n    acc = 0\n    for it in items:\n        acc += it\n"
    comp = "    return acc\n"
    e = explain_code(lm, prompt, comp)
    m = completion_model(lm, comp)
    full = m([prompt])[0, 0]
    units = code_units(parse(prompt), "statement")
    for j, (s, end, rep, _) in enumerate(units):
        assert e.values[0, j] == pytest.approx(full - m([prompt[:s] + rep + prompt[end:]])[0, 0], abs=1e-9)
    assert e.predictions[0] == pytest.approx(full) and e.feature_names[0] == "L1 statement: import os"
    assert e.n_model_rows == len(units) + 2          # x, each unit off, all off (the base value)
    k = explain_code(lm, prompt, comp, method="kernelshap", units="identifier", seed=3)
    k2 = explain_code(lm, prompt, comp, method="kernelshap", units="identifier", seed=3)
    np.testing.assert_array_equal(k.values, k2.values)
    assert abs(k.values.sum() - (k.predictions[0] - k.base_values[0])) < 1e-6        # efficiency
    from whybox.metrics.text import word_deletion_curve
    curves, auc = word_deletion_curve(m, e)
    assert curves[0][0] == pytest.approx(full) and np.isfinite(auc).all()
    n0 = lm.n_texts
    with pytest.raises(BudgetError):
        explain_code(lm, prompt, comp, method="kernelshap", units="identifier", n_samples=64, budget=10)
    assert lm.n_texts == n0                     # refused before any prompt was scored
    with pytest.raises(InputError, match="method"):
        explain_code(lm, prompt, comp, method="gradient")
    with pytest.raises(InputError, match="completion"):
        explain_code(lm, prompt, "")


def test_asc_viz_html_escapes_code_and_has_a_tree(lm, tmp_path):
    from whybox.io.code_view import render_asc_html, render_asc_rich, write_asc_html
    code = 'x = "</pre><script>alert(1)</script>"\ndef f(a):\n    return a & 1\n'
    a = asc_file(lm, code, name="<evil>.py")
    page = render_asc_html(a)
    assert "<script>" not in page and "&lt;/pre&gt;&lt;script&gt;" in page and "&lt;evil&gt;.py" in page
    assert page.count("<details") >= 3 and "function_definition" in page and "title='" in page
    write_asc_html(a, tmp_path / "v.html")
    assert (tmp_path / "v.html").read_text(encoding="utf-8") == page
    assert render_asc_rich(a).plain == code
    d = json.loads(json.dumps(a.to_dict()))
    assert d["text"] == code and len(d["tokens"]) == len(a.alignment.scores)


def _inproc(capsys, *args):
    from test_cli import _inproc as run_cli       # the CLI's main() in this process
    return run_cli(capsys, *args, ok=False)


def test_cli_explain_code_local_and_endpoint(tiny, tmp_path, capsys):
    model, tok = tiny
    model.save_pretrained(tmp_path / "lm")
    tok.save_pretrained(tmp_path / "lm")
    f = tmp_path / "prog.py"
    f.write_text("def f(x):\n    s = 'héllo'\n    return x +\n", encoding="utf-8")
    code, out, err = _inproc(capsys, "explain-code", tmp_path / "lm", f, "--html", tmp_path / "v.html",
                             "--out", tmp_path / "v.json")
    assert code == 0, err
    assert "does not parse: line 3" in out and "keyword" in out and (tmp_path / "v.html").exists()
    assert json.loads((tmp_path / "v.json").read_text())["errors"]
    code, _, err = _inproc(capsys, "explain-code", tmp_path / "lm", f, "--on-error", "raise")
    assert code == 2 and "does not parse" in err and "Traceback" not in err
    code, _, err = _inproc(capsys, "explain-code", f)
    assert code == 2 and "--llm" in err
    with ScriptedLLMServer(lambda body: _legacy(body)) as srv:
        code, out, err = _inproc(capsys, "explain-code", f, "--llm", srv.base_url, "--model", "m", "--no-cache")
        assert code == 0, err
        assert "category" in out
    with ScriptedLLMServer(["no logprobs"]) as srv:
        code, _, err = _inproc(capsys, "explain-code", f, "--llm", srv.base_url, "--model", "m", "--no-cache")
        assert code == 2 and "prompt log-probabilities" in err


def test_stdlib_corpus_split_is_disjoint_and_stable():
    from whybox.datasets import stdlib_corpus
    tr, te = stdlib_corpus("train"), stdlib_corpus("test")
    assert tr and te and not {n for n, _ in tr} & {n for n, _ in te}
    assert [n for n, _ in stdlib_corpus("test")] == [n for n, _ in te]
    short = stdlib_corpus("test", max_chars=500, max_files=5)
    assert all(len(c) <= 500 for _, c in short)
    for _, c in short:
        ast.parse(c)                             # cut after a statement, never inside a docstring
    with pytest.raises(InputError, match="split"):
        stdlib_corpus("dev")
