"""Read a student's source (as text, never by importing it) for banned names, and for the constructs
that reach around a ban.

The reading is structural: names are resolved through imports (``import torch as T``,
``from torch import _C``) and simple assignments (``C = torch._C``, ``f = getattr(torch, "_C")``),
``getattr(obj, "name")`` counts as ``obj.name``, and the code read is everything the task's function
can run: the function itself, the helpers of the module it refers to (and theirs), and the module's
top-level code, which runs on import. Honest solutions never need the constructs listed in
``CONSTRUCTS`` and ``BUILTINS``, so a lab that bans anything refuses them in every task.
"""

from __future__ import annotations

import ast
import functools
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

# Modules and attributes that open a way around a ban (PyTorch's internals that reach its kernels
# without the names the lab bans, the import machinery, foreign functions): any use of them, or of
# anything inside them, by dotted name.
CONSTRUCTS = {
    "torch._C": "torch._C (PyTorch's C internals, e.g. DisableTorchFunction, _VariableFunctions)",
    "torch._VF": "torch._VF (PyTorch's kernel table)",
    "torch.ops": "torch.ops (PyTorch's operator registry)",
    "torch.overrides": "torch.overrides (switching off PyTorch's function hooks)",
    "ctypes": "ctypes (foreign functions)",
    "importlib": "importlib (the import machinery)",
    "sys.meta_path": "sys.meta_path (the import machinery)",
    "sys.modules": "sys.modules (the table of imported modules)",
    "builtins": "the builtins module",
    "inspect": "inspect (frames and source of other code)",
    "operator.attrgetter": "operator.attrgetter (an attribute lookup by a name given as data)",
    "operator.methodcaller": "operator.methodcaller (a method call by a name given as data)",
}
# Built-in names whose use reaches around a ban: code built from strings, files, the interpreter's own tables.
BUILTINS = {
    "eval": "eval()",
    "exec": "exec()",
    "compile": "compile()",
    "__import__": "__import__()",
    "open": "open() of a file",
    "globals": "globals()",
    "vars": "vars()",
    "__builtins__": "__builtins__",
}
# Attribute lookups by a name computed at run time (a name built from strings escapes any reading of names).
COMPUTED = ("getattr", "setattr", "delattr")
# Attributes that lead from any object to any other (the globals of a function, every class in the process).
DUNDERS = ("__subclasses__", "__globals__", "__builtins__", "__code__", "__closure__", "__import__", "__loader__",
           "__spec__", "__dict__")


@dataclass(frozen=True, order=True)
class Finding:
    """One banned name or construct at a line of the module."""

    line: int
    what: str  # "torch._C (...)", "getattr with a computed name", or a banned dotted name
    banned_name: bool = False  # a name the lab bans (rather than a construct that reaches around a ban)


def findings(path: Path, function: str, banned: Sequence[str]) -> list[Finding]:
    """Every banned name (``banned``) and construct in the code ``function`` can run, by line."""
    try:
        stat = path.stat()
    except OSError:
        return []
    return list(_findings(str(path), stat.st_mtime_ns, stat.st_size, function, tuple(banned)))


@functools.lru_cache(maxsize=256)
def _findings(path: str, mtime: int, size: int, function: str, banned: tuple[str, ...]) -> tuple[Finding, ...]:
    module = _read_module(path, mtime, size, banned)
    if module is None:
        return ()
    tree, reader = module
    return tuple(sorted(set[Finding]().union(*map(reader.read, reachable(tree, function)))))


@functools.lru_cache(maxsize=32)
def _read_module(path: str, mtime: int, size: int, banned: tuple[str, ...]) -> tuple[ast.Module, _Reader] | None:
    """A module parsed once (per version of the file), with one reader for all its tasks: the top-level
    code and the shared helpers every task can run are read once, not once per task."""
    try:
        tree = ast.parse(Path(path).read_text(encoding="utf-8"))
    except (OSError, SyntaxError, ValueError, UnicodeDecodeError):
        return None
    return tree, _Reader(tree, banned)


def reachable(tree: ast.Module, function: str) -> list[ast.AST]:
    """The parts of a module ``function`` can run: the module's top-level code (run on import, with every
    class body and every decorator and default value), the function, and the functions it refers to."""
    defs = {n.name: n for n in tree.body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))}
    todo: list[ast.AST] = []
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            todo += [*node.decorator_list, *node.args.defaults, *(d for d in node.args.kw_defaults if d is not None)]
        else:
            todo.append(node)
    if function in defs:
        todo.append(defs[function])
    seen = {function}  # (a name that is not a function of the module is never looked up in ``defs``)
    done: list[ast.AST] = []
    while todo:
        part = todo.pop()
        done.append(part)
        for inner in ast.walk(part):
            if isinstance(inner, ast.Name) and inner.id in defs and inner.id not in seen:
                seen.add(inner.id)
                todo.append(defs[inner.id])
    return done


