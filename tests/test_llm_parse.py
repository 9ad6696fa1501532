"""Reading what LLMs actually write when asked for a feature ranking (Kroeger et al. 2023's four
strategies): answer formats, strict and lenient rules, a corpus of realistic replies, rows that fail
left out of metrics, and all four strategies end to end against the scripted local server."""
import json
import re
from pathlib import Path

import numpy as np
import pytest

import whybox
from whybox import InputError
from whybox.llm import LLMClient, LLMParseError, parse_ranking, ranking_explanation, read_ranking
from whybox.llm.parse import letters

L8, L13 = letters(8), letters(13)
CORPUS = json.loads((Path(__file__).parent / "data" / "llm_ranking_replies.json").read_text())
REASONING = ("To determine the most important features, we analyze how changes in each feature relate to the "
             "output.\n\n1. Feature A: when A increases the output tends to increase. Importance: 70.\n"
             "2. Feature B: changes in B show no clear pattern. Importance: 20.\n"
             "3. Feature C: a strong negative correlation. Importance: 80.\n"
             "4. Feature D: weak. Importance: 30.\n5. Feature E: moderate. Importance: 50.\n\n")


# ------------------------------------------------------------------------- the formats of the issue
@pytest.mark.parametrize("reply, valid, k, expected, rule", [
    ("Final Rank: DCHBGKIAEJFLM", L13, 5, list("DCHBG"), "marker"),
    (REASONING + "Final Rank: DCHBGKIAEJFLM", L13, 13, list("DCHBGKIAEJFLM"), "marker"),
    ("DCHBGKIAEJFLM", L13, 4, list("DCHB"), "last_line"),
    ("Final Rank: ABG, J, I, H, F, D, E, C", L13, 5, list("ABGJI"), "marker"),
    ("CA, B, D", L8, 4, list("CABD"), "last_line"),
    (REASONING + "A\nB\nC\nD", L8, 4, list("ABCD"), "letter_lines"),
    (REASONING + "C\nA\nE\nD", L8, 4, list("CAED"), "letter_lines"),
    ("A: D, A, C, E, G", L8, 5, list("DACEG"), "answer_a"),
    (REASONING + "A: C, E, A", L8, 3, list("CEA"), "answer_a"),
    ("Based on the above, the final rank of features from 'A' to 'M': BCDFAEGHIJKLM", L13, 5, list("BCDFA"), "marker"),
    ("- a larger change goes with a larger output change\n- b the rest is noise\n\nC, B, A", L8, 3, list("CBA"),
     "last_line"),
])
def test_answer_formats(reply, valid, k, expected, rule):
    r = read_ranking(reply, valid, k)
    assert r.letters == expected and r.rule == rule and r.complete


def test_final_answer_wins_over_the_reasoning():
    # the reasoning numbers features A..E; the answer at the end is another order
    assert parse_ranking(REASONING + "Final Rank: ECADB", L8, 5) == list("ECADB")
    # running ranks ("Rank so far") are superseded by the final one
    steps = "Rank so far: BA\n...\nRank so far: BAC\n...\nRank so far: DBAC\n\nFinal Rank: DCBA"
    assert parse_ranking(steps, L8, 4) == list("DCBA")
    # a closing note after the answer does not replace it, even when it names letters
    assert parse_ranking("Final Rank: DCHBG\n\nThis reflects that D moves the output most.", L8, 5) == list("DCHBG")
    # an answer block that starts on the line after its marker
    assert parse_ranking("Answer:\n1. D (most important)\n2. C\n3. H\n4. B\n5. G", L8, 5) == list("DCHBG")
    # a closing sentence without letters after a bare answer line
    assert parse_ranking(REASONING + "E, C, A\n\nThese show the clearest relation.", L8, 3) == list("ECA")


def test_lowercase_words_and_articles_are_not_letters():
    assert parse_ranking("- a feature that changes a lot matters\n- b ... \nFinal answer: D, B", L8, 2) == list("DB")
    assert parse_ranking("A key observation: I think feature C dominates, then D.", L8, 2, mode="lenient") == list("CD")
    assert parse_ranking("Answer: I, A, C", letters(10), 3) == list("IAC")


