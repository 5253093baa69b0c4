"""Checks shared by the nightly's schedules (crontab, GitHub Actions, Kubernetes CronJob): the submit command."""

from __future__ import annotations

import re
import shlex
import subprocess
from datetime import UTC, datetime
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
# The nightly benchmark's entrypoint and suite, which the schedules may name before they land.
NIGHTLY_PATHS = {"jobs/nightly.py", "configs/nightly/suite.yaml"}
NIGHTLY_ENTRYPOINT = ["python", "jobs/nightly.py", "--config", "configs/nightly/suite.yaml"]
SHELL_OPERATORS = {"&&", "||", ";", "|", ">", ">>", "2>&1"}


def submit_words(script: str) -> list[str]:
    """The words of the `ray job submit` command in a shell script, continuation lines joined.

    shlex keeps a quoted "$(...)" as one word, as the shell does.
    """
    for line in script.replace("\\\n", " ").splitlines():
        words = shlex.split(line, comments=True)
        for i, word in enumerate(words):
            if Path(word).name == "ray" and words[i + 1 : i + 3] == ["job", "submit"]:
                return words[i:]
    raise AssertionError(f"no `ray job submit` command in:\n{script}")


def repo_paths(script: str) -> set[str]:
    """Relative paths in the script that start with one of the repository's top-level folders."""
    top_level = {p.name for p in REPO_ROOT.iterdir() if p.is_dir() and not p.name.startswith(".")}
    candidates = re.findall(r"(?<![\w./$~-])((?:[\w-]+/)+[\w.-]+)", script)
    return {path for path in candidates if path.split("/")[0] in top_level}


def check_nightly_submission(script: str) -> list[str]:
    """Assert the script submits the nightly suite idempotently and names only paths that exist.

    Returns:
        The submit command's words, for schedule-specific checks.
    """
    words = submit_words(script)
    options = words[: words.index("--")]
    entrypoint = words[words.index("--") + 1 :]
    entrypoint = entrypoint[: next((i for i, w in enumerate(entrypoint) if w in SHELL_OPERATORS), None)]
    assert entrypoint == NIGHTLY_ENTRYPOINT
    assert options[options.index("--working-dir") + 1] == "."

    # The submission id, as bash expands it, is the UTC date's: one nightly a day.
    submission_id = options[options.index("--submission-id") + 1]
    days = {f"nightly-{datetime.now(UTC):%Y-%m-%d}"}
    expanded = subprocess.run(["bash", "-c", f'echo "{submission_id}"'], capture_output=True, text=True, check=True)
    days.add(f"nightly-{datetime.now(UTC):%Y-%m-%d}")  # in case midnight passed meanwhile
    assert expanded.stdout.strip() in days, f"submission id {submission_id!r} expands to {expanded.stdout!r}"

    runtime_env = options[options.index("--runtime-env-json") + 1]
    assert "jobs/schedule/runtime_env.py" in runtime_env  # the commit and MLflow server travel with the job

    missing = {p for p in repo_paths(script) if not (REPO_ROOT / p).exists()} - NIGHTLY_PATHS
    assert not missing, f"the schedule names paths that do not exist: {sorted(missing)}"
    return words
