"""The simulatability harness on a tabular binary classifier (see :mod:`whybox.simulate.harness`)."""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from whybox.errors import InputError
from whybox.problem import Problem
from whybox.simulate.harness import KINDS, TESTS, Baseline, Simulatability, run


class TabularTask:
    """Inputs are rows of a numeric matrix; the model's answer is its arg-max class (binary)."""

    def __init__(self, model: Any, data: Any, *, seed: int = 0, lime_samples: int = 500, anchor_budget: int = 3000,
                 n_prototypes: int = 3):
        self.problem = Problem.build(model, data)
        X = self.problem.reference
        if X.dtype == object:
            raise InputError("the tabular simulatability harness needs numeric features (encode categories first)")
        self.X = X.astype(float)
        self.data = data
        out = self.problem.model(self.X)
        if out.shape[1] != 2:
            raise InputError(f"the simulatability harness is for binary classifiers; this model has {out.shape[1]} outputs")
        self.mu, self.sd = self.X.mean(axis=0), self.X.std(axis=0) + 1e-12
        self.seed, self.lime_samples, self.anchor_budget, self.n_prototypes = seed, lime_samples, anchor_budget, n_prototypes
        bg = self.problem.background                   # what LIME's masking replaces features with
        self.bmean = np.average(np.asarray(bg.data, float), axis=0, weights=bg.weights)
        self.explained: list[bytes] = []
        self._cache: dict[tuple, Any] = {}
        self.rng = np.random.default_rng([seed, 7])

    # ------------------------------------------------------------------ data
    @property
    def n_pool(self) -> int:
        return len(self.X)

    @property
    def n_explained(self) -> int:
        return len(set(self.explained))

    def inputs(self, idx: Sequence[int]) -> np.ndarray:
        return self.X[list(idx)]

    def labels(self, Z: np.ndarray) -> np.ndarray:
        return self.problem.model(np.asarray(Z, float)).argmax(axis=1)

    def p1(self, Z: np.ndarray) -> np.ndarray:
        return self.problem.model(np.asarray(Z, float))[:, 1]

    def baseline(self, X: np.ndarray, y: np.ndarray) -> Baseline:
        return Baseline(lambda Z: (np.asarray(Z, float) - self.mu) / self.sd, X, y, C=1.0)

    def edits(self, X: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Each row with 1-3 features set to those of a random data row (a counterfactual edit)."""
        out = np.array(X, float, copy=True)
        for r in out:
            cols = rng.choice(len(r), size=int(rng.integers(1, 4)), replace=False)
            r[cols] = self.X[rng.integers(0, len(self.X)), cols]
        return out

    def generality(self, E: np.ndarray) -> float:
        Z = (np.asarray(E, float) - self.mu) / self.sd
        d = ((Z[:, None] - Z[None]) ** 2).sum(-1)
        iu = np.triu_indices(len(Z), 1)
        med = np.median(d[iu]) if len(iu[0]) else 1.0
        sim = np.exp(-d[iu] / (med if med > 0 else 1.0))
        return float(1.0 - sim.mean())

    # ------------------------------------------------------------------ explanations
    def explain(self, kind: str, z: np.ndarray) -> dict:
        z = np.asarray(z, float)
        key = (kind, z.tobytes())
        if key in self._cache:
            return self._cache[key]
        self.explained.append(z.tobytes())
        if kind == "composite":
            e = {"lime": self.explain("lime", z), "anchor": self.explain("anchor", z)}
        elif kind == "lime":
            import whybox
            ex = whybox.explain(self.problem, z, method="lime", target_index=1, seed=self.seed,
                                n_samples=self.lime_samples)
            w = ex.values[0]
            gap = z[0] - self.bmean
            slope = np.where(np.abs(gap) > 1e-9 * self.sd, w / np.where(gap == 0, 1, gap), 0.0)
            e = {"slope": slope, "p": float(self.p1(z)[0]), "z": z[0], "weights": w}
        elif kind == "random":
            lime = self.explain("lime", z)
            scale = np.abs(lime["slope"] * self.sd).sum() / len(self.sd)
            slope = self.rng.normal(size=len(self.sd)) * scale / self.sd
            e = {"slope": slope, "p": float(self.p1(z)[0]), "z": z[0], "weights": slope * (z[0] - self.bmean)}
        elif kind == "anchor":
            from whybox.anchors.tabular import TabularAnchors, anchor
            a = anchor(self.problem, z, self.data, budget=self.anchor_budget, seed=self.seed, delta=0.1, epsilon=0.15,
                       beam_size=1, batch_size=50)
            rep = TabularAnchors(self.problem, z[0], self.X)
            e = {"anchor": a, "rep": rep, "label": int(self.labels(z)[0])}
        elif kind == "prototype":
            from whybox.anchors.prototypes import prototypes
            p = prototypes(self.problem, self.X, x=z, n_prototypes=self.n_prototypes, n_criticisms=0, seed=self.seed)
            idx = [i for v in p.prototypes.values() for i in v]
            e = {"rows": self.X[idx], "labels": self.labels(self.X[idx])}
        elif kind == "boundary":
            from whybox.anchors.boundary import boundary
            b = boundary(self.problem.estimator, z, self.X, seed=self.seed)
            crossed = None if not b.found else np.asarray(b.crossed, float).reshape(1, -1)
            e = {"crossed": crossed, "after": None if crossed is None else int(self.labels(crossed)[0])}
        else:
            raise InputError(f"unknown explanation type {kind!r}; choose from {list(KINDS)}")
        self._cache[key] = e
        return e

    def explanation_text(self, kind: str, e: dict) -> str:
        if kind in ("lime", "random"):
            top = np.argsort(-np.abs(e["weights"]))[:5]
            return "; ".join(f"{self.problem.spec.columns[j]} {e['weights'][j]:+.3f}" for j in top)
        if kind == "anchor":
            return e["anchor"].text()
        if kind == "composite":
            return self.explanation_text("anchor", e["anchor"]) + " | " + self.explanation_text("lime", e["lime"])
        if kind == "prototype":
            return f"{len(e['rows'])} similar rows the model treats the same way: labels {list(map(int, e['labels']))}"
        return "no crossing found" if e["crossed"] is None else f"crossing to class {e['after']} at {np.round(e['crossed'][0], 3).tolist()}"

    # ------------------------------------------------------------------ cues
    def _dist(self, A: np.ndarray, B: np.ndarray) -> np.ndarray:
        a, b = (A - self.mu) / self.sd, (B - self.mu) / self.sd
        return ((a[:, None] - b[None]) ** 2).sum(-1)

    def _vote(self, pool: np.ndarray, labels: np.ndarray, Z: np.ndarray, k: int = 3) -> np.ndarray:
        d = self._dist(Z, pool)
        nn = np.argsort(d, axis=1, kind="stable")[:, :min(k, len(pool))]
        return labels[nn].mean(axis=1) * 0.9 + 0.05

    def _anchor_cue(self, e: dict, Z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        a = e["anchor"]
        holds = e["rep"].satisfied(Z)[:, list(a.indices)].all(axis=1) if a.indices else np.ones(len(Z), bool)
        p = a.precision if e["label"] == 1 else 1 - a.precision
        return np.where(holds, p, 0.5), holds

    def forward_cue(self, kind: str, Xtr: np.ndarray, ytr: np.ndarray, E: list, Z: np.ndarray) -> np.ndarray:
        Z = np.asarray(Z, float)
        if kind in ("lime", "random"):
            # every explained input's local linear extrapolation, weighted by a Gaussian kernel of the
            # distance (width: the median distance)
            d = self._dist(Z, Xtr)
            w = np.exp(-d / (np.median(d) + 1e-12))
            w /= w.sum(axis=1, keepdims=True)
            ext = np.array([[e["p"] + e["slope"] @ (z - e["z"]) for e in E] for z in Z])
            return np.clip((w * ext).sum(axis=1), 0, 1)
        if kind == "anchor" or kind == "composite":
            best = np.full(len(Z), 0.5)
            conf = np.zeros(len(Z))
            held = np.zeros(len(Z), bool)
            for e in E:
                ea = e["anchor"] if kind == "composite" else e
                c, h = self._anchor_cue(ea, Z)
                better = h & (np.abs(c - 0.5) > conf)
                best[better], conf[better] = c[better], np.abs(c - 0.5)[better]
                held |= h
            if kind == "composite":
                lime = self.forward_cue("lime", Xtr, ytr, [e["lime"] for e in E], Z)
                best = np.where(held, best, lime)
            return best
        if kind == "prototype":
            pool = np.vstack([Xtr] + [e["rows"] for e in E])
            lab = np.concatenate([ytr] + [e["labels"] for e in E])
            return self._vote(pool, lab, Z)
        if kind == "boundary":
            cross = [e["crossed"] for e in E if e["crossed"] is not None]
            pool = np.vstack([Xtr] + cross)
            lab = np.concatenate([ytr, [e["after"] for e in E if e["crossed"] is not None]]).astype(float)
            return self._vote(pool, lab, Z)
        raise InputError(f"unknown explanation type {kind!r}")

    def cf_cue(self, kind: str, e: dict, x: np.ndarray, y_x: int, x_edit: np.ndarray) -> tuple[float, bool]:
        x, z = np.asarray(x, float)[0], np.asarray(x_edit, float)
        if kind in ("lime", "random"):
            return float(np.clip(e["p"] + e["slope"] @ (z[0] - x), 0, 1)), True
        if kind == "anchor":
            c, h = self._anchor_cue(e, z)
            return float(c[0]), bool(h[0])
        if kind == "composite":
            c, h = self._anchor_cue(e["anchor"], z)
            if h[0]:
                return float(c[0]), True
            return self.cf_cue("lime", e["lime"], x[None], y_x, z)
        if kind == "prototype":
            pool = np.vstack([x[None], e["rows"]])
            lab = np.concatenate([[y_x], e["labels"]]).astype(float)
            return float(self._vote(pool, lab, z)[0]), True
        if kind == "boundary":
            if e["crossed"] is None:
                return 0.9 * y_x + 0.05, True
            pool = np.vstack([x[None], e["crossed"]])
            lab = np.array([y_x, e["after"]], float)
            return float(self._vote(pool, lab, z, k=1)[0]), True
        raise InputError(f"unknown explanation type {kind!r}")

    def describe(self, X: np.ndarray) -> list[str]:
        cols = self.problem.spec.columns
        return [", ".join(f"{c}={v:.3g}" for c, v in zip(cols, row)) for row in np.asarray(X, float)]


def simulatability(model: Any, data: Any, *, kinds: Sequence[str] = KINDS, tests: Sequence[str] = TESTS, k: int = 32,
                   n_test: int = 100, seed: int = 0, simulator: Any = "learned", lime_samples: int = 500,
                   anchor_budget: int = 3000, n_boot: int = 2000) -> Simulatability:
    """Forward and counterfactual simulatability of each explanation type on a binary tabular
    classifier (see :mod:`whybox.simulate.harness`). ``data``: the inputs the training and test
    inputs are drawn from (disjoint). ``simulator``: "learned", or a :class:`LLMSimulator`."""
    task = TabularTask(model, data, seed=seed, lime_samples=lime_samples, anchor_budget=anchor_budget)
    return run(task, kinds=kinds, tests=tests, k=k, n_test=n_test, seed=seed, n_boot=n_boot, simulator=simulator)
