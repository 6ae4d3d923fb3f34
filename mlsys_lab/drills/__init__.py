"""Module 07, the system on a bad day: failure drills with known answers, their scoring, and the ML Test Score.

A plain re-export: importing it defines names and does nothing else.

- :mod:`~mlsys_lab.drills.runner`: the prepared system, the real server on loopback, the scraper;
- :mod:`~mlsys_lab.drills.traffic`: the drills' paced load generator with a record per request;
- :mod:`~mlsys_lab.drills.catalogue`: the drills, each with a seeded hidden start and an answer key;
- :mod:`~mlsys_lab.drills.record`: the answer key and the drill record;
- :mod:`~mlsys_lab.drills.diagnosis`: a learner's diagnosis scored against the answer key;
- :mod:`~mlsys_lab.drills.ml_test_score`: the ML Test Score rubric, graded from executable evidence.
"""

from mlsys_lab.drills.catalogue import DRILLS, SKIPPED, run_drill
from mlsys_lab.drills.record import ROOT_CAUSES, AnswerKey, DrillRecord
from mlsys_lab.drills.runner import DrillSystem, prepare_system

__all__ = ["DRILLS", "ROOT_CAUSES", "SKIPPED", "AnswerKey", "DrillRecord", "DrillSystem", "prepare_system", "run_drill"]
