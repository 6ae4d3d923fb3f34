"""The training config: typed, frozen, validated with errors that name the field."""

import dataclasses

import pytest

from mlsys_lab.data.features import FEATURE_COLUMNS
from mlsys_lab.data.split import TimeSplit
from mlsys_lab.training import FAMILIES, TrainingConfig, build_pipeline

SPLIT = TimeSplit(train_start_day=49)


def test_params_are_stored_sorted_and_immutable_and_the_config_is_hashable():
    config = TrainingConfig(family="random_forest", params={"n_estimators": 5, "max_depth": 3}, split=SPLIT)
    assert config.params == (("max_depth", 3), ("n_estimators", 5))
    assert hash(config) == hash(dataclasses.replace(config))
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.random_state = 1  # type: ignore[misc]
    assert config.model_params["n_jobs"] == 1, "forests predict one row faster with n_jobs=1"
    assert config.features == FEATURE_COLUMNS


@pytest.mark.parametrize(
    ("fields", "named"),
    [
        ({"family": "svm"}, "family"),
        ({"params": {"max_dept": 3}}, "max_dept"),
        ({"params": {"random_state": 3}}, "random_state"),
        ({"params": {"max_depth": [3]}}, "params['max_depth']"),
        ({"split": 49}, "split"),
        ({"features": ("tx_amount", "customer_id")}, "features"),
        ({"features": ["tx_amount"]}, "features"),
        ({"random_state": -1}, "random_state"),
        ({"validation_folds": 1.5}, "validation_folds"),
        ({"unknown_labels": "fraud"}, "unknown_labels"),
        ({"cards_per_day": 0}, "cards_per_day"),
    ],
)
def test_invalid_fields_are_rejected_by_name(fields, named):
    arguments = {"family": "decision_tree", "split": SPLIT, **fields}
    with pytest.raises(ValueError, match=named.replace("[", r"\[").replace("]", r"\]")):
        TrainingConfig(**arguments)


@pytest.mark.parametrize("family", FAMILIES)
def test_every_family_builds_a_two_step_pipeline(family):
    pipeline = build_pipeline(TrainingConfig(family=family, split=SPLIT, random_state=3))
    assert [name for name, _ in pipeline.steps] == ["scale", "model"]
    assert pipeline["model"].get_params()["random_state"] == 3


def test_as_dict_is_the_resolved_config():
    config = TrainingConfig(family="logistic_regression", params={"C": 0.5}, split=SPLIT)
    resolved = config.as_dict()
    assert resolved["model_params"] == {"C": 0.5, "max_iter": 1000, "random_state": 0}
    assert resolved["split"] == {"train_start_day": 49, "train_days": 7, "delay_days": 7, "test_days": 7}
    assert config.name == "logistic_regression(C=0.5)"
