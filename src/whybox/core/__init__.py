"""Core types: Explanation, FeatureSpec, validation helpers."""
from whybox.core.explanation import Explanation
from whybox.core.features import FeatureSpec

__all__ = ["Explanation", "FeatureSpec"]
