"""Every solution notebook runs top to bottom in fast mode.

papermill runs one module's solution (``PAPERMILL_MODULE``: see its comment for why one is enough).
For all eight, the round trip's autograde of alice runs the solution top to bottom in the same short
version; test_lint.py reads that run (no cell raises, graded cells quiet on stderr), and so does
test_prose.py.
"""

from __future__ import annotations

from collections.abc import Callable

import nbformat
import pytest

from .conftest import PAPERMILL_MODULE, Execution, cell_errors, notebook_path


@pytest.mark.slow
@pytest.mark.parametrize("assignment", [PAPERMILL_MODULE], scope="session")
def test_solution_runs_in_fast_mode(
    assignment: str, executed_solution: Execution, record_property: Callable[[str, object], None]
) -> None:
    # Timings are reported (JUnit property, course_timings.json, terminal summary), never asserted.
    record_property("notebook_seconds", round(executed_solution.seconds, 2))
    assert executed_solution.error is None, (
        f"{notebook_path('solutions', assignment)} failed under papermill with parameters "
        f"{executed_solution.parameters}; expected it to run top to bottom. The executed copy with the "
        f"failing cell is {executed_solution.output}.\n{executed_solution.error}"
    )
    assert executed_solution.parameters == {"FAST": True}, (
        f"papermill was given {executed_solution.parameters}; expected FAST=True injected into the parameters cell"
    )
    # papermill goes on past a cell tagged raises-exception: no tag may hide an error of the reference.
    errors = cell_errors(nbformat.read(executed_solution.output, as_version=4))
    assert not errors, f"{assignment}: the solution under papermill has {errors}; expected every cell to run cleanly."
