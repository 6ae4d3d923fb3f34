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

#: Set by ``mlsys-lab lab --fast``: every notebook opened in that JupyterLab runs its short version
#: (:func:`mlsys_lab.grading.fast_mode` reads it).
FAST_ENV = "MLSYS_LAB_FAST"

#: An assignment folder name: two digits, an underscore, a lower-case slug (``00_notebook_thinking``).
ASSIGNMENT_NAME = re.compile(r"^\d{2}_[a-z0-9][a-z0-9_]*$")
#: Where things live, relative to the repository root.
SOURCE_DIR = Path("assignments") / "source"
CONFIG_FILE = Path("assignments") / "nbgrader_config.py"
STUDENT_DIR = Path("notebooks")
SOLUTION_DIR = Path("solutions")

#: What the last build wrote (sha256 per file), so the next one can tell its own output from an
#: edit. Git-ignored: it describes this checkout only.
BUILD_MANIFEST = Path(".course-build.json")
#: The students' own copies of the notebooks: git-ignored, filled by :func:`sync_student_work`, never
#: written by a build, a test or a pull.
WORK_DIR = Path("work")
#: What running a notebook in place leaves beside it (git-ignored, never part of a build).
RUN_OUTPUTS = ("runs", "mlruns", ".ipynb_checkpoints", "__pycache__")

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


def build_course(root: Path, assignments: Sequence[str] | None = None, *, force: bool = False) -> list[str]:
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
    force : bool, default False
        Overwrite or remove generated files even when somebody edited them by hand.

    Returns
    -------
    list of str
        The names built, in order.

    Raises
    ------
    EditedFileError
        Before writing anything, if the build would overwrite or remove a file in ``notebooks/`` or
        ``solutions/`` that no build wrote (see :func:`edited_generated_files`) and ``force`` is off.
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
        wanted: dict[Path, bytes] = {}
        for name in names:
            wanted |= _generated_files(course_dir / "release" / name, STUDENT_DIR / name)
            wanted |= _generated_files(course_dir / "solution" / name, SOLUTION_DIR / name)

    # Every file the build may rewrite or delete, relative to the root: the built folders, plus
    # (on a full build) generated folders whose source is gone.
    folders = [kind / name for name in names for kind in (STUDENT_DIR, SOLUTION_DIR)]
    if assignments is None:
        for kind in (STUDENT_DIR, SOLUTION_DIR):
            if (root / kind).is_dir():
                folders += [
                    kind / folder.name
                    for folder in sorted((root / kind).iterdir())
                    if folder.is_dir() and ASSIGNMENT_NAME.match(folder.name) and folder.name not in names
                ]
    existing = {path for folder in folders for path in _build_owned_files(root, folder)}
    changes = {path: wanted.get(path) for path in sorted(existing | wanted.keys())}
    changes = {
        path: data
        for path, data in changes.items()
        if data is None or not (root / path).is_file() or (root / path).read_bytes() != data
    }
    edited = edited_generated_files(root, [path for path in changes if (root / path).exists()])
    if edited and not force:
        raise EditedFileError(root, edited)
    for path, data in changes.items():
        target = root / path
        if data is None:
            logger.info("Removing %s: the build no longer generates it.", path)
            target.unlink()
        else:
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data)
    for folder in folders:
        _remove_empty_folders(root / folder)
    _record_build(root, {path: data for path, data in wanted.items()}, built=folders)
    for name in names:
        logger.info("Built %s", name)
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


def _generated_files(src: Path, dest: Path) -> dict[Path, bytes]:
    """The bytes the build writes for each file nbgrader produced in ``src``, keyed by path under ``dest``."""
    if not src.is_dir():
        raise RuntimeError(f"nbgrader produced no {src}: expected the generated assignment there.")
    wanted: dict[Path, bytes] = {}
    for path in sorted(p for p in src.rglob("*") if p.is_file()):
        data = path.read_bytes()
        if path.suffix == ".ipynb":
            data = canonical_notebook_bytes(data.decode("utf-8"))
        wanted[dest / path.relative_to(src)] = data
    return wanted


