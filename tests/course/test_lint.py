"""Rules nbgrader does not enforce but grading depends on, checked on every assignment."""

from __future__ import annotations

import ast
import re
from collections import Counter

import nbformat
import pytest

from .conftest import (
    ASSIGNMENTS,
    REPO_ROOT,
    RUN_ON,
    Execution,
    is_graded,
    is_test_cell,
    nbgrader_meta,
    notebook_path,
)

MARKERS = re.compile(r"(BEGIN|END) (SOLUTION|HIDDEN TESTS)")


def _read(folder: str, assignment: str) -> nbformat.NotebookNode:
    path = notebook_path(folder, assignment)
    assert path.is_file(), f"Expected {path}; run `make notebooks` if it is a generated folder."
    return nbformat.read(path, as_version=4)


def _first_line(cell: nbformat.NotebookNode) -> str:
    lines = cell.source.strip().splitlines()
    return lines[0] if lines else ""


def test_grade_ids_unique_within_notebook(assignment: str) -> None:
    ids = [nbgrader_meta(c).get("grade_id") for c in _read("source", assignment).cells if nbgrader_meta(c)]
    duplicates = sorted(str(i) for i, n in Counter(ids).items() if n > 1)
    assert not duplicates, (
        f"{assignment}: grade_id {duplicates} used by several cells; expected each once. nbgrader stores "
        "grades by grade_id, so duplicates overwrite each other. Rename them in the source notebook."
    )


def test_grade_ids_unique_across_course() -> None:
    owners: dict[str, list[str]] = {}
    for name in ASSIGNMENTS:
        for cell in _read("source", name).cells:
            grade_id = nbgrader_meta(cell).get("grade_id")
            if grade_id:
                owners.setdefault(str(grade_id), []).append(name)
    shared = {gid: names for gid, names in owners.items() if len(set(names)) > 1}
    assert not shared, (
        f"grade_ids used in several assignments: {shared}; expected course-wide unique ids so grade "
        "exports and feedback are unambiguous. Prefix them with the module's topic."
    )


def test_graded_cells_have_points(assignment: str) -> None:
    pointless = [
        f"{nbgrader_meta(c).get('grade_id')} (points={nbgrader_meta(c).get('points')!r})"
        for c in _read("source", assignment).cells
        if is_graded(c) and not float(nbgrader_meta(c).get("points") or 0) > 0  # type: ignore[arg-type]
    ]
    assert not pointless, (
        f"{assignment}: graded cells {pointless} have no points; expected points > 0. Set points in "
        "the Create Assignment toolbar, or make the cell ungraded."
    )


def test_student_files_carry_no_solution_markers(assignment: str) -> None:
    folder = REPO_ROOT / "notebooks" / assignment
    leaks = []
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        text = path.read_bytes().decode("utf-8", errors="ignore")
        leaks += [f"{path.relative_to(REPO_ROOT)}: {m.group(0)}" for m in MARKERS.finditer(text)]
    assert not leaks, (
        f"Student files contain solution/hidden-test markers: {leaks}; expected none. A marker outside "
        "an nbgrader solution or test cell ships the solution: mark the cell in the source notebook, "
        "and keep solutions out of files beside it."
    )


def test_written_answers_have_a_model_answer(assignment: str) -> None:
    """Graders compare with solutions/; an answer cell that holds only the stub gives them nothing,
    and nbgrader would score the reference solution's answer as unanswered."""
    empty = [
        str(nbgrader_meta(c).get("grade_id"))
        for c in _read("source", assignment).cells
        if c.cell_type == "markdown"
        and is_graded(c)
        and nbgrader_meta(c).get("solution")
        and re.sub(r"#+ *(BEGIN|END) SOLUTION|YOUR ANSWER HERE", "", c.source).strip() == ""
    ]
    assert not empty, (
        f"{assignment}: written-answer cells {empty} hold no model answer; expected one for graders. "
        "Write it in the source cell: students get 'YOUR ANSWER HERE' instead."
    )


def test_source_notebooks_have_no_outputs(assignment: str) -> None:
    dirty = [
        f"cell {i + 1} ({_first_line(c)[:40]!r})"
        for i, c in enumerate(_read("source", assignment).cells)
        if c.cell_type == "code" and (c.outputs or c.execution_count is not None)
    ]
    assert not dirty, (
        f"{assignment}: source cells {dirty} have outputs or execution counts; expected none (outputs "
        "would ship to students and make the generated files change). Clear all outputs and save."
    )


def test_at_most_one_parameters_cell(assignment: str) -> None:
    tagged = [
        i + 1 for i, c in enumerate(_read("source", assignment).cells) if "parameters" in c.metadata.get("tags", [])
    ]
    assert len(tagged) <= 1, (
        f"{assignment}: cells {tagged} are tagged 'parameters'; expected at most one. papermill injects "
        "its values after the first only, so the others would silently reset FAST/SEED."
    )


