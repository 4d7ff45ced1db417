"""The student release: the kit as students get it, with no reference code anywhere in it.

``write_release(out, labs)`` writes a repository a course can push as its students'
template: the stubs and handouts of the chosen labs, the grader (its registry cut to
those labs), the CLI, the packaging, a README for students and a GitHub Actions
workflow that runs the checks on every push and publishes the score in the job
summary. Without ``solutions/`` the checks that need the reference are ``skipped``
("needs the reference solutions (graded on submission)") and their points pending; the
engine looks for solutions nowhere but in its own tree. The modules of mistake producers
that would read as solutions (``Lab.withheld``) are left out too.

Before anything is written the release is proved clean, twice: no line of any reference
function body (``solutions/``) may appear in any file of it (``find_leaks``), and no function
of the grader it ships, spliced in as the student's function of a task it fits, may pass that
task's value checks (``find_working_helpers``).
"""

from __future__ import annotations

import ast
import collections
import dataclasses
import importlib
import inspect
import io
import keyword
import re
import shutil
import tempfile
import tokenize
import warnings
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any, Callable, Iterator, Sequence

from grader import REPO, labs
from grader.declare.spec import Lab
from grader.export.stubs import stub_path

WORKFLOW = Path(".github/workflows/dlkit.yml")
REPORTS = "dlkit-reports"  # where the workflow keeps the JSON reports
TORCH_CPU = "pip install torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu"
# A line of a reference body counts as reference code when it holds at least this many names,
# literals and operators; shorter lines ("return out", "for layer in layers:") are idioms any
# Python file may share.
SIGNIFICANT_TOKENS = 5
IGNORED = shutil.ignore_patterns("__pycache__", ".ipynb_checkpoints", "*.pyc", "*.pyo")  # never copied


class ReleaseError(Exception):
    """The release cannot be written (the message says why, in one line)."""


# ----------------------------------------------------------------------------- the kit


def write_kit(out: Path, chosen: Sequence[Lab], repo: Path = REPO) -> None:
    """The kit's code for the chosen labs: ``cli.py``, ``pyproject.toml``, ``grader/`` with its
    registry cut to those labs, and each lab's ``assignments/`` folder (stub and handout)."""
    for name in ("cli.py", "pyproject.toml"):
        shutil.copyfile(repo / name, out / name)
    _copy_grader(repo / "grader", out / "grader", chosen)
    for lab in chosen:
        stub = stub_path(repo, lab)
        if not stub.is_file():
            raise ReleaseError(f"{lab.name} has no stub {stub.relative_to(repo)} (run 'dlkit stubs {lab.name}')")
        shutil.copytree(stub.parent, out / "assignments" / lab.name, ignore=IGNORED)


def _copy_grader(source: Path, target: Path, chosen: Sequence[Lab]) -> None:
    """The grader package; from ``grader/labs`` only the chosen labs' declarations, and a registry
    listing only them."""
    shutil.copytree(source, target, ignore=lambda folder, names: (
        set(names) if Path(folder) == source / "labs" else IGNORED(folder, names)))
    keep = {labs.MODULES[lab.name].rpartition(".")[2] + ".py" for lab in chosen}
    withheld = {labs.load(name).withheld.rpartition(".")[2] + ".py" for name in labs.names() if labs.load(name).withheld}
    for path in sorted((source / "labs").iterdir()):
        if path.name in withheld:
            continue
        if path.name == "__init__.py":
            (target / "labs" / path.name).write_text(registry_source(path.read_text(encoding="utf-8"), chosen),
                                                     encoding="utf-8")
        elif path.suffix == ".py" and (path.name in keep or not _declares_a_lab(path)):
            shutil.copyfile(path, target / "labs" / path.name)


def _declares_a_lab(path: Path) -> bool:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    return any(isinstance(node, (ast.Assign, ast.AnnAssign)) and "LAB" in _targets(node) for node in tree.body)


def _targets(node: ast.Assign | ast.AnnAssign) -> set[str]:
    targets = node.targets if isinstance(node, ast.Assign) else [node.target]
    return {t.id for t in targets if isinstance(t, ast.Name)}


