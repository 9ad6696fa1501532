"""The layers point down only: no import circle in whybox (module-level or deferred imports), and the
core never imports the faces (io, app, cli). Deferred hand-offs upward are allowed only where listed
here (a convenience method handing its result to a face), never at module level."""
import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"
PKG = SRC / "whybox"

# (importer, imported): deferred imports inside a method, from a lower layer to a face or a peer above.
HAND_OFFS = {
    ("whybox.core.explanation", "whybox.io.plots"),          # Explanation.plot
    ("whybox.core.explanation", "whybox.io.force"),          # Explanation.plot("force"), force_html
    ("whybox.core.explanation", "whybox.io.report"),         # Explanation.save(".html")
    ("whybox.core.explanation", "whybox.io.text_render"),    # Explanation.save(".html") for text
    ("whybox.interactions.model", "whybox.io.plots"),        # Interactions.plot
    ("whybox.fairness.remedy", "whybox.io.plots"),           # RemedyReport.chart
}
FACES = ("whybox.io", "whybox.app", "whybox.cli", "whybox.__main__")


def _modules() -> dict[str, Path]:
    out = {}
    for p in PKG.rglob("*.py"):
        rel = p.relative_to(SRC).with_suffix("")
        parts = list(rel.parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = p
    return out


def _imports(path: Path, mods: dict[str, Path], name: str) -> list[tuple[str, bool]]:
    """(imported whybox module, at module level?) for every import in the file."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    top = {id(n) for n in tree.body}
    found = []
    pkg = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]

    def add(target: str, node: ast.AST) -> None:
        while target and target not in mods:
            target = target.rsplit(".", 1)[0] if "." in target else ""
        if target and target != name:
            found.append((target, id(node) in top or _in_module_level_try(tree, node)))

    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for a in node.names:
                if a.name.startswith("whybox"):
                    add(a.name, node)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(pkg.split(".")[: len(pkg.split(".")) - node.level + 1] + ([base] if base else []))
            if not base.startswith("whybox"):
                continue
            for a in node.names:
                full = f"{base}.{a.name}"
                add(full if full in mods else base, node)
    return found


def _in_module_level_try(tree: ast.Module, node: ast.AST) -> bool:
    for stmt in tree.body:
        if isinstance(stmt, (ast.Try, ast.If)) and any(n is node for n in ast.walk(stmt)):
            return True
    return False


def _graph(include_deferred: bool) -> dict[str, set[str]]:
    mods = _modules()
    g: dict[str, set[str]] = {m: set() for m in mods}
    for name, path in mods.items():
        for target, module_level in _imports(path, mods, name):
            if not module_level and not include_deferred:
                continue
            if (name, target) in HAND_OFFS:
                assert not module_level, f"hand-off {name} -> {target} must stay inside a function"
                continue
            if target == "whybox" or name == "whybox":
                continue       # the package namespace re-exports everything; checked separately below
            g[name].add(target)
    return g


def _cycles(g: dict[str, set[str]]) -> list[list[str]]:
    index, low, stack, on, out = {}, {}, [], set(), []
    counter = [0]

    def visit(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in g[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))
    for v in list(g):
        if v not in index:
            visit(v)
    return out


def _parent_cycles(g: dict[str, set[str]]) -> dict[str, set[str]]:
    """Edges between a package and its own submodules are not circles (Python imports the package first)."""
    return {v: {w for w in ws if not (w.startswith(v + ".") or v.startswith(w + "."))} for v, ws in g.items()}


def test_no_import_circles_at_module_level():
    assert _cycles(_parent_cycles(_graph(include_deferred=False))) == []


def test_no_import_circles_counting_deferred_imports():
    assert _cycles(_parent_cycles(_graph(include_deferred=True))) == []


def test_below_the_faces_nothing_imports_a_face():
    g = _graph(include_deferred=True)
    bad = [(v, w) for v, ws in g.items() for w in ws
           if not v.startswith(FACES) and w.startswith(FACES) and (v, w) not in HAND_OFFS]
    assert bad == []


def test_nothing_below_the_api_imports_the_api():
    g = _graph(include_deferred=True)
    above = ("whybox.api", "whybox.cli", "whybox.app")
    bad = [(v, w) for v, ws in g.items() for w in ws if w == "whybox.api" and not v.startswith(above)]
    assert bad == []


def test_metrics_take_the_prepared_problem_not_the_api():
    g = _graph(include_deferred=True)
    for v, ws in g.items():
        if v.startswith("whybox.metrics"):
            assert "whybox.api" not in ws and "whybox.evaluate" not in ws and "whybox.choose" not in ws, (v, ws)
