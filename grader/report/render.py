"""Reports of a graded lab: a colored terminal table with failures expanded, or JSON."""

from __future__ import annotations

import json
from typing import IO, Sequence

from rich.console import Console
from rich.table import Table
from rich.text import Text

from grader.run.results import SEE_ABOVE, CheckResult, LabResult, TaskResult

STYLE = {"passed": "green", "failed": "red", "error": "red", "timeout": "magenta",
         "not_implemented": "yellow", "skipped": "dim"}


def to_json(result: LabResult) -> str:
    return json.dumps(result.to_json(), indent=2)


def print_text(result: LabResult, title: str, stream: IO[str] | None = None, color: bool | None = None,
               reproduce: str = "") -> None:
    console = Console(file=stream, no_color=color is False, force_terminal=color, highlight=False, soft_wrap=True)
    if result.error:
        console.print(Text("every task stopped on the same problem with the whole module:", style="bold red"))
        console.print(Text("  " + result.error.replace("\n", "\n  ") + "\n"))
    table = Table(title=f"{result.lab}: {title}", title_justify="left", show_lines=False)
    for column in ("task", "status", "points", "checks"):
        table.add_column(column, justify="right" if column in ("points", "checks") else "left")
    for task in result.tasks:
        ran = [c for c in task.checks if c.status != "skipped"]
        passed = sum(c.status == "passed" for c in ran)
        points = f"{as_points(task.score)}/{as_points(task.max_score)}" + (f" (+{as_points(task.pending)} pending)" if task.pending else "")
        table.add_row(task.name, Text(task.status, style=STYLE.get(task.status, "")), points,
                      f"{passed}/{len(ran)}" if task.checks else "-")
    console.print(table)
    for task in result.tasks:
        if task.status in ("passed", "skipped", "not_implemented") or task.message.endswith(SEE_ABOVE):
            continue
        console.print(Text(f"\n{task.name}", style="bold") + Text(f"  {task.status}", style=STYLE.get(task.status, "")))
        for style, line in failure_lines(task):
            console.print(Text(line, style=style))
    skipped = [c for t in result.tasks for c in t.checks if c.status == "skipped" and not c.pending]
    if skipped:
        console.print(Text("\n" + skipped_line(skipped), style="dim"))
    pending = [c for t in result.tasks for c in t.checks if c.pending]
    if pending:
        console.print(Text(f"\n{len(pending)} checks need the reference solutions and are graded on submission: "
                           f"pending, up to {as_points(result.pending)} points", style="dim"))
    missing = [t.name for t in result.tasks if t.status == "not_implemented"]
    if missing:
        console.print(Text(f"\nnot implemented yet: {', '.join(missing)}", style="yellow"))
    console.print(Text(f"\nscore: {score_line(result)}", style="bold") + Text("   " + seed_line(result, reproduce)))
    if result.flags:
        console.print(Text("\nflagged for the instructor: " + "; ".join(result.flags), style="yellow"))
    if result.isolation or result.status == "graded":
        console.print(Text(isolation_line(result.isolation), style="dim"))


def skipped_line(skipped: Sequence[CheckResult]) -> str:
    """One short sentence for the checks this machine cannot run ("CUDA checks skipped: no GPU here")."""
    reasons = sorted({c.message for c in skipped})
    if all(r.startswith("no cuda") for r in reasons):
        return "CUDA checks skipped: no GPU here (they cost no points)"
    return f"{len(skipped)} checks skipped here, at no cost: " + "; ".join(reasons)


def seed_line(result: LabResult, reproduce: str = "") -> str:
    """Where the inputs came from: the seed (and the command that reproduces the run), or, for an official
    run, only its replay token (the seed stays the instructor's)."""
    if result.token:
        return f"official run, replay token {result.token}"
    return f"seed {result.seed}" + (f" (reproduce: {reproduce})" if reproduce else "")


def score_line(result: LabResult) -> str:
    """The score as a person reads it: "88.75/100", or, with checks graded on submission pending,
    "88.75/100 here, up to 1.25 more from checks graded on submission"."""
    more = f" here, up to {as_points(result.pending)} more from checks graded on submission"
    return f"{as_points(result.score)}/{as_points(result.max_score)}" + (more if result.pending else "")


def isolation_line(layers: Sequence[str]) -> str:
    """One line saying which walls the student's code ran behind, and what is missing here."""
    line = "sandbox: " + (", ".join(layers) if layers else "a separate process only")
    if not any(layer.startswith("landlock") for layer in layers):
        line += " (no Landlock on this machine: the code could read any file this user can)"
    return line


def failure_lines(task: TaskResult) -> list[tuple[str, str]]:
    """What went wrong in a task, as (style, line) pairs: each failed check's name (styled),
    the first failure's message in full and the others' first lines (usually the same story)."""
    if not task.checks:
        return [("", "    " + line) for line in task.message.splitlines()]
    lines: list[tuple[str, str]] = []
    for check in task.checks:
        if check.status in ("passed", "skipped") or check.message.startswith("not run:"):
            continue
        message = check.message.splitlines()[:1 if lines else None]  # in full for the first failed check only
        lines.append((STYLE.get(check.status, ""), "  ✗ " + check.name + (" (a gate)" if check.gate else "")))
        lines += [("", "    " + line) for line in message]
    return lines


def as_points(x: float) -> str:
    """A number of points as a person writes it: 7, 2.5, 0.333333 (six significant digits at most)."""
    return str(int(x)) if float(x).is_integer() else f"{x:g}"
