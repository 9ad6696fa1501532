"""Feature metadata: column names, kinds and groups.

A *column* is what the model sees. An *interpretable feature* is what an explanation talks about: one
column, or a group of columns (a one-hot block, or any user-given set) that is switched on and off
together and receives one attribution.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

import numpy as np

from whybox.errors import InputError

KINDS = ("continuous", "binary", "categorical")


@dataclass(frozen=True)
class FeatureSpec:
    """Columns, their kinds, and the grouping of columns into interpretable features.

    Attributes
    ----------
    columns : list of column names (what the model sees), length p.
    kinds : kind of each column: "continuous", "binary" or "categorical".
    groups : list of column-index arrays, one per interpretable feature (length d); they partition
        the columns.
    names : name of each interpretable feature (length d).
    """

    columns: list[str]
    kinds: list[str]
    groups: list[np.ndarray] = field(repr=False)
    names: list[str]

    @property
    def n_columns(self) -> int:
        return len(self.columns)

    @property
    def n_features(self) -> int:
        return len(self.groups)

    def named_groups(self) -> dict[str, list[str]] | None:
        """{feature name: its column names} for the features made of several columns (None if none)."""
        g = {name: [self.columns[c] for c in cols] for name, cols in zip(self.names, self.groups) if len(cols) > 1}
        return g or None

    def column_masks(self, Z: np.ndarray) -> np.ndarray:
        """Map interpretable masks Z (..., d) to column masks (..., p) (Z itself when every feature
        is its own column, in order)."""
        if self.is_identity:
            return Z
        return Z[..., self.group_of_column]

    @property
    def is_identity(self) -> bool:
        return len(self.groups) == len(self.columns) and all(
            len(g) == 1 and g[0] == j for j, g in enumerate(self.groups))

    @property
    def group_of_column(self) -> np.ndarray:
        out = np.empty(self.n_columns, dtype=np.intp)
        for g, cols in enumerate(self.groups):
            out[cols] = g
        return out

    def aggregate(self, column_values: np.ndarray) -> np.ndarray:
        """Sum per-column values (..., p) into per-feature values (..., d)."""
        if all(len(g) == 1 for g in self.groups):
            order = np.array([g[0] for g in self.groups])
            return column_values[..., order]
        return np.stack([column_values[..., g].sum(axis=-1) for g in self.groups], axis=-1)

    def display_values(self, X: np.ndarray) -> np.ndarray:
        """Values to show for each interpretable feature of each row (n, d): float64 when every feature is
        one numeric column (no Python object per value), else an object array.

        A single column shows its value; a one-hot group shows the name of its active column
        (or the values joined when the group is not one-hot)."""
        if all(len(g) == 1 for g in self.groups) and X.dtype.kind in "iuf":
            return X[:, [g[0] for g in self.groups]].astype(float)
        out = np.empty((X.shape[0], self.n_features), dtype=object)
        for g, cols in enumerate(self.groups):
            if len(cols) == 1:
                out[:, g] = X[:, cols[0]]
                continue
            block = X[:, cols]
            for i in range(X.shape[0]):
                row = block[i]
                try:
                    on = np.flatnonzero(np.asarray(row, dtype=float) > 0.5)
                except (TypeError, ValueError):
                    on = np.array([], dtype=int)
                if len(on) == 1 and all(float(v) in (0.0, 1.0) for v in row):
                    out[i, g] = self.columns[cols[on[0]]]
                else:
                    out[i, g] = ", ".join(str(v) for v in row)
        return out

    @classmethod
    def build(cls, X: np.ndarray, *, columns: Sequence[str] | None = None,
              groups: Mapping[str, Sequence[Any]] | Sequence[Sequence[Any]] | None = None,
              kinds: Mapping[str, str] | Sequence[str] | None = None,
              base_kinds: Sequence[str] | None = None) -> "FeatureSpec":
        """Infer a FeatureSpec from data.

        kinds: one per column, or a mapping for some columns; the others take ``base_kinds`` when
        given (e.g. from the dtypes only), else are inferred from X's values.

        groups: a mapping {group name: [column names or indices]} or a list of lists (named by their
        first column, or "a|b|c"). Columns not in any group are their own feature; the order of
        interpretable features follows the first column of each feature.
        """
        p = X.shape[1]
        if columns is None:
            columns = [f"x{j}" for j in range(p)]
        columns = [str(c) for c in columns]
        if len(columns) != p:
            raise InputError(f"feature_names has {len(columns)} names but X has {p} columns")
        if len(set(columns)) != p:
            dup = sorted({c for c in columns if columns.count(c) > 1})
            raise InputError(f"feature_names contains duplicates: {dup}")
        index = {c: j for j, c in enumerate(columns)}

        def resolve(ref: Any, where: str) -> int:
            if isinstance(ref, (int, np.integer)) and not isinstance(ref, bool):
                if not 0 <= int(ref) < p:
                    raise InputError(f"{where}: column index {ref} out of range (0..{p - 1})")
                return int(ref)
            if str(ref) not in index:
                raise InputError(f"{where}: unknown feature {ref!r}; known features: {columns}")
            return index[str(ref)]

        # kinds
        base = list(base_kinds) if base_kinds is not None else [infer_kind(X[:, j]) for j in range(p)]
        if kinds is None:
            kind_list = base
        elif isinstance(kinds, Mapping):
            kind_list = base
            for ref, k in kinds.items():
                kind_list[resolve(ref, "kinds")] = k
        else:
            kind_list = list(kinds)
            if len(kind_list) != p:
                raise InputError(f"kinds has {len(kind_list)} entries but X has {p} columns")
        for k in kind_list:
            if not isinstance(k, str) or k not in KINDS:
                raise InputError(f"kinds: unknown feature kind {k!r}; expected one of {KINDS}")

        # groups
        assigned: dict[int, str] = {}
        named: list[tuple[str, list[int]]] = []
        if groups is not None:
            items = groups.items() if isinstance(groups, Mapping) else (
                (None, g) for g in groups)
            for gname, refs in items:
                if isinstance(refs, (str, bytes, int, np.integer)) or not hasattr(refs, "__iter__"):
                    raise InputError(f"groups: group {gname!r} must be a list of columns, got {refs!r}")
                cols = [resolve(r, f"group {gname!r}" if gname else "groups") for r in refs]
                if not cols:
                    raise InputError(f"group {gname!r} is empty")
                if gname is None:
                    gname = "|".join(columns[c] for c in cols)
                for c in cols:
                    if c in assigned:
                        raise InputError(f"column {columns[c]!r} is in two groups: {assigned[c]!r} and {gname!r}")
                    assigned[c] = str(gname)
                named.append((str(gname), sorted(cols)))
        feats: list[tuple[int, str, np.ndarray]] = []
        for gname, cols in named:
            feats.append((cols[0], gname, np.asarray(cols, dtype=np.intp)))
        for j in range(p):
            if j not in assigned:
                feats.append((j, columns[j], np.asarray([j], dtype=np.intp)))
        feats.sort(key=lambda t: t[0])
        names = [f[1] for f in feats]
        if len(set(names)) != len(names):
            raise InputError(f"a group name collides with a column name: {names}")
        return cls(columns=columns, kinds=kind_list, groups=[f[2] for f in feats], names=names)


def infer_kind(col: np.ndarray) -> str:
    if col.dtype == object:
        try:
            col = col.astype(float)
        except (TypeError, ValueError):
            return "categorical"
    vals = np.unique(col[np.isfinite(col)])
    if len(vals) <= 2 and set(vals.tolist()) <= {0.0, 1.0}:
        return "binary"
    return "continuous"
