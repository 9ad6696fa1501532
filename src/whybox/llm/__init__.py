"""The one LLM client of whybox, and what is built on it (imports the openai SDK lazily)."""
from whybox.llm.client import LLMClient, LLMError, LLMParseError, LLMReply

__all__ = ["LLMClient", "LLMError", "LLMParseError", "LLMReply"]