def _build_owned_files(root: Path, folder: Path) -> list[Path]:
    """Files under ``root/folder`` that the build manages, relative to ``root``.

    What running a notebook in place leaves behind (checkpoints, MLflow stores, caches) is not the
    build's: it is git-ignored, never shipped, and a checkpoint may be the only copy of someone's work.
    """
    base = root / folder
    if not base.is_dir():
        return []
    return [
        path.relative_to(root)
        for path in sorted(base.rglob("*"))
        if (path.is_file() or path.is_symlink()) and not set(path.relative_to(base).parts) & set(RUN_OUTPUTS)
    ]


def _remove_empty_folders(folder: Path) -> None:
    if not folder.is_dir():
        return
    for path in sorted((p for p in folder.rglob("*") if p.is_dir()), reverse=True):
        if not any(path.iterdir()):
            path.rmdir()
    if not any(folder.iterdir()):
        folder.rmdir()


class EditedFileError(RuntimeError):
    """The build would overwrite or delete generated files that somebody edited by hand.

    Attributes
    ----------
    paths : list of Path
        The edited files, relative to the repository root.
    """

    def __init__(self, root: Path, paths: Sequence[Path]) -> None:
        self.paths = list(paths)
        first = self.paths[0]
        listed = "\n".join(f"  - {path}" for path in self.paths)
        module = first.parts[1] if len(first.parts) > 1 else "NN_slug"
        super().__init__(
            f"Refusing to overwrite {len(self.paths)} file(s) that differ from what the last build "
            f"wrote and from git's copy, so someone edited them by hand:\n{listed}\n"
            f"Nothing was written; the edits are still there. Students: your answers belong in "
            f"{WORK_DIR}/, which no build touches; keep them with "
            f"`mkdir -p {WORK_DIR}/{module} && cp -n {first} {WORK_DIR}/{module}/{first.stem}-answers{first.suffix}` "
            f"(`make lab` opens {WORK_DIR}/). Maintainers: to throw the edits away and rebuild, run "
            f"`mlsys-lab notebooks --force`."
        )


def edited_generated_files(root: Path, paths: Sequence[Path]) -> list[Path]:
    """Which of ``paths`` (generated files, relative to ``root``) somebody edited by hand.

    A file counts as generated, and safe to rewrite, when its bytes are what the previous build on
    this checkout wrote (recorded in ``.course-build.json``) or what git has for it (the index, so
    committed or staged). The manifest covers a maintainer who rebuilds twice before committing;
    git covers a fresh clone and a pull, which bring generated files no local build wrote. Anything
    else (answers typed into ``notebooks/``, a file dropped there) was edited by a person.

    Parameters
    ----------
    root : Path
        The repository root.
    paths : sequence of Path
        Existing files under ``root``, relative to it.

    Returns
    -------
    list of Path
        The edited files, in the order given.
    """
    root = Path(root)
    recorded = _read_manifest(root)
    tracked = _git_blobs(root, paths)
    edited = []
    for path in paths:
        data = (root / path).read_bytes()
        if recorded.get(path.as_posix()) == hashlib.sha256(data).hexdigest():
            continue
        if tracked.get(path.as_posix()) == _git_blob_id(data):
            continue
        edited.append(path)
    return edited


def _read_manifest(root: Path) -> dict[str, str]:
    try:
        files = json.loads((root / BUILD_MANIFEST).read_text(encoding="utf-8")).get("files", {})
    except (OSError, ValueError, AttributeError):
        return {}  # no manifest (fresh clone) or an unreadable one: fall back on git alone
    return {str(k): str(v) for k, v in files.items()} if isinstance(files, dict) else {}


def _record_build(root: Path, written: dict[Path, bytes], built: Sequence[Path]) -> None:
    files = {
        path: digest
        for path, digest in _read_manifest(root).items()
        if not any(Path(path).is_relative_to(folder) for folder in built)
    }
    files |= {path.as_posix(): hashlib.sha256(data).hexdigest() for path, data in written.items()}
    (root / BUILD_MANIFEST).write_text(json.dumps({"files": dict(sorted(files.items()))}, indent=1) + "\n")


def _git_blob_id(data: bytes) -> str:
    """The id git gives a file's content (``git hash-object``)."""
    return hashlib.sha1(b"blob %d\0" % len(data) + data, usedforsecurity=False).hexdigest()


