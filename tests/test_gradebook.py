"""The course gradebook (grader.gradebook): rosters, matching, the Canvas/Moodle/plain CSVs, merging shards."""

from __future__ import annotations

import csv
import io
import json

import pytest

from grader import labs
from grader.export.batch import Row
from grader.export.gradebook import RosterError, match, merge, read_feedback, read_roster, write
from grader.export.shard import Shard, owner

LAB = labs.load("lab1")


def rows(*entries: tuple[str, float, str]) -> list[Row]:
    return [Row(name, score, LAB.max_score, status, {LAB.tasks[0].name: 3.0 if score else 0.0})
            for name, score, status in entries]


def roster(tmp_path, text: str):
    path = tmp_path / "roster.csv"
    path.write_text(text)
    return read_roster(path)


def test_a_roster_in_dlkit_columns_is_read_with_optional_columns_empty(tmp_path):
    students = roster(tmp_path, "id,name,email\nu1,Ann,ann@uni.edu\nu2,Bo,\n")
    assert [(s.id, s.name, s.email, s.section) for s in students] == [("u1", "Ann", "ann@uni.edu", ""), ("u2", "Bo", "", "")]


def test_a_canvas_gradebook_export_is_a_roster_and_its_points_possible_row_is_skipped(tmp_path):
    students = roster(tmp_path, "Student,ID,SIS User ID,SIS Login ID,Section,Lab 1 (123)\n"
                                "    Points Possible,,,,,100\n\"Lee, Ann\",4401,S-1,alee,Sec A,\n")
    (ann,) = students
    assert (ann.name, ann.id, ann.sis_id, ann.login_id, ann.section) == ("Lee, Ann", "4401", "S-1", "alee", "Sec A")


@pytest.mark.parametrize(("text", "words"), [
    ("name,email\nAnn,a@x\n", "has no id column"),
    ("id,name\nu1,Ann\nu1,Bo\n", "the id 'u1' is already on line 2"),
    ("id,name\n,Ann\n", "line 2: no id"),
    ("id,folder\nu1,f\nu2,F\n", "the folder 'F' is given to both u1 and u2"),
    ("", "is empty"),
])
def test_an_unusable_roster_is_refused_with_the_line_and_the_reason(tmp_path, text, words):
    with pytest.raises(RosterError, match=words):
        roster(tmp_path, text)


def test_a_roster_that_is_a_link_is_refused(tmp_path):
    (tmp_path / "real.csv").write_text("id\nu1\n")
    (tmp_path / "roster.csv").symlink_to(tmp_path / "real.csv")
    with pytest.raises(RosterError, match="cannot read the roster"):
        read_roster(tmp_path / "roster.csv")


def test_every_student_gets_a_row_missing_ones_zero_and_unmatched_folders_are_listed_not_dropped(tmp_path):
    students = roster(tmp_path, "id,name,email,folder\nu1,Ann,ann@uni.edu,\nu2,Bo,bo@uni.edu,\nu3,Cy,,cy-work\n")
    matched = match(students, rows(("ANN", 90, "graded"), ("u2", 50, "graded"), ("cy-work", 70, "graded"),
                                   ("stranger", 10, "graded")), LAB)
    assert [(e.student.id if e.student else None, e.row.submission, e.row.status) for e in matched.entries] == [
        ("u1", "ANN", "graded"), ("u2", "u2", "graded"), ("u3", "cy-work", "graded"), (None, "stranger", "graded")]
    assert matched.unmatched[0].note == "matches no student of the roster"
    students = roster(tmp_path, "id,name\nu1,Ann\nu2,Bo\n")
    matched = match(students, rows(("u1", 90, "graded")), LAB)
    assert [(e.row.submission, e.row.score, e.row.status) for e in matched.missing] == [("u2", 0.0, "missing")]


def test_a_second_folder_of_the_same_student_is_listed_apart(tmp_path):
    students = roster(tmp_path, "id,email\nu1,ann@uni.edu\n")
    matched = match(students, rows(("u1", 90, "graded"), ("ann", 20, "graded")), LAB)
    assert [e.row.submission for e in matched.entries if e.student] == ["u1"]
    assert "a second submission of u1" in matched.unmatched[0].note


