"""Every assignment is gradable: the reference scores full marks, the blank zero, headless.

The round trip runs the instructor's commands (``nbgrader <command> <assignment>`` in a course
directory holding ``nbgrader_config.py``) and reads the gradebook, because nbgrader's exit codes
stay 0 when tests fail. The student's ``mlsys-lab validate`` is checked on one module
(``CLI_VALIDATE_MODULE``: see its comment for why one is enough).
"""

from __future__ import annotations

import copy
import subprocess
from collections.abc import Callable

import nbformat
import pandas as pd
import pytest

from .conftest import (
    CLI_VALIDATE_MODULE,
    RUN_ON,
    STUDENTS,
    RoundTrip,
    deleted_test_ids,
    graded_ids,
    is_manual_cell,
    is_test_cell,
    notebook_path,
    run_all_stops,
)

pytestmark = pytest.mark.slow


def _source(assignment: str) -> nbformat.NotebookNode:
    return nbformat.read(notebook_path("source", assignment), as_version=4)


def _student_rows(round_trip: RoundTrip, student: str, ids: list[str]) -> pd.DataFrame:
    rows = round_trip.scores[(round_trip.scores.student == student) & round_trip.scores.grade_id.isin(ids)]
    missing = sorted(set(ids) - set(rows.grade_id))
    assert not missing, (
        f"The gradebook has no grade for {student}'s cells {missing}; expected one per graded cell. "
        f"Gradebook rows:\n{round_trip.scores.to_string()}"
    )
    return rows


def _autograded_total(assignment: str) -> float:
    return float(sum(float(c.metadata.nbgrader["points"]) for c in _source(assignment).cells if is_test_cell(c)))


def test_reference_solution_scores_full_marks(
    assignment: str, round_trip: RoundTrip, record_property: Callable[[str, object], None]
) -> None:
    record_property("autograde_seconds", round(round_trip.autograde_seconds, 2))
    source = _source(assignment)
    deleted = set(deleted_test_ids(source))
    # The test cells alice handed in; the ones she deleted are test_deleted_test_cells_are_restored_and_graded's.
    kept = [grade_id for grade_id in graded_ids(source, is_test_cell) if grade_id not in deleted]
    assert kept, f"alice keeps no test cell of {assignment}; expected every other exercise's tests kept"
    rows = _student_rows(round_trip, "alice", kept)
    short = rows[rows.auto_score != rows.max_score]
    assert short.empty, (
        f"The reference solution of {assignment} lost points on {list(short.grade_id)} "
        f"(auto_score {list(short.auto_score)}, max {list(short.max_score)}); expected full marks. "
        f"Look at {round_trip.course_dir}/autograded/alice/ for the error; stderr output scores zero too."
    )


def test_blank_notebook_scores_zero(assignment: str, round_trip: RoundTrip) -> None:
    rows = _student_rows(round_trip, "bob", graded_ids(_source(assignment), is_test_cell))
    scoring = rows[rows.auto_score != 0]
    assert scoring.empty, (
        f"The blank notebook of {assignment} scored on {list(scoring.grade_id)} "
        f"(auto_score {list(scoring.auto_score)}); expected 0 everywhere. A test that passes without "
        "an answer gives free points: make it call the student's function and check the result."
    )


def test_run_all_goes_past_every_failure_of_the_blank(assignment: str, round_trip: RoundTrip) -> None:
    # JupyterLab's Run All stops at the first failing cell not tagged raises-exception; the browser test
    # proves on one module that it goes past the tagged ones. Which cells fail blank differs per module:
    # bob's autograded notebook (the blank, every cell run, errors allowed) shows them, with no extra run.
    graded = nbformat.read(round_trip.course_dir / "autograded" / "bob" / assignment / f"{assignment}.ipynb", 4)
    released = nbformat.read(round_trip.course_dir / "release" / assignment / f"{assignment}.ipynb", 4)
    failing = [i for i, c in enumerate(graded.cells) if any(o.output_type == "error" for o in c.get("outputs", []))]
    assert failing, f"No cell of the blank {assignment} raised under autograde; expected every test cell to fail."
    stops = run_all_stops(graded, released)
    assert not stops, (
        f"Run All of the blank {assignment} would not reach the end: {stops}. Tag each cell that fails in the blank "
        f"notebook {RUN_ON!r} in the source notebook (JupyterLab: property inspector, Cell Tags) and rebuild."
    )
    # The check bites on this very notebook: drop the tag of the first failing cell and it must stop there.
    untagged = copy.deepcopy(released)
    (cell,) = [c for c in untagged.cells if c.get("id") == graded.cells[failing[0]].get("id")]
    cell.metadata["tags"] = [tag for tag in cell.metadata.get("tags", []) if tag != RUN_ON]
    stopped = run_all_stops(graded, untagged)
    assert len(stopped) == 1 and f"cell {failing[0] + 1} " in stopped[0], (
        f"With the tag removed from cell {failing[0] + 1} of {assignment}, run_all_stops said {stopped}; expected "
        "exactly that cell reported."
    )


