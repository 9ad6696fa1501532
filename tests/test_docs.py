"""Every Python example in the README and docs/ runs (in a temporary folder), in order, each file's
blocks sharing one namespace. A block may be skipped only with an HTML comment right above it,
``<!-- not run: why -->``, which names where the same calls are tested."""
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = ["README.md", "docs/metrics.md", "docs/scale.md", "docs/counterfactuals.md", "docs/text.md", "docs/global.md", "docs/rules.md", "docs/code.md", "docs/interactions.md", "docs/fairness.md", "docs/graphs.md"]
BLOCK = re.compile(r"(<!-- not run: [^>]*-->\s*\n)?```python\n(.*?)```", re.S)


def blocks(path):
    return [(m.group(2), m.group(1)) for m in BLOCK.finditer((ROOT / path).read_text(encoding="utf-8"))]


def test_every_python_block_is_run_or_says_why_not():
    found = [(p, skip) for p in DOCS + [str(p.relative_to(ROOT)) for p in (ROOT / "docs").glob("*.md")]
             for _, skip in blocks(p)]
    unlisted = {p for p in (str(q.relative_to(ROOT)) for q in (ROOT / "docs").glob("*.md")) if blocks(p)} - set(DOCS)
    assert not unlisted, f"docs with Python examples not run here: {unlisted}"
    assert sum(skip is None for _, skip in found) >= 8


@pytest.mark.parametrize("path", DOCS)
def test_doc_examples_run(path, tmp_path, monkeypatch):
    from whybox.datasets import shared_data_dir
    text = (ROOT / path).read_text(encoding="utf-8")
    if shared_data_dir() is None and ("load_openxai" in text or "load_rt_polarity" in text):
        pytest.skip("the shared data folder (../shared/data) is absent")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    import matplotlib
    matplotlib.use("Agg")
    ns: dict = {"__name__": "__docs__"}
    ran = 0
    for code, skip in blocks(path):
        if skip:
            continue
        try:
            exec(compile(code, f"{path} example {ran + 1}", "exec"), ns)
        except Exception as exc:  # noqa: BLE001 - report which example failed
            raise AssertionError(f"{path}, example {ran + 1} failed: {type(exc).__name__}: {exc}\n{code}") from exc
        ran += 1
    assert ran >= 1
