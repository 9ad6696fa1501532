"""One client for every LLM feature of whybox: any OpenAI-compatible chat endpoint (OpenAI, vLLM,
Ollama, llama.cpp server, ...) through the ``openai`` SDK.

* configuration by arguments, else environment variables: ``WHYBOX_LLM_BASE_URL``,
  ``WHYBOX_LLM_MODEL``, the key from ``WHYBOX_LLM_API_KEY`` or ``OPENAI_API_KEY`` (local servers
  need none: a placeholder is sent), ``WHYBOX_LLM_CACHE`` (cache folder), ``WHYBOX_LLM_TIMEOUT``;
* temperature 0 by default; a timeout per request; retries with exponential backoff on 429, 5xx,
  timeouts and dropped connections (``max_retries``), never on other 4xx;
* a persistent on-disk cache keyed by (model, messages, parameters): a rerun costs nothing; each
  entry is one JSON file written atomically;
* accounting: requests sent, cache hits, prompt and completion tokens; a request ``budget``;
* the API key is never logged, never part of a cache key or file, never in an error message or repr.
"""
from __future__ import annotations

import hashlib
import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

from whybox.errors import BudgetError, WhyboxError


class LLMError(WhyboxError):
    """The LLM endpoint failed (unreachable, timed out, refused, or replied with nothing usable)."""


class LLMParseError(LLMError):
    """An LLM reply could not be parsed into what was asked for; the message says why."""


def _default_cache() -> Path:
    env = os.environ.get("WHYBOX_LLM_CACHE")
    if env:
        return Path(env)
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "whybox" / "llm"


@dataclass
class LLMReply:
    text: str
    logprobs: list[dict[str, float]] | None = None    # per generated token: {token: logprob} of the top tokens
    choices: list[str] = field(default_factory=list)   # all n choices' texts
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached: bool = False