def test_graded_runs_take_the_short_version(assignment: str) -> None:
    # nbgrader cannot pass FAST: without this line a graded run takes the full lesson, several times
    # the cost for every student of a class (and the variant suite grades the short version only).
    cells = _read("source", assignment).cells
    at = next((i for i, c in enumerate(cells) if "parameters" in c.metadata.get("tags", [])), None)
    assert at is not None, f"{assignment} has no cell tagged 'parameters'"
    following = cells[at + 1].source if at + 1 < len(cells) else ""
    assert "FAST = grading.fast_mode(FAST)" in following, (
        f"{assignment}: the cell after the parameters cell must set `FAST = grading.fast_mode(FAST)`, so that "
        f"autograde, Validate and `mlsys-lab lab --fast` run the short version; it holds:\n{following[:300]}"
    )


def _names(source: str, *, defined: bool) -> set[str]:
    """Top-level names a cell defines (functions, classes, assignments), or every name it reads."""
    try:
        tree = ast.parse(source)
    except SyntaxError:  # IPython magics: no answer cell or lesson cell here uses them
        return set()
    if not defined:
        return {n.id for n in ast.walk(tree) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)}
    found = {node.name for node in tree.body if isinstance(node, ast.FunctionDef | ast.ClassDef)}
    for node in tree.body:
        if isinstance(node, ast.Assign):
            found |= {n.id for target in node.targets for n in ast.walk(target) if isinstance(n, ast.Name)}
    return found


def test_run_all_goes_past_unanswered_exercises(assignment: str) -> None:
    # In a blank notebook every test cell fails, and so does a lesson cell that calls the learner's
    # function; without the tag, Run All stops at the first of them and the rest of the lesson (its
    # plots, the later sections) never runs. nbgrader ignores the tag: it grades from the outputs.
    # This reads the source statically; test_run_all_goes_past_every_failure_of_the_blank (test_grading.py)
    # checks every cell that really fails in bob's autograded blank is tagged, and the browser test that
    # JupyterLab's Run All goes past a tagged failure. The solution's run checks no tag hides a real error.
    answers: set[str] = set()
    untagged = []
    for index, cell in enumerate(_read("source", assignment).cells):
        if cell.cell_type != "code":
            continue
        meta = nbgrader_meta(cell)
        if meta.get("solution"):
            answers |= _names(cell.source, defined=True)
        uses_answer = bool(_names(cell.source, defined=False) & answers)
        if (meta.get("grade") or meta.get("solution") or uses_answer) and RUN_ON not in cell.metadata.get("tags", []):
            untagged.append(f"cell {index + 1} ({meta.get('grade_id') or 'lesson cell using an answer'})")
    assert not untagged, (
        f"{assignment}: {untagged} fail in the blank notebook but are not tagged {RUN_ON!r}, so Run All stops "
        "there. Add the tag (JupyterLab: property inspector, Cell Tags)."
    )


@pytest.mark.slow
def test_no_cell_of_the_solution_raises(assignment: str, executed_solution: Execution) -> None:
    # papermill, like Run All, goes on past a cell tagged raises-exception: the tag must never hide a
    # real error in the reference solution.
    if executed_solution.error is not None:
        pytest.fail(f"The solution of {assignment} did not run, see test_solution_runs_in_fast_mode.")
    nb = nbformat.read(executed_solution.output, as_version=4)
    failed = [
        f"cell {index + 1}: {output.ename}: {output.evalue[:200]}"
        for index, cell in enumerate(nb.cells)
        if cell.cell_type == "code"
        for output in cell.outputs
        if output.output_type == "error"
    ]
    assert not failed, f"{assignment}: the reference solution raised in {failed}; expected no error in any cell."


@pytest.mark.parametrize("folder", ["source", "notebooks", "solutions"])
def test_kernelspec_is_python3(assignment: str, folder: str) -> None:
    name = _read(folder, assignment).metadata.get("kernelspec", {}).get("name")
    assert name == "python3", (
        f"{folder} notebook of {assignment} asks for kernel {name!r}; expected 'python3' (what CI, "
        "papermill and nbgrader start). Change the kernel in the source notebook and rebuild."
    )


def test_test_cells_open_with_a_comment(assignment: str) -> None:
    bare = [
        str(nbgrader_meta(c).get("grade_id"))
        for c in _read("source", assignment).cells
        if is_test_cell(c) and not _first_line(c).startswith("#")
    ]
    assert not bare, (
        f"{assignment}: test cells {bare} do not start with a comment; expected a first line like "
        "'# confusion_counts handles empty input' saying what the cell checks (students see it in "
        "feedback even when the rest is hidden)."
    )


@pytest.mark.slow
def test_graded_cells_write_nothing_to_stderr(assignment: str, executed_solution: Execution) -> None:
    if executed_solution.error is not None:
        pytest.fail(f"The solution of {assignment} did not run, see test_solution_runs_in_fast_mode.")
    nb = nbformat.read(executed_solution.output, as_version=4)
    noisy = []
    for cell in nb.cells:
        if not is_graded(cell) or cell.cell_type != "code":
            continue
        for output in cell.outputs:
            if output.output_type == "stream" and output.name == "stderr":
                first = output.text.strip().splitlines()[0] if output.text.strip() else "(blank)"
                noisy.append(f"{nbgrader_meta(cell).get('grade_id')}: {first}")
                break
    assert not noisy, (
        f"{assignment}: graded cells write to stderr when the solution runs: {noisy}; expected nothing, "
        "because nbgrader scores any stderr output as zero. Silence the warning/log/progress bar, or "
        "move that work to an ungraded cell."
    )
