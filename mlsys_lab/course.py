"""The course pipeline: student and solution notebooks from one source, the self-check, the grades.

Instructors edit only ``assignments/source/NN_slug/NN_slug.ipynb``. :func:`build_course` runs
nbgrader's ``generate_assignment`` and ``generate_solution`` on those sources in a throwaway course
directory and copies the results to ``notebooks/`` (what students open) and ``solutions/`` (what CI
executes), byte for byte the same on every run. :func:`validate_notebook` is the student's self-check;
unlike ``nbgrader validate`` it reports failure when a test fails. :func:`gradebook_scores` reads the
scores nbgrader stored, because ``nbgrader autograde`` exits 0 whatever the tests did.

Example
-------
>>> from pathlib import Path
>>> from mlsys_lab import course
>>> course.discover_assignments(Path("."))  # doctest: +SKIP
['00_notebook_thinking']
>>> blank = Path("notebooks/00_notebook_thinking/00_notebook_thinking.ipynb")
>>> report = course.validate_notebook(blank)  # doctest: +SKIP
>>> report.passed, report.failed_cells[:1]  # doctest: +SKIP
(False, ['confusion_counts_example'])
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pandas is imported lazily: the CLI's validate command does not need it.
    import pandas as pd

logger = logging.getLogger(__name__)

#: An assignment folder name: two digits, an underscore, a lower-case slug (``00_notebook_thinking``).
ASSIGNMENT_NAME = re.compile(r"^\d{2}_[a-z0-9][a-z0-9_]*$")
#: Where things live, relative to the repository root.
SOURCE_DIR = Path("assignments") / "source"
CONFIG_FILE = Path("assignments") / "nbgrader_config.py"
STUDENT_DIR = Path("notebooks")
SOLUTION_DIR = Path("solutions")

# Metadata that records when or how a notebook last ran on someone's machine (JupyterLab's
# "record timing", papermill, widget state). It means nothing to a student and would make the
# generated files change whenever an instructor happens to run a source notebook.
_VOLATILE_CELL_METADATA = ("execution", "papermill", "ExecuteTime")
_VOLATILE_NOTEBOOK_METADATA = ("papermill", "widgets")

_ANSI_ESCAPE = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
_EXCEPTION_LINE = re.compile(r"^[A-Za-z_][\w.]*(Error|Exception|Exit|Interrupt|Warning)\b.*")


# --------------------------------------------------------------------------------------------------
# Discovering and building assignments
# --------------------------------------------------------------------------------------------------


def discover_assignments(root: Path) -> list[str]:
    """List the assignments of the course, in module order.

    Parameters
    ----------
    root : Path
        The repository root, the folder that holds ``assignments/source/``.

    Returns
    -------
    list of str
        Sorted ``NN_slug`` names of the folders under ``root/assignments/source`` that contain a
        notebook named ``NN_slug.ipynb``. Folders that look like assignments but break the naming
        rule are skipped with a warning, so a typo does not silently drop a module.

    Raises
    ------
    FileNotFoundError
        If ``root/assignments/source`` does not exist (``root`` is probably not the repository root).
    """
    source = Path(root) / SOURCE_DIR
    if not source.is_dir():
        raise FileNotFoundError(
            f"No course sources at {source}: pass the repository root (the folder that holds "
            f"{SOURCE_DIR}/), e.g. `mlsys-lab notebooks --root .` from the repository."
        )
    names = []
    for folder in sorted(p for p in source.iterdir() if p.is_dir()):
        if folder.name.startswith(".") or folder.name == "__pycache__":
            continue
        if not ASSIGNMENT_NAME.match(folder.name):
            logger.warning(
                "Skipping %s: assignment folders are named NN_slug (two digits, underscore, "
                "lower-case slug), e.g. 01_data_layer.",
                folder,
            )
            continue
        if not (folder / f"{folder.name}.ipynb").is_file():
            logger.warning(
                "Skipping %s: it has no %s.ipynb; the notebook must carry the folder's name.",
                folder,
                folder.name,
            )
            continue
        names.append(folder.name)
    return names


def build_course(root: Path, assignments: Sequence[str] | None = None) -> list[str]:
    """Regenerate ``notebooks/NN_slug/`` and ``solutions/NN_slug/`` from the instructor sources.

    nbgrader runs in a temporary course directory (a copy of ``assignments/nbgrader_config.py``
    and of the sources), so no gradebook, ``release/`` or ``solution/`` folder is left in the
    repository. Every file of the release is copied (files beside a source notebook ship to
    students), files that are no longer part of it are removed, and notebooks are written in one
    canonical form: running the build twice changes nothing.

    Parameters
    ----------
    root : Path
        The repository root.
    assignments : sequence of str, optional
        The ``NN_slug`` names to build. By default every assignment found by
        :func:`discover_assignments`; generated folders whose source is gone are then removed too.

    Returns
    -------
    list of str
        The names built, in order.

    Raises
    ------
    ValueError
        If an assignment named in ``assignments`` has no source notebook.
    FileNotFoundError
        If the sources or ``assignments/nbgrader_config.py`` are missing.
    RuntimeError
        If nbgrader fails; the message carries nbgrader's log.
    """
    root = Path(root).resolve()
    available = discover_assignments(root)
    if assignments is None:
        names = available
    else:
        unknown = [name for name in assignments if name not in available]
        if unknown:
            raise ValueError(
                f"No source notebook for {unknown}: each assignment needs "
                f"{SOURCE_DIR}/NN_slug/NN_slug.ipynb. Known assignments: {available}."
            )
        names = sorted(set(assignments))
    config = root / CONFIG_FILE
    if not config.is_file():
        raise FileNotFoundError(f"No nbgrader configuration at {config}: the course needs one to build.")
    if not names:
        logger.warning("No assignments under %s: nothing to build.", root / SOURCE_DIR)
        return []

    with tempfile.TemporaryDirectory(prefix="mlsys-lab-course-") as tmp:
        course_dir = Path(tmp) / "course"
        prepare_course_dir(root, course_dir, names)
        # "*" lets one nbgrader call handle every assignment copied into the temporary course:
        # nbgrader globs source/<assignment>/ and names each assignment after its folder.
        run_nbgrader(["generate_assignment", "*", "--force"], course_dir)
        run_nbgrader(["generate_solution", "*", "--force"], course_dir)
        for name in names:
            _sync_folder(course_dir / "release" / name, root / STUDENT_DIR / name)
            _sync_folder(course_dir / "solution" / name, root / SOLUTION_DIR / name)
            logger.info("Built %s", name)

    if assignments is None:
        for target in (root / STUDENT_DIR, root / SOLUTION_DIR):
            for folder in sorted(target.iterdir()):
                if folder.is_dir() and ASSIGNMENT_NAME.match(folder.name) and folder.name not in names:
                    logger.warning("Removing %s: its source notebook no longer exists.", folder)
                    shutil.rmtree(folder)
    return list(names)


def prepare_course_dir(root: Path, course_dir: Path, assignments: Sequence[str]) -> Path:
    """Lay out a fresh nbgrader course directory from the repository's sources.

    Used by :func:`build_course` and by the tests that grade submissions, so that both work on
    the same copy of ``assignments/``: ``nbgrader_config.py`` plus ``source/NN_slug/``.

    Parameters
    ----------
    root : Path
        The repository root.
    course_dir : Path
        An empty or missing folder that becomes the course directory.
    assignments : sequence of str
        The ``NN_slug`` names to copy.

    Returns
    -------
    Path
        ``course_dir``.
    """
    root = Path(root)
    course_dir.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(root / CONFIG_FILE, course_dir / "nbgrader_config.py")
    for name in assignments:
        target = course_dir / "source" / name
        shutil.copytree(
            root / SOURCE_DIR / name,
            target,
            ignore=shutil.ignore_patterns(".ipynb_checkpoints", "__pycache__"),
        )
        for notebook in sorted(target.rglob("*.ipynb")):
            _fill_missing_cell_ids(notebook)
    return course_dir


def run_nbgrader(args: Sequence[str], course_dir: Path, timeout: float | None = None) -> str:
    """Run one ``nbgrader`` command in ``course_dir``, the way an instructor would.

    nbgrader runs in a subprocess (``python -m nbgrader``) with the course directory as its
    working directory, so it reads ``nbgrader_config.py`` from there. Its log is returned and also
    logged at DEBUG level; it never reaches the caller's stderr unless the command fails.

    Parameters
    ----------
    args : sequence of str
        The subcommand and its arguments, e.g. ``["autograde", "00_notebook_thinking"]``.
    course_dir : Path
        The nbgrader course directory.
    timeout : float, optional
        Seconds before the command is killed.

    Returns
    -------
    str
        nbgrader's combined output.

    Raises
    ------
    RuntimeError
        If nbgrader exits non-zero or logs an error; the message holds its log.
    """
    # --CourseDirectory.root pins where nbgrader reads and writes, whatever other config says.
    command = [sys.executable, "-m", "nbgrader", *args, f"--CourseDirectory.root={Path(course_dir).resolve()}"]
    with tempfile.TemporaryDirectory(prefix="mlsys-lab-jupyter-config-") as config_dir:
        result = subprocess.run(
            command,
            cwd=course_dir,
            env=nbgrader_environment(Path(config_dir)),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            timeout=timeout,
            check=False,
        )
    output = result.stdout
    logger.debug("nbgrader %s:\n%s", " ".join(args), output)
    # nbgrader reports some failures only as ERROR log lines, with exit status 0.
    if result.returncode != 0 or re.search(r"^\[\w+ \| ERROR\]", output, flags=re.MULTILINE):
        causes = [line.strip() for line in output.splitlines() if _EXCEPTION_LINE.match(line.strip())]
        cause = causes[-1] if causes else "see the log below"
        raise RuntimeError(
            f"`nbgrader {' '.join(args)}` failed (exit status {result.returncode}): {cause}\n"
            f"Course directory: {course_dir}. nbgrader's log:\n{output}"
        )
    return output


def nbgrader_environment(jupyter_config_dir: Path) -> dict[str, str]:
    """Return the environment nbgrader subprocesses run in.

    Two fixes over the inherited environment. The interpreter's ``bin/`` goes first on ``PATH``:
    nbgrader calls the ``alembic`` executable by name when it creates a gradebook, which fails
    when the virtual environment is not activated. ``JUPYTER_CONFIG_DIR`` points at
    ``jupyter_config_dir`` so that a personal ``~/.jupyter/nbgrader_config.py`` (say one that
    sets ``CourseDirectory.root``) cannot change what the course builds or how it grades.

    Parameters
    ----------
    jupyter_config_dir : Path
        An empty folder owned by the caller (not a shared, predictable path: nbgrader would run
        any ``nbgrader_config.py`` it finds there).

    Returns
    -------
    dict of str to str
        A copy of ``os.environ`` with ``PATH`` and ``JUPYTER_CONFIG_DIR`` set.
    """
    env = dict(os.environ)
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    env["JUPYTER_CONFIG_DIR"] = str(jupyter_config_dir)
    return env


def canonical_notebook_bytes(text: str) -> bytes:
    """Return a notebook in the one byte form committed to the repository.

    nbformat's own layout (sorted keys, one-space indent, UTF-8 kept as is) plus a final newline,
    with the metadata that only records how a notebook last ran removed.
    """
    import nbformat

    nb = nbformat.reads(text, as_version=4)
    for key in _VOLATILE_NOTEBOOK_METADATA:
        nb.metadata.pop(key, None)
    for cell in nb.cells:
        for key in _VOLATILE_CELL_METADATA:
            cell.metadata.pop(key, None)
    out = nbformat.writes(nb)
    return (out if out.endswith("\n") else out + "\n").encode("utf-8")


def _fill_missing_cell_ids(path: Path) -> None:
    """Give cells without an id a deterministic one (nbformat would draw random ids)."""
    data = json.loads(path.read_text(encoding="utf-8"))
    cells = data.get("cells", [])
    if all("id" in cell for cell in cells) and data.get("nbformat_minor", 0) >= 5:
        return
    logger.warning(
        "%s has cells without ids (nbformat < 4.5); using ids derived from cell positions. "
        "Open and save the source notebook in JupyterLab 4 to give it stable ids.",
        path.name,
    )
    used = {cell["id"] for cell in cells if "id" in cell}
    for index, cell in enumerate(cells):
        if "id" not in cell:
            new_id = hashlib.sha256(f"{path.name}:{index}".encode()).hexdigest()[:8]
            while new_id in used:
                new_id = hashlib.sha256(new_id.encode()).hexdigest()[:8]
            cell["id"] = new_id
            used.add(new_id)
    data["nbformat"], data["nbformat_minor"] = 4, max(5, data.get("nbformat_minor", 0))
    path.write_text(json.dumps(data, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")


def _sync_folder(src: Path, dest: Path) -> None:
    """Make ``dest`` hold exactly the files of ``src``, rewriting only the files that differ."""
    if not src.is_dir():
        raise RuntimeError(f"nbgrader produced no {src}: expected the generated assignment there.")
    wanted: dict[Path, bytes] = {}
    for path in sorted(p for p in src.rglob("*") if p.is_file()):
        data = path.read_bytes()
        if path.suffix == ".ipynb":
            data = canonical_notebook_bytes(data.decode("utf-8"))
        wanted[path.relative_to(src)] = data
    dest.mkdir(parents=True, exist_ok=True)
    for path in sorted(p for p in dest.rglob("*") if p.is_file() or p.is_symlink()):
        if path.relative_to(dest) not in wanted:
            logger.info("Removing stale %s", path)
            path.unlink()
    for relative, data in wanted.items():
        target = dest / relative
        if target.is_file() and target.read_bytes() == data:
            continue  # untouched files keep their mtime, so make sees nothing to do
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
    for folder in sorted((p for p in dest.rglob("*") if p.is_dir()), reverse=True):
        if not any(folder.iterdir()):
            folder.rmdir()


# --------------------------------------------------------------------------------------------------
# The student's self-check
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ValidationReport:
    """What :func:`validate_notebook` found.

    Attributes
    ----------
    passed : bool
        True when every graded cell passed and nothing else went wrong.
    failed_cells : list of str
        ``grade_id`` of each failing cell (a position and first line when it has none).
    errors : list of str
        One message per problem, for people to read.
    notebook : str
        The notebook checked.
    """

    passed: bool
    failed_cells: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    notebook: str = ""

    def summary(self) -> str:
        """Return a human-readable report; it ends with "All tests passed." on success."""
        name = self.notebook or "the notebook"
        if self.passed:
            return f"Validated {name}.\nAll tests passed."
        lines = [f"VALIDATION FAILED for {name}:"]
        lines += [f"  - {error}" for error in self.errors]
        lines.append(
            "Fix the cells listed above, save, and validate again: a test that fails here scores "
            "zero when the notebook is graded."
        )
        return "\n".join(lines)


def validate_notebook(path: Path, timeout: int = 600) -> ValidationReport:
    """Run a notebook top to bottom in a fresh kernel and check every graded cell, like grading does.

    Built on nbgrader's :class:`~nbgrader.validator.Validator`, which executes the notebook with
    ``NBGRADER_EXECUTION=validate``. Unlike ``nbgrader validate``, the result says whether the
    notebook passed.

    Parameters
    ----------
    path : Path
        The notebook to check (a student or solution notebook).
    timeout : int, default 600
        Seconds any one cell may run.

    Returns
    -------
    ValidationReport
        Failed when a test cell errors or writes to stderr, a written answer is still empty, a
        graded cell changed type, a read-only test cell was edited, or the notebook cannot run.

    Raises
    ------
    FileNotFoundError
        If there is no file at ``path``.
    """
    import nbformat
    from nbgrader.validator import Validator
    from traitlets.config import Config

    path = Path(path).resolve()
    if not path.is_file():
        raise FileNotFoundError(f"No notebook at {path}: pass the path of an .ipynb file.")

    config = Config()
    config.Execute.timeout = timeout
    # Keep the kernel's own start-up warnings (e.g. "running over TCP") off the terminal: they say
    # nothing about the notebook. Cell outputs, stderr included, are still checked.
    config.Execute.extra_arguments = ["--HistoryManager.hist_file=:memory:", "--IPKernelApp.log_level=ERROR"]
    validator = Validator(config=config, log=logger)
    try:
        original = nbformat.read(path, as_version=4)
        results = validator.validate(str(path))
    except Exception as exc:  # anything that stops the notebook from running at all fails it
        logger.debug("Validation of %s raised", path, exc_info=True)
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        return ValidationReport(
            passed=False,
            failed_cells=[],
            errors=[f"the notebook could not run: {type(exc).__name__}: {first}"],
            notebook=str(path),
        )

    failed: list[str] = []
    errors: list[str] = []
    checks = [
        ("type_changed", "this graded cell changed type; change it back to a {old_type} cell"),
        ("changed", "this read-only test cell was edited; grading restores the original, so undo the edit"),
        ("failed", "{error}"),
    ]
    for key, template in checks:
        entries = results.get(key, [])
        for entry, label in zip(entries, _label_cells(original, entries), strict=True):
            if key == "type_changed":
                message = template.format(old_type=entry.get("new_type", "its original"))
            elif key == "failed":
                message = template.format(error=_first_error_line(entry.get("raw_error", "")))
            else:
                message = template
            failed.append(label)
            errors.append(f"{label}: {message}")
    return ValidationReport(passed=not failed, failed_cells=failed, errors=errors, notebook=str(path))


def _label_cells(nb: Any, entries: list[dict[str, str]]) -> list[str]:
    """Name the cells the validator reported, by ``grade_id``.

    The validator reports cells by source, in notebook order. Matching in order (not by a
    source-to-id dictionary) keeps identical sources apart, such as several unanswered
    ``YOUR ANSWER HERE`` cells.
    """
    labels = []
    start = 0
    for entry in entries:
        label = None
        for index in range(start, len(nb.cells)):
            cell = nb.cells[index]
            if cell.source.strip() == entry.get("source", ""):
                grade_id = cell.metadata.get("nbgrader", {}).get("grade_id")
                first = cell.source.strip().splitlines()[0] if cell.source.strip() else "(empty)"
                label = grade_id or f"cell {index + 1} ({first[:40]})"
                start = index + 1
                break
        if label is None:
            source = entry.get("source", "").strip()
            first_line = source.splitlines()[0] if source else "(empty)"
            label = f"cell starting {first_line[:40]!r}"
        labels.append(label)
    return labels


def _first_error_line(raw_error: str) -> str:
    """Pick the line of an error that says what went wrong (the exception, not the traceback)."""
    lines = [line.strip() for line in _ANSI_ESCAPE.sub("", raw_error).splitlines() if line.strip()]
    exceptions = [line for line in lines if _EXCEPTION_LINE.match(line)]
    if exceptions:
        return exceptions[-1]
    return lines[0] if lines else "failed without an error message"


# --------------------------------------------------------------------------------------------------
# Reading grades
# --------------------------------------------------------------------------------------------------

GRADE_COLUMNS = [
    "student",
    "notebook",
    "grade_id",
    "cell_type",
    "auto_score",
    "manual_score",
    "extra_credit",
    "max_score",
    "needs_manual_grade",
    "failed_tests",
]


def gradebook_scores(db_url_or_path: str | Path, assignment: str) -> pd.DataFrame:
    """Read every graded cell's score for one assignment from an nbgrader gradebook.

    ``nbgrader autograde`` exits 0 whatever the tests did; the gradebook is where the result is.

    Parameters
    ----------
    db_url_or_path : str or Path
        A database URL (``sqlite:///assignments/gradebook.db``, any SQLAlchemy URL) or the path of
        a SQLite gradebook file.
    assignment : str
        The assignment name, e.g. ``00_notebook_thinking``.

    Returns
    -------
    pandas.DataFrame
        One row per (student, notebook, grade_id), sorted, with columns ``GRADE_COLUMNS``:
        ``auto_score`` is None for cells waiting for a person, ``needs_manual_grade`` flags them.

    Raises
    ------
    FileNotFoundError
        If a gradebook path does not exist (nbgrader would silently create an empty one).
    KeyError
        If the gradebook has no such assignment.
    """
    import pandas as pd
    from nbgrader.api import Gradebook, MissingEntry

    text = str(db_url_or_path)
    if "://" in text:
        db_url = text
        sqlite_path = text.removeprefix("sqlite:///") if text.startswith("sqlite:///") else None
    else:
        sqlite_path = text
        db_url = f"sqlite:///{Path(text).resolve()}"
    if sqlite_path is not None and not Path(sqlite_path).is_file():
        raise FileNotFoundError(
            f"No gradebook at {sqlite_path}: run `nbgrader autograde <assignment>` in the course "
            "directory first, or pass the right path (assignments/gradebook.db by default)."
        )

    rows = []
    # course_id="" makes nbgrader read the gradebook without adding a course entry to it.
    with Gradebook(db_url, course_id="") as gb:
        try:
            found = gb.find_assignment(assignment)
        except MissingEntry:
            known = sorted(a.name for a in gb.assignments)
            raise KeyError(
                f"The gradebook has no assignment {assignment!r}; it has {known}. Run "
                f"`nbgrader generate_assignment {assignment}` and `nbgrader autograde {assignment}`."
            ) from None
        for submission in found.submissions:
            for notebook in submission.notebooks:
                for grade in notebook.grades:
                    record = grade.to_dict()
                    rows.append(
                        {
                            "student": record["student"],
                            "notebook": record["notebook"],
                            "grade_id": record["name"],
                            **{key: record[key] for key in GRADE_COLUMNS[3:]},
                        }
                    )
    frame = pd.DataFrame(rows, columns=GRADE_COLUMNS)
    return frame.sort_values(["student", "notebook", "grade_id"], ignore_index=True)
