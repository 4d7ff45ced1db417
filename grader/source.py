"""Read a student's source (as text, never by importing it) for references to banned built-ins."""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Iterator, Sequence


def _aliases(tree: ast.Module) -> dict[str, str]:
    """Module-level import aliases: local name -> dotted name it stands for."""
    found = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for a in node.names:
                found[a.asname or a.name.partition(".")[0]] = a.name if a.asname else a.name.partition(".")[0]
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            for a in node.names:
                found[a.asname or a.name] = f"{node.module}.{a.name}"
    return found


def _dotted(node: ast.AST) -> str | None:
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name):
        parts.append(node.id)
        return ".".join(reversed(parts))
    return None


def banned_references(path: Path, function: str, banned: Sequence[str]) -> Iterator[tuple[str, int]]:
    """(banned name, line) for each reference in ``function`` (or in the module's imports) to a banned name."""
    try:
        tree = ast.parse(path.read_text(encoding="utf-8"))
    except (OSError, SyntaxError, ValueError):
        return
    aliases = _aliases(tree)
    targets = [n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == function]
    leaves = {b.rpartition(".")[2]: b for b in banned}
    for scope in targets:
        for node in ast.walk(scope):
            if isinstance(node, (ast.Attribute, ast.Name)):
                dotted = _dotted(node)
                if dotted is None:
                    continue
                head, _, rest = dotted.partition(".")
                resolved = aliases.get(head, head) + (f".{rest}" if rest else "")
                for b in banned:
                    if resolved == b or resolved.startswith(b + "."):
                        yield b, node.lineno
                        return
            elif isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value in leaves:
                yield leaves[node.value], node.lineno
                return
