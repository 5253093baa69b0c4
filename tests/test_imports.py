"""Importing geosweep changes nothing in the process: whatever Ray needs is set where Ray starts."""

import json
import os
import subprocess
import sys

MAIN_MODULES = ["geosweep", "geosweep.cli", "geosweep.sweep.run", "geosweep.train.loop"]

# A fresh interpreter in a bare environment, so nothing this test process imported or set hides a change.
# The libraries geosweep builds on are imported before the first snapshot: what they set themselves (ray,
# mlflow) is not geosweep's doing.
PROBE = f"""
import importlib, json, os
import mlflow, ray, ray.train.torch, ray.tune, torch
before = dict(os.environ)
for name in {MAIN_MODULES!r}:
    importlib.import_module(name)
after = dict(os.environ)
print(json.dumps({{key: [before.get(key), after.get(key)] for key in before.keys() | after.keys()
                  if before.get(key) != after.get(key)}}))
"""


def test_importing_geosweep_leaves_the_environment_unchanged():
    bare = {name: os.environ[name] for name in ("PATH", "HOME", "PYTHONPATH") if name in os.environ}
    probe = subprocess.run([sys.executable, "-c", PROBE], env=bare, capture_output=True, text=True, timeout=120)
    assert probe.returncode == 0, probe.stderr
    assert json.loads(probe.stdout.splitlines()[-1]) == {}


def modules_loaded_by(module: str, candidates: tuple[str, ...]) -> list[str]:
    """Which of `candidates` a fresh interpreter has loaded after importing `module`."""
    probe = f"import sys, {module}; print(','.join(m for m in {candidates!r} if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120, check=True)
    return [name for name in out.stdout.strip().split(",") if name]


def test_trial_processes_import_only_what_they_need():
    # Train's controller unpickles the worker function: its module must not pull in the loop's world.
    assert modules_loaded_by("geosweep.train.entry", ("torch", "mlflow", "ray", "scipy")) == []
    # A sweep's trial process drives one trial: no leaderboard figures, no searchers.
    assert modules_loaded_by("geosweep.sweep.trial", ("plotly", "optuna", "hyperopt")) == []
