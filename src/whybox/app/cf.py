"""The dashboard's "what would need to change" panel."""
from __future__ import annotations

from typing import Any


def counterfactual_payload(st: Any, body: dict[str, Any]) -> dict[str, Any]:
    frame = st.frame_from(body.get("row", 0), body.get("features") or {})
    desired = body.get("desired_class")
    if desired is None:
        desired = "opposite" if len(st.output_names) == 2 else st.output_names[st.focus]
    cs = st.counterfactual_explainer().explain(frame, k=int(body.get("k", 3)), desired_class=desired,
                                               immutable=body.get("immutable") or (), seed=st.seed,
                                               n_candidates=500)
    d = cs.to_dict()
    return {"counterfactuals": [{"text": t, "changes": c} for t, c in zip(d["text"], d["changes"])],
            "metrics": d["metrics"], "reason": d["reason"], "desired": d["desired"]}
