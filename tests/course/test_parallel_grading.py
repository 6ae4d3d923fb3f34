"""Grading a class on several cores (``mlsys-lab autograde --jobs N``) gives exactly what one
``nbgrader autograde`` call gives, in the one instructor gradebook.

Both sides grade the same six submissions of the tiny three-exercise assignment of ``test_abuse``
(seconds per student), with real nbgrader: right, wrong, mixed, blank, late with a deleted test
cell, and an answer that kills its kernel.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pandas as pd
import pytest
from nbgrader.api import Gradebook

from mlsys_lab import course

from .conftest import console_script, is_test_cell
from .test_abuse import RIGHT, TINY, WRONG, _course, _submit, _write

pytestmark = pytest.mark.slow

TIMESTAMP = "2026-01-15 09:30:00.000000 UTC"


def _hand_in(course_dir: Path) -> None:
    _submit(course_dir, "alice", **RIGHT)
    _submit(course_dir, "bob", **WRONG)
    _submit(course_dir, "carol", add_one=RIGHT["add_one"], double=WRONG["double"], negate=RIGHT["negate"])
    shutil.copytree(course_dir / "release" / TINY, course_dir / "submitted" / "dave" / TINY)
    nb = _submit(course_dir, "erin", **RIGHT)
    nb.cells = [cell for cell in nb.cells if not (is_test_cell(cell) and "double" in cell.source)]
    _write(course_dir, "erin", nb)
    (course_dir / "submitted" / "erin" / TINY / "timestamp.txt").write_text(TIMESTAMP)
    _submit(course_dir, "frank", negate="def negate(x):\n    import os\n    os._exit(1)")


def _gradebook(course_dir: Path) -> tuple[pd.DataFrame, dict[str, object], dict[tuple[str, str], object]]:
    """Every score, each submission's timestamp, and every answer's comment."""
    scores = course.gradebook_scores(course_dir / "gradebook.db", TINY)
    with Gradebook(f"sqlite:///{course_dir / 'gradebook.db'}", course_id="") as gb:
        submissions = gb.find_assignment(TINY).submissions
        timestamps = {s.student.id: s.timestamp for s in submissions}
        comments = {
            (s.student.id, c.name): c.auto_comment for s in submissions for nb in s.notebooks for c in nb.comments
        }
    return scores, timestamps, comments


@pytest.fixture(scope="module")
def both_ways(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, course.ClassGrading]:
    """The same class graded by one ``nbgrader autograde`` call and by ``autograde_class(jobs=2)``."""
    sequential = _course(tmp_path_factory.mktemp("sequential"))
    _hand_in(sequential)
    parallel = tmp_path_factory.mktemp("parallel") / "course"
    shutil.copytree(sequential, parallel)  # the same generated assignment and submissions, not yet graded
    try:
        course.run_nbgrader(["autograde", TINY], sequential, timeout=900)
    except RuntimeError as exc:  # frank's dead kernel is an ERROR line; the others are graded
        assert "frank" in str(exc) or "Kernel died" in str(exc) or "DeadKernel" in str(exc), exc
    result = course.autograde_class(parallel, TINY, jobs=2, timeout=900)
    return sequential, parallel, result


def test_parallel_grading_scores_exactly_like_nbgrader(both_ways: tuple[Path, Path, course.ClassGrading]) -> None:
    sequential, parallel, result = both_ways
    want_scores, want_times, want_comments = _gradebook(sequential)
    got_scores, got_times, got_comments = _gradebook(parallel)
    assert len(want_scores) and want_scores.student.nunique() == 6, want_scores
    totals = want_scores.groupby("student").auto_score.sum()
    assert totals.nunique() >= 3, f"the class should score differently per student, got {totals.to_dict()}"
    pd.testing.assert_frame_equal(got_scores, want_scores, check_dtype=False)
    assert got_times == want_times and want_times["erin"] is not None, (got_times, want_times)
    assert got_comments == want_comments
    assert result.graded == ["alice", "bob", "carol", "dave", "erin"], result
    for student in ("alice", "bob", "carol", "dave", "erin", "frank"):
        want = (sequential / "autograded" / student / TINY / f"{TINY}.ipynb").is_file()
        assert (parallel / "autograded" / student / TINY / f"{TINY}.ipynb").is_file() == want, student


def test_a_failed_student_is_named_and_the_rest_are_graded(both_ways: tuple[Path, Path, course.ClassGrading]) -> None:
    _, _, result = both_ways
    assert list(result.failed) == ["frank"], result.failed
    assert result.failed["frank"], "the failure should say what nbgrader reported"


def test_graded_students_are_skipped_unless_forced(both_ways: tuple[Path, Path, course.ClassGrading]) -> None:
    _, parallel, _ = both_ways
    before = _gradebook(parallel)[0]
    again = course.autograde_class(parallel, TINY, jobs=2, students=["alice", "bob"])
    assert again.skipped == ["alice", "bob"] and again.graded == [], again
    forced = course.autograde_class(parallel, TINY, jobs=2, students=["bob"], force=True)
    assert forced.graded == ["bob"] and not forced.failed, forced
    pd.testing.assert_frame_equal(_gradebook(parallel)[0], before, check_dtype=False)


def test_cli_grades_in_parallel_and_refuses_bad_input(both_ways: tuple[Path, Path, course.ClassGrading]) -> None:
    _, parallel, _ = both_ways
    cli = str(console_script("mlsys-lab"))
    ok = subprocess.run(
        [cli, "autograde", TINY, "--course", str(parallel), "--jobs", "2", "--student", "alice", "--force"],
        capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip
    assert ok.returncode == 0, ok.stderr
    assert "alice" in ok.stdout and "graded 1" in ok.stdout, ok.stdout
    bad = subprocess.run(
        [cli, "autograde", TINY, "--course", str(parallel), "--jobs", "0"],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert bad.returncode == 2 and "--jobs" in bad.stderr, bad.stderr
    nobody = subprocess.run(
        [cli, "autograde", TINY, "--course", str(parallel), "--student", "zoe"],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert nobody.returncode == 2 and "zoe" in nobody.stderr, nobody.stderr
