"""Module 06, maintenance: retraining on matured labels, the champion/challenger gate, canary and rollback.

A plain re-export: importing it defines names and does nothing else.

- :mod:`~mlsys_lab.maintenance.retraining`: the training set from the decision log as of a time,
  labels known then, immature days left out, validated, trained through the one entry point, triggered;
- :mod:`~mlsys_lab.maintenance.history`: simulated history written into a decision log (tests, benchmarks).
"""

from mlsys_lab.maintenance.retraining import (
    TRIGGER_KINDS,
    Maturity,
    Retraining,
    Trigger,
    choose_maturity,
    retrain,
    retraining_split,
    schedule_trigger,
    sustained_trigger,
    training_frame,
)

__all__ = [
    "TRIGGER_KINDS",
    "Maturity",
    "Retraining",
    "Trigger",
    "choose_maturity",
    "retrain",
    "retraining_split",
    "schedule_trigger",
    "sustained_trigger",
    "training_frame",
]
