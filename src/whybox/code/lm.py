"""Causal language models as scorers of text: the log-probability a model gives every actual token of
a string under teacher forcing, with the token's character offsets, and the log-probability of a
continuation given a prompt.

* :class:`HFCausalLM`: any local Hugging Face causal LM (``AutoModelForCausalLM``) with its *fast*
  tokenizer (character offsets), batched, on CPU or GPU. The model's BOS token (else its EOS
  token, as GPT-2 uses it) is put in front so the first token is scored too; a tokenizer with
  neither leaves the first token unscored. Texts longer than the context are scored in windows
  that overlap by half, every token scored once, with at least half a window of context.
* :class:`EndpointLM`: any OpenAI-compatible ``/v1/completions`` endpoint that returns prompt
  log-probabilities (``echo=True, logprobs=1, max_tokens=0``, or vLLM's ``prompt_logprobs=0``),
  through whybox's one :class:`~whybox.llm.LLMClient` (cache, budget, retries). The server's first
  token has no log-probability and is left unscored.

Both count the texts they score (``n_texts``) and may be given a ``budget`` of texts.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

from whybox.errors import BudgetError, InputError, ModelError


@dataclass
class TokenScores:
    """The scored tokens of one text: ``tokens[i]`` (its text), ``offsets[i] = (start, end)`` in
    characters, ``logprobs[i]`` = log p(token i | the tokens before it). ``n_unscored`` tokens at the
    start (no context) are not included."""

    text: str
    tokens: list[str]
    offsets: np.ndarray      # (n, 2) int
    logprobs: np.ndarray     # (n,) float, <= 0
    n_unscored: int = 0

    @property
    def probs(self) -> np.ndarray:
        return np.exp(self.logprobs)

    def __len__(self) -> int:
        return len(self.tokens)


class CausalLM:
    """What whybox needs of a causal LM: :meth:`score` and :meth:`continuation_logprob`."""

    name = "causal LM"

    def __init__(self, budget: int | None = None):
        if budget is not None and (isinstance(budget, bool) or not isinstance(budget, int) or budget < 1):
            raise InputError(f"budget must be a positive number of texts, got {budget!r}")
        self.budget = budget
        self.n_texts = 0

    def _spend(self, n: int, what: str) -> None:
        if self.budget is not None and self.n_texts + n > self.budget:
            raise BudgetError(f"{what} needs {n:,} texts scored but the budget has {self.budget - self.n_texts:,} "
                              f"left (budget={self.budget:,})")
        self.n_texts += n

    def score(self, texts: Sequence[str]) -> list[TokenScores]:   # pragma: no cover - overridden
        raise NotImplementedError

    def continuation_logprob(self, prompts: Sequence[str], continuation: str) -> np.ndarray:  # pragma: no cover
        raise NotImplementedError


def _check_texts(texts: Any, name: str = "texts") -> list[str]:
    from whybox.models.text import check_texts

    items = check_texts(texts, name=name)
    for i, t in enumerate(items):
        if not t:
            raise InputError(f"{name}[{i}] is empty: there is nothing to score")
    return items


class HFCausalLM(CausalLM):
    """A local Hugging Face causal LM and its fast tokenizer.

    Parameters
    ----------
    model : a ``transformers`` causal LM (``AutoModelForCausalLM``), or a folder to load one from
        (``from_pretrained(path, local_files_only=True)``: safetensors only, unless ``trust_pickle``).
    tokenizer : its tokenizer (a *fast* one: whybox needs character offsets); None loads it from the
        model's folder.
    batch_size : texts (windows) per forward pass; device : "cpu", "cuda", ... (None: the model's).
    max_length : tokens per window (None: the model's context size).
    """

    def __init__(self, model: Any, tokenizer: Any = None, *, batch_size: int = 8, device: str | None = None,
                 max_length: int | None = None, budget: int | None = None, trust_pickle: bool = False):
        super().__init__(budget)
        try:
            import torch
        except ImportError:
            raise InputError("HFCausalLM needs torch and transformers: pip install 'whybox[code]'") from None
        self.torch = torch
        if isinstance(model, (str, bytes)) or hasattr(model, "__fspath__"):
            model, tokenizer = _load_local(model, tokenizer, trust_pickle)
        if not callable(model) or not hasattr(model, "config"):
            raise InputError(f"model must be a transformers causal LM or a folder, got {type(model).__name__}")
        if tokenizer is None:
            raise InputError("a tokenizer is needed (the model's own, a fast one)")
        if not getattr(tokenizer, "is_fast", False):
            raise InputError(f"the tokenizer {type(tokenizer).__name__} gives no character offsets: whybox needs a "
                             "fast tokenizer (transformers' *TokenizerFast, or tokenizers.Tokenizer wrapped in "
                             "PreTrainedTokenizerFast)")
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise InputError(f"batch_size must be a positive integer, got {batch_size!r}")
        self.model, self.tokenizer, self.batch_size = model.eval(), tokenizer, batch_size
        first = next(iter(model.parameters()), None) if hasattr(model, "parameters") else None
        self.device = torch.device(device) if device is not None else (first.device if first is not None
                                                                       else torch.device("cpu"))
        if device is not None:
            self.model.to(self.device)
        ctx = max_length or getattr(model.config, "n_positions", None) or getattr(model.config,
                                                                                 "max_position_embeddings", None)
        if not isinstance(ctx, int) or ctx < 2:
            raise InputError(f"max_length must be an integer >= 2 (the model's context), got {ctx!r}")
        self.max_length = ctx
        self.prefix = [i for i in (tokenizer.bos_token_id if tokenizer.bos_token_id is not None
                                   else tokenizer.eos_token_id,) if i is not None]
        self.pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else (self.prefix or [0])[0]
        self.name = getattr(model.config, "_name_or_path", "") or type(model).__name__

    def _encode(self, text: str) -> tuple[list[int], list[tuple[int, int]]]:
        enc = self.tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
        return list(enc["input_ids"]), [(int(s), int(e)) for s, e in enc["offset_mapping"]]

    def _forward(self, windows: list[list[int]]) -> list[np.ndarray]:
        """Per window, log p(ids[j] | ids[:j]) for j = 1..len-1 (float64)."""
        torch = self.torch
        out: list[np.ndarray] = [np.empty(0)] * len(windows)
        order = sorted(range(len(windows)), key=lambda i: -len(windows[i]))
        for s in range(0, len(order), self.batch_size):
            part = order[s:s + self.batch_size]
            L = max(len(windows[i]) for i in part)
            ids = torch.full((len(part), L), self.pad_id, dtype=torch.long)
            att = torch.zeros((len(part), L), dtype=torch.long)
            for r, i in enumerate(part):
                ids[r, :len(windows[i])] = torch.tensor(windows[i])
                att[r, :len(windows[i])] = 1
            with torch.inference_mode():
                res = self.model(input_ids=ids.to(self.device), attention_mask=att.to(self.device))
                logits = getattr(res, "logits", None)
                if logits is None:
                    raise ModelError(f"{self.name} returned no logits: it is not a causal LM")
                logits = logits[:, :-1].float()       # log p = logit - logsumexp: no second (B, L, V) tensor
                nxt = ids[:, 1:].to(self.device)[..., None]
                got = (logits.gather(-1, nxt)[..., 0] - torch.logsumexp(logits, dim=-1)).double().cpu().numpy()
            for r, i in enumerate(part):
                out[i] = got[r, :len(windows[i]) - 1]
        return out

    def _plan(self, ids: list[int]) -> list[tuple[list[int], int, int]]:
        """Windows over prefix + ids: (window ids, first scored position in the window, its position in ids)."""
        full = self.prefix + ids
        first = 1 if not self.prefix else len(self.prefix)       # positions of `full` that get scored from
        L, plans, done = self.max_length, [], first
        start = 0
        while done < len(full):
            end = min(start + L, len(full))
            plans.append((full[start:end], done - start, done - len(self.prefix)))
            done = end
            start = max(0, end - L // 2)
        return plans

    def score(self, texts: Sequence[str]) -> list[TokenScores]:
        texts = _check_texts(texts)
        self._spend(len(texts), "scoring")
        encs = [self._encode(t) for t in texts]
        plans = [self._plan(ids) for ids, _ in encs]
        flat = [w for p in plans for w, _, _ in p]
        lps = iter(self._forward(flat))
        out = []
        for t, (ids, offs), plan in zip(texts, encs, plans):
            vals = np.full(len(ids), np.nan)
            for w, j0, pos in plan:
                got = next(lps)[j0 - 1:]
                vals[pos:pos + len(got)] = got
            keep = ~np.isnan(vals)
            n_un = int((~keep).sum())
            toks = [t[s:e] for s, e in offs]
            out.append(TokenScores(t, [x for x, k in zip(toks, keep) if k],
                                   np.asarray(offs, dtype=int).reshape(-1, 2)[keep], vals[keep], n_un))
        return out

    def continuation_logprob(self, prompts: Sequence[str], continuation: str) -> np.ndarray:
        """log p(continuation | prompt) for every prompt (the continuation tokenised on its own and put
        after the prompt's tokens); a prompt too long for the context loses tokens from its start."""
        prompts = _check_texts(prompts, "prompts")
        (cont,) = _check_texts([continuation], "continuation")
        self._spend(len(prompts), "scoring continuations")
        cids, _ = self._encode(cont)
        if len(cids) + len(self.prefix) >= self.max_length:
            raise InputError(f"the continuation has {len(cids)} tokens: too long for a {self.max_length}-token context")
        windows = []
        for p in prompts:
            pids, _ = self._encode(p)
            pids = (self.prefix + pids)[-(self.max_length - len(cids)):]
            windows.append(pids + cids)
        lps = self._forward(windows)
        return np.array([lp[-len(cids):].sum() for lp in lps])


def _load_local(path: Any, tokenizer: Any, trust_pickle: bool) -> tuple[Any, Any]:
    import os

    try:
        from transformers import AutoModelForCausalLM, AutoTokenizer
    except ImportError:
        raise InputError("loading a model folder needs transformers: pip install 'whybox[code]'") from None
    path = os.fspath(path)
    if not os.path.isdir(path):
        raise InputError(f"model folder {path!r} does not exist (whybox loads local models only, never from a hub)")
    has_st = any(f.endswith(".safetensors") for f in os.listdir(path))
    if not has_st and not trust_pickle:
        raise InputError(f"{path} has no .safetensors weights; its pickled weights (pytorch_model.bin) run code "
                         "when loaded: pass trust_pickle=True (CLI --trust-pickle) only for a folder you trust")
    try:
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()
        model = AutoModelForCausalLM.from_pretrained(path, local_files_only=True, use_safetensors=has_st)
        tok = tokenizer or AutoTokenizer.from_pretrained(path, local_files_only=True)
    except (OSError, ValueError, KeyError) as exc:
        raise InputError(f"could not load a causal LM from {path}: {str(exc).splitlines()[0]}") from None
    return model, tok


class EndpointLM(CausalLM):
    """An OpenAI-compatible text-completions endpoint that scores prompts.

    Parameters
    ----------
    client : a :class:`whybox.llm.LLMClient` (its cache, budget and retries apply).
    mode : "echo" (``echo=True, logprobs=1, max_tokens=0``; vLLM, llama.cpp and OpenAI's legacy
        completions) or "prompt_logprobs" (vLLM's ``prompt_logprobs=0``).
    """

    MODES = ("echo", "prompt_logprobs")

    def __init__(self, client: Any, *, mode: str = "echo", budget: int | None = None):
        super().__init__(budget)
        from whybox.llm.client import LLMClient

        if not isinstance(client, LLMClient):
            raise InputError(f"client must be a whybox.llm.LLMClient, got {type(client).__name__}")
        if mode not in self.MODES:
            raise InputError(f"mode must be one of {self.MODES}, got {mode!r}")
        self.client, self.mode = client, mode
        self.name = f"{client.model} at {client.where}"

    def _rows(self, text: str) -> list[list[Any]]:
        from whybox.llm.client import LLMError

        kw = {"echo": True, "logprobs": 1} if self.mode == "echo" else {"prompt_logprobs": 0}
        reply = self.client.completion(text, max_tokens=0, **kw)
        rows = reply.prompt_logprobs
        if not rows:
            how = "echo=True with logprobs" if self.mode == "echo" else "prompt_logprobs"
            raise LLMError(f"the endpoint {self.client.where} (model {self.client.model!r}) returned no usable prompt "
                           f"log-probabilities for {how} (missing or malformed); it cannot score code. vLLM and "
                           "llama.cpp servers can; chat-only APIs cannot")
        rows = [r for r in rows if r[2] < len(text)]           # drop generated tokens, if any
        for r in rows:
            tok = r[0]
            if tok.isascii() and tok.strip() and text[r[2]:r[2] + len(tok)] != tok:
                raise LLMError(f"the endpoint's token {r[0]!r} at offset {r[2]} is not in the text there: "
                               "its offsets are not character offsets of the prompt")
        return rows

    def score(self, texts: Sequence[str]) -> list[TokenScores]:
        texts = _check_texts(texts)
        self._spend(len(texts), "scoring")
        out = []
        for t in texts:
            rows = self._rows(t)
            starts = [r[2] for r in rows] + [len(t)]
            keep = [i for i, r in enumerate(rows) if r[1] is not None]
            offs = np.array([[starts[i], max(starts[i + 1], starts[i])] for i in keep], dtype=int).reshape(-1, 2)
            out.append(TokenScores(t, [t[s:e] for s, e in offs], offs,
                                   np.array([rows[i][1] for i in keep], dtype=float), len(rows) - len(keep)))
        return out

    def continuation_logprob(self, prompts: Sequence[str], continuation: str) -> np.ndarray:
        """log p(continuation | prompt): the sum over the tokens of prompt + continuation that end
        after the prompt (a token straddling the boundary counts with the continuation)."""
        prompts = _check_texts(prompts, "prompts")
        (cont,) = _check_texts([continuation], "continuation")
        self._spend(len(prompts), "scoring continuations")
        out = []
        for p in prompts:
            full = p + cont
            rows = self._rows(full)
            starts = [r[2] for r in rows] + [len(full)]
            tot = 0.0
            for i, r in enumerate(rows):
                if starts[i + 1] > len(p):
                    if r[1] is None:
                        raise InputError("the continuation starts at the first token: nothing to condition on")
                    tot += r[1]
            out.append(tot)
        return np.array(out)


def as_causal_lm(model: Any, tokenizer: Any = None, **kw: Any) -> CausalLM:
    """A :class:`CausalLM` from a CausalLM, an LLMClient (endpoint), a transformers model (+ tokenizer)
    or a local model folder."""
    if isinstance(model, CausalLM):
        return model
    from whybox.llm.client import LLMClient

    if isinstance(model, LLMClient):
        return EndpointLM(model, **kw)
    return HFCausalLM(model, tokenizer, **kw)


def check_finite(ts: TokenScores) -> None:
    if ts.logprobs.size and not np.isfinite(ts.logprobs).all():
        bad = int(np.flatnonzero(~np.isfinite(ts.logprobs))[0])
        raise ModelError(f"the model gave token {bad} ({ts.tokens[bad]!r}) a log-probability of "
                         f"{ts.logprobs[bad]}: not a finite number")

