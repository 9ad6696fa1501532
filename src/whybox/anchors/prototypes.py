"""Prototypes and criticisms by MMD-critic (Kim, Khanna & Koyejo, NeurIPS 2016), model-agnostic and
post hoc: the training examples that best represent how the model treats the data, and the ones it
represents worst.

Hase & Bansal (2020) showed users the prototypes of a prototype *model*; this is its post-hoc
counterpart for any black box: the examples come from the training data, chosen in a *model-aware*
space, the standardised features (one-hot for categorical columns) next to the model's outputs
(scaled by ``output_weight`` x the number of features, so the two halves weigh alike), or, for
text, an embedding next to the outputs.

* prototypes: greedy maximisation of MMD-critic's objective
  J(S) = 2/(n|S|) sum_{i in S, j} k(x_i, x_j) - 1/|S|^2 sum_{i, j in S} k(x_i, x_j)
  with an RBF kernel k (bandwidth: the median heuristic, 1 / median squared distance);
* criticisms: the points where the witness function w(x) = mean_j k(x, x_j) - mean_{s in S} k(x, s)
  is largest and positive (the data has mass there that the prototypes miss; Kim et al. use |w|,
  whose negative side marks where prototypes over-represent the data), chosen greedily with their
  log-determinant diversity term; the bandwidth is a local median heuristic (1 / the median squared
  distance to the 10th nearest neighbour), as the plain pairwise median blurs clusters together;
* per class (``global``): prototypes of the rows the model assigns to each class; local
  (``for_row``): prototypes among the ``neighbours`` rows nearest to the explained input that the
  model assigns to its class.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np

from whybox.core.validation import as_python
from whybox.errors import InputError
from whybox.params import Float, Int, check
from whybox.problem import Problem

PARAMS = {"n_prototypes": Int(1, 10_000), "n_criticisms": Int(0, 10_000), "output_weight": Float(0, 1e6),
          "neighbours": Int(2, 100_000), "max_rows": Int(10, 200_000)}


def rbf(A: np.ndarray, B: np.ndarray, gamma: float) -> np.ndarray:
    d = (A * A).sum(1)[:, None] + (B * B).sum(1)[None, :] - 2 * A @ B.T
    return np.exp(-gamma * np.maximum(d, 0))


def median_gamma(Z: np.ndarray, rng: np.random.Generator, n: int = 1000, k: int = 10) -> float:
    """1 / the median squared distance of a point to its ``k``-th nearest neighbour (a local median
    heuristic: the plain pairwise median is far too wide when the data has clusters). ``k`` is the
    number of rows each prototype should stand for, scaled to the subsample."""
    S = Z[rng.choice(len(Z), min(n, len(Z)), replace=False)]
    if len(S) < 2:
        return 1.0
    d = (S * S).sum(1)[:, None] + (S * S).sum(1)[None, :] - 2 * S @ S.T
    np.fill_diagonal(d, np.inf)
    kk = min(k, len(S) - 1)
    med = float(np.median(np.partition(d, kk - 1, axis=1)[:, kk - 1]))
    return 1.0 / med if med > 0 else 1.0


def mmd_prototypes(K: np.ndarray, m: int) -> list[int]:
    """Greedy MMD-critic prototypes from the kernel matrix ``K`` (n x n)."""
    n = len(K)
    m = min(m, n)
    colmean = K.mean(axis=0)                       # (1/n) sum_j k(i, j)
    chosen: list[int] = []
    in_sum = 0.0                                    # sum_{i, j in S} k
    cross = np.zeros(n)                             # sum_{s in S} k(i, s)
    for _ in range(m):
        s = len(chosen) + 1
        # J(S + i) for every i: 2/s * (sum_S colmean + colmean_i) - (in_sum + 2 cross_i + k_ii) / s^2
        base = sum(colmean[c] for c in chosen)
        J = 2.0 / s * (base + colmean) - (in_sum + 2 * cross + np.diag(K)) / s ** 2
        J[chosen] = -np.inf
        i = int(np.argmax(J))
        chosen.append(i)
        in_sum += 2 * cross[i] + K[i, i]
        cross += K[:, i]
    return chosen


def mmd_criticisms(K: np.ndarray, prototypes: Sequence[int], c: int, *, regularizer: str = "logdet") -> list[int]:
    """Greedy criticisms: the largest positive witness (data the prototypes under-represent; a
    negative witness marks where they over-represent it), with Kim et al.'s log-determinant
    diversity term."""
    n = len(K)
    if c <= 0 or not len(prototypes):
        return []
    witness = K.mean(axis=1) - K[:, list(prototypes)].mean(axis=1)     # > 0: mass the prototypes miss
    chosen: list[int] = []
    for _ in range(min(c, n - len(prototypes))):
        best, best_val = -1, -np.inf
        for i in np.argsort(-witness)[: max(50, 5 * c)]:
            if i in chosen or i in prototypes:
                continue
            val = witness[i]
            if regularizer == "logdet" and chosen:
                idx = chosen + [int(i)]
                sign, logdet = np.linalg.slogdet(K[np.ix_(idx, idx)] + 1e-9 * np.eye(len(idx)))
                val = val + (logdet if sign > 0 else -np.inf)
            if val > best_val:
                best, best_val = int(i), val
        if best < 0:
            break
        chosen.append(best)
    return chosen


@dataclass
class Prototypes:
    """Prototypes (and criticisms) as row positions in the data passed (even when only a sample of it
    was used), with that data."""

    prototypes: dict[Any, list[int]]            # class -> data row indices
    criticisms: dict[Any, list[int]]
    rows: Any                                    # the data (DataFrame or array) the indices refer to
    scope: str                                   # "global" or "local"
    witness: dict[Any, list[float]] = field(default_factory=dict)
    params: dict = field(default_factory=dict)

    def examples(self, cls: Any = None, what: str = "prototypes") -> Any:
        idx = (self.prototypes if what == "prototypes" else self.criticisms)
        keys = [cls] if cls is not None else list(idx)
        chosen = [i for k in keys for i in idx.get(k, [])]
        if isinstance(self.rows, list):
            return [self.rows[i] for i in chosen]
        return self.rows.iloc[chosen] if hasattr(self.rows, "iloc") else np.asarray(self.rows)[chosen]

    def text(self) -> str:
        lines = []
        for k, p in self.prototypes.items():
            lines.append(f"class '{k}': prototypes = rows {p}" + (f"; criticisms = rows {self.criticisms.get(k)}"
                                                                  if self.criticisms.get(k) else ""))
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        return {"scope": self.scope, "prototypes": {str(k): v for k, v in self.prototypes.items()},
                "criticisms": {str(k): v for k, v in self.criticisms.items()}, "params": self.params}


class _Space:
    """The model-aware space of a prepared problem's data."""

    def __init__(self, problem: Problem, data: np.ndarray, output_weight: float, outputs: np.ndarray):
        from sklearn.preprocessing import OneHotEncoder, StandardScaler

        spec = problem.spec
        num = [j for j in range(spec.n_columns) if spec.kinds[j] != "categorical"]
        cat = [j for j in range(spec.n_columns) if spec.kinds[j] == "categorical"]
        parts = []
        if num:
            self.scaler = StandardScaler().fit(data[:, num].astype(float))
            parts.append(self.scaler.transform(data[:, num].astype(float)))
        if cat:
            self.onehot = OneHotEncoder(handle_unknown="ignore", sparse_output=False).fit(data[:, cat].astype(str))
            parts.append(self.onehot.transform(data[:, cat].astype(str)))
        self.num, self.cat = num, cat
        self.w = float(output_weight) * np.sqrt(max(1, len(num) + len(cat)))
        F = np.hstack(parts) if parts else np.zeros((len(data), 0))
        self.Z = np.hstack([F, self.w * outputs])

    def embed(self, X: np.ndarray, outputs: np.ndarray) -> np.ndarray:
        parts = []
        if self.num:
            parts.append(self.scaler.transform(X[:, self.num].astype(float)))
        if self.cat:
            parts.append(self.onehot.transform(X[:, self.cat].astype(str)))
        F = np.hstack(parts) if parts else np.zeros((len(X), 0))
        return np.hstack([F, self.w * outputs])


