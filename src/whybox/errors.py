"""Exceptions raised by whybox.

Every error that a user can cause derives from :class:`WhyboxError` (a ``ValueError``) and names the
argument or the model involved, so that bad input never surfaces as a traceback from deep inside.
"""
from __future__ import annotations


class WhyboxError(ValueError):
    """Base class of every error whybox raises on purpose."""


class InputError(WhyboxError):
    """The data, the feature names or a parameter is not acceptable."""


class ModelError(WhyboxError):
    """The model raised, or returned something unusable (wrong shape, NaN, inf)."""


class BudgetError(WhyboxError):
    """A method needs more model queries than the budget allows, or the budget ran out."""


class MethodError(WhyboxError):
    """Unknown method, or a method that cannot run on this model/data (e.g. exact Shapley, d too big)."""
