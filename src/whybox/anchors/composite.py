"""A composite explanation of one row (Hase & Bansal 2020's "Composite"): LIME weights, the anchor,
the local prototypes and the decision boundary, together."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from whybox.anchors.boundary import Boundary, boundary, boundary_text
from whybox.anchors.prototypes import Prototypes, prototypes
from whybox.anchors.search import Anchor
from whybox.anchors.tabular import anchor
from whybox.anchors.text import anchor_text
from whybox.core.explanation import Explanation


@dataclass
class Composite:
    lime: Explanation
    anchor: Anchor
    prototypes: Prototypes | None
    boundary: Boundary
    kind: str                         # "tabular" or "text"

    def text(self, k: int = 5) -> str:
        top = self.lime.top_features(0, k)
        lines = ["LIME: " + ", ".join(f"{n} {v:+.3g}" for n, v in top),
                 "Anchor: " + self.anchor.text(),
                 "Boundary: " + self.boundary.text()]
        if self.prototypes is not None:
            ex = self.prototypes.examples()
            lines.append(f"Prototypes (training rows treated the same way): {list(self.prototypes.prototypes.values())[0]}")
            if hasattr(ex, "to_string"):
                lines.append(ex.to_string(max_cols=12))
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "lime": [{"feature": n, "weight": float(v)} for n, v in self.lime.top_features(0, 10)],
                "anchor": self.anchor.to_dict(), "boundary": self.boundary.to_dict(),
                "prototypes": None if self.prototypes is None else self.prototypes.to_dict()}


def composite(model: Any, x: Any, data: Any, *, seed: int = 0, budget: int = 20_000, n_prototypes: int = 3,
              lime_samples: int = 1000) -> Composite:
    """The four explanations of one tabular row ``x`` with training rows ``data``."""
    import whybox

    bg = whybox.sample(data, min(50, len(data)), seed=seed)
    e = whybox.explain(model, x, method="lime", background=bg, seed=seed, n_samples=lime_samples)
    a = anchor(model, x, data, seed=seed, budget=budget)
    p = prototypes(model, data, x=x, n_prototypes=n_prototypes, n_criticisms=0, seed=seed)
    b = boundary(model, x, data, seed=seed, budget=budget)
    return Composite(e, a, p, b, "tabular")


def composite_text(model: Any, text: str, *, seed: int = 0, budget: int = 20_000, vocabulary: Any = None,
                   lime_samples: int = 1000) -> Composite:
    """The explanations of one text (prototypes need an embedding of training texts: not included here)."""
    import whybox

    e = whybox.explain_text(model, text, method="lime", seed=seed, n_samples=lime_samples)
    e = e[0] if isinstance(e, list) else e
    a = anchor_text(model, text, seed=seed, budget=budget)
    b = boundary_text(model, text, vocabulary=vocabulary, budget=budget)
    return Composite(e, a, None, b, "text")


__all__ = ["Composite", "composite", "composite_text"]