class LLMClient:
    """Chat with an OpenAI-compatible endpoint, cached, counted and retried.

    Parameters
    ----------
    base_url : e.g. "http://127.0.0.1:11434/v1" (Ollama), "http://host:8000/v1" (vLLM); None:
        ``$WHYBOX_LLM_BASE_URL``, else OpenAI's default.
    model : model name on that server (``$WHYBOX_LLM_MODEL``).
    api_key : the key; None reads ``$WHYBOX_LLM_API_KEY`` then ``$OPENAI_API_KEY``.
    timeout : seconds per request; max_retries : extra attempts on 429/5xx/timeouts; backoff : first
        wait in seconds (doubled each retry; a server's Retry-After is honoured up to 30 s).
    temperature, max_tokens : defaults of every request.
    cache : True (``$WHYBOX_LLM_CACHE`` or ~/.cache/whybox/llm), a folder, or False.
    budget : most requests this client may send (cache hits are free).
    """

    def __init__(self, base_url: str | None = None, model: str | None = None, *, api_key: str | None = None,
                 timeout: float | None = None, max_retries: int = 3, backoff: float = 0.5, temperature: float = 0.0,
                 max_tokens: int = 512, cache: bool | str | os.PathLike = True, budget: int | None = None):
        self.base_url = base_url or os.environ.get("WHYBOX_LLM_BASE_URL") or None
        self.model = model or os.environ.get("WHYBOX_LLM_MODEL")
        if not self.model:
            raise LLMError("no LLM model given: pass model=... (CLI --model) or set WHYBOX_LLM_MODEL")
        self._key = api_key or os.environ.get("WHYBOX_LLM_API_KEY") or os.environ.get("OPENAI_API_KEY") or "not-needed"
        self.timeout = float(timeout if timeout is not None else os.environ.get("WHYBOX_LLM_TIMEOUT", 60))
        if self.timeout <= 0:
            raise LLMError(f"timeout must be positive, got {self.timeout}")
        self.max_retries, self.backoff = int(max_retries), float(backoff)
        self.temperature, self.max_tokens = float(temperature), int(max_tokens)
        self.cache_dir = None if cache is False else (_default_cache() if cache is True else Path(cache))
        self.budget = None if budget is None else int(budget)
        self.n_requests = self.n_cached = self.n_retries = 0
        self.prompt_tokens = self.completion_tokens = 0
        self._sdk = None

    def __repr__(self) -> str:   # never shows the key
        return (f"LLMClient(base_url={self.base_url!r}, model={self.model!r}, requests={self.n_requests}, "
                f"cached={self.n_cached})")

    @property
    def where(self) -> str:
        return self.base_url or "the OpenAI API"

    def usage(self) -> dict[str, int]:
        return {"requests": self.n_requests, "cache_hits": self.n_cached, "retries": self.n_retries,
                "prompt_tokens": self.prompt_tokens, "completion_tokens": self.completion_tokens}

    def require(self, n_requests: int, *, what: str) -> None:
        if self.budget is not None and self.n_requests + n_requests > self.budget:
            raise BudgetError(f"{what} needs up to {n_requests:,} LLM requests but the budget has "
                              f"{self.budget - self.n_requests:,} left (budget={self.budget:,})")

    # ----------------------------------------------------------------- internals
    def _client(self):
        if self._sdk is None:
            try:
                from openai import OpenAI
            except ImportError:
                raise LLMError("LLM features need the openai SDK: pip install 'whybox[llm]'") from None
            self._sdk = OpenAI(base_url=self.base_url, api_key=self._key, timeout=self.timeout, max_retries=0)
        return self._sdk

    def _key_of(self, payload: dict[str, Any]) -> str:
        return hashlib.sha256(json.dumps(payload, sort_keys=True, ensure_ascii=False).encode()).hexdigest()

    def _cache_get(self, key: str) -> LLMReply | None:
        if self.cache_dir is None:
            return None
        p = self.cache_dir / key[:2] / f"{key}.json"
        try:
            d = json.loads(p.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        return LLMReply(d["text"], d.get("logprobs"), d.get("choices", [d["text"]]), d.get("prompt_tokens", 0),
                        d.get("completion_tokens", 0), cached=True)

    def _cache_put(self, key: str, payload: dict[str, Any], reply: LLMReply) -> None:
        if self.cache_dir is None:
            return
        from whybox.core.explanation import atomic_write_text

        p = self.cache_dir / key[:2] / f"{key}.json"
        p.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(p, json.dumps({"request": payload, "text": reply.text, "logprobs": reply.logprobs,
                                         "choices": reply.choices, "prompt_tokens": reply.prompt_tokens,
                                         "completion_tokens": reply.completion_tokens}, ensure_ascii=False))

    def _retryable(self, exc: Exception) -> tuple[bool, str, float | None]:
        import openai

        if isinstance(exc, openai.APITimeoutError):
            return True, f"timed out after {self.timeout:g} s", None
        if isinstance(exc, openai.APIConnectionError):
            return True, "could not be reached", None
        if isinstance(exc, openai.APIStatusError):
            code = exc.status_code
            retry_after = None
            try:
                retry_after = float(exc.response.headers.get("retry-after"))
            except (TypeError, ValueError, AttributeError):
                pass
            msg = _short(getattr(exc, "message", "") or "")
            return code == 429 or code >= 500, f"answered HTTP {code}" + (f" ({msg})" if msg else ""), retry_after
        return False, f"failed ({type(exc).__name__})", None

    def chat(self, messages: Sequence[dict[str, str]], *, temperature: float | None = None, max_tokens: int | None = None,
             n: int = 1, logprobs: int | None = None, seed: int | None = None, stop: Sequence[str] | None = None,
             use_cache: bool = True) -> LLMReply:
        """One chat completion. ``logprobs=k`` asks for the top-k log-probabilities of each generated
        token (servers that cannot give them reply without; check ``reply.logprobs``)."""
        msgs = [{"role": str(m["role"]), "content": str(m["content"])} for m in messages]
        payload: dict[str, Any] = {"model": self.model, "messages": msgs,
                                   "temperature": self.temperature if temperature is None else float(temperature),
                                   "max_tokens": self.max_tokens if max_tokens is None else int(max_tokens)}
        if n != 1:
            payload["n"] = int(n)
        if logprobs:
            payload["logprobs"], payload["top_logprobs"] = True, int(logprobs)
        if seed is not None:
            payload["seed"] = int(seed)
        if stop:
            payload["stop"] = list(stop)
        key = self._key_of(payload)
        if use_cache:
            hit = self._cache_get(key)
            if hit is not None:
                self.n_cached += 1
                return hit
        self.require(1, what="this request")
        sdk = self._client()
        wait = self.backoff
        for attempt in range(self.max_retries + 1):
            self.n_requests += 1
            try:
                resp = sdk.chat.completions.create(**payload)
                break
            except Exception as exc:  # noqa: BLE001 - classified below
                retry, why, after = self._retryable(exc)
                if not retry or attempt == self.max_retries:
                    tries = f" after {attempt + 1} attempt(s)" if attempt else ""
                    raise LLMError(f"LLM endpoint {self.where} (model {self.model!r}) {why}{tries}") from None
                self.n_retries += 1
                time.sleep(min(30.0, after if after is not None else wait))
                wait *= 2
        reply = _reply(resp, self.where)
        self.prompt_tokens += reply.prompt_tokens
        self.completion_tokens += reply.completion_tokens
        if use_cache:
            self._cache_put(key, payload, reply)
        return reply

    def complete(self, prompt: str, *, system: str | None = None, **kw: Any) -> str:
        """The text of one reply to a single user message (and an optional system message)."""
        msgs = ([{"role": "system", "content": system}] if system else []) + [{"role": "user", "content": prompt}]
        return self.chat(msgs, **kw).text


def _short(s: str, n: int = 160) -> str:
    s = " ".join(str(s).split())
    return s if len(s) <= n else s[:n] + "..."


def _reply(resp: Any, where: str) -> LLMReply:
    choices = getattr(resp, "choices", None)
    if not choices:
        raise LLMError(f"LLM endpoint {where} returned no choices")
    texts = []
    for c in choices:
        msg = getattr(c, "message", None)
        texts.append((getattr(msg, "content", None) or "") if msg is not None else "")
    lp = None
    raw = getattr(choices[0], "logprobs", None)
    content = getattr(raw, "content", None) if raw is not None else None
    if content:
        lp = []
        for tok in content:
            tops = getattr(tok, "top_logprobs", None) or []
            d = {t.token: float(t.logprob) for t in tops}
            d.setdefault(tok.token, float(tok.logprob))
            lp.append(d)
    usage = getattr(resp, "usage", None)
    return LLMReply(texts[0], lp, texts, int(getattr(usage, "prompt_tokens", 0) or 0),
                    int(getattr(usage, "completion_tokens", 0) or 0))
