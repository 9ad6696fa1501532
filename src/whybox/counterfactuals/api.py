"""``whybox.counterfactuals.counterfactuals``: one call, constraints by name, one result type."""
from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd

from whybox.core.validation import converts_to_float
from whybox.counterfactuals import tabular as T
from whybox.errors import InputError


@dataclass
class CounterfactualSet:
    """The original row, its counterfactuals, what changed, the model outputs, and quality metrics."""

    original: pd.DataFrame                  # one row
    counterfactuals: pd.DataFrame           # k rows (possibly 0)
    changes: list[dict[str, tuple[Any, Any]]]
    outputs: np.ndarray                     # (k, n_outputs)
    original_output: np.ndarray             # (n_outputs,)
    desired: str
    output_names: list[Any] | None
    metrics: dict[str, float] = field(default_factory=dict)
    n_model_rows: int = 0
    n_model_calls: int = 0
    seconds: float = 0.0
    reason: str | None = None               # why fewer than k (or none) were found
    info: dict[str, Any] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.counterfactuals)

    def _label(self, out: np.ndarray) -> str:
        if self.output_names is not None and len(out) > 1:
            j = int(np.argmax(out))
            return f"{self.output_names[j]} ({out[j]:.2f})"
        return f"{out[0]:.4g}"

    def describe(self) -> list[str]:
        """One plain sentence per counterfactual."""
        lines = []
        for ch, out in zip(self.changes, self.outputs):
            parts = [f"{f} from {_fmt(a)} to {_fmt(b)}" for f, (a, b) in ch.items()]
            lines.append("Change " + ", ".join(parts) + f" → {self._label(out)}")
        return lines

    def to_frame(self) -> pd.DataFrame:
        df = self.counterfactuals.copy()
        df["n_changed"] = [len(c) for c in self.changes]
        if self.output_names is not None and self.outputs.shape[1] > 1:
            for j, n in enumerate(self.output_names):
                df[f"p({n})"] = self.outputs[:, j]
        else:
            df["output"] = self.outputs[:, 0]
        return df

    def to_dict(self) -> dict[str, Any]:
        return {"original": _records(self.original)[0], "counterfactuals": _records(self.counterfactuals),
                "changes": [{f: [_fmt(a), _fmt(b)] for f, (a, b) in c.items()} for c in self.changes],
                "outputs": self.outputs.tolist(), "original_output": self.original_output.tolist(),
                "desired": self.desired, "output_names": self.output_names, "metrics": self.metrics,
                "n_model_rows": self.n_model_rows, "n_model_calls": self.n_model_calls, "seconds": self.seconds,
                "reason": self.reason, "text": self.describe()}

    def to_json(self, path: Any = None) -> str:
        text = json.dumps(self.to_dict(), indent=1, default=str)
        if path is not None:
            from whybox.core.explanation import atomic_write_text
            atomic_write_text(path, text)
        return text

    def __repr__(self) -> str:
        return f"CounterfactualSet({len(self)} counterfactual(s) for desired {self.desired}; metrics={self.metrics})"


def _fmt(v: Any) -> Any:
    if isinstance(v, (float, np.floating)):
        return float(f"{float(v):.6g}")
    if isinstance(v, np.integer):
        return int(v)
    return v if isinstance(v, (int, str, bool)) or v is None else str(v)


def _records(df: pd.DataFrame) -> list[dict[str, Any]]:
    return [{k: _fmt(v) for k, v in r.items()} for r in df.to_dict(orient="records")]


def _resolve_features(names: Any, spec: Any, what: str) -> list[int]:
    if names is None:
        return []
    if isinstance(names, str):
        names = [names]
    if not isinstance(names, (list, tuple, set, frozenset)):
        raise InputError(f"{what} must be a feature name or a list of them, got {names!r}")
    out = []
    for n in names:
        if n not in spec.names:
            raise InputError(f"{what}: unknown feature {n!r}; features are {spec.names}")
        out.append(spec.names.index(n))
    return out