# ------------------------------------------------------------------------------------------ rules
def test_strict_needs_k_distinct_valid_letters():
    with pytest.raises(LLMParseError, match="names 2 distinct feature letter.*5 were asked for"):
        read_ranking("Final Rank: D, C", L8, 5)
    with pytest.raises(LLMParseError, match="'A' twice"):
        read_ranking("Final Rank: A, B, A, C", L8, 4)
    with pytest.raises(LLMParseError, match="'Q', which is not a feature letter \\(A–H\\)"):
        read_ranking("Final Rank: A, B, Q, C", L8, 4)
    with pytest.raises(LLMParseError, match="empty"):
        read_ranking("   ", L8, 3)
    with pytest.raises(LLMParseError, match="no feature letters"):
        read_ranking(REASONING.replace("Feature ", "feature ").lower() + "hard to say.", L8, 3)
    # a duplicate or invalid letter *after* the first k does not matter
    assert parse_ranking("Final Rank: A, B, C, A, Q", L8, 3) == list("ABC")


def test_lenient_returns_what_it_found_and_says_how_many():
    r = read_ranking("Final Rank: D, C", L8, 5, mode="lenient")
    assert r.letters == ["D", "C"] and r.found == 2 and not r.complete and "2 of the 5" in r.notes[0]
    assert read_ranking("Final Rank: B, A, B, Q, C", L8, 4, mode="lenient").letters == ["B", "A", "C"]


def test_the_rule_is_reported():
    assert read_ranking("1. C\n2. A\n3. B", L8, 3).rule == "letter_lines"
    assert read_ranking("Feature C matters most, followed by features A and D.", L8, 3).rule == "last_line_prose"
    assert read_ranking("**Answer:** B > A > H", L8, 3).rule == "marker"


def test_bad_arguments():
    with pytest.raises(InputError, match="mode must be one of"):
        read_ranking("A, B", L8, 2, mode="fuzzy")
    with pytest.raises(InputError, match="k must be an integer between 1 and the number of features"):
        read_ranking("A, B", L8, 9)


@pytest.mark.parametrize("case", CORPUS, ids=[c["id"] for c in CORPUS])
def test_corpus(case):
    valid = letters(case["d"])
    if case["expected"] is None:
        with pytest.raises(LLMParseError) as exc:
            read_ranking(case["reply"], valid, case["k"], mode=case["mode"])
        assert re.search(case["error"], str(exc.value)), str(exc.value)
    else:
        assert read_ranking(case["reply"], valid, case["k"], mode=case["mode"]).letters == case["expected"]


def test_corpus_covers_every_strategy_and_format():
    assert len(CORPUS) >= 60
    ok = [c for c in CORPUS if c["expected"] is not None]
    assert {c["strategy"] for c in ok} == {"perturbation", "prediction", "instruction", "explanation"}
    assert len({c["id"].split("-", 1)[1] for c in ok if c["strategy"] == "perturbation"}) >= 15


# ------------------------------------------------------------------ rankings as explanations, metrics
def test_ranking_explanation_values_and_failed_rows():
    e = ranking_explanation([["C", "A", "D"], None, ["B", "A"]], ["a", "b", "c", "d", "e"], 3, labels=list("ABCDE"))
    np.testing.assert_allclose(e.values[0], [2 / 3, 0, 1, 1 / 3, 0])
    assert np.isnan(e.values[1]).all() and e.params["failed_rows"] == [1] and e.params["from_ranking"]
    np.testing.assert_allclose(e.values[2], [2 / 3, 1, 0, 0, 0])
    back = whybox.Explanation.from_json(e.to_json())                  # failed rows travel as null
    assert np.isnan(back.values[1]).all() and back.params["from_ranking"]
    with pytest.raises(InputError, match="unknown feature"):
        ranking_explanation([["Z"]], ["a", "b"], 1, labels=["A", "B"])
    with pytest.raises(InputError, match="each feature once"):
        ranking_explanation([["A", "A"]], ["a", "b"], 2, labels=["A", "B"])


