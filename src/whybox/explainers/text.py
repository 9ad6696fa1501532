"""Explaining text classifiers with the same engine and the same Explanation type as tabular data.

Perturbation methods (lime, kernelshap, shapley, occlusion) are the tabular recipes unchanged: a
:class:`TextContext` answers ``evaluate_masks`` by building the perturbed texts of a design of unit
masks (:class:`whybox.representations.TextUnits`), evaluating each distinct text once, in chunks.

Gradient methods (gradient, gradxinput, smoothgrad, integrated_gradients) need a torch transformer
(:class:`whybox.TransformerClassifier`): they differentiate the output with respect to the word-piece
input embeddings and sum the per-token values over the tokens of each unit, so every method reports
per-unit values on the same units:

* gradient    : sum over the unit's tokens of ||d f / d e_t||_2 (unsigned saliency);
* gradxinput  : sum over the unit's tokens of e_t . d f / d e_t;
* smoothgrad  : as gradient, for the mean gradient at e + N(0, (sigma * std(e))^2) noise;
* integrated_gradients : sum over the unit's tokens of (e_t - b_t) . mean path gradient, where the
  baseline b replaces the unit tokens by the [PAD] (or [MASK]) embedding and keeps special and
  punctuation tokens, so sum(values) = f(x) - f(baseline) up to the quadrature error (completeness).
"""
from __future__ import annotations

import time
import warnings
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from whybox.problem import resolve_targets
from whybox.background import Background
from whybox.core.explanation import Explanation
from whybox.engine import DEFAULT_CHUNK_ROWS
from whybox.errors import InputError, MethodError
from whybox.explainers import recipes
from whybox.explainers.recipes import Result, _positive_int
from whybox.models.text import TextModel, as_text_model, check_texts
from whybox.neighbourhoods import continuous
from whybox.representations.text import TextUnits

MASKING_METHODS = ("lime", "kernelshap", "shapley", "occlusion")
GRADIENT_METHODS = ("gradient", "gradxinput", "smoothgrad", "integrated_gradients")
TEXT_METHODS = MASKING_METHODS + GRADIENT_METHODS


@dataclass
class TextContext:
    """One text bound to a model: what the masking recipes call to query it.

    Every distinct perturbed text is evaluated once per context (and once per model when the
    model caches), in chunks of ``chunk_rows`` texts, one model call per chunk."""

    model: TextModel
    doc: TextUnits
    target: int
    fx: np.ndarray                  # (1,) f(x)[target]
    rng: np.random.Generator
    chunk_rows: int = DEFAULT_CHUNK_ROWS
    _seen: dict[str, np.ndarray] = field(default_factory=dict, repr=False)

    n = 1

    def __post_init__(self) -> None:
        self.background = Background(np.zeros((1, self.doc.d)), np.ones(1))   # the removal is the baseline
        self.targets = np.array([self.target], dtype=np.intp)

    @property
    def d(self) -> int:
        return self.doc.d

    @property
    def p(self) -> int:
        return self.doc.d

    def outputs(self, texts: list[str]) -> np.ndarray:
        """f(texts)[target], each distinct text evaluated once: (len(texts),)."""
        todo = [t for t in dict.fromkeys(texts) if t not in self._seen]
        for s in range(0, len(todo), self.chunk_rows):
            part = todo[s:s + self.chunk_rows]
            self._seen.update(zip(part, self.model(part)[:, self.target]))
        return np.array([self._seen[t] for t in texts], dtype=float)

    def evaluate_masks(self, Z: np.ndarray) -> np.ndarray:
        return self.outputs(self.doc.texts(Z))[None, :]

    def row_blocks(self, per_row: int):
        """One text is one block (the tabular context splits many rows)."""
        yield self

    def base_value(self) -> np.ndarray:
        return self.outputs(self.doc.texts(np.zeros((1, self.d), bool)))

    def evaluate_background_rows(self) -> np.ndarray:
        return self.base_value()[:, None]

    def mask_cost(self, Z: np.ndarray) -> int:
        """Distinct perturbed texts of the design, the original excluded (an upper bound on rows)."""
        texts = set(self.doc.texts(np.asarray(Z, bool)))
        texts.discard(self.doc.text)
        return len(texts)