def prototypes(model: Any, data: Any, *, n_prototypes: int = 3, n_criticisms: int = 2, x: Any = None,
               neighbours: int = 100, output_weight: float = 1.0, gamma: float | None = None, max_rows: int = 5000,
               seed: int = 0, kinds: Any = None, budget: int | None = None) -> Prototypes:
    """MMD-critic prototypes and criticisms of ``data`` per class of ``model`` (global), or, with ``x``,
    the prototypes among x's ``neighbours`` nearest rows of its class (local; see the module docstring).
    ``gamma``: the RBF kernel's inverse squared bandwidth in the model-aware space (None: a local median
    heuristic, 1 / the median squared distance to the k-th nearest neighbour with k about half the rows
    each prototype stands for). At most ``max_rows`` rows (a seeded sample) are used: the kernel matrix
    is dense."""
    for name, v in (("n_prototypes", n_prototypes), ("n_criticisms", n_criticisms), ("neighbours", neighbours),
                    ("output_weight", output_weight), ("max_rows", max_rows)):
        check(name, v, decl=PARAMS[name])
    check("seed", seed)
    check("budget", budget)
    check("gamma", gamma, decl=Float(0, 1e12, low_open=True, none=True))
    if data is None or len(data) == 0:
        raise InputError("prototypes need data: the training rows to choose examples from")
    problem = Problem.build(model, data, kinds=kinds, budget=budget)
    ref = problem.matrix(data, name="data")            # row i of ref is row i of data: indices refer to data
    rng = np.random.default_rng(seed)
    keep = np.sort(rng.choice(len(ref), max_rows, replace=False)) if len(ref) > max_rows else np.arange(len(ref))
    ref = ref[keep]
    out = problem.model(ref)
    names = problem.model.output_names
    cls = out.argmax(axis=1) if out.shape[1] > 1 else np.rint(out[:, 0]).astype(int)
    label = (lambda c: names[c] if names is not None and out.shape[1] > 1 else c)
    space = _Space(problem, ref, output_weight, out)
    # bandwidth: each of the n_prototypes of a class should stand for about half of its share of rows
    n_cls = max(1, len(np.unique(cls)))
    per = max(5, int(len(ref) / n_cls / (2 * n_prototypes) * min(1.0, 1000 / len(ref))))
    gamma = median_gamma(space.Z, rng, k=per) if gamma is None else float(gamma)
    protos: dict[Any, list[int]] = {}
    crits: dict[Any, list[int]] = {}
    wit: dict[Any, list[float]] = {}
    if x is None:
        for c in np.unique(cls):
            idx = np.flatnonzero(cls == c)
            K = rbf(space.Z[idx], space.Z[idx], gamma)
            p = mmd_prototypes(K, n_prototypes)
            q = mmd_criticisms(K, p, n_criticisms)
            k = as_python(label(int(c)))
            protos[k] = [int(keep[idx[i]]) for i in p]
            crits[k] = [int(keep[idx[i]]) for i in q]
            wk = K.mean(axis=1) - K[:, p].mean(axis=1)
            wit[k] = [float(wk[i]) for i in q]
        scope = "global"
    else:
        xm = problem.matrix(x, name="x")
        if xm.shape[0] != 1:
            raise InputError(f"x must be one row, got {xm.shape[0]}")
        ox = problem.model(xm)
        cx = int(ox.argmax(axis=1)[0]) if ox.shape[1] > 1 else int(np.rint(ox[0, 0]))
        same = np.flatnonzero(cls == cx)
        if len(same) == 0:
            raise InputError(f"no data row is assigned to the class the model gives x ({label(cx)!r})")
        zx = space.embed(xm, ox)
        dist = ((space.Z[same] - zx) ** 2).sum(axis=1)
        near = same[np.argsort(dist, kind="stable")[:neighbours]]
        K = rbf(space.Z[near], space.Z[near], gamma)
        p = mmd_prototypes(K, n_prototypes)
        k = as_python(label(cx))
        protos[k] = [int(keep[near[i]]) for i in p]
        crits[k] = [int(keep[near[i]]) for i in mmd_criticisms(K, p, n_criticisms)]
        scope = "local"
    return Prototypes(protos, crits, data, scope,
                      wit, {"n_prototypes": n_prototypes, "n_criticisms": n_criticisms, "gamma": gamma,
                            "output_weight": output_weight, "neighbours": neighbours, "rows_used": int(len(ref)),
                            "seed": seed})


