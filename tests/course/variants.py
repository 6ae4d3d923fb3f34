"""Answer variants and a fast grader that scores them the way nbgrader does.

Each autograded exercise of a module (an answer cell whose ``grade_id`` ends in ``_answer``, and the
graded test cells after it) has a variant file, ``assignments/variants/NN_slug/<answer grade_id>.py``.
The file holds several answers, each opened by a header line::

    # %% correct: a loop instead of vectorised code
    def confusion_counts(y_true, y_pred): ...

    # %% wrong: swaps fp and fn
    def confusion_counts(y_true, y_pred): ...

The folder sits outside ``assignments/source``, so nbgrader never releases it to students.

:class:`ModuleGrader` runs a module's source notebook (solutions and hidden tests included) once in
one kernel, in fast mode, then for each variant executes the variant in place of the answer cell and
reruns only that exercise's test cells, scoring every cell with nbgrader's own
:func:`nbgrader.utils.determine_grade` (an error or any stderr output scores zero).
"""

from __future__ import annotations

import copy
import logging
import os
import re
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import nbformat
from nbclient import NotebookClient
from nbgrader.utils import determine_grade

REPO_ROOT = Path(__file__).resolve().parents[2]
VARIANTS_DIR = REPO_ROOT / "assignments" / "variants"
HEADER = re.compile(r"^# %% (correct|wrong): *(.+?) *$", flags=re.MULTILINE)
#: Seconds any one cell may run while grading variants (the lesson cells are fast in FAST mode).
CELL_TIMEOUT = 300
MIN_CORRECT, MIN_WRONG = 2, 4
_quiet = logging.getLogger("variants.nbclient")
_quiet.addHandler(logging.NullHandler())
_quiet.propagate = False


@dataclass(frozen=True)
class Variant:
    """One answer to one exercise, and whether it should earn full marks."""

    exercise: str
    name: str
    correct: bool
    source: str

    @property
    def label(self) -> str:
        return f"{'correct' if self.correct else 'wrong'}: {self.name}"


@dataclass(frozen=True)
class Exercise:
    """An answer cell and the graded test cells that follow it, by cell position."""

    answer_id: str
    answer_index: int
    test_indices: tuple[int, ...]
    test_ids: tuple[str, ...]


def _meta(cell: nbformat.NotebookNode) -> dict[str, object]:
    return dict(cell.get("metadata", {}).get("nbgrader", {}))


def _is_test(cell: nbformat.NotebookNode) -> bool:
    meta = _meta(cell)
    return cell.cell_type == "code" and bool(meta.get("grade")) and not meta.get("solution")


def _is_answer(cell: nbformat.NotebookNode) -> bool:
    meta = _meta(cell)
    return cell.cell_type == "code" and bool(meta.get("solution")) and str(meta.get("grade_id", "")).endswith("_answer")


def exercises(nb: nbformat.NotebookNode) -> list[Exercise]:
    """The autograded exercises of a notebook: each answer cell with the test cells up to the next one."""
    found: list[Exercise] = []
    answers = [i for i, cell in enumerate(nb.cells) if _is_answer(cell)]
    for position, start in enumerate(answers):
        stop = answers[position + 1] if position + 1 < len(answers) else len(nb.cells)
        tests = tuple(i for i in range(start + 1, stop) if _is_test(nb.cells[i]))
        if tests:
            found.append(
                Exercise(
                    answer_id=str(_meta(nb.cells[start])["grade_id"]),
                    answer_index=start,
                    test_indices=tests,
                    test_ids=tuple(str(_meta(nb.cells[i])["grade_id"]) for i in tests),
                )
            )
    return found


def variant_file(assignment: str, exercise: str) -> Path:
    return VARIANTS_DIR / assignment / f"{exercise}.py"


def load_variants(path: Path) -> list[Variant]:
    """Parse a variant file into its answers, in file order."""
    text = path.read_text(encoding="utf-8")
    headers = list(HEADER.finditer(text))
    variants = []
    for position, match in enumerate(headers):
        end = headers[position + 1].start() if position + 1 < len(headers) else len(text)
        variants.append(
            Variant(
                exercise=path.stem,
                name=match.group(2),
                correct=match.group(1) == "correct",
                source=text[match.end() : end].strip() + "\n",
            )
        )
    return variants


@dataclass(frozen=True)
class CellGrade:
    grade_id: str
    score: float
    max_score: float
    detail: str


@dataclass(frozen=True)
class Grading:
    variant: Variant
    cells: tuple[CellGrade, ...]

    @property
    def score(self) -> float:
        return sum(c.score for c in self.cells)

    @property
    def max_score(self) -> float:
        return sum(c.max_score for c in self.cells)

    @property
    def full_marks(self) -> bool:
        return self.score == self.max_score

    def describe(self) -> str:
        lost = [f"{c.grade_id} {c.score:g}/{c.max_score:g} ({c.detail})" for c in self.cells if c.score < c.max_score]
        return f"{self.score:g}/{self.max_score:g}" + (": " + "; ".join(lost) if lost else "")