class CounterfactualExplainer:
    """Counterfactuals of many rows against one model and one reference data set.

    The data-level work is done once and shared by every :meth:`explain` call: the data matrix,
    feature kinds, distance scales, integer columns, the model's outputs on the data (the donor rows,
    queried on the first call) and the typical nearest-neighbour distance used by plausibility.
    If the model is refitted, build a new explainer (its outputs on the data are cached).

    Parameters
    ----------
    model : classifier or regressor (anything whybox.explain accepts).
    data : reference rows (training data): scales, categories, donors and plausibility come from them.
    groups : {name: [columns]}: a one-hot block is one feature (its blocks are copied whole).
    kinds : feature kinds to override the inferred ones ({feature: "categorical"|"continuous"|"binary"}).
    integer : "auto" (numeric columns whose data values are all integers), or a list of features.
    scale : "mad" (median absolute deviation, as DiCE) or "range" for the distance of numeric features.
    output, budget : as for :func:`whybox.explain` (budget: model rows over the explainer's life).
    """

    def __init__(self, model: Any, data: Any, *, groups: Any = None, kinds: Any = None, integer: Any = "auto",
                 scale: str = "mad", output: str = "auto", budget: int | None = None) -> None:
        from whybox.problem import prepare

        if scale not in ("mad", "range"):
            raise InputError(f"scale must be 'mad' or 'range', got {scale!r}")
        if data is None:
            raise InputError("data (reference rows, e.g. the training data) is required")
        from whybox.models.adapters import as_model

        m = as_model(model, output=output, budget=budget)
        if isinstance(data, pd.DataFrame):
            data = data.rename(columns=str)
            missing = [c for c in (m.columns or []) if c not in data.columns]
            if missing:
                raise InputError(f"data is missing column(s) {missing} that the model was fitted on")
        first = data.iloc[:1] if isinstance(data, pd.DataFrame) else np.atleast_2d(np.asarray(data, dtype=object))[:1]
        m, D, spec, _ = prepare(m, data, background=first, groups=groups, kinds=kinds, data=data)
        p = D.shape[1]
        self.model, self.data, self.spec = m, D, spec
        self.columns = list(spec.columns)
        self._frame = isinstance(data, pd.DataFrame)
        self._dtypes = data[self.columns].dtypes.to_dict() if self._frame else None
        self.numeric = np.array([spec.kinds[c] == "continuous" and converts_to_float(D[:, c]) for c in range(p)])
        if integer == "auto":
            self.integer = np.array([self.numeric[c] and np.allclose(D[:, c].astype(float),
                                                                     np.round(D[:, c].astype(float)))
                                     for c in range(p)])
        else:
            self.integer = np.zeros(p, bool)
            for f in _resolve_features(integer, spec, "integer"):
                self.integer[spec.groups[f]] = True
        self.scale = np.ones(p)
        for c in np.flatnonzero(self.numeric):
            col = D[:, c].astype(float)
            self.scale[c] = T._mad(col) if scale == "mad" else (float(np.ptp(col)) or 1.0)
        # features whose data holds more than one value (a categorical feature can only move to another one)
        self._varies = np.array([len(np.unique(D[:, cols].astype(str), axis=0)) > 1 for cols in spec.groups])
        self.shared: dict[str, Any] = {}

    def precompute(self, outputs: Any = None) -> "CounterfactualExplainer":
        """Query the model on the data now (otherwise the first :meth:`explain` does, and counts it), and
        compute the data-only reference of the plausibility metric. ``outputs``: the model's outputs on
        ``data`` (same rows, same order), when the caller already has them: then the model is not queried."""
        from whybox.counterfactuals.metrics import reference

        if outputs is not None:
            outputs = np.asarray(outputs, dtype=float)
            if outputs.ndim != 2 or outputs.shape[0] != len(self.data):
                raise InputError(f"outputs must be (n_rows of data = {len(self.data)}, n_outputs), "
                                 f"got shape {outputs.shape}")
            self.shared["data_out"] = outputs
        T.data_outputs(self)
        reference(self)
        return self

    def _row(self, x: Any) -> np.ndarray:
        from whybox.core.validation import to_matrix

        if isinstance(x, pd.Series):
            x = x.to_frame().T
        if isinstance(x, pd.DataFrame):
            if len(x) != 1:
                raise InputError(f"x must be one row, got {len(x)}")
            x = x.rename(columns=str)
            missing = [c for c in self.columns if c not in x.columns]
            if missing:
                raise InputError(f"x is missing column(s) {missing}")
            x = x[self.columns]
        xa = to_matrix(x, name="x", n_columns=len(self.columns))
        if xa.shape[0] != 1:
            raise InputError(f"x must be one row, got shape {xa.shape}")
        if xa.dtype != self.data.dtype:
            if self.data.dtype == object:
                xa = xa.astype(object)
            else:
                try:
                    xa = xa.astype(float)
                except (TypeError, ValueError):
                    bad = [self.columns[c] for c in range(xa.shape[1]) if not converts_to_float(xa[:, c])]
                    raise InputError(f"x has non-numeric value(s) in column(s) {bad} where data is numeric") from None
        return xa

    def explain(self, x: Any, *, k: int = 4, desired_class: Any = "opposite",
                desired_range: tuple[float, float] | None = None, features_to_vary: Any = "all",
                immutable: Sequence[str] = (), permitted_range: Mapping[str, Any] | None = None,
                monotone: Mapping[str, str] | None = None, max_changes: int | None = None,
                n_candidates: int = 1000, rounds: int = 4, diversity_weight: float = 1.0,
                seed: int | None = 0) -> CounterfactualSet:
        """Counterfactuals of one row ``x`` (Series, one-row DataFrame or 1-D array).

        desired_class : "opposite" (binary: the class not predicted), a class label or an output index.
        desired_range : (lo, hi) for a regression output instead.
        features_to_vary : "all" or the features that may change; immutable : features that may not.
        permitted_range : {feature: (lo, hi)} for numeric features, {feature: [values]} for categorical ones.
        monotone : {feature: "increase" | "decrease"} (e.g. {"age": "increase"}).
        max_changes : at most this many features changed per counterfactual.
        n_candidates, rounds : candidates per round and rounds of the search; seed : its random stream.
        """
        from whybox.core.validation import check_random_state

        from whybox.params import PARAMS, check

        t0 = time.perf_counter()
        check("k", k, decl=PARAMS["cf_k"])
        for name, v in (("n_candidates", n_candidates), ("rounds", rounds), ("max_changes", max_changes),
                        ("diversity_weight", diversity_weight), ("seed", seed)):
            check(name, v)
        m, spec, D, numeric = self.model, self.spec, self.data, self.numeric
        xa = self._row(x)
        p = xa.shape[1]
        mutable = np.ones(spec.n_features, bool)
        if features_to_vary != "all":
            vary = _resolve_features(features_to_vary, spec, "features_to_vary")
            mutable[:] = False
            mutable[vary] = True
        mutable[_resolve_features(immutable, spec, "immutable")] = False
        if not mutable.any():
            raise InputError("impossible constraints: no feature may change (features_to_vary/immutable leave nothing)")
        lo, hi = np.full(p, -np.inf), np.full(p, np.inf)
        allowed: dict[int, list[Any]] = {}
        for arg, val in (("permitted_range", permitted_range), ("monotone", monotone)):
            if val is not None and not isinstance(val, Mapping):
                raise InputError(f"{arg} must be a mapping {{feature: ...}}, e.g. {arg}={{'age': "
                                 f"{'(18, 70)' if arg == 'permitted_range' else repr('increase')}}}, got {type(val).__name__}")
        for name, rng_ in (permitted_range or {}).items():
            (f,) = _resolve_features([name], spec, "permitted_range")
            cols = spec.groups[f]
            if len(cols) == 1 and numeric[cols[0]]:
                a, b = _interval(rng_, f"permitted_range[{name!r}]", "impossible constraints: ")
                lo[cols[0]], hi[cols[0]] = a, b
            else:
                if len(cols) != 1:
                    raise InputError(f"permitted_range for the group {name!r} is not supported; "
                                     "restrict its columns instead")
                vals = list(rng_)
                known = set(D[:, cols[0]].tolist())
                bad = [v for v in vals if v not in known]
                if bad:
                    raise InputError(f"permitted_range[{name!r}] lists value(s) {bad} never seen in data")
                allowed[cols[0]] = vals
        mono = np.zeros(p)
        for name, direction in (monotone or {}).items():
            (f,) = _resolve_features([name], spec, "monotone")
            cols = spec.groups[f]
            if direction not in T.MONOTONE:
                raise InputError(f"monotone[{name!r}] must be 'increase' or 'decrease', got {direction!r}")
            if len(cols) != 1 or not numeric[cols[0]]:
                raise InputError(f"monotone[{name!r}]: only numeric features can be monotone")
            mono[cols[0]] = 1 if direction == "increase" else -1
        rows0, calls0 = m.n_rows, m.n_calls
        out0 = m(xa)[0]
        names = m.output_names
        is_valid, desired = _validity(out0, names, m.is_classifier, desired_class, desired_range)
        P = T.Problem(m, xa[0], D, spec, mutable, lo, hi, mono, self.integer, numeric, self.scale, allowed,
                      is_valid, desired, self.shared)
        dead = [spec.names[f] for f in np.flatnonzero(mutable) if not _can_move(P, f, self._varies)]
        if len(dead) == int(mutable.sum()):
            raise InputError(f"impossible constraints: feature(s) {dead} have no permitted value other than x's "
                             "(check permitted_range and monotone)")
        V, outs, info = T.search(P, k=int(k), n_candidates=int(n_candidates), rounds=int(rounds),
                           diversity_weight=float(diversity_weight), rng=check_random_state(seed),
                           max_changes=max_changes)
        cols = self.columns
        orig = _frame(xa, cols, self._dtypes)
        cf = _frame(V, cols, self._dtypes) if len(V) else pd.DataFrame(columns=cols)
        ch = T.feature_changes(P, V) if len(V) else np.zeros((0, spec.n_features), bool)
        changes = []
        for i in range(len(V)):
            d = {}
            for f in np.flatnonzero(ch[i]):
                cs = spec.groups[f]
                if len(cs) == 1:
                    d[spec.names[f]] = (xa[0, cs[0]], V[i, cs[0]])
                else:
                    d[spec.names[f]] = (_active(spec, xa[0], cs), _active(spec, V[i], cs))
            changes.append(d)
        reason = None
        if len(V) == 0:
            reason = (f"no counterfactual reached {desired} within the constraints ({info['usable_donors']} data rows "
                      "with that outcome fit them); relax the constraints or raise n_candidates/rounds")
        elif len(V) < k:
            reason = f"only {len(V)} distinct valid counterfactual(s) found within the constraints"
        res = CounterfactualSet(orig, cf, changes, outs, out0, desired, names, {}, m.n_rows - rows0,
                                m.n_calls - calls0, time.perf_counter() - t0, reason, info)
        from whybox.counterfactuals.metrics import quality
        res.metrics = quality(res, P)
        res._problem = P
        return res


