"""The tests of every exercise separate right from wrong: other correct answers get full marks,
plausible wrong answers lose marks.

Variants live in ``assignments/variants/NN_slug/<answer grade_id>.py`` (see ``variants.py``). The
grading test runs each module's source notebook once in one kernel and swaps the variants in; one
slow test checks that this scoring agrees with a real ``nbgrader autograde``, cell by cell.
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator
from pathlib import Path

import nbformat
import pytest

from mlsys_lab import course

from . import variants
from .conftest import ASSIGNMENTS, REPO_ROOT, notebook_path

EXERCISES = [
    (name, exercise.answer_id)
    for name in ASSIGNMENTS
    for exercise in variants.exercises(nbformat.read(notebook_path("source", name), as_version=4))
]


def _source(assignment: str) -> nbformat.NotebookNode:
    return nbformat.read(notebook_path("source", assignment), as_version=4)


# --------------------------------------------------------------------------------------------------
# Lint: every exercise has its variants, and they never ship
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("assignment", "exercise"), EXERCISES, ids=[f"{a}:{e}" for a, e in EXERCISES])
def test_every_exercise_has_a_variant_set(assignment: str, exercise: str) -> None:
    path = variants.variant_file(assignment, exercise)
    assert path.is_file(), (
        f"{assignment}: exercise {exercise} has no answer variants; expected {path.relative_to(REPO_ROOT)} with at "
        f"least {variants.MIN_CORRECT} correct answers written differently from the reference and "
        f"{variants.MIN_WRONG} plausible wrong ones, each opened by '# %% correct: ...' or '# %% wrong: ...'."
    )
    found = variants.load_variants(path)
    correct = [v for v in found if v.correct]
    wrong = [v for v in found if not v.correct]
    assert len(correct) >= variants.MIN_CORRECT and len(wrong) >= variants.MIN_WRONG, (
        f"{path.relative_to(REPO_ROOT)} has {len(correct)} correct and {len(wrong)} wrong variants; expected at "
        f"least {variants.MIN_CORRECT} and {variants.MIN_WRONG}."
    )
    names = [v.label for v in found]
    assert len(set(names)) == len(names), f"{path.relative_to(REPO_ROOT)}: variant names repeat: {names}"


def test_no_variant_file_without_an_exercise() -> None:
    known = {(a, e) for a, e in EXERCISES}
    orphans = [
        str(path.relative_to(REPO_ROOT))
        for path in sorted(variants.VARIANTS_DIR.glob("*/*.py"))
        if (path.parent.name, path.stem) not in known
    ]
    assert not orphans, (
        f"Variant files {orphans} match no answer cell (grade_id ending in _answer) of a source notebook; "
        "expected each file named after its exercise's answer grade_id. Rename or remove them."
    )


def test_variants_never_ship_to_students() -> None:
    assert not variants.VARIANTS_DIR.is_relative_to(REPO_ROOT / course.SOURCE_DIR), (
        "Variants must stay outside assignments/source: files beside a source notebook ship to students."
    )
    shipped = [
        str(p.relative_to(REPO_ROOT))
        for folder in (REPO_ROOT / course.STUDENT_DIR, REPO_ROOT / course.SOURCE_DIR)
        for p in folder.rglob("*")
        if p.is_file()
        and p.suffix != ".ipynb"
        and any(variants.HEADER.search(line) for line in p.read_text(errors="ignore").splitlines())
    ]
    assert not shipped, (
        f"Answer variants found in files that ship to students: {shipped}; move them under assignments/variants/."
    )


# --------------------------------------------------------------------------------------------------
# Grading every variant
# --------------------------------------------------------------------------------------------------

_GRADERS: dict[str, variants.ModuleGrader] = {}


@pytest.fixture(scope="module")
def module_graders(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, variants.ModuleGrader]]:
    """One running kernel per module, started on first use; only one module's kernel is kept alive."""
    stack: dict[str, object] = {}

    class Lazy(dict[str, variants.ModuleGrader]):
        def __missing__(self, assignment: str) -> variants.ModuleGrader:
            for name in list(self):
                stack.pop(name).__exit__(None, None, None)  # type: ignore[attr-defined]
                del self[name]
            grader = variants.ModuleGrader(
                notebook_path("source", assignment), tmp_path_factory.mktemp(f"variants-{assignment}") / assignment
            )
            running = grader.running()
            running.__enter__()
            stack[assignment] = running
            self[assignment] = grader
            return grader

    graders = Lazy()
    yield graders
    for running in stack.values():
        running.__exit__(None, None, None)  # type: ignore[attr-defined]