def test_failed_rows_are_left_out_of_metrics():
    from sklearn.linear_model import LogisticRegression

    from whybox.metrics import agreement, feature_agreement, pgi, rank_agreement, sign_agreement

    rng = np.random.default_rng(0)
    X = rng.normal(size=(200, 4))
    lr = LogisticRegression().fit(X, (X[:, 0] - X[:, 1] > 0).astype(int))
    truth = np.tile([4.0, 3.0, 2.0, 1.0], (3, 1))
    names = ["x0", "x1", "x2", "x3"]
    e = ranking_explanation([["A", "B"], None, ["A", "B"]], names, 2, labels=list("ABCD"))
    fa = feature_agreement(e, truth, k=1)
    assert fa[0] == 1.0 and np.isnan(fa[1]) and fa[2] == 1.0       # not "1.0 because column A is first"
    assert np.isnan(rank_agreement(e, truth, k=2)[1])
    assert np.isnan(pgi(lr, X[:3], e, k=1)[1]) and np.isfinite(pgi(lr, X[:3], e, k=1)[[0, 2]]).all()
    assert np.nanmean(fa) == 1.0 and int(np.isnan(fa).sum()) == 1
    with pytest.raises(InputError, match="comes from a ranking"):
        sign_agreement(e, truth, k=2)
    assert set(agreement(e, truth, k=2)) == {"FA", "RA", "RC", "PRA"}
    with pytest.raises(InputError, match="comes from a ranking"):
        agreement(e, truth, k=2, metrics=["SRA"])
    everything_failed = ranking_explanation([None, None], names, 2)
    with pytest.raises(InputError, match="every row of the explanation is NaN"):
        pgi(lr, X[:2], everything_failed, k=1)


# ---------------------------------------------------------------------------- end to end, 4 strategies
FORMATS = {
    "run": lambda r: f"Final Rank: {''.join(r)}",
    "partly_joined": lambda r: f"Final Rank: {''.join(r[:2])}, " + ", ".join(r[2:]),
    "lines": lambda r: "\n".join(r),
    "answer_a": lambda r: "A: " + ", ".join(r),
    "range": lambda r: "the final rank of features from 'A' to 'F': " + "".join(r),
    "numbered": lambda r: "\n".join(f"{i + 1}. {x}" for i, x in enumerate(r)),
}


@pytest.mark.parametrize("strategy", ["perturbation", "prediction", "instruction", "explanation"])
def test_all_strategies_read_every_format(tmp_path, strategy):
    from sklearn.linear_model import LogisticRegression

    from whybox.llm.testing import ScriptedLLMServer

    rng = np.random.default_rng(0)
    X = rng.normal(size=(300, 6))
    y = (X @ np.array([3.0, -2.0, 1.0, 0.5, 0.0, 0.0]) > 0).astype(int)
    lr = LogisticRegression().fit(X, y)
    truth = list("ABCDEF")
    fmts = list(FORMATS)
    seen = []

    def reply(body):                      # a long reasoning naming letters in another order, then the answer
        i = len(seen)
        seen.append(i)
        return REASONING + "Rank so far: FEDCBA\n\n" + FORMATS[fmts[i % len(fmts)]](truth)
    with ScriptedLLMServer(reply) as srv:
        c = LLMClient(srv.base_url, "scripted", cache=tmp_path, max_retries=0)
        e = whybox.llm_explain(lr, X[:6], client=c, strategy=strategy, k=4, background=X[:50], n_icl=6)
    assert e.params["failed_rows"] == [] and len(srv.requests) == 6
    for row in range(6):
        assert [e.feature_names[j] for j in np.argsort(-e.values[row], kind="stable")[:4]] == \
            [e.feature_names[truth.index(x)] for x in truth[:4]], (fmts[row], e.params["replies"][row][-60:])
    assert set(e.params["parse_rules"]) >= {"marker", "letter_lines", "answer_a"}
