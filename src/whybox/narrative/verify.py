"""Parse a narrative back into claims and check each against the attribution it narrates.

Claims found per sentence (quoted text is data, not a claim, and is ignored):

* ``direction``: a feature "raises"/"increases"/"pushes up"/... or "lowers"/"reduces"/... the score;
  supported when the attribution has that sign (a "not" right before the verb flips it);
* ``rank``: an explicit rank ("the most important", "second most important", ..., "least important");
* ``order``: a feature mentioned (for the first time) after another must not matter more than it;
* ``size``: "strongly" / "moderately" / "slightly", against the share of the largest |attribution|;
* ``value``: a signed number next to a feature ("by +0.12"), within its written precision;
* ``prediction`` / ``base``: numbers stated for the score and the base value;
* ``unattributed``: a direction stated in a sentence that names no feature of the explanation
  (unverifiable: it may be about a feature the explanation does not have).

Each claim is supported, contradicted or unverifiable; the score is supported / (supported +
contradicted).
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from whybox.narrative.facts import SIZE_RANGES, Facts

UP = r"raises?|raising|increases?|increasing|boosts?|boosting|pushes (?:it |the \w+ )?up|push(?:es)? up|adds? to|supports?|favou?rs?|pulls? (?:it |the \w+ )?up"
DOWN = r"lowers?|lowering|decreases?|decreasing|reduces?|reducing|pushes (?:it |the \w+ )?down|push(?:es)? down|subtracts?|pulls? (?:it |the \w+ )?down|works? against|counts? against|weighs? against|drags? (?:it |the \w+ )?down"
DIR_RE = re.compile(rf"\b(?P<neg>(?:not|never|n't)\s+)?(?:(?P<up>{UP})|(?P<down>{DOWN}))\b", re.I)
ORD_WORDS = {"second": 2, "third": 3, "fourth": 4, "fifth": 5, "sixth": 6, "seventh": 7, "eighth": 8, "ninth": 9, "tenth": 10}
RANK_RE = re.compile(r"\b(?:(?P<ord>second|third|fourth|fifth|sixth|seventh|eighth|ninth|tenth)[\s-]+(?:most[\s-]+)?(?:important|influential|biggest|largest|strongest)"
                     r"|(?P<top>most important|most influential|biggest|largest|strongest|top|main|key)"
                     r"|(?P<least>least important|least influential|smallest|weakest))\b", re.I)
SIZE_RE = re.compile(r"\b(strongly|moderately|slightly|a little)\b", re.I)
NUM = r"[-+−]?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?"
VALUE_RE = re.compile(rf"\b(?:(?P<by>by)|attribution(?:\s+of|\s+is|\s*=)?)\s+(?P<num>{NUM})")
BASE_RE = re.compile(rf"\b(?:base value|baseline|average|base)\s+(?:of\s+|is\s+|=\s*)?(?P<num>{NUM})", re.I)
PRED_RE = re.compile(rf"\b(?:score|probability|prediction|output|predicts?|estimate)\b[^.;]*?\b(?:is|of|=|at)\s+(?P<num>{NUM})", re.I)
QUOTED_RE = re.compile(r"“[^”]*”|\"[^\"]*\"|«[^»]*»")


@dataclass
class Claim:
    kind: str
    status: str                   # "supported" | "contradicted" | "unverifiable"
    feature: str | None = None
    stated: Any = None
    actual: Any = None
    sentence: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "status": self.status, "feature": self.feature, "stated": self.stated,
                "actual": self.actual, "sentence": self.sentence}


@dataclass
class Verification:
    claims: list[Claim] = field(default_factory=list)

    def count(self, status: str) -> int:
        return sum(c.status == status for c in self.claims)

    @property
    def supported(self) -> int:
        return self.count("supported")

    @property
    def contradicted(self) -> int:
        return self.count("contradicted")

    @property
    def unverifiable(self) -> int:
        return self.count("unverifiable")

    @property
    def score(self) -> float:
        n = self.supported + self.contradicted
        return float("nan") if n == 0 else self.supported / n

    @property
    def ok(self) -> bool:
        return self.contradicted == 0 and self.supported > 0


def _num(s: str) -> tuple[float, float]:
    """A written number and the half-unit of its last digit (its precision)."""
    s = s.replace("−", "-")
    mant, _, exp = s.lower().partition("e")
    dec = len(mant.split(".")[1]) if "." in mant else 0
    tol = 0.5 * 10.0 ** (-dec) * (10.0 ** int(exp) if exp else 1.0)
    return float(s), tol * 1.0001 + 1e-12


def _sentences(text: str) -> list[str]:
    parts = re.split(r"(?<=[.!?])\s+(?=[A-Z“\"(])", " ".join(text.split()))
    return [p for p in parts if p.strip()]


def _name_patterns(names: list[str]) -> list[tuple[int, re.Pattern]]:
    pats = []
    for j, n in enumerate(names):
        variants = {n, n.replace("_", " "), n.replace("-", " ")}
        for v in variants:
            if v.strip():
                pats.append((len(v), j, re.compile(rf"(?<![\w]){re.escape(v)}(?![\w])", re.I)))
    pats.sort(key=lambda t: -t[0])
    return [(j, p) for _, j, p in pats]


def _mentions(sentence: str, pats: list[tuple[int, re.Pattern]]) -> list[tuple[int, int, int]]:
    """(start, end, feature index) of feature names in a sentence, longest names first, no overlaps."""
    taken = np.zeros(len(sentence) + 1, bool)
    out = []
    for j, p in pats:
        for m in p.finditer(sentence):
            if not taken[m.start():m.end()].any():
                taken[m.start():m.end()] = True
                out.append((m.start(), m.end(), j))
    return sorted(out)


def verify(text: str, facts: Facts) -> Verification:
    """Check every claim of ``text`` against ``facts`` (see the module docstring)."""
    ver = Verification()
    pats = _name_patterns(facts.names)
    prev_feature: int | None = None
    seen: set[int] = set()
    for raw in _sentences(text):
        sent = QUOTED_RE.sub(" ", raw)               # quoted data is never read as a claim
        ments = _mentions(sent, pats)
        if not ments:
            for m in PRED_RE.finditer(sent):
                if BASE_RE.search(sent[m.start():m.end()]):
                    continue
                v, tol = _num(m.group("num"))
                ok = abs(v - facts.prediction) <= tol
                ver.claims.append(Claim("prediction", "supported" if ok else "contradicted", None, v, facts.prediction, raw))
            for m in BASE_RE.finditer(sent):
                v, tol = _num(m.group("num"))
                if np.isnan(facts.base):
                    ver.claims.append(Claim("base", "unverifiable", None, v, None, raw))
                else:
                    ok = abs(v - facts.base) <= tol
                    ver.claims.append(Claim("base", "supported" if ok else "contradicted", None, v, facts.base, raw))
            if DIR_RE.search(sent):
                ver.claims.append(Claim("unattributed", "unverifiable", None, DIR_RE.search(sent).group(0), None, raw))
            continue
        for i, (s, e, j) in enumerate(ments):
            lo = ments[i - 1][1] if i > 0 else 0
            hi = ments[i + 1][0] if i + 1 < len(ments) else len(sent)
            before, after = sent[lo:s], sent[e:hi]
            # a claim's words follow the feature; words before it count only for the sentence's first
            # feature ("Raising the score most is age"), not when they belong to the previous feature
            lead = before if i == 0 else ""
            name, v = facts.names[j], float(facts.values[j])
            m = DIR_RE.search(after) or DIR_RE.search(lead)
            if m:
                up = bool(m.group("up")) != bool(m.group("neg"))
                ok = (v > 0) if up else (v < 0)
                ver.claims.append(Claim("direction", "supported" if ok else "contradicted", name,
                                        "raises" if up else "lowers", v, raw))
            r = RANK_RE.search(before) or RANK_RE.search(after)
            if r:
                stated = ORD_WORDS[r.group("ord").lower()] if r.group("ord") else (len(facts.names) if r.group("least") else 1)
                actual = facts.rank(j)
                ok = stated == actual or (r.group("least") is not None and facts.share(j) <= min(
                    facts.share(k) for k in range(len(facts.names))) + 1e-12)
                ver.claims.append(Claim("rank", "supported" if ok else "contradicted", name, stated, actual, raw))
            elif j not in seen and prev_feature is not None:
                ok = facts.share(j) <= facts.share(prev_feature) + 1e-9
                ver.claims.append(Claim("order", "supported" if ok else "contradicted", name,
                                        f"after {facts.names[prev_feature]}", facts.rank(j), raw))
            z = SIZE_RE.search(after) or SIZE_RE.search(lead)
            if z:
                word = "slightly" if z.group(1).lower() == "a little" else z.group(1).lower()
                lo_s, hi_s = SIZE_RANGES[word]
                sh = facts.share(j)
                ver.claims.append(Claim("size", "supported" if lo_s - 1e-9 <= sh <= hi_s + 1e-9 else "contradicted",
                                        name, word, round(sh, 4), raw))
            n = VALUE_RE.search(after)
            if n:
                val, tol = _num(n.group("num"))
                tol = max(tol, 0.005 * abs(v))
                if n.group("by") and n.group("num")[0] not in "+-−":
                    v = abs(v)                      # "lowers the score by 0.25" states a magnitude
                ver.claims.append(Claim("value", "supported" if abs(val - v) <= tol else "contradicted", name, val, v, raw))
            if j not in seen:
                seen.add(j)
                prev_feature = j
    return ver
