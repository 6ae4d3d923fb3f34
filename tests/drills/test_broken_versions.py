"""The broken versions the drills deploy are refused by the one load path, each with a reason that names it.

No server: the registry and the service's model check, on the prepared system's store.
"""

from __future__ import annotations

import numpy as np
import pytest

from mlsys_lab.deployment.registry import IntegrityError, Registry
from mlsys_lab.deployment.state import ModelUnusable, check_model
from mlsys_lab.drills.runner import CALIBRATION_ROWS, MISCALIBRATED_ALERT_SHARE

pytestmark = pytest.mark.slow  # the session's prepared system trains and registers five versions


@pytest.fixture
def registry(drill_system):
    registry = Registry(drill_system.tracking)
    yield registry
    registry.close()


def test_an_artifact_hashed_after_it_was_written_broken_is_one_integrity_error(drill_system, registry):
    # Its sha256 matches (it was hashed as written), so only the unpickling can refuse it.
    assert registry.verify(drill_system.unpicklable_version).version == drill_system.unpicklable_version
    with pytest.raises(IntegrityError, match="cannot be unpickled"):
        registry.load(drill_system.unpicklable_version)


def test_a_nan_scoring_version_loads_but_the_service_refuses_it(drill_system, registry):
    model = registry.load(drill_system.nan_version)
    assert np.isnan(model.score(np.ones((1, len(model.info.features))))).all()
    with pytest.raises(ModelUnusable, match="not one probability"):
        check_model(model, model.info.features)
    check_model(registry.load(drill_system.good_version), model.info.features)  # the good one passes


def test_the_miscalibrated_version_is_the_good_model_with_a_lower_threshold(drill_system, registry):
    good, bad = registry.get(drill_system.good_version), registry.get(drill_system.miscalibrated_version)
    assert bad.sha256 == good.sha256, "the same pipeline: only the threshold differs"
    assert bad.threshold < good.threshold
    scores = registry.load(good.version).score(_traffic_features(drill_system, good.features)[:CALIBRATION_ROWS])
    share, good_share = np.mean(scores >= bad.threshold), np.mean(scores >= good.threshold)
    assert abs(share - MISCALIBRATED_ALERT_SHARE) < 0.005, (
        f"offline it should alert on 5% of the drills' requests, got {share:.2%}"
    )
    assert share > 5 * good_share, f"it must alert far more than the good model ({share:.2%} vs {good_share:.2%})"


def _traffic_features(drill_system, features):
    from mlsys_lab.training import feature_frame

    return feature_frame(drill_system.traffic)[list(features)].to_numpy(np.float64)
