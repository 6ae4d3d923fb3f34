"""Every solution notebook runs top to bottom in fast mode, as CI runs it."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from .conftest import Execution, notebook_path


@pytest.mark.slow
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
