"""Can training be reproduced? Same config and data: the same bytes. Another seed: another model."""

import dataclasses

import numpy as np
import pytest

from mlsys_lab.training import TrainingConfig, build_pipeline, split_data, train


def proba_bytes(run, X) -> bytes:
    return run.pipeline.predict_proba(X).tobytes()


@pytest.mark.parametrize("family", ["random_forest", "hist_gradient_boosting", "decision_tree"])
def test_same_config_same_data_gives_byte_identical_predictions(family, tiny_frame, tiny_split):
    params = {"random_forest": {"n_estimators": 10}, "hist_gradient_boosting": {"max_iter": 20}}.get(family, {})
    config = TrainingConfig(family=family, params=params, split=tiny_split, validation_folds=0, random_state=7)
    X = split_data(config, tiny_frame).X_test
    first, second = train(config, tiny_frame), train(config, tiny_frame)
    assert proba_bytes(first, X) == proba_bytes(second, X)
    assert first.fingerprint == second.fingerprint


def test_a_different_seed_gives_a_different_model(forest_config, tiny_frame):
    X = split_data(forest_config, tiny_frame).X_test
    first = train(forest_config, tiny_frame)
    other = train(dataclasses.replace(forest_config, random_state=forest_config.random_state + 1), tiny_frame)
    assert proba_bytes(first, X) != proba_bytes(other, X)
    # The data did not change, only the model.
    assert first.fingerprint == other.fingerprint


def test_the_reproducibility_test_can_fail_without_seeding(forest_config, tiny_frame):
    # Remove the seed the way a careless edit would (random_state=None): two fits then differ, so the
    # byte-identity test above is not passing by accident.
    unseeded = build_pipeline(forest_config).set_params(model__random_state=None)
    X = split_data(forest_config, tiny_frame).X_test
    first = train(forest_config, tiny_frame, pipeline=unseeded)
    second = train(forest_config, tiny_frame, pipeline=unseeded)
    assert proba_bytes(first, X) != proba_bytes(second, X)


def test_the_seed_reaches_the_estimator_as_random_state(forest_config):
    assert build_pipeline(forest_config)["model"].random_state == forest_config.random_state
    assert build_pipeline(dataclasses.replace(forest_config, random_state=11))["model"].random_state == 11


def test_fingerprint_changes_when_one_label_changes(forest_config, tiny_frame):
    from mlsys_lab.training import data_fingerprint

    data = split_data(forest_config, tiny_frame)
    flipped = data.y_train.copy()
    flipped[0] = 1 - flipped[0]
    features = forest_config.features
    assert data_fingerprint(data.X_train, data.y_train, features) != data_fingerprint(data.X_train, flipped, features)
    assert len(data_fingerprint(data.X_train, data.y_train, features)) == 64
    assert np.array_equal(split_data(forest_config, tiny_frame).X_train, data.X_train)
