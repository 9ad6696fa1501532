"""Which parts of a prompt drive a code LM's probability of a completion: syntax units (statements,
identifiers, comments ...) as the interpretable units of whybox's masking engine.

The prompt is parsed (:mod:`whybox.code.syntax`); its units are switched off by *syntax-aware*
replacement, so the perturbed prompts stay code:

* a statement (the innermost ones: a compound statement's header stays, its body's statements are
  units) and a docstring become ``pass`` (indentation kept);
* an identifier becomes ``placeholder`` (default ``_``);
* a comment is deleted; a string literal becomes ``""``; a number ``0``.

The output explained is log p(completion | prompt) (``score="logprob"``, the sum over the
completion's tokens) or its exponential (``score="prob"``). The masking recipes (occlusion,
kernelshap, lime, shapley) are :func:`whybox.explain_text`'s, unchanged, on those units: one
Explanation whose features are the units, labelled by line and source.
"""
from __future__ import annotations

import ast
from typing import Any, Sequence

import numpy as np

from whybox.code.lm import as_causal_lm
from whybox.code.syntax import SyntaxNode, SyntaxTree, parse
from whybox.errors import InputError

UNITS = ("statement", "identifier", "comment")
SCORES = ("logprob", "prob")
COMPOUND = frozenset({"if_statement", "for_statement", "while_statement", "try_statement", "with_statement",
                      "function_definition", "class_definition", "decorated_definition", "match_statement",
                      "If", "For", "AsyncFor", "While", "Try", "TryStar", "With", "AsyncWith", "FunctionDef",
                      "AsyncFunctionDef", "ClassDef", "Match"})
_AST_STMTS = frozenset(n for n in dir(ast) if isinstance(getattr(ast, n), type) and issubclass(getattr(ast, n), ast.stmt)
                       and getattr(ast, n) is not ast.stmt)


def is_statement(node: SyntaxNode) -> bool:
    t = node.type
    return (t.endswith("_statement") or t in COMPOUND or t in _AST_STMTS or t in ("future_import_statement",)) \
        and node.named


def is_docstring(tree: SyntaxTree, node: SyntaxNode) -> bool:
    """An expression statement that is only a string literal (the docstring position or not)."""
    if node.type not in ("expression_statement", "Expr") or len(node.children) != 1:
        return False
    kid = tree.nodes[node.children[0]]
    if kid.type == "Constant" and len(kid.children) == 1:
        kid = tree.nodes[kid.children[0]]
    return kid.type in ("string", "concatenated_string")


def code_units(tree: SyntaxTree, units: str | Sequence[str] = "statement", *, placeholder: str = "_"
               ) -> list[tuple[int, int, str, str]]:
    """The units of ``tree`` as ``(start, end, replacement, kind)``, disjoint and in order.

    ``units``: "statement" (innermost statements and docstrings, plus comments), "identifier" (every
    identifier occurrence), "comment", or a list of node types (the outermost node of each match).
    """
    if not isinstance(placeholder, str):
        raise InputError(f"placeholder must be a string, got {placeholder!r}")
    if isinstance(units, str):
        if units not in UNITS:
            raise InputError(f"units must be one of {UNITS} or a list of node types, got {units!r}")
        kinds = units
    else:
        kinds = list(units)
        if not kinds or not all(isinstance(k, str) for k in kinds):
            raise InputError(f"units must be one of {UNITS} or a non-empty list of node type names, got {units!r}")
    has_inner = _has_statement_inside(tree)
    out: list[tuple[int, int, str, str]] = []
    last_end = -1
    for n in tree.walk():
        if n.index == 0 or n.start < last_end or n.end <= n.start:
            continue
        kind = _kind(tree, n, kinds, has_inner)
        if kind is None:
            continue
        rep = {"statement": "pass", "docstring": "pass", "identifier": placeholder, "comment": ""}.get(kind)
        if rep is None:
            rep = _replacement_of(n, placeholder)
        out.append((n.start, n.end, rep, kind))
        last_end = n.end
    return out


def _has_statement_inside(tree: SyntaxTree) -> np.ndarray:
    out = np.zeros(len(tree.nodes), dtype=bool)
    for n in reversed(tree.nodes):
        if n.parent is not None and (out[n.index] or is_statement(n)):
            out[n.parent] = True
    return out