def _code_cell(source: str, *, tags: list[str], error: bool, ran: bool = True) -> nbformat.NotebookNode:
    cell = nbformat.v4.new_code_cell(source, metadata={"tags": tags})
    cell.execution_count = 1 if ran else None
    if error:
        cell.outputs = [nbformat.v4.new_output("error", ename="NotImplementedError", evalue="", traceback=[])]
    return cell


def test_run_all_stops_names_the_untagged_failure_and_the_cell_that_never_ran() -> None:
    released = nbformat.v4.new_notebook(
        cells=[
            _code_cell("x = 1", tags=[], error=False),
            _code_cell("answer()", tags=[RUN_ON], error=False),
            _code_cell("check(answer)", tags=[RUN_ON], error=False),
            _code_cell("plot(x)", tags=[], error=False),
        ]
    )
    executed = copy.deepcopy(released)
    for index in (1, 2):
        executed.cells[index] = _code_cell(executed.cells[index].source, tags=[RUN_ON], error=True)
        executed.cells[index].id = released.cells[index].id
    assert run_all_stops(executed, released) == []

    released.cells[2].metadata["tags"] = []
    executed.cells[3].execution_count = None
    stops = run_all_stops(executed, released)
    assert len(stops) == 2, stops
    assert stops[0].startswith("cell 3 ") and "so Run All stops there" in stops[0], stops
    assert stops[1] == f"cell 4 ({released.cells[3].id}) never ran", stops

    del executed.cells[0]
    assert any("missing from the executed notebook" in line for line in run_all_stops(executed, released))


def test_deleted_test_cells_are_restored_and_graded(assignment: str, round_trip: RoundTrip) -> None:
    deleted = deleted_test_ids(_source(assignment))
    assert deleted, f"alice deletes no test cell of {assignment}; expected the tests of every other exercise"
    handed_in = nbformat.read(round_trip.course_dir / "submitted" / "alice" / assignment / f"{assignment}.ipynb", 4)
    still_there = sorted(set(deleted) & set(graded_ids(handed_in, is_test_cell)))
    assert not still_there, f"alice's submission still holds the test cells {still_there} she was to delete"
    graded = nbformat.read(round_trip.course_dir / "autograded" / "alice" / assignment / f"{assignment}.ipynb", 4)
    missing = [grade_id for grade_id in deleted if grade_id not in graded_ids(graded, is_test_cell)]
    assert not missing, (
        f"alice deleted the test cells {deleted} of a correct solution; {missing} are missing from the graded "
        "notebook. Expected nbgrader to restore them: check OverwriteCells.add_missing_cells = True in "
        "assignments/nbgrader_config.py."
    )
    rows = _student_rows(round_trip, "alice", deleted)
    short = rows[rows.auto_score != rows.max_score]
    assert short.empty, (
        f"alice deleted the test cells {deleted} of a correct solution; nbgrader restored them, but "
        f"{list(short.grade_id)} scored {list(short.auto_score)} instead of full marks. Either the reference "
        "answer fails these tests (then test_no_cell_of_the_solution_raises fails too), or a restored test misses "
        "an input: it runs at its original position, so put any data it needs in a cell before the answer "
        f"cell. Look at {round_trip.course_dir}/autograded/alice/."
    )


