"""Code models through syntax (ASTxplainer): token log-probabilities of a causal LM, aligned to the
code's syntax tree (AsC-Eval), and explanations whose units are syntax nodes.

torch, transformers and tree-sitter are imported only when used (``pip install 'whybox[code]'``)."""
from whybox.code.align import AGGREGATIONS, Alignment, align
from whybox.code.asc import AscEval, AscFile, asc_eval, asc_file, group_difference
from whybox.code.explain import code_units, completion_model, explain_code
from whybox.code.lm import CausalLM, EndpointLM, HFCausalLM, TokenScores, as_causal_lm
from whybox.code.syntax import CATEGORIES, SyntaxNode, SyntaxTree, category, parse

__all__ = ["AGGREGATIONS", "Alignment", "align", "AscEval", "AscFile", "asc_eval", "asc_file", "group_difference",
           "code_units", "completion_model", "explain_code", "CausalLM", "EndpointLM", "HFCausalLM", "TokenScores",
           "as_causal_lm", "CATEGORIES", "SyntaxNode", "SyntaxTree", "category", "parse"]
