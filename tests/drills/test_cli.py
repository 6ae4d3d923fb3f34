"""``mlsys-lab drill run KIND`` offers every drill of the catalogue, and only those."""

from __future__ import annotations

from mlsys_lab.drills import DRILLS
from mlsys_lab.drills.cli import DrillName


def test_the_cli_offers_every_drill_of_the_catalogue():
    assert {name.value for name in DrillName} == set(DRILLS)
