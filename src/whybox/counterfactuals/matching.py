"""Matching trained the way Gat et al. (2023) train it: a per-concept encoder fine-tuned with an
InfoNCE loss, whose nearest neighbours approximate counterfactuals.

For concept C, texts close in the space should share every concept but C:

* positives: counterfactual edits of the same review that change only C (human edits from CEBaB
  train_inclusive; optionally LLM edits through the one :class:`whybox.llm.LLMClient`, via
  :class:`whybox.counterfactuals.text.LLMEditor`);
* weak positives: other reviews with identical labels of the other concepts (from the encoder half
  of train_exclusive), weighted ``weak_weight``;
* hard negatives: edits of the same review that change another concept; the other texts of the
  batch are in-batch negatives.

The encoder is all-MiniLM-L6-v2 with its top ``train_layers`` layers trained and a linear projection
to ``dim``; training stops after ``epochs`` passes over the positive pairs, ``max_steps`` optimiser
steps (when given) or ``max_seconds``, whichever comes first. A time cap makes the result depend on
the machine's speed and load; ``max_steps`` does not, so a step budget is the reproducible choice. At
inference, f is averaged over the Top-K candidates with C = v' (the candidate half of
train_exclusive) and f(x) subtracted, as :class:`~whybox.counterfactuals.text.ConceptMatcher`
does. Nothing falls back silently: matching before ``fit`` is an error.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np
import pandas as pd

from whybox.errors import InputError


def _other_keys(df: pd.DataFrame, concept: str) -> np.ndarray:
    from whybox.counterfactuals.cebab import CONCEPTS

    others = [c for c in CONCEPTS if c != concept]
    return df[others].astype(object).where(df[others].notna(), "<none>").agg("|".join, axis=1).to_numpy()


def weak_pairs(df: pd.DataFrame, concept: str, rng: np.random.Generator) -> np.ndarray:
    """(anchor, weak positive) row positions: two different reviews whose labels of every concept but
    ``concept`` are identical (missing labels match missing)."""
    keys = _other_keys(df, concept)
    groups: dict[str, list[int]] = {}
    for i, k in enumerate(keys):
        groups.setdefault(k, []).append(i)
    out = []
    for i, k in enumerate(keys):
        g = [j for j in groups[k] if j != i]
        if g:
            out.append((i, g[int(rng.integers(len(g)))]))
    return np.array(out, dtype=np.intp).reshape(-1, 2)


@dataclass
class InfoNCEMatcher:
    """Concept-C matching space trained with InfoNCE (see the module docstring)."""

    concept: str
    k: int = 10
    dim: int = 128
    train_layers: int = 2
    temperature: float = 0.05
    weak_weight: float = 0.5
    epochs: float = 1.0
    max_seconds: float = 600.0
    max_steps: int | None = None
    batch_size: int = 32
    lr: float = 3e-5
    head_lr: float = 1e-3
    max_length: int = 128
    seed: int = 0
    _enc: Any = field(default=None, repr=False)
    _proj: Any = field(default=None, repr=False)

    def __post_init__(self) -> None:
        from whybox.counterfactuals.cebab import CONCEPTS

        if self.concept not in CONCEPTS:
            raise InputError(f"unknown concept {self.concept!r}; CEBaB concepts are {list(CONCEPTS)}")
        for name in ("k", "dim", "train_layers", "batch_size", "max_steps"):
            v = getattr(self, name)
            if name == "max_steps" and v is None:            # no step budget: epochs and the time cap
                continue
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise InputError(f"{name} must be a positive integer{' or None' if name == 'max_steps' else ''}, "
                                 f"got {v!r}")
        if not 0 < self.temperature <= 10:
            raise InputError(f"temperature must be in (0, 10], got {self.temperature!r}")

    @property
    def fitted(self) -> bool:
        return self._proj is not None

    def _check(self) -> None:
        if not self.fitted:
            raise InputError(f"the InfoNCE matcher for {self.concept!r} is not fitted: call fit(...) first "
                             "(or load a cached one with load)")

    def _tok(self, texts: Sequence[str]):
        return self._tokenizer(list(texts), padding=True, truncation=True, max_length=self.max_length,
                               return_tensors="pt")

    def _forward(self, texts: Sequence[str]):
        import torch

        b = self._tok(texts)
        h = self._enc(**b).last_hidden_state
        m = b["attention_mask"].unsqueeze(-1).to(h.dtype)
        v = (h * m).sum(1) / m.sum(1).clamp(min=1e-9)
        return torch.nn.functional.normalize(self._proj(v), dim=1)

    def fit(self, train_inclusive: pd.DataFrame, encoder_half: pd.DataFrame | None = None, *,
            llm_edits: Sequence[tuple[str, str]] = (), log: Any = None) -> "InfoNCEMatcher":
        """Train on CEBaB train_inclusive (edits), the encoder half of train_exclusive (weak positives)
        and optional (text, LLM edit changing only C) pairs."""
        import torch

        from whybox.counterfactuals.cebab import CONCEPTS
        from whybox.counterfactuals.text import _contrastive_triplets
        from whybox.models.minilm import load_minilm

        inc = train_inclusive.reset_index(drop=True)
        rng = np.random.default_rng(self.seed)
        trip = _contrastive_triplets(inc, self.concept, rng, [c for c in CONCEPTS if c != self.concept])
        if len(trip) == 0 and not llm_edits:
            raise InputError(f"no positive pairs for concept {self.concept!r}: train_inclusive needs edits of the "
                             "same review that change only this concept")
        texts = inc["text"].tolist()
        group = pd.factorize(inc["original_id"])[0]
        weak_texts: list[str] = []
        wp = np.zeros((0, 2), np.intp)
        if encoder_half is not None and len(encoder_half):
            eh = encoder_half.reset_index(drop=True)
            weak_texts = eh["text"].tolist()
            wp = weak_pairs(eh, self.concept, rng)
            wkey = pd.factorize(_other_keys(eh, self.concept))[0]
        llm = [(a, b) for a, b in llm_edits if isinstance(a, str) and isinstance(b, str) and a != b]
        self._enc, self._tokenizer = load_minilm()
        for p in self._enc.parameters():
            p.requires_grad_(False)
        layers = self._enc.encoder.layer
        for layer in layers[len(layers) - min(self.train_layers, len(layers)):]:
            for p in layer.parameters():
                p.requires_grad_(True)
        hidden = self._enc.config.hidden_size
        t0 = time.perf_counter()
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(self.seed)
            self._proj = torch.nn.Linear(hidden, self.dim)
            opt = torch.optim.AdamW([{"params": [p for p in self._enc.parameters() if p.requires_grad], "lr": self.lr},
                                     {"params": self._proj.parameters(), "lr": self.head_lr}], weight_decay=0.01)
            self._enc.train()
            B = self.batch_size
            n_pos = len(trip) + len(llm)
            steps = max(1, int(round(self.epochs * n_pos / B)))
            if self.max_steps is not None:
                steps = min(steps, self.max_steps)
            step, losses = 0, []
            tau = self.temperature
            while step < steps and time.perf_counter() - t0 < self.max_seconds:
                order = rng.permutation(n_pos)
                for s in range(0, n_pos, B):
                    if step >= steps or time.perf_counter() - t0 >= self.max_seconds:
                        break
                    idx = order[s:s + B]
                    anchors, pos, neg, ga, gn, neg_of = [], [], [], [], [], []
                    for i in idx:
                        if i < len(trip):
                            a, p, q = trip[i]
                            neg_of.append((len(anchors), len(neg)))
                            anchors.append(texts[a])
                            pos.append(texts[p])
                            neg.append(texts[q])
                            ga.append(group[a])
                            gn.append(group[q])
                        else:
                            a, p = llm[i - len(trip)]
                            anchors.append(a)
                            pos.append(p)
                            ga.append(-1 - i)
                    A = self._forward(anchors)
                    P = self._forward(pos + neg)
                    logits = A @ P.T / tau                   # candidates: every positive and hard negative
                    # another anchor's texts from the same review may be this anchor's own edit: not a negative
                    ga_t = torch.as_tensor(np.asarray(ga))
                    gc = torch.as_tensor(np.asarray(ga + gn))
                    same = ga_t[:, None] == gc[None, :]
                    own = torch.zeros_like(same)
                    r = torch.arange(len(anchors))
                    own[r, r] = True
                    for i, j in neg_of:                      # the anchor's own hard negative stays
                        own[i, len(anchors) + j] = True
                    logits = logits.masked_fill(same & ~own, float("-inf"))
                    loss = torch.nn.functional.cross_entropy(logits, torch.arange(len(anchors)))
                    if len(wp) and self.weak_weight > 0:
                        w = wp[rng.integers(len(wp), size=max(2, B // 2))]
                        Wa = self._forward([weak_texts[i] for i in w[:, 0]])
                        Wp = self._forward([weak_texts[i] for i in w[:, 1]])
                        kw = torch.as_tensor(wkey[w[:, 0]])
                        # other pairs with the same labels are weak positives too, not negatives
                        wl = (Wa @ Wp.T / tau).masked_fill((kw[:, None] == kw[None, :])
                                                           & ~torch.eye(len(w), dtype=torch.bool), float("-inf"))
                        loss = loss + self.weak_weight * torch.nn.functional.cross_entropy(wl, torch.arange(len(w)))
                    opt.zero_grad()
                    loss.backward()
                    opt.step()
                    losses.append(loss.detach().item())
                    step += 1
                    if log is not None and step % 25 == 0:
                        log(f"{self.concept}: step {step}/{steps}, loss {np.mean(losses[-25:]):.3f}, "
                            f"{time.perf_counter() - t0:.0f} s")
        self._enc.eval()
        self.info_ = {"steps": step, "steps_planned": steps, "positives": int(len(trip)), "llm_positives": len(llm),
                      "weak_pairs": int(len(wp)), "seconds": time.perf_counter() - t0,
                      "final_loss": float(np.mean(losses[-25:])) if losses else None}
        return self

    def embed(self, texts: Sequence[str], *, batch_size: int = 128) -> np.ndarray:
        import torch

        self._check()
        texts = list(texts)
        out = np.empty((len(texts), self.dim), dtype=np.float32)
        order = np.argsort([len(t) for t in texts], kind="stable")
        with torch.inference_mode():
            for s in range(0, len(texts), batch_size):
                idx = order[s:s + batch_size]
                out[idx] = self._forward([texts[i] for i in idx]).numpy()
        return out

    def effects(self, query_emb: np.ndarray, query_out: np.ndarray, value: str, candidates: pd.DataFrame,
                cand_emb: np.ndarray, cand_out: np.ndarray, *, k: int | None = None) -> np.ndarray:
        """EICaCE per query: mean f over its Top-K candidates with concept = value, minus f(query)."""
        self._check()
        k = self.k if k is None else int(k)
        pool = np.flatnonzero((candidates[self.concept] == value).to_numpy())
        if len(pool) == 0:
            raise InputError(f"the candidate pool has no text with {self.concept} = {value!r}")
        from whybox.counterfactuals.text import topk_effects

        return topk_effects(np.asarray(query_emb) @ np.asarray(cand_emb)[pool].T, np.asarray(cand_out)[pool],
                            query_out, k)

    # -- cache -----------------------------------------------------------------------------------
    def save(self, path) -> None:
        import torch

        self._check()
        from pathlib import Path

        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        torch.save({"encoder": self._enc.state_dict(), "proj": self._proj.state_dict(), "info": dict(self.info_)}, tmp)
        import os

        os.replace(tmp, path)

    def load(self, path) -> "InfoNCEMatcher":
        import torch

        from whybox.models.minilm import load_minilm

        state = torch.load(path, weights_only=True)
        self._enc, self._tokenizer = load_minilm()
        self._enc.load_state_dict(state["encoder"])
        self._enc.eval()
        self._proj = torch.nn.Linear(self._enc.config.hidden_size, self.dim)
        self._proj.load_state_dict(state["proj"])
        self.info_ = {**state.get("info", {}), "cached": True}
        return self
