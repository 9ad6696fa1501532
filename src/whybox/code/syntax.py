"""Syntax trees of code with character offsets: tree-sitter when it is installed (``whybox[code]``),
else Python's own ``ast`` plus ``tokenize`` (Python only).

Both give one :class:`SyntaxTree` whose nodes carry *character* offsets into the text (tree-sitter
counts UTF-8 bytes and ``ast`` counts UTF-8 bytes within a line; both are converted here), so they
line up with a tokenizer's character offsets even with non-ASCII identifiers and strings.

Node types are tree-sitter's (``function_definition``, ``identifier``, ``if`` ...). The ``ast``
fallback names its inner nodes by the ``ast`` class (``FunctionDef``, ``If`` ...) and its leaves as
tree-sitter does (keywords and operators by their own text, ``identifier``, ``string``, ``integer``,
``float``, ``comment``, ``true``/``false``/``none``), so :func:`category` means the same for both.

Code that does not parse: tree-sitter still gives a tree, with ``ERROR`` nodes (and zero-width
``MISSING`` ones) where it could not; :attr:`SyntaxTree.errors` says where (line:column).
``on_error="raise"`` refuses such code instead. The ``ast`` fallback cannot recover: it raises.
"""
from __future__ import annotations

import ast
import bisect
import io
import keyword
import tokenize
from dataclasses import dataclass, field
from typing import Iterator

from whybox.errors import InputError

ON_ERROR = ("mark", "raise")
PARSERS = ("auto", "tree-sitter", "ast")
LITERALS = frozenset({"string", "string_start", "string_content", "string_end", "escape_sequence", "integer",
                      "float", "true", "false", "none", "concatenated_string", "number", "ellipsis"})
CATEGORIES = ("keyword", "punctuation", "identifier", "literal", "comment", "error", "other")


@dataclass
class SyntaxNode:
    """One node: ``type``, character span ``[start, end)``, ``named`` (False for tree-sitter's anonymous
    keyword/punctuation nodes), its parent and children (indices into :attr:`SyntaxTree.nodes`)."""

    index: int
    type: str
    start: int
    end: int
    named: bool
    parent: int | None
    depth: int
    children: list[int] = field(default_factory=list)

    @property
    def is_leaf(self) -> bool:
        return not self.children

    @property
    def category(self) -> str:
        return category(self.type, self.named)


def category(type_: str, named: bool = True) -> str:
    """The syntax category of a node type: "keyword" (``def``, ``if``, ``return`` ...), "punctuation"
    (brackets, separators and operators: ``(``, ``:``, ``=``, ``+`` ...), "identifier", "literal"
    (strings and their parts, numbers, ``True``/``False``/``None``), "comment", "error" (code that did
    not parse), or "other" (the named non-terminals: statements, expressions, blocks ...)."""
    if type_ in ("ERROR", "MISSING"):
        return "error"
    if type_ == "comment":
        return "comment"
    if type_ == "identifier":
        return "identifier"
    if type_ in LITERALS:
        return "literal"
    if not named:
        return "keyword" if type_.replace("_", "").replace(" ", "").isalpha() else "punctuation"
    return "other"


@dataclass
class SyntaxTree:
    """A parsed text: ``nodes[0]`` is the root (it spans the whole text), nodes in document order."""

    text: str
    nodes: list[SyntaxNode]
    parser: str
    language: str
    errors: list[str] = field(default_factory=list)
    _starts: list[list[int]] | None = field(default=None, repr=False)

    @property
    def root(self) -> SyntaxNode:
        return self.nodes[0]

    def source(self, node: SyntaxNode | int) -> str:
        n = self.nodes[node] if isinstance(node, int) else node
        return self.text[n.start:n.end]

    def walk(self, node: int = 0) -> Iterator[SyntaxNode]:
        """Nodes of the subtree of ``node`` in document order (pre-order)."""
        stack = [node]
        while stack:
            i = stack.pop()
            yield self.nodes[i]
            stack.extend(reversed(self.nodes[i].children))

    def leaves(self) -> list[SyntaxNode]:
        return [n for n in self.nodes if n.is_leaf and n.end > n.start]

    def smallest_enclosing(self, start: int, end: int) -> SyntaxNode:
        """The deepest node whose span contains ``[start, end)`` (the root when none smaller does).
        Zero-width nodes (tree-sitter's MISSING) never contain anything."""
        if self._starts is None:
            self._starts = [[self.nodes[c].start for c in n.children] for n in self.nodes]
        cur = self.nodes[0]
        while True:
            kids, starts = cur.children, self._starts[cur.index]
            j = bisect.bisect_right(starts, start) - 1
            while j >= 0:                      # children are disjoint but may touch or be zero-width
                n = self.nodes[kids[j]]
                if n.start <= start and end <= n.end and n.end > n.start:
                    break
                if n.end > n.start and n.end <= start:
                    j = -1
                    break
                j -= 1
            if j < 0:
                return cur
            cur = self.nodes[kids[j]]

    def in_error(self) -> list[bool]:
        """For each node: it is an ERROR/MISSING node or lies inside one (code that did not parse)."""
        out = [False] * len(self.nodes)
        for n in self.nodes:                      # pre-order: parents come first
            out[n.index] = n.category == "error" or (n.parent is not None and out[n.parent])
        return out

    def subtree_end(self) -> list[int]:
        """For node i, the index just past its subtree (nodes are in pre-order: the subtree of i is
        ``nodes[i:subtree_end()[i]]``)."""
        end = list(range(1, len(self.nodes) + 1))
        for n in reversed(self.nodes):
            if n.children:
                end[n.index] = end[n.children[-1]]
        return end


