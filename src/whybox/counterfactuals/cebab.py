"""CEBaB (Abraham et al., NeurIPS 2022): restaurant reviews with human concept-level counterfactual
edits, and the ICaCE evaluation of causal concept explainers (../shared/data/cebab)."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd

from whybox.errors import InputError

CONCEPTS = ("food", "service", "ambiance", "noise")
VALUES = ("Negative", "unknown", "Positive")
SPLITS = ("train_exclusive", "train_inclusive", "train_observational", "dev", "test")


def load_cebab(split: str = "dev", n_groups: int | None = None) -> pd.DataFrame:
    """One row per text: id, original_id, is_original, edit_type, edit_goal, text, label (1..5 or None),
    and one column per concept with its validated majority label (None when missing/"no majority").

    split : a CEBaB split name (read from ../shared/data/cebab) or the path of a JSON file in CEBaB's
    format (e.g. the test split when you have it)."""
    from pathlib import Path

    from whybox.datasets import shared_data_dir

    if isinstance(split, (str, Path)) and str(split).endswith(".json"):
        path = Path(split)
        if not path.is_file():
            raise FileNotFoundError(f"CEBaB file not found: {path}")
    else:
        if split not in SPLITS:
            raise InputError(f"split must be one of {SPLITS} or a .json path, got {split!r}")
        root = shared_data_dir()
        path = None if root is None else root / "cebab" / f"{split}.json"
        if path is None or not path.is_file():
            raise FileNotFoundError(f"CEBaB split {split!r} not found (../shared/data/cebab or $WHYBOX_SHARED_DATA"
                                    + ("; the shared data has no test split: pass its .json path" if split == "test"
                                       else "") + ")")
    recs = json.loads(path.read_text(encoding="utf-8"))
    rows = []
    for r in recs:
        row = {"id": r["id"], "original_id": r["original_id"], "is_original": bool(r["is_original"]),
               "edit_type": r.get("edit_type"), "edit_goal": r.get("edit_goal"), "text": r["description"],
               "label": int(r["review_majority"]) if str(r["review_majority"]).isdigit() else None}
        for c in CONCEPTS:
            v = r.get(f"{c}_aspect_majority")
            row[c] = v if v in VALUES else None
        rows.append(row)
    df = pd.DataFrame(rows)
    if n_groups is not None:
        keep = df["original_id"].drop_duplicates().iloc[:n_groups]
        df = df[df["original_id"].isin(keep)].reset_index(drop=True)
    return df


def pairs(df: pd.DataFrame) -> pd.DataFrame:
    """ICaCE pairs: ordered (base, counterfactual) texts of one review group whose validated label of
    the edited concept differs; for two edits, both must edit that same concept. Columns: base, cf
    (row positions in df), concept, base_value, cf_value."""
    out = []
    for _, g in df.groupby("original_id", sort=False):
        idx = list(g.index)
        for a in idx:
            for b in idx:
                if a == b:
                    continue
                ta, tb = df.at[a, "edit_type"], df.at[b, "edit_type"]
                if df.at[a, "is_original"]:
                    c = tb
                elif df.at[b, "is_original"]:
                    c = ta
                else:
                    c = ta if ta == tb else None
                if c is None or c not in CONCEPTS:
                    continue
                va, vb = df.at[a, c], df.at[b, c]
                if va is None or vb is None or va == vb:
                    continue
                out.append((a, b, c, va, vb))
    return pd.DataFrame(out, columns=["base", "cf", "concept", "base_value", "cf_value"])


def icace_pair_errors(true: np.ndarray, pred: np.ndarray) -> dict[str, np.ndarray]:
    """CEBaB's three errors per pair, between true ICaCE = f(x_cf) - f(x_base) and the estimate: L2
    distance, cosine distance, and the absolute difference of the norms."""
    true, pred = np.asarray(true, float), np.asarray(pred, float)
    nt, npred = np.linalg.norm(true, axis=1), np.linalg.norm(pred, axis=1)
    return {"L2": np.linalg.norm(true - pred, axis=1),
            "cosine": 1 - (true * pred).sum(axis=1) / np.maximum(nt * npred, 1e-12),
            "norm_diff": np.abs(nt - npred)}


def icace_errors(true: np.ndarray, pred: np.ndarray) -> dict[str, float]:
    """CEBaB's three errors (:func:`icace_pair_errors`) averaged over pairs, and the number of pairs."""
    e = icace_pair_errors(true, pred)
    return {**{k: float(v.mean()) for k, v in e.items()}, "pairs": int(len(e["L2"]))}
