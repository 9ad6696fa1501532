"""The facts a narrative may state about one explained row, and the plain-language size words."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from whybox.core.explanation import Explanation
from whybox.errors import InputError

ORDINALS = ["most important", "second most important", "third most important", "fourth most important",
            "fifth most important", "sixth most important", "seventh most important", "eighth most important"]

METHOD_WORDS = {
    "kernelshap": "KernelSHAP (Shapley values estimated by sampling which features are known)",
    "shapley": "exact Shapley values (every combination of known and unknown features)",
    "lime": "LIME (a simple model fitted to the model's answers when features are hidden)",
    "occlusion": "occlusion (hiding one feature at a time)",
    "clime": "C-LIME (a linear fit to the model's answers under small random changes)",
    "gradient": "gradients (how fast the score changes with each feature)",
    "gradxinput": "gradient times input",
    "smoothgrad": "SmoothGrad (gradients averaged over small random changes)",
    "integrated_gradients": "Integrated Gradients (gradients accumulated from a baseline to this case)",
}


def size_word(share: float) -> str:
    """Plain-language size of an effect from its share of the largest |attribution|."""
    if share >= 0.5:
        return "strongly"
    if share >= 0.2:
        return "moderately"
    return "slightly"


# What each size word may truthfully describe (shares of the largest |value|); wider than the template's
# own thresholds, so a narrator that rounds differently is not called a liar.
SIZE_RANGES = {"strongly": (0.4, 1.0), "moderately": (0.15, 0.6), "slightly": (0.0, 0.3)}


@dataclass
class Facts:
    names: list[str]
    values: np.ndarray          # attribution per feature
    shown: list[str]            # displayed feature values ("" when unknown)
    prediction: float
    base: float                 # NaN when the method has none
    target: str
    method: str
    order: np.ndarray           # features by |value|, largest first

    @property
    def vmax(self) -> float:
        return float(np.max(np.abs(self.values))) if self.values.size else 0.0

    def share(self, j: int) -> float:
        return 0.0 if self.vmax == 0 else abs(float(self.values[j])) / self.vmax

    def rank(self, j: int) -> int:
        return int(np.where(self.order == j)[0][0]) + 1


def facts_of(exp: Explanation, row: int = 0) -> Facts:
    if not isinstance(exp, Explanation):
        raise InputError(f"narrate needs a whybox.Explanation, got {type(exp).__name__}")
    if not 0 <= row < len(exp):
        raise InputError(f"row {row} is out of range: the explanation has {len(exp)} row(s)")
    if exp.all_outputs:
        raise InputError("a narrative tells one output: narrate e[:, :, <label>] (the explanation covers every output)")
    v = np.asarray(exp.values[row], float)
    if not np.isfinite(v).all():
        raise InputError("the explanation has NaN/inf attributions; nothing can be narrated truthfully")
    shown = ["" if exp.data is None else str(x) for x in (exp.data[row] if exp.data is not None else [None] * len(v))]
    return Facts(list(exp.feature_names), v, shown, float(exp.predictions[row]), float(exp.base_values[row]),
                 str(exp.target_names()[row]), exp.method, np.argsort(-np.abs(v), kind="stable"))
