"""dlkit: deep-learning labs with instant, precise feedback.

One root group, one verb per job. Every command's first docstring line is its
help text; bad input exits with status 2 and one line saying what to fix.
"""

from __future__ import annotations

import dataclasses
import difflib
import hashlib
import json
import os
import random
import sys
import time
from pathlib import Path
from typing import Any, Sequence

import click

from grader import REPO, labs
from grader.declare.spec import Lab, Task



class Problem(click.ClickException):
    """A usage error: one line on stderr, exit status 2."""

    exit_code = 2


class DlkitGroup(click.Group):
    """A group whose usage errors are one line, never a usage dump or a traceback."""

    def main(self, *args: Any, **kwargs: Any) -> Any:
        kwargs["standalone_mode"] = False
        try:
            code = super().main(*args, **kwargs)
        except click.UsageError as error:
            command = error.ctx.command_path if error.ctx else "dlkit"
            click.echo(f"Error: {error.format_message()} (see '{command} --help')", err=True)
            sys.exit(2)
        except click.ClickException as error:
            error.show()
            sys.exit(error.exit_code)
        except click.exceptions.Abort:
            click.echo("Aborted.", err=True)
            sys.exit(1)
        sys.exit(code if isinstance(code, int) else 0)


def _did_you_mean(name: str, known: Sequence[str]) -> str:
    """" (did you mean 'lab3'?)" for a name close to a known one (difflib), or ""."""
    close = difflib.get_close_matches(name, known, n=1, cutoff=0.8)
    return f" (did you mean '{close[0]}'?)" if close else ""


def _lab(name: str, param: str = "LAB") -> Lab:
    """The lab called ``name``, in any case ("Lab3", "LAB3"); a usage error naming the labs otherwise."""
    key = name.strip().lower()
    if key not in labs.MODULES:
        raise click.BadParameter(f"unknown lab '{name}'{_did_you_mean(key, labs.names())}; the labs are: "
                                 f"{', '.join(labs.names())}", param_hint=f"'{param}'")
    return labs.load(key)


def _tasks(spec: Lab, names: Sequence[str]) -> tuple[str, ...]:
    """The lab's tasks called ``names``, in any case; a usage error naming its tasks otherwise."""
    known = [t.name for t in spec.tasks]
    found = []
    for name in names:
        key = name.strip().lower()
        if key not in known:
            raise click.BadParameter(f"{spec.name} has no task '{name}'{_did_you_mean(key, known)}; its tasks are: "
                                     f"{', '.join(known)}", param_hint="'TASKS'")
        found.append(key)
    return tuple(found)


@click.group(cls=DlkitGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="dlkit", message="%(prog)s %(version)s")
def main() -> None:
    """Deep-learning labs, graded instantly: dlkit check lab3."""


@main.command("list")
@click.argument("lab", required=False)
def list_(lab: str | None) -> None:
    """List the labs, or one lab's tasks and points."""
    from grader.declare.signatures import read_signatures

    if lab is None:
        for name in labs.names():
            spec = labs.load(name)
            click.echo(f"{name}  {spec.title:<40} {len(spec.tasks):>2} tasks  {spec.max_score:g} points  "
                       f"({spec.path}, {'PyTorch' if spec.kind == 'torch' else 'NumPy'})")
        return
    spec = _lab(lab)
    signatures = read_signatures(REPO / "assignments" / spec.path)
    click.echo(f"{spec.name}: {spec.title} ({spec.path})")
    width = max(len(t.name) for t in [*spec.tasks, Task("total", 0, ())])
    for task in spec.tasks:
        sig = signatures.get(task.function)
        summary = task.summary or (sig.summary if sig else "")
        click.echo(f"  {task.name:<{width}} {task.points:>4g} pts  {summary}")
    click.echo(f"  {'total':<{width}} {spec.max_score:>4g} pts")


def _worker_users(spec: str | None) -> Any:
    """The pool of users the students' code runs as (None: the grader's own user, behind the walls)."""
    if spec is None:
        return None
    from grader.export.gradescope import worker_user_problem
    from grader.sandbox.host import WorkerUsers

    try:
        users = WorkerUsers(spec)
    except ValueError as error:
        raise Problem(str(error)) from None
    problem = worker_user_problem(users)
    if problem:
        raise Problem(problem)
    return users


@main.command()
@click.argument("lab")
@click.argument("tasks", nargs=-1)
@click.option("--submission", type=click.Path(file_okay=False, path_type=Path), default=Path("assignments"),
              show_default=True, help="Folder laid out like assignments/ (it holds LAB/<module>.py).")
@click.option("--format", "fmt", type=click.Choice(["text", "json", "gradescope"]), default="text", show_default=True,
              help="A table for people, one JSON object for programs, or Gradescope's results.json.")
@click.option("--seed", type=click.IntRange(0, 2**32 - 1), default=None,
              help="Seed for the generated inputs; the report prints it. Default: a new one each run.")
@click.option("--profile", type=click.Choice(["default", "ci", "thorough"]), default=None,
              help="How many inputs each check tries (default: $DLKIT_PROFILE or 'default').")
@click.option("--worker-user", metavar="USERS", default=None,
              help="Run the student's code as these unprivileged users (needs root): a user, a list a,b, a family "
                   "dlkit-w{0..7} or a uid range 60000-60007. The Gradescope autograder uses it.")
