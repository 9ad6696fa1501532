"""Interpretable representations: how an on/off vector over interpretable units maps to model inputs.

Tabular features live in :mod:`whybox.core.features`; text units (words, tokens, sentences) here."""
from whybox.representations.text import REMOVALS, UNITS, TextUnits, split_text

__all__ = ["TextUnits", "split_text", "UNITS", "REMOVALS"]
