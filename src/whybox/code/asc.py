"""AsC-Eval (Palacio et al. 2023, ASTxplainer): how confident a code LM is on each syntax concept.

For one file, :func:`asc_file` scores every token (teacher forcing), aligns tokens to the syntax tree
(:mod:`whybox.code.align`) and gives every node a confidence: the ``agg`` (mean by default) of the
probabilities of the tokens inside it. Over a corpus, :func:`asc_eval` reports per *concept* (a
node type: ``if_statement``, ``identifier``, ``string``, ``(`` ...) the mean confidence over all its
nodes, and per *category* (keyword, punctuation, identifier, literal, comment; see
:func:`whybox.code.syntax.category`) the mean over the corpus's leaf nodes of that category, each
with a percentile bootstrap interval that resamples *files* (tokens of one file are not independent).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from whybox.code.align import Alignment, align
from whybox.code.lm import CausalLM, as_causal_lm, check_finite
from whybox.code.syntax import SyntaxTree, parse
from whybox.errors import InputError

GROUPS = {"keywords+punctuation": ("keyword", "punctuation"), "identifiers+literals": ("identifier", "literal")}


@dataclass
class AscFile:
    """One scored, parsed and aligned text: ``confidence[i]`` is node i's aggregate (NaN: no token)."""

    name: str
    tree: SyntaxTree
    alignment: Alignment
    confidence: np.ndarray
    agg: str

    @property
    def text(self) -> str:
        return self.tree.text

    def nodes_frame(self) -> pd.DataFrame:
        """One row per node: type, category, leaf, span, line, its tokens and confidence."""
        al, t = self.alignment, self.tree
        rows = []
        for n in t.nodes:
            rows.append({"node": n.index, "type": n.type, "category": n.category, "leaf": n.is_leaf, "depth": n.depth,
                         "start": n.start, "end": n.end, "line": t.text.count("\n", 0, n.start) + 1,
                         "n_tokens": int(len(al.tokens_of(n.index))), "confidence": self.confidence[n.index],
                         "source": t.text[n.start:n.end][:60]})
        return pd.DataFrame(rows)

    def categories(self) -> pd.DataFrame:
        """Per category, its leaf nodes that have a confidence: count and mean, highest mean first."""
        nodes = self.nodes_frame()
        leaves = nodes[nodes["leaf"] & nodes["confidence"].notna() & (nodes["node"] > 0)]
        return (leaves.groupby("category")["confidence"].agg(["count", "mean"])
                .sort_values("mean", ascending=False, kind="stable"))

    def tokens_frame(self) -> pd.DataFrame:
        s, al = self.alignment.scores, self.alignment
        return pd.DataFrame({"token": s.tokens, "start": s.offsets[:, 0], "end": s.offsets[:, 1],
                             "logprob": s.logprobs, "prob": s.probs,
                             "node": al.node_of_token, "node_type": [self.tree.nodes[i].type for i in al.node_of_token],
                             "straddling": al.straddling})

    def to_dict(self) -> dict[str, Any]:
        from whybox.core.validation import as_python

        return {"name": self.name, "agg": self.agg, "parser": self.tree.parser, "errors": list(self.tree.errors),
                "text": self.text, "tokens": as_python(self.tokens_frame().to_dict(orient="records")),
                "nodes": [{"type": n.type, "start": n.start, "end": n.end, "parent": n.parent,
                           "confidence": None if np.isnan(c) else float(c)}
                          for n, c in zip(self.tree.nodes, self.confidence)]}


def asc_file(lm: Any, code: str, *, name: str = "<code>", agg: str = "mean", parser: str = "auto",
             language: str = "python", on_error: str = "mark", scores: Any = None) -> AscFile:
    """Score, parse and align one piece of code (see the module docstring)."""
    from whybox.params import check

    check("agg", agg)
    tree = parse(code, language=language, parser=parser, on_error=on_error)
    if scores is None:
        (scores,) = as_causal_lm(lm).score([code])
    check_finite(scores)
    al = align(tree, scores)
    return AscFile(name, tree, al, al.confidence(agg), agg)


