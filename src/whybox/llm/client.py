"""One client for every LLM feature of whybox: any OpenAI-compatible chat endpoint (OpenAI, vLLM,
Ollama, llama.cpp server, ...) through the ``openai`` SDK.

* configuration by arguments, else environment variables: ``WHYBOX_LLM_BASE_URL``,
  ``WHYBOX_LLM_MODEL``, the key from ``WHYBOX_LLM_API_KEY`` or ``OPENAI_API_KEY`` (local servers
  need none: a placeholder is sent), ``WHYBOX_LLM_CACHE`` (cache folder), ``WHYBOX_LLM_TIMEOUT``;
* temperature 0 by default; ``timeout`` is a *total* deadline per attempt (connecting, sending and
  every byte of the reply: a server trickling bytes cannot hold a request longer); replies larger
  than ``max_reply_bytes`` are cut off with an error; retries with exponential backoff on 429, 5xx,
  timeouts and dropped connections (``max_retries``), never on other 4xx; a server's
  ``Retry-After`` is honoured when it is a finite number of seconds, clamped to [0, 30];
* a persistent on-disk cache keyed by (server, model, messages, parameters): a rerun costs nothing;
  each entry is one JSON file written atomically, readable by its owner only (0600 in 0700 folders,
  since prompts hold data rows); an entry that is not what whybox wrote counts as a miss;
* accounting: requests sent, cache hits, prompt and completion tokens; a request ``budget``;
* the API key is never logged, never part of a cache key or file, never in an error message or repr
  (nor is a password in ``base_url``; a server echoing the key in its error body is redacted).
"""
from __future__ import annotations

import hashlib
import importlib
import json
import math
import os
import re
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

from whybox.core.explanation import atomic_write_text
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
    # text completions with echo: the prompt's tokens as [token, logprob or None (the first), character offset]
    prompt_logprobs: list[list[Any]] | None = None