def registry_source(source: str, chosen: Sequence[Lab]) -> str:
    """``grader/labs/__init__.py`` with its ``MODULES`` table cut to the chosen labs."""
    tree = ast.parse(source)
    node = next((n for n in tree.body if isinstance(n, (ast.Assign, ast.AnnAssign)) and "MODULES" in _targets(n)), None)
    if node is None:
        raise ReleaseError("grader/labs/__init__.py has no MODULES table")
    lines = source.splitlines(keepends=True)
    table = "".join(f'    "{lab.name}": "{labs.MODULES[lab.name]}",\n' for lab in chosen)
    head = lines[node.lineno - 1].split("=")[0].rstrip()
    lines[node.lineno - 1:node.end_lineno] = [f"{head} = {{\n{table}}}\n"]  # type: ignore[misc]
    return "".join(lines)


# ----------------------------------------------------------------------------- the release


def write_release(out: Path, chosen: Sequence[Lab], repo: Path = REPO, classroom: bool = False) -> list[Path]:
    """Write the student release of the chosen labs into ``out`` (absent, empty, or holding only a
    ``.git`` folder); return the files written. Nothing is written if reference code would leak."""
    if not chosen:
        raise ReleaseError("no labs to release")
    _check_target(out, repo)
    with tempfile.TemporaryDirectory(prefix="dlkit-release-") as staging:
        stage = Path(staging) / "release"  # made with the usual permissions, unlike the private staging folder
        stage.mkdir()
        write_kit(stage, chosen, repo)
        (stage / "README.md").write_text(student_readme(chosen), encoding="utf-8")
        (stage / WORKFLOW).parent.mkdir(parents=True)
        (stage / WORKFLOW).write_text(workflow(chosen, classroom), encoding="utf-8")
        (stage / ".gitignore").write_text(f".venv/\n__pycache__/\n*.egg-info/\n.hypothesis/\n{REPORTS}/\n{CLASSROOM_BODY}\n",
                                          encoding="utf-8")
        leaks = find_leaks(stage, reference_lines(repo / "solutions"))
        if leaks:
            where = "; ".join(f"{leak.path}:{leak.line} {leak.text!r}" for leak in leaks[:5])
            raise ReleaseError(f"nothing written: {len(leaks)} lines of reference code would leak into the release "
                               f"({where}{' ...' if len(leaks) > 5 else ''})")
        working = find_working_helpers(stage, chosen)
        if working:
            raise ReleaseError(f"nothing written: {len(working)} functions of the grader it ships pass a task's value "
                               f"checks as the student's function ({'; '.join(working[:5])}"
                               f"{' ...' if len(working) > 5 else ''}): compute them with PyTorch or move them to the "
                               "lab's withheld module")
        shutil.copytree(stage, out, dirs_exist_ok=True)
    return sorted(p for p in out.rglob("*") if p.is_file() and ".git" not in p.relative_to(out).parts)


def _check_target(out: Path, repo: Path) -> None:
    here, there = repo.resolve(), out.resolve()
    if there == here or here.is_relative_to(there):
        raise ReleaseError(f"'{out}' holds the kit itself; write the release to a new folder")
    if out.exists():
        if not out.is_dir():
            raise ReleaseError(f"'{out}' is a file; give a folder for the release")
        if any(p.name != ".git" for p in out.iterdir()):
            raise ReleaseError(f"'{out}' is not empty; give a new or empty folder (a .git folder may stay)")


