"""Official seeds (grader/seeds.py): secret, per submission, replayable from a token; a table of answers
recorded in one official run is worth nothing in another."""

from __future__ import annotations

import csv
import inspect
import io
import json
import os
import textwrap
from pathlib import Path

import pytest
from click.testing import CliRunner

from cli import main
from grader import labs
from grader.run import seeds
from grader.sandbox.intake import read_lab
from grader.sandbox.host import Sandbox
from tests.conftest import REPO, grade

SECRET = b"an instructor's secret, long enough"
LAB, TASK = "lab3", "conv_output_size"


def test_a_seed_depends_on_the_secret_the_lab_the_identity_and_the_files():
    first = seeds.official(SECRET, LAB, "alice", "digest-1")
    assert seeds.official(SECRET, LAB, "alice", "digest-1") == first  # a regrade is reproducible
    others = [seeds.official(b"another secret, long enough too", LAB, "alice", "digest-1"),
              seeds.official(SECRET, "lab4", "alice", "digest-1"),
              seeds.official(SECRET, LAB, "bob", "digest-1"),
              seeds.official(SECRET, LAB, "alice", "digest-2")]
    assert len({first.seed, *(o.seed for o in others)}) == 5
    assert len({first.token, *(o.token for o in others)}) == 5
    assert seeds.TOKEN.match(first.token) and str(first.seed) not in first.token
    assert seeds.replay(SECRET, first.token) == first.seed
    assert seeds.replay(b"another secret, long enough too", first.token) != first.seed


def test_a_short_secret_and_a_malformed_token_are_refused(tmp_path):
    (tmp_path / "short").write_text("abc\n")
    with pytest.raises(seeds.SecretError, match="too short"):
        seeds.read_secret(tmp_path / "short")
    with pytest.raises(seeds.SecretError, match="not a replay token"):
        seeds.replay(SECRET, "12345")
    written = seeds.write_secret(tmp_path / "secret")
    assert seeds.read_secret(tmp_path / "secret") == written and len(written) >= seeds.SECRET_BYTES
    assert (tmp_path / "secret").stat().st_mode & 0o077 == 0


