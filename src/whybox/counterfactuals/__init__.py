"""Counterfactual explanations: "what would have to change for a different answer?"

* tabular: :func:`counterfactuals` (constrained, model-agnostic) returning a :class:`CounterfactualSet`;
* text: causal concept counterfactuals by LLM edits and by matching (:mod:`whybox.counterfactuals.text`),
  evaluated on CEBaB (:mod:`whybox.counterfactuals.cebab`).
"""
from whybox.counterfactuals.api import CounterfactualExplainer, CounterfactualSet, counterfactuals

__all__ = ["counterfactuals", "CounterfactualExplainer", "CounterfactualSet"]