def student_readme(chosen: Sequence[Lab]) -> str:
    """The README of the release, written for students."""
    rows = "\n".join(f"| {lab.name} | `assignments/{lab.path}` | {lab.title} | "
                     f"{'PyTorch' if lab.kind == 'torch' else 'NumPy'} | {lab.max_score:g} | "
                     f"[handout](assignments/{lab.name}/README.md) |" for lab in chosen)
    first = chosen[0]
    plots = "".join(f"""### Pictures: `dlkit plot {lab.name}`

`dlkit plot {lab.name}` draws {paths.what} to `{lab.name}-paths.png` (`--output` for another file).
It needs matplotlib, an optional extra: `pip install -e '.[plot]'`.

""" for lab in chosen for paths in [lab.plot] if paths is not None)
    return f"""# Deep-learning labs

You implement the core of deep learning yourself (here: {', '.join(lab.title.lower() for lab in chosen)})
and `dlkit check` tells you within seconds, task by task, whether your code is right. When it is not,
it shows the smallest input that breaks it, the expected and the received values, the largest error,
and a hint when the mistake is a known one.

## The labs

| lab | your file | topic | kind | points | handout |
|---|---|---|---|---|---|
{rows}

Each handout (`assignments/LAB/README.md`) explains the concepts, the formulas, worked examples and the
pitfalls. Every function you write already has its signature and docstring; its body raises
`NotImplementedError` until you replace it.

## Setting up (once)

Python 3.11 or later, then, in this folder:

```bash
python3 -m venv .venv
. .venv/bin/activate
{TORCH_CPU}
pip install -e .
```

(The first `pip` line installs the CPU build of PyTorch, much smaller than the default one.)
After that, `. .venv/bin/activate` in a new terminal gives you the `dlkit` command again.

## Checking your work

```bash
dlkit list                                   # the labs and their points
dlkit list {first.name}                              # the tasks of a lab, each with its one-line contract
dlkit check {first.name}                             # grade every task of {first.name}
dlkit check {first.name} {first.tasks[-1].name:<24} # one task (or several)
dlkit check {first.name} --seed 1234                 # replay a run exactly: every report prints its seed
dlkit check {first.name} --format json               # one JSON object, for scripts
```

Exit status: 0 when every task passes, 1 when one does not, 2 for a mistyped command.

Each task is worth points, earned by getting its results right: a task that returns several things
(`dx`, `dW`, `db`) shares its points among them, so each part you get right counts. Checks that any
answer passes (the right shape, raising `ValueError` on bad input, leaving the arguments unchanged,
no banned call) earn nothing on their own, but failing one costs a quarter of the task. Each
handout's grading section says more. Your code runs in a separate process with a time and a memory
limit; what it prints goes nowhere, and a crash or an infinite loop costs only that task.

{plots}### Checks graded on submission

Some checks compare your code with the course's reference solutions, which are not in this repository.
Here they show as `skipped`, with the reason "needs the reference solutions (graded on submission)", and
their points are pending: the score line says so ("88.75/100 here, up to 11.25 more from checks graded
on submission"). When you submit, they run too. Every other check (PyTorch as the oracle, the handout's
worked examples, properties every correct answer has) runs here exactly as it does on submission, on the
same inputs for the same seed, and gives the same points; only the submission's score counts.

## Continuous integration

Every push to GitHub runs `{WORKFLOW}`: it installs PyTorch and this kit, runs `dlkit check` on every
lab and publishes the score table (with each failing task's message) in the run's summary: open the
**Actions** tab, then the run, then **Summary**. The run stays green while tasks fail: the score is
what it reports. A red run means the grading itself could not run (look at its log). The score there
is advisory, feedback for you; your grade is the one computed when you submit.

## Submitting

Submit the files under `assignments/` the way your course says (for example, upload
`assignments/{first.path}` to Gradescope). Keep the file names and the function names and
signatures as they are: the grader finds your code by them.
"""


# Actions pinned by commit (a tag can be moved to other code); the comment names the release.
CHECKOUT = "actions/checkout@11bd71901bbe5b1630ceea73d27597364c9af683  # v4.2.2"
SETUP_PYTHON = "actions/setup-python@a26af69be951a213d495a4c3e4e4022e16d87065  # v5.6.0"
CACHE_RESTORE = "actions/cache/restore@5a3ec84eff668545956fd18022155c47e93e2684  # v4.2.3"
CACHE_SAVE = "actions/cache/save@5a3ec84eff668545956fd18022155c47e93e2684  # v4.2.3"
CLASSROOM_BODY = "dlkit-classroom.json"


