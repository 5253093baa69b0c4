"""The repository's layout: `platform/` is a source root, never a package; README and docs/ link only to what exists."""

import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
DOCUMENTS = [REPO_ROOT / "README.md", *sorted((REPO_ROOT / "docs").glob("*.md"))]


def test_platform_has_no_init():
    assert not (REPO_ROOT / "platform" / "__init__.py").exists()


def test_stdlib_platform_wins_with_repo_root_first_on_path():
    # pytest and Ray's working_dir both put the repo root first on sys.path.
    code = "import platform, sys; assert callable(platform.system), platform; print(platform.system())"
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "Linux"


def heading_anchors(document: Path) -> set[str]:
    """GitHub's anchors for a markdown file's headings: lower case, punctuation dropped, spaces as dashes."""
    headings = re.findall(r"^#+ (.+)$", document.read_text(), re.MULTILINE)
    return {re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-") for heading in headings}


@pytest.mark.parametrize("document", DOCUMENTS, ids=lambda path: str(path.relative_to(REPO_ROOT)))
def test_every_relative_link_reaches_a_file_and_heading(document):
    for target in re.findall(r"\]\(([^)]+)\)", document.read_text()):
        if target.startswith(("http://", "https://")):
            continue
        path, _, anchor = target.partition("#")
        linked = (document.parent / path).resolve() if path else document
        assert linked.is_file(), f"{document.name} links to {target}: no such file"
        if anchor:
            assert anchor in heading_anchors(linked), f"{document.name} links to {target}: no such heading"


def test_readme_links_every_page_of_docs():
    readme = (REPO_ROOT / "README.md").read_text()
    assert all(f"](docs/{page.name}" in readme for page in DOCUMENTS[1:]), "a docs/ page the README does not link"
