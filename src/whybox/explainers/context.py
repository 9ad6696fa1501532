"""A representation bound to the rows being explained: what recipes call to query the model.

Recipes never build model inputs themselves; they ask the context for the outputs of a design
(binary masks over interpretable features, or offsets/points in input space). A text representation
provides the same ``evaluate_masks`` for word masks, so every masking recipe works on text unchanged.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np

from whybox import engine
from whybox.background import Background
from whybox.core.features import FeatureSpec
from whybox.errors import InputError
from whybox.models.adapters import Model


@dataclass
class TabularContext:
    model: Model
    X: np.ndarray                 # (n, p) rows to explain
    spec: FeatureSpec
    background: Background
    targets: np.ndarray           # (n,) output index per row
    fx: np.ndarray                # (n,) f(x)[target]
    rng: np.random.Generator
    chunk_rows: int = engine.DEFAULT_CHUNK_ROWS
    _fb: np.ndarray | None = field(default=None, repr=False)   # f(background rows), (B, k)
    n_outputs_all: int = 0          # k in the all-outputs mode (see all_outputs), else 0
    f_rows: np.ndarray | None = field(default=None, repr=False)   # the model's outputs on X (n, k), when known
    memo: dict = field(default_factory=dict, repr=False)       # what a recipe's cost and run share (one call)
    prefetched: tuple | None = field(default=None, repr=False)  # (column masks, raw outputs): prefetch_design

    # -- all outputs at once ---------------------------------------------------------------------
    def all_outputs(self, outputs: np.ndarray) -> None:
        """Explain every output in one pass over the model rows: from here on the context shows the
        recipe n*k *virtual rows* (row i, output t), in that order, while every model query is made
        once per real input and keeps all k outputs."""
        n, k = outputs.shape
        self.n_outputs_all = int(k)
        self.targets = np.tile(np.arange(k, dtype=np.intp), n)
        self.fx = outputs.reshape(n * k).astype(float)

    def _virtual(self, V: np.ndarray) -> np.ndarray:
        """(n, ..., k) outputs -> (n*k, ...) virtual rows."""
        n, k = V.shape[0], V.shape[-1]
        return np.moveaxis(V, -1, 1).reshape((n * k,) + V.shape[1:-1])

    KEPT_PER_CHUNK_ROW = 64      # kept values per block: at most this many per row of chunk_rows

    def row_blocks(self, per_row: int):
        """Sub-contexts over consecutive blocks of the real rows, each keeping at most
        ``KEPT_PER_CHUNK_ROW * chunk_rows`` values when every row keeps ``per_row`` (at least one row
        per block): recipes that keep a large design per row fit block by block, so their memory is
        bounded by ``chunk_rows`` and does not grow with the number of rows."""
        n = self.X.shape[0]
        k = self.n_outputs_all or 1
        size = max(1, self.KEPT_PER_CHUNK_ROW * self.chunk_rows // max(1, per_row * k))
        self._background_outputs()                      # once, shared by every block
        for a in range(0, n, size):
            b = min(n, a + size)
            yield replace(self, X=self.X[a:b], targets=self.targets[a * k:b * k], fx=self.fx[a * k:b * k],
                          f_rows=None if self.f_rows is None else self.f_rows[a:b], prefetched=None)

    @property
    def _engine_targets(self) -> np.ndarray | None:
        return None if self.n_outputs_all else self.targets

    @property
    def n(self) -> int:
        return self.X.shape[0] * (self.n_outputs_all or 1)

    @property
    def d(self) -> int:
        return self.spec.n_features

    @property
    def p(self) -> int:
        return self.X.shape[1]

    @property
    def has_gradient(self) -> bool:
        return self.model.has_gradient

    # -- masking (binary) neighbourhoods ------------------------------------------------------
    def prefetch_design(self, Z: np.ndarray) -> np.ndarray | None:
        """Before the rows' own outputs are known: one model call for the rows, the background rows and a
        recipe's fixed design Z when they fit in one call (:func:`whybox.engine.prefetch_masked`); returns
        the outputs on the rows and then the background rows (n + B, k), or None (nothing was called).
        The next :meth:`evaluate_masks` on the same Z reduces the kept outputs instead of calling."""
        Zc = self.spec.column_masks(np.asarray(Z, bool))
        got = engine.prefetch_masked(self.model, self.X, Zc, self.background,
                                     np.concatenate([self.X, self.background.data]), chunk_rows=self.chunk_rows)
        if got is None:
            return None
        self.prefetched = (Zc, got[1])
        return got[0]

    def evaluate_masks(self, Z: np.ndarray) -> np.ndarray:
        """v_x(z) for every row x and mask z: (n, m)."""
        Zc = self.spec.column_masks(np.asarray(Z, bool))
        pre = None
        if self.prefetched is not None and self.prefetched[0].shape == Zc.shape and (
                self.prefetched[0] is Zc or np.array_equal(self.prefetched[0], Zc)):
            pre, self.prefetched = self.prefetched[1], None          # used once
        V = engine.masked_outputs(self.model, self.X, Zc, self.background, self._engine_targets,
                                  chunk_rows=self.chunk_rows, f_rows=self.f_rows,
                                  f_bg=lambda: self.background.weights @ self._background_outputs(), prefetched=pre)
        return self._virtual(V) if self.n_outputs_all else V

    def evaluate_strata(self, Z: np.ndarray, perms: np.ndarray, arena: engine.Arena | None = None,
                        slot: str = "strata") -> np.ndarray:
        """Outputs of a stratified design (n, B, m): stratum b is background row b with the base
        feature masks Z permuted by perms[b] (see :func:`whybox.engine.stratified_outputs`); with an
        ``arena`` (:func:`whybox.engine.workspace`) they live in its ``slot`` (one output per row; all
        outputs make virtual rows, a fresh array)."""
        col_index = perms[:, self.spec.group_of_column]
        V = engine.stratified_outputs(self.model, self.X, np.asarray(Z, bool), col_index, self.background,
                                      self._engine_targets, chunk_rows=self.chunk_rows, arena=arena, slot=slot)
        return self._virtual(V) if self.n_outputs_all else V

    def evaluate_spans(self, rows: np.ndarray, Z: np.ndarray, perms: np.ndarray, strata: np.ndarray,
                       start: np.ndarray, stop: np.ndarray, arena: engine.Arena | None = None,
                       slot: str = "spans") -> np.ndarray:
        """Real rows on a ragged stratified design: piece j is real row rows[j] on stratum strata[j]
        (background row, its features permuted by perms as in :meth:`evaluate_strata`), seeing
        Z[start[j]:stop[j]]; the values piece after piece, (L,), or (k, L) in the all-outputs mode, in one
        stream of model calls (see :func:`whybox.engine.span_outputs`), in ``arena``'s ``slot`` when one is given."""
        col_index = perms[:, self.spec.group_of_column]
        V = engine.span_outputs(self.model, self.X, np.asarray(Z, bool), col_index, self.background,
                                None if self.n_outputs_all else self.targets, rows, strata, start, stop,
                                chunk_rows=self.chunk_rows, arena=arena, slot=slot)
        return V.T if self.n_outputs_all else V

    def _background_outputs(self) -> np.ndarray:
        """f(b) for every background row, evaluated once per context: (B, k)."""
        if self._fb is None:
            self._fb = engine.chunked_outputs(self.model, self.background.data, chunk_rows=self.chunk_rows)
        return self._fb

    def base_value(self) -> np.ndarray:
        """v_x(empty) = E_b f(b)[target] for every row: (n,)."""
        return (self.background.weights @ self._background_outputs())[self.targets]

    def evaluate_background_rows(self) -> np.ndarray:
        """f_target(b) for every explained row's target and every background row: (n, B)."""
        return self._background_outputs()[:, self.targets].T

    # -- continuous neighbourhoods (input space) ------------------------------------------------
    def scale(self) -> np.ndarray:
        return self.background.scale()

    def evaluate_shifts(self, E: np.ndarray) -> np.ndarray:
        V = engine.shifted_outputs(self.model, self._real_numeric_X(), E, self._engine_targets,
                                   chunk_rows=self.chunk_rows)
        return self._virtual(V) if self.n_outputs_all else V

    def gradients(self, P: np.ndarray, targets: np.ndarray, *, fd_step: float) -> np.ndarray:
        step = fd_step * self.scale()
        k = self.n_outputs_all
        if k:
            # P holds the points of every virtual row (row i, output t) in that order; the points do not
            # depend on t, so each distinct point is differentiated once for all k outputs
            n = self.X.shape[0]
            M = len(P) // (n * k)
            Q = P.reshape(n, k, M, -1)
            if len(P) == n * k * M and all(np.array_equal(Q[:, t], Q[:, 0]) for t in range(1, k)):
                G = engine.gradients(self.model, Q[:, 0].reshape(n * M, -1), None, step=step,
                                     chunk_rows=self.chunk_rows)                   # (n*M, p, k)
                return np.moveaxis(G.reshape(n, M, -1, k), -1, 1).reshape(len(P), -1)
        return engine.gradients(self.model, P, targets, step=step, chunk_rows=self.chunk_rows)

    def evaluate_points(self, P: np.ndarray, targets: np.ndarray) -> np.ndarray:
        if self.n_outputs_all:          # repeated points (one per virtual row) are queried once
            uniq, inv = np.unique(np.asarray(P, float), axis=0, return_inverse=True)
            out = engine.chunked_outputs(self.model, uniq, chunk_rows=self.chunk_rows)
            return engine._select(out[inv.reshape(-1)], targets)
        return engine._select(engine.chunked_outputs(self.model, P, chunk_rows=self.chunk_rows), targets)

    def _real_numeric_X(self, allow_nan: bool = False) -> np.ndarray:
        engine.check_numeric(self.X, "gradient and Gaussian-noise methods")
        X = self.X.astype(float)
        missing = np.isnan(X).any(axis=0)
        if missing.any() and not allow_nan:
            cols = [self.spec.columns[j] for j in np.flatnonzero(missing)][:8]
            raise InputError(f"column(s) {cols} hold missing values (NaN): gradient and Gaussian-noise methods cannot "
                             "perturb a missing value; use a masking method (kernelshap, lime, shapley, occlusion), "
                             "which passes NaN through to the model")
        return X

    def numeric_X(self, allow_nan: bool = False) -> np.ndarray:
        """The rows as floats (in the all-outputs mode one copy per virtual row); NaN refused unless
        ``allow_nan`` (the tree recipe sends it down the trees' missing branches)."""
        X = self._real_numeric_X(allow_nan)
        return np.repeat(X, self.n_outputs_all, axis=0) if self.n_outputs_all else X

    def baselines(self, baseline: str | None) -> tuple[np.ndarray, np.ndarray]:
        """Baseline rows and weights for path methods: 'mean' of the background, each background
        row ('expected', averaged with the background weights), or 'zeros'."""
        bg = self.background
        engine.check_numeric(bg.data, "path methods (integrated_gradients)")
        data = bg.data.astype(float)
        if baseline in (None, "auto"):
            baseline = "mean" if bg.n_rows > 1 else "expected"
        if baseline == "mean":
            return (bg.weights @ data)[None, :], np.ones(1)
        if baseline == "expected":
            return data, bg.weights
        if baseline == "zeros":
            return np.zeros((1, self.p)), np.ones(1)
        raise InputError(f"baseline must be 'mean', 'expected' or 'zeros', got {baseline!r}")

    # -- cost accounting -------------------------------------------------------------------------
    def mask_cost(self, Z: np.ndarray) -> int:
        """Model rows that evaluate_masks(Z) will spend (full/empty masks are cheap: f(x) when the
        context does not hold it, and the background rows once, which :func:`explain_rows` evaluates
        with the explained rows for every masking recipe)."""
        Zc = self.spec.column_masks(np.asarray(Z, bool))
        full, empty = engine.full_and_empty(Zc)
        inner = int((~(full | empty)).sum())
        return (self.n * inner * self.background.n_rows + (self.n if full.any() and self.f_rows is None else 0)
                + self.background.n_rows)

    def gradient_cost(self, n_points: int) -> int:
        return n_points * (1 if self.has_gradient else 2 * self.p)
