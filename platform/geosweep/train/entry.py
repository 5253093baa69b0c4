"""The function Ray Train ships to its controller and its workers, in a module that imports nothing heavy.

Train's controller unpickles the worker function as well, and so imports the module that defines it.
Defined here, the controller skips the loop's imports (the tasks, representations, MLflow: about 2 s
per trial on 2 cores); only the workers, which train, import the loop.
"""

from __future__ import annotations

from typing import Any


def train_loop_per_worker(loop_config: dict[str, Any]) -> None:
    """Run geosweep.train.loop's per-worker loop (see there for `loop_config`), rank 0 under MLflow's system monitor."""
    from geosweep.train import loop

    with loop.rank_zero_system_metrics(loop_config):
        loop.train_loop_per_worker(loop_config)