def workflow(chosen: Sequence[Lab], classroom: bool = False) -> str:
    """The GitHub Actions workflow of the release: the checks on every push, the score in the summary
    (the comments of the workflow say why each step is as it is)."""
    name = "Autograding Tests" if classroom else "dlkit check"
    permissions = "  contents: read\n" + ("  checks: write\n  actions: read\n" if classroom else "")
    summary = "python -m grader.report.summary" + (f" --classroom {CLASSROOM_BODY}" if classroom else "")
    report = f"""
      - name: Report the points to GitHub Classroom
        # Classroom reads "Points X/Y" from the output of this job's check run (named "Autograding Tests").
        if: always()
        env:
          GH_TOKEN: ${{{{ github.token }}}}
        run: |
          suite=$(gh api "repos/$GITHUB_REPOSITORY/actions/runs/$GITHUB_RUN_ID" --jq .check_suite_id)
          run=$(gh api "repos/$GITHUB_REPOSITORY/check-suites/$suite/check-runs?check_name=Autograding%20Tests" \\
            --jq '.check_runs[0].id')
          gh api --method PATCH "repos/$GITHUB_REPOSITORY/check-runs/$run" --input {CLASSROOM_BODY} > /dev/null
""" if classroom else ""
    return f"""# Generated by `dlkit release`: runs dlkit's checks on every push and publishes the score.
# The run stays green while tasks fail (the score is the output); it fails only when grading breaks.
name: dlkit

on:
  push:
  pull_request:
  workflow_dispatch:

permissions:
{permissions}
jobs:
  check:
    name: {name}
    runs-on: ubuntu-latest
    timeout-minutes: 30
    steps:
      - uses: {CHECKOUT}

      - uses: {SETUP_PYTHON}
        with:
          python-version: "3.11"

      - name: Restore the pip cache
        id: pip-cache
        uses: {CACHE_RESTORE}
        with:
          path: ~/.cache/pip
          key: pip-${{{{ runner.os }}}}-py3.11-${{{{ hashFiles('pyproject.toml') }}}}

      - name: Install PyTorch (CPU) and dlkit
        run: |
          python -m pip install --upgrade pip
          python -m {TORCH_CPU}
          python -m pip install -e .

      - name: Save the pip cache
        # Its own step, so that it is saved on the first run of a key, whatever the checks say.
        if: always() && steps.pip-cache.outputs.cache-hit != 'true'
        uses: {CACHE_SAVE}
        with:
          path: ~/.cache/pip
          key: ${{{{ steps.pip-cache.outputs.cache-primary-key }}}}

      - name: Run the checks
        # Every lab of this repository's registry. Each report goes to a file, never to the log. The
        # runner's command files are taken out of the environment, so nothing run here can write the
        # summary, outputs or environment. A failing task is a score, not an error: the step fails
        # only when dlkit check itself cannot grade (exit status 2 or more).
        run: |
          mkdir -p {REPORTS}
          status=0
          for lab in $(python -c "from grader import labs; print(*labs.names())"); do
            code=0
            env -u GITHUB_STEP_SUMMARY -u GITHUB_OUTPUT -u GITHUB_ENV -u GITHUB_PATH -u GITHUB_STATE \\
              dlkit check "$lab" --format json > "{REPORTS}/$lab.json" 2> "{REPORTS}/$lab.log" || code=$?
            if [ "$code" -gt 1 ]; then
              echo "dlkit check $lab could not grade (exit status $code): see {REPORTS}/$lab.log" >&2
              status=1
            fi
          done
          exit "$status"

      - name: Publish the score
        # The table is built from the JSON reports, with every message escaped.
        if: always()
        run: {summary} {REPORTS}/*.json >> "$GITHUB_STEP_SUMMARY"
{report}"""


# ----------------------------------------------------------------------------- proving it clean


@dataclass(frozen=True)
class Leak:
    path: Path
    line: int
    text: str


def reference_lines(solutions: Path) -> set[str]:
    """Every significant line of every function body in ``solutions/`` (docstrings and comments
    excluded), whitespace-normalised."""
    paths = sorted(solutions.rglob("*.py"))
    return set[str]().union(*(body_lines(path.read_text(encoding="utf-8")) for path in paths))


def body_lines(source: str) -> set[str]:
    """The significant lines of the function bodies of one module (nested functions included)."""
    tree = ast.parse(source)
    numbers: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            body = node.body[1:] if ast.get_docstring(node) is not None else node.body
            if body:
                numbers.update(range(body[0].lineno, node.end_lineno + 1))  # type: ignore[operator]
    tokens = tokenize.generate_tokens(io.StringIO(source).readline)
    weight = collections.Counter(t.start[0] for t in tokens if t.start[0] in numbers and _significant(t))
    lines = source.splitlines()
    return {_normal(lines[n - 1]) for n, count in weight.items() if count >= SIGNIFICANT_TOKENS}


def _significant(token: tokenize.TokenInfo) -> bool:
    if token.type == tokenize.NAME:
        return not keyword.iskeyword(token.string)
    if token.type == tokenize.OP:
        return token.string not in "()[]{},:.;"
    return token.type in (tokenize.NUMBER, tokenize.STRING)


def _normal(line: str) -> str:
    return " ".join(line.split())


def find_leaks(root: Path, reference: set[str]) -> list[Leak]:
    """Every line of every file under ``root`` that is a line of a reference body."""
    paths = sorted(p for p in root.rglob("*") if p.is_file() and ".git" not in p.relative_to(root).parts)
    return [Leak(path.relative_to(root), number, line.strip()) for path in paths
            for number, line in enumerate(path.read_bytes().decode("utf-8", errors="replace").splitlines(), 1)
            if _normal(line) in reference]


# ----------------------------------------------------------------------------- proving no helper works


