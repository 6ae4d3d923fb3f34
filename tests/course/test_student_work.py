"""A student's answers are never lost: not to `make notebooks`, not to the tests, not to `git pull`.

Students answer in ``work/`` (git-ignored), which ``make lab`` fills from ``notebooks/`` without
overwriting anything; the build refuses to overwrite a generated file that someone edited.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from mlsys_lab import course

from .conftest import REPO_ROOT, console_script, notebook_path
from .test_build import FIX

FIRST = "00_notebook_thinking"


def _course_root(tmp_path: Path, assignments: list[str]) -> Path:
    """A repository root holding the config and the sources of ``assignments``, nothing built yet."""
    root = tmp_path / "repo"
    (root / course.SOURCE_DIR).mkdir(parents=True)
    shutil.copyfile(REPO_ROOT / course.CONFIG_FILE, root / course.CONFIG_FILE)
    for name in assignments:
        shutil.copytree(REPO_ROOT / course.SOURCE_DIR / name, root / course.SOURCE_DIR / name)
    return root


def _answer(path: Path) -> bytes:
    """Type the reference answers into the student notebook at ``path``, as a student would."""
    name = path.stem
    solution = nbformat.read(notebook_path("solutions", name), as_version=4)
    answers = {
        cell.metadata["nbgrader"]["grade_id"]: cell.source
        for cell in solution.cells
        if cell.metadata.get("nbgrader", {}).get("solution")
    }
    nb = nbformat.read(path, as_version=4)
    for cell in nb.cells:
        grade_id = cell.metadata.get("nbgrader", {}).get("grade_id")
        if grade_id in answers:
            cell.source = answers[grade_id]
    nbformat.write(nb, path)
    return path.read_bytes()


def _git(cwd: Path, *args: str) -> str:
    env = {**os.environ, "GIT_CONFIG_GLOBAL": os.devnull, "GIT_CONFIG_NOSYSTEM": "1"}
    identity = ["-c", "user.name=test", "-c", "user.email=test@example.invalid", "-c", "init.defaultBranch=main"]
    result = subprocess.run(["git", *identity, *args], cwd=cwd, env=env, capture_output=True, text=True, check=False)
    assert result.returncode == 0, f"`git {' '.join(args)}` failed in {cwd}:\n{result.stdout}\n{result.stderr}"
    return result.stdout


def test_sync_copies_what_is_missing_and_overwrites_nothing(tmp_path: Path) -> None:
    root = tmp_path / "repo"
    shutil.copytree(REPO_ROOT / "notebooks" / FIRST, root / "notebooks" / FIRST)
    work = root / "work"

    copied = course.sync_student_work(root)

    assert Path(FIRST, f"{FIRST}.ipynb") in copied, f"expected the notebook copied into work/; copied {copied}"
    answered = _answer(work / FIRST / f"{FIRST}.ipynb")
    # A new module and a new file in an existing module arrive (a pull, say); nothing else changes.
    shutil.copytree(root / "notebooks" / FIRST, root / "notebooks" / "99_new_module")
    (root / "notebooks" / FIRST / "extra.csv").write_text("a,b\n")
    (root / "notebooks" / FIRST / ".ipynb_checkpoints").mkdir()
    (root / "notebooks" / FIRST / ".ipynb_checkpoints" / "x.ipynb").write_text("{}")

    copied = course.sync_student_work(root)

    assert sorted(map(str, copied)) == sorted([f"{FIRST}/extra.csv", "99_new_module/00_notebook_thinking.ipynb"]), (
        f"expected only the new files copied (no checkpoints); copied {copied}"
    )
    assert (work / FIRST / f"{FIRST}.ipynb").read_bytes() == answered, "sync overwrote an answered notebook"


def test_build_refuses_to_overwrite_an_edited_notebook_and_says_which(tmp_path: Path) -> None:
    """A student who typed answers into notebooks/ and follows the freshness test's advice loses nothing."""
    root = _course_root(tmp_path, [FIRST])
    course.build_course(root)
    student = root / "notebooks" / FIRST / f"{FIRST}.ipynb"
    built = student.read_bytes()
    answered = _answer(student)
    scratch = root / "notebooks" / FIRST / "my_notes.txt"
    scratch.write_text("a file the build never wrote\n")
    assert "make notebooks" in FIX and "--force" not in FIX, f"the freshness message changed: {FIX}"

    result = subprocess.run(
        [str(console_script("mlsys-lab")), "notebooks", "--root", str(root)],
        capture_output=True, text=True, check=False, timeout=600,
    )  # fmt: skip

    assert result.returncode == 1, f"expected exit 1 (refused); got {result.returncode}\n{result.stderr}"
    for name in (f"notebooks/{FIRST}/{FIRST}.ipynb", f"notebooks/{FIRST}/my_notes.txt"):
        assert name in result.stderr, f"the refusal does not name {name}:\n{result.stderr}"
    assert student.read_bytes() == answered, "make notebooks overwrote the answered notebook"
    assert scratch.exists(), "make notebooks deleted a file it never wrote"

    forced = subprocess.run(
        [str(console_script("mlsys-lab")), "notebooks", "--root", str(root), "--force"],
        capture_output=True, text=True, check=False, timeout=600,
    )  # fmt: skip
    assert forced.returncode == 0, forced.stderr
    assert student.read_bytes() == built and not scratch.exists(), "--force should restore the generated files"


