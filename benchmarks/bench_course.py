"""Benchmark the course itself: how long the notebooks take to run and to grade.

Prints two markdown tables:

1. every solution notebook executed with papermill, in fast mode (what CI runs) and in default mode
   (what a student runs), next to an empty notebook run the same way: the kernel start-up that no
   notebook can go below, measured in the same run;
2. autograding one student's whole course (the reference solutions submitted for every module) with
   real nbgrader in a temporary course directory;
3. autograding a class of generated submissions in one ``nbgrader autograde`` call: a mix of correct
   (the reference), blank (the release) and wrong (each exercise answered by one of its wrong
   variants from ``assignments/variants/``). With ``--class-size N`` smaller than 30 the time for
   30 is extrapolated linearly and the table says so;
4. the same class graded with ``mlsys-lab autograde --jobs N`` (``course.autograde_class``: one real
   ``nbgrader autograde`` per student in a private copy of the course, N at a time, merged into the
   one gradebook), next to the one-call sequential run, wall and CPU time (the CPU of every nbgrader
   and kernel process, from ``getrusage(RUSAGE_CHILDREN)``). The scores of both runs are compared.

Targets from COURSE.md and issue 9, printed as information, never asserted: all solutions in fast
mode together in at most 5 minutes on 2 cores; one student's whole course autograded in at most
2 minutes; a class of 30 in at most 15 minutes.

Usage: ``python benchmarks/bench_course.py [--class-size 30] [--jobs 2] [--skip-notebooks]
[--skip-single] [--assignments 00_notebook_thinking ...]``
"""

from __future__ import annotations

import argparse
import re
import resource
import shutil
import tempfile
import time
from pathlib import Path

import nbformat
import papermill

from mlsys_lab import course

ROOT = Path(__file__).resolve().parents[1]
VARIANT_HEADER = re.compile(r"^# %% (correct|wrong): *(.+?) *$", flags=re.MULTILINE)
KINDS = ("correct", "blank", "wrong")


def _first_wrong_variants(name: str) -> dict[str, str]:
    """For each exercise of ``name``, the source of its first wrong variant, keyed by answer grade_id."""
    chosen = {}
    for path in sorted((ROOT / "assignments" / "variants" / name).glob("*.py")):
        text = path.read_text(encoding="utf-8")
        headers = list(VARIANT_HEADER.finditer(text))
        for position, match in enumerate(headers):
            if match.group(1) == "wrong":
                end = headers[position + 1].start() if position + 1 < len(headers) else len(text)
                chosen[path.stem] = text[match.end() : end].strip() + "\n"
                break
    return chosen


def _submit_class(course_dir: Path, assignments: list[str], size: int) -> dict[str, int]:
    """Write ``size`` students' submissions for every module, cycling correct, blank, wrong."""
    counts = dict.fromkeys(KINDS, 0)
    for index in range(size):
        kind = KINDS[index % len(KINDS)]
        counts[kind] += 1
        for name in assignments:
            target = course_dir / "submitted" / f"s{index:02d}" / name
            source = course_dir / ("release" if kind == "blank" else "solution") / name
            shutil.copytree(source, target)
            if kind == "wrong":
                path = target / f"{name}.ipynb"
                nb = nbformat.read(path, as_version=4)
                wrong = _first_wrong_variants(name)
                for cell in nb.cells:
                    grade_id = cell.metadata.get("nbgrader", {}).get("grade_id")
                    if grade_id in wrong:
                        cell.source = wrong[grade_id]
                nbformat.write(nb, path)
    return counts


def _children_cpu() -> float:
    """CPU seconds (user + system) of every finished child process tree of this process."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _timed(action: object) -> tuple[float, float]:
    """Wall and child-CPU seconds of ``action()``."""
    wall, cpu = time.perf_counter(), _children_cpu()
    action()  # type: ignore[operator]
    return time.perf_counter() - wall, _children_cpu() - cpu


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
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--class-size", type=int, default=30, help="students in the generated class (default 30)")
    parser.add_argument("--skip-notebooks", action="store_true", help="skip the papermill table")
    parser.add_argument("--skip-single", action="store_true", help="skip autograding one student's course")
    parser.add_argument("--jobs", type=int, default=2, help="students graded at once in the parallel run")
    parser.add_argument("--assignments", nargs="+", help="grade only these modules (default: all)")
    args = parser.parse_args()
    assignments = args.assignments or course.discover_assignments(ROOT)
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-course-") as tmp:
        out = Path(tmp)
        baseline = 0.0
        if not args.skip_notebooks:
            baseline = _run(_empty_notebook(out), out, {})
            for name in assignments:
                solution = ROOT / "solutions" / name / f"{name}.ipynb"
                rows.append((name, _run(solution, out, {"FAST": True}), _run(solution, out, {})))

        autograde = 0.0
        if not args.skip_single:
            course_dir = course.prepare_course_dir(ROOT, out / "course", assignments)
            course.run_nbgrader(["generate_assignment", "*", "--force"], course_dir)
            course.run_nbgrader(["generate_solution", "*", "--force"], course_dir)
            for name in assignments:
                target = course_dir / "submitted" / "student" / name
                target.mkdir(parents=True)
                shutil.copy(ROOT / "solutions" / name / f"{name}.ipynb", target / f"{name}.ipynb")
            started = time.perf_counter()
            course.run_nbgrader(["autograde", "*", "--create"], course_dir)
            autograde = time.perf_counter() - started

        class_dir = course.prepare_course_dir(ROOT, out / "class", assignments)
        course.run_nbgrader(["generate_assignment", "*", "--force"], class_dir)
        course.run_nbgrader(["generate_solution", "*", "--force"], class_dir)
        counts = _submit_class(class_dir, assignments, args.class_size)
        parallel_dir = out / "class-parallel"
        shutil.copytree(class_dir, parallel_dir)  # the same class, not yet graded
        class_seconds, class_cpu = _timed(lambda: course.run_nbgrader(["autograde", "*", "--create"], class_dir))

        def grade_in_parallel() -> None:
            for name in assignments:
                course.autograde_class(parallel_dir, name, jobs=args.jobs)

        parallel_seconds, parallel_cpu = _timed(grade_in_parallel)
        same = all(
            course.gradebook_scores(class_dir / "gradebook.db", name).equals(
                course.gradebook_scores(parallel_dir / "gradebook.db", name)
            )
            for name in assignments
        )

    if rows:
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
    print(f"Modules: {', '.join(assignments)}\n")
    print("| autograde | wall s | CPU s |")
    print("|---|---|---|")
    if not args.skip_single:
        print(f"| one student's whole course: {len(assignments)} module(s), reference solutions | {autograde:.1f} | |")
    mix = ", ".join(f"{n} {kind}" for kind, n in counts.items())
    print(
        f"| a class of {args.class_size} ({mix}), one `nbgrader autograde` call "
        f"| {class_seconds:.1f} | {class_cpu:.1f} |"
    )
    print(f"| the same class, `mlsys-lab autograde --jobs {args.jobs}` | {parallel_seconds:.1f} | {parallel_cpu:.1f} |")
    if args.class_size != 30:
        for label, seconds in (("one call", class_seconds), (f"--jobs {args.jobs}", parallel_seconds)):
            estimate = seconds * 30 / args.class_size
            print(f"| a class of 30, {label}, **extrapolated** linearly from {args.class_size} | {estimate:.1f} | |")
    print(f"\nspeed-up (wall): {class_seconds / parallel_seconds:.2f}x; identical scores: {same}")
    print("\ntargets: one student <= 120 s; a class of 30 <= 900 s")


if __name__ == "__main__":
    main()
