"""Suite-wide rule for running the tests on several cores with pytest-xdist (``make test`` runs ``-n 2``).

Under ``--dist loadgroup`` every test carrying ``@pytest.mark.xdist_group(name)`` runs on the same
worker as the other tests of that group. Expensive fixtures are built once per worker that needs them,
so a group keeps a fixture from being built twice. This hook gives each test a group from the
fixtures it uses, so a new test is safe without a mark:

1. an explicit ``xdist_group`` mark is kept as it is;
2. a test parametrized by ``assignment`` (the course's per-module session fixtures: the nbgrader round
   trip, the executed solution, the regenerated build, the variant kernel) joins ``course-NN_slug``;
3. a test that uses a module- or session-scoped fixture defined under ``tests/`` (not a plugin's) joins
   its file's group, so a module-scoped fixture is built once and a directory's session fixture at
   most once per worker;
4. anything else is free to run on any worker, one test at a time.

Without ``-n`` the marks do nothing.
"""

from __future__ import annotations

import pytest

#: Fixture scopes whose value outlives one test: a test using one stays with the others that do.
SHARED_SCOPES = ("module", "package", "session")


def xdist_group_for(item: pytest.Item) -> str | None:
    """The ``xdist_group`` name that rules 2 and 3 above give ``item``, or None (rule 4)."""
    callspec = getattr(item, "callspec", None)
    if callspec is not None and "assignment" in callspec.params:
        return f"course-{callspec.params['assignment']}"
    fixture_info = getattr(item, "_fixtureinfo", None)
    if fixture_info is None:
        return None
    for name in fixture_info.names_closure:
        for definition in fixture_info.name2fixturedefs.get(name, ()):
            # baseid is "" for fixtures from plugins and pytest itself (tmp_path_factory, ...).
            if definition.scope in SHARED_SCOPES and definition.baseid.startswith("tests"):
                return f"file-{item.nodeid.split('::', 1)[0]}"
    return None


# Per item as it is collected, so the mark is there before any pytest_collection_modifyitems:
# xdist's own (in each worker) appends the group to the test id there, and it may run first.
def pytest_itemcollected(item: pytest.Item) -> None:
    """Give a test that shares an expensive fixture an ``xdist_group`` (see the module docstring)."""
    if item.get_closest_marker("xdist_group") is not None:
        return
    group = xdist_group_for(item)
    if group is not None:
        item.add_marker(pytest.mark.xdist_group(group))