def counterfactuals(model: Any, x: Any, *, data: Any, k: int = 4, desired_class: Any = "opposite",
                    desired_range: tuple[float, float] | None = None, features_to_vary: Any = "all",
                    immutable: Sequence[str] = (), permitted_range: Mapping[str, Any] | None = None,
                    monotone: Mapping[str, str] | None = None, groups: Any = None, kinds: Any = None,
                    integer: Any = "auto", scale: str = "mad", max_changes: int | None = None,
                    n_candidates: int = 1000, rounds: int = 4, diversity_weight: float = 1.0,
                    output: str = "auto", budget: int | None = None, seed: int | None = 0) -> CounterfactualSet:
    """Counterfactuals of one row ``x``: ``CounterfactualExplainer(model, data, ...).explain(x, ...)``.

    For many rows against the same model and data, build one :class:`CounterfactualExplainer` and call
    its ``explain``: the model's outputs on ``data`` are then queried once instead of once per row.
    See :class:`CounterfactualExplainer` and its ``explain`` for the parameters.
    """
    if not isinstance(k, (int, np.integer)) or isinstance(k, bool) or k < 1:
        raise InputError(f"k must be a positive integer, got {k!r}")
    ex = CounterfactualExplainer(model, data, groups=groups, kinds=kinds, integer=integer, scale=scale,
                                 output=output, budget=budget)
    return ex.explain(x, k=k, desired_class=desired_class, desired_range=desired_range,
                      features_to_vary=features_to_vary, immutable=immutable, permitted_range=permitted_range,
                      monotone=monotone, max_changes=max_changes, n_candidates=n_candidates, rounds=rounds,
                      diversity_weight=diversity_weight, seed=seed)


