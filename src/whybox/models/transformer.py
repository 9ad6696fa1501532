"""A torch transformer text classifier with access to its input embeddings (for gradient methods).

``TransformerClassifier(encoder, tokenizer, head=...)`` works with

* a Hugging Face encoder (``AutoModel``) plus a pooling and a classification ``head`` (an
  ``nn.Module`` from the pooled vector to logits), e.g. all-MiniLM-L6-v2 + a trained linear head;
* a Hugging Face ``*ForSequenceClassification`` model (``head=None``): its ``.logits`` are used.

Forward passes run under ``torch.inference_mode`` in batches; :meth:`embedding_gradients` gives
d output[target] / d (word-piece input embeddings), which the text gradient methods turn into per-unit
values. torch and transformers are imported lazily (``pip install whybox[text]``).
"""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from whybox.errors import BudgetError, InputError, ModelError
from whybox.models.text import TextModel

POOLINGS = ("mean", "cls")
OUTPUTS = ("proba", "logits")


class TransformerClassifier(TextModel):
    """Parameters
    ----------
    encoder : Hugging Face model accepting ``inputs_embeds`` and ``attention_mask``.
    tokenizer : its (fast) tokenizer.
    head : module from the pooled (batch, hidden) vector to logits, or None when ``encoder`` already
        returns ``.logits``.
    pooling : "mean" (over attended tokens, as sentence-transformers) or "cls".
    normalize : L2-normalise the pooled vector before the head (all-MiniLM-L6-v2 embeddings are).
    output : "proba" (softmax of the logits) or "logits".
    max_length : longer texts are truncated (the word units past it get no signal).
    """

    def __init__(self, encoder: Any, tokenizer: Any, head: Any = None, *, pooling: str = "mean",
                 normalize: bool = False, output: str = "proba", output_names: Sequence[Any] | None = None,
                 max_length: int = 128, batch_size: int = 64, device: str | None = None, **kw: Any):
        import torch

        if pooling not in POOLINGS:
            raise InputError(f"pooling must be one of {POOLINGS}, got {pooling!r}")
        if output not in OUTPUTS:
            raise InputError(f"output must be one of {OUTPUTS}, got {output!r}")
        self.torch = torch
        self.encoder = encoder.eval()
        self.head = head.eval() if head is not None else None
        self.pooling, self.normalize, self.output = pooling, bool(normalize), output
        self.max_length = int(max_length)
        params = list(encoder.parameters())
        self.device = torch.device(device) if device else (params[0].device if params else torch.device("cpu"))
        mask = getattr(tokenizer, "mask_token", None) or getattr(tokenizer, "unk_token", None)
        super().__init__(self._forward_texts, name=kw.pop("name", None) or type(encoder).__name__,
                         output_names=output_names, batch_size=batch_size, tokenizer=tokenizer,
                         mask_token=mask, is_classifier=True, **kw)

    @property
    def has_gradient(self) -> bool:
        return True

    # ----------------------------------------------------------------- pieces
    def encode(self, texts: list[str]) -> dict[str, Any]:
        """Token ids, attention mask and character offsets (word pieces) of ``texts``."""
        enc = self.tokenizer(texts, padding=True, truncation=True, max_length=self.max_length,
                             return_tensors="pt", return_offsets_mapping=True)
        return {k: v.to(self.device) if hasattr(v, "to") else v for k, v in enc.items()}

    def embed(self, input_ids: Any) -> Any:
        return self.encoder.get_input_embeddings()(input_ids)

    def logits_from_embeddings(self, emb: Any, attention_mask: Any) -> Any:
        """Logits (batch, k) from word-piece embeddings (batch, L, h)."""
        torch = self.torch
        if self.head is None:
            return self.encoder(inputs_embeds=emb, attention_mask=attention_mask).logits
        hidden = self.encoder(inputs_embeds=emb, attention_mask=attention_mask).last_hidden_state
        if self.pooling == "cls":
            pooled = hidden[:, 0]
        else:
            m = attention_mask.unsqueeze(-1).to(hidden.dtype)
            pooled = (hidden * m).sum(1) / m.sum(1).clamp(min=1e-9)
        if self.normalize:
            pooled = torch.nn.functional.normalize(pooled, p=2, dim=1)
        return self.head(pooled)

    def scores_from_embeddings(self, emb: Any, attention_mask: Any) -> Any:
        z = self.logits_from_embeddings(emb, attention_mask)
        return self.torch.softmax(z, dim=-1) if self.output == "proba" else z

    def _forward_texts(self, texts: list[str]) -> np.ndarray:
        enc = self.encode(texts)
        with self.torch.inference_mode():
            out = self.scores_from_embeddings(self.embed(enc["input_ids"]), enc["attention_mask"])
        return out.float().cpu().numpy().astype(np.float64)

    # ----------------------------------------------------------------- gradients
    def embedding_gradients(self, emb: np.ndarray, attention_mask: np.ndarray, target: int) -> tuple[np.ndarray, np.ndarray]:
        """Scores and d score[target] / d emb for a stack of embedding inputs of ONE text.

        emb : (s, L, h) points (e.g. path or noisy embeddings); attention_mask : (L,).
        Returns (scores (s, k), gradients (s, L, h)); the s rows count against the budget.
        """
        torch = self.torch
        s = emb.shape[0]
        if self.budget is not None and self.n_rows + s > self.budget:
            raise BudgetError(f"model query budget exhausted: {self.n_rows:,} rows used, {s:,} more requested "
                              f"for gradients, budget is {self.budget:,}")
        bs = self.batch_size or s
        grads = np.empty(emb.shape, dtype=np.float64)
        scores = []
        am = torch.as_tensor(np.asarray(attention_mask), device=self.device).view(1, -1)
        dtype = self.encoder.get_input_embeddings().weight.dtype
        for a in range(0, s, bs):
            e = torch.as_tensor(emb[a:a + bs], dtype=dtype, device=self.device).requires_grad_(True)
            try:
                y = self.scores_from_embeddings(e, am.expand(e.shape[0], -1))
            except Exception as exc:
                raise ModelError(f"model {self.name!r} raised {type(exc).__name__} on embeddings {tuple(e.shape)}: {exc}") from exc
            (g,) = torch.autograd.grad(y[:, int(target)].sum(), e)
            grads[a:a + bs] = g.detach().float().cpu().numpy()
            scores.append(y.detach().float().cpu().numpy())
            self.n_calls += 1
            self.n_rows += e.shape[0]
        if not np.isfinite(grads).all():
            raise ModelError(f"model {self.name!r} produced NaN/inf gradients")
        return np.concatenate(scores).astype(np.float64), grads
