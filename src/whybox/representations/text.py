"""Text as an interpretable representation: a text is split into units (words, tokenizer tokens or
sentences) and a binary vector switches each unit on (kept) or off (removed).

Removal strategies
------------------
* ``"delete"``: the unit disappears, with the whitespace that would otherwise double up;
* ``"mask"``: the unit is replaced by a mask/unknown token (``mask_token``, e.g. ``"[MASK]"``);
* ``"replace"``: the unit is replaced by a neutral string given by the user (``replacement``), or by
  its own string when ``replacement`` is a sequence with one per unit (code: an identifier by a
  placeholder, a statement by ``pass``, a comment by nothing); nothing else changes.

The all-ones vector always gives back the original text exactly; the text between units
(punctuation for word units, spaces) is kept as fixed context.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Callable, Sequence

import numpy as np

from whybox.errors import InputError

UNITS = ("word", "token", "sentence")
REMOVALS = ("delete", "mask", "replace")

WORD_RE = re.compile(r"\w+(?:['’\-]\w+)*")
SENTENCE_RE = re.compile(r"\S.*?(?:[.!?]+(?=\s|$)|$)", re.S)


def _spans_regex(text: str, pattern: re.Pattern) -> list[tuple[int, int]]:
    spans = []
    for m in pattern.finditer(text):
        s, e = m.span()
        seg = text[s:e]
        e = s + len(seg.rstrip())       # sentences never end in whitespace
        if e > s:
            spans.append((s, e))
    return spans


def _spans_tokenizer(text: str, tokenizer: Any) -> list[tuple[int, int]]:
    """Character spans of a Hugging Face (fast) tokenizer's tokens, special tokens excluded."""
    if tokenizer is None:
        raise InputError("units='token' needs a tokenizer (a Hugging Face fast tokenizer, or a model "
                         "that carries one, e.g. whybox.TransformerClassifier)")
    try:
        enc = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
    except Exception as exc:  # pragma: no cover - depends on the tokenizer
        raise InputError(f"the tokenizer could not return token offsets ({type(exc).__name__}: {exc}); "
                         "units='token' needs a fast tokenizer") from None
    spans = [(int(s), int(e)) for s, e in enc["offset_mapping"] if e > s]
    return spans


def split_text(text: str, units: str | Callable[[str], Sequence[tuple[int, int]]] = "word", *,
               tokenizer: Any = None) -> list[tuple[int, int]]:
    """Character spans ``(start, end)`` of the interpretable units of ``text`` (in order, disjoint).

    ``units`` is "word" (runs of letters/digits, with inner apostrophes and hyphens; punctuation is
    context, not a unit), "token" (the tokens of ``tokenizer``), "sentence", a compiled regular
    expression, or a callable returning spans.
    """
    if units == "word":
        spans = _spans_regex(text, WORD_RE)
    elif units == "sentence":
        spans = _spans_regex(text, SENTENCE_RE)
    elif units == "token":
        spans = _spans_tokenizer(text, tokenizer)
    elif isinstance(units, re.Pattern):
        spans = _spans_regex(text, units)
    elif callable(units):
        spans = [(int(s), int(e)) for s, e in units(text)]
    else:
        raise InputError(f"units must be one of {UNITS}, a compiled regex or a callable, got {units!r}")
    last = 0
    for s, e in spans:
        if not (last <= s < e <= len(text)):
            raise InputError(f"unit spans must be ordered, disjoint and inside the text; got {spans[:5]}...")
        last = e
    return spans


@dataclass(frozen=True)
class TextUnits:
    """One text split into ``d`` units, and the map from on/off masks to perturbed texts."""

    text: str
    spans: tuple[tuple[int, int], ...]
    removal: str = "delete"
    mask_token: str = "[MASK]"
    replacement: str | tuple[str, ...] | None = None
    unit_kind: str = "word"

    @classmethod
    def build(cls, text: Any, *, units: Any = "word", removal: str = "delete", mask_token: str | None = None,
              replacement: str | None = None, tokenizer: Any = None, index: int = 0) -> "TextUnits":
        if not isinstance(text, str):
            raise InputError(f"text {index} is a {type(text).__name__}, not a string")
        if not text.strip():
            raise InputError(f"texts: text {index} is empty")
        if removal not in REMOVALS:
            raise InputError(f"removal must be one of {REMOVALS}, got {removal!r}")
        if removal == "replace" and not isinstance(replacement, str):
            if not (isinstance(replacement, (list, tuple)) and all(isinstance(r, str) for r in replacement)):
                raise InputError("removal='replace' needs replacement=<a neutral string>, e.g. replacement='thing' "
                                 "(or one string per unit)")
            replacement = tuple(replacement)
        if removal == "mask" and mask_token is not None and not isinstance(mask_token, str):
            raise InputError(f"mask_token must be a string, got {mask_token!r}")
        spans = split_text(text, units, tokenizer=tokenizer)
        if not spans:
            kind = units if isinstance(units, str) else "custom"
            raise InputError(f"texts: text {index} has no {kind} units to explain: {text[:60]!r}")
        if isinstance(replacement, tuple) and len(replacement) != len(spans):
            raise InputError(f"replacement has {len(replacement)} strings for {len(spans)} units: give one per unit")
        return cls(text, tuple(spans), removal, mask_token or "[MASK]", replacement,
                   units if isinstance(units, str) else "custom")

    @property
    def d(self) -> int:
        return len(self.spans)

    @property
    def units(self) -> list[str]:
        return [self.text[s:e] for s, e in self.spans]

    def feature_names(self) -> list[str]:
        """Unit strings, made unique by an occurrence suffix ("very", "very (2)")."""
        seen: dict[str, int] = {}
        out = []
        for u in self.units:
            seen[u] = seen.get(u, 0) + 1
            out.append(u if seen[u] == 1 else f"{u} ({seen[u]})")
        return out

    def _pieces(self) -> tuple[str, list[str], list[str]]:
        t = self.text
        pre = t[: self.spans[0][0]]
        units = self.units
        gaps = [t[e: (self.spans[i + 1][0] if i + 1 < self.d else len(t))] for i, (_, e) in enumerate(self.spans)]
        return pre, units, gaps

    def texts(self, Z: np.ndarray) -> list[str]:
        """The perturbed text of every mask row of ``Z`` (m, d): 1 keeps a unit, 0 removes it."""
        Z = np.asarray(Z, dtype=bool)
        if Z.ndim != 2 or Z.shape[1] != self.d:
            raise InputError(f"masks must have shape (m, {self.d}), got {Z.shape}")
        pre, units, gaps = self._pieces()
        if self.removal == "delete":
            return [self._delete(pre, units, gaps, z) for z in Z]
        rep = self.mask_token if self.removal == "mask" else self.replacement
        reps = tuple(rep) if isinstance(rep, (list, tuple)) else (rep,) * self.d
        return [pre + "".join((u if k else r) + g for u, g, r, k in zip(units, gaps, reps, z)) for z in Z]

    def _delete(self, pre: str, units: list[str], gaps: list[str], z: np.ndarray) -> str:
        if z.all():
            return self.text
        out = pre
        for u, g, k in zip(units, gaps, z):
            if k:
                out += u + g
            elif not out or out[-1].isspace():
                out += g.lstrip()        # no doubled whitespace where a unit was deleted
            else:
                out += g
        return out if self.text[-1:].isspace() else out.rstrip()