@dataclass
class AscEval:
    """Corpus-level AsC-Eval: ``concepts`` and ``categories`` tables (mean, 95% bootstrap interval over
    files, counts); ``files`` the per-file results; ``skipped`` files that could not be used, and why.
    Nodes inside code that did not parse are left out of the tables (the ERROR node is a concept)."""

    concepts: pd.DataFrame
    categories: pd.DataFrame
    groups: pd.DataFrame
    files: list[AscFile]
    agg: str
    confidence_level: float
    skipped: list[tuple[str, str]] = field(default_factory=list)
    n_tokens: int = 0
    n_straddling: int = 0

    def to_markdown(self, top: int = 25) -> str:
        def fmt(df: pd.DataFrame, key: str) -> str:
            lines = [f"| {key} | n nodes | files | mean p | {int(self.confidence_level * 100)}% CI |", "|---|---:|---:|---:|---|"]
            for _, r in df.iterrows():
                lines.append(f"| `{r[key]}` | {r['n_nodes']:,} | {r['n_files']} | {r['mean']:.3f} | "
                             f"[{r['ci_low']:.3f}, {r['ci_high']:.3f}] |")
            return "\n".join(lines)
        return "\n\n".join([fmt(self.categories, "category"), fmt(self.groups, "group"),
                            fmt(self.concepts.head(top), "concept")])


def asc_eval(lm: Any, corpus: Any, *, agg: str = "mean", parser: str = "auto", language: str = "python",
             on_error: str = "mark", confidence: float = 0.95, n_boot: int = 1000, seed: int = 0,
             min_nodes: int = 5) -> AscEval:
    """AsC-Eval over a corpus: ``corpus`` is a sequence of code strings, of ``(name, code)`` pairs or
    a mapping name -> code. Files that are empty or (with ``on_error="raise"``) do not parse are
    skipped and listed. Concepts with fewer than ``min_nodes`` nodes are left out of the table."""
    from whybox.params import check

    check("seed", seed)
    check("agg", agg)
    check("n_boot", n_boot)
    if not (isinstance(confidence, float) and 0.5 <= confidence < 1):
        raise InputError(f"confidence must be a float in [0.5, 1), got {confidence!r}")
    items = _corpus(corpus)
    model: CausalLM = as_causal_lm(lm)
    files, skipped, trees = [], [], []
    for name, code in items:
        try:
            trees.append((name, parse(code, language=language, parser=parser, on_error=on_error)))
        except InputError as exc:
            skipped.append((name, str(exc)))
    if not trees:
        raise InputError("no file of the corpus could be used: " + "; ".join(f"{n}: {w}" for n, w in skipped[:3]))
    scored = model.score([t.text for _, t in trees])
    for (name, tree), sc in zip(trees, scored):
        check_finite(sc)
        al = align(tree, sc)
        files.append(AscFile(name, tree, al, al.confidence(agg), agg))
    W = _file_weights(len(files), n_boot, seed)

    def table(keys_per_file: list[list[tuple[str, float]]], key: str) -> pd.DataFrame:
        names = sorted({k for f in keys_per_file for k, _ in f})
        S, N = _file_sums(keys_per_file, names)
        tot_n = N.sum(0)
        with np.errstate(invalid="ignore", divide="ignore"):
            boot = (W @ S) / (W @ N)
        a = (1 - confidence) / 2
        rows = []
        for j, k in enumerate(names):
            b = boot[:, j][np.isfinite(boot[:, j])]
            rows.append({key: k, "n_nodes": int(tot_n[j]), "n_files": int((N[:, j] > 0).sum()),
                         "mean": S[:, j].sum() / tot_n[j],
                         "ci_low": float(np.quantile(b, a)) if b.size else np.nan,
                         "ci_high": float(np.quantile(b, 1 - a)) if b.size else np.nan})
        df = pd.DataFrame(rows, columns=[key, "n_nodes", "n_files", "mean", "ci_low", "ci_high"])
        return df.sort_values("mean", ascending=False, kind="stable").reset_index(drop=True)

    per_concept, per_cat, cat_of = [], [], {}
    for f in files:
        conf = f.confidence
        for n in f.tree.nodes:
            cat_of.setdefault(n.type, n.category)
        used = _parsed_nodes(f)
        per_concept.append([(n.type, conf[n.index]) for n in used])
        per_cat.append([(n.category, conf[n.index]) for n in used if n.is_leaf])
    per_group = [_group_leaves(f) for f in files]
    concepts = table(per_concept, "concept")
    concepts = concepts[concepts["n_nodes"] >= min_nodes].reset_index(drop=True)
    concepts.insert(1, "category", [cat_of[c] for c in concepts["concept"]])
    return AscEval(concepts, table(per_cat, "category"), table(per_group, "group"), files, agg, confidence, skipped,
                   sum(len(f.alignment.scores) for f in files), int(sum(f.alignment.straddling.sum() for f in files)))