def _git_blobs(root: Path, paths: Sequence[Path]) -> dict[str, str]:
    """Blob ids in git's index for ``paths``; empty outside a git checkout or without git."""
    if not paths or shutil.which("git") is None:
        return {}
    try:
        result = subprocess.run(
            ["git", "-C", str(root), "ls-files", "--stage", "-z", "--", *(p.as_posix() for p in paths)],
            capture_output=True,
            check=False,
            timeout=60,
        )
    except (OSError, subprocess.SubprocessError):
        return {}
    if result.returncode != 0:
        return {}
    blobs = {}
    for entry in result.stdout.decode("utf-8", "replace").split("\0"):
        if "\t" not in entry:
            continue
        meta, name = entry.split("\t", 1)
        blobs[name] = meta.split()[1]  # paths come back relative to root
    return blobs


# --------------------------------------------------------------------------------------------------
# The student's own copy of the course
# --------------------------------------------------------------------------------------------------


def sync_student_work(root: Path, work_dir: Path | None = None) -> list[Path]:
    """Copy into the students' folder every course file they do not have yet; overwrite nothing.

    Students answer in ``work/`` (git-ignored), never in ``notebooks/``: a build, a test or a
    ``git pull`` may rewrite ``notebooks/``, and none of them touches ``work/``. ``make lab`` calls
    this on every start, so a module that a pull brings appears in ``work/`` while every file that
    already exists there, answered or not, is left exactly as it is.

    Parameters
    ----------
    root : Path
        The repository root (holds ``notebooks/``).
    work_dir : Path, optional
        The students' folder; ``root/work`` by default.

    Returns
    -------
    list of Path
        The files copied, relative to ``work_dir``.

    Raises
    ------
    FileNotFoundError
        If ``root/notebooks`` does not exist.
    """
    source = Path(root) / STUDENT_DIR
    work = Path(work_dir) if work_dir is not None else Path(root) / WORK_DIR
    if not source.is_dir():
        raise FileNotFoundError(f"No student notebooks at {source}: pass the repository root.")
    copied = []
    for path in sorted(source.rglob("*")):
        relative = path.relative_to(source)
        if not path.is_file() or set(relative.parts) & set(RUN_OUTPUTS):
            continue
        target = work / relative
        if target.exists() or target.is_symlink():
            continue  # the student's copy wins, always
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(path, target)
        copied.append(relative)
    for relative in copied:
        logger.info("Copied %s into %s", relative, work)
    return copied


def find_student_notebook(target: str | Path, cwd: Path | None = None) -> Path:
    """Resolve what a student typed after ``mlsys-lab validate``: a notebook path or a module name.

    A module name (``00_notebook_thinking``) finds ``NN_slug/NN_slug.ipynb`` wherever the student
    stands: in the module's folder, in ``work/`` (where JupyterLab's terminal opens), in another
    module's folder, or at the repository root (then ``work/`` is used). So the same command works
    in every terminal a student is likely to have open.

    Parameters
    ----------
    target : str or Path
        A path to an ``.ipynb`` file, or an ``NN_slug`` module name.
    cwd : Path, optional
        Where to look from; the current directory by default.

    Returns
    -------
    Path
        The notebook.

    Raises
    ------
    FileNotFoundError
        If nothing matches; the message lists where it looked.
    """
    here = Path.cwd() if cwd is None else Path(cwd)
    path = Path(target)
    if path.suffix == ".ipynb" or not ASSIGNMENT_NAME.match(str(target)):
        candidates = [path if path.is_absolute() else here / path]
    else:
        name = str(target)
        candidates = [here / f"{name}.ipynb", here / name / f"{name}.ipynb", here / WORK_DIR / name / f"{name}.ipynb"]
        candidates += [parent / name / f"{name}.ipynb" for parent in list(here.parents)[:2]]
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    looked = ", ".join(str(c) for c in candidates)
    raise FileNotFoundError(
        f"No notebook for {str(target)!r} (looked at {looked}). Pass the notebook's path, or a module "
        f"name such as 00_notebook_thinking from work/ or the repository root."
    )


#: The project-local Jupyter configuration ``make lab`` uses: Validate on, instructor tools off.
LAB_CONFIG_DIR = Path(".jupyter-course")


@dataclass(frozen=True)
class LabCommand:
    """How to start the students' JupyterLab: see :func:`lab_command`."""

    argv: list[str]
    env: dict[str, str]
    cwd: Path