def test_the_canvas_csv_has_canvas_columns_a_row_per_student_and_formula_cells_neutralised(tmp_path):
    students = roster(tmp_path, "id,name,sis_id,login_id,section\nu1,=HYPERLINK(\"x\"),S1,ann,A\nu2,Bo,S2,bo,B\n")
    text = write("canvas", LAB, [], match(students, rows(("u1", 87.5, "graded")), LAB), "Lab 1 (77)")
    table = list(csv.reader(io.StringIO(text)))
    assert table[0] == ["Student", "ID", "SIS User ID", "SIS Login ID", "Section", "Lab 1 (77)"]
    assert table[1] == ["'=HYPERLINK(\"x\")", "u1", "S1", "ann", "A", "87.5"]
    assert table[2] == ["Bo", "u2", "S2", "bo", "B", "0"]


def test_the_moodle_csv_has_identifier_columns_then_the_grade(tmp_path):
    students = roster(tmp_path, "id,name,email,sis_id\nu1,Ann,@ann@uni.edu,7001\nu2,Bo,bo@uni.edu,\n")
    text = write("moodle", LAB, [], match(students, rows(("u2", 40, "graded"), ("u1", 100, "graded")), LAB), "lab1")
    table = list(csv.reader(io.StringIO(text)))
    assert table[0] == ["ID number", "Username", "Email address", "Full name", "lab1"]
    assert table[1] == ["7001", "", "'@ann@uni.edu", "Ann", "100"] and table[2] == ["u2", "", "bo@uni.edu", "Bo", "40"]


def test_the_plain_csv_with_a_roster_keeps_the_contract_columns_first_and_adds_the_students(tmp_path):
    students = roster(tmp_path, "id,name\nu1,Ann\n")
    text = write("plain", LAB, [], match(students, rows(("u1", 3, "graded"), ("-x", 0, "empty")), LAB), "lab1")
    table = list(csv.DictReader(io.StringIO(text)))
    assert list(table[0])[:4] == ["submission", "score", "max_score", "status"]
    assert (table[0]["student_id"], table[0]["name"], table[1]["submission"], table[1]["student_id"]) == \
        ("u1", "Ann", "'-x", "")


def test_an_lms_format_without_a_roster_is_refused():
    with pytest.raises(ValueError, match="needs a roster"):
        write("canvas", LAB, rows(("u1", 3, "graded")), None, "lab1")


def test_shards_split_every_name_once_and_do_not_depend_on_the_other_names():
    names = [f"student{i:03d}" for i in range(300)]
    shards = [Shard(k, 4) for k in range(1, 5)]
    owned = [[n for n in names if s.holds(n)] for s in shards]
    assert sorted(sum(owned, [])) == names and all(40 < len(o) < 110 for o in owned)
    assert owner("student007", 4) == owner("student007", 4)


@pytest.mark.parametrize("text", ["0/2", "3/2", "1", "a/b", "1/0"])
def test_a_bad_shard_says_what_k_n_means(text):
    with pytest.raises(ValueError, match="K"):
        Shard.parse(text)


def report(name: str, score: float, fingerprint: str = "f", lab: str = "lab1") -> dict:
    return {"lab": lab, "submission": name, "score": score, "max_score": 100, "status": "graded", "seed": 0,
            "fingerprint": fingerprint, "tasks": [{"name": "predict", "status": "passed", "score": 3, "max_score": 3,
                                                   "message": "", "checks": []}]}


def test_merge_joins_shard_folders_and_refuses_one_submission_graded_differently_twice(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir()
    b.mkdir()
    (a / "u1.json").write_text(json.dumps(report("u1", 10)))
    (b / "u2.json").write_text(json.dumps(report("u2", 20)))
    (b / "notes.json").write_text("[1, 2]")
    (b / "u1.json").symlink_to(a / "u1.json")
    assert sorted(merge([a, b], LAB)) == ["u1", "u2"]
    assert "u1" not in read_feedback(b)  # a link is never read
    (b / "u1.json").unlink()
    (b / "u1.json").write_text(json.dumps(report("u1", 50, fingerprint="other")))
    with pytest.raises(ValueError, match="'u1' was graded in both"):
        merge([a, b], LAB)
    (b / "u1.json").write_text(json.dumps(report("u1", 50, lab="lab3")))
    with pytest.raises(ValueError, match="a report of lab3, not lab1"):
        merge([a, b], LAB)
