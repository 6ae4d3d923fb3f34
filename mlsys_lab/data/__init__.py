"""The data layer: simulated transactions (and, as the course grows, validation, features and splits).

A plain re-export: importing it defines names and does nothing else.
"""

from mlsys_lab.data.simulator import (
    COLUMNS,
    PRESETS,
    FraudScenarios,
    Simulation,
    SimulatorConfig,
    iter_days,
    preset,
    simulate,
)

__all__ = [
    "COLUMNS",
    "PRESETS",
    "FraudScenarios",
    "Simulation",
    "SimulatorConfig",
    "iter_days",
    "preset",
    "simulate",
]