def lab_command(
    root: Path,
    work_dir: Path | None = None,
    extra_args: Sequence[str] = (),
    environ: dict[str, str] | None = None,
    fast: bool = False,
) -> LabCommand:
    """The command line, environment and folder that start the students' JupyterLab.

    Decided from where it runs, so that no flag has to be remembered: as root (containers,
    Codespaces) the server needs ``allow_root``; without a display (no ``DISPLAY``,
    ``WAYLAND_DISPLAY`` or ``BROWSER`` on Linux) there is no browser to open. The environment puts
    this interpreter's ``bin/`` first on ``PATH``, so that ``mlsys-lab`` and ``python`` in
    JupyterLab's terminal are the project's (``.jupyter-course/`` makes that terminal a non-login
    shell, which keeps the inherited ``PATH`` instead of resetting it from ``/etc/profile``).

    Parameters
    ----------
    root : Path
        The repository root (holds ``.jupyter-course/``).
    work_dir : Path, optional
        JupyterLab's root folder; ``root/work`` by default.
    extra_args : sequence of str
        More ``jupyter lab`` arguments (``--ServerApp.port=8889``); they come last and win.
    environ : dict, optional
        The environment to start from; ``os.environ`` by default.
    fast : bool, default False
        Set ``MLSYS_LAB_FAST=1`` for the server and its kernels, so that every notebook runs its
        short version (:func:`mlsys_lab.grading.fast_mode`).

    Returns
    -------
    LabCommand
        ``argv``, ``env`` and ``cwd`` (the work folder: a terminal opened without a folder starts
        there, and JupyterLab's relative terminal folders resolve from it).
    """
    root = Path(root).resolve()
    work = Path(work_dir).resolve() if work_dir is not None else root / WORK_DIR
    env = dict(os.environ if environ is None else environ)
    if fast:
        env[FAST_ENV] = "1"
    bin_dir = str(Path(sys.executable).parent)
    env["PATH"] = os.pathsep.join([bin_dir, *(p for p in env.get("PATH", "").split(os.pathsep) if p and p != bin_dir)])
    if sys.prefix != sys.base_prefix:
        env["VIRTUAL_ENV"] = sys.prefix
    env["JUPYTER_CONFIG_PATH"] = os.pathsep.join(
        [str(root / LAB_CONFIG_DIR), *(p for p in env.get("JUPYTER_CONFIG_PATH", "").split(os.pathsep) if p)]
    )
    argv = [
        str(Path(sys.executable).with_name("jupyter")),
        "lab",
        f"--ServerApp.root_dir={work}",
        "--ServerApp.ip=127.0.0.1",
    ]
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        argv.append("--ServerApp.allow_root=True")
    has_display = any(env.get(name) for name in ("DISPLAY", "WAYLAND_DISPLAY", "BROWSER"))
    if sys.platform.startswith("linux") and not has_display:
        argv.append("--ServerApp.open_browser=False")
    return LabCommand(argv=[*argv, *extra_args], env=env, cwd=work)


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
# nbgrader plug-ins: quiet autograde, feedback that gives nothing away (registered in nbgrader_config.py)
# --------------------------------------------------------------------------------------------------

_HIDDEN_TESTS_NOTE = "# (hidden tests: not shown in feedback)"
_MATHJAX_SCRIPT = re.compile(r"<script[^>]*\bsrc=\"https?://[^\"]*mathjax[^\"]*\"[^>]*>\s*</script>", re.IGNORECASE)


def _remove_hidden_tests(source: str, begin: str = "BEGIN HIDDEN TESTS", end: str = "END HIDDEN TESTS") -> str:
    """``source`` without its hidden-test regions (delimiter lines included), a note in their place."""
    lines, hidden = [], False
    for line in source.split("\n"):
        if begin in line:
            hidden = True
            lines.append(_HIDDEN_TESTS_NOTE)
        elif end in line:
            hidden = False
        elif not hidden:
            lines.append(line)
    return "\n".join(lines)


def _redactions(course_root: str | None) -> list[tuple[str, str]]:
    """Absolute paths of the instructor's machine and what each becomes in feedback, longest first."""
    places = {
        str(Path.cwd().resolve()): "<course>",  # nbgrader runs in the course directory
        str(Path(sys.prefix).resolve()): "<python>",
        str(Path(sys.base_prefix).resolve()): "<python>",
        str(Path.home()): "~",
    }
    if course_root:
        places[str(Path(course_root).resolve())] = "<course>"
        places[str(Path(course_root))] = "<course>"
    return sorted(((path, label) for path, label in places.items() if len(path) > 1), key=lambda x: -len(x[0]))