def _kind(tree: SyntaxTree, n: SyntaxNode, kinds: Any, has_inner: np.ndarray) -> str | None:
    if kinds == "statement":
        if n.type == "comment":
            return "comment"
        if is_statement(n) and not has_inner[n.index]:
            return "docstring" if is_docstring(tree, n) else "statement"
        return None
    if kinds == "identifier":
        return "identifier" if n.type == "identifier" else None
    if kinds == "comment":
        return "comment" if n.type == "comment" else None
    return n.type if n.type in kinds else None


def _replacement_of(n: SyntaxNode, placeholder: str) -> str:
    if is_statement(n):
        return "pass"
    return {"identifier": placeholder, "comment": "", "string": '""', "concatenated_string": '""', "integer": "0",
            "float": "0.0"}.get(n.type, placeholder)


def _label(tree: SyntaxTree, s: int, e: int, kind: str) -> str:
    line = tree.text.count("\n", 0, s) + 1
    src = " ".join(tree.text[s:e].split())
    return f"L{line} {kind}: {src[:40] + ('...' if len(src) > 40 else '')}"


def explain_code(lm: Any, prompt: str, completion: str, *, method: str = "occlusion",
                 units: str | Sequence[str] = "statement", placeholder: str = "_", score: str = "logprob",
                 parser: str = "auto", language: str = "python", on_error: str = "mark", seed: int | None = 0,
                 budget: int | None = None, **method_params: Any):
    """Explain log p(``completion`` | ``prompt``) of a causal LM by the prompt's syntax units.

    Parameters
    ----------
    lm : a :class:`whybox.code.HFCausalLM`, a :class:`whybox.code.EndpointLM` or an LLMClient.
    prompt : the code before the completion; completion : the text whose probability is explained
        (e.g. the next line).
    method : "occlusion" (default), "kernelshap", "lime" or "shapley" (few units).
    units : see :func:`code_units`.
    score : "logprob" (sum of the completion's token log-probabilities) or "prob".
    budget : most prompts scored (perturbed prompts included), checked before any is.

    Returns one :class:`whybox.Explanation` (text representation: the metrics of
    :mod:`whybox.metrics.text` apply with ``completion_model(lm, completion)``) whose features are
    the units.
    """
    from whybox.explainers.text import MASKING_METHODS, explain_text
    from whybox.params import check

    check("seed", seed)
    check("budget", budget)
    if str(method).lower() not in MASKING_METHODS:
        raise InputError(f"method must be one of {list(MASKING_METHODS)} for code, got {method!r}")
    model = as_causal_lm(lm)
    tm = completion_model(model, completion, score=score, budget=budget)
    tree = parse(prompt, language=language, parser=parser, on_error=on_error)
    found = code_units(tree, units, placeholder=placeholder)
    if not found:
        raise InputError(f"the prompt has no {units!r} units to explain")
    spans = [(s, e) for s, e, _, _ in found]
    exp = explain_text(tm, prompt, method=method, units=lambda _t: spans, removal="replace",
                       replacement=[r for _, _, r, _ in found], seed=seed, **method_params)
    exp.feature_names = [_label(tree, s, e, k) for s, e, _, k in found]
    exp.params.update({"representation": "text", "units": "syntax", "unit_kinds": [k for *_, k in found],
                       "completion": completion, "score": score, "parser": tree.parser, "syntax_errors": tree.errors,
                       "model": model.name})
    return exp


def completion_model(lm: Any, completion: str, *, score: str = "logprob", budget: int | None = None):
    """The text model prompt -> [log p(completion | prompt)] (or p with ``score="prob"``): what
    :func:`explain_code` explains, for scoring its explanations (e.g. a deletion curve)."""
    from whybox.models.text import TextModel

    if not isinstance(completion, str) or not completion:
        raise InputError("completion must be a non-empty string (the text whose probability is explained)")
    if score not in SCORES:
        raise InputError(f"score must be one of {SCORES}, got {score!r}")
    model = as_causal_lm(lm)
    log = "log " if score == "logprob" else ""

    def f(texts: list[str]) -> np.ndarray:
        lp = model.continuation_logprob(texts, completion)
        return (lp if score == "logprob" else np.exp(lp))[:, None]

    return TextModel(f, name=f"{log}p(completion | prompt) of {model.name}", output_names=[f"{log}p(completion)"],
                     budget=budget, is_classifier=False)
