"""whybox: explain any black-box model, and measure how far each explanation can be trusted."""
from whybox.api import Explainer, explain
from whybox.background import Background, kmeans, sample
from whybox.core.explanation import Explanation
from whybox.core.features import FeatureSpec
from whybox.errors import BudgetError, InputError, MethodError, ModelError, WhyboxError
from whybox.explainers.recipes import METHODS
from whybox.models.adapters import Model, as_model

__version__ = "0.1.0"

__all__ = [
    "Explainer", "explain", "Explanation", "FeatureSpec", "Model", "as_model", "Background", "kmeans", "sample",
    "METHODS", "WhyboxError", "InputError", "ModelError", "BudgetError", "MethodError", "__version__",
]

from whybox.choose import Choice, choose  # noqa: E402
from whybox.evaluate import evaluate  # noqa: E402

__all__ += ["choose", "Choice", "evaluate"]
from whybox.batch import explain_dataset  # noqa: E402

__all__ += ["explain_dataset"]
from whybox.explainers.text import explain_text  # noqa: E402
from whybox.models.text import TextModel  # noqa: E402

from whybox.narrative import narrate, verify_narrative  # noqa: E402

__all__ += ["explain_text", "TextModel", "TransformerClassifier", "narrate", "verify_narrative", "llm_explain"]


def __getattr__(name: str):
    if name == "TransformerClassifier":          # imports torch lazily
        from whybox.models.transformer import TransformerClassifier
        return TransformerClassifier
    if name == "llm_explain":
        from whybox.llm.explainer import llm_explain
        return llm_explain
    raise AttributeError(f"module 'whybox' has no attribute {name!r}")
from whybox.whole import Extraction, GlobalSurrogate, InputSpec, extract, global_surrogate  # noqa: E402

__all__ += ["global_surrogate", "GlobalSurrogate", "extract", "Extraction", "InputSpec"]
from whybox.anchors import Anchor, anchor, anchor_text  # noqa: E402

__all__ += ["anchor", "anchor_text", "Anchor"]
from whybox.graph import GraphModel, explain_graph, narrate_graph  # noqa: E402

__all__ += ["explain_graph", "GraphModel", "narrate_graph"]