def _redact(text: str, redactions: list[tuple[str, str]]) -> str:
    for path, label in redactions:
        text = text.replace(path, label)
    return text


def _sanitize_feedback_notebook(nb: Any, course_root: str | None = None) -> Any:
    """What :class:`SanitizeFeedback` does, on a notebook node: see there."""
    redactions = _redactions(course_root)
    for cell in nb.cells:
        meta = cell.get("metadata", {}).get("nbgrader", {})
        if cell.cell_type == "code" and meta.get("grade") and not meta.get("solution"):
            # nbgrader's template already heads the cell with its grade_id and score.
            cell.source = _remove_hidden_tests(cell.source)
        for output in cell.get("outputs", []):
            if output.get("output_type") == "error":
                # One readable line: the checker's message says what was expected, what came back
                # and the hint; the frames below it are nbgrader's and the checker's internals.
                ename, evalue = output.get("ename", "Error"), _redact(str(output.get("evalue", "")), redactions)
                output["evalue"] = evalue
                output["traceback"] = [f"{ename}: {evalue}"]
            elif output.get("output_type") == "stream":
                output["text"] = _redact(output.get("text", ""), redactions)
            for mime, value in dict(output.get("data", {})).items():
                if mime.startswith("text/") or mime.endswith("json"):
                    if isinstance(value, str):
                        output["data"][mime] = _redact(value, redactions)
                    elif isinstance(value, list):
                        output["data"][mime] = [_redact(str(v), redactions) for v in value]
    return nb


#: nbgrader plug-ins by name, built on first use: they subclass nbgrader and nbconvert classes, whose
#: import takes seconds, and ``import mlsys_lab.course`` must stay cheap (the CLI imports it).
_PLUGINS: dict[str, type] = {}


def _build_plugins() -> dict[str, type]:
    from nbconvert.exporters import HTMLExporter
    from nbconvert.preprocessors import Preprocessor
    from nbgrader.api import MissingEntry
    from nbgrader.preprocessors import OverwriteCells
    from traitlets import Bool

    class SanitizeFeedback(Preprocessor):
        """nbgrader feedback preprocessor: give students their scores, never the hidden tests.

        ``nbgrader generate_feedback`` renders the autograded notebook, in which autograde restored the
        instructor's test cells: the HTML would hand every later cohort the hidden tests, long tracebacks
        into :mod:`mlsys_lab.grading`, and the instructor's absolute paths. This keeps, per test cell,
        its ``grade_id`` and score (nbgrader's template shows them), the visible tests the student
        already had, and the one-line failure message; hidden-test regions become a note; every
        traceback becomes its last line; absolute paths of the course directory, the Python
        environment and the home folder become ``<course>``, ``<python>`` and ``~`` in every output.
        Registered on ``c.GenerateFeedback.preprocessors``.
        """

        enabled = Bool(True, help="Sanitize feedback (on whenever nbgrader's configuration lists it).").tag(config=True)

        def preprocess(self, nb: Any, resources: Any) -> tuple[Any, Any]:
            """Sanitize every cell of ``nb`` (see the class docstring)."""
            root = self.config.CourseDirectory.get("root") if "CourseDirectory" in self.config else None
            return _sanitize_feedback_notebook(nb, str(root) if root else None), resources

    class OfflineFeedbackExporter(HTMLExporter):
        """nbgrader's feedback HTML without the MathJax script it loads from the internet.

        nbgrader's feedback template calls nbconvert's ``mathjax()`` macro with its CDN default, so the
        exporter's ``mathjax_url`` is ignored; the page is handed to students offline, where that script
        only stalls. Formulas stay readable as their TeX source. Set as ``c.GenerateFeedback.exporter_class``.
        """

        def from_notebook_node(self, nb: Any, resources: Any = None, **kw: Any) -> tuple[Any, Any]:
            """Render as nbgrader's feedback exporter does, then drop the remote MathJax script."""
            output, resources = super().from_notebook_node(nb, resources=resources, **kw)
            return _MATHJAX_SCRIPT.sub("<!-- MathJax not loaded: feedback is read offline -->", output), resources

    class RestoreHiddenTests(OverwriteCells):
        """nbgrader's OverwriteCells, quiet about the one change every submission carries.

        A released test cell lacks its hidden tests, so its checksum never matches the instructor's
        cell and nbgrader warns ``Attribute 'checksum' for cell ... has changed!`` for every hidden-test
        cell of every student before restoring it: the expected case drowns a real edit. This logs the
        expected restore at DEBUG and keeps nbgrader's warning for a test cell that a student edited.
        Registered in place of OverwriteCells on ``c.Autograde.sanitize_preprocessors``.
        """

        def preprocess_cell(self, cell: Any, resources: Any, cell_index: int) -> tuple[Any, Any]:
            """Remember whether ``cell`` is exactly what was released, then let nbgrader overwrite it."""
            self._as_released = False
            grade_id = cell.get("metadata", {}).get("nbgrader", {}).get("grade_id")
            if grade_id is not None:
                try:
                    source = self.gradebook.find_source_cell(grade_id, self.notebook_id, self.assignment_id).source
                except MissingEntry:
                    source = None
                if source is not None and "BEGIN HIDDEN TESTS" in source:
                    released = [line for line in _remove_hidden_tests(source).split("\n") if line != _HIDDEN_TESTS_NOTE]
                    self._as_released = cell.source.strip() == "\n".join(released).strip()
            return super().preprocess_cell(cell, resources, cell_index)

        def report_change(self, name: str, attr: str, old: Any, new: Any) -> None:
            """Warn as nbgrader does, except for restoring hidden tests in an unedited released cell."""
            if attr == "checksum" and getattr(self, "_as_released", False):
                self.log.debug("Restoring the hidden tests of %s (released without them).", name)
                return
            super().report_change(name, attr, old, new)

    return {
        "SanitizeFeedback": SanitizeFeedback,
        "OfflineFeedbackExporter": OfflineFeedbackExporter,
        "RestoreHiddenTests": RestoreHiddenTests,
    }


