"""Grading under abuse, with a real ``nbgrader autograde`` and the result read from the gradebook.

Most cases use a tiny three-exercise assignment built here (seconds per autograde instead of
minutes); the endless loop is also tried on a real module. Each test states what a student or an
instructor sees: a score per cell, never a silent full mark for a wrong answer and never a silent
zero for everything.
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import nbformat
import pandas as pd
import pytest

from mlsys_lab import course

from .conftest import REPO_ROOT

pytestmark = pytest.mark.slow

TINY = "99_tiny"
#: Seconds per cell for the endless-loop cases (the course's own limit is 600 s: too slow for a test).
LOOP_TIMEOUT = 15

_ANSWERS = {
    "add_one": "def add_one(x):\n    ### BEGIN SOLUTION\n    return x + 1\n    ### END SOLUTION",
    "double": "def double(values):\n    ### BEGIN SOLUTION\n    return np.asarray(values) * 2\n    ### END SOLUTION",
    "negate": "def negate(x):\n    ### BEGIN SOLUTION\n    return -x\n    ### END SOLUTION",
}
_TESTS = {
    "add_one": '# add_one adds one\ngrading.check_equal("add_one(1)", grading.call(add_one, 1), 2)',
    "double": (
        "# double doubles every value\n"
        'grading.check_equal("double([1, 2])", grading.call(double, [1, 2]), np.array([2, 4]))'
    ),
    "negate": '# negate flips the sign\ngrading.check_equal("negate(3)", grading.call(negate, 3), -3)',
}
WRONG = {
    "add_one": "def add_one(x):\n    return x",
    "double": "def double(values):\n    return np.asarray(values)",
    "negate": "def negate(x):\n    return x",
}
RIGHT = {
    name: source.replace("    ### BEGIN SOLUTION\n", "").replace("\n    ### END SOLUTION", "")
    for name, source in _ANSWERS.items()
}


def _tiny_source() -> nbformat.NotebookNode:
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    cells = [nbformat.v4.new_code_cell("import numpy as np\n\nfrom mlsys_lab import grading")]
    for name in _ANSWERS:
        answer = nbformat.v4.new_code_cell(_ANSWERS[name])
        answer.metadata["nbgrader"] = {
            "grade": False,
            "solution": True,
            "locked": False,
            "grade_id": f"{name}_answer",
            "schema_version": 3,
        }
        test = nbformat.v4.new_code_cell(_TESTS[name])
        test.metadata["nbgrader"] = {
            "grade": True,
            "solution": False,
            "locked": True,
            "grade_id": f"{name}_test",
            "points": 1,
            "schema_version": 3,
        }
        cells += [answer, test]
    nb.cells = cells
    for index, cell in enumerate(nb.cells):
        cell["id"] = f"cell-{index}"
    return nb


def _course(tmp_path: Path, assignment: str = TINY) -> Path:
    if assignment == TINY:
        course_dir = tmp_path / "course"
        (course_dir / "source" / TINY).mkdir(parents=True)
        shutil.copyfile(REPO_ROOT / course.CONFIG_FILE, course_dir / "nbgrader_config.py")
        nbformat.write(_tiny_source(), course_dir / "source" / TINY / f"{TINY}.ipynb")
    else:
        course_dir = course.prepare_course_dir(REPO_ROOT, tmp_path / "course", [assignment])
    course.run_nbgrader(["generate_assignment", assignment, "--force"], course_dir)
    course.run_nbgrader(["generate_solution", assignment, "--force"], course_dir)
    return course_dir


def _submit(course_dir: Path, student: str, assignment: str = TINY, **answers: str) -> nbformat.NotebookNode:
    """Hand in the solution with some answer cells replaced (by answer grade_id prefix)."""
    target = course_dir / "submitted" / student / assignment
    shutil.copytree(course_dir / "solution" / assignment, target)
    path = target / f"{assignment}.ipynb"
    nb = nbformat.read(path, as_version=4)
    for cell in nb.cells:
        grade_id = cell.metadata.get("nbgrader", {}).get("grade_id", "")
        for name, source in answers.items():
            if grade_id == f"{name}_answer":
                cell.source = source
    nbformat.write(nb, path)
    return nb


def _write(course_dir: Path, student: str, nb: nbformat.NotebookNode, assignment: str = TINY) -> None:
    nbformat.write(nb, course_dir / "submitted" / student / assignment / f"{assignment}.ipynb")


def _autograde(
    course_dir: Path, *extra: str, assignment: str = TINY, errors_logged: bool = False
) -> tuple[pd.DataFrame, str, float]:
    """Autograde every submission; with ``errors_logged``, nbgrader's ERROR lines (a timeout, a dead
    kernel) are expected and the log is returned instead of raised."""
    start = time.perf_counter()
    try:
        log = course.run_nbgrader(["autograde", assignment, *extra], course_dir, timeout=900)
    except RuntimeError as exc:
        if not errors_logged:
            raise
        log = str(exc)
    seconds = time.perf_counter() - start
    return course.gradebook_scores(course_dir / "gradebook.db", assignment), log, seconds


def _scores(frame: pd.DataFrame, student: str) -> dict[str, float]:
    rows = frame[frame.student == student]
    return {str(r.grade_id): float(r.auto_score) for r in rows.itertuples() if r.auto_score is not None}


def test_edited_test_cells_are_restored_and_graded(tmp_path: Path) -> None:
    course_dir = _course(tmp_path)
    nb = _submit(course_dir, "mallory", **WRONG)
    for cell in nb.cells:
        if cell.metadata.get("nbgrader", {}).get("grade"):
            cell.source = "# add_one adds one\npass"  # a wrong answer under a test that checks nothing
    _write(course_dir, "mallory", nb)
    scores, log, _ = _autograde(course_dir)
    assert _scores(scores, "mallory") == {"add_one_test": 0.0, "double_test": 0.0, "negate_test": 0.0}, (
        f"Edited test cells over wrong answers scored {_scores(scores, 'mallory')}; expected 0 everywhere: "
        f"nbgrader must restore the locked test cells from the gradebook.\n{log[-2000:]}"
    )


def test_replaced_checkers_and_patched_numpy_fail_the_tests(tmp_path: Path) -> None:
    course_dir = _course(tmp_path)
    _submit(course_dir, "stubber", add_one="grading.check_equal = lambda *a, **k: None\n" + WRONG["add_one"])
    _submit(course_dir, "patcher", double="np.array_equal = lambda *a, **k: True\n" + WRONG["double"])
    _submit(course_dir, "honest")
    scores, log, _ = _autograde(course_dir)
    assert _scores(scores, "stubber")["add_one_test"] == 0.0, (
        f"Replacing grading.check_equal earned {_scores(scores, 'stubber')}; expected add_one_test 0 "
        "(check_untampered).\n"
        f"{log[-2000:]}"
    )
    assert _scores(scores, "patcher")["double_test"] == 0.0, (
        f"Patching np.array_equal earned {_scores(scores, 'patcher')}; expected double_test 0.\n{log[-2000:]}"
    )
    assert _scores(scores, "honest") == {"add_one_test": 1.0, "double_test": 1.0, "negate_test": 1.0}


def test_stripped_metadata_and_reordered_cells_never_give_free_marks(tmp_path: Path) -> None:
    """nbgrader cannot place the test cells of a notebook whose metadata is stripped: it reports an error
    naming that student and grades nobody else less for it. Reordered cells are graded in the order given."""
    course_dir = _course(tmp_path)
    for student, answers in (("stripped", WRONG), ("stripped_right", {})):
        nb = _submit(course_dir, student, **answers)
        for cell in nb.cells:
            cell.metadata.pop("nbgrader", None)
        _write(course_dir, student, nb)
    reordered = _submit(course_dir, "reordered")
    reordered.cells = [reordered.cells[0], *reversed(reordered.cells[1:])]  # every test now runs before its answer
    _write(course_dir, "reordered", reordered)
    _submit(course_dir, "honest")
    with pytest.raises(RuntimeError) as failure:
        _autograde(course_dir)
    message = str(failure.value)
    for student in ("stripped", "stripped_right"):
        assert f"for student '{student}'" in message, f"nbgrader's error does not name {student}:\n{message[-3000:]}"
    assert "for student 'honest'" not in message and "for student 'reordered'" not in message, message[-3000:]
    scores = course.gradebook_scores(course_dir / "gradebook.db", TINY)
    for student in ("stripped", "stripped_right"):
        # nbgrader leaves the cells ungraded (no auto score) and flags them for a person: never marks.
        assert not any(value > 0 for value in _scores(scores, student).values()), (
            f"{student}'s stripped notebook scored {_scores(scores, student)}; expected no marks (an error to look at)."
        )
    assert _scores(scores, "honest") == {"add_one_test": 1.0, "double_test": 1.0, "negate_test": 1.0}
    # Reordered: each test runs before the answer it checks, so it fails, visibly, as in the student's own run.
    got = _scores(scores, "reordered")
    assert len(got) == 3 and sum(got.values()) < 3, f"Reordered cells scored {got}; expected a graded row per test."


def test_an_endless_loop_scores_zero_and_the_rest_is_graded(tmp_path: Path) -> None:
    course_dir = _course(tmp_path)
    _submit(course_dir, "looper", double="def double(values):\n    while True:\n        pass")
    _submit(course_dir, "honest")
    scores, log, seconds = _autograde(course_dir, f"--Execute.timeout={LOOP_TIMEOUT}", errors_logged=True)
    assert "Timeout waiting for execute reply" in log, f"nbgrader's log does not show the timeout:\n{log[-3000:]}"
    looper = _scores(scores, "looper")
    assert looper.get("double_test") == 0.0, f"The endless loop scored {looper}; expected double_test 0.\n{log[-3000:]}"
    assert looper.get("add_one_test") == 1.0 and looper.get("negate_test") == 1.0, (
        f"An endless loop in one answer cost the others: {looper}; expected add_one_test and negate_test graded 1.\n"
        f"{log[-3000:]}"
    )
    assert _scores(scores, "honest") == {"add_one_test": 1.0, "double_test": 1.0, "negate_test": 1.0}
    assert seconds < 20 * LOOP_TIMEOUT, f"Grading two students took {seconds:.0f} s with a {LOOP_TIMEOUT} s cell limit."


@pytest.mark.parametrize(
    "killer",
    [
        "import os\n\ndef double(values):\n    os._exit(1)",
        "import ctypes\n\ndef double(values):\n    ctypes.string_at(0)",
    ],
    ids=["os._exit", "segfault"],
)
def test_a_kernel_killed_by_an_answer_is_reported_for_that_student(tmp_path: Path, killer: str) -> None:
    course_dir = _course(tmp_path)
    _submit(course_dir, "killer", double=killer)
    _submit(course_dir, "honest")
    scores, log, _ = _autograde(course_dir, errors_logged=True)
    # nbgrader stops that student's notebook, logs an error that names them and leaves the cells
    # ungraded (no auto score): an error for the instructor to read, not a silent full or zero.
    killer_scores = _scores(scores, "killer")
    assert not any(value > 0 for value in killer_scores.values()), (
        f"A submission that killed the kernel scored {killer_scores}: marks for a notebook that never finished.\n"
        f"{log[-3000:]}"
    )
    assert _scores(scores, "honest") == {"add_one_test": 1.0, "double_test": 1.0, "negate_test": 1.0}, (
        f"The next student's grading suffered from the dead kernel: {_scores(scores, 'honest')}.\n{log[-3000:]}"
    )
    assert "error processing assignment '99_tiny' for student 'killer'" in log and "Kernel died" in log, (
        f"nbgrader's log does not name the student whose kernel died:\n{log[-3000:]}"
    )
    assert "for student 'honest'" not in log, log[-3000:]


def test_an_endless_loop_in_a_real_module(tmp_path: Path) -> None:
    assignment = "00_notebook_thinking"
    course_dir = _course(tmp_path, assignment)
    _submit(
        course_dir,
        "looper",
        assignment,
        decision_cost="def decision_cost(y_true, y_pred, amount, false_alarm_cost):\n    while True:\n        pass",
    )
    scores, log, seconds = _autograde(
        course_dir, f"--Execute.timeout={LOOP_TIMEOUT}", assignment=assignment, errors_logged=True
    )
    rows = scores[(scores.student == "looper") & (scores.cell_type == "code")]
    got = {str(r.grade_id): float(r.auto_score) for r in rows.itertuples()}
    maxima = {str(r.grade_id): float(r.max_score) for r in rows.itertuples()}
    lost = {k: v for k, v in got.items() if k.startswith("decision_cost")}
    kept = {k: v for k, v in got.items() if not k.startswith("decision_cost")}
    assert lost and set(lost.values()) == {0.0}, f"decision_cost's tests scored {lost}; expected 0.\n{log[-3000:]}"
    assert kept and all(kept[k] == maxima[k] for k in kept), (
        f"The other exercises of {assignment} scored {kept}; expected full marks ({maxima}).\n{log[-3000:]}"
    )
    assert seconds < 600, f"Grading one looping student took {seconds:.0f} s."
