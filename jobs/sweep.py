"""A sweep, submitted to a Ray cluster.

    ray job submit --address http://127.0.0.1:8265 --working-dir . \
        --runtime-env-json '{"env_vars": {"MLFLOW_TRACKING_URI": "http://mlflow.internal:5000"}}' \
        -- python jobs/sweep.py --config configs/sweeps/quickstart.yaml [--resume] [--set seeds=3 ...]

Exit status 0 only when every trial succeeded.
"""

import argparse
import sys
from pathlib import Path

# The working dir is the repo: make the package importable even where it is not installed.
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "platform"))

from geosweep.cli import main  # noqa: E402

if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="geosweep sweep, as a Ray job")
    parser.add_argument("--config", required=True)
    args, rest = parser.parse_known_args()
    sys.exit(main(["sweep", args.config, *rest]))
