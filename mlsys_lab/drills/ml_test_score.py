"""The ML Test Score (Breck et al., 2017) graded from executable evidence, not from self-report.

The rubric has 28 tests in four sections (data, model, infrastructure, monitoring). Each item
scores 0, 0.5 or 1; a section's score is the sum of its items, and the final score is the
**minimum** over the sections (a system is as ready as its weakest part). Descriptions below are
our own one-line summaries.

How an item earns its points
    - **1**: the learner's own automated test for the item (tagged with its id, see
      :func:`ml_test`, or named ``test_<ID>_...``) passes on the clean system **and fails** when the
      grader injects the item's fault (:data:`FAULTS`). A test that cannot fail earns at most 0.5.
    - **0.5**: the grader's own probe of the item (:data:`PROBES`) passes on the clean system and
      the learner tagged manual evidence for it (a table or a plot cell: ``evidence={"D1": "..."}``).
      Items with no probe (the partly manual ones, e.g. privacy controls) get 0.5 on tagged
      evidence alone, and say so in the reason.
    - **0**: nothing of the above, or the probe fails on the system.

The system under test is a mapping of named components (:func:`reference_system` builds the
course's own: the validator, the feature builder, training, the request schema, scoring, the
model's training date and the clock). A fault returns a copy of the mapping with one component
broken; the learner's test receives the mapping and must notice. The fault injectors stay on the
grader's side: the notebook gives learners the component names, never this module's faults.

Examples
--------
>>> @ml_test("MON5")
... def test_scores_are_finite(system):
...     assert np.isfinite(system["score"](system["X"])).all()
>>> test_scores_are_finite.ml_test_items
('MON5',)
"""

from __future__ import annotations

import copy
import datetime as dt
import logging
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

__all__ = [
    "FAULTS",
    "ITEMS",
    "PROBES",
    "SECTIONS",
    "Item",
    "ItemScore",
    "MLTestScore",
    "catches",
    "grade",
    "items_of",
    "ml_test",
    "reference_system",
]

logger = logging.getLogger(__name__)

System = Mapping[str, Any]
LearnerTest = Callable[[System], object]


@dataclass(frozen=True)
class Item:
    """One test of the rubric: ``id`` (``D1`` .. ``MON7``), its section and our one-line description."""

    id: str
    section: str
    description: str


SECTIONS = ("data", "model", "infrastructure", "monitoring")
_TEXT = {
    "data": (
        "the expected distribution and range of every feature is written down and checked (a schema)",
        "each feature earns its place: removing it costs measurable quality",
        "no feature costs more (latency, memory, upkeep) than it adds",
        "features respect the project's rules (no forbidden or ground-truth-only columns)",
        "personal data in the pipeline is access-controlled and minimised",
        "a new feature can go from idea to production quickly",
        "the code computing every input feature has tests",
    ),
    "model": (
        "model code and configuration are reviewed and kept in version control",
        "the offline metric moves with the business metric seen online",
        "hyperparameters were searched, not guessed",
        "how fast quality decays as the model ages is measured",
        "a simpler baseline model does not do as well",
        "quality holds on the slices that matter (segments, amounts, new terminals)",
        "the model was checked for unfair treatment of groups",
    ),
    "infrastructure": (
        "training twice on the same data and seed gives the same model",
        "the model's specification code has unit tests",
        "the whole pipeline, data to served decision, is tested end to end",
        "a model's quality is checked before it may serve",
        "one example can be followed step by step through the model",
        "a new model serves a canary slice before all traffic",
        "the serving model can be rolled back quickly and safely",
    ),
    "monitoring": (
        "a change in an upstream dependency is noticed",
        "the input invariants that hold in training hold in serving",
        "training and serving compute the same feature values",
        "a model too old to trust is noticed",
        "NaN or infinite values in training or serving are noticed",
        "the service's computing performance has not regressed",
        "the served model's prediction quality has not regressed",
    ),
}
_PREFIX = {"data": "D", "model": "M", "infrastructure": "I", "monitoring": "MON"}
ITEMS: tuple[Item, ...] = tuple(
    Item(f"{_PREFIX[section]}{i}", section, text)
    for section in SECTIONS
    for i, text in enumerate(_TEXT[section], start=1)
)
_BY_ID = {item.id: item for item in ITEMS}


