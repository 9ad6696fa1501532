"""Shapley interactions (SII, k-SII, STII, FSII as shapiq names them): exact on a game's 2^n values,
and exact for a model's prediction on rows with d <= 10 features."""
from whybox.interactions.exact import INDICES, moebius
from whybox.interactions.model import Interactions, interactions

__all__ = ["INDICES", "moebius", "Interactions", "interactions"]
