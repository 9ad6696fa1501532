"""Anchors for text classifiers: "if these words are present, the model says y" (see
:mod:`whybox.anchors.search`). Perturbations keep the anchored words and each other word with
probability 1/2, deleting (or masking) the rest with whybox's text units."""
from __future__ import annotations

import time
from typing import Any

import numpy as np

from whybox.anchors.search import Anchor, check_params, search
from whybox.errors import InputError
from whybox.params import check


class TextAnchors:
    def __init__(self, units: Any):
        self.units = units
        self.words = units.units

    @property
    def n_predicates(self) -> int:
        return self.units.d

    def compatible(self, anchor: tuple, p: int) -> bool:
        return True

    def predicate_text(self, i: int) -> str:
        return f"'{self.words[i]}' is present"

    def feature_of(self, i: int) -> Any:
        return self.words[i]

    def coverage(self, anchor: tuple) -> float:
        return float(0.5 ** len(anchor))

    def sample(self, anchor: tuple, n: int, rng: np.random.Generator) -> tuple[list[str], np.ndarray]:
        Z = rng.random((n, self.units.d)) < 0.5
        Z[:, list(anchor)] = True
        return self.units.texts(Z.astype(float)), Z


def anchor_text(model: Any, text: str, *, threshold: float = 0.95, delta: float = 0.05, epsilon: float = 0.1,
                beam_size: int = 2, max_size: int | None = None, batch_size: int = 100, budget: int = 20_000,
                max_validation: int = 5_000, removal: str = "delete", mask_token: str | None = None,
                seed: int = 0) -> Anchor:
    """The anchor of ``text`` for a text classifier (a pipeline on raw strings, a TextModel, ...)."""
    from whybox.models.text import as_text_model
    from whybox.representations.text import TextUnits

    t0 = time.perf_counter()
    check_params(threshold, delta, epsilon, beam_size, max_size, batch_size, budget, max_validation)
    check("seed", seed)
    if not isinstance(text, str) or not text.strip():
        raise InputError(f"text must be a non-empty string, got {text!r}")
    m = as_text_model(model).child(budget=budget)      # its own counters and budget; never the caller's
    m.cache = True
    units = TextUnits.build(text, units="word", removal=removal, mask_token=mask_token)
    out0 = m([text])
    if out0.shape[1] < 2:
        raise InputError("anchors explain a classifier's decision; this text model returns one score per text")

    def labels(texts: list[str]) -> np.ndarray:
        return m(texts).argmax(axis=1)

    target = int(out0.argmax(axis=1)[0])
    name = m.output_names[target] if m.output_names is not None else target
    return search(TextAnchors(units), m, labels=labels, target=target, target_name=name, threshold=threshold,
                  delta=delta, epsilon=epsilon, beam_size=beam_size, max_size=max_size, batch_size=batch_size,
                  max_validation=max_validation, seed=seed, t0=t0)
