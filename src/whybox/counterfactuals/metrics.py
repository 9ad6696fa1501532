"""Quality of a CounterfactualSet: validity, proximity, sparsity, diversity, plausibility, cost.

* validity: share of counterfactuals with the desired outcome (re-queried);
* proximity: mean distance to x (numeric features: |change| / MAD of the data; a changed categorical
  feature or group counts 1) — lower is closer;
* sparsity: mean number of features changed — lower is sparser;
* diversity: mean pairwise distance between the counterfactuals (same distance) — higher is more diverse;
* plausibility: mean distance from each counterfactual to its nearest data row (same distance),
  divided by the median nearest-neighbour distance among data rows — about 1 is as typical as real
  rows, lower is closer to the data;
* queries: model rows spent.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from whybox.counterfactuals import tabular as T


def quality(cs: Any, P: T.Problem, max_reference: int = 2000) -> dict[str, float]:
    V = cs.counterfactuals.to_numpy(dtype=P.x.dtype) if len(cs) else np.empty((0, P.x.shape[0]))
    return {"n": float(len(V)), "queries": float(cs.n_model_rows), **scores(P, V, cs.outputs, max_reference)}


def scores(P: T.Problem, V: np.ndarray, outputs: np.ndarray, max_reference: int = 2000) -> dict[str, float]:
    """Validity, proximity, sparsity, diversity and plausibility of counterfactual rows ``V`` of ``P.x``
    (``outputs``: the model's outputs on them), whichever method found them."""
    if len(V) == 0:
        return {"validity": 0.0, "proximity": float("nan"), "sparsity": float("nan"), "diversity": float("nan"),
                "plausibility": float("nan")}
    out = {"validity": float(P.is_valid(outputs).mean()),
           "proximity": float(T.feature_distance(P, V).mean()),
           "sparsity": float(T.feature_changes(P, V).sum(axis=1).mean())}
    out["diversity"] = float(T.pairwise_distance(P, V, V)[np.triu_indices(len(V), 1)].mean()) if len(V) > 1 else 0.0
    ref, typical = reference(P, max_reference)
    near = T.pairwise_distance(P, V, ref).min(axis=1)
    out["plausibility"] = float(near.mean() / (typical if typical > 0 else 1.0))
    return out


def reference(P: Any, max_reference: int = 2000) -> tuple[np.ndarray, float]:
    """The data rows plausibility compares with (a seeded sample of at most ``max_reference``) and the
    median distance from a data row to its nearest other row. Both depend on the data only, so they are
    computed once per ``P.shared`` (one CounterfactualExplainer)."""
    key = ("reference", max_reference)
    if key not in P.shared:
        rng = np.random.default_rng(0)
        ref = P.data if len(P.data) <= max_reference else P.data[rng.choice(len(P.data), max_reference, replace=False)]
        sub = ref[: min(300, len(ref))]
        dd = T.pairwise_distance(P, sub, ref)
        dd[dd <= 1e-12] = np.inf                       # not the row itself (or an exact duplicate)
        nn = dd.min(axis=1)
        P.shared[key] = (ref, float(np.median(nn[np.isfinite(nn)])) if np.isfinite(nn).any() else 1.0)
    return P.shared[key]
