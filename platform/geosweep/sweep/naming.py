"""Readable names for a sweep's trial runs in MLflow: the values of the axes that vary, unique within the sweep's run.

    representation x backbone x hypernet x 2 seeds  ->  tinv_mds-dgcnn-mip-s1
    representation x optimizer.lr (loguniform)      ->  fa-lr=0.00123

Only the MLflow run's display name is readable: the Ray Train run keeps `<sweep>-<trial id>`, which a resumed
trial's checkpoints are found by, and the MLflow run is found by its tags, so renaming never breaks a resume.
"""

from __future__ import annotations

from typing import Any

import yaml
from mlflow.tracking import MlflowClient

from geosweep.comparison.rows import SEED_KEY
from geosweep.sweep.config import SweepConfig, checked_axes

MAX_NAME = 200  # MLflow caps a run name at 250 characters: room for the suffix


def flow(value: Any) -> str:
    """A value as one line of YAML flow text: `[16, 32]`, `{name: mip, kwargs: {hidden: [16]}}`, `0.001`."""
    text = yaml.safe_dump(value, default_flow_style=True, sort_keys=False, width=1_000_000)
    return text.strip().removesuffix("\n...")  # a scalar's document ends in an explicit end marker


def axis_values(sweep: SweepConfig) -> dict[str, list[Any]]:
    """Per space path, and the seed when seeds > 1, the values it takes (a continuous domain's bounds)."""
    axes = {axis[0][0]: [value for _, value in axis] for axis in checked_axes(sweep)}
    if sweep.seeds > 1:
        axes[SEED_KEY] = list(range(sweep.seeds))
    return axes


def varying_axes(sweep: SweepConfig) -> dict[str, list[Any]]:
    """The axes of `axis_values` that take more than one value."""
    return {path: values for path, values in axis_values(sweep).items() if len({flow(v) for v in values}) > 1}


def short(value: Any) -> str:
    """A value in a name: floats to 3 significant digits, lists and mappings as YAML flow text."""
    return f"{value:.3g}" if isinstance(value, float) else flow(value)


def leaves(value: dict, prefix: str = "") -> dict[str, Any]:
    """A mapping's leaf values by dotted key (an empty mapping has none)."""
    flat = {}
    for key, item in value.items():
        if isinstance(item, dict):
            flat.update(leaves(item, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = item
    return flat


def mapping_part(value: dict, options: list[Any]) -> str:
    """A mapping (a component spec) by its name, plus the leaves that tell it from the options of the same name."""
    namesakes = [leaves(o) for o in options if isinstance(o, dict) and o.get("name") == value.get("name")]
    mine = leaves(value)
    keys = sorted({key for flat in namesakes for key in flat} - {"name"})
    differing = [key for key in keys if len({str(flat.get(key)) for flat in namesakes}) > 1]
    parts = [str(value["name"])] if "name" in value else []
    return "-".join(parts + [f"{key.rsplit('.', 1)[-1]}={short(mine.get(key))}" for key in differing])


def short_keys(paths: list[str]) -> dict[str, str]:
    """Each dotted path's shortest tail that no other of `paths` ends with: `optimizer.lr` -> `lr`."""
    keys = {}
    for path in paths:
        parts = path.split(".")
        tails = [".".join(parts[-n:]) for n in range(1, len(parts) + 1)]
        keys[path] = next(t for t in tails if not any(o != path and (o == t or o.endswith("." + t)) for o in paths))
    return keys


def trial_run_name(sweep: SweepConfig, values: dict[str, Any]) -> str:
    """A trial's readable run name from its values (space path -> config value, as decoded for it).

    One part per varying axis, in the space's order: a component by its name (and the kwargs that tell apart
    two of one name), a `.name` path by its value, the seed as `s<seed>`, any other field as `<key>=<value>`
    with the shortest key that is unique in the space. The sweep's name where nothing varies.
    """
    varying = varying_axes(sweep)
    keys = short_keys([path for path in varying if path != SEED_KEY])
    parts = []
    for path, options in varying.items():
        value = values.get(path)
        if path == SEED_KEY:
            parts.append(f"s{value}")
        elif isinstance(value, dict):
            parts.append(mapping_part(value, options) or f"{keys[path]}={short(value)}")
        elif path.endswith(".name"):
            parts.append(str(value))
        else:
            parts.append(f"{keys[path]}={short(value)}")
    name = "-".join(parts).replace("'", "")  # MLflow's filter strings cannot escape a quote (keep_unique)
    return name[:MAX_NAME] or sweep.name


def trial_index(trial_id: str) -> str:
    """The trial's number in its sweep: Tune's trial ids end in it (`3f2a1_00007` -> `7`)."""
    number = trial_id.rsplit("_", 1)[-1]
    return str(int(number)) if number.isdigit() else trial_id


def keep_unique(client: MlflowClient, run_id: str, parent_run_id: str, trial_id: str) -> str:
    """Append `#<trial index>` to the name of the just created run `run_id` if another run of the sweep holds it.

    Call it once, right after creating the run. Each trial looks only after its own run exists, so of two
    trials that create a name at once, at least the later one sees the other: both may take a suffix, but
    never do both keep the name. Suffixes are unique within the sweep: they are trial numbers. (The name holds
    no single quote, which MLflow's filter strings cannot escape: trial_run_name drops them.)

    Returns:
        The run's name.
    """
    run = client.get_run(run_id)
    name = run.info.run_name
    query = f"tags.`mlflow.parentRunId` = '{parent_run_id}' and attributes.run_name = '{name}'"
    holders = client.search_runs([run.info.experiment_id], query, max_results=2)
    if any(holder.info.run_id != run_id for holder in holders):
        name = f"{name}#{trial_index(trial_id)}"
        client.update_run(run_id, name=name)
    return name
