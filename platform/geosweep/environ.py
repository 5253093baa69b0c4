"""This process's environment, changed for one block only.

Where a library reads a setting from the environment (Ray's processes at start-up, MLflow at a call),
geosweep sets it around that one step, so that importing geosweep changes nothing in the process.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator


@contextlib.contextmanager
def scoped_environ(values: dict[str, str]) -> Iterator[None]:
    """Set `values` in os.environ for the block (processes started in it inherit them), then restore it."""
    saved = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def unless_set(values: dict[str, str]) -> dict[str, str]:
    """`values`, where the user set none of their own: a value already in the environment wins."""
    return {name: os.environ.get(name, value) for name, value in values.items()}
