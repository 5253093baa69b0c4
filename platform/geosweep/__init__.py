"""geosweep: sweeps over transformation-invariant geometric networks on Ray, tracked in MLflow."""

import os

__version__ = "0.1.0"

# Ray reads these once, when it is imported, so they are set here, before any
# geosweep module imports it. Without a cluster address, a local Ray stays on
# 127.0.0.1 (2.60 otherwise binds the machine's interface address); a driver
# joining a cluster must keep its reachable address, so it is left alone.
if not os.environ.get("RAY_ADDRESS"):
    os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")  # nothing leaves the machine