# --------------------------------------------------------------------------------- parsing
def parse(text: str, *, language: str = "python", parser: str = "auto", on_error: str = "mark") -> SyntaxTree:
    """Parse ``text`` into a :class:`SyntaxTree` with character offsets.

    Parameters
    ----------
    language : "python", or any language whose tree-sitter grammar package is installed
        (``tree_sitter_<language>``, e.g. ``tree_sitter_javascript``).
    parser : "auto" (tree-sitter when installed, else ``ast`` for Python), "tree-sitter" or "ast".
    on_error : "mark" (keep what parses; ``ERROR`` nodes where it does not, listed in ``errors``) or
        "raise" (an InputError saying where the code stops parsing).
    """
    if not isinstance(text, str):
        raise InputError(f"code must be a string, got {type(text).__name__}")
    if not text.strip():
        raise InputError("the code is empty: there is nothing to parse")
    if on_error not in ON_ERROR:
        raise InputError(f"on_error must be one of {ON_ERROR}, got {on_error!r}")
    if parser not in PARSERS:
        raise InputError(f"parser must be one of {PARSERS}, got {parser!r}")
    if not isinstance(language, str) or not language.isidentifier():
        raise InputError(f"language must be a name such as 'python', got {language!r}")
    if parser == "auto":
        parser = "tree-sitter" if _has_tree_sitter(language) or language != "python" else "ast"
    tree = _parse_tree_sitter(text, language) if parser == "tree-sitter" else _parse_ast(text, language)
    if tree.errors and on_error == "raise":
        raise InputError(f"the code does not parse: {tree.errors[0]}"
                         + (f" (and {len(tree.errors) - 1} more)" if len(tree.errors) > 1 else ""))
    return tree


def _has_tree_sitter(language: str) -> bool:
    import importlib.util

    return (importlib.util.find_spec("tree_sitter") is not None
            and importlib.util.find_spec(f"tree_sitter_{language}") is not None)


def _grammar(language: str):
    import importlib

    try:
        import tree_sitter
    except ImportError:
        raise InputError("parser='tree-sitter' needs the tree-sitter package: pip install 'whybox[code]'") from None
    try:
        mod = importlib.import_module(f"tree_sitter_{language}")
    except ImportError:
        extra = "pip install 'whybox[code]'" if language == "python" else f"pip install tree-sitter-{language}"
        raise InputError(f"no tree-sitter grammar for {language!r}: {extra}") from None
    fn = getattr(mod, "language", None)
    if fn is None:
        raise InputError(f"tree_sitter_{language} has no language() function; it is not a tree-sitter grammar")
    return tree_sitter.Parser(tree_sitter.Language(fn()))


def _char_of_byte(text: str) -> list[int]:
    """Sorted UTF-8 byte offsets at which each character starts (plus the end)."""
    out, b = [], 0
    for ch in text:
        out.append(b)
        b += len(ch.encode("utf-8"))
    out.append(b)
    return out


def _parse_tree_sitter(text: str, language: str) -> SyntaxTree:
    ts = _grammar(language)
    raw = text.encode("utf-8")
    root = ts.parse(raw).root_node
    starts = _char_of_byte(text)

    def char(b: int) -> int:
        return bisect.bisect_left(starts, b)

    nodes: list[SyntaxNode] = []
    errors: list[str] = []
    stack = [(root, None, 0, False)]
    while stack:
        n, parent, depth, in_error = stack.pop()
        kind = "MISSING" if n.is_missing else n.type
        s, e = (0, len(text)) if parent is None else (char(n.start_byte), char(n.end_byte))
        node = SyntaxNode(len(nodes), kind, s, e, bool(n.is_named) or kind in ("ERROR", "MISSING"), parent, depth)
        nodes.append(node)
        if parent is not None:
            nodes[parent].children.append(node.index)
        if kind in ("ERROR", "MISSING") and not in_error:       # an error inside an error is the same one
            what = f"expected {n.type!r}" if kind == "MISSING" else "unexpected code"
            errors.append(f"line {_line_col(text, s)}: {what}" + (f" near {text[s:e][:30]!r}" if e > s else ""))
        stack.extend((c, node.index, depth + 1, in_error or kind == "ERROR") for c in reversed(n.children))
    return SyntaxTree(text, nodes, "tree-sitter", language, errors)


