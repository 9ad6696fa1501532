"""The deterministic, offline template narrator (the default)."""
from __future__ import annotations

import numpy as np

from whybox.narrative.facts import METHOD_WORDS, ORDINALS, Facts, size_word


def _q(s: str) -> str:
    """Data values enter narratives as quoted data (the verifier ignores quoted text)."""
    return "“" + str(s).replace("“", "'").replace("”", "'").replace('"', "'") + "”"


def template_narrative(f: Facts, *, audience: str = "lay", max_features: int = 5) -> str:
    k = min(max_features, len(f.names), len(ORDINALS))
    expert = audience == "expert"
    s = [f"The model's score for {_q(f.target)} is {f.prediction:.3g}"
         + ("" if np.isnan(f.base) else f", against a base value of {f.base:.3g}") + "."]
    idx = [j for j in f.order[:k] if f.values[j] != 0]
    if not idx:
        s.append("No feature moves the score: every attribution is zero.")
    for r, j in enumerate(idx):
        v = float(f.values[j])
        shown = f" (value {_q(f.shown[j])})" if f.shown[j] not in ("", "None") else ""
        verb = "raises" if v > 0 else "lowers"
        num = f" (attribution {v:+.3g})" if expert else ""
        lead = "The" if r == 0 else ("Next, the" if r == 1 else "The")
        s.append(f"{lead} {ORDINALS[r]} feature is {f.names[j]}{shown}, which {size_word(f.share(j))} {verb} "
                 f"the score{num}.")
    rest = len([j for j in range(len(f.names)) if f.values[j] != 0]) - len(idx)
    if rest > 0:
        s.append(f"The other {rest} feature(s) matter less.")
    s.append(f"These attributions come from {METHOD_WORDS.get(f.method, f.method)}.")
    return " ".join(s)