def _record(monkeypatch, submission: Path, seed: int) -> dict[str, object]:
    """The calls of TASK in one run at ``seed``, with the reference's answers: what a student could log."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("reference_conv", REPO / "solutions" / LAB / "conv.py")
    assert spec and spec.loader
    reference = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(reference)
    table: dict[str, object] = {}
    real = Sandbox.call

    def call(self, function, args=(), kwargs=None, *rest, **named):
        if function == TASK:
            bound = inspect.signature(getattr(reference, TASK)).bind(*args, **(kwargs or {}))
            bound.apply_defaults()
            try:
                answer = getattr(reference, TASK)(*args, **(kwargs or {}))
            except ValueError:
                answer = "ValueError"
            table[repr(tuple(bound.arguments.values()))] = answer
        return real(self, function, args, kwargs, *rest, **named)

    monkeypatch.setattr(Sandbox, "call", call)
    grade(LAB, submission, tasks=(TASK,), seed=seed)
    monkeypatch.setattr(Sandbox, "call", real)
    return table


def _table_submission(root: Path, table: dict[str, object]) -> Path:
    """The reference with TASK answered from ``table`` (and a plausible guess elsewhere): no computation."""
    folder = root / LAB
    folder.mkdir(parents=True)
    (folder / "conv.py").write_text((REPO / "solutions" / LAB / "conv.py").read_text() + textwrap.dedent(f"""

        _TABLE = {table!r}


        def {TASK}(n, kernel_size, stride=1, padding=0, dilation=1):
            answer = _TABLE.get(repr((n, kernel_size, stride, padding, dilation)), max(1, n - kernel_size + 1))
            if answer == "ValueError":
                raise ValueError("recorded")
            return answer
    """))
    return root


def test_a_lookup_table_recorded_in_one_official_run_scores_nothing_in_another(tmp_path, monkeypatch, submission):
    alice = submission(LAB)
    digest = read_lab(alice, LAB, "conv").digest()
    recorded = seeds.official(SECRET, LAB, "alice", digest)
    table = _record(monkeypatch, alice, recorded.seed)
    assert len(table) > 20
    cheat = _table_submission(tmp_path / "cheat", table)
    # With the seed known in advance (a public, fixed seed), the table scores as well as the real thing...
    public = {t.name: t for t in grade(LAB, cheat, tasks=(TASK,), seed=recorded.seed).tasks}[TASK]
    assert public.score == public.max_score
    # ...but an official run draws from the table's own submission: another identity, other files, another seed.
    # Every check whose inputs come from the seed fails, and the handout's worked examples (fixed, public:
    # the table answers them too) earn nothing alone.
    theirs = seeds.official(SECRET, LAB, "mallory", read_lab(cheat, LAB, "conv").digest())
    official = {t.name: t for t in grade(LAB, cheat, tasks=(TASK,), seed=theirs.seed).tasks}[TASK]
    assert official.score == 0, [(c.name, c.status, c.points) for c in official.checks]


def test_grade_with_a_secret_records_seeds_and_tokens_and_check_replays_a_token(tmp_path):
    root = tmp_path / "class"
    for name in ("alice", "bob"):
        (root / name / LAB).mkdir(parents=True)
        (root / name / LAB / "conv.py").write_text((REPO / "solutions" / LAB / "conv.py").read_text())
    (tmp_path / "secret").write_bytes(SECRET)
    runner = CliRunner()
    result = runner.invoke(main, ["grade", str(root), "--lab", LAB, "--feedback", str(tmp_path / "feedback"),
                                  "--jobs", "1", "--profile", "ci", "--secret-file", str(tmp_path / "secret")])
    assert result.exit_code == 0, result.output
    rows = {r["submission"]: r for r in csv.DictReader(io.StringIO(result.stdout))}
    assert rows["alice"]["token"] != rows["bob"]["token"]  # same files, other students: other seeds
    for name, row in rows.items():
        assert int(row["seed"]) == seeds.replay(SECRET, row["token"])
        feedback = json.loads((tmp_path / "feedback" / f"{name}.json").read_text())
        assert (feedback["seed"], feedback["token"]) == (int(row["seed"]), row["token"])
    # The student sees the token; the instructor replays the run from it.
    replayed = runner.invoke(main, ["check", LAB, "linear_params", "--submission", str(root / "alice"),
                                    "--secret-file", str(tmp_path / "secret"), "--replay", rows["alice"]["token"],
                                    "--format", "json", "--profile", "ci"])
    report = json.loads(replayed.stdout)
    assert (report["seed"], report["token"]) == (int(rows["alice"]["seed"]), rows["alice"]["token"])
    text = runner.invoke(main, ["check", LAB, "linear_params", "--submission", str(root / "alice"),
                                "--secret-file", str(tmp_path / "secret"), "--identity", "alice", "--profile", "ci"])
    assert f"replay token {rows['alice']['token']}" in text.stdout and "seed" not in text.stdout.split("score:")[1]


def test_an_official_gradescope_report_shows_the_token_not_the_seed(tmp_path):
    (tmp_path / "secret").write_bytes(SECRET)
    runner = CliRunner()
    result = runner.invoke(main, ["check", LAB, "linear_params", "--submission", str(REPO / "solutions"),
                                  "--secret-file", str(tmp_path / "secret"), "--identity", "4242",
                                  "--format", "gradescope", "--profile", "ci"])
    data = json.loads(result.stdout)
    token = data["extra_data"]["token"]
    assert "seed" not in data["extra_data"] and f"replay token {token}" in data["output"]
    assert "--seed" not in data["output"]
    refused = runner.invoke(main, ["check", LAB, "--replay", token, "--submission", str(REPO / "solutions")])
    assert refused.exit_code == 2 and "--secret-file" in refused.output


def test_the_gradescope_bundle_holds_a_secret_that_only_root_reads(tmp_path):
    runner = CliRunner()
    result = runner.invoke(main, ["gradescope", "bundle", LAB, str(tmp_path / "bundle")])
    assert result.exit_code == 0, result.output
    assert len(seeds.read_secret(tmp_path / "bundle" / "secret")) >= seeds.SECRET_BYTES
    run = (tmp_path / "bundle" / "run_autograder").read_text()
    assert '--secret-file "$SOURCE/secret"' in run and "--seed" not in run and "submission_metadata.json" in run
    assert 'chmod 600 "$SOURCE/secret"' in (tmp_path / "bundle" / "setup.sh").read_text()
    assert "official seed" in result.output


def test_the_student_release_holds_no_secret(tmp_path):
    from grader.export.release import write_release

    files = write_release(tmp_path / "release", [labs.load(LAB)])
    assert not [f for f in files if "secret" in Path(f).name]
    assert not [p for p in (tmp_path / "release").rglob("*secret*")]
    assert os.path.isdir(tmp_path / "release")
