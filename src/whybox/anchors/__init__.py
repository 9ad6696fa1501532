"""Anchors (Ribeiro et al. 2018): high-precision rules that "anchor" a classifier's decision."""
from whybox.anchors.search import Anchor
from whybox.anchors.tabular import anchor
from whybox.anchors.text import anchor_text

__all__ = ["Anchor", "anchor", "anchor_text"]
