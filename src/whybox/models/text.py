"""Text models: anything that maps a list of strings to scores, as a batched, counted, cached Model.

* a callable ``f(list[str]) -> (n, k)`` scores;
* a scikit-learn text pipeline (e.g. TfidfVectorizer + LogisticRegression) fed raw strings;
* a :class:`whybox.models.transformer.TransformerClassifier` (torch, with embedding gradients).

Identical texts are evaluated once per call (dedupe), and outputs are cached per text
(``cache=True``, the default for text), so repeated perturbations cost nothing.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from whybox.errors import InputError
from whybox.models.adapters import OUTPUT_CHOICES, Model, _is_torch_module, sklearn_output


def check_texts(texts: Any, *, name: str = "texts") -> list[str]:
    """A list of strings, or a clear error naming the first bad item."""
    if isinstance(texts, str):
        return [texts]
    if hasattr(texts, "tolist") and not isinstance(texts, list):
        texts = texts.tolist()
    try:
        items = list(texts)
    except TypeError:
        raise InputError(f"{name} must be a string or a sequence of strings, got {type(texts).__name__}") from None
    for i, t in enumerate(items):
        if not isinstance(t, str):
            raise InputError(f"{name}[{i}] is a {type(t).__name__} ({t!r:.40}), not a string")
    return items


class TextModel(Model):
    """A :class:`~whybox.Model` whose inputs are strings.

    Parameters are those of Model, plus ``cache_size`` (the cache is cleared when it exceeds this
    many texts), ``tokenizer`` (for ``units="token"``) and ``mask_token`` (the default token of
    ``removal="mask"``).
    """

    def __init__(self, fn: Any, *, cache: bool = True, cache_size: int = 200_000, tokenizer: Any = None,
                 mask_token: str | None = None, **kw: Any):
        super().__init__(fn, cache=cache, **kw)
        self.cache_size = int(cache_size)
        self.tokenizer = tokenizer
        self.mask_token = mask_token

    def _to_input(self, X: np.ndarray) -> Any:
        return [str(t) for t in X]

    def __call__(self, texts: Any) -> np.ndarray:
        texts = check_texts(texts)
        if not texts:
            return np.empty((0, self.n_outputs or 0))
        cache = self._cache if self.cache else {}
        todo = [t for t in dict.fromkeys(texts) if t not in cache]
        if todo:
            out = self._call_batched(np.array(todo, dtype=object))
            if self.cache and len(cache) + len(todo) > self.cache_size:
                cache.clear()
            fresh = dict(zip(todo, out))
            cache.update(fresh)
            return np.stack([cache[t] if t in cache else fresh[t] for t in texts])
        return np.stack([cache[t] for t in texts])


def as_text_model(model: Any, *, output: str = "auto", batch_size: int | None = None, budget: int | None = None,
                  cache: bool = True, name: str | None = None) -> TextModel:
    """Wrap a text classifier in a :class:`TextModel` (see the module docstring for what is accepted)."""
    if output not in OUTPUT_CHOICES:
        raise InputError(f"output must be one of {OUTPUT_CHOICES}, got {output!r}")
    if isinstance(model, TextModel):
        if batch_size is not None:
            model.batch_size = int(batch_size)
        if budget is not None:
            model.budget = int(budget)
        return model
    if isinstance(model, Model):
        raise InputError("this Model takes numeric arrays; for text pass the classifier itself, a callable "
                         "f(list[str]) -> scores, or a whybox.TextModel")
    if _is_torch_module(model):
        raise InputError("a bare torch module does not say how to tokenise text: wrap it with its tokenizer in "
                         "whybox.TransformerClassifier(encoder, tokenizer, head=...)")
    if hasattr(model, "fit") and any(hasattr(model, m) for m in OUTPUT_CHOICES[1:4]):
        fn, chosen, output_names = sklearn_output(model, output)
        m = TextModel(fn, name=name or f"{type(model).__name__}.{chosen}", output_names=output_names,
                      batch_size=batch_size, budget=budget, cache=cache, is_classifier=chosen != "predict")
        m.method = chosen
        return m
    if callable(model):
        return TextModel(model, name=name, batch_size=batch_size, budget=budget, cache=cache)
    raise InputError(f"cannot use an object of type {type(model).__name__} as a text model: pass a callable "
                     "f(list[str]) -> scores, a scikit-learn text pipeline or a whybox.TransformerClassifier")

