"""Simulatability: does an explanation help a simulator predict the model? (Hase & Bansal 2020)."""
from whybox.simulate.harness import KINDS, TESTS, Simulatability, nsg, paired_gain
from whybox.simulate.llm import LLMSimulator, parse_predictions
from whybox.simulate.tabular import TabularTask, simulatability
from whybox.simulate.text import TextTask, simulatability_text

__all__ = ["simulatability", "simulatability_text", "Simulatability", "TabularTask", "TextTask", "LLMSimulator",
           "parse_predictions", "KINDS", "TESTS", "nsg", "paired_gain"]
