"""The deterministic, offline template narrator (the default)."""
from __future__ import annotations

import numpy as np

from whybox.narrative.facts import METHOD_WORDS, ORDINALS, Facts, size_word


# verbs the verifier reads as a direction, rotated so that sentences do not all end alike
UP_VERBS = ("raises {o}", "pushes {o} up", "adds to {o}")
DOWN_VERBS = ("lowers {o}", "pulls {o} down", "works against {o}")
SAME = ("Then {x} also {size} {verb}{num}.", "Likewise, {x} {size} {verb}{num}.",
        "After that, {x} {size} {verb} as well{num}.")
OTHER = ("On the other side, {x} {size} {verb}{num}.", "By contrast, {x} {size} {verb}{num}.",
         "Against that, {x} {size} {verb}{num}.")


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
    used = {True: 0, False: 0}
    links = {True: 0, False: 0}
    prev = None
    for r, j in enumerate(idx):
        v = float(f.values[j])
        up = v > 0
        verb = (UP_VERBS if up else DOWN_VERBS)[used[up] % 3]
        used[up] += 1
        shown = f" (value {_q(f.shown[j])})" if f.shown[j] not in ("", "None") else ""
        num = f" (attribution {v:+.3g})" if expert else ""
        size = size_word(f.share(j))
        x = f"{f.names[j]}{shown}"
        if r == 0:
            s.append(f"The {ORDINALS[0]} feature is {x}, which {size} {verb.format(o='the score')}{num}.")
        elif r == 1:
            s.append(f"Next comes {x}: it {size} {verb.format(o='the score')}{num}.")
        else:
            same = up == prev
            form = (SAME if same else OTHER)[links[same] % 3]
            links[same] += 1
            s.append(form.format(x=x, size=size, verb=verb.format(o="it"), num=num))
        prev = up
    rest = len([j for j in range(len(f.names)) if f.values[j] != 0]) - len(idx)
    if rest > 0:
        s.append(f"The other {rest} feature(s) matter less.")
    s.append(f"These attributions come from {METHOD_WORDS.get(f.method, f.method)}.")
    return " ".join(s)
