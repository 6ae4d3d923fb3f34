"""The xdist scheduler of tests/conftest.py: which scope goes first, and which measurements it trusts."""

from __future__ import annotations

import doctest

import conftest  # tests/conftest.py: the suite-wide one, on sys.path as pytest's rootdir conftest
import pytest


def test_examples_in_the_docstrings_hold() -> None:
    assert doctest.testmod(conftest).failed == 0


def test_measured_scopes_go_longest_first_and_unmeasured_ones_before_them() -> None:
    tests = {"tests/quick.py": 40, "course-03_c": 30, "tests/slow.py": 2, "course-07_c": 41, "tests/new.py": 1}
    measured = {"tests/quick.py": 4.0, "course-03_c": 300.0, "tests/slow.py": 500.0, "course-07_c": 1200.0}
    assert conftest.work_order(tests, measured) == [
        "tests/new.py",
        "course-07_c",
        "tests/slow.py",
        "course-03_c",
        "tests/quick.py",
    ]


def test_without_measurements_the_latest_course_module_goes_first_then_files_by_size() -> None:
    tests = {"tests/a.py": 3, "course-00_x": 37, "tests/b.py": 50, "course-07_y": 41, "course-04_z": 37}
    assert conftest.work_order(tests, {}) == ["course-07_y", "course-04_z", "course-00_x", "tests/b.py", "tests/a.py"]


@pytest.mark.parametrize(("cached_tests", "trusted"), [(12, False), (41, True), (50, True)])
def test_a_measurement_of_fewer_tests_than_scheduled_is_not_trusted(cached_tests: int, trusted: bool) -> None:
    usable = conftest.usable_measurements({"course-07_c": [3.0, cached_tests]}, {"course-07_c": 41})
    assert ("course-07_c" in usable) is trusted, usable
