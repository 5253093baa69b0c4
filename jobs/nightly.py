"""The nightly benchmark, submitted to a Ray cluster (jobs/schedule/ submits it every night).

    ray job submit --address http://127.0.0.1:8265 --submission-id nightly-$(date -u +%F) --working-dir . \
        --runtime-env-json "$(python jobs/schedule/runtime_env.py)" \
        -- python jobs/nightly.py --config configs/nightly/suite.yaml [--set path=value ...] [--date YYYY-MM-DD]

Runs the suite into the MLflow experiment `nightly`, compares every tracked metric
with the median of the last K passed nights and prints the regression report (also
on the night's parent run). Exit status: 0 passed, 1 regressed or an entry failed,
2 an invalid suite config.
"""

import sys
from pathlib import Path

# The working dir is the repo: make the package importable even where it is not installed.
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "platform"))

from geosweep.nightly.run import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