def test_maintainer_can_edit_a_source_and_rebuild_twice_without_committing(tmp_path: Path) -> None:
    """No git here: only the build's own record tells its output from an edit."""
    root = _course_root(tmp_path, [FIRST])
    course.build_course(root)
    source = root / course.SOURCE_DIR / FIRST / f"{FIRST}.ipynb"
    student = root / "notebooks" / FIRST / f"{FIRST}.ipynb"
    for revision in ("first", "second"):
        nb = nbformat.read(source, as_version=4)
        nb.cells.append(nbformat.v4.new_markdown_cell(f"A {revision} edit by the instructor."))
        nbformat.write(nb, source)
        course.build_course(root)
        assert f"A {revision} edit by the instructor." in student.read_text(), f"the {revision} rebuild wrote nothing"


def test_git_pull_that_adds_a_module_keeps_answers_and_lab_sync_copies_it(tmp_path: Path) -> None:
    upstream = tmp_path / "upstream"
    (upstream / "notebooks").mkdir(parents=True)
    shutil.copyfile(REPO_ROOT / ".gitignore", upstream / ".gitignore")
    shutil.copytree(REPO_ROOT / "notebooks" / FIRST, upstream / "notebooks" / FIRST)
    _git(upstream, "init", "-q")
    _git(upstream, "add", "-A")
    _git(upstream, "commit", "-q", "-m", "module 00")
    _git(tmp_path, "clone", "-q", "--bare", str(upstream), str(tmp_path / "origin.git"))
    _git(tmp_path, "clone", "-q", str(tmp_path / "origin.git"), str(tmp_path / "student"))
    student = tmp_path / "student"
    course.sync_student_work(student)
    answered = _answer(student / "work" / FIRST / f"{FIRST}.ipynb")

    # Upstream fixes module 00 and adds module 01.
    _git(upstream, "remote", "add", "origin", str(tmp_path / "origin.git"))
    with (upstream / "notebooks" / FIRST / f"{FIRST}.ipynb").open("a") as handle:
        handle.write("\n")
    shutil.copytree(REPO_ROOT / "notebooks" / "01_data_layer", upstream / "notebooks" / "01_data_layer")
    _git(upstream, "add", "-A")
    _git(upstream, "commit", "-q", "-m", "module 01")
    _git(upstream, "push", "-q", "origin", "HEAD:main")

    _git(student, "pull", "-q", "--ff-only")
    copied = course.sync_student_work(student)

    assert _git(student, "status", "--porcelain") == "", "work/ must be invisible to git (ignored)"
    assert (student / "work" / FIRST / f"{FIRST}.ipynb").read_bytes() == answered, "the pull or sync lost answers"
    assert Path("01_data_layer", "01_data_layer.ipynb") in copied, f"the new module was not copied: {copied}"
    assert (student / "work" / "01_data_layer" / "01_data_layer.ipynb").is_file()


