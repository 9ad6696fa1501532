"""Data-free model extraction: a clone of a black-box classifier from queries alone (needs torch).

For auditing models you are allowed to query (see docs/global.md). Every victim row goes through a
counted :class:`whybox.Model` with the extraction ``budget``; evaluation on the user's test rows uses
a separate counter (``evaluation_queries``) and never feeds the clone.

Methods (``method=``), all on the same clone, input scaling and training loss:

* ``"cabage"`` — after Rosenthal et al. 2024 (CaBaGe): an ensemble of ``n_generators`` generators
  maps noise to inputs inside the ranges; each is trained to maximise the disagreement (L1 between
  the softmax outputs) of two clones, as in DisGUIDE (the same authors' earlier method), plus a
  class-balance term (the entropy of the clones' mean prediction over the batch), so generator
  training spends **no** victim queries. Selective filtering: the generators propose
  ``oversample`` x the batch, and the victim is queried with the hardest candidates (largest clone
  disagreement) under an equal quota per class the clones predict (class-balanced). Experience
  replay: every queried row is kept, and clone minibatches mix the newest rows with replayed rows
  drawn with probability proportional to their current clone loss (difficult rows more often).
* ``"dfme"`` — a DFME-style baseline (Truong et al. 2021): one generator and one clone; the generator
  maximises the L1 distance between the victim's and the clone's logits (log-probabilities centred
  per row), with the victim's gradient estimated by forward differences along ``zo_directions``
  random unit directions per input — each of those queries is counted. With labels only there is no
  victim gradient to estimate: the generator then maximises the clone's predictive entropy, and
  ``gradient`` says so.
* ``"random"`` — uniform random inputs inside the ranges, the same clone training and replay.

Responses: ``response="auto"`` uses the victim's scores when it returns one column per class
(probabilities, or logits which are passed through a softmax), and labels when it returns one
column; ``"labels"`` keeps only the arg-max even when scores are returned (a label-only API).
With labels, the number of classes need not be known (``n_classes=None``): classes are added to the
clone's head as the victim first answers them (``classes`` lists them in order of discovery).
"""
from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import pandas as pd

from whybox.core.validation import as_python
from whybox.errors import InputError, ModelError
from whybox.params import Choice, Float, Int, check

METHODS = ("cabage", "dfme", "random")
PARAMS = {
    "method": Choice(METHODS),
    "response": Choice(("auto", "probabilities", "labels")),
    "budget": Int(1, 10**10),
    "batch_size": Int(8, 100_000),
    "n_generators": Int(1, 64),
    "oversample": Int(1, 64),
    "clone_steps": Int(1, 1000),
    "zo_directions": Int(1, 100),
    "n_classes": Int(2, 100_000, none=True),
    "lr": Float(0, 1, low_open=True),
    "gen_lr": Float(0, 1, low_open=True),
    "balance": Float(0, 1e6),
}


def _torch():
    try:
        import torch
    except ImportError:
        raise InputError("model extraction trains a torch clone: pip install 'whybox[torch]'") from None
    return torch