@pytest.mark.slow
@pytest.mark.parametrize(("assignment", "exercise"), EXERCISES, ids=[f"{a}:{e}" for a, e in EXERCISES])
def test_variants_graded_right(
    assignment: str, exercise: str, module_graders: dict[str, variants.ModuleGrader]
) -> None:
    path = variants.variant_file(assignment, exercise)
    if not path.is_file():
        pytest.fail(f"No variants for {exercise}: see test_every_exercise_has_a_variant_set.")
    grader = module_graders[assignment]
    assert not grader.startup_errors, (
        f"The reference notebook of {assignment} does not score full marks in the variant kernel: "
        f"{grader.startup_errors}"
    )
    problems = []
    for variant in variants.load_variants(path):
        result = grader.grade(variant)
        if variant.correct and not result.full_marks:
            problems.append(f"correct answer lost marks [{variant.name}]: {result.describe()}")
        if not variant.correct and result.full_marks:
            problems.append(f"wrong answer got full marks [{variant.name}]: {result.describe()}")
    assert not problems, (
        f"{assignment}:{exercise}: the tests do not separate right from wrong:\n  - "
        + "\n  - ".join(problems)
        + f"\nFix the test cells of {exercise} in the source notebook (hidden tests catch wrong answers; "
        "comparisons must accept every answer the instructions allow), or the variant in "
        f"{path.relative_to(REPO_ROOT)} if it is mislabelled."
    )


# --------------------------------------------------------------------------------------------------
# The fast scoring agrees with nbgrader
# --------------------------------------------------------------------------------------------------

CROSS_CHECK = "00_notebook_thinking"


@pytest.mark.slow
def test_fast_scoring_agrees_with_nbgrader_autograde(tmp_path: Path) -> None:
    """A few variants graded by a real `nbgrader autograde` score cell by cell what the kernel says."""
    assignment = CROSS_CHECK
    chosen: list[variants.Variant] = []
    for exercise in ("confusion_counts_answer", "budget_threshold_answer"):
        found = variants.load_variants(variants.variant_file(assignment, exercise))
        chosen += [next(v for v in found if v.correct), *[v for v in found if not v.correct][:2]]

    grader = variants.ModuleGrader(notebook_path("source", assignment), tmp_path / "kernel" / assignment)
    with grader.running():
        fast = {f"s{i}": grader.grade(v) for i, v in enumerate(chosen)}

    course_dir = course.prepare_course_dir(REPO_ROOT, tmp_path / "course", [assignment])
    course.run_nbgrader(["generate_assignment", assignment, "--force"], course_dir)
    course.run_nbgrader(["generate_solution", assignment, "--force"], course_dir)
    for student, variant in zip(fast, chosen, strict=True):
        target = course_dir / "submitted" / student / assignment
        shutil.copytree(course_dir / "solution" / assignment, target)
        path = target / f"{assignment}.ipynb"
        nb = nbformat.read(path, as_version=4)
        (cell,) = [c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade_id") == variant.exercise]
        cell.source = variant.source
        nbformat.write(nb, path)
    course.run_nbgrader(["autograde", assignment], course_dir)
    scores = course.gradebook_scores(course_dir / "gradebook.db", assignment)

    disagreements = []
    for student, result in fast.items():
        for cell in result.cells:
            row = scores[(scores.student == student) & (scores.grade_id == cell.grade_id)]
            real = float(row.auto_score.iloc[0])
            if real != cell.score:
                disagreements.append(
                    f"{result.variant.exercise} [{result.variant.label}] {cell.grade_id}: "
                    f"kernel {cell.score:g}, nbgrader {real:g}"
                )
    assert not disagreements, (
        "The variant grader and nbgrader autograde disagree:\n  "
        + "\n  ".join(disagreements)
        + f"\nLook at {course_dir}/autograded/ for nbgrader's outputs."
    )
    assert any(not r.full_marks for r in fast.values()) and any(r.full_marks for r in fast.values()), (
        "The cross-check needs both a full-marks and a failing variant to mean anything."
    )


FORBIDDEN_LIST = re.compile(r"check_not_forwarding\(\s*\w+\s*,\s*\[([^\]]*)\]")


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_forbidden_package_names_resolve(assignment: str) -> None:
    """check_not_forwarding skips names that do not resolve; a rename must not silently switch a check off."""
    from mlsys_lab import grading

    broken = []
    for cell in _source(assignment).cells:
        for match in FORBIDDEN_LIST.finditer(cell.source):
            for dotted in re.findall(r"[\"']([\w.]+)[\"']", match.group(1)):
                try:
                    grading._resolve(dotted)
                except (ImportError, AttributeError):
                    broken.append(dotted)
    assert not broken, (
        f"{assignment}: check_not_forwarding names {broken}, which do not resolve; expected existing package "
        "objects. Update the test cells to the package's new names."
    )
