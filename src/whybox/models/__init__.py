"""Model adapters: anything callable becomes a batched, counted ``f(X) -> (n, outputs)``."""
from whybox.models.adapters import Model, as_model

__all__ = ["Model", "as_model"]