@pytest.mark.slow
def test_freshness_tests_leave_work_alone(tmp_path: Path) -> None:
    """Run the real freshness tests on a copy of the repository whose work/ holds answers."""
    root = tmp_path / "repo"
    root.mkdir()
    for name in ("pyproject.toml", ".gitignore"):
        shutil.copyfile(REPO_ROOT / name, root / name)
    shutil.copytree(REPO_ROOT / "tests", root / "tests", ignore=shutil.ignore_patterns("__pycache__"))
    (root / course.SOURCE_DIR).mkdir(parents=True)
    shutil.copyfile(REPO_ROOT / course.CONFIG_FILE, root / course.CONFIG_FILE)
    shutil.copytree(REPO_ROOT / course.SOURCE_DIR / FIRST, root / course.SOURCE_DIR / FIRST)
    for kind in ("notebooks", "solutions"):
        shutil.copytree(REPO_ROOT / kind / FIRST, root / kind / FIRST)
    course.sync_student_work(root)
    answered = _answer(root / "work" / FIRST / f"{FIRST}.ipynb")
    before = {p: p.stat().st_mtime_ns for p in (root / "work").rglob("*")}

    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/course/test_build.py"],
        cwd=root, capture_output=True, text=True, check=False, timeout=900,
    )  # fmt: skip

    assert result.returncode == 0, f"the freshness tests failed on an unchanged copy:\n{result.stdout[-3000:]}"
    assert (root / "work" / FIRST / f"{FIRST}.ipynb").read_bytes() == answered
    after = {p: p.stat().st_mtime_ns for p in (root / "work").rglob("*")}
    assert after == before, "the tests created, removed or touched files in work/"


@pytest.mark.parametrize("display", [None, ":0"])
def test_lab_command_needs_no_flag_as_root_or_without_a_display(display: str | None, tmp_path: Path) -> None:
    environ = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)} | ({"DISPLAY": display} if display else {})
    command = course.lab_command(REPO_ROOT, tmp_path / "work", ["--ServerApp.port=9"], environ)
    argv, env = command.argv, command.env
    assert command.cwd == (tmp_path / "work").resolve(), "terminals opened without a folder start in work/"
    assert argv[-1] == "--ServerApp.port=9", f"extra arguments must come last (and win): {argv}"
    assert f"--ServerApp.root_dir={tmp_path / 'work'}" in argv, argv
    assert ("--ServerApp.allow_root=True" in argv) == (os.geteuid() == 0), f"as uid {os.geteuid()}: {argv}"
    if sys.platform.startswith("linux"):
        assert ("--ServerApp.open_browser=False" in argv) == (display is None), f"DISPLAY={display}: {argv}"
    assert env["PATH"].split(os.pathsep)[0] == str(Path(sys.executable).parent), env["PATH"]
    assert env["JUPYTER_CONFIG_PATH"].split(os.pathsep)[0] == str(REPO_ROOT / ".jupyter-course"), env


@pytest.mark.parametrize(
    ("lab_fast", "grading_env", "short"), [(False, None, False), (True, None, True), (False, "autograde", True)]
)
def test_fast_lab_and_graded_runs_take_the_short_version(
    lab_fast: bool, grading_env: str | None, short: bool, tmp_path: Path
) -> None:
    # The kernel inherits the lab's environment; nbgrader adds NBGRADER_EXECUTION to it while grading.
    environ = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}
    env = course.lab_command(REPO_ROOT, tmp_path / "work", [], environ, fast=lab_fast).env
    assert (course.FAST_ENV in env) == lab_fast, env
    if grading_env:
        env["NBGRADER_EXECUTION"] = grading_env
    code = "from mlsys_lab import grading; print(grading.fast_mode(False), grading.fast_mode(True))"
    result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert result.stdout.split() == [str(short), "True"], (lab_fast, grading_env, result.stdout, result.stderr)


def test_validate_finds_a_module_by_name_wherever_the_student_stands(tmp_path: Path) -> None:
    notebook = tmp_path / "work" / FIRST / f"{FIRST}.ipynb"
    other = tmp_path / "work" / "01_data_layer"
    notebook.parent.mkdir(parents=True)
    other.mkdir()
    notebook.write_text("{}")
    for cwd in (tmp_path, tmp_path / "work", notebook.parent, other):
        assert course.find_student_notebook(FIRST, cwd) == notebook, f"not found from {cwd}"
    with pytest.raises(FileNotFoundError, match="01_data_layer"):
        course.find_student_notebook("01_data_layer", tmp_path)