def _frame(A: np.ndarray, columns: list[str], dtypes: dict[str, Any] | None) -> pd.DataFrame:
    """Rows as a DataFrame with the data's column dtypes where the values fit them (an integer dtype
    only when every value is integral: nothing is truncated)."""
    cols: dict[str, Any] = {}
    for j, c in enumerate(columns):
        col, t = A[:, j], (dtypes or {}).get(c)
        try:
            if isinstance(t, np.dtype) and t.kind in "iu":
                f = col.astype(float)
                col = f.astype(t) if np.array_equal(f, np.round(f)) else f
            elif isinstance(t, np.dtype):
                col = col.astype(t)
            elif t is not None:
                col = pd.Series(col).astype(t)
        except (TypeError, ValueError):
            pass
        cols[c] = col
    return pd.DataFrame(cols, columns=columns)


def _active(spec: Any, row: np.ndarray, cols: np.ndarray) -> Any:
    vals = row[cols]
    on = [spec.columns[c] for c, v in zip(cols, vals) if v not in (0, 0.0, False)]
    return on[0] if len(on) == 1 else tuple(vals.tolist())



def _can_move(P: T.Problem, f: int, varies: np.ndarray) -> bool:
    cols = P.spec.groups[f]
    if len(cols) == 1 and P.numeric[cols[0]]:
        lo, hi = T._range(P, cols[0])
        x = float(P.x[cols[0]])
        return hi > lo or (hi == lo and not np.isclose(hi, x))
    if len(cols) == 1 and cols[0] in P.allowed_values:
        return any(v != P.x[cols[0]] for v in P.allowed_values[cols[0]])
    return bool(varies[f])


