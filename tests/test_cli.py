"""The command line's own surface: version, the component listing, and help that shows an example."""

import subprocess
import sys

import pytest

import geosweep
from geosweep.cli import main
from geosweep.registry import AXES


def test_version(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["--version"])
    assert exit_.value.code == 0
    assert capsys.readouterr().out.strip() == f"geosweep {geosweep.__version__}"


def test_list_shows_every_registered_component_with_its_arguments_and_defaults(capsys):
    assert main(["list"]) == 0
    listing = capsys.readouterr().out
    for axis, registry in AXES.items():
        assert f"{axis}:\n" in listing
        for name in registry.names():
            assert f"  {name}" in listing
    # From the constructor itself: a default, a type, a required argument; platform-provided ones are left out.
    assert "      k: Annotated[int, Field(ge=1)] = 20" in listing
    assert "      path: " in listing and "(required)" in listing
    assert "      in_channels" not in listing and "      out_dim" not in listing


def test_list_of_one_axis(capsys):
    assert main(["list", "hypernet"]) == 0
    listing = capsys.readouterr().out
    assert listing.startswith("hypernet:\n") and "backbone:" not in listing
    assert "  mip: Magnitude Invariant Parametrization" in listing


@pytest.mark.parametrize(
    ("command", "argument"),
    [("sweep", "YAML sweep config"), ("train", "YAML run config"), ("validate", "YAML run or sweep config")],
)
def test_each_command_describes_its_own_argument_and_shows_an_example(command, argument):
    done = subprocess.run(
        [sys.executable, "-m", "geosweep.cli", command, "--help"], capture_output=True, text=True, check=True
    )
    assert argument in " ".join(done.stdout.split())
    assert f"example:\n  geosweep {command} configs/" in done.stdout