@dataclass(frozen=True)
class InputSpec:
    """The victim's inputs: ``shape`` (flattened to ``d`` columns when queried) and per-value ranges
    ``low``/``high`` (scalars or arrays that broadcast to ``shape``); ``names`` optional."""

    shape: tuple[int, ...]
    low: np.ndarray
    high: np.ndarray
    names: tuple[str, ...] | None = None

    @classmethod
    def make(cls, shape: Any = None, low: Any = None, high: Any = None, names: Sequence[str] | None = None) -> "InputSpec":
        if low is None or high is None:
            raise InputError("the input spec needs input ranges: low= and high= (scalars or one value per input)")
        if shape is None:
            size = np.size(low) if np.ndim(low) else np.size(high)
            shape = (int(size),) if np.ndim(low) or np.ndim(high) else None
            if shape is None:
                raise InputError("the input spec needs shape= when low and high are scalars")
        if isinstance(shape, (int, np.integer)):
            shape = (int(shape),)
        try:
            shape = tuple(int(s) for s in shape)
        except (TypeError, ValueError):
            raise InputError(f"shape must be a tuple of positive integers, got {shape!r}") from None
        if not shape or any(s < 1 for s in shape):
            raise InputError(f"shape must be a tuple of positive integers, got {shape!r}")
        try:
            lo = np.broadcast_to(np.asarray(low, dtype=float), shape).reshape(-1).copy()
            hi = np.broadcast_to(np.asarray(high, dtype=float), shape).reshape(-1).copy()
        except (ValueError, TypeError) as exc:
            raise InputError(f"low/high do not broadcast to shape {shape}: {exc}") from None
        if not (np.isfinite(lo).all() and np.isfinite(hi).all()):
            raise InputError("the input ranges low/high must be finite")
        if (hi <= lo).any():
            j = int(np.flatnonzero(hi <= lo)[0])
            raise InputError(f"input {j}: high ({hi[j]}) must be greater than low ({lo[j]})")
        if names is not None and len(names) != lo.size:
            raise InputError(f"names has {len(names)} entries for {lo.size} inputs")
        return cls(shape, lo, hi, tuple(names) if names is not None else None)

    @classmethod
    def load(cls, path: str | Path) -> "InputSpec":
        """From JSON: ``{"shape": [64], "low": 0, "high": 16}`` or
        ``{"features": [{"name": "age", "low": 17, "high": 90}, ...]}``."""
        try:
            d = json.loads(Path(path).read_text())
        except (OSError, ValueError) as exc:
            raise InputError(f"could not read the input spec {path}: {exc}") from None
        return cls.from_dict(d)

    @classmethod
    def from_dict(cls, d: Any) -> "InputSpec":
        if not isinstance(d, dict):
            raise InputError("the input spec must be a JSON object")
        if "features" in d:
            fs = d["features"]
            if not isinstance(fs, list) or not fs or not all(isinstance(f, dict) for f in fs):
                raise InputError("input spec 'features' must be a non-empty list of {name, low, high}")
            missing = [i for i, f in enumerate(fs) if "low" not in f or "high" not in f]
            if missing:
                raise InputError(f"input spec features {missing[:5]} lack 'low'/'high' ranges")
            return cls.make((len(fs),), [f["low"] for f in fs], [f["high"] for f in fs],
                            [str(f.get("name", i)) for i, f in enumerate(fs)])
        return cls.make(d.get("shape"), d.get("low"), d.get("high"), d.get("names"))

    @property
    def d(self) -> int:
        return int(self.low.size)

    def to_dict(self) -> dict[str, Any]:
        return {"shape": list(self.shape), "low": self.low.tolist(), "high": self.high.tolist(),
                "names": None if self.names is None else list(self.names)}