def __getattr__(name: str) -> type:
    """Build the nbgrader plug-ins (``SanitizeFeedback``, ``OfflineFeedbackExporter``,
    ``RestoreHiddenTests``) when nbgrader's configuration first names them."""
    if name in ("SanitizeFeedback", "OfflineFeedbackExporter", "RestoreHiddenTests"):
        if not _PLUGINS:
            _PLUGINS.update(_build_plugins())
        return _PLUGINS[name]
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


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


def grades_report(db_url_or_path: str | Path, assignment: str) -> str:
    """The whole per-cell table of an assignment and a total per student, pending points stated.

    ``nbgrader export`` writes totals in which an ungraded written answer counts as zero, and a
    printed DataFrame hides rows behind ``...``; this prints every row. A cell waiting for a person
    shows ``pending`` instead of a score, and each student's total says how many points are pending,
    so feedback is not handed back before the written answers are graded.

    Parameters
    ----------
    db_url_or_path : str or Path
        The gradebook, as for :func:`gradebook_scores`.
    assignment : str
        The assignment name.

    Returns
    -------
    str
        The table, a blank line, then one total line per student.

    Raises
    ------
    FileNotFoundError, KeyError
        As :func:`gradebook_scores`.
    """
    frame = gradebook_scores(db_url_or_path, assignment)
    if frame.empty:
        return f"No graded submissions for {assignment} yet: run `nbgrader autograde {assignment}` first."
    # A person's score overrides the autograder's; nbgrader's own rule (Grade.score).
    score = frame["manual_score"].where(frame["manual_score"].notna(), frame["auto_score"])
    pending = frame["needs_manual_grade"].astype(bool)
    table = frame[["student", "notebook", "grade_id", "cell_type", "max_score"]].copy()
    table.insert(4, "score", [("pending" if p else f"{s:g}") for s, p in zip(score.fillna(0), pending, strict=True)])
    table["max_score"] = [f"{value:g}" for value in frame["max_score"]]
    table["failed_tests"] = frame["failed_tests"].fillna("")
    lines = [table.to_string(index=False), ""]
    for student, rows in table.groupby("student", sort=True):
        done = score[rows.index][~pending[rows.index]].fillna(0).sum()
        waiting = frame.loc[rows.index, "max_score"][pending[rows.index]].sum()
        total = frame.loc[rows.index, "max_score"].sum()
        state = f"{waiting:g} point(s) pending manual grading" if waiting else "final"
        lines.append(f"{student}: {done:g} / {total:g} ({state})")
    return "\n".join(lines)