def test_written_answers_wait_for_a_person(assignment: str, round_trip: RoundTrip) -> None:
    ids = graded_ids(_source(assignment), is_manual_cell)
    if not ids:
        pytest.skip(f"{assignment} has no manually graded cells")
    rows = _student_rows(round_trip, "alice", ids)
    unflagged = rows[~rows.needs_manual_grade.astype(bool)]
    assert unflagged.empty, (
        f"alice answered the written cells {list(unflagged.grade_id)} with the reference solution, yet the "
        f"gradebook does not flag them needs_manual_grade (auto_score {list(unflagged.auto_score)}); "
        "expected them queued for a person in formgrader. nbgrader auto-scores zero an answer identical "
        "to the released stub: put a model answer in the source cell (it is replaced by 'YOUR ANSWER "
        "HERE' for students), and mark the cell 'Manually graded answer'."
    )
    blank = _student_rows(round_trip, "bob", ids)
    assert (blank.auto_score.fillna(0) == 0).all() and (blank.manual_score.fillna(0) == 0).all(), (
        f"Unanswered manual cells scored {blank[['grade_id', 'auto_score', 'manual_score']].to_dict('records')}; "
        "expected 0."
    )


def test_feedback_written_for_every_student(assignment: str, round_trip: RoundTrip) -> None:
    for student in STUDENTS:
        html = round_trip.course_dir / "feedback" / student / assignment / f"{assignment}.html"
        assert html.is_file() and html.stat().st_size > 0, (
            f"No feedback at {html}; expected `nbgrader generate_feedback {assignment}` to write one per "
            "student. Files there: "
            + str(sorted(p.name for p in html.parent.glob("*")) if html.parent.exists() else [])
        )


def test_grades_csv_matches_gradebook(assignment: str, round_trip: RoundTrip) -> None:
    csv = round_trip.grades_csv
    rows = csv[csv.assignment == assignment].set_index("student_id")
    assert set(rows.index) == set(STUDENTS), (
        f"grades.csv lists students {sorted(rows.index)} for {assignment}; expected {sorted(STUDENTS)}."
    )
    expected = {"alice": _autograded_total(assignment), "bob": 0.0}
    got = {student: float(rows.loc[student, "score"]) for student in STUDENTS}
    assert got == pytest.approx(expected), (
        f"grades.csv scores {got}; expected {expected} (autograded points only: written answers wait "
        "for manual grading). Compare with the gradebook rows in the other round-trip tests."
    )


@pytest.mark.parametrize("assignment", [CLI_VALIDATE_MODULE], scope="session")
def test_validate_passes_on_solution(
    assignment: str, validate_runs: dict[str, subprocess.CompletedProcess[str]]
) -> None:
    result = validate_runs["solution"]
    assert result.returncode == 0, (
        f"`mlsys-lab validate` exited {result.returncode} on the solution of {assignment}; expected 0.\n"
        f"stdout:\n{result.stdout}\nstderr:\n{result.stderr}"
    )
    assert result.stdout.rstrip().endswith("All tests passed."), f"Unexpected report:\n{result.stdout}"


@pytest.mark.parametrize("assignment", [CLI_VALIDATE_MODULE], scope="session")
def test_validate_fails_on_blank_and_names_cells(
    assignment: str, validate_runs: dict[str, subprocess.CompletedProcess[str]]
) -> None:
    result = validate_runs["blank"]
    assert result.returncode != 0, (
        f"`mlsys-lab validate` exited 0 on the blank notebook of {assignment}; expected failure (nbgrader's "
        f"own validate exits 0 whatever happens; ours must not).\nstdout:\n{result.stdout}"
    )
    student = nbformat.read(notebook_path("notebooks", assignment), as_version=4)
    # Visible tests (cells with code beyond the first-line comment) and written answers must fail.
    visible = [
        str(c.metadata.nbgrader["grade_id"])
        for c in student.cells
        if is_test_cell(c) and any(line.strip() and not line.strip().startswith("#") for line in c.source.splitlines())
    ]
    expected = visible + graded_ids(student, is_manual_cell)
    unnamed = [grade_id for grade_id in expected if grade_id not in result.stdout]
    assert not unnamed, (
        f"The validate report does not name failing cells {unnamed}; expected every visible test and "
        f"written answer of the blank notebook listed.\nReport:\n{result.stdout}"
    )
