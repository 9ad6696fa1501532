"""CEBaB's baseline estimators of a concept's causal effect on a model (Abraham et al., NeurIPS 2022),
named as CEBaB names them. Each estimates EICaCE = f(x with C = v') - f(x) for an explained text x.

* :func:`zero_effect` — the "no effect" reference: the zero vector. Any estimator worth using must
  beat it; on models that barely react to concepts it is hard to beat.
* :func:`conexp_effect` — CONEXP: mean f over training texts with C = v' minus mean f over those
  with C = v (a difference of conditional means; the same vector for every x).
* :class:`Approx` — Approx: for x, a training text with C = v' and the *same other aspect labels*
  as x is picked (at random, seeded) and f(picked) - f(x) is the estimate. When no training text
  matches all the other labels, CONEXP's vector is used for that x and counted (``n_fallback``).
* :class:`SLearner` — S-Learner: aspect classifiers (TF-IDF + logistic regression, one per concept,
  trained on the training texts' validated labels) predict x's concept labels; a multinomial logistic
  model g maps the one-hot predicted labels to f's output distribution (fitted to f's probabilities
  as soft labels); the estimate is g(predicted labels with C = v') - g(predicted labels).
"""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import pandas as pd

from whybox.errors import InputError


def _concepts():
    from whybox.counterfactuals.cebab import CONCEPTS, VALUES

    return CONCEPTS, VALUES


def _check_concept(concept: str) -> None:
    concepts, _ = _concepts()
    if concept not in concepts:
        raise InputError(f"unknown concept {concept!r}; CEBaB concepts are {list(concepts)}")


def zero_effect(n: int, k: int) -> np.ndarray:
    """The no-effect reference for n explained texts and k outputs."""
    return np.zeros((int(n), int(k)))


def conexp_effect(outputs: np.ndarray, labels: pd.Series, base_value: str, cf_value: str) -> np.ndarray:
    """CEBaB's CONEXP: mean f over training texts with C = v' minus mean f over those with C = v."""
    outputs = np.asarray(outputs, float)
    a, b = (labels == cf_value).to_numpy(), (labels == base_value).to_numpy()
    if not a.any() or not b.any():
        raise InputError(f"CONEXP needs training texts with both values ({base_value!r}: {int(b.sum())}, "
                         f"{cf_value!r}: {int(a.sum())})")
    return outputs[a].mean(axis=0) - outputs[b].mean(axis=0)


class Approx:
    """CEBaB's Approx: the prediction on a training text that shares x's other aspect labels and has
    C = v', minus f(x). ``train``: the training texts' concept labels (a DataFrame with one column
    per concept); ``train_out``: f on them."""

    def __init__(self, train: pd.DataFrame, train_out: np.ndarray, *, seed: int = 0) -> None:
        concepts, _ = _concepts()
        missing = [c for c in concepts if c not in train.columns]
        if missing:
            raise InputError(f"train lacks the concept column(s) {missing}")
        self.train = train[list(concepts)].reset_index(drop=True)
        self.out = np.asarray(train_out, float)
        if len(self.out) != len(self.train):
            raise InputError(f"train has {len(self.train)} rows but train_out {len(self.out)}")
        self.seed = seed
        self.n_fallback = 0
        keys: dict[tuple, list[int]] = {}
        for i, row in enumerate(self.train.itertuples(index=False)):
            keys.setdefault(tuple(_key(v) for v in row), []).append(i)
        self._index = keys

    def effects(self, base: pd.DataFrame, concept: str, cf_value: str, base_out: np.ndarray) -> np.ndarray:
        """EICaCE for each row of ``base`` (its gold concept labels) with C set to ``cf_value``."""
        _check_concept(concept)
        concepts, _ = _concepts()
        base_out = np.asarray(base_out, float)
        if len(base_out) != len(base):
            raise InputError(f"base has {len(base)} rows but base_out {len(base_out)}")
        j = concepts.index(concept)
        out = np.empty_like(base_out)
        ids = _row_keys(base)
        for r, (row, fx) in enumerate(zip(base[list(concepts)].itertuples(index=False), base_out)):
            key = [_key(v) for v in row]
            key[j] = _key(cf_value)
            cand = self._index.get(tuple(key))
            if cand:
                rng = np.random.default_rng([self.seed, ids[r], j])   # per text: rows independent of the call
                out[r] = self.out[cand[int(rng.integers(len(cand)))]] - fx
            else:
                out[r] = conexp_effect(self.out, self.train[concept], base[concept].iloc[r], cf_value)
                self.n_fallback += 1
        return out


