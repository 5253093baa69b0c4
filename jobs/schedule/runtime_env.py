"""Print the runtime env of a scheduled geosweep job, as JSON for `ray job submit --runtime-env-json`.

    ray job submit ... --working-dir . --runtime-env-json "$(python jobs/schedule/runtime_env.py [--pip])" \
        -- python jobs/nightly.py --config configs/nightly/suite.yaml

It carries the commit being submitted (GEOSWEEP_GIT_SHA: Ray uploads the working dir
without .git) and MLFLOW_TRACKING_URI from this environment. With --pip it also lists
geosweep's dependencies from pyproject.toml, less Ray, for clusters whose images hold
Ray only (deploy/kuberay/); cluster.yaml's nodes install geosweep in their setup commands.
Standard library only: it runs in the plain rayproject/ray image.
"""

import argparse
import json
import os
import re
import subprocess
import sys
import tomllib
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]


def git_sha() -> str:
    """The checkout's commit, else $GEOSWEEP_GIT_SHA."""
    try:
        done = subprocess.run(["git", "rev-parse", "HEAD"], cwd=REPO_ROOT, capture_output=True, text=True, check=False)
        sha = done.stdout.strip() if done.returncode == 0 else ""
    except OSError:  # no git on this machine
        sha = ""
    sha = sha or os.environ.get("GEOSWEEP_GIT_SHA", "")
    if not sha:
        sys.exit(f"error: {REPO_ROOT} is not a git checkout and GEOSWEEP_GIT_SHA is not set")
    return sha


def dependencies_without_ray() -> list[str]:
    """pyproject.toml's dependencies, less ray (the image's Ray must stay the cluster's)."""
    project = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]
    return [dep for dep in project["dependencies"] if re.split(r"[\s\[<>=!~;]", dep, maxsplit=1)[0] != "ray"]


def main() -> None:
    """Print the job's runtime env; exits naming MLFLOW_TRACKING_URI when it is unset."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pip", action="store_true", help="add geosweep's dependencies (images with Ray only)")
    args = parser.parse_args()
    tracking_uri = os.environ.get("MLFLOW_TRACKING_URI")
    if not tracking_uri:
        sys.exit(
            "error: MLFLOW_TRACKING_URI is not set: a scheduled job must log to the lab's MLflow server "
            "(e.g. http://mlflow.internal:5000), not to a SQLite file in the job's temporary working dir"
        )
    runtime_env = {"env_vars": {"GEOSWEEP_GIT_SHA": git_sha(), "MLFLOW_TRACKING_URI": tracking_uri}}
    if args.pip:
        runtime_env["pip"] = dependencies_without_ray()
    print(json.dumps(runtime_env))


if __name__ == "__main__":
    main()
