"""progress=True: a bar of the model rows in interactive sessions, silent otherwise, never a changed number."""
import io

import numpy as np
import pytest
from rich.console import Console

import whybox
import whybox.core.progress as P


def _f(Z):
    return np.tanh(Z @ np.array([1.0, -2.0, 0.5, 0.3]))


@pytest.fixture
def screen(monkeypatch):
    buf = io.StringIO()
    monkeypatch.setattr(P, "console", lambda: Console(file=buf, force_terminal=True, width=120))
    return buf


def test_progress_counts_the_model_rows_and_changes_nothing(screen):
    rng = np.random.default_rng(0)
    X, bg = rng.normal(size=(7, 4)), rng.normal(size=(5, 4))
    plain = whybox.explain(_f, X, background=bg, n_samples=64, seed=1)
    shown = whybox.explain(_f, X, background=bg, n_samples=64, seed=1, progress=True)
    np.testing.assert_array_equal(plain.values, shown.values)
    out = screen.getvalue()
    assert "explain (kernelshap)" in out and f"{shown.n_model_rows}/{shown.n_model_rows}" in out
    ex = whybox.Explainer(_f, background=bg, data=X)
    ex.explain(X[:2], method="occlusion", progress=True)
    assert "explain (occlusion)" in screen.getvalue()
    whybox.evaluate(_f, X[:3], ["occlusion"], metrics=["pgi"], background=bg, progress=True)
    whybox.choose(_f, X[:2], candidates=["occlusion", "lime"], background=bg, progress=True)
    text = screen.getvalue()
    assert "evaluate" in text and "choose" in text


def test_progress_is_silent_in_non_interactive_runs(capsys):
    rng = np.random.default_rng(0)
    X, bg = rng.normal(size=(3, 4)), rng.normal(size=(2, 4))
    assert not P.interactive()                 # pytest captures stderr: not a terminal
    whybox.explain(_f, X, background=bg, n_samples=32, progress=True)
    assert capsys.readouterr().err == ""
    with pytest.raises(whybox.InputError, match="progress must be True or False"):
        whybox.explain(_f, X, background=bg, progress="yes")


def test_dataset_progress_counts_chunks(tmp_path, screen):
    rng = np.random.default_rng(0)
    X, bg = rng.normal(size=(6, 4)), rng.normal(size=(2, 4))
    whybox.explain_dataset(_f, X, tmp_path / "a.parquet", chunk_size=3, background=bg, method="occlusion",
                           progress=True)
    out = screen.getvalue()
    assert "explaining" in out and "2/2" in out and "chunks" in out