def prototypes_text(model: Any, texts: Sequence[str], *, embed: Any = None, x: str | None = None,
                    n_prototypes: int = 3, n_criticisms: int = 2, neighbours: int = 100, output_weight: float = 1.0,
                    max_rows: int = 5000, seed: int = 0) -> Prototypes:
    """MMD-critic prototypes of a text classifier's ``texts``, per class (or, with ``x``, local), in a
    model-aware space: ``embed(texts) -> (n, d)`` vectors (e.g. MiniLM sentence embeddings; default
    TF-IDF) next to the model's outputs."""
    from whybox.models.text import as_text_model

    for name, v in (("n_prototypes", n_prototypes), ("n_criticisms", n_criticisms), ("neighbours", neighbours),
                    ("output_weight", output_weight), ("max_rows", max_rows)):
        check(name, v, decl=PARAMS[name])
    check("seed", seed)
    all_texts = [str(t) for t in texts]
    if not all_texts:
        raise InputError("prototypes need data: the training texts to choose examples from")
    rng = np.random.default_rng(seed)
    keep = np.sort(rng.choice(len(all_texts), max_rows, replace=False)) if len(all_texts) > max_rows \
        else np.arange(len(all_texts))
    texts = [all_texts[i] for i in keep]
    m = as_text_model(model)
    out = m(texts)
    if embed is None:
        from sklearn.feature_extraction.text import TfidfVectorizer
        vec = TfidfVectorizer().fit(texts)
        embed = lambda t: vec.transform(list(t)).toarray()          # noqa: E731
    E = np.asarray(embed(texts), float)
    w = float(output_weight) * np.sqrt(E.shape[1]) * float(np.mean(np.linalg.norm(E, axis=1)) / max(E.shape[1], 1) ** 0.5)
    Z = np.hstack([E, w * out])
    cls = out.argmax(axis=1)
    names = m.output_names
    label = (lambda c: as_python(names[c]) if names is not None else int(c))
    protos, crits = {}, {}
    if x is None:
        for c in np.unique(cls):
            idx = np.flatnonzero(cls == c)
            per = max(5, int(len(idx) / (2 * n_prototypes) * min(1.0, 1000 / len(idx))))
            K = rbf(Z[idx], Z[idx], median_gamma(Z[idx], rng, k=per))
            p = mmd_prototypes(K, n_prototypes)
            protos[label(c)] = [int(keep[idx[i]]) for i in p]
            crits[label(c)] = [int(keep[idx[i]]) for i in mmd_criticisms(K, p, n_criticisms)]
        scope = "global"
    else:
        ox = m([x])
        cx = int(ox.argmax(axis=1)[0])
        same = np.flatnonzero(cls == cx)
        if len(same) == 0:
            raise InputError(f"no text is assigned to the class the model gives x ({label(cx)!r})")
        zx = np.hstack([np.asarray(embed([x]), float), w * ox])
        near = same[np.argsort(((Z[same] - zx) ** 2).sum(axis=1), kind="stable")[:neighbours]]
        K = rbf(Z[near], Z[near], median_gamma(Z[near], rng, k=max(5, len(near) // (2 * n_prototypes))))
        protos[label(cx)] = [int(keep[near[i]]) for i in mmd_prototypes(K, n_prototypes)]
        crits[label(cx)] = []
        scope = "local"
    return Prototypes(protos, crits, all_texts, scope, {}, {"n_prototypes": n_prototypes, "n_criticisms": n_criticisms,
                                                         "neighbours": neighbours, "seed": seed})
