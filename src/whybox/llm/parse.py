"""Reading feature rankings out of LLM replies that name features by letter (A, B, C, ...).

Kroeger et al. (2023) ask the LLM to reason, then give "the top k most important features ranked from
most important to least important ... on the last line". Replies come in many shapes; this module
finds the *final answer* and reads the letters in it:

* an answer marker — ``Final Rank: DCHBGKIAEJFLM``, ``Answer: B > A > H``, ``Top 5 features: ...``,
  ``the final rank of features from 'A' to 'M': BCDFAEGHIJKLM``, or ``A: D, A, C, E, G`` where "A:"
  abbreviates "Answer:" (only when a bare list of letters follows);
* a block of one letter per line at the end (``A\\nB\\nC``, ``1. D\\n2. C``, ``- D (strongest)``);
* a last line that is a list of letters (``D, C, H, B, G``, ``D > C > H``, ``CA, B, D``);
* weaker rules when none of those exists: the last numbered/bulleted list, then prose naming letters
  ("feature C matters most, followed by A and D").

The latest strong candidate in the reply wins, so a final answer beats letters mentioned in the
reasoning before it. Inside an answer, a run of letters (``DCHBG``, ``ABG``) is split into letters
when every character is a feature letter; lower-case words are never letters ("- a ..."); "A" and
"I" followed by an ordinary word are the article and the pronoun.

Two modes. **strict** (the default, used for scoring): the answer must hold at least k distinct
valid letters, and the first k must contain no duplicate and no letter outside the features;
otherwise :class:`LLMParseError` says which. **lenient**: whatever distinct valid letters were found
(up to k), with how many. :func:`read_ranking` returns the letters together with the rule that found
them; :func:`parse_ranking` returns the letters only.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Sequence

from whybox.errors import InputError
from whybox.llm.client import LLMParseError

MODES = ("strict", "lenient")


def letters(d: int) -> list[str]:
    """Feature letters A..Z, then AA, AB, ... for d features."""
    out = []
    for i in range(d):
        s, n = "", i
        while True:
            s = chr(65 + n % 26) + s
            n = n // 26 - 1
            if n < 0:
                break
        out.append(s)
    return out


@dataclass(frozen=True)
class Ranking:
    """A parsed ranking: ``letters`` most important first (at most k), the ``rule`` that found the
    answer, the ``answer`` text it was read from, and ``found`` (distinct valid letters in it)."""
    letters: list[str]
    rule: str
    answer: str
    found: int
    k: int
    notes: list[str] = field(default_factory=list)

    @property
    def complete(self) -> bool:
        return len(self.letters) == self.k


# ------------------------------------------------------------------------------------------ tokens
_MARKUP = re.compile(r"[*_`#>\[\]{}()\"'“”‘’|]")
_CAPS = re.compile(r"(?<![A-Za-z0-9])([A-Z]+)(?![A-Za-z0-9])")
_RANGE = re.compile(r"\bfrom\s+['\"‘’“”]?[A-Z]{1,2}['\"‘’“”]?\s+(?:to|through|until)\s+['\"‘’“”]?[A-Z]{1,2}['\"‘’“”]?",
                    re.I)
# words that may follow a feature letter in prose ("A and B", "C is ..."); any other lower-case word
# after "A" or "I" makes it the article or the pronoun
_AFTER_LETTER = {"and", "or", "nor", "but", "is", "was", "has", "had", "then", "followed", "matters", "seems",
                 "appears", "comes", "ranks", "are", "also", "remains", "dominates", "influences", "affects",
                 "drives", "with", "as", "than", "in", "at", "to", "being", "plays", "shows", "carries", "most",
                 "least", "ranked", "first", "second", "third", "last", "next", "stands", "leads", "the"}
# lower-case words allowed in a line that is still "a list of letters"
_LIST_WORDS = {"and", "then", "followed", "by", "feature", "features", "most", "least", "important", "to",
               "from", "finally", "lastly", "next", "or", "rank", "ranking", "order", "is", "are", "the",
               "final", "answer", "top"}
_MARKER = re.compile(r"\b(?:answer|rank|ranks|ranking|ranked|order|ordering|top|final|result|conclusion)\b", re.I)
_ITEM = re.compile(r"^\s*(?:\(?\d{1,2}[.):]|[-*•+]|#\d+[.:]?)?\s*(?:(?:Feature|feature)\s+)?['\"‘’“”*`]*([A-Z]{1,2})"
                   r"['\"‘’“”*`]*(?![A-Za-z0-9])(.*)$")


@dataclass
class _Tok:
    text: str
    valid: bool


def _tokens(segment: str, valid: set[str], split_runs: bool) -> list[_Tok]:
    """Letter tokens of a segment, in order: valid letters, and single capitals that are not features."""
    seg = _RANGE.sub(" ", _MARKUP.sub(" ", segment))
    out: list[_Tok] = []
    for m in _CAPS.finditer(seg):
        tok = m.group(1)
        if tok in ("A", "I"):
            nxt = re.match(r"\s+([a-z][a-z'-]*)", seg[m.end():m.end() + 24])
            if nxt and nxt.group(1) not in _AFTER_LETTER:
                continue            # "A key feature", "I think"
        if tok in valid:
            out.append(_Tok(tok, True))
        elif split_runs and len(tok) > 1 and all(c in valid for c in tok):
            out.extend(_Tok(c, True) for c in tok)          # DCHBG, ABG, CA
        elif len(tok) == 1:
            out.append(_Tok(tok, False))                    # a capital that is not a feature letter
        # longer all-caps words that are not letter runs ("OK", "THE") are words
    return out


def _list_like(segment: str) -> bool:
    """A segment that is a list of letters, not prose: no ordinary word beyond a few connectors."""
    words = re.findall(r"[a-z][a-z'-]+", _RANGE.sub(" ", _MARKUP.sub(" ", segment)))
    return all(w in _LIST_WORDS for w in words)


# ---------------------------------------------------------------------------------------- candidates
@dataclass
class _Cand:
    rule: str
    pos: int            # line index where the answer starts (later wins)
    text: str
    strong: bool


def _marker_candidates(lines: list[str], valid: set[str], split: bool) -> list[_Cand]:
    out = []
    for i, ln in enumerate(lines):
        if ":" not in ln and "=" not in ln:
            continue
        for m in re.finditer(r"[:=]", ln):
            prefix, rest = ln[:m.start()], ln[m.end():]
            bare = _MARKUP.sub(" ", prefix).strip()
            if re.fullmatch(r"(?:[-*•]\s*)?A", bare):          # "A: D, A, C" = "Answer: ..."
                if rest.strip() and _list_like(rest) and _tokens(rest, valid, split):
                    out.append(_Cand("answer_a", i, rest, True))
                break
            if len(bare) <= 90 and _MARKER.search(bare) and not re.search(r"\bfeature\s+[A-Z]{1,2}\s*$", bare):
                text = rest
                if not _tokens(rest, valid, split) and not rest.strip():
                    # the answer continues on the next lines ("Final Rank:\nD\nC" or "Answer:\n1. D ...")
                    follow = []
                    for nxt in lines[i + 1:]:
                        if not nxt.strip():
                            if follow:
                                break
                            continue
                        if not _tokens(nxt, valid, split):
                            break
                        follow.append(nxt)
                    text = "\n".join(follow)
                if _tokens(text, valid, split):
                    out.append(_Cand("marker", i, text, True))
                break
    return out


def _item_blocks(lines: list[str], valid: set[str]) -> list[tuple[int, int, list[str]]]:
    """Runs of consecutive list-item lines (one letter each): (start, end, letters)."""
    blocks, cur, start = [], [], None
    for i, ln in enumerate(lines + [""]):
        m = _ITEM.match(ln) if ln.strip() else None
        ok = False
        if m and (m.group(1) in valid or len(m.group(1)) == 1):
            rest = m.group(2)
            # the rest of the line explains the item; it must not name other letters
            ok = not [t for t in _tokens(rest, valid, False) if t.valid]
            if m.group(1) in ("A", "I"):
                nxt = re.match(r"\s+([a-z][a-z'-]*)", rest)
                ok = ok and not (nxt and nxt.group(1) not in _AFTER_LETTER)
        if ok:
            if start is None:
                start = i
            cur.append((m.group(1), len(m.group(2).strip())))
        else:
            if start is not None and len(cur) >= 2:
                blocks.append((start, i, cur))
            cur, start = [], None
    return blocks


def _candidates(reply: str, valid: set[str], split: bool, k: int) -> list[_Cand]:
    lines = [ln.rstrip() for ln in reply.splitlines()]
    nonblank = [i for i, ln in enumerate(lines) if ln.strip()]
    cands = _marker_candidates(lines, valid, split)
    for start, end, items in _item_blocks(lines, valid):
        after = [ln for ln in lines[end:] if ln.strip()]
        tail_clear = all(not [t for t in _tokens(ln, valid, split) if t.valid] for ln in after)
        short = sum(n for _, n in items) / len(items) <= 40
        text = "\n".join(lines[start:end])
        # a block is placed at its last line: a later marker still beats it, the plain last line does not
        cands.append(_Cand("letter_lines" if tail_clear and short else "list", end - 1, text, tail_clear and short))
    # the last line that names letters (a closing note without letters may follow it)
    named = [i for i in nonblank if any(t.valid for t in _tokens(lines[i], valid, split))]
    if named:
        last = lines[named[-1]]
        if _list_like(last):
            cands.append(_Cand("last_line", named[-1], last, True))
        else:
            cands.append(_Cand("last_line_prose", named[-1], last, False))
    return cands


_PROSE = re.compile(r"\bfeatures?\s*:?\s+((?:['\"‘’“”]?[A-Z]{1,2}['\"‘’“”]?(?:\s*(?:,|and|&|>|then|followed by|or)\s*)?)+)")


def read_ranking(reply: str, valid: Sequence[str], k: int, *, mode: str = "strict") -> Ranking:
    """The top-k feature letters of an LLM reply, most important first, with the rule that found them
    (see the module docstring). Raises :class:`LLMParseError` naming the reason."""
    if mode not in MODES:
        raise InputError(f"mode must be one of {MODES}, got {mode!r}")
    if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= len(valid):
        raise InputError(f"k must be an integer between 1 and the number of features ({len(valid)}), got {k!r}")
    if not isinstance(reply, str) or not reply.strip():
        raise LLMParseError("the LLM reply is empty")
    valid_list = list(valid)
    vset = set(valid_list)
    split = all(len(v) == 1 for v in valid_list)        # with d <= 26 a run of capitals is letters
    cands = _candidates(reply, vset, split, k)
    strong = [c for c in cands if c.strong]
    order: list[_Cand] = []
    if strong:
        # the latest strong candidate; on the same line a marker, then a letter block, beats the last line
        rank = {"marker": 3, "answer_a": 3, "letter_lines": 2, "last_line": 1}
        best = max(strong, key=lambda c: (c.pos, rank.get(c.rule, 0)))
        order.append(best)
    order += sorted((c for c in cands if c.rule == "list"), key=lambda c: -c.pos)
    n_lines = len([ln for ln in reply.splitlines() if ln.strip()])
    prose_ok = mode == "lenient" or n_lines <= 3
    if prose_ok:
        order += [c for c in cands if c.rule == "last_line_prose"]
        text = _MARKUP.sub(" ", reply)
        found = []
        for m in _PROSE.finditer(text):
            found += [t.text for t in _tokens(m.group(1), vset, split) if t.valid]
        if found:
            order.append(_Cand("prose", 0, " ".join(dict.fromkeys(found)), False))
        if mode == "lenient" or n_lines == 1:
            order.append(_Cand("anywhere", 0, reply, False))
    span = f"{valid_list[0]}–{valid_list[-1]}"
    for c in order:
        toks = _tokens(c.text, vset, split)
        if not any(t.valid for t in toks):
            continue
        distinct = list(dict.fromkeys(t.text for t in toks if t.valid))
        if mode == "lenient":
            return Ranking(distinct[:k], c.rule, c.text.strip(), len(distinct), k,
                           [] if len(distinct) >= k else [f"found {len(distinct)} of the {k} letters asked for"])
        head = toks[:k]
        bad = [t.text for t in head if not t.valid]
        if bad:
            raise LLMParseError(f"the answer names {bad[0]!r}, which is not a feature letter ({span}): "
                                f"{_short(c.text)!r} (rule {c.rule})")
        seen: set[str] = set()
        for t in head:
            if t.text in seen:
                raise LLMParseError(f"the answer names {t.text!r} twice among its first {k}: {_short(c.text)!r} "
                                    f"(rule {c.rule})")
            seen.add(t.text)
        if len(head) < k:
            raise LLMParseError(f"the answer names {len(head)} distinct feature letter(s), {k} were asked for: "
                                f"{_short(c.text)!r} (rule {c.rule})")
        return Ranking([t.text for t in head], c.rule, c.text.strip(), len(distinct), k)
    raise LLMParseError(f"no feature letters ({span}) found in an answer of the LLM reply: {_short(reply)!r}")


def parse_ranking(reply: str, valid: Sequence[str], k: int, *, mode: str = "strict") -> list[str]:
    """The top-k feature letters of a reply, most important first (:func:`read_ranking`'s letters)."""
    return read_ranking(reply, valid, k, mode=mode).letters


def _short(s: str, n: int = 160) -> str:
    s = " ".join(str(s).split())
    return s if len(s) <= n else s[:n] + "..."
