"""The data layer: simulated transactions (and, as the course grows, validation, features and splits).

A plain re-export: importing it defines names and does nothing else.
"""

from mlsys_lab.data.labels import known_labels, labels_known_at
from mlsys_lab.data.simulator import (
    CARD_TESTING_SCENARIO,
    COLUMNS,
    PRESETS,
    AmountInflation,
    CardTesting,
    DriftEvent,
    FraudScenarios,
    LabelDelay,
    NewTerminals,
    ScenarioOff,
    Simulation,
    SimulatorConfig,
    default_drift_schedule,
    iter_days,
    preset,
    simulate,
)

__all__ = [
    "CARD_TESTING_SCENARIO",
    "COLUMNS",
    "PRESETS",
    "AmountInflation",
    "CardTesting",
    "DriftEvent",
    "FraudScenarios",
    "LabelDelay",
    "NewTerminals",
    "ScenarioOff",
    "Simulation",
    "SimulatorConfig",
    "default_drift_schedule",
    "iter_days",
    "known_labels",
    "labels_known_at",
    "preset",
    "simulate",
]