# ------------------------------------------------------------------------------ gradient methods
@dataclass
class _Tokens:
    emb: np.ndarray          # (L, h) word-piece embeddings of x
    base: np.ndarray         # (L, h) baseline embeddings
    attention: np.ndarray    # (L,)
    A: np.ndarray            # (d, L) 1 where token t belongs to unit i


def _tokens(model: TextModel, doc: TextUnits, baseline: str) -> _Tokens:
    if not getattr(model, "has_gradient", False) or not hasattr(model, "embedding_gradients"):
        raise MethodError(f"gradient methods on text need a torch transformer (whybox.TransformerClassifier) "
                          f"whose input embeddings can be differentiated; model {model.name!r} is a black box. "
                          f"Use one of {list(MASKING_METHODS)}")
    torch = model.torch
    enc = model.encode([doc.text])
    ids = enc["input_ids"]
    offsets = enc["offset_mapping"][0].cpu().numpy()
    special = np.zeros(len(offsets), bool)
    if "special_tokens_mask" in enc:
        special = enc["special_tokens_mask"][0].cpu().numpy().astype(bool)
    A = np.zeros((doc.d, ids.shape[1]))
    for t, (s, e) in enumerate(offsets):
        if e <= s or special[t]:
            continue
        for i, (us, ue) in enumerate(doc.spans):
            if s < ue and e > us:
                A[i, t] = 1.0
                break
    lost = int((~A.any(axis=1)).sum())
    if lost and ids.shape[1] >= getattr(model, "max_length", 10 ** 9):
        warnings.warn(f"the text is longer than the model's max_length ({model.max_length} tokens): "
                      f"{lost} unit(s) past it are not seen by the model and get 0", stacklevel=4)
    tok = model.tokenizer
    if baseline in ("pad", "auto", None):
        bid = tok.pad_token_id
    elif baseline == "mask":
        bid = tok.mask_token_id
    elif baseline == "unk":
        bid = tok.unk_token_id
    else:
        raise InputError(f"baseline must be 'pad', 'mask' or 'unk' on text, got {baseline!r}")
    if bid is None:
        raise InputError(f"the tokenizer has no {baseline!r} token for the baseline")
    with torch.inference_mode():
        emb = model.embed(ids)[0].float().cpu().numpy().astype(np.float64)
        bvec = model.embed(torch.tensor([[bid]], device=ids.device))[0, 0].float().cpu().numpy().astype(np.float64)
    in_unit = A.any(axis=0)
    base = emb.copy()
    base[in_unit] = bvec
    return _Tokens(emb, base, enc["attention_mask"][0].cpu().numpy(), A)


def _grad(ctx: TextContext, P: np.ndarray, tk: _Tokens) -> tuple[np.ndarray, np.ndarray]:
    return ctx.model.embedding_gradients(P, tk.attention, ctx.target)


def run_text_gradient(ctx: TextContext, baseline: str = "pad") -> Result:
    tk = _tokens(ctx.model, ctx.doc, baseline)
    _, G = _grad(ctx, tk.emb[None], tk)
    return Result(tk.A @ np.linalg.norm(G[0], axis=1), np.full(1, np.nan),
                  info={"estimator": "autograd", "scalar": "l2 norm per token, summed per unit"})


def run_text_gradxinput(ctx: TextContext, baseline: str = "pad") -> Result:
    tk = _tokens(ctx.model, ctx.doc, baseline)
    _, G = _grad(ctx, tk.emb[None], tk)
    return Result(tk.A @ (tk.emb * G[0]).sum(axis=1), np.full(1, np.nan),
                  info={"estimator": "autograd", "scalar": "e . grad per token, summed per unit"})


