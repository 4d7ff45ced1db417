"""Student stubs, derived from the reference solution.

A stub is the solution module with every public function's body replaced by
``raise NotImplementedError`` (signature, type hints and docstring kept) and
every private helper removed. Module docstring, imports and constants stay, so
a stub reads like the chapter it came from, minus the answers.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

from grader.declare.spec import Lab


def stub_source(solution: str, lab: Lab) -> str:
    """The stub module for a lab, from the source of its reference module."""
    tree = ast.parse(solution)
    lines = solution.splitlines(keepends=True)
    edits: list[tuple[int, int, list[str]]] = []  # (first line, last line) 0-based inclusive -> replacement
    for node in tree.body:
        if not isinstance(node, ast.FunctionDef):
            continue
        first = _leading_comments(lines, min([d.lineno for d in node.decorator_list] + [node.lineno]) - 1)
        last = node.end_lineno - 1  # type: ignore[operator]
        if node.name.startswith("_"):
            edits.append((first, last, []))
            continue
        doc_end = node.body[0].end_lineno if ast.get_docstring(node) is not None else node.body[0].lineno - 1
        indent = " " * node.body[0].col_offset
        kept = lines[first:doc_end]  # type: ignore[misc]
        kept.append(f'{indent}raise NotImplementedError("Task {lab.name}.{node.name}: not implemented yet")\n')
        edits.append((first, last, kept))
    for first, last, replacement in reversed(edits):
        lines[first:last + 1] = replacement
    return re.sub(r"\n{4,}", "\n\n\n", _without_empty_sections("".join(lines))).rstrip() + "\n"


def _without_empty_sections(text: str) -> str:
    """Drop each section banner (``# ---- title``, or ``# ----`` / ``# title`` / ``# ----``) that has no code
    under it before the next banner or the end: the section of private helpers, say, once they are removed."""
    lines = text.splitlines(keepends=True)
    kept: list[str] = []
    i = 0
    while i < len(lines):
        if not lines[i].startswith("# ---"):
            kept.append(lines[i])
            i += 1
            continue
        end = i + 1  # the banner and the comments and blank lines under it
        while end < len(lines) and (not lines[end].strip() or lines[end].startswith("#")) \
                and not (lines[end].startswith("# ---") and end > i + 2):
            end += 1
        if end < len(lines) and not lines[end].startswith("# ---"):
            kept += lines[i:end]
        i = end
    return "".join(kept) + "\n"


def _leading_comments(lines: list[str], first: int) -> int:
    """Include the comment lines directly above a function (they belong to it)."""
    while first > 0 and lines[first - 1].lstrip().startswith("#") and not lines[first - 1].lstrip().startswith("# --"):
        first -= 1
    return first


def stub_path(root: Path, lab: Lab) -> Path:
    return root / "assignments" / lab.path


def solution_path(root: Path, lab: Lab) -> Path:
    return root / "solutions" / lab.path


def write_stub(root: Path, lab: Lab) -> Path:
    """Regenerate ``assignments/LAB/MODULE.py`` from ``solutions/``."""
    target = stub_path(root, lab)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(stub_source(solution_path(root, lab).read_text(encoding="utf-8"), lab), encoding="utf-8")
    return target
