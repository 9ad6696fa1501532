"""Numeric encoding of a prepared problem's inputs, and the sampler that global surrogates query with.

The encoding is what an interpretable surrogate is fitted on: numeric columns as they are,
categorical columns as integer codes of their categories (sorted, as the reference data has them;
an unseen category becomes -1). :class:`Encoder` is a scikit-learn transformer, so the exported
surrogate is a Pipeline that takes the same inputs as the black box.

The sampler draws *perturbed* rows around the reference rows (Gaussian noise of ``scale`` x the
column's standard deviation on numeric columns, clipped to the observed range and rounded where the
column holds only integers; binary columns flipped and categorical ones redrawn from their marginal
with probability ``flip``), and rows *near given points* (the same with half the scale), which is
how the active rounds look around the places where the surrogate disagrees with the model.
"""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, TransformerMixin

from whybox.core.validation import converts_to_float
from whybox.errors import InputError


class Encoder(TransformerMixin, BaseEstimator):
    """Model inputs (array or DataFrame) -> float matrix: categorical columns become the index of their
    value in ``categories[j]`` (-1 when unseen); other columns are cast to float.

    Parameters
    ----------
    columns : column names in model-input order (a DataFrame is reordered by them).
    categories : for each column, the list of its categories, or None for a numeric column.
    """

    def __init__(self, columns: Sequence[str] | None = None, categories: Sequence[Any] | None = None):
        self.columns = columns
        self.categories = categories

    def fit(self, X: Any = None, y: Any = None) -> "Encoder":
        return self

    def transform(self, X: Any) -> np.ndarray:
        if isinstance(X, pd.DataFrame):
            if self.columns is not None:
                missing = [c for c in self.columns if c not in X.columns]
                if missing:
                    raise InputError(f"X is missing column(s) {missing}")
                X = X[list(self.columns)]
            numeric = all(pd.api.types.is_numeric_dtype(t) for t in X.dtypes)
            X = X.to_numpy(dtype=float if numeric else object)
        X = np.asarray(X)
        if X.ndim != 2 or (self.categories is not None and X.shape[1] != len(self.categories)):
            raise InputError(f"X must be 2-D with {len(self.categories or [])} columns, got shape {X.shape}")
        out = np.empty(X.shape, dtype=float)
        for j, cats in enumerate(self.categories or [None] * X.shape[1]):
            if cats is None:
                out[:, j] = X[:, j].astype(float)
            else:
                lookup = {c: i for i, c in enumerate(cats)}
                out[:, j] = [lookup.get(v, -1) for v in X[:, j]]
        return out

    def inverse_transform(self, E: np.ndarray) -> np.ndarray:
        """Codes back to category values (object array when any column is categorical)."""
        E = np.asarray(E, dtype=float)
        if not any(c is not None for c in (self.categories or [])):
            return E
        out = np.empty(E.shape, dtype=object)
        for j, cats in enumerate(self.categories):
            if cats is None:
                out[:, j] = E[:, j]
            else:
                codes = np.clip(np.rint(E[:, j]).astype(int), 0, len(cats) - 1)
                out[:, j] = np.asarray(cats, dtype=object)[codes]
        return out


class Sampler:
    """Perturbed rows around reference rows, in the encoded space (see the module docstring)."""

    def __init__(self, reference: np.ndarray, kinds: Sequence[str], columns: Sequence[str], *,
                 scale: float = 0.3, flip: float = 0.1):
        if reference is None or len(reference) == 0:
            raise InputError("data (reference rows) is needed to sample around")
        self.kinds = list(kinds)
        self.columns = list(columns)
        cats = []
        for j, k in enumerate(self.kinds):
            col = reference[:, j]
            if k == "categorical" or col.dtype == object and not converts_to_float(col):
                cats.append(sorted({v for v in col if v == v}, key=str))
            else:
                cats.append(None)
        self.encoder = Encoder(self.columns, cats)
        self.E = self.encoder.transform(reference)
        self.scale, self.flip = float(scale), float(flip)
        self.lo, self.hi = np.nanmin(self.E, axis=0), np.nanmax(self.E, axis=0)
        self.std = np.nanstd(self.E, axis=0)
        self.std[self.std == 0] = 1e-12
        self.categorical = np.array([c is not None for c in cats])
        self.binary = np.array([k == "binary" for k in self.kinds]) & ~self.categorical
        self.integer = np.array([not self.categorical[j] and not self.binary[j] and
                                 np.allclose(self.E[:, j], np.rint(self.E[:, j]), equal_nan=True)
                                 for j in range(self.E.shape[1])])
        self.continuous = ~(self.categorical | self.binary)

    @property
    def n_columns(self) -> int:
        return self.E.shape[1]

    def around(self, base: np.ndarray, rng: np.random.Generator, *, scale: float | None = None,
               flip: float | None = None) -> np.ndarray:
        """One perturbed copy of every row of ``base`` (encoded)."""
        scale = self.scale if scale is None else scale
        flip = self.flip if flip is None else flip
        Z = np.array(base, dtype=float, copy=True)
        n = Z.shape[0]
        c = self.continuous
        if c.any():
            Z[:, c] += rng.normal(0.0, 1.0, (n, int(c.sum()))) * (scale * self.std[c])
            Z[:, c] = np.clip(Z[:, c], self.lo[c], self.hi[c])
            ints = self.integer[c]
            if ints.any():
                sub = Z[:, c]
                sub[:, ints] = np.rint(sub[:, ints])
                Z[:, c] = sub
        b = self.binary
        if b.any():
            flips = rng.random((n, int(b.sum()))) < flip
            Z[:, b] = np.where(flips, self.lo[b] + self.hi[b] - Z[:, b], Z[:, b])
        for j in np.flatnonzero(self.categorical):
            redraw = rng.random(n) < flip
            if redraw.any():
                Z[redraw, j] = self.E[rng.integers(0, len(self.E), int(redraw.sum())), j]
        return Z

    def draw(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """``n`` perturbed copies of reference rows drawn uniformly."""
        return self.around(self.E[rng.integers(0, len(self.E), n)], rng)

    def decode(self, E: np.ndarray) -> np.ndarray:
        return self.encoder.inverse_transform(E)

