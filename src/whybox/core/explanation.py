"""The one result type of every attribution method."""
from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from whybox.errors import InputError

SCHEMA_VERSION = 1


@dataclass
class Explanation:
    """Attributions of ``n_rows`` predictions over ``n_features`` interpretable features.

    Attributes
    ----------
    values : (n_rows, n_features) attribution of each feature to the explained output.
    base_values : (n_rows,) the reference output the attributions start from (E f(background) for
        Shapley-family methods, the surrogate intercept for LIME/C-LIME, f(baseline) for IG; NaN
        where a method has none, e.g. vanilla gradients).
    predictions : (n_rows,) the explained output f(x)[target].
    feature_names : names of the interpretable features.
    target : (n_rows,) index of the explained output for each row; ``output_names`` maps it to labels.
    method, params, seed : the recipe that produced the values (enough to reproduce them).
    stderr : (n_rows, n_features) standard errors of sampling estimators, or None.
    data : (n_rows, n_features) displayed feature values of the explained rows, or None: float64 when
        every value is a number, else an object array (categories, one-hot group labels, strings).
    n_model_rows, n_model_calls : model queries spent; seconds : wall-clock time.

    **All outputs** (``target="all"``): values (n_rows, n_features, n_outputs), base_values and
    predictions (n_rows, n_outputs), target (n_rows, n_outputs) = each output's index, stderr like
    values. Slice one output as shap does, ``e[:, :, "benign"]`` (a label or an index), to get the
    usual 2-D explanation. Views that need one output per row (plots, global importance, frames,
    Parquet, ``to_shap``) ask for that slice.
    """

    values: np.ndarray
    base_values: np.ndarray
    predictions: np.ndarray
    feature_names: list[str]
    target: np.ndarray
    method: str
    params: dict[str, Any] = field(default_factory=dict)
    seed: int | None = None
    stderr: np.ndarray | None = None
    data: np.ndarray | None = None
    output_names: list[Any] | None = None
    n_model_rows: int = 0
    n_model_calls: int = 0
    seconds: float = 0.0
    row_ids: np.ndarray | None = None

    def __post_init__(self) -> None:
        v = np.asarray(self.values, dtype=float)
        self.values = v if v.ndim == 3 else np.atleast_2d(v)
        if self.values.ndim not in (2, 3):
            raise InputError(f"values must be (rows, features) or (rows, features, outputs), got shape {v.shape}")
        n, d = self.values.shape[:2]
        per = (n,) + self.values.shape[2:]
        self.base_values = np.broadcast_to(np.asarray(self.base_values, dtype=float), per).copy()
        self.predictions = np.broadcast_to(np.asarray(self.predictions, dtype=float), per).copy()
        self.target = np.broadcast_to(np.asarray(self.target), per).copy()
        self.feature_names = [str(f) for f in self.feature_names]
        if len(self.feature_names) != d:
            raise InputError(f"{len(self.feature_names)} feature names for {d} attribution columns")
        if self.stderr is not None:
            self.stderr = np.asarray(self.stderr, dtype=float).reshape(self.values.shape)
        if self.data is not None:
            self.data = _data_array(self.data).reshape(n, d)
        self.row_ids = np.arange(n) if self.row_ids is None else np.asarray(self.row_ids).reshape(n)

    # ------------------------------------------------------------------ basics
    @property
    def shape(self) -> tuple[int, ...]:
        return self.values.shape

    @property
    def all_outputs(self) -> bool:
        """True when the values have an output axis (``target="all"``)."""
        return self.values.ndim == 3

    def __len__(self) -> int:
        return self.values.shape[0]

    def output(self, which: Any) -> "Explanation":
        """One output of an all-outputs explanation, by label (labels win) or index: a 2-D Explanation."""
        if not self.all_outputs:
            raise InputError("this explanation has one output per row already (it was not made with target='all')")
        k = self.values.shape[2]
        names = self.output_names
        j = None
        if names is not None and not isinstance(which, bool):
            for i, nm in enumerate(names):
                if which == nm or (isinstance(which, str) and str(nm) == which):
                    j = i
                    break
            if j is None and not (isinstance(which, (int, np.integer)) and 0 <= int(which) < k):
                raise InputError(f"unknown output {which!r}; the outputs are {names}")
        if j is None:
            if isinstance(which, bool) or not isinstance(which, (int, np.integer)) or not 0 <= int(which) < k:
                raise InputError(f"unknown output {which!r}; pick a label of {names} or an index 0..{k - 1}")
            j = int(which)
        return Explanation(
            values=self.values[:, :, j], base_values=self.base_values[:, j], predictions=self.predictions[:, j],
            feature_names=list(self.feature_names), target=np.full(len(self), j, dtype=np.intp), method=self.method,
            params=dict(self.params), seed=self.seed, stderr=None if self.stderr is None else self.stderr[:, :, j],
            data=self.data, output_names=self.output_names, n_model_rows=self.n_model_rows,
            n_model_calls=self.n_model_calls, seconds=self.seconds, row_ids=self.row_ids)

    def _one_target(self, what: str) -> None:
        """Views that aggregate rows need one output for all of them."""
        if self.all_outputs:
            raise InputError(f"{what} needs one output: this explanation covers every output; pick one with "
                             "e[:, :, <label>] (or e.output(<label>))")
        if len(self) > 1 and len(np.unique(self.target)) > 1:
            names = sorted({str(t) for t in self.target_names()})
            raise InputError(f"{what} aggregates rows, but the rows explain different outputs {names} (the predicted "
                             "class of each row); explain one output for every row: target=<label> (or "
                             "target='all' and e[:, :, <label>])")

    def __getitem__(self, rows: Any) -> "Explanation":
        """Select rows (int, slice, mask or index array); keeps the layout. With an all-outputs
        explanation, ``e[rows, :, output]`` also picks one output (a label or an index)."""
        if isinstance(rows, tuple):
            if len(rows) == 3 and self.all_outputs:
                r, f, o = rows
                if not (isinstance(f, slice) and f == slice(None)):
                    raise InputError("select features by name after slicing: e[rows, :, output]")
                return self.output(o)[r]
            if len(rows) == 2 and isinstance(rows[1], slice) and rows[1] == slice(None):
                rows = rows[0]
            else:
                raise InputError("index an explanation as e[rows], or e[rows, :, output] when it covers every output")
        idx = np.arange(len(self))[rows]
        idx = np.atleast_1d(idx)
        return Explanation(
            values=self.values[idx], base_values=self.base_values[idx], predictions=self.predictions[idx],
            feature_names=list(self.feature_names), target=self.target[idx], method=self.method,
            params=dict(self.params), seed=self.seed,
            stderr=None if self.stderr is None else self.stderr[idx],
            data=None if self.data is None else self.data[idx], output_names=self.output_names,
            n_model_rows=self.n_model_rows, n_model_calls=self.n_model_calls, seconds=self.seconds,
            row_ids=self.row_ids[idx])

    def target_names(self) -> list[Any]:
        if self.output_names is None:
            return [int(t) for t in self.target]
        return [self.output_names[int(t)] for t in self.target]

    def top_features(self, row: int = 0, k: int = 5, *, by: str = "abs") -> list[tuple[str, float]]:
        """The k features with the largest |value| (or largest value with by="value") for one row."""
        if self.all_outputs:
            raise InputError("top_features needs one output: e[:, :, <label>].top_features(row)")
        v = self.values[row]
        order = np.argsort(-np.abs(v) if by == "abs" else -v, kind="stable")[:k]
        return [(self.feature_names[j], float(v[j])) for j in order]

    def global_importance(self) -> pd.Series:
        """Mean |attribution| per feature over rows, largest first (one output for every row)."""
        self._one_target("global importance")
        return pd.Series(np.abs(self.values).mean(axis=0), index=self.feature_names).sort_values(ascending=False)

    # ------------------------------------------------------------------ frames
    def to_frame(self) -> pd.DataFrame:
        """One row per explained row: feature attributions, then ``base_value``, ``prediction``,
        ``target``, and ``stderr:<feature>`` columns when standard errors exist."""
        if self.all_outputs:
            raise InputError("to_frame needs one output per row: e[:, :, <label>].to_frame()")
        df = pd.DataFrame(self.values, columns=self.feature_names, index=pd.Index(self.row_ids, name="row"))
        df["base_value"] = self.base_values
        df["prediction"] = self.predictions
        df["target"] = self.target_names()
        if self.stderr is not None:         # one block, not a column at a time (no fragmented frame)
            se = pd.DataFrame(self.stderr, columns=[f"stderr:{f}" for f in self.feature_names], index=df.index)
            df = pd.concat([df, se], axis=1)
        return df

    # ------------------------------------------------------------------ JSON
    def to_dict(self) -> dict[str, Any]:
        return {
            "whybox_explanation": SCHEMA_VERSION,
            "method": self.method,
            "params": _jsonable(self.params),
            "seed": self.seed,
            "feature_names": self.feature_names,
            "output_names": _jsonable(self.output_names),
            "target": _jsonable(self.target.tolist()),
            "row_ids": _jsonable(self.row_ids.tolist()),
            "values": _nested(self.values),                       # a failed row (NaN) is null
            "base_values": _nested(self.base_values),
            "predictions": _nested(self.predictions),
            "stderr": None if self.stderr is None else _nested(self.stderr),
            "data": None if self.data is None else _jsonable(self.data.tolist()),
            "n_model_rows": int(self.n_model_rows),
            "n_model_calls": int(self.n_model_calls),
            "seconds": float(self.seconds),
        }

    def to_json(self, path: str | os.PathLike | None = None, *, indent: int | None = None) -> str:
        """Serialise to JSON; when ``path`` is given the file is written atomically."""
        text = json.dumps(self.to_dict(), indent=indent)
        if path is not None:
            atomic_write_text(path, text)
        return text

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "Explanation":
        if not isinstance(d, dict) or "whybox_explanation" not in d:
            raise InputError("not a whybox explanation (missing 'whybox_explanation' key)")
        return cls(
            values=_denest(d["values"]), base_values=_denest(d["base_values"]),
            predictions=_denest(d["predictions"]),
            feature_names=d["feature_names"],
            target=np.asarray(d["target"]), method=d["method"], params=d.get("params", {}),
            seed=d.get("seed"), stderr=None if d.get("stderr") is None else _denest(d["stderr"]),
            data=None if d.get("data") is None else _data_array(d["data"]),
            output_names=d.get("output_names"), n_model_rows=d.get("n_model_rows", 0),
            n_model_calls=d.get("n_model_calls", 0), seconds=d.get("seconds", 0.0),
            row_ids=None if d.get("row_ids") is None else np.asarray(d["row_ids"]))

    @classmethod
    def from_json(cls, text_or_path: str | os.PathLike) -> "Explanation":
        """Load from a JSON string or a path to a JSON file."""
        s = str(text_or_path)
        if not s.lstrip().startswith("{"):
            try:
                with open(s, encoding="utf-8") as fh:
                    s = fh.read()
            except OSError as exc:
                raise InputError(f"cannot read explanation file {text_or_path}: {exc}") from None
        try:
            return cls.from_dict(json.loads(s))
        except json.JSONDecodeError as exc:
            raise InputError(f"explanation is not valid JSON: {exc}") from None

    # ------------------------------------------------------------------ Parquet
    def to_parquet(self, path: str | os.PathLike) -> None:
        """Write :meth:`to_frame` to Parquet (atomically); the recipe is kept in the file metadata.
        An all-outputs explanation has one column block per output: ``<feature>@<j>``,
        ``base_value@<j>``, ``prediction@<j>`` (and ``stderr:<feature>@<j>``)."""
        import pyarrow as pa
        import pyarrow.parquet as pq

        if self.all_outputs:
            k = self.values.shape[2]
            cols: dict[str, Any] = {"row": self.row_ids}
            for j in range(k):
                for i, f in enumerate(self.feature_names):
                    cols[f"{f}@{j}"] = self.values[:, i, j]
                cols[f"base_value@{j}"] = self.base_values[:, j]
                cols[f"prediction@{j}"] = self.predictions[:, j]
                if self.stderr is not None:
                    for i, f in enumerate(self.feature_names):
                        cols[f"stderr:{f}@{j}"] = self.stderr[:, i, j]
            df = pd.DataFrame(cols)
        else:
            df = self.to_frame().reset_index()
            df["target"] = df["target"].astype(str)
        table = pa.Table.from_pandas(df, preserve_index=False)
        meta = dict(table.schema.metadata or {})
        header = self.to_dict()
        for key in ("values", "base_values", "predictions", "stderr", "target", "row_ids"):
            header.pop(key)
        header["target_index"] = _jsonable(self.target.tolist())
        if self.all_outputs:
            header["outputs"] = int(self.values.shape[2])
        meta[b"whybox"] = json.dumps(header).encode()
        table = table.replace_schema_metadata(meta)
        path = os.fspath(path)
        tmp = _tmp_name(path)
        pq.write_table(table, tmp)
        os.replace(tmp, path)

    @classmethod
    def from_parquet(cls, path: str | os.PathLike) -> "Explanation":
        import pyarrow.parquet as pq

        table = pq.read_table(path)
        meta = (table.schema.metadata or {}).get(b"whybox")
        if meta is None:
            raise InputError(f"{path} has no whybox metadata; was it written by Explanation.to_parquet?")
        h = json.loads(meta)
        df = table.to_pandas()
        names = h["feature_names"]
        k = h.get("outputs")
        if k:
            vals = np.stack([df[[f"{f}@{j}" for f in names]].to_numpy(float) for j in range(k)], axis=2)
            base = np.stack([df[f"base_value@{j}"].to_numpy(float) for j in range(k)], axis=1)
            pred = np.stack([df[f"prediction@{j}"].to_numpy(float) for j in range(k)], axis=1)
            se_cols = [f"stderr:{names[0]}@0"] if names else []
            se = (np.stack([df[[f"stderr:{f}@{j}" for f in names]].to_numpy(float) for j in range(k)], axis=2)
                  if se_cols and se_cols[0] in df.columns else None)
        else:
            stderr_cols = [f"stderr:{f}" for f in names]
            vals, base, pred = df[names].to_numpy(float), df["base_value"].to_numpy(float), df["prediction"].to_numpy(float)
            se = df[stderr_cols].to_numpy(float) if all(c in df.columns for c in stderr_cols) else None
        return cls(values=vals, base_values=base,
                   predictions=pred, feature_names=names,
                   target=np.asarray(h["target_index"]), method=h["method"], params=h.get("params", {}),
                   seed=h.get("seed"), stderr=se,
                   data=None if h.get("data") is None else _data_array(h["data"]),
                   output_names=h.get("output_names"), n_model_rows=h.get("n_model_rows", 0),
                   n_model_calls=h.get("n_model_calls", 0), seconds=h.get("seconds", 0.0),
                   row_ids=df["row"].to_numpy())

    def save(self, path: str | os.PathLike) -> None:
        """Save by extension: .json, .parquet or .html (a self-contained report)."""
        p = os.fspath(path)
        if p.endswith(".json"):
            self.to_json(p, indent=1)
        elif p.endswith(".parquet"):
            self.to_parquet(p)
        elif p.endswith((".html", ".htm")) and self.params.get("representation") == "text":
            from whybox.io.text_render import write_text_html
            write_text_html([self], p)
        elif p.endswith((".html", ".htm")):
            from whybox.io.report import write_html
            write_html([self], p)
        else:
            raise InputError(f"unknown output format for {p!r}: use .json, .parquet or .html")

    # ------------------------------------------------------------------ interop & plots
    def to_shap(self):
        """Return a ``shap.Explanation`` (requires shap); one output for every row."""
        self._one_target("to_shap()")
        try:
            import shap
        except ImportError:  # pragma: no cover - depends on environment
            raise ImportError("to_shap() needs shap: pip install shap") from None
        data = None
        if self.data is not None:
            try:
                data = self.data.astype(float)
            except (TypeError, ValueError):
                data = self.data
        return shap.Explanation(values=self.values.copy(), base_values=self.base_values.copy(), data=data,
                                feature_names=list(self.feature_names))

    def plot(self, kind: str = "bar", row: int = 0, *, max_features: int = 10, path: str | None = None, ax=None,
             feature: Any = None, color: Any = "auto"):
        """Plot with matplotlib: ``bar``, ``waterfall`` or ``force`` for one row; ``beeswarm``,
        ``global_bar`` (mean |value| per feature), ``decision`` and ``heatmap`` for all rows (for an
        all-outputs explanation ``beeswarm`` draws one panel per output and ``global_bar`` stacks the
        outputs);
        ``dependence`` for one ``feature`` over all rows (coloured by ``color``: a feature, None, or
        "auto", the feature that best explains the spread). Saves a PNG when ``path`` is given;
        returns the matplotlib Figure."""
        if kind in ("beeswarm", "global_bar") and self.all_outputs:
            pass                               # one panel (beeswarm) or one bar colour (bar) per output
        elif kind in ("beeswarm", "global_bar", "dependence", "decision", "heatmap"):
            self._one_target(f"the {kind} plot")
        elif self.all_outputs:
            raise InputError(f"the {kind} plot shows one output: e[:, :, <label>].plot(...)")
        if kind == "force":
            from whybox.io.force import force_plot
            return force_plot(self, row, ax=ax, path=path)
        from whybox.io import plots
        return plots.plot(self, kind=kind, row=row, max_features=max_features, path=path, ax=ax, feature=feature,
                          color=color)

    def force_html(self, rows: Any = None, path: str | None = None, *, max_rows: int = 50) -> str:
        """shap's force plot as a self-contained HTML page of inline SVGs (no script, nothing fetched),
        one per row (default: the first ``max_rows``); written to ``path`` when given."""
        from whybox.io.force import force_html
        return force_html(self, rows, path=path, max_rows=max_rows)

    def _repr_html_(self, max_rows: int = 5, k: int = 5) -> str:
        """A compact view for notebooks: what was explained, then per row (at most ``max_rows``) the
        explained output, its base value and the ``k`` largest attributions as bars (no script;
        names and values escaped)."""
        import html as _html

        n, d = self.shape[:2]
        esc = _html.escape
        head = (f"<div style='font-family:system-ui,sans-serif;font-size:13px'><b>whybox Explanation</b> "
                f"&middot; method <code>{esc(self.method)}</code> &middot; {n:,} row(s) &times; {d} feature(s)"
                f" &middot; {self.n_model_rows:,} model rows &middot; {self.seconds:.3f} s")
        if self.all_outputs:
            names = self.output_names or list(range(self.shape[2]))
            return (head + f"<br>every output ({esc(', '.join(map(str, names)))}): slice one with "
                    "<code>e[:, :, label]</code> for the per-row view.</div>")
        parts = [head, "<table style='border-collapse:collapse;margin-top:4px'>"]
        names = self.target_names()
        for r in range(min(n, max_rows)):
            top = self.top_features(r, k)
            vmax = max((abs(v) for _, v in top), default=0.0) or 1.0
            base = self.base_values[r]
            base_txt = "" if not np.isfinite(base) else f", base {base:.4g}"
            parts.append(f"<tr><td colspan='3' style='padding-top:6px'><b>row {r}</b>: output "
                         f"{esc(str(names[r]))} = {self.predictions[r]:.4g}{base_txt}</td></tr>")
            for name, v in top:
                j = self.feature_names.index(name)
                shown = "" if self.data is None else f" = {esc(str(self.data[r, j]))[:30]}"
                colour = "#d6604d" if v > 0 else "#4393c3"
                parts.append(f"<tr><td style='padding:0 8px'>{esc(name)}{shown}</td><td style='text-align:right;"
                             f"padding:0 8px'>{v:+.4g}</td><td><div style='background:{colour};height:9px;"
                             f"width:{int(120 * abs(v) / vmax)}px'></div></td></tr>")
        parts.append("</table>")
        if n > max_rows:
            parts.append(f"<div>... and {n - max_rows:,} more row(s)</div>")
        return "".join(parts) + "</div>"

    def __repr__(self) -> str:
        n, d = self.shape[:2]
        outs = f", outputs={self.shape[2]}" if self.all_outputs else ""
        return (f"Explanation(method={self.method!r}, rows={n}, features={d}{outs}, "
                f"model_rows={self.n_model_rows:,}, seconds={self.seconds:.3f})")


