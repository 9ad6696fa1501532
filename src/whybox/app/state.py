"""What the dashboard serves: one model and its data, explained on demand (no web code here)."""
from __future__ import annotations

import threading
import time
import uuid
from collections import OrderedDict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

import whybox
from whybox.core.explanation import Explanation
from whybox.errors import InputError, WhyboxError

DEFAULT_PARAMS = {"kernelshap": {"n_samples": 256}, "lime": {"n_samples": 500}}


def capabilities() -> dict[str, bool]:
    """Panels appear only when their capability exists in this installation."""
    import importlib.util

    return {"counterfactuals": importlib.util.find_spec("whybox.counterfactuals") is not None,
            "narratives": True, "fairness": True}


class Busy(WhyboxError):
    """The dashboard has as much work queued as it accepts; the client should retry later (HTTP 429)."""


@dataclass
class Job:
    id: str
    kind: str
    total: int
    done: int = 0
    status: str = "running"          # running | done | error
    error: str | None = None
    result: Any = None
    started: float = field(default_factory=time.time)

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "kind": self.kind, "total": self.total, "done": self.done, "status": self.status,
                "error": self.error, "progress": 1.0 if self.total == 0 else self.done / self.total,
                "seconds": round(time.time() - self.started, 2)}


class AppState:
    """A model, the rows it is explained on, and the dashboard's explanations and jobs.

    model : anything :func:`whybox.as_model` accepts (fitted on ``X``'s columns).
    X : DataFrame of model inputs; y : true labels (optional: accuracy and the fairness error rates).
    focus : the class whose score is explained (default: the last class, e.g. "1"/"benign").
    """

    MAX_CACHE = 256          # explanations kept (least recently used dropped first)
    MAX_JOBS = 64            # job records kept (oldest finished dropped first)
    MAX_PENDING_JOBS = 4     # jobs running or waiting; more is refused with Busy

    def __init__(self, model: Any, X: pd.DataFrame, y: Any = None, *, name: str = "model", description: str = "",
                 method: str = "kernelshap", focus: Any = None, seed: int = 0, n_background: int = 10,
                 job_workers: int = 1, X_train: pd.DataFrame | None = None, y_train: Any = None,
                 class_names: list[str] | None = None, protected: list[str] | None = None, train: Any = None):
        self.lock = threading.RLock()
        self.jobs: dict[str, Job] = {}
        self._job_pool = ThreadPoolExecutor(max(1, int(job_workers)), thread_name_prefix="whybox-job")
        self.seed = int(seed)
        self.n_background = int(n_background)
        self.load(model, X, y, name=name, description=description, method=method, focus=focus, X_train=X_train,
                  y_train=y_train, class_names=class_names, protected=protected, train=train)

    # ----------------------------------------------------------------------- loading
    def load(self, model: Any, X: pd.DataFrame, y: Any = None, *, name: str = "model", description: str = "",
             method: str = "kernelshap", focus: Any = None, X_train: pd.DataFrame | None = None, y_train: Any = None,
             class_names: list[str] | None = None, protected: list[str] | None = None, train: Any = None) -> None:
        """Load a model and its rows. ``X_train``/``y_train`` (optional) let the fairness remedies
        refit the model (``train(X, y, sample_weight=None)`` or a clone of a scikit-learn estimator);
        ``class_names`` name the classes where the model knows only codes (0/1 -> "malignant"/"benign");
        ``protected`` lists the protected attributes offered first on the fairness page."""
        if not isinstance(X, pd.DataFrame) or X.empty:
            raise InputError("the data must be a non-empty table")
        X = X.reset_index(drop=True)
        m, arr, spec, _ = whybox.api.prepare(model, X, background=X.iloc[:1])
        X = X[list(m.columns)] if m.columns is not None else X
        out = m(arr)
        if y is not None:
            y = np.asarray(y)
            if len(y) != len(X):
                raise InputError(f"{len(y)} labels for {len(X)} rows")
        if X_train is not None:
            if not isinstance(X_train, pd.DataFrame) or y_train is None or len(X_train) != len(np.asarray(y_train)):
                raise InputError("X_train must be a table with one label per row in y_train")
            missing = [c for c in X.columns if c not in X_train.columns]
            if missing:
                raise InputError(f"X_train is missing column(s) {missing}")
            X_train = X_train.reset_index(drop=True)[list(X.columns)]
        is_clf = bool(m.is_classifier) if m.is_classifier is not None else out.shape[1] > 1
        model_names = m.output_names or [str(i) for i in range(out.shape[1])]
        if class_names is not None:
            if len(class_names) != out.shape[1]:
                raise InputError(f"class_names has {len(class_names)} names for {out.shape[1]} model outputs")
            names = [str(c) for c in class_names]
        elif is_clf:
            names = [str(c) for c in model_names]
        else:
            names = ["predicted value"] if out.shape[1] == 1 else [f"output {c}" for c in model_names]
        if focus is None:
            fidx = out.shape[1] - 1
        elif str(focus) in names:
            fidx = names.index(str(focus))
        elif focus in model_names:
            fidx = model_names.index(focus)
        else:
            raise InputError(f"focus class {focus!r} is not one of the model's outputs {names}")
        protected = list(protected or [])
        unknown = [c for c in protected if c not in X.columns]
        if unknown:
            raise InputError(f"protected attribute(s) {unknown} are not columns of the data {list(X.columns)}")
        numeric = all(pd.api.types.is_numeric_dtype(t) for t in X.dtypes)
        bg = whybox.kmeans(X, min(self.n_background, len(X))) if numeric else whybox.sample(X, min(20, len(X)), seed=self.seed)
        with self.lock:
            self.model, self.X, self.y, self.spec = model, X, y, spec
            self.X_train, self.y_train, self.train = X_train, (None if y_train is None else np.asarray(y_train)), train
            self.name, self.description = name, description
            self.method = whybox.explainers.recipes.get_recipe(method).name
            self.outputs, self.output_names, self.focus = out, list(names), fidx
            self.model_names = [str(c) for c in model_names]
            self.is_classifier, self.protected = is_clf, protected
            self.numeric, self.background = numeric, bg
            self.classes = out.argmax(axis=1) if is_clf else None
            self._cache: OrderedDict[tuple, Explanation] = OrderedDict()
            self._cf: Any = None
            self._surrogates: OrderedDict[tuple, dict] = OrderedDict()
            self._fair: OrderedDict[tuple, Any] = OrderedDict()
            self.global_job: str | None = None

    def _memo(self, store: OrderedDict, key: tuple, make) -> Any:
        """``make()`` computed once per key in ``store`` (the 16 most recent kept)."""
        with self.lock:
            hit = store.get(key)
        if hit is not None:
            return hit
        val = make()
        with self.lock:
            store[key] = val
            while len(store) > 16:
                store.popitem(last=False)
        return val

    def remember(self, key: tuple, make) -> Any:
        """A fairness result computed once per setting (flip tests, proxies, remedies; at most 16 kept)."""
        return self._memo(self._fair, key, make)

    def peek(self, key: tuple) -> Any:
        """A fairness result if it was computed already, else None (nothing is computed)."""
        with self.lock:
            return self._fair.get(key)

    @property
    def task(self) -> str:
        return "classification" if self.is_classifier else "regression"

    def answer(self, out: np.ndarray) -> str:
        """The model's answer for one row's outputs, in words: its class, or a regressor's value."""
        if self.is_classifier:
            return str(self.output_names[int(np.argmax(out))])
        return f"{out[self.focus]:.4g}"

    def predicted(self, i: int) -> str:
        """Row i's answer in words."""
        return self.answer(self.outputs[i])

    def counterfactual_explainer(self) -> Any:
        """One CounterfactualExplainer per loaded model; its donor outputs are the outputs already computed."""
        from whybox.counterfactuals import CounterfactualExplainer

        with self.lock:
            if self._cf is None:
                self._cf = CounterfactualExplainer(self.model, self.X).precompute(self.outputs)   # same rows, order
            return self._cf

    def rule_and_examples(self, row: Any) -> dict[str, Any]:
        """For a lay reader: the row's anchor (a rule under which the model keeps its answer) and the
        data rows the model treats the same way (MMD-critic prototypes near the row)."""
        from whybox.anchors import anchor
        from whybox.anchors.prototypes import prototypes

        r = self.check_row(row)
        if not self.is_classifier:
            raise InputError("a rule under which the model keeps its answer needs a classifier; this model predicts a number")
        frame = self.X.iloc[[r]]
        a = anchor(self.model, frame, self.X, budget=6000, seed=self.seed, delta=0.1, epsilon=0.15, beam_size=1,
                   batch_size=50)
        p = prototypes(self.model, self.X, x=frame, n_prototypes=3, n_criticisms=0, seed=self.seed,
                       neighbours=min(100, len(self.X)))
        idx = [int(i) for v in p.prototypes.values() for i in v if int(i) != r][:3]
        name = str(a.prediction)
        if a.valid:
            words = (f"As long as {' and '.join(a.predicates)}, the model answers “{name}” for "
                     f"{100 * a.precision:.0f}% of such cases (at least {100 * a.precision_low:.0f}% with 95% "
                     f"confidence). This rule covers {100 * a.coverage:.0f}% of the rows.")
        else:
            words = ("No simple rule keeps the model's answer reliably for this row: even the best one found, "
                     f"{' and '.join(a.predicates) or 'none'}, holds for only {100 * a.precision:.0f}% of such cases.")
        cols = list(self.X.columns)
        examples = [{"row": i, "predicted": self.predicted(i),
                     "values": {c: _plain(self.X.iloc[i][c]) for c in cols}} for i in idx]
        return {"row": r, "rule": words, "valid": a.valid, "anchor": a.to_dict(), "examples": examples,
                "columns": cols}

    def whole_model(self, kind: str = "tree", max_depth: int = 3, budget: int = 3000) -> dict[str, Any]:
        """A global surrogate of the model around the loaded rows, with its fidelity (cached per setting)."""
        from whybox.whole import global_surrogate

        def make() -> dict[str, Any]:
            s = global_surrogate(self.model, self.X, kind=kind, max_depth=max_depth, budget=budget, seed=self.seed)
            d = s.to_dict()
            main = s.fidelity.get("perturbed")
            d["trust"] = _trust_words(main.value, main.low, main.metric) if main is not None else ""
            return d
        return self._memo(self._surrogates, (kind, int(max_depth), int(budget)), make)

    # ----------------------------------------------------------------------- facts
    @property
    def n_rows(self) -> int:
        return len(self.X)

    def y_index(self) -> np.ndarray | None:
        """True labels as output indices (None when unknown, not matching the outputs, or a regressor)."""
        if self.y is None or not self.is_classifier:
            return None
        from whybox.fairness.groups import label_index
        yi = label_index(self.y, self.model_names)
        return yi if yi is not None else label_index(self.y, self.output_names)

    def accuracy(self) -> float | None:
        yi = self.y_index()
        return None if yi is None else float((self.classes == yi).mean())

    def info(self) -> dict[str, Any]:
        return {"name": self.name, "description": self.description, "rows": self.n_rows,
                "features": list(self.spec.names), "outputs": self.output_names,
                "focus": self.output_names[self.focus], "accuracy": self.accuracy(), "method": self.method,
                "methods": sorted(whybox.METHODS), "capabilities": capabilities(),
                "task": self.task, "protected": self.protected,
                "can_refit": self.X_train is not None}

    def check_row(self, row: Any) -> int:
        if isinstance(row, bool) or not isinstance(row, (int, np.integer)):
            try:
                row = int(row)
            except (TypeError, ValueError):
                raise InputError(f"row must be an integer, got {row!r}") from None
        if not 0 <= row < self.n_rows:
            raise InputError(f"row {row} is out of range: the data has {self.n_rows} rows (0..{self.n_rows - 1})")
        return int(row)

    def frame_from(self, row: Any = None, features: dict | None = None) -> pd.DataFrame:
        """One input row: a data row, optionally with some features changed (what-if)."""
        base = self.X.iloc[[self.check_row(row if row is not None else 0)]].copy()
        for k, v in (features or {}).items():
            if k not in base.columns:
                raise InputError(f"unknown feature {k!r}; the model's features are {list(base.columns)}")
            if pd.api.types.is_numeric_dtype(base[k].dtype):
                try:
                    v = float(v)
                except (TypeError, ValueError):
                    raise InputError(f"feature {k!r} needs a number, got {v!r}") from None
                if not np.isfinite(v):
                    raise InputError(f"feature {k!r} must be finite, got {v!r}")
                base[k] = base[k].astype(float)
            base.iloc[0, base.columns.get_loc(k)] = v
        return base

    # ----------------------------------------------------------------------- explanations
    def explain(self, frame: pd.DataFrame, method: str | None = None, **params: Any) -> Explanation:
        method = whybox.explainers.recipes.get_recipe(method or self.method).name
        kw = {**DEFAULT_PARAMS.get(method, {}), **params}
        if not self.numeric and whybox.METHODS[method].family == "gradient":
            raise InputError(f"{method} needs numeric features; this data has text/categorical columns")
        return whybox.explain(self.model, frame, method=method, background=self.background, seed=self.seed,
                              target_index=self.focus, **kw)

    def explain_row(self, row: Any = None, features: dict | None = None, method: str | None = None) -> dict[str, Any]:
        frame = self.frame_from(row, features)
        key = (int(row) if row is not None else 0, tuple(sorted((features or {}).items())), method or self.method)
        with self.lock:
            e = self._cache.get(key)
            if e is not None:
                self._cache.move_to_end(key)
        if e is None:
            e = self.explain(frame, method)
            with self.lock:
                self._cache[key] = e
                while len(self._cache) > self.MAX_CACHE:
                    self._cache.popitem(last=False)
        from whybox.metrics import local_fidelity
        fid = float(local_fidelity(self.model, frame, e, background=self.background, metric="r2", n_samples=100,
                                   seed=self.seed, data=self.X)[0])
        n = whybox.narrate(e, row=0)
        order = np.argsort(-np.abs(e.values[0]), kind="stable")
        feats = [{"name": e.feature_names[j], "value": _plain(frame.iloc[0, j]), "attribution": float(e.values[0, j])}
                 for j in order]
        level, words = explanation_trust(fid)
        return {"row": None if row is None else int(row), "changed": sorted((features or {})),
                "prediction": float(e.predictions[0]), "class": self.output_names[self.focus],
                "predicted_class": self.answer(self.m_outputs(frame)), "task": self.task,
                "base_value": float(e.base_values[0]), "method": e.method, "fidelity_r2": fid,
                "trust": words, "trust_level": level,
                "features": feats, "narrative": n.to_dict(), "model_rows": e.n_model_rows}

    def better_method(self, row: Any) -> dict[str, Any]:
        """The method :func:`whybox.choose` finds most faithful for this row, in the same sense as the
        row page's trust (local R² when features are hidden towards the background)."""
        r = self.check_row(row)
        frame = self.X.iloc[[r]]
        cands = ["kernelshap", "lime", "occlusion"] + (["shapley"] if self.spec.n_features <= 10 else [])
        c = whybox.choose(self.model, frame, candidates=cands, metric="r2", background=self.background,
                          seed=self.seed, target_index=self.focus, n_samples=100,
                          params={m: DEFAULT_PARAMS[m] for m in cands if m in DEFAULT_PARAMS})
        rank = c.ranking[c.ranking["status"] == "ok"]
        scores = [{"method": str(m), "r2": float(v)} for m, v in zip(rank["method"], rank["score"])]
        best = scores[0]
        return {"row": r, "best": best["method"], "r2": best["r2"], "trust": explanation_trust(best["r2"])[1],
                "ranking": scores}

    def m_outputs(self, frame: pd.DataFrame) -> np.ndarray:
        m, arr, _, _ = whybox.api.prepare(self.model, frame, background=frame)   # one adapter, one query
        return m(arr)[0]

    # ----------------------------------------------------------------------- jobs
    def start_job(self, kind: str, total: int, work) -> Job:
        """Run ``work(job)`` on the job pool (bounded: at most MAX_PENDING_JOBS running or waiting,
        else :class:`Busy`); at most MAX_JOBS records are kept."""
        with self.lock:
            pending = sum(j.status == "running" for j in self.jobs.values())
            if pending >= self.MAX_PENDING_JOBS:
                raise Busy(f"{pending} jobs are already running or waiting; try again when one has finished")
            job = Job(uuid.uuid4().hex[:12], kind, total)
            self.jobs[job.id] = job
            finished = [k for k, j in self.jobs.items() if j.status != "running" and k != self.global_job]
            for k in finished[:max(0, len(self.jobs) - self.MAX_JOBS)]:
                del self.jobs[k]

        def run() -> None:
            try:
                job.result = work(job)
                job.status = "done"
            except Exception as exc:  # noqa: BLE001 - reported to the page
                job.status, job.error = "error", str(exc) if isinstance(exc, WhyboxError) else type(exc).__name__
        self._job_pool.submit(run)
        return job

    def explain_many(self, rows: list[int], method: str | None = None, chunk: int = 20) -> Job:
        rows = [self.check_row(r) for r in rows]

        def work(job: Job) -> Explanation:
            parts = []
            for s in range(0, len(rows), chunk):
                idx = rows[s:s + chunk]
                e = self.explain(self.X.iloc[idx], method)
                e.row_ids = np.array(idx)
                parts.append(e)
                job.done = min(len(rows), s + chunk)
            from whybox.batch import concat
            return concat(parts)
        return self.start_job("explain", len(rows), work)

    def global_view(self, max_rows: int = 200) -> Job:
        """The overview's job: explain up to ``max_rows`` rows (evenly spread), once."""
        with self.lock:
            if self.global_job in self.jobs and self.jobs[self.global_job].status != "error":
                return self.jobs[self.global_job]
            n = min(max_rows, self.n_rows)
            rows = list(np.unique(np.linspace(0, self.n_rows - 1, n).astype(int)))
            job = self.explain_many(rows)
            self.global_job = job.id
            return job

    def global_summary(self) -> dict[str, Any] | None:
        job = self.jobs.get(self.global_job or "")
        if job is None or job.status != "done":
            return None
        e: Explanation = job.result
        imp = e.global_importance()
        order = list(imp.index)
        X = self.X.iloc[e.row_ids]
        swarm = []
        for f in order[:12]:
            j = e.feature_names.index(f)
            col = X.iloc[:, j]
            if pd.api.types.is_numeric_dtype(col):
                lo, hi = float(col.min()), float(col.max())
                colour = ((col - lo) / (hi - lo if hi > lo else 1)).round(3).tolist()
            else:
                codes = pd.factorize(col)[0]
                colour = (codes / max(1, codes.max())).round(3).tolist()
            swarm.append({"feature": f, "attributions": e.values[:, j].round(5).tolist(), "colour": colour})
        return {"importance": [{"feature": f, "mean_abs": float(imp[f])} for f in order], "beeswarm": swarm,
                "rows": int(len(e)), "method": e.method}