SHIPPED = "_dlkit_shipped_grader"  # the package name a release's grader is loaded under in a worker
_DISPATCH = '''"""Every function of a release's grader that fits a task, spliced in as that task's function in turn."""

import sys

sys.path.insert(0, {folder!r})

from {package}.export.release import splice_candidates as _splice_candidates

_CANDIDATES = _splice_candidates({lab!r}, {fits!r})
_CHOSEN = {{}}


def _dlkit_select(task, index):
    """Make candidate ``index`` the task's function; return the labels of all the task's candidates."""
    _CHOSEN[task] = index
    return [label for label, _ in _CANDIDATES.get(task, [])]
'''
_TASK = '''

def {name}(*args, **kwargs):
    return _CANDIDATES[{name!r}][_CHOSEN[{name!r}]][1](*args, **kwargs)
'''


def find_working_helpers(root: Path, chosen: Sequence[Lab]) -> list[str]:
    """Every function of the grader shipped under ``root`` (a release) that, spliced in as the student's
    function of a task it fits (its positional parameters can take the task's), passes all of that task's
    value checks that can run there, as "grader/labs/lab3.py: _helper as linear_params".

    Each lab is graded in one worker (the lab's own: a NumPy lab's cannot import torch), which loads the
    release's grader under another name, collects the candidates (``splice_candidates``: module-level
    functions, what the lab's factories return with their defaults, every function a declaration holds)
    and dispatches each task to one candidate after another; a candidate stops at its first failing check.
    """
    from grader.run.engine import PROFILES, worker_config
    from grader.sandbox.host import Limits, Sandbox, package_paths
    from grader.declare.signatures import read_signatures

    found: list[str] = []
    with tempfile.TemporaryDirectory(prefix="dlkit-splice-") as scratch:
        shipped = Path(scratch) / "shipped"
        _copy_renamed(root / "grader", shipped / SHIPPED)
        for lab in chosen:
            signatures = read_signatures(root / "assignments" / lab.path)
            fits = {name: _arity(sig.text) for name, sig in signatures.items()}
            folder = Path(scratch) / "submission" / lab.name
            folder.mkdir(parents=True)
            module = _DISPATCH.format(folder=str(shipped), package=SHIPPED, lab=lab.name, fits=fits)
            module += "".join(_TASK.format(name=task.function) for task in lab.tasks)
            (folder / lab.filename).write_text(module, encoding="utf-8")
            # The worker may read the shipped copy (the release's own grader, nothing of the kit's) and the
            # packages its modules import (Hypothesis, rich and their requirements).
            config = dataclasses.replace(worker_config(lab),
                                         also_readable=(str(shipped), *package_paths(("hypothesis", "rich"))))
            with Sandbox(folder, config, Limits(timeout=10.0)) as box:
                for task in lab.tasks:
                    labels = box.call("_dlkit_select", (task.function, 0)).value
                    for index, label in enumerate(labels if isinstance(labels, list) else []):
                        if _works(task, lab, box, index, signatures.get(task.function), PROFILES["ci"]):
                            found.append(f"{label} as {task.function}")
    return found


def _works(task: Any, lab: Lab, box: Any, index: int, signature: Any, budget: Any) -> bool:
    """Whether candidate ``index`` passes every value check of the task that can run here."""
    from grader.declare.context import Context
    from grader.declare.oracles import available
    from grader.run.engine import check_seed, passes
    from grader.sandbox.host import StudentFailure

    ran = False
    for check in task.checks:
        if check.gate or check.needs_reference:
            continue
        for variant in check.variants:
            if not available(variant.device):
                continue
            try:
                box.call("_dlkit_select", (task.function, index))  # again: a crash restarts the worker
            except StudentFailure:  # the worker had ended since (an earlier candidate's crash): a fresh one
                box.call("_dlkit_select", (task.function, index))
            ctx = Context(lab, task, variant, box, None, signature)
            if not passes(check, ctx, check_seed(0, lab.name, task.name, check.name, variant.label), budget):
                return False
            ran = True
    return ran


def _arity(text: str) -> tuple[int, int]:
    """(required, total) positional parameters of a signature's text "f(x, w, b=None, stride=1)"."""
    args = ast.parse(f"def {text}: pass").body[0].args  # type: ignore[attr-defined]
    total = len(args.posonlyargs) + len(args.args)
    return total - len(args.defaults), total