def _nested(a: np.ndarray) -> Any:
    """Nested lists with NaN/inf as None (JSON has no NaN)."""
    a = np.asarray(a, dtype=float)
    if a.ndim == 0:
        return float(a) if np.isfinite(a) else None
    return [_nested(x) for x in a]


def _denest(v: Any) -> np.ndarray:
    def fix(x: Any) -> Any:
        return [fix(y) for y in x] if isinstance(x, list) else (np.nan if x is None else x)
    return np.asarray(fix(v), dtype=float)


def _data_array(data: Any) -> np.ndarray:
    """The rows' shown feature values: float64 when every value is a real number (ints and floats, not
    booleans), else an object array that keeps each value as given (strings, categories, None)."""
    a = np.asarray(data)
    if a.dtype.kind in "iuf":
        return a.astype(float, copy=False)
    a = np.asarray(data, dtype=object)
    flat = a.reshape(-1)
    if flat.size and all(isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, (bool, np.bool_))
                         for v in flat):
        return a.astype(float)
    return a


def _jsonable(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return _jsonable(obj.tolist())
    if isinstance(obj, (np.integer,)):
        return int(obj)
    if isinstance(obj, (np.floating, float)):
        f = float(obj)
        return f if np.isfinite(f) else None
    if isinstance(obj, (np.bool_,)):
        return bool(obj)
    if obj is None or isinstance(obj, (str, int, bool)):
        return obj
    return str(obj)


def _nan_to_none(a: np.ndarray) -> list:
    return [None if not np.isfinite(v) else float(v) for v in a]


def _tmp_name(path: str) -> str:
    """A temporary file beside ``path`` with the permissions a plain open() would give (mkstemp
    creates files readable by the owner only)."""
    d = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=".whybox-", suffix=".tmp", dir=d)
    os.close(fd)
    mask = os.umask(0)
    os.umask(mask)
    os.chmod(tmp, 0o666 & ~mask)
    return tmp


def atomic_write_text(path: str | os.PathLike, text: str, *, mode: int | None = None) -> None:
    """Write ``text`` (UTF-8) to ``path`` via a temporary file and rename (never a half-written file);
    ``mode`` (e.g. 0o600) sets the file's permissions, else the usual ones apply."""
    atomic_write_bytes(path, text.encode("utf-8"), mode=mode)


def atomic_write_bytes(path: str | os.PathLike, data: bytes, *, mode: int | None = None) -> None:
    """Write ``data`` to ``path`` via a temporary file and rename (never a half-written file);
    ``mode`` (e.g. 0o600) sets the file's permissions before any byte is written."""
    path = os.fspath(path)
    tmp = _tmp_name(path)
    try:
        with open(tmp, "wb") as fh:
            if mode is not None:
                os.chmod(tmp, mode)          # before any byte is written
            fh.write(data)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise
