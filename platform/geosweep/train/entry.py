"""The function Ray Train ships to its controller and its workers, in a module that imports nothing heavy.

Train's controller unpickles the worker function as well, and so imports the module that defines it.
Defined here, the controller skips the loop's imports (the tasks, representations, MLflow: about 2 s
per trial on 2 cores); only the workers, which train, import the loop.
"""

from __future__ import annotations

from typing import Any


def train_loop_per_worker(loop_config: dict[str, Any]) -> None:
    """Run geosweep.train.loop on this Ray Train worker (see loop.train_rank for `loop_config`)."""
    from geosweep.train import loop
    from geosweep.train.session import RayTrainWorker

    loop.train(loop_config, RayTrainWorker())