def run_text_smoothgrad(ctx: TextContext, n_samples: int = 50, sigma: float = 0.1, baseline: str = "pad") -> Result:
    m = _positive_int("n_samples", n_samples)
    tk = _tokens(ctx.model, ctx.doc, baseline)
    scale = sigma * float(tk.emb[tk.attention.astype(bool)].std())
    P = tk.emb[None] + scale * ctx.rng.standard_normal((m,) + tk.emb.shape)
    _, G = _grad(ctx, P, tk)
    return Result(tk.A @ np.linalg.norm(G.mean(axis=0), axis=1), np.full(1, np.nan),
                  info={"n_samples": m, "noise_std": scale, "scalar": "l2 norm of the mean gradient per token"})


def run_text_integrated_gradients(ctx: TextContext, steps: int = 50, baseline: str = "pad",
                                  rule: str = "gausslegendre") -> Result:
    steps = _positive_int("steps", steps)
    tk = _tokens(ctx.model, ctx.doc, baseline)
    alphas, aw = continuous.path(steps, rule)
    diff = tk.emb - tk.base
    P = np.concatenate([tk.base[None], tk.base[None] + alphas[:, None, None] * diff[None]])
    S, G = _grad(ctx, P, tk)
    per_token = (diff * np.einsum("s,slh->lh", aw, G[1:])).sum(axis=1)
    fb = S[0, ctx.target]
    return Result(tk.A @ per_token, np.array([fb]),
                  info={"steps": steps, "rule": rule, "baseline_output": float(fb),
                        "completeness_gap": float(per_token.sum() - (ctx.fx[0] - fb))})


def _grad_cost(ctx: TextContext, method: str, params: dict[str, Any]) -> int:
    if method == "smoothgrad":
        return int(params.get("n_samples", 50))
    if method == "integrated_gradients":
        return int(params.get("steps", 50)) + 1
    return 1


GRADIENT_RUNS: dict[str, Callable[..., Result]] = {
    "gradient": run_text_gradient, "gradxinput": run_text_gradxinput, "smoothgrad": run_text_smoothgrad,
    "integrated_gradients": run_text_integrated_gradients,
}
_GRADIENT_TEXT = {
    "gradient": ("infinitesimal, on input embeddings", "l2 norm of the gradient"),
    "gradxinput": ("infinitesimal, on input embeddings", "embedding x gradient"),
    "smoothgrad": ("gaussian noise on input embeddings", "l2 norm of the mean gradient"),
    "integrated_gradients": ("straight path from pad/mask embeddings", "path gradient matching"),
}


def _method(method: str) -> str:
    key = str(method).lower()
    key = recipes.ALIASES.get(key, key)
    if key not in TEXT_METHODS:
        raise MethodError(f"unknown text method {method!r}; choose one of {list(TEXT_METHODS)}")
    return key


