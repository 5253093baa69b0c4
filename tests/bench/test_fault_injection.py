"""A sweep loses no trial and no epoch to a killed Train worker, a killed trial driver and an MLflow outage.

The benchmark `python -m geosweep.bench.fault_injection`, smaller.
"""

import pytest

from geosweep.bench.fault_injection import sweep_under_faults

pytestmark = [pytest.mark.integration, pytest.mark.slow]  # about 4 minutes on 2 CPUs


def test_no_trial_and_no_epoch_is_lost_or_logged_twice_under_faults(ray_local):
    log: list[str] = []
    completed, lost, twice = sweep_under_faults(trials=3, epochs=8, outage_s=8.0, log=log)
    assert not any("found no" in line for line in log), log  # every fault struck while trials ran
    assert (completed, lost, twice) == (3, 0, 0), log