# --------------------------------------------------------------------------------------------------
# Grading a class on several cores
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ClassGrading:
    """What :func:`autograde_class` did: who was graded, who was skipped, who failed and why."""

    graded: list[str]
    skipped: list[str]
    failed: dict[str, str] = field(default_factory=dict)


def autograde_class(
    course_dir: Path,
    assignment: str,
    jobs: int = 1,
    students: Sequence[str] | None = None,
    *,
    force: bool = False,
    timeout: float | None = None,
) -> ClassGrading:
    """Autograde every submission of ``assignment``, ``jobs`` students at a time, into one gradebook.

    ``nbgrader autograde`` grades one student after another: one kernel, one core. Running several
    ``nbgrader autograde --student`` at once in the same course directory would put several writers
    on one SQLite gradebook, where a writer that waits longer than SQLite's busy timeout fails with
    "database is locked". Here each student is graded by a real ``nbgrader autograde`` in a private
    copy of the course directory (the configuration, the source, the submission and a copy of the
    gradebook taken before grading starts), so nbgrader's own code does all the scoring and writers
    never meet. This process alone then copies each student's results into the instructor's
    gradebook through nbgrader's ``Gradebook`` API, one student at a time: the submission and its
    timestamp, every cell's ``auto_score`` and ``needs_manual_grade``, every answer's ``auto_comment``
    and each notebook's late penalty (everything ``nbgrader autograde`` writes), and the graded
    notebooks into ``autograded/``. Manual grades already in the gradebook are kept.

    Parameters
    ----------
    course_dir : Path
        The nbgrader course directory (``nbgrader_config.py``, ``gradebook.db``, ``source/``,
        ``submitted/STUDENT/ASSIGNMENT/``), after ``nbgrader generate_assignment``.
    assignment : str
        The assignment to grade, e.g. ``00_notebook_thinking``.
    jobs : int, default 1
        Students graded at the same time; one per core is the useful maximum.
    students : sequence of str, optional
        Who to grade; default every student with a folder ``submitted/STUDENT/ASSIGNMENT``.
    force : bool, default False
        Regrade students already in ``autograded/`` (nbgrader's ``--force``); otherwise they are
        skipped, as ``nbgrader autograde`` skips them.
    timeout : float, optional
        Seconds one student's grading may take before it is stopped and reported as failed.

    Returns
    -------
    ClassGrading
        The students graded, skipped and failed. A failed student (nbgrader logged an ERROR: the
        kernel died, the run was stopped) is left in the gradebook exactly as ``nbgrader
        autograde`` leaves them (cells without an automatic score, no ``autograded/`` folder); the
        reason is nbgrader's error line.

    Raises
    ------
    ValueError
        If ``jobs`` is below 1, there is no ``gradebook.db``, the gradebook does not know
        ``assignment``, or a named student has no submission.
    """
    from concurrent.futures import ThreadPoolExecutor, as_completed

    from nbgrader.api import Gradebook, MissingEntry

    if jobs < 1:
        raise ValueError(f"jobs must be at least 1, got {jobs}; pass --jobs 2 on a 2-core machine.")
    course_dir = Path(course_dir).resolve()
    gradebook = course_dir / "gradebook.db"
    if not gradebook.is_file():  # nbgrader would silently create an empty one
        raise ValueError(f"No gradebook at {gradebook}: pass the course directory that holds gradebook.db.")
    with Gradebook(f"sqlite:///{gradebook}", course_id="") as gb:
        try:
            gb.find_assignment(assignment)
        except MissingEntry:
            raise ValueError(
                f"The gradebook {gradebook} has no assignment {assignment!r}: run "
                f"`nbgrader generate_assignment {assignment}` in {course_dir} first."
            ) from None
    submitted = course_dir / "submitted"
    available = sorted(p.parent.name for p in submitted.glob(f"*/{assignment}") if p.is_dir())
    wanted = list(students) if students is not None else available
    missing = sorted(set(wanted) - set(available))
    if missing:
        raise ValueError(f"No submission of {assignment} for {missing}: expected {submitted}/STUDENT/{assignment}/.")
    done = [s for s in wanted if (course_dir / "autograded" / s / assignment).exists()]
    skipped = [] if force else done
    to_grade = [s for s in wanted if s not in skipped]
    for student in skipped:
        logger.warning("Skipping %s: already autograded (pass force=True / --force to regrade)", student)

    graded: list[str] = []
    failed: dict[str, str] = {}
    with tempfile.TemporaryDirectory(prefix="mlsys-lab-autograde-") as tmp:
        # One snapshot before anyone is graded: every worker starts from the same gradebook.
        snapshot = Path(tmp) / "gradebook.db"
        shutil.copyfile(gradebook, snapshot)

        def grade_one(student: str) -> tuple[Path, str | None]:
            workdir = Path(tmp) / "students" / student
            _private_course_copy(course_dir, workdir, snapshot, assignment, student)
            # The URL is pinned so that a db_url in the course's config cannot send a worker to the
            # instructor's gradebook.
            db = f"--CourseDirectory.db_url=sqlite:///{workdir / 'gradebook.db'}"
            args = ["autograde", assignment, "--student", student, db]
            try:
                run_nbgrader(args, workdir, timeout=timeout)
            except RuntimeError as exc:  # "`nbgrader ...` failed (exit status N): <cause>"
                return workdir, str(exc).splitlines()[0].split("): ", 1)[-1]
            except subprocess.TimeoutExpired:
                return workdir, f"grading took longer than {timeout} s and was stopped"
            return workdir, None

        with ThreadPoolExecutor(max_workers=jobs) as pool:
            futures = {pool.submit(grade_one, student): student for student in to_grade}
            # Merged here, in this one thread, as each student finishes: one writer on the gradebook.
            for future in as_completed(futures):
                student = futures[future]
                workdir, error = future.result()
                merged = _merge_student(workdir, course_dir, assignment, student)
                if error is None and merged:
                    graded.append(student)
                else:
                    failed[student] = error or "nbgrader stored no submission"
                    logger.error("Grading %s failed: %s", student, failed[student])
    return ClassGrading(graded=sorted(graded), skipped=skipped, failed=failed)


