"""numba, when the optional ``speed`` extra is installed (pip install 'whybox[speed]'): its ``njit``
and whether it is there, for the compiled kernels (:mod:`whybox._fill`, :mod:`whybox.trees.kernel`)."""
from __future__ import annotations

try:
    from numba import njit
    HAVE_NUMBA = True
except ImportError:                      # pragma: no cover - exercised where numba is absent
    njit = None
    HAVE_NUMBA = False


def available() -> bool:
    return HAVE_NUMBA
