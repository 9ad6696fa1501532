"""The one LLM client of whybox, and what is built on it (imports the openai SDK lazily)."""
from whybox.llm.client import LLMClient, LLMError, LLMParseError, LLMReply
from whybox.llm.parse import Ranking, parse_ranking, read_ranking

__all__ = ["LLMClient", "LLMError", "LLMParseError", "LLMReply", "Ranking", "parse_ranking", "read_ranking",
           "ranking_explanation"]


def __getattr__(name: str):
    if name == "ranking_explanation":
        from whybox.llm.explainer import ranking_explanation
        return ranking_explanation
    raise AttributeError(f"module 'whybox.llm' has no attribute {name!r}")