class LLMClient:
    """Chat with an OpenAI-compatible endpoint, cached, counted and retried.

    Parameters
    ----------
    base_url : e.g. "http://127.0.0.1:11434/v1" (Ollama), "http://host:8000/v1" (vLLM); None:
        ``$WHYBOX_LLM_BASE_URL``, else OpenAI's default.
    model : model name on that server (``$WHYBOX_LLM_MODEL``).
    api_key : the key; None reads ``$WHYBOX_LLM_API_KEY`` then ``$OPENAI_API_KEY``.
    timeout : total seconds per attempt (a deadline, not a per-read timeout); max_retries : extra
        attempts on 429/5xx/timeouts; backoff : first wait in seconds (doubled each retry; a server's
        Retry-After is honoured up to 30 s).
    max_reply_bytes : largest reply accepted (default 4 MiB); a larger one is an error.
    temperature, max_tokens : defaults of every request.
    cache : True (``$WHYBOX_LLM_CACHE`` or ~/.cache/whybox/llm), a folder, or False.
    budget : most requests this client may send (cache hits are free).
    """

    def __init__(self, base_url: str | None = None, model: str | None = None, *, api_key: str | None = None,
                 timeout: float | None = None, max_retries: int = 3, backoff: float = 0.5, temperature: float = 0.0,
                 max_tokens: int = 512, cache: bool | str | os.PathLike = True, budget: int | None = None,
                 max_reply_bytes: int = 4 << 20):
        self.base_url = base_url or os.environ.get("WHYBOX_LLM_BASE_URL") or None
        self.model = model or os.environ.get("WHYBOX_LLM_MODEL")
        if not self.model:
            raise LLMError("no LLM model given: pass model=... (CLI --model) or set WHYBOX_LLM_MODEL")
        self._key = api_key or os.environ.get("WHYBOX_LLM_API_KEY") or os.environ.get("OPENAI_API_KEY") or "not-needed"
        try:
            self.timeout = float(timeout if timeout is not None else os.environ.get("WHYBOX_LLM_TIMEOUT", 60))
        except (TypeError, ValueError):
            raise LLMError(f"timeout must be a number of seconds, got {timeout!r}") from None
        if not (math.isfinite(self.timeout) and self.timeout > 0):
            raise LLMError(f"timeout must be a positive number of seconds, got {self.timeout}")
        self.max_reply_bytes = int(max_reply_bytes)
        if self.max_reply_bytes < 1024:
            raise LLMError(f"max_reply_bytes must be at least 1024, got {max_reply_bytes}")
        self._guard = _RequestGuard()
        self.max_retries, self.backoff = int(max_retries), float(backoff)
        self.temperature, self.max_tokens = float(temperature), int(max_tokens)
        self.cache_dir = None if cache is False else (_default_cache() if cache is True else Path(cache))
        self.budget = None if budget is None else int(budget)
        self.n_requests = self.n_cached = self.n_retries = 0
        self.prompt_tokens = self.completion_tokens = 0
        self._sdk = None

    def __repr__(self) -> str:   # never shows the key
        return (f"LLMClient(base_url={self.where!r}, model={self.model!r}, requests={self.n_requests}, "
                f"cached={self.n_cached})")

    @property
    def where(self) -> str:
        """The server, for messages: ``base_url`` without any user name or password in it."""
        return _strip_userinfo(self.base_url) if self.base_url else "the OpenAI API"

    def _redact(self, text: str) -> str:
        """``text`` without the API key or URL credentials (a server may echo them in its error)."""
        out = re.sub(r"(?i)\b([a-z][a-z0-9+.-]*://)[^/\s@]*@", r"\1***@", str(text))
        for secret in {self._key, *_userinfo_secrets(self.base_url)}:
            if secret and secret != "not-needed" and len(secret) >= 4:
                out = out.replace(secret, "***")
        return out

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
            self._sdk = OpenAI(base_url=self.base_url, api_key=self._key, timeout=self.timeout, max_retries=0,
                               http_client=_guarded_http_client(self._guard, self.timeout))
        return self._sdk

    def _key_of(self, payload: dict[str, Any]) -> str:
        keyed = {"server": self.where, **payload}      # server B never gets server A's answer
        return hashlib.sha256(json.dumps(keyed, sort_keys=True, ensure_ascii=False).encode()).hexdigest()

    def _cache_get(self, key: str) -> LLMReply | None:
        if self.cache_dir is None:
            return None
        p = self.cache_dir / key[:2] / f"{key}.json"
        try:
            if p.stat().st_size > self.max_reply_bytes * 4:
                return None
            d = json.loads(p.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        return _cached_reply(d)

    def _cache_put(self, key: str, payload: dict[str, Any], reply: LLMReply) -> None:
        if self.cache_dir is None:
            return
        p = self.cache_dir / key[:2] / f"{key}.json"
        try:
            _private_dirs(self.cache_dir, p.parent)
            atomic_write_text(p, json.dumps({"server": self.where, "request": payload, "text": reply.text,
                                          "logprobs": reply.logprobs, "choices": reply.choices,
                                          "prompt_tokens": reply.prompt_tokens,
                                          "completion_tokens": reply.completion_tokens,
                                          "prompt_logprobs": reply.prompt_logprobs}, ensure_ascii=False),
                              mode=0o600)
        except OSError as exc:       # a cache that cannot be written costs a rerun, not the answer
            import warnings
            warnings.warn(f"could not write the LLM cache in {self.cache_dir}: {exc.strerror}", stacklevel=3)

    def _retryable(self, exc: Exception) -> tuple[bool, str, float | None]:
        import openai

        if isinstance(exc, openai.APITimeoutError):
            return True, f"timed out after {self.timeout:g} s", None
        if isinstance(exc, openai.APIConnectionError):
            return True, "could not be reached", None
        if isinstance(exc, openai.APIStatusError):
            code = exc.status_code
            retry_after = _retry_after(getattr(getattr(exc, "response", None), "headers", None))
            msg = _short(self._redact(getattr(exc, "message", "") or ""))
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
        return self._send(payload, lambda sdk: sdk.chat.completions.create(**payload),
                          lambda resp: _reply(resp, self.where), self._key_of(payload), use_cache)

    def completion(self, prompt: str, *, max_tokens: int = 0, echo: bool = False, logprobs: int | None = None,
                   prompt_logprobs: int | None = None, temperature: float | None = None,
                   use_cache: bool = True) -> LLMReply:
        """One *text* completion (``/v1/completions``), the API that can score a prompt: with
        ``echo=True`` and ``logprobs=k`` the server returns the log-probability of every prompt token
        and its character offset (vLLM, llama.cpp, OpenAI's legacy models); ``prompt_logprobs=k`` asks
        for vLLM's own field instead. Either lands in ``reply.prompt_logprobs`` as
        ``[token, logprob or None, offset]`` (the first token has no context, hence no log-probability);
        None when the server sent neither (or sent something malformed)."""
        if not isinstance(prompt, str) or not prompt:
            raise LLMError("a text completion needs a non-empty prompt string")
        payload: dict[str, Any] = {"model": self.model, "prompt": prompt, "max_tokens": int(max_tokens),
                                   "temperature": self.temperature if temperature is None else float(temperature)}
        if echo:
            payload["echo"] = True
        if logprobs is not None:
            payload["logprobs"] = int(logprobs)
        extra = {} if prompt_logprobs is None else {"prompt_logprobs": int(prompt_logprobs)}
        key = self._key_of({**payload, **extra, "endpoint": "completions"})
        return self._send(payload, lambda sdk: sdk.completions.create(**payload, **({"extra_body": extra} if extra else {})),
                          lambda resp: _text_reply(resp, self.where, prompt if echo or extra else None),
                          key, use_cache)

    def _send(self, payload: dict[str, Any], create: Any, parse: Any, key: str, use_cache: bool) -> LLMReply:
        """The cached, budgeted, retried request every endpoint shares."""
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
            self._guard.start(self.timeout, self.max_reply_bytes)
            try:
                resp = create(sdk)
                break
            except Exception as exc:  # noqa: BLE001 - classified below
                if self._guard.too_large:
                    raise LLMError(f"LLM endpoint {self.where} (model {self.model!r}) sent a reply larger than "
                                   f"{self.max_reply_bytes / 2**20:g} MiB (max_reply_bytes)") from None
                retry, why, after = self._retryable(exc)
                if self._guard.expired:
                    retry, why = True, f"did not answer within the {self.timeout:g} s deadline"
                if not retry or attempt == self.max_retries:
                    tries = f" after {attempt + 1} attempt(s)" if attempt else ""
                    raise LLMError(f"LLM endpoint {self.where} (model {self.model!r}) {why}{tries}") from None
                self.n_retries += 1
                time.sleep(after if after is not None else min(30.0, wait))
                wait *= 2
            finally:
                self._guard.stop()
        reply = parse(resp)
        self.prompt_tokens += reply.prompt_tokens
        self.completion_tokens += reply.completion_tokens
        if use_cache:
            self._cache_put(key, payload, reply)
        return reply

    def complete(self, prompt: str, *, system: str | None = None, **kw: Any) -> str:
        """The text of one reply to a single user message (and an optional system message)."""
        msgs = ([{"role": "system", "content": system}] if system else []) + [{"role": "user", "content": prompt}]
        return self.chat(msgs, **kw).text


def _strip_userinfo(url: str) -> str:
    return re.sub(r"^([a-zA-Z][a-zA-Z0-9+.-]*://)[^/@]*@", r"\1", url)


def _userinfo_secrets(url: str | None) -> list[str]:
    m = re.match(r"^[a-zA-Z][a-zA-Z0-9+.-]*://([^/@]*)@", url or "")
    if not m:
        return []
    user, _, pw = m.group(1).partition(":")
    return [x for x in (pw, m.group(1)) if x]


def _retry_after(headers: Any) -> float | None:
    """A server's Retry-After in seconds, clamped to [0, 30]; None when absent or not a finite number."""
    try:
        v = float(headers.get("retry-after"))
    except (TypeError, ValueError, AttributeError):
        return None
    return min(30.0, max(0.0, v)) if math.isfinite(v) else None


def _private_dirs(root: Path, leaf: Path) -> None:
    """Create ``root`` and ``leaf`` (below it) as owner-only folders where whybox makes them."""
    for d in (root, leaf):
        if not d.exists():
            d.mkdir(parents=True, mode=0o700, exist_ok=True)
            os.chmod(d, 0o700)


def _is_count(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and v >= 0


def _cached_reply(d: Any) -> LLMReply | None:
    """A cache entry as whybox wrote it, or None (a miss) when it is anything else."""
    if not isinstance(d, dict) or not isinstance(d.get("text"), str):
        return None
    choices = d.get("choices", [d["text"]])
    if not isinstance(choices, list) or not choices or not all(isinstance(c, str) for c in choices):
        return None
    lp = _valid_logprobs(d.get("logprobs"))
    if d.get("logprobs") is not None and lp is None:
        return None
    pt, ct = d.get("prompt_tokens", 0), d.get("completion_tokens", 0)
    if not (_is_count(pt) and _is_count(ct)):
        return None
    plp = d.get("prompt_logprobs")
    if plp is not None and _valid_prompt_logprobs(plp) is None:
        return None
    return LLMReply(d["text"], lp, choices, pt, ct, cached=True, prompt_logprobs=plp)


def _logprob_or_none(v: Any) -> float | None | bool:
    """A token log-probability (rounding above 0 by up to 1e-6 is clamped to 0), None, or False if invalid."""
    if v is None:
        return None
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or v > 1e-6:
        return False
    return min(float(v), 0.0)


def _valid_prompt_logprobs(rows: Any) -> list[list[Any]] | None:
    """``[[token, logprob|None, offset], ...]`` with string tokens, offsets that never go back, and
    log-probabilities <= 0; None when anything is off."""
    if not isinstance(rows, list) or not rows:
        return None
    out, last = [], 0
    for r in rows:
        if not isinstance(r, (list, tuple)) or len(r) != 3 or not isinstance(r[0], str):
            return None
        lp, off = _logprob_or_none(r[1]), r[2]
        if lp is False or not _is_count(off) or off < last:
            return None
        last = off
        out.append([r[0], lp, off])
    return out


def _valid_logprobs(lp: Any) -> list[dict[str, float]] | None:
    if not isinstance(lp, list):
        return None
    out = []
    for tok in lp:
        if not isinstance(tok, dict) or not tok:
            return None
        d = {}
        for k, v in tok.items():
            if not isinstance(k, str) or isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or v > 0:
                return None
            d[k] = float(v)
        out.append(d)
    return out


class _RequestGuard:
    """Per-thread deadline and byte budget of the request in flight (read by the network layer)."""

    def __init__(self) -> None:
        self._local = threading.local()

    def start(self, seconds: float, max_bytes: int) -> None:
        loc = self._local
        loc.deadline, loc.max_bytes, loc.read = time.monotonic() + seconds, max_bytes, 0
        loc.expired = loc.too_large = False

    def stop(self) -> None:
        self._local.deadline = None

    @property
    def expired(self) -> bool:
        return getattr(self._local, "expired", False)

    @property
    def too_large(self) -> bool:
        return getattr(self._local, "too_large", False)

    def clamp(self, timeout: float | None, core: Any) -> float | None:
        """The timeout for one network operation: at most the time left; past the deadline, raise."""
        deadline = getattr(self._local, "deadline", None)
        if deadline is None:
            return timeout
        left = deadline - time.monotonic()
        if left <= 0:
            self._local.expired = True
            raise core.ReadTimeout("the request's total deadline passed")
        return left if timeout is None else min(timeout, left)

    def count(self, n: int, core: Any) -> None:
        if getattr(self._local, "deadline", None) is None:
            return
        self._local.read += n
        if self._local.read > self._local.max_bytes:
            self._local.too_large = True
            raise core.ReadError("the reply is larger than max_reply_bytes")


class _GuardedStream:
    def __init__(self, stream: Any, guard: _RequestGuard, core: Any):
        self._s, self._g, self._core = stream, guard, core

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        data = self._s.read(max_bytes, self._g.clamp(timeout, self._core))
        self._g.count(len(data), self._core)
        return data

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self._s.write(buffer, self._g.clamp(timeout, self._core))

    def close(self) -> None:
        self._s.close()

    def start_tls(self, *a: Any, **kw: Any) -> "_GuardedStream":
        return _GuardedStream(self._s.start_tls(*a, **kw), self._g, self._core)

    def get_extra_info(self, info: str) -> Any:
        return self._s.get_extra_info(info)


class _GuardedBackend:
    """httpcore's network backend with every read and write bounded by the request's deadline."""

    def __init__(self, backend: Any, guard: _RequestGuard, core: Any):
        self._b, self._g, self._core = backend, guard, core

    def connect_tcp(self, host: str, port: int, timeout: float | None = None, **kw: Any) -> _GuardedStream:
        return _GuardedStream(self._b.connect_tcp(host, port, self._g.clamp(timeout, self._core), **kw), self._g,
                              self._core)

    def connect_unix_socket(self, path: str, timeout: float | None = None, **kw: Any) -> _GuardedStream:
        return _GuardedStream(self._b.connect_unix_socket(path, self._g.clamp(timeout, self._core), **kw), self._g,
                              self._core)

    def sleep(self, seconds: float) -> None:
        self._b.sleep(seconds)


def _guarded_http_client(guard: _RequestGuard, timeout: float) -> Any:
    """The HTTP client the openai SDK uses (httpx, or httpx2 for newer SDKs), with the deadline and
    reply-size guard in its connection pool. None (the SDK's default) if that pool cannot be reached."""
    try:
        base = importlib.import_module("openai._base_client")
        hx = getattr(base, "httpx2", None) or getattr(base, "httpx")
        core = importlib.import_module("httpcore2" if hx.__name__ == "httpx2" else "httpcore")
        transport = hx.HTTPTransport()
        pool = getattr(transport, "_pool", None)
        if not isinstance(pool, core.ConnectionPool) or not hasattr(pool, "_network_backend"):
            return None
        pool._network_backend = _GuardedBackend(pool._network_backend, guard, core)
        return hx.Client(transport=transport, timeout=timeout, follow_redirects=True)
    except (ImportError, AttributeError, TypeError):
        return None


def _short(s: str, n: int = 160) -> str:
    s = " ".join(str(s).split())
    return s if len(s) <= n else s[:n] + "..."


def _reply(resp: Any, where: str) -> LLMReply:
    choices = getattr(resp, "choices", None)
    if not choices or not isinstance(choices, (list, tuple)):
        raise LLMError(f"LLM endpoint {where} returned no choices")
    texts = []
    for c in choices:
        msg = getattr(c, "message", None)
        content = getattr(msg, "content", None) if msg is not None else None
        texts.append(content if isinstance(content, str) else "")
    return LLMReply(texts[0], _sdk_logprobs(getattr(choices[0], "logprobs", None)), texts,
                    *_usage(getattr(resp, "usage", None)))


def _text_reply(resp: Any, where: str, prompt: str | None) -> LLMReply:
    """A ``/v1/completions`` reply; with ``prompt`` (echo or prompt_logprobs asked), its prompt
    log-probabilities from the legacy ``logprobs`` (tokens, token_logprobs, text_offset) or vLLM's
    ``prompt_logprobs`` (per token None or {token id: {logprob, decoded_token}}, offsets rebuilt from
    the decoded tokens, which must spell the prompt)."""
    choices = getattr(resp, "choices", None)
    if not choices or not isinstance(choices, (list, tuple)):
        raise LLMError(f"LLM endpoint {where} returned no choices")
    texts = [t if isinstance(t := getattr(c, "text", None), str) else "" for c in choices]
    plp = None
    if prompt is not None:
        plp = _legacy_prompt_logprobs(getattr(choices[0], "logprobs", None))
        if plp is None:
            plp = _vllm_prompt_logprobs(getattr(choices[0], "prompt_logprobs", None), prompt)
    return LLMReply(texts[0], None, texts, *_usage(getattr(resp, "usage", None)), prompt_logprobs=plp)


def _field(obj: Any, name: str) -> Any:
    return obj.get(name) if isinstance(obj, dict) else getattr(obj, name, None)


def _legacy_prompt_logprobs(lp: Any) -> list[list[Any]] | None:
    if lp is None:
        return None
    toks, lps, offs = _field(lp, "tokens"), _field(lp, "token_logprobs"), _field(lp, "text_offset")
    if not all(isinstance(v, (list, tuple)) for v in (toks, lps, offs)) or not (len(toks) == len(lps) == len(offs)):
        return None
    return _valid_prompt_logprobs([[t, v, o] for t, v, o in zip(toks, lps, offs)])


def _vllm_prompt_logprobs(rows: Any, prompt: str) -> list[list[Any]] | None:
    if not isinstance(rows, (list, tuple)) or not rows:
        return None
    out, off = [], 0
    for i, r in enumerate(rows):
        if r is None:
            if i:
                return None
            out.append(None)
            continue
        if not isinstance(r, dict) or len(r) != 1:    # prompt_logprobs=0: the actual token only
            return None
        (entry,) = r.values()
        tok, lp = _field(entry, "decoded_token"), _field(entry, "logprob")
        if not isinstance(tok, str):
            return None
        out.append([tok, lp])
    first_scored = False
    if out[0] is None:
        # vLLM never scores the first prompt token and sends None for it: its text is what the prompt
        # has before the text the other decoded tokens spell. Nothing before them: the first token was
        # a BOS (decoded as ""), so the next token is conditioned on it and keeps its log-probability.
        rest = "".join(t for t, _ in out[1:])
        if not prompt.endswith(rest):
            return None
        head = prompt[:len(prompt) - len(rest)]
        if head:
            out[0] = [head, None]
        else:
            out = out[1:]
            first_scored = True
        if not out:
            return None
    rebuilt = []
    for tok, lp in out:
        rebuilt.append([tok, lp, off])
        off += len(tok)
    if "".join(t for t, _, _ in rebuilt) != prompt:
        return None
    if not first_scored:
        rebuilt[0][1] = None
    return _valid_prompt_logprobs(rebuilt)


def _usage(usage: Any) -> tuple[int, int]:
    """(prompt, completion) token counts; a missing or malformed count is 0."""
    out = []
    for name in ("prompt_tokens", "completion_tokens"):
        v = getattr(usage, name, None) if usage is not None else None
        if isinstance(usage, dict):
            v = usage.get(name)
        out.append(int(v) if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) and v >= 0 else 0)
    return out[0], out[1]


def _sdk_logprobs(raw: Any) -> list[dict[str, float]] | None:
    """Per generated token {token: logprob} of the top tokens; None when the server sent none or sent
    something malformed (callers then treat the reply as having no log-probabilities)."""
    content = getattr(raw, "content", None) if raw is not None else None
    if not content or not isinstance(content, (list, tuple)):
        return None
    out = []
    for tok in content:
        d: dict[str, Any] = {}
        for t in (getattr(tok, "top_logprobs", None) or []):
            d[getattr(t, "token", None)] = getattr(t, "logprob", None)
        d.setdefault(getattr(tok, "token", None), getattr(tok, "logprob", None))
        out.append(d)
    return _valid_logprobs(out)
