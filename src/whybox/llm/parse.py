"""Robust parsing of LLM replies that name features by letter (A, B, C, ...)."""
from __future__ import annotations

import re
from typing import Sequence

from whybox.llm.client import LLMParseError


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


_MARKUP = re.compile(r"[*_`#>\[\]{}()\"'“”‘’]")
_TOKEN = re.compile(r"(?<![A-Za-z0-9])([A-Z]{1,2})(?![A-Za-z0-9])")
_LIST_ITEM = re.compile(r"^\s*(?:\d+[.):]|[-*•])\s*(?:feature\s+)?([A-Z]{1,2})\b", re.I | re.M)
_PROSE = re.compile(r"\bfeatures?\s*:?\s+((?:[A-Z]{1,2}(?:\s*(?:,|and|&|>|then|followed by)\s*)?)+)")


_AFTER_LETTER = {"and", "or", "nor", "but", "is", "was", "has", "had", "then", "followed", "matters", "seems",
                 "appears", "comes", "ranks", "are", "also", "remains", "dominates", "influences", "affects",
                 "drives", "has", "with", "as", "than", "in", "at", "to", "being", "plays", "shows", "carries"}


def _clean_tokens(text: str, valid: set[str]) -> list[str]:
    out = []
    for m in _TOKEN.finditer(text):
        tok = m.group(1)
        if tok not in valid:
            continue
        nxt = re.match(r"\s+([a-z]+)", text[m.end():m.end() + 20])
        # "A key feature", "I think": an article/pronoun followed by a lower-case word is not a letter
        if tok in ("A", "I") and nxt and nxt.group(1) not in _AFTER_LETTER:
            continue
        if tok not in out:
            out.append(tok)
    return out


def parse_ranking(reply: str, valid: Sequence[str], k: int) -> list[str]:
    """The top-k feature letters of a reply, most important first.

    Accepted: a last line like "A, B, C, D, E" (also "A > B > C", "**A**, B", "Answer: A, C");
    a numbered or bulleted list ("1. A", "2) Feature C"); prose naming letters ("feature C matters
    most, followed by features A and D"). The answer is read from the last line that names letters,
    else from a list, else from the whole text. Raises LLMParseError with the reason otherwise."""
    if not isinstance(reply, str) or not reply.strip():
        raise LLMParseError("the LLM reply is empty")
    valid_set = set(valid)
    text = _MARKUP.sub(" ", reply)
    lines = [ln for ln in text.splitlines() if ln.strip()]
    last = re.sub(r"^\s*(?:final\s+)?(?:answer|ranking|top[- ]?\w*(?:\s+features)?|features?)\s*[:=-]\s*", "",
                  lines[-1], flags=re.I)
    toks = _clean_tokens(last, valid_set)
    if len(toks) >= min(k, 2) or (toks and len(lines) == 1):
        return toks[:k]
    listed = re.sub(r"[*_`#\"'“”‘’]", " ", reply)
    items = [m.group(1).upper() for m in _LIST_ITEM.finditer(listed) if m.group(1).upper() in valid_set]
    items = list(dict.fromkeys(items))
    if len(items) >= min(k, 2):
        return items[:k]
    prose = []
    for m in _PROSE.finditer(text):
        prose += _clean_tokens(m.group(1), valid_set)
    prose = list(dict.fromkeys(prose))
    if prose:
        return prose[:k]
    toks = _clean_tokens(text, valid_set)
    if toks:
        return toks[:k]
    raise LLMParseError(f"no feature letters ({valid[0]}–{valid[-1]}) found in the LLM reply: "
                        f"{' '.join(reply.split())[:160]!r}")