@dataclass
class Extraction:
    """The clone and how well it copies the victim.

    clone : torch module, raw inputs (n, d) -> probabilities over ``classes``.
    classes : the victim's classes (labels or output indices), in the clone's output order.
    curve : DataFrame, one row per checkpoint: queries, agreement with the victim on the test rows,
        accuracy against their labels (when given), classes found, seconds.
    gradient : how the generators got their gradient (and whether it cost victim queries).
    n_queries : victim rows spent on extraction; evaluation_queries: victim rows spent on the test rows.
    """

    method: str
    clone: Any
    classes: list
    curve: pd.DataFrame
    n_queries: int
    evaluation_queries: int
    response: str
    gradient: str
    spec: InputSpec
    seconds: float
    params: dict = field(default_factory=dict)

    @property
    def n_classes(self) -> int:
        return len(self.classes)

    @property
    def agreement(self) -> float | None:
        return None if self.curve.empty else float(self.curve["agreement"].iloc[-1])

    @property
    def accuracy(self) -> float | None:
        if self.curve.empty or "accuracy" not in self.curve or self.curve["accuracy"].isna().all():
            return None
        return float(self.curve["accuracy"].iloc[-1])

    def predict_proba(self, X: Any) -> np.ndarray:
        torch = _torch()
        X = _matrix(X, self.spec)
        with torch.no_grad():
            return self.clone(torch.as_tensor(X, dtype=torch.float32)).numpy().astype(float)

    def predict(self, X: Any) -> np.ndarray:
        return np.asarray(self.classes, dtype=object)[self.predict_proba(X).argmax(axis=1)]

    def save(self, path: str | Path) -> None:
        """The clone's state dict and metadata (``.pt``; loading needs torch.load(weights_only=True))."""
        torch = _torch()
        from whybox.core.explanation import atomic_write_bytes

        import io
        buf = io.BytesIO()
        torch.save({"state_dict": self.clone.state_dict(), "classes": [as_python(c) for c in self.classes],
                    "spec": self.spec.to_dict(), "hidden": list(self.params.get("hidden", ())),
                    "method": self.method}, buf)
        atomic_write_bytes(path, buf.getvalue())

    def to_dict(self) -> dict[str, Any]:
        return {"method": self.method, "classes": [as_python(c) for c in self.classes], "n_classes": self.n_classes,
                "n_queries": self.n_queries, "evaluation_queries": self.evaluation_queries,
                "response": self.response, "gradient": self.gradient, "agreement": self.agreement,
                "accuracy": self.accuracy, "seconds": self.seconds, "params": self.params,
                "curve": self.curve.to_dict(orient="records")}


def _matrix(X: Any, spec: InputSpec) -> np.ndarray:
    X = np.asarray(X.to_numpy() if isinstance(X, pd.DataFrame) else X, dtype=float)
    X = X.reshape(len(X), -1) if X.ndim > 2 else X
    if X.ndim != 2 or X.shape[1] != spec.d:
        raise InputError(f"inputs must have {spec.d} values per row (shape {spec.shape}), got shape {X.shape}")
    return X


# ---------------------------------------------------------------------------------------------- networks
def _nets():
    torch = _torch()
    nn = torch.nn

    class Clone(nn.Module):
        """MLP on inputs scaled to [0, 1]; the head grows when a new class is discovered."""

        def __init__(self, d: int, k: int, hidden: Sequence[int]):
            super().__init__()
            layers, w = [], d
            for h in hidden:
                layers += [nn.Linear(w, h), nn.ReLU()]
                w = h
            self.body = nn.Sequential(*layers)
            self.head = nn.Linear(w, k)

        def forward(self, u):
            return self.head(self.body(u))

        def grow(self, k: int) -> None:
            old = self.head
            if k <= old.out_features:
                return
            new = nn.Linear(old.in_features, k)
            with torch.no_grad():
                new.weight[: old.out_features] = old.weight
                new.bias[: old.out_features] = old.bias
            self.head = new

    class Generator(nn.Module):
        def __init__(self, nz: int, d: int, hidden: int = 256):
            super().__init__()
            self.net = nn.Sequential(nn.Linear(nz, hidden), nn.BatchNorm1d(hidden), nn.ReLU(),
                                     nn.Linear(hidden, hidden), nn.BatchNorm1d(hidden), nn.ReLU(),
                                     nn.Linear(hidden, d), nn.BatchNorm1d(d, affine=False))

        def forward(self, z):
            # the output BatchNorm (as in DFME's generator) keeps the inputs spread over the ranges
            return torch.sigmoid(2.0 * self.net(z))

    class Deployed(nn.Module):
        """Raw inputs -> probabilities: scales to [0, 1] and applies the clone."""

        def __init__(self, clone: nn.Module, low: np.ndarray, high: np.ndarray):
            super().__init__()
            self.clone = clone
            self.register_buffer("low", torch.as_tensor(low, dtype=torch.float32))
            self.register_buffer("span", torch.as_tensor(high - low, dtype=torch.float32))

        def forward(self, x):
            return torch.softmax(self.clone((x - self.low) / self.span), dim=-1)

    return Clone, Generator, Deployed


