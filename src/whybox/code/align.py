"""Tokens onto syntax: every scored token is assigned to exactly one node of the syntax tree, and
token probabilities are aggregated per node.

The rule (stated, and the same for every parser): a token's span is first trimmed of the
whitespace it carries (a BPE token " return" is the keyword ``return``); the token goes to the
*smallest node whose span contains the trimmed span*. A token that covers parts of several leaves
(a BPE token "):" over ``)`` and ``:``) therefore goes to their smallest common ancestor, never to
one leaf picked arbitrarily; such tokens are counted (``straddling``). A whitespace-only token
(newline, indentation) goes to the smallest node containing it, usually a ``block`` or the module.

A node's confidence aggregates the probabilities p = exp(log p) of *all tokens inside its subtree*
(those assigned to it or to any descendant): ``"mean"`` (default), ``"median"`` or ``"min"``. A
node with no token (e.g. a zero-width MISSING node) has no confidence (NaN, never shown as 0).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from whybox.code.lm import TokenScores
from whybox.code.syntax import SyntaxTree
from whybox.errors import InputError

AGGREGATIONS = ("mean", "median", "min")


@dataclass
class Alignment:
    """``node_of_token[t]``: the node token t is assigned to; ``straddling[t]``: it covers parts of
    more than one leaf (so it sits on a non-terminal)."""

    tree: SyntaxTree
    scores: TokenScores
    node_of_token: np.ndarray
    straddling: np.ndarray

    def __post_init__(self) -> None:
        self._end = np.asarray(self.tree.subtree_end())
        self._order = np.argsort(self.node_of_token, kind="stable")
        self._sorted = self.node_of_token[self._order]

    def tokens_of(self, node: int) -> np.ndarray:
        """Indices of the tokens inside the subtree of ``node``."""
        lo, hi = np.searchsorted(self._sorted, [node, self._end[node]])
        return np.sort(self._order[lo:hi])

    def confidence(self, agg: str = "mean") -> np.ndarray:
        """Per node, the aggregate of its subtree's token probabilities (NaN with no token)."""
        fn = _agg(agg)
        p = self.scores.probs[self._order]
        out = np.full(len(self.tree.nodes), np.nan)
        los = np.searchsorted(self._sorted, np.arange(len(self.tree.nodes)))
        his = np.searchsorted(self._sorted, self._end)
        for i, (lo, hi) in enumerate(zip(los, his)):
            if hi > lo:
                out[i] = fn(p[lo:hi])
        return out


def _agg(agg: str):
    if agg not in AGGREGATIONS:
        raise InputError(f"agg must be one of {AGGREGATIONS}, got {agg!r}")
    return {"mean": np.mean, "median": np.median, "min": np.min}[agg]


def align(tree: SyntaxTree, scores: TokenScores) -> Alignment:
    """Assign every token of ``scores`` to one node of ``tree`` (the rule is in the module docstring)."""
    if tree.text != scores.text:
        raise InputError("the token scores are for another text than the syntax tree")
    n = len(scores.tokens)
    node_of = np.zeros(n, dtype=np.intp)
    straddle = np.zeros(n, dtype=bool)
    text = tree.text
    for t, (s, e) in enumerate(scores.offsets):
        s, e = int(s), int(e)
        if not (0 <= s <= e <= len(text)):
            raise InputError(f"token {t} has offsets ({s}, {e}) outside the text of {len(text)} characters")
        piece = text[s:e]
        ls, rs = len(piece) - len(piece.lstrip()), len(piece) - len(piece.rstrip())
        if e - rs > s + ls:
            s, e = s + ls, e - rs
        elif e == s:                           # a zero-width token (e.g. part of a multi-byte character)
            s, e = (s, s + 1) if s < len(text) else (max(s - 1, 0), s)
        node = tree.smallest_enclosing(s, e)
        node_of[t] = node.index
        straddle[t] = sum(1 for c in node.children if tree.nodes[c].start < e and s < tree.nodes[c].end) >= 2
    return Alignment(tree, scores, node_of, straddle)
