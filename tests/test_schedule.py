"""The nightly's schedules in jobs/schedule/: the crontab line, the GitHub Actions workflow, the runtime env."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tomllib

import ray
import yaml
from croniter import croniter
from ray.runtime_env import RuntimeEnv

from nightly_submission import REPO_ROOT, check_nightly_submission

SCHEDULE = REPO_ROOT / "jobs" / "schedule"


def test_crontab_line_is_valid_and_submits_the_nightly():
    entries = [line for line in (SCHEDULE / "nightly.crontab").read_text().splitlines() if line.strip()]
    (line,) = [entry for entry in entries if not entry.startswith("#")]
    *schedule, command = line.split(None, 5)
    assert croniter.is_valid(" ".join(schedule)), schedule

    # cron ends the command at a bare % (the rest becomes its stdin) and strips the backslash of \%.
    assert not re.search(r"(?<!\\)%", command), "every % in a crontab command must be written \\%"
    words = check_nightly_submission(command.replace("\\%", "%"))

    assert "RAY_AUTH_MODE=token" in command and 'RAY_AUTH_TOKEN_PATH="$HOME/.ray/geosweep_token"' in command
    assert words[words.index("--address") + 1] == "http://127.0.0.1:8265"  # the head itself, or the SSH tunnel


def test_github_workflow_submits_the_nightly_with_address_and_token_from_secrets():
    workflow = yaml.safe_load((SCHEDULE / "github-nightly.yml").read_text())
    triggers = workflow.get("on", workflow.get(True))  # YAML 1.1 reads a bare `on` key as True
    assert croniter.is_valid(triggers["schedule"][0]["cron"])
    assert "workflow_dispatch" in triggers

    (job,) = workflow["jobs"].values()
    assert "self-hosted" in job["runs-on"]  # the Jobs API is not on the internet
    steps = job["steps"]
    assert steps[0]["uses"].startswith("actions/checkout@")
    install = next(step for step in steps if "pip install" in step.get("run", ""))
    assert f'"ray[default]=={ray.__version__}"' in install["run"]

    submit = next(step for step in steps if "ray job submit" in step.get("run", ""))
    assert submit["env"]["RAY_ADDRESS"] == "${{ secrets.RAY_ADDRESS }}"
    assert submit["env"]["RAY_AUTH_TOKEN"] == "${{ secrets.RAY_AUTH_TOKEN }}"
    assert submit["env"]["RAY_AUTH_MODE"] == "token"
    assert submit["env"]["MLFLOW_TRACKING_URI"].startswith("${{ ")
    words = check_nightly_submission(submit["run"])
    assert words[words.index("--address") + 1] == "$RAY_ADDRESS"


def run_runtime_env(*args: str, tracking_uri: str | None) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
    if tracking_uri:
        env["MLFLOW_TRACKING_URI"] = tracking_uri
    script = SCHEDULE / "runtime_env.py"
    return subprocess.run(
        [sys.executable, str(script), *args], env=env, capture_output=True, text=True, timeout=30, check=False
    )


def test_runtime_env_carries_the_commit_the_tracking_server_and_with_pip_geosweeps_dependencies():
    done = run_runtime_env("--pip", tracking_uri="http://mlflow.test:5000")
    assert done.returncode == 0, done.stderr
    runtime_env = json.loads(done.stdout)
    RuntimeEnv(**runtime_env)  # Ray accepts it as it stands

    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=REPO_ROOT, capture_output=True, text=True, check=True)
    assert runtime_env["env_vars"] == {
        "GEOSWEEP_GIT_SHA": head.stdout.strip(),
        "MLFLOW_TRACKING_URI": "http://mlflow.test:5000",
    }
    dependencies = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    (ray_pin,) = [dep for dep in dependencies if dep.startswith("ray[")]
    assert runtime_env["pip"] == [dep for dep in dependencies if dep != ray_pin]  # the image's Ray stays

    without_pip = json.loads(run_runtime_env(tracking_uri="http://mlflow.test:5000").stdout)
    assert "pip" not in without_pip  # cluster.yaml's nodes installed geosweep already


def test_runtime_env_refuses_a_job_without_a_tracking_server():
    done = run_runtime_env(tracking_uri=None)
    assert done.returncode != 0
    assert "MLFLOW_TRACKING_URI is not set" in done.stderr
