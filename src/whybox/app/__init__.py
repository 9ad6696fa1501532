"""``whybox serve``: a dashboard for people who are not data scientists (FastAPI + Plotly, served locally)."""
from whybox.app.state import AppState

__all__ = ["AppState", "create_app", "serve"]


def create_app(*a, **kw):
    from whybox.app.server import create_app as _c
    return _c(*a, **kw)


def serve(*a, **kw):
    from whybox.app.server import serve as _s
    return _s(*a, **kw)