def ml_test(*item_ids: str) -> Callable[[LearnerTest], LearnerTest]:
    """Tag a learner's test with the rubric item(s) it tests (the pytest-marker idea for plain functions)."""
    unknown = [i for i in item_ids if i not in _BY_ID]
    if unknown or not item_ids:
        raise ValueError(f"unknown ML Test Score item(s) {unknown or item_ids}: use ids such as {ITEMS[0].id}, MON5")

    def tag(test: LearnerTest) -> LearnerTest:
        test.ml_test_items = tuple(item_ids)  # type: ignore[attr-defined]
        return test

    return tag


_NAMED = re.compile(r"^test_(D|M|I|MON)(\d)_", re.IGNORECASE)


def _items_of(test: LearnerTest) -> tuple[str, ...]:
    tagged = getattr(test, "ml_test_items", None)
    if tagged:
        return tuple(tagged)
    match = _NAMED.match(getattr(test, "__name__", ""))
    return (f"{match.group(1).upper()}{match.group(2)}",) if match else ()


def items_of(test: LearnerTest) -> tuple[str, ...]:
    """The rubric items a test is tagged with (:func:`ml_test`, or its name ``test_<ID>_...``); empty if none."""
    return _items_of(test)


# -- the course's system, its faults and the grader's probes ----------------------------------------------------


def reference_system(random_state: int = 0) -> dict[str, Any]:
    """The components the graded items reach, built from the package on a few days of ``tiny`` (about a second).

    ``transactions``, ``raw_feed`` (with faults), ``validate(batch) -> ValidationResult``,
    ``build_features(transactions) -> DataFrame``, ``train(random_state) -> scores on X``,
    ``parse_v1(body)``/``parse_v2(body) -> Transaction`` (the request schemas), ``X`` and
    ``score(X) -> probabilities``, ``trained_at`` and ``now()`` (for staleness).
    """
    from sklearn.ensemble import RandomForestClassifier

    from mlsys_lab import data
    from mlsys_lab.data.faults import FeedFaults, raw_feed
    from mlsys_lab.data.features import build_features
    from mlsys_lab.data.validation import validate
    from mlsys_lab.deployment import schemas

    sim = data.simulate(data.preset("tiny", random_state=random_state, n_days=10))
    transactions = sim.transactions
    features = build_features(transactions)
    X = features.to_numpy(dtype=np.float64)
    y = transactions["tx_fraud"].to_numpy()

    def train(seed: int) -> np.ndarray:
        model = RandomForestClassifier(n_estimators=5, max_depth=4, random_state=seed, n_jobs=1).fit(X, y)
        scores: np.ndarray = model.predict_proba(X)[:, 1]
        return scores

    fitted = RandomForestClassifier(n_estimators=5, max_depth=4, random_state=random_state, n_jobs=1).fit(X, y)
    trained_at = dt.datetime(2018, 4, 11, tzinfo=dt.UTC)
    return {
        "transactions": transactions,
        "raw_feed": raw_feed(transactions, FeedFaults(rate=0.05), random_state=random_state).raw,
        "validate": lambda batch: validate(batch),
        "build_features": build_features,
        "train": train,
        "parse_v1": lambda body: schemas.transaction_from_v1(schemas.TransactionV1Create.model_validate(body)),
        "parse_v2": lambda body: schemas.transaction_from_v2(schemas.TransactionV2Create.model_validate(body)),
        "X": X,
        "score": lambda rows: fitted.predict_proba(np.asarray(rows, dtype=np.float64))[:, 1],
        "trained_at": trained_at,
        "now": lambda: trained_at + dt.timedelta(days=7),
        "max_model_age_days": 30,
    }


def _with(system: System, **changes: Any) -> dict[str, Any]:
    broken = dict(copy.copy(system))
    broken.update(changes)
    return broken


def _accept_everything(system: System) -> dict[str, Any]:
    original = system["validate"]

    def validate(batch: pd.DataFrame) -> Any:  # every row accepted: the schema checks nothing
        result = original(batch.iloc[:0])
        return type(result)(accepted=batch, quarantined=result.quarantined, report=result.report, last_seen=None)

    return _with(system, validate=validate)


