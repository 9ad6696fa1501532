"""The prepared problem: a model and its reference data turned, once, into what every call needs.

A :class:`Problem` holds the counted, validated :class:`~whybox.models.adapters.Model`, the
:class:`~whybox.core.features.FeatureSpec` (column names, kinds, groups) and the
:class:`~whybox.background.Background`. It is built once — from ``data=`` (the reference or training
rows) when given — and then every explanation, metric and search reuses it: nothing is re-inferred
from the handful of rows a call happens to receive.

**Kinds** come only from ``data=`` or ``kinds=``. Without reference data, numeric columns are
continuous and non-numeric ones categorical; a numeric column is never made "binary" because the
rows being explained happen to hold only 0 and 1 (a warning says how to declare it).

This module sits below the explainers, metrics and counterfactuals (they take a Problem, or build
one); :class:`whybox.Explainer` in :mod:`whybox.api` is the public face over it.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd

from whybox.background import Background, make_background
from whybox.core.features import FeatureSpec, infer_kind
from whybox.core.validation import to_matrix
from whybox.errors import InputError
from whybox.models.adapters import Model, as_model


class KindsWarning(UserWarning):
    """Feature kinds were not declared and could not come from reference data."""


class ColumnOrderWarning(UserWarning):
    """X's columns were in another order than the reference data's and were reordered by name."""


def _kinds_from_dtype(arr: np.ndarray) -> list[str]:
    """Kinds without reference data: numeric -> continuous, non-numeric -> categorical (never binary)."""
    if arr.dtype != object:
        return ["continuous"] * arr.shape[1]
    out = []
    for j in range(arr.shape[1]):
        try:
            arr[:, j].astype(float)
            out.append("continuous")
        except (TypeError, ValueError):
            out.append("categorical")
    return out


def _looks_binary(arr: np.ndarray, kinds: list[str]) -> list[int]:
    out = []
    for j, k in enumerate(kinds):
        if k != "continuous":
            continue
        try:
            col = arr[:, j].astype(float)
        except (TypeError, ValueError):
            continue
        if infer_kind(col) == "binary":
            out.append(j)
    return out


@dataclass(frozen=True)
class Problem:
    """Model + FeatureSpec + Background, prepared once (see the module docstring).

    Attributes
    ----------
    model : the counted, batched, validated Model.
    spec : FeatureSpec: columns, kinds, groups, interpretable feature names.
    background : rows that removed features are drawn from (with weights).
    reference : the reference data as a matrix (None when no ``data=`` was given).
    dtypes : column dtypes of the reference DataFrame (None for arrays).
    """

    model: Model
    spec: FeatureSpec
    background: Background
    reference: np.ndarray | None = field(default=None, repr=False)
    dtypes: dict | None = field(default=None, repr=False)
    frame_columns: list[str] | None = None        # DataFrame column order of the reference
    estimator: Any = field(default=None, repr=False, compare=False)   # the object the user passed
    allow_nan: bool = False                      # the model handles missing values (NaN passes through)

    def with_model(self, model: Model) -> "Problem":
        """The same problem answered through another Model (e.g. a child with its own budget)."""
        import dataclasses
        return dataclasses.replace(self, model=model)

    @property
    def output_names(self) -> list | None:
        return self.model.output_names

    # ------------------------------------------------------------------------------ building
    @classmethod
    def build(cls, model: Any, data: Any = None, *, rows: Any = None, background: Any = None, kinds: Any = None,
              groups: Any = None, feature_names: Sequence[str] | None = None, output: str = "auto",
              batch_size: int | None = None, budget: int | None = None, warn_kinds: bool = False,
              allow_nan: Any = "auto") -> "Problem":
        """Prepare ``model`` with reference ``data`` (training rows; kinds and column order come from
        it). Without ``data``, ``rows`` (e.g. the rows to explain) give only the structure: names,
        column count and dtypes, never kinds. ``warn_kinds`` warns when, without data or kinds, a
        numeric column holds only 0/1 in ``rows`` (where a metric would have flipped it)."""
        if kinds is not None and not isinstance(kinds, (Mapping, list, tuple)):
            raise InputError(f"kinds must be a list (one kind per column) or a mapping {{column: kind}}, got {kinds!r}")
        if groups is not None and (isinstance(groups, (str, bytes)) or not isinstance(groups, (Mapping, list, tuple))):
            raise InputError(f"groups must be a mapping {{name: [columns]}} or a list of column lists, got {groups!r}")
        if isinstance(model, Problem):
            return model
        if hasattr(model, "problem") and isinstance(getattr(model, "problem"), Problem):   # a whybox.Explainer
            return model.problem
        m = as_model(model, output=output, batch_size=batch_size, budget=budget)
        nan_ok = model_allows_nan(model) if isinstance(allow_nan, str) and allow_nan == "auto" else allow_nan
        if not isinstance(nan_ok, bool):
            raise InputError(f"allow_nan must be True, False or 'auto', got {allow_nan!r}")
        source = data if data is not None else rows
        if source is None:
            raise InputError("data (reference rows) or the rows to explain are needed to prepare the problem")
        arr, names, dtypes, frame_cols = _structure(m, source, feature_names, name="data" if data is not None else "X",
                                                    allow_nan=nan_ok)
        # kinds inferred from the reference data; without it (or around a partial kinds= mapping) from the dtypes
        base = None if data is not None and kinds is None else _kinds_from_dtype(arr)
        if kinds is None and data is None and warn_kinds:
            ones = _looks_binary(arr, base)
            if ones:
                cols = [names[j] if names else j for j in ones][:8]
                warnings.warn(f"column(s) {cols} hold only 0/1 in the rows given, but without data= (reference "
                              "rows) or kinds= they are treated as continuous (noised, not flipped). Pass "
                              "data=<training rows> or kinds={'col': 'binary'} to declare them.",
                              KindsWarning, stacklevel=4)
        spec = FeatureSpec.build(arr, columns=names, groups=groups, kinds=kinds, base_kinds=base)
        if background is None and data is not None:
            from whybox.background import sample
            bg = sample(arr, 100, seed=0)
        else:
            if background is None and arr.dtype == object:
                raise InputError("X has non-numeric columns, so the default all-zeros baseline is meaningless: "
                                 "pass background= (e.g. a sample of training rows) or data=")
            bg = make_background(background, n_columns=arr.shape[1],
                                 columns=spec.columns if isinstance(background, pd.DataFrame) else None,
                                 allow_nan=nan_ok)
        bg = _match_dtype(bg, arr)
        if m.columns is not None:
            m.with_frame(m.columns, dtypes)
        return cls(m, spec, bg, arr if data is not None else None, dtypes, frame_cols, model, nan_ok)

    # ------------------------------------------------------------------------------ rows
    def matrix(self, X: Any, *, name: str = "X") -> np.ndarray:
        """``X`` as this problem's model-input matrix: a DataFrame is put in the reference column order
        by name (with a warning when the model itself does not know its column names); the column
        count is checked; NaN/inf refused."""
        if isinstance(X, pd.Series):
            X = X.to_frame().T
        if isinstance(X, pd.DataFrame):
            cols = [str(c) for c in X.columns]
            X = X.rename(columns=str)
            want = list(self.model.columns) if self.model.columns is not None else self.frame_columns
            if want is not None and self.model.columns is not None:
                mapping = model_column_names(cols, want)
                X = X.rename(columns=mapping)
                cols = [mapping.get(c, c) for c in cols]
            if want is not None:
                missing = [c for c in want if c not in cols]
                if missing:
                    who = f"model {self.model.name!r} was fitted on" if self.model.columns is not None else \
                        "the reference data has"
                    raise InputError(f"{name} is missing column(s) {missing} that {who}")
                if cols[:len(want)] != list(want) and self.model.columns is None:
                    warnings.warn(f"{name}'s columns are in another order than the reference data's; they were "
                                  f"reordered by name to {list(want)[:8]}{'...' if len(want) > 8 else ''}",
                                  ColumnOrderWarning, stacklevel=3)
                X = X[list(want)]
        return to_matrix(X, name=name, n_columns=self.spec.n_columns, allow_nan=self.allow_nan)

    def targets(self, target: Any, outputs: np.ndarray, *, target_index: Any = None) -> np.ndarray:
        return resolve_targets(target, outputs, self.output_names, target_index=target_index)


def model_allows_nan(model: Any) -> bool:
    """Whether a model handles missing values: XGBoost and LightGBM models, and scikit-learn
    estimators whose ``allow_nan`` tag is set — read through Pipelines and ColumnTransformers (an
    imputer handles NaN; a transformer that allows NaN, such as a scaler, passes it on to the next
    step, which must then handle it). False for anything else."""
    return _nan_state(model) == "handles"


def _tag_allows_nan(est: Any) -> bool:
    tags = getattr(est, "__sklearn_tags__", None)
    if callable(tags):
        try:
            return bool(tags().input_tags.allow_nan)
        except Exception:  # noqa: BLE001 - estimators with broken or old-style tags
            pass
    old = getattr(est, "_get_tags", None)
    if callable(old):
        try:
            return bool(old().get("allow_nan", False))
        except Exception:  # noqa: BLE001
            return False
    return False


def _nan_state(est: Any) -> str:
    """"handles" (NaN in, no NaN out), "passes" (NaN in and out) or "fails"."""
    if est is None or (isinstance(est, str) and est == "passthrough"):
        return "passes"
    if isinstance(est, str) and est == "drop":
        return "handles"
    if type(est).__module__.split(".", 1)[0] in ("xgboost", "lightgbm"):
        return "handles"
    if type(est).__name__.endswith("Imputer"):
        return "handles"
    steps = getattr(est, "steps", None)
    if isinstance(steps, list) and type(est).__name__ == "Pipeline":
        for _, step in steps:
            s = _nan_state(step)
            if s != "passes":
                return s
        return "passes"
    transformers = getattr(est, "transformers_", None) or getattr(est, "transformers", None)
    if isinstance(transformers, list) and type(est).__name__ == "ColumnTransformer":
        states = [_nan_state(t) for _, t, _ in transformers]
        rem = getattr(est, "remainder", "drop")
        states.append(_nan_state(rem))
        return "fails" if "fails" in states else ("passes" if "passes" in states else "handles")
    if not _tag_allows_nan(est):
        return "fails"
    is_transformer = hasattr(est, "transform") and not any(hasattr(est, m) for m in ("predict", "predict_proba"))
    return "passes" if is_transformer else "handles"


def model_column_names(cols: Sequence[str], model_cols: Sequence[str]) -> dict[str, str]:
    """{given column: the model's name for it}: the same name, or LightGBM's (which stores a name's
    whitespace as underscores, so a model fitted on a DataFrame with "age x" knows "age_x")."""
    have = set(cols)
    out = {}
    for c in cols:
        if c in model_cols:
            out[c] = c
        else:
            u = "_".join(str(c).split(" ")) if " " in str(c) else None
            if u is not None and u in model_cols and u not in have:
                out[c] = u
    return out


def _structure(m: Model, source: Any, feature_names: Sequence[str] | None, *, name: str, allow_nan: bool = False):
    dtypes = frame_cols = None
    shown: list[str] | None = None
    if isinstance(source, pd.Series):
        source = source.to_frame().T
    if isinstance(source, pd.DataFrame):
        if not all(isinstance(c, str) for c in source.columns):
            source = source.rename(columns=str)
        cols = list(source.columns)
        if m.columns is not None:
            mapping = model_column_names(cols, m.columns)
            back = {v: k for k, v in mapping.items()}
            missing = [c for c in m.columns if c not in back]
            if missing:
                raise InputError(f"{name} is missing column(s) {missing} that model {m.name!r} was fitted on")
            if any(k != v for k, v in mapping.items()):
                source = source.rename(columns=mapping)
            if list(source.columns) != list(m.columns):
                source = source[list(m.columns)]
            shown = [back[c] for c in m.columns]
            cols = list(m.columns)
        dtypes = source.dtypes.to_dict()
        frame_cols = cols
        names: list[str] | None = shown or cols
    else:
        names = list(m.columns) if m.columns is not None else None
    if feature_names is not None:
        names = [str(f) for f in feature_names]
    arr = to_matrix(source, name=name, n_columns=len(names) if names is not None else None, allow_nan=allow_nan)
    if m.columns is not None and len(m.columns) != arr.shape[1]:
        raise InputError(f"{name} has {arr.shape[1]} columns but model {m.name!r} was fitted on {len(m.columns)}")
    return arr, names, dtypes, frame_cols


def _match_dtype(bg: Background, arr: np.ndarray) -> Background:
    if bg.data.dtype == arr.dtype:
        return bg
    if arr.dtype == object:
        return Background(bg.data.astype(object), bg.weights, implicit=bg.implicit)
    try:
        return Background(bg.data.astype(float), bg.weights, implicit=bg.implicit)
    except (TypeError, ValueError):
        raise InputError("background has non-numeric values but X is numeric") from None


def prepare(model: Any, X: Any, *, background: Any = None, budget: int | None = None,
            feature_names: Sequence[str] | None = None, groups: Any = None, kinds: Any = None,
            output: str = "auto", batch_size: int | None = None, data: Any = None,
            warn_kinds: bool = False, allow_nan: Any = "auto") -> tuple[Model, np.ndarray, FeatureSpec, Background]:
    """Build a :class:`Problem` (from ``data`` when given, else from the structure of ``X``) and
    return its Model, X as a matrix, its FeatureSpec and Background."""
    pb = Problem.build(model, data, rows=X, background=background, kinds=kinds, groups=groups,
                       feature_names=feature_names, output=output, batch_size=batch_size, budget=budget,
                       warn_kinds=warn_kinds, allow_nan=allow_nan)
    return pb.model, pb.matrix(X), pb.spec, pb.background


def default_is_all(outputs: np.ndarray, model: Any) -> bool:
    """Whether the default target explains every output: a multiclass classifier, or a model with
    several outputs that is not a binary classifier (a multi-output regressor)."""
    k = outputs.shape[1]
    if k > 2:
        return True
    return k == 2 and getattr(model, "is_classifier", None) is False


def resolve_targets(target: Any, outputs: np.ndarray, output_names: list | None, *,
                    target_index: Any = None) -> np.ndarray:
    """Per-row output indices.

    ``target``: None (the single output; with two outputs the positive class, index 1; with more,
    the predicted class — :func:`whybox.explain` explains every output then), ``"predicted"`` (each
    row's predicted class), an output, or one such entry per row. **Labels win**: when the model has labels (a classifier's classes), target
    is read as a label only — with classes [1, 2, 3], ``target=1`` is class 1 (index 0) and
    ``target=0`` is an error; without labels it is an index. ``target_index``: explicit indices (an
    int or one per row), never read as labels."""
    n, k = outputs.shape
    if target_index is not None:
        if target is not None:
            raise InputError("give target= or target_index=, not both")
        return _indices(target_index, n, k)
    if target is None:
        if k == 1:
            return np.zeros(n, dtype=np.intp)
        return np.ones(n, dtype=np.intp) if k == 2 else outputs.argmax(axis=1).astype(np.intp)
    if isinstance(target, str) and target == "predicted" and not (output_names and "predicted" in output_names):
        return np.zeros(n, dtype=np.intp) if k == 1 else outputs.argmax(axis=1).astype(np.intp)

    def one(t: Any) -> int:
        if output_names is not None:          # labels win: a value is read as a label, never as an index
            for j, name in enumerate(output_names):
                if _same_label(t, name):
                    return j
            raise InputError(f"unknown target {t!r}: the model's outputs are labelled {output_names}, and target= "
                             f"takes these labels; for an output index (0..{k - 1}) use target_index=")
        if isinstance(t, str) and t.strip().isdigit():          # "1" from a command line
            t = int(t)
        if isinstance(t, (int, np.integer)) and not isinstance(t, bool) and 0 <= int(t) < k:
            return int(t)
        raise InputError(f"unknown target {t!r}: the model has {k} output(s) (indices 0..{k - 1})")

    if isinstance(target, (list, tuple, np.ndarray, pd.Series)):
        t = list(target)
        if len(t) != n:
            raise InputError(f"target has {len(t)} entries for {n} rows")
        return np.array([one(x) for x in t], dtype=np.intp)
    return np.full(n, one(target), dtype=np.intp)


def _same_label(t: Any, name: Any) -> bool:
    if isinstance(t, bool) != isinstance(name, bool):
        return False
    try:
        if isinstance(t, (int, float, np.number)) and isinstance(name, (int, float, np.number)):
            return bool(t == name)
    except (TypeError, ValueError):
        return False
    return str(t) == str(name)


def _indices(ti: Any, n: int, k: int) -> np.ndarray:
    vals = np.atleast_1d(np.asarray(ti, dtype=object))
    if vals.size not in (1, n):
        raise InputError(f"target_index has {vals.size} entries for {n} rows")
    out = []
    for v in vals:
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or not 0 <= int(v) < k:
            raise InputError(f"target_index must be integers in 0..{k - 1}, got {v!r}")
        out.append(int(v))
    return np.broadcast_to(np.array(out, dtype=np.intp), (n,)).copy()
