"""One student's feedback as a person reads it: Markdown or a self-contained HTML page.

``dlkit grade --feedback-format html|md`` writes ``NAME.html`` / ``NAME.md`` beside each ``NAME.json``
(which is always written: it is the cache). Both are made from the JSON report only. Everything in a
report that a student's code can influence (the failure messages quote its exceptions and values)
is escaped: in HTML with ``html.escape`` inside ``<pre>``, under a Content-Security-Policy that
allows no script and no network; in Markdown as a table cell with every punctuation character
escaped, or in a code fence longer than any run of backticks in the text (``grader.summary``).
Files are written without following a link (``O_NOFOLLOW``).
"""

from __future__ import annotations

import html
import os
from pathlib import Path
from typing import Any, Sequence

from grader.report.summary import block, cell
from grader.report.render import as_points

CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:"
STYLE = """body{font:15px/1.45 system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem;color:#222}
table{border-collapse:collapse;margin:1rem 0}td,th{border:1px solid #ccc;padding:.25rem .6rem;text-align:left}
td.num,th.num{text-align:right}pre{background:#f6f6f6;padding:.6rem;overflow:auto;white-space:pre-wrap}
.passed{color:#176c2a}.failed,.error,.timeout{color:#a4161a}.not_implemented{color:#8a6d00}.skipped{color:#777}
.bar{display:inline-block;height:.9rem;background:#4a7bd0;vertical-align:middle}"""



def page(title: str, body: str) -> str:
    """A self-contained HTML page: inline style, no script, nothing fetched."""
    return (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">\n'
            f'<meta http-equiv="Content-Security-Policy" content="{CSP}">\n'
            f'<meta name="viewport" content="width=device-width, initial-scale=1">\n'
            f"<title>{html.escape(title)}</title>\n<style>{STYLE}</style></head>\n<body>\n{body}\n</body></html>\n")


def to_html(report: dict[str, Any], name: str) -> str:
    """One student's feedback page."""
    e = html.escape
    lab = e(str(report.get("lab", "")))
    rows = "\n".join(
        f'<tr><td><a href="#{e(str(t["name"]))}">{e(str(t["name"]))}</a></td>'
        f'<td class="{e(str(t["status"]))}">{e(str(t["status"]))}</td>'
        f'<td class="num">{as_points(t["score"])}/{as_points(t["max_score"])}</td></tr>' for t in report["tasks"])
    details = []
    for task in _failing(report["tasks"]):
        lines = [f'<h3 id="{e(str(task["name"]))}">{e(str(task["name"]))}: '
                 f'<span class="{e(str(task["status"]))}">{e(str(task["status"]))}</span></h3>']
        checks = _failing(task.get("checks", []))
        if not checks and task.get("message"):
            lines.append(f"<pre>{e(str(task['message']))}</pre>")
        for check in checks:
            lines.append(f"<p>✗ {e(str(check.get('name', '')))} ({e(str(check.get('status', '')))})</p>")
            if check.get("message"):
                lines.append(f"<pre>{e(str(check['message']))}</pre>")
        details.append("\n".join(lines))
    status = str(report.get("status", "graded"))
    body = (f"<h1>{e(name)}: {lab}</h1>\n"
            f'<p>score <strong id="score">{as_points(report["score"])}</strong>/{as_points(report["max_score"])}'
            f"{'' if status == 'graded' else ' (' + e(status) + ')'}, seed {e(str(report.get('seed', '')))}; "
            f"reproduce: <code>dlkit check {lab} --seed {e(str(report.get('seed', '')))}</code></p>\n"
            + (f"<p id=\"found\">Note: {e(str(report['found']))}</p>\n" if report.get("found") else "")
            + (f"<p>Every task stopped on the same problem with the whole module:</p>\n<pre>{e(str(report['error']))}"
               "</pre>\n" if report.get("error") else "")
            + f"<table><thead><tr><th>task</th><th>status</th><th class=\"num\">points</th></tr></thead>\n"
            f"<tbody>\n{rows}\n</tbody></table>\n" + "\n".join(details))
    return page(f"{name}: {report.get('lab', '')}", body)


def to_markdown(report: dict[str, Any], name: str) -> str:
    """One student's feedback in Markdown."""
    status = str(report.get("status", "graded"))
    out = [f"# {cell(name)}: {cell(str(report.get('lab', '')))}", "",
           f"Score **{as_points(report['score'])}/{as_points(report['max_score'])}**"
           + ("" if status == "graded" else f" ({cell(status)})")
           + f", seed {cell(str(report.get('seed', '')))}.", ""]
    if report.get("found"):
        out += [f"Note: {cell(str(report['found']), 400)}", ""]
    if report.get("error"):
        out += ["Every task stopped on the same problem with the whole module:", "", block(str(report["error"])), ""]
    out += ["| task | status | points |", "|---|---|---:|"]
    for task in report["tasks"]:
        out.append(f"| {cell(str(task['name']))} | {cell(str(task['status']))} | "
                   f"{as_points(task['score'])}/{as_points(task['max_score'])} |")
    for task in _failing(report["tasks"]):
        out += ["", f"## {cell(str(task['name']))}: {cell(str(task['status']))}"]
        checks = _failing(task.get("checks", []))
        if not checks and task.get("message"):
            out += ["", block(str(task["message"]))]
        for check in checks:
            out += ["", f"- ✗ {cell(str(check.get('name', '')))} ({cell(str(check.get('status', '')))})"]
            if check.get("message"):
                out += ["", block(str(check["message"]))]
    return "\n".join(out) + "\n"


def _failing(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The tasks or checks of a report that neither passed nor were skipped."""
    return [item for item in items if item.get("status") not in ("passed", "skipped")]


def write_file(path: Path, text: str) -> None:
    """Write ``text`` to ``path``, refusing to follow a link there."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        out.write(text)


def write_feedback(folder: Path, reports: dict[str, dict[str, Any]], formats: Sequence[str]) -> int:
    """Write each report in each of ``formats`` (json is already there) beside its JSON; return the count."""
    todo = [(name, report, fmt) for name, report in reports.items() for fmt in formats if fmt != "json"]
    for name, report, fmt in todo:
        write_file(folder / f"{name}.{fmt}", (to_html if fmt == "html" else to_markdown)(report, name))
    return len(todo)