def _copy_renamed(source: Path, target: Path) -> None:
    """A copy of a grader package whose imports of itself name ``SHIPPED`` instead (the worker refuses
    imports of ``grader``)."""
    shutil.copytree(source, target, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    for path in target.rglob("*.py"):
        text = path.read_text(encoding="utf-8")
        text = re.sub(r"^(\s*)(from|import) grader\b", rf"\1\2 {SHIPPED}", text, flags=re.M)
        text = re.sub(r"([\"'])grader\.", rf"\1{SHIPPED}.", text)
        path.write_text(text, encoding="utf-8")


def splice_candidates(lab: str, fits: dict[str, tuple[int, int]]) -> dict[str, list[tuple[str, Callable[..., Any]]]]:
    """For each task (by function name, with its (required, total) positional parameters), the functions of
    this grader package that fit it, with a label for each: every module's own functions, what a lab
    module's functions return when called with their defaults (the mistakes' factories), and every function
    held by a module's data (the lab's declaration: oracles, properties, mistakes). Run in a worker."""
    package = __name__.partition(".")[0]
    root = Path(__file__).parents[1]
    found: list[tuple[str, Callable[..., Any]]] = []
    seen: set[int] = set()
    names = sorted(".".join((package, *p.relative_to(root).with_suffix("").parts))
                   for p in root.rglob("*.py") if p.stem != "__init__")
    for name in names:
        try:
            with warnings.catch_warnings(action="ignore"):
                module = importlib.import_module(name)
        except BaseException:  # noqa: BLE001 - a module that cannot load here has nothing to run here
            continue
        where = f"grader/{name[len(package) + 1:].replace('.', '/')}.py"
        found += _functions(module, where, seen, factories=".labs." in name)
    return {task: [(label, fn) for label, fn in found if _fits(fn, *arity)] for task, arity in fits.items()}


def _functions(module: ModuleType, where: str, seen: set[int], factories: bool) -> Iterator[tuple[str, Callable[..., Any]]]:
    """The functions of a module and of its data (at most a few levels deep), each once."""
    def walk(value: Any, label: str, depth: int) -> Iterator[tuple[str, Callable[..., Any]]]:
        if id(value) in seen or depth > 6 or isinstance(value, (type, ModuleType, str, bytes)):
            return
        if callable(value) and inspect.isfunction(value):
            seen.add(id(value))
            if value.__module__ not in (module.__name__, None) and depth == 0:
                return  # imported from elsewhere: listed with its own module
            yield label, value
            if factories and depth == 0 and _all_defaults(value):
                try:
                    with warnings.catch_warnings(action="ignore"):
                        made = value()
                except BaseException:  # noqa: BLE001 - not a factory after all
                    return
                yield from walk(made, f"{label}()", depth + 1)
            return
        seen.add(id(value))
        if dataclasses.is_dataclass(value):
            for field in dataclasses.fields(value):
                yield from walk(getattr(value, field.name, None), f"{label}.{field.name}", depth + 1)
        elif isinstance(value, (list, tuple)):
            for i, item in enumerate(value):
                yield from walk(item, f"{label}[{i}]", depth + 1)
        elif isinstance(value, dict):
            for key, item in value.items():
                yield from walk(item, f"{label}[{key!r}]", depth + 1)

    for name, value in sorted(vars(module).items()):
        if not name.startswith("__"):
            yield from ((f"{_defined_in(fn, where)}: {label}", fn) for label, fn in walk(value, name, 0))


def _defined_in(fn: Callable[..., Any], where: str) -> str:
    """The file of the shipped grader that defines ``fn`` (``where`` it was found, for anything else)."""
    package, _, rest = str(getattr(fn, "__module__", "")).partition(".")
    return f"grader/{rest.replace('.', '/')}.py" if package == SHIPPED and rest else where


def _all_defaults(fn: Callable[..., Any]) -> bool:
    try:
        params = inspect.signature(fn).parameters.values()
    except (TypeError, ValueError):
        return False
    return all(p.default is not p.empty or p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD) for p in params)


def _fits(fn: Callable[..., Any], required: int, total: int) -> bool:
    """Whether ``fn`` can be called with a task's positional arguments: all of the required ones, and
    needs no more than the task has."""
    try:
        params = list(inspect.signature(fn).parameters.values())
    except (TypeError, ValueError):
        return False
    positional = [p for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    needed = [p for p in positional if p.default is p.empty]
    if any(p.kind == p.KEYWORD_ONLY and p.default is p.empty for p in params):
        return False
    varargs = any(p.kind == p.VAR_POSITIONAL for p in params)
    return len(needed) <= total and (len(positional) >= required or varargs)
