"""Benchmark the course itself: how long the notebooks take to run and to grade.

Prints two markdown tables:

1. every solution notebook executed with papermill, in fast mode (what CI runs) and in default mode
   (what a student runs), next to an empty notebook run the same way: the kernel start-up that no
   notebook can go below, measured in the same run;
2. autograding one student's whole course (the reference solutions submitted for every module) with
   real nbgrader in a temporary course directory.

Targets from COURSE.md, printed as information, never asserted: all solutions in fast mode together
in at most 5 minutes on 2 cores; one student's whole course autograded in at most 2 minutes.

Usage: ``python benchmarks/bench_course.py``
"""

from __future__ import annotations

import shutil
import tempfile
import time
from pathlib import Path

import nbformat
import papermill

from mlsys_lab import course

ROOT = Path(__file__).resolve().parents[1]


def _run(notebook: Path, out_dir: Path, parameters: dict[str, object]) -> float:
    started = time.perf_counter()
    papermill.execute_notebook(
        str(notebook),
        str(out_dir / f"{notebook.stem}-{len(parameters)}.ipynb"),
        parameters=parameters,
        kernel_name="python3",
        cwd=str(notebook.parent),
        progress_bar=False,
        log_output=False,
    )
    return time.perf_counter() - started


def _empty_notebook(folder: Path) -> Path:
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell("pass")]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    path = folder / "empty.ipynb"
    nbformat.write(nb, path)
    return path


def main() -> None:
    assignments = course.discover_assignments(ROOT)
    with tempfile.TemporaryDirectory(prefix="bench-course-") as tmp:
        out = Path(tmp)
        baseline = _run(_empty_notebook(out), out, {})
        rows = []
        for name in assignments:
            solution = ROOT / "solutions" / name / f"{name}.ipynb"
            rows.append((name, _run(solution, out, {"FAST": True}), _run(solution, out, {})))

        course_dir = course.prepare_course_dir(ROOT, out / "course", assignments)
        course.run_nbgrader(["generate_assignment", "*", "--force"], course_dir)
        for name in assignments:
            target = course_dir / "submitted" / "student" / name
            target.mkdir(parents=True)
            shutil.copy(ROOT / "solutions" / name / f"{name}.ipynb", target / f"{name}.ipynb")
        started = time.perf_counter()
        course.run_nbgrader(["autograde", "*", "--create"], course_dir)
        autograde = time.perf_counter() - started

    print("Solution notebooks under papermill (seconds)\n")
    print("| notebook | fast mode | default mode |")
    print("|---|---|---|")
    print(f"| empty notebook (kernel start-up baseline) | {baseline:.1f} | {baseline:.1f} |")
    for name, fast, full in rows:
        print(f"| {name} | {fast:.1f} | {full:.1f} |")
    total_fast = sum(r[1] for r in rows)
    total_full = sum(r[2] for r in rows)
    print(f"| **all notebooks** | **{total_fast:.1f}** | **{total_full:.1f}** |")
    print("\ntarget: all solutions in fast mode <= 300 s\n")
    print("| autograde one student's whole course | seconds |")
    print("|---|---|")
    print(f"| {len(assignments)} module(s), reference solutions | {autograde:.1f} |")
    print("\ntarget: <= 120 s")


if __name__ == "__main__":
    main()
