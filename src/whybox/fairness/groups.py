"""Groups of a protected attribute, the model's decisions, and the group rates fairness is read from."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from whybox.errors import InputError


def groups_of(col: pd.Series, max_levels: int = 12) -> tuple[list[str], np.ndarray]:
    """Group labels and the group index of every row (-1: missing): each value for a column with few
    values, else below/above the median."""
    vals = col.dropna().unique()
    if len(vals) <= max_levels:
        labels = sorted(map(str, vals))
        pos = {lab: i for i, lab in enumerate(labels)}
        idx = np.array([pos[str(v)] if pd.notna(v) else -1 for v in col], dtype=int)
        return labels, idx
    if not pd.api.types.is_numeric_dtype(col):
        raise InputError(f"{col.name!r} has {len(vals)} distinct non-numeric values: pick a column with at most {max_levels}")
    med = float(col.median())
    return [f"≤ {med:.4g}", f"> {med:.4g}"], np.where(col.isna(), -1, np.where(col <= med, 0, 1))


def check_attribute(X: pd.DataFrame, attribute: Any, what: str = "attribute") -> str:
    if not isinstance(X, pd.DataFrame):
        raise InputError("fairness needs the rows as a DataFrame (named columns)")
    if not isinstance(attribute, str) or attribute not in X.columns:
        raise InputError(f"unknown {what} {attribute!r}; choose one of {list(X.columns)}")
    return attribute


def label_index(y: Any, names: list[str]) -> np.ndarray | None:
    """True labels as output indices: matched by name, else integer labels in range; None otherwise."""
    if y is None:
        return None
    y = np.asarray(y)
    names = [str(n) for n in names]
    ys = [str(v) for v in y]
    if all(v in names for v in ys):
        pos = {n: i for i, n in enumerate(names)}
        return np.array([pos[v] for v in ys])
    try:
        yi = y.astype(int)
    except (TypeError, ValueError):
        return None
    return yi if ((yi >= 0) & (yi < len(names))).all() and (yi == y).all() else None


@dataclass
class Decisions:
    """A model's answers on rows, as fairness reads them.

    For a classifier: ``decided[i]`` = the model picks the favourable class ``positive`` for row i,
    ``score`` its probability (or score). For a regressor ``decided`` is None and ``score`` is the
    predicted value: there is no decision, only a value per group."""

    score: np.ndarray
    decided: np.ndarray | None
    positive: str | None

    @property
    def is_classifier(self) -> bool:
        return self.decided is not None


class Scorer:
    """The model behind fairness checks: one prepared whybox Model for DataFrames with ``X``'s
    columns, the favourable class, and its decisions on any such rows (queries are counted)."""

    def __init__(self, model: Any, X: pd.DataFrame, positive: Any = None, *, class_names: list[str] | None = None):
        from whybox.problem import Problem

        if not isinstance(X, pd.DataFrame) or X.empty:
            raise InputError("fairness needs the rows as a non-empty DataFrame (named columns)")
        self.problem = Problem.build(model, data=X)
        self.columns = list(X.columns)
        out = self._raw(X.iloc[:1])
        m = self.problem.model
        self.is_classifier = bool(m.is_classifier) if m.is_classifier is not None else out.shape[1] > 1
        names = class_names or m.output_names or [str(i) for i in range(out.shape[1])]
        if class_names is not None and len(class_names) != out.shape[1]:
            raise InputError(f"class_names has {len(class_names)} names for {out.shape[1]} model outputs")
        self.names = [str(n) for n in names]
        if not self.is_classifier:
            self.pos = 0
            if positive is not None:
                raise InputError("positive (the favourable class) applies to classifiers; this model is a regressor")
        elif positive is None:
            self.pos = len(self.names) - 1
        elif str(positive) in self.names:
            self.pos = self.names.index(str(positive))
        else:
            raise InputError(f"positive class {positive!r} is not one of the model's classes {self.names}")

    @property
    def positive(self) -> str | None:
        return self.names[self.pos] if self.is_classifier else None

    def _raw(self, X: pd.DataFrame) -> np.ndarray:
        return self.problem.model(self.problem.matrix(X[self.columns]))

    def __call__(self, X: pd.DataFrame) -> Decisions:
        out = self._raw(X)
        if not self.is_classifier:
            return Decisions(out[:, 0].astype(float), None, None)
        return Decisions(out[:, self.pos].astype(float), out.argmax(axis=1) == self.pos, self.positive)

    @property
    def n_queries(self) -> int:
        return int(self.problem.model.n_rows)

    def y_positive(self, y: Any) -> np.ndarray | None:
        """True labels as 1 = the favourable class (None for a regressor or when they do not match)."""
        if not self.is_classifier:
            return None
        yi = label_index(y, self.names)
        return None if yi is None else (yi == self.pos)


def group_rates(dec: Decisions, gidx: np.ndarray, labels: list[str], y_pos: np.ndarray | None = None,
                y_value: np.ndarray | None = None) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Per group: n, selection rate, true-positive rate, accuracy (classifiers) or mean prediction
    (regressors); and the gaps between the groups (largest minus smallest)."""
    rows = []
    for g, lab in enumerate(labels):
        m = gidx == g
        if not m.any():
            continue
        r: dict[str, Any] = {"group": lab, "n": int(m.sum())}
        if dec.is_classifier:
            r["selection_rate"] = float(dec.decided[m].mean())
            if y_pos is not None:
                r["accuracy"] = float((dec.decided[m] == y_pos[m]).mean())
                actual = m & y_pos
                r["true_positive_rate"] = float(dec.decided[actual].mean()) if actual.any() else None
        else:
            r["mean_prediction"] = float(dec.score[m].mean())
            if y_value is not None:
                r["mean_absolute_error"] = float(np.abs(dec.score[m] - y_value[m]).mean())
        rows.append(r)
    gaps: dict[str, Any] = {}
    if dec.is_classifier:
        sr = [r["selection_rate"] for r in rows]
        gaps["demographic_parity_difference"] = float(max(sr) - min(sr)) if rows else None
        tprs = [r["true_positive_rate"] for r in rows if r.get("true_positive_rate") is not None]
        gaps["equal_opportunity_difference"] = float(max(tprs) - min(tprs)) if len(tprs) >= 2 else None
        gaps["accuracy"] = float((dec.decided[gidx >= 0] == y_pos[gidx >= 0]).mean()) if y_pos is not None else None
    else:
        mp = [r["mean_prediction"] for r in rows]
        gaps["mean_prediction_difference"] = float(max(mp) - min(mp)) if rows else None
    return rows, gaps
