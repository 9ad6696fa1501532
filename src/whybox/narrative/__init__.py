"""Plain-language narratives of explanations, checked claim by claim against the numbers.

    n = whybox.narrate(explanation)                        # deterministic template, offline
    n = whybox.narrate(explanation, narrator=LLMNarrator(LLMClient(url, model)))
    n.text, n.ok, n.score, n.claims, n.flagged
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from whybox.core.explanation import Explanation
from whybox.errors import InputError
from whybox.narrative.facts import Facts, facts_of, size_word
from whybox.narrative.template import template_narrative
from whybox.narrative.verify import Claim, Verification, verify

AUDIENCES = ("lay", "expert")


@dataclass
class Narrative:
    text: str
    claims: list[Claim]
    narrator: str
    audience: str
    attempts: int = 1
    issues: list[str] = field(default_factory=list)

    @property
    def verification(self) -> Verification:
        return Verification(self.claims)

    @property
    def supported(self) -> int:
        return self.verification.supported

    @property
    def contradicted(self) -> int:
        return self.verification.contradicted

    @property
    def unverifiable(self) -> int:
        return self.verification.unverifiable

    @property
    def score(self) -> float:
        return self.verification.score

    @property
    def ok(self) -> bool:
        return self.verification.ok and not self.issues

    @property
    def flagged(self) -> bool:
        return not self.ok

    def to_dict(self) -> dict[str, Any]:
        return {"text": self.text, "narrator": self.narrator, "audience": self.audience, "attempts": self.attempts,
                "ok": self.ok, "flagged": self.flagged, "score": self.score, "supported": self.supported,
                "contradicted": self.contradicted, "unverifiable": self.unverifiable, "issues": self.issues,
                "claims": [c.to_dict() for c in self.claims]}

    def __str__(self) -> str:
        return self.text


def narrate(explanation: Explanation, *, row: int = 0, narrator: Any = "template", audience: str = "lay",
            max_features: int = 5) -> Narrative:
    """Narrate one row of an explanation and verify the narrative against it.

    narrator : "template" (deterministic, offline, default) or an :class:`LLMNarrator`.
    audience : "lay" (no numbers beyond the score) or "expert" (attribution values and the method)."""
    from whybox.params import PARAMS, check

    row = check("row", row)
    if row >= len(explanation):
        raise InputError(f"row must be an integer in 0..{len(explanation) - 1} (the explanation has {len(explanation)} "
                         f"row(s)), got {row}")
    check("max_features", max_features, decl=PARAMS["max_features_narrated"])
    if audience not in AUDIENCES:
        raise InputError(f"audience must be one of {AUDIENCES}, got {audience!r}")
    f = facts_of(explanation, row)
    if isinstance(narrator, str):
        if narrator != "template":
            raise InputError(f"narrator must be 'template' or an LLMNarrator, got {narrator!r}")
        text = template_narrative(f, audience=audience, max_features=max_features)
        return Narrative(text, verify(text, f).claims, "template", audience)
    from whybox.narrative.llm import LLMNarrator

    if not isinstance(narrator, LLMNarrator):
        raise InputError(f"narrator must be 'template' or an LLMNarrator, got {type(narrator).__name__}")
    text, ver, attempts, issues = narrator.narrate(f, audience)
    return Narrative(text, ver.claims, f"llm:{narrator.client.model}", audience, attempts, issues)


def verify_narrative(text: str, explanation: Explanation, *, row: int = 0) -> Narrative:
    """Check any text (e.g. written by a person) against an explanation."""
    if not isinstance(text, str) or not text.strip():
        raise InputError("the narrative to verify is empty")
    f = facts_of(explanation, row)
    return Narrative(text, verify(text, f).claims, "given", "lay")


__all__ = ["narrate", "verify_narrative", "Narrative", "Claim", "Facts", "size_word", "AUDIENCES"]
