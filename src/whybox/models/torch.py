"""Adapter for PyTorch modules: batched forward passes and autograd gradients.

torch is imported only when this module is used (``pip install whybox[torch]``).
"""
from __future__ import annotations

from typing import Any

import numpy as np

from whybox.errors import ModelError
from whybox.models.base import Model


class TorchModel(Model):
    """Wrap an ``nn.Module`` mapping a float tensor (n, p) to scores (n, k).

    The module is put in eval mode; forward passes run under ``torch.no_grad``; :meth:`gradient`
    returns d output[target] / d input by autograd for each row.
    """

    def __init__(self, module: Any, *, device: str | None = None, **kw: Any):
        import torch

        self.torch = torch
        self.module = module.eval()
        params = list(module.parameters())
        self.dtype = params[0].dtype if params else torch.float32
        self.device = torch.device(device) if device else (params[0].device if params else torch.device("cpu"))
        super().__init__(self._forward, name=kw.pop("name", None) or type(module).__name__, **kw)

    @property
    def has_gradient(self) -> bool:
        return True

    def _forward(self, X: np.ndarray) -> np.ndarray:
        t = self.torch.as_tensor(np.asarray(X, dtype=np.float64), dtype=self.dtype, device=self.device)
        with self.torch.no_grad():
            return self.module(t).detach().cpu().numpy()

    def gradient(self, X: np.ndarray, targets: np.ndarray) -> np.ndarray:
        """d f_target(x) / dx for each row; rows counted against the budget like forward rows."""
        torch = self.torch
        X = np.asarray(X, dtype=np.float64)
        n = X.shape[0]
        if self.budget is not None and self.n_rows + n > self.budget:
            from whybox.errors import BudgetError
            raise BudgetError(f"model query budget exhausted: {self.n_rows:,} rows used, {n:,} more requested "
                              f"for gradients, budget is {self.budget:,}")
        bs = self.batch_size or n
        out = np.empty_like(X)
        targets = np.array(np.broadcast_to(np.asarray(targets, dtype=np.int64), (n,)))
        for s in range(0, n, bs):
            t = torch.as_tensor(X[s:s + bs], dtype=self.dtype, device=self.device).requires_grad_(True)
            try:
                y = self.module(t)
            except Exception as exc:
                raise ModelError(f"model {self.name!r} raised {type(exc).__name__} on a batch of {len(t)} rows: {exc}") from exc
            if y.ndim == 1:
                y = y.unsqueeze(1)
            idx = torch.as_tensor(targets[s:s + bs], device=y.device)
            sel = y.gather(1, idx.view(-1, 1)).sum()
            (g,) = torch.autograd.grad(sel, t)
            out[s:s + bs] = g.detach().cpu().numpy().astype(np.float64)
            self.n_calls += 1
            self.n_rows += len(t)
        if not np.isfinite(out).all():
            raise ModelError(f"model {self.name!r} produced NaN/inf gradients")
        return out
