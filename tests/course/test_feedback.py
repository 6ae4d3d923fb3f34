"""What instructors hand back and read: feedback without hidden tests or paths, grades with pending marked.

One small course (module 00) graded here shows the quiet autograde and the grades table; the
feedback of every module comes from the shared round trip (conftest.round_trip).
"""

from __future__ import annotations

import re
import shutil
from dataclasses import dataclass
from pathlib import Path

import nbformat
import pytest

from mlsys_lab import course

from .conftest import (
    REPO_ROOT,
    STUDENTS,
    RoundTrip,
    console_script,
    is_test_cell,
    notebook_path,
    run_instructor_command,
)

FIRST = "00_notebook_thinking"
pytestmark = pytest.mark.slow


def hidden_test_lines(assignment: str) -> list[str]:
    """Every meaningful line between BEGIN and END HIDDEN TESTS in the instructor's source."""
    nb = nbformat.read(notebook_path("source", assignment), as_version=4)
    lines = []
    for cell in nb.cells:
        hidden = False
        for line in cell.source.splitlines():
            if "BEGIN HIDDEN TESTS" in line:
                hidden = True
            elif "END HIDDEN TESTS" in line:
                hidden = False
            elif hidden and len(line.strip()) >= 12:  # skip lines like ")" that any code has
                lines.append(line.strip())
    # A line the student's own notebook also holds (say `day = 86_400`) is no leak.
    released = nbformat.read(notebook_path("notebooks", assignment), as_version=4)
    visible = {line.strip() for cell in released.cells for line in cell.source.splitlines()}
    lines = [line for line in lines if line not in visible]
    assert lines, f"{assignment} has no hidden tests to look for; the leak check would be empty"
    return lines


def _html_text(html: str) -> str:
    import html as html_lib

    return html_lib.unescape(re.sub(r"<[^>]+>", "", html))


def test_feedback_shows_scores_and_messages_but_no_hidden_tests_or_paths(
    assignment: str, round_trip: RoundTrip
) -> None:
    pages = sorted((round_trip.course_dir / "feedback").rglob("*.html"))
    assert len(pages) >= len(STUDENTS), f"expected one feedback page per student; found {pages}"
    hidden = hidden_test_lines(assignment)
    course_path = str(round_trip.course_dir.resolve())
    for page in pages:
        html = page.read_text(encoding="utf-8")
        text = _html_text(html)
        leaked = [line for line in hidden if line in text]
        assert not leaked, f"{page} shows hidden-test code, e.g. {leaked[:3]}"
        assert course_path not in html and str(round_trip.course_dir) not in html, f"{page} names {course_path}"
        assert "grading.py" not in text, f"{page} shows a traceback into mlsys_lab/grading.py"
        remote = re.findall(r"<script[^>]*src=\"(https?://[^\"]+)\"", html)
        assert not remote, f"{page} loads scripts from the internet: {remote}"
        assert "Score:" in text and "(hidden tests: not shown in feedback)" in text, f"{page} lost its scores"
    blank = next(page for page in pages if page.parts[-3] == "bob")
    text = _html_text(blank.read_text(encoding="utf-8"))
    failed = round_trip.scores.query("student == 'bob' and failed_tests == True")["grade_id"].tolist()
    assert failed, "bob's blank notebook should fail tests"
    for grade_id in failed:
        assert grade_id in text, f"bob's feedback does not name the failed test {grade_id}"
    assert "AssertionError" in text or "Error:" in text, "bob's feedback shows no failure message"
    _screenshot(blank, REPO_ROOT / "runs" / "browser" / f"feedback-{assignment}-bob.png")


def _screenshot(page_path: Path, out: Path) -> None:
    """Render a feedback page offline in Chromium, for people to look at (when Chromium is installed)."""
    chromium = Path("/usr/bin/chromium")
    if not chromium.is_file():
        return  # the browser test reports a missing Chromium; this picture is only a convenience
    from playwright.sync_api import sync_playwright

    out.parent.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(chromium), args=["--no-sandbox", "--disable-gpu", "--no-first-run"], headless=True
        )
        page = browser.new_page(viewport={"width": 1200, "height": 1600})
        page.goto(page_path.as_uri())
        page.screenshot(path=str(out), full_page=False)
        browser.close()


@dataclass(frozen=True)
class Graded:
    course_dir: Path
    autograde_log: str


@pytest.fixture(scope="module")
def graded(tmp_path_factory: pytest.TempPathFactory) -> Graded:
    """Module 00 graded for the reference (alice), the blank (bob) and a blank with an edited test (dave)."""
    course_dir = course.prepare_course_dir(REPO_ROOT, tmp_path_factory.mktemp("graded") / "course", [FIRST])
    run_instructor_command(course_dir, "generate_assignment", FIRST, "--force")
    run_instructor_command(course_dir, "generate_solution", FIRST, "--force")
    shutil.copytree(course_dir / "solution" / FIRST, course_dir / "submitted" / "alice" / FIRST)
    for student in ("bob", "dave"):
        shutil.copytree(course_dir / "release" / FIRST, course_dir / "submitted" / student / FIRST)
    edited = course_dir / "submitted" / "dave" / FIRST / f"{FIRST}.ipynb"
    nb = nbformat.read(edited, as_version=4)
    cell = next(c for c in nb.cells if is_test_cell(c) and c.metadata.nbgrader["grade_id"] == "confusion_counts_hidden")
    cell.source += "\nassert True  # dave 'fixes' the test"
    nbformat.write(nb, edited)
    log = run_instructor_command(course_dir, "autograde", FIRST)
    return Graded(course_dir=course_dir, autograde_log=log)


def test_autograde_warns_about_edited_test_cells_only(graded: Graded) -> None:
    checksum = [line for line in graded.autograde_log.splitlines() if "'checksum'" in line]
    assert len(checksum) == 1 and "confusion_counts_hidden" in checksum[0], (
        "expected one checksum warning, for dave's edited cell; got:\n" + "\n".join(checksum)
    )
    for noise in ("SAWarning", "running over TCP"):
        assert noise not in graded.autograde_log, f"autograde still prints {noise!r}:\n{graded.autograde_log[-3000:]}"


def test_grades_command_prints_every_cell_and_marks_pending(graded: Graded) -> None:
    import subprocess

    result = subprocess.run(
        [str(console_script("mlsys-lab")), "grades", FIRST, "--course", str(graded.course_dir)],
        capture_output=True, text=True, check=False, timeout=120,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    scores = course.gradebook_scores(graded.course_dir / "gradebook.db", FIRST)
    for row in scores.itertuples():
        assert re.search(rf"{row.student}\s+{FIRST}\s+{row.grade_id}\s", result.stdout), (
            f"the table lacks {row.student}/{row.grade_id}:\n{result.stdout}"
        )
    assert "..." not in result.stdout, "the table is truncated"
    manual = scores.query("student == 'alice' and needs_manual_grade == True")
    assert len(manual), "alice's written answer should wait for a person"
    pending_points = manual["max_score"].sum()
    assert re.search(
        rf"^alice: \d+ / \d+ \({pending_points:g} point\(s\) pending manual grading\)$", result.stdout, re.M
    ), result.stdout
    assert re.search(r"^bob: 0 / \d+ \(final\)$", result.stdout, re.M), result.stdout