def _failure_detail(cell: nbformat.NotebookNode) -> str:
    for output in cell.get("outputs", []):
        if output.output_type == "error":
            return f"{output.ename}: {output.evalue}"[:300]
        if output.output_type == "stream" and output.name == "stderr":
            return f"stderr: {output.text.strip()[:300]}"
    return ""


def fast_notebook(source: Path) -> nbformat.NotebookNode:
    """The notebook with ``FAST = True`` injected after its parameters cell, as papermill would."""
    nb = nbformat.read(source, as_version=4)
    for index, cell in enumerate(nb.cells):
        if "parameters" in cell.metadata.get("tags", []):
            nb.cells.insert(index + 1, nbformat.v4.new_code_cell("FAST = True"))
            break
    return nb


class ModuleGrader:
    """One kernel holding a module's executed source notebook, ready to grade answer variants.

    Use as a context manager: :meth:`start` runs the notebook; :meth:`grade` swaps an answer in,
    reruns that exercise's tests and puts the reference answer back.
    """

    def __init__(self, source: Path, workdir: Path, cell_timeout: int = CELL_TIMEOUT) -> None:
        shutil.copytree(source.parent, workdir, ignore=shutil.ignore_patterns(".ipynb_checkpoints", "__pycache__"))
        self.nb = fast_notebook(workdir / source.name)
        # nbclient writes each executed cell back into the notebook it runs; keep the originals apart.
        self.cells = copy.deepcopy(self.nb.cells)
        self.exercises = {e.answer_id: e for e in exercises(self.nb)}
        self.workdir = workdir
        self.client = NotebookClient(
            self.nb,
            timeout=cell_timeout,
            kernel_name="python3",
            allow_errors=True,
            resources={"metadata": {"path": str(workdir)}},
            log=_quiet,
        )
        self.startup_errors: list[str] = []

    @contextmanager
    def running(self) -> Iterator[ModuleGrader]:
        # nbgrader's grading kernel sees NBGRADER_EXECUTION=autograde; so does this one.
        env = {**os.environ, "NBGRADER_EXECUTION": "autograde"}
        with self.client.setup_kernel(env=env, cwd=str(self.workdir)):
            self._run_prefix(len(self.nb.cells))
            yield self

    def _execute(self, cell: nbformat.NotebookNode, index: int) -> nbformat.NotebookNode:
        cell = copy.deepcopy(cell)
        cell.outputs = []
        self.client.execute_cell(cell, index)
        return cell

    def _run_prefix(self, stop: int) -> None:
        self.startup_errors = []
        for index in range(stop):
            cell = self.cells[index]
            if cell.cell_type != "code":
                continue
            done = self._execute(cell, index)
            if _is_test(cell) and determine_grade(done, _quiet)[0] != determine_grade(done, _quiet)[1]:
                self.startup_errors.append(f"{_meta(cell)['grade_id']}: {_failure_detail(done)}")

    def _grade_source(self, exercise: Exercise, source: str) -> list[CellGrade]:
        answer = nbformat.v4.new_code_cell(source)
        answer.metadata = copy.deepcopy(self.cells[exercise.answer_index].metadata)
        self._execute(answer, exercise.answer_index)
        grades = []
        for index, grade_id in zip(exercise.test_indices, exercise.test_ids, strict=True):
            done = self._execute(self.cells[index], index)
            score, max_score = determine_grade(done, _quiet)
            grades.append(CellGrade(grade_id, float(score or 0), float(max_score), _failure_detail(done)))
        return grades

    def grade(self, variant: Variant) -> Grading:
        """Score ``variant`` on its exercise's test cells, then restore the reference answer."""
        exercise = self.exercises[variant.exercise]
        grading = Grading(variant, tuple(self._grade_source(exercise, variant.source)))
        self.restore(exercise)
        return grading

    def restore(self, exercise: Exercise) -> None:
        """Put the reference answer back; rerun the notebook up to the exercise if a variant broke state."""
        # Redefine every reference answer up to this one: a variant may have replaced an earlier answer too.
        for earlier in self.exercises.values():
            if earlier.answer_index < exercise.answer_index:
                self._execute(self.cells[earlier.answer_index], earlier.answer_index)
        reference = self.cells[exercise.answer_index].source
        if all(g.score == g.max_score for g in self._grade_source(exercise, reference)):
            return
        # The variant changed shared state (mutated an input, monkeypatched a library): rebuild it.
        self._run_prefix(exercise.test_indices[-1] + 1)
        still = [g for g in self._grade_source(exercise, reference) if g.score < g.max_score]
        if still:
            raise RuntimeError(
                f"The reference answer of {exercise.answer_id} no longer scores full marks after rerunning the "
                f"notebook: {[(g.grade_id, g.detail) for g in still]}"
            )