class _Reader:
    """Finds banned names and constructs in a part of a module, resolving names through the whole
    module's imports and simple assignments."""

    def __init__(self, tree: ast.Module, banned: tuple[str, ...]):
        self.banned = banned
        self._read: dict[int, set[Finding]] = {}  # id of a part of ``tree`` (kept alive by the cache) -> findings
        self.leaves = {b.rpartition(".")[2]: b for b in banned}
        self.aliases: dict[str, str] = {}
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                for a in node.names:
                    self.aliases[a.asname or a.name.partition(".")[0]] = a.name if a.asname else a.name.partition(".")[0]
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                for a in node.names:
                    self.aliases[a.asname or a.name] = f"{node.module}.{a.name}"
        imported = set(self.aliases)
        for _ in range(3):  # chains of assignments: a = torch; b = a._C
            for node in ast.walk(tree):
                if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name) \
                        and node.targets[0].id not in imported:
                    dotted = self.dotted(node.value)
                    if dotted is not None and dotted.partition(".")[0] != node.targets[0].id:
                        self.aliases[node.targets[0].id] = dotted

    def dotted(self, node: ast.AST) -> str | None:
        """The dotted name an expression stands for (through aliases and literal getattr), or None."""
        parts: list[str] = []
        while isinstance(node, ast.Attribute) or _literal_getattr(node):
            if isinstance(node, ast.Attribute):
                parts.append(node.attr)
                node = node.value
            else:
                assert isinstance(node, ast.Call)
                parts.append(node.args[1].value)  # type: ignore[attr-defined]
                node = node.args[0]
        if not isinstance(node, ast.Name):
            return None
        head = self.aliases.get(node.id, node.id)
        return ".".join([head, *reversed(parts)])

    def read(self, root: ast.AST) -> set[Finding]:
        """The findings in one part of the module (each part read once: parts are shared between tasks)."""
        if id(root) not in self._read:
            self._read[id(root)] = self._read_part(root)
        return self._read[id(root)]

    def _read_part(self, root: ast.AST) -> set[Finding]:
        found: set[Finding] = set()
        callees = {id(n.func) for n in ast.walk(root) if isinstance(n, ast.Call)}
        for node in ast.walk(root):
            line = getattr(node, "lineno", 0)
            if isinstance(node, ast.Import):
                for a in node.names:
                    found |= self._named(a.name, line)
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                for a in node.names:
                    found |= self._named(f"{node.module}.{a.name}", line)
            elif isinstance(node, (ast.Attribute, ast.Name)) or _literal_getattr(node):
                dotted = self.dotted(node)
                if dotted is not None:
                    found |= self._named(dotted, line)
                if isinstance(node, ast.Attribute) and node.attr in DUNDERS:
                    found.add(Finding(line, f"the attribute {node.attr}"))
                if isinstance(node, ast.Name) and node.id in BUILTINS and node.id not in self.aliases:
                    found.add(Finding(line, BUILTINS[node.id]))
                if isinstance(node, ast.Name) and node.id in COMPUTED and id(node) not in callees:
                    found.add(Finding(line, f"{node.id} passed around (a lookup by a name computed elsewhere)"))
            if isinstance(node, ast.Call):
                name = self.dotted(node.func) or ""
                if name in COMPUTED or name in {f"builtins.{c}" for c in COMPUTED}:
                    if len(node.args) < 2 or not (isinstance(node.args[1], ast.Constant)
                                                  and isinstance(node.args[1].value, str)):
                        found.add(Finding(line, f"{name.rpartition('.')[2]} with a computed name"))
            elif isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value in self.leaves:
                found.add(Finding(line, self.leaves[node.value], banned_name=True))
        return found

    def _named(self, dotted: str, line: int) -> set[Finding]:
        within = (dotted + ".").startswith  # within(prefix + "."): dotted is prefix or a name inside it
        return ({Finding(line, what) for prefix, what in CONSTRUCTS.items() if within(prefix + ".")}
                | {Finding(line, name, banned_name=True) for name in self.banned if within(name + ".")})


def _literal_getattr(node: ast.AST) -> bool:
    """``getattr(obj, "name")`` (a literal name, so it reads as ``obj.name``)."""
    return (isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "getattr"
            and len(node.args) >= 2 and isinstance(node.args[1], ast.Constant) and isinstance(node.args[1].value, str))