def _row_keys(base: pd.DataFrame) -> list[int]:
    """A stable integer per explained row (its text's CRC32, else its position), so the row's random
    pick does not depend on which other rows are in the call."""
    import zlib

    if "text" in base.columns:
        return [zlib.crc32(str(t).encode("utf-8", "surrogatepass")) for t in base["text"]]
    return list(range(len(base)))


def _key(v: Any) -> Any:
    return None if v is None or (isinstance(v, float) and np.isnan(v)) else v


class SLearner:
    """CEBaB's S-Learner on predicted aspect labels (see the module docstring).

    C : inverse regularisation of the outcome model; the aspect classifiers use TF-IDF (words and
    bigrams) and logistic regression (C = 4)."""

    def __init__(self, C: float = 1.0, *, seed: int = 0) -> None:
        self.C = C
        self.seed = seed

    def _onehot(self, labels: dict[str, np.ndarray]) -> np.ndarray:
        concepts, values = _concepts()
        cols = []
        for c in concepts:
            for v in values + (None,):
                cols.append(np.array([_key(x) == v for x in labels[c]]))
        return np.column_stack(cols).astype(float)

    def fit(self, texts: Sequence[str], concept_labels: pd.DataFrame, outputs: np.ndarray) -> "SLearner":
        """texts and their validated concept labels (train_exclusive), and f on the texts."""
        from sklearn.feature_extraction.text import TfidfVectorizer
        from sklearn.linear_model import LogisticRegression
        from sklearn.pipeline import make_pipeline

        concepts, _ = _concepts()
        texts = list(texts)
        outputs = np.asarray(outputs, float)
        if len(texts) != len(concept_labels) or len(texts) != len(outputs):
            raise InputError("texts, concept_labels and outputs must have one row per text")
        self.aspect_models_ = {}
        for c in concepts:
            y = np.array(["<none>" if _key(v) is None else v for v in concept_labels[c]], dtype=object)
            clf = make_pipeline(TfidfVectorizer(ngram_range=(1, 2), min_df=2, sublinear_tf=True),
                                LogisticRegression(C=4.0, max_iter=2000))
            self.aspect_models_[c] = clf.fit(texts, y)
        X = self._onehot(self.predict_concepts(texts))
        n, k = outputs.shape
        self.k_ = k
        # f's probabilities as soft labels: each text once per class, weighted by its probability
        Xr = np.repeat(X, k, axis=0)
        yr = np.tile(np.arange(k), n)
        w = outputs.reshape(-1)
        keep = w > 0
        self.outcome_ = LogisticRegression(C=self.C, max_iter=5000).fit(Xr[keep], yr[keep], sample_weight=w[keep])
        return self

    def predict_concepts(self, texts: Sequence[str]) -> dict[str, np.ndarray]:
        """The aspect classifiers' labels (None where they predict no label)."""
        out = {}
        for c, m in self.aspect_models_.items():
            p = m.predict(list(texts))
            out[c] = np.array([None if v == "<none>" else v for v in p], dtype=object)
        return out

    def _g(self, labels: dict[str, np.ndarray]) -> np.ndarray:
        P = np.zeros((len(next(iter(labels.values()))), self.k_))
        P[:, self.outcome_.classes_] = self.outcome_.predict_proba(self._onehot(labels))
        return P

    def effects(self, texts: Sequence[str], concept: str, cf_value: str) -> np.ndarray:
        _check_concept(concept)
        lab = self.predict_concepts(texts)
        cf = dict(lab)
        cf[concept] = np.array([cf_value] * len(texts), dtype=object)
        return self._g(cf) - self._g(lab)