def _private_course_copy(course_dir: Path, workdir: Path, snapshot: Path, assignment: str, student: str) -> None:
    """A course directory of one's own: config, source, this student's submission, a gradebook copy."""
    workdir.mkdir(parents=True)
    shutil.copyfile(course_dir / "nbgrader_config.py", workdir / "nbgrader_config.py")
    shutil.copyfile(snapshot, workdir / "gradebook.db")
    shutil.copytree(course_dir / "source" / assignment, workdir / "source" / assignment)
    shutil.copytree(course_dir / "submitted" / student / assignment, workdir / "submitted" / student / assignment)


def _merge_student(workdir: Path, course_dir: Path, assignment: str, student: str) -> bool:
    """Copy one student's autograde results from ``workdir`` into ``course_dir``; False if there were none."""
    from nbgrader.api import Gradebook, MissingEntry

    with Gradebook(f"sqlite:///{workdir / 'gradebook.db'}", course_id="") as source:
        try:
            submission = source.find_submission(assignment, student)
        except MissingEntry:
            return False
        who = source.find_student(student)
        with Gradebook(f"sqlite:///{course_dir / 'gradebook.db'}", course_id="") as target:
            try:
                target.find_student(student)
            except MissingEntry:
                target.update_or_create_student(
                    student, first_name=who.first_name, last_name=who.last_name, email=who.email
                )
            # nbgrader sets the timestamp only when the submission has one (timestamp.txt).
            extra = {"timestamp": submission.timestamp} if submission.timestamp is not None else {}
            target.update_or_create_submission(assignment, student, **extra)
            for notebook in submission.notebooks:
                into = target.find_submission_notebook(notebook.name, assignment, student)
                into.late_submission_penalty = notebook.late_submission_penalty
                for grade in notebook.grades:
                    cell = target.find_grade(grade.name, notebook.name, assignment, student)
                    # Copied, not recomputed: the copy held this gradebook's manual scores, so this is
                    # what nbgrader's SaveAutoGrades decided here.
                    cell.auto_score = grade.auto_score
                    cell.needs_manual_grade = grade.needs_manual_grade
                for comment in notebook.comments:
                    target.find_comment(
                        comment.name, notebook.name, assignment, student
                    ).auto_comment = comment.auto_comment
            target.db.commit()
    graded_dir = workdir / "autograded" / student / assignment
    if graded_dir.is_dir():
        destination = course_dir / "autograded" / student / assignment
        if destination.exists():
            shutil.rmtree(destination)
        shutil.copytree(graded_dir, destination)
    return True