# ---------------------------------------------------------------------------------------------- the victim
class _Victim:
    """The counted victim: raw rows in, training targets out (probabilities or class indices),
    discovering classes as labels arrive."""

    def __init__(self, model: Any, spec: InputSpec, budget: int, response: str, n_classes: int | None,
                 batch_size: int | None):
        from whybox.models.adapters import as_model

        self.base = as_model(model, batch_size=batch_size)
        self.m = self.base.child(budget=budget)
        self.spec = spec
        self.response = response
        self.n_classes = n_classes
        self.classes: list = []
        self.mode: str | None = None           # "probabilities" | "labels"
        self._index: dict = {}

    def raw(self, u: np.ndarray, m: Any = None) -> np.ndarray:
        x = self.spec.low + u * (self.spec.high - self.spec.low)
        return (m or self.m)(x)

    def read(self, out: np.ndarray) -> np.ndarray:
        """Model output -> probabilities (n, k) or class indices (n,)."""
        k = out.shape[1]
        if self.mode is None:
            self.mode = "labels" if (self.response == "labels" or k == 1) else "probabilities"
            if self.response == "probabilities" and k == 1:
                raise InputError("response='probabilities' but the victim returns one value per row (labels); "
                                 "use response='labels'")
            if self.mode == "probabilities":
                if self.n_classes is not None and self.n_classes != k:
                    raise InputError(f"n_classes={self.n_classes} but the victim returns {k} scores per row")
                names = self.base.output_names
                self.classes = list(names) if names is not None else list(range(k))
        if self.mode == "probabilities":
            return _as_probabilities(out)
        labels = self.labels_of(out)
        ids = np.empty(len(labels), dtype=np.int64)
        for i, lab in enumerate(labels.tolist()):
            j = self._index.get(lab)
            if j is None:
                if self.n_classes is not None and len(self.classes) >= self.n_classes:
                    raise ModelError(f"the victim answered a class {lab!r} beyond the n_classes={self.n_classes} "
                                     f"already seen ({self.classes})")
                j = self._index[lab] = len(self.classes)
                self.classes.append(lab)
            ids[i] = j
        return ids

    def labels_of(self, out: np.ndarray) -> np.ndarray:
        """Victim output -> class labels (never changes the discovered classes)."""
        if out.shape[1] == 1:
            vals = out[:, 0]
            return np.rint(vals).astype(int) if np.allclose(vals, np.rint(vals)) else vals
        names = self.base.output_names
        idx = out.argmax(axis=1)
        return np.asarray(names, dtype=object)[idx] if names is not None else idx


def _as_probabilities(out: np.ndarray) -> np.ndarray:
    if np.all(out >= -1e-9) and np.allclose(out.sum(axis=1), 1.0, atol=1e-4):
        p = np.clip(out, 0, None)
        return p / p.sum(axis=1, keepdims=True)
    z = out - out.max(axis=1, keepdims=True)          # scores/logits: softmax
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


