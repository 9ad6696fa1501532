"""A small code LM trained from scratch, offline: a byte-level BPE tokenizer (``tokenizers``) and a
GPT-2-style model built from a config (``transformers``), trained on a corpus of code (e.g.
:func:`whybox.datasets.stdlib_corpus`). Nothing is fetched from a hub.

``bench/code.py`` trains the benchmark's model with this (minutes); the tests train a tiny one for
seconds. Same corpus, sizes and seed: the same tokenizer and the same weights (on one machine and
torch version; CPU kernels are deterministic here, GPU kernels need not be).
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

from whybox.errors import InputError

EOS = "<|endoftext|>"


def _need():
    import importlib.util

    if any(importlib.util.find_spec(m) is None for m in ("tokenizers", "torch", "transformers")):
        raise InputError("training a code LM needs torch, transformers and tokenizers: pip install 'whybox[code]'")


def train_tokenizer(texts: Sequence[str], *, vocab_size: int = 4096, min_frequency: int = 2) -> Any:
    """A byte-level BPE tokenizer trained on ``texts``, as a transformers fast tokenizer whose BOS,
    EOS and PAD token is ``<|endoftext|>`` (as GPT-2's)."""
    _need()
    from tokenizers import ByteLevelBPETokenizer
    from transformers import PreTrainedTokenizerFast

    if isinstance(vocab_size, bool) or not isinstance(vocab_size, int) or vocab_size < 300:
        raise InputError(f"vocab_size must be an integer >= 300 (256 bytes + merges), got {vocab_size!r}")
    bpe = ByteLevelBPETokenizer(add_prefix_space=False, trim_offsets=False)
    bpe.train_from_iterator(list(texts), vocab_size=vocab_size, min_frequency=min_frequency, special_tokens=[EOS],
                            show_progress=False)
    return PreTrainedTokenizerFast(tokenizer_object=bpe._tokenizer, bos_token=EOS, eos_token=EOS, pad_token=EOS)


def small_gpt2(tokenizer: Any, *, n_layer: int = 4, n_embd: int = 256, n_head: int = 4, n_positions: int = 256,
               seed: int = 0) -> Any:
    """A randomly initialised GPT-2-style causal LM for ``tokenizer`` (seeded)."""
    _need()
    import torch
    from transformers import GPT2Config, GPT2LMHeadModel

    torch.manual_seed(seed)
    cfg = GPT2Config(vocab_size=len(tokenizer), n_positions=n_positions, n_embd=n_embd, n_layer=n_layer,
                     n_head=n_head, bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
                     pad_token_id=tokenizer.pad_token_id, resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0)
    return GPT2LMHeadModel(cfg)


@dataclass
class TrainLog:
    steps: int
    tokens: int
    seconds: float
    losses: list[float]       # mean training loss per logged interval

    @property
    def final_loss(self) -> float:
        return self.losses[-1] if self.losses else math.nan


def train_lm(model: Any, tokenizer: Any, texts: Sequence[str], *, steps: int | None = None,
             seconds: float | None = None, batch_size: int = 16, lr: float = 1e-3, warmup: int = 100,
             seed: int = 0, log_every: int = 50, device: str | None = None, callback: Any = None) -> TrainLog:
    """Train ``model`` (in place) on ``texts`` joined by EOS and cut into blocks of the model's
    context: AdamW, linear warm-up then cosine decay over ``steps``; stops early after ``seconds``.
    ``callback(step, model)`` is called every ``log_every`` steps (e.g. to keep a checkpoint)."""
    _need()
    import torch

    if steps is None and seconds is None:
        raise InputError("give steps= or seconds= (or both)")
    total = int(steps) if steps is not None else 10 ** 9
    if total < 1:
        raise InputError(f"steps must be a positive integer, got {steps!r}")
    L = int(model.config.n_positions)
    ids: list[int] = []
    for t in texts:
        ids.extend(tokenizer(t, add_special_tokens=False)["input_ids"])
        ids.append(tokenizer.eos_token_id)
    n_blocks = (len(ids) - 1) // L
    if n_blocks < 1:
        raise InputError(f"the corpus has {len(ids)} tokens: fewer than one block of {L}")
    data = torch.tensor(ids[:n_blocks * L + 1])
    dev = torch.device(device) if device else torch.device("cpu")
    model.to(dev).train()
    opt = torch.optim.AdamW(model.parameters(), lr=lr, betas=(0.9, 0.95), weight_decay=0.1)
    sched_total = total if steps is not None else 10 ** 6

    def lr_at(s: int) -> float:
        if s < warmup:
            return (s + 1) / warmup
        return 0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(1.0, (s - warmup) / max(1, sched_total - warmup))))

    sched = torch.optim.lr_scheduler.LambdaLR(opt, lr_at)
    rng = np.random.default_rng(seed)
    t0, losses, run, done = time.perf_counter(), [], [], 0
    torch.manual_seed(seed)
    for step in range(total):
        starts = rng.integers(0, len(data) - L - 1, size=batch_size)
        x = torch.stack([data[s:s + L] for s in starts]).to(dev)
        loss = model(input_ids=x, attention_mask=torch.ones_like(x), labels=x).loss
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
        run.append(loss.item())
        done = step + 1
        if done % log_every == 0:
            losses.append(float(np.mean(run)))
            run = []
            if callback is not None:
                callback(done, model)
        if seconds is not None and time.perf_counter() - t0 > seconds:
            break
    if run:
        losses.append(float(np.mean(run)))
    model.eval()
    return TrainLog(done, done * batch_size * L, time.perf_counter() - t0, losses)


def tiny_code_lm(*, seed: int = 0, steps: int = 60, n_files: int = 12) -> tuple[Any, Any]:
    """A tiny model and tokenizer trained for a few seconds on a few standard-library files: real
    mechanics, weak predictions. For tests and trying the API; ``bench/code.py`` trains a real one."""
    from whybox.datasets import stdlib_corpus

    texts = [c for _, c in stdlib_corpus("train", max_files=n_files, max_chars=20_000)]
    tok = train_tokenizer(texts, vocab_size=512)
    model = small_gpt2(tok, n_layer=1, n_embd=64, n_head=2, n_positions=128, seed=seed)
    if steps:
        train_lm(model, tok, texts, steps=steps, batch_size=8, lr=3e-3, warmup=10, seed=seed, log_every=10 ** 9)
    return model, tok