def explanation_trust(r2: float) -> tuple[str, str]:
    """How far one row's explanation can be trusted, in words, from its local R² (features hidden
    towards the background; 1 = it reproduces the model's answers exactly)."""
    if not np.isfinite(r2):
        return "unknown", "cannot be checked here"
    if r2 >= 0.9:
        return "good", "reliable: it reproduces the model's answers closely when features are hidden"
    if r2 >= 0.7:
        return "fair", "mostly reliable: it reproduces the model's answers fairly well, with some gaps"
    if r2 >= 0.4:
        return "rough", "only a rough guide: it misses a good part of how the model answers"
    return "poor", "not reliable: it does not reproduce how the model answers for this row"


def _trust_words(value: float, low: float, metric: str) -> str:
    """How far a summary can be trusted, in words (the number stays available beside it)."""
    if metric == "agreement":
        if low >= 0.95:
            return "very close to the model: it gives the model's answer almost every time"
        if low >= 0.85:
            return "a good summary: it gives the model's answer most of the time, but not always"
        if low >= 0.7:
            return "a rough sketch: it often differs from the model"
        return "not a faithful summary: it differs from the model too often to rely on"
    if low >= 0.9:
        return "very close to the model's outputs"
    if low >= 0.7:
        return "a fair summary of the model's outputs, with visible gaps"
    return "a rough sketch of the model's outputs"


def _plain(v: Any) -> Any:
    if isinstance(v, (np.floating, float)):
        return float(v)
    if isinstance(v, (np.integer,)):
        return int(v)
    return str(v) if not isinstance(v, (int, str)) else v
