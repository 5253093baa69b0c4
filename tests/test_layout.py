"""`platform/` is a source root, never a package: a package there would shadow the standard library."""

import subprocess
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]


def test_platform_has_no_init():
    assert not (REPO_ROOT / "platform" / "__init__.py").exists()


def test_stdlib_platform_wins_with_repo_root_first_on_path():
    # pytest and Ray's working_dir both put the repo root first on sys.path.
    code = "import platform, sys; assert callable(platform.system), platform; print(platform.system())"
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "Linux"