# ---------------------------------------------------------------------------------------------- extraction
def extract(model: Any, input_spec: Any, *, method: str = "cabage", budget: int = 20_000,
            response: str = "auto", n_classes: int | None = None, test_data: Any = None, test_labels: Any = None,
            checkpoints: Sequence[int] | None = None, batch_size: int = 256, n_generators: int = 4,
            oversample: int = 4, clone_steps: int = 10, zo_directions: int = 1, hidden: Sequence[int] = (256, 256),
            lr: float = 1e-3, gen_lr: float = 1e-4, balance: float = 1.0, uniform_member: bool = False, seed: int = 0, model_batch_size: int | None = None,
            progress: Any = None) -> Extraction:
    """Extract a clone of the classifier ``model`` from at most ``budget`` victim rows, knowing only
    its inputs' shape and ranges (``input_spec``: an :class:`InputSpec`, a dict or a JSON path).

    test_data / test_labels : rows (and their true labels) the clone is evaluated on at each
        checkpoint: agreement with the victim (and accuracy); the victim's answers on them are
        counted apart (``evaluation_queries``).
    checkpoints : query counts at which to evaluate (default: 5 evenly spaced, and the end).
    batch_size : victim rows per round. n_generators, oversample, balance: CaBaGe's ensemble size,
        candidate factor and class-balance weight. clone_steps : clone updates per round.
    zo_directions : DFME's random directions per input for the forward-difference gradient.
    lr, gen_lr : Adam learning rates of the clones and of the generators.
    uniform_member : CaBaGe only: add uniform random inputs to the candidates the selective filter
        chooses from (an addition of ours, not in the paper; off by default).
    """
    torch = _torch()
    t0 = time.perf_counter()
    method = check("method", method, decl=PARAMS["method"])
    response = check("response", response, decl=PARAMS["response"])
    for name, v in (("budget", budget), ("batch_size", batch_size), ("n_generators", n_generators),
                    ("oversample", oversample), ("clone_steps", clone_steps), ("zo_directions", zo_directions),
                    ("n_classes", n_classes), ("lr", lr), ("gen_lr", gen_lr), ("balance", balance)):
        check(name, v, decl=PARAMS[name])
    check("seed", seed)
    if not isinstance(uniform_member, bool):
        raise InputError(f"uniform_member must be True or False, got {uniform_member!r}")
    if isinstance(input_spec, InputSpec):
        spec = input_spec
    elif isinstance(input_spec, dict):
        spec = InputSpec.from_dict(input_spec)
    elif isinstance(input_spec, (str, Path)):
        spec = InputSpec.load(input_spec)
    else:
        raise InputError("input_spec must be an InputSpec, a dict {shape, low, high} or the path of a JSON file")
    hidden = tuple(int(h) for h in hidden)
    if not hidden or any(h < 1 for h in hidden):
        raise InputError(f"hidden must be a non-empty list of positive layer widths, got {hidden!r}")
    gen_batch = max(8, batch_size // 4)
    one_round = batch_size if method != "dfme" else gen_batch * (1 + zo_directions) + batch_size
    if budget < one_round:
        raise InputError(f"budget={budget:,} is too small for one {method} round: it needs {one_round:,} victim rows "
                         f"(batch_size={batch_size}" + (f", zo_directions={zo_directions})" if method == "dfme" else ")"))
    victim = _Victim(model, spec, budget, response, n_classes, model_batch_size)

    Xtest = None if test_data is None else _matrix(test_data, spec)
    ytest = None if test_labels is None else np.asarray(test_labels)
    if ytest is not None and (Xtest is None or len(ytest) != len(Xtest)):
        raise InputError("test_labels needs test_data with the same number of rows")
    eval_model = victim.base.child()
    vtest = None
    if Xtest is not None:
        vtest = victim.labels_of(eval_model(Xtest))
    points = sorted({int(c) for c in (checkpoints or np.linspace(budget / 5, budget, 5))} | {int(budget)})
    if any(c < 1 for c in points):
        raise InputError("checkpoints must be positive query counts")

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        runner = _Runner(method, victim, spec, batch_size=batch_size, gen_batch=gen_batch, n_generators=n_generators,
                         oversample=oversample, clone_steps=clone_steps, zo_directions=zo_directions, hidden=hidden,
                         lr=lr, balance=balance, n_classes=n_classes, seed=seed, gen_lr=gen_lr,
                         uniform_member=uniform_member)
        curve = []
        for cp in points:
            runner.run_until(cp)
            row = {"queries": int(victim.m.n_rows), "n_classes": runner.k_found(), "seconds": time.perf_counter() - t0}
            if Xtest is not None:
                pred = runner.predict_labels(Xtest)
                row["agreement"] = float(np.mean(_same(pred, vtest)))
                row["accuracy"] = float(np.mean(_same(pred, ytest))) if ytest is not None else np.nan
            else:
                row["agreement"] = np.nan
                row["accuracy"] = np.nan
            curve.append(row)
            if progress:
                progress(row)
            if runner.exhausted:
                break
        _, _, Deployed = _nets()
        deployed = Deployed(runner.clones[0], spec.low, spec.high).eval()
    return Extraction(method=method, clone=deployed, classes=list(victim.classes), curve=pd.DataFrame(curve),
                      n_queries=int(victim.m.n_rows), evaluation_queries=int(eval_model.n_rows),
                      response=victim.mode or response, gradient=runner.gradient, spec=spec,
                      seconds=time.perf_counter() - t0,
                      params={"budget": budget, "batch_size": batch_size, "n_generators": n_generators,
                              "oversample": oversample, "clone_steps": clone_steps, "zo_directions": zo_directions,
                              "hidden": list(hidden), "lr": lr, "gen_lr": gen_lr, "balance": balance, "seed": seed,
                              "n_classes": n_classes})


def _same(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.array([str(x) == str(y) for x, y in zip(a, b)])


class _Runner:
    """The training loop of one method, resumable up to a query count."""

    def __init__(self, method, victim: _Victim, spec: InputSpec, *, batch_size, gen_batch, n_generators, oversample,
                 clone_steps, zo_directions, hidden, lr, balance, n_classes, seed, gen_lr, uniform_member=False):
        self.uniform_member = bool(uniform_member)
        torch = _torch()
        Clone, Generator, _ = _nets()
        self.torch = torch
        self.method, self.victim, self.spec = method, victim, spec
        self.B, self.Bg = batch_size, gen_batch
        self.oversample, self.clone_steps, self.m_dirs = oversample, clone_steps, zo_directions
        self.lr, self.balance = lr, balance
        self.rng = np.random.default_rng(seed)
        self.gen = torch.Generator().manual_seed(int(seed))
        self.nz = 64
        self.d = spec.d
        k0 = n_classes or 2
        n_clones = 2 if method == "cabage" else 1
        self.clones = [Clone(self.d, k0, hidden) for _ in range(n_clones)]
        self.clone_opt = [torch.optim.Adam(c.parameters(), lr=lr) for c in self.clones]
        n_gen = n_generators if method == "cabage" else (1 if method == "dfme" else 0)
        self.gens = [Generator(self.nz, self.d) for _ in range(n_gen)]
        self.gen_opt = [torch.optim.Adam(g.parameters(), lr=gen_lr) for g in self.gens]
        self.k = k0
        # replay buffer
        self.U = np.empty((0, self.d), dtype=np.float32)
        self.loss = np.empty(0)
        self.exhausted = False
        if method == "cabage":
            self.gradient = "clone-ensemble disagreement (DisGUIDE's loss; no victim queries)"
        elif method == "dfme":
            self.gradient = (f"victim: forward differences along {zo_directions} random direction(s) per input "
                             "(queries counted)")
        else:
            self.gradient = "none (random queries)"

    # ------------------------------------------------------------------ bookkeeping
    def k_found(self) -> int:
        return len(self.victim.classes)

    def _grow(self, k: int) -> None:
        """Widen the clones' heads to ``k`` classes (new optimisers for the new parameters)."""
        if k > self.k:
            for i, c in enumerate(self.clones):
                c.grow(k)
                self.clone_opt[i] = self.torch.optim.Adam(c.parameters(), lr=self.lr)
            self.k = k

    def _targets(self, idx: np.ndarray):
        torch = self.torch
        if self.victim.mode == "probabilities":
            return torch.as_tensor(self.Tp[idx], dtype=torch.float32)
        return torch.as_tensor(self.Ti[idx], dtype=torch.long)

    def _per_sample_loss(self, logits, target):
        torch = self.torch
        logp = torch.log_softmax(logits[:, : self.k], dim=-1)
        if target.dtype == torch.long:
            return -logp.gather(1, target[:, None])[:, 0]
        k = target.shape[1]
        return -(target * logp[:, :k]).sum(dim=1)

    def _add(self, U: np.ndarray, out: np.ndarray) -> None:
        t = self.victim.read(out)
        if self.victim.mode == "probabilities":
            self.Tp = t if not len(self.U) else np.vstack([self.Tp, t])
            self._grow(t.shape[1])
        else:
            self.Ti = t if not len(self.U) else np.concatenate([self.Ti, t])
            self._grow(max(2, self.k_found()))
        self.U = np.vstack([self.U, U.astype(np.float32)])
        hi = self.loss.max() if len(self.loss) else 1.0
        self.loss = np.concatenate([self.loss, np.full(len(U), max(hi, 1.0))])

    def _query(self, U: np.ndarray) -> np.ndarray:
        return self.victim.raw(U)

    def _teach(self, U: np.ndarray, *, replay: bool) -> None:
        """Ask the victim about ``U``, keep the answers, and train the clones on them."""
        out = self._query(U)
        start = len(self.U)
        self._add(U, out)
        self._train_clones(np.arange(start, len(self.U)), replay=replay)

    # ------------------------------------------------------------------ clone training
    def _train_clones(self, new: np.ndarray, replay: bool) -> None:
        torch = self.torch
        n = len(self.U)
        for _ in range(self.clone_steps):
            if replay and n > len(new):
                p = self.loss + 1e-3 + 0.1 * self.loss.mean()
                old = self.rng.choice(n, size=min(self.B, n), p=p / p.sum())
                idx = np.concatenate([new, old])
            else:
                idx = new
            u = torch.as_tensor(self.U[idx])
            tgt = self._targets(idx)
            losses = []
            for c, opt in zip(self.clones, self.clone_opt):
                per = self._per_sample_loss(c(u), tgt)
                opt.zero_grad()
                per.mean().backward()
                opt.step()
                losses.append(per.detach().numpy())
            self.loss[idx] = np.mean(losses, axis=0)

    # ------------------------------------------------------------------ one round per method
    def run_until(self, limit: int) -> None:
        m = self.victim.m
        while not self.exhausted:
            room = min(limit, m.budget) - m.n_rows
            zo = self.method == "dfme" and self.victim.mode == "probabilities"
            need = self.B + (self.Bg * (1 + self.m_dirs) if zo else 0)
            if room < need:
                if m.budget - m.n_rows < need:
                    self.exhausted = True
                return
            getattr(self, f"_round_{self.method}")()

    def _noise(self, n: int):
        return self.torch.randn(n, self.nz, generator=self.gen)

    def _round_random(self) -> None:
        U = self.rng.random((self.B, self.d)).astype(np.float32)
        self._teach(U, replay=True)

    def _disagreement(self, u):
        torch = self.torch
        p = [torch.softmax(c(u)[:, : self.k], dim=-1) for c in self.clones]
        dis = (p[0] - p[1]).abs().sum(dim=1)
        mean = (p[0] + p[1]) / 2
        return dis, mean

    def _round_cabage(self) -> None:
        torch = self.torch
        kf = max(2, self.k_found() if self.victim.mode == "labels" else self.k)
        for c in self.clones:
            c.eval()
        # 1. generators: clone disagreement + class balance (no victim queries)
        for g, opt in zip(self.gens, self.gen_opt):
            g.train()
            u = g(self._noise(self.Bg))
            dis, mean = self._disagreement(u)
            pbar = mean[:, :kf].mean(dim=0)
            pbar = pbar / pbar.sum()
            ent = -(pbar * torch.log(pbar + 1e-12)).sum()
            loss = -dis.mean() + self.balance * (np.log(kf) - ent)
            opt.zero_grad()
            loss.backward()
            opt.step()
        # 2. candidates and class-balanced selection of the hardest
        with torch.no_grad():
            per = int(np.ceil(self.oversample * self.B / len(self.gens)))
            cands = []
            for g in self.gens:
                g.eval()
                cands.append(g(self._noise(per)))
            if self.uniform_member:
                cands.append(torch.rand(per, self.d, generator=self.gen))
            u = torch.cat(cands)
            dis, mean = self._disagreement(u)
        hard = dis.numpy()
        cls = mean.numpy().argmax(axis=1)
        pick = _balanced_hardest(hard, cls, self.B, kf)
        U = u.numpy()[pick]
        for c in self.clones:
            c.train()
        self._teach(U, replay=True)

    def _round_dfme(self) -> None:
        torch = self.torch
        g, opt = self.gens[0], self.gen_opt[0]
        clone = self.clones[0]
        if self.victim.mode == "probabilities":
            # generator step: maximise the victim-clone L1 on centred log-probabilities, the victim's
            # gradient estimated by forward differences (every perturbed input is a counted query)
            g.train()
            u = g(self._noise(self.Bg))
            un = u.detach().numpy().astype(np.float64)
            eps = 1e-3
            dirs = self.rng.normal(size=(self.m_dirs, *un.shape))
            dirs /= np.linalg.norm(dirs, axis=2, keepdims=True)
            pts = np.clip(np.concatenate([un[None], un[None] + eps * dirs]), 0, 1)
            out = self._query(pts.reshape(-1, self.d))
            k = out.shape[1]
            logv = np.log(np.clip(_as_probabilities(out), 1e-8, None))
            logv = (logv - logv.mean(axis=1, keepdims=True)).reshape(1 + self.m_dirs, self.Bg, k)
            with torch.no_grad():
                def centred(a: np.ndarray) -> np.ndarray:
                    lg = torch.log_softmax(clone(torch.as_tensor(a, dtype=torch.float32))[:, :k], dim=-1)
                    return (lg - lg.mean(dim=1, keepdim=True)).numpy()
                f0 = np.abs(logv[0] - centred(pts[0])).sum(axis=1)
                grad = np.zeros_like(un)
                for i in range(self.m_dirs):
                    fi = np.abs(logv[1 + i] - centred(pts[1 + i])).sum(axis=1)
                    grad += ((fi - f0) / eps)[:, None] * dirs[i]
                grad *= self.d / self.m_dirs
            loss = -(u * torch.as_tensor(grad, dtype=torch.float32)).sum() / self.Bg
            self._add(un.astype(np.float32), out[: self.Bg])        # the unperturbed inputs teach the clone too
        elif self.victim.mode == "labels":
            # labels only: no victim gradient to estimate; the generator maximises the clone's entropy
            self.gradient = "clone predictive entropy (labels only: the victim's answers carry no gradient)"
            g.train()
            p = torch.softmax(clone(g(self._noise(self.Bg)))[:, : self.k], dim=-1)
            loss = (p * torch.log(p + 1e-12)).sum(dim=1).mean()
        else:
            loss = None                                              # first round: learn what the victim returns
        if loss is not None:
            opt.zero_grad()
            loss.backward()
            opt.step()
        # clone steps on fresh generator samples, queried (DFME: no replay)
        g.eval()
        with torch.no_grad():
            U = g(self._noise(self.B)).numpy()
        self._teach(U, replay=False)

    # ------------------------------------------------------------------ prediction
    def predict_labels(self, X: np.ndarray) -> np.ndarray:
        torch = self.torch
        u = (X - self.spec.low) / (self.spec.high - self.spec.low)
        c = self.clones[0]
        c.eval()
        with torch.no_grad():
            logits = c(torch.as_tensor(u, dtype=torch.float32))[:, : max(1, self.k_found())]
        c.train()
        idx = logits.numpy().argmax(axis=1)
        classes = self.victim.classes
        if not classes:
            return np.full(len(X), None, dtype=object)
        return np.asarray(classes, dtype=object)[idx]


def _balanced_hardest(hard: np.ndarray, cls: np.ndarray, n: int, k: int) -> np.ndarray:
    """``n`` indices: an equal quota per predicted class (the hardest first), the rest by hardness."""
    quota = int(np.ceil(n / max(1, k)))
    chosen: list[int] = []
    for c in range(k):
        idx = np.flatnonzero(cls == c)
        chosen += list(idx[np.argsort(-hard[idx], kind="stable")][:quota])
    chosen = chosen[:n] if len(chosen) > n else chosen
    if len(chosen) < n:
        rest = np.setdiff1d(np.arange(len(hard)), chosen)
        chosen += list(rest[np.argsort(-hard[rest], kind="stable")][: n - len(chosen)])
    return np.asarray(chosen[:n], dtype=np.int64)


__all__ = ["extract", "Extraction", "InputSpec", "METHODS"]
