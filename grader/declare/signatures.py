"""Read function signatures and docstrings from a module's source, without importing it."""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Signature:
    name: str
    params: tuple[str, ...]
    text: str  # "conv2d_forward(x, w, b, stride=1, padding=0, dilation=1)"
    doc: str

    @property
    def summary(self) -> str:
        """The docstring's first paragraph on one line (a contract that wraps is not cut mid-sentence)."""
        return " ".join(self.doc.strip().split("\n\n")[0].split()) if self.doc else ""


def read_signatures(path: Path) -> dict[str, Signature]:
    """The public top-level functions of a module file, by name; empty if the file is absent."""
    if not path.is_file():
        return {}
    return {node.name: _signature(node) for node in ast.parse(path.read_text(encoding="utf-8")).body
            if isinstance(node, ast.FunctionDef) and not node.name.startswith("_")}


def _signature(node: ast.FunctionDef) -> Signature:
    a = node.args
    names = [p.arg for p in [*a.posonlyargs, *a.args]]
    defaults = [None] * (len(names) - len(a.defaults)) + list(a.defaults)
    parts = [n if d is None else f"{n}={ast.unparse(d)}" for n, d in zip(names, defaults)]
    if a.kwonlyargs:
        parts.append("*")
        parts += [p.arg if d is None else f"{p.arg}={ast.unparse(d)}" for p, d in zip(a.kwonlyargs, a.kw_defaults)]
    params = (*names, *(p.arg for p in a.kwonlyargs))
    return Signature(node.name, params, f"{node.name}({', '.join(parts)})", ast.get_docstring(node) or "")