def _line_col(text: str, offset: int) -> str:
    line = text.count("\n", 0, offset) + 1
    return f"{line}:{offset - (text.rfind(chr(10), 0, offset) + 1) + 1}"


_SOFT = {"True": "true", "False": "false", "None": "none"}


def ast_offsets(text: str):
    """``(at, line_start)``: ``at(lineno, col)`` turns an ``ast`` position (line from 1, column in
    UTF-8 bytes) into a character offset of ``text``; ``line_start[i]`` is where line i+1 starts."""
    lines = text.splitlines(keepends=True)
    line_start = [0]
    for ln in lines:
        line_start.append(line_start[-1] + len(ln))

    def at(lineno: int, col_bytes: int) -> int:
        ln = lines[lineno - 1] if lineno - 1 < len(lines) else ""
        return line_start[lineno - 1] + len(ln.encode("utf-8")[:col_bytes].decode("utf-8", "replace"))

    return at, line_start


def _parse_ast(text: str, language: str) -> SyntaxTree:
    if language != "python":
        raise InputError(f"the ast fallback parses Python only; for {language!r} install tree-sitter and its grammar")
    try:
        module = ast.parse(text)
    except SyntaxError as exc:
        where = f"line {exc.lineno}:{(exc.offset or 0)}" if exc.lineno else "somewhere"
        raise InputError(f"the code does not parse ({where}: {exc.msg}); the ast parser cannot keep the part "
                         "that parses: install whybox[code] (tree-sitter) for that") from None
    at, line_start = ast_offsets(text)
    spans: list[tuple[int, int, int, str, bool]] = []      # start, end, order, type, named
    order = 0
    for node in ast.walk(module):
        if isinstance(node, ast.Module) or getattr(node, "end_lineno", None) is None:
            continue
        s, e = at(node.lineno, node.col_offset), at(node.end_lineno, node.end_col_offset)
        if e > s:
            spans.append((s, e, order, type(node).__name__, True))
            order += 1
    for tok in tokenize.generate_tokens(io.StringIO(text).readline):
        s, e = line_start[tok.start[0] - 1] + tok.start[1], line_start[tok.end[0] - 1] + tok.end[1]
        if e <= s or tok.type in (tokenize.NEWLINE, tokenize.NL, tokenize.INDENT, tokenize.DEDENT,
                                  tokenize.ENDMARKER):
            continue
        if tok.type == tokenize.NAME:
            kind, named = (_SOFT[tok.string], True) if tok.string in _SOFT else \
                ((tok.string, False) if keyword.iskeyword(tok.string) else ("identifier", True))
        elif tok.type == tokenize.OP:
            kind, named = tok.string, False
        elif tok.type == tokenize.NUMBER:
            kind, named = ("integer" if tok.string.replace("_", "").isdigit() or tok.string[:2].lower() in
                           ("0x", "0o", "0b") else "float"), True
        elif tok.type == tokenize.STRING:
            kind, named = "string", True
        elif tok.type == tokenize.COMMENT:
            kind, named = "comment", True
        else:
            kind, named = "ERROR", True
        spans.append((s, e, 10 ** 9 + order, kind, named))    # leaves nest inside equal-span ast nodes
        order += 1
    spans.sort(key=lambda t: (t[0], -t[1], t[2]))
    nodes = [SyntaxNode(0, "module", 0, len(text), True, None, 0)]
    stack = [0]
    for s, e, _, kind, named in spans:
        while len(stack) > 1 and not (nodes[stack[-1]].start <= s and e <= nodes[stack[-1]].end):
            stack.pop()
        parent = nodes[stack[-1]]
        if parent.type in ("string", "comment", "integer", "float", "identifier") and parent.index:
            continue                               # a token inside a leaf (f-string parts): the leaf keeps it
        node = SyntaxNode(len(nodes), kind, s, e, named, parent.index, parent.depth + 1)
        nodes.append(node)
        parent.children.append(node.index)
        stack.append(node.index)
    return SyntaxTree(text, nodes, "ast", "python", [])