def _terminal_window_a_day_late(system: System) -> dict[str, Any]:
    original = system["build_features"]
    return _with(system, build_features=lambda transactions: original(transactions, delay_days=6))


def _unseeded(system: System) -> dict[str, Any]:
    original = system["train"]
    rng = np.random.default_rng()
    return _with(system, train=lambda seed: original(int(rng.integers(1 << 30))))


def _lenient_schema(system: System) -> dict[str, Any]:
    from mlsys_lab.deployment import schemas

    def parse(body: Mapping[str, Any]) -> Any:  # no validation: whatever arrives becomes a transaction
        return schemas.Transaction.model_construct(**{**body, "schema_version": "v1"})

    return _with(system, parse_v1=parse)


def _cents_as_euros(system: System) -> dict[str, Any]:
    from mlsys_lab.deployment import schemas

    def parse(body: Mapping[str, Any]) -> Any:  # the serving path forgets that v2 sends cents
        tx = schemas.transaction_from_v2(schemas.TransactionV2Create.model_validate(body))
        return tx.model_copy(update={"tx_amount": float(body["amount_minor"])})

    return _with(system, parse_v2=parse)


def _stale_model(system: System) -> dict[str, Any]:
    now = system["now"]
    return _with(system, now=lambda: now() + dt.timedelta(days=90))