def explain_text(model: Any, texts: Any, *, method: str = "kernelshap", units: Any = "word",
                 removal: str = "delete", mask_token: str | None = None, replacement: str | None = None,
                 tokenizer: Any = None, target: Any = None, target_index: Any = None, budget: int | None = None,
                 seed: int | None = 0,
                 output: str = "auto", batch_size: int | None = None, chunk_rows: int = 4096,
                 **method_params: Any) -> Explanation | list[Explanation]:
    """Explain a text classifier's prediction on each text, unit by unit.

    Parameters
    ----------
    model : callable ``f(list[str]) -> scores``, scikit-learn text pipeline, :class:`whybox.TextModel`
        or :class:`whybox.TransformerClassifier`.
    texts : one string (returns one Explanation) or a sequence of strings (returns a list).
    method : "kernelshap" (default), "lime", "shapley" (short texts), "occlusion"; on a
        TransformerClassifier also "gradient", "gradxinput", "smoothgrad", "integrated_gradients".
    units : "word" (default), "token" (the model's or ``tokenizer``'s tokens), "sentence", a compiled
        regex or a callable returning character spans.
    removal : how a unit is switched off: "delete", "mask" (``mask_token``, default the model
        tokenizer's mask token or "[MASK]") or "replace" (by ``replacement``).
    target : output to explain: None (predicted class), a class label (labels win when the model has
        them), an index when it has none, or one per text; ``target_index``: explicit indices.
    budget : most model rows (perturbed texts, gradient points) for all texts together; checked up front.
    seed : text i uses the random stream (seed, i): same seed, same numbers.
    **method_params : the method's own parameters (``n_samples``, ``steps``, ``baseline``...).

    Each Explanation has one feature per unit (``feature_names`` are the unit strings, made unique;
    ``data`` the unit strings) and keeps the text and the unit spans in ``params`` for rendering.
    """
    t_all = time.perf_counter()
    single = isinstance(texts, str)
    items = check_texts(texts)
    if not items:
        raise InputError("texts is empty: pass a string or a non-empty sequence of strings")
    key = _method(method)
    from whybox.params import check

    for name, v in (("seed", seed), ("budget", budget), ("batch_size", batch_size), ("chunk_rows", chunk_rows)):
        check(name, v)
    m = as_text_model(model, output=output, batch_size=batch_size, budget=budget)
    tok = tokenizer if tokenizer is not None else getattr(m, "tokenizer", None)
    mtok = mask_token if mask_token is not None else getattr(m, "mask_token", None)
    docs = [TextUnits.build(t, units=units, removal=removal, mask_token=mtok, replacement=replacement,
                            tokenizer=tok, index=i) for i, t in enumerate(items)]
    if key in MASKING_METHODS:
        recipe = recipes.get_recipe(key)
        params = recipe.check_params(method_params)
        run, neighbourhood, surrogate = recipe.run, recipe.neighbourhood, recipe.surrogate
    else:
        run = GRADIENT_RUNS[key]
        params = {**recipes.accepted_params(run, key, "on text", method_params), **method_params}
        neighbourhood, surrogate = _GRADIENT_TEXT[key]
        if not getattr(m, "has_gradient", False):
            _tokens(m, docs[0], params.get("baseline", "pad"))      # raises the clear MethodError
    rngs = [recipes.item_rng(seed, i) for i in range(len(items))]
    ctxs = [TextContext(m, doc, 0, np.zeros(1), rng, chunk_rows=int(chunk_rows)) for doc, rng in zip(docs, rngs)]
    need = len(items) + (sum(recipes.cost_keeping_rng(recipe, c, params) for c in ctxs) if key in MASKING_METHODS
                         else sum(_grad_cost(c, key, params) for c in ctxs))
    m.require(need, what=f"method {key!r} on {len(items)} text(s)")
    fx_all = m(items)
    targets = resolve_targets(target, fx_all, m.output_names, target_index=target_index)
    out = []
    for i, ctx in enumerate(ctxs):
        t0 = time.perf_counter()
        rows0, calls0 = m.n_rows, m.n_calls
        ctx.target = int(targets[i])
        ctx.targets = np.array([ctx.target], dtype=np.intp)
        ctx.fx = fx_all[i:i + 1, ctx.target]
        ctx._seen[ctx.doc.text] = fx_all[i, ctx.target]
        res = run(ctx, **params)
        doc = ctx.doc
        info = {"neighbourhood": neighbourhood, "surrogate": surrogate, "representation": "text",
                "units": doc.unit_kind, "removal": doc.removal, "text": doc.text,
                "spans": [list(s) for s in doc.spans], **params, **(res.info or {})}
        if doc.removal == "mask":
            info["mask_token"] = doc.mask_token
        if doc.removal == "replace":
            info["replacement"] = doc.replacement
        stderr = None if res.stderr is None else np.asarray(res.stderr).reshape(1, -1)
        out.append(Explanation(
            values=np.asarray(res.values, float).reshape(1, -1), base_values=np.asarray(res.base_values).reshape(1),
            predictions=ctx.fx, feature_names=doc.feature_names(), target=ctx.targets, method=key, params=info,
            seed=seed if isinstance(seed, (int, type(None))) else None, stderr=stderr,
            data=np.array(doc.units, dtype=object)[None, :], output_names=m.output_names,
            n_model_rows=m.n_rows - rows0 + 1,       # + its share of the f(x) call
            n_model_calls=m.n_calls - calls0 + (1 if i == 0 else 0), seconds=time.perf_counter() - t0,
            row_ids=np.array([i])))
    if single:
        out[0].seconds = time.perf_counter() - t_all
        return out[0]
    return out

