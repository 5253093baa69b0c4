"""One check before a run, a sweep or a night creates anything: it fits, and what it records lasts."""

from __future__ import annotations

from geosweep.cluster.admission import TrialDemand, admit
from geosweep.cluster.checks import require_lasting_tracking, require_shared_storage
from geosweep.cluster.shape import current_shape


def preflight(
    what: str,
    demand: TrialDemand,
    *,
    storage_path: str | None,
    storage_field: str,
    tracking_uri: str | None,
    tracking_field: str,
) -> int:
    """Check the cluster this process is connected to (Ray initialised) for `demand`.

    Returns:
        How many trials of `demand` fit at once at the cluster's full scale.

    Raises:
        ConfigError: no trial fits, or the storage path or tracking URI cannot work there.
    """
    shape = current_shape()
    require_shared_storage(storage_path, shape, storage_field)
    require_lasting_tracking(tracking_uri, tracking_field, shape)
    return admit(demand, shape, what)