def _nan_scores(system: System) -> dict[str, Any]:
    original = system["score"]

    def score(rows: Any) -> np.ndarray:
        values = np.array(original(rows), dtype=np.float64)
        values[:: max(1, len(values) // 10)] = np.nan  # a tenth of the scores are NaN
        return values

    return _with(system, score=score)


#: Item id -> the fault the grader injects to see whether the learner's test notices.
FAULTS: dict[str, Callable[[System], dict[str, Any]]] = {
    "D1": _accept_everything,
    "D7": _terminal_window_a_day_late,
    "I1": _unseeded,
    "MON2": _lenient_schema,
    "MON3": _cents_as_euros,
    "MON4": _stale_model,
    "MON5": _nan_scores,
}


def _probe_schema(system: System) -> None:
    result = system["validate"](system["raw_feed"])
    assert len(result.quarantined) > 0, "the validator quarantined nothing of a feed with faults"


def _probe_features(system: System) -> None:
    from mlsys_lab.data.features import build_features

    assert system["build_features"](system["transactions"]).equals(build_features(system["transactions"]))


def _probe_reproducible(system: System) -> None:
    assert np.array_equal(system["train"](3), system["train"](3)), "two trainings with one seed differ"


def _probe_invariants(system: System) -> None:
    body = {"transaction_id": 1, "customer_id": 1, "terminal_id": 1, "tx_datetime": "2018-05-01T10:00:00"}
    try:
        system["parse_v1"]({**body, "tx_amount": -5.0})
    except ValueError:
        return
    raise AssertionError("a negative amount was accepted")


def _probe_skew(system: System) -> None:
    v1 = {"transaction_id": 1, "customer_id": 1, "terminal_id": 1, "tx_datetime": "2018-05-01T10:00:00"}
    v2 = {**v1, "tx_datetime": "2018-05-01T10:00:00+02:00", "amount_minor": 1999, "currency": "EUR"}
    assert system["parse_v1"]({**v1, "tx_amount": 19.99}).tx_amount == system["parse_v2"](v2).tx_amount


def _probe_stale(system: System) -> None:
    assert (system["now"]() - system["trained_at"]).days <= system["max_model_age_days"]


def _probe_finite(system: System) -> None:
    assert np.isfinite(system["score"](system["X"])).all()


#: Item id -> the grader's own check of the clean system (raises AssertionError when it fails).
PROBES: dict[str, Callable[[System], None]] = {
    "D1": _probe_schema,
    "D7": _probe_features,
    "I1": _probe_reproducible,
    "MON2": _probe_invariants,
    "MON3": _probe_skew,
    "MON4": _probe_stale,
    "MON5": _probe_finite,
}


# -- grading ------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ItemScore:
    """One item's score and why."""

    item: Item
    score: float
    reason: str


@dataclass(frozen=True)
class MLTestScore:
    """Every item's score, the sections' sums and the final score (their minimum)."""

    items: tuple[ItemScore, ...]

    @property
    def sections(self) -> dict[str, float]:
        return {s: sum(i.score for i in self.items if i.item.section == s) for s in SECTIONS}

    @property
    def final(self) -> float:
        return min(self.sections.values())

    def failing(self) -> list[ItemScore]:
        """Items below 1, worst first: where the points were lost."""
        return sorted((i for i in self.items if i.score < 1), key=lambda i: (i.score, i.item.id))

    def table(self) -> pd.DataFrame:
        return pd.DataFrame(
            [{"id": i.item.id, "section": i.item.section, "score": i.score, "reason": i.reason} for i in self.items]
        ).set_index("id")


def _passes(test: LearnerTest, system: System) -> tuple[bool, str]:
    try:
        test(system)
    except KeyboardInterrupt:
        raise
    except BaseException as exc:
        return False, f"{type(exc).__name__}: {exc}"[:200]
    return True, ""


def catches(test: LearnerTest, system: System, item_id: str) -> tuple[bool, str]:
    """Whether ``test`` passes on ``system`` and fails under the grader's fault for ``item_id``; and why not.

    What earns an item its full point, for one test: a postmortem's action item is checked the same way.
    """
    if item_id not in FAULTS:
        return False, f"the grader has no fault for {item_id} to show the test can fail"
    name = getattr(test, "__name__", "test")
    ok, why = _passes(test, system)
    if not ok:
        return False, f"{name} fails on the clean system ({why})"
    still, _ = _passes(test, FAULTS[item_id](system))
    if still:
        return False, f"{name} passes even under the injected fault: it cannot catch what {item_id} is about"
    return True, f"{name} passes on the clean system and fails under the injected fault"


def _score_item(item: Item, tests: list[LearnerTest], system: System, evidence: Mapping[str, str]) -> ItemScore:
    fault, probe = FAULTS.get(item.id), PROBES.get(item.id)
    notes: list[str] = []
    for test in tests:
        name = getattr(test, "__name__", "test")
        ok, why = _passes(test, system)
        if not ok:
            notes.append(f"{name} fails on the clean system ({why})")
            continue
        if fault is None:
            notes.append(f"{name} passes, but the grader has no fault for {item.id} to show it can fail")
            continue
        still, _ = _passes(test, fault(system))
        if not still:
            return ItemScore(item, 1.0, f"{name} passes on the clean system and fails under the injected fault")
        notes.append(f"{name} passes even under the injected fault: it cannot catch what {item.id} is about")
    if item.id in evidence and evidence[item.id].strip():
        if probe is None:
            notes.append("manual evidence tagged; this item has no grader probe (partly manual)")
            return ItemScore(item, 0.5, "; ".join(notes))
        ok, why = _passes(probe, system)
        if ok:
            return ItemScore(item, 0.5, "; ".join([*notes, "the grader's probe passes and manual evidence is tagged"]))
        notes.append(f"the grader's probe fails on the system ({why})")
    elif not tests:
        notes.append("no tagged test and no tagged evidence")
    else:
        notes.append("no tagged manual evidence")
    return ItemScore(item, 0.0, "; ".join(notes))


def grade(tests: Iterable[LearnerTest], system: System, *, evidence: Mapping[str, str] | None = None) -> MLTestScore:
    """Score every item of the rubric from the learner's tagged ``tests`` and tagged manual ``evidence``.

    Parameters
    ----------
    tests
        The learner's test functions (each takes the system mapping), tagged with :func:`ml_test` or
        named ``test_<ID>_...``; untagged ones are ignored.
    system
        The system's components (:func:`reference_system`, or the learner's own with the same names).
    evidence
        Item id -> a description of the manual evidence (the notebook cell tagged with the item).
    """
    by_item: dict[str, list[LearnerTest]] = {item.id: [] for item in ITEMS}
    for test in tests:
        for item_id in _items_of(test):
            if item_id not in by_item:
                raise ValueError(f"{getattr(test, '__name__', test)} is tagged {item_id!r}, not an item id")
            by_item[item_id].append(test)
    evidence = evidence or {}
    scores = tuple(_score_item(item, by_item[item.id], system, evidence) for item in ITEMS)
    logger.debug("ML Test Score: %s", {s: v for s, v in MLTestScore(scores).sections.items()})
    return MLTestScore(scores)
