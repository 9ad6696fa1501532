"""Explainers: thin recipes (neighbourhood x surrogate) on the engine."""
from whybox.explainers.recipes import METHODS, Recipe, get_recipe

__all__ = ["METHODS", "Recipe", "get_recipe"]