@click.option("--output", "-o", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Write the report to this file (opened only after every process the code started has ended) "
                   "instead of standard output.")
@click.option("--find-module", is_flag=True,
              help="The submission is an upload: take LAB's module wherever it is in the folder (as "
                   "'dlkit gradescope collect' finds it), not only at LAB/<module>.py.")
@click.option("--visibility", "visibility", metavar="KEY=VALUE", multiple=True,
              help="Gradescope format: who sees a test when (KEY: default, reference or a task; VALUE: visible, "
                   "after_due_date, after_published, hidden).")
@click.option("--submission-metadata", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Gradescope format: submission_metadata.json, for the lateness in extra_data.")
@click.option("--late-policy", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None,
              help="Gradescope format: a Python file whose adjust(score, max_score, late_seconds, metadata) sets "
                   "the score of a late submission.")
@click.option("--secret-file", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="An official run (instructors): the seed comes from this secret, --identity and the submission's "
                   "files, and the report shows only its replay token.")
@click.option("--identity", default=None, help="The submission's name for an official seed (default: the folder's name).")
@click.option("--replay", metavar="TOKEN", default=None,
              help="Replay the official run a report's token stands for (needs --secret-file).")
@click.option("--watch", is_flag=True,
              help="Stay running and regrade each time the module is saved: the changed tasks first, then the rest "
                   "(text: the screen redrawn; json: one object per line). Ctrl-C stops.")
def check(lab: str, tasks: Sequence[str], submission: Path, fmt: str, seed: int | None, profile: str | None,
          worker_user: str | None, output: Path | None, find_module: bool, visibility: Sequence[str],
          submission_metadata: Path | None, late_policy: Path | None, secret_file: Path | None,
          identity: str | None, replay: str | None, watch: bool) -> None:
    """Grade one lab of a submission (all tasks, or the TASKS named)."""
    from grader.sandbox.host import contain

    contain()  # this process adopts, and ends, whatever the student's code starts
    spec = _lab(lab)
    lab, tasks = spec.name, _tasks(spec, tasks)
    if not submission.is_dir():
        raise Problem(f"no submission folder '{submission}' (expected a folder laid out like assignments/)")
    from grader.run.engine import PROFILES, draws_ahead, grade_lab
    from grader.report.render import print_text, to_json

    profile = profile or os.environ.get("DLKIT_PROFILE", "default")
    if profile not in PROFILES:
        raise Problem(f"unknown profile '{profile}' in DLKIT_PROFILE; use one of {', '.join(PROFILES)}")
    if watch:
        alone = {"TASKS": tasks, "--output": output, "--find-module": find_module, "--secret-file": secret_file,
                 "--replay": replay, "--identity": identity, "--visibility": visibility,
                 "--submission-metadata": submission_metadata, "--late-policy": late_policy}
        clash = [name for name, value in alone.items() if value] + (["--format gradescope"] if fmt == "gradescope" else [])
        if clash:
            raise Problem(f"--watch grades the whole lab to the terminal: leave out {', '.join(clash)}")
        _watch(spec, submission, fmt, seed, PROFILES[profile], _worker_users(worker_user))
    shown = _visibility(spec, visibility)
    users = _worker_users(worker_user)
    launcher = _launcher(spec, users)
    secret = _secret(secret_file)
    token: str | None = None
    if (replay or identity) and secret is None:
        raise Problem("--replay and --identity need the instructor's --secret-file")
    if secret is not None and seed is not None:
        raise Problem("an official run takes its seed from the secret: leave out --seed")
    found = _found(spec, submission) if find_module else None
    if secret is not None:
        seed, token = _official_seed(spec, submission, secret, identity, replay, found.files if found else None)
    seed = random.SystemRandom().randrange(2**32) if seed is None else seed
    # Two grading processes share the tasks, each with a worker of its own (both forked from the one zygote,
    # over a socket each: lab 4 2.15 s with one process, 1.73 s with two), and a third draws their inputs
    # meanwhile where that is faster (``engine.draws_ahead``).
    jobs = 2 if (os.cpu_count() or 1) > 1 else 1
    started = time.monotonic()
    try:
        result = grade_lab(spec, submission, seed=seed, tasks=tasks, budget=PROFILES[profile], jobs=jobs,
                           ahead=draws_ahead(spec, jobs), launcher=launcher, find_module=find_module, files=found.files if found else None)
    finally:
        launcher.close(wait=False)  # its workers have ended; it ends as soon as it reads that it may
    if token is not None:
        result = dataclasses.replace(result, token=token)
    again = " ".join(["dlkit check", lab, *tasks] + ([f"--submission {submission}"] if str(submission) != "assignments" else [])
                     + [f"--seed {seed}"])
    # Every worker, and everything they started, has ended (grade_lab saw to it): only now is the report written.
    if fmt == "json":
        _emit(to_json(result), output)
    elif fmt == "gradescope":
        from grader.export import gradescope

        from grader.export.gradescope_policy import apply_lateness, apply_visibility

        data = gradescope.results(result, spec.title, time.monotonic() - started, f"dlkit check {lab} --seed {seed}",
                                  found.note if found else "")
        data = apply_lateness(apply_visibility(data, result, spec, shown), submission_metadata, late_policy)
        _emit(json.dumps(data, indent=2, ensure_ascii=False), output)
    elif output is not None:
        import io

        buffer = io.StringIO()
        print_text(result, spec.title, stream=buffer, color=False, reproduce=again)
        _emit(buffer.getvalue().rstrip("\n"), output)
    else:
        print_text(result, spec.title, reproduce=again)
    sys.exit(0 if result.passed else 1)


def _watch(spec: Lab, submission: Path, fmt: str, seed: int | None, budget: Any, users: Any) -> None:
    """``check --watch``: a warm grader that regrades on every save until Ctrl-C (exit 0, no traceback)."""
    seed = random.SystemRandom().randrange(2**32) if seed is None else seed
    watcher = None
    try:
        from grader.report.render import print_text
        from grader.run.watch import Watcher

        watcher = Watcher(spec, submission, seed=seed, budget=budget, users=users)
        module = submission / spec.path
        again = f"dlkit check {spec.name}" + (f" --submission {submission}" if str(submission) != "assignments"
                                              else "") + f" --seed {seed}"  # one run reproduces a report
        while True:
            for run in watcher.runs():
                if fmt == "json":
                    data = dict(run.result.to_json(), watch={"part": run.part, "changed": list(run.changed)})
                    click.echo(json.dumps(data))
                    continue
                if sys.stdout.isatty():
                    click.echo("\033[2J\033[H", nl=False)  # clear the screen, cursor home
                else:
                    click.echo("\n" + "=" * 60)
                what = ("every task" if run.part == "lab" else "the changed tasks first: " + ", ".join(run.changed)
                        + " (the rest follow)")
                click.echo(f"{time.strftime('%H:%M:%S')} {module}: {what}")
                print_text(run.result, spec.title, reproduce=again)
            if fmt != "json":
                click.echo(f"\nwatching {module} for changes (Ctrl-C to stop)")
            watcher.wait()
    except KeyboardInterrupt:
        pass
    finally:
        if watcher is not None:
            watcher.close()
    sys.exit(0)


def _launcher(spec: Lab, users: Any) -> Any:
    """How ``check`` starts workers: forked from a zygote started now, which imports NumPy (and PyTorch for a
    PyTorch lab) while this process imports its own, so that a worker costs a fork, not an interpreter's start.
    (Started before the declaration loads, it took a core from this process's own imports: slower.)"""
    from grader.sandbox.host import ZygoteLauncher

    zygote = ZygoteLauncher(spec.kind, users, meta=spec.meta)
    zygote.start()
    return zygote


def _visibility(spec: Lab, specs: Sequence[str]) -> dict[str, str]:
    from grader.export.gradescope_policy import parse_visibility

    try:
        return parse_visibility(specs, spec)
    except ValueError as error:
        raise click.BadParameter(str(error), param_hint="'--visibility'") from None


def _found(spec: Lab, submission: Path) -> Any:
    """An upload's module as ``dlkit grade`` and ``gradescope collect`` find it (a notebook included), with
    the note of how; None when there is none (grade_lab then says why)."""
    from grader.export.notebook import notebook_module
    from grader.sandbox.intake import BadSubmission, discover

    try:
        return discover(submission, spec.name, spec.module, notebook_module)
    except BadSubmission:
        return None


def _secret(path: Path | None) -> bytes | None:
    """The instructor's secret for official seeds, or None."""
    if path is None:
        return None
    from grader.run.seeds import SecretError, read_secret

    try:
        return read_secret(path)
    except SecretError as error:
        raise Problem(str(error)) from None


def _official_seed(spec: Lab, submission: Path, secret: bytes, identity: str | None, replay: str | None,
                   files: Any) -> tuple[int, str]:
    """(seed, token) of an official run: replayed from a token, or derived from the submission's files."""
    from grader.run import seeds
    from grader.run.engine import read_submission
    from grader.sandbox.intake import BadSubmission

    if replay is not None:
        try:
            return seeds.replay(secret, replay), replay
        except seeds.SecretError as error:
            raise Problem(str(error)) from None
    try:
        digest = (files or read_submission(spec, submission)).digest()
    except BadSubmission as bad:
        digest = f"{bad.status}:{bad.reason}"
    chosen = seeds.official(secret, spec.name, identity or submission.resolve().name, digest)
    return chosen.seed, chosen.token


def _emit(text: str, output: Path | None) -> None:
    if output is None:
        click.echo(text)
    else:
        output.write_text(text + "\n", encoding="utf-8")


@main.command()
@click.argument("lab")
@click.option("--submission", type=click.Path(file_okay=False, path_type=Path), default=Path("assignments"),
              show_default=True, help="Folder laid out like assignments/ (it holds LAB/<module>.py).")
@click.option("--output", "-o", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="The PNG to write (default: LAB-paths.png in the current folder).")
@click.option("--optimizer", "optimizers", metavar="NAME", multiple=True,
              help="Draw only this optimizer (repeat for more; default: all seven).")
@click.option("--surface", "surfaces", type=click.Choice(["quadratic", "rosenbrock"]), multiple=True,
              help="Draw only this surface (repeat for both; default: both).")
@click.option("--steps", type=click.IntRange(1, 20000), default=None,
              help="Steps on every surface (default: 40 on the quadratic, 1500 on Rosenbrock).")
@click.option("--schedules/--no-schedules", default=True, show_default=True,
              help="Also draw the learning-rate schedules, lr against t.")
def plot(lab: str, submission: Path, output: Path | None, optimizers: Sequence[str], surfaces: Sequence[str],
         steps: int | None, schedules: bool) -> None:
    """Draw your optimizers' paths next to torch.optim's on 2-D loss surfaces, and your schedules, to a PNG (lab2)."""
    from grader.export import plot as drawing

    spec = _lab(lab)
    paths = spec.plot
    if paths is None:
        raise Problem(f"{spec.name} has nothing to plot; plots exist for: " + ", ".join(
            f"{other.name} ({other.plot.what})" for other in map(labs.load, labs.names()) if other.plot))
    from grader.export import trajectories

    unknown = [name for name in optimizers if name not in paths.optimizers]
    if unknown:
        raise Problem(f"no optimizer '{unknown[0]}' in {spec.name}; the optimizers are: "
                      f"{', '.join(paths.optimizers)}")
    if drawing.missing():
        raise Problem(drawing.missing())
    from grader.run.engine import read_submission, worker_config
    from grader.sandbox.intake import BadSubmission
    from grader.sandbox.host import Sandbox, contain

    contain()
    if not submission.is_dir():
        raise Problem(f"no submission folder '{submission}'")
    try:
        files = read_submission(spec, submission)
    except BadSubmission as bad:
        raise Problem(bad.reason) from None
    output = output or Path(f"{spec.name}-paths.png")
    chosen = [n for n in paths.optimizers if n in optimizers] if optimizers else list(paths.optimizers)
    where = [trajectories.surface(n) for n in ("quadratic", "rosenbrock") if not surfaces or n in surfaces]
    module = submission / spec.path
    digest = hashlib.sha256(files.files[spec.filename]).hexdigest()
    with Sandbox(files, worker_config(spec)) as sandbox:
        sandbox.start()
        if not sandbox.ready():
            assert sandbox.import_failure is not None
            click.echo(f"{module} did not import, so there is nothing of yours to draw:\n  "
                       f"{sandbox.import_failure.describe()}", err=True)
            sys.exit(1)
        races = trajectories.race(sandbox, paths, where, chosen, steps)
        curves = trajectories.curves(sandbox, paths) if schedules else []
    click.echo(trajectories.report(races, module, curves))
    astray = list(dict.fromkeys([r.optimizer for r in races if r.departs is not None
                                 or r.yours.brief not in ("", "not implemented yet")]
                                + [c.schedule.name for c in curves if c.departs is not None
                                   or c.brief not in ("", "not implemented yet")]))
    if astray:
        again = " ".join(["dlkit check", spec.name, *astray]
                         + ([f"--submission {submission}"] if str(submission) != "assignments" else []))
        click.echo(f"\nwhat went wrong, with hints: {again}")
    if not any(r.yours.steps for r in races):
        click.echo("\nnone of your optimizers has taken a step yet: the picture shows torch.optim's paths only")
    title = f"{spec.name}: yours (solid) next to torch.optim (dashed), from {module}"
    drawn = drawing.draw(races, output, title, metadata={"lab": spec.name, "module": str(module),
                                                          "module_sha256": digest}, curves=curves)
    click.echo(f"wrote {output} ({drawn.width} x {drawn.height} pixels)")


@main.command()
@click.option("--worker-user", metavar="USERS", default=None, help="Also try running a worker as these users.")
def doctor(worker_user: str | None) -> None:
    """Print the isolation layers this machine gives a student's code, and prove them on a worker."""
    import tempfile

    from grader.sandbox import confine
    from grader.sandbox.intake import LabFiles
    from grader.report.render import isolation_line
    from grader.sandbox.host import Limits, Sandbox, SubprocessLauncher, WorkerConfig, contain

    offered = confine.probe()
    grader_layers = contain()
    abi = offered["landlock"]
    rows = [
        (True, "a separate worker process per submission, plain data only on its pipes, per-call deadlines"),
        (abi >= 1, f"Landlock (ABI {abi}): reads only Python and the lab's packages, writes only its own folder"
         if abi else "Landlock: not offered by this kernel (Linux 5.13+): the code can read what its user can"),
        (abi >= 4, "Landlock: no TCP bind or connect" if abi >= 4 else "Landlock network rules: need ABI 4 (Linux 6.7+)"),
        (abi >= 6, "Landlock scopes: no signals or abstract unix sockets outside the worker" if abi >= 6
         else "Landlock scopes: need ABI 6 (Linux 6.12+); the seccomp filter still confines signals"),
        (offered["seccomp"], "seccomp: no new processes, no exec, no sockets, no ptrace, signals only to itself"
         if offered["seccomp"] else "seccomp filter: not available on this machine or architecture"),
        ("subreaper" in grader_layers, "the grader adopts and ends whatever a submission starts (child subreaper)"),
        (offered["root"], "root: --worker-user runs workers as distinct unprivileged users" if offered["root"]
         else "not root: --worker-user is unavailable (workers run as you, behind the walls above)"),
    ]
    click.echo(f"dlkit doctor: {offered['platform']}")
    for ok, text in rows:
        click.echo(f"  {'✓' if ok else '✗'} {text}")
    users = _worker_users(worker_user)
    module = b"import os\n\ndef probe(path):\n    try:\n        open(path).read()\n        return 'read'\n" \
             b"    except OSError as error:\n        return type(error).__name__\n"
    with tempfile.TemporaryDirectory(prefix="dlkit-doctor-") as secret_dir:
        secret = Path(secret_dir) / "secret.txt"
        secret.write_text("the grader's own file")
        launcher = SubprocessLauncher(users) if users else None
        with Sandbox(LabFiles({"probe.py": module}), WorkerConfig("probe", "numpy"), Limits(timeout=20.0),
                     launcher) as box:
            try:
                outcome = box.call("probe", (str(secret),)).value
            except Exception as error:  # noqa: BLE001 - reported, it is what doctor is for
                outcome = f"the worker failed: {error}"
            layers = box.layers
    click.echo(f"a worker here stands behind: {isolation_line(layers).removeprefix('sandbox: ')}")
    click.echo(f"  ... and reading one of the grader's files from it: {'refused (' + outcome + ')' if outcome != 'read' else 'ALLOWED'}")


@main.command()
@click.argument("submissions", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--lab", "lab_name", required=True, help="The lab to grade, e.g. lab3.")
@click.option("--output", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Write the CSV gradebook here (default: standard output).")
@click.option("--feedback", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Folder for one JSON report per submission (default: ./feedback/LAB).")
@click.option("--jobs", type=click.IntRange(1, 256), default=None, help="Grading processes (default: one per core).")
@click.option("--seed", type=click.IntRange(0, 2**32 - 1), default=0, show_default=True,
              help="One seed for every submission of the run.")
@click.option("--profile", type=click.Choice(["default", "ci", "thorough"]), default="default", show_default=True,
              help="How many inputs each check tries.")
@click.option("--force", is_flag=True, help="Regrade submissions whose feedback is up to date.")
@click.option("--worker-user", metavar="USERS", default=None,
              help="Run the students' code as these unprivileged users (needs root): a user, a list a,b, a family "
                   "dlkit-w{0..7} or a uid range 60000-60007; submissions graded at the same time never share one "
                   "(so at most that many processes).")
@click.option("--submission-timeout", type=click.FloatRange(10, 86400), default=600, show_default=True,
              help="Seconds one submission may take, all its tasks together; past it, its row says timeout.")
@click.option("--roster", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None,
              help="CSV of the students (id, name, email, sis_id, section, folder; a Canvas or Moodle export "
                   "works): every student gets a row, the ones without a submission 'missing' with 0.")
@click.option("--gradebook-format", "gradebook_format", type=click.Choice(["plain", "canvas", "moodle"]),
              default="plain", show_default=True, help="The gradebook's columns: dlkit's own, or the CSV that Canvas "
              "or Moodle imports (those two need --roster).")
@click.option("--assignment", default=None, help="The assignment's column name in a Canvas or Moodle gradebook "
              "(default: the lab's name).")
@click.option("--shard", default=None, metavar="K/N", help="Grade only the K-th of N shares of the submissions "
              "(chosen by folder name); join the shards with 'dlkit gradebook merge'.")
@click.option("--feedback-format", "feedback_formats", type=click.Choice(["json", "html", "md"]), multiple=True,
              help="Also write each student's feedback as HTML or Markdown beside its JSON (repeatable).")
@click.option("--report", "report_path", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Also write the class report (one HTML page) here.")
@click.option("--progress-every", type=click.IntRange(1, 100000), default=10, show_default=True,
              help="When standard error is not a terminal, print a progress line every N submissions.")
@click.option("--secret-file", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="An official run: each submission's seed comes from this instructor secret, its name and its files "
                   "(recorded in the gradebook with its replay token); --seed is then unused.")
def grade(submissions: Path, lab_name: str, output: Path | None, feedback: Path | None, jobs: int | None,
          seed: int, profile: str, force: bool, worker_user: str | None, submission_timeout: float,
          roster: Path | None, gradebook_format: str, assignment: str | None, shard: str | None,
          feedback_formats: Sequence[str], report_path: Path | None, progress_every: int,
          secret_file: Path | None) -> None:
    """Grade every sub-folder of SUBMISSIONS and write a CSV gradebook."""
    from rich.console import Console
    from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn,
                               TimeRemainingColumn)

    from grader.export import classreport, course
    from grader.export.batch import default_jobs, discover, grade_directory
    from grader.export.feedback_formats import write_feedback
    from grader.export.gradebook import read_feedback
    from grader.run.engine import PROFILES
    from grader.sandbox.host import contain, end_strays

    contain()
    spec = _lab(lab_name, "--lab")
    users = _worker_users(worker_user)
    part = _shard(shard)
    students = _roster(roster, gradebook_format)
    folders = [f for f in discover(submissions) if part is None or part.holds(f.name)]
    secret = _secret(secret_file)
    feedback = feedback or Path("feedback") / spec.name
    jobs = jobs or default_jobs()
    err = Console(stderr=True, highlight=False, soft_wrap=True)
    if users and len(users) < jobs:
        err.print(f"{len(users)} worker users for {jobs} processes: grading with {len(users)} processes, so that no "
                  "two submissions graded at the same time share a user")
        jobs = len(users)
    as_user = f", the students' code as {worker_user}" if worker_user else ""
    of_shard = f" (shard {part})" if part else ""
    seeding = "official seeds from the secret" if secret else f"seed {seed}"
    err.print(f"grading {len(folders)} submissions{of_shard} of {spec.name} with {seeding}, profile {profile} "
              f"({jobs} processes{as_user})")
    meter = classreport.Progress(len(folders), progress_every)

    def advance(row: Any) -> None:
        meter.advance(row)
        if not err.is_terminal and meter.due():
            print(meter.line(), file=sys.stderr, flush=True)

    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
               TextColumn("ETA"), TimeRemainingColumn())
    with Progress(*columns, console=err, transient=True, disable=not err.is_terminal) as bar:
        task = bar.add_task("grading", total=len(folders))

        def progress(row: Any) -> None:
            bar.advance(task)
            advance(row)

        rows = grade_directory(spec, submissions, feedback, seed=seed, jobs=jobs, budget=PROFILES[profile],
                               force=force, users=users, progress=progress, deadline=submission_timeout, shard=part,
                               secret=secret)
    end_strays()  # nothing a student's code started outlives the batch; only now is the gradebook written
    outcome = course.gradebook(spec, rows, students=students, fmt=gradebook_format,
                               assignment=assignment or spec.name, shard=part)
    if output is None:
        click.echo(outcome.gradebook, nl=False)
    else:
        output.write_text(outcome.gradebook, encoding="utf-8")
    names = {r.submission for r in rows}
    reports = {name: r for name, r in read_feedback(feedback).items() if name in names}
    write_feedback(feedback, reports, feedback_formats)
    if report_path is not None:
        course.write_report(spec, outcome, reports, [feedback], report_path)
    cached = sum(r.cached for r in rows)
    for line in course.unmatched_lines(outcome):
        err.print(line)
    for line in classreport.summary_lines(classreport.ClassStats(spec, outcome.rows)):
        err.print(line)
    err.print(f"{len(outcome.rows)} rows ({cached} unchanged since their feedback), {seeding}; "
              f"feedback in {feedback}" + (f"; gradebook in {output}" if output else "")
              + (f"; class report in {report_path}" if report_path else ""))


def _shard(text: str | None) -> Any:
    if text is None:
        return None
    from grader.export.shard import Shard

    try:
        return Shard.parse(text)
    except ValueError as error:
        raise click.BadParameter(str(error), param_hint="'--shard'") from None


def _roster(path: Path | None, fmt: str) -> Any:
    if path is None:
        if fmt != "plain":
            raise Problem(f"--gradebook-format {fmt} needs --roster: {fmt} matches students by the ids of a roster")
        return None
    from grader.export.gradebook import RosterError, read_roster

    try:
        return read_roster(path)
    except RosterError as error:
        raise Problem(str(error)) from None


@main.command()
@click.argument("feedback_dir", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--output", "-o", type=click.Path(dir_okay=False, path_type=Path), default=Path("report.html"),
              show_default=True, help="The HTML page to write.")
@click.option("--roster", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None,
              help="CSV of the students: names in the table, the missing students listed.")
def report(feedback_dir: Path, output: Path, roster: Path | None) -> None:
    """Write the class report (one self-contained HTML page) from a folder of feedback."""
    from grader.export import course
    from grader.export.gradebook import read_feedback

    reports = read_feedback(feedback_dir)
    if not reports:
        raise Problem(f"no dlkit feedback reports (NAME.json) in '{feedback_dir}'")
    spec = _one_lab(reports, feedback_dir)
    outcome = course.gradebook(spec, course.rows_of(reports), students=_roster(roster, "plain"), fmt="plain",
                               assignment=spec.name)
    course.write_report(spec, outcome, reports, [feedback_dir], output)
    click.echo(f"wrote {output}: {len(reports)} submissions of {spec.name}")


def _one_lab(reports: dict[str, Any], where: Path) -> Lab:
    found = sorted({str(r.get("lab")) for r in reports.values()})
    if len(found) != 1:
        raise Problem(f"'{where}' holds reports of several labs ({', '.join(found)}): one folder per lab")
    return _lab(found[0])


@main.group("gradebook")
def gradebook_group() -> None:
    """Gradebooks: join the shards of a sharded batch."""


@gradebook_group.command("merge")
@click.argument("feedback_dirs", metavar="FEEDBACK_DIR...", nargs=-1, required=True,
                type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--output", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Write the CSV gradebook here (default: standard output).")
@click.option("--roster", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None,
              help="CSV of the students: every student gets a row, the missing ones with 0.")
@click.option("--gradebook-format", "gradebook_format", type=click.Choice(["plain", "canvas", "moodle"]),
              default="plain", show_default=True, help="dlkit's columns, or Canvas's or Moodle's import CSV.")
@click.option("--assignment", default=None, help="The assignment's column name (default: the lab's name).")
@click.option("--report", "report_path", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Also write the class report (one HTML page) here.")
def gradebook_merge(feedback_dirs: Sequence[Path], output: Path | None, roster: Path | None, gradebook_format: str,
                    assignment: str | None, report_path: Path | None) -> None:
    """Join the feedback folders of 'dlkit grade --shard' runs into one gradebook and report."""
    from grader.export import classreport
    from grader.export import course
    from grader.export.gradebook import merge, read_feedback

    first = {name: r for folder in feedback_dirs for name, r in read_feedback(folder).items()}
    if not first:
        raise Problem(f"no dlkit feedback reports (NAME.json) in {', '.join(map(str, feedback_dirs))}")
    spec = _one_lab(first, feedback_dirs[0])
    try:
        reports = merge(feedback_dirs, spec)
    except ValueError as error:
        raise Problem(str(error)) from None
    students = _roster(roster, gradebook_format)
    outcome = course.gradebook(spec, course.rows_of(reports), students=students, fmt=gradebook_format,
                               assignment=assignment or spec.name)
    if output is None:
        click.echo(outcome.gradebook, nl=False)
    else:
        output.write_text(outcome.gradebook, encoding="utf-8")
    if report_path is not None:
        course.write_report(spec, outcome, reports, feedback_dirs, report_path)
    for line in course.unmatched_lines(outcome) + classreport.summary_lines(classreport.ClassStats(spec, outcome.rows)):
        click.echo(line, err=True)
    click.echo(f"merged {len(reports)} submissions from {len(feedback_dirs)} folders into {len(outcome.rows)} rows"
               + (f"; gradebook in {output}" if output else "") + (f"; class report in {report_path}" if report_path else ""),
               err=True)


@main.command()
@click.argument("lab_names", metavar="[LAB]...", nargs=-1)
@click.option("--check", "only_check", is_flag=True, help="Only report stubs that differ from the solutions; write nothing.")
def stubs(lab_names: Sequence[str], only_check: bool) -> None:
    """Regenerate the student stubs in assignments/ from solutions/."""
    from grader.export.stubs import solution_path, stub_path, stub_source, write_stub

    stale = []
    for name in lab_names or labs.names():
        spec = _lab(name)
        if not solution_path(REPO, spec).is_file():
            raise Problem(f"no reference solution {solution_path(REPO, spec)} to derive the stub from")
        if only_check:
            target = stub_path(REPO, spec)
            fresh = stub_source(solution_path(REPO, spec).read_text(encoding="utf-8"), spec)
            if not target.is_file() or target.read_text(encoding="utf-8") != fresh:
                stale.append(str(target.relative_to(REPO)))
        else:
            click.echo(f"wrote {write_stub(REPO, spec).relative_to(REPO)}")
    if stale:
        click.echo(f"stale stubs (run 'dlkit stubs'): {', '.join(stale)}", err=True)
        sys.exit(1)


@main.command()
@click.argument("outdir", type=click.Path(path_type=Path))
@click.option("--lab", "lab_names", metavar="LAB", multiple=True,
              help="Release this lab (repeat for several; default: every registered lab).")
@click.option("--classroom", is_flag=True, help="Make the workflow report its points to GitHub Classroom (the job is "
              "named 'Autograding Tests' and writes 'Points X/Y' into its check run).")
def release(outdir: Path, lab_names: Sequence[str], classroom: bool) -> None:
    """Write the student release (no reference code) to OUTDIR."""
    from grader.export.release import ReleaseError, write_release

    chosen = [_lab(name, "--lab") for name in dict.fromkeys(lab_names or labs.names())]
    try:
        files = write_release(outdir, chosen, classroom=classroom)
    except ReleaseError as error:
        raise Problem(str(error)) from None
    click.echo(f"wrote the student release of {', '.join(lab.name for lab in chosen)} to {outdir} ({len(files)} files); "
               f"without solutions/, the reference checks show as graded on submission")


@main.group()
def gradescope() -> None:
    """Gradescope: build the autograder, or lay out an upload."""


@gradescope.command("bundle")
@click.argument("lab")
@click.argument("output", type=click.Path(path_type=Path))
@click.option("--secret-file", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="The instructor secret official seeds come from (default: a new random one, kept in the bundle).")
@click.option("--seed", type=click.IntRange(0, 2**32 - 1), default=None,
              help="Grade every submission with this one public seed instead (not for graded work: a student "
                   "who learns a run's inputs could answer from a table).")
@click.option("--user", "student", default="student", show_default=True,
              help="The unprivileged users the student's code runs as are this name with 0 and 1 (setup.sh creates them).")
@click.option("--visibility", "visibility", metavar="KEY=VALUE", multiple=True,
              help="Who sees a test when: KEY is default, reference (the checks against the reference, shown "
                   "apart) or a task; VALUE is visible, after_due_date, after_published or hidden. Repeatable.")
@click.option("--late-policy", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None,
              help="A Python file defining adjust(score, max_score, late_seconds, metadata) -> score, applied to "
                   "late submissions (from Gradescope's submission_metadata.json).")
def gradescope_bundle(lab: str, output: Path, secret_file: Path | None, seed: int | None, student: str,
                      visibility: Sequence[str], late_policy: Path | None) -> None:
    """Write LAB's autograder to OUTPUT (a .zip, or a folder)."""
    from grader.export.gradescope import write_bundle
    from grader.export.release import ReleaseError

    spec = _lab(lab)
    _visibility(spec, visibility)
    if seed is not None and secret_file is not None:
        raise Problem("give --secret-file (official seeds) or --seed (one public seed), not both")
    try:
        write_bundle(spec, output, seed=seed, secret=_secret(secret_file), student=student, visibility=visibility,
                     late_policy=late_policy)
    except ReleaseError as error:
        raise Problem(str(error)) from None
    seeding = (f"every submission is graded with seed {seed}" if seed is not None else
               "each submission is graded with its own official seed; the bundle's file 'secret' replays them "
               f"(dlkit check {spec.name} --submission DIR --secret-file secret --replay TOKEN)")
    click.echo(f"wrote the Gradescope autograder of {spec.name} to {output} (setup.sh, run_autograder, the kit and "
               f"its reference solution); {seeding}")


@gradescope.command("collect")
@click.argument("lab")
@click.argument("upload", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.argument("folder", type=click.Path(file_okay=False, path_type=Path))
def gradescope_collect(lab: str, upload: Path, folder: Path) -> None:
    """Copy LAB's module from an UPLOAD into FOLDER, like assignments/."""
    from grader.export.gradescope import collect
    from grader.sandbox.intake import BadSubmission

    spec = _lab(lab)
    try:
        found = collect(spec, upload, folder)
    except BadSubmission as bad:
        click.echo(f"{bad.status}: {bad.reason} (nothing copied)", err=True)
        sys.exit(1)
    click.echo(f"{found.path} -> {folder / spec.name / (spec.module + '.py')}" + (f" ({found.note})" if found.note else ""))


@main.group()
def nbgrader() -> None:
    """nbgrader: write a course of notebooks, or read the code of one."""


@nbgrader.command("course")
@click.argument("directory", type=click.Path(file_okay=False, path_type=Path))
@click.argument("lab_names", metavar="[LAB]...", nargs=-1)
@click.option("--course-id", default="dlkit", show_default=True, help="nbgrader's course id.")
@click.option("--seed", type=click.IntRange(0, 2**32 - 1), default=0, show_default=True,
              help="The seed every submission is autograded with (it sits in the hidden tests).")
@click.option("--timeout", type=click.IntRange(1, 86400), default=300, show_default=True,
              help="Seconds a notebook cell may run when nbgrader executes it.")
@click.option("--force", is_flag=True, help="Rewrite the notebooks of the named labs that the course already has.")
def nbgrader_course(directory: Path, lab_names: Sequence[str], course_id: str, seed: int, timeout: int,
                    force: bool) -> None:
    """Write an nbgrader course, or add labs to one: its config and one source notebook per LAB."""
    from grader.export.nbgrader import KIT_CONFIG, INCLUDE, includes_kit_config, write_course
    from grader.export.stubs import solution_path

    chosen = [_lab(name) for name in dict.fromkeys(lab_names or labs.names())]
    for spec in chosen:
        if not solution_path(REPO, spec).is_file():
            raise Problem(f"no reference solution {solution_path(REPO, spec)}: the notebooks are written from it")
    if directory.exists() and not directory.is_dir():
        raise Problem(f"'{directory}' is not a folder")
    config = directory / "nbgrader_config.py"
    had_config = config.exists()
    written, kept = write_course(directory, REPO, chosen, course_id=course_id, seed=seed, timeout=timeout, force=force)
    for path in written:
        click.echo(f"wrote {path}")
    for path in kept:
        click.echo(f"kept {path} (it exists; --force rewrites it)")
    if had_config and not includes_kit_config(config):
        click.echo(f"note: {config} does not include {KIT_CONFIG}: add the line {INCLUDE} after "
                   "'c = get_config()' (the kit's settings are no longer written into your config)", err=True)
    click.echo(f"next: cd {directory} && nbgrader generate_assignment {chosen[0].name} (see docs/nbgrader.md)")


@nbgrader.command("extract")
@click.argument("notebook", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.argument("folder", type=click.Path(file_okay=False, path_type=Path))
def nbgrader_extract(notebook: Path, folder: Path) -> None:
    """Write the module a NOTEBOOK is graded as into FOLDER, like assignments/."""
    import json

    from grader.sandbox.intake import BadSubmission, read_notebook
    from grader.export.notebook import notebook_lab, write_submission

    try:
        content = json.loads(read_notebook(notebook).decode("utf-8"))
        lab_name, module = notebook_lab(content)
    except BadSubmission as bad:
        raise Problem(bad.reason) from None
    except (ValueError, KeyError) as error:
        raise Problem(f"cannot read '{notebook}' as a dlkit notebook: {error}") from None
    spec = _lab(lab_name)
    write_submission(spec, module, folder)
    click.echo(f"{notebook} -> {folder / spec.name / (spec.module + '.py')} "
               f"(grade it with: dlkit check {spec.name} --submission {folder})")


def run() -> None:
    """The console script: run the command, then leave without tearing the interpreter down.

    Unloading PyTorch at exit costs about half a second; every result is written and
    flushed by then, so the process ends at once instead.
    """
    try:
        main()
        code = 0
    except SystemExit as leaving:
        code = leaving.code if isinstance(leaving.code, int) else (0 if leaving.code is None else 1)
        if not isinstance(leaving.code, int) and leaving.code is not None:
            print(leaving.code, file=sys.stderr)
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


if __name__ == "__main__":
    run()
