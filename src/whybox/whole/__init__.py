"""The whole model from queries alone: global surrogates with measured fidelity
(:func:`global_surrogate`) and data-free extraction of a clone (:func:`extract`, needs torch)."""
from whybox.whole.extraction import Extraction, InputSpec, extract
from whybox.whole.surrogate import GlobalSurrogate, global_surrogate

__all__ = ["global_surrogate", "GlobalSurrogate", "extract", "Extraction", "InputSpec"]