def _parsed_nodes(f: AscFile) -> list:
    """The nodes AsC-Eval aggregates: not the root, with a confidence, and not inside code that did
    not parse (an ERROR node itself is kept, as the concept "ERROR"; what is inside it is not typed
    reliably, e.g. a cut docstring read as identifiers)."""
    bad = f.tree.in_error()
    return [n for n in f.tree.nodes if n.index and np.isfinite(f.confidence[n.index])
            and (not bad[n.index] or n.type == "ERROR" and not bad[n.parent])]


def _group_leaves(f: AscFile) -> list[tuple[str, float]]:
    """(group, confidence) of each parsed leaf of a file that falls in one of the GROUPS."""
    return [(g, f.confidence[n.index]) for n in _parsed_nodes(f) if n.is_leaf
            for g, cats in GROUPS.items() if n.category in cats]


def _file_sums(per_file: list[list[tuple[str, float]]], names: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """Per file and name, the sum of the values and their count: (files, names) each."""
    ix = {k: j for j, k in enumerate(names)}
    S = np.zeros((len(per_file), len(names)))
    N = np.zeros((len(per_file), len(names)))
    for i, f in enumerate(per_file):
        for k, v in f:
            if k in ix:
                S[i, ix[k]] += v
                N[i, ix[k]] += 1
    return S, N


def _file_weights(n_files: int, n_boot: int, seed: int) -> np.ndarray:
    """Bootstrap resamples of the files, as how often each file is drawn: (n_boot, files)."""
    return np.random.default_rng(seed).multinomial(n_files, np.full(n_files, 1 / n_files), size=n_boot).astype(float)


def group_difference(ev: AscEval, a: str = "keywords+punctuation", b: str = "identifiers+literals", *,
                     n_boot: int = 1000, seed: int = 0) -> dict[str, float]:
    """Mean confidence of group ``a`` minus group ``b`` with a 95% file-bootstrap interval (paired:
    both groups are resampled with the same files)."""
    for name, g in (("a", a), ("b", b)):
        if g not in GROUPS:
            raise InputError(f"{name} must be one of {sorted(GROUPS)}, got {g!r}")
    S, N = _file_sums([_group_leaves(f) for f in ev.files], [a, b])
    W = _file_weights(len(ev.files), n_boot, seed)
    with np.errstate(invalid="ignore", divide="ignore"):
        m = (W @ S) / (W @ N)
    d = m[:, 0] - m[:, 1]
    d = d[np.isfinite(d)]
    est = S[:, 0].sum() / N[:, 0].sum() - S[:, 1].sum() / N[:, 1].sum()
    return {"difference": float(est), "ci_low": float(np.quantile(d, 0.025)), "ci_high": float(np.quantile(d, 0.975))}


def _corpus(corpus: Any) -> list[tuple[str, str]]:
    if isinstance(corpus, str):
        raise InputError("corpus must be a sequence of code strings (or (name, code) pairs), not one string: "
                         "use asc_file for one piece of code")
    if isinstance(corpus, dict):
        items = list(corpus.items())
    else:
        items = [c if isinstance(c, tuple) else (f"<code {i}>", c) for i, c in enumerate(corpus)]
    for name, code in items:
        if not isinstance(code, str):
            raise InputError(f"corpus item {name!r} is a {type(code).__name__}, not a string of code")
    if not items:
        raise InputError("the corpus is empty")
    return items