def _interval(value: Any, what: str, empty_prefix: str = "") -> tuple[float, float]:
    """(low, high) as floats, or an InputError naming ``what``."""
    try:
        a, b = (float(v) for v in value)
    except (TypeError, ValueError):
        raise InputError(f"{what} must be (low, high) numbers, got {value!r}") from None
    if not a <= b:
        raise InputError(f"{empty_prefix}{what} = ({a}, {b}) is empty")
    return a, b


def _validity(out0: np.ndarray, names: Any, is_classifier: Any, desired_class: Any, desired_range: Any):
    k = len(out0)
    if desired_range is not None:
        a, b = _interval(desired_range, "desired_range")
        if k != 1:
            raise InputError("desired_range is for a single regression output; use desired_class for classifiers")
        return (lambda out: (out[:, 0] >= a) & (out[:, 0] <= b)), f"output in [{a:g}, {b:g}]"
    if k == 1:
        if is_classifier is False:
            raise InputError("this model has one continuous output: give desired_range=(low, high)")
        pred = int(out0[0] > 0.5)
        want = 1 - pred if desired_class == "opposite" else int(desired_class)
        return (lambda out: (out[:, 0] > 0.5) == bool(want)), f"class {want}"
    pred = int(np.argmax(out0))
    if desired_class == "opposite":
        if k != 2:
            raise InputError(f"desired_class='opposite' needs a binary classifier; this one has {k} classes: "
                             "name the class you want")
        want = 1 - pred
    elif names is not None and desired_class in names:
        want = names.index(desired_class)
    elif isinstance(desired_class, (int, np.integer)) and 0 <= int(desired_class) < k:
        want = int(desired_class)
    else:
        raise InputError(f"unknown desired_class {desired_class!r}; classes are {names or list(range(k))}")
    label = names[want] if names is not None else want
    return (lambda out: np.argmax(out, axis=1) == want), f"class {label}"
