"""The committed student and solution notebooks are exactly what the sources generate."""

from __future__ import annotations

import shutil
from pathlib import Path

import nbformat
import pytest

from mlsys_lab import course

from .conftest import ASSIGNMENTS, REPO_ROOT, RUN_OUTPUTS

FIX = (
    "If you changed assignments/source/, run `make notebooks` (it refuses to overwrite a generated file "
    "someone edited, so answers typed into notebooks/ are never lost) and commit notebooks/ and solutions/."
)


def _files(folder: Path) -> dict[str, bytes]:
    if not folder.is_dir():
        return {}
    return {
        p.relative_to(folder).as_posix(): p.read_bytes()
        for p in sorted(folder.rglob("*"))
        # Outputs of running a notebook in place are not part of the build.
        if p.is_file() and not set(p.relative_to(folder).parts) & set(RUN_OUTPUTS)
    }


@pytest.mark.parametrize("kind", ["notebooks", "solutions"])
def test_committed_notebooks_are_fresh(assignment: str, kind: str, regenerated: Path) -> None:
    committed = _files(REPO_ROOT / kind / assignment)
    fresh = _files(regenerated / kind / assignment)
    assert committed, f"{kind}/{assignment}/ is missing or empty; expected generated files. {FIX}"
    missing, extra = sorted(fresh.keys() - committed.keys()), sorted(committed.keys() - fresh.keys())
    assert not missing and not extra, (
        f"{kind}/{assignment}/ file set differs from a fresh build: missing {missing}, "
        f"not generated (stale) {extra}. {FIX}"
    )
    differing = [name for name in sorted(fresh) if fresh[name] != committed[name]]
    assert not differing, (
        f"{kind}/{assignment}/{differing[0]} differs from what assignments/source generates "
        f"(all differing: {differing}). {FIX}"
    )


#: The module the rebuild test builds four times. Once is enough: that a build writes the same bytes
#: every time is proven for every module by test_committed_notebooks_are_fresh (a fresh build equals
#: the committed one, byte for byte); what is left, leaving unchanged files untouched and removing
#: stale ones, is the same code for every module.
REBUILT = "00_notebook_thinking"


@pytest.mark.slow  # four builds of module 00 (about 10 s each on a busy machine)
def test_rebuild_is_byte_stable_and_removes_stale_files(tmp_path: Path, capfd: pytest.CaptureFixture[str]) -> None:
    """A second build changes no byte and no mtime, and deletes files an older build wrote."""
    assignment, regenerated = REBUILT, tmp_path
    (regenerated / course.SOURCE_DIR).mkdir(parents=True)
    shutil.copyfile(REPO_ROOT / course.CONFIG_FILE, regenerated / course.CONFIG_FILE)
    shutil.copytree(REPO_ROOT / course.SOURCE_DIR / assignment, regenerated / course.SOURCE_DIR / assignment)
    course.build_course(regenerated, [assignment])
    capfd.readouterr()
    folders = [regenerated / kind / assignment for kind in ("notebooks", "solutions")]
    before = {folder: _files(folder) for folder in folders}
    mtimes = {p: p.stat().st_mtime_ns for folder in folders for p in folder.rglob("*") if p.is_file()}

    course.build_course(regenerated, [assignment])

    leaked = capfd.readouterr().err
    assert leaked == "", f"build_course wrote to stderr on success; expected silence. It wrote:\n{leaked[:2000]}"
    for folder in folders:
        after = _files(folder)
        changed = sorted(n for n in after.keys() | before[folder].keys() if after.get(n) != before[folder].get(n))
        assert not changed, f"A second build changed {changed} in {folder.name}; expected identical bytes."
    touched = sorted(str(p) for p, ns in mtimes.items() if p.stat().st_mtime_ns != ns)
    assert not touched, f"A second build rewrote unchanged files {touched}; expected them left alone."

    # A file beside the source ships to students; once it is gone from the source, the next build
    # removes the copy an older build wrote.
    shipped = regenerated / course.SOURCE_DIR / assignment / "stale_leftover.txt"
    shipped.write_text("shipped by an older build\n")
    course.build_course(regenerated, [assignment])
    stale = folders[0] / shipped.name
    assert stale.is_file(), f"a file beside the source notebook was not shipped to notebooks/{assignment}/"
    shipped.unlink()
    course.build_course(regenerated, [assignment])
    assert not stale.exists(), f"build_course left {stale.name} in notebooks/{assignment}/; expected it removed."


def test_no_generated_folder_without_source() -> None:
    for kind in ("notebooks", "solutions"):
        folder = REPO_ROOT / kind
        if not folder.is_dir():
            continue
        orphans = sorted(
            p.name
            for p in folder.iterdir()
            if p.is_dir() and course.ASSIGNMENT_NAME.match(p.name) and p.name not in ASSIGNMENTS
        )
        assert not orphans, (
            f"{kind}/ has {orphans} but assignments/source/ has no such assignment (renamed or deleted?). "
            f"Run `make notebooks` to remove them, or restore the source."
        )


def test_build_failure_raises_with_nbgrader_log(tmp_path: Path, capfd: pytest.CaptureFixture[str]) -> None:
    """A solution marker outside a solution cell must stop the build (it would ship the answer)."""
    name = "99_broken"
    (tmp_path / "assignments" / "source" / name).mkdir(parents=True)
    shutil.copyfile(REPO_ROOT / course.CONFIG_FILE, tmp_path / course.CONFIG_FILE)
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.cells = [nbformat.v4.new_code_cell("x = 1\n### BEGIN SOLUTION\nx = 2\n### END SOLUTION")]
    nbformat.write(nb, tmp_path / course.SOURCE_DIR / name / f"{name}.ipynb")

    with pytest.raises(RuntimeError) as failure:
        course.build_course(tmp_path)

    assert "generate_assignment" in str(failure.value) and "ERROR" in str(failure.value), (
        f"Expected the RuntimeError to name the nbgrader command and carry its log; got:\n{failure.value}"
    )
    assert not (tmp_path / "notebooks" / name).exists(), "A failed build must not write notebooks/."
    assert capfd.readouterr().err == "", "nbgrader's log leaked to stderr; expected it only in the exception."
