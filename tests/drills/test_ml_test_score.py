"""The ML Test Score: 1 point only for a learner test that fails under the item's fault; the final is the minimum.

The key claim: a learner's test that cannot fail (it asserts something always true) earns at most
0.5, while a test that fails when the grader injects the matching fault earns 1.
"""

from __future__ import annotations

import numpy as np
import pytest

from mlsys_lab.drills import ml_test_score as mts
from mlsys_lab.drills.ml_test_score import ml_test


@pytest.fixture(scope="module")
def system():
    return mts.reference_system(random_state=0)


@ml_test("MON5")
def learner_scores_are_finite(system):
    assert np.isfinite(system["score"](system["X"])).all()


@ml_test("MON5")
def learner_scores_exist(system):  # cannot fail: NaN scores still have a length
    assert len(system["score"](system["X"])) >= 0


def _named_by_convention():
    # Tagged by name only (test_<ID>_...), as a learner's pytest file would; made here so pytest does not collect them.
    def test_D1_schema_quarantines_faulty_rows(system):
        assert len(system["validate"](system["raw_feed"]).quarantined) > 0

    def test_I1_same_seed_same_model(system):
        assert np.array_equal(system["train"](1), system["train"](1))

    return [test_D1_schema_quarantines_faulty_rows, test_I1_same_seed_same_model]


@ml_test("MON3")
def learner_v2_cents_become_the_same_euros_as_v1(system):
    v1 = {"transaction_id": 1, "customer_id": 1, "terminal_id": 1, "tx_datetime": "2018-05-01T10:00:00"}
    v2 = {**v1, "tx_datetime": "2018-05-01T10:00:00+02:00", "amount_minor": 1250, "currency": "EUR"}
    assert system["parse_v1"]({**v1, "tx_amount": 12.5}).tx_amount == system["parse_v2"](v2).tx_amount


@ml_test("MON4")
def learner_model_not_stale(system):
    assert (system["now"]() - system["trained_at"]).days <= system["max_model_age_days"]


@ml_test("MON2")
def learner_negative_amount_refused(system):
    body = {"transaction_id": 1, "customer_id": 1, "terminal_id": 1, "tx_datetime": "2018-05-01T10:00:00"}
    with pytest.raises(ValueError):
        system["parse_v1"]({**body, "tx_amount": -1.0})


@ml_test("D7")
def learner_features_match_the_reference(system):
    from mlsys_lab.data.features import build_features

    sample = system["transactions"]
    assert system["build_features"](sample).equals(build_features(sample))


def test_the_rubric_has_28_items_in_four_sections_of_seven():
    assert len(mts.ITEMS) == 28 and len({i.id for i in mts.ITEMS}) == 28
    assert {s: sum(i.section == s for i in mts.ITEMS) for s in mts.SECTIONS} == dict.fromkeys(mts.SECTIONS, 7)
    assert set(mts.FAULTS) == set(mts.PROBES) and set(mts.FAULTS) <= {i.id for i in mts.ITEMS}


def test_a_test_that_fails_under_the_fault_earns_1_and_one_that_cannot_fail_at_most_half(system):
    strong = mts.grade([learner_scores_are_finite], system).table().loc["MON5"]
    assert strong["score"] == 1.0, strong["reason"]
    weak = mts.grade([learner_scores_exist], system, evidence={"MON5": "plot of score histogram"}).table().loc["MON5"]
    assert weak["score"] == 0.5 and "cannot catch" in weak["reason"], weak["reason"]
    weak_no_evidence = mts.grade([learner_scores_exist], system).table().loc["MON5"]
    assert weak_no_evidence["score"] == 0.0


@pytest.mark.parametrize(
    "test",
    [
        *_named_by_convention(),
        learner_v2_cents_become_the_same_euros_as_v1,
        learner_model_not_stale,
        learner_negative_amount_refused,
        learner_features_match_the_reference,
    ],
)
def test_every_mapped_item_has_a_fault_its_honest_test_catches(system, test):
    item = mts._items_of(test)[0]
    score = mts.grade([test], system).table().loc[item]
    assert score["score"] == 1.0, f"{item}: {score['reason']}"


def test_evidence_earns_half_only_when_the_probe_passes(system):
    assert mts.grade([], system, evidence={"MON5": "table"}).table().loc["MON5", "score"] == 0.5
    broken = mts.FAULTS["MON5"](system)  # the system itself scores NaN: the probe fails
    row = mts.grade([], broken, evidence={"MON5": "table"}).table().loc["MON5"]
    assert row["score"] == 0.0 and "probe fails" in row["reason"]
    manual = mts.grade([], system, evidence={"D5": "access list of the decision log"}).table().loc["D5"]
    assert manual["score"] == 0.5 and "partly manual" in manual["reason"]


def test_the_final_score_is_the_weakest_section(system):
    evidence = {item.id: "evidence" for item in mts.ITEMS if item.section != "model"}
    result = mts.grade([learner_scores_are_finite], system, evidence=evidence)
    assert result.sections["model"] == 0.0 and result.final == 0.0
    assert result.sections["monitoring"] == 1.0 + 6 * 0.5
    assert result.failing()[0].score == 0.0


def test_a_tag_naming_no_item_is_refused():
    with pytest.raises(ValueError, match="unknown ML Test Score item"):
        ml_test("X9")
