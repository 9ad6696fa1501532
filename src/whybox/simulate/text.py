"""The simulatability harness on a binary text classifier (see :mod:`whybox.simulate.harness`).

Inputs are texts; words are whybox's word units. Cues: LIME's word weights, pooled over the
explained texts (mean weight per word) and added up over a new text's words (forward test), or
taken away for the words an edit removes (counterfactual test); an anchor's
cue applies when all its words are present; prototypes (MMD-critic in an embedding space: ``embed``,
e.g. MiniLM's sentence embeddings, else TF-IDF) and boundary crossings vote by TF-IDF cosine
similarity; edits delete one or two words or swap one for a word of another text.
"""
from __future__ import annotations

from typing import Any, Callable, Sequence

import numpy as np

from whybox.errors import InputError
from whybox.simulate.harness import KINDS, TESTS, Baseline, Simulatability, run


def _words(text: str) -> list[str]:
    from whybox.representations.text import TextUnits
    return [w.lower() for w in TextUnits.build(text).units]


class TextTask:
    def __init__(self, model: Any, texts: Sequence[str], *, embed: Callable[[list[str]], np.ndarray] | None = None,
                 seed: int = 0, lime_samples: int = 300, anchor_budget: int = 1500, n_prototypes: int = 3,
                 neighbours: int = 50):
        from sklearn.feature_extraction.text import TfidfVectorizer

        from whybox.models.text import as_text_model
        self.texts = [str(t) for t in texts]
        if len(self.texts) < 8:
            raise InputError(f"texts needs at least 8 texts, got {len(self.texts)}")
        self.model = model
        self.m = as_text_model(model)
        out = self.m(self.texts)
        if out.shape[1] != 2:
            raise InputError(f"the simulatability harness is for binary classifiers; this model has {out.shape[1]} outputs")
        self.pool_p1 = out[:, 1]
        self.pool_y = out.argmax(axis=1)
        self.vec = TfidfVectorizer(token_pattern=r"(?u)\b\w+\b").fit(self.texts)
        self.embed = embed
        self.Z = embed(self.texts) if embed is not None else None
        self.seed, self.lime_samples, self.anchor_budget = seed, lime_samples, anchor_budget
        self.n_prototypes, self.neighbours = n_prototypes, neighbours
        self.explained: list[str] = []
        self._cache: dict[tuple, Any] = {}
        self.rng = np.random.default_rng([seed, 11])
        self.vocab = sorted({w for t in self.texts[:2000] for w in _words(t)})

    @property
    def n_pool(self) -> int:
        return len(self.texts)

    @property
    def n_explained(self) -> int:
        return len(set(self.explained))

    def inputs(self, idx: Sequence[int]) -> list[str]:
        return [self.texts[i] for i in idx]

    def labels(self, X: list[str]) -> np.ndarray:
        return self.m([t if t.strip() else "." for t in X]).argmax(axis=1)

    def baseline(self, X: list[str], y: np.ndarray) -> Baseline:
        return Baseline(self.vec.transform, X, y, C=10.0)

    def edits(self, X: list[str], rng: np.random.Generator) -> list[str]:
        out = []
        for t in X:
            w = t.split()
            if len(w) > 2 and rng.random() < 0.5:
                for _ in range(int(rng.integers(1, 3))):
                    if len(w) > 1:
                        w.pop(int(rng.integers(0, len(w))))
            elif w:
                w[int(rng.integers(0, len(w)))] = self.vocab[int(rng.integers(0, len(self.vocab)))]
            out.append(" ".join(w) or t)
        return out

    def _sim(self, A: list[str], B: list[str]) -> np.ndarray:
        return (self.vec.transform(A) @ self.vec.transform(B).T).toarray()

    def generality(self, E: list[str]) -> float:
        S = self._sim(E, E)
        iu = np.triu_indices(len(E), 1)
        return float(1.0 - S[iu].mean()) if len(iu[0]) else np.nan

    # ------------------------------------------------------------------ explanations
    def explain(self, kind: str, x: list[str]) -> dict:
        text = x[0]
        key = (kind, text)
        if key in self._cache:
            return self._cache[key]
        self.explained.append(text)
        if kind == "composite":
            e = {"lime": self.explain("lime", x), "anchor": self.explain("anchor", x)}
        elif kind == "lime":
            import whybox
            ex = whybox.explain_text(self.model, text, method="lime", n_samples=self.lime_samples, seed=self.seed,
                                     target_index=1)
            ex = ex[0] if isinstance(ex, list) else ex
            weights: dict[str, float] = {}
            for w, v in zip(_words(text), ex.values[0]):
                weights[w] = weights.get(w, 0.0) + float(v)
            e = {"weights": weights, "p": float(self.m([text])[0, 1])}
        elif kind == "random":
            lime = self.explain("lime", x)
            scale = np.mean(np.abs(list(lime["weights"].values()))) if lime["weights"] else 0.1
            e = {"weights": {w: float(self.rng.normal() * scale) for w in lime["weights"]}, "p": lime["p"]}
        elif kind == "anchor":
            from whybox.anchors.text import anchor_text
            n_words = len(_words(text))
            a = anchor_text(self.model, text, budget=max(self.anchor_budget, 40 * n_words + 400), seed=self.seed,
                            delta=0.1, epsilon=0.15, beam_size=1, batch_size=20)
            e = {"words": {str(f).lower() for f in a.features}, "precision": a.precision,
                 "label": int(self.labels([text])[0]), "anchor": a}
        elif kind == "prototype":
            e = self._prototypes(text)
        elif kind == "boundary":
            from whybox.anchors.boundary import boundary_text
            b = boundary_text(self.model, text, budget=self.anchor_budget)
            e = {"crossed": b.crossed if b.found else None, "after": None if not b.found else int(self.labels([b.crossed])[0])}
        else:
            raise InputError(f"unknown explanation type {kind!r}; choose from {list(KINDS)}")
        self._cache[key] = e
        return e

    def _prototypes(self, text: str) -> dict:
        from whybox.anchors.prototypes import median_gamma, mmd_prototypes, rbf
        y = int(self.labels([text])[0])
        same = np.flatnonzero(self.pool_y == y)
        if self.Z is not None:
            zx = self.embed([text])
            Zs = self.Z[same]
        else:
            zx = self.vec.transform([text]).toarray()
            Zs = self.vec.transform([self.texts[i] for i in same]).toarray()
        F = np.hstack([Zs, self.pool_p1[same][:, None]])
        fx = np.hstack([zx, [[float(self.m([text])[0, 1])]]])
        near = np.argsort(((F - fx) ** 2).sum(1), kind="stable")[: self.neighbours]
        K = rbf(F[near], F[near], median_gamma(F[near], np.random.default_rng(self.seed), k=max(5, len(near) // 6)))
        chosen = [int(same[near[i]]) for i in mmd_prototypes(K, self.n_prototypes)]
        return {"texts": [self.texts[i] for i in chosen], "labels": self.pool_y[chosen]}

    def explanation_text(self, kind: str, e: dict) -> str:
        if kind in ("lime", "random"):
            top = sorted(e["weights"].items(), key=lambda kv: -abs(kv[1]))[:5]
            return "; ".join(f"'{w}' {v:+.3f}" for w, v in top)
        if kind == "anchor":
            return e["anchor"].text()
        if kind == "composite":
            return self.explanation_text("anchor", e["anchor"]) + " | " + self.explanation_text("lime", e["lime"])
        if kind == "prototype":
            return "similar texts the model treats the same way: " + " | ".join(e["texts"])
        return "no crossing found" if e["crossed"] is None else f"it would say {e['after']} for: {e['crossed']}"

    # ------------------------------------------------------------------ cues
    def _extrapolate(self, e: dict, source_words: set, target: str) -> float:
        tw = set(_words(target))
        return float(np.clip(e["p"] - sum(v for w, v in e["weights"].items() if w in source_words and w not in tw), 0, 1))

    def _vote(self, pool: list[str], labels: np.ndarray, Z: list[str], k: int = 3) -> np.ndarray:
        S = self._sim(Z, pool)
        nn = np.argsort(-S, axis=1, kind="stable")[:, :min(k, len(pool))]
        return labels[nn].mean(axis=1) * 0.9 + 0.05

    def _anchor_cue(self, e: dict, z: str) -> tuple[float, bool]:
        holds = e["words"] <= set(_words(z))
        p = e["precision"] if e["label"] == 1 else 1 - e["precision"]
        return (p if holds else 0.5), holds

    def forward_cue(self, kind: str, Xtr: list[str], ytr: np.ndarray, E: list, Z: list[str]) -> np.ndarray:
        if kind in ("lime", "random"):
            # a new text shares few words with any one explained text: the simulator pools the word
            # weights of all explanations (mean per word) and adds up those of the new text's words
            pooled: dict[str, list[float]] = {}
            for e in E:
                for w, v in e["weights"].items():
                    pooled.setdefault(w, []).append(v)
            W = {w: float(np.mean(v)) for w, v in pooled.items()}
            base = float(np.mean([e["p"] - sum(e["weights"].values()) for e in E]))
            return np.array([np.clip(base + sum(W.get(w, 0.0) for w in set(_words(z))), 0, 1) for z in Z])
        if kind in ("anchor", "composite"):
            out = []
            for z in Z:
                best, conf = 0.5, 0.0
                for e in E:
                    c, h = self._anchor_cue(e["anchor"] if kind == "composite" else e, z)
                    if h and abs(c - 0.5) > conf:
                        best, conf = c, abs(c - 0.5)
                out.append(best)
            out = np.array(out)
            if kind == "composite":
                lime = self.forward_cue("lime", Xtr, ytr, [e["lime"] for e in E], Z)
                out = np.where(out == 0.5, lime, out)
            return out
        if kind == "prototype":
            pool = list(Xtr) + [t for e in E for t in e["texts"]]
            lab = np.concatenate([ytr] + [e["labels"] for e in E]).astype(float)
            return self._vote(pool, lab, Z)
        if kind == "boundary":
            pool = list(Xtr) + [e["crossed"] for e in E if e["crossed"] is not None]
            lab = np.concatenate([ytr, [e["after"] for e in E if e["crossed"] is not None]]).astype(float)
            return self._vote(pool, lab, Z)
        raise InputError(f"unknown explanation type {kind!r}")

    def cf_cue(self, kind: str, e: dict, x: list[str], y_x: int, x_edit: list[str]) -> tuple[float, bool]:
        z = x_edit[0]
        if kind in ("lime", "random"):
            return self._extrapolate(e, set(_words(x[0])), z), True
        if kind == "anchor":
            return self._anchor_cue(e, z)
        if kind == "composite":
            c, h = self._anchor_cue(e["anchor"], z)
            return (c, True) if h else (self._extrapolate(e["lime"], set(_words(x[0])), z), True)
        if kind == "prototype":
            return float(self._vote([x[0]] + e["texts"], np.concatenate([[y_x], e["labels"]]).astype(float), [z])[0]), True
        if kind == "boundary":
            if e["crossed"] is None:
                return 0.9 * y_x + 0.05, True
            return float(self._vote([x[0], e["crossed"]], np.array([y_x, e["after"]], float), [z], k=1)[0]), True
        raise InputError(f"unknown explanation type {kind!r}")

    def describe(self, X: list[str]) -> list[str]:
        return list(X)


def simulatability_text(model: Any, texts: Sequence[str], *, embed: Any = None, kinds: Sequence[str] = KINDS,
                        tests: Sequence[str] = TESTS, k: int = 24, n_test: int = 60, seed: int = 0,
                        simulator: Any = "learned", lime_samples: int = 300, anchor_budget: int = 1500,
                        n_boot: int = 2000) -> Simulatability:
    """Forward and counterfactual simulatability on a binary text classifier."""
    task = TextTask(model, texts, embed=embed, seed=seed, lime_samples=lime_samples, anchor_budget=anchor_budget)
    return run(task, kinds=kinds, tests=tests, k=k, n_test=n_test, seed=seed, n_boot=n_boot, simulator=simulator)
