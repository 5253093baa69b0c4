"""Search space from a sweep config to Tune's param_space, and a trial's sampled values back to config values.

Grid and choice values are passed to Tune as short labels (a scalar stays
itself, a mapping or list becomes its YAML flow text): every searcher can take
them, and Tune's tables and the leaderboard stay readable.
"""

from __future__ import annotations

from typing import Any

import yaml
from ray import tune

from geosweep.comparison.rows import SEED_KEY
from geosweep.sweep.config import SweepConfig


def label(value: Any) -> Any:
    """What Tune is given for a grid or choice value: a scalar itself, a mapping or list its YAML flow text."""
    if isinstance(value, (dict, list)):
        return yaml.safe_dump(value, default_flow_style=True, sort_keys=False).strip()
    return value


def param_space(sweep: SweepConfig) -> dict[str, Any]:
    """Tune's param_space: one entry per space path, plus a grid over seeds when seeds > 1."""
    space: dict[str, Any] = {}
    for path, domain in sweep.space.items():
        if domain.grid is not None:
            space[path] = tune.grid_search([label(v) for v in domain.grid])
        elif domain.choice is not None:
            space[path] = tune.choice([label(v) for v in domain.choice])
        elif domain.uniform is not None:
            space[path] = tune.uniform(*domain.uniform)
        elif domain.loguniform is not None:
            space[path] = tune.loguniform(*domain.loguniform)
        else:
            space[path] = tune.randint(*domain.randint)
    if sweep.seeds > 1:
        space[SEED_KEY] = tune.grid_search(list(range(sweep.seeds)))
    return space


def decode(sweep: SweepConfig, sampled: dict[str, Any]) -> dict[str, Any]:
    """Config values for a trial's sampled labels (numbers from continuous domains pass through)."""
    values = {}
    for path, sampled_value in sampled.items():
        domain = sweep.space.get(path)
        options = (domain.grid or domain.choice) if domain else None
        values[path] = (
            next((v for v in options if label(v) == sampled_value), sampled_value) if options else sampled_value
        )
    return values
